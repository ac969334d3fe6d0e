"""`python -m crm followups`: follow-ups due or overdue and lapsed named contacts, by branch or region, as a table,
CSV or JSON, run as a real command in its own process."""

import csv
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from crm import branches, clock, contacts, db, interactions, users
from tests.conftest import PASSWORD, World

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["branch", "what", "state", "date", "who", "organisation", "detail", "phone"]
FORMULA = "=cmd|' /C calc'!A0"  # a contact name that a spreadsheet would run as a formula
HYPERLINK = '=HYPERLINK("http://evil.example","click")'


@dataclass
class Followups:
    path: Path
    today: date

    def day(self, offset: int) -> str:
        return (self.today + timedelta(days=offset)).isoformat()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Followups:
    """One database for the whole module (the command only reads it): follow-ups and named contacts in each
    branch, dated relative to today and far enough from every boundary that midnight cannot change a status."""
    path = tmp_path_factory.mktemp("followups") / "crm.db"
    database = db.connect(path)
    world = World(database, users.create_first_admin(database, "ada", "Ada Admin", PASSWORD))
    branches.add_branch(database, world.admin, "Harrogate", world.north)
    today = clock.now().date()

    def log(branch_id: int, contact_ids: list[int], days_ago: int, **values) -> None:
        row = {"branch_id": branch_id, "kind_code": "PHONE_CALL", "summary": "Catch-up call", **values}
        row.update(contact_ids=contact_ids, occurred_on=today - timedelta(days=days_ago))
        interactions.log(database, world.admin, row)

    def later(days: int) -> date:
        return today + timedelta(days=days)

    priya = world.contact(world.leeds, "Priya Patel", job_title="Practice Manager", phone="0113 496 0123")
    log(world.leeds, [priya], 20, follow_up_on=later(-10), follow_up_action="Send availability")
    log(world.leeds, [], 5, organisation_id=world.ot, summary=HYPERLINK, follow_up_on=later(3))
    omar = world.contact(world.leeds, "Omar Okafor", world.ot, job_title="Community OT", phone="0113 496 0777")
    log(world.leeds, [omar], 200)
    world.contact(world.leeds, FORMULA, job_title="+Lead")
    dan = world.contact(world.leeds, "Dan Due")  # due soon: not on the list
    log(world.leeds, [dan], 80)
    world.contact(world.leeds, "Una Unnamed", is_named_contact=False)
    left = world.contact(world.leeds, "Leo Left")
    contacts.mark_left(database, world.admin, left, expected_version=1)
    world.contact(world.york, "Yasmin Yates", keep_in_touch_days=30)
    yuri = world.contact(world.york, "Yuri Young")
    log(world.york, [yuri], 15, follow_up_on=later(-2), follow_up_action="Call back")
    beth = world.contact(world.bristol, "Beth Brown", world.council, job_title="Social Worker")
    log(world.bristol, [beth], 300)
    log(world.bristol, [], 1, organisation_id=world.council, summary="Met the team", follow_up_on=later(2))
    database.close()
    return Followups(path, today)


def expected_rows(data: Followups) -> list[dict]:
    """Everything to call about, across every branch, in the command's order."""
    return [
        {
            "branch": "Leeds",
            "what": "follow-up",
            "state": "overdue",
            "date": data.day(-10),
            "who": "Priya Patel",
            "organisation": "Hyde Park Surgery",
            "detail": "Send availability",
            "phone": "",
        },
        {
            "branch": "York",
            "what": "follow-up",
            "state": "overdue",
            "date": data.day(-2),
            "who": "Yuri Young",
            "organisation": "Hyde Park Surgery",
            "detail": "Call back",
            "phone": "",
        },
        {
            "branch": "Bristol",
            "what": "follow-up",
            "state": "due",
            "date": data.day(2),
            "who": "",
            "organisation": "Bristol Council Adult Social Care",
            "detail": "Met the team",
            "phone": "",
        },
        {
            "branch": "Leeds",
            "what": "follow-up",
            "state": "due",
            "date": data.day(3),
            "who": "",
            "organisation": "Leeds Community OT",
            "detail": HYPERLINK,
            "phone": "",
        },
        {
            "branch": "Bristol",
            "what": "named contact",
            "state": "lapsed",
            "date": data.day(-300),
            "who": "Beth Brown",
            "organisation": "Bristol Council Adult Social Care",
            "detail": "Social Worker; keep in touch every 90 days",
            "phone": "",
        },
        {
            "branch": "Leeds",
            "what": "named contact",
            "state": "lapsed",
            "date": data.day(-200),
            "who": "Omar Okafor",
            "organisation": "Leeds Community OT",
            "detail": "Community OT; keep in touch every 90 days",
            "phone": "0113 496 0777",
        },
        {
            "branch": "Leeds",
            "what": "named contact",
            "state": "never",
            "date": "",
            "who": FORMULA,
            "organisation": "Hyde Park Surgery",
            "detail": "+Lead; keep in touch every 90 days",
            "phone": "",
        },
        {
            "branch": "York",
            "what": "named contact",
            "state": "never",
            "date": "",
            "who": "Yasmin Yates",
            "organisation": "Hyde Park Surgery",
            "detail": "keep in touch every 30 days",
            "phone": "",
        },
    ]


