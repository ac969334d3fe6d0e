"""Opening the database: migrations, pragmas on every connection, upgrades that keep rows, transactions."""

import sqlite3

import pytest
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from crm import db, schema

# Rows an older release could hold, written with the columns of the first schema step (never edited once released).
OLD_ROWS = """
INSERT INTO settings (key, value) VALUES ('provider_name', 'Brightwater Homecare');
INSERT INTO regions (id, name, created_at) VALUES (1, 'North', '2025-01-01T09:00:00Z');
INSERT INTO branches (id, name, region_id, created_at) VALUES (1, 'Leeds', 1, '2025-01-01T09:00:00Z');
INSERT INTO users (id, username, display_name, password_hash, role, branch_id, created_at)
    VALUES (1, 'manager.leeds', 'Lee Leeds', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA', 'branch_manager', 1,
            '2025-01-01T09:00:00Z');
INSERT INTO organisations (id, name, type_code, postcode, phone, ods_code, created_at, created_by, updated_at)
    VALUES (1, 'Hyde Park Surgery', 'GP_PRACTICE', 'LS6 1AA', '+441134960001', 'B86001', '2025-01-02T09:00:00Z', 1,
            '2025-01-02T09:00:00Z');
INSERT INTO contacts (id, branch_id, organisation_id, name, job_title, email, notes, created_at, created_by,
                      updated_at, updated_by, version)
    VALUES (1, 1, 1, 'Priya Patel', 'Practice Manager', 'priya@example.nhs.uk', 'Line one
Line two', '2025-01-03T09:00:00Z', 1, '2025-01-04T09:00:00Z', 1, 3);
INSERT INTO audit_log (at, user_id, username, action, table_name, row_id, changes)
    VALUES ('2025-01-03T09:00:00Z', 1, 'manager.leeds', 'create', 'contacts', 1, '{"name": "Priya Patel"}')
"""
OLD_TABLES = ["settings", "regions", "branches", "users", "organisations", "contacts", "audit_log"]


def _pragmas(database) -> tuple:
    return (
        database.execute("PRAGMA foreign_keys").fetchone()[0],
        database.execute("PRAGMA journal_mode").fetchone()[0],
        database.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000,
    )


def _dump(database, tables: list[str]) -> dict[str, list[dict]]:
    return {table: database.execute_returning_dicts(f"SELECT * FROM [{table}] ORDER BY rowid") for table in tables}


def _steps() -> list:
    """Every schema step, in order (all of them are pending on an empty database)."""
    return schema.migrations.pending(Database(memory=True))


def _all_step_names() -> list[str]:
    return [step.name for step in _steps()]


