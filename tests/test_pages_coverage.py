"""Page tests for Coverage with Streamlit's AppTest: a regional lead lands on it and sees exactly what
coverage.report(), trend() and referrals_by_month() give for their scope, the filters (branch, window, as-of date,
an administrator's region) change the figures the same way, a branch manager sees their branch only, new data
shows on the next run despite the cache, and the page's numbers are the command line's."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pandas as pd
import pytest
import streamlit
import streamlit.runtime.context
from streamlit.testing.v1 import AppTest

from crm import clock, coverage, dates, db, directory, interactions, organisations, referrals, users
from crm.access import Actor
from tests.conftest import PASSWORD, World, copy_world
from tests.pagehelpers import ROOT, as_a_phone, chart_table, new_app, open_section, run_app_on, sign_in, values

HEATMAP_COLUMNS = {
    "region": "Region",
    "branch": "Branch",
    "partner_type": "Partner type",
    "required": "Required",
    "named_contacts": "Named contacts",
    "warm_named_contacts": "Warm named contacts",
    "last_touched": "Last touched",
    "status": "Status",
}
LEAGUE_COLUMNS = {
    "region": "Region",
    "branch": "Branch",
    "covered": "Required types covered",
    "required": "Required types",
    "gp_patch_with_named_contact": "GP practices with a named contact",
    "gp_patch_practices": "GP practices",
    "referrals_90_days": "Referrals, last 90 days",
}
TREND_COLUMNS = {"month": "Month", "score": "Mean coverage score (0 to 1)", "interactions": "Interactions logged"}
REFERRAL_COLUMNS = {"month": "Month", "partner_type": "Partner type", "referrals": "Referrals"}
GAP_WARNING = "A gap: no named contact of this type. Find one on the Organisations page."


@pytest.fixture(autouse=True)
def app_env(monkeypatch, db_path):
    """Every test's app runs on the test's own database file, (see pagehelpers.run_app_on for why AppTest's
    cookies and folder-based multipage mode are switched off), with Streamlit's data cache empty before and
    after (the page caches coverage per data version)."""
    run_app_on(monkeypatch, db_path)
    streamlit.cache_data.clear()
    streamlit.cache_resource.clear()
    yield
    streamlit.cache_data.clear()
    streamlit.cache_resource.clear()


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, World]:
    """The world with named contacts in every branch (added 400 days ago, so every as-of date counts them), touches
    on days far from every window boundary, referrals, and a GP patch for Leeds: built once (hashing is slow)."""
    path = tmp_path_factory.mktemp("pages_coverage") / "crm.db"
    database = db.connect(path)
    world = World(database, users.create_first_admin(database, "ada", "Ada Admin", PASSWORD))
    today = clock.now().date()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clock, "now", lambda: datetime.combine(today - timedelta(days=400), time(9), UTC))
        world.people = {
            "lena_gp": world.contact(world.leeds, "Lena GP"),
            "lena_ot": world.contact(world.leeds, "Lena OT", world.ot),
            "lena_council": world.contact(world.leeds, "Lena Council", world.council),
            "yuri_gp": world.contact(world.york, "Yuri GP"),
            "yuri_ot": world.contact(world.york, "Yuri OT", world.ot),
            "yuri_council": world.contact(world.york, "Yuri Council", world.council),
            "bram_council": world.contact(world.bristol, "Bram Council", world.council),
        }
    for name, days_ago, kind in (
        ("lena_gp", 10, "REFERRAL_RECEIVED"),
        ("lena_gp", 200, "VISIT"),
        ("lena_ot", 120, "PHONE_CALL"),
        ("lena_council", 50, "PHONE_CALL"),
        ("yuri_gp", 30, "REFERRAL_RECEIVED"),
        ("yuri_ot", 20, "MEETING"),
        ("bram_council", 5, "REFERRAL_RECEIVED"),
    ):
        contact_id = world.people[name]
        branch_id = database.execute("SELECT branch_id FROM contacts WHERE id = ?", [contact_id]).fetchone()[0]
        interactions.log(
            database,
            world.admin,
            {
                "branch_id": branch_id,
                "occurred_on": today - timedelta(days=days_ago),
                "kind_code": kind,
                "summary": "Catch-up",
                "contact_ids": [contact_id],
            },
        )
    organisations.add(
        database, world.admin, {"name": "Headingley Surgery", "type_code": "GP_PRACTICE", "postcode": "LS6 3BB"}
    )
    directory.set_patch(database, world.admin, world.leeds, "LS6", "")
    database.close()
    return path, world


@pytest.fixture
def world(template, db_path) -> World:
    """A copy of the template world at the path the app reads (CRM_DB)."""
    path, built = template
    scene = copy_world(path, built, db_path)
    scene.today = clock.now().date()
    yield scene
    scene.db.close()


# Which tab of the page draws each chart (only the open tab's content runs).
VIEW_OF = {
    "Coverage heatmap": "Heatmap",
    "Branch league": "Branch league",
    "Coverage trend": "Trend",
    "Referrals by partner type": "Referrals received",
}


def open_view(at: AppTest, view: str) -> AppTest:
    """Open one of the page's tabs, as a click on it does (the tabs rerun the page)."""
    at.session_state["coverage_view"] = view
    return at.run()


