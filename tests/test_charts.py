"""Charts: the Vega-Lite each chart function produces (encodings, colours, labels, sorting), that only aggregated
rows reach the browser (never interaction rows), and the PNG and SVG renderings."""

import json
import re
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pyarrow
import pytest

from crm import charts, clock, coverage, db, interactions, organisations, users
from tests.conftest import PASSWORD, World

FROZEN = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
TODAY = date(2026, 3, 2)
SECRET = "Visited Mrs Example at home"  # an interaction's free text: must never be in a chart
INTERACTION_FIELDS = {
    "summary",
    "notes",
    "occurred_on",
    "follow_up_on",
    "follow_up_action",
    "follow_up_done_on",
    "kind_code",
    "contact_ids",
    "contacts",
    "created_by",
    "logged_by",
}
TYPE_ORDER = [
    "GP practice",
    "Primary care network",
    "Community therapy (OT, physio, reablement)",
    "Community nursing (district nurses)",
    "Council adult social care",
    "Hospital discharge",
    "Mental health",
    "Integrated care board",
    "Hospice",
    "Pharmacy",
    "Housing",
    "Voluntary and community",
    "Other",
]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The trend's twelve months to TODAY, as its axis names them.
MONTH_LABELS = ["Apr 2025", "May 2025", "Jun 2025", "Jul 2025", "Aug 2025", "Sep 2025", "Oct 2025", "Nov 2025",
                "Dec 2025", "Jan 2026", "Feb 2026", "Mar 2026"]  # fmt: skip


class Figures:
    """What the Coverage page draws for the administrator, computed once."""

    def __init__(self, world: World):
        self.world = world
        self.rows, self.scores = coverage.report(world.db, world.admin)
        self.median = coverage.median_score(self.scores)
        self.trend = coverage.trend(world.db, world.admin)
        self.referrals = coverage.referrals_by_month(world.db, world.admin)
        self.type_order = [t["label"] for t in organisations.types(world.db)]
        self.interactions = world.db["interactions"].count


@pytest.fixture(scope="module")
def figures(tmp_path_factory) -> Figures:
    """Three branches with contacts of several types and many more interactions than heatmap cells (every one
    carrying the same summary and notes), the clock stopped at FROZEN."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clock, "now", lambda: FROZEN)
        database = db.connect(tmp_path_factory.mktemp("charts") / "crm.db")
        world = World(database, users.create_first_admin(database, "ada", "Ada Admin", PASSWORD))
        people = {
            "leeds_gp": world.contact(world.leeds, "Priya Patel"),
            "leeds_ot": world.contact(world.leeds, "Omar Okafor", world.ot),
            "york_council": world.contact(world.york, "Cara Council", world.council),
            "bristol_gp": world.contact(world.bristol, "Bram Brown"),
        }
        # Added long ago, so the trend's past month ends count them.
        database.execute("UPDATE contacts SET created_at = '2024-01-01T09:00:00Z'")
        kinds = ["PHONE_CALL", "REFERRAL_RECEIVED", "VISIT"]
        plan = [("leeds_gp", 5), ("leeds_ot", 200), ("york_council", 40), ("bristol_gp", 95)]
        for n in range(60):
            name, newest = plan[n % len(plan)]
            contact_id = people[name]
            branch_id = database.execute("SELECT branch_id FROM contacts WHERE id = ?", [contact_id]).fetchone()[0]
            interactions.log(
                database,
                world.admin,
                {
                    "branch_id": branch_id,
                    "occurred_on": TODAY - timedelta(days=newest + 7 * (n // len(plan))),
                    "kind_code": kinds[n % len(kinds)],
                    "summary": SECRET,
                    "notes": SECRET,
                    "contact_ids": [contact_id],
                },
            )
        figures = Figures(world)
    yield figures
    database.close()


def records(spec: dict) -> list[list[dict]]:
    """The rows of every dataset in a chart's spec."""
    return list(spec.get("datasets", {}).values())


def layer_data(spec: dict, layer: dict) -> list[dict]:
    return spec["datasets"][(layer.get("data") or spec["data"])["name"]]


