"""Partner organisations: the shared directory every branch reads (GP practices, OT teams, councils...)."""

import re

from sqlite_utils import Database

from crm import audit, clock, fields, phones
from crm.access import ADMIN, REGIONAL_LEAD, Actor, branch_clause, require_role
from crm.db import insert, transaction, update_row
from crm.errors import AlreadyExists, Conflict, NotFound, PermissionDenied, ValidationError

_ODS_CODE = re.compile(r"^[A-Z0-9]{3,10}$")
_TYPE_CODE = re.compile(r"^[A-Z][A-Z_]{1,39}$")
EDITABLE = ("name", "type_code", "address", "postcode", "phone", "email", "website", "ods_code")


def types(db: Database) -> list[dict]:
    """Partner organisation types (reference data), in display order, with their keep-in-touch interval and
    whether coverage requires them."""
    return db.execute_returning_dicts(
        "SELECT code, label, keep_in_touch_days, required FROM organisation_types ORDER BY sort_order, label"
    )


def _type_values(label: str, keep_in_touch_days: object) -> dict:
    days = fields.optional_id(keep_in_touch_days, "Keep in touch every (days)")
    if days is None or not 1 <= days <= 3650:
        raise ValidationError("Keep in touch every (days)", "must be between 1 and 3650 days.")
    return {"label": fields.text(label, "Label", required=True, max_length=100), "keep_in_touch_days": days}


def add_type(db: Database, actor: Actor, code: str, label: str, keep_in_touch_days: int = 90) -> None:
    """Add a partner type (administrators); the code is permanent, e.g. CARE_HOME."""
    require_role(actor, ADMIN)
    code = (code or "").strip().upper()
    if not _TYPE_CODE.match(code):
        raise ValidationError("Code", f"“{code}” must be capital letters and underscores, e.g. CARE_HOME.")
    values = {"code": code, **_type_values(label, keep_in_touch_days), "sort_order": 1000}
    with transaction(db):
        if db.execute(
            "SELECT 1 FROM organisation_types WHERE code = ? OR label = ?", [code, values["label"]]
        ).fetchone():
            raise AlreadyExists(f"A partner type with code {code} or label “{values['label']}” already exists.")
        db.execute(
            "INSERT INTO organisation_types (code, label, keep_in_touch_days, sort_order) VALUES (?, ?, ?, ?)",
            [code, values["label"], values["keep_in_touch_days"], values["sort_order"]],
        )
        audit.record(db, actor, "create", "organisation_types", None, values)


def update_type(db: Database, actor: Actor, code: str, label: str, keep_in_touch_days: int) -> bool:
    """Rename a partner type or change its default keep-in-touch interval (administrators); returns False when
    that changes nothing (and nothing is written)."""
    require_role(actor, ADMIN)
    values = _type_values(label, keep_in_touch_days)
    with transaction(db):
        before = db.execute_returning_dicts("SELECT * FROM organisation_types WHERE code = ?", [code])
        if not before:
            raise NotFound(f"No partner type {code}.")
        if db.execute(
            "SELECT 1 FROM organisation_types WHERE label = ? AND code != ?", [values["label"], code]
        ).fetchone():
            raise AlreadyExists(f"Another partner type is already called “{values['label']}”.")
        changes = audit.diff(before[0], values)
        if not changes:
            return False
        db.execute(
            "UPDATE organisation_types SET label = ?, keep_in_touch_days = ? WHERE code = ?",
            [values["label"], values["keep_in_touch_days"], code],
        )
        audit.record(db, actor, "update", "organisation_types", None, {"code": code, **changes})
    return True


def type_labels(db: Database) -> dict[str, str]:
    """Map of type code to the label users read."""
    return {t["code"]: t["label"] for t in types(db)}


