"""Charts: each takes already-aggregated rows and returns an Altair chart (never raw interaction rows).

Data goes in as a DataFrame: Altair then stores it once as a named dataset, where a list of dicts in alt.Data
would be schema-validated value by value (half a second for a 250-branch heatmap).
"""

import altair as alt
import pandas as pd

from crm.coverage import STATUSES

# Okabe-Ito colours, distinguishable with the common colour-vision deficiencies; every mark also has a text label.
STATUS_COLOURS = {"covered": "#0072B2", "lapsing": "#E69F00", "gap": "#D55E00"}
CATEGORY_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
CELL_SELECTION = "cell"


def _status_scale() -> alt.Scale:
    return alt.Scale(domain=list(STATUSES.values()), range=list(STATUS_COLOURS.values()))


def heatmap(rows: list[dict], type_order: list[str]) -> alt.LayerChart:
    """Branches x partner types coloured by status; clicking a cell selects its branch and type."""
    data = [
        {
            "branch": r["branch"],
            "branch_id": r["branch_id"],
            "partner_type": r["partner_type"],
            "type_code": r["type_code"],
            "status": STATUSES[r["status"]],
            "named": r["named_contacts"],
            "warm": r["warm_named_contacts"],
            "last_touched": r["last_touched"] or "never",
            "label": "gap" if r["status"] == "gap" else f"{r['warm_named_contacts']}/{r['named_contacts']}",
        }
        for r in rows
    ]
    branches = list(dict.fromkeys(r["branch"] for r in data))
    selection = alt.selection_point(name=CELL_SELECTION, fields=["branch_id", "type_code"], on="click")
    base = alt.Chart(pd.DataFrame(data)).encode(
        x=alt.X(
            "partner_type:N",
            sort=type_order,
            title=None,
            axis=alt.Axis(orient="top", labelAngle=-35, labelLimit=220, labelOverlap=False),
        ),
        y=alt.Y("branch:N", sort=branches, title=None),
    )
    cells = (
        base.mark_rect(stroke="white")
        .encode(
            color=alt.Color("status:N", scale=_status_scale(), legend=alt.Legend(title="Status", orient="top")),
            opacity=alt.condition(selection, alt.value(1.0), alt.value(0.45)),
            tooltip=[
                alt.Tooltip("branch:N", title="Branch"),
                alt.Tooltip("partner_type:N", title="Partner type"),
                alt.Tooltip("status:N", title="Status"),
                alt.Tooltip("named:Q", title="Named contacts"),
                alt.Tooltip("warm:Q", title="Warm named contacts"),
                alt.Tooltip("last_touched:N", title="Last touched"),
            ],
        )
        .add_params(selection)
    )
    labels = base.mark_text(fontSize=11).encode(
        text="label:N",
        color=alt.condition(alt.datum.status == STATUSES["lapsing"], alt.value("black"), alt.value("white")),
    )
    return (cells + labels).properties(height=alt.Step(24), title="Coverage by branch and partner type")


def league(branch_scores: list[dict], median: float | None) -> alt.LayerChart:
    """Branches sorted by coverage score, with the median as a rule."""
    data = [
        {
            "branch": b["branch"],
            "region": b["region"],
            "score": round(100 * b["score"]),
            "label": f"{b['covered']}/{b['required']}",
        }
        for b in branch_scores
    ]
    bars = (
        alt.Chart(pd.DataFrame(data))
        .mark_bar(color=STATUS_COLOURS["covered"])
        .encode(
            x=alt.X("score:Q", title="Required partner types covered (%)", scale=alt.Scale(domain=[0, 100])),
            y=alt.Y("branch:N", sort="-x", title=None),
            tooltip=[
                alt.Tooltip("branch:N", title="Branch"),
                alt.Tooltip("region:N", title="Region"),
                alt.Tooltip("score:Q", title="Score (%)"),
                alt.Tooltip("label:N", title="Covered"),
            ],
        )
    )
    text = bars.mark_text(align="left", dx=3, color="black").encode(text="label:N")
    chart = bars + text
    if median is not None:
        rule_data = [{"median": round(100 * median), "label": f"median {round(100 * median)}%"}]
        rule = alt.Chart(pd.DataFrame(rule_data)).mark_rule(color="black", strokeDash=[4, 3]).encode(x="median:Q")
        rule_text = rule.mark_text(align="left", dx=4, dy=-6, color="black", baseline="bottom").encode(
            text="label:N", y=alt.value(0)
        )
        chart = chart + rule + rule_text
    return chart.properties(height=alt.Step(22), title="Branch league")


