"""The NHS GP practice directory (the ODS epraccur file) and each branch's GP patch.

The real file (../shared/data/epraccur.csv) is imported once per module into a template database that each test
copies; everything the tests expect of it is computed from the file itself with csv and phonenumbers.
"""

import copy
import csv
import io
import json
import sqlite3
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import phonenumbers
import pytest

from crm import clock, contacts, db, directory, users
from crm.access import COMMAND_LINE
from crm.directory import DirectoryFileError, ImportSummary
from crm.errors import NotFound, PermissionDenied, ValidationError
from tests.conftest import PASSWORD, World

FROZEN = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
STAMP = "2026-03-02T10:30:00Z"
LATER = datetime(2026, 3, 9, 9, 15, tzinfo=UTC)
LATER_STAMP = "2026-03-09T09:15:00Z"
OLD_STATUS = {"A": "active", "C": "closed", "D": "dormant", "P": "proposed"}
NOT_YOURS = "That branch does not exist or is not one of yours."
NOT_YOUR_ROLE = "Your role does not allow this."
NO_PATCH = "GP patch coverage: no patch set (an administrator sets it under Regions and branches)"


# ---------------------------------------------------------------------------------------------------- helpers


def copy_database(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as origin, sqlite3.connect(target) as copied:
        origin.backup(copied)
    origin.close()
    copied.close()


def dump(database) -> list[str]:
    """Every table's schema and rows, as SQL text: equal dumps mean an unchanged database."""
    return list(database.conn.iterdump())


def organisation_rows(database) -> list[tuple]:
    return database.execute("SELECT * FROM organisations ORDER BY id").fetchall()


def audit_after(database, last_id: int) -> list[dict]:
    rows = database.execute_returning_dicts(
        "SELECT at, user_id, username, action, table_name, row_id, changes FROM audit_log WHERE id > ? ORDER BY id",
        [last_id],
    )
    return [{**row, "changes": json.loads(row["changes"])} for row in rows]


def last_audit_id(database) -> int:
    return database.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()[0]


def to_csv(rows: list[list[str]]) -> bytes:
    """Rows written the way the NHS publishes epraccur: every field quoted, CRLF line ends."""
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def practice_row(
    code: str,
    name: str,
    postcode: str,
    status: str = "A",
    commissioner: str = "15F",
    phone: str = "",
    setting: str = "4",
    opened: str = "19740401",
    closed: str = "",
) -> list[str]:
    """One epraccur row (27 columns) with the columns the app reads filled in."""
    row = [""] * 27
    row[0], row[1], row[2], row[3] = code, name, "Y63", "QHM"
    row[4], row[5], row[6], row[7], row[9] = "THE HEALTH CENTRE", "1 HIGH STREET", "LEEDS", "WEST YORKSHIRE", postcode
    row[10], row[11], row[12], row[13], row[14] = opened, closed, status, "B", commissioner
    row[17], row[21], row[25] = phone, "0", setting
    return row


def phone_columns(raw: str) -> tuple[str | None, str | None, str | None]:
    """(phone, phone_ext, phone_raw) as the directory should store the published number, by phonenumbers."""
    raw = raw.strip()
    if not raw:
        return None, None, None
    try:
        number = phonenumbers.parse(raw, "GB")
    except phonenumbers.NumberParseException:
        return None, None, raw
    if not phonenumbers.is_valid_number(number):
        return None, None, raw
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), number.extension or None, None


def is_valid_phone(raw: str) -> bool:
    return phone_columns(raw)[0] is not None


# ---------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def epraccur_bytes(epraccur_path) -> bytes:
    return epraccur_path.read_bytes()


@pytest.fixture(scope="module")
def epraccur_rows(epraccur_bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(epraccur_bytes.decode("utf-8"), newline="")))


@pytest.fixture(scope="module")
def gp_rows(epraccur_rows) -> list[list[str]]:
    """The file's GP practices: the rows whose prescribing setting (column 26) is 4."""
    return [row for row in epraccur_rows if row[25] == "4"]


@pytest.fixture(scope="module")
def blank(tmp_path_factory) -> Path:
    """A database with only its first administrator (hashing a password is slow, so built once)."""
    path = tmp_path_factory.mktemp("directory_blank") / "crm.db"
    database = db.connect(path)
    users.create_first_admin(database, "ada", "Ada Admin", PASSWORD)
    database.close()
    return path


@pytest.fixture(scope="module")
def imported(blank, epraccur_bytes, tmp_path_factory) -> tuple[Path, ImportSummary]:
    """The blank database with the real epraccur file imported by the administrator at FROZEN, built once."""
    path = tmp_path_factory.mktemp("directory_imported") / "crm.db"
    copy_database(blank, path)
    database = db.connect(path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clock, "now", lambda: FROZEN)
        summary = directory.import_gp_practices(database, users.sign_in(database, "ada", PASSWORD), epraccur_bytes)
    database.close()
    return path, summary


@pytest.fixture
def fresh(blank, tmp_path, monkeypatch):
    """A copy of the blank database, clock stopped at FROZEN; yields (database, administrator)."""
    copy_database(blank, tmp_path / "crm.db")
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    database = db.connect(tmp_path / "crm.db")
    yield database, users.sign_in(database, "ada", PASSWORD)
    database.close()


