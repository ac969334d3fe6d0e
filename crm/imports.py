"""Importing contacts from the spreadsheets branches already keep (CSV in any of Excel's encodings, or XLSX).

Three steps, the same for the page and the command line: ``read_table`` turns the file into a header and rows
(or refuses it, naming the line), ``plan`` checks every row against the database without writing anything, and
``apply`` writes the plan in one short transaction. Header text is only ever matched against the known fields
below: it never becomes a column name or SQL.
"""

import codecs
import csv
import io
import itertools
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.etree.ElementTree import ParseError

from sqlite_utils import Database

from crm import audit, clock, contacts, fields, suppressions
from crm.access import Actor, require_branch
from crm.db import insert, transaction, update_row
from crm.errors import CRMError, ValidationError

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
MAX_COLUMNS = 200
PROGRESS_EVERY = 500  # rows between calls of plan's and apply's progress callback
# Called with (rows done, rows in total) while a plan or an import runs: a page draws a progress bar with it.
Progress = Callable[[int, int], None]
# A workbook is a zip: its members may unpack to far more than the upload. Spreadsheets of contacts unpack to a
# few times their size; a zip bomb to hundreds or thousands of times.
MAX_UNPACKED_BYTES = 50 * 1024 * 1024
MAX_UNPACK_RATIO = 100
FIELDS = {
    "name": "Name",
    "job_title": "Job title",
    "phone": "Phone",
    "mobile": "Mobile",
    "email": "Email",
    "organisation": "Organisation",
    "type": "Partner type",
    "ods_code": "ODS code",
    "notes": "Notes",
    "do_not_contact": "Do not contact",
}
# The contact columns each field of the file sets. An update writes only the columns of the fields the file holds:
# a column the file does not have is never reset to the default a new contact would get.
FIELD_COLUMNS = {
    "name": ("name",),
    "job_title": ("job_title",),
    "phone": ("phone", "phone_ext"),
    "mobile": ("mobile",),
    "email": ("email",),
    "organisation": ("organisation_id",),
    "type": ("organisation_id",),
    "ods_code": ("organisation_id",),
    "notes": ("notes",),
    "do_not_contact": ("do_not_contact",),
}
YES = {"yes", "y", "true", "1", "x"}
NO = {"no", "n", "false", "0", ""}
# Usual spreadsheet headers for each field, compared lower-case with punctuation removed.
HEADER_GUESSES = {
    "name": ["name", "full name", "contact name", "contact", "person"],
    "job_title": ["job title", "role", "position", "job", "title job"],
    "phone": ["tel", "telephone", "phone", "phone number", "telephone number", "direct line", "landline", "tel no"],
    "mobile": ["mobile", "mobile number", "mob", "mobile phone", "cell"],
    "email": ["email", "e mail", "email address", "e mail address"],
    "organisation": ["organisation", "organization", "practice", "team", "practice name", "service", "company"],
    "type": ["type", "partner type", "organisation type", "organization type", "category"],
    "ods_code": ["ods code", "ods", "practice code"],
    "notes": ["notes", "note", "comments", "comment"],
    "do_not_contact": ["do not contact", "dnc", "opted out", "opt out", "no contact", "do not call"],
}
# Words people write for partner types, besides the app's own codes and labels.
TYPE_WORDS = {
    "gp": "GP_PRACTICE",
    "gp practice": "GP_PRACTICE",
    "gp surgery": "GP_PRACTICE",
    "surgery": "GP_PRACTICE",
    "pcn": "PCN",
    "ot": "COMMUNITY_THERAPY",
    "occupational therapy": "COMMUNITY_THERAPY",
    "physio": "COMMUNITY_THERAPY",
    "physiotherapy": "COMMUNITY_THERAPY",
    "reablement": "COMMUNITY_THERAPY",
    "district nurses": "COMMUNITY_NURSING",
    "district nursing": "COMMUNITY_NURSING",
    "community nursing": "COMMUNITY_NURSING",
    "social services": "LA_SOCIAL_CARE",
    "social care": "LA_SOCIAL_CARE",
    "council": "LA_SOCIAL_CARE",
    "local authority": "LA_SOCIAL_CARE",
    "social work": "LA_SOCIAL_CARE",
    "hospital": "HOSPITAL_DISCHARGE",
    "discharge": "HOSPITAL_DISCHARGE",
    "hospital discharge": "HOSPITAL_DISCHARGE",
    "mental health": "MENTAL_HEALTH",
    "cmht": "MENTAL_HEALTH",
    "icb": "ICB",
    "chc": "ICB",
    "continuing healthcare": "ICB",
    "hospice": "HOSPICE",
    "pharmacy": "PHARMACY",
    "chemist": "PHARMACY",
    "housing": "HOUSING",
    "voluntary": "VOLUNTARY_COMMUNITY",
    "charity": "VOLUNTARY_COMMUNITY",
    "community group": "VOLUNTARY_COMMUNITY",
    "other": "OTHER",
}
ON_DUPLICATE = {"skip": "Skip it", "update": "Update the existing contact", "import": "Import it anyway"}


