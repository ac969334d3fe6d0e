"""Named contacts at partner organisations, kept per branch. Every query is scoped to the acting user."""

import json
from datetime import date

from sqlite_utils import Database

from crm import audit, clock, fields, phones, suppressions
from crm.access import REGIONAL_LEAD, Actor, branch_clause, require_branch
from crm.db import insert, transaction, update_row
from crm.errors import Conflict, DuplicateContact, NotFound, ValidationError
from crm.schema import MAX_DUE_SOON_DAYS

STATUSES = {"active": "Active", "left": "Left"}
RELATIONSHIPS = {"warm": "Warm", "due_soon": "Due soon", "lapsed": "Lapsed", "never": "Never contacted"}
NOTES_FIELDS = {"notes": "Notes"}
# What a caller may pass in ``values``; phone/mobile are typed text, parsed here.
FIELDS = ("name", "job_title", "organisation_id", "branch_id", "phone", "mobile", "email", "notes", "is_named_contact")

_COLUMNS = """
    SELECT c.id, c.name, c.job_title, c.organisation_id, o.name AS organisation, o.type_code,
           t.label AS type_label, c.branch_id, b.name AS branch, c.phone, c.phone_ext, c.mobile, c.email,
           c.notes, c.is_named_contact, c.status, c.left_on, c.created_at, c.updated_at, c.version,
           c.keep_in_touch_days, t.keep_in_touch_days AS type_keep_in_touch_days,
           coalesce(c.keep_in_touch_days, t.keep_in_touch_days) AS interval_days, c.last_touched_on,
           c.successor_id, c.lawful_basis, c.privacy_info_sent_on, c.do_not_contact, c.erased_at,
           c.retention_review_on, c.retention_reason
"""
_JOINS = """
    JOIN organisations o ON o.id = c.organisation_id
    JOIN organisation_types t ON t.code = o.type_code
    JOIN branches b ON b.id = c.branch_id
"""
_SELECT = f"{_COLUMNS} FROM contacts c {_JOINS}"


def _mobile(raw: str | None) -> str | None:
    phone = phones.parse(raw, "Mobile")
    if phone and phone.extension:
        raise ValidationError("Mobile", "mobile numbers do not have extensions; put the extension on Phone.")
    return phone.e164 if phone else None


def _organisation_id(value: object) -> int:
    # Said as what to do: the picker starts empty, so a blank here means the user has not chosen yet.
    organisation_id = fields.optional_id(value, "Organisation")
    if organisation_id is None:
        raise ValidationError("Organisation", "choose one from the directory.")
    return organisation_id


def clean(values: dict) -> dict:
    """Check and normalise a contact's fields, reporting every problem at once.

    :raises ValidationError: or InvalidFields, naming each refused field and quoting the input.
    """
    out = fields.check_all(
        {
            "name": lambda: fields.text(values.get("name"), "Name", required=True),
            "job_title": lambda: fields.text(values.get("job_title"), "Job title"),
            "organisation_id": lambda: _organisation_id(values.get("organisation_id")),
            "branch_id": lambda: fields.required_id(values.get("branch_id"), "Branch"),
            "phone": lambda: phones.parse(values.get("phone"), "Phone"),
            "mobile": lambda: _mobile(values.get("mobile")),
            "email": lambda: fields.email(values.get("email")),
            "notes": lambda: fields.long_text(values.get("notes"), "Notes"),
            "keep_in_touch_days": lambda: _interval(values.get("keep_in_touch_days")),
            "lawful_basis": lambda: _lawful_basis(values.get("lawful_basis")),
            "privacy_info_sent_on": lambda: _iso(
                fields.date_value(values.get("privacy_info_sent_on"), "Privacy information sent on", past=True)
            ),
        }
    )
    out["do_not_contact"] = int(bool(values.get("do_not_contact", False)))
    phone = out.pop("phone")
    out["phone"] = phone.e164 if phone else None
    out["phone_ext"] = phone.extension if phone else None
    out["is_named_contact"] = int(bool(values.get("is_named_contact", True)))
    return out