@pytest.fixture
def directory_db(imported, tmp_path, monkeypatch):
    """A copy of the database holding the real directory, clock stopped a week after the import; yields
    (database, administrator)."""
    copy_database(imported[0], tmp_path / "crm.db")
    monkeypatch.setattr(clock, "now", lambda: LATER)
    database = db.connect(tmp_path / "crm.db")
    yield database, users.sign_in(database, "ada", PASSWORD)
    database.close()


@pytest.fixture
def world(template, tmp_path, monkeypatch) -> World:
    """A copy of the template world on its own file, with the clock stopped at FROZEN."""
    path, built = template
    copy_database(path, tmp_path / "crm.db")
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    scene = copy.copy(built)
    scene.db = db.connect(tmp_path / "crm.db")
    yield scene
    scene.db.close()


# The small directory the patch tests use: Leeds' patch is district LS6 plus commissioner 03Q. The world's own
# Hyde Park Surgery (added by hand, LS6 1AA) is an active GP practice in LS6 too.
SMALL = [
    practice_row("Y00001", "HYDE PARK MEDICAL", "LS6 1AB", phone="0113 496 0001"),
    practice_row("Y00002", "HEADINGLEY SURGERY", "LS6 3EF", phone="0113 496 0002"),
    practice_row("Y00003", "WOODHOUSE PRACTICE", "LS6 9ZZ", status="C", closed="20190331", phone="0113 496 0003"),
    practice_row("Y00004", "MEANWOOD PRACTICE", "LS6 4AA", status="D", phone="0113 496 0004"),
    practice_row("Y00005", "CHAPEL ALLERTON SURGERY", "LS7 4AB", phone="0113 496 0005"),
    practice_row("Y00006", "CITY SURGERY", "YO1 7HH", commissioner="03Q", phone="01904 12345"),
    practice_row("Y00007", "LS6 PHARMACY HUB", "LS6 2ZZ", setting="0", phone="0113 496 0007"),
    practice_row("Y00008", "WAKEFIELD PRACTICE", "WF1 1AA", commissioner="03R", phone="01924 496000"),
]


@pytest.fixture
def small_directory(world) -> dict[str, int]:
    """The SMALL directory imported into the world; returns {ODS code: organisation id}."""
    directory.import_gp_practices(world.db, world.admin, to_csv(SMALL))
    return dict(world.db.execute("SELECT ods_code, id FROM organisations WHERE ods_code IS NOT NULL").fetchall())


# ---------------------------------------------------------------------------------------------------- the real file


def test_import_counts_practices_by_status_as_the_file_says(imported, epraccur_rows, gp_rows):
    """Test that importing the real file adds every row whose column 26 is "4" as a GP practice, with the status
    the file gives (A active, C closed, D dormant, P proposed), and skips every other row."""
    path, summary = imported
    database = db.connect(path)
    expected_counts = Counter(OLD_STATUS[row[12]] for row in gp_rows)

    assert directory.status_counts(database) == dict(expected_counts)
    assert summary == ImportSummary(
        added=len(gp_rows),
        updated=0,
        unchanged=0,
        closed=expected_counts["closed"] + expected_counts["dormant"],
        skipped=len(epraccur_rows) - len(gp_rows),
        invalid_phones=[row[0] for row in gp_rows if row[17].strip() and not is_valid_phone(row[17])],
    )
    stored = dict(database.execute("SELECT ods_code, status FROM organisations WHERE ods_code IS NOT NULL").fetchall())
    assert stored == {row[0]: OLD_STATUS[row[12]] for row in gp_rows}
    database.close()


def test_import_stores_phones_as_phonenumbers_reads_them(imported, gp_rows):
    """Test that a valid published number is stored as E.164 (phone_raw empty), an invalid one is kept as
    published in phone_raw with phone NULL and its ODS code listed in the summary, and an empty one stays empty."""
    path, summary = imported
    database = db.connect(path)
    stored = {
        row[0]: tuple(row[1:])
        for row in database.execute(
            "SELECT ods_code, phone, phone_ext, phone_raw FROM organisations WHERE ods_code IS NOT NULL"
        )
    }

    assert stored == {row[0]: phone_columns(row[17]) for row in gp_rows}
    invalid = [row[0] for row in gp_rows if row[17].strip() and not is_valid_phone(row[17])]
    assert summary.invalid_phones == invalid
    assert invalid, "the real file has invalid numbers; this test must see some"
    assert sorted(code for code, (phone, _, raw) in stored.items() if raw is not None and phone is None) == sorted(
        invalid
    )
    database.close()


