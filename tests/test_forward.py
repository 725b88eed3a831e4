"""The forwarding subscriber against a real TLS service that checks each signature with the
`standardwebhooks` library, as an integrator's service would."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import importlib.metadata
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

import pytest
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.types import Receive, Scope, Send

from receiver.certs import DevCertificates
from receiver.exceptions import ConfigError, PermanentError, RetryLater
from receiver.forward import ForwardHandler
from receiver.inbox.models import State, StoredEvent
from tests.support.certs import write_certificates


def whsec(key: bytes) -> str:
    """A Standard Webhooks secret for `key`."""
    return "whsec_" + base64.b64encode(key).decode()


OLD = whsec(b"the old key, 32 bytes long......")
NEW = whsec(b"the new key, 32 bytes long......")
OTHER = whsec(b"nobody's key, 32 bytes long.....")
SECRETS = (OLD, NEW, OTHER)
PAYLOAD = b'{"CallId":"c-1","QueueName":"Sales","Caller":"+358501231234"}'
MiB = 1 << 20


def event(
    dedup_key: str = "c-1", *, attempts: int = 0, event_type: str = "Allocated"
) -> StoredEvent:
    """A stored event as the dispatcher hands it over for attempt `attempts + 1`."""
    return StoredEvent(
        id=7,
        source="enreach",
        dedup_key=dedup_key,
        event_type=event_type,
        order_key=None,
        payload=PAYLOAD,
        state=State.IN_PROGRESS,
        attempts=attempts,
        received_at=time.time(),
        next_attempt_at=0.0,
        last_error=None,
        finished_at=None,
    )


@dataclass
class Answer:
    """What the service answers to the next requests."""

    status: int = 204
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stall: bool = False
    """Send the first 64 KiB of `body`, then nothing more until the client goes away."""
    hang: bool = False
    """Never answer."""


@dataclass
class Seen:
    """One request as the service received it."""

    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int
    verified_by: list[str]
    """Which of the service's secrets the signature verified with (`Webhook.verify`)."""


class Service:
    """An integrator's webhook service: verifies signatures with `standardwebhooks`, answers
    401 when none of its secrets verifies, else as `answer` says."""

    def __init__(self, *accepted: str) -> None:
        self.accepted = list(accepted)
        self.answer = Answer()
        self.requests: list[Seen] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        verified_by = [s for s in self.accepted if verifies(s, body, headers)]
        self.requests.append(Seen(scope["path"], headers, body, scope["client"][1], verified_by))
        answer = self.answer if verified_by else Answer(401, body=b"signature not verified")
        if answer.hang:
            await disconnected(receive)
            return
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(b"content-length", str(len(answer.body)).encode())]
                + [(k.encode(), v.encode()) for k, v in answer.headers],
            }
        )
        if answer.stall:
            await send(
                {"type": "http.response.body", "body": answer.body[:65536], "more_body": True}
            )
            await disconnected(receive)
            return
        await send({"type": "http.response.body", "body": answer.body})


def verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    """Whether `standardwebhooks` accepts the request as signed with `secret`."""
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


async def disconnected(receive: Receive) -> None:
    """Return once the client has closed the connection."""
    while (await receive())["type"] != "http.disconnect":
        pass