LAWFUL_BASES = ("legitimate interests", "consent", "contract", "legal obligation", "public task", "vital interests")


def _lawful_basis(value: object) -> str:
    basis = str(value or LAWFUL_BASES[0]).strip().lower()
    if basis not in LAWFUL_BASES:
        raise ValidationError("Lawful basis", f"must be one of: {', '.join(LAWFUL_BASES)}.")
    return basis


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _interval(value: object) -> int | None:
    days = fields.optional_id(value, "Keep in touch every (days)")
    if days is not None and not 1 <= days <= 3650:
        raise ValidationError("Keep in touch every (days)", "must be between 1 and 3650 days.")
    return days


def relationship(last_touched_on: str | None, interval_days: int, today: date) -> str:
    """Warm (touched within the interval), due soon (the interval's last quarter, at most 14 days),
    lapsed (more than ``interval_days`` since the last touch) or never (no interaction logged)."""
    if last_touched_on is None:
        return "never"
    days = (today - date.fromisoformat(last_touched_on)).days
    if days > interval_days:
        return "lapsed"
    if days >= interval_days - min(MAX_DUE_SOON_DAYS, interval_days // 4):
        return "due_soon"
    return "warm"


def _with_display(row: dict, today: date | None = None) -> dict:
    row["relationship"] = relationship(row["last_touched_on"], row["interval_days"], today or clock.now().date())
    row["phone_display"] = phones.national(row["phone"], row["phone_ext"])
    row["mobile_display"] = phones.national(row["mobile"])
    row["phone_link"] = phones.tel_uri(row["phone"], row["phone_ext"])
    row["mobile_link"] = phones.tel_uri(row["mobile"])
    return row


def query(
    db: Database,
    conditions: str,
    params: list,
    *,
    order_by: str = "c.name COLLATE NOCASE, c.id",
    today: date | None = None,
) -> list[dict]:
    """Contacts matching an SQL condition over ``c`` (contacts), ``o``, ``t`` and ``b``, with display fields.
    Callers put the actor's branch_clause in ``conditions``."""
    rows = db.execute_returning_dicts(f"{_SELECT} WHERE {conditions} ORDER BY {order_by}", params)
    return [_with_display(r, today) for r in rows]


def _require_organisation(db: Database, org_id: int) -> None:
    if not db.execute("SELECT 1 FROM organisations WHERE id = ?", [org_id]).fetchone():
        raise ValidationError("Organisation", "does not exist; pick one from the directory or add it.")


def similar(db: Database, actor: Actor, values: dict, exclude_id: int | None = None) -> list[dict]:
    """Contacts of the same branch that look like ``values`` (cleaned): same email, same phone number (with the
    same extension, if any), or the same name at the same organisation."""
    where, params = branch_clause(actor, "c.branch_id")
    conditions, match_params = (
        ["(c.name = ? COLLATE NOCASE AND c.organisation_id = ?)"],
        [
            values["name"],
            values["organisation_id"],
        ],
    )
    if values.get("email"):
        conditions.append("c.email = ? COLLATE NOCASE")
        match_params.append(values["email"])
    # A number without an extension is the same whether it was typed as phone or mobile; a switchboard
    # number with different extensions belongs to different people.
    for number, extension in ((values.get("phone"), values.get("phone_ext")), (values.get("mobile"), None)):
        if not number:
            continue
        if extension:
            conditions.append("(c.phone = ? AND c.phone_ext = ?)")
            match_params += [number, extension]
        else:
            conditions.append("((c.phone = ? AND c.phone_ext IS NULL) OR c.mobile = ?)")
            match_params += [number, number]
    rows = db.execute_returning_dicts(
        f"{_SELECT} WHERE c.branch_id = ? AND c.id IS NOT ? AND {where} AND ({' OR '.join(conditions)}) "
        "ORDER BY c.status, c.name LIMIT 10",
        [values["branch_id"], exclude_id, *params, *match_params],
    )
    return [_with_display(r) for r in rows]


def add(db: Database, actor: Actor, values: dict, *, allow_duplicate: bool = False, confirmed: bool = False) -> int:
    """Add a contact to a branch the actor may edit.

    :raises DuplicateContact: when it looks like an existing contact, unless ``allow_duplicate``.
    :raises PossibleClientData: when the notes look like they hold an NHS number, unless ``confirmed``.
    :raises NotFound: when the branch is outside the actor's scope.
    """
    cleaned = clean(values)
    if not confirmed:
        fields.refuse_nhs_numbers(cleaned, NOTES_FIELDS)
    with transaction(db):
        require_branch(db, actor, cleaned["branch_id"])
        suppressions.refuse(db, cleaned)
        _require_organisation(db, cleaned["organisation_id"])
        if not allow_duplicate:
            matches = similar(db, actor, cleaned)
            if matches:
                raise DuplicateContact(matches)
        now = clock.stamp()
        row = {**cleaned, "created_at": now, "created_by": actor.id, "updated_at": now, "updated_by": actor.id}
        contact_id = insert(db, "contacts", row)
        audit.record(db, actor, "create", "contacts", contact_id, cleaned)
    return contact_id


def get(db: Database, actor: Actor, contact_id: int) -> dict:
    """One contact within the actor's scope.

    :raises NotFound: when it does not exist or belongs to a branch the actor may not see.
    """
    where, params = branch_clause(actor, "c.branch_id")
    rows = db.execute_returning_dicts(f"{_SELECT} WHERE c.id = ? AND {where}", [contact_id, *params])
    if not rows:
        raise NotFound("That contact does not exist or is not in one of your branches.")
    return _with_display(rows[0])


def check_version(contact: dict, expected_version: int | None, outcome: str) -> None:
    """:raises Conflict: when ``contact`` (read inside the caller's transaction) is no longer at
    ``expected_version``, the version the user chose it at; ``outcome`` says what did not happen.
    None means the caller names the record as it is now (the command line, which asks about it first)."""
    if expected_version is not None and contact["version"] != expected_version:
        raise Conflict(
            f"{contact['name']}'s record was changed by someone else after you chose it, so {outcome}. "
            "Look at it again, then decide."
        )


def _save(db: Database, actor: Actor, contact_id: int, expected_version: int, changes_to: dict) -> bool:
    # Caller holds the transaction. Re-reading inside it means the version check and the write are atomic.
    # Returns whether anything changed.
    before = get(db, actor, contact_id)
    if before["erased_at"]:
        raise ValidationError("Contact", "has been erased, so it cannot be changed.")
    if before["version"] != expected_version:
        raise Conflict(
            f"{before['name']}'s record was changed by someone else while you were editing. "
            "Reload it to see their changes, then make yours again."
        )
    # An edit may not bring an erased person back under another record (their details, or their name at
    # their organisation); details the record already had are not checked again.
    suppressions.refuse(db, {**before, **changes_to}, already=before)
    if "branch_id" in changes_to:
        require_branch(db, actor, changes_to["branch_id"])
        if changes_to["branch_id"] != before["branch_id"]:
            # Their past touches now count towards the branch that holds the relationship.
            db.execute(
                "UPDATE interaction_contacts SET branch_id = ? WHERE contact_id = ?",
                [changes_to["branch_id"], contact_id],
            )
    changes = audit.diff(before, changes_to)
    if not changes:
        return False
    update_row(db, "contacts", contact_id, {**changes_to, "updated_by": actor.id})
    audit.record(db, actor, "update", "contacts", contact_id, changes)
    return True


def update(
    db: Database, actor: Actor, contact_id: int, values: dict, expected_version: int, *, confirmed: bool = False
) -> bool:
    """Save edits to a contact; returns False when they change nothing (and nothing is written).

    :raises Conflict: when someone else saved it after ``expected_version`` was read (no silent overwrite).
    """
    cleaned = clean(values)
    if not confirmed:
        fields.refuse_nhs_numbers(cleaned, NOTES_FIELDS)
    with transaction(db):
        _require_organisation(db, cleaned["organisation_id"])
        return _save(db, actor, contact_id, expected_version, cleaned)


def set_successor(db: Database, actor: Actor, contact_id: int, successor_id: int) -> None:
    """Record who took over from a contact who left (both must be in the actor's scope)."""
    if successor_id == contact_id:
        raise ValidationError("Successor", "cannot be the same person.")
    with transaction(db):
        before = get(db, actor, contact_id)
        if get(db, actor, successor_id)["branch_id"] != before["branch_id"]:
            raise ValidationError("Successor", "must be a contact of the same branch.")
        db.execute("UPDATE contacts SET successor_id = ? WHERE id = ?", [successor_id, contact_id])
        audit.record(
            db, actor, "update", "contacts", contact_id, {"successor_id": [before["successor_id"], successor_id]}
        )


# Who is lapsing, decided in SQL on the dates stored with each contact (due_soon_on, lapses_on: schema step 0022)
# and compared as text, as ``relationship`` decides it: found, counted and ordered through two indexes, so neither
# every contact in scope nor their organisations are read.
_LAPSING_IN_SCOPE = (
    "c.status = 'active' AND c.is_named_contact = 1 AND c.do_not_contact = 0 AND {where} "
    "AND (? IS NULL OR c.branch_id = ?)"
)
# Most urgent first: lapsed (longest untouched first), never contacted (by name), then due soon (longest untouched
# first). One query each, in the order of the index on (last_touched_on, name), each cut at what is still wanted.
_LAPSED = "c.lapses_on < ?"
_LAPSING_GROUPS = (
    (_LAPSED, "c.last_touched_on, c.name, c.id"),
    ("c.last_touched_on IS NULL", "c.name, c.id"),
    ("c.due_soon_on <= ? AND c.lapses_on >= ?", "c.last_touched_on, c.name, c.id"),
)


def _lapsing_ids(db: Database, actor: Actor, today: date, branch_id: int | None, limit: int | None) -> list[int]:
    """Ids of the lapsing contacts in scope, most urgent first, up to ``limit`` (all of them for None)."""
    where, params = branch_clause(actor, "c.branch_id")
    scope = _LAPSING_IN_SCOPE.format(where=where)
    iso = today.isoformat()
    ids: list[int] = []
    for condition, order in _LAPSING_GROUPS:
        wanted = -1 if limit is None else limit - len(ids)
        if wanted == 0:
            break
        # A regional lead's lapsed contacts are taken in the order of idx_contacts_longest_untouched, stopping at
        # the few wanted, as an administrator's are: given the region's branches SQLite chose to read all 7,500 of
        # its contacts and sort them (2 ms a rerun). A branch manager's few hundred are quicker found by branch.
        table = "contacts c"
        if actor.role == REGIONAL_LEAD and condition == _LAPSED:
            table += " INDEXED BY idx_contacts_longest_untouched"
        ids += [
            contact_id
            for (contact_id,) in db.execute(
                f"SELECT c.id FROM {table} WHERE {scope} AND {condition} ORDER BY {order} LIMIT ?",
                [*params, branch_id, branch_id, *[iso] * condition.count("?"), wanted],
            )
        ]
    return ids


def lapsing_count(db: Database, actor: Actor, *, today: date | None = None) -> int:
    """How many contacts ``lapsing`` lists: in scope and due soon or later by their stored date, or never contacted
    (counted in SQL, on an index)."""
    today = today or clock.now().date()
    where, params = branch_clause(actor, "c.branch_id")
    scope = _LAPSING_IN_SCOPE.format(where=where)
    return db.execute(
        f"""SELECT (SELECT count(*) FROM contacts c WHERE {scope} AND c.due_soon_on <= ?)
                 + (SELECT count(*) FROM contacts c WHERE {scope} AND c.last_touched_on IS NULL)""",
        [*params, None, None, today.isoformat(), *params, None, None],
    ).fetchone()[0]


def lapsing(db: Database, actor: Actor, *, today: date | None = None, branch_id: int | None = None) -> list[dict]:
    """Active named contacts in scope that are due soon, lapsed or never contacted, most urgent first (lapsed,
    then never contacted, then due soon; longest untouched first, then by name). All of them: a page shows the
    first few with ``lapsing_first``."""
    today = today or clock.now().date()
    position = {contact_id: n for n, contact_id in enumerate(_lapsing_ids(db, actor, today, branch_id, None))}
    rows = query(db, "c.id IN (SELECT value FROM json_each(?))", [json.dumps(list(position))], today=today)
    return sorted(rows, key=lambda row: position[row["id"]])


def lapsing_first(
    db: Database,
    actor: Actor,
    limit: int,
    *,
    today: date | None = None,
    by_branch: bool = False,
) -> list[dict]:
    """The ``limit`` most urgent contacts ``lapsing`` lists (``lapsing_count`` counts them all). Only the rows
    returned are read in full, so the cost grows little with the scope. ``by_branch`` lists them branch by branch
    (by branch name), most urgent first within each.
    """
    today = today or clock.now().date()
    ranked = _lapsing_ids(db, actor, today, None, limit)
    if not ranked:
        return []
    position = {contact_id: n for n, contact_id in enumerate(ranked)}
    rows = query(db, f"c.id IN ({', '.join('?' for _ in ranked)})", ranked, today=today)
    if by_branch:
        rows.sort(key=lambda row: (row["branch"], row["branch_id"], position[row["id"]]))
    else:
        rows.sort(key=lambda row: position[row["id"]])
    return rows


def mark_left(db: Database, actor: Actor, contact_id: int, expected_version: int, left_on: date | None = None) -> None:
    """Record that a contact has left their organisation; they stay on file with their history."""
    left = fields.date_in_range(left_on or clock.now().date(), "Left on", past=True)
    with transaction(db):
        _save(db, actor, contact_id, expected_version, {"status": "left", "left_on": left.isoformat()})


def reinstate(db: Database, actor: Actor, contact_id: int, expected_version: int) -> None:
    """Undo ``mark_left``: the contact is active again."""
    with transaction(db):
        _save(db, actor, contact_id, expected_version, {"status": "active", "left_on": None})


PAGE_SIZE = 50  # contacts listed at a time on the Contacts page, whatever the size of the user's scope
COUNTED = 10_000  # the Contacts list counts at most this many (a provider's 75,000 took 10 ms a rerun to count)


def _filters(
    actor: Actor,
    *,
    branch_id: int | None = None,
    type_code: str | None = None,
    organisation_id: int | None = None,
    text: str = "",
    status: str | None = "active",
) -> tuple[str, list]:
    """The SQL condition (over c alone) and its parameters for the actor's scope and every filter given.

    The organisation's type and name are asked of the organisations once, as a list of ids (one uncorrelated
    subquery), rather than joined to each contact: a count then reads no organisation row, and an
    administrator's search of 75,000 contacts looks up none.

    :raises ValidationError: for search text that is too long or holds control characters.
    """
    where, params = branch_clause(actor, "c.branch_id")
    conditions, values = [where], list(params)
    for column, value in (
        ("c.branch_id", branch_id),
        ("c.organisation_id", organisation_id),
        ("c.status", status),
    ):
        if value is not None:
            conditions.append(f"{column} = ?")
            values.append(value)
    if type_code is not None:
        conditions.append("c.organisation_id IN (SELECT id FROM organisations WHERE type_code = ?)")
        values.append(type_code)
    text = fields.search_text(text)
    if text:
        pattern = fields.like_contains(text)
        if len(text) >= 3:
            # Anywhere in a name, job title or email, from the trigram index (schema step 0025): what LIKE '%text%'
            # finds, without reading every contact in scope. A quoted phrase takes every character literally (only
            # " doubled). Either list of ids may lead: SQLite looks up a region's or a provider's contacts from the
            # lists, and checks a branch's few hundred against them.
            searched = ["c.id IN (SELECT rowid FROM contacts_text WHERE contacts_text MATCH ?)"]
            values.append('"' + text.replace('"', '""') + '"')
        else:  # (a trigram index cannot look up fewer than three characters)
            searched = [f"{column} LIKE ? ESCAPE '\\'" for column in ("c.name", "c.job_title", "c.email")]
            values += [pattern] * len(searched)
        # The organisations' names, 10,500 of them, with LIKE.
        searched.append("c.organisation_id IN (SELECT id FROM organisations WHERE name LIKE ? ESCAPE '\\')")
        values.append(pattern)
        conditions.append("(" + " OR ".join(searched) + ")")
    return " AND ".join(conditions), values


def search(
    db: Database,
    actor: Actor,
    *,
    branch_id: int | None = None,
    type_code: str | None = None,
    organisation_id: int | None = None,
    text: str = "",
    status: str | None = "active",
    limit: int = 500,
    offset: int = 0,
) -> list[dict]:
    """Contacts in the actor's scope matching every filter given, sorted by name (then id, so that pages of
    ``limit`` rows from ``offset`` neither repeat nor skip anyone).

    :raises ValidationError: for search text that is too long or holds control characters.
    """
    where, values = _filters(
        actor, branch_id=branch_id, type_code=type_code, organisation_id=organisation_id, text=text, status=status
    )
    # The page's ids are picked from the contacts alone (from an index), and only those rows are joined: joining
    # first read each of a regional lead's 7,500 contacts with its organisation to sort them (3 ms a rerun).
    order = "c.name COLLATE NOCASE, c.id"
    rows = db.execute_returning_dicts(
        f"""{_COLUMNS}
        FROM (SELECT c.id FROM contacts c WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?) AS page
        JOIN contacts c ON c.id = page.id {_JOINS}
        ORDER BY {order}""",
        [*values, limit, max(offset, 0)],
    )
    return [_with_display(r) for r in rows]


def count(
    db: Database,
    actor: Actor,
    *,
    branch_id: int | None = None,
    type_code: str | None = None,
    organisation_id: int | None = None,
    text: str = "",
    status: str | None = "active",
    at_most: int | None = None,
) -> int:
    """How many contacts ``search`` would find with no limit (counted in SQL, rows never read); with ``at_most``,
    counting stops after at_most + 1 (a result above at_most means "more than at_most").

    :raises ValidationError: for search text that is too long or holds control characters.
    """
    where, values = _filters(
        actor, branch_id=branch_id, type_code=type_code, organisation_id=organisation_id, text=text, status=status
    )
    # Over the contacts alone (see _filters), from an index; counting all of a provider's 75,000 still took 10 ms.
    return db.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM contacts c WHERE {where} LIMIT ?)",
        [*values, -1 if at_most is None else at_most + 1],
    ).fetchone()[0]