def test_import_stores_whole_practice_record_and_audits_it(imported, gp_rows):
    """Test that a closed practice's whole organisation record is what its line says (name, address joined,
    postcode, dates as ISO, commissioner, status), and that its creation and the import itself are audited."""
    path, summary = imported
    database = db.connect(path)
    row = next(r for r in gp_rows if r[0] == "A81003")
    record = database.execute_returning_dicts("SELECT * FROM organisations WHERE ods_code = 'A81003'")[0]
    admin_id = database.execute("SELECT id FROM users WHERE username = 'ada'").fetchone()[0]

    assert row[1:13] == [
        "VICTORIA MEDICAL PRACTICE",
        "Y54",
        "Q74",
        "THE HEALTH CENTRE",
        "VICTORIA ROAD",
        "HARTLEPOOL",
        "CLEVELAND",
        "",
        "TS26 8DB",
        "19740401",
        "20171031",
        "C",
    ]
    expected = {
        "id": record["id"],
        "name": "VICTORIA MEDICAL PRACTICE",
        "type_code": "GP_PRACTICE",
        "address": "THE HEALTH CENTRE, VICTORIA ROAD, HARTLEPOOL, CLEVELAND",
        "postcode": "TS26 8DB",
        "phone": "+441429272945",
        "phone_ext": None,
        "email": None,
        "website": "",
        "ods_code": "A81003",
        "created_at": STAMP,
        "created_by": admin_id,
        "updated_at": STAMP,
        "version": 1,
        "status": "closed",
        "commissioner_code": "00K",
        "opened_on": "1974-04-01",
        "closed_on": "2017-10-31",
        "phone_raw": None,
        "postcode_district": "TS26",
    }
    assert record == expected
    created = [entry for entry in audit_after(database, 0) if entry["table_name"] == "organisations"]
    mine = [entry for entry in created if entry["row_id"] == record["id"] and entry["table_name"] == "organisations"]
    assert mine == [
        {
            "at": STAMP,
            "user_id": admin_id,
            "username": "ada",
            "action": "create",
            "table_name": "organisations",
            "row_id": record["id"],
            "changes": {
                key: expected[key]
                for key in ("ods_code", "name", "address", "postcode", "phone", "phone_ext", "phone_raw")
                + ("commissioner_code", "opened_on", "closed_on", "status")
            },
        }
    ]
    assert created[-1] == {
        "at": STAMP,
        "user_id": admin_id,
        "username": "ada",
        "action": "import_gp_practices",
        "table_name": "organisations",
        "row_id": None,
        "changes": summary.as_dict(),
    }
    assert len(created) == len(gp_rows) + 1
    database.close()


def test_reimporting_the_same_file_changes_nothing(directory_db, epraccur_bytes, gp_rows, imported):
    """Test that importing the same bytes again reports every practice unchanged, leaves every organisation row
    exactly as it was, and adds only the audit entry for the import itself."""
    database, admin = directory_db
    before = organisation_rows(database)
    last = last_audit_id(database)

    summary = directory.import_gp_practices(database, admin, epraccur_bytes)

    assert summary == ImportSummary(
        added=0,
        updated=0,
        unchanged=len(gp_rows),
        closed=0,
        skipped=imported[1].skipped,
        invalid_phones=imported[1].invalid_phones,
    )
    assert organisation_rows(database) == before
    assert audit_after(database, last) == [
        {
            "at": LATER_STAMP,
            "user_id": admin.id,
            "username": "ada",
            "action": "import_gp_practices",
            "table_name": "organisations",
            "row_id": None,
            "changes": summary.as_dict(),
        }
    ]


def test_a_changed_row_is_updated_and_audited_and_nothing_else_changes(directory_db, epraccur_bytes, gp_rows, imported):
    """Test that a file in which one practice's name and status changed updates that practice alone (new
    name, closed, version 2, updated_at now), counts it as updated and closed, and audits the change."""
    database, admin = directory_db
    lines = epraccur_bytes.split(b"\r\n")
    index = next(i for i, line in enumerate(lines) if line.startswith(b'"A81002",'))
    assert lines[index].startswith(b'"A81002","QUEENS PARK MEDICAL CENTRE",')
    edited = lines[index].replace(b'"QUEENS PARK MEDICAL CENTRE"', b'"QUEENS PARK HEALTH CENTRE"')
    edited = edited.replace(b'"19740401","","A",', b'"19740401","","C",')
    assert edited.count(b'"C"') == 1
    changed = b"\r\n".join([*lines[:index], edited, *lines[index + 1 :]])
    before = {row[0]: row for row in organisation_rows(database)}
    practice_id = database.execute("SELECT id FROM organisations WHERE ods_code = 'A81002'").fetchone()[0]
    last = last_audit_id(database)

    summary = directory.import_gp_practices(database, admin, changed)

    assert summary == ImportSummary(
        added=0,
        updated=1,
        unchanged=len(gp_rows) - 1,
        closed=1,
        skipped=imported[1].skipped,
        invalid_phones=imported[1].invalid_phones,
    )
    after = {row[0]: row for row in organisation_rows(database)}
    assert [i for i in after if after[i] != before[i]] == [practice_id]
    assert database.execute_returning_dicts(
        "SELECT name, status, updated_at, version, created_at FROM organisations WHERE id = ?", [practice_id]
    ) == [
        {
            "name": "QUEENS PARK HEALTH CENTRE",
            "status": "closed",
            "updated_at": LATER_STAMP,
            "version": 2,
            "created_at": STAMP,
        }
    ]
    assert audit_after(database, last) == [
        {
            "at": LATER_STAMP,
            "user_id": admin.id,
            "username": "ada",
            "action": "update",
            "table_name": "organisations",
            "row_id": practice_id,
            "changes": {
                "name": ["QUEENS PARK MEDICAL CENTRE", "QUEENS PARK HEALTH CENTRE"],
                "status": ["active", "closed"],
            },
        },
        {
            "at": LATER_STAMP,
            "user_id": admin.id,
            "username": "ada",
            "action": "import_gp_practices",
            "table_name": "organisations",
            "row_id": None,
            "changes": summary.as_dict(),
        },
    ]


