"""The sign-in gate every page calls first, the first-run set-up screen, and the signed-in session.

Pages in pages/ can be opened by URL before app.py's navigation has run, so each page calls ``require()``
itself: with no valid session it renders the sign-in form (or the set-up screen) and stops the script.
"""

import threading
import time
from pathlib import Path

import streamlit as st
from sqlite_utils import Database
from streamlit.errors import StreamlitAPIException

from crm import config, db, demo, settings, users
from crm.access import Actor
from crm.errors import CRMError, SessionEnded
from crm.handles import Handles
from crm.ui import pages
from crm.ui.widgets import md, show_error

TOKEN_KEY = "crm_session_token"  # the signed-in session's secret token: server-side only, never sent to the browser
NOTICE_KEY = "crm_notice"  # a message to show on the sign-in form (why the user was signed out)
COOKIE_KEY = "crm_cookie_pending"  # a cookie change to send to the browser on the next run
HANDLE_AT_KEY = "crm_handle_issued_at"  # when this tab last gave the browser a new handle
COOKIE = "crm_session"
APP_KEY = "crm_through_app"  # set by app.py on every run: this tab has app.py's navigation and menu
RETURN_KEY = "crm_return_to"  # the page a signed-in user asked for before app.py had run (app.py goes there)

HANDLE_ROTATE_SECONDS = 300  # while someone works, the browser's handle is replaced this often


HANDLES = Handles()


def open_database() -> Database:
    """A connection of its own, for work outside app.py's rerun (a dialog, a download being built); close it."""
    return db.connect(config.from_env().db_path)


class _ThisRun(threading.local):
    """What app.py opened for the rerun running on this thread, for the page it runs (``require``)."""

    database: Database | None = None
    actor: Actor | None = None


_THIS_RUN = _ThisRun()


def start_run() -> tuple[Database, Actor | None]:
    """app.py's start of a rerun: a connection borrowed from the ones kept open between reruns, and the
    signed-in user. The page app.py then runs reuses both, rather than connecting and resuming again.
    End the run with ``end_run``."""
    database = db.borrow(config.from_env().db_path)
    try:
        actor = current_actor(database)
    except BaseException:
        db.give_back(database)
        raise
    _THIS_RUN.database, _THIS_RUN.actor = database, actor
    return database, actor


def end_run(database: Database) -> None:
    """Hand the run's connection back. Nothing may use it after the run: a dialog or a download opens its own."""
    _THIS_RUN.database = _THIS_RUN.actor = None
    db.give_back(database)


def current_actor(database: Database) -> Actor | None:
    """The signed-in user, re-read from the database on every rerun, or None.

    The token comes from this tab's session state or, after a page reload or a link opened in a new tab,
    from exchanging the cookie's handle (see Handles). Idle time, disabling and password changes are checked
    server-side by resume_session.
    """
    token = st.session_state.get(TOKEN_KEY)
    from_cookie = False
    if not token:
        handle = st.context.cookies.get(COOKIE)
        if isinstance(handle, str) and handle:  # (AppTest's stand-in context has no real cookies)
            token, from_cookie = HANDLES.exchange(database, handle), True
    if not isinstance(token, str) or not token:
        return None
    idle_minutes = config.from_env().idle_minutes
    try:
        actor = users.resume_session(database, token, idle_minutes)
    except SessionEnded as ended:
        HANDLES.revoke(database, token)
        if TOKEN_KEY in st.session_state:  # this tab was signed in: say why it no longer is
            _forget()
            st.session_state[NOTICE_KEY] = str(ended)
        return None
    st.session_state[TOKEN_KEY] = token
    issued = st.session_state.get(HANDLE_AT_KEY, 0.0)
    if from_cookie or time.monotonic() - issued > min(HANDLE_ROTATE_SECONDS, idle_minutes * 30):
        _new_handle(database, token, idle_minutes)
    return actor


def _new_handle(database: Database, token: str, idle_minutes: int) -> None:
    """Give the browser a fresh handle for this session (sent by send_cookie); the old one stops working."""
    st.session_state[COOKIE_KEY] = HANDLES.issue(database, token, idle_minutes * 60)
    st.session_state[HANDLE_AT_KEY] = time.monotonic()


def _forget() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    st.session_state[COOKIE_KEY] = ""  # expire the browser's cookie


def sign_out(database: Database, notice: str = "") -> None:
    """End the session in the database and in this browser."""
    if token := st.session_state.get(TOKEN_KEY):
        HANDLES.revoke(database, token)
        users.end_session(database, token)
    _forget()
    if notice:
        st.session_state[NOTICE_KEY] = notice


def send_cookie() -> None:
    """Write or expire the session cookie in the browser, when a sign-in, a new handle or a sign-out asked for it.

    Streamlit has no API to set cookies (so none can be HttpOnly): a line of JavaScript writes one holding a
    short-lived handle, never the session token (see Handles). SameSite=Strict always; Secure when the app is
    served over HTTPS (directly, or by a proxy that says so in X-Forwarded-Proto).
    """
    if COOKIE_KEY not in st.session_state:
        return
    handle = st.session_state.pop(COOKIE_KEY)
    age = config.from_env().idle_minutes * 60 if handle else 0
    secure = "; Secure" if _served_over_https() else ""
    st.html(
        f"<script>document.cookie = '{COOKIE}={handle}; path=/; max-age={age}; SameSite=Strict{secure}';</script>",
        unsafe_allow_javascript=True,
    )


