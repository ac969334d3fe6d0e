"""The "Log a touch" dialog, opened from a row of a list: one click opens it with today's date and the user's
most used kind chosen, one more (Save) records the touch. "Done" on a follow-up opens the same dialog asking for
the outcome, and afterwards offers Undo for a short while."""

import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError
from streamlit.runtime.scriptrunner import get_script_run_ctx

from crm import clock, contacts, interactions
from crm.errors import CRMError
from crm.ui import layout, session
from crm.ui.widgets import choice, day, flash, guarded_save, md, show_error

UNDO_SECONDS = 30
_UNDO = "logdialog_undo"  # the last "Done": what Undo would reverse, and until when it is offered


@dataclass(frozen=True)
class Touch:
    """Who a touch is with. ``follow_up`` is the follow-up row a "Done" completes (else None)."""

    subject: str  # plain text: the people's names, or the organisation's
    branch_id: int
    contact_ids: tuple[int, ...] = ()
    organisation_id: int | None = None
    follow_up: dict | None = None


def person_lines(person: dict) -> tuple[str, str]:
    """Markdown for one person in a list: their job and organisation, then their phone as a ``tel:`` link and
    their email as a ``mailto:`` link (user text escaped)."""
    about = ", ".join(md(part) for part in (person.get("job_title"), person.get("organisation")) if part)
    reach = []
    if person.get("phone_link"):
        reach.append(f"[{md(person['phone_display'])}]({person['phone_link']})")
    if person.get("mobile_link"):
        reach.append(f"[{md(person['mobile_display'])}]({person['mobile_link']})")
    if person.get("email"):
        reach.append(f"[{md(person['email'])}](mailto:{quote(person['email'], safe='@')})")
    return about, " · ".join(reach)


CONTACTS_PAGE = "pages/contacts.py"  # where a person's name leads (as crm.ui.pages.PAGES names it)
_CONTACTS_URL = Path(CONTACTS_PAGE).stem
_registered: dict[str, st.Page] = {}  # the Contacts page object, by its script's path (one per app)


def contacts_page() -> st.Page | str:
    """The Contacts page as app.py registered it with st.navigation, or its path when it is not registered.

    st.page_link given a path resolves it on the disk (os.path.realpath) on every call: a list of fifty names paid
    that fifty times a rerun. Given the page object it only checks that page is the one registered. app.py keeps
    its st.Page objects to itself, so one equal to its own (same script, same address) is made once and kept.
    """
    ctx = get_script_run_ctx()
    if ctx is None:
        return CONTACTS_PAGE
    for page in ctx.pages_manager.get_pages().values():
        script = page.get("script_path", "")
        if page.get("url_pathname") == _CONTACTS_URL and script.endswith(CONTACTS_PAGE):
            if script not in _registered:
                _registered[script] = st.Page(script, title="Contacts", url_path=_CONTACTS_URL)
            return _registered[script]
    return CONTACTS_PAGE


def person_link(person: dict, container=st, page: st.Page | str | None = None) -> None:
    """The person's name, linking to their page on Contacts (``page``: contacts_page(), looked up once for a list).

    A page link needs the app's navigation (app.py's st.navigation); a page script run on its own (the benchmark,
    AppTest on a page file) has none, so there the name is a plain link to the same address instead of an error.
    """
    try:
        container.page_link(
            page or contacts_page(), label=md(person["name"]), query_params={"contact": str(person["id"])}
        )
    except StreamlitPageNotFoundError:
        container.markdown(f"[{md(person['name'])}](contacts?contact={int(person['id'])})")


def contact_card(person: dict, key: str, log_key: str, page: st.Page | str | None = None) -> None:
    """One named contact to call (This week's lapsing list, Coverage's Who to call): their name linking to their
    page, then their relationship and last touch, job, organisation, tap-to-call and email links; Log a touch
    beside them (below them on a phone). ``page``: contacts_page(), looked up once for the list."""
    # Each element is a message the server sends and the browser lays out: a list of these cards was most of a
    # page's cost, so the relationship shares the caption (logdialog.row has the rest).
    who, buttons = row(key)
    person_link(person, who, page)
    status = contacts.RELATIONSHIPS[person["relationship"]]  # "Never contacted" when never touched
    if person["last_touched_on"]:
        status += f", last {day(person['last_touched_on'])}"
    about, reach = person_lines(person)
    who.caption("  \n".join(part for part in (status, about, reach) if part))
    touch = Touch(
        subject=person["name"],
        branch_id=person["branch_id"],
        contact_ids=(person["id"],),
        organisation_id=person["organisation_id"],
    )
    button(log_key, touch, container=buttons)


def row(key: str) -> tuple:
    """A bordered card: what it is about (the first container returned), and its buttons (added to the second,
    the card itself): beside the text on a wide screen, below it and full width on a phone
    (crm.ui.layout.on_phone).

    Containers, not columns: columns are a message for the row and one for each column, and Streamlit's most
    expensive container to make; a list of ten cards spent 4.5 ms of a rerun on them.
    """
    card = st.container(border=True, key=key, horizontal=not layout.on_phone(), vertical_alignment="center")
    return card.container(), card


