"""The PostgreSQL inbox's schema, its versions and their migrations, and how a URL connects.

The tables mirror the SQLite inbox's (`receiver.inbox.sqlite_schema`), prefixed `receiver_`
so that they can share a database with others: `receiver_events` (deduplicated by a unique
16-byte digest of source and dedup key), `receiver_deliveries` (one per subscriber that
wants the event, with its own state and lease holder), `receiver_attempts` (each failed
attempt) and `receiver_owners` (each dispatching process's lease, on the server's clock so
that machines' clocks need not agree). `receiver_schema` holds the version.

Version 2 added the events' stored request headers, the indexes of `recent_attempts` (failed
attempts by end, done deliveries by finish) and the phone filter's function.

Migrations only add: each is a list of statements run in one transaction under an advisory
lock, so that several processes starting at once migrate once; none drops data.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from receiver.exceptions import ConfigError

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "check_url",
    "describe_url",
    "migrate",
    "schema_version",
]

MIGRATION_LOCK = 0x7265_6365_6976_6572  # "receiver": the advisory lock of migrations

MIGRATIONS: Sequence[Sequence[str]] = (
    (
        """CREATE TABLE IF NOT EXISTS receiver_events (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            source text NOT NULL,
            dedup_key text NOT NULL,
            digest bytea NOT NULL UNIQUE,
            event_type text NOT NULL,
            order_key text,
            payload bytea NOT NULL,
            received_at double precision NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS receiver_deliveries (
            event_id bigint NOT NULL,
            subscriber text NOT NULL,
            order_key text,
            state smallint NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at double precision NOT NULL,
            owner text,
            last_error text,
            finished_at double precision,
            duration double precision,
            PRIMARY KEY (event_id, subscriber)
        )""",
        # Claims look for a subscriber's pending deliveries, oldest first...
        "CREATE INDEX IF NOT EXISTS receiver_deliveries_pending"
        " ON receiver_deliveries (subscriber, event_id) WHERE state = 0",
        # ...and skip calls another process has a delivery of in progress.
        "CREATE INDEX IF NOT EXISTS receiver_deliveries_running"
        " ON receiver_deliveries (subscriber, order_key) WHERE state = 1",
        "CREATE INDEX IF NOT EXISTS receiver_deliveries_owned"
        " ON receiver_deliveries (owner) WHERE state = 1",
        "CREATE INDEX IF NOT EXISTS receiver_deliveries_dead"
        " ON receiver_deliveries (event_id) WHERE state = 3",
        """CREATE TABLE IF NOT EXISTS receiver_attempts (
            event_id bigint NOT NULL,
            subscriber text NOT NULL,
            number integer NOT NULL,
            started_at double precision NOT NULL,
            duration double precision NOT NULL,
            outcome text NOT NULL,
            error text
        )""",
        "CREATE INDEX IF NOT EXISTS receiver_attempts_event ON receiver_attempts (event_id)",
        """CREATE TABLE IF NOT EXISTS receiver_owners (
            owner text PRIMARY KEY,
            name text NOT NULL,
            expires_at double precision NOT NULL
        )""",
        # One notification per statement that stores deliveries, naming their subscribers:
        # dispatchers LISTEN instead of polling. (Deliveries made pending again notify from
        # the statement that does it: a trigger on every UPDATE would cost each claim.)
        """CREATE OR REPLACE FUNCTION receiver_notify_deliveries() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE subscribers text;
        BEGIN
            SELECT string_agg(DISTINCT subscriber, ',') INTO subscribers FROM stored;
            IF subscribers IS NOT NULL THEN
                PERFORM pg_notify('receiver_deliveries', subscribers);
            END IF;
            RETURN NULL;
        END $$""",
        "DROP TRIGGER IF EXISTS receiver_deliveries_stored ON receiver_deliveries",
        """CREATE TRIGGER receiver_deliveries_stored AFTER INSERT ON receiver_deliveries
        REFERENCING NEW TABLE AS stored FOR EACH STATEMENT
        EXECUTE FUNCTION receiver_notify_deliveries()""",
    ),
    (
        # The request's headers less credentials (`NewEvent.headers`); NULL for older events.
        # A nullable column without a default: no table rewrite.
        "ALTER TABLE receiver_events ADD COLUMN IF NOT EXISTS headers bytea",
        # `recent_attempts`: failed attempts by when they ended, done deliveries by when.
        "CREATE INDEX IF NOT EXISTS receiver_attempts_ended"
        " ON receiver_attempts ((started_at + duration))",
        "CREATE INDEX IF NOT EXISTS receiver_deliveries_done"
        " ON receiver_deliveries (finished_at) WHERE state = 2",
        # The phone filter: whether a payload holds a phone number whose digits are given
        # (`receiver.inbox.models.phone_digits`): a string value equal to them once spaces,
        # tabs, dashes, dots, brackets, slashes and leading + are taken out, or a number
        # written as them. jsonb refuses a \u0000 escape (valid JSON, which orjson writes for
        # a NUL): those become U+FFFD, which no phone number holds either. A payload that is
        # still not JSON holds none, rather than failing the whole query. PARALLEL UNSAFE:
        # the exception blocks are subtransactions, which a parallel query cannot start.
        r"""CREATE OR REPLACE FUNCTION receiver_payload_has_phone(payload bytea, digits text)
        RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL UNSAFE AS $$
        DECLARE
            text_ text;
            document jsonb;
        BEGIN
            BEGIN
                text_ := convert_from(payload, 'UTF8');
                document := text_::jsonb;
            EXCEPTION WHEN others THEN
                BEGIN
                    document := regexp_replace(
                        text_, '(?<!\\)((?:\\\\)*)\\u0000', '\1\\ufffd', 'g')::jsonb;
                EXCEPTION WHEN others THEN
                    RETURN false;
                END;
            END;
            RETURN EXISTS (
                SELECT 1 FROM jsonb_path_query(document, 'strict $.**') AS v
                WHERE jsonb_typeof(v) = 'string'
                      AND ltrim(translate(v #>> '{}', E' \t-.()/', ''), '+') = digits
                   OR jsonb_typeof(v) = 'number' AND v::text = digits);
        END $$""",
    ),
)
"""The statements that bring the schema from version N to N + 1, by N."""

SCHEMA_VERSION = len(MIGRATIONS)

NOTIFY_CHANNEL = "receiver_deliveries"


def check_url(url: str) -> None:
    """Refuse a URL that is not postgresql:// (or postgres://), or that holds a password
    (before the host, or as `?password=`): passwords come from PGPASSWORD, a passfile or the
    service file, never the URL (it is shown in `ps`, logs and shell history)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"inbox {describe_url(url)!r} is not a postgresql:// URL")
    if parts.password or "password" in parse_qs(parts.query):
        raise ConfigError(
            f"inbox {describe_url(url)}: the URL holds a password; give it in PGPASSWORD or a "
            "passfile (libpq's ~/.pgpass, or PGPASSFILE) instead"
        )


def describe_url(url: str) -> str:
    """`url` without a password (before the host or in the query), for messages."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if parts.password is None and all(key != "password" for key, _ in query):
        return url  # as given (urlsplit would drop the empty host of postgresql:///?service=)
    if parts.password is not None:
        host = parts.netloc.rsplit("@", 1)[-1]
        user = parts.username or ""
        parts = parts._replace(netloc=f"{user}:***@{host}" if user else f"***@{host}")
    if any(key == "password" for key, _ in query):
        masked = [(key, "***" if key == "password" else value) for key, value in query]
        parts = parts._replace(query=urlencode(masked, safe="*"))
    return parts.geturl()


def schema_version(conn: object) -> int | None:
    """The schema version of the database `conn` (a psycopg connection), None if it has none."""
    import psycopg

    assert isinstance(conn, psycopg.Connection)
    present = conn.execute("SELECT to_regclass('receiver_schema') IS NOT NULL").fetchone()
    if not present or not present[0]:
        return None
    row = conn.execute("SELECT max(version) FROM receiver_schema").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(conn: object) -> tuple[int, int]:
    """Bring the schema of `conn`'s database up to SCHEMA_VERSION; (from, to).

    Runs in one transaction under an advisory lock; a database written by a newer version is
    refused (ConfigError).
    """
    import psycopg

    assert isinstance(conn, psycopg.Connection)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS receiver_schema (version integer NOT NULL)")
        before = schema_version(conn) or 0
        if before > SCHEMA_VERSION:
            raise ConfigError(
                f"the inbox's schema is version {before}, written by a newer version of the "
                f"receiver (this one knows {SCHEMA_VERSION})"
            )
        for version in range(before, SCHEMA_VERSION):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("INSERT INTO receiver_schema (version) VALUES (%s)", (version + 1,))
    return before, SCHEMA_VERSION
