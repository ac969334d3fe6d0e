"""Charts: each takes already-aggregated rows and returns an Altair chart (never raw interaction rows).

Data goes in as a DataFrame: Altair then stores it once as a named dataset, where a list of dicts in alt.Data
would be schema-validated value by value (half a second for a 250-branch heatmap).
"""

import copy
import json
import threading
from collections.abc import Sequence
from datetime import date

import altair as alt
import pandas as pd

from crm import dates
from crm.coverage import STATUSES

# Okabe-Ito colours, distinguishable with the common colour-vision deficiencies; every mark also has a text label.
STATUS_COLOURS = {"covered": "#0072B2", "lapsing": "#E69F00", "gap": "#D55E00"}
CATEGORY_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
CELL_SELECTION = "cell"

# The data are aggregates, never raw rows, but a heatmap of 400 branches has more than Altair's default limit of
# 5,000 rows (a guard for notebooks embedding raw data).
alt.data_transformers.disable_max_rows()
_ALTAIR_THEME = threading.Lock()  # Altair's theme is one setting for the whole process


def page_spec(chart: alt.TopLevelMixin) -> dict:
    """The chart's Vega-Lite spec (its data inline) as a page draws it: with no theme, as st.altair_chart makes it
    (Altair's default theme would fix the view at 300 pixels instead of filling the column).

    Not checked against the Vega-Lite schema again, value by value (40% of making a 250-branch heatmap's spec):
    the tests build every chart here with the check (tests/test_charts.py, tests/test_referrals.py).
    """
    with _ALTAIR_THEME, alt.theme.enable("none"):
        return chart.to_dict(validate=False)