def test_that_the_data_is_large_enough_for_the_checks_below(figures):
    """Test that the module's data has more interactions than heatmap cells, so a chart holding interaction rows
    would show."""
    assert len(figures.rows) == 3 * 13
    assert figures.interactions > len(figures.rows)
    assert figures.type_order == TYPE_ORDER


def test_heatmap_spec(figures):
    """Test that the heatmap puts partner types across (in the types' order) and branches down, colours cells by
    status with the three status colours, labels each cell with warm/named or "gap", and lets a click select a
    branch and type."""
    spec = charts.heatmap(figures.rows, figures.type_order).to_dict()

    cells, labels = spec["layer"]
    assert cells["mark"] == {"type": "rect", "stroke": "white"}
    for layer in (cells, labels):
        assert layer["encoding"]["x"]["field"] == "partner_type"
        assert (layer["encoding"]["x"]["type"], layer["encoding"]["x"]["sort"]) == ("nominal", TYPE_ORDER)
        # Branches down in the rows' order (by region, then name): "sort": null keeps the data's order.
        assert layer["encoding"]["y"] == {"field": "branch", "type": "nominal", "sort": None, "title": None}
    [data] = records(spec)
    assert list(dict.fromkeys(row["branch"] for row in data)) == ["Leeds", "York", "Bristol"]
    assert cells["encoding"]["color"]["field"] == "status"
    assert cells["encoding"]["color"]["scale"] == {
        "domain": ["Covered", "Lapsing", "Gap"],
        "range": ["#0072B2", "#E69F00", "#D55E00"],
    }
    assert charts.STATUS_COLOURS == {"covered": "#0072B2", "lapsing": "#E69F00", "gap": "#D55E00"}
    assert [t["field"] for t in cells["encoding"]["tooltip"]] == [
        "branch",
        "partner_type",
        "status",
        "named",
        "warm",
        "last_touched",
    ]
    assert labels["mark"]["type"] == "text"
    assert labels["encoding"]["text"] == {"field": "label", "type": "nominal"}
    assert labels["encoding"]["color"] == {
        "condition": {"test": "(datum.status === 'Lapsing')", "value": "black"},
        "value": "white",
    }
    [selection] = spec["params"]
    assert (selection["name"], selection["select"]) == (
        charts.CELL_SELECTION,
        {"type": "point", "fields": ["branch_id", "type_code"], "on": "click"},
    )
    assert spec["title"] == "Coverage by branch and partner type"


def test_heatmap_data_is_one_row_per_cell(figures):
    """Test that the heatmap's data is exactly one row per branch and partner type, with the status label, the
    counts, the last touch ("never" when none) and the cell's label."""
    spec = charts.heatmap(figures.rows, figures.type_order).to_dict()
    world = figures.world

    [data] = records(spec)
    assert len(data) == len(figures.rows) == 39
    by_cell = {(r["branch"], r["partner_type"]): r for r in data}
    assert by_cell[("Leeds", "GP practice")] == {
        "branch": "Leeds",
        "branch_id": world.leeds,
        "partner_type": "GP practice",
        "type_code": "GP_PRACTICE",
        "status": "Covered",
        "named": 1,
        "warm": 1,
        "last_touched": "2026-02-25",
        "label": "1/1",
    }
    ot = "Community therapy (OT, physio, reablement)"
    assert by_cell[("Leeds", ot)] == {
        "branch": "Leeds",
        "branch_id": world.leeds,
        "partner_type": ot,
        "type_code": "COMMUNITY_THERAPY",
        "status": "Lapsing",
        "named": 1,
        "warm": 0,
        "last_touched": "2025-08-14",
        "label": "0/1",
    }
    assert by_cell[("York", "GP practice")] == {
        "branch": "York",
        "branch_id": world.york,
        "partner_type": "GP practice",
        "type_code": "GP_PRACTICE",
        "status": "Gap",
        "named": 0,
        "warm": 0,
        "last_touched": "never",
        "label": "gap",
    }
    assert {r["status"] for r in data} == {"Covered", "Lapsing", "Gap"}


