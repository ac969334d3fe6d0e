"""The part of crm/ui/downloads.py that runs when a download button is pressed: on a worker thread of its own, with
the database connection it opens, for the session captured when the page was drawn. (tests/test_journeys.py
presses the buttons in a real browser.)"""

import threading

import pytest

from crm import users
from crm.ui import downloads
from tests.conftest import PASSWORD


@pytest.fixture
def on_server(db_path, monkeypatch):
    """The database file as the running app finds it (CRM_DB)."""
    monkeypatch.setenv("CRM_DB", str(db_path))
    return db_path


def press(build, token):
    """Run a button's file-making callable on another thread, as Streamlit does; (file or exception, press)."""
    press = downloads._Press()
    outcome: list = []

    def run():
        try:
            outcome.append(downloads._make(build, token, press))
        except downloads.DownloadFailed as failed:
            outcome.append(failed)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    return outcome[0], press


def test_the_file_is_built_on_its_own_connection_for_the_actor_as_they_are_now(world, on_server):
    """Test that a press builds the file on a connection of the worker thread's own (not the drawing run's),
    for the session's user re-read from the database, and that the connection is closed afterwards."""
    token = users.start_session(world.db, world.manager_leeds)
    seen = []

    def build(database, actor):
        seen.append((database, actor.username, threading.current_thread() is not threading.main_thread()))
        return database.execute("SELECT name FROM branches WHERE id = ?", [actor.branch_id]).fetchone()[0]

    data, done = press(build, token)

    assert (data, done.failure, done.started.is_set(), done.finished.is_set()) == ("Leeds", None, True, True)
    [(database, username, on_worker)] = seen
    assert (username, on_worker, database is not world.db) == ("manager.leeds", True, True)
    with pytest.raises(Exception, match="closed"):
        database.execute("SELECT 1")


@pytest.mark.parametrize(
    ("end", "message"),
    [
        (
            lambda world, token: users.set_disabled(world.db, world.admin, "manager.leeds"),
            "No file: This account has been disabled. Ask an administrator.",
        ),
        (lambda world, token: users.end_session(world.db, token), "No file: You are signed out. Sign in to continue."),
        (
            lambda world, token: users.set_password(world.db, world.admin, "manager.leeds", PASSWORD + " again"),
            "No file: Your password or account was changed, so you were signed out. Sign in again.",
        ),
    ],
)
def test_a_session_ended_since_the_page_was_drawn_gets_no_file_and_says_why(world, on_server, end, message):
    """Test that an account disabled, signed out or with a new password since the page was drawn gets no file
    (the build never runs) and the reason to show under the button."""
    token = users.start_session(world.db, world.manager_leeds)
    end(world, token)
    built = []

    outcome, done = press(lambda database, actor: built.append(actor) or b"file", token)

    assert (str(outcome), done.failure, built) == (message, message, [])


def test_a_page_drawn_without_a_session_gets_no_file(world, on_server):
    """Test that a button drawn with no signed-in token (e.g. a page run on its own) gives no file."""
    outcome, done = press(lambda database, actor: b"file", None)
    assert (str(outcome), done.failure) == (
        "No file: You are signed out. Sign in to continue.",
        "No file: You are signed out. Sign in to continue.",
    )


def test_a_refused_build_says_why_and_a_broken_one_says_so_plainly(world, on_server, caplog):
    """Test that a build refused with a CRMError shows its message, and one failing with any other error shows a
    plain message (the details go to the server log, not to the user)."""
    token = users.start_session(world.db, world.manager_leeds)

    def refused(database, actor):
        users.list_users(database, actor)  # administrators only

    def broken(database, actor):
        raise ZeroDivisionError("secret detail")

    refusal, _ = press(refused, token)
    failure, _ = press(broken, token)

    assert str(refusal) == "No file: Your role does not allow this."
    assert str(failure) == "The file could not be made. Please try again; if it keeps failing, tell your administrator."
    assert "ZeroDivisionError: secret detail" in caplog.text
