"""The store's tables (SQLAlchemy Core, one definition for SQLite and PostgreSQL) and migrations.

Migrations are numbered and run on start inside one transaction each; the applied
version is kept in ``schema_version``. Evidence is append-only at the database level
too: triggers refuse UPDATE and DELETE on ``evidence`` on both backends, so only the
retention command (which writes what it removed as a record) can remove rows, by
disabling the trigger inside its own transaction on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    text,
)

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", String(32), nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("secret_hash", String(64), nullable=False),  # sha256 hex of the secret part
    Column("role", String(16), nullable=False),  # enrol | agent | auditor | admin
    Column("agent_id", String(36)),  # set for agent credentials
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32)),
    Column("revoked_at", String(32)),
    Column("note", Text, nullable=False, default=""),
    # An enrolment token is spent by the one enrolment it allowed (schema v2).
    Column("used_at", String(32)),
    Column("used_by", String(36)),  # the agent id it enrolled
)

agents = Table(
    "agents",
    metadata,
    Column("agent_id", String(36), primary_key=True),
    Column("public_key", String(64), nullable=False),  # base64 raw Ed25519
    Column("key_id", String(32), nullable=False),
    Column("hostname", Text, nullable=False, default=""),
    Column("enrolled_at", String(32), nullable=False),
    Column("last_seen_at", String(32)),
    Column("agent_version", String(64)),
    Column("head_seq", BigInteger, nullable=False, default=0),  # last stored chain position
    Column("head_hash", String(64), nullable=False),
)

evidence = Table(
    "evidence",
    metadata,
    Column("agent_id", String(36), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("record_id", String(36), nullable=False, unique=True),
    Column("kind", String(8), nullable=False),
    Column("run_id", String(36), nullable=False),
    Column("check_id", String(128)),
    Column("status", String(16)),
    Column("target_id", Text),
    Column("resource", Text),
    Column("observed_at", String(32), nullable=False),
    Column("received_at", String(32), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("body", Text, nullable=False),  # canonical JSON exactly as hashed
    Index("evidence_check", "check_id", "observed_at"),
    Index("evidence_observed", "observed_at"),
)

# One row per control a record evidences, its roll-up ancestors included, so a query
# on nis2/6.10 finds records mapped to nis2/6.10.2.b.
evidence_controls = Table(
    "evidence_controls",
    metadata,
    Column("agent_id", String(36), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("control", String(64), primary_key=True),
    Index("evidence_controls_control", "control"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(32), nullable=False),
    Column("actor", Text, nullable=False),  # token id or "anonymous"
    Column("action", String(64), nullable=False),  # auth_failed, token_created, ...
    Column("detail", Text, nullable=False),  # JSON
    Column("chain_seq", BigInteger),  # the signed store chain entry it was derived from (v3)
)

# What retention removed, per agent: the chain continues from (to_seq, last_hash), so
# the remaining records still verify, and the removal itself stays on record.
retention_log = Table(
    "retention_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(32), nullable=False),
    Column("actor", Text, nullable=False),
    Column("agent_id", String(36), nullable=False),
    Column("cutoff", String(32), nullable=False),
    Column("from_seq", BigInteger, nullable=False),
    Column("to_seq", BigInteger, nullable=False),
    Column("first_hash", String(64), nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("removed", Integer, nullable=False),
    Column("record_ids", Text, nullable=False),  # JSON list
    Column("chain_seq", BigInteger),  # the signed store chain entry it was derived from (v3)
)

# The store's own hash chain of signed entries (tillsyn.agent.storetrust): enrolments,
# receipts, retention removals, audit events. The tables above that say who enrolled
# with which key, how far an agent's chain reaches, what retention removed and what was
# audited are derived from it, and `tillsyn verify --store` compares them (v3).
store_chain = Table(
    "store_chain",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("agent_id", String(36)),
    Column("at", String(32), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("body", Text, nullable=False),  # canonical JSON, signed by the store's key
    Index("store_chain_agent", "agent_id", "kind", "seq"),
)

# One row: the chain's newest entry. Appending locks it, so entries are numbered and
# linked one after another whichever worker process writes them.
store_chain_head = Table(
    "store_chain_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(32), nullable=False),
    Column("agent_id", String(36)),
    Column("kind", String(32), nullable=False),  # chain_break, bad_signature, ...
    Column("detail", Text, nullable=False),
)

_SQLITE_GUARDS: tuple[str, ...] = (
    "CREATE TRIGGER IF NOT EXISTS evidence_no_update BEFORE UPDATE ON evidence "
    "BEGIN SELECT RAISE(ABORT, 'evidence is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS evidence_no_delete BEFORE DELETE ON evidence "
    "WHEN (SELECT value FROM store_flags WHERE name = 'retention') IS NOT 1 "
    "BEGIN SELECT RAISE(ABORT, 'evidence is append-only'); END",
)
_POSTGRES_GUARDS: tuple[str, ...] = (
    """CREATE OR REPLACE FUNCTION tillsyn_evidence_append_only() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND current_setting('tillsyn.retention', true) = 'on' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'evidence is append-only';
    END $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS evidence_append_only ON evidence",
    "CREATE TRIGGER evidence_append_only BEFORE UPDATE OR DELETE ON evidence "
    "FOR EACH ROW EXECUTE FUNCTION tillsyn_evidence_append_only()",
)