def test_league_spec(figures):
    """Test that the league puts the score (0 to 100) across and branches down, sorted by score, labels each bar
    with covered/required, and draws the median as a labelled rule."""
    spec = charts.league(figures.scores, figures.median).to_dict()

    bars, text, rule, rule_text = spec["layer"]
    assert bars["mark"] == {"type": "bar", "color": charts.STATUS_COLOURS["covered"]}
    assert bars["encoding"]["x"] == {
        "field": "score",
        "type": "quantitative",
        "title": "Required partner types covered (%)",
        "scale": {"domain": [0, 100]},
    }
    assert bars["encoding"]["y"] == {"field": "branch", "type": "nominal", "sort": "-x", "title": None}
    assert (text["mark"]["type"], text["encoding"]["text"]) == ("text", {"field": "label", "type": "nominal"})
    assert rule["mark"]["type"] == "rule"
    assert rule["encoding"]["x"] == {"field": "median", "type": "quantitative"}
    assert rule_text["encoding"]["text"] == {"field": "label", "type": "nominal"}
    assert layer_data(spec, bars) == [
        {"branch": "Leeds", "region": "North", "score": 20, "label": "1/5"},
        {"branch": "York", "region": "North", "score": 20, "label": "1/5"},
        {"branch": "Bristol", "region": "South", "score": 0, "label": "0/5"},
    ]
    assert layer_data(spec, rule) == [{"median": 20, "label": "median 20%"}]


def test_league_without_a_median_has_no_rule(figures):
    """Test that a league with no median (no branches to take one from) draws the bars and labels only."""
    spec = charts.league(figures.scores, None).to_dict()

    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["bar", "text"]


def test_trend_spec(figures):
    """Test that the trend puts months across, with interactions logged as bars and the coverage score (0 to 100)
    as a labelled line on its own axis."""
    spec = charts.trend(figures.trend).to_dict()

    bars, lines = spec["layer"]
    line, labels = lines["layer"]
    assert bars["mark"]["type"] == "bar"
    assert bars["encoding"]["y"] == {"field": "interactions", "type": "quantitative", "title": "Interactions logged"}
    assert line["mark"]["type"] == "line"
    assert line["encoding"]["y"] == {
        "field": "score",
        "type": "quantitative",
        "title": "Coverage score (%)",
        "scale": {"domain": [0, 100]},
    }
    assert labels["encoding"]["text"] == {"field": "score", "type": "quantitative"}
    for layer in (bars, line, labels):
        assert (layer["encoding"]["x"]["field"], layer["encoding"]["x"]["type"]) == ("month_label", "ordinal")
        assert layer["encoding"]["x"]["sort"] == MONTH_LABELS
    assert spec["resolve"] == {"scale": {"y": "independent"}}
    assert layer_data(spec, bars) == [
        {
            "month": r["month"],
            "score": round(100 * r["score"]),
            "interactions": r["interactions"],
            "month_label": label,
            "month_note": "",
        }
        for r, label in zip(figures.trend, MONTH_LABELS, strict=True)
    ]
    assert [r["month"] for r in layer_data(spec, bars)] == [f"{d:%Y-%m}" for d in coverage.month_ends(TODAY)]
    assert sum(r["interactions"] for r in layer_data(spec, bars)) == figures.interactions


def test_referrals_spec(figures):
    """Test that the referrals chart puts months across and stacks each month's referrals by partner type, one
    colour per type from the colour-blind-safe list."""
    spec = charts.referrals(figures.referrals).to_dict()

    assert spec["mark"] == {"type": "bar"}
    encoding = spec["encoding"]
    assert (encoding["x"]["field"], encoding["x"]["type"]) == ("month_label", "ordinal")
    assert encoding["x"]["sort"] == [
        f"{date(int(m[:4]), int(m[5:]), 1):%b %Y}" for m in sorted({r["month"] for r in figures.referrals})
    ]
    assert encoding["y"] == {
        "field": "referrals",
        "type": "quantitative",
        "aggregate": "sum",
        "title": "Referrals received",
    }
    assert "stack" not in encoding["y"]  # Vega-Lite's default: bars of one month stacked
    types = sorted({r["partner_type"] for r in figures.referrals})
    assert types == ["Community therapy (OT, physio, reablement)", "Council adult social care", "GP practice"]
    assert encoding["color"]["field"] == "partner_type"
    assert encoding["color"]["scale"] == {"domain": types, "range": charts.CATEGORY_COLOURS[:3]}
    [data] = records(spec)
    assert data == [
        {**r, "month_label": f"{date(int(r['month'][:4]), int(r['month'][5:]), 1):%b %Y}", "month_note": ""}
        for r in figures.referrals
    ]


