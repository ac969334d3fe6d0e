"""The NHS directory of GP practices (the ODS ``epraccur`` file), and each branch's GP patch.

The file is headerless CSV with 27 columns. Older exports give status as A/C/D/P and the prescribing setting
in column 26 (4 = GP practice); newer ones give ACTIVE/INACTIVE and a role code (RO76 = GP practice).
"""

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlite_utils import Database

from crm import audit, clock, fields, phones
from crm.access import ADMIN, Actor, branch_clause, require_branch, require_role
from crm.db import transaction
from crm.errors import CRMError, InvalidPhone, ValidationError

COLUMNS = 27
GP_SETTINGS = {"4", "RO76"}
STATUSES = {"A": "active", "C": "closed", "D": "dormant", "P": "proposed", "ACTIVE": "active", "INACTIVE": "closed"}
STATUS_LABELS = {"active": "Active", "closed": "Closed", "dormant": "Dormant", "proposed": "Proposed"}
MAX_FILE_BYTES = 20 * 1024 * 1024
PROGRESS_EVERY = 500  # rows between calls of an import's progress callback
# The columns an import owns: a re-import compares these and changes only what differs.
OWNED = (
    "name",
    "address",
    "postcode",
    "phone",
    "phone_ext",
    "phone_raw",
    "commissioner_code",
    "opened_on",
    "closed_on",
    "status",
)
# Called with (rows done, rows in total) while an import runs: a page draws a progress bar with it.
Progress = Callable[[int, int], None]
_DISTRICT = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?$")
_COMMISSIONER = re.compile(r"^[A-Z0-9]{3,5}$")


class DirectoryFileError(CRMError):
    """The file is not an epraccur file this app can read; nothing was imported."""


