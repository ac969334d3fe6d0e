"""This week: follow-ups due, relationships slipping, recent activity and referrals, for the user's scope."""

from datetime import timedelta

import streamlit as st

from crm import branches, clock, contacts, ical, interactions
from crm.errors import CRMError
from crm.ui import session
from crm.ui.widgets import day, flash, md, show_error

database, actor = session.require(__file__)
today = clock.now().date()
several_branches = len(branches.branches(database, actor)) > 1

st.title("This week")
st.caption(f"{md(branches.scope_label(database, actor))}, {today:%A} {day(today.isoformat())}")
flash()

st.subheader("Follow-ups due and overdue")
due = interactions.follow_ups(database, actor, today=today)
if several_branches:  # a regional lead reads them branch by branch
    due.sort(key=lambda row: row["branch"])
if not due:
    st.success("No follow-ups due this week.")
shown_branch = None
for row in due[:50]:
    if several_branches and row["branch"] != shown_branch:
        shown_branch = row["branch"]
        st.markdown(f"**{md(shown_branch)}**")
    when, what, done = st.columns([2, 7, 1])
    state = ":red[**Overdue**]" if row["state"] == "overdue" else "Due"
    when.markdown(f"{state}  \n{day(row['follow_up_on'])}")
    what.markdown(
        f"**{md(row['follow_up_action'] or 'Follow up')}** with {md(row['contacts'] or row['organisation'])}  \n"
        f"After: {md(row['summary'])} ({day(row['occurred_on'])})"
    )
    if done.button("Done", key=f"home_done_{row['id']}"):
        try:
            interactions.complete_follow_up(database, actor, row["id"])
        except CRMError as error:
            show_error(error)
        else:
            flash(f"Follow-up done: {row['follow_up_action'] or row['summary']}.")
            st.rerun()
if len(due) > 50:
    st.caption(f"Showing the first 50 of {len(due)}; see the Interactions page for the rest.")
st.download_button(
    "Follow-ups for your calendar (.ics)",
    data=ical.follow_ups_calendar(database, actor),  # built in this run: a deferred callable has no rerun around it
    file_name="partner-crm-follow-ups.ics",
    mime="text/calendar",
    key="home_follow_ups_ics",
    on_click="ignore",
    help="Every open follow-up as an all-day event. Importing a newer file updates these events, not copies them.",
)

st.subheader("Named contacts lapsing")
slipping = contacts.lapsing(database, actor, today=today)
if not slipping:
    st.success("Every named contact has been in touch within their keep-in-touch interval.")
else:
    st.dataframe(
        [
            {
                **({"Branch": r["branch"]} if several_branches else {}),
                "Status": contacts.RELATIONSHIPS[r["relationship"]],
                "Name": r["name"],
                "Job title": r["job_title"],
                "Organisation": r["organisation"],
                "Partner type": r["type_label"],
                "Last touched": day(r["last_touched_on"]) or "Never",
                "Every (days)": r["interval_days"],
                "Phone": r["phone_display"],
            }
            for r in (sorted(slipping, key=lambda r: r["branch"]) if several_branches else slipping)
        ],
        hide_index=True,
        width="stretch",
    )
    st.caption(f"{len(slipping)} named contacts to call. Any logged interaction resets the clock.")

st.subheader("Recent activity")
recent = interactions.search(database, actor, since=today - timedelta(days=14), limit=25)
if not recent:
    st.info("Nothing logged in the last two weeks.")
else:
    st.dataframe(
        [
            {
                "Date": day(r["occurred_on"]),
                **({"Branch": r["branch"]} if several_branches else {}),
                "Kind": r["kind"],
                "Summary": r["summary"],
                "With": r["contacts"] or r["organisation"] or "",
                "Logged by": r["logged_by"],
            }
            for r in recent
        ],
        hide_index=True,
        width="stretch",
    )

st.subheader(f"Referrals received in {today:%B}")
referrals = interactions.referrals_by_type(database, actor, today.replace(day=1), today)
if not referrals:
    st.info("No referrals logged this month yet.")
else:
    st.dataframe(
        [
            {
                **({"Branch": r["branch"]} if several_branches else {}),
                "Partner type": r["partner_type"],
                "Referrals": r["referrals"],
            }
            for r in referrals
        ],
        hide_index=True,
    )

st.subheader("Named contacts by partner type")
matrix = contacts.named_matrix(database, actor)
if matrix:
    st.dataframe(matrix, hide_index=True)
    st.caption("Active named contacts at organisations of each type. A zero is a gap.")
else:
    st.info("There are no branches yet. An administrator adds them under Regions and branches.")
