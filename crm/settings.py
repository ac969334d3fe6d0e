"""Provider-wide settings kept in the database (provider name, whether demo data is loaded)."""

from sqlite_utils import Database

from crm import audit
from crm.access import Actor
from crm.db import transaction


def get(db: Database, key: str, default: str = "") -> str:
    """A stored setting, or ``default`` when unset."""
    row = db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return row[0] if row else default


def put(db: Database, actor: Actor, key: str, value: str) -> None:
    """Store a setting (audited)."""
    with transaction(db):
        before = get(db, key)
        db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )
        audit.record(db, actor, "update", "settings", None, {key: [before, value]})