def newer_export(rows: list[list[str]]) -> bytes:
    """The file as the ODS Data Search and Export service writes it: ACTIVE/INACTIVE, role codes in column 26."""
    rewritten = []
    for row in rows:
        row = list(row)
        row[12] = "ACTIVE" if row[12] in ("A", "P") else "INACTIVE"
        row[25] = "RO76" if row[25] == "4" else "RO177"
        rewritten.append(row)
    return to_csv(rewritten)


def test_the_newer_export_form_imports_the_same_practices(fresh, imported, epraccur_rows, gp_rows):
    """Test that the newer export form (ACTIVE/INACTIVE, RO76 in column 26) imports exactly the practices the
    older form does, field for field, INACTIVE ones (closed or dormant in the older form) as closed."""
    database, admin = fresh
    columns = "ods_code, name, type_code, address, postcode, phone, phone_ext, phone_raw, commissioner_code, "
    columns += "opened_on, closed_on, status, postcode_district"
    old = db.connect(imported[0])
    expected = [
        {**row, "status": "closed" if row["status"] == "dormant" else row["status"]}
        for row in old.execute_returning_dicts(f"SELECT {columns} FROM organisations ORDER BY ods_code")
    ]
    old.close()

    summary = directory.import_gp_practices(database, admin, newer_export(epraccur_rows))

    assert database.execute_returning_dicts(f"SELECT {columns} FROM organisations ORDER BY ods_code") == expected
    assert summary == ImportSummary(
        added=len(gp_rows),
        updated=0,
        unchanged=0,
        closed=imported[1].closed,
        skipped=imported[1].skipped,
        invalid_phones=imported[1].invalid_phones,
    )


def test_the_newer_form_updates_a_directory_imported_from_the_older_form(directory_db, epraccur_rows, gp_rows):
    """Test that importing the newer form over the older one changes only the dormant practices (to closed)."""
    database, admin = directory_db
    dormant = {row[0] for row in gp_rows if row[12] == "D"}

    summary = directory.import_gp_practices(database, admin, newer_export(epraccur_rows))

    assert (summary.added, summary.updated, summary.unchanged, summary.closed) == (
        0,
        len(dormant),
        len(gp_rows) - len(dormant),
        len(dormant),
    )
    assert dict(Counter(r[0] for r in database.execute("SELECT status FROM organisations"))) == {
        "active": sum(row[12] == "A" for row in gp_rows),
        "closed": sum(row[12] in ("C", "D") for row in gp_rows),
    }


# ---------------------------------------------------------------------------------------------------- refused files


def _replace_field(line: bytes, index: int, value: bytes) -> bytes:
    row = next(csv.reader([line.decode("utf-8")]))
    row[index] = value.decode("utf-8")
    return to_csv([row]).rstrip(b"\r\n")


def _gp_line_numbers(epraccur_bytes: bytes) -> list[int]:
    return [i for i, line in enumerate(epraccur_bytes.split(b"\r\n"), start=1) if line.endswith(b',"4",""')]


MALFORMED = {
    "26 columns": lambda line: line.rsplit(b",", 1)[0],
    "bad opening date": lambda line: _replace_field(line, 10, b"20191301"),
    "bad closing date": lambda line: _replace_field(line, 11, b"31/10/2017"),
    "unknown status": lambda line: _replace_field(line, 12, b"X"),
    "no ODS code": lambda line: _replace_field(line, 0, b" "),
    "stray quote": lambda line: line.replace(b'","', b'"x,"', 1),
}
MALFORMED_MESSAGES = {
    "26 columns": "Line {}: expected 27 columns, found 26. Is this the NHS epraccur file?",
    "bad opening date": "Line {}: “20191301” is not a date in the form YYYYMMDD.",
    "bad closing date": "Line {}: “31/10/2017” is not a date in the form YYYYMMDD.",
    "unknown status": "Line {}: “X” is not a status this app knows (A, C, D, P, ACTIVE, INACTIVE).",
    "no ODS code": "Line {}: the ODS code (column 1) is empty.",
    "stray quote": "Line {}: the file is not valid CSV (',' expected after '\"').",
}