def _spec(chart: alt.TopLevelMixin | dict) -> dict:
    """A chart's spec with Altair's default theme, as reports and images have always been drawn."""
    if isinstance(chart, dict):
        return chart
    with _ALTAIR_THEME:
        return chart.to_dict()


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
    selection = alt.selection_point(name=CELL_SELECTION, fields=["branch_id", "type_code"], on="click")
    # Two things keep a 250-branch heatmap cheap to build (it was 200 ms for the administrator on every view): the
    # branches keep the rows' order with "sort": null, not a list of 250 names Altair validates one by one, and the
    # data goes on the layer once, so Altair does not hash each layer's copy of it to find they are the same.
    base = alt.Chart().encode(
        x=alt.X(
            "partner_type:N",
            sort=type_order,
            title=None,
            axis=alt.Axis(orient="top", labelAngle=-35, labelLimit=220, labelOverlap=False),
        ),
        y=alt.Y("branch:N", sort=None, title=None),
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
    return alt.LayerChart(layer=[cells, labels], data=pd.DataFrame(data)).properties(
        height=alt.Step(24), title="Coverage by branch and partner type"
    )


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
        alt.Chart()  # the data goes on the layer, once (as in the heatmap)
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
    layers = [bars, bars.mark_text(align="left", dx=3, color="black").encode(text="label:N")]
    if median is not None:
        rule_data = [{"median": round(100 * median), "label": f"median {round(100 * median)}%"}]
        rule = alt.Chart(pd.DataFrame(rule_data)).mark_rule(color="black", strokeDash=[4, 3]).encode(x="median:Q")
        rule_text = rule.mark_text(align="left", dx=4, dy=-6, color="black", baseline="bottom").encode(
            text="label:N", y=alt.value(0)
        )
        layers += [rule, rule_text]
    return alt.LayerChart(layer=layers, data=pd.DataFrame(data)).properties(height=alt.Step(22), title="Branch league")


def _month_axis(months: list[str], partial_month: str | None) -> alt.X:
    """An ordinal month axis labelled "Dec" over "2026" (two short lines never overlap, twelve to a report's width),
    the month still in progress marked "so far"."""
    partial = dates.short_month(f"{partial_month}-01") if partial_month else ""
    return alt.X(
        "month_label:O",
        sort=[dates.short_month(f"{m}-01") for m in months],
        title=None,
        axis=alt.Axis(
            labelAngle=0,
            labelExpr=f"datum.value == '{partial}' ? [split(datum.value, ' ')[0], split(datum.value, ' ')[1], "
            "'(so far)'] : split(datum.value, ' ')",
        ),
    )


def _with_month_labels(rows: list[dict], partial_month: str | None) -> list[dict]:
    return [
        {
            **r,
            "month_label": dates.short_month(f"{r['month']}-01"),
            "month_note": "month so far" if r["month"] == partial_month else "",
        }
        for r in rows
    ]


def trend(rows: list[dict], partial_month: str | None = None) -> alt.LayerChart:
    """Mean coverage score (line, left axis) and interactions logged (bars, right axis) per month; the month in
    ``partial_month`` ("2026-12"), still in progress, is marked as such and its bar drawn paler."""
    data = _with_month_labels(
        [{"month": r["month"], "score": round(100 * r["score"]), "interactions": r["interactions"]} for r in rows],
        partial_month,
    )
    months = [r["month"] for r in data]
    base = alt.Chart(pd.DataFrame(data)).encode(x=_month_axis(months, partial_month))
    month_tooltip = [alt.Tooltip("month_label:O", title="Month"), alt.Tooltip("month_note:N", title="Note")]
    bars = base.mark_bar(color="#56B4E9").encode(
        y=alt.Y("interactions:Q", title="Interactions logged"),
        opacity=alt.condition(alt.datum.month_note == "", alt.value(0.6), alt.value(0.25)),
        tooltip=[*month_tooltip, alt.Tooltip("interactions:Q", title="Interactions")],
    )
    line = base.mark_line(color=STATUS_COLOURS["covered"], point=True).encode(
        y=alt.Y("score:Q", title="Coverage score (%)", scale=alt.Scale(domain=[0, 100])),
        tooltip=[*month_tooltip, alt.Tooltip("score:Q", title="Score (%)")],
    )
    labels = line.mark_text(dy=-10, color=STATUS_COLOURS["covered"]).encode(text="score:Q")
    return (
        alt.layer(bars, line + labels)
        .resolve_scale(y="independent")
        .properties(height=260, title="Coverage score and interactions per month")
    )


def referrals(rows: list[dict], partial_month: str | None = None) -> alt.Chart:
    """Referrals received per month, stacked by partner type; the month in progress marked as such."""
    months = sorted({r["month"] for r in rows})
    rows = _with_month_labels(rows, partial_month)
    types = sorted({r["partner_type"] for r in rows})
    if len(types) <= len(CATEGORY_COLOURS):
        scale = alt.Scale(domain=types, range=CATEGORY_COLOURS[: len(types)])
    else:
        scale = alt.Scale(domain=types, scheme="tableau20")
    return (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar()
        .encode(
            x=_month_axis(months, partial_month),
            y=alt.Y("sum(referrals):Q", title="Referrals received"),
            color=alt.Color(
                "partner_type:N",
                title="Partner type",
                scale=scale,
                # Under the plot, one type a line: a legend beside it took the whole width of a phone and left
                # the plot none.
                legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=300),
            ),
            tooltip=[
                alt.Tooltip("month_label:O", title="Month"),
                alt.Tooltip("month_note:N", title="Note"),
                alt.Tooltip("partner_type:N", title="Partner type"),
                alt.Tooltip("referrals:Q", title="Referrals"),
            ],
        )
        # Fit the width only: the legend under the plot adds to the height instead of squeezing the plot flat.
        .properties(
            height=260,
            title="Referrals received by partner type",
            autosize=alt.AutoSizeParams(type="fit-x", contains="padding"),
        )
    )


# Chart images for reports: 16 cm wide (an A4 page inside 2.5 cm margins), 200 dots per inch. Vega-Lite sizes
# charts in CSS pixels (96 to the inch); the PNG is rendered at 200/96 times that, and says 200 dpi in its header,
# so a word processor places it at 16 cm.
REPORT_WIDTH_CM = 16
REPORT_DPI = 200
CSS_DPI = 96
REPORT_WIDTH_PX = round(REPORT_WIDTH_CM / 2.54 * CSS_DPI)
# A heatmap's cells at most 15 cm high: with its title and labels it stays within an A4 page's 24.7 cm.
REPORT_MAX_HEIGHT_PX = round(15 / 2.54 * CSS_DPI)
HEATMAP_TEXT_MIN_STEP = 15  # rows lower than this leave no room for "12/15" at 10 px
HEATMAP_STEP = 22


