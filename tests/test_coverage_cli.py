"""`python -m crm coverage`, run as users run it (its own process, CRM_DB), against coverage.report() for the same
scope; its refusals; and the benchmark's database builder at a small scale (`python -m crm bench`)."""

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from crm import bench, clock, coverage, db, exports, interactions, users
from crm.access import ADMIN, COMMAND_LINE, REGIONAL_LEAD
from tests.conftest import PASSWORD, World

ROOT = Path(__file__).resolve().parents[1]
FROZEN = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
MISSING = "{} does not exist; create it with: python -m crm init --admin NAME"


def run(*args: str, db_path: Path) -> subprocess.CompletedProcess:
    """Run ``python -m crm`` from the repository root with CRM_DB set to ``db_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env["CRM_DB"] = str(db_path)
    return subprocess.run(
        [sys.executable, "-m", "crm", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


class Data:
    """The module's database: where it is, its world, and the day it was built."""

    def __init__(self, path: Path, world: World, today: date):
        self.path, self.world, self.today = path, world, today

    def ago(self, days: int) -> date:
        return self.today - timedelta(days=days)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Data:
    """One database for the whole module (the command only reads it): named contacts in every branch added a year
    ago, touched on days far enough from every boundary that midnight cannot change a status; the clock is the
    real one, as in the command's own process."""
    path = tmp_path_factory.mktemp("coverage_cli") / "crm.db"
    database = db.connect(path)
    world = World(database, users.create_first_admin(database, "ada", "Ada Admin", PASSWORD))
    today = clock.now().date()
    people = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clock, "now", lambda: datetime.combine(today - timedelta(days=400), time(9), UTC))
        for branch, name in ((world.leeds, "Lena"), (world.york, "Yuri"), (world.bristol, "Bram")):
            people[branch] = [
                world.contact(branch, f"{name} GP"),
                world.contact(branch, f"{name} OT", world.ot),
                world.contact(branch, f"{name} Council", world.council),
            ]
    plan = {
        world.leeds: [[10, 200], [45], [150]],
        world.york: [[100], [20, 60], []],
        world.bristol: [[5], [], [70, 300]],
    }
    for branch, touches in plan.items():
        for contact_id, days in zip(people[branch], touches, strict=True):
            for n, days_ago in enumerate(days):
                interactions.log(
                    database,
                    world.admin,
                    {
                        "branch_id": branch,
                        "occurred_on": today - timedelta(days=days_ago),
                        "kind_code": "REFERRAL_RECEIVED" if n else "PHONE_CALL",
                        "summary": "Catch-up",
                        "contact_ids": [contact_id],
                    },
                )
    database.close()
    world.db = None
    return Data(path, world, today)


def report_rows(data: Data, actor=COMMAND_LINE, **filters) -> list[dict]:
    with db.connect(data.path) as database:
        rows, _ = coverage.report(database, actor, **filters)
    return rows


SCOPES = [
    ([], {}),
    (["--region", "North"], {"region_id": "north"}),
    (["--region", "south"], {"region_id": "south"}),
    (["--branch", "York"], {"branch_id": "york"}),
    (["--window-days", "30"], {"window": 30}),
    (["--window-days", "730"], {"window": 730}),
    (["--as-of", 50], {"as_of": 50}),
    (
        ["--region", "North", "--as-of", 100, "--window-days", "120"],
        {"region_id": "north", "as_of": 100, "window": 120},
    ),
    (["--branch", "Bristol", "--as-of", 1], {"branch_id": "bristol", "as_of": 1}),
]


def resolve(data: Data, args: list, filters: dict) -> tuple[list[str], dict]:
    """Command-line arguments and report() filters with days-ago numbers turned into dates and names into ids."""
    argv = [data.ago(a).isoformat() if isinstance(a, int) else a for a in args]
    resolved = {
        key: data.ago(value) if key == "as_of" else getattr(data.world, value) if key.endswith("_id") else value
        for key, value in filters.items()
    }
    return argv, resolved


