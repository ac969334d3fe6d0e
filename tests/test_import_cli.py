"""The import commands as users run them: ``python -m crm import-contacts`` and ``import-gp-practices`` in a
subprocess, from the repository root, with CRM_DB pointing at the test's database."""

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import Workbook

from crm import branches, contacts, db, organisations, users
from crm.access import COMMAND_LINE
from tests.conftest import PASSWORD

REPO = Path(__file__).resolve().parents[1]
MISSING = "{} does not exist; create it with: python -m crm init --admin NAME"
ALREADY = "Already a contact of this branch (same email, phone, or name at the organisation)."


def run(*args: str, db_path: Path | None) -> subprocess.CompletedProcess:
    """Run ``python -m crm`` from the repository root with CRM_DB and CRM_ADMIN_PASSWORD set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    if db_path is not None:
        env["CRM_DB"] = str(db_path)
    env["CRM_ADMIN_PASSWORD"] = PASSWORD
    return subprocess.run(
        [sys.executable, "-m", "crm", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def outcome(result: subprocess.CompletedProcess) -> tuple[int, str, str]:
    return result.returncode, result.stdout, result.stderr


def file_hash(path: Path) -> str:
    assert not Path(f"{path}-wal").exists(), "a connection is still open"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    path.write_bytes(out.getvalue().encode(encoding))
    return path


def contact_rows(db_path: Path) -> list[tuple]:
    database = db.connect(db_path)
    try:
        return database.execute(
            "SELECT c.name, c.job_title, c.phone, c.email, o.name, b.name FROM contacts c "
            "JOIN organisations o ON o.id = c.organisation_id JOIN branches b ON b.id = c.branch_id ORDER BY c.id"
        ).fetchall()
    finally:
        database.close()


@pytest.fixture
def set_up(db_path: Path) -> Path:
    """A database with its administrator, branches Leeds and York, and two organisations, made in-process."""
    database = db.connect(db_path)
    users.create_first_admin(database, "ada", "Ada Admin", PASSWORD)
    north = branches.add_region(database, COMMAND_LINE, "North")
    leeds = branches.add_branch(database, COMMAND_LINE, "Leeds", north)
    branches.add_branch(database, COMMAND_LINE, "York", north)
    gp = organisations.add(database, COMMAND_LINE, {"name": "Hyde Park Surgery", "type_code": "GP_PRACTICE"})
    organisations.add(database, COMMAND_LINE, {"name": "Leeds Community OT", "type_code": "COMMUNITY_THERAPY"})
    contacts.add(
        database,
        COMMAND_LINE,
        {"name": "Quentin Quarry", "organisation_id": gp, "branch_id": leeds, "email": "quentin@hydepark.example"},
    )
    database.close()
    return db_path


CONTACTS = [
    ["Name", "Job title", "Tel", "Email", "Practice"],
    ["Zoë Ångström", "Practice Manager", "0113 496 0101", "zoe@hydepark.example", "Hyde Park Surgery"],
    ["Siân O'Brien", "Occupational Therapist", "01134960102", "sian@ot.example", "Leeds Community OT"],
    ["Quentin Q", "Partner", "", "Quentin@hydepark.example", "Hyde Park Surgery"],
    ["Bad Email", "", "", "bad@", "Hyde Park Surgery"],
    ["Zoe Angstrom", "", "", "ZOE@hydepark.example", "Hyde Park Surgery"],
]
BAD_EMAIL = "Email: “bad@” is not a valid email address. There must be something after the @-sign."
STDERR_LINES = (
    f"line 4: skipped: {ALREADY}\nline 5: error: {BAD_EMAIL}\nline 6: skipped: Same person as line 2 of this file.\n"
)
REPORT = {
    "summary": {"imported": 2, "updated": 0, "skipped": 2, "errors": 1},
    "rows": [
        {"line": 2, "outcome": "imported", "messages": []},
        {"line": 3, "outcome": "imported", "messages": []},
        {"line": 4, "outcome": "skipped", "messages": [ALREADY]},
        {"line": 5, "outcome": "error", "messages": [BAD_EMAIL]},
        {"line": 6, "outcome": "skipped", "messages": ["Same person as line 2 of this file."]},
    ],
}
QUENTIN = ("Quentin Quarry", "", None, "quentin@hydepark.example", "Hyde Park Surgery", "Leeds")
IMPORTED = [
    QUENTIN,
    ("Zoë Ångström", "Practice Manager", "+441134960101", "zoe@hydepark.example", "Hyde Park Surgery", "Leeds"),
    ("Siân O'Brien", "Occupational Therapist", "+441134960102", "sian@ot.example", "Leeds Community OT", "Leeds"),
]


def test_import_contacts(set_up, tmp_path):
    """Test that import-contacts writes the good rows, prints one line per skipped or refused row on stderr and
    the summary on stdout, and exits 0."""
    path = write_csv(tmp_path / "contacts.csv", CONTACTS, "cp1252")

    result = run("import-contacts", str(path), "--branch", "leeds", db_path=set_up)

    assert outcome(result) == (0, "2 imported, 0 updated, 2 skipped, 1 errors\n", STDERR_LINES)
    assert contact_rows(set_up) == IMPORTED


def test_import_contacts_report(set_up, tmp_path):
    """Test that --report writes every row's outcome as JSON (UTF-8, non-ASCII kept), header being line 1."""
    path = write_csv(tmp_path / "contacts.csv", CONTACTS)
    report = tmp_path / "out" / "report.json"
    report.parent.mkdir()

    result = run("import-contacts", str(path), "--branch", "Leeds", "--report", str(report), db_path=set_up)

    assert outcome(result) == (0, "2 imported, 0 updated, 2 skipped, 1 errors\n", STDERR_LINES)
    assert json.loads(report.read_text(encoding="utf-8")) == REPORT
    assert "“bad@”" in report.read_text(encoding="utf-8")