def trend(rows: list[dict]) -> alt.LayerChart:
    """Mean coverage score (line, left axis) and interactions logged (bars, right axis) per month."""
    data = [{"month": r["month"], "score": round(100 * r["score"]), "interactions": r["interactions"]} for r in rows]
    base = alt.Chart(pd.DataFrame(data)).encode(x=alt.X("month:O", title=None, axis=alt.Axis(labelAngle=0)))
    bars = base.mark_bar(color="#56B4E9", opacity=0.6).encode(
        y=alt.Y("interactions:Q", title="Interactions logged"),
        tooltip=[alt.Tooltip("month:O", title="Month"), alt.Tooltip("interactions:Q", title="Interactions")],
    )
    line = base.mark_line(color=STATUS_COLOURS["covered"], point=True).encode(
        y=alt.Y("score:Q", title="Coverage score (%)", scale=alt.Scale(domain=[0, 100])),
        tooltip=[alt.Tooltip("month:O", title="Month"), alt.Tooltip("score:Q", title="Score (%)")],
    )
    labels = line.mark_text(dy=-10, color=STATUS_COLOURS["covered"]).encode(text="score:Q")
    return (
        alt.layer(bars, line + labels)
        .resolve_scale(y="independent")
        .properties(height=260, title="Coverage score and interactions per month")
    )


