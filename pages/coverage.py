"""Coverage: does each branch have a warm named contact at every kind of partner that matters?"""

import streamlit as st

from crm import branches, charts, clock, contacts, coverage, organisations, referrals
from crm.access import ADMIN, BRANCH_MANAGER
from crm.ui import cached, layout, logdialog, session
from crm.ui.widgets import chart_with_data, choice, day, flash, md

database, actor = session.require(__file__)
today = clock.now().date()

st.title("Coverage")
st.caption(
    "Covered: a named contact there was touched within the window. Lapsing: named contacts, none touched within "
    "the window. Gap: no named contact. The score is the share of required partner types covered."
)

# Filters: what the actor may see, narrowed by region and branch.
# A column for each filter the role has (each column is a message to send, an empty one too).
columns = iter(st.columns(2 + (actor.role == ADMIN) + (actor.role != BRANCH_MANAGER)))
region_id = branch_id = None
if actor.role == ADMIN:
    with next(columns):
        region_id = choice("Region", branches.regions(database, actor), key="coverage_region", blank="All regions")
in_scope = [b for b in branches.branch_choices(database, actor) if region_id is None or b["region_id"] == region_id]
if actor.role == BRANCH_MANAGER:
    branch_id = actor.branch_id
else:
    with next(columns):
        branch_id = choice("Branch", in_scope, key="coverage_branch", blank="All branches")
window = next(columns).number_input(
    "Window (days)", min_value=1, max_value=730, value=coverage.window_days(database), key="coverage_window"
)
month_ends = coverage.month_ends(today)
with next(columns):
    as_of = st.selectbox(
        "As of",
        month_ends[::-1],
        format_func=lambda d: "Today" if d == today else f"End of {d:%B %Y}",
        key="coverage_as_of",
    )
if not in_scope:
    st.info("There are no branches to show.")
    st.stop()

rows, branch_scores = cached.report(
    database, actor, as_of=as_of, window=window, region_id=region_id, branch_id=branch_id
)
median = coverage.median_score(branch_scores)
fully = sum(b["score"] == 1 for b in branch_scores)
left, middle, right = st.columns(3)
left.metric("Branches", len(branch_scores))
middle.metric("Fully covered", f"{fully} of {len(branch_scores)}")
right.metric("Median score", f"{round(100 * median)}%" if median is not None else "n/a")
patched = [b for b in branch_scores if b["gp_patch_practices"]]
if len(branch_scores) == 1 and patched:
    b = patched[0]
    st.write(
        f"GP patch coverage: {b['gp_patch_with_named_contact']} of {b['gp_patch_practices']} practices "
        f"({round(100 * b['gp_patch_share'])}%)"
    )

partner_types = organisations.types(database)
type_order = [t["label"] for t in partner_types]
# What a downloaded chart image is titled with (crm.charts.for_report).
shown = (
    next(f"{b['name']} branch" for b in in_scope if b["id"] == branch_id)
    if branch_id
    else next(f"{r['name']} region" for r in branches.regions(database, actor) if r["id"] == region_id)
    if region_id
    else branches.scope_label(database, actor)
)
figure = {"scope": shown, "as_of": today, "window_days": window}
this_month = today.strftime("%Y-%m")
# One view at a time (crm.ui.layout.one_tab_at_a_time): four charts drawn on every rerun were most of this page's
# cost. The heatmap, with who to call, is what people come for, and opens first.
HEATMAP, LEAGUE, TREND, REFERRALS = "Heatmap", "Branch league", "Trend", "Referrals received"
WHO_TO_CALL_SHOWN = 10  # named contacts listed under "Who to call", longest untouched first
drill_branches = [{"id": b["branch_id"], "name": b["branch"]} for b in branch_scores]


def drill_down() -> None:
    # A click on a cell moves the two pickers below (keyed widgets keep their value, so it is written here,
    # before they are drawn on the rerun the click causes).
    picked = charts.picked_cell(st.session_state.get("coverage_heatmap"))
    if picked:
        st.session_state["coverage_drill_branch"], st.session_state["coverage_drill_type"] = picked


def branch_row(rows: list[dict]) -> None:
    """On a phone, one branch's row of the heatmap as a list: each partner type with its status, in words."""
    picked = drill_branches[0]["id"]
    if len(drill_branches) > 1:
        picked = choice("Branch", drill_branches, key="coverage_narrow_branch")
    badge = {"covered": "blue", "lapsing": "orange", "gap": "red"}
    lines = []
    for r in rows:
        if r["branch_id"] != picked:
            continue
        what = md(r["partner_type"]) + (" (required)" if r["required"] else "")
        if r["status"] == "gap":
            detail = "no named contact"
        else:
            last = day(r["last_touched"]) or "never"
            detail = f"{r['warm_named_contacts']} of {r['named_contacts']} named contacts warm, last touched {last}"
        lines.append(f":{badge[r['status']]}-badge[{coverage.STATUSES[r['status']]}] **{what}**  \n{detail}")
    st.markdown("\n\n".join(lines))


