"""The audit log: who changed what, when. Written inside the same transaction as the change itself."""

import json

from sqlite_utils import Database

from crm import clock
from crm.access import ADMIN, REGIONAL_LEAD, Actor, branch_clause, require_role

# Never copied into the log, whatever table they appear in.
SECRET_COLUMNS = {"password_hash"}


def record(
    db: Database, actor: Actor, action: str, table: str, row_id: int | None, changes: dict | None = None
) -> None:
    """Append one entry; ``changes`` maps column to new value (create) or to [old, new] (update).

    The branch the entry is about is stored with it (from the changes, or the record as it is now), so that
    regional leads see their region's history even after records are deleted or their ids reused.
    """
    safe = {k: v for k, v in (changes or {}).items() if k not in SECRET_COLUMNS}
    db.execute(
        "INSERT INTO audit_log (at, user_id, username, action, table_name, row_id, changes, branch_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            clock.stamp(),
            actor.id,
            actor.username,
            action,
            table,
            row_id,
            json.dumps(safe, ensure_ascii=False),
            _branch_of(db, table, row_id, safe),
        ],
    )


def _branch_of(db: Database, table: str, row_id: int | None, changes: dict) -> int | None:
    branch = changes.get("branch_id")
    if isinstance(branch, list):  # an update: [old, new]
        branch = branch[1]
    if isinstance(branch, int):
        return branch
    if table == "branches":
        return row_id
    if table in BRANCH_TABLES and row_id is not None:
        row = db.execute(f"SELECT branch_id FROM {table} WHERE id = ?", [row_id]).fetchone()
        return row[0] if row else None
    return None


BRANCH_TABLES = ("contacts", "interactions", "testimonials", "referrals")
# What an entry says; the stored branch_id is for scoping only.
COLUMNS = "a.id, a.at, a.user_id, a.username, a.action, a.table_name, a.row_id, a.changes"


def diff(before: dict, after: dict) -> dict:
    """The columns whose value changed, as {column: [old, new]}."""
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}


def entries(db: Database, table: str | None = None, row_id: int | None = None, limit: int = 200) -> list[dict]:
    """Most recent audit entries, optionally for one record."""
    where: list[str] = ["1 = 1"]
    params: list[object] = []
    if table:
        where.append("table_name = ?")
        params.append(table)
    if row_id is not None:
        where.append("row_id = ?")
        params.append(row_id)
    sql = f"SELECT {COLUMNS} FROM audit_log a WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
    rows = db.execute_returning_dicts(sql, [*params, limit])
    for row in rows:
        row["changes"] = json.loads(row["changes"])
    return rows


def search(
    db: Database,
    actor: Actor,
    *,
    username: str = "",
    table: str | None = None,
    row_id: int | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 1000,
) -> list[dict]:
    """Audit entries the actor may see, newest first: administrators every entry, regional leads those about
    their region's branches. Filters: user name, record (table and id), dates (YYYY-MM-DD, inclusive)."""
    require_role(actor, ADMIN, REGIONAL_LEAD)
    where, params = branch_clause(actor, "a.branch_id")
    conditions, values = [where], list(params)
    for condition, value in (
        ("a.username = ? COLLATE NOCASE", username.strip() or None),
        ("a.table_name = ?", table),
        ("a.row_id = ?", row_id),
        ("a.at >= ?", since),
        ("a.at < date(?, '+1 day')", until),
    ):
        if value is not None:
            conditions.append(condition)
            values.append(value)
    rows = db.execute_returning_dicts(
        f"SELECT {COLUMNS} FROM audit_log a WHERE {' AND '.join(conditions)} ORDER BY a.id DESC LIMIT ?",
        [*values, limit],
    )
    for row in rows:
        row["changes"] = json.loads(row["changes"])
    return rows
