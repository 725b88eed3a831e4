"""Dedup keys: one key per event however its Id is spelled, and never one key for two events.

A GUID is the same GUID to .NET in braces, in parentheses, without hyphens, in any case, and
with `urn:uuid:` in front; every spelling gives one key, the one stored before these spellings
were recognized (so an upgrade does not deliver anything again). Other Ids are kept exactly,
integers beyond 64 bits included, and no Id can take the key of an event without one.
"""

from __future__ import annotations

import uuid

import orjson
import pytest

from receiver.auth import HeaderAuth, SecretSet
from receiver.sources.buzzeasy import BuzzeasySource
from receiver.sources.enreach import EnreachSource
from receiver.sources.keys import FINGERPRINT_PREFIX, id_key
from tests.conftest import Harness, enreach_event, post_event

GUID = "9CAE633F-68D0-4315-8B9A-B83C7673D8DC"
SPELLINGS = {
    "hyphenated": GUID,
    "lower case": GUID.lower(),
    "braces": "{" + GUID + "}",
    "parentheses": "(" + GUID + ")",
    "no hyphens": GUID.replace("-", ""),
    "urn": "urn:uuid:" + GUID.lower(),
    "urn upper case": "URN:UUID:" + GUID,
    "spaces around": "  " + GUID + " ",
}

ENREACH = EnreachSource("enreach", SecretSet(["s"]))
BUZZEASY = BuzzeasySource("buzzeasy", HeaderAuth("x-api-key", SecretSet(["k"])), event_type="X")


def enreach_key(body: bytes) -> str:
    """The key the Enreach source gives `body`."""
    return ENREACH.decode("POST", {}, b"", body).dedup_key


def buzzeasy_key(body: bytes) -> str:
    """The key the Buzzeasy source gives `body`."""
    return BUZZEASY.decode("POST", {}, b"", body).dedup_key


@pytest.mark.parametrize("spelling", list(SPELLINGS.values()), ids=list(SPELLINGS))
def test_every_spelling_of_a_guid_gives_the_key_stored_before(spelling: str) -> None:
    before = GUID.lower()  # what an Enreach Id in its own (hyphenated) spelling was keyed by
    assert enreach_key(orjson.dumps({"Id": spelling, "EventType": "X"})) == before
    assert before == str(uuid.UUID(GUID))


@pytest.mark.parametrize("spelling", list(SPELLINGS.values()), ids=list(SPELLINGS))
def test_buzzeasy_keys_a_guid_by_its_32_digits_as_it_writes_them(spelling: str) -> None:
    before = GUID.replace("-", "").lower()  # Buzzeasy's own spelling, lower-cased, as before
    assert buzzeasy_key(orjson.dumps({"id": spelling})) == before


@pytest.mark.parametrize(
    "almost",
    [
        "{" + GUID + ")",
        "{" + GUID.replace("-", "") + "}",
        GUID + "0",
        GUID.replace("-", "")[:-1] + "g",
        "urn:uuid:{" + GUID + "}",
    ],
)
def test_what_only_looks_like_a_guid_is_kept_exactly(almost: str) -> None:
    assert enreach_key(orjson.dumps({"Id": almost})) == almost


def test_other_ids_are_kept_exactly_case_included() -> None:
    assert enreach_key(b'{"Id": "AbC-1"}') == "AbC-1"
    assert enreach_key(b'{"Id": "abc-1"}') == "abc-1"
    assert buzzeasy_key(b'{"id": "638858857FF57AD8637A7528"}') == "638858857FF57AD8637A7528"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (2**64, 2**64 + 1),  # orjson reads both as the float 1.8446744073709552e+19
        (10**30, 10**30 + 1),
        (-(2**63) - 1, -(2**63) - 2),
        (2**53, 2**53 + 1),
    ],
)
def test_integer_ids_of_any_size_are_told_apart(first: int, second: int) -> None:
    for key, body in [(enreach_key, b'{"Id": %d}'), (buzzeasy_key, b'{"id": %d}')]:
        assert key(body % first) == str(first)
        assert key(body % second) == str(second)


def test_a_number_id_is_its_text_as_sent() -> None:
    assert enreach_key(b'{"Id": 1.50}') == "1.50"
    assert enreach_key(b'{"Id": 1.5}') == "1.5"
    assert enreach_key(b'{"Id": 12345}') == enreach_key(b'{"Id": "12345"}') == "12345"


def test_an_id_cannot_take_the_key_of_an_event_without_one() -> None:
    for key, id_name in [(enreach_key, "Id"), (buzzeasy_key, "id")]:
        without = key(b'{"EventType": "X", "Note": "no id"}')
        assert without.startswith(FINGERPRINT_PREFIX)
        posing = key(orjson.dumps({id_name: without}))
        assert posing != without
        assert posing == "id:" + without


def test_escaped_ids_stay_apart_from_each_other() -> None:
    ids = ["sha256:ab", "id:sha256:ab", "id:id:sha256:ab", "id:x", "x", "SHA256:ab"]
    keys = [id_key(i) for i in ids]
    assert len(set(keys)) == len(ids), keys
    assert id_key("SHA256:ab") == "SHA256:ab"  # only the exact prefix is the fingerprints'


def test_a_receiver_handles_a_guid_once_in_any_spelling_and_big_integers_apart(
    harness: Harness,
) -> None:
    receiver = harness.receiver()
    url = receiver.url()
    with harness.client() as client:
        for spelling in SPELLINGS.values():
            assert post_event(client, url, enreach_event(Id=spelling)).status_code == 200
        for number in (2**64, 2**64 + 1):
            body = orjson.dumps(enreach_event(Id=0)).replace(b'"Id":0', b'"Id":%d' % number)
            assert post_event(client, url, body).status_code == 200
    expected = [GUID.lower(), str(2**64), str(2**64 + 1)]
    harness.wait_for(lambda: len(harness.handled_keys()) >= 3, what="3 handled events")
    receiver.stop()
    assert sorted(harness.handled_keys()) == sorted(expected)
