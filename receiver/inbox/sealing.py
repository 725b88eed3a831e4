"""Payloads encrypted at rest: AES-GCM with keys named by id, rotated by adding a key.

`RECEIVER_INBOX_KEYS` (or the file `RECEIVER_INBOX_KEYS_FILE` names) holds one key per line
or comma-separated item, `ID:BASE64` (16, 24 or 32 bytes, e.g. from `receiver inbox new-key`).
The first key seals what is stored from now on; every listed key opens what it sealed, so a
rotation puts the new key first and keeps the old one until nothing sealed with it is left (a
payload lives `payload_retention_days`, a dead letter `dead_retention_days`).

Error texts stored with attempts (they often quote the payload) are sealed too, as text:
`TEXT_MAGIC`, the key id, `:` and the base64 of nonce, ciphertext and tag (an error text the
dispatcher writes starts with an exception's name or `HTTP`, never with `{`). Unlike payloads, error
texts are not bound to their event: `receiver inbox copy` gives events new ids.

A sealed payload is `MAGIC`, the key id's length and the key id, a 12-byte
random nonce, then the ciphertext and tag; the event's source and dedup key are authenticated
with it, so a sealed blob moved to another event does not open. The dedup digest is never
sealed: dedup works without the key. A blob that does not start with `MAGIC` is stored in the
clear (written before encryption was turned on) and read as it is; one that does, without the
key that sealed it, is a `StorageError` naming the key id, never bytes passed on as if they
were the payload.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from receiver.exceptions import ConfigError, StorageError

__all__ = [
    "KEYS_ENV",
    "MAGIC",
    "TEXT_MAGIC",
    "Keyring",
    "keyring_from_env",
    "new_key",
    "open_sealed",
    "open_text",
    "parse_keys",
]

KEYS_ENV = "RECEIVER_INBOX_KEYS"
"""The variable holding the keys (`..._FILE`: a file of them)."""
MAGIC = b"\x00rs1"
"""What a sealed blob starts with: a NUL byte, which no JSON document starts with."""
TEXT_MAGIC = "{rs1}"
"""What a sealed error text starts with."""
_TEXT_BOUND = b"error"
_NONCE = 12
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")


@dataclass(frozen=True, eq=False)
class Keyring:
    """The keys by id; the first seals."""

    keys: dict[str, bytes] = field(repr=False)
    current: str

    _ciphers: dict[str, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ciphers", {k: AESGCM(v) for k, v in self.keys.items()})

    @property
    def secrets(self) -> tuple[str, ...]:
        """The keys as configured (base64), for log redaction."""
        return tuple(base64.b64encode(k).decode() for k in self.keys.values())

    def seal(self, blob: bytes, source: str, dedup_key: str) -> bytes:
        """`blob` encrypted with the current key, bound to its event."""
        nonce = os.urandom(_NONCE)
        key_id = self.current.encode()
        sealed = self._ciphers[self.current].encrypt(nonce, blob, _bound(source, dedup_key))
        return MAGIC + bytes([len(key_id)]) + key_id + nonce + sealed

    def unseal(self, blob: bytes, source: str, dedup_key: str) -> bytes:
        """The plaintext of a blob `seal` made for this event; StorageError saying why not."""
        return open_sealed(blob, source, dedup_key, self)

    def seal_text(self, text: str) -> str:
        """An error text encrypted with the current key, as text."""
        nonce = os.urandom(_NONCE)
        sealed = self._ciphers[self.current].encrypt(nonce, text.encode(), _TEXT_BOUND)
        return f"{TEXT_MAGIC}{self.current}:{base64.b64encode(nonce + sealed).decode()}"

    def cipher(self, key_id: str) -> AESGCM | None:
        """The cipher of key `key_id`, if this keyring holds it."""
        return self._ciphers.get(key_id)


def open_sealed(blob: bytes, source: str, dedup_key: str, keyring: Keyring | None) -> bytes:
    """`blob` as stored: opened when sealed (StorageError when it cannot be), else as it is."""
    if blob[:4] != MAGIC:
        return blob
    size = blob[4] if len(blob) > 4 else 0
    key_id = blob[5 : 5 + size].decode("ascii", "replace")
    where = f"event {dedup_key!r} of {source!r}"
    if keyring is None:
        raise StorageError(
            f"{where} is encrypted (key {key_id!r}); set {KEYS_ENV} or {KEYS_ENV}_FILE to read it"
        )
    cipher = keyring.cipher(key_id)
    if cipher is None:
        raise StorageError(f"{where} is encrypted with key {key_id!r}, which {KEYS_ENV} lacks")
    start = 5 + size
    nonce, sealed = blob[start : start + _NONCE], blob[start + _NONCE :]
    try:
        return cipher.decrypt(nonce, sealed, _bound(source, dedup_key))
    except (InvalidTag, ValueError):  # ValueError: cut short
        raise StorageError(
            f"{where} does not open with key {key_id!r}: a wrong key under that id, or the "
            "stored bytes were changed"
        ) from None


def _bound(source: str, dedup_key: str) -> bytes:
    return source.encode() + b"\x00" + dedup_key.encode()


def parse_keys(text: str, where: str) -> Keyring:
    """A keyring from `ID:BASE64` items, one per line or comma-separated; ConfigError (one
    line, never the key) for anything else."""
    keys: dict[str, bytes] = {}
    for item in re.split(r"[,\n]", text):
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        key_id, sep, encoded = item.partition(":")
        if not sep or not _KEY_ID.fullmatch(key_id):
            raise ConfigError(f"{where}: each key is ID:BASE64 (ID: letters, digits, . _ -)")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{where}: key {key_id!r} is not base64") from None
        if len(key) not in (16, 24, 32):
            raise ConfigError(f"{where}: key {key_id!r} must be 16, 24 or 32 bytes")
        if key_id in keys:
            raise ConfigError(f"{where}: key id {key_id!r} is given twice")
        keys[key_id] = key
    if not keys:
        raise ConfigError(f"{where} holds no key")
    return Keyring(keys, next(iter(keys)))


def keyring_from_env(env: Mapping[str, str] | None = None) -> Keyring | None:
    """The keys of `RECEIVER_INBOX_KEYS` and the file `RECEIVER_INBOX_KEYS_FILE` names (the
    variable's first), or None when neither is set: payloads are then stored in the clear."""
    env = os.environ if env is None else env
    text = env.get(KEYS_ENV, "").strip()
    file = env.get(KEYS_ENV + "_FILE", "").strip()
    if file:
        try:
            text += "\n" + Path(file).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{KEYS_ENV}_FILE: cannot read {file}: {exc.strerror}") from exc
    if not text.strip():
        return None
    return parse_keys(text, KEYS_ENV + ("_FILE" if file and not env.get(KEYS_ENV) else ""))


def new_key(key_id: str) -> str:
    """A new random 256-bit key as `ID:BASE64`, for `RECEIVER_INBOX_KEYS`."""
    if not _KEY_ID.fullmatch(key_id):
        raise ConfigError("a key id is 1 to 32 letters, digits, dots, dashes or underscores")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def open_text(text: str | None, keyring: Keyring | None) -> str | None:
    """An error text as stored: opened when sealed (StorageError when it cannot be)."""
    if text is None or not text.startswith(TEXT_MAGIC):
        return text
    key_id, _, encoded = text[len(TEXT_MAGIC) :].partition(":")
    if keyring is None:
        raise StorageError(
            f"an error text is encrypted (key {key_id!r}); set {KEYS_ENV} or {KEYS_ENV}_FILE"
        )
    cipher = keyring.cipher(key_id)
    if cipher is None:
        raise StorageError(
            f"an error text is encrypted with key {key_id!r}, which {KEYS_ENV} lacks"
        )
    try:
        raw = base64.b64decode(encoded, validate=True)
        return cipher.decrypt(raw[:_NONCE], raw[_NONCE:], _TEXT_BOUND).decode()
    except (InvalidTag, binascii.Error, ValueError):
        raise StorageError(f"an error text does not open with key {key_id!r}") from None