@pytest.mark.parametrize("fault", list(MALFORMED))
def test_a_malformed_line_refuses_the_whole_file(world, epraccur_bytes, fault):
    """Test that one malformed GP practice line far into the real file refuses the file with a message naming
    that line, and leaves the database exactly as it was."""
    lines = epraccur_bytes.split(b"\r\n")
    number = _gp_line_numbers(epraccur_bytes)[5000]
    lines[number - 1] = MALFORMED[fault](lines[number - 1])
    before = dump(world.db)

    with pytest.raises(DirectoryFileError) as refused:
        directory.import_gp_practices(world.db, world.admin, b"\r\n".join(lines))

    assert str(refused.value) == MALFORMED_MESSAGES[fault].format(number)
    assert dump(world.db) == before


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'"Y1","A"\r\n' + b"x" * (20 * 1024 * 1024), "The file is larger than 20 MB."),
        (
            to_csv(SMALL[:2]) + b'"Y00009","CAF\x81 SURGERY"\r\n',
            "The file is not text (neither UTF-8 nor Windows-1252).",
        ),
        (
            to_csv(SMALL[:2]) + b'"Y00009","NEVER CLOSED',
            "Line 3: the file is not valid CSV (unexpected end of data).",
        ),
        (
            b"ODS code,Name,Postcode\r\nY00001,HYDE PARK,LS6 1AB\r\n",
            "Line 1: expected 27 columns, found 3. Is this the NHS epraccur file?",
        ),
    ],
    ids=["too big", "not text", "unterminated quote", "some other CSV"],
)
def test_a_file_that_is_not_epraccur_is_refused(world, data, message):
    """Test that a file too big, not text, with an unterminated quote or of another shape is refused with an
    exact message and writes nothing."""
    before = dump(world.db)

    with pytest.raises(DirectoryFileError) as refused:
        directory.import_gp_practices(world.db, world.admin, data)

    assert str(refused.value) == message
    assert dump(world.db) == before


def test_a_refused_file_leaves_an_imported_directory_untouched(directory_db, epraccur_bytes):
    """Test that a file whose early lines change practices but whose later line is malformed changes none of
    the practices already in the directory."""
    database, admin = directory_db
    lines = epraccur_bytes.split(b"\r\n")
    lines[1] = lines[1].replace(b'"QUEENS PARK MEDICAL CENTRE"', b'"QUEENS PARK HEALTH CENTRE"')
    bad = _gp_line_numbers(epraccur_bytes)[-1]
    lines[bad - 1] = _replace_field(lines[bad - 1], 10, b"2019-04-01")
    before = dump(database)

    with pytest.raises(DirectoryFileError) as refused:
        directory.import_gp_practices(database, admin, b"\r\n".join(lines))

    assert str(refused.value) == f"Line {bad}: “2019-04-01” is not a date in the form YYYYMMDD."
    assert dump(database) == before


def _gp_practices(database) -> int:
    return database.execute("SELECT count(*) FROM organisations WHERE type_code = 'GP_PRACTICE'").fetchone()[0]


def test_progress_is_reported_every_500_rows_up_to_the_whole_file(fresh, epraccur_bytes, epraccur_rows, imported):
    """Test that the import calls progress with (rows done, rows in the file) every 500 rows, rising, and last
    with (total, total), each call after those rows were written, and that the import is the same as without."""
    database, admin = fresh
    total = len(epraccur_rows)
    calls: list[tuple[int, int]] = []
    written: list[int] = []

    def progress(done: int, rows: int) -> None:
        calls.append((done, rows))
        written.append(_gp_practices(database))

    summary = directory.import_gp_practices(database, admin, epraccur_bytes, progress=progress)

    assert total == 14_357
    assert calls == [(done, total) for done in range(500, total, 500)] + [(total, total)]
    assert written == sorted(written) and written[0] > 0 and written[-1] == imported[1].added
    assert summary == imported[1]


def test_progress_of_a_small_file_and_an_empty_one_ends_at_the_total(fresh):
    """Test that a file shorter than 500 rows reports once, (rows, rows), and one with only blank lines (0, 0)."""
    database, admin = fresh
    calls: list[tuple[int, int]] = []

    directory.import_gp_practices(database, admin, to_csv(SMALL), progress=lambda *call: calls.append(call))
    directory.import_gp_practices(database, admin, b"\r\n\r\n", progress=lambda *call: calls.append(call))

    assert calls == [(len(SMALL), len(SMALL)), (0, 0)]


def test_a_bad_row_at_the_end_of_the_file_is_refused_before_anything_is_written(fresh, epraccur_bytes, tmp_path):
    """Test that a malformed practice in the last rows of the real file is refused before any row is written or
    progress reported, without waiting for the write lock: another user's save holding it does not delay the
    refusal (an import that read the file inside its transaction would wait for that save, then fail)."""
    database, admin = fresh
    lines = epraccur_bytes.split(b"\r\n")
    bad = _gp_line_numbers(epraccur_bytes)[-1]
    lines[bad - 1] = _replace_field(lines[bad - 1], 12, b"X")
    before = dump(database)
    seen: list[tuple[int, int]] = []
    other_writer = db.connect(tmp_path / "crm.db")
    other_writer.conn.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DirectoryFileError) as refused:
            directory.import_gp_practices(
                database, admin, b"\r\n".join(lines), progress=lambda done, total: seen.append((done, total))
            )
    finally:
        other_writer.conn.execute("ROLLBACK")
        other_writer.close()

    assert str(refused.value) == f"Line {bad}: “X” is not a status this app knows (A, C, D, P, ACTIVE, INACTIVE)."
    assert bad > 14_000 and seen == []
    assert database.conn.in_transaction is False
    assert _gp_practices(database) == 0
    assert dump(database) == before


@pytest.mark.parametrize("who", ["lead_north", "manager_leeds"])
def test_only_administrators_import_the_directory(world, who):
    """Test that a regional lead or a branch manager is refused the import and nothing is written."""
    before = dump(world.db)

    with pytest.raises(PermissionDenied) as refused:
        directory.import_gp_practices(world.db, getattr(world, who), to_csv(SMALL))

    assert str(refused.value) == NOT_YOUR_ROLE
    assert dump(world.db) == before


