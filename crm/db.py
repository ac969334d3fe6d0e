"""Opening the database: the only module that knows how a connection is set up."""

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from crm import clock

BUSY_TIMEOUT_SECONDS = 10


def connect(path: str | Path, *, migrate: bool = True) -> Database:
    """Open (creating if needed) the database at ``path`` with the pragmas every connection needs.

    Use a connection on one thread at a time. For a Streamlit rerun, ``borrow`` one instead.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: the driver opens no implicit transactions, so every transaction is one
    # we began ourselves (see ``transaction``), and sqlite-utils' own atomic() blocks nest inside it.
    # check_same_thread=False: a borrowed connection serves reruns on other threads, one at a time.
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
    conn.execute("PRAGMA foreign_keys = ON")
    _use_wal(conn)
    db = Database(conn)
    if migrate:
        _ensure_current(path, db)
    return db


def _ensure_current(path: Path, db: Database) -> None:
    if not _known_current(path, db.conn):
        from crm import schema

        schema.upgrade(db)
        _remember_current(path, db.conn)


# Connections this process keeps open between Streamlit reruns. Opening one per rerun cost more than a title-only
# page: SQLite reads the whole schema on a new connection's first statement, and closing the last connection to a
# file checkpoints its write-ahead log and deletes it, for the next rerun to create again (BENCHMARKS.md).
IDLE_CONNECTIONS_KEPT = 8  # across all files: about the reruns one process runs at once
_idle: list[tuple[tuple, Database]] = []  # (the file's identity, the connection), oldest first
_lent: dict[int, tuple] = {}  # id(connection lent) -> the identity of its file
_idle_lock = threading.Lock()


def file_key(path: Path) -> tuple | None:
    """Which file ``path`` is now: a connection to a file since replaced or deleted must not be lent again."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (os.path.abspath(path), stat.st_dev, stat.st_ino)


def borrow(path: str | Path) -> Database:
    """A connection to ``path`` for one rerun, kept open from an earlier rerun when one is free; hand it back
    with ``give_back``. The connection is the caller's alone until then."""
    path = Path(path)
    key = file_key(path)
    db = None
    with _idle_lock:
        for index, (idle_key, idle_db) in enumerate(_idle):
            if key is not None and idle_key == key:
                db = idle_db
                del _idle[index]
                break
    if db is None:
        db = connect(path)
        key = file_key(path)
    else:
        _ensure_current(path, db)  # another process may have restored an older backup into the file
    if key is not None:
        with _idle_lock:
            _lent[id(db)] = key
    return db


def give_back(db: Database) -> None:
    """Return a borrowed connection (any transaction left open is rolled back), or close it when enough are kept."""
    with _idle_lock:
        key = _lent.pop(id(db), None)
    try:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
    except sqlite3.Error:
        key = None  # a connection in an unknown state is not lent again
    if key is not None:
        with _idle_lock:
            _idle.append((key, db))
            if len(_idle) <= IDLE_CONNECTIONS_KEPT:
                return
            _, db = _idle.pop(0)
    db.close()


# Files this process has upgraded (or found up to date), so a Streamlit rerun does not ask sqlite-utils for the
# pending migrations on every connection. Keyed by the resolved path; the file's identity (device and inode),
# SQLite's schema cookie (which every schema change, by any process, and every restore through the backup API
# increments) and the steps this code knows must all still match, or the file is checked again.
_up_to_date: dict[str, tuple] = {}
_up_to_date_lock = threading.Lock()


def _identity(path: Path, conn: sqlite3.Connection) -> tuple[str, tuple] | None:
    from crm import schema

    try:
        stat = os.stat(path)
    except OSError:
        return None
    cookie = conn.execute("PRAGMA schema_version").fetchone()[0]
    return str(path.resolve()), (stat.st_dev, stat.st_ino, cookie, tuple(schema.step_names()))


def _known_current(path: Path, conn: sqlite3.Connection) -> bool:
    identity = _identity(path, conn)
    with _up_to_date_lock:
        return identity is not None and _up_to_date.get(identity[0]) == identity[1]


def _remember_current(path: Path, conn: sqlite3.Connection) -> None:
    identity = _identity(path, conn)
    if identity is not None:
        with _up_to_date_lock:
            _up_to_date[identity[0]] = identity[1]


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to write-ahead logging (once per file; it persists).

    The switch needs the database to itself, and SQLite does not wait (busy timeout) for that: when several
    processes open a new file at once, the others retry briefly instead of failing with "database is locked".
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def transaction(db: Database) -> Iterator[Database]:
    """Run a block as one write transaction, begun IMMEDIATE so reads inside it see no stale data.

    A deferred BEGIN that reads and then writes fails with "database is locked" when another writer got
    there first; IMMEDIATE takes the write lock up front and waits (busy timeout) for it instead. On any
    exception everything in the block is rolled back.
    """
    if db.conn.in_transaction:
        # Nested use (a crm function calling another): the outer transaction already holds the lock.
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    try:
        db.conn.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise


def insert(db: Database, table: str, row: dict) -> int:
    """Insert one row and return its id (the caller holds the transaction and writes the audit entry).

    Plain SQL rather than Table.insert(), which re-reads the table's schema on every call. ``table`` and the
    keys of ``row`` are always names from crm's own code, never user input.
    """
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    cursor = db.conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def update_row(db: Database, table: str, row_id: int, values: dict) -> None:
    """Set ``values`` on one row, stamp updated_at and bump its version, the number a later save must still
    match. ``table`` and the keys of ``values`` come from crm's own code, never from user input."""
    assignments = {**values, "updated_at": clock.stamp()}
    db.execute(
        f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in assignments)}, version = version + 1 WHERE id = ?",
        [*assignments.values(), row_id],
    )
