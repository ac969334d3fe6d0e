"""The audit log: who changed what, when. Written inside the same transaction as the change itself."""

import json
import re

from sqlite_utils import Database

from crm import clock, dates
from crm.access import ADMIN, REGIONAL_LEAD, Actor, branch_clause, require_role

# Never copied into the log, whatever table they appear in.
SECRET_COLUMNS = {"password_hash", "suppression_salt"}


def record(
    db: Database, actor: Actor, action: str, table: str, row_id: int | None, changes: dict | None = None
) -> None:
    """Append one entry; ``changes`` maps column to new value (create) or to [old, new] (update).

    The branch the entry is about is stored with it (from the changes, or the record as it is now), so that
    regional leads see their region's history even after records are deleted or their ids reused.
    """
    safe = {k: v for k, v in (changes or {}).items() if k not in SECRET_COLUMNS}
    db.execute(
        "INSERT INTO audit_log (at, user_id, username, action, table_name, row_id, changes, branch_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            clock.stamp(),
            actor.id,
            actor.username,
            action,
            table,
            row_id,
            json.dumps(safe, ensure_ascii=False),
            _branch_of(db, table, row_id, safe),
        ],
    )


def _branch_of(db: Database, table: str, row_id: int | None, changes: dict) -> int | None:
    branch = changes.get("branch_id")
    if isinstance(branch, list):  # an update: [old, new]
        branch = branch[1]
    if isinstance(branch, int):
        return branch
    if table == "branches":
        return row_id
    if table in BRANCH_TABLES and row_id is not None:
        row = db.execute(f"SELECT branch_id FROM {table} WHERE id = ?", [row_id]).fetchone()
        return row[0] if row else None
    return None


BRANCH_TABLES = ("contacts", "interactions", "testimonials", "referrals")
# What an entry says; the stored branch_id is for scoping only.
COLUMNS = "a.id, a.at, a.user_id, a.username, a.action, a.table_name, a.row_id, a.changes"


def diff(before: dict, after: dict) -> dict:
    """The columns whose value changed, as {column: [old, new]}."""
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}


def entries(db: Database, table: str | None = None, row_id: int | None = None, limit: int = 200) -> list[dict]:
    """Most recent audit entries, optionally for one record."""
    where: list[str] = ["1 = 1"]
    params: list[object] = []
    if table:
        where.append("table_name = ?")
        params.append(table)
    if row_id is not None:
        where.append("row_id = ?")
        params.append(row_id)
    sql = f"SELECT {COLUMNS} FROM audit_log a WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
    rows = db.execute_returning_dicts(sql, [*params, limit])
    for row in rows:
        row["changes"] = json.loads(row["changes"])
    return rows


def _matching(
    actor: Actor,
    *,
    username: str = "",
    table: str | None = None,
    row_id: int | None = None,
    since: str | None = None,
    until: str | None = None,
    hide_demo: bool = False,
) -> tuple[str, list]:
    """The WHERE condition (over ``a``) of the entries the actor may see that match every filter given."""
    require_role(actor, ADMIN, REGIONAL_LEAD)
    where, params = branch_clause(actor, "a.branch_id")
    conditions, values = [where], list(params)
    if hide_demo:
        conditions.append(f"NOT coalesce({DEMO_SETUP}, 0)")  # no demo loaded: nothing to hide
    for condition, value in (
        ("a.username = ? COLLATE NOCASE", username.strip() or None),
        ("a.table_name = ?", table),
        ("a.row_id = ?", row_id),
        ("a.at >= ?", since),
        ("a.at < date(?, '+1 day')", until),
    ):
        if value is not None:
            conditions.append(condition)
            values.append(value)
    return " AND ".join(conditions), values


def search(db: Database, actor: Actor, *, limit: int = 1000, offset: int = 0, **filters) -> list[dict]:
    """Audit entries the actor may see, newest first: administrators every entry, regional leads those about
    their region's branches; ``limit`` of them after skipping the first ``offset``. Filters: ``username``,
    record (``table`` and ``row_id``), dates (``since`` and ``until``, YYYY-MM-DD, inclusive), and ``hide_demo``
    leaves out the entries written while the demo data was loaded."""
    where, values = _matching(actor, **filters)
    rows = db.execute_returning_dicts(
        f"SELECT {COLUMNS} FROM audit_log a WHERE {where} ORDER BY a.id DESC LIMIT ? OFFSET ?",
        [*values, limit, offset],
    )
    for row in rows:
        row["changes"] = json.loads(row["changes"])
    return rows