def longest_untouched(
    db: Database, actor: Actor, *, branch_id: int | None, type_code: str | None, limit: int
) -> tuple[list[dict], int]:
    """The active named contacts of a branch and partner type who have gone longest without a touch (never touched
    first, then by name), at most ``limit`` of them, and how many there are: Coverage's "Who to call".

    Only the rows shown are read and formatted; a busy branch has dozens of GP contacts. The partner type is
    asked of each contact's organisation (joined), not as _filters' list of the type's organisations: that list
    holds all 7,500 GP practices in England, one index search each (6 ms, where this takes 0.1).
    """
    where, values = branch_clause(actor, "c.branch_id")
    where += " AND c.status = 'active' AND c.is_named_contact = 1"
    if branch_id is not None:
        where += " AND c.branch_id = ?"
        values = [*values, branch_id]
    if type_code is not None:
        where += " AND o.type_code = ?"
        values = [*values, type_code]
    rows = db.execute_returning_dicts(
        f"{_SELECT} WHERE {where} ORDER BY coalesce(c.last_touched_on, ''), c.name COLLATE NOCASE, c.id LIMIT ?",
        [*values, limit],
    )
    total = db.execute(
        f"SELECT count(*) FROM contacts c JOIN organisations o ON o.id = c.organisation_id WHERE {where}", values
    ).fetchone()[0]
    return [_with_display(r) for r in rows], total