def test_referrals_with_more_types_than_colours_use_a_larger_scheme():
    """Test that more partner types than the colour list holds switch to a 20-colour scheme."""
    rows = [{"month": "2026-02", "partner_type": f"Type {n:02d}", "referrals": 1} for n in range(10)]

    scale = charts.referrals(rows).to_dict()["encoding"]["color"]["scale"]

    assert scale == {"domain": [f"Type {n:02d}" for n in range(10)], "scheme": "tableau20"}


def test_that_no_chart_carries_interaction_rows(figures):
    """Test that every dataset of every chart has at most one row per branch and partner type, no interaction
    field, and none of the interactions' free text."""
    specs = {
        "heatmap": charts.heatmap(figures.rows, figures.type_order).to_dict(),
        "league": charts.league(figures.scores, figures.median).to_dict(),
        "trend": charts.trend(figures.trend).to_dict(),
        "referrals": charts.referrals(figures.referrals).to_dict(),
    }

    for name, spec in specs.items():
        datasets = records(spec)
        assert datasets, name
        for data in datasets:
            assert len(data) <= 3 * 13, name
            assert not INTERACTION_FIELDS & {key for row in data for key in row}, name
        assert SECRET not in json.dumps(spec), name


def test_to_svg_and_to_png(figures):
    """Test that a chart renders on the server to an SVG document and to a PNG image."""
    chart = charts.heatmap(figures.rows, figures.type_order)

    svg = charts.to_svg(chart)
    png = charts.to_png(chart)

    assert svg.startswith("<svg")
    assert svg.rstrip().endswith("</svg>")
    assert "Coverage by branch and partner type" in svg
    assert png.startswith(PNG_SIGNATURE)


# Chart images for reports (charts.for_report, to_png, to_svg).


def png_facts(png: bytes) -> tuple[int, int, tuple[int, int, int] | None]:
    """(width, height) from the PNG's IHDR header and its pHYs chunk (pixels per unit x, y, unit), read from the
    file's bytes."""
    import struct

    assert png.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", png[16:24])
    position, physical = 8, None
    while position < len(png):
        length, kind = struct.unpack(">I4s", png[position : position + 8])
        if kind == b"pHYs":
            physical = struct.unpack(">IIB", png[position + 8 : position + 17])
        position += 12 + length
    return width, height, physical


def svg_texts(svg: str) -> list[str]:
    """Each text element of the SVG, its lines (tspans) joined by newlines."""
    import re
    from html import unescape

    texts = []
    for inner in re.findall(r"<text[^>]*>(.*?)</text>", svg):
        lines = re.findall(r"<tspan[^>]*>([^<]*)</tspan>", inner) or [inner]
        texts.append(unescape("\n".join(lines)))
    return texts


REPORT = {"scope": "North region", "as_of": date(2026, 2, 28), "window_days": 90}


@pytest.mark.parametrize("name", ["heatmap", "league", "trend", "referrals"])
def test_report_png_is_16_cm_wide_at_200_dpi(figures, name):
    """Test that each chart's report image is 1,260 pixels wide (16 cm at 200 dpi, an A4 page inside 2.5 cm
    margins), says 200 dpi in its header (7,874 pixels per metre) so a word processor places it at 16 cm, and is
    no taller than fits an A4 page (24.7 cm of it at most)."""
    chart = {
        "heatmap": lambda: charts.heatmap(figures.rows, figures.type_order),
        "league": lambda: charts.league(figures.scores, figures.median),
        "trend": lambda: charts.trend(figures.trend, partial_month="2026-03"),
        "referrals": lambda: charts.referrals(figures.referrals, partial_month="2026-03"),
    }[name]()

    width, height, physical = png_facts(charts.to_png(charts.for_report(chart, **REPORT)))

    assert (width, physical) == (1260, (7874, 7874, 1))
    assert 300 < height <= round(24.7 / 2.54 * 200)