class FileRefused(CRMError):
    """The file cannot be read as a table; nothing is imported. The message names the line."""


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]  # each as long as headers; blank rows left out
    lines: list[int]  # each row's line in the file, the header being line 1


@dataclass
class RowPlan:
    line: int
    outcome: str  # "imported", "updated", "skipped" or "error" (what apply() will do / did)
    messages: list[str] = field(default_factory=list)
    values: dict = field(default_factory=dict)  # cleaned contact values, organisation resolved or to create
    new_organisation: dict | None = None
    existing_id: int | None = None  # contact to update
    duplicate_of: int | None = None  # line of an earlier row of this file it duplicates


@dataclass
class Plan:
    branch_id: int
    rows: list[RowPlan]
    columns: tuple[str, ...] = ()  # the contact columns the file holds (FIELD_COLUMNS): all an update may write

    def summary(self) -> dict[str, int]:
        counts = {"imported": 0, "updated": 0, "skipped": 0, "errors": 0}
        for row in self.rows:
            counts["errors" if row.outcome == "error" else row.outcome] += 1
        return counts

    def report(self) -> dict:
        """The JSON report: a summary and every row's outcome with its messages."""
        return {
            "summary": self.summary(),
            "rows": [{"line": r.line, "outcome": r.outcome, "messages": r.messages} for r in self.rows],
        }


# ---------------------------------------------------------------------------------------------------- reading


def read_table(data: bytes, file_name: str = "") -> Table:
    """Read a CSV (UTF-8 with or without BOM, Windows-1252 or UTF-16; comma, semicolon or tab) or XLSX file.

    :raises FileRefused: for a file too big, not text, ragged, or with an unterminated quote, naming the line.
    """
    if len(data) > MAX_BYTES:
        raise FileRefused(
            f"The file is larger than the {MAX_BYTES // 1024 // 1024} MB limit; split it into smaller files."
        )
    if not data.strip():
        raise FileRefused("The file is empty.")
    if data[:4] == b"PK\x03\x04" or file_name.lower().endswith(".xlsx"):
        return _check_shape(_read_xlsx(data))
    return _check_shape(_read_csv(_decode(data)))


def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ["utf-16"]
    elif data.startswith(codecs.BOM_UTF8):
        encodings = ["utf-8-sig"]
    else:
        # Excel's plain "CSV" is Windows-1252; try UTF-8 first, which fails loudly on cp1252's accented bytes.
        encodings = ["utf-8", "cp1252"]
    error: UnicodeDecodeError | None = None
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as failure:
            error = failure
            if encoding.startswith("utf-8") and _UTF8_SEQUENCE.search(data):
                # Accented letters written as UTF-8 elsewhere: the file mixes encodings (a line pasted in from
                # another file). Decoding it all as Windows-1252 would import "Zoë" as "ZoÃ«" without a word.
                line = data[: failure.start].count(b"\n") + 1
                raise FileRefused(
                    f"Line {line} is not valid UTF-8, while other lines are: the file mixes two encodings. "
                    "Save it as UTF-8 (in Excel: CSV UTF-8) and try again."
                ) from None
    assert error is not None
    line = data[: error.start].count(b"\n") + 1
    raise FileRefused(f"Line {line}: the file has bytes that are not text in UTF-8, UTF-16 or Windows-1252.")