@dataclass
class ImportSummary:
    """What an import did, row by row counted once each (closed also counts within added/updated)."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    closed: int = 0
    skipped: int = 0
    invalid_phones: list[str] = field(default_factory=list)  # ODS codes whose phone number is not valid

    def as_dict(self) -> dict:
        data = asdict(self)
        data["invalid_phones"] = len(self.invalid_phones)
        return data


def _date(raw: str, line: int) -> str | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return datetime.strptime(raw, "%Y%m%d").date().isoformat()
    except ValueError:
        raise DirectoryFileError(f"Line {line}: “{raw}” is not a date in the form YYYYMMDD.") from None


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DirectoryFileError("The file is not text (neither UTF-8 nor Windows-1252).")


def _file_rows(data: bytes) -> list[tuple[int, list[str]]]:
    """The file's non-blank rows with their line numbers, read whole before anything is written (so an import
    knows its total for the progress bar).

    :raises DirectoryFileError: for a file too big, not text, or not valid CSV, naming the line.
    """
    if len(data) > MAX_FILE_BYTES:
        raise DirectoryFileError(f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB.")
    reader = csv.reader(io.StringIO(_decode(data), newline=""), strict=True)
    try:
        return [(line, row) for line, row in enumerate(reader, start=1) if any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise DirectoryFileError(f"Line {reader.line_num}: the file is not valid CSV ({error}).") from None


def _read_row(line: int, row: list[str]) -> dict | None:
    """One row as an organisation row, or None when it is not a GP practice (skipped).

    :raises DirectoryFileError: naming the line, when the row does not have the file's shape.
    """
    if len(row) != COLUMNS:
        raise DirectoryFileError(
            f"Line {line}: expected {COLUMNS} columns, found {len(row)}. Is this the NHS epraccur file?"
        )
    if row[25].strip().upper() not in GP_SETTINGS:
        return None
    return _practice(row, line)


def _read_rows(data: bytes) -> list[dict | None]:
    """Each non-blank row of an epraccur file as an organisation row, or None where it is not a GP practice.

    :raises DirectoryFileError: naming the line, when a row does not have the file's shape.
    """
    return [_read_row(line, row) for line, row in _file_rows(data)]


def read_practices(data: bytes) -> tuple[list[dict], int]:
    """Parse an epraccur file into organisation rows for its GP practices; returns (rows, skipped).

    :raises DirectoryFileError: naming the line, when a row does not have the file's shape.
    """
    read = _read_rows(data)
    practices = [practice for practice in read if practice is not None]
    return practices, len(read) - len(practices)


def _practice(row: list[str], line: int) -> dict:
    code = row[0].strip().upper()
    status = STATUSES.get(row[12].strip().upper())
    if not code:
        raise DirectoryFileError(f"Line {line}: the ODS code (column 1) is empty.")
    if status is None:
        raise DirectoryFileError(
            f"Line {line}: “{row[12]}” is not a status this app knows (A, C, D, P, ACTIVE, INACTIVE)."
        )
    try:
        postcode = fields.postcode(row[9])
    except ValidationError:
        postcode = row[9].strip().upper()  # kept as published; a few are not standard
    name = " ".join(row[1].split())
    address = ", ".join(part.strip() for part in row[4:9] if part.strip())
    try:
        # The same characters every text field refuses: a practice name holding U+FFFE would break every Word
        # and Excel export that names the practice.
        fields.refuse_unstorable(name, "Name (column 2)")
        fields.refuse_unstorable(address, "Address (columns 5 to 9)")
    except ValidationError as error:
        raise DirectoryFileError(f"Line {line}: {error}") from None
    raw_phone = row[17].strip()
    try:
        phone = phones.parse(raw_phone)
    except InvalidPhone:
        phone = None
    return {
        "ods_code": code,
        "name": name,
        "address": address,
        "postcode": postcode,
        "phone": phone.e164 if phone else None,
        "phone_ext": phone.extension if phone else None,
        # The published number is kept when it is not a valid one, so nobody loses it and it can be fixed.
        "phone_raw": raw_phone if raw_phone and phone is None else None,
        "commissioner_code": row[14].strip().upper() or None,
        "opened_on": _date(row[10], line),
        "closed_on": _date(row[11], line),
        "status": status,
    }


def import_gp_practices(db: Database, actor: Actor, data: bytes, progress: Progress | None = None) -> ImportSummary:
    """Add or update every GP practice in an epraccur file, keyed by ODS code, in one transaction.

    Practices missing from the file are left alone; closed and dormant ones are marked, never deleted.
    Re-importing the same file changes nothing. ``progress(rows done, rows in the file)`` is called every
    PROGRESS_EVERY rows written and once at the end with (total, total); a bad row anywhere in the file is refused
    before anything is written.

    :raises DirectoryFileError: naming the line of the first row that is not in the file's shape.
    """
    require_role(actor, ADMIN)
    # The whole file is read and checked before the write lock is taken, not inside the transaction: every other
    # user's save waits while an import holds the lock, and reading the national file is nearly half of its time.
    read = _read_rows(data)
    total = len(read)
    summary = ImportSummary(skipped=read.count(None))
    now = clock.stamp()
    with transaction(db):
        existing = {
            row["ods_code"]: row
            for row in db.execute_returning_dicts(
                f"SELECT id, ods_code, {', '.join(OWNED)} FROM organisations WHERE ods_code IS NOT NULL"
            )
        }
        # Written a chunk at a time, so the progress counts rows really done (inside the transaction).
        for start in range(0, total, PROGRESS_EVERY):
            practices = [practice for practice in read[start : start + PROGRESS_EVERY] if practice is not None]
            _write_practices(db, actor, now, practices, existing, summary)
            if progress is not None:
                progress(min(start + PROGRESS_EVERY, total), total)
        if progress is not None and total == 0:
            progress(0, 0)
        db.execute(
            "INSERT INTO audit_log (at, user_id, username, action, table_name, row_id, changes) "
            "VALUES (?, ?, ?, 'import_gp_practices', 'organisations', NULL, ?)",
            [now, actor.id, actor.username, json.dumps(summary.as_dict())],
        )
    return summary


def _write_practices(
    db: Database, actor: Actor, now: str, practices: list[dict], existing: dict[str, dict], summary: ImportSummary
) -> None:
    """Insert the new practices and update the changed ones, each audited; counts them in ``summary``."""
    summary.invalid_phones += [p["ods_code"] for p in practices if p["phone_raw"]]
    inserts, updates, audits = [], [], []
    for practice in practices:
        before = existing.get(practice["ods_code"])
        if before is None:
            inserts.append(practice)
            summary.added += 1
            summary.closed += practice["status"] in ("closed", "dormant")
            continue
        changes = {k: [before[k], practice[k]] for k in OWNED if before[k] != practice[k]}
        if not changes:
            summary.unchanged += 1
            continue
        summary.updated += 1
        summary.closed += "status" in changes and practice["status"] in ("closed", "dormant")
        updates.append([*(practice[k] for k in OWNED), now, before["id"]])
        audits.append([now, actor.id, actor.username, "update", "organisations", before["id"], json.dumps(changes)])
    columns = ["ods_code", "type_code", *OWNED, "created_at", "created_by", "updated_at"]
    db.conn.executemany(
        f"INSERT INTO organisations ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
        [[p["ods_code"], "GP_PRACTICE", *(p[k] for k in OWNED), now, actor.id, now] for p in inserts],
    )
    db.conn.executemany(
        f"UPDATE organisations SET {', '.join(f'{k} = ?' for k in OWNED)}, updated_at = ?, version = version + 1 "
        "WHERE id = ?",
        updates,
    )
    if inserts:
        new_ids = dict(
            db.execute(
                "SELECT ods_code, id FROM organisations WHERE ods_code IN (SELECT value FROM json_each(?))",
                [json.dumps([p["ods_code"] for p in inserts])],
            ).fetchall()
        )
        audits += [
            [now, actor.id, actor.username, "create", "organisations", new_ids[p["ods_code"]], json.dumps(p)]
            for p in inserts
        ]
    db.conn.executemany(
        "INSERT INTO audit_log (at, user_id, username, action, table_name, row_id, changes) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        audits,
    )


def status_counts(db: Database) -> dict[str, int]:
    """GP practices in the directory by status."""
    rows = db.execute(
        "SELECT status, count(*) FROM organisations WHERE type_code = 'GP_PRACTICE' GROUP BY status"
    ).fetchall()
    return dict(rows)


def parse_patch(districts: str, commissioners: str) -> list[tuple[str, str]]:
    """Parse "LS6, LS7, LS16" and "15F 03G" into (kind, value) pairs.

    :raises ValidationError: naming the first value that is not a postcode district or commissioner code.
    """
    patch = []
    for kind, text, pattern, label, example in (
        ("postcode_district", districts, _DISTRICT, "Postcode districts", "LS6"),
        ("commissioner", commissioners, _COMMISSIONER, "Commissioner codes", "15F"),
    ):
        for value in re.split(r"[\s,;]+", (text or "").upper()):
            if not value:
                continue
            if not pattern.match(value):
                raise ValidationError(label, f"“{value}” is not valid (for example {example}).")
            patch.append((kind, value))
    return sorted(set(patch))


def set_patch(db: Database, actor: Actor, branch_id: int, districts: str, commissioners: str) -> None:
    """Replace a branch's GP patch (administrators)."""
    require_role(actor, ADMIN)
    patch = parse_patch(districts, commissioners)
    with transaction(db):
        require_branch(db, actor, branch_id)
        before = patch_of(db, branch_id)
        db.execute("DELETE FROM branch_patch WHERE branch_id = ?", [branch_id])
        for kind, value in patch:
            db.execute("INSERT INTO branch_patch (branch_id, kind, value) VALUES (?, ?, ?)", [branch_id, kind, value])
        after = patch_of(db, branch_id)
        audit.record(db, actor, "update", "branch_patch", branch_id, audit.diff(before, after))