def count(db: Database, actor: Actor, *, at_most: int | None = None, **filters) -> int:
    """How many entries ``search`` finds with these filters, counted in SQL; with ``at_most``, counting stops
    after at_most + 1 (a result above at_most means "more than at_most"), so a provider's whole log costs no more."""
    where, values = _matching(actor, **filters)
    return db.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM audit_log a WHERE {where} LIMIT ?)",
        [*values, -1 if at_most is None else at_most + 1],
    ).fetchone()[0]


# The demo load (crm/demo.py) is one transaction that starts by setting the provider's name and ends by setting
# demo_loaded: its entries are those from the last provider-name entry before the demo_loaded one to that entry.
DEMO_SETUP = """a.id BETWEEN
    (SELECT max(p.id) FROM audit_log p WHERE p.table_name = 'settings'
        AND json_extract(p.changes, '$.provider_name') IS NOT NULL
        AND p.id < (SELECT min(d.id) FROM audit_log d WHERE d.table_name = 'settings'
                    AND json_extract(d.changes, '$.demo_loaded[1]') = '1'))
    AND (SELECT min(d.id) FROM audit_log d WHERE d.table_name = 'settings'
         AND json_extract(d.changes, '$.demo_loaded[1]') = '1')"""

ACTIONS = {
    "create": "Added",
    "update": "Changed",
    "delete": "Deleted",
    "erase": "Erased",
    "withdraw_consent": "Recorded consent withdrawn",
    "export_testimonials": "Exported testimonials",
    "export_person": "Exported everything held about",
    "import_contacts": "Imported contacts",
    "retention_keep": "Kept after retention review",
    "sign_in": "Signed in",
    "sign_in_failed": "Failed to sign in",
    "password_changed": "Changed the password of",
    "backup": "Backed up",
    "restore": "Restored",
}
RECORDS = {
    "contacts": "Contact",
    "interactions": "Interaction",
    "organisations": "Organisation",
    "testimonials": "Testimonial",
    "users": "User",
    "branches": "Branch",
    "regions": "Region",
    "settings": "Settings",
    "organisation_types": "Partner type",
    "branch_patch": "GP patch of",
    "database": "Database",
    "referrals": "Referral",
}
# Columns as people name them; columns not listed are shown with their underscores made spaces.
FIELDS = {
    "name": "Name",
    "job_title": "Job title",
    "organisation_id": "Organisation",
    "organisation_name": "Organisation",
    "branch_id": "Branch",
    "region_id": "Region",
    "phone": "Phone",
    "phone_ext": "Extension",
    "mobile": "Mobile",
    "email": "Email",
    "notes": "Notes",
    "is_named_contact": "Named contact",
    "status": "Status",
    "left_on": "Left on",
    "successor_id": "Successor",
    "keep_in_touch_days": "Keep in touch every (days)",
    "lawful_basis": "Lawful basis",
    "privacy_info_sent_on": "Privacy information sent on",
    "do_not_contact": "Do not contact",
    "retention_review_on": "Next retention review",
    "retention_reason": "Reason kept",
    "occurred_on": "Date",
    "kind_code": "Kind",
    "summary": "Summary",
    "follow_up_on": "Follow-up date",
    "follow_up_action": "Follow-up action",
    "follow_up_done_on": "Follow-up done on",
    "contact_ids": "Contacts",
    "contact_id": "Given by",
    "type_code": "Partner type",
    "quote": "Quote",
    "giver_name": "Giver",
    "giver_role": "Giver's role",
    "received_on": "Received on",
    "source": "How it came",
    "themes": "Themes",
    "statements": "CQC quality statements",
    "consent_scope": "Consent",
    "attribution": "Attribution",
    "consent_given_on": "Consent given on",
    "consent_how": "How consent was given",
    "consent_withdrawn_on": "Consent withdrawn on",
    "evidence_name": "Evidence file",
    "username": "User name",
    "display_name": "Full name",
    "role": "Role",
    "disabled": "Disabled",
    "failed_attempts": "Failed attempts",
    "postcode": "Postcode",
    "address": "Address",
    "website": "Website",
    "ods_code": "ODS code",
    "label": "Label",
    "provider_name": "Provider name",
    "coverage_window_days": "Coverage window (days)",
    "retention_months": "Retention period (months)",
    "demo_loaded": "Demo data loaded",
    "format": "Format",
    "audience": "Audience",
    "count": "Count",
    "scope": "Covering",
    "file": "File",
}
# Kept out of the readable history: bookkeeping, or the stored file name of evidence (its digest).
HIDDEN_FIELDS = {"created_at", "updated_at", "created_by", "updated_by", "version", "evidence_file", "evidence_type"}
PHONE_FIELDS = {"phone", "mobile"}
YES_NO_FIELDS = {"is_named_contact", "do_not_contact", "disabled", "required"}
DATE_FIELDS = {
    "left_on",
    "privacy_info_sent_on",
    "retention_review_on",
    "occurred_on",
    "follow_up_on",
    "follow_up_done_on",
    "received_on",
    "consent_given_on",
    "consent_withdrawn_on",
}
# Stored codes shown as words (the same words the pages use).
CODES = {
    "audience": {"internal": "Internal", "cqc": "CQC and commissioners", "public": "Public"},
    "consent_scope": {
        "none": "No consent recorded",
        "internal": "Internal only",
        "cqc": "CQC and commissioners",
        "public": "Public",
    },
    "attribution": {"named": "Named person", "role": "Role and organisation", "anonymous": "Anonymous"},
    "format": {"csv": "CSV", "xlsx": "Excel", "docx": "Word", "md": "Markdown"},
    "role": {"admin": "Administrator", "regional_lead": "Regional lead", "branch_manager": "Branch manager"},
}
# Foreign keys shown by the name of what they point at: (table, column holding its name).
NAMED_BY = {
    "organisation_id": ("organisations", "name"),
    "branch_id": ("branches", "name"),
    "region_id": ("regions", "name"),
    "successor_id": ("contacts", "name"),
    "contact_id": ("contacts", "name"),
    "contact_ids": ("contacts", "name"),
    "kind_code": ("interaction_kinds", "label"),
    "type_code": ("organisation_types", "label"),
}
# How each kind of record is named: the SQL giving (id, name) for ids in a list.
RECORD_NAMES = {
    "contacts": "SELECT c.id, c.name || ' (' || b.name || ')' FROM contacts c JOIN branches b ON b.id = c.branch_id",
    "organisations": "SELECT id, name FROM organisations",
    "interactions": "SELECT i.id, i.summary || ' (' || b.name || ', ' || i.occurred_on || ')' FROM interactions i "
    "JOIN branches b ON b.id = i.branch_id",
    "testimonials": "SELECT t.id, coalesce(nullif(t.giver_name, ''), 'a partner') || ': ' || substr(t.quote, 1, 60) "
    "FROM testimonials t",
    "users": "SELECT id, display_name FROM users",
    "branches": "SELECT id, name FROM branches",
    "regions": "SELECT id, name FROM regions",
    "branch_patch": "SELECT id, name FROM branches",
}