@contextlib.contextmanager
def serving(service: Service, certs: DevCertificates | None) -> Iterator[int]:
    """`service` on uvicorn on a loopback port (TLS with `certs`, plain HTTP without), in a
    thread; yields the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    tls = {"ssl_certfile": str(certs.cert), "ssl_keyfile": str(certs.key)} if certs else {}
    config = uvicorn.Config(
        service,
        log_config=None,
        lifespan="off",
        loop="asyncio",
        http="h11",
        timeout_graceful_shutdown=2,
        **tls,  # type: ignore[arg-type]  # uvicorn's keyword types are not a TypedDict
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[sock]),))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
            time.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    assert not thread.is_alive(), "the service did not stop"


@pytest.fixture
def service() -> Service:
    """A service that accepts the new secret."""
    return Service(NEW)


@pytest.fixture
def url(service: Service, tls_ca: DevCertificates) -> Iterator[str]:
    """The URL of `service`, served with a certificate from `tls_ca`."""
    with serving(service, tls_ca) as port:
        yield f"https://127.0.0.1:{port}/hook"


def attempt(handler: ForwardHandler, *events: StoredEvent) -> list[Exception | None]:
    """Hand `events` to `handler` in turn, then close it: None for each one done, else what
    it raised."""

    async def main() -> list[Exception | None]:
        outcomes: list[Exception | None] = []
        try:
            for one in events:
                try:
                    await handler.handle(one)
                    outcomes.append(None)
                except (RetryLater, PermanentError) as exc:
                    outcomes.append(exc)
        finally:
            await handler.aclose()
        return outcomes

    return asyncio.run(main())


def forward(url: str, ca: Path, *secrets: str, timeout: float = 5.0) -> ForwardHandler:
    """A subscriber named crm posting to `url`, trusting only `ca`."""
    return ForwardHandler("crm", url, secrets or (NEW,), ca_file=ca, timeout=timeout)


def failure(handler: ForwardHandler) -> Exception:
    """What one attempt of the default event raised; fails the test if it succeeded."""
    (outcome,) = attempt(handler, event())
    assert outcome is not None, "the attempt succeeded"
    assert_no_secret(str(outcome))
    return outcome


def assert_no_secret(text: str) -> None:
    """No secret appears in `text`, whole or without its prefix."""
    for secret in SECRETS:
        assert secret.removeprefix("whsec_") not in text


def test_an_event_arrives_once_with_its_body_and_headers_signed(
    service: Service, url: str, tls_ca: DevCertificates
) -> None:
    handler = forward(url, tls_ca.ca)
    assert attempt(handler, event()) == [None]

    (seen,) = service.requests
    assert seen.verified_by == [NEW]
    assert seen.path == "/hook"
    assert seen.body == PAYLOAD
    assert seen.headers["content-type"] == "application/json"
    version = importlib.metadata.version("cc-webhook-receiver")
    assert seen.headers["user-agent"] == f"cc-webhook-receiver/{version}"
    assert seen.headers["webhook-source"] == "enreach"
    assert seen.headers["webhook-event-type"] == "Allocated"
    assert seen.headers["webhook-attempt"] == "1"
    assert seen.headers["webhook-id"].startswith("msg_")
    assert abs(int(seen.headers["webhook-timestamp"]) - time.time()) < 60
    assert seen.headers["accept-encoding"] == "identity"
    assert "authorization" not in seen.headers


def test_the_webhook_id_is_the_same_on_every_attempt_and_every_receiver(
    service: Service, url: str, tls_ca: DevCertificates
) -> None:
    first, again, other = event(attempts=0), event(attempts=1), event("c-2")
    assert attempt(forward(url, tls_ca.ca), first, again) == [None, None]
    assert attempt(forward(url, tls_ca.ca), first, other) == [None, None]

    ids = [seen.headers["webhook-id"] for seen in service.requests]
    assert ids[0] == ids[1] == ids[2] != ids[3]
    assert [seen.headers["webhook-attempt"] for seen in service.requests] == ["1", "2", "1", "1"]
    assert all(seen.verified_by == [NEW] for seen in service.requests)


@pytest.mark.parametrize("accepted", [OLD, NEW], ids=["old", "new"])
def test_during_a_rotation_either_secret_alone_verifies(
    accepted: str, tls_ca: DevCertificates
) -> None:
    service = Service(accepted, OTHER)
    with serving(service, tls_ca) as port:
        handler = forward(f"https://127.0.0.1:{port}/hook", tls_ca.ca, OLD, NEW)
        assert attempt(handler, event()) == [None]
    (seen,) = service.requests
    assert seen.verified_by == [accepted]
    assert len(seen.headers["webhook-signature"].split(" ")) == 2


def test_a_service_that_knows_neither_secret_makes_a_dead_letter(tls_ca: DevCertificates) -> None:
    with serving(Service(OTHER), tls_ca) as port:
        error = failure(forward(f"https://127.0.0.1:{port}/hook", tls_ca.ca, OLD, NEW))
    assert isinstance(error, PermanentError)
    assert str(error) == (f"HTTP 401 from https://127.0.0.1:{port}/hook: signature not verified")


@pytest.mark.parametrize(
    ("status", "headers", "body", "kind", "retry_after"),
    [
        (500, [], b"boom", RetryLater, None),
        (502, [], b"", RetryLater, None),
        (503, [("Retry-After", "7")], b"down for maintenance", RetryLater, 7),
        (429, [("Retry-After", "7")], b"slow down", RetryLater, 7),
        (429, [("Retry-After", "soon")], b"slow down", RetryLater, None),
        (429, [("Retry-After", "-3")], b"slow down", RetryLater, None),
        (408, [], b"", RetryLater, None),
        (400, [], b'{"error":"CallId is missing"}', PermanentError, None),
        (404, [], b"Not Found", PermanentError, None),
        (410, [("Retry-After", "7")], b"Gone", PermanentError, None),
    ],
)
def test_each_answer_retries_or_makes_a_dead_letter(
    service: Service,
    url: str,
    tls_ca: DevCertificates,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    kind: type[Exception],
    retry_after: float | None,
) -> None:
    service.answer = Answer(status, headers, body)
    error = failure(forward(url, tls_ca.ca))
    assert type(error) is kind
    expected = f"HTTP {status} from {url}"
    assert str(error) == (f"{expected}: {body.decode()}" if body else expected)
    if isinstance(error, RetryLater):
        assert error.retry_after == retry_after


@pytest.mark.parametrize(("delay", "expected"), [(120, 120), (-120, None)])
def test_retry_after_may_be_an_http_date(
    service: Service, url: str, tls_ca: DevCertificates, delay: int, expected: float | None
) -> None:
    service.answer = Answer(503, [("Retry-After", formatdate(time.time() + delay, usegmt=True))])
    error = failure(forward(url, tls_ca.ca))
    assert isinstance(error, RetryLater)
    if expected is None:
        assert error.retry_after is None
    else:
        assert error.retry_after == pytest.approx(expected, abs=5)


def test_the_answer_is_quoted_short_and_on_one_line(
    service: Service, url: str, tls_ca: DevCertificates
) -> None:
    service.answer = Answer(422, body=b"bad\x1b[31m\nfield\xff" + b"x" * 1000)
    error = failure(forward(url, tls_ca.ca))
    assert isinstance(error, PermanentError)
    reason = str(error).removeprefix(f"HTTP 422 from {url}: ")
    assert reason.startswith("bad\\x1b[31m\\nfield\ufffdxxx")
    assert reason.endswith("...")
    assert len(reason) < 230


def test_a_compressed_error_answer_is_not_quoted(
    service: Service, url: str, tls_ca: DevCertificates
) -> None:
    """The subscriber asks for no content coding; a service that sends one anyway is not
    decompressed (a small body could expand without bound)."""
    service.answer = Answer(400, [("Content-Encoding", "gzip")], gzip.compress(b"E" * MiB))
    error = failure(forward(url, tls_ca.ca))
    assert isinstance(error, PermanentError)
    assert str(error) == f"HTTP 400 from {url}: (gzip-encoded body not shown)"


@pytest.mark.parametrize("stall", [False, True], ids=["sent-whole", "stalled-after-64KiB"])
def test_a_huge_error_answer_is_not_read_whole(
    service: Service, url: str, tls_ca: DevCertificates, stall: bool
) -> None:
    """A stalled body would time the attempt out (a retry, not a dead letter) if the handler
    waited for all of it."""
    service.answer = Answer(400, body=b"E" * MiB, stall=stall)
    error = failure(forward(url, tls_ca.ca, timeout=2.0))
    assert isinstance(error, PermanentError)
    assert str(error) == f"HTTP 400 from {url}: {'E' * 200}..."


def test_a_service_that_never_answers_is_retried_after_the_timeout(
    service: Service, url: str, tls_ca: DevCertificates
) -> None:
    service.answer = Answer(hang=True)
    started = time.monotonic()
    error = failure(forward(url, tls_ca.ca, timeout=0.5))
    assert time.monotonic() - started < 5
    assert isinstance(error, RetryLater)
    assert str(error) == f"timed out after 0.5s posting to {url}"
    assert error.retry_after is None


@pytest.mark.parametrize("trust", ["other-ca", "system"])
def test_a_certificate_the_subscriber_does_not_trust_is_retried(
    tls_ca: DevCertificates, tmp_path: Path, trust: str
) -> None:
    service = Service(NEW)
    foreign = write_certificates(tmp_path / "foreign")
    with serving(service, foreign) as port:
        url = f"https://127.0.0.1:{port}/hook"
        ca = tls_ca.ca if trust == "other-ca" else None
        error = failure(ForwardHandler("crm", url, [NEW], ca_file=ca))
    assert isinstance(error, RetryLater)
    assert str(error).startswith(f"TLS error with {url}: certificate verify failed: ")
    assert service.requests == []


def test_a_closed_port_is_retried(tls_ca: DevCertificates) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"https://127.0.0.1:{port}/hook"
    error = failure(forward(url, tls_ca.ca))
    assert isinstance(error, RetryLater)
    assert str(error).startswith(f"cannot connect to {url}: ")


def test_a_redirect_is_not_followed(service: Service, url: str, tls_ca: DevCertificates) -> None:
    elsewhere = url.replace("/hook", "/elsewhere")
    service.answer = Answer(302, [("Location", elsewhere)])
    error = failure(forward(url, tls_ca.ca))
    assert isinstance(error, PermanentError)
    assert str(error) == (
        f"HTTP 302 from {url}: redirect to {elsewhere} not followed; set forward to the final URL"
    )
    assert [seen.path for seen in service.requests] == ["/hook"]


def test_deliveries_share_one_kept_alive_connection(
    service: Service, url: str, tls_ca: DevCertificates
) -> None:
    service.answer = Answer(200, body=b'{"ok":true}')
    assert attempt(forward(url, tls_ca.ca), event("a"), event("b"), event("c")) == [None] * 3
    assert len({seen.client_port for seen in service.requests}) == 1


def test_plain_http_reaches_a_loopback_service() -> None:
    service = Service(NEW)
    with serving(service, None) as port:
        handler = ForwardHandler("local", f"http://127.0.0.1:{port}/hook", [NEW])
        assert attempt(handler, event()) == [None]
    assert [seen.verified_by for seen in service.requests] == [[NEW]]


def test_an_event_type_cannot_break_or_add_headers(
    service: Service, url: str, tls_ca: DevCertificates
) -> None:
    assert attempt(forward(url, tls_ca.ca), event(event_type="Ünï\r\nX-Injected: 1")) == [None]
    (seen,) = service.requests
    assert seen.headers["webhook-event-type"] == "%C3%9Cn%C3%AF%0D%0AX-Injected:%201"
    assert "x-injected" not in seen.headers


def test_the_repr_names_the_subscriber_and_url_only() -> None:
    handler = ForwardHandler("crm", "https://crm.example/hook?token=t0p", [OLD, NEW])
    assert repr(handler) == "ForwardHandler(name='crm', url='https://crm.example/hook')"
    assert_no_secret(repr(handler))


@pytest.mark.parametrize(
    "url",
    [
        "https://crm.example/hook",
        "https://crm.example:8443",
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "HTTP://LocalHost/hook",
        "http://[::1]:8080/hook",
    ],
)
def test_https_anywhere_and_http_to_loopback_are_accepted(url: str) -> None:
    assert ForwardHandler("crm", url, [NEW]).url == url


@pytest.mark.parametrize(
    ("url", "secrets", "reason", "hidden"),
    [
        ("ftp://crm.example/hook", [NEW], "must start with https://", None),
        ("http://crm.example/hook", [NEW], "http:// only to a loopback host", None),
        ("http://10.0.0.1/hook", [NEW], "http:// only to a loopback host", None),
        ("crm.example/hook", [NEW], "got no scheme", None),
        ("https://crm:hunter2@crm.example/hook", [NEW], "user or password", "hunter2"),
        ("https:///hook", [NEW], "has no host", None),
        ("https://crm.example:http/hook", [NEW], "cannot be parsed", None),
        ("https://crm.example/hook", [], "no secret", None),
        ("https://crm.example/hook", "whsec_c2VjcmV0", "must be a list", "c2VjcmV0"),
        ("https://crm.example/hook", [NEW, "s3cr3t-plain"], "secret 2 of 2 is not a Sta", "s3cr3t"),
        ("https://crm.example/hook", ["whsec_n0t*base64!"], "not valid base64", "n0t*base64"),
        ("https://crm.example/hook", ["whsec_"], "empty", None),
    ],
)
def test_a_configuration_that_cannot_work_is_refused_in_one_line(
    url: str, secrets: list[str], reason: str, hidden: str | None
) -> None:
    with pytest.raises(ConfigError) as refused:
        ForwardHandler("crm", url, secrets)
    message = str(refused.value)
    assert message.startswith("subscriber 'crm': ")
    assert reason in message
    assert "\n" not in message
    if hidden is not None:
        assert hidden not in message
        assert hidden not in repr(refused.value.__cause__)


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"ca_file": Path("/nonexistent/ca.pem")}, "cannot load CA file"),
        ({"timeout": 0}, "timeout must be more than 0"),
        ({"concurrency": 0}, "concurrency must be 1 or more"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], reason: str) -> None:
    with pytest.raises(ConfigError, match=f"^subscriber 'crm': {reason}"):
        ForwardHandler("crm", "https://crm.example/hook", [NEW], **options)  # type: ignore[arg-type]