def heatmap_and_who_to_call() -> None:
    # The heatmap's cells need room: on a phone it would be squashed to unreadable, so a phone gets one branch's
    # row as a list instead. Only the one for this browser is drawn (crm.ui.layout.on_phone): both were drawn, one
    # hidden by CSS, and the hidden one's elements (a chart, its table and downloads) were sent on every rerun.
    if layout.on_phone():
        st.caption("Each partner type at the branch, and how well it is covered. Pick whom to call below.")
        with st.container(key="coverage_branch_row"):
            branch_row(rows)
    else:
        st.caption("Click a cell to see that branch's named contacts of that type, or pick them below.")
        with st.container(key="coverage_heatmap_chart"):
            chart_with_data(
                charts.heatmap,
                (rows, type_order),
                rows,
                {
                    "region": "Region",
                    "branch": "Branch",
                    "partner_type": "Partner type",
                    "required": "Required",
                    "named_contacts": "Named contacts",
                    "warm_named_contacts": "Warm named contacts",
                    "last_touched": "Last touched",
                    "status": "Status",
                },
                "Coverage heatmap",
                "coverage_heatmap",
                report={
                    **figure,
                    "as_of": as_of,
                    "required_types": [t["label"] for t in partner_types if t["required"]],
                },
                on_select=drill_down,
                selection_mode=charts.CELL_SELECTION,
            )

    st.subheader("Who to call")
    flash()  # "Logged: ..." after a touch saved here, where the user is looking
    # A branch no longer shown (the filters changed since the click) is not offered; forget it.
    if st.session_state.get("coverage_drill_branch") not in [b["id"] for b in drill_branches]:
        st.session_state.pop("coverage_drill_branch", None)
    left, right = st.columns(2)
    with left:
        drill_branch = choice("Branch", drill_branches, key="coverage_drill_branch")
    with right:
        drill_type = choice("Partner type", partner_types, key="coverage_drill_type", value="code", text="label")
    # Longest untouched (or never touched) first, and only the first few: a card each for a busy branch's dozens of
    # GP contacts was most of the page's cost, and the first few are the calls to make.
    people, named_count = contacts.longest_untouched(
        database, actor, branch_id=drill_branch, type_code=drill_type, limit=WHO_TO_CALL_SHOWN
    )
    if not people:
        st.warning("A gap: no named contact of this type. Find one on the Organisations page.")
    contacts_page = logdialog.contacts_page()  # looked up once for every name below
    for person in people:
        # As on This week: the name opens their page, the phone is tap-to-call, and one click logs a touch.
        logdialog.contact_card(
            person,
            key=f"coverage_person_{person['id']}",
            log_key=f"coverage_log_{person['id']}",
            page=contacts_page,
        )
    if named_count > WHO_TO_CALL_SHOWN:
        st.caption(
            f"Showing the {WHO_TO_CALL_SHOWN} longest untouched of {named_count} named contacts; "
            "the Contacts page lists them all."
        )


def league() -> None:
    # Referrals in the last 90 days beside each score, so a lead can see whether coverage and referrals move
    # together.
    recent = referrals.received_by_branch(database, actor, days=90, region_id=region_id, branch_id=branch_id)
    scored = [{**b, "referrals_90_days": recent.get(b["branch_id"], 0)} for b in branch_scores]
    chart_with_data(
        charts.league,
        (scored, median),
        sorted(scored, key=lambda b: -b["score"]),
        {
            "region": "Region",
            "branch": "Branch",
            "covered": "Required types covered",
            "required": "Required types",
            "gp_patch_with_named_contact": "GP practices with a named contact",
            "gp_patch_practices": "GP practices",
            "referrals_90_days": "Referrals, last 90 days",
        },
        "Branch league",
        "coverage_league",
        report={**figure, "as_of": as_of},
    )


def trend() -> None:
    trend_rows = cached.trend(database, actor, window=window, region_id=region_id, branch_id=branch_id)
    chart_with_data(
        charts.trend,
        (trend_rows, this_month),
        trend_rows,
        {"month": "Month", "score": "Mean coverage score (0 to 1)", "interactions": "Interactions logged"},
        "Coverage trend",
        "coverage_trend",
        report=figure,
    )


def referrals_received() -> None:
    if len(branch_scores) == 1:
        recent = referrals.received_by_branch(database, actor, days=90, region_id=region_id, branch_id=branch_id)
        st.caption(f"Referrals received in the last 90 days: {recent.get(branch_scores[0]['branch_id'], 0)}.")
    referral_rows = cached.referrals(database, actor, region_id=region_id, branch_id=branch_id)
    if referral_rows:
        chart_with_data(
            charts.referrals,
            (referral_rows, this_month),
            referral_rows,
            {"month": "Month", "partner_type": "Partner type", "referrals": "Referrals"},
            "Referrals by partner type",
            "coverage_referrals",
            report={**figure, "window_days": None},
        )
    else:
        st.info("No referrals logged in the last 12 months.")


views = {HEATMAP: heatmap_and_who_to_call, LEAGUE: league, TREND: trend, REFERRALS: referrals_received}
if len(branch_scores) == 1:  # a league of one branch says nothing
    del views[LEAGUE]
layout.one_tab_at_a_time(views, "coverage_view")
st.caption(f"Scope: {md(branches.scope_label(database, actor))}. Window {window} days.")