def test_import_contacts_dry_run(set_up, tmp_path):
    """Test that --dry-run reports exactly what an import would do, writes its report, and leaves the database
    file untouched."""
    path = write_csv(tmp_path / "contacts.csv", CONTACTS)
    report = tmp_path / "report.json"
    before = file_hash(set_up)

    result = run(
        "import-contacts", str(path), "--branch", "Leeds", "--dry-run", "--report", str(report), db_path=set_up
    )

    assert outcome(result) == (
        0,
        "dry run, nothing written: 2 imported, 0 updated, 2 skipped, 1 errors\n",
        STDERR_LINES,
    )
    assert json.loads(report.read_text(encoding="utf-8")) == REPORT
    assert file_hash(set_up) == before


def test_import_contacts_from_a_workbook(set_up, tmp_path):
    """Test that an .xlsx file is read as a workbook, numbers Excel stored without their leading zero included."""
    workbook = Workbook()
    for row in [CONTACTS[0], [*CONTACTS[1][:2], 1134960101, *CONTACTS[1][3:]], CONTACTS[2]]:
        workbook.active.append(row)
    path = tmp_path / "contacts.xlsx"
    workbook.save(path)

    result = run("import-contacts", str(path), "--branch", "Leeds", db_path=set_up)

    assert outcome(result) == (0, "2 imported, 0 updated, 0 skipped, 0 errors\n", "")
    assert contact_rows(set_up) == IMPORTED


def test_import_contacts_map_and_update(set_up, tmp_path):
    """Test that --map points fields at unusual headings and --on-duplicate update updates the existing contact."""
    path = write_csv(
        tmp_path / "contacts.csv",
        [
            ["Who", "Surgery", "Contact email", "What they do"],
            ["Quentin Quarry", "Hyde Park Surgery", "quentin@hydepark.example", "Practice Manager"],
            ["Li Wei", "Leeds Community OT", "li@ot.example", "Physiotherapist"],
        ],
    )

    result = run(
        "import-contacts",
        str(path),
        "--branch",
        "Leeds",
        "--map",
        "Who=name, Surgery=organisation,Contact email=email,What they do=job_title",
        "--on-duplicate",
        "update",
        db_path=set_up,
    )

    assert outcome(result) == (0, "1 imported, 1 updated, 0 skipped, 0 errors\n", "")
    assert contact_rows(set_up) == [
        ("Quentin Quarry", "Practice Manager", None, "quentin@hydepark.example", "Hyde Park Surgery", "Leeds"),
        ("Li Wei", "Physiotherapist", None, "li@ot.example", "Leeds Community OT", "Leeds"),
    ]


