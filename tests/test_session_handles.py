"""The browser's cookie holds a short-lived handle, never the session token. Regression: the session token itself
sat in a cookie any script on the page could read (Streamlit cannot set HttpOnly) and in an inline script."""

from crm.ui.session import Handles


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_handle_is_exchanged_for_its_token_until_it_expires():
    """Test that a handle gives back its session token while it lives, and nothing once its lifetime passed."""
    clock = Clock()
    handles = Handles(clock)
    handle = handles.issue("token-a", lifetime_seconds=60)

    assert handle != "token-a" and len(handle) >= 40
    assert handles.exchange(handle) == "token-a"
    clock.now += 59
    assert handles.exchange(handle) == "token-a"
    clock.now += 1
    assert handles.exchange(handle) is None
    clock.now -= 30
    assert handles.exchange(handle) is None  # gone for good, not just hidden


def test_a_new_handle_ends_the_previous_ones_of_that_session_only():
    """Test that issuing a handle for a session (a rotation) stops the session's earlier handles at once, and
    leaves other sessions' handles working."""
    handles = Handles(Clock())
    first = handles.issue("token-a", 60)
    other = handles.issue("token-b", 60)
    second = handles.issue("token-a", 60)

    assert handles.exchange(first) is None
    assert handles.exchange(second) == "token-a"
    assert handles.exchange(other) == "token-b"


def test_revoking_a_session_ends_its_handles():
    """Test that signing out (revoke) ends every handle of that session, and only of that session."""
    handles = Handles(Clock())
    mine, theirs = handles.issue("token-a", 60), handles.issue("token-b", 60)

    handles.revoke("token-a")

    assert handles.exchange(mine) is None
    assert handles.exchange(theirs) == "token-b"


def test_unknown_handles_give_nothing():
    """Test that a made-up handle, an empty one or a session token used as a handle gives nothing."""
    handles = Handles(Clock())
    handles.issue("token-a", 60)

    assert [handles.exchange(h) for h in ("made-up", "", "token-a")] == [None, None, None]
