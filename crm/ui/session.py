"""The sign-in gate every page calls first, the first-run set-up screen, and the signed-in session.

Pages in pages/ can be opened by URL before app.py's navigation has run, so each page calls ``require()``
itself: with no valid session it renders the sign-in form (or the set-up screen) and stops the script.
"""

from pathlib import Path

import streamlit as st
from sqlite_utils import Database
from streamlit.errors import StreamlitAPIException

from crm import config, db, demo, settings, users
from crm.access import Actor
from crm.errors import CRMError, SessionEnded
from crm.ui import pages
from crm.ui.widgets import show_error

TOKEN_KEY = "crm_session_token"  # the signed-in session's secret token, also kept in a browser cookie
NOTICE_KEY = "crm_notice"  # a message to show on the sign-in form (why the user was signed out)
COOKIE_KEY = "crm_cookie_pending"  # a cookie change to send to the browser on the next run
COOKIE = "crm_session"
APP_KEY = "crm_through_app"  # set by app.py on every run: this tab has app.py's navigation and menu
RETURN_KEY = "crm_return_to"  # the page a signed-in user asked for before app.py had run (app.py goes there)


def open_database() -> Database:
    """A fresh connection for this rerun (reruns run on new threads; a cached connection would break)."""
    return db.connect(config.from_env().db_path)


def current_actor(database: Database) -> Actor | None:
    """The signed-in user, re-read from the database on every rerun, or None.

    The token comes from this tab's session state or, after a page reload or a link opened in a new tab,
    from the cookie. Idle time, disabling and password changes are checked server-side by resume_session.
    """
    token = st.session_state.get(TOKEN_KEY) or st.context.cookies.get(COOKIE)
    if not isinstance(token, str) or not token:  # (AppTest's stand-in context has no real cookies)
        return None
    try:
        actor = users.resume_session(database, token, config.from_env().idle_minutes)
    except SessionEnded as ended:
        if TOKEN_KEY in st.session_state:  # this tab was signed in: say why it no longer is
            _forget()
            st.session_state[NOTICE_KEY] = str(ended)
        return None
    st.session_state[TOKEN_KEY] = token
    return actor


def _forget() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    st.session_state[COOKIE_KEY] = ""  # expire the browser's cookie


def sign_out(database: Database, notice: str = "") -> None:
    """End the session in the database and in this browser."""
    if token := st.session_state.get(TOKEN_KEY):
        users.end_session(database, token)
    _forget()
    if notice:
        st.session_state[NOTICE_KEY] = notice


def send_cookie() -> None:
    """Write or expire the session cookie in the browser, when a sign-in or sign-out asked for it.

    Streamlit has no API to set cookies, so a line of JavaScript does it; the cookie only lets a reloaded
    page find its server-side session again (SameSite=Strict; the token is checked and expired server-side).
    """
    if COOKIE_KEY not in st.session_state:
        return
    token = st.session_state.pop(COOKIE_KEY)
    age = users.SESSION_HOURS * 3600 if token else 0
    st.html(
        f"<script>document.cookie = '{COOKIE}={token}; path=/; max-age={age}; SameSite=Strict';</script>",
        unsafe_allow_javascript=True,
    )


def require(page_file: str) -> tuple[Database, Actor]:
    """The database and the signed-in actor, for the page at ``page_file`` (pass ``__file__``).

    Signed out: draws the sign-in form (or, on a new database, the set-up screen) and stops the script.
    Signed in with a role the page is not for: a refusal, and nothing else.
    """
    roles = pages.roles_for(page_file)
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
    st.session_state[COOKIE_KEY] = token


def sign_in_form(database: Database) -> None:
    """The sign-in form; on success starts the session and reruns the app."""
    provider = settings.get(database, "provider_name", "Partner CRM")
    st.title(provider)
    st.caption("Partner CRM: named contacts at GP practices, OT teams, social services and other partners.")
    if notice := st.session_state.get(NOTICE_KEY):
        st.info(notice)
    with st.form("signin_form"):
        username = st.text_input("User name", key="signin_username", autocomplete="username")
        password = st.text_input("Password", type="password", key="signin_password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            actor = users.sign_in(database, username, password)
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
    if not submitted:
        return
    if password != again:
        st.error("Password again: the two passwords differ.")
        return
    try:
        actor = users.create_first_admin(database, username, full_name, password)
        if load_demo:
            with st.spinner("Loading demo data..."):
                demo.load(database, actor, password)
    except CRMError as error:
        show_error(error)
        return
    _start_session(database, actor)
    _enter_app()
    st.rerun()
