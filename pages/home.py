"""This week: follow-ups due, relationships slipping, recent activity and referrals, for the user's scope."""

from datetime import timedelta

import streamlit as st

from crm import branches, clock, contacts, ical, interactions
from crm.access import BRANCH_MANAGER
from crm.ui import cached, logdialog, session
from crm.ui.downloads import deferred_download
from crm.ui.logdialog import Touch, person_lines, person_link, undo_offer
from crm.ui.widgets import day, flash, md, rows_table

database, actor = session.require(__file__)
# Each row listed is several elements to draw (a card, links, buttons; a card cost about 0.8 ms of the rerun): these
# lists are a week's first calls, not the whole file, so a regional lead's page costs what a branch manager's does.
FIRST_SHOWN = 10  # rows of each list at first (follow-ups soonest first, lapsing contacts most urgent first)
MOST_SHOWN = 100  # "Show more" adds FIRST_SHOWN rows at a time up to this; the rest are on Interactions and Contacts
MATRIX_BRANCHES = 30  # up to this many branches get a column each in "Named contacts by partner type"
today = clock.now().date()
# Counted from the regions in scope (a lead's region is their scope), not by listing every branch with its contacts.
branch_count = 1 if actor.role == BRANCH_MANAGER else sum(r["branches"] for r in branches.regions(database, actor))
several_branches = branch_count > 1

st.title("This week")
st.caption(f"{md(branches.scope_label(database, actor))}, {today:%A} {day(today.isoformat())}")
flash()

undo_offer(database, actor)


def shown(key: str) -> int:
    """How many rows of a list to show: FIRST_SHOWN, or more after "Show more"."""
    return st.session_state.get(key, FIRST_SHOWN)


def show_more(key: str, showing: int, total: int) -> None:
    """A "Show N more" button under a list showing ``showing`` of ``total`` rows, up to MOST_SHOWN."""
    more = min(FIRST_SHOWN, total - showing, MOST_SHOWN - showing)
    if more > 0:
        st.button(
            f"Show {more} more",
            key=f"{key}_more",
            type="tertiary",
            icon=":material/expand_more:",
            on_click=lambda: st.session_state.update({key: showing + more}),
        )


st.subheader("Follow-ups due and overdue")
# Only the rows shown are read: the soonest few, counted apart; a regional lead reads them branch by branch.
limit = shown("home_follow_ups_shown")
shown_due = interactions.follow_ups(database, actor, today=today, limit=limit, by_branch=several_branches)
due_count = interactions.follow_ups_count(database, actor, today=today) if len(shown_due) == limit else len(shown_due)
if not shown_due:
    st.success("No follow-ups due this week.")
people = interactions.people(database, actor, [row["id"] for row in shown_due])
contacts_page = logdialog.contacts_page()  # looked up once for every name below
shown_branch = None
for row in shown_due:
    if several_branches and row["branch"] != shown_branch:
        shown_branch = row["branch"]
        st.markdown(f"**{md(shown_branch)}**")
    # The date and what to do share one markdown (each element is a message sent; logdialog.row).
    what, buttons = logdialog.row(f"home_follow_up_{row['id']}")
    state = ":red[**Overdue**]" if row["state"] == "overdue" else "Due"
    what.markdown(
        f"{state} · {day(row['follow_up_on'])} · **{md(row['follow_up_action'] or 'Follow up')}**  \n"
        f"After: {md(row['summary'])} ({day(row['occurred_on'])})"
    )
    for person in people[row["id"]]:
        person_link(person, what, contacts_page)
        about, reach = person_lines(person)
        what.caption("  \n".join(part for part in (about, reach) if part))
    if not people[row["id"]] and row["organisation"]:
        what.caption(md(row["organisation"]))
    subject = ", ".join(p["name"] for p in people[row["id"]]) or row["organisation"] or "the partner"
    touch = Touch(
        subject=subject,
        branch_id=row["branch_id"],
        contact_ids=tuple(p["id"] for p in people[row["id"]] if p["branch_id"] == row["branch_id"]),
        organisation_id=row["organisation_id"],
        follow_up=row,
    )
    logdialog.button(f"home_log_follow_up_{row['id']}", touch, container=buttons)
    logdialog.button(f"home_done_{row['id']}", touch, done=True, container=buttons)
if due_count > len(shown_due):
    rest = "; see the Interactions page for the rest." if len(shown_due) >= MOST_SHOWN else "."
    st.caption(f"Showing the first {len(shown_due)} of {due_count}{rest}")
    show_more("home_follow_ups_shown", len(shown_due), due_count)
deferred_download(  # built when pressed: every open follow-up in scope is too much to build on every rerun
    "Follow-ups for your calendar (.ics)",
    ical.follow_ups_calendar,  # called as build(database, actor) on a connection of its own
    file_name="partner-crm-follow-ups.ics",
    mime="text/calendar",
    key="home_follow_ups_ics",
    help="Every open follow-up as an all-day event. Importing a newer file updates these events, not copies them.",
)

st.subheader("Named contacts lapsing")
slipping = contacts.lapsing_first(database, actor, shown("home_lapsing_shown"), today=today, by_branch=several_branches)
if not slipping:
    st.success("Every named contact has been in touch within their keep-in-touch interval.")
else:
    # (The count is cached and may lag others' changes by up to a minute; it is never below the rows listed.)
    slipping_count = max(cached.lapsing_count(database, actor), len(slipping))
    st.caption(f"{slipping_count} named contacts to call. Any logged interaction resets the clock.")
    shown_branch = None
    for person in slipping:
        if several_branches and person["branch"] != shown_branch:
            shown_branch = person["branch"]
            st.markdown(f"**{md(shown_branch)}**")
        logdialog.contact_card(
            person, key=f"home_contact_{person['id']}", log_key=f"home_log_contact_{person['id']}", page=contacts_page
        )
    if slipping_count > len(slipping):
        st.caption(f"Showing the {len(slipping)} most urgent of {slipping_count}.")
        show_more("home_lapsing_shown", len(slipping), slipping_count)
        st.page_link("pages/contacts.py", label="All contacts", icon=":material/contacts:")

st.subheader("Recent activity")
recent = interactions.search(database, actor, since=today - timedelta(days=14), limit=25)
if not recent:
    st.info("Nothing logged in the last two weeks.")
else:
    rows_table(
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
    rows_table(
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
if branch_count > MATRIX_BRANCHES:  # a column per branch is too many to read, and counting them all is not cheap
    st.info(f"Your {branch_count} branches' named contacts by partner type, and their gaps, are on the Coverage page.")
    st.page_link("pages/coverage.py", label="Coverage", icon=":material/grid_view:")
elif matrix := cached.named_matrix(database, actor):  # (others' changes show within a minute, as on Coverage)
    rows_table(matrix, hide_index=True)
    st.caption("Active named contacts at organisations of each type. A zero is a gap.")
else:
    st.info("There are no branches yet. An administrator adds them under Regions and branches.")