@pytest.mark.parametrize(("args", "filters"), SCOPES)
def test_that_the_json_is_what_report_gives_for_the_same_scope(data, args, filters):
    """Test that `coverage --format json` prints exactly the rows coverage.report() gives for the same region,
    branch, date and window."""
    argv, resolved = resolve(data, args, filters)

    result = run("coverage", *argv, "--format", "json", db_path=data.path)

    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout) == report_rows(data, **resolved)
    assert len(json.loads(result.stdout)) == 13 * {"north": 2, "south": 1, "york": 1, "bristol": 1}.get(
        filters.get("region_id") or filters.get("branch_id"), 3
    )


@pytest.mark.parametrize(
    ("args", "who", "filters"),
    [
        (["--region", "North"], "lead_north", {}),
        (["--region", "South"], "lead_south", {}),
        (["--branch", "Leeds"], "manager_leeds", {}),
        (["--branch", "York", "--window-days", "45"], "lead_north", {"branch_id": "york", "window": 45}),
        (["--region", "North", "--as-of", 30], "lead_north", {"as_of": 30}),
    ],
)
def test_that_the_command_line_gives_a_users_own_numbers_for_their_scope(data, args, who, filters):
    """Test that the command for a region (or branch) gives the numbers that region's lead (or that branch's
    manager) sees on the Coverage page, which calls report() as them."""
    argv, resolved = resolve(data, args, filters)

    result = run("coverage", *argv, "--format", "json", db_path=data.path)

    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout) == report_rows(data, getattr(data.world, who), **resolved)


def test_that_the_numbers_are_the_expected_ones(data):
    """Test that the command's figures for the module's data are the expected statuses, counts, last touches and
    branch scores."""
    result = run("coverage", "--format", "json", db_path=data.path)

    rows = [r for r in json.loads(result.stdout) if r["status"] != "gap"]
    assert [
        (r["branch"], r["type_code"], r["named_contacts"], r["warm_named_contacts"], r["last_touched"], r["status"])
        for r in rows
    ] == [
        ("Leeds", "GP_PRACTICE", 1, 1, data.ago(10).isoformat(), "covered"),
        ("Leeds", "COMMUNITY_THERAPY", 1, 1, data.ago(45).isoformat(), "covered"),
        ("Leeds", "LA_SOCIAL_CARE", 1, 0, data.ago(150).isoformat(), "lapsing"),
        ("York", "GP_PRACTICE", 1, 0, data.ago(100).isoformat(), "lapsing"),
        ("York", "COMMUNITY_THERAPY", 1, 1, data.ago(20).isoformat(), "covered"),
        ("York", "LA_SOCIAL_CARE", 1, 0, None, "lapsing"),
        ("Bristol", "GP_PRACTICE", 1, 1, data.ago(5).isoformat(), "covered"),
        ("Bristol", "COMMUNITY_THERAPY", 1, 0, None, "lapsing"),
        ("Bristol", "LA_SOCIAL_CARE", 1, 1, data.ago(70).isoformat(), "covered"),
    ]
    assert {(r["branch"], r["branch_score"], r["gp_patch"]) for r in json.loads(result.stdout)} == {
        ("Leeds", "2/5", ""),
        ("York", "1/5", ""),
        ("Bristol", "2/5", ""),
    }