def for_report(
    chart: alt.TopLevelMixin | dict,
    *,
    scope: str,
    as_of: date,
    window_days: int | None = None,
    required_types: Sequence[str] = (),
) -> dict:
    """The on-screen chart as a figure for a report (a Vega-Lite spec): 16 cm wide, titled with its scope, the
    date it is as of and the coverage window; in a heatmap, the required partner types marked and the cells'
    text only where it fits (many branches make rows too low for it)."""
    spec = copy.deepcopy(_spec(chart))
    title = spec.get("title")
    text = title.get("text") if isinstance(title, dict) else title
    subtitle = [
        f"{scope}. As of {dates.day(as_of)}" + (f"; coverage window {window_days} days." if window_days else ".")
    ]
    spec["width"] = REPORT_WIDTH_PX
    spec["autosize"] = {"type": "fit-x", "contains": "padding"}
    layers = spec.get("layer", [spec])
    if any(_x_field(layer) == "partner_type" and _mark(layer) == "rect" for layer in layers):
        subtitle += _heatmap_for_report(spec, layers, list(required_types))
    spec["title"] = {
        "text": text or "",
        "subtitle": subtitle,
        "anchor": "start",
        "fontSize": 15,
        "subtitleFontSize": 11,
        "subtitleColor": "#333333",
        "offset": 12,
    }
    return spec


def _mark(layer: dict) -> str | None:
    mark = layer.get("mark")
    return mark.get("type") if isinstance(mark, dict) else mark


def _x_field(layer: dict) -> str | None:
    return layer.get("encoding", {}).get("x", {}).get("field")


def _heatmap_for_report(spec: dict, layers: list[dict], required: list[str]) -> list[str]:
    """Fit the heatmap to a page; returns the lines it adds to the subtitle."""
    # The heatmap's rows are the branches in its data (one dataset, one row per branch and partner type).
    branches = len({row.get("branch") for rows in spec.get("datasets", {}).values() for row in rows})
    step = min(HEATMAP_STEP, REPORT_MAX_HEIGHT_PX // max(branches, 1))
    spec["height"] = {"step": step}
    notes = []
    marked = json.dumps(required)
    for layer in layers:
        x = layer.get("encoding", {}).get("x")
        if x and x.get("field") == "partner_type":
            x["axis"] = {
                **x.get("axis", {}),
                # Below the cells, slanting down to the left: a long name never runs off the right edge.
                "orient": "bottom",
                "labelAngle": -40,
                "labelLimit": 170,
                "labelFontSize": 10,
                "labelExpr": f"indexof({marked}, datum.value) >= 0 ? '* ' + datum.value : datum.value",
                "labelFontWeight": {
                    "condition": {"test": f"indexof({marked}, datum.value) >= 0", "value": "bold"},
                    "value": "normal",
                },
            }
        y = layer.get("encoding", {}).get("y")
        if y:
            # Rows lower than the labels' text: Vega-Lite shows every label it can without overlap, drops the rest.
            y["axis"] = {**y.get("axis", {}), "labelFontSize": 10, "labelLimit": 140, "labelOverlap": "greedy"}
        if _mark(layer) == "rect" and step < 8:
            layer["mark"] = {**layer["mark"], "strokeWidth": 0}  # white borders would hide rows this low
    if required:
        notes.append("* Required partner type (in bold).")
    if step < HEATMAP_TEXT_MIN_STEP:
        spec["layer"] = [layer for layer in layers if _mark(layer) != "text"]
        notes.append("Too many branches for the counts to fit in the cells: see the data table.")
    else:
        for layer in layers:
            if _mark(layer) == "text":
                layer["mark"] = {**layer["mark"], "fontSize": 10}
    return notes


def to_png(chart: alt.TopLevelMixin | dict, ppi: int = REPORT_DPI) -> bytes:
    """The chart (or a Vega-Lite spec) as a PNG image at ``ppi`` dots per inch, rendered on the server."""
    import vl_convert  # only needed when someone downloads a chart

    spec = _spec(chart)
    # vl-convert draws scale x ppi / 72 pixels per CSS pixel: this scale makes that ppi / 96.
    return vl_convert.vegalite_to_png(json.dumps(spec), scale=72 / CSS_DPI, ppi=ppi)


def to_svg(chart: alt.TopLevelMixin | dict) -> str:
    """The chart (or a Vega-Lite spec) as SVG."""
    import vl_convert

    spec = _spec(chart)
    return vl_convert.vegalite_to_svg(json.dumps(spec))


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
