"""The sign-in gate every page calls first, the first-run set-up screen, and the signed-in session.

Pages in pages/ can be opened by URL before app.py's navigation has run, so each page calls ``require()``
itself: with no valid session it renders the sign-in form (or the set-up screen) and stops the script.
"""

import time

import streamlit as st
from sqlite_utils import Database

from crm import config, db, demo, settings, users
from crm.access import Actor
from crm.errors import CRMError
from crm.ui import pages
from crm.ui.widgets import show_error

USER_KEY = "crm_user"  # {"id": ..., "session_version": ...} of the signed-in user
ACTIVITY_KEY = "crm_last_activity"
NOTICE_KEY = "crm_notice"  # a message to show on the sign-in form (why the user was signed out)


def open_database() -> Database:
    """A fresh connection for this rerun (reruns run on new threads; a cached connection would break)."""
    return db.connect(config.from_env().db_path)


def current_actor(database: Database) -> Actor | None:
    """The signed-in user, re-read from the database, or None (and the session cleared) when the account
    was disabled, its sessions revoked, or it has been idle too long."""
    session = st.session_state.get(USER_KEY)
    if not session:
        return None
    idle_limit = config.from_env().idle_minutes * 60
    last = st.session_state.get(ACTIVITY_KEY, 0.0)
    if time.time() - last > idle_limit:
        sign_out(f"You were signed out after {idle_limit // 60} minutes without activity. Sign in again.")
        return None
    actor = users.current(database, session["id"], session["session_version"])
    if actor is None:
        sign_out("Your session has ended (the account was changed or disabled). Sign in again.")
        return None
    st.session_state[ACTIVITY_KEY] = time.time()
    return actor


def sign_out(notice: str = "") -> None:
    """Forget the signed-in user (and everything else this session held)."""
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if notice:
        st.session_state[NOTICE_KEY] = notice


def require(page_file: str) -> tuple[Database, Actor]:
    """The database and the signed-in actor, for the page at ``page_file`` (pass ``__file__``).

    Signed out: draws the sign-in form (or, on a new database, the set-up screen) and stops the script.
    Signed in with a role the page is not for: a refusal, and nothing else.
    """
    roles = pages.roles_for(page_file)
    database = open_database()
    actor = current_actor(database)
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


def _start_session(actor: Actor) -> None:
    st.session_state.pop(NOTICE_KEY, None)
    st.session_state[USER_KEY] = {"id": actor.id, "session_version": actor.session_version}
    st.session_state[ACTIVITY_KEY] = time.time()


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
            _start_session(actor)
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
    _start_session(actor)
    st.rerun()
