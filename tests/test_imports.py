"""Importing contacts from branches' own spreadsheets: every encoding and delimiter Excel writes, XLSX, refused
files, all-or-nothing writes (also when the process is killed), duplicates, column mapping, scope and the report."""

import codecs
import copy
import csv
import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from crm import audit, clock, contacts, db, imports, organisations
from crm.errors import NotFound, ValidationError
from crm.imports import MAX_BYTES, MAX_ROWS, FileRefused
from tests.conftest import World

REPO = Path(__file__).resolve().parents[1]
FROZEN = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
STAMP = "2026-03-02T10:30:00Z"
NOT_YOURS = "That branch does not exist or is not one of yours."
ALREADY = "Already a contact of this branch (same email, phone, or name at the organisation)."
UPDATES = "Updates the existing contact with this row's values."
FIELD_NAMES = "name, job_title, phone, mobile, email, organisation, type, ods_code, notes, do_not_contact"
NHS_NUMBER_IN_NOTES = (
    "Notes: contains what looks like an NHS number. Partner records must not hold details of the people you "
    "support: remove it, or confirm that it is not an NHS number."
)
CONTACT_COLUMNS = (
    "name, job_title, phone, phone_ext, mobile, email, notes, organisation_id, branch_id, is_named_contact, status"
)


# ---------------------------------------------------------------------------------------------------- helpers