# A well-formed multi-byte UTF-8 sequence. Windows-1252 text practically never holds one (it would take a letter
# such as Â or é followed by symbols from the 0x80-0xBF range), so finding one means some of the file is UTF-8.
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


def _delimiter(text: str) -> str:
    first_line = text.split("\n", 1)[0]
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def _read_csv(text: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    rows: list[list[str]] = []
    filled = 0
    try:
        for row in reader:
            rows.append(row)
            filled += any(cell.strip() for cell in row)  # blank rows Excel leaves at the end don't count
            if filled > MAX_ROWS + 1:
                raise FileRefused(f"The file has more than {MAX_ROWS:,} rows; split it into smaller files.")
    except csv.Error as error:
        # Lines are counted as spreadsheet rows (the header is line 1), as everywhere else in the report.
        line = len(rows) + 1
        if "unexpected end of data" in str(error) or "EOF" in str(error):
            raise FileRefused(f'Line {line}: a quoted field is never closed (a " is missing).') from None
        raise FileRefused(f"Line {line}: the file is not valid CSV ({error}).") from None
    return rows


def _read_xlsx(data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook  # imported here: only XLSX uploads need it

    _check_unpacked_size(data)
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, ParseError, KeyError, ValueError, OSError):
        raise FileRefused("The file is not an Excel workbook (.xlsx) that can be read.") from None
    try:
        sheet = workbook.worksheets[0]
        # The declared size (the sheet's <dimension>): read-only rows are padded out to its width, so a sheet
        # declaring 16,384 columns would make every row 16,384 cells. Refused before any row is read.
        declared_rows, declared_columns = sheet.max_row or 0, sheet.max_column or 0
        if declared_columns > MAX_COLUMNS:
            raise _too_wide(declared_columns)
        if declared_rows > MAX_ROWS + 1:
            raise FileRefused(f"The file has more than {MAX_ROWS:,} rows; split it into smaller files.")
        rows = []
        # One column past the limit is read, so a cell beyond it (in a sheet declaring no size) is noticed.
        for row in sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS + 1):
            cells = ["" if v is None else _cell_text(v) for v in row]
            if len(cells) > MAX_COLUMNS and cells[MAX_COLUMNS]:
                raise _too_wide(MAX_COLUMNS + 1)
            rows.append(cells[:MAX_COLUMNS])
            if len(rows) > MAX_ROWS + 1:
                raise FileRefused(f"The file has more than {MAX_ROWS:,} rows; split it into smaller files.")
    except (zipfile.BadZipFile, ParseError, KeyError, ValueError):
        # Read-only sheets are parsed while the rows are read: damage shows up here, not when opening.
        raise FileRefused("The file is not an Excel workbook (.xlsx) that can be read.") from None
    finally:
        workbook.close()
    while rows and not any(rows[-1]):
        rows.pop()
    width = max((max((i + 1 for i, v in enumerate(r) if v), default=0) for r in rows), default=0)
    return [r[:width] + [""] * (width - len(r[:width])) for r in rows]


def _check_unpacked_size(data: bytes) -> None:
    """:raises FileRefused: when the workbook's members unpack to more than the limit, or to far more than a
    spreadsheet compresses (both read from the zip's directory, before anything is unpacked)."""
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise FileRefused("The file is not an Excel workbook (.xlsx) that can be read.") from None
    # zipfile never unpacks more than a member's declared size (it fails instead), so the sum is a true bound.
    unpacked = sum(member.file_size for member in members)
    if unpacked > MAX_UNPACKED_BYTES:
        raise FileRefused(
            f"The workbook unpacks to {unpacked // 1024 // 1024} MB; the limit is {MAX_UNPACKED_BYTES // 1024 // 1024} "
            "MB. Save the sheet as CSV, or split it, and try again."
        )
    if unpacked > MAX_UNPACK_RATIO * len(data):
        raise FileRefused(
            f"The workbook unpacks to {unpacked // len(data):,} times its size, far more than a spreadsheet does; "
            "it may be built to exhaust the server. Save the sheet as CSV and try again."
        )


