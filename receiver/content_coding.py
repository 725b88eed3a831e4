"""Request bodies sent compressed (`Content-Encoding: gzip`), decoded within a size limit.

The endpoint decodes a body before its source sees it, so no source ever stores compressed
bytes. The limit applies to the decoded size, and decoding stops as soon as it is passed:
a compression bomb (10 MB of zeros is about 10 KB of gzip) never gets more than the limit
allocated. Decoding a body of up to the default 1 MiB takes a few milliseconds, so it runs
inline.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from receiver.exceptions import DecodeError, ReceiverError
from receiver.logs import printable

__all__ = ["DecodedTooLarge", "UnsupportedCoding", "content_coding", "decode_body"]

CODINGS = {b"gzip": "gzip", b"x-gzip": "gzip", b"deflate": "deflate"}
"""The content codings decoded (RFC 9110 §8.4.1), by the lower-case name a sender uses."""

_GZIP = 16 + zlib.MAX_WBITS
_ZLIB = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS


class UnsupportedCoding(ReceiverError):
    """The body is compressed in a way the receiver does not decode (answered 415)."""


class DecodedTooLarge(ReceiverError):
    """The decoded body would be larger than the limit (answered 413)."""


def content_coding(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The coding to undo (`gzip` or `deflate`), or None when the body is sent as is.

    Every Content-Encoding header counts, a list in one header as much as repeated headers;
    `identity` means no coding. Raises `UnsupportedCoding` for any other coding and for more
    than one (no platform stacks them).
    """
    codings = [
        coding.strip().lower()
        for name, value in headers
        if name == b"content-encoding"
        for coding in value.split(b",")
    ]
    codings = [coding for coding in codings if coding and coding != b"identity"]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in CODINGS:
        return CODINGS[codings[0]]
    named = printable(", ".join(coding.decode("latin-1") for coding in codings), 100)
    if len(codings) > 1:
        raise UnsupportedCoding(f"Content-Encoding {named}: more than one coding is not supported")
    raise UnsupportedCoding(f"Content-Encoding {named} is not supported (gzip and deflate are)")


def decode_body(coding: str, data: bytes, limit: int) -> bytes:
    """`data` decoded from `coding` (`gzip`: one or more members; `deflate`: zlib-wrapped,
    or raw as some senders write it).

    Raises `DecodedTooLarge` as soon as the output passes `limit` bytes, and `DecodeError`
    when `data` is not a complete stream of its coding. An empty body stays empty.
    """
    if not data:
        return b""
    gzip = coding == "gzip"
    stream = zlib.decompressobj(_GZIP if gzip else _ZLIB if _zlib_wrapped(data) else _RAW_DEFLATE)
    parts: list[bytes] = []
    size = 0
    try:
        while True:
            # One byte more than the room left: getting it means the limit is passed.
            part = stream.decompress(data, limit - size + 1)
            size += len(part)
            if size > limit:
                raise DecodedTooLarge(f"body larger than {limit:,} bytes once decoded")
            parts.append(part)
            if not stream.eof:
                data = stream.unconsumed_tail
                if not data:
                    raise DecodeError(f"{coding} body ends before its stream does")
                continue
            data = stream.unused_data
            if not data:
                return b"".join(parts)
            if not gzip:
                raise DecodeError(f"data after the end of the {coding} stream")
            stream = zlib.decompressobj(_GZIP)  # the next member
    except zlib.error as exc:
        raise DecodeError(f"body is not valid {coding}: {exc}") from exc


def _zlib_wrapped(data: bytes) -> bool:
    """Whether `data` starts with a zlib header (RFC 1950 §2.2), not raw deflate."""
    return (
        len(data) >= 2
        and data[0] & 0x0F == 8
        and data[0] >> 4 <= 7
        and ((data[0] << 8) | data[1]) % 31 == 0
    )