def clean(db: Database, values: dict) -> dict:
    """Check and normalise an organisation's fields, reporting every problem at once.

    :raises InvalidFields: (or a single ValidationError) naming each refused field.
    """
    out = fields.check_all(
        {
            "name": lambda: fields.text(values.get("name"), "Organisation name", required=True),
            "type_code": lambda: _type_code(db, values.get("type_code")),
            "address": lambda: fields.text(values.get("address"), "Address", max_length=300),
            "postcode": lambda: fields.postcode(values.get("postcode")),
            "phone": lambda: phones.parse(values.get("phone"), "Main phone"),
            "email": lambda: fields.email(values.get("email")),
            "website": lambda: fields.website(values.get("website")),
            "ods_code": lambda: _ods_code(values.get("ods_code")),
        }
    )
    phone = out.pop("phone")
    out["phone"] = phone.e164 if phone else None
    out["phone_ext"] = phone.extension if phone else None
    return out


def _type_code(db: Database, code: str | None) -> str:
    code = (code or "").strip()
    if not code:
        raise ValidationError("Partner type", "is required.")
    if not db.execute("SELECT 1 FROM organisation_types WHERE code = ?", [code]).fetchone():
        raise ValidationError("Partner type", f"“{code}” is not a known partner type.")
    return code


def _ods_code(value: str | None) -> str | None:
    code = (value or "").strip().upper()
    if not code:
        return None
    if not _ODS_CODE.match(code):
        raise ValidationError("ODS code", f"“{code}” is not an ODS code (3 to 10 letters and digits, e.g. B86001).")
    return code


def _check_unique(db: Database, values: dict, exclude_id: int | None = None) -> None:
    if values["ods_code"]:
        row = db.execute(
            "SELECT name FROM organisations WHERE ods_code = ? AND id IS NOT ?", [values["ods_code"], exclude_id]
        ).fetchone()
        if row:
            raise AlreadyExists(f"ODS code {values['ods_code']} already belongs to “{row[0]}”.")
    row = db.execute(
        "SELECT id FROM organisations WHERE name = ? COLLATE NOCASE AND postcode = ? AND type_code = ? AND id IS NOT ?",
        [values["name"], values["postcode"], values["type_code"], exclude_id],
    ).fetchone()
    if row:
        where = f" at {values['postcode']}" if values["postcode"] else ""
        raise AlreadyExists(f"“{values['name']}”{where} is already in the directory; pick it from the list instead.")


def add(db: Database, actor: Actor, values: dict) -> int:
    """Add an organisation to the shared directory (any signed-in role may)."""
    cleaned = clean(db, values)
    with transaction(db):
        _check_unique(db, cleaned)
        now = clock.stamp()
        row = {**cleaned, "created_at": now, "created_by": actor.id, "updated_at": now}
        org_id = insert(db, "organisations", row)
        audit.record(db, actor, "create", "organisations", org_id, cleaned)
    return org_id


def get(db: Database, org_id: int) -> dict:
    """One organisation with its type label; :raises NotFound:."""
    rows = db.execute_returning_dicts(
        "SELECT o.*, t.label AS type_label FROM organisations o "
        "JOIN organisation_types t ON t.code = o.type_code WHERE o.id = ?",
        [org_id],
    )
    if not rows:
        raise NotFound("That organisation does not exist.")
    return _with_display(rows[0])


def can_edit(actor: Actor, organisation: dict) -> bool:
    """Administrators and regional leads edit the directory; branch managers only what they added."""
    return actor.role in (ADMIN, REGIONAL_LEAD) or organisation["created_by"] == actor.id


def update(db: Database, actor: Actor, org_id: int, values: dict, expected_version: int) -> bool:
    """Save changes to an organisation; returns False when they change nothing (and nothing is written).

    :raises Conflict: when someone else saved it since ``expected_version`` was read.
    """
    cleaned = clean(db, values)
    with transaction(db):
        before = get(db, org_id)
        if not can_edit(actor, before):
            raise PermissionDenied("Only administrators and regional leads can edit this organisation.")
        if before["version"] != expected_version:
            raise Conflict(
                f"“{before['name']}” was changed by someone else while you were editing. "
                "Reload it to see their changes, then make yours again."
            )
        _check_unique(db, cleaned, exclude_id=org_id)
        changes = audit.diff(before, cleaned)
        if not changes:
            return False
        update_row(db, "organisations", org_id, cleaned)
        audit.record(db, actor, "update", "organisations", org_id, changes)
    return True


