"""Connections kept open between reruns (db.borrow / db.give_back): reused, never shared, never stale."""

import sqlite3
import threading

import pytest

from crm import db


@pytest.fixture
def idle_emptied():
    """Each test starts and ends with no idle connections of other tests' files."""
    _close_idle()
    yield
    _close_idle()


def _close_idle() -> None:
    with db._idle_lock:
        idle = [database for _, database in db._idle]
        db._idle.clear()
    for database in idle:
        database.close()


def _closed(database) -> bool:
    try:
        database.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


def test_a_connection_given_back_is_lent_again_and_sees_what_others_wrote_since(tmp_path, idle_emptied):
    path = tmp_path / "crm.db"
    first = db.borrow(path)
    db.give_back(first)
    with db.connect(path) as other:
        other.execute("INSERT INTO settings (key, value) VALUES ('provider_name', 'Brightwater Homecare')")
    again = db.borrow(path)
    assert again is first
    assert again.execute("SELECT value FROM settings WHERE key = 'provider_name'").fetchall() == [
        ("Brightwater Homecare",)
    ]
    db.give_back(again)


def test_two_borrowers_at_once_get_different_connections(tmp_path, idle_emptied):
    path = tmp_path / "crm.db"
    one, two = db.borrow(path), db.borrow(path)
    assert one is not two
    db.give_back(one)
    db.give_back(two)


def test_a_transaction_left_open_is_rolled_back_when_the_connection_is_given_back(tmp_path, idle_emptied):
    path = tmp_path / "crm.db"
    borrowed = db.borrow(path)
    borrowed.execute("BEGIN IMMEDIATE")
    borrowed.execute("INSERT INTO settings (key, value) VALUES ('provider_name', 'Half written')")
    db.give_back(borrowed)
    again = db.borrow(path)
    assert again is borrowed
    assert not again.conn.in_transaction
    assert again.execute("SELECT * FROM settings WHERE key = 'provider_name'").fetchall() == []
    with db.connect(path) as other:  # and no lock is left held
        other.execute("INSERT INTO settings (key, value) VALUES ('provider_name', 'Brightwater Homecare')")
    db.give_back(again)


def test_a_connection_to_a_file_since_replaced_is_not_lent(tmp_path, idle_emptied):
    path = tmp_path / "crm.db"
    old = db.borrow(path)
    db.give_back(old)
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"crm.db{suffix}").unlink(missing_ok=True)
    with db.connect(path) as fresh:
        fresh.execute("INSERT INTO settings (key, value) VALUES ('provider_name', 'The new file')")
    borrowed = db.borrow(path)
    assert borrowed is not old
    assert borrowed.execute("SELECT value FROM settings WHERE key = 'provider_name'").fetchall() == [("The new file",)]
    db.give_back(borrowed)


def test_at_most_the_kept_number_stay_open_and_the_oldest_given_back_are_closed(tmp_path, idle_emptied):
    path = tmp_path / "crm.db"
    borrowed = [db.borrow(path) for _ in range(db.IDLE_CONNECTIONS_KEPT + 2)]
    for database in borrowed:
        db.give_back(database)
    assert [_closed(database) for database in borrowed] == [True, True] + [False] * db.IDLE_CONNECTIONS_KEPT
    assert [database for _, database in db._idle] == borrowed[2:]


def test_a_connection_borrowed_on_one_thread_serves_a_rerun_on_another(tmp_path, idle_emptied):
    path = tmp_path / "crm.db"
    db.give_back(db.borrow(path))  # opened on this thread
    seen = []

    def rerun() -> None:
        database = db.borrow(path)
        with db.transaction(database):
            database.execute("INSERT INTO settings (key, value) VALUES ('provider_name', 'From a script thread')")
        seen.append(database.execute("SELECT value FROM settings WHERE key = 'provider_name'").fetchall())
        db.give_back(database)

    thread = threading.Thread(target=rerun)
    thread.start()
    thread.join()
    assert seen == [[("From a script thread",)]]