def test_new_file_is_migrated(db_path):
    """Test that connecting to a new file creates it with every schema step applied and the reference data."""
    database = db.connect(db_path)

    assert db_path.exists()
    assert schema.pending(database) == []
    applied = [r["name"] for r in database.execute_returning_dicts("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert applied == _all_step_names()
    assert applied[0] == "0001_foundation"
    assert set(OLD_TABLES) <= set(database.table_names())
    codes = [r[0] for r in database.execute("SELECT code FROM organisation_types ORDER BY sort_order")]
    assert codes == [code for code, _ in schema.ORGANISATION_TYPES]
    database.close()


def test_parent_directory_created(tmp_path):
    """Test that the database's folder is created when missing (a fresh checkout has no data/ contents)."""
    path = tmp_path / "nested" / "deeper" / "crm.db"

    db.connect(path).close()

    assert path.exists()


def test_pragmas_on_every_connection(db_path):
    """Test that every connection, migrated or not, has foreign keys on, WAL and a busy timeout of 5 s or more."""
    connections = [db.connect(db_path), db.connect(db_path), db.connect(db_path, migrate=False)]

    assert [_pragmas(c) for c in connections] == [(1, "wal", True)] * 3
    for connection in connections:
        connection.close()


def test_foreign_keys_enforced(database):
    """Test that a contact pointing at a missing branch is refused by the database itself."""
    with pytest.raises(sqlite3.IntegrityError):
        database.execute(
            "INSERT INTO contacts (branch_id, organisation_id, name, created_at, updated_at) "
            "VALUES (99, 99, 'Nobody', 'x', 'x')"
        )


def test_reconnecting_is_a_no_op(db_path):
    """Test that opening an up-to-date database again changes nothing: same schema, same migration records."""
    first = db.connect(db_path)
    schema_version = first.execute("PRAGMA schema_version").fetchone()[0]
    records = first.execute_returning_dicts("SELECT * FROM _sqlite_migrations")
    first.close()

    again = db.connect(db_path)

    assert schema.pending(again) == []
    assert again.execute("PRAGMA schema_version").fetchone()[0] == schema_version
    assert again.execute_returning_dicts("SELECT * FROM _sqlite_migrations") == records
    again.close()


def test_that_a_process_checks_for_pending_migrations_once_per_file(db_path, monkeypatch):
    """Test that reconnecting to a file this process has upgraded does not check for pending migrations again
    (every Streamlit rerun connects), while a file replaced by a new one at the same path is upgraded anew.

    Regression test: db.connect ran schema.upgrade, a query of every applied step, on every connection."""
    upgrades = []
    real_upgrade = schema.upgrade
    monkeypatch.setattr(schema, "upgrade", lambda database: upgrades.append(1) or real_upgrade(database))
    for _ in range(3):
        db.connect(db_path).close()
    assert len(upgrades) == 1

    for leftover in db_path.parent.glob(db_path.name + "*"):
        leftover.unlink()
    sqlite3.connect(db_path).close()  # a new, empty file where the old one was
    replaced = db.connect(db_path)
    assert len(upgrades) == 2
    assert schema.pending(replaced) == []
    replaced.close()


def test_that_a_schema_changed_by_another_process_is_checked_again(db_path, monkeypatch):
    """Test that after another process (here: a plain connection) changes the schema of a file this process
    has already checked, the next connect checks for pending migrations again."""
    db.connect(db_path).close()
    with sqlite3.connect(db_path) as other:
        other.execute("DELETE FROM _sqlite_migrations WHERE name = ?", [_all_step_names()[-1]])
        other.execute("CREATE TABLE made_elsewhere (id INTEGER PRIMARY KEY)")
    other.close()
    upgrades = []
    monkeypatch.setattr(schema, "upgrade", lambda database: upgrades.append(schema.pending(database)))
    db.connect(db_path).close()
    assert upgrades == [[_all_step_names()[-1]]]


def test_unmigrated_connection_reports_pending(db_path):
    """Test that migrate=False leaves a new file empty, with every step pending, until it is upgraded."""
    database = db.connect(db_path, migrate=False)

    assert schema.pending(database) == _all_step_names()
    assert database.table_names() == []

    schema.upgrade(database)

    assert schema.pending(database) == []
    database.close()


def test_old_database_upgraded_keeps_rows(db_path):
    """Test that a database left at an older release (all but the last step) upgrades and keeps every row."""
    old = db.connect(db_path, migrate=False)
    last_step = _all_step_names()[-1]
    schema.migrations.apply(old, stop_before=last_step)
    for statement in OLD_ROWS.split(";"):
        old.execute(statement)
    assert schema.pending(old) == [last_step]
    before = _dump(old, OLD_TABLES)
    old.close()

    upgraded = db.connect(db_path)

    assert schema.pending(upgraded) == []
    after = _dump(upgraded, OLD_TABLES)
    # Later steps may add columns (and seed rows of their own), but every old row keeps every old value.
    kept = {t: [{k: row[k] for k in before[t][0]} for row in rows] for t, rows in after.items()}
    assert {t: [row for row in rows if row not in kept[t]] for t, rows in before.items()} == {t: [] for t in OLD_TABLES}
    assert [len(kept[t]) >= 1 for t in OLD_TABLES] == [True] * len(OLD_TABLES)
    upgraded.close()


def _future(step) -> Migrations:
    """Today's migrations plus one more step, as a later release would ship them."""
    future = Migrations("crm")
    for existing in _steps():
        future(name=existing.name)(existing.fn)
    future(name="9999_later_release")(step)
    return future


def test_new_step_applied_on_connect(db_path, monkeypatch):
    """Test that a step added by a later release is applied by the next connect, keeping the rows."""
    old = db.connect(db_path)
    for statement in OLD_ROWS.split(";"):
        old.execute(statement)
    before = _dump(old, OLD_TABLES)
    old.close()

    def add_column(database):
        database.execute("ALTER TABLE contacts ADD COLUMN preferred_name TEXT NOT NULL DEFAULT ''")

    monkeypatch.setattr(schema, "migrations", _future(add_column))
    upgraded = db.connect(db_path)

    assert schema.pending(upgraded) == []
    after = _dump(upgraded, OLD_TABLES)
    assert [row.pop("preferred_name") for row in after["contacts"]] == [""]
    assert after == before
    upgraded.close()


def test_failing_step_leaves_database_as_it_was(db_path, monkeypatch):
    """Test that a step failing half-way is rolled back whole: no new column, step still pending, rows intact."""
    old = db.connect(db_path)
    for statement in OLD_ROWS.split(";"):
        old.execute(statement)
    before = _dump(old, OLD_TABLES)
    columns = [c.name for c in old.table("contacts").columns]
    old.close()

    def half_done(database):
        database.execute("ALTER TABLE contacts ADD COLUMN preferred_name TEXT")
        database.execute("UPDATE contacts SET name = 'half-way'")
        raise RuntimeError("step failed")

    monkeypatch.setattr(schema, "migrations", _future(half_done))
    with pytest.raises(RuntimeError):
        db.connect(db_path)

    check = db.connect(db_path, migrate=False)
    assert schema.pending(check) == ["9999_later_release"]
    assert [c.name for c in check.table("contacts").columns] == columns
    assert _dump(check, OLD_TABLES) == before
    check.close()


def test_transaction_commits(database):
    """Test that a transaction's writes are visible to another connection once the block ends."""
    with db.transaction(database):
        database.execute("INSERT INTO settings (key, value) VALUES ('a', '1')")
        database.execute("INSERT INTO regions (name, created_at) VALUES ('North', 'x')")

    other = sqlite3.connect(database.execute("PRAGMA database_list").fetchone()[2])
    assert other.execute("SELECT value FROM settings WHERE key = 'a'").fetchone() == ("1",)
    assert other.execute("SELECT count(*) FROM regions WHERE name = 'North'").fetchone() == (1,)
    other.close()


def test_transaction_rolls_back_everything_on_error(database):
    """Test that an exception inside a transaction undoes every write in it, nested blocks included."""
    before = [database.table(t).count for t in ("settings", "regions", "branches")]
    with pytest.raises(RuntimeError):
        with db.transaction(database):
            database.execute("INSERT INTO settings (key, value) VALUES ('a', '1')")
            with db.transaction(database):
                database.execute("INSERT INTO regions (name, created_at) VALUES ('North', 'x')")
            database.execute("INSERT INTO branches (name, region_id, created_at) VALUES ('Leeds', 1, 'x')")
            raise RuntimeError("something went wrong")

    assert not database.conn.in_transaction
    assert [database.table(t).count for t in ("settings", "regions", "branches")] == before


def test_failed_inner_block_rolls_back_only_itself(database):
    """Test that a nested block that fails (and is handled) undoes its own writes and keeps the outer ones."""
    with db.transaction(database):
        database.execute("INSERT INTO settings (key, value) VALUES ('kept', '1')")
        with pytest.raises(sqlite3.IntegrityError):
            with db.transaction(database):
                database.execute("INSERT INTO settings (key, value) VALUES ('undone', '1')")
                database.execute("INSERT INTO settings (key, value) VALUES ('kept', 'duplicate key')")

    mine = "SELECT key, value FROM settings WHERE key IN ('kept', 'undone')"
    assert database.execute(mine).fetchall() == [("kept", "1")]


def test_transaction_rolls_back_on_database_error(database):
    """Test that a constraint failure mid-transaction leaves none of the block's earlier writes."""
    with pytest.raises(sqlite3.IntegrityError):
        with db.transaction(database):
            database.execute("INSERT INTO regions (name, created_at) VALUES ('North', 'x')")
            database.execute("INSERT INTO branches (name, region_id, created_at) VALUES ('Leeds', 42, 'x')")

    assert database.execute("SELECT count(*) FROM regions WHERE name = 'North'").fetchone()[0] == 0
    assert not database.conn.in_transaction


def test_transaction_takes_the_write_lock_up_front(database, db_path):
    """Test that a transaction holds the write lock from its start, so another writer cannot slip in between."""
    other = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    with db.transaction(database):
        database.execute("SELECT count(*) FROM settings").fetchone()  # a read first, as crm functions do
        with pytest.raises(sqlite3.OperationalError) as caught:
            other.execute("BEGIN IMMEDIATE")
        assert str(caught.value) == "database is locked"
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()