# What people type for a kind of partner, and what it stands for: the abbreviation (a whole word), the phrases it
# is short for, and the partner types it names. Data, not code: add a row to teach the search a new word.
SEARCH_ABBREVIATIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "OT": {
        "phrases": ("occupational therapy", "occupational therapist", "occupational"),
        "types": ("COMMUNITY_THERAPY",),
    },
    "SW": {"phrases": ("social work", "social worker", "social services"), "types": ("LA_SOCIAL_CARE",)},
    "DN": {"phrases": ("district nurse", "district nurses", "district nursing"), "types": ("COMMUNITY_NURSING",)},
    "GP": {"phrases": ("gp practice", "general practice"), "types": ("GP_PRACTICE",)},
    "PCN": {"phrases": ("primary care network",), "types": ("PCN",)},
    "ICB": {"phrases": ("integrated care board",), "types": ("ICB",)},
    "CHC": {"phrases": ("continuing healthcare", "continuing health care"), "types": ("ICB",)},
}

# A name as separate words, so an abbreviation matches "Leeds OT" or "OT (north)" but not "Scott" or "Other".
_NAME_WORDS = (
    "(' ' || replace(replace(replace(replace(lower(o.name), '(', ' '), ')', ' '), ',', ' '), '-', ' ') || ' ')"
)
_LIKE = " LIKE ? ESCAPE '\\'"


def _search_terms(query: str) -> list[tuple[str, list]]:
    """One SQL condition (with its parameters) per thing typed: every one must hold, in any order.

    A phrase of the abbreviation table ("occupational therapy") or an abbreviation ("OT") matches the
    organisations of its partner types and names using either form; any other word matches anywhere in the name,
    postcode, ODS code or partner type label, or is a partner type's code ("hospice", "la_social_care").
    """
    text = " " + " ".join(query.lower().split()) + " "
    terms: list[tuple[str, list]] = []
    phrases = sorted(
        ((phrase, abbreviation) for abbreviation, entry in SEARCH_ABBREVIATIONS.items() for phrase in entry["phrases"]),
        key=lambda pair: -len(pair[0]),
    )
    for phrase, abbreviation in phrases:
        if f" {phrase} " in text:
            text = text.replace(f" {phrase} ", " ", 1)
            terms.append(_abbreviation_term(abbreviation))
    for word in text.split():
        if word.upper() in SEARCH_ABBREVIATIONS:
            terms.append(_abbreviation_term(word.upper()))
            continue
        pattern = fields.like_contains(word)
        terms.append(
            (
                f"(o.name{_LIKE} OR o.postcode{_LIKE} OR o.ods_code{_LIKE} OR t.label{_LIKE} OR o.type_code = ?)",
                [pattern] * 4 + [word.upper()],
            )
        )
    return terms


def _abbreviation_term(abbreviation: str) -> tuple[str, list]:
    entry = SEARCH_ABBREVIATIONS[abbreviation]
    conditions = [f"{_NAME_WORDS}{_LIKE}"]
    params: list = [fields.like_contains(f" {abbreviation.lower()} ")]
    for phrase in entry["phrases"]:
        conditions.append(f"o.name{_LIKE}")
        params.append(fields.like_contains(phrase))
    conditions.append(f"o.type_code IN ({', '.join('?' for _ in entry['types'])})")
    params += list(entry["types"])
    return f"({' OR '.join(conditions)})", params


def _in_patch(actor: Actor | None) -> tuple[str, list]:
    """SQL for "this organisation is in the actor's own patch": a contact of one of their branches works there,
    or it is a GP practice in one of their branches' GP patch. An administrator has no patch of their own.

    One uncorrelated subquery, which SQLite builds once per search, not once per organisation."""
    if actor is None or actor.role == ADMIN:
        return "0", []
    contacts_scope, params = branch_clause(actor, "c.branch_id")
    patch_scope, _ = branch_clause(actor, "bp.branch_id")
    return (
        f"""o.id IN (
            SELECT c.organisation_id FROM contacts c WHERE {contacts_scope}
            UNION
            SELECT p.id FROM branch_patch bp JOIN organisations p ON p.postcode_district = bp.value
            WHERE bp.kind = 'postcode_district' AND p.type_code = 'GP_PRACTICE' AND {patch_scope}
            UNION
            SELECT p.id FROM branch_patch bp JOIN organisations p ON p.commissioner_code = bp.value
            WHERE bp.kind = 'commissioner' AND p.type_code = 'GP_PRACTICE' AND {patch_scope})""",
        [*params, *params, *params],
    )