def referrals(rows: list[dict]) -> alt.Chart:
    """Referrals received per month, stacked by partner type."""
    types = sorted({r["partner_type"] for r in rows})
    if len(types) <= len(CATEGORY_COLOURS):
        scale = alt.Scale(domain=types, range=CATEGORY_COLOURS[: len(types)])
    else:
        scale = alt.Scale(domain=types, scheme="tableau20")
    return (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar()
        .encode(
            x=alt.X("month:O", title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("sum(referrals):Q", title="Referrals received"),
            color=alt.Color(
                "partner_type:N",
                title="Partner type",
                scale=scale,
                legend=alt.Legend(orient="right", labelLimit=320),
            ),
            tooltip=[
                alt.Tooltip("month:O", title="Month"),
                alt.Tooltip("partner_type:N", title="Partner type"),
                alt.Tooltip("referrals:Q", title="Referrals"),
            ],
        )
        .properties(height=260, title="Referrals received by partner type")
    )


def to_png(chart: alt.TopLevelMixin) -> bytes:
    """The chart as a PNG image (rendered on the server, no browser needed)."""
    import vl_convert  # only needed when someone downloads a chart

    return vl_convert.vegalite_to_png(chart.to_json(), scale=2)


def to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as SVG."""
    import vl_convert

    return vl_convert.vegalite_to_svg(chart.to_json())


# Referrals. Outcome colours from the same Okabe-Ito palette; every bar also has its figure in the tooltip.
OUTCOME_COLOURS = {
    "Accepted": "#0072B2",
    "Declined": "#D55E00",
    "Withdrawn by the referrer": "#999999",
    "Open": "#E69F00",
    "Unknown (logged before outcomes were kept)": "#CCCCCC",
}
_OUTCOME_COUNTS = {
    "accepted": "Accepted",
    "declined": "Declined",
    "withdrawn": "Withdrawn by the referrer",
    "open": "Open",
    "unknown": "Unknown (logged before outcomes were kept)",
}


def _outcome_scale() -> alt.Scale:
    return alt.Scale(domain=list(OUTCOME_COLOURS), range=list(OUTCOME_COLOURS.values()))


def referral_outcomes(rows: list[dict], group: str, title: str) -> alt.Chart:
    """Referrals received per group (``group`` names the row key: branch, partner_type, organisation), stacked
    by outcome, groups with the most referrals first."""
    data = [
        {
            "group": r[group],
            "outcome": label,
            "referrals": r[count],
            "received": r["received"],
            "acceptance": "" if r["acceptance_rate"] is None else f"{round(100 * r['acceptance_rate'])}%",
        }
        for r in rows
        for count, label in _OUTCOME_COUNTS.items()
        if r[count]
    ]
    order = [r[group] for r in sorted(rows, key=lambda r: -r["received"])]
    return (
        alt.Chart(pd.DataFrame(data, columns=["group", "outcome", "referrals", "received", "acceptance"]))
        .mark_bar()
        .encode(
            x=alt.X("sum(referrals):Q", title="Referrals received"),
            y=alt.Y("group:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
            color=alt.Color("outcome:N", title="Outcome", scale=_outcome_scale(), legend=alt.Legend(orient="top")),
            order=alt.Order("outcome:N"),
            tooltip=[
                alt.Tooltip("group:N", title=title),
                alt.Tooltip("outcome:N", title="Outcome"),
                alt.Tooltip("referrals:Q", title="Referrals"),
                alt.Tooltip("received:Q", title="Received in all"),
                alt.Tooltip("acceptance:N", title="Acceptance rate"),
            ],
        )
        .properties(height=alt.Step(20), title=f"Referrals by outcome, per {title.lower()}")
    )


def response_times(rows: list[dict], group: str, title: str) -> alt.LayerChart:
    """Median hours from receipt to answer per group (groups with an answered referral), quickest first."""
    data = [
        {"group": r[group], "hours": r["median_response_hours"], "answered": r["accepted"] + r["declined"]}
        for r in rows
        if r["median_response_hours"] is not None
    ]
    bars = (
        alt.Chart(pd.DataFrame(data, columns=["group", "hours", "answered"]))
        .mark_bar(color="#009E73")
        .encode(
            x=alt.X("hours:Q", title="Median response time (hours)"),
            y=alt.Y("group:N", sort="x", title=None, axis=alt.Axis(labelLimit=260)),
            tooltip=[
                alt.Tooltip("group:N", title=title),
                alt.Tooltip("hours:Q", title="Median hours"),
                alt.Tooltip("answered:Q", title="Answered referrals"),
            ],
        )
    )
    text = bars.mark_text(align="left", dx=3, color="black").encode(text="hours:Q")
    return (bars + text).properties(height=alt.Step(20), title="Median response time (received to answer)")


def declines_by_reason(rows: list[dict]) -> alt.LayerChart:
    """Declined referrals per reason, in the reference list's order."""
    bars = (
        alt.Chart(pd.DataFrame(rows, columns=["reason", "declined"]))
        .mark_bar(color=OUTCOME_COLOURS["Declined"])
        .encode(
            x=alt.X("declined:Q", title="Referrals declined"),
            y=alt.Y("reason:N", sort=[r["reason"] for r in rows], title=None, axis=alt.Axis(labelLimit=260)),
            tooltip=[alt.Tooltip("reason:N", title="Reason"), alt.Tooltip("declined:Q", title="Declined")],
        )
    )
    text = bars.mark_text(align="left", dx=3, color="black").encode(text="declined:Q")
    return (bars + text).properties(height=alt.Step(24), title="Declines by reason")


def referrals_by_outcome_month(rows: list[dict]) -> alt.Chart:
    """Referrals received per month, stacked by outcome."""
    return (
        alt.Chart(pd.DataFrame(rows, columns=["month", "outcome", "referrals"]))
        .mark_bar()
        .encode(
            x=alt.X("month:O", title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("sum(referrals):Q", title="Referrals received"),
            color=alt.Color("outcome:N", title="Outcome", scale=_outcome_scale(), legend=alt.Legend(orient="top")),
            tooltip=[
                alt.Tooltip("month:O", title="Month"),
                alt.Tooltip("outcome:N", title="Outcome"),
                alt.Tooltip("referrals:Q", title="Referrals"),
            ],
        )
        .properties(height=260, title="Referrals received per month, by outcome")
    )