def copy_database(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as origin, sqlite3.connect(target) as copied:
        origin.backup(copied)
    origin.close()
    copied.close()


def file_hash(path: Path) -> str:
    """The database file's bytes (every connection closed first, so the WAL is folded in and removed)."""
    assert not Path(f"{path}-wal").exists(), "a connection is still open"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_import(
    database, actor, data: bytes, branch_id: int, file_name: str = "", mapping: str = "", on_duplicate: str = "skip"
) -> dict:
    """What the page and the command line do: read, map, plan, apply."""
    table = imports.read_table(data, file_name)
    plan = imports.plan(database, actor, table, imports.parse_mapping(mapping, table.headers), branch_id, on_duplicate)
    return imports.apply(database, actor, plan)


def contact_rows(database) -> list[dict]:
    return database.execute_returning_dicts(f"SELECT {CONTACT_COLUMNS} FROM contacts ORDER BY id")


def to_csv(rows: list[list], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def to_xlsx(rows: list[list]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def csv_bytes(rows: list[list]) -> bytes:
    return to_csv(rows).encode("utf-8")


# ---------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def world(template, tmp_path, monkeypatch) -> World:
    """A copy of the template world in tmp_path/crm.db (world.path), with the clock stopped at FROZEN."""
    path, built = template
    copy_database(path, tmp_path / "crm.db")
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    scene = copy.copy(built)
    scene.path = tmp_path / "crm.db"
    scene.db = db.connect(scene.path)
    yield scene
    scene.db.close()


# ---------------------------------------------------------------------------------------------------- the data set

HEADERS = ["Name", "Job title", "Telephone", "Mobile", "Email", "Organisation", "Partner type", "Notes"]
NAMES = [
    "Zoë Ångström",
    "Siân O'Brien",
    "José Muñoz",
    "Françoise Dubois",
    "Søren Nørgaard",
    "Chloé Lefèvre",
    "Björn Ström",
    "Renée Faß",
    "Œdipa Maas",
    "Niamh Ó Súilleabháin",
    "Ciarán Mac Giolla",
    "Eilís Ní Bhriain",
    "Gwenllïan ap Rhys",
    "Mary-Jane Smith",
    "Grace O’Neill",
    "Ana María Pérez",
    "Jürgen Müller",
    "Ingrid Bergström",
    "Aoife Ní Dhuibhir",
    "Kwame Mensah",
    "Li Wei",
    "Fatima Zahra",
    "Hélène Côté",
    "Dáithí Ó Sé",
    "Ørjan Ås",
    "Émile Zola-Jones",
    "Ruth Æthelstan",
    "Dr. Amara Okafor",
    "Priya Patel",
    "Mohammed Al-Sayed",
]
JOB_TITLES = ["Practice Manager", "Occupational Therapist", "Social Worker", "Discharge Coordinator", ""]
ORGANISATIONS = [
    ("Hyde Park Surgery", ""),
    ("Leeds Community OT", "OT"),
    ("Chapeltown Health Centre", "GP surgery"),
    ("St Gemma’s Hospice", "Hospice"),
    ("hyde park surgery", "GP"),
]
NOTES = {
    4: "Met at the MDT, 3rd floor.\nCall before 10am, not on Fridays",
    7: "Donated €50 to the fun run – thanks!",
    11: 'Says "call me Bill"; prefers email',
}


def _phone(i: int) -> tuple[str, str | None]:
    """(as typed in the spreadsheet, as stored): leading zeros, spaces, +44, brackets, or nothing."""
    digits = f"01134960{100 + i}"
    typed = [f"0113 496 0{100 + i}", digits, f"+44 113 496 0{100 + i}", f"(0113) 4960{100 + i}", ""][i % 5]
    return typed, ("+44" + digits[1:] if typed else None)


def data_set() -> list[list[str]]:
    """About thirty contacts as a branch keeps them, header first."""
    rows = [HEADERS]
    for i, name in enumerate(NAMES):
        organisation, type_text = ORGANISATIONS[i % 5]
        rows.append(
            [
                name,
                JOB_TITLES[i % 5],
                _phone(i)[0],
                f"07400 123{100 + i}" if i % 3 == 0 else "",
                f"person{i:02d}@partner.example" if i % 4 else "",
                organisation,
                type_text,
                NOTES.get(i, ""),
            ]
        )
    return rows


def expected_contacts(world: World) -> list[dict]:
    """The contact rows the data set must become, whatever the file format."""
    chapeltown, hospice = world.council + 1, world.council + 2
    organisation_ids = [world.gp, world.ot, chapeltown, hospice, world.gp]
    return [
        {
            "name": name,
            "job_title": JOB_TITLES[i % 5],
            "phone": _phone(i)[1],
            "phone_ext": None,
            "mobile": f"+447400123{100 + i}" if i % 3 == 0 else None,
            "email": f"person{i:02d}@partner.example" if i % 4 else None,
            "notes": NOTES.get(i, ""),
            "organisation_id": organisation_ids[i % 5],
            "branch_id": world.leeds,
            "is_named_contact": 1,
            "status": "active",
        }
        for i, name in enumerate(NAMES)
    ]


def _xlsx_data_set() -> bytes:
    # Excel keeps a number typed into a cell as a number: 01134960101 becomes 1134960101.
    rows = [
        [int(v) if j == 2 and isinstance(v, str) and v.isdigit() else v for j, v in enumerate(row)]
        for row in data_set()
    ]
    assert isinstance(rows[2][2], int)
    return to_xlsx(rows)


VARIANTS = {
    "utf-8 comma": lambda: to_csv(data_set()).encode("utf-8"),
    "utf-8 with BOM comma": lambda: to_csv(data_set()).encode("utf-8-sig"),
    "utf-8 semicolon": lambda: to_csv(data_set(), ";").encode("utf-8"),
    "utf-8 tab": lambda: to_csv(data_set(), "\t").encode("utf-8"),
    "cp1252 comma": lambda: to_csv(data_set()).encode("cp1252"),
    "cp1252 semicolon": lambda: to_csv(data_set(), ";").encode("cp1252"),
    "cp1252 tab": lambda: to_csv(data_set(), "\t").encode("cp1252"),
    "utf-16 unicode text": lambda: codecs.BOM_UTF16_LE + to_csv(data_set(), "\t").encode("utf-16-le"),
    "utf-16 big-endian tab": lambda: codecs.BOM_UTF16_BE + to_csv(data_set(), "\t").encode("utf-16-be"),
    "utf-16 comma": lambda: to_csv(data_set()).encode("utf-16"),
    "xlsx": _xlsx_data_set,
}
FILE_NAMES = {"xlsx": "contacts.xlsx", "utf-16 unicode text": "contacts.txt"}


def test_the_data_set_needs_what_it_tests():
    """Test that the generated data set holds what the format tests rely on: non-ASCII names that Windows-1252
    can encode, a quoted field with a line break and a comma, and phone numbers with a leading zero."""
    text = to_csv(data_set())
    assert text.encode("cp1252").decode("cp1252") == text
    assert '"Met at the MDT, 3rd floor.\nCall before 10am, not on Fridays"' in text
    assert len(data_set()) == 31
    assert "01134960101" in text


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_encoding_and_delimiter_imports_the_same_contacts(world, variant):
    """Test that the data set saved as UTF-8 (with and without BOM), Windows-1252, UTF-16 (Excel's "Unicode
    text") with commas, semicolons or tabs, or as an XLSX workbook, imports to exactly the same contacts and
    organisations on a fresh database."""
    data = VARIANTS[variant]()

    report = run_import(world.db, world.manager_leeds, data, world.leeds, FILE_NAMES.get(variant, "contacts.csv"))

    assert report == {
        "summary": {"imported": 30, "updated": 0, "skipped": 0, "errors": 0},
        "rows": [{"line": line, "outcome": "imported", "messages": []} for line in range(2, 32)],
    }
    assert contact_rows(world.db) == expected_contacts(world)
    assert world.db.execute(
        "SELECT id, name, type_code, ods_code, created_by FROM organisations WHERE id > ? ORDER BY id",
        [world.council],
    ).fetchall() == [
        (world.council + 1, "Chapeltown Health Centre", "GP_PRACTICE", None, world.manager_leeds.id),
        (world.council + 2, "St Gemma’s Hospice", "HOSPICE", None, world.manager_leeds.id),
    ]


def test_an_import_is_audited(world):
    """Test that every contact and organisation an import creates is audited, then the import's summary: the
    organisations first (each made as the first row naming it is written), then the contacts in the file's order
    (inserted a batch at a time, apply's _insert_contacts)."""
    before = world.db.execute("SELECT max(id) FROM audit_log").fetchone()[0]
    contacts_before = world.db.execute("SELECT coalesce(max(id), 0) FROM contacts").fetchone()[0]

    run_import(world.db, world.manager_leeds, VARIANTS["utf-8 comma"](), world.leeds)

    entries = world.db.execute_returning_dicts(
        "SELECT at, user_id, username, action, table_name, row_id, changes FROM audit_log WHERE id > ? ORDER BY id",
        [before],
    )
    contact, organisation = ("create", "contacts"), ("create", "organisations")
    assert [(e["action"], e["table_name"]) for e in entries] == (
        [organisation, organisation] + [contact] * 30 + [("import_contacts", "contacts")]
    )
    assert {(e["at"], e["user_id"], e["username"]) for e in entries} == {
        (STAMP, world.manager_leeds.id, "manager.leeds")
    }
    assert json.loads(entries[-1]["changes"]) == {"imported": 30, "updated": 0, "skipped": 0, "errors": 0}
    assert [json.loads(e["changes"])["name"] for e in entries[:3]] == [
        "Chapeltown Health Centre",
        "St Gemma’s Hospice",
        "Zoë Ångström",
    ]
    # Each contact's entry names that contact: its id and the name it was given.
    created = world.db.execute("SELECT id, name FROM contacts WHERE id > ? ORDER BY id", [contacts_before]).fetchall()
    assert [(e["row_id"], json.loads(e["changes"])["name"]) for e in entries[2:-1]] == created
    assert len(created) == 30


# ---------------------------------------------------------------------------------------------------- refused files

GOOD = [
    ["Name", "Organisation", "Email"],
    ["Zoë Ångström", "Hyde Park Surgery", "zoe@partner.example"],
    ["Siân O'Brien", "Hyde Park Surgery", "sian@partner.example"],
    ["José Muñoz", "Leeds Community OT", "jose@partner.example"],
    ["Priya Patel", "Leeds Community OT", "priya@partner.example"],
]


def _lines(rows: list[list[str]]) -> list[bytes]:
    return to_csv(rows).encode("cp1252").split(b"\r\n")[:-1]


def _too_many_rows() -> bytes:
    return b"Name,Organisation\r\n" + b"".join(b"P%d,Hyde Park Surgery\r\n" % i for i in range(MAX_ROWS + 1))


def _broken_utf16() -> bytes:
    text = to_csv(GOOD).encode("utf-16-le")
    line_3 = text.index("Siân".encode("utf-16-le"))
    return codecs.BOM_UTF16_LE + text[:line_3] + b"\x00\xd8" + text[line_3:]


REFUSED = {
    "ragged row, a field too many": (
        b"\r\n".join(_lines(GOOD[:3]) + [b"Jos\xe9 Mu\xf1oz,Leeds Community OT,jose@partner.example,extra"]),
        "Line 4: 4 fields where the heading line has 3. Check for a missing or extra separator or quote.",
    ),
    "ragged row, a field missing": (
        b"\r\n".join(_lines(GOOD)[:2] + [b"Si\xe2n O'Brien,Hyde Park Surgery"] + _lines(GOOD)[3:]),
        "Line 3: 2 fields where the heading line has 3. Check for a missing or extra separator or quote.",
    ),
    "unterminated quote": (
        b"\r\n".join(_lines(GOOD)[:4] + [b'"Priya Patel,Leeds Community OT,priya@partner.example', b"Tom,OT,"]),
        'Line 5: a quoted field is never closed (a " is missing).',
    ),
    "stray quote": (
        b"\r\n".join(_lines(GOOD)[:2] + [b'"Si\xe2n" O\'Brien,Hyde Park Surgery,sian@partner.example']),
        "Line 3: the file is not valid CSV (',' expected after '\"').",
    ),
    "undecodable byte": (
        b"\r\n".join(_lines(GOOD)[:3] + [b"Jos\x81 Mu\xf1oz,Leeds Community OT,jose@partner.example"]),
        "Line 4: the file has bytes that are not text in UTF-8, UTF-16 or Windows-1252.",
    ),
    "broken UTF-16": (
        _broken_utf16(),
        "Line 3: the file has bytes that are not text in UTF-8, UTF-16 or Windows-1252.",
    ),
    "over MAX_BYTES": (
        csv_bytes(GOOD) + b"x" * (MAX_BYTES + 1 - len(csv_bytes(GOOD))),
        "The file is larger than the 5 MB limit; split it into smaller files.",
    ),
    "6 MB": (b"x" * (6 * 1024 * 1024), "The file is larger than the 5 MB limit; split it into smaller files."),
    "more than MAX_ROWS rows": (_too_many_rows(), "The file has more than 20,000 rows; split it into smaller files."),
    "empty": (b"", "The file is empty."),
    "only blank lines": (b"\r\n  \r\n\t\r\n", "The file is empty."),
    "no headings": (b",,\r\nZo\xeb,Hyde Park Surgery,\r\n", "Line 1: the first line must hold the column headings."),
    "damaged workbook": (b"PK\x03\x04" + b"\x00" * 100, "The file is not an Excel workbook (.xlsx) that can be read."),
}


def test_the_refused_files_are_what_their_names_say():
    """Test that the sizes of the size-limit cases sit where the names say."""
    assert len(REFUSED["over MAX_BYTES"][0]) == MAX_BYTES + 1
    assert len(REFUSED["6 MB"][0]) == 6 * 1024 * 1024
    assert len(_too_many_rows()) < MAX_BYTES
    with pytest.raises(UnicodeDecodeError):
        REFUSED["undecodable byte"][0].decode("cp1252")


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_malformed_file_is_refused_and_the_database_is_unchanged(world, case):
    """Test that each malformed file is refused with a message naming the line (where there is one) and that
    the database file is byte-for-byte what it was."""
    data, message = REFUSED[case]
    world.db.close()
    before = file_hash(world.path)
    database = db.connect(world.path)

    with pytest.raises(FileRefused) as refused:
        run_import(database, world.manager_leeds, data, world.leeds, "contacts.csv")

    database.close()
    assert str(refused.value) == message
    assert file_hash(world.path) == before


def test_an_xlsx_with_too_many_rows_is_refused(monkeypatch):
    """Test that a workbook with more rows than the limit is refused (limit lowered to keep the test fast)."""
    monkeypatch.setattr(imports, "MAX_ROWS", 5)
    rows = [["Name", "Organisation"], *[[f"P{i}", "Hyde Park Surgery"] for i in range(6)]]

    assert len(imports.read_table(to_xlsx(rows[:6]), "ok.xlsx").rows) == 5
    with pytest.raises(FileRefused) as refused:
        imports.read_table(to_xlsx(rows), "big.xlsx")

    assert str(refused.value) == "The file has more than 5 rows; split it into smaller files."


MAX_ROWS_FILE = b"Name,Organisation\r\n" + b"".join(b"P%d,Hyde Park Surgery\r\n" % i for i in range(MAX_ROWS))


def test_exactly_max_rows_rows_are_read():
    """Test that a file of exactly MAX_ROWS rows is read, every row kept."""
    table = imports.read_table(MAX_ROWS_FILE, "contacts.csv")

    assert (len(table.rows), table.rows[-1], table.lines[-1]) == (
        MAX_ROWS,
        [f"P{MAX_ROWS - 1}", "Hyde Park Surgery"],
        MAX_ROWS + 1,
    )


def test_blank_rows_after_max_rows_rows_do_not_count():
    """Test that the empty rows Excel writes after the data (",") do not push a file of MAX_ROWS contacts over
    the limit.

    Regression: _read_csv counted blank rows towards MAX_ROWS and refused the file as having "more than 20,000
    rows" although _check_shape leaves blank rows out."""
    table = imports.read_table(MAX_ROWS_FILE + b",\r\n,\r\n", "contacts.csv")

    assert len(table.rows) == MAX_ROWS


def test_read_table_keeps_lines_and_skips_blank_rows():
    """Test that read_table gives the trimmed headings, every non-blank row, and each row's line (header = 1)."""
    data = b" Name ,Organisation\r\nZo\xc3\xab,Hyde Park Surgery\r\n\r\n,\r\nLi Wei, Leeds Community OT \r\n,\r\n"

    assert imports.read_table(data) == imports.Table(
        headers=["Name", "Organisation"],
        rows=[["Zoë", "Hyde Park Surgery"], ["Li Wei", " Leeds Community OT "]],
        lines=[2, 5],
    )


def test_line_numbers_count_spreadsheet_rows_after_a_multi_line_cell(world):
    """Test that a refusal after a quoted cell holding a line break names the same line the report would use
    (spreadsheet rows, header = 1), whether the row is ragged or has an unterminated quote.

    Regression: _read_csv named the physical text line (csv line_num), _check_shape and the report the row, so
    the two refusals below named different lines for the same position in the file."""
    head = to_csv([GOOD[0], ["Zoë Ångström", "Hyde Park Surgery", "zoe@partner.example"]]).replace(
        "Hyde Park Surgery", '"Hyde Park\nSurgery"', 1
    )
    good = to_csv(GOOD[2:4])
    ragged = head + good + "Tom,Leeds Community OT,tom@partner.example,extra\r\n"
    unterminated = head + good + '"Tom,Leeds Community OT,tom@partner.example\r\n'
    assert imports.read_table(ragged.rsplit(",extra", 1)[0].encode()).lines == [2, 3, 4, 5]

    with pytest.raises(FileRefused) as ragged_refused:
        imports.read_table(ragged.encode())
    with pytest.raises(FileRefused) as unterminated_refused:
        imports.read_table(unterminated.encode())

    assert str(ragged_refused.value) == (
        "Line 5: 4 fields where the heading line has 3. Check for a missing or extra separator or quote."
    )
    assert str(unterminated_refused.value) == 'Line 5: a quoted field is never closed (a " is missing).'


# ---------------------------------------------------------------------------------------------------- all or nothing


@pytest.mark.parametrize("fail_at", [1, 2, 3, 17, 33])
def test_a_failure_during_the_write_leaves_nothing_written(world, monkeypatch, fail_at):
    """Test that when apply() fails part way (the audit log refusing its Nth entry: first contact, first new
    organisation, a contact in the middle, the final summary), the whole import is rolled back."""
    table = imports.read_table(VARIANTS["utf-8 comma"]())
    plan = imports.plan(world.db, world.manager_leeds, table, imports.guess_mapping(table.headers), world.leeds)
    world.db.close()
    before = file_hash(world.path)
    database = db.connect(world.path)
    real_record, calls = audit.record, []

    def failing_record(*args, **kwargs):
        calls.append(args[2:4])
        if len(calls) == fail_at:
            raise RuntimeError("disk full")
        real_record(*args, **kwargs)

    monkeypatch.setattr(audit, "record", failing_record)

    with pytest.raises(RuntimeError, match="disk full"):
        imports.apply(database, world.manager_leeds, plan)

    assert len(calls) == fail_at
    assert database.execute("SELECT count(*) FROM contacts").fetchone() == (0,)
    assert database.conn.in_transaction is False
    database.close()
    assert file_hash(world.path) == before


def _people(count: int) -> bytes:
    """``count`` contacts at Hyde Park Surgery, each with an email of their own, header first."""
    rows = [["Name", "Organisation", "Email"]]
    rows += [[f"Person {i:05d}", "Hyde Park Surgery", f"person{i:05d}@partner.example"] for i in range(count)]
    return csv_bytes(rows)


def test_plan_and_apply_report_progress_up_to_every_row(world):
    """Test that plan() and apply() call progress with (rows done, rows in total) every 500 rows and at the end,
    counting a skipped or refused row as done, and that apply's calls come while the rows are being written."""
    rows = [["Name", "Organisation", "Email"]]
    rows += [[f"Person {i:05d}", "Hyde Park Surgery", f"person{i:05d}@partner.example"] for i in range(1_232)]
    rows += [["Person 00007", "Hyde Park Surgery", "person00007@partner.example"], ["No Organisation", "", ""]]
    table = imports.read_table(csv_bytes(rows))
    checked: list[tuple[int, int]] = []
    imported: list[tuple[int, int, int]] = []

    plan = imports.plan(
        world.db,
        world.manager_leeds,
        table,
        imports.guess_mapping(table.headers),
        world.leeds,
        progress=lambda *c: checked.append(c),
    )
    imports.apply(
        world.db,
        world.manager_leeds,
        plan,
        progress=lambda done, total: imported.append(
            (done, total, world.db.execute("SELECT count(*) FROM contacts").fetchone()[0])
        ),
    )

    assert plan.summary() == {"imported": 1_232, "updated": 0, "skipped": 1, "errors": 1}
    assert checked == [(500, 1_234), (1_000, 1_234), (1_234, 1_234)]
    assert imported == [(500, 1_234, 500), (1_000, 1_234, 1_000), (1_234, 1_234, 1_232)]
    assert world.db.execute("SELECT count(*) FROM contacts").fetchone() == (1_232,)


def test_an_empty_plan_reports_progress_once(world):
    """Test that a file with a heading line only reports (0, 0) from plan() and from apply(), so a progress bar
    still ends."""
    table = imports.read_table(b"Name,Organisation\r\n")
    calls: list[tuple[int, int]] = []
    plan = imports.plan(
        world.db,
        world.manager_leeds,
        table,
        imports.guess_mapping(table.headers),
        world.leeds,
        progress=lambda *c: calls.append(c),
    )
    imports.apply(world.db, world.manager_leeds, plan, progress=lambda *c: calls.append(c))
    assert calls == [(0, 0), (0, 0)]


def test_a_failure_after_progress_was_reported_leaves_nothing_written(world, monkeypatch):
    """Test that when a later row fails (the 1,234th contact's audit entry), after progress said 1,000 rows were
    done and those rows were in the database, the whole import is rolled back: the file is unchanged."""
    table = imports.read_table(_people(1_500))
    plan = imports.plan(world.db, world.manager_leeds, table, imports.guess_mapping(table.headers), world.leeds)
    world.db.close()
    before = file_hash(world.path)
    database = db.connect(world.path)
    real_record, calls = audit.record, []

    def failing_record(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1_234:
            raise RuntimeError("disk full")
        real_record(*args, **kwargs)

    monkeypatch.setattr(audit, "record", failing_record)
    seen: list[tuple[int, int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total, database.execute("SELECT count(*) FROM contacts").fetchone()[0]))

    with pytest.raises(RuntimeError, match="disk full"):
        imports.apply(database, world.manager_leeds, plan, progress=progress)

    assert seen == [(500, 1_500, 500), (1_000, 1_500, 1_000)]
    assert database.execute("SELECT count(*) FROM contacts").fetchone() == (0,)
    assert database.conn.in_transaction is False
    database.close()
    assert file_hash(world.path) == before


def test_a_dry_run_writes_nothing_and_reports(world):
    """Test that apply(dry_run=True) returns the plan's report and leaves the database file untouched."""
    table = imports.read_table(VARIANTS["utf-8 comma"]())
    plan = imports.plan(world.db, world.manager_leeds, table, imports.guess_mapping(table.headers), world.leeds)
    world.db.close()
    before = file_hash(world.path)
    database = db.connect(world.path)

    report = imports.apply(database, world.manager_leeds, plan, dry_run=True)

    database.close()
    assert report == plan.report()
    assert report["summary"] == {"imported": 30, "updated": 0, "skipped": 0, "errors": 0}
    assert file_hash(world.path) == before


BIG_ROWS = 15_000


@pytest.fixture
def big_file(tmp_path) -> Path:
    """15,000 contacts at one practice, each with its own email."""
    path = tmp_path / "big.csv"
    rows = [["Name", "Organisation", "Email"]]
    rows += [[f"Person {i:05d}", "Hyde Park Surgery", f"person{i:05d}@partner.example"] for i in range(BIG_ROWS)]
    path.write_text(to_csv(rows), encoding="utf-8")
    return path


def _cli_env(db_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    return {**env, "CRM_DB": str(db_path)}


def _state(db_path: Path) -> tuple[int, int, list[str]]:
    """(contacts, import audit entries, integrity check) as a new connection sees them."""
    connection = sqlite3.connect(db_path)
    try:
        return (
            connection.execute("SELECT count(*) FROM contacts").fetchone()[0],
            connection.execute("SELECT count(*) FROM audit_log WHERE action = 'import_contacts'").fetchone()[0],
            [row[0] for row in connection.execute("PRAGMA integrity_check")],
        )
    finally:
        connection.close()


# Runs the real command line, but pauses for good after the Nth audit entry of the import: the kill then lands
# inside apply()'s transaction, with thousands of rows written but not committed.
PAUSING_CLI = """
import sys, time
import crm.audit
from crm.__main__ import main

real_record, calls = crm.audit.record, []

def record(*args, **kwargs):
    real_record(*args, **kwargs)
    calls.append(1)
    if len(calls) == PAUSE_AFTER:
        print("paused inside the write", flush=True)
        time.sleep(600)

crm.audit.record = record
sys.exit(main())
"""


def test_a_killed_command_line_import_leaves_no_partial_rows(world, big_file):
    """Test that SIGKILL while `python -m crm import-contacts` is inside its write transaction (10,000 of 15,000
    rows written) leaves no contact and no audit entry, an intact database, and no lock: the same import run
    again afterwards writes all 15,000."""
    world.db.close()
    code = PAUSING_CLI.replace("PAUSE_AFTER", "10_000")
    process = subprocess.Popen(
        [sys.executable, "-c", code, "import-contacts", str(big_file), "--branch", "Leeds"],
        cwd=REPO,
        env=_cli_env(world.path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline() == "paused inside the write\n"
        assert _state(world.path) == (0, 0, ["ok"])  # nothing is visible before the commit
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()

    assert _state(world.path) == (0, 0, ["ok"])
    again = subprocess.run(
        [sys.executable, "-m", "crm", "import-contacts", str(big_file), "--branch", "Leeds"],
        cwd=REPO,
        env=_cli_env(world.path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (again.returncode, again.stdout, again.stderr) == (
        0,
        f"{BIG_ROWS} imported, 0 updated, 0 skipped, 0 errors\n",
        "",
    )
    assert _state(world.path) == (BIG_ROWS, 1, ["ok"])


@pytest.mark.parametrize("kill_at_wal_bytes", [64 * 1024, 1024 * 1024, 4 * 1024 * 1024])
def test_a_command_line_import_killed_at_any_point_is_all_or_nothing(world, big_file, kill_at_wal_bytes):
    """Test that the unmodified command line, killed with SIGKILL once its write-ahead log has grown to a given
    size (that is, somewhere inside the write, or at its commit), leaves either no contacts or all of them,
    and an intact database."""
    world.db.close()
    wal = Path(f"{world.path}-wal")
    process = subprocess.Popen(
        [sys.executable, "-m", "crm", "import-contacts", str(big_file), "--branch", "Leeds"],
        cwd=REPO,
        env=_cli_env(world.path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while process.poll() is None:
            if wal.exists() and wal.stat().st_size >= kill_at_wal_bytes:
                os.kill(process.pid, signal.SIGKILL)
                break
            time.sleep(0.001)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    contacts_written, imports_audited, integrity = _state(world.path)
    assert (contacts_written, imports_audited) in [(0, 0), (BIG_ROWS, 1)]
    assert integrity == ["ok"]


# ---------------------------------------------------------------------------------------------------- duplicates

DUPLICATES = [
    ["Name", "Job title", "Organisation", "Email"],
    ["Quentin Quarry-Smith", "Senior Practice Manager", "Hyde Park Surgery", "QUENTIN.QUARRY@hydepark.example"],
    ["Ama Mensah", "Therapist", "Leeds Community OT", "ama@ot.example"],
    ["A. Mensah", "OT lead", "Leeds Community OT", "Ama@OT.example"],
    ["Yvonne Young", "Receptionist", "Hyde Park Surgery", "yvonne@hydepark.example"],
]


@pytest.fixture
def quentin(world) -> int:
    """Leeds' existing contact whose email the file repeats; York has a contact with another row's email."""
    world.contact(world.york, "Yvonne York", email="yvonne@hydepark.example")
    return world.contact(
        world.leeds,
        "Quentin Quarry",
        job_title="Practice Manager",
        phone="0113 496 0123",
        email="quentin.quarry@hydepark.example",
    )


@pytest.mark.parametrize(
    ("on_duplicate", "outcomes"),
    [
        (
            "skip",
            [
                (2, "skipped", [ALREADY]),
                (3, "imported", []),
                (4, "skipped", ["Same person as line 3 of this file."]),
                (5, "imported", []),
            ],
        ),
        (
            "update",
            [
                (2, "updated", [UPDATES]),
                (3, "imported", []),
                (4, "skipped", ["Same person as line 3 of this file."]),
                (5, "imported", []),
            ],
        ),
        (
            "import",
            [(2, "imported", []), (3, "imported", []), (4, "imported", []), (5, "imported", [])],
        ),
    ],
)
def test_duplicates_are_skipped_updated_or_imported(world, quentin, on_duplicate, outcomes):
    """Test each choice for a row that matches an existing contact of the branch (same email, any case) and for
    a row that repeats an earlier row of the file; a contact of another branch is never a duplicate."""
    report = run_import(world.db, world.manager_leeds, csv_bytes(DUPLICATES), world.leeds, on_duplicate=on_duplicate)

    assert report["rows"] == [{"line": line, "outcome": o, "messages": m} for line, o, m in outcomes]
    leeds = world.db.execute_returning_dicts(
        "SELECT id, name, job_title, email, phone, version, updated_by FROM contacts WHERE branch_id = ? ORDER BY id",
        [world.leeds],
    )
    quentin_before = {
        "id": quentin,
        "name": "Quentin Quarry",
        "job_title": "Practice Manager",
        "email": "quentin.quarry@hydepark.example",
        "phone": "+441134960123",
        "version": 1,
        "updated_by": world.admin.id,
    }
    new = [
        {"name": "Ama Mensah", "job_title": "Therapist", "email": "ama@ot.example"},
        {"name": "A. Mensah", "job_title": "OT lead", "email": "Ama@ot.example"},
        {"name": "Yvonne Young", "job_title": "Receptionist", "email": "yvonne@hydepark.example"},
        {
            "name": "Quentin Quarry-Smith",
            "job_title": "Senior Practice Manager",
            "email": "QUENTIN.QUARRY@hydepark.example",
        },
    ]
    by_choice = {
        "skip": (quentin_before, [new[0], new[2]]),
        "update": (
            {
                **quentin_before,
                "name": "Quentin Quarry-Smith",
                "job_title": "Senior Practice Manager",
                "email": "QUENTIN.QUARRY@hydepark.example",
                "version": 2,
                "updated_by": world.manager_leeds.id,
            },
            [new[0], new[2]],
        ),
        "import": (quentin_before, [new[3], new[0], new[1], new[2]]),
    }
    expected_quentin, expected_new = by_choice[on_duplicate]
    assert leeds[0] == expected_quentin
    assert [{k: row[k] for k in ("name", "job_title", "email")} for row in leeds[1:]] == expected_new
    assert report["summary"] == {
        "imported": sum(o == "imported" for _, o, _ in outcomes),
        "updated": sum(o == "updated" for _, o, _ in outcomes),
        "skipped": sum(o == "skipped" for _, o, _ in outcomes),
        "errors": 0,
    }


def test_an_update_is_audited_with_what_changed(world, quentin):
    """Test that updating an existing contact from a row audits exactly the fields that changed."""
    run_import(world.db, world.manager_leeds, csv_bytes(DUPLICATES[:2]), world.leeds, on_duplicate="update")

    entry = audit.entries(world.db, "contacts", quentin, limit=1)[0]
    del entry["id"]
    assert entry == {
        "at": STAMP,
        "user_id": world.manager_leeds.id,
        "username": "manager.leeds",
        "action": "update",
        "table_name": "contacts",
        "row_id": quentin,
        "changes": {
            "name": ["Quentin Quarry", "Quentin Quarry-Smith"],
            "job_title": ["Practice Manager", "Senior Practice Manager"],
            "email": ["quentin.quarry@hydepark.example", "QUENTIN.QUARRY@hydepark.example"],
        },
    }


def test_an_update_with_a_new_phone_drops_the_old_extension(world):
    """Test that updating a contact's phone from a row without an extension does not keep the old number's
    extension (which would then dial a wrong extension on the new number).

    Regression: imports._update skips None values, so phone_ext kept "45" while phone changed."""
    contact_id = world.contact(
        world.leeds, "Pat Phone", phone="0113 496 0123 ext. 45", email="pat.phone@hydepark.example"
    )
    data = csv_bytes(
        [
            ["Name", "Organisation", "Email", "Telephone"],
            ["Pat Phone", "Hyde Park Surgery", "pat.phone@hydepark.example", "0113 496 0999"],
        ]
    )

    report = run_import(world.db, world.manager_leeds, data, world.leeds, on_duplicate="update")

    assert report["summary"] == {"imported": 0, "updated": 1, "skipped": 0, "errors": 0}
    assert contacts.get(world.db, world.admin, contact_id)["phone_display"] == "0113 496 0999"
    assert world.db.execute("SELECT phone, phone_ext FROM contacts WHERE id = ?", [contact_id]).fetchone() == (
        "+441134960999",
        None,
    )


def test_a_duplicate_by_phone_and_by_name_at_the_organisation(world, quentin):
    """Test that a row with the existing contact's phone number (typed differently), or with the same name at
    the same organisation, is a duplicate too."""
    data = csv_bytes(
        [
            ["Name", "Organisation", "Mobile", "Telephone"],
            ["Q. Quarry", "Leeds Community OT", "", "+44 (0)113 4960123"],
            ["quentin quarry", "HYDE PARK SURGERY", "", ""],
            ["Quentin Quarry", "Leeds Community OT", "", ""],
        ]
    )

    report = run_import(world.db, world.manager_leeds, data, world.leeds)

    assert report["rows"] == [
        {"line": 2, "outcome": "skipped", "messages": [ALREADY]},
        {"line": 3, "outcome": "skipped", "messages": [ALREADY]},
        {"line": 4, "outcome": "imported", "messages": []},
    ]


# ---------------------------------------------------------------------------------------------------- row checks

ROW_HEADERS = ["Name", "Organisation", "Partner type", "Telephone", "Mobile", "Email", "Notes", "ODS code"]


def _row(**values: str) -> list[str]:
    defaults = {"Name": "Pat Row", "Organisation": "Hyde Park Surgery"}
    return [{**defaults, **values}.get(h, "") for h in ROW_HEADERS]


@pytest.mark.parametrize(
    ("row", "messages"),
    [
        (_row(Name=""), ["Name: is required."]),
        (_row(Organisation=""), ["Organisation: is required."]),
        (
            _row(Organisation="Acme Clinic"),
            ["Organisation: “Acme Clinic” is not in the directory yet; give its partner type so it can be added."],
        ),
        (_row(**{"Partner type": "Dentist"}), ["Partner type: “Dentist” is not a partner type this app knows."]),
        (
            _row(Telephone="0113 496"),
            ["Phone: “0113 496” is not a valid phone number (check the number of digits and the area code)."],
        ),
        (_row(Telephone="ask at reception"), ["Phone: “ask at reception” is not a phone number."]),
        (
            _row(Mobile="07400 123456 ext. 5"),
            ["Mobile: mobile numbers do not have extensions; put the extension on Phone."],
        ),
        (
            _row(Email="pat@"),
            ["Email: “pat@” is not a valid email address. There must be something after the @-sign."],
        ),
        (_row(Name="Pat\nRow"), ["Name: contains a line break or control character; use a single line of text."]),
        (_row(Notes="x" * 5001), ["Notes: is too long (5001 characters; the limit is 5000)."]),
        (
            _row(Name="", Telephone="0113 496", Email="pat.example"),
            [
                "Name: is required.",
                "Phone: “0113 496” is not a valid phone number (check the number of digits and the area code).",
                "Email: “pat.example” is not a valid email address. An email address must have an @-sign.",
            ],
        ),
    ],
)
def test_a_bad_row_is_an_error_and_is_not_written(world, row, messages):
    """Test that a row with bad values is reported as an error with every problem's exact message, is not
    written, and does not stop the good row after it."""
    data = csv_bytes([ROW_HEADERS, row, _row(Name="Good Row")])

    report = run_import(world.db, world.manager_leeds, data, world.leeds)

    assert report == {
        "summary": {"imported": 1, "updated": 0, "skipped": 0, "errors": 1},
        "rows": [
            {"line": 2, "outcome": "error", "messages": messages},
            {"line": 3, "outcome": "imported", "messages": []},
        ],
    }
    assert [r["name"] for r in contact_rows(world.db)] == ["Good Row"]


def test_an_nhs_number_in_the_notes_makes_the_row_an_error(world):
    """Test that a row whose notes hold what looks like an NHS number (valid check digit) is refused, as the
    contact form refuses it, while a phone number in the notes is fine.

    Regression: imports._plan_row never called fields.refuse_nhs_numbers, so such notes were imported."""
    data = csv_bytes(
        [
            ROW_HEADERS,
            _row(Name="Nia Notes", Notes="Asked about Mrs B (NHS 943 476 5919)"),
            _row(Name="Phil Phone", Notes="Direct line 0113 496 0123"),
        ]
    )

    report = run_import(world.db, world.manager_leeds, data, world.leeds)

    assert report["rows"] == [
        {"line": 2, "outcome": "error", "messages": [NHS_NUMBER_IN_NOTES]},
        {"line": 3, "outcome": "imported", "messages": []},
    ]
    assert [r["name"] for r in contact_rows(world.db)] == ["Phil Phone"]


def test_rows_find_organisations_by_ods_code_name_and_type(world):
    """Test that a row finds its organisation by ODS code (name blank), by name in any case and spacing, or adds
    a new one when it gives a partner type; two rows naming the same new organisation share it."""
    practice = organisations.add(
        world.db, world.admin, {"name": "Leeds GP", "type_code": "GP_PRACTICE", "ods_code": "B86001"}
    )
    data = csv_bytes(
        [
            ROW_HEADERS,
            _row(Name="By Code", Organisation="", **{"ODS code": "b86001"}),
            _row(Name="By Name", Organisation="  leeds   community ot "),
            _row(Name="New One", Organisation="Meanwood Mental Health Team", **{"Partner type": "CMHT"}),
            _row(Name="New Two", Organisation="meanwood mental health team", **{"Partner type": "Mental health"}),
            _row(Name="Excel Zero", Telephone="1134960123", Mobile="7400123456"),
        ]
    )

    report = run_import(world.db, world.manager_leeds, data, world.leeds)

    assert report["summary"] == {"imported": 5, "updated": 0, "skipped": 0, "errors": 0}
    new_org = world.db.execute("SELECT id, name, type_code FROM organisations WHERE id > ?", [practice]).fetchall()
    assert new_org == [(practice + 1, "Meanwood Mental Health Team", "MENTAL_HEALTH")]
    assert [(r["name"], r["organisation_id"], r["phone"], r["mobile"]) for r in contact_rows(world.db)] == [
        ("By Code", practice, None, None),
        ("By Name", world.ot, None, None),
        ("New One", practice + 1, None, None),
        ("New Two", practice + 1, None, None),
        ("Excel Zero", world.gp, "+441134960123", "+447400123456"),
    ]


# ---------------------------------------------------------------------------------------------------- mapping


def test_guess_mapping_recognises_usual_headings():
    """Test that the usual spreadsheet headings, in any case and punctuation, map to the fields."""
    headers = [
        "Full Name",
        "Role",
        "Tel No.",
        "Mob",
        "E-mail address",
        "Practice",
        "Category",
        "Practice code",
        "Comments",
        "Do not contact?",
    ]

    assert imports.guess_mapping(headers) == {
        "name": "Full Name",
        "job_title": "Role",
        "phone": "Tel No.",
        "mobile": "Mob",
        "email": "E-mail address",
        "organisation": "Practice",
        "type": "Category",
        "ods_code": "Practice code",
        "notes": "Comments",
        "do_not_contact": "Do not contact?",
    }


def test_parse_mapping_overrides_the_guess():
    """Test that "Header=field" pairs override the guess, and a header moved to a new field leaves its old one."""
    headers = ["Contact", "Direct line", "Surgery", "Comments", "Type"]

    assert imports.parse_mapping(" Surgery=organisation , Comments = JOB_TITLE,", headers) == {
        "name": "Contact",
        "job_title": "Comments",
        "phone": "Direct line",
        "mobile": None,
        "email": None,
        "organisation": "Surgery",
        "type": "Type",
        "ods_code": None,
        "notes": None,
        "do_not_contact": None,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Tel=telephone", f"Map: “telephone” is not a field; use one of {FIELD_NAMES}."),
        ("Tel", f"Map: “” is not a field; use one of {FIELD_NAMES}."),
        ("Fax=phone", "Map: the file has no column headed “Fax”."),
        ("=phone", "Map: the file has no column headed “”."),
        ("tel=phone", "Map: the file has no column headed “tel”."),
        ("Tel=phone,Practice=organisation;", f"Map: “organisation;” is not a field; use one of {FIELD_NAMES}."),
    ],
)
def test_parse_mapping_refuses_unknown_fields_and_headers(text, message):
    """Test that a mapping naming a field that does not exist, or a column the file does not have, is refused."""
    with pytest.raises(ValidationError) as refused:
        imports.parse_mapping(text, ["Name", "Tel", "Practice"])

    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("mapping", "on_duplicate", "message"),
    [
        (
            {"name": None, "organisation": "Organisation"},
            "skip",
            "Map: choose the column that holds each contact's name.",
        ),
        (
            {"name": "Name", "organisation": None, "ods_code": None},
            "skip",
            "Map: choose the column that holds the organisation (or its ODS code).",
        ),
        (
            {"name": "Name", "organisation": "Organisation"},
            "merge",
            "On duplicate: must be one of skip, update, import.",
        ),
    ],
)
def test_plan_refuses_an_unusable_mapping(world, mapping, on_duplicate, message):
    """Test that planning without a name column or an organisation column, or with an unknown duplicate
    choice, is refused before any row is looked at."""
    table = imports.read_table(csv_bytes(GOOD))

    with pytest.raises(ValidationError) as refused:
        imports.plan(world.db, world.manager_leeds, table, mapping, world.leeds, on_duplicate)

    assert str(refused.value) == message


INJECTION = "name); DROP TABLE contacts;--"


def test_header_text_never_becomes_sql(world):
    """Test that a heading written as SQL is ignored by the guess, and when mapped on purpose its cells are
    stored as plain text: the contacts table and every other row survive."""
    world.contact(world.leeds, "Already Here")
    rows = [
        ["Name", "Organisation", INJECTION, "Email"],
        ["Robert'); DROP TABLE contacts;--", "Hyde Park Surgery", "'; DELETE FROM users; --", "bobby@tables.example"],
    ]
    table = imports.read_table(csv_bytes(rows))

    assert imports.guess_mapping(table.headers) == {
        "name": "Name",
        "job_title": None,
        "phone": None,
        "mobile": None,
        "email": "Email",
        "organisation": "Organisation",
        "type": None,
        "ods_code": None,
        "notes": None,
        "do_not_contact": None,
    }
    run_import(world.db, world.manager_leeds, csv_bytes(rows), world.leeds)
    run_import(
        world.db, world.manager_leeds, csv_bytes(rows), world.leeds, mapping=f"{INJECTION}=notes", on_duplicate="import"
    )

    assert [(r["name"], r["notes"]) for r in contact_rows(world.db)] == [
        ("Already Here", ""),
        ("Robert'); DROP TABLE contacts;--", ""),
        ("Robert'); DROP TABLE contacts;--", "'; DELETE FROM users; --"),
    ]
    assert world.db["users"].count == 6
    assert world.db["contacts"].exists()


# ---------------------------------------------------------------------------------------------------- scope


@pytest.mark.parametrize(
    ("who", "branch", "allowed"),
    [
        ("manager_leeds", "leeds", True),
        ("manager_leeds", "york", False),
        ("manager_york", "leeds", False),
        ("lead_north", "york", True),
        ("lead_north", "bristol", False),
        ("lead_south", "leeds", False),
        ("admin", "bristol", True),
    ],
)
def test_an_import_goes_only_into_a_branch_in_scope(world, who, branch, allowed):
    """Test that plan() lets a branch manager import only into their own branch and a regional lead only into
    their region's branches (NotFound otherwise, as for a branch that does not exist)."""
    table = imports.read_table(csv_bytes(GOOD))
    mapping = imports.guess_mapping(table.headers)
    actor, branch_id = getattr(world, who), getattr(world, branch)

    if allowed:
        assert imports.plan(world.db, actor, table, mapping, branch_id).summary()["imported"] == 4
    else:
        with pytest.raises(NotFound) as refused:
            imports.plan(world.db, actor, table, mapping, branch_id)
        assert str(refused.value) == NOT_YOURS


def test_apply_checks_the_branch_again(world):
    """Test that a plan made for York cannot be applied by Leeds' manager: NotFound, nothing written."""
    table = imports.read_table(csv_bytes(GOOD))
    plan = imports.plan(world.db, world.admin, table, imports.guess_mapping(table.headers), world.york)
    world.db.close()
    before = file_hash(world.path)
    database = db.connect(world.path)

    with pytest.raises(NotFound) as refused:
        imports.apply(database, world.manager_leeds, plan)

    database.close()
    assert str(refused.value) == NOT_YOURS
    assert file_hash(world.path) == before


# ---------------------------------------------------------------------------------------------------- the report


def test_the_report_format(world):
    """Test the JSON report: a summary of imported, updated, skipped and errors, then every row with its line
    (the header being line 1, blank lines counted), outcome and messages; report_json keeps non-ASCII text."""
    world.contact(world.leeds, "Siân O'Brien", email="sian@partner.example")
    data = csv_bytes(
        [
            GOOD[0],
            GOOD[1],
            ["", "", ""],
            GOOD[2],
            ["Bad Email", "Hyde Park Surgery", "bad@"],
            GOOD[1],
        ]
    )

    report = run_import(world.db, world.manager_leeds, data, world.leeds, "contacts.csv")

    assert report == {
        "summary": {"imported": 1, "updated": 0, "skipped": 2, "errors": 1},
        "rows": [
            {"line": 2, "outcome": "imported", "messages": []},
            {"line": 4, "outcome": "skipped", "messages": [ALREADY]},
            {
                "line": 5,
                "outcome": "error",
                "messages": ["Email: “bad@” is not a valid email address. There must be something after the @-sign."],
            },
            {"line": 6, "outcome": "skipped", "messages": ["Same person as line 2 of this file."]},
        ],
    }
    text = imports.report_json(report)
    assert json.loads(text) == report
    assert "“bad@”" in text
    assert list(json.loads(text)) == ["summary", "rows"]


def test_a_row_holding_a_non_character_is_an_error_naming_field_and_character(world):
    """Test that an imported row whose name, notes or new organisation holds a Unicode non-character is an error
    naming the field and the character, and only the good row is written. Regression: such text was accepted and
    then broke every Word and Excel export."""
    data = csv_bytes(
        [
            ROW_HEADERS,
            _row(Name="Pat\ufffe Row"),
            _row(Name="Sam Row", Notes="Met\U0001ffff at the MDT"),
            _row(Name="Ann Row", Organisation="New \ufdd0Team", **{"Partner type": "OT"}),
            _row(Name="Good Row"),
        ]
    )

    report = run_import(world.db, world.manager_leeds, data, world.leeds)

    assert report == {
        "summary": {"imported": 1, "updated": 0, "skipped": 0, "errors": 3},
        "rows": [
            {"line": 2, "outcome": "error", "messages": ["Name: character 4 (U+FFFE) is not allowed."]},
            {"line": 3, "outcome": "error", "messages": ["Notes: character 4 (U+1FFFF) is not allowed."]},
            {"line": 4, "outcome": "error", "messages": ["Organisation: character 5 (U+FDD0) is not allowed."]},
            {"line": 5, "outcome": "imported", "messages": []},
        ],
    }
    assert [r["name"] for r in contact_rows(world.db)] == ["Good Row"]


MIXED_ENCODING = (
    "Line 7 is not valid UTF-8, while other lines are: the file mixes two encodings. "
    "Save it as UTF-8 (in Excel: CSV UTF-8) and try again."
)


def _utf8_with_one_cp1252_line(bad_line: bytes) -> bytes:
    rows = [["Name", "Organisation"], *[[f"Zoë Brontë {i}", "Hyde Park Surgery"] for i in range(8)]]
    lines = to_csv(rows).encode("utf-8").split(b"\r\n")
    lines[6] = bad_line
    return b"\r\n".join(lines)


@pytest.mark.parametrize(
    "bad_line",
    [
        "Chloé Café,Hyde Park Surgery".encode("cp1252"),
        # The same line holding a UTF-8 ë and a Windows-1252 one: not a file of one encoding either.
        "Zoë Bront".encode() + "ë,Hyde Park Surgery".encode("cp1252"),
    ],
)
def test_a_utf8_file_with_a_windows_1252_line_is_refused_naming_the_line(world, bad_line):
    """Test that a UTF-8 file with one line saved in Windows-1252 is refused, naming that line, and nothing is
    written. Regression: the whole file was decoded as Windows-1252 and "Zoë Brontë" imported as "ZoÃ« BrontÃ«"."""
    data = _utf8_with_one_cp1252_line(bad_line)

    with pytest.raises(FileRefused) as refused:
        run_import(world.db, world.manager_leeds, data, world.leeds, "contacts.csv")

    assert str(refused.value) == MIXED_ENCODING
    assert contact_rows(world.db) == []


def test_a_windows_1252_file_with_one_accented_line_still_imports(world):
    """Test that a file wholly in Windows-1252 (semicolons, one accented name) is still read as such."""
    data = to_csv(
        [["Name", "Organisation"], ["Pat Row", "Hyde Park Surgery"], ["Zoë Brontë", "Hyde Park Surgery"]], ";"
    )

    run_import(world.db, world.manager_leeds, data.encode("cp1252"), world.leeds, "contacts.csv")

    assert [r["name"] for r in contact_rows(world.db)] == ["Pat Row", "Zoë Brontë"]


PERSON_COLUMNS = (
    "name, job_title, email, phone, do_not_contact, lawful_basis, privacy_info_sent_on, keep_in_touch_days, "
    "retention_review_on, retention_reason, version"
)


@pytest.fixture
def objector(world) -> int:
    """Leeds' contact who objected: do not contact, on the lawful basis of consent, with her own interval and a
    retention decision."""
    contact_id = world.contact(
        world.leeds,
        "Olive Objector",
        job_title="Practice Manager",
        email="olive@hydepark.example",
        phone="0113 496 0777",
        do_not_contact=True,
        lawful_basis="consent",
        privacy_info_sent_on="2026-01-15",
        keep_in_touch_days=30,
    )
    world.db.execute(
        "UPDATE contacts SET retention_review_on = '2027-01-01', retention_reason = 'Still our CHC lead' WHERE id = ?",
        [contact_id],
    )
    return contact_id


def person(world, contact_id: int) -> dict:
    return world.db.execute_returning_dicts(f"SELECT {PERSON_COLUMNS} FROM contacts WHERE id = ?", [contact_id])[0]


OBJECTOR = {
    "name": "Olive Objector",
    "job_title": "Practice Manager",
    "email": "olive@hydepark.example",
    "phone": "+441134960777",
    "do_not_contact": 1,
    "lawful_basis": "consent",
    "privacy_info_sent_on": "2026-01-15",
    "keep_in_touch_days": 30,
    "retention_review_on": "2027-01-01",
    "retention_reason": "Still our CHC lead",
    "version": 1,
}


def test_an_update_import_touches_only_the_columns_the_file_holds(world, objector):
    """Test that updating a contact from a file without do-not-contact, lawful basis or phone columns changes only
    what the file holds (the job title) and keeps her objection, basis, notice date, interval and retention.
    Regression: the update wrote clean()'s defaults, so do-not-contact became 0 and the basis "legitimate
    interests", and she was back on the mailing list."""
    data = csv_bytes(
        [
            ["Name", "Job title", "Organisation", "Email"],
            ["Olive Objector", "Senior Practice Manager", "Hyde Park Surgery", "olive@hydepark.example"],
        ]
    )

    report = run_import(world.db, world.manager_leeds, data, world.leeds, on_duplicate="update")

    assert report["summary"] == {"imported": 0, "updated": 1, "skipped": 0, "errors": 0}
    assert person(world, objector) == {**OBJECTOR, "job_title": "Senior Practice Manager", "version": 2}
    assert [c["name"] for c in contacts.mailing_list(world.db, world.admin)] == []


@pytest.mark.parametrize("typed", ["no", "No", "0", "false", ""])
def test_an_update_import_never_lifts_do_not_contact(world, objector, typed):
    """Test that a file saying the contact may be contacted (no, 0, false or blank) does not lift her objection."""
    data = csv_bytes(
        [
            ["Name", "Organisation", "Email", "Do not contact"],
            ["Olive Objector", "Hyde Park Surgery", "olive@hydepark.example", typed],
        ]
    )

    report = run_import(world.db, world.manager_leeds, data, world.leeds, on_duplicate="update")

    assert report["rows"] == [{"line": 2, "outcome": "updated", "messages": [UPDATES]}]
    assert person(world, objector) == OBJECTOR


def test_a_file_can_mark_contacts_do_not_contact_and_refuses_other_words(world, quentin):
    """Test that "yes" in a Do not contact column marks an existing contact (on update) and a new one, "no" imports
    a new contact who may be contacted, and any other word is a row error."""
    data = csv_bytes(
        [
            ["Name", "Organisation", "Email", "DNC"],
            ["Quentin Quarry", "Hyde Park Surgery", "quentin.quarry@hydepark.example", "Yes"],
            ["Nina New", "Hyde Park Surgery", "nina@hydepark.example", "y"],
            ["Pat Row", "Hyde Park Surgery", "pat@hydepark.example", "no"],
            ["Sam Maybe", "Hyde Park Surgery", "sam@hydepark.example", "maybe"],
        ]
    )

    report = run_import(world.db, world.manager_leeds, data, world.leeds, on_duplicate="update")

    assert report["rows"][3] == {
        "line": 5,
        "outcome": "error",
        "messages": ["Do not contact: “maybe” is not yes or no."],
    }
    assert world.db.execute(
        "SELECT name, do_not_contact FROM contacts WHERE branch_id = ? ORDER BY id", [world.leeds]
    ).fetchall() == [("Quentin Quarry", 1), ("Nina New", 1), ("Pat Row", 0)]


def _sheet_xml(dimension: str, rows: list[tuple[int, list[tuple[str, str]]]]) -> str:
    cells = "".join(
        f'<row r="{n}">'
        + "".join(f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>' for ref, text in row)
        + "</row>"
        for n, row in rows
    )
    return (
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="{dimension}"/><sheetData>{cells}</sheetData></worksheet>'
    )


def _workbook_with(sheet_xml: str | None = None, extra: dict[str, bytes] | None = None) -> bytes:
    """A real workbook (made by openpyxl) with its first sheet's XML replaced and/or extra members added."""
    original = zipfile.ZipFile(io.BytesIO(to_xlsx([["Name", "Organisation"], ["Pat Row", "Hyde Park Surgery"]])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as rebuilt:
        for item in original.infolist():
            content = original.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml" and sheet_xml is not None:
                content = sheet_xml.encode()
            rebuilt.writestr(item.filename, content)
        for name, content in (extra or {}).items():
            rebuilt.writestr(name, content)
    return out.getvalue()


TWO_ROWS = [(1, [("A1", "Name"), ("B1", "Organisation")]), (2, [("A2", "Pat Row"), ("B2", "Hyde Park Surgery")])]


def test_an_xlsx_that_unpacks_to_too_much_is_refused_before_it_is_parsed():
    """Test that a small workbook whose members unpack to more than the limit (a zip bomb: 60 MB of one byte
    squeezed into tens of kilobytes) is refused from the zip's directory alone. Regression: a 201 KB upload took
    the process to 722 MB."""
    bomb = _workbook_with(extra={"xl/media/padding.bin": b"\0" * (60 * 1024 * 1024)})
    assert len(bomb) < 200 * 1024

    with pytest.raises(FileRefused) as refused:
        imports.read_table(bomb, "contacts.xlsx")

    assert str(refused.value) == (
        "The workbook unpacks to 60 MB; the limit is 50 MB. Save the sheet as CSV, or split it, and try again."
    )


def unpacked(workbook: bytes) -> int:
    return sum(item.file_size for item in zipfile.ZipFile(io.BytesIO(workbook)).infolist())


def test_an_xlsx_squeezed_far_beyond_usual_compression_is_refused():
    """Test that a workbook unpacking to more than 100 times its size (under the size limit) is refused too."""
    squeezed = _workbook_with(extra={"xl/media/padding.bin": b"\0" * (20 * 1024 * 1024)})

    with pytest.raises(FileRefused) as refused:
        imports.read_table(squeezed, "contacts.xlsx")

    assert str(refused.value) == (
        f"The workbook unpacks to {unpacked(squeezed) // len(squeezed):,} times its size, far more than a "
        "spreadsheet does; it may be built to exhaust the server. Save the sheet as CSV and try again."
    )


@pytest.mark.parametrize(
    ("dimension", "rows", "message"),
    [
        (
            "A1:XFD2",
            [*TWO_ROWS[:1], (2, [("A2", "Pat Row"), ("B2", "Hyde Park Surgery"), ("XFD2", "far away")])],
            "The sheet is 16,384 columns wide; the limit is 200. Delete the columns you do not need, or save the "
            "sheet as CSV, and try again.",
        ),
        ("A1:B1048576", TWO_ROWS, "The file has more than 20,000 rows; split it into smaller files."),
        # No dimension declared: the cell beyond the last allowed column is found while reading.
        (
            "",
            [*TWO_ROWS[:1], (2, [("A2", "Pat Row"), ("B2", "Hyde Park Surgery"), ("GS2", "far away")])],
            "The sheet is 201 columns wide; the limit is 200. Delete the columns you do not need, or save the "
            "sheet as CSV, and try again.",
        ),
    ],
    ids=["declared width", "declared height", "cell beyond the width"],
)
def test_an_xlsx_too_wide_or_too_tall_is_refused(dimension, rows, message):
    """Test that a sheet declaring (or holding) more columns or rows than the limits is refused before its rows
    are read into memory. Regression: a sheet declaring 16,384 columns made every row 16,384 cells."""
    sheet = _sheet_xml(dimension, rows)
    if not dimension:
        sheet = sheet.replace('<dimension ref=""/>', "")

    with pytest.raises(FileRefused) as refused:
        imports.read_table(_workbook_with(sheet), "contacts.xlsx")

    assert str(refused.value) == message


def test_an_xlsx_at_the_width_limit_is_read():
    """Test that a sheet exactly as wide as the limit (and declaring so) is read, its last column included."""
    sheet = _sheet_xml("A1:GR2", [*TWO_ROWS[:1], (2, [("A2", "Pat Row"), ("B2", "Hyde Park Surgery"), ("GR2", "x")])])

    table = imports.read_table(_workbook_with(sheet), "contacts.xlsx")

    assert (len(table.headers), table.rows[0][:2], table.rows[0][-1]) == (200, ["Pat Row", "Hyde Park Surgery"], "x")


@pytest.mark.parametrize(
    "sheet_xml",
    [
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1">',
        "not XML at all",
        # The size is read when the workbook opens; the cut shows only while the rows are read.
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:B2"/>'
        '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Name</t>',
    ],
    ids=["sheet cut short", "sheet not XML", "rows cut short"],
)
def test_an_xlsx_whose_sheet_is_damaged_is_refused(sheet_xml):
    """Test that a workbook that opens but whose sheet cannot be parsed is refused with the usual message.
    Regression: the parse error surfaced while the rows were read, as a traceback."""
    with pytest.raises(FileRefused) as refused:
        imports.read_table(_workbook_with(sheet_xml), "contacts.xlsx")

    assert str(refused.value) == "The file is not an Excel workbook (.xlsx) that can be read."