def table(at: AppTest, name: str) -> list[dict]:
    """The rows of the data table under the chart called ``name`` (empty cells as None), its tab and its table
    opened first when they are closed (and left open)."""
    if at.session_state["coverage_view"] != VIEW_OF[name]:
        open_view(at, VIEW_OF[name])
    data = chart_table(at, name)
    return data.astype(object).where(pd.notna(data), None).to_dict("records")


def shown(rows: list[dict], columns: dict[str, str]) -> list[dict]:
    """Rows as a data table shows them: the listed keys under their headings."""
    return [{heading: row.get(key) for key, heading in columns.items()} for row in rows]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def expected_metrics(branch_scores: list[dict]) -> dict[str, str]:
    median = coverage.median_score(branch_scores)
    fully = sum(b["score"] == 1 for b in branch_scores)
    return {
        "Branches": str(len(branch_scores)),
        "Fully covered": f"{fully} of {len(branch_scores)}",
        "Median score": f"{round(100 * median)}%",
    }


def assert_page_shows(at: AppTest, world: World, actor: Actor, **filters) -> None:
    """The page's metrics and every data table are what crm gives this actor with these filters."""
    rows, branch_scores = coverage.report(world.db, actor, **filters)
    trend_filters = {k: v for k, v in filters.items() if k != "as_of"}
    referral_filters = {k: v for k, v in trend_filters.items() if k != "window"}
    assert not at.exception, at.exception
    assert metrics(at) == expected_metrics(branch_scores)
    assert at.session_state["coverage_view"] == "Heatmap"  # what the page opens on
    assert table(at, "Coverage heatmap") == shown(rows, HEATMAP_COLUMNS)
    if len(branch_scores) > 1:
        scope = {k: v for k, v in filters.items() if k in ("region_id", "branch_id")}
        recent = referrals.received_by_branch(world.db, actor, **scope)
        league = [
            {**b, "referrals_90_days": recent.get(b["branch_id"], 0)}
            for b in sorted(branch_scores, key=lambda b: -b["score"])
        ]
        assert table(at, "Branch league") == shown(league, LEAGUE_COLUMNS)
    assert table(at, "Coverage trend") == shown(coverage.trend(world.db, actor, **trend_filters), TREND_COLUMNS)
    assert table(at, "Referrals by partner type") == shown(
        coverage.referrals_by_month(world.db, actor, **referral_filters), REFERRAL_COLUMNS
    )
    open_view(at, "Heatmap")


def test_that_a_regional_lead_lands_on_coverage_and_sees_the_reports_numbers(world):
    """Test that a regional lead starts on Coverage and sees, for their region, the metrics and the heatmap,
    league, trend and referrals data that crm gives them; only their branches are offered."""
    at = sign_in(new_app(), "lead.north")

    assert values(at.title) == ["Coverage"]
    assert_page_shows(at, world, world.lead_north)
    assert metrics(at) == {"Branches": "2", "Fully covered": "0 of 2", "Median score": "40%"}
    assert [r["Branch"] for r in table(at, "Coverage heatmap")] == ["Leeds"] * 13 + ["York"] * 13
    assert at.selectbox(key="coverage_branch").options == ["All branches", "Leeds", "York"]
    assert [s.key for s in at.selectbox if s.key == "coverage_region"] == []
    assert (at.number_input(key="coverage_window").value, at.selectbox(key="coverage_as_of").value) == (
        90,
        world.today,
    )
    assert "Scope: North region. Window 90 days." in values(at.caption)
    assert "Bristol" not in json.dumps([table(at, "Coverage heatmap"), table(at, "Branch league")])


