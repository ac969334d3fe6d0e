"""Download buttons whose file is made when pressed: the one way pages offer a file built at click time.

Streamlit runs a download button's callable after the script that drew the page has finished, on a worker thread
with no rerun around it. So the callable here opens its own database connection, re-checks the session that was
signed in when the page was drawn (the account may have been disabled or signed out since: no file then), builds
the file with a Streamlit-free ``build(database, actor)`` from crm/, and closes the connection.

When building fails, Streamlit itself only shows a generic "Failed to generate file for download" under the
button for a few seconds. To say why, each button sits in a fragment of its own and its click reruns that
fragment: the rerun waits for the build that the same click started and shows its failure under the button.
(A fragment rerun keeps the page's other download buttons valid; a full-page rerun would withdraw their
callables while the click's request is still on its way.)
"""

import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Literal

import streamlit as st
from sqlite_utils import Database

from crm import config, users
from crm.access import Actor
from crm.errors import CRMError, SessionEnded

Build = Callable[[Database, Actor], bytes | str]

_LOG = logging.getLogger(__name__)
START_SECONDS = 10  # how long a click's rerun waits for the file request that the same click sent
BUILD_SECONDS = 600  # the longest a file may take to build before the rerun stops waiting for it
FAILED = "The file could not be made. Please try again; if it keeps failing, tell your administrator."
NOT_STARTED = "The download did not start. Please press the button again."


class DownloadFailed(Exception):
    """A deferred download gave no file; the message is what the user is told."""


class _Press:
    """What happened to the file the button drawn in one run builds: shared by the worker thread that builds it
    and the rerun that reports on it."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.finished = threading.Event()
        self.failure: str | None = None


def deferred_download(
    label: str,
    build: Build,
    *,
    file_name: str,
    mime: str,
    key: str,
    type: Literal["primary", "secondary", "tertiary"] = "secondary",
    help: str | None = None,
) -> None:
    """A download button whose file ``build(database, actor)`` makes when it is pressed, for the session
    signed in now; a failure (session ended, permission, any error) gives no file and a message under it."""
    from crm.ui import session  # (crm.ui.session imports crm.ui.widgets, which imports this module)

    token = st.session_state.get(session.TOKEN_KEY)
    _button(label, build, file_name, mime, key, token if isinstance(token, str) else None, type, help)


@st.fragment
def _button(
    label: str,
    build: Build,
    file_name: str,
    mime: str,
    key: str,
    token: str | None,
    kind: Literal["primary", "secondary", "tertiary"],
    help: str | None,
) -> None:
    press = _Press()
    st.download_button(
        label,
        partial(_make, build, token, press),
        file_name=file_name,
        mime=mime,
        key=key,
        help=help,
        type=kind,
        on_click=_report,
        args=(key, press),
    )
    if failure := st.session_state.pop(_failure_key(key), None):
        st.error(failure)


def _failure_key(key: str) -> str:
    return f"{key}_failure"


def _make(build: Build, token: str | None, press: _Press) -> bytes | str:
    """Build the file on Streamlit's worker thread, on a connection of its own; raise to give no file."""
    from crm.ui import session

    press.failure = None
    press.finished.clear()
    press.started.set()
    try:
        database = session.open_database()
        try:
            if token is None:
                raise SessionEnded("You are signed out. Sign in to continue.")
            actor = users.resume_session(database, token, config.from_env().idle_minutes)
            return build(database, actor)
        finally:
            database.close()
    except SessionEnded as ended:
        press.failure = f"No file: {ended}"
    except CRMError as error:
        press.failure = f"No file: {error}"
    except Exception:
        _LOG.exception("building the file for a download failed")
        press.failure = FAILED
    finally:
        press.finished.set()
    raise DownloadFailed(press.failure)


def _report(key: str, press: _Press) -> None:
    """At the start of the rerun a click causes: wait for that click's file and keep its failure to show."""
    if not press.started.wait(START_SECONDS):
        failure: str | None = NOT_STARTED
    elif not press.finished.wait(BUILD_SECONDS):
        failure = FAILED
    else:
        failure = press.failure
    if failure:
        st.session_state[_failure_key(key)] = failure