def patch_of(db: Database, branch_id: int) -> dict[str, str]:
    """A branch's patch as the admin typed it: {"postcode_district": "LS6, LS7", "commissioner": "15F"}."""
    out = {"postcode_district": "", "commissioner": ""}
    for kind, values in db.execute(
        "SELECT kind, group_concat(value, ', ') FROM (SELECT * FROM branch_patch WHERE branch_id = ? ORDER BY value) "
        "GROUP BY kind",
        [branch_id],
    ):
        out[kind] = values
    return out


_IN_PATCH = """
    o.type_code = 'GP_PRACTICE' AND o.status = 'active' AND (
        o.postcode_district IN (SELECT value FROM branch_patch WHERE branch_id = {b} AND kind = 'postcode_district')
        OR o.commissioner_code IN (SELECT value FROM branch_patch WHERE branch_id = {b} AND kind = 'commissioner'))
"""
_HAS_NAMED = """
    EXISTS (SELECT 1 FROM contacts c WHERE c.organisation_id = o.id AND c.branch_id = {b}
            AND c.status = 'active' AND c.is_named_contact = 1)
"""


def patch_practices(db: Database, actor: Actor, branch_id: int) -> list[dict]:
    """The active GP practices in a branch's patch, each with whether the branch has a named contact there."""
    require_branch(db, actor, branch_id)
    rows = db.execute_returning_dicts(
        f"""
        SELECT o.id, o.name, o.ods_code, o.postcode, o.phone, o.phone_ext, o.phone_raw,
               {_HAS_NAMED.format(b="?")} AS has_named_contact
        FROM organisations o WHERE {_IN_PATCH.format(b="?")}
        ORDER BY has_named_contact, o.name
        """,
        [branch_id, branch_id, branch_id],
    )
    for row in rows:
        row["phone_display"] = phones.national(row["phone"], row["phone_ext"]) or row["phone_raw"] or ""
    return rows


