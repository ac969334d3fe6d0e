"""Retention review: contacts untouched for a long time, to keep (with a reason), mark as left, or erase."""

from datetime import timedelta

import streamlit as st

from crm import clock, contacts, privacy, retention
from crm.access import ADMIN
from crm.errors import CRMError
from crm.ui import session
from crm.ui.widgets import day, flash, md, show_error

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

due = retention.due(database, actor, today=today)
if not due:
    st.success("Nothing to review: every contact has been in touch within the period, or was reviewed.")
    st.stop()
event = st.dataframe(
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
if not (event and event.selection.rows):
    st.caption(f"{len(due)} to review. Select one to decide.")
    st.stop()
chosen = due[event.selection.rows[0]]
st.subheader(md(chosen["name"]))
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
            retention.keep(database, actor, chosen["id"], reason, review_on)
        except CRMError as error:
            show_error(error)
        else:
            flash(f"Kept {chosen['name']} until {day(review_on.isoformat())}.")
            st.rerun()
with left_tab:
    if chosen["status"] == "left":
        st.write("Already marked as left.")
    elif st.button("Mark as left", key="retention_mark_left"):
        try:
            contacts.mark_left(database, actor, chosen["id"], chosen["version"])
        except CRMError as error:
            show_error(error)
        else:
            flash(f"{chosen['name']} is marked as left.")
            st.rerun()
with erase_tab:
    st.warning("Erasing removes their details everywhere in the branch's records. It cannot be undone.")
    if st.button("Erase", key="retention_erase"):
        try:
            privacy.erase(database, actor, chosen["id"])
        except CRMError as error:
            show_error(error)
        else:
            flash("Erased.")
            st.rerun()