def test_that_the_branch_window_and_date_filters_give_the_reports_numbers_for_them(world):
    """Test that choosing a branch, a window and a past month's end shows what crm gives for exactly those."""
    at = sign_in(new_app(), "lead.north")
    as_of = coverage.month_ends(world.today)[-3]

    at.selectbox(key="coverage_branch").set_value(world.york)
    at.number_input(key="coverage_window").set_value(30)
    at.selectbox(key="coverage_as_of").set_value(as_of)
    at.run()

    assert_page_shows(at, world, world.lead_north, branch_id=world.york, window=30, as_of=as_of)
    assert [r["Branch"] for r in table(at, "Coverage heatmap")] == ["York"] * 13
    assert [e.label for e in at.expander if e.label.startswith("Branch league")] == []
    assert "Scope: North region. Window 30 days." in values(at.caption)


def test_that_a_window_changes_the_statuses(world):
    """Test that a longer window turns a lapsing cell covered on the page, as in crm."""
    at = sign_in(new_app(), "lead.north")
    lena_ot = {"Branch": "Leeds", "Partner type": "Community therapy (OT, physio, reablement)"}

    def ot_status() -> str:
        [row] = [r for r in table(at, "Coverage heatmap") if all(r[k] == v for k, v in lena_ot.items())]
        return row["Status"]

    assert ot_status() == "lapsing"
    at.number_input(key="coverage_window").set_value(150).run()

    assert ot_status() == "covered"
    assert_page_shows(at, world, world.lead_north, window=150)


def test_that_a_branch_manager_sees_their_branch_and_its_gp_patch(world):
    """Test that a branch manager has no branch or region filter, sees their branch's figures only, with its GP
    patch coverage, and no league."""
    at = sign_in(new_app(), "manager.leeds")
    at.switch_page("pages/coverage.py").run()

    assert_page_shows(at, world, world.manager_leeds)
    assert [s.key for s in at.selectbox if s.key in ("coverage_branch", "coverage_region")] == []
    assert {r["Branch"] for r in table(at, "Coverage heatmap")} == {"Leeds"}
    assert "GP patch coverage: 1 of 2 practices (50%)" in values(at.markdown)
    assert [t.label for t in at.tabs] == ["Heatmap", "Trend", "Referrals received"]  # no league for one branch
    assert [e.label for e in at.expander] == ["Coverage heatmap: data as a table"]  # the closed tabs are not drawn
    assert [e.label for e in open_view(at, "Trend").expander] == ["Coverage trend: data as a table"]
    open_view(at, "Referrals received")
    assert [e.label for e in at.expander] == ["Referrals by partner type: data as a table"]
    recent = referrals.received_by_branch(world.db, world.manager_leeds).get(world.leeds, 0)
    assert f"Referrals received in the last 90 days: {recent}." in values(at.caption)


def test_that_a_phone_gets_the_branchs_row_as_a_list_and_a_desktop_the_heatmap(world, monkeypatch):
    """Test that a desktop's browser gets the heatmap and not the phone's list, and a phone's browser the list of
    the branch's partner types with their status in words and not the heatmap (only one is drawn, neither is
    drawn and hidden)."""
    at = sign_in(new_app(), "manager.leeds")
    at.switch_page("pages/coverage.py").run()
    assert [r["Branch"] for r in table(at, "Coverage heatmap")] == ["Leeds"] * 13
    with pytest.raises(KeyError):
        at.main.get_by_key("coverage_branch_row")

    as_a_phone(monkeypatch)
    at = sign_in(new_app(), "manager.leeds")
    at.switch_page("pages/coverage.py").run()
    assert not at.exception, at.exception
    [listed] = [m.value for m in at.main.get_by_key("coverage_branch_row").markdown]
    lines = [entry.split("  \n") for entry in listed.split("\n\n")]
    assert [head for head, _ in lines] == [
        ":blue-badge[Covered] **GP practice (required)**",
        ":red-badge[Gap] **Primary care network**",
        ":orange-badge[Lapsing] **Community therapy (OT, physio, reablement) (required)**",
        ":red-badge[Gap] **Community nursing (district nurses) (required)**",
        ":blue-badge[Covered] **Council adult social care (required)**",
        ":red-badge[Gap] **Hospital discharge (required)**",
        *(
            f":red-badge[Gap] **{name}**"
            for name in ("Mental health", "Integrated care board", "Hospice", "Pharmacy", "Housing")
        ),
        ":red-badge[Gap] **Voluntary and community**",
        ":red-badge[Gap] **Other**",
    ]
    assert lines[0][1].startswith("1 of 1 named contacts warm, last touched ")
    assert lines[1][1] == "no named contact"
    assert [e.label for e in at.expander] == []  # no heatmap, so no table of its data
    with pytest.raises(KeyError):
        at.main.get_by_key("coverage_heatmap_chart")