def test_csv_and_table_formats(data):
    """Test that the CSV has the report's columns as its header and the report's rows, and the default table the
    same columns aligned."""
    rows = report_rows(data, region_id=data.world.north)

    as_csv = run("coverage", "--region", "North", "--format", "csv", db_path=data.path)
    as_table = run("coverage", "--region", "North", db_path=data.path)

    # (stdout read as text: the CSV's CRLF line ends arrive as "\n")
    expected = exports.to_csv(rows, coverage.REPORT_COLUMNS).replace("\r\n", "\n")
    assert (as_csv.returncode, as_csv.stderr, as_csv.stdout) == (0, "", expected)
    parsed = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert list(parsed[0]) == coverage.REPORT_COLUMNS
    assert len(parsed) == 26
    assert (as_table.returncode, as_table.stderr) == (0, "")
    assert as_table.stdout == exports.to_table(rows, coverage.REPORT_COLUMNS) + "\n"
    assert as_table.stdout.splitlines()[0].split() == coverage.REPORT_COLUMNS


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--branch", "Leeds", "--region", "North"], 2, "give --branch or --region, not both"),
        (["--window-days", "0"], 2, "--window-days must be between 1 and 730"),
        (["--window-days", "731"], 2, "--window-days must be between 1 and 730"),
        (["--region", "Nowhere"], 1, "No region called “Nowhere”."),
        (["--branch", "Nowhere"], 1, "No branch called “Nowhere”."),
    ],
)
def test_refusals(data, args, status, message):
    """Test that a mistake on the command line is one line on stderr, nothing on stdout, and the exit status."""
    result = run("coverage", *args, db_path=data.path)

    assert (result.returncode, result.stdout, result.stderr) == (status, "", f"error: {message}\n")


def test_a_date_that_is_not_a_date_is_refused(data):
    """Test that --as-of refuses what is not a YYYY-MM-DD date, naming it."""
    result = run("coverage", "--as-of", "2026-13-01", db_path=data.path)

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == (
        "python -m crm coverage: error: argument --as-of: “2026-13-01” is not a date in the form YYYY-MM-DD"
    )


def test_a_missing_database_is_refused(tmp_path):
    """Test that the command does not create a database that is not there."""
    path = tmp_path / "nothing.db"

    result = run("coverage", db_path=path)

    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"error: {MISSING.format(path)}\n")
    assert not path.exists()


# The benchmark's builder, small: what it writes, and that it writes the same every time.

SMALL = {
    "branches": 4,
    "regions": 2,
    "contacts_per_branch": 20,
    "interactions_per_branch": 100,
    "gp_per_branch": 3,
    "referral_count": 30,
}


def dump(path: Path, table: str) -> list[dict]:
    with db.connect(path) as database:
        return database.execute_returning_dicts(f"SELECT * FROM {table} ORDER BY 1, 2")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, dict, dict]:
    """Two small benchmark databases built the same way, with the clock stopped."""
    folder = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clock, "now", lambda: FROZEN)
        first = bench.build(folder / "first.db", **SMALL)
        second = bench.build(folder / "second.db", **SMALL)
    return folder / "first.db", folder / "second.db", first, second


def test_bench_build_counts(built):
    """Test that the builder writes the numbers of branches, organisations (GP practices and one of each other
    type per branch), contacts and interactions asked for, with one link per interaction, a patch per branch and
    an administrator and a regional lead."""
    path, _, counts, _ = built

    assert counts == {
        "branches": 4,
        "organisations": 4 * (3 + 12),
        "contacts": 80,
        "interactions": 400,
        "referrals": 30,
    }
    with db.connect(path) as database:
        assert {t: database[t].count for t in ("regions", "interaction_contacts", "branch_patch")} == {
            "regions": 2,
            "interaction_contacts": 400,
            "branch_patch": 4,
        }
        assert database.execute("SELECT username, role, region_id FROM users ORDER BY id").fetchall() == [
            ("bench.admin", ADMIN, None),
            ("bench.lead", REGIONAL_LEAD, 1),
        ]
        per_branch = database.execute("SELECT branch_id, count(*) FROM contacts GROUP BY 1 ORDER BY 1").fetchall()
        assert per_branch == [(1, 20), (2, 20), (3, 20), (4, 20)]
        per_branch = database.execute("SELECT branch_id, count(*) FROM interactions GROUP BY 1 ORDER BY 1").fetchall()
        assert per_branch == [(1, 100), (2, 100), (3, 100), (4, 100)]
        gp = database.execute("SELECT count(*) FROM organisations WHERE type_code = 'GP_PRACTICE'").fetchone()[0]
        assert gp == 12


def test_bench_build_is_deterministic(built):
    """Test that two builds with the same seed write the same contacts, interactions and links."""
    first, second, first_counts, second_counts = built

    assert first_counts == second_counts
    for table in (
        "regions",
        "branches",
        "organisations",
        "contacts",
        "interactions",
        "interaction_contacts",
        "referrals",
    ):
        assert dump(first, table) == dump(second, table), table