def _too_wide(columns: int) -> FileRefused:
    return FileRefused(
        f"The sheet is {columns:,} columns wide; the limit is {MAX_COLUMNS}. Delete the columns you do not need, "
        "or save the sheet as CSV, and try again."
    )


def _cell_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _check_shape(rows: list[list[str]]) -> Table:
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise FileRefused("Line 1: the first line must hold the column headings.")
    headers = [h.strip() for h in rows[0]]
    body = []
    for index, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank lines are common at the end of spreadsheets
        if len(row) != len(headers):
            raise FileRefused(
                f"Line {index}: {len(row)} fields where the heading line has {len(headers)}. "
                "Check for a missing or extra separator or quote."
            )
        body.append((index, row))
    if len(body) > MAX_ROWS:
        raise FileRefused(f"The file has {len(body):,} rows; the limit is {MAX_ROWS:,}. Split it into smaller files.")
    return Table(headers=headers, rows=[row for _, row in body], lines=[index for index, _ in body])


# ---------------------------------------------------------------------------------------------------- mapping


def _normalise_header(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def guess_mapping(headers: list[str]) -> dict[str, str | None]:
    """For each field, the header that most likely holds it (or None)."""
    mapping: dict[str, str | None] = {}
    taken: set[str] = set()
    normalised = {h: _normalise_header(h) for h in headers}
    for name, guesses in HEADER_GUESSES.items():
        mapping[name] = next(
            (h for guess in guesses for h in headers if normalised[h] == guess and h not in taken), None
        )
        if mapping[name]:
            taken.add(mapping[name])  # type: ignore[arg-type]
    return mapping


def parse_mapping(text: str, headers: list[str]) -> dict[str, str | None]:
    """Apply "Tel=phone,Practice=organisation" on top of the guessed mapping.

    :raises ValidationError: for an unknown field or a header not in the file.
    """
    mapping = guess_mapping(headers)
    for pair in filter(None, (p.strip() for p in (text or "").split(","))):
        header, _, name = pair.partition("=")
        header, name = header.strip(), name.strip().lower()
        if name not in FIELDS:
            raise ValidationError("Map", f"“{name}” is not a field; use one of {', '.join(FIELDS)}.")
        if header not in headers:
            raise ValidationError("Map", f"the file has no column headed “{header}”.")
        for other, mapped in mapping.items():
            if mapped == header:
                mapping[other] = None
        mapping[name] = header
    return mapping


# ---------------------------------------------------------------------------------------------------- planning


def _type_code(value: str, types: dict[str, str]) -> str | None:
    key = _normalise_header(value)
    return types.get(key) or TYPE_WORDS.get(key)


def plan(
    db: Database,
    actor: Actor,
    table: Table,
    mapping: dict[str, str | None],
    branch_id: int,
    on_duplicate: str = "skip",
    progress: Progress | None = None,
) -> Plan:
    """Check every row and decide what importing it would do, without writing anything.

    ``progress(rows checked, rows in total)`` is called every PROGRESS_EVERY rows and once at the end.

    :raises NotFound: when the branch is not one the actor may import into.
    """
    if on_duplicate not in ON_DUPLICATE:
        raise ValidationError("On duplicate", f"must be one of {', '.join(ON_DUPLICATE)}.")
    if not mapping.get("name"):
        raise ValidationError("Map", "choose the column that holds each contact's name.")
    if not mapping.get("organisation") and not mapping.get("ods_code"):
        raise ValidationError("Map", "choose the column that holds the organisation (or its ODS code).")
    require_branch(db, actor, branch_id)
    columns = {name: table.headers.index(header) for name, header in mapping.items() if header}
    types = {}
    for row in db.execute("SELECT code, label FROM organisation_types"):
        types[_normalise_header(row[0])] = row[0]
        types[_normalise_header(row[1])] = row[0]
    organisations_by_name: dict[str, list[tuple[int, str]]] = {}
    organisations_by_ods: dict[str, int] = {}
    for org_id, name, type_code, ods in db.execute("SELECT id, name, type_code, ods_code FROM organisations"):
        organisations_by_name.setdefault(name.casefold(), []).append((org_id, type_code))
        if ods:
            organisations_by_ods[ods] = org_id
    existing = _existing_keys(db, branch_id)
    seen: dict[tuple, int] = {}  # duplicate keys of earlier rows in this file -> their line
    plans = []
    for done, (line, row) in enumerate(zip(table.lines, table.rows, strict=True), start=1):
        raw = {name: row[index].strip() for name, index in columns.items()}
        plans.append(
            _plan_row(
                db,
                line,
                raw,
                branch_id,
                types,
                organisations_by_name,
                organisations_by_ods,
                existing,
                seen,
                on_duplicate,
            )
        )
        _report(progress, done, len(table.rows))
    if not table.rows:
        _report(progress, 0, 0)
    held = tuple(dict.fromkeys(column for name in columns for column in FIELD_COLUMNS[name]))
    return Plan(branch_id=branch_id, rows=plans, columns=held)


def _existing_keys(db: Database, branch_id: int) -> dict[tuple, int]:
    """Duplicate-detection keys of the branch's contacts (as contacts.similar defines a duplicate)."""
    keys: dict[tuple, int] = {}
    for contact_id, name, org_id, email, phone, phone_ext, mobile in db.execute(
        "SELECT id, name, organisation_id, email, phone, phone_ext, mobile FROM contacts WHERE branch_id = ? "
        "ORDER BY id DESC",
        [branch_id],
    ):
        for key in _keys(name, org_id, email, phone, phone_ext, mobile):
            keys[key] = contact_id
    return keys


def _keys(
    name: str, org: object, email: str | None, phone: str | None, phone_ext: str | None, mobile: str | None
) -> list[tuple]:
    """The same tests as contacts.similar: name at the organisation, email, phone with extension, mobile."""
    keys: list[tuple] = [("name", name.casefold(), org)]
    if email:
        keys.append(("email", email.casefold()))
    keys += [
        ("number", number, extension or "") for number, extension in ((phone, phone_ext), (mobile, None)) if number
    ]
    return keys


def _plan_row(
    db: Database,
    line: int,
    raw: dict,
    branch_id: int,
    types: dict,
    by_name: dict,
    by_ods: dict,
    existing: dict,
    seen: dict,
    on_duplicate: str,
) -> RowPlan:
    result = RowPlan(line=line, outcome="imported")
    organisation_id: int | None = None
    new_org: dict | None = None
    type_text = raw.get("type", "")
    type_code = _type_code(type_text, types) if type_text else None
    if type_text and type_code is None:
        result.messages.append(f"Partner type: “{type_text}” is not a partner type this app knows.")
    ods = raw.get("ods_code", "").upper()
    org_name = " ".join(raw.get("organisation", "").split())
    if ods and ods in by_ods:
        organisation_id = by_ods[ods]
    elif org_name:
        candidates = by_name.get(org_name.casefold(), [])
        matching = [c for c in candidates if type_code is None or c[1] == type_code]
        if matching:
            organisation_id = matching[0][0]
        elif type_code:
            new_org = {"name": org_name, "type_code": type_code, "ods_code": ods or None}
        elif not type_text:
            result.messages.append(
                f"Organisation: “{org_name}” is not in the directory yet; give its partner type so it can be added."
            )
    else:
        result.messages.append("Organisation: is required.")
    do_not_contact = raw.get("do_not_contact", "").casefold()
    if do_not_contact not in YES | NO:
        result.messages.append(f"Do not contact: “{raw['do_not_contact']}” is not yes or no.")
    try:
        values = contacts.clean(
            {
                **{k: raw.get(k, "") for k in ("name", "job_title", "phone", "mobile", "email", "notes")},
                "phone": _phone_text(raw.get("phone", "")),
                "mobile": _phone_text(raw.get("mobile", "")),
                "organisation_id": organisation_id or 0,  # a placeholder while the organisation is still to add
                "branch_id": branch_id,
                "is_named_contact": True,
                "do_not_contact": do_not_contact in YES,
            }
        )
        fields.refuse_nhs_numbers(values, contacts.NOTES_FIELDS)
        suppressions.refuse(db, {**values, "organisation_id": organisation_id})
        if new_org:
            fields.text(new_org["name"], "Organisation")
    except CRMError as error:
        result.messages += [str(e) for e in getattr(error, "errors", [error])]
        values = {}
    if result.messages:
        result.outcome = "error"
        return result
    values["organisation_id"] = organisation_id
    result.values, result.new_organisation = values, new_org
    org_key: object = organisation_id or ("new", org_name.casefold())
    keys = _keys(values["name"], org_key, values["email"], values["phone"], values["phone_ext"], values["mobile"])
    earlier = next((seen[k] for k in keys if k in seen), None)
    match = next((existing[k] for k in keys if k in existing), None)
    if earlier is not None and on_duplicate != "import":
        result.outcome = "skipped"
        result.duplicate_of = earlier
        result.messages.append(f"Same person as line {earlier} of this file.")
    elif match is not None and on_duplicate == "skip":
        result.outcome = "skipped"
        result.messages.append("Already a contact of this branch (same email, phone, or name at the organisation).")
    elif match is not None and on_duplicate == "update":
        result.outcome = "updated"
        result.existing_id = match
        result.messages.append("Updates the existing contact with this row's values.")
    for key in keys:
        seen.setdefault(key, line)
    return result


def _phone_text(value: str) -> str:
    # Excel drops the leading zero of a UK number typed into a number cell: 1134960123 was 0113 496 0123.
    digits = value.strip()
    return "0" + digits if digits.isdigit() and len(digits) == 10 and digits[0] in "1237" else digits


# ---------------------------------------------------------------------------------------------------- writing


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
        progress(done, total)


def _report_after(
    db: Database, actor: Actor, new_contacts: list[tuple[dict, dict]], progress: Progress | None, done: int, total: int
) -> None:
    """Insert the new contacts gathered so far (``new_contacts`` is emptied), then report progress."""
    _insert_contacts(db, actor, new_contacts)
    new_contacts.clear()
    _report(progress, done, total)


def _insert_contacts(db: Database, actor: Actor, new_contacts: list[tuple[dict, dict]]) -> None:
    """Insert new contacts, in order, with one statement for each run of rows with the same columns, and audit each.

    One statement rather than one for each contact: SQLite's full-text indexes of the contacts (the search box's
    and the Contacts list's, kept by triggers) write out what they hold at the end of every statement that
    changes them, which for 10,000 contacts inserted one by one took about as long as everything else the import
    writes. A new contact's id is one more than the largest before it, so the run's ids, in order, are those
    above the largest id before the statement.
    """
    for columns, grouped in itertools.groupby(new_contacts, key=lambda pair: tuple(pair[0])):
        run = list(grouped)
        before = db.execute("SELECT coalesce(max(id), 0) FROM contacts").fetchone()[0]
        cells = ", ".join(f"value ->> {n}" for n in range(len(columns)))
        db.execute(
            f"INSERT INTO contacts ({', '.join(columns)}) SELECT {cells} FROM json_each(?) ORDER BY key",
            [json.dumps([[row[column] for column in columns] for row, _ in run], ensure_ascii=False)],
        )
        ids = [contact_id for (contact_id,) in db.execute("SELECT id FROM contacts WHERE id > ? ORDER BY id", [before])]
        if len(ids) != len(run):  # (cannot happen while this transaction holds the write lock)
            raise RuntimeError(f"expected {len(run)} new contacts, found {len(ids)}")
        for contact_id, (_, values) in zip(ids, run, strict=True):
            audit.record(db, actor, "create", "contacts", contact_id, values)


def apply(db: Database, actor: Actor, plan: Plan, *, dry_run: bool = False, progress: Progress | None = None) -> dict:
    """Write a plan in one transaction (all or nothing) and return its report; ``dry_run`` writes nothing.

    ``progress(rows done, rows in the plan)`` is called every PROGRESS_EVERY rows (skipped and refused rows
    count as done) and once at the end, all inside the transaction: a failure later still rolls back every row.
    """
    if dry_run:
        return plan.report()
    now = clock.stamp()
    total = len(plan.rows)
    with transaction(db):
        require_branch(db, actor, plan.branch_id)
        created_orgs: dict[tuple, int] = {}
        new_contacts: list[tuple[dict, dict]] = []  # (the row to insert, the values its audit entry records)
        for done, row in enumerate(plan.rows, start=1):
            if row.outcome in ("imported", "updated"):
                _write_row(db, actor, plan, row, now, created_orgs, new_contacts)
            if done % PROGRESS_EVERY == 0 and done < total:  # (the end is reported below)
                _report_after(db, actor, new_contacts, progress, done, total)
        _report_after(db, actor, new_contacts, progress, total, total)
        audit.record(db, actor, "import_contacts", "contacts", None, plan.summary())
    return plan.report()


def _write_row(
    db: Database,
    actor: Actor,
    plan: Plan,
    row: RowPlan,
    now: str,
    created_orgs: dict[tuple, int],
    new_contacts: list[tuple[dict, dict]],
) -> None:
    """Write one row of the plan: its new organisation (once for all the rows naming it), and its update of an
    existing contact, or its new contact added to ``new_contacts`` (inserted a batch at a time)."""
    values = dict(row.values)
    if row.new_organisation:
        key = (str(row.new_organisation["name"]).casefold(), row.new_organisation["type_code"])
        if key not in created_orgs:
            org = {**row.new_organisation, "created_at": now, "created_by": actor.id, "updated_at": now}
            created_orgs[key] = insert(db, "organisations", org)
            audit.record(db, actor, "create", "organisations", created_orgs[key], row.new_organisation)
        values["organisation_id"] = created_orgs[key]
    if row.outcome == "updated" and row.existing_id is not None:
        _update(db, actor, row.existing_id, values, plan.columns)
    else:
        contact = {**values, "created_at": now, "created_by": actor.id, "updated_at": now, "updated_by": actor.id}
        new_contacts.append((contact, values))


def _update(db: Database, actor: Actor, contact_id: int, values: dict, columns: tuple[str, ...]) -> None:
    """Overwrite the existing contact's fields that the file holds (``columns``) with the row's non-empty values.

    Never weakens an objection: a file can mark someone do-not-contact, but a "no" (or a file without the column)
    leaves the flag as it is; lawful basis, privacy notice, keep-in-touch and retention are never touched.
    """
    before = db.execute_returning_dicts("SELECT * FROM contacts WHERE id = ?", [contact_id])[0]
    changes = {k: values[k] for k in columns if k != "phone_ext" and values.get(k) not in (None, "")}
    if "phone" in changes:
        changes["phone_ext"] = values["phone_ext"]  # a new number must not keep the old number's extension
    if not changes.get("do_not_contact"):
        changes.pop("do_not_contact", None)
    diff = audit.diff(before, changes)
    if not diff:
        return
    update_row(db, "contacts", contact_id, {**changes, "updated_by": actor.id})
    audit.record(db, actor, "update", "contacts", contact_id, diff)


def report_json(report: dict) -> str:
    """The report as the CLI writes it."""
    return json.dumps(report, ensure_ascii=False, indent=2)