MAILING_COLUMNS = ["Name", "Job title", "Organisation", "Partner type", "Branch", "Email", "Phone"]


def _mailable(actor: Actor, region_id: int | None, branch_id: int | None) -> tuple[str, list]:
    """The condition over ``c`` alone: its first three terms are those of idx_contacts_mailable, which then holds
    every contact it counts (a filter not asked for is left out rather than passed as NULL, so that a branch's
    count seeks its branch in that index instead of reading all of it)."""
    where, params = branch_clause(actor, "c.branch_id")
    conditions = ["c.status = 'active' AND c.do_not_contact = 0 AND c.erased_at IS NULL", where]
    if region_id is not None:
        conditions.append("c.branch_id IN (SELECT id FROM branches WHERE region_id = ?)")
        params = [*params, region_id]
    if branch_id is not None:
        conditions.append("c.branch_id = ?")
        params = [*params, branch_id]
    return " AND ".join(conditions), params


def mailing_count(db: Database, actor: Actor, *, region_id: int | None = None, branch_id: int | None = None) -> int:
    """How many people ``mailing_list`` holds, counted in SQL (the list itself is built only when downloaded)."""
    where, params = _mailable(actor, region_id, branch_id)
    return db.execute(f"SELECT count(*) FROM contacts c WHERE {where}", params).fetchone()[0]