def test_bench_build_with_another_seed_differs(tmp_path, built):
    """Test that the seed decides the rows: another seed gives the same counts and different contacts."""
    first, _, counts, _ = built
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clock, "now", lambda: FROZEN)
        other = bench.build(tmp_path / "other.db", **SMALL, seed=7)

    assert other == counts
    assert dump(tmp_path / "other.db", "contacts") != dump(first, "contacts")


def test_bench_build_is_consistent(built, monkeypatch):
    """Test that the built database is one the app could have written: each link carries its interaction's date
    and branch, each contact's last touch is its latest link, contacts who left have a date, and coverage runs on
    it for the administrator and, within region 1, for the lead."""
    path, _, _, _ = built
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    with db.connect(path) as database:
        mismatched = database.execute(
            "SELECT count(*) FROM interaction_contacts l JOIN interactions i ON i.id = l.interaction_id "
            "WHERE l.occurred_on != i.occurred_on OR l.branch_id != i.branch_id"
        ).fetchone()[0]
        stale = database.execute(
            "SELECT count(*) FROM contacts c WHERE c.last_touched_on IS NOT "
            "(SELECT max(occurred_on) FROM interaction_contacts WHERE contact_id = c.id)"
        ).fetchone()[0]
        wrong_branch = database.execute(
            "SELECT count(*) FROM interaction_contacts l JOIN contacts c ON c.id = l.contact_id "
            "WHERE c.branch_id != l.branch_id"
        ).fetchone()[0]
        left = database.execute(
            "SELECT count(*) FROM contacts WHERE (status = 'left') != (left_on IS NOT NULL)"
        ).fetchone()[0]
        dates = database.execute("SELECT min(occurred_on), max(occurred_on) FROM interactions").fetchone()
        unlike_interaction = database.execute(
            "SELECT count(*) FROM referrals r JOIN interactions i ON i.id = r.interaction_id "
            "WHERE i.kind_code != 'REFERRAL_RECEIVED' OR i.branch_id != r.branch_id "
            "OR substr(r.received_at, 1, 10) != i.occurred_on OR r.decided_at < r.received_at"
        ).fetchone()[0]
        assert (mismatched, stale, wrong_branch, left, unlike_interaction) == (0, 0, 0, 0, 0)
        assert date.fromisoformat(dates[0]) >= FROZEN.date() - timedelta(days=3 * 365)
        assert date.fromisoformat(dates[1]) <= FROZEN.date()
        admin = users.get(database, 1)
        lead = users.get(database, 2)
        rows = coverage.coverage(database, admin)
        assert len(rows) == 4 * 13
        assert {r["branch"] for r in coverage.coverage(database, lead)} == {"Branch 001", "Branch 003"}
        assert coverage.history(database, admin, coverage.month_ends(FROZEN.date(), 3))[-1] == rows


def test_bench_help():
    """Test that `python -m crm bench --help` describes the command's options without building anything."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}

    result = subprocess.run(
        [sys.executable, "-m", "crm", "bench", "--help"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("usage: python -m crm bench")
    for option in ("--runs", "--keep PATH", "--epraccur FILE", "--db"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("as_of", "message"),
    [
        ("0001-01-01", "--as-of: 0001-01-01 is before 1990-01-01, the earliest date accepted; check the year."),
        ("1989-12-31", "--as-of: 1989-12-31 is before 1990-01-01, the earliest date accepted; check the year."),
        ("9999-12-31", "--as-of: cannot be in the future."),
    ],
)
def test_an_implausible_as_of_date_is_one_line_and_a_non_zero_exit(data, as_of, message):
    """Test that --as-of in year 1, before 1990 or in the future is refused in one line on stderr with exit
    status 1. Regression: --as-of 0001-01-01 ended in a traceback."""
    result = run("coverage", "--as-of", as_of, db_path=data.path)

    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"error: {message}\n")