PAGE_SIZE = 50  # organisations listed at a time on the Organisations page, of a directory of 10,000 or more


def search(
    db: Database,
    query: str = "",
    type_code: str | None = None,
    limit: int = 50,
    *,
    actor: Actor | None = None,
    offset: int = 0,
) -> list[dict]:
    """Organisations matching every word of ``query`` in any order (name, postcode, ODS code, partner type),
    understanding the abbreviations of SEARCH_ABBREVIATIONS; the ``actor``'s own patch first, then names
    starting with the query, then the rest by name. ``limit`` of them from the ``offset``-th (a page of a list
    whose length ``count`` gives).

    :raises ValidationError: for search text that is too long or holds control characters.
    """
    where, params = _matching(query, type_code)
    query = fields.search_text(query)
    mine, mine_params = _in_patch(actor)

    def read(
        in_patch: tuple[str, list], condition: tuple[str, list], order: tuple[str, list], n: int, skip: int
    ) -> list[dict]:
        return db.execute_returning_dicts(
            f"""
            SELECT o.id, o.name, o.type_code, t.label AS type_label, o.address, o.postcode, o.phone, o.phone_ext,
                   o.email, o.website, o.ods_code, o.version, o.created_by, o.status, o.phone_raw,
                   {in_patch[0]} AS in_patch
            FROM organisations o JOIN organisation_types t ON t.code = o.type_code
            WHERE {condition[0]} AND {where}
            ORDER BY {order[0]}
            LIMIT ? OFFSET ?
            """,
            [*in_patch[1], *condition[1], *params, *order[1], n, skip],
        )

    if query or mine == "0":
        starts = fields.like_escape(query) + "%"
        order = "in_patch DESC, (o.name LIKE ? ESCAPE '\\') DESC, o.name COLLATE NOCASE"
        found = read((mine, mine_params), ("1 = 1", []), (order, [starts]), limit, offset)
    else:
        # Nothing typed (every list's first view): the patch's organisations, then the rest of the directory in
        # name order, read from idx_organisations_name. One read ordered by "in the patch" sorted all 10,500
        # organisations to show 50 (4 ms).
        by_name: tuple[str, list] = ("o.name COLLATE NOCASE", [])
        found = read(("1", []), (mine, mine_params), by_name, limit, offset)
        if len(found) < limit:
            # The page runs past the patch: the directory's rows follow on from where the patch's ended.
            in_patch = _count(db, f"{mine} AND {where}", [*mine_params, *params])
            found += read(
                ("0", []), (f"NOT {mine}", mine_params), by_name, limit - len(found), max(0, offset - in_patch)
            )
    return [_with_display(row) for row in found]


def count(db: Database, query: str = "", type_code: str | None = None) -> int:
    """How many organisations ``search`` finds for ``query`` and ``type_code``, in every page together.

    :raises ValidationError: as ``search``.
    """
    return _count(db, *_matching(query, type_code))


def _count(db: Database, where: str, params: list) -> int:
    return db.execute(
        f"SELECT count(*) FROM organisations o JOIN organisation_types t ON t.code = o.type_code WHERE {where}",
        params,
    ).fetchone()[0]


def _matching(query: str, type_code: str | None) -> tuple[str, list]:
    """The WHERE clause (and its parameters) of a search for ``query`` and ``type_code``."""
    where, params = ["1 = 1"], []
    for condition, values in _search_terms(fields.search_text(query)):
        where.append(condition)
        params += values
    if type_code:
        where.append("o.type_code = ?")
        params.append(type_code)
    return " AND ".join(where), params


def _with_display(row: dict) -> dict:
    row["phone_display"] = phones.national(row["phone"], row["phone_ext"])
    if not row["phone_display"] and row.get("phone_raw"):
        row["phone_display"] = f"{row['phone_raw']} (not a valid number)"
    return row