def test_the_command_line_actor_may_import(world):
    """Test that the command line (full rights, no user id) imports, and is named in the audit log."""
    summary = directory.import_gp_practices(world.db, COMMAND_LINE, to_csv(SMALL))

    assert summary == ImportSummary(added=7, closed=2, skipped=1, invalid_phones=["Y00006"])
    assert world.db.execute(
        "SELECT count(*), min(created_by), max(created_by) FROM organisations WHERE ods_code IS NOT NULL"
    ).fetchone() == (7, None, None)
    assert world.db.execute(
        "SELECT user_id, username FROM audit_log WHERE action = 'import_gp_practices'"
    ).fetchall() == [(None, "command line")]


def test_read_practices_returns_rows_and_skipped_count():
    """Test that read_practices turns a small file into whole organisation rows, skipping non-GP rows, blank
    lines, and reading Windows-1252 text."""
    data = to_csv(SMALL[5:8]) + b"\r\n" + to_csv([practice_row("Y00009", "CAF\u00c9 SURGERY", "ls6  1ab")])
    data = data.decode("utf-8").encode("cp1252")

    assert directory.read_practices(data) == (
        [
            {
                "ods_code": "Y00006",
                "name": "CITY SURGERY",
                "address": "THE HEALTH CENTRE, 1 HIGH STREET, LEEDS, WEST YORKSHIRE",
                "postcode": "YO1 7HH",
                "phone": None,
                "phone_ext": None,
                "phone_raw": "01904 12345",
                "commissioner_code": "03Q",
                "opened_on": "1974-04-01",
                "closed_on": None,
                "status": "active",
            },
            {
                "ods_code": "Y00008",
                "name": "WAKEFIELD PRACTICE",
                "address": "THE HEALTH CENTRE, 1 HIGH STREET, LEEDS, WEST YORKSHIRE",
                "postcode": "WF1 1AA",
                "phone": "+441924496000",
                "phone_ext": None,
                "phone_raw": None,
                "commissioner_code": "03R",
                "opened_on": "1974-04-01",
                "closed_on": None,
                "status": "active",
            },
            {
                "ods_code": "Y00009",
                "name": "CAF\u00c9 SURGERY",
                "address": "THE HEALTH CENTRE, 1 HIGH STREET, LEEDS, WEST YORKSHIRE",
                "postcode": "LS6  1AB",
                "phone": None,
                "phone_ext": None,
                "phone_raw": None,
                "commissioner_code": "15F",
                "opened_on": "1974-04-01",
                "closed_on": None,
                "status": "active",
            },
        ],
        1,
    )


# ---------------------------------------------------------------------------------------------------- the patch


@pytest.mark.parametrize(
    ("districts", "commissioners", "message"),
    [
        ("LS6 2AB", "", "Postcode districts: “2AB” is not valid (for example LS6)."),
        ("LS", "", "Postcode districts: “LS” is not valid (for example LS6)."),
        ("LS6, 16LS", "", "Postcode districts: “16LS” is not valid (for example LS6)."),
        ("LS6.", "", "Postcode districts: “LS6.” is not valid (for example LS6)."),
        ("", "15", "Commissioner codes: “15” is not valid (for example 15F)."),
        ("", "15F-X", "Commissioner codes: “15F-X” is not valid (for example 15F)."),
        ("", "15F 03QQQQ", "Commissioner codes: “03QQQQ” is not valid (for example 15F)."),
        ("LS6", "15F; 1=1", "Commissioner codes: “1=1” is not valid (for example 15F)."),
    ],
)
def test_parse_patch_refuses_bad_values(districts, commissioners, message):
    """Test that a value that is not a postcode district or a commissioner code is refused by name."""
    with pytest.raises(ValidationError) as refused:
        directory.parse_patch(districts, commissioners)

    assert str(refused.value) == message


def test_parse_patch_reads_lists_in_any_separator_and_case():
    """Test that districts and codes may be separated by commas, semicolons or spaces, in any case, repeated."""
    assert directory.parse_patch("ls6; LS7,,LS16  ls6\nEC1A", " 15f 03G,15F ") == [
        ("commissioner", "03G"),
        ("commissioner", "15F"),
        ("postcode_district", "EC1A"),
        ("postcode_district", "LS16"),
        ("postcode_district", "LS6"),
        ("postcode_district", "LS7"),
    ]
    assert directory.parse_patch("", "") == []
    assert directory.parse_patch(None, None) == []


def test_set_patch_replaces_the_patch_and_audits_it(world):
    """Test that set_patch stores the parsed patch, replaces the previous one, and audits each change."""
    directory.set_patch(world.db, world.admin, world.leeds, "LS6, LS7", "15F")
    directory.set_patch(world.db, world.admin, world.leeds, "ls16 ls6", "")

    assert world.db.execute("SELECT branch_id, kind, value FROM branch_patch ORDER BY value").fetchall() == [
        (world.leeds, "postcode_district", "LS16"),
        (world.leeds, "postcode_district", "LS6"),
    ]
    assert directory.patch_of(world.db, world.leeds) == {"postcode_district": "LS16, LS6", "commissioner": ""}
    entries = world.db.execute_returning_dicts(
        "SELECT action, table_name, row_id, changes FROM audit_log WHERE table_name = 'branch_patch' ORDER BY id"
    )
    assert [{**e, "changes": json.loads(e["changes"])} for e in entries] == [
        {
            "action": "update",
            "table_name": "branch_patch",
            "row_id": world.leeds,
            "changes": {"postcode_district": ["", "LS6, LS7"], "commissioner": ["", "15F"]},
        },
        {
            "action": "update",
            "table_name": "branch_patch",
            "row_id": world.leeds,
            "changes": {"postcode_district": ["LS6, LS7", "LS16, LS6"], "commissioner": ["15F", ""]},
        },
    ]