def history(db: Database, actor: Actor, **filters: object) -> list[dict]:
    """The audit entries ``search`` gives (same filters, same scope), as a history people read: when (UK local
    time), who (their name), what they did, to which record (by its name), and each change as
    "Phone: 0113 496 0001 → 0113 496 0002". Each row keeps ``at`` (ISO, UTC) for files read by machines."""
    entries = search(db, actor, **filters)  # type: ignore[arg-type]
    names = _Names(db)
    for entry in entries:
        names.want(entry["table_name"], entry["row_id"])
        for field, value in entry["changes"].items():
            if field in NAMED_BY:
                for old_or_new in value if isinstance(value, list) and field != "contact_ids" else [value]:
                    for one in old_or_new if isinstance(old_or_new, list) else [old_or_new]:
                        names.want_value(field, one)
        names.want_user(entry["user_id"], entry["username"])
    names.fetch()
    return [
        {
            "at": entry["at"],
            "When": dates.moment(entry["at"]),
            "Who": names.user(entry["user_id"], entry["username"]),
            "Did": ACTIONS.get(entry["action"], entry["action"].replace("_", " ").capitalize()),
            "Record": _record(entry, names),
            "Changes": _changes(entry, names),
        }
        for entry in entries
    ]


class _Names:
    """Names for the ids an audit page shows, read with one query per kind of record."""

    def __init__(self, db: Database):
        self.db = db
        self.wanted: dict[str, set[int]] = {}
        self.found: dict[str, dict[int, str]] = {}
        self.values: dict[str, set] = {}
        self.value_names: dict[str, dict] = {}
        self.user_ids: set[int] = set()
        self.users: dict[int, str] = {}
        self.usernames: set[str] = set()
        self.by_username: dict[str, str] = {}

    def want(self, table: str, row_id: int | None) -> None:
        if table in RECORD_NAMES and isinstance(row_id, int):
            self.wanted.setdefault(table, set()).add(row_id)

    def want_value(self, field: str, value: object) -> None:
        if value is not None and not isinstance(value, bool) and isinstance(value, int | str):
            self.values.setdefault(field, set()).add(value)

    def want_user(self, user_id: int | None, username: str) -> None:
        if user_id is not None:
            self.user_ids.add(user_id)
        else:  # the first administrator creating their own account: no one was signed in yet
            self.usernames.add(username)

    def fetch(self) -> None:
        for table, ids in self.wanted.items():
            sql = RECORD_NAMES[table]
            self.found[table] = self._select(sql, sql.split()[1].rstrip(","), sorted(ids))  # its first column
        for field, values in self.values.items():
            table, column = NAMED_BY[field]
            key = "code" if field.endswith("_code") else "id"
            self.value_names[field] = self._select(f"SELECT {key}, {column} FROM {table}", key, sorted(values, key=str))
        self.users = self._select("SELECT id, display_name FROM users", "id", sorted(self.user_ids))
        self.by_username = self._select("SELECT username, display_name FROM users", "username", sorted(self.usernames))

    def _select(self, sql: str, key: str, ids: list) -> dict:
        found: dict = {}
        for start in range(0, len(ids), 500):  # SQLite's limit on parameters
            chunk = ids[start : start + 500]
            rows = self.db.execute(f"{sql} WHERE {key} IN ({', '.join('?' for _ in chunk)})", chunk).fetchall()
            found.update(dict(rows))
        return found

    def record(self, table: str, row_id: int | None) -> str | None:
        return self.found.get(table, {}).get(row_id) if row_id is not None else None

    def value(self, field: str, value: object) -> str | None:
        return self.value_names.get(field, {}).get(value)

    def user(self, user_id: int | None, username: str) -> str:
        if user_id is None:
            return "Command line" if username == "command line" else self.by_username.get(username, username)
        return self.users.get(user_id, username)