@pytest.mark.parametrize(
    ("args", "data", "status", "message"),
    [
        (
            ["--branch", "Leeds"],
            b"Name,Practice\r\nZoe,Hyde Park Surgery\r\nSian,Leeds Community OT,extra\r\n",
            1,
            "Line 3: 3 fields where the heading line has 2. Check for a missing or extra separator or quote.",
        ),
        (
            ["--branch", "Nowhere"],
            b"Name,Practice\r\nZoe,Hyde Park Surgery\r\n",
            1,
            "No branch called “Nowhere”.",
        ),
        (
            ["--branch", "Leeds", "--map", "Tel=telephone"],
            b"Name,Practice,Tel\r\nZoe,Hyde Park Surgery,\r\n",
            1,
            "Map: “telephone” is not a field; use one of name, job_title, phone, mobile, email, organisation, type, "
            "ods_code, notes, do_not_contact.",
        ),
        (
            ["--branch", "Leeds", "--map", "Practice=notes"],
            b"Name,Practice\r\nZoe,Hyde Park Surgery\r\n",
            1,
            "Map: choose the column that holds the organisation (or its ODS code).",
        ),
    ],
    ids=["ragged row", "unknown branch", "unknown field", "no organisation column"],
)
def test_a_refused_import_is_one_line_and_writes_nothing(set_up, tmp_path, args, data, status, message):
    """Test that a refused file, an unknown branch or a bad mapping exits non-zero with one plain error line on
    stderr (no traceback), prints nothing on stdout, writes no report and leaves the database untouched."""
    path = tmp_path / "contacts.csv"
    path.write_bytes(data)
    report = tmp_path / "report.json"
    before = file_hash(set_up)

    result = run("import-contacts", str(path), *args, "--report", str(report), db_path=set_up)

    assert outcome(result) == (status, "", f"error: {message}\n")
    assert not report.exists()
    assert file_hash(set_up) == before


def test_import_contacts_missing_file(set_up, tmp_path):
    """Test that a file that cannot be read is a one-line error (exit 2) naming it."""
    path = tmp_path / "nope.csv"

    result = run("import-contacts", str(path), "--branch", "Leeds", db_path=set_up)

    assert outcome(result) == (2, "", f"error: cannot read {path}: No such file or directory\n")


def test_import_contacts_does_not_create_a_missing_database(tmp_path):
    """Test that import-contacts on a database that does not exist says so and creates nothing."""
    path = write_csv(tmp_path / "contacts.csv", CONTACTS)
    missing = tmp_path / "nowhere" / "crm.db"

    result = run("import-contacts", str(path), "--branch", "Leeds", db_path=missing)

    assert outcome(result) == (2, "", f"error: {MISSING.format(missing)}\n")
    assert not missing.exists()


def test_import_contacts_requires_a_branch(set_up, tmp_path):
    """Test that --branch is required (argparse usage error, exit 2), and nothing is written."""
    path = write_csv(tmp_path / "contacts.csv", CONTACTS)
    before = file_hash(set_up)

    result = run("import-contacts", str(path), db_path=set_up)

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == (
        "python -m crm import-contacts: error: the following arguments are required: --branch"
    )
    assert "Traceback" not in result.stderr
    assert file_hash(set_up) == before


# ---------------------------------------------------------------------------------------------------- GP practices


def epraccur_row(code: str, name: str, postcode: str, status: str, phone: str, setting: str = "4") -> list[str]:
    row = [""] * 27
    row[0], row[1], row[4], row[9], row[10], row[12], row[14], row[17], row[25] = (
        code,
        name,
        "1 HIGH STREET",
        postcode,
        "19740401",
        status,
        "15F",
        phone,
        setting,
    )
    return row


def write_epraccur(path: Path, rows: list[list[str]]) -> Path:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    path.write_bytes(out.getvalue().encode("utf-8"))
    return path


EPRACCUR = [
    epraccur_row("Y00001", "HYDE PARK MEDICAL", "LS6 1AB", "A", "0113 496 0001"),
    epraccur_row("Y00002", "HEADINGLEY SURGERY", "LS6 3EF", "C", "0113 496"),
    epraccur_row("Y00003", "LS6 PHARMACY HUB", "LS6 2ZZ", "A", "", setting="0"),
    epraccur_row("Y00004", "MEANWOOD PRACTICE", "LS6 4AA", "A", ""),
]


