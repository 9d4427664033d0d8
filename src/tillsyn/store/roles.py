"""Least privilege on PostgreSQL: an owner role that holds the schema, and an application
role that ``tillsyn serve`` logs in as.

The application role may read everything the API serves and append evidence, control
rows, audit events, alerts and store chain entries; it may update only what moves
(an agent's chain head, a token being used or revoked, the store chain's head). It
owns nothing, so it cannot ``ALTER TABLE ... DISABLE TRIGGER``, and it has neither
UPDATE nor DELETE on any append-only table. Retention removes evidence only as the
owner (``tillsyn store retention`` with the owner's login): the append-only trigger lets
a DELETE through only when the deleting role owns the table and the transaction says
it is retention, so the session flag alone is worth nothing to the application role.

SQLite has no roles: whoever can write the file can change it, and ``tillsyn verify
--store`` (with the store's key and the agents' receipts kept elsewhere) is what
detects that.
"""

from __future__ import annotations

import re

from sqlalchemy import Connection

#: Per table, what the application role may do; every other privilege is revoked.
APPLICATION_PRIVILEGES: dict[str, tuple[str, ...]] = {
    "evidence": ("SELECT", "INSERT"),
    "evidence_controls": ("SELECT", "INSERT"),
    "audit_log": ("SELECT", "INSERT"),
    "store_chain": ("SELECT", "INSERT"),
    "alerts": ("SELECT", "INSERT"),
    "retention_log": ("SELECT",),
    "schema_version": ("SELECT",),
    "agents": ("SELECT", "INSERT", "UPDATE"),
    "tokens": ("SELECT", "INSERT", "UPDATE"),
    "store_chain_head": ("SELECT", "UPDATE"),
}

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class RoleError(Exception):
    """The application role cannot be set up as asked; the message says why."""


def grant_application_role(
    connection: Connection, role: str, password: str | None = None
) -> list[str]:
    """Create ``role`` (LOGIN) if it does not exist, and give it exactly
    :data:`APPLICATION_PRIVILEGES` on the current schema. Run as the owner, after
    migrating. Returns what was granted, one line per table, for the operator to read."""
    from psycopg import sql

    if connection.dialect.name != "postgresql":
        raise RoleError("database roles exist only on PostgreSQL; SQLite has none")
    if not _ROLE_NAME.match(role):
        raise RoleError(f"role name {role!r}: use lower-case letters, digits and _ (at most 63)")
    owner = connection.exec_driver_sql("SELECT current_user").scalar()
    if role == owner:
        raise RoleError(
            f"the application role must not be {owner}, which owns the schema: the owner "
            "can switch every guard off"
        )
    schema = str(connection.exec_driver_sql("SELECT current_schema()").scalar())
    exists = connection.exec_driver_sql(
        "SELECT 1 FROM pg_roles WHERE rolname = %(role)s", {"role": role}
    ).scalar()
    raw = connection.connection.driver_connection
    statements: list[sql.Composable] = []
    who = sql.Identifier(role)
    if not exists:
        statements.append(sql.SQL("CREATE ROLE {} LOGIN").format(who))
    if password is not None:
        statements.append(
            sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(who, sql.Literal(password))
        )
    where = sql.Identifier(schema)
    statements += [
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(where, who),
        sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(where, who),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(where, who),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(where, who),
    ]
    granted = []
    for table, privileges in APPLICATION_PRIVILEGES.items():
        statements.append(
            sql.SQL("GRANT {} ON {} TO {}").format(
                sql.SQL(", ").join(sql.SQL(p) for p in privileges),
                sql.Identifier(schema, table),
                who,
            )
        )
        granted.append(f"{table}: {', '.join(privileges)}")
    with raw.cursor() as cursor:  # type: ignore[union-attr]
        for statement in statements:
            cursor.execute(statement)
    return granted