def _record(entry: dict, names: _Names) -> str:
    table, row_id, changes = entry["table_name"], entry["row_id"], entry["changes"]
    kind = RECORDS.get(table, table.replace("_", " ").capitalize())
    if table in ("settings", "database"):
        return kind
    if table == "organisation_types":
        return f"{kind}: {changes.get('label') or changes.get('code') or ''}".rstrip(": ")
    if entry["action"] in ("export_testimonials", "import_contacts") and row_id is None:
        return RECORDS.get(table, kind) + "s"
    name = names.record(table, row_id)
    if name and table == "interactions":  # "Summary (Leeds, 2026-02-20)": the date as people write it
        name = re.sub(r"(\d{4}-\d{2}-\d{2})\)$", lambda m: dates.day(m.group(1)) + ")", name)
    if name is None:  # deleted since: named by what the entry itself kept
        kept = changes.get("name") or changes.get("summary") or changes.get("display_name")
        name = f"{kept[1] if isinstance(kept, list) else kept} (deleted)" if kept else "a deleted record"
    return f"{kind}: {name}"


def _changes(entry: dict, names: _Names) -> str:
    parts = []
    for field, value in entry["changes"].items():
        if field in HIDDEN_FIELDS:
            continue
        label = FIELDS.get(field, field.replace("_", " ").capitalize())
        if entry["action"] == "update" and isinstance(value, list) and len(value) == 2 and field != "contact_ids":
            old, new = (_shown(field, v, names) for v in value)
            parts.append(f"{label}: {old or '(none)'} → {new or '(none)'}")
        elif field == "contact_ids" and entry["action"] == "update" and value and isinstance(value[0], list):
            old, new = (_shown(field, v, names) for v in value)
            parts.append(f"{label}: {old or '(none)'} → {new or '(none)'}")
        else:
            shown = _shown(field, value, names)
            if shown:
                parts.append(f"{label}: {shown}")
    return "; ".join(parts)


def _shown(field: str, value: object, names: _Names) -> str:
    """One stored value as people read it: names for ids, phones nationally, UK dates, yes or no."""
    if value is None or value == "" or value == []:
        return ""
    if isinstance(value, list):
        return ", ".join(_shown(field, v, names) for v in value)
    if field in NAMED_BY:
        return names.value(field, value) or str(value)
    if field in PHONE_FIELDS and isinstance(value, str) and value.startswith("+"):
        from crm import phones

        return phones.national(value)
    if field in CODES and isinstance(value, str):
        return CODES[field].get(value, value)
    if field in YES_NO_FIELDS:
        return "yes" if value in (1, True, "1") else "no"
    if field in DATE_FIELDS and isinstance(value, str):
        try:
            return dates.day(value)
        except ValueError:
            return value
    return str(value)