def followups(path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run `python -m crm followups ARGS` from the repository root, with CRM_DB pointing at ``path``; its output
    decoded as UTF-8 with line endings kept as written (CSV ends lines with CRLF)."""
    result = subprocess.run(
        [sys.executable, "-m", "crm", "followups", *args],
        cwd=ROOT,
        env={**os.environ, "CRM_DB": str(path)},
        capture_output=True,
        timeout=60,
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode("utf-8"), result.stderr.decode("utf-8")
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert (result.returncode, result.stderr) == (0, "")
    return result.stdout


def test_json_lists_every_branch_in_order(data):
    """Test that the JSON output lists overdue and due follow-ups (soonest first) then lapsed and never-contacted
    named contacts, whole, leaving out due-soon, unnamed and departed contacts."""
    assert json.loads(ok(followups(data.path, "--format", "json"))) == expected_rows(data)


def test_csv_escapes_formulas(data):
    """Test that the CSV output has a header and one row per item, and that a cell a spreadsheet would run as a
    formula (a contact named "=cmd|...", a summary "=HYPERLINK(...)", a job title "+Lead") starts with an
    apostrophe instead, so no cell starts with = + - or @."""
    text = ok(followups(data.path, "--format", "csv"))

    rows = list(csv.reader(io.StringIO(text)))
    escaped = {
        FORMULA: "'" + FORMULA,
        HYPERLINK: "'" + HYPERLINK,
        "+Lead; keep in touch every 90 days": "'+Lead; keep in touch every 90 days",
    }
    assert rows == [COLUMNS] + [[escaped.get(row[c], row[c]) for c in COLUMNS] for row in expected_rows(data)]
    assert [cell for row in rows for cell in row if cell[:1] in ("=", "+", "-", "@")] == []
    assert text.endswith("\r\n")


def test_table(data):
    """Test that the default output is an aligned plain-text table with a header row."""
    table = ok(followups(data.path, "--branch", "York"))

    overdue = data.day(-2)
    assert table.splitlines() == [
        "branch  what           state    date        who           organisation       detail"
        "                       phone",
        f"York    follow-up      overdue  {overdue}  Yuri Young    Hyde Park Surgery  Call back",
        "York    named contact  never                Yasmin Yates  Hyde Park Surgery  keep in touch every 30 days",
    ]
    assert table.endswith("days\n")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--branch", "Leeds"], {"Leeds"}),
        (["--branch", "bristol"], {"Bristol"}),
        (["--region", "North"], {"Leeds", "York"}),
        (["--region", "south"], {"Bristol"}),
    ],
)
def test_scope(data, args, expected):
    """Test that --branch and --region (names in any case) narrow the list to exactly those branches' rows."""
    rows = json.loads(ok(followups(data.path, *args, "--format", "json")))

    assert rows == [r for r in expected_rows(data) if r["branch"] in expected]


@pytest.mark.parametrize(("region", "others"), [("North", ["Bristol"]), ("South", ["Leeds", "York"])])
@pytest.mark.parametrize("fmt", ["table", "csv"])  # JSON: test_scope compares whole rows
def test_a_regions_output_never_names_another_regions_branches(data, region, others, fmt):
    """Test that nothing in a region's table or CSV output names a branch of another region."""
    text = ok(followups(data.path, "--region", region, "--format", fmt))

    assert [name for name in others if name in text] == []


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("table", "nothing to show\n"),
        ("csv", "branch,what,state,date,who,organisation,detail,phone\r\n"),
        ("json", "[]\n"),
    ],
)
def test_a_branch_with_nothing_to_call(data, fmt, expected):
    """Test that a branch with no follow-ups and no named contacts says so in each format."""
    assert ok(followups(data.path, "--branch", "Harrogate", "--format", fmt)) == expected


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--branch", "Nowhere"], 1, "error: No branch called “Nowhere”.\n"),
        (["--region", " Atlantis "], 1, "error: No region called “Atlantis”.\n"),
        (["--branch", "Leeds", "--region", "North"], 2, "error: give --branch or --region, not both\n"),
    ],
)
def test_bad_scope_is_a_one_line_error(data, args, status, message):
    """Test that an unknown branch or region, or both options at once, prints one line on stderr, nothing on
    stdout and no traceback, and exits non-zero."""
    result = followups(data.path, *args)

    assert (result.returncode, result.stdout, result.stderr) == (status, "", message)


def test_missing_database_is_not_created(tmp_path):
    """Test that pointing the command at a file that does not exist is a one-line error and creates nothing."""
    path = tmp_path / "missing.db"

    result = followups(path)

    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        f"error: {path} does not exist; create it with: python -m crm init --admin NAME\n",
    )
    assert list(tmp_path.iterdir()) == []
