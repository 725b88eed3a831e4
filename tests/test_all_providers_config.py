"""Config files for the new endpoint kinds: options, defaults and one-line refusals."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from receiver.auth import BasicCredentials, HeaderAuth, SecretSet
from receiver.config import check_secrets, load_settings
from receiver.exceptions import ConfigError, VerificationError
from receiver.sources import build_source
from receiver.sources.buzzeasy import BuzzeasySource
from receiver.sources.engage_web_services import EngageWebServicesSource
from receiver.sources.engage_wfm import EngageWfmSource

ENV = {"S": "secret-value", "U": "user:password"}


def settings_of(tmp_path: Path, table: str) -> list[object]:
    config = tmp_path / "receiver.toml"
    config.write_text("[[endpoints]]\n" + table)
    return list(load_settings(config_file=config, env=ENV).endpoints)


def test_defaults_of_each_kind(tmp_path: Path) -> None:
    config = tmp_path / "receiver.toml"
    config.write_text(
        '[[endpoints]]\nname = "w"\nkind = "engage_wfm"\nsecret_env = "S"\n'
        '[[endpoints]]\nname = "s"\nkind = "engage_web_services"\nbasic_users_env = "U"\n'
        '[[endpoints]]\nname = "b"\nkind = "buzzeasy"\nsecret_env = "S"\n'
        'event_type = "abandoned conversation"\n'
    )
    wfm, ws, buzzeasy = load_settings(config_file=config, env=ENV).endpoints
    assert wfm.path == "/w"
    assert dict(wfm.options) == {
        "auth_header": "Authorization",
        "family": "both",
        "time_zone": "UTC",
    }
    assert dict(ws.options) == {
        "auth_header": "Authorization",
        "methods": ("POST",),
        "body": "json",
        "dedup_fields": (),
        "fields": {},
        "event_type": "CallDetails",
        "time_zone": "UTC",
    }
    assert dict(buzzeasy.options) == {"event_type": "AbandonedConversation"}
    assert isinstance(build_source(wfm), EngageWfmSource)
    assert isinstance(build_source(ws), EngageWebServicesSource)
    source = build_source(buzzeasy)
    assert isinstance(source, BuzzeasySource)
    assert source.event_type == "AbandonedConversation"


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        ('kind = "engage_wfm"\nsecret_env = "S"\nfamily = "agents"\n', "family must be one of"),
        (
            'kind = "engage_wfm"\nsecret_env = "S"\ntime_zone = "Mars/Olympus"\n',
            "unknown time zone",
        ),
        ('kind = "engage_wfm"\nsecret_env = "S"\nbody = "json"\n', "unknown key 'body' for kind"),
        ('kind = "engage_wfm"\nsecret_env = "S"\nauth_header = "Bad Header"\n', "not a header"),
        ('kind = "engage_web_services"\nsecret_env = "S"\nmethods = ["POST", "TRACE"]\n', "TRACE"),
        ('kind = "engage_web_services"\nsecret_env = "S"\nmethods = []\n', "non-empty list"),
        ('kind = "engage_web_services"\nsecret_env = "S"\nbody = "yaml"\n', "body must be one of"),
        (
            'kind = "engage_web_services"\nsecret_env = "S"\n[endpoints.fields]\nx = "caller"\n',
            "'caller' is not a typed field",
        ),
        ('kind = "engage_web_services"\nsecret_env = "S"\ndedup_fields = [1]\n', "dedup_fields"),
        ('kind = "buzzeasy"\nsecret_env = "S"\n', "a buzzeasy endpoint needs event_type"),
        ('kind = "buzzeasy"\nsecret_env = "S"\nevent_type = ""\n', "event_type must be"),
        (
            'kind = "buzzeasy"\nsecret_env = "S"\nevent_type = "X"\nbasic_users_env = "U"\n',
            "takes no basic_users_env",
        ),
        ('kind = "buzzeasy"\nevent_type = "X"\napi_key = "k"\n', "would put a secret"),
        ('kind = "enreach"\nsecret_env = "S"\nfamily = "agent"\n', "unknown key 'family'"),
    ],
)
def test_bad_options_are_refused_in_one_line(tmp_path: Path, table: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as raised:
        settings_of(tmp_path, table)
    assert "\n" not in str(raised.value)
    assert str(raised.value).startswith("endpoints[0]")


def test_an_engage_endpoint_without_credentials_is_refused_at_start(tmp_path: Path) -> None:
    config = tmp_path / "receiver.toml"
    config.write_text('[[endpoints]]\nname = "w"\nkind = "engage_wfm"\n')
    settings = load_settings(config_file=config, env=ENV)
    with pytest.raises(ConfigError, match="has no secret"):
        check_secrets(settings)


class TestHeaderAuth:
    def basic(self, pair: str) -> bytes:
        return b"Basic " + base64.b64encode(pair.encode())

    def test_any_accepted_value_of_the_header_passes(self) -> None:
        auth = HeaderAuth("X-Token", SecretSet(["new", "old"]))
        auth.verify({b"x-token": b"new"})
        auth.verify({b"x-token": b"old"})

    @pytest.mark.parametrize(
        ("headers", "reason"),
        [
            ({}, "missing X-Token header"),
            ({b"x-token": b""}, "missing X-Token header"),
            ({b"x-token": b"nope"}, "wrong X-Token value"),
            ({b"authorization": b"new"}, "missing X-Token header"),
        ],
    )
    def test_refusals_name_the_header_not_the_value(
        self, headers: dict[bytes, bytes], reason: str
    ) -> None:
        with pytest.raises(VerificationError, match=reason) as raised:
            HeaderAuth("X-Token", SecretSet(["new"])).verify(headers)
        assert "nope" not in str(raised.value)

    def test_basic_users_and_header_values_both_open(self) -> None:
        auth = HeaderAuth(
            "Authorization", SecretSet(["Bearer t0k3n"]), BasicCredentials({"wfm": "pw"})
        )
        auth.verify({b"authorization": b"Bearer t0k3n"})
        auth.verify({b"authorization": self.basic("wfm:pw")})
        with pytest.raises(VerificationError, match="wrong Basic credentials"):
            auth.verify({b"authorization": self.basic("wfm:nope")})
        with pytest.raises(VerificationError, match="not Basic"):
            auth.verify({b"authorization": b"Bearer nope"})

    def test_basic_only(self) -> None:
        auth = HeaderAuth("Authorization", None, BasicCredentials({"wfm": "pw"}))
        auth.verify({b"authorization": self.basic("wfm:pw")})
        with pytest.raises(VerificationError, match="missing Authorization"):
            auth.verify({})

    def test_no_credentials_never_fails_open(self) -> None:
        with pytest.raises(ConfigError):
            HeaderAuth("Authorization", None, None)