def test_set_patch_with_a_bad_value_keeps_the_old_patch(world):
    """Test that a refused patch leaves the branch's previous patch and the audit log as they were."""
    directory.set_patch(world.db, world.admin, world.leeds, "LS6", "15F")
    before = dump(world.db)

    with pytest.raises(ValidationError) as refused:
        directory.set_patch(world.db, world.admin, world.leeds, "LS7, LS 8", "")

    assert str(refused.value) == "Postcode districts: “LS” is not valid (for example LS6)."
    assert dump(world.db) == before


@pytest.mark.parametrize(
    ("who", "branch", "error", "message"),
    [
        ("manager_leeds", "leeds", PermissionDenied, NOT_YOUR_ROLE),
        ("lead_north", "leeds", PermissionDenied, NOT_YOUR_ROLE),
        ("admin", "missing", NotFound, NOT_YOURS),
    ],
)
def test_set_patch_is_for_administrators_and_real_branches(world, who, branch, error, message):
    """Test that only an administrator sets a patch, and only for a branch that exists."""
    branch_id = 9999 if branch == "missing" else getattr(world, branch)
    before = dump(world.db)

    with pytest.raises(error) as refused:
        directory.set_patch(world.db, getattr(world, who), branch_id, "LS6", "")

    assert str(refused.value) == message
    assert dump(world.db) == before


def _patch_scene(world, ids: dict[str, int]) -> dict[str, int]:
    """Leeds' patch (LS6 and commissioner 03Q) and contacts that must and must not count towards it."""
    directory.set_patch(world.db, world.admin, world.leeds, "LS6", "03Q")
    made = {
        "named": world.contact(world.leeds, "Nora Named", ids["Y00001"]),
        "not_named": world.contact(world.leeds, "Ned Notnamed", ids["Y00002"], is_named_contact=False),
        "left": world.contact(world.leeds, "Lena Left", ids["Y00006"]),
        "other_branch": world.contact(world.york, "Yusuf York", ids["Y00002"]),
        "at_closed": world.contact(world.leeds, "Clara Closed", ids["Y00003"]),
        "at_dormant": world.contact(world.leeds, "Dora Dormant", ids["Y00004"]),
        "outside": world.contact(world.leeds, "Oscar Outside", ids["Y00005"]),
    }
    contacts.mark_left(world.db, world.admin, made["left"], expected_version=1)
    return made


def test_patch_practices_lists_active_practices_with_named_contact_flag(world, small_directory):
    """Test that a branch's patch holds the active GP practices in its districts or of its commissioners (one
    added by hand, without an ODS code, too), closed and dormant ones left out, each flagged by whether the
    branch itself has an active named contact there (not another branch's contact, not a contact who left, not
    one who is not a named contact)."""
    ids = small_directory
    _patch_scene(world, ids)

    assert directory.patch_practices(world.db, world.manager_leeds, world.leeds) == [
        {
            "id": ids["Y00006"],
            "name": "CITY SURGERY",
            "ods_code": "Y00006",
            "postcode": "YO1 7HH",
            "phone": None,
            "phone_ext": None,
            "phone_raw": "01904 12345",
            "has_named_contact": 0,
            "phone_display": "01904 12345",
        },
        {
            "id": ids["Y00002"],
            "name": "HEADINGLEY SURGERY",
            "ods_code": "Y00002",
            "postcode": "LS6 3EF",
            "phone": "+441134960002",
            "phone_ext": None,
            "phone_raw": None,
            "has_named_contact": 0,
            "phone_display": "0113 496 0002",
        },
        {
            "id": world.gp,
            "name": "Hyde Park Surgery",
            "ods_code": None,
            "postcode": "LS6 1AA",
            "phone": "+441134960001",
            "phone_ext": None,
            "phone_raw": None,
            "has_named_contact": 0,
            "phone_display": "0113 496 0001",
        },
        {
            "id": ids["Y00001"],
            "name": "HYDE PARK MEDICAL",
            "ods_code": "Y00001",
            "postcode": "LS6 1AB",
            "phone": "+441134960001",
            "phone_ext": None,
            "phone_raw": None,
            "has_named_contact": 1,
            "phone_display": "0113 496 0001",
        },
    ]
    assert directory.patch_coverage(world.db, world.manager_leeds, world.leeds) == (1, 4)
    covered, total = directory.patch_coverage(world.db, world.admin, world.leeds)
    assert directory.coverage_text(covered, total) == "GP patch coverage: 1 of 4 practices (25%)"


