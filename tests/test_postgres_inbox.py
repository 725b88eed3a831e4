"""The PostgreSQL inbox's own behaviours beyond the contract: a server that stops answering
costs a 503 within seconds, never a hang and never a 200 for an unstored event."""

from __future__ import annotations

import asyncio
import time

import pytest

import receiver.inbox.postgres as postgres_inbox
from receiver.exceptions import StorageError
from receiver.inbox.base import InboxOptions, open_inbox
from receiver.inbox.models import NewEvent
from tests.support import postgres

postgres_server = postgres.postgres_server
postgres_database = postgres.postgres_database


def test_a_commit_that_hangs_fails_the_request_in_time_and_a_retry_is_a_duplicate(
    postgres_server: postgres.PostgresServer,
    postgres_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = postgres_database.rsplit("/", 1)[-1]
    url = postgres_server.url(name, password=False)
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    monkeypatch.setattr(postgres_inbox, "STORE_TIMEOUT", 0.5)
    event = NewEvent("enreach", "k1", "UserAvailability", None, b'{"Id": "k1"}')

    def standby_named(name: str) -> None:  # a commit waits for this standby: none answers
        postgres_server.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{name}'")
        postgres_server.execute("SELECT pg_reload_conf()")

    async def main() -> None:
        inbox = open_inbox(url, InboxOptions())
        await inbox.open()
        try:
            standby_named("nobody")
            await asyncio.sleep(0.2)  # the reload reaches the backends
            started = time.monotonic()
            with pytest.raises(StorageError, match=r"did not commit within 0\.5s"):
                await inbox.append(event, ["a"])
            assert time.monotonic() - started < 2.0
        finally:
            postgres_server.execute("ALTER SYSTEM RESET synchronous_standby_names")
            postgres_server.execute("SELECT pg_reload_conf()")
        await asyncio.sleep(0.5)
        # The hung commit went through locally in the end: the sender's retry is a duplicate.
        assert await inbox.append(event, ["a"]) is False
        await inbox.close()

    asyncio.run(main())
