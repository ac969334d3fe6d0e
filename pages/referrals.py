"""Referrals: log one, record its outcome, and see how many came, how many were accepted and how fast they were
answered, per branch, partner type and referring organisation."""

from datetime import timedelta

import streamlit as st

from crm import branches, charts, clock, referrals
from crm.access import ADMIN, BRANCH_MANAGER
from crm.errors import CRMError
from crm.ui import cached, layout, paging, session
from crm.ui import referrals as referral_ui
from crm.ui.widgets import chart_with_data, choice, flash, md, organisation_picker, show_error

database, actor = session.require(__file__)
today = clock.now().astimezone(referrals.UK).date()

st.title("Referrals")
st.caption(
    "Requests to provide care, who sent them and what you answered. Response time: hours from receipt to your "
    "answer (accepted or declined). Acceptance rate: accepted out of answered. Times are UK time."
)
flash()
visible = branches.branch_choices(database, actor)
if not visible:
    st.info("There are no branches to show.")
    st.stop()


def log_referral() -> None:
    if actor.role == BRANCH_MANAGER:
        log_branch = actor.branch_id
    else:
        log_branch = choice("Branch", visible, key="referrals_log_branch")
    people = referral_ui.contact_options(database, actor, log_branch)
    contact_id = choice(
        "From (contact)",
        people,
        key=f"referrals_log_contact_{log_branch}",
        text="label",
        blank="(no named contact)",
    )
    organisation_id = None
    if contact_id is None:
        organisation_id = organisation_picker(database, "referrals_log_org")
    saved = referral_ui.log_form(
        database,
        actor,
        "referrals_log",
        branch_id=log_branch,
        contact_id=contact_id,
        organisation_id=organisation_id,
    )
    if saved is not None:
        flash("Referral logged.")
        st.rerun()


# Drawn only while open: its pickers read the branch's contacts and the organisation directory.
layout.drawn_when_open("Log a referral", "referrals_log_open", log_referral)

# Filters: what the actor may see, narrowed by region, branch and dates (UK days, both included).
# A column for each filter the role has (each column is a message to send, an empty one too).
columns = iter(st.columns(3 + (actor.role == ADMIN) + (actor.role != BRANCH_MANAGER)))
region_id = branch_id = None
if actor.role == ADMIN:
    with next(columns):
        region_id = choice("Region", branches.regions(database, actor), key="referrals_region", blank="All regions")
in_scope = [b for b in visible if region_id is None or b["region_id"] == region_id]
if actor.role == BRANCH_MANAGER:
    branch_id = actor.branch_id
else:
    with next(columns):
        branch_id = choice("Branch", in_scope, key="referrals_branch", blank="All branches")
since = next(columns).date_input(
    "Received from", value=today - timedelta(days=365), key="referrals_since", format="DD/MM/YYYY"
)
until = next(columns).date_input("Received until", value=today, key="referrals_until", format="DD/MM/YYYY")
by = next(columns).selectbox(
    "Figures per", list(referrals.GROUPINGS), format_func=lambda code: referrals.GROUPINGS[code], key="referrals_by"
)
filters = {"region_id": region_id, "branch_id": branch_id, "since": since, "until": until}

st.subheader("Open referrals and outcomes")
# One page of rows and a count, both in SQL: a rerun costs the same for a branch and for a provider of 250.
total = referrals.count(database, actor, **filters)
page, pages = paging.page_of("referrals", total, referrals.PAGE_SIZE, filters)
rows = referrals.search(database, actor, **filters, limit=referrals.PAGE_SIZE, offset=page * referrals.PAGE_SIZE)
if not rows:
    st.info("No referrals received in this period.")