def button(key: str, touch: Touch, *, done: bool = False, container=st) -> None:
    """A "Log a touch" button (or "Done", for a follow-up) that opens the dialog for ``touch``."""
    label, icon = ("Done", ":material/check:") if done else ("Log a touch", ":material/add_call:")
    # Full width under the text on a phone (an easy target for a thumb); beside it, as wide as its label, elsewhere.
    width = "stretch" if layout.on_phone() else "content"
    if container.button(label, key=key, icon=icon, width=width):
        st.session_state.pop(_UNDO, None)  # Undo is offered until the next action
        (_done_dialog if done else _log_dialog)(key, touch)


@st.dialog("Log a touch")
def _log_dialog(key: str, touch: Touch) -> None:
    _in_own_connection(key, touch, done=False)


@st.dialog("Follow-up done")
def _done_dialog(key: str, touch: Touch) -> None:
    _in_own_connection(key, touch, done=True)


def _in_own_connection(key: str, touch: Touch, *, done: bool) -> None:
    # A dialog reruns on its own, after the page's script (and its connection) has finished: it opens its own
    # connection and re-reads who is acting, whose account may have been disabled since.
    database = session.open_database()
    try:
        actor = session.current_actor(database)
        if actor is None:
            st.error("You have been signed out. Sign in again to log this.")
            return
        _form(database, actor, key, touch, done=done)
    finally:
        database.close()


def _form(database, actor, key: str, touch: Touch, *, done: bool) -> None:
    st.markdown(f"With **{md(touch.subject)}**")
    if done and touch.follow_up:
        st.caption(f"Follow-up: {md(touch.follow_up['follow_up_action'] or touch.follow_up['summary'])}")
    kinds = interactions.kinds(database)
    today = clock.now().date()  # the same "today" crm checks dates against
    with st.form(f"{key}_form", border=False):
        left, right = st.columns(2)
        with left:
            kind = choice(
                "Kind",
                kinds,
                key=f"{key}_kind",
                value="code",
                text="label",
                index_of=interactions.most_used_kind(database, actor),
            )
        occurred_on = right.date_input("Date", value=today, key=f"{key}_date", format="DD/MM/YYYY", max_value=today)
        kind_label = next(k["label"] for k in kinds if k["code"] == kind)
        summary = st.text_input(
            "Outcome" if done else "Summary",
            key=f"{key}_summary",
            placeholder=f"Leave blank for “{interactions.default_summary(kind_label, touch.subject)}”",
        )
        with st.expander("Notes and a follow-up"):
            notes = st.text_area("Notes", key=f"{key}_notes", height=68)
            follow_up_on = st.date_input("Follow up on", value=None, key=f"{key}_follow_up", format="DD/MM/YYYY")
            follow_up_action = st.text_input("Follow-up action", key=f"{key}_follow_up_action")
        submitted = st.form_submit_button("Save", type="primary", width="stretch")
    values = {
        "kind_code": kind,
        "occurred_on": occurred_on,
        "summary": summary.strip() or interactions.default_summary(kind_label, touch.subject),
        "notes": notes,
        "follow_up_on": follow_up_on,
        "follow_up_action": follow_up_action,
    }
    if done and touch.follow_up:
        follow_up_id = touch.follow_up["id"]
        saved = guarded_save(
            key,
            submitted,
            lambda confirmed: interactions.complete_with_touch(
                database, actor, follow_up_id, values, confirmed=confirmed
            ),
            scope="fragment",
        )
    else:
        where = {
            "branch_id": touch.branch_id,
            "contact_ids": list(touch.contact_ids),
            "organisation_id": touch.organisation_id,
        }
        saved = guarded_save(
            key,
            submitted,
            lambda confirmed: interactions.log(database, actor, {**values, **where}, confirmed=confirmed),
            scope="fragment",
        )
    if saved is None:
        return
    _close(key)
    if done and touch.follow_up:
        st.session_state[_UNDO] = {
            "follow_up_id": touch.follow_up["id"],
            "touch_id": saved,
            "action": touch.follow_up["follow_up_action"] or touch.follow_up["summary"],
            "summary": values["summary"],
            "until": time.monotonic() + UNDO_SECONDS,
        }
    else:
        flash(f"Logged: {values['summary']}.")
    st.rerun()


def _close(key: str) -> None:
    """Forget what was typed in the dialog, so it opens afresh next time."""
    for widget in [k for k in st.session_state if str(k).startswith(f"{key}_")]:
        del st.session_state[widget]


def undo_offer(database, actor) -> None:
    """After "Done": say what was logged, with Undo (for UNDO_SECONDS, or until the next action)."""
    offer = st.session_state.get(_UNDO)
    if offer is None:
        return
    if time.monotonic() > offer["until"]:
        del st.session_state[_UNDO]
        return
    message, undo = st.columns([5, 1], vertical_alignment="center")
    message.success(f"Follow-up done: {md(offer['action'])}. Logged: {md(offer['summary'])}.")
    if undo.button("Undo", key="logdialog_undo_button", icon=":material/undo:", width="stretch"):
        del st.session_state[_UNDO]
        try:
            interactions.undo_complete_with_touch(database, actor, offer["follow_up_id"], offer["touch_id"])
        except CRMError as error:
            show_error(error)
        else:
            flash(f"Undone: the follow-up “{offer['action']}” is open again and the touch is deleted.")
            st.rerun()