def mailing_list(
    db: Database, actor: Actor, *, region_id: int | None = None, branch_id: int | None = None
) -> list[dict]:
    """Active contacts in scope who may be contacted: never do-not-contact, left or erased ones."""
    where, params = _mailable(actor, region_id, branch_id)
    rows = query(db, where, params, order_by="b.name, c.name COLLATE NOCASE")
    return [
        {
            "Name": r["name"],
            "Job title": r["job_title"],
            "Organisation": r["organisation"],
            "Partner type": r["type_label"],
            "Branch": r["branch"],
            "Email": r["email"] or "",
            "Phone": r["phone_display"],
            # raw fields for vCards
            "name": r["name"],
            "job_title": r["job_title"],
            "organisation": r["organisation"],
            "email": r["email"],
            "phone": r["phone"],
            "mobile": r["mobile"],
        }
        for r in rows
    ]


def named_matrix(db: Database, actor: Actor) -> list[dict]:
    """One row per partner type: {"Partner type": label, <branch name>: active named contacts, ...}.

    Every type and every branch in scope appears, so a zero shows a gap. Counted in SQL; only the small
    result is pivoted here.
    """
    where, params = branch_clause(actor, "b.id")
    counts = db.execute(
        f"""
        SELECT b.name, o.type_code, count(*)
        FROM contacts c
        JOIN branches b ON b.id = c.branch_id
        JOIN organisations o ON o.id = c.organisation_id
        WHERE c.status = 'active' AND c.is_named_contact = 1 AND {where}
        GROUP BY b.id, o.type_code
        """,
        params,
    ).fetchall()
    named = {(branch, type_code): n for branch, type_code, n in counts}
    branch_names = [r[0] for r in db.execute(f"SELECT b.name FROM branches b WHERE {where} ORDER BY b.name", params)]
    if not branch_names:
        return []
    types = db.execute("SELECT code, label FROM organisation_types ORDER BY sort_order, label").fetchall()
    return [
        {"Partner type": label, **{branch: named.get((branch, code), 0) for branch in branch_names}}
        for code, label in types
    ]


def totals(db: Database, actor: Actor) -> dict:
    """Headline counts within scope: active contacts, named contacts, organisations with a named contact."""
    where, params = branch_clause(actor, "branch_id")
    row = db.execute(
        f"""
        SELECT count(*), coalesce(sum(is_named_contact), 0),
               count(DISTINCT CASE WHEN is_named_contact = 1 THEN organisation_id END)
        FROM contacts WHERE status = 'active' AND {where}
        """,
        params,
    ).fetchone()
    return {"active_contacts": row[0], "named_contacts": row[1], "organisations_with_named_contact": row[2]}