def test_report_svg_is_titled_with_scope_as_of_date_and_window(figures):
    """Test that a report figure keeps the chart's title and adds a subtitle with its scope, the date it is as of
    (in the one date style) and the coverage window, where the on-screen chart has only the title."""
    chart = charts.league(figures.scores, figures.median)

    texts = svg_texts(charts.to_svg(charts.for_report(chart, **REPORT)))

    assert {"Branch league", "North region. As of 28 Feb 2026; coverage window 90 days."} <= set(texts)
    assert "North region" not in " ".join(svg_texts(charts.to_svg(chart)))
    spec = charts.for_report(chart, **{**REPORT, "window_days": None})
    assert spec["title"]["subtitle"] == ["North region. As of 28 Feb 2026."]


def test_month_axis_names_months_and_marks_the_month_so_far(figures):
    """Test that the trend's axis names each month as "Mar" over "2026" (never "2026-03"), and the current month,
    still in progress, as "(so far)" beneath, with its bar paler."""
    svg = charts.to_svg(charts.for_report(charts.trend(figures.trend, partial_month="2026-03"), **REPORT))

    texts = svg_texts(svg)
    assert [t for t in texts if re.fullmatch(r"\d{4}-\d{2}", t)] == []
    axis = [t for t in texts if t[:3] in {label[:3] for label in MONTH_LABELS} and "\n" in t]
    assert axis == [label.replace(" ", "\n") for label in MONTH_LABELS[:-1]] + ["Mar\n2026\n(so far)"]
    spec = charts.trend(figures.trend, partial_month="2026-03").to_dict()
    notes = [(r["month_label"], r["month_note"]) for r in records(spec)[0] if r["month_note"]]
    assert notes == [("Mar 2026", "month so far")]


def test_report_heatmap_marks_required_types_and_keeps_cell_text_only_where_it_fits(figures):
    """Test that the report heatmap marks the required partner types (a star before the name, in bold, explained
    in the subtitle), keeps each cell's count at a size that fits its row, and, with more branches than fit a page
    at a readable height, leaves the counts out (saying so) rather than overprint them."""
    required = ["GP practice", "Council adult social care"]
    spec = charts.for_report(charts.heatmap(figures.rows, figures.type_order), **REPORT, required_types=required)

    assert spec["title"]["subtitle"] == [
        "North region. As of 28 Feb 2026; coverage window 90 days.",
        "* Required partner type (in bold).",
    ]
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["rect", "text"]
    assert spec["layer"][1]["mark"]["fontSize"] == 10
    texts = svg_texts(charts.to_svg(spec))
    assert "* GP practice" in texts and "* Council adult social care" in texts and "Pharmacy" in texts

    many = [{**row, "branch": f"Branch {n:03d}", "branch_id": n} for n in range(1, 201) for row in figures.rows[:1]]
    crowded = charts.for_report(charts.heatmap(many, figures.type_order), **REPORT, required_types=required)
    assert [layer["mark"]["type"] for layer in crowded["layer"]] == ["rect"]
    assert crowded["title"]["subtitle"][-1] == (
        "Too many branches for the counts to fit in the cells: see the data table."
    )
    width, height, _ = png_facts(charts.to_png(crowded))
    assert (width, height <= round(24.7 / 2.54 * 200)) == (1260, True)


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ({"selection": {"cell": [{"branch_id": 7, "type_code": "LA_SOCIAL_CARE"}]}}, (7, "LA_SOCIAL_CARE")),
        ({"selection": {"cell": [{"branch_id": 7.0, "type_code": "GP_PRACTICE"}]}}, (7, "GP_PRACTICE")),
        ({"selection": {"cell": []}}, None),
        ({"selection": {}}, None),
        ({}, None),
        (None, None),
    ],
)
def test_picked_cell_reads_the_heatmap_selection(selection, expected):
    """Test that the heatmap's selection state (as st.altair_chart keeps it under its key) gives the clicked
    cell's branch id and partner type code, or None when no cell is selected."""
    assert charts.picked_cell(selection) == expected


def _declines(reasons: dict[str, int]) -> list[dict]:
    return [{"reason": reason, "declined": count} for reason, count in reasons.items()]