def test_patch_coverage_follows_contacts_and_practice_status(world, small_directory):
    """Test that coverage rises when the branch names a contact at an uncovered practice, and that a practice
    that closes leaves the patch (and its contact stops counting)."""
    ids = small_directory
    _patch_scene(world, ids)
    world.contact(world.leeds, "Hana Headingley", ids["Y00002"])
    assert directory.patch_coverage(world.db, world.admin, world.leeds) == (2, 4)

    closing = [row if row[0] != "Y00001" else practice_row("Y00001", row[1], row[9], status="C") for row in SMALL]
    directory.import_gp_practices(world.db, world.admin, to_csv(closing))

    assert directory.patch_coverage(world.db, world.admin, world.leeds) == (1, 3)
    assert directory.coverage_text(1, 3) == "GP patch coverage: 1 of 3 practices (33%)"


def test_patch_coverage_by_branch_agrees_with_each_branch(world, small_directory):
    """Test that the one-query coverage of every branch in scope matches patch_coverage branch by branch, and
    lists only branches with a patch that the actor may see."""
    ids = small_directory
    _patch_scene(world, ids)
    directory.set_patch(world.db, world.admin, world.york, "LS6", "")
    directory.set_patch(world.db, world.admin, world.bristol, "BS1", "")

    by_branch = directory.patch_coverage_by_branch(world.db, world.admin)

    assert by_branch == {world.leeds: (1, 4), world.york: (1, 3)}
    assert by_branch == {b: directory.patch_coverage(world.db, world.admin, b) for b in (world.leeds, world.york)}
    assert directory.patch_coverage(world.db, world.admin, world.bristol) == (0, 0)
    assert directory.patch_coverage_by_branch(world.db, world.manager_york) == {world.york: (1, 3)}
    assert directory.patch_coverage_by_branch(world.db, world.lead_south) == {}


def test_no_patch_means_no_coverage(world, small_directory):
    """Test that a branch without a patch has no practices and says that no patch is set."""
    assert directory.patch_practices(world.db, world.admin, world.bristol) == []
    assert directory.patch_coverage(world.db, world.admin, world.bristol) == (0, 0)
    assert directory.coverage_text(0, 0, patch_set=False) == NO_PATCH


@pytest.mark.parametrize(
    ("covered", "total", "text"),
    [
        (1, 2, "GP patch coverage: 1 of 2 practices (50%)"),
        (0, 3, "GP patch coverage: 0 of 3 practices (0%)"),
        (2, 3, "GP patch coverage: 2 of 3 practices (67%)"),
        (41, 41, "GP patch coverage: 41 of 41 practices (100%)"),
        (23, 41, "GP patch coverage: 23 of 41 practices (56%)"),
        (199, 200, "GP patch coverage: 199 of 200 practices (99%)"),
        (0, 0, "GP patch coverage: no active GP practices in the patch (is the NHS GP directory imported?)"),
    ],
)
def test_coverage_text(covered, total, text):
    """Test the sentence the GP patch page and the patch form show (100% only when every practice is covered)."""
    assert directory.coverage_text(covered, total) == text


def test_coverage_text_without_a_patch():
    """Test that a branch with no patch is told so, not shown a coverage of nothing."""
    assert directory.coverage_text(0, 0, patch_set=False) == NO_PATCH


@pytest.mark.parametrize("who", ["manager_york", "manager_bristol", "lead_south"])
def test_another_branchs_patch_is_not_found(world, small_directory, who):
    """Test that a branch manager (or a lead of another region) cannot read Leeds' patch: NotFound, the same
    answer as for a branch that does not exist."""
    _patch_scene(world, small_directory)
    actor = getattr(world, who)

    with pytest.raises(NotFound) as practices_refused:
        directory.patch_practices(world.db, actor, world.leeds)
    with pytest.raises(NotFound) as coverage_refused:
        directory.patch_coverage(world.db, actor, world.leeds)

    assert str(practices_refused.value) == str(coverage_refused.value) == NOT_YOURS


@pytest.mark.parametrize("who", ["admin", "lead_north", "manager_leeds"])
def test_those_in_scope_read_the_same_patch(world, small_directory, who):
    """Test that the administrator, the region's lead and the branch's manager all see Leeds' coverage."""
    _patch_scene(world, small_directory)

    assert directory.patch_coverage(world.db, getattr(world, who), world.leeds) == (1, 4)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (1, "CAFE\ufffe SURGERY", "Line 3: Name (column 2): character 5 (U+FFFE) is not allowed."),
        (4, "THE \x01 CENTRE", "Line 3: Address (columns 5 to 9): character 5 (U+0001) is not allowed."),
    ],
    ids=["non-character in the name", "control character in the address"],
)
def test_a_practice_holding_a_character_no_text_may_hold_refuses_the_file(world, column, value, message):
    """Test that a practice name or address holding a Unicode non-character or a control character refuses the
    file, naming the line, the column and the character, and writes nothing: such a name would break every Word
    and Excel export that names the practice."""
    row = practice_row("Y00009", "CAFE SURGERY", "LS6 1AB")
    row[column] = value
    before = dump(world.db)

    with pytest.raises(DirectoryFileError) as refused:
        directory.import_gp_practices(world.db, world.admin, to_csv([SMALL[0], SMALL[1], row]))

    assert str(refused.value) == message
    assert dump(world.db) == before