def _v1(connection: Connection) -> None:
    metadata.create_all(connection)
    if connection.dialect.name == "sqlite":
        connection.execute(
            text("CREATE TABLE IF NOT EXISTS store_flags (name TEXT PRIMARY KEY, value INTEGER)")
        )
        guards = _SQLITE_GUARDS
    else:
        guards = _POSTGRES_GUARDS
    for statement in guards:
        connection.execute(text(statement))


def _v2(connection: Connection) -> None:
    """Spent enrolment tokens say when and for which agent (v1 marked them revoked)."""
    _add_missing_columns(connection, "tokens", {"used_at": "VARCHAR(32)", "used_by": "VARCHAR(36)"})


def _add_missing_columns(connection: Connection, table: str, columns: dict[str, str]) -> None:
    """ALTER TABLE for the columns a database made by an older version lacks (a database
    made by this version got them from ``create_all`` in v1)."""
    present = {c["name"] for c in inspect(connection).get_columns(table)}
    for name, kind in columns.items():
        if name not in present:
            connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {kind}"))


#: Tables no one changes or removes rows from, retention included.
_NEVER_CHANGED = ("store_chain", "audit_log", "retention_log")


def _v3(connection: Connection) -> None:
    """The store's signed chain, and the links from the tables derived from it."""
    metadata.create_all(connection, tables=[store_chain, store_chain_head])
    _add_missing_columns(connection, "audit_log", {"chain_seq": "BIGINT"})
    _add_missing_columns(connection, "retention_log", {"chain_seq": "BIGINT"})
    if connection.dialect.name == "sqlite":
        for table in _NEVER_CHANGED:
            for action in ("UPDATE", "DELETE"):
                connection.execute(
                    text(
                        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{action.lower()} BEFORE "
                        f"{action} ON {table} BEGIN SELECT RAISE(ABORT, '{table} is "
                        "append-only'); END"
                    )
                )
    else:
        connection.execute(
            text(
                """CREATE OR REPLACE FUNCTION tillsyn_append_only() RETURNS trigger AS $$
                BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$
                LANGUAGE plpgsql"""
            )
        )
        for table in _NEVER_CHANGED:
            connection.execute(text(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"))
            connection.execute(
                text(
                    f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION tillsyn_append_only()"
                )
            )
    connection.execute(
        text(
            "INSERT INTO store_chain_head (id, seq, hash) SELECT 1, 0, :genesis "
            "WHERE NOT EXISTS (SELECT 1 FROM store_chain_head)"
        ),
        {"genesis": "0" * 64},
    )


def _v4(connection: Connection) -> None:
    """PostgreSQL: retention's DELETE passes the evidence trigger only for a role that
    owns the table. The transaction-local flag retention sets can be set by any login;
    on its own it no longer opens anything (see :mod:`tillsyn.store.roles`)."""
    if connection.dialect.name != "postgresql":
        return
    connection.execute(
        text(
            """CREATE OR REPLACE FUNCTION tillsyn_evidence_append_only() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'DELETE'
                   AND current_setting('tillsyn.retention', true) = 'on'
                   AND pg_has_role(current_user,
                                   (SELECT relowner FROM pg_class WHERE oid = TG_RELID),
                                   'MEMBER') THEN
                    RETURN OLD;
                END IF;
                RAISE EXCEPTION 'evidence is append-only';
            END $$ LANGUAGE plpgsql"""
        )
    )


#: Every migration in order; index + 1 is the schema version it produces.
MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_v1, _v2, _v3, _v4)


def current_version(connection: Connection) -> int:
    if not connection.dialect.has_table(connection, "schema_version"):
        return 0
    row = connection.execute(text("SELECT max(version) FROM schema_version")).scalar()
    return int(row or 0)


def migrate(engine: Engine) -> int:
    """Bring the database to the newest schema; returns the version it is at."""
    with engine.begin() as connection:
        version = current_version(connection)
    for number, step in enumerate(MIGRATIONS, start=1):
        if number <= version:
            continue
        with engine.begin() as connection:
            step(connection)
            connection.execute(
                schema_version.insert().values(
                    version=number, applied_at=datetime.now(UTC).isoformat()
                )
            )
        version = number
    return version
