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


def picked_cell(selection: dict | None) -> tuple[int, str] | None:
    """The (branch id, partner type code) of the heatmap cell a click selected, from the chart's selection state
    (what st.altair_chart keeps under its key), or None when no cell is selected."""
    points = ((selection or {}).get("selection") or {}).get(CELL_SELECTION) or []
    if not points or "branch_id" not in points[0] or "type_code" not in points[0]:
        return None
    return int(points[0]["branch_id"]), str(points[0]["type_code"])


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
