"""atheris target: one provider's `authenticate` and `decode` on coverage-guided input.

Run by tests/test_fuzz_sources.py as `python -m tests.support.fuzz_decode [libFuzzer flags]
CORPUS` with FUZZ_PROVIDER naming an entry of PROVIDER_CASES. An exception other than the
source's own refusals, or a result that could not be stored, is a crash.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import sys
from typing import Any

atheris: Any = importlib.import_module("atheris")  # no type information; only this child uses it

with atheris.instrument_imports(include=["receiver"]):
    import receiver.sources
    from receiver.exceptions import DecodeError, VerificationError
    from tests.support.provider_cases import PROVIDER_CASES

    # Sources are imported lazily by build_source: import them all here to instrument them.
    for module in pkgutil.iter_modules(receiver.sources.__path__, "receiver.sources."):
        importlib.import_module(module.name)


def main() -> None:
    """Fuzz the source named by FUZZ_PROVIDER until libFuzzer's limits stop it."""
    case = next(c for c in PROVIDER_CASES if c.name == os.environ["FUZZ_PROVIDER"])
    source = case.source()
    genuine = case.request("https://localhost" + case.path)
    headers = {name.lower().encode(): value.encode() for name, value in genuine.headers}
    credential = sorted(case.credential_headers())
    methods = sorted(source.methods)

    def target(data: bytes) -> None:
        # Layout: mode, method, [value length, value], query length, query, body. A seed is
        # b"\0\0\0" + a genuine body, so the fuzzer starts from requests that decode.
        if len(data) < 3:
            return
        mode, method, rest = data[0] % 4, methods[data[1] % len(methods)], data[2:]
        request = dict(headers)
        if mode in (1, 2):  # a forged credential, or another header replaced by junk
            size, rest = rest[0] % 81, rest[1:]
            value, rest = rest[:size], rest[size:]
            if mode == 1:
                request[credential[len(value) % len(credential)].encode()] = value
            else:
                names = sorted(request)
                request[names[len(value) % len(names)]] = value
        elif mode == 3:
            request = {}
        if not rest:
            return
        size, rest = rest[0] % 41, rest[1:]
        query, body = rest[:size], rest[size:]
        with contextlib.suppress(VerificationError):
            source.authenticate(request, query)
        try:
            event = source.decode(method, request, query, body)
        except DecodeError:
            return
        if not (isinstance(event.dedup_key, str) and event.dedup_key):
            raise AssertionError(f"empty dedup key for {body!r}")
        for text in (event.dedup_key, event.event_type, event.order_key or ""):
            text.encode("utf-8")

    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