def test_a_pages_chart_is_built_once_for_the_same_arguments_and_again_for_new_ones(monkeypatch):
    """cached.chart_spec: the same arguments give the same spec without building the chart again; other
    arguments build theirs; only the SPECS_KEPT most recently used are kept."""
    from crm.ui import cached

    monkeypatch.setattr(cached, "_specs", type(cached._specs)())
    monkeypatch.setattr(cached, "_recent", {})
    built = []

    def declines_chart(rows):
        built.append(rows)
        return charts.declines_by_reason(rows)

    first = cached.chart_spec(declines_chart, _declines({"No capacity": 3}))
    again = cached.chart_spec(declines_chart, _declines({"No capacity": 3}))
    other = cached.chart_spec(declines_chart, _declines({"No capacity": 4}))
    assert again is first
    assert other is not first
    assert built == [_declines({"No capacity": 3}), _declines({"No capacity": 4})]
    expected = charts.page_spec(charts.declines_by_reason(_declines({"No capacity": 3})))
    assert {key: value for key, value in first.items() if key != "datasets"} == {
        key: value for key, value in expected.items() if key != "datasets"
    }
    # The data as the Arrow bytes Streamlit sends, under the name the spec refers to.
    [(name, data)] = first["datasets"].items()
    assert name == expected["data"]["name"]
    assert pyarrow.ipc.open_stream(data).read_all().to_pylist() == _declines({"No capacity": 3})

    for n in range(cached.SPECS_KEPT):
        cached.chart_spec(declines_chart, _declines({"Outside our area": n}))
    assert len(cached._specs) == cached.SPECS_KEPT
    built.clear()
    cached.chart_spec(declines_chart, _declines({"No capacity": 3}))  # the oldest: no longer kept, built again
    assert built == [_declines({"No capacity": 3})]


def test_a_chart_drawn_again_from_the_same_rows_is_found_without_hashing_them(monkeypatch):
    """cached.chart_spec: drawn again with the very rows it was drawn with (figures kept as shared objects), or
    rows equal to them, the chart's spec is found by comparing, without pickling the rows to hash them; rows
    changed since give another spec."""
    from crm.ui import cached

    monkeypatch.setattr(cached, "_specs", type(cached._specs)())
    monkeypatch.setattr(cached, "_recent", {})
    rows = _declines({"No capacity": 3, "Outside our area": 1})
    first = cached.chart_spec(charts.declines_by_reason, rows)
    pickled = []
    real_pickle = cached.pickle
    # (cached's own name for the module, so that nothing else is affected)
    monkeypatch.setattr(cached, "pickle", SimpleNamespace(dumps=lambda *args, **kwargs: pickled.append(args) or b""))

    assert cached.chart_spec(charts.declines_by_reason, rows) is first
    assert cached.chart_spec(charts.declines_by_reason, [dict(row) for row in rows]) is first
    assert pickled == []
    monkeypatch.setattr(cached, "pickle", real_pickle)
    other = cached.chart_spec(charts.declines_by_reason, _declines({"No capacity": 4}))
    assert other is not first
    [(_, data)] = other["datasets"].items()
    assert pyarrow.ipc.open_stream(data).read_all().to_pylist() == _declines({"No capacity": 4})


def test_a_pages_chart_spec_has_no_theme_so_it_fills_its_column_and_a_report_keeps_its_size():
    """charts.page_spec leaves Altair's default theme (a view fixed at 300 by 300 pixels) out, as st.altair_chart
    did; a report's figure is drawn from the chart with the theme, as before."""
    chart = charts.declines_by_reason(_declines({"No capacity": 3}))
    assert "config" not in charts.page_spec(chart)
    assert chart.to_dict()["config"] == {"view": {"continuousWidth": 300, "continuousHeight": 300}}
    report = charts.for_report(chart, scope="All branches", as_of=TODAY)
    assert report["config"] == {"view": {"continuousWidth": 300, "continuousHeight": 300}}


def test_a_heatmap_of_400_branches_is_drawn_though_it_has_more_than_altairs_5000_row_default():
    rows = [
        {
            "branch": f"Branch {b:03d}",
            "branch_id": b,
            "partner_type": label,
            "type_code": label.upper(),
            "status": "gap",
            "named_contacts": 0,
            "warm_named_contacts": 0,
            "last_touched": None,
        }
        for b in range(400)
        for label in TYPE_ORDER
    ]
    assert len(rows) > 5000
    [data] = charts.page_spec(charts.heatmap(rows, TYPE_ORDER))["datasets"].values()
    assert len(data) == len(rows)