def _served_over_https() -> bool:
    """Whether the browser reached the app over HTTPS: a reverse proxy's X-Forwarded-Proto, else the page URL."""
    try:
        forwarded = st.context.headers.get("X-Forwarded-Proto") or ""
        url = st.context.url or ""
    except Exception:  # no browser behind this run (AppTest): nothing to say
        return False
    if forwarded:
        return forwarded.split(",")[0].strip().lower() == "https"
    return url.lower().startswith("https://")


def require(page_file: str) -> tuple[Database, Actor]:
    """The database and the signed-in actor, for the page at ``page_file`` (pass ``__file__``).

    Signed out: draws the sign-in form (or, on a new database, the set-up screen) and stops the script.
    Signed in with a role the page is not for: a refusal, and nothing else.
    """
    roles = pages.roles_for(page_file)
    if _THIS_RUN.database is not None:  # run by app.py, which has connected and resumed the session
        database, actor = _THIS_RUN.database, _THIS_RUN.actor
    else:  # a page opened before app.py has run, or run on its own (AppTest)
        database = open_database()
        actor = current_actor(database)
    send_cookie()
    if actor is None or APP_KEY not in st.session_state:
        # Only reached when the page runs without app.py: before app.py has first run on a new server (or a new
        # worker behind the proxy), Streamlit serves pages/ on their own (listing them all in its menu, with no
        # Sign out). Go through app.py, which sets up the navigation for good and shows its gate or the user's
        # menu, and then (signed in) this page again; a page tested on its own carries on right here.
        if actor is not None:
            st.session_state[RETURN_KEY] = f"pages/{Path(page_file).name}"
        _enter_app()
        st.session_state.pop(RETURN_KEY, None)
    if actor is None:
        gate(database)
        st.stop()
    if actor.role not in roles:
        st.error("This page is not available to your role.")
        st.stop()
    return database, actor


def gate(database: Database) -> None:
    """What a signed-out visitor sees: set-up on a new database, otherwise the sign-in form."""
    if users.count(database) == 0:
        setup_form(database)
    else:
        sign_in_form(database)


def _enter_app() -> None:
    """Run app.py, which draws the navigation for the signed-in user's role (or the gate).

    When the running script is a page file on its own (AppTest's page tests), there is no app.py to go to.
    """
    try:
        st.switch_page("app.py")
    except StreamlitAPIException:
        return


def _start_session(database: Database, actor: Actor) -> None:
    token = users.start_session(database, actor)
    st.session_state.pop(NOTICE_KEY, None)
    st.session_state[TOKEN_KEY] = token
    _new_handle(database, token, config.from_env().idle_minutes)


def client_address() -> str | None:
    """The browser's network address as Streamlit saw it, for throttling sign-ins; None where unknown (AppTest)."""
    try:
        address = st.context.ip_address
    except (AttributeError, KeyError, RuntimeError):
        return None
    return address if isinstance(address, str) and address else None


def sign_in_form(database: Database) -> None:
    """The sign-in form; on success starts the session and reruns the app."""
    provider = settings.get(database, "provider_name", "Partner CRM")
    st.title(md(provider))
    st.caption("Partner CRM: named contacts at GP practices, OT teams, social services and other partners.")
    if notice := st.session_state.get(NOTICE_KEY):
        st.info(md(notice))
    with st.form("signin_form"):
        username = st.text_input("User name", key="signin_username", autocomplete="username")
        password = st.text_input("Password", type="password", key="signin_password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            actor = users.sign_in(database, username, password, address=client_address())
        except CRMError as error:
            show_error(error)
        else:
            _start_session(database, actor)
            _enter_app()
            st.rerun()
    if settings.get(database, "demo_loaded") == "1":
        with st.expander("Demo accounts", expanded=True):
            st.write(
                "Demo data is loaded. These accounts use the password chosen at set-up (the administrator account too):"
            )
            st.table([{"User name": name, "Role": role, "Sees": where} for name, role, where in demo.demo_accounts()])


def setup_form(database: Database) -> None:
    """First run: create the first administrator (there is no default password) and maybe demo data."""
    st.title("Set up Partner CRM")
    st.write(
        "This database has no users yet. Create the first administrator account. "
        "There is no default password: choose one of at least "
        f"{users.MIN_PASSWORD_LENGTH} characters (a few random words work well)."
    )
    with st.form("setup_form"):
        username = st.text_input("Administrator user name", key="setup_username")
        full_name = st.text_input("Full name", key="setup_full_name")
        password = st.text_input("Password", type="password", key="setup_password")
        again = st.text_input("Password again", type="password", key="setup_password_again")
        load_demo = st.checkbox(
            "Load demo data (a fictional provider with 12 branches; demo accounts use this password)",
            key="setup_demo",
        )
        submitted = st.form_submit_button("Create administrator", type="primary")
    # One place for the form's messages, emptied as soon as the form is sent again: an error from the last try
    # must not stay on screen while this one runs (loading the demo data takes a while).
    messages = st.empty()
    if not submitted:
        return
    if password != again:
        messages.error("Password again: the two passwords differ.")
        return
    messages.empty()
    try:
        actor = users.create_first_admin(database, username, full_name, password)
        if load_demo:
            with messages.container(), st.spinner("Loading demo data..."):
                demo.load(database, actor, password)
    except CRMError as error:
        with messages.container():
            show_error(error)
        return
    _start_session(database, actor)
    _enter_app()
    st.rerun()