else:
    # The Branch column whenever the list may hold several branches, so that it stays from one page to the next.
    several = branch_id is None and len(in_scope) > 1
    shown = paging.range_shown(page, pages, referrals.PAGE_SIZE, len(rows))
    paging.count_caption(
        "referrals",
        f"{total} referral{'s' if total != 1 else ''}{shown}, newest first. "
        "Select a referral to record or correct its outcome.",
    )
    event = referral_ui.table(rows, show_branch=several, key="referrals_table")
    paging.pager("referrals", page, pages, table_key="referrals_table")
    picked = event.selection.rows if event else []
    if picked:  # a row position is only valid for this run: resolve it to the referral's id at once
        st.session_state["referrals_selected"] = rows[picked[0]]["id"]
    selected = st.session_state.get("referrals_selected")
    if selected is not None:
        try:
            referral = referrals.get(database, actor, selected)
        except CRMError as error:
            show_error(error)
            st.session_state.pop("referrals_selected", None)
        else:
            who = referral["contact"] or referral["organisation"]
            st.markdown(
                f"**Outcome of the referral from {md(who)}**, received {referral['received']} "
                f"({md(referral['branch'])})"
            )
            referral_ui.outcome_form(
                database, actor, referral, f"referrals_outcome_{referral['id']}_{referral['version']}"
            )

group_field = {"branch": "branch", "partner_type": "partner_type", "organisation": "organisation"}[by]
# Added up over every referral in scope: kept between reruns while the data is unchanged.
measures, decline_rows, month_rows = cached.referral_figures(database, actor, by=by, **filters)
st.subheader("Figures")
received = sum(r["received"] for r in measures)
accepted = sum(r["accepted"] for r in measures)
answered = accepted + sum(r["declined"] for r in measures)
left, middle, right = st.columns(3)
left.metric("Received", received)
middle.metric("Accepted", accepted)
right.metric("Acceptance rate", f"{round(100 * accepted / answered)}%" if answered else "n/a")
if not measures:
    st.info("No referrals to measure in this period.")
    st.stop()
labels = {
    "region": "Region",
    "branch": "Branch",
    "organisation": "Referring organisation",
    "partner_type": "Partner type",
    "received": "Received",
    "open": "Open",
    "accepted": "Accepted",
    "declined": "Declined",
    "withdrawn": "Withdrawn",
    "unknown": "Outcome unknown",
    "acceptance_rate": "Acceptance rate (accepted of answered)",
    "median_response_hours": "Median response time (hours)",
    **{f"declined_{r['code'].lower()}": f"Declined: {r['label']}" for r in referrals.decline_reasons(database)},
}
table_columns = {column: labels[column] for column in referrals.measure_columns(database, by)}
# The charts show the 30 groups with the most referrals; the table and CSV have every group.
top = sorted(measures, key=lambda r: -r["received"])[:30]
title = referrals.GROUPINGS[by]


def outcomes() -> None:
    chart_with_data(
        charts.referral_outcomes,
        (top, group_field, title),
        measures,
        table_columns,
        f"Referrals by outcome per {title.lower()}",
        "referrals_outcomes",
    )


def response_times() -> None:
    chart_with_data(
        charts.response_times,
        (top, group_field, title),
        measures,
        {
            group_field: title,
            "median_response_hours": labels["median_response_hours"],
            "accepted": "Accepted",
            "declined": "Declined",
        },
        f"Median response time per {title.lower()}",
        "referrals_response",
    )


def declines() -> None:
    chart_with_data(
        charts.declines_by_reason,
        (decline_rows,),
        decline_rows,
        {"reason": "Reason", "declined": "Declined"},
        "Declines by reason",
        "referrals_declines",
    )


def per_month() -> None:
    chart_with_data(
        charts.referrals_by_outcome_month,
        (month_rows,),
        month_rows,
        {"month": "Month", "outcome": "Outcome", "referrals": "Referrals"},
        "Referrals per month",
        "referrals_months",
    )


# One chart at a time, as on Coverage: only the open tab is drawn (four charts on every rerun were most of the
# page's cost, whatever the scope).
layout.one_tab_at_a_time(
    {"By outcome": outcomes, "Response time": response_times, "Declines": declines, "Per month": per_month},
    "referrals_view",
)
st.caption(f"Scope: {md(branches.scope_label(database, actor))}.")
