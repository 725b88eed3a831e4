"""One typed configuration, read from defaults, a TOML file, `RECEIVER_*` variables and options.

Later sources win: defaults < config file < environment < command line. Secrets are never
values in any of these; they are named by environment variable or file.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from receiver.access import Network, parse_client_subjects, parse_network, read_client_ca
from receiver.alerts import ON_DEAD_KEYS, OnDead, parse_on_dead
from receiver.auth import BasicCredentials, SecretSet
from receiver.exceptions import ConfigError
from receiver.inbox.base import InboxOptions
from receiver.inbox.sealing import Keyring, keyring_from_env
from receiver.kinds import SOURCE_KINDS, parse_options

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "ENV_PREFIX",
    "EndpointConfig",
    "Settings",
    "SubscriberConfig",
    "check_secrets",
    "load_settings",
    "read_secret_file",
]

ENV_PREFIX = "RECEIVER_"
DEFAULT_CONFIG_FILE = "receiver.toml"
_SECRET_WORDS = ("secret", "token", "password", "api_key", "apikey")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


_SUBSCRIBER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SUBSCRIBER_KEYS = frozenset(
    ("name", "events", "handler", "forward", "secret_env", "secret_file", "ca_file",
     "concurrency", "timeout", *ON_DEAD_KEYS)
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SubscriberConfig:
    """One consumer of an endpoint's events: a Python handler, or an HTTP service the
    receiver forwards them to. Each has its own deliveries, retries and dead letters."""

    name: str = "default"
    events: tuple[str, ...] = ()
    """Event type names or globs (`Queue*`) it wants; empty: every event."""
    handler: str | None = None
    """`module:object` (None with no `forward`: the process's default handler)."""
    forward: str | None = None
    """The URL events are POSTed to, signed (Standard Webhooks)."""
    secrets: tuple[str, ...] = field(default=(), repr=False, compare=False)
    """The forwarding signing secrets (`whsec_...`), newest first; every one signs."""
    missing_secrets: tuple[str, ...] = ()
    ca_file: Path | None = None
    """The CA file a forwarding subscriber verifies its service's certificate with."""
    concurrency: int | None = None
    """Concurrent deliveries (None: `workers`)."""
    timeout: float | None = None
    """Seconds one delivery may take (None: `handler_timeout`)."""
    on_dead: OnDead | None = None
    """Who hears of its dead letters (`receiver.alerts`), if anyone."""

    def wants(self, event_type: str) -> bool:
        """Whether `event_type` passes the `events` filter."""
        return not self.events or any(fnmatch.fnmatchcase(event_type, p) for p in self.events)


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """One webhook endpoint: where it listens, which source decodes it, who may call it."""

    name: str
    kind: str
    path: str
    secrets: SecretSet | None = None
    basic: BasicCredentials | None = None
    handler: str | None = None
    max_body: int = 1024 * 1024
    options: Mapping[str, Any] = field(default_factory=dict)
    missing_secrets: tuple[str, ...] = ()
    """Why a named credential could not be used (`S is not set`); `check_secrets` refuses them."""
    secret_texts: tuple[str, ...] = field(default=(), repr=False, compare=False)
    """Every accepted secret as text (each token; each Basic `user:password` and its password),
    for the log filter to mask; `secrets` and `basic` keep only digests."""
    allow_networks: tuple[Network, ...] = ()
    """The client networks that may call the endpoint (403 for others); empty: any network."""
    client_ca: Path | None = None
    """The CA file whose certificates issue the client certificates the endpoint requires."""
    client_ca_pem: bytes = field(default=b"", repr=False, compare=False)
    """`client_ca` as read at start."""
    client_subjects: tuple[str, ...] = ()
    """Subjects (`CN=...`) or DNS names one of which a client certificate must have."""
    subscribers: tuple[SubscriberConfig, ...] = ()
    """Who gets the endpoint's events; empty: one subscriber `default` with `handler`."""

    @property
    def subscriber_configs(self) -> tuple[SubscriberConfig, ...]:
        """`subscribers`, or the one `default` subscriber when none is configured."""
        return self.subscribers or (SubscriberConfig(handler=self.handler),)

    @property
    def event_types(self) -> tuple[str, ...]:
        """The event type the endpoint's config names (web services and Buzzeasy), else none."""
        default = "CallDetails" if self.kind == "engage_web_services" else None
        event_type = self.options.get("event_type", default)
        return (str(event_type),) if event_type else ()


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything `receiver serve` needs; each field is also a CLI option and a variable."""

    host: str = "0.0.0.0"  # noqa: S104 - a webhook receiver exists to be reached from outside
    port: int = 443
    fd: int | None = None
    cert: Path | None = None
    key: Path | None = None
    certs_dir: Path = Path("certs")
    engine: str = "uvicorn"
    inbox: str = "inbox.db"
    handler: str | None = None
    dispatch: bool = True
    workers: int = 16
    max_attempts: int = 8
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    handler_timeout: float = 30.0
    lease: float = 15.0
    retention_days: float = 7.0
    payload_retention_days: float = 3.0
    dead_retention_days: float = 30.0
    migrate: bool = True
    shutdown_timeout: float = 10.0
    request_timeout: float = 10.0
    keep_alive_timeout: float = 15.0
    tls_handshake_timeout: float = 5.0
    max_connections: int | None = None  # None: sized from the open-files limit
    cert_watch_interval: float = 5.0
    max_body: int = 1024 * 1024
    log_level: str = "info"
    log_format: str = "auto"
    """json, console, or auto: console on a terminal, else JSON lines."""
    log_phone_numbers: bool = False
    admin: bool = True
    """Whether the admin listener (health, readiness, metrics, console) runs."""
    admin_host: str = "127.0.0.1"
    admin_port: int | None = None
    """None: 9443 for `receiver serve`, 9444 for `receiver worker`; 0: any free port."""
    ready_cert_days: float = 7.0
    """`/readyz` fails once the certificate expires within this many days."""
    public_healthz: bool = False
    """Also answer `/healthz` on the webhook port (for load balancers that cannot reach the
    admin port)."""
    admin_tokens: tuple[str, ...] = field(default=(), repr=False, compare=False)
    """The admin listener's bearer tokens (RECEIVER_ADMIN_TOKEN or _FILE; never an option)."""
    inbox_keyring: Keyring | None = field(default=None, repr=False, compare=False)
    """The keys payloads are encrypted with at rest (RECEIVER_INBOX_KEYS[_FILE]), or None."""
    trusted_proxies: tuple[Network, ...] = ()
    client_address_header: str | None = None
    endpoints: tuple[EndpointConfig, ...] = ()

    @property
    def cert_file(self) -> Path:
        """The certificate chain in use (the dev certificate unless one is given)."""
        return self.cert or self.certs_dir / "server.pem"

    @property
    def key_file(self) -> Path:
        """The private key in use (the dev key unless one is given)."""
        return self.key or self.certs_dir / "server-key.pem"

    @property
    def client_cas(self) -> tuple[bytes, ...]:
        """Every endpoint's `client_ca` (PEM), for the TLS context to verify clients against."""
        return tuple(dict.fromkeys(e.client_ca_pem for e in self.endpoints if e.client_ca_pem))

    @property
    def inbox_options(self) -> InboxOptions:
        """What the inbox is opened with: its retentions, lease and migration choice."""
        return InboxOptions(
            retention_days=self.retention_days,
            payload_retention_days=self.payload_retention_days,
            dead_retention_days=self.dead_retention_days,
            keyring=self.inbox_keyring,
            lease=self.lease,
            migrate=self.migrate,
        )


_SCALARS = {
    f.name: f
    for f in fields(Settings)
    if f.name not in ("endpoints", "admin_tokens", "inbox_keyring")
}

ADMIN_TOKEN_ENV = ENV_PREFIX + "ADMIN_TOKEN"
"""The variable holding the admin listener's bearer token (`..._FILE`: a file of them)."""


def _coerce(name: str, value: Any, where: str) -> Any:
    kind = str(_SCALARS[name].type)
    if name == "trusted_proxies":
        return _networks(value, f"{where}: {name}")
    try:
        if "bool" in kind:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if "int" in kind:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if "float" in kind:
            return float(value)
        if "Path" in kind:
            return Path(str(value)).expanduser()
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {name} = {value!r} is not a valid {kind}") from None


def read_secret_file(path: Path) -> list[str]:
    """The secrets in `path`, one per line, trimmed; blank lines and a leading byte order mark
    are ignored."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"cannot read secret file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read secret file {path}: it is not UTF-8 text") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def _as_list(value: Any, key: str, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"{where}: {key} must be a string or a list of strings")


def _networks(values: Any, where: str) -> tuple[Network, ...]:
    """Networks in CIDR notation (a list, or one string of them separated by commas, as in a
    variable or option), each checked; ConfigError naming the first bad one."""
    if isinstance(values, str):
        values = values.split(",")
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{where} must be a list of networks (CIDR, e.g. '192.0.2.0/24')")
    networks: list[Network] = []
    for text in values:
        try:
            networks.append(parse_network(text))
        except ValueError as exc:
            raise ConfigError(
                f"{where}: {text!r} is not a network in CIDR notation ({exc})"
            ) from None
    return tuple(networks)


def _client_ca(value: Any, where: str) -> tuple[Path, bytes]:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: client_ca must be the path of a PEM file of CA certificates")
    path = Path(value).expanduser()
    try:
        return path, read_client_ca(path)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read client_ca {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"{where}: client_ca {path} holds no PEM certificate") from exc


def _unset(name: str, value: str | None) -> str:
    state = "not set" if value is None else "only whitespace" if value else "empty"
    return f"{name} is {state}"


def _secrets_from(
    env_names: list[str], files: list[str], env: Mapping[str, str]
) -> tuple[SecretSet | None, list[str], tuple[str, ...]]:
    """The secrets the variables and files hold, or None and why none could be read; and
    the secrets as text.

    One is enough: the others may be unset (a retired secret of a rotation).
    """
    values: list[str] = []
    problems: list[str] = []
    for name in env_names:
        value = env.get(name)
        if value and value.strip():  # trimmed like a file's lines
            values.append(value.strip())
        else:
            problems.append(_unset(name, value))
    for file in files:
        try:
            found = read_secret_file(Path(file).expanduser())
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        values.extend(found)
        if not found:
            problems.append(f"secret file {file} is empty")
    if values:
        return SecretSet(values), [], tuple(values)
    return None, problems, ()


def _basic_users(
    names: list[str], env: Mapping[str, str]
) -> tuple[BasicCredentials | None, list[str], tuple[str, ...]]:
    """The users the variables hold as `user:password`, and every variable that holds none;
    and each `user:password` and password as text."""
    users: dict[str, str] = {}
    problems: list[str] = []
    for name in names:
        pair = env.get(name)
        user, sep, password = (pair or "").strip().partition(":")
        if not pair or not pair.strip():
            problems.append(_unset(name, pair))
        elif not sep or not user or not password:
            problems.append(f"{name} must hold 'user:password'")
        else:
            users[user] = password
    texts = tuple(
        text for user, password in users.items() for text in (f"{user}:{password}", password)
    )
    return (BasicCredentials(users) if users else None), problems, texts


def _endpoint_from_table(
    table: Mapping[str, Any], index: int, env: Mapping[str, str], defaults: Settings
) -> EndpointConfig:
    where = f"endpoints[{index}]"
    table = dict(table)
    for key in table:
        if key.lower() in _SECRET_WORDS or key.lower() in ("secrets", "keys"):
            raise ConfigError(
                f"{where}: '{key}' would put a secret in the config file; "
                "use secret_env (variable names) or secret_file (file paths)"
            )
    kind = str(table.pop("kind", "enreach"))
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"{where}: unknown kind {kind!r}; known kinds: {', '.join(SOURCE_KINDS)}")
    name = str(table.pop("name", kind))
    path = str(table.pop("path", f"/{name}"))
    if not path.startswith("/"):
        raise ConfigError(f"{where}: path {path!r} must start with '/'")
    secrets, missing, tokens = _secrets_from(
        _as_list(table.pop("secret_env", None), "secret_env", where),
        _as_list(table.pop("secret_file", None), "secret_file", where),
        env,
    )
    basic_users = table.pop("basic_users_env", None)
    if basic_users is not None and kind in ("enreach", "buzzeasy"):
        raise ConfigError(f"{where}: a {kind} endpoint takes no basic_users_env")
    basic, wrong_users, pairs = _basic_users(_as_list(basic_users, "basic_users_env", where), env)
    handler = table.pop("handler", None)
    max_body = table.pop("max_body", defaults.max_body)
    if not isinstance(max_body, int) or isinstance(max_body, bool) or max_body <= 0:
        raise ConfigError(f"{where}: max_body must be a positive integer")
    named = f"endpoint {name!r}"
    allow = table.pop("allow_networks", None)
    allow_networks = () if allow is None else _networks(allow, f"{named}: allow_networks")
    if allow is not None and not allow_networks:
        raise ConfigError(
            f"{named}: allow_networks is empty: it would refuse every client; leave it out to "
            "allow any"
        )
    client_ca, client_ca_pem = None, b""
    if "client_ca" in table:
        client_ca, client_ca_pem = _client_ca(table.pop("client_ca"), named)
    client_subjects = tuple(_as_list(table.pop("client_subjects", None), "client_subjects", named))
    if client_subjects and client_ca is None:
        raise ConfigError(f"{named}: client_subjects needs client_ca")
    for subject in client_subjects:
        try:
            parse_client_subjects([subject])
        except ValueError as exc:
            raise ConfigError(f"{named}: client_subjects: {exc}") from None
    subscribers = _subscribers(table.pop("subscribers", None), named, env)
    if subscribers and (handler or defaults.handler):
        raise ConfigError(
            f"{named}: give either [[endpoints.subscribers]] or a handler "
            f"({'handler = ' + repr(handler) if handler else '--handler'}), not both"
        )
    options = parse_options(kind, table, where)
    return EndpointConfig(
        name=name,
        kind=kind,
        path=path,
        secrets=secrets,
        basic=basic,
        handler=str(handler) if handler else None,
        max_body=max_body,
        options=options,
        missing_secrets=(*missing, *wrong_users),
        secret_texts=(*tokens, *pairs),
        allow_networks=allow_networks,
        client_ca=client_ca,
        client_ca_pem=client_ca_pem,
        client_subjects=client_subjects,
        subscribers=subscribers,
    )


def _subscribers(tables: Any, named: str, env: Mapping[str, str]) -> tuple[SubscriberConfig, ...]:
    """The `[[endpoints.subscribers]]` of an endpoint, each checked (one-line errors)."""
    if tables is None:
        return ()
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{named}: subscribers must be [[endpoints.subscribers]] tables")
    if not tables:
        raise ConfigError(f"{named}: [[endpoints.subscribers]] lists no subscriber")
    found = [_subscriber(t, f"{named}: subscribers[{i}]", env) for i, t in enumerate(tables)]
    names = [s.name for s in found]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"{named}: two subscribers are named {name!r}")
    return tuple(found)


def _subscriber(table: Mapping[str, Any], where: str, env: Mapping[str, str]) -> SubscriberConfig:
    unknown = sorted(set(table) - _SUBSCRIBER_KEYS)
    for key in unknown:
        if key.lower() in _SECRET_WORDS or key.lower() in ("secrets", "keys"):
            raise ConfigError(
                f"{where}: '{key}' would put a secret in the config file; "
                "use secret_env (variable names) or secret_file (file paths)"
            )
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_SUBSCRIBER_KEYS))}"
        )
    name = table.get("name")
    if not isinstance(name, str) or not _SUBSCRIBER_NAME.fullmatch(name):
        raise ConfigError(
            f"{where}: name must be 1 to 64 letters, digits, '.', '_' or '-' (got {name!r})"
        )
    where = f"{where.rsplit(':', 1)[0]}: subscriber {name!r}"
    events = tuple(_as_list(table.get("events"), "events", where))
    if "events" in table and not events:
        raise ConfigError(f"{where}: events is empty: it would get nothing; leave it out for all")
    handler, forward = table.get("handler"), table.get("forward")
    if (handler is None) == (forward is None):
        raise ConfigError(
            f"{where}: give either handler = 'module:object' or forward = 'https://...'"
        )
    for key in ("handler", "forward"):
        if key in table and (not isinstance(table[key], str) or not table[key].strip()):
            raise ConfigError(f"{where}: {key} must be a non-empty string")
    secrets: tuple[str, ...] = ()
    missing: list[str] = []
    ca_file = None
    if forward is None:
        for key in ("secret_env", "secret_file", "ca_file"):
            if key in table:
                raise ConfigError(f"{where}: {key} is for a forwarding subscriber (forward = ...)")
    else:
        _, missing, secrets = _secrets_from(
            _as_list(table.get("secret_env"), "secret_env", where),
            _as_list(table.get("secret_file"), "secret_file", where),
            env,
        )
        if not table.get("secret_env") and not table.get("secret_file"):
            raise ConfigError(
                f"{where}: a forwarding subscriber signs what it sends: give secret_env or "
                "secret_file (a Standard Webhooks secret, whsec_...)"
            )
        if "ca_file" in table:
            if not isinstance(table["ca_file"], str) or not table["ca_file"].strip():
                raise ConfigError(f"{where}: ca_file must be the path of a PEM file")
            ca_file = Path(table["ca_file"]).expanduser()
    concurrency = table.get("concurrency")
    if concurrency is not None and (
        not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1
    ):
        raise ConfigError(f"{where}: concurrency must be a positive integer")
    timeout = table.get("timeout")
    if timeout is not None and (
        not isinstance(timeout, int | float)
        or isinstance(timeout, bool)
        or not 0 < timeout < math.inf
    ):
        raise ConfigError(f"{where}: timeout must be a positive number of seconds")
    on_dead = parse_on_dead(table, where)
    return SubscriberConfig(
        name=name,
        events=events,
        handler=handler.strip() if handler else None,
        forward=forward.strip() if forward else None,
        secrets=secrets,
        missing_secrets=tuple(missing),
        ca_file=ca_file,
        concurrency=concurrency,
        timeout=float(timeout) if timeout is not None else None,
        on_dead=on_dead,
    )


def _default_enreach(env: Mapping[str, str], settings: Settings) -> EndpointConfig:
    env_names = ["RECEIVER_ENREACH_SECRET"] if env.get("RECEIVER_ENREACH_SECRET") else []
    files = [env["RECEIVER_ENREACH_SECRET_FILE"]] if env.get("RECEIVER_ENREACH_SECRET_FILE") else []
    secrets, missing, tokens = _secrets_from(env_names, files, env)
    return EndpointConfig(
        name="enreach",
        kind="enreach",
        path=env.get("RECEIVER_ENREACH_PATH", "/enreach"),
        secrets=secrets,
        max_body=settings.max_body,
        missing_secrets=tuple(missing),
        secret_texts=tokens,
    )


def _validate(settings: Settings) -> None:
    if settings.engine not in ("uvicorn", "hypercorn"):
        raise ConfigError(f"unknown engine {settings.engine!r}; choose uvicorn or hypercorn")
    if not 0 <= settings.port <= 65535:
        raise ConfigError(f"port {settings.port} is out of range")
    if settings.workers < 0:
        raise ConfigError("workers must be 0 (no dispatch) or more")
    for name in ("request_timeout", "handler_timeout", "keep_alive_timeout", "lease"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{name} must be positive")
    if not 0 < settings.tls_handshake_timeout < math.inf:
        raise ConfigError("tls_handshake_timeout must be a positive number of seconds")
    if settings.max_connections is not None and settings.max_connections < 1:
        raise ConfigError("max_connections must be at least 1")
    interval = settings.cert_watch_interval
    if not 0 <= interval < math.inf:  # also refuses nan
        raise ConfigError(
            "cert_watch_interval must be 0 (reload certificates only on SIGHUP) or a number "
            f"of seconds between checks of the certificate files, not {interval}"
        )
    if settings.admin_port is not None and not 0 <= settings.admin_port <= 65535:
        raise ConfigError(f"admin_port {settings.admin_port} is out of range")
    if settings.log_format not in ("auto", "json", "console"):
        raise ConfigError(f"log format {settings.log_format!r}: choose json, console or auto")
    if not 0 <= settings.ready_cert_days < math.inf:
        raise ConfigError("ready_cert_days must be 0 or a positive number of days")
    levels = ("critical", "error", "warning", "info", "debug")
    if settings.log_level.lower() not in levels:
        raise ConfigError(f"log level {settings.log_level!r}: choose one of {', '.join(levels)}")
    if settings.max_attempts < 1:
        raise ConfigError("max_attempts must be at least 1")
    if settings.max_body < 1:
        raise ConfigError("max_body must be a positive number of bytes")
    for name in ("backoff_base", "backoff_max", "shutdown_timeout"):
        if not 0 <= getattr(settings, name) < math.inf:  # also refuses nan
            raise ConfigError(f"{name} must be 0 or a positive number of seconds")
    for name in ("retention_days", "payload_retention_days", "dead_retention_days"):
        if not 0 < getattr(settings, name) < math.inf:
            raise ConfigError(f"{name} must be a positive number of days")
    if settings.payload_retention_days > settings.retention_days:
        raise ConfigError(
            f"payload_retention_days ({settings.payload_retention_days:g}) is longer than "
            f"retention_days ({settings.retention_days:g}): a payload cannot outlive its "
            "event's dedup key"
        )
    paths = [e.path for e in settings.endpoints]
    if len(set(paths)) != len(paths):
        raise ConfigError("two endpoints share a path")
    names = [e.name for e in settings.endpoints]
    if len(set(names)) != len(names):
        raise ConfigError("two endpoints share a name")
    header = settings.client_address_header
    if header is not None:
        if not _HEADER_NAME.fullmatch(header):
            raise ConfigError(f"client_address_header {header!r} is not a header name")
        if header.lower() == "forwarded":
            raise ConfigError(
                "client_address_header 'Forwarded' (RFC 7239) is not supported: name a header "
                "that lists addresses, such as X-Forwarded-For"
            )
    if bool(header) != bool(settings.trusted_proxies):
        given, needed = (
            ("client_address_header", "trusted_proxies")
            if header
            else ("trusted_proxies", "client_address_header")
        )
        raise ConfigError(
            f"{given} needs {needed}: the client's address comes from a proxy's header only "
            "when both are set"
        )


def check_secrets(settings: Settings, *, serving: bool = True) -> None:
    """Refuse to serve an endpoint anyone could call, or to forward unsigned: never fail open.

    Every endpoint is checked before refusing, so one line names every variable or file
    still to be set, with the endpoints (or `endpoint/subscriber`s) that need it. A process
    that does not serve (`receiver worker`) needs only the subscribers' secrets, and one that
    does not dispatch (`--no-dispatch`) only the endpoints'.
    """
    unconfigured: list[str] = []
    missing: dict[str, list[str]] = {}
    dispatching = settings.dispatch and settings.workers > 0
    for endpoint in settings.endpoints:
        if serving:
            for problem in endpoint.missing_secrets:
                missing.setdefault(problem, []).append(endpoint.name)
        for subscriber in endpoint.subscribers if dispatching else ():
            if not subscriber.secrets:
                for problem in subscriber.missing_secrets:
                    missing.setdefault(problem, []).append(f"{endpoint.name}/{subscriber.name}")
        if (
            serving
            and endpoint.secrets is None
            and endpoint.basic is None
            and not endpoint.missing_secrets
        ):
            hint = (
                "set RECEIVER_ENREACH_SECRET or RECEIVER_ENREACH_SECRET_FILE"
                if endpoint.name == "enreach"
                else "give it secret_env or secret_file in the config file"
            )
            unconfigured.append(f"endpoint {endpoint.name!r} has no secret: {hint}")
    if missing:
        unconfigured.append(
            "missing secrets: "
            + "; ".join(
                f"{problem} (endpoint{'s' if len(names) > 1 else ''} {', '.join(names)})"
                for problem, names in missing.items()
            )
        )
    if unconfigured:
        raise ConfigError("; ".join(unconfigured))


def load_settings(
    *,
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build `Settings` from a TOML file, `RECEIVER_*` variables and explicit overrides."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    file_endpoints: list[Any] | None = None
    explicit = config_file or (
        Path(env[ENV_PREFIX + "CONFIG"]) if env.get(ENV_PREFIX + "CONFIG") else None
    )
    path = explicit or Path(DEFAULT_CONFIG_FILE)
    if explicit is not None or path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except (OSError, ValueError) as exc:  # TOMLDecodeError and UnicodeDecodeError
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        for section in ("server", "dispatch", "inbox", "logging", "admin"):
            table = data.pop(section, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: [{section}] must be a table")
            for key, value in table.items():
                if section == "admin" and "admin_" + key in _SCALARS:
                    key = "admin_" + key  # [admin] port = ... is admin_port
                if key.lower() in _SECRET_WORDS:
                    raise ConfigError(
                        f"{path}: [{section}] {key} would put a secret in the config file; "
                        f"set {ADMIN_TOKEN_ENV} or {ADMIN_TOKEN_ENV}_FILE instead"
                    )
                if key not in _SCALARS:
                    raise ConfigError(f"{path}: unknown setting [{section}] {key}")
                values[key] = _coerce(key, value, str(path))
        file_endpoints = data.pop("endpoints", None)
        if data:
            raise ConfigError(f"{path}: unknown section(s): {', '.join(sorted(data))}")
    for name in _SCALARS:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = _coerce(name, raw, f"${ENV_PREFIX}{name.upper()}")
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _coerce(name, value, f"--{name.replace('_', '-')}")
    settings = Settings(**values)
    if file_endpoints is None:
        endpoints: tuple[EndpointConfig, ...] = (_default_enreach(env, settings),)
    else:
        if not isinstance(file_endpoints, list) or not file_endpoints:
            raise ConfigError(f"{path}: [[endpoints]] must list at least one endpoint")
        for index, table in enumerate(file_endpoints):
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: endpoints[{index}] must be a table")
        endpoints = tuple(
            _endpoint_from_table(t, i, env, settings) for i, t in enumerate(file_endpoints)
        )
    settings = replace(
        settings,
        endpoints=endpoints,
        admin_tokens=_admin_tokens(env),
        inbox_keyring=keyring_from_env(env),
    )
    _validate(settings)
    return settings


def _admin_tokens(env: Mapping[str, str]) -> tuple[str, ...]:
    """The admin bearer tokens from RECEIVER_ADMIN_TOKEN and the file RECEIVER_ADMIN_TOKEN_FILE
    names (one per line: a rotation accepts both)."""
    tokens: list[str] = []
    value = env.get(ADMIN_TOKEN_ENV, "").strip()
    if value:
        tokens.append(value)
    file = env.get(ADMIN_TOKEN_ENV + "_FILE", "").strip()
    if file:
        found = read_secret_file(Path(file).expanduser())
        if not found:
            raise ConfigError(f"{ADMIN_TOKEN_ENV}_FILE: {file} is empty")
        tokens.extend(found)
    for token in tokens:
        if len(token) < 16:
            raise ConfigError(
                "the admin token must be at least 16 characters (e.g. `openssl rand -hex 32`)"
            )
    return tuple(dict.fromkeys(tokens))
