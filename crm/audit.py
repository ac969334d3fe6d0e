"""The audit log: who changed what, when. Written inside the same transaction as the change itself."""

import json

from sqlite_utils import Database

from crm import clock
from crm.access import Actor

# Never copied into the log, whatever table they appear in.
SECRET_COLUMNS = {"password_hash"}


def record(
    db: Database, actor: Actor, action: str, table: str, row_id: int | None, changes: dict | None = None
) -> None:
    """Append one entry; ``changes`` maps column to new value (create) or to [old, new] (update)."""
    safe = {k: v for k, v in (changes or {}).items() if k not in SECRET_COLUMNS}
    db.execute(
        "INSERT INTO audit_log (at, user_id, username, action, table_name, row_id, changes) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [clock.stamp(), actor.id, actor.username, action, table, row_id, json.dumps(safe, ensure_ascii=False)],
    )


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
    sql = f"SELECT * FROM audit_log WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
    rows = db.execute_returning_dicts(sql, [*params, limit])
    for row in rows:
        row["changes"] = json.loads(row["changes"])
    return rows
