"""Backups and restores: consistent copies of the live database, taken safely while people are working.

A copy of the file itself can miss commits still in the write-ahead log, or catch a page half-written.
``VACUUM INTO`` writes a consistent snapshot (as of one read transaction) into a new, compact file.
"""

import sqlite3
from pathlib import Path
from urllib.parse import quote

from sqlite_utils import Database

from crm import audit, clock, schema
from crm.access import ADMIN, Actor, require_role
from crm.db import transaction
from crm.errors import CRMError


class BackupError(CRMError):
    """A backup could not be written, or a file offered for restore is not a usable Partner CRM database."""


def backup(db: Database, actor: Actor, target: Path) -> Path:
    """Write a consistent copy of the live database to ``target`` (which must not exist yet); audited."""
    require_role(actor, ADMIN)
    target = Path(target)
    if target.exists():
        raise BackupError(f"{target} already exists; choose a new file name.")
    if not target.parent.is_dir():
        raise BackupError(f"The folder {target.parent} does not exist.")
    db.execute("VACUUM INTO ?", [str(target)])
    with transaction(db):
        audit.record(db, actor, "backup", "database", None, {"file": target.name})
    return target


def check(path: Path) -> list[str]:
    """Why ``path`` cannot be restored (an empty list when it can): integrity, and a schema this app knows."""
    path = Path(path)
    if not path.is_file():
        return [f"{path} does not exist."]
    try:
        conn = _read_only(path)
        try:
            integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            if integrity != ["ok"]:
                return [f"The file is damaged: {integrity[0]}"]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "_sqlite_migrations" not in tables or "contacts" not in tables:
                return ["The file is an SQLite database but not a Partner CRM one."]
            applied = [
                row[0]
                for row in conn.execute(
                    "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", [schema.migrations.name]
                )
            ]
        finally:
            conn.close()
    except (sqlite3.DatabaseError, UnicodeDecodeError) as error:
        # A damaged schema can hold bytes that are not text; SQLite's message quoting them is then not UTF-8.
        return [f"The file is not a database this app can read ({error})."]
    known = set(schema.step_names())
    newer = [name for name in applied if name not in known]
    if newer:
        return [
            f"The file comes from a newer version of the app (schema steps {', '.join(newer)}); upgrade the app first."
        ]
    return []


def restore(live_path: Path, source: Path) -> Path:
    """Replace the live database with ``source``, keeping the replaced one aside; returns where it was kept.

    The live file is overwritten through SQLite's backup API, so connections the app has open see either the
    old or the new database, never a mix. Nothing is changed when ``source`` fails ``check``.
    """
    problems = check(source)
    if problems:
        raise BackupError(" ".join(problems))
    live_path = Path(live_path)
    kept = _new_name(live_path, f"replaced-{clock.now():%Y%m%d-%H%M%S}")
    live = sqlite3.connect(str(live_path), timeout=10)
    try:
        live.execute("VACUUM INTO ?", [str(kept)])
        incoming = _read_only(Path(source))
        try:
            incoming.backup(live)
        finally:
            incoming.close()
    finally:
        live.close()
    return kept


def before_upgrade(path: Path, first_step: str) -> Path:
    """Keep a copy of a database about to be upgraded, through a connection of its own (VACUUM INTO cannot run
    inside the caller's transaction, which holds the write lock so only one process upgrades)."""
    target = _new_name(path, f"before-{first_step}-{clock.now():%Y%m%d-%H%M%S}")
    conn = sqlite3.connect(str(path), timeout=10)
    try:
        conn.execute("VACUUM INTO ?", [str(target)])
    finally:
        conn.close()
    return target


def _new_name(path: Path, label: str) -> Path:
    """``<stem>.<label><suffix>`` beside ``path``, numbered if that name is taken."""
    candidate = path.with_name(f"{path.stem}.{label}{path.suffix}")
    number = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}.{label}-{number}{path.suffix}")
        number += 1
    return candidate


def _read_only(path: Path) -> sqlite3.Connection:
    # A URI, so the file opens read-only; quoted, so "#", "?" or "%" in a file name stay part of the name.
    return sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
