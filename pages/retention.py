"""Retention review: contacts untouched for a long time, to keep (with a reason), mark as left, or erase."""

from datetime import timedelta

import streamlit as st

from crm import clock, contacts, privacy, retention
from crm.access import ADMIN
from crm.errors import CRMError
from crm.ui import session
from crm.ui.confirm import erase_step
from crm.ui.widgets import day, flash, md, rows_table, show_error

database, actor = session.require(__file__)
today = clock.now().date()

st.title("Retention review")
period = retention.months(database)
st.write(
    f"Contacts nobody has logged a touch with for {period} months are listed here for review: personal data "
    "should not be kept longer than it is needed. Keep them (saying why, until a next review), mark them as "
    "having left, or erase them."
)
flash()
if actor.role == ADMIN:
    with st.form("retention_settings_form"):
        months = st.number_input(
            "Review contacts untouched for (months)", min_value=1, max_value=120, value=period, key="retention_months"
        )
        if st.form_submit_button("Save"):
            try:
                retention.set_months(database, actor, months)
            except CRMError as error:
                show_error(error)
            else:
                flash("Saved the review period.")
                st.rerun()

# A selection names a row of the table as the user saw it. It is resolved to that contact's id and version once,
# when the user selects, against the rows drawn in the run they clicked on, and kept in session state: a later
# rerun re-reads the list (a colleague may have kept or erased someone above), and the same row number would
# then point at someone else.
CHOSEN = "retention_chosen"  # {"id", "version", "name"} of the contact the user selected
DRAWN = "retention_drawn"  # the table's rows as drawn in the last run, what a selection index points into
SELECTED = "retention_selected"  # the selection last resolved


def choose(selected: list[int]) -> dict | None:
    """The contact the user chose: re-resolved only when the selection itself changes."""
    if selected != st.session_state.get(SELECTED):
        st.session_state[SELECTED] = selected
        drawn = st.session_state.get(DRAWN, [])
        st.session_state[CHOSEN] = drawn[selected[0]] if selected and selected[0] < len(drawn) else None
    return st.session_state.get(CHOSEN)


def done(message: str) -> None:
    """After an action: say so, and forget the selection (the table's and the resolved one) before rerunning."""
    flash(message)
    for key in ("retention_table", CHOSEN, SELECTED):
        st.session_state.pop(key, None)
    st.rerun()


SHOWN = 200  # contacts listed, longest untouched first; deciding on them brings the next ones up
due, due_count = retention.due_first(database, actor, SHOWN, today=today)
if not due:
    st.session_state.pop(CHOSEN, None)
    st.success("Nothing to review: every contact has been in touch within the period, or was reviewed.")
    st.stop()
event = rows_table(
    [
        {
            "Name": r["name"],
            "Job title": r["job_title"],
            "Organisation": r["organisation"],
            "Branch": r["branch"],
            "Last touched": day(r["last_touched_on"]) or "Never",
            "Status": contacts.STATUSES[r["status"]],
            "Last kept because": r["retention_reason"],
        }
        for r in due
    ],
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    key="retention_table",
    width="stretch",
)
chosen = choose(list(event.selection.rows) if event else [])
st.session_state[DRAWN] = [{"id": r["id"], "version": r["version"], "name": r["name"]} for r in due]
if chosen is None:
    shown = f"Showing the {len(due)} longest untouched of {due_count}" if due_count > len(due) else f"{due_count}"
    st.caption(f"{shown} to review. Select one to decide.")
    st.stop()
current = next((r for r in due if r["id"] == chosen["id"]), None)
if current is None:
    st.info(f"{md(chosen['name'])} is no longer due for review: someone has dealt with them since you chose them.")
    st.stop()
st.subheader(md(current["name"]))
if current["version"] != chosen["version"]:
    st.info("Someone has changed this contact since you chose them: select them again to act on their record.")
keep_tab, left_tab, erase_tab = st.tabs(["Keep", "Mark as left", "Erase"])
with keep_tab, st.form("retention_keep_form"):
    reason = st.text_input("Why keep them", key="retention_reason", placeholder="e.g. still our named contact")
    review_on = st.date_input(
        "Review again on",
        value=today + timedelta(days=365),
        min_value=today + timedelta(days=1),
        format="DD/MM/YYYY",
        key="retention_review_on",
    )
    if st.form_submit_button("Keep", type="primary"):
        try:
            retention.keep(database, actor, chosen["id"], reason, review_on, expected_version=chosen["version"])
        except CRMError as error:
            show_error(error)
        else:
            done(f"Kept {chosen['name']} until {day(review_on.isoformat())}.")
with left_tab:
    if current["status"] == "left":
        st.write("Already marked as left.")
    elif st.button("Mark as left", key="retention_mark_left"):
        try:
            contacts.mark_left(database, actor, chosen["id"], chosen["version"])
        except CRMError as error:
            show_error(error)
        else:
            done(f"{chosen['name']} is marked as left.")
with erase_tab:
    st.warning(
        "Erasing removes their details everywhere the app holds them, in every branch they were at. "
        "It cannot be undone."
    )
    confirmed = erase_step("retention_erase", chosen)
    if confirmed is not None:
        try:
            privacy.erase(database, actor, confirmed["id"], expected_version=confirmed["version"])
        except CRMError as error:
            show_error(error)
        else:
            done("Erased.")