def test_that_an_administrator_narrows_to_a_region(world):
    """Test that an administrator sees every branch, and choosing a region shows that region's figures only."""
    at = sign_in(new_app(), "ada")
    at.switch_page("pages/coverage.py").run()
    assert_page_shows(at, world, world.admin)
    assert at.selectbox(key="coverage_region").options == ["All regions", "North", "South"]

    at.selectbox(key="coverage_region").set_value(world.south).run()

    assert_page_shows(at, world, world.admin, region_id=world.south)
    assert at.selectbox(key="coverage_branch").options == ["All branches", "Bristol"]
    assert metrics(at) == {"Branches": "1", "Fully covered": "0 of 1", "Median score": "20%"}


def york_council_call(world: World, actor) -> None:
    """``actor`` logs a call with York's council contact today."""
    interactions.log(
        world.db,
        actor,
        {
            "branch_id": world.york,
            "occurred_on": world.today,
            "kind_code": "PHONE_CALL",
            "summary": "Introduced ourselves",
            "contact_ids": [world.people["yuri_council"]],
        },
    )


def york_council_status(at) -> str:
    york_council = {"Branch": "York", "Partner type": "Council adult social care"}
    [row] = [r for r in table(at, "Coverage heatmap") if all(r[k] == v for k, v in york_council.items())]
    return row["Status"]


def test_that_ones_own_change_shows_on_the_next_run(world):
    """Test that figures cached for the page are recomputed at once after the viewer's own change: an interaction
    the lead logs after the page was drawn shows on the next run."""
    at = sign_in(new_app(), "lead.north")
    assert york_council_status(at) == "lapsing"

    york_council_call(world, world.lead_north)
    at.run()

    assert york_council_status(at) == "covered"
    assert_page_shows(at, world, world.lead_north)


def test_that_anothers_change_shows_once_the_figures_settle(world, monkeypatch):
    """Test that another person's change reaches the lead's figures within cached.SETTLE_SECONDS, not at once:
    any write anywhere would otherwise recompute every figure for everyone."""
    from crm.ui import cached

    seconds = [1_000.0]
    monkeypatch.setattr(cached, "_monotonic", lambda: seconds[0])
    at = sign_in(new_app(), "lead.north")
    assert york_council_status(at) == "lapsing"

    york_council_call(world, world.manager_york)
    seconds[0] += cached.SETTLE_SECONDS - 1
    at.run()
    assert york_council_status(at) == "lapsing"

    seconds[0] += 1
    at.run()
    assert york_council_status(at) == "covered"
    assert_page_shows(at, world, world.lead_north)


def test_that_who_to_call_lists_the_named_contacts_of_the_chosen_cell_or_the_gap(world):
    """Test that picking a branch and partner type under "Who to call" lists that cell's named contacts, and
    warns of a gap when there are none."""
    at = sign_in(new_app(), "lead.north")

    at.selectbox(key="coverage_drill_branch").set_value(world.leeds)
    at.selectbox(key="coverage_drill_type").set_value("COMMUNITY_THERAPY")
    at.run()

    people = [link.proto.label for link in at.get("page_link")]  # each person's name, a link to their page
    assert people == ["Lena OT"]
    last_call = dates.day((clock.now().date() - timedelta(days=120)).isoformat())
    assert f"Lapsed, last {last_call}  \nLeeds Community OT" in values(at.caption)
    at.selectbox(key="coverage_drill_type").set_value("HOSPICE").run()
    assert values(at.warning) == [GAP_WARNING]


def cli_rows(db_path: Path, *args: str) -> list[dict]:
    """``python -m crm coverage --format json`` on ``db_path``, in its own process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env["CRM_DB"] = str(db_path)
    result = subprocess.run(
        [sys.executable, "-m", "crm", "coverage", *args, "--format", "json"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stderr) == (0, "")
    return json.loads(result.stdout)


@pytest.mark.parametrize("past", [False, True], ids=["today", "end-of-last-month"])
def test_that_the_page_and_the_command_line_show_the_same_numbers(world, db_path, past):
    """Test that the Coverage page for a regional lead and `python -m crm coverage --region` for that region give
    the same heatmap rows, today and as of a past month's end (one function behind both)."""
    as_of = coverage.month_ends(world.today)[-2] if past else None
    at = sign_in(new_app(), "lead.north")
    if as_of:
        at.selectbox(key="coverage_as_of").set_value(as_of).run()
    assert not at.exception, at.exception

    command = cli_rows(db_path, "--region", "North", *(["--as-of", as_of.isoformat()] if as_of else []))

    assert table(at, "Coverage heatmap") == shown(command, HEATMAP_COLUMNS)
    branch_scores = {r["branch"]: r["branch_score"] for r in command}
    league = {r["Branch"]: f"{r['Required types covered']}/{r['Required types']}" for r in table(at, "Branch league")}
    assert league == branch_scores
    if not past:
        assert branch_scores == {"Leeds": "2/5", "York": "2/5"}


