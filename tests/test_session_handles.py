"""The browser's cookie holds a short-lived handle, never the session token. Regression: the session token itself
sat in a cookie any script on the page could read (Streamlit cannot set HttpOnly) and in an inline script."""

from crm.handles import Handles


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_handle_is_exchanged_for_its_token_until_it_expires(database):
    """Test that a handle gives back its session token while it lives, and nothing once its lifetime passed."""
    clock = Clock()
    handles = Handles(clock)
    handle = handles.issue(database, "token-a", lifetime_seconds=60)

    assert handle != "token-a" and len(handle) >= 40
    assert handles.exchange(database, handle) == "token-a"
    clock.now += 59
    assert handles.exchange(database, handle) == "token-a"
    clock.now += 1
    assert handles.exchange(database, handle) is None
    clock.now -= 30
    assert handles.exchange(database, handle) is None  # gone for good, not just hidden


def test_a_new_handle_ends_the_previous_ones_of_that_session_only(database):
    """Test that issuing a handle for a session (a rotation) stops the session's earlier handles at once, and
    leaves other sessions' handles working."""
    handles = Handles(Clock())
    first = handles.issue(database, "token-a", 60)
    other = handles.issue(database, "token-b", 60)
    second = handles.issue(database, "token-a", 60)

    assert handles.exchange(database, first) is None
    assert handles.exchange(database, second) == "token-a"
    assert handles.exchange(database, other) == "token-b"


def test_revoking_a_session_ends_its_handles(database):
    """Test that signing out (revoke) ends every handle of that session, and only of that session."""
    handles = Handles(Clock())
    mine, theirs = handles.issue(database, "token-a", 60), handles.issue(database, "token-b", 60)

    handles.revoke(database, "token-a")

    assert handles.exchange(database, mine) is None
    assert handles.exchange(database, theirs) == "token-b"


def test_unknown_handles_give_nothing(database):
    """Test that a made-up handle, an empty one or a session token used as a handle gives nothing."""
    handles = Handles(Clock())
    handles.issue(database, "token-a", 60)

    assert [handles.exchange(database, h) for h in ("made-up", "", "token-a")] == [None, None, None]


def test_a_handle_issued_by_one_worker_is_exchanged_by_another(db_path):
    """Test that a handle issued on one connection (one app worker) is exchanged on another (a reload that the
    proxy sends to the other worker), since handles live in the database, not in one process's memory."""
    from crm import db

    first, second = db.connect(db_path), db.connect(db_path)
    try:
        handle = Handles().issue(first, "token-a", 60)
        assert Handles().exchange(second, handle) == "token-a"
    finally:
        first.close()
        second.close()


def test_the_database_holds_neither_the_handle_nor_the_token(database):
    """Test that the stored row is no way into the session: neither the handle nor the token appears in it, and
    the sealed token does not open without the handle."""
    handle = Handles().issue(database, "token-secret-a", 60)
    rows = database.execute_returning_dicts("SELECT * FROM session_handles")
    text = repr(rows)
    assert len(rows) == 1 and handle not in text and "token-secret-a" not in text
    assert Handles().exchange(database, handle[:-1] + ("A" if handle[-1] != "A" else "B")) is None