def test_import_gp_practices_and_again(set_up, tmp_path):
    """Test that import-gp-practices prints the summary (added, updated, unchanged, closed, skipped, invalid
    phones) and that a second run of the same file changes nothing."""
    path = write_epraccur(tmp_path / "epraccur.csv", EPRACCUR)

    first = run("import-gp-practices", str(path), db_path=set_up)
    second = run("import-gp-practices", str(path), db_path=set_up)

    assert outcome(first) == (0, "3 added, 0 updated, 0 unchanged, 1 closed, 1 skipped, 1 invalid phones\n", "")
    assert outcome(second) == (0, "0 added, 0 updated, 3 unchanged, 0 closed, 1 skipped, 1 invalid phones\n", "")
    database = db.connect(set_up)
    assert database.execute(
        "SELECT ods_code, name, status, phone, phone_raw, created_by FROM organisations WHERE ods_code IS NOT NULL "
        "ORDER BY ods_code"
    ).fetchall() == [
        ("Y00001", "HYDE PARK MEDICAL", "active", "+441134960001", None, None),
        ("Y00002", "HEADINGLEY SURGERY", "closed", None, "0113 496", None),
        ("Y00004", "MEANWOOD PRACTICE", "active", None, None, None),
    ]
    database.close()


def test_import_gp_practices_refuses_another_file(set_up, tmp_path):
    """Test that a file that is not an epraccur file exits 1 with one error line and writes nothing."""
    path = tmp_path / "contacts.csv"
    path.write_bytes(b'"Y00001","HYDE PARK MEDICAL"\r\n')
    before = file_hash(set_up)

    result = run("import-gp-practices", str(path), db_path=set_up)

    assert outcome(result) == (
        1,
        "",
        "error: Line 1: expected 27 columns, found 2. Is this the NHS epraccur file?\n",
    )
    assert file_hash(set_up) == before


def test_import_gp_practices_malformed_line(set_up, tmp_path):
    """Test that a bad date on the third line refuses the whole file, naming the line."""
    rows = [EPRACCUR[0], EPRACCUR[1], epraccur_row("Y00005", "BAD DATE", "LS6 5AA", "A", "")]
    rows[2][10] = "19741301"
    path = write_epraccur(tmp_path / "epraccur.csv", rows)
    before = file_hash(set_up)

    result = run("import-gp-practices", str(path), db_path=set_up)

    assert outcome(result) == (1, "", "error: Line 3: “19741301” is not a date in the form YYYYMMDD.\n")
    assert file_hash(set_up) == before


def test_import_gp_practices_missing_file(set_up, tmp_path):
    """Test that a file that cannot be read is a one-line error (exit 2) naming it."""
    path = tmp_path / "epraccur.csv"

    result = run("import-gp-practices", str(path), db_path=set_up)

    assert outcome(result) == (2, "", f"error: cannot read {path}: No such file or directory\n")


def test_an_update_import_keeps_do_not_contact_and_the_lawful_basis(set_up, tmp_path):
    """Test that import-contacts --on-duplicate update of a file without do-not-contact or lawful-basis columns
    changes only the columns the file holds, and the contact stays off the mailing list. Regression: the update
    reset do-not-contact to 0 and the lawful basis to the default."""
    database = db.connect(set_up)
    database.execute(
        "UPDATE contacts SET do_not_contact = 1, lawful_basis = 'consent', privacy_info_sent_on = '2026-01-15' "
        "WHERE name = 'Quentin Quarry'"
    )
    database.close()
    path = write_csv(
        tmp_path / "contacts.csv",
        [
            ["Name", "Job title", "Practice", "Email"],
            ["Quentin Quarry", "Partner", "Hyde Park Surgery", "quentin@hydepark.example"],
        ],
    )

    result = run("import-contacts", str(path), "--branch", "Leeds", "--on-duplicate", "update", db_path=set_up)
    mailing = run("mailing-list", "--format", "csv", "--out", str(tmp_path / "list.csv"), db_path=set_up)

    assert outcome(result) == (0, "0 imported, 1 updated, 0 skipped, 0 errors\n", "")
    database = db.connect(set_up)
    try:
        assert database.execute(
            "SELECT name, job_title, email, do_not_contact, lawful_basis, privacy_info_sent_on, version FROM contacts"
        ).fetchall() == [("Quentin Quarry", "Partner", "quentin@hydepark.example", 1, "consent", "2026-01-15", 2)]
    finally:
        database.close()
    assert mailing.returncode == 0, mailing.stderr
    assert (tmp_path / "list.csv").read_text(encoding="utf-8-sig").splitlines() == [
        "Name,Job title,Organisation,Partner type,Branch,Email,Phone"
    ]