def test_that_a_charts_data_table_is_drawn_only_while_its_section_is_open(world):
    """Test that the "data as a table" section under a chart sends no table while closed (converting it cost
    every rerun), shows it once opened as a click does, and drops it again when closed."""
    at = sign_in(new_app(), "lead.north")
    label = "Coverage heatmap: data as a table"

    def tables_under_the_chart() -> list[list[str]]:
        [expander] = [e for e in at.expander if e.label == label]
        return [list(frame.value.columns) for frame in expander.dataframe]

    assert tables_under_the_chart() == []
    assert at.session_state["coverage_heatmap_table_open"] is False
    open_section(at, label)
    assert not at.exception, at.exception
    assert tables_under_the_chart() == [
        [
            "Region",
            "Branch",
            "Partner type",
            "Required",
            "Named contacts",
            "Warm named contacts",
            "Last touched",
            "Status",
        ]
    ]
    at.session_state["coverage_heatmap_table_open"] = False  # as a second click on its header closes it
    at.run()
    assert tables_under_the_chart() == []


def test_that_the_league_tab_gives_way_to_the_heatmap_when_one_branch_is_chosen(world):
    """Test that a lead on the Branch league tab who narrows the page to one branch lands on the heatmap (a
    league of one is not offered), without an error, and gets the league back for the whole region."""
    at = sign_in(new_app(), "lead.north")
    open_view(at, "Branch league")
    assert [e.label for e in at.expander] == ["Branch league: data as a table"]

    at.selectbox(key="coverage_branch").set_value(world.york).run()

    assert not at.exception, at.exception
    assert [t.label for t in at.tabs] == ["Heatmap", "Trend", "Referrals received"]
    assert [e.label for e in at.expander] == ["Coverage heatmap: data as a table"]
    at.selectbox(key="coverage_branch").set_value(None).run()
    assert [t.label for t in at.tabs] == ["Heatmap", "Branch league", "Trend", "Referrals received"]


def test_that_who_to_call_lists_the_ten_longest_untouched_and_says_how_many_there_are(world):
    """Test that a cell with more named contacts than Who to call shows lists the ten longest untouched (never
    touched first), and says how many there are in all."""
    york_gps = [world.contact(world.york, f"Gina GP {n:02d}") for n in range(12)]
    for n, contact_id in enumerate(york_gps[1:], start=1):  # Gina GP 00 never touched; 01 the longest ago
        interactions.log(
            world.db,
            world.manager_york,
            {
                "branch_id": world.york,
                "occurred_on": world.today - timedelta(days=100 - n),
                "kind_code": "PHONE_CALL",
                "summary": "Catch-up",
                "contact_ids": [contact_id],
            },
        )
    at = sign_in(new_app(), "lead.north")
    at.selectbox(key="coverage_drill_branch").set_value(world.york)
    at.selectbox(key="coverage_drill_type").set_value("GP_PRACTICE")
    at.run()

    shown = [link.proto.label for link in at.get("page_link")]
    assert shown == [f"Gina GP {n:02d}" for n in range(10)]  # Yuri GP, touched 30 days ago, is the 13th
    assert "Showing the 10 longest untouched of 13 named contacts; the Contacts page lists them all." in values(
        at.caption
    )


def test_that_the_cache_key_changes_when_a_restored_database_reaches_an_id_seen_before(world):
    """Test that the data version the page's cache is keyed on differs for two databases whose newest audit entry
    has the same id but not the same time (a backup restored, then written to: its ids start again from where
    the backup was), and is the same while nothing is written."""
    from crm.ui import cached

    before = cached._version(world.db, world.admin)
    assert cached._version(world.db, world.admin) == before
    [(newest,)] = world.db.execute("SELECT max(id) FROM audit_log").fetchall()
    with world.db.conn:  # as a restored backup would have it: the newest entry another write's, at another time
        world.db.execute("UPDATE audit_log SET at = '2001-01-01T00:00:00Z' WHERE id = ?", [newest])

    assert cached._version(world.db, world.admin) != before
