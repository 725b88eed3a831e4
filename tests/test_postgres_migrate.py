"""The PostgreSQL inbox's schema: migrated on start unless told not to, then by
`receiver inbox migrate`; a process that may not migrate refuses an outdated schema."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from receiver.exceptions import ConfigError
from receiver.inbox.base import InboxOptions, open_inbox
from tests.support import postgres

postgres_server = postgres.postgres_server
postgres_database = postgres.postgres_database


def test_without_migrating_an_empty_database_is_refused_until_migrate_ran(
    postgres_server: postgres.PostgresServer,
    postgres_database: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    name = postgres_database.rsplit("/", 1)[-1]
    url = postgres_server.url(name, password=False)
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)

    async def open_and_close(migrate: bool) -> None:
        inbox = open_inbox(url, InboxOptions(migrate=migrate))
        await inbox.open()
        await inbox.close()

    with pytest.raises(ConfigError, match="run `receiver inbox migrate`"):
        asyncio.run(open_and_close(migrate=False))
    env = {**os.environ, "PGPASSWORD": postgres_server.password}
    migrated = subprocess.run(
        [sys.executable, "-m", "receiver", "inbox", "--inbox", url, "migrate"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
    assert "schema version 0 → 2" in migrated.stdout
    asyncio.run(open_and_close(migrate=False))  # now it opens
    again = subprocess.run(
        [sys.executable, "-m", "receiver", "inbox", "--inbox", url, "migrate"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert "already at version 2" in again.stdout