def patch_coverage(db: Database, actor: Actor, branch_id: int) -> tuple[int, int]:
    """(practices with a named contact, active practices) in the branch's patch."""
    rows = patch_practices(db, actor, branch_id)
    return sum(r["has_named_contact"] for r in rows), len(rows)


def patch_coverage_by_branch(db: Database, actor: Actor) -> dict[int, tuple[int, int]]:
    """{branch_id: (practices with a named contact, active practices in the patch)} for every branch in scope
    that has a patch, in one query."""
    where, params = branch_clause(actor, "p.branch_id")
    rows = db.execute(
        f"""
        WITH patch AS (
            SELECT p.branch_id, o.id AS organisation_id
            FROM branch_patch p JOIN organisations o ON o.postcode_district = p.value
            WHERE p.kind = 'postcode_district' AND o.type_code = 'GP_PRACTICE' AND o.status = 'active' AND {where}
            UNION
            SELECT p.branch_id, o.id
            FROM branch_patch p JOIN organisations o ON o.commissioner_code = p.value
            WHERE p.kind = 'commissioner' AND o.type_code = 'GP_PRACTICE' AND o.status = 'active' AND {where}
        )
        SELECT patch.branch_id, count(*), sum(EXISTS (
            SELECT 1 FROM contacts c WHERE c.organisation_id = patch.organisation_id AND c.branch_id = patch.branch_id
            AND c.status = 'active' AND c.is_named_contact = 1))
        FROM patch GROUP BY patch.branch_id
        """,
        [*params, *params],
    ).fetchall()
    return {branch: (covered, total) for branch, total, covered in rows}


def coverage_text(covered: int, total: int, patch_set: bool = True) -> str:
    """ "GP patch coverage: 23 of 41 practices (56%)"; 100% only when every practice is covered."""
    if not patch_set:
        return "GP patch coverage: no patch set (an administrator sets it under Regions and branches)"
    if not total:
        return "GP patch coverage: no active GP practices in the patch (is the NHS GP directory imported?)"
    percent = min(round(100 * covered / total), 99 if covered < total else 100)
    return f"GP patch coverage: {covered} of {total} practices ({percent}%)"
