"""Interactions: every dated touch with a partner (visits, calls, referrals...), and the follow-ups they set."""

from datetime import date, timedelta

from sqlite_utils import Database

from crm import audit, clock, contacts, fields
from crm.access import Actor, branch_clause, require_branch
from crm.db import insert, transaction, update_row
from crm.errors import Conflict, NotFound, PermissionDenied, ValidationError

SUMMARY_MAX = 200
EARLIEST = date(2000, 1, 1)
FOLLOW_UP_HORIZON_DAYS = 7  # "due" means due within the coming week
SENSITIVE_FIELDS = {"summary": "Summary", "notes": "Notes", "follow_up_action": "Follow-up action"}
REFERRAL = "REFERRAL_RECEIVED"
DEFAULT_KIND = "PHONE_CALL"

OTHER_BRANCH_CONTACT = "a contact now at another branch"


def _select(actor: Actor) -> tuple[str, list]:
    """The SELECT of an interaction with its contacts' names, as ``actor`` may see them: a contact who has moved
    to a branch outside the actor's scope is shown as OTHER_BRANCH_CONTACT, never by their current name."""
    visible, params = branch_clause(actor, "c.branch_id")
    sql = f"""
    SELECT i.id, i.branch_id, b.name AS branch, i.organisation_id, o.name AS organisation,
           t.label AS type_label, o.type_code, i.occurred_on, i.kind_code, k.label AS kind, i.summary, i.notes,
           i.follow_up_on, i.follow_up_action, i.follow_up_done_on, i.created_at,
           coalesce(u.display_name, 'command line') AS logged_by, i.version,
           (SELECT group_concat(CASE WHEN {visible} THEN c.name ELSE ? END, ', ')
            FROM interaction_contacts ic JOIN contacts c ON c.id = ic.contact_id
            WHERE ic.interaction_id = i.id) AS contacts
    FROM interactions i
    JOIN branches b ON b.id = i.branch_id
    JOIN interaction_kinds k ON k.code = i.kind_code
    LEFT JOIN organisations o ON o.id = i.organisation_id
    LEFT JOIN organisation_types t ON t.code = o.type_code
    LEFT JOIN users u ON u.id = i.created_by
"""
    return sql, [*params, OTHER_BRANCH_CONTACT]


def kinds(db: Database) -> list[dict]:
    """Interaction kinds (reference data), in display order."""
    return db.execute_returning_dicts("SELECT code, label FROM interaction_kinds ORDER BY sort_order, label")


def default_summary(kind_label: str, subject: str) -> str:
    """The summary a quick log gets when the user types none: "Phone call with Jo Bloggs"."""
    return f"{kind_label} with {subject}"[:SUMMARY_MAX]


def clean(db: Database, values: dict, today: date | None = None) -> dict:
    """Check and normalise an interaction's fields, reporting every problem at once."""
    today = today or clock.now().date()
    out = fields.check_all(
        {
            "branch_id": lambda: fields.required_id(values.get("branch_id"), "Branch"),
            "occurred_on": lambda: _occurred_on(values.get("occurred_on") or today, today),
            "kind_code": lambda: _kind(db, values.get("kind_code")),
            "summary": lambda: fields.text(values.get("summary"), "Summary", required=True, max_length=SUMMARY_MAX),
            "notes": lambda: fields.long_text(values.get("notes"), "Notes"),
            "follow_up_on": lambda: fields.date_value(values.get("follow_up_on"), "Follow-up date", today=today),
            "follow_up_action": lambda: fields.text(values.get("follow_up_action"), "Follow-up action"),
            "contact_ids": lambda: sorted({fields.required_id(c, "Contacts") for c in values.get("contact_ids") or []}),
            "organisation_id": lambda: fields.optional_id(values.get("organisation_id"), "Organisation"),
        }
    )
    if out["follow_up_on"] and out["follow_up_on"] < out["occurred_on"]:
        raise ValidationError("Follow-up date", "cannot be before the interaction itself.")
    if out["follow_up_action"] and not out["follow_up_on"]:
        raise ValidationError("Follow-up date", "is required when there is a follow-up action.")
    if not out["contact_ids"] and out["organisation_id"] is None:
        raise ValidationError("Contacts", "choose at least one contact or an organisation.")
    for column in ("occurred_on", "follow_up_on"):
        out[column] = out[column].isoformat() if out[column] else None
    return out


def _occurred_on(value: object, today: date) -> date:
    when = fields.date_value(value, "Date", required=True)
    assert when is not None
    if when > today:
        raise ValidationError("Date", "cannot be in the future; log it once it has happened.")
    if when < EARLIEST:
        raise ValidationError("Date", f"cannot be before {EARLIEST.isoformat()}.")
    return when


def _kind(db: Database, code: str | None) -> str:
    code = (code or "").strip()
    if not code:
        raise ValidationError("Kind", "is required.")
    if not db.execute("SELECT 1 FROM interaction_kinds WHERE code = ?", [code]).fetchone():
        raise ValidationError("Kind", f"“{code}” is not a known kind of interaction.")
    return code


def _resolve_people(db: Database, actor: Actor, cleaned: dict) -> None:
    """Check the contacts belong to the interaction's branch; take the organisation from them if unset."""
    require_branch(db, actor, cleaned["branch_id"])
    ids = cleaned["contact_ids"]
    if ids:
        marks = ", ".join("?" for _ in ids)
        rows = db.execute(
            f"SELECT id, organisation_id FROM contacts WHERE id IN ({marks}) AND branch_id = ?",
            [*ids, cleaned["branch_id"]],
        ).fetchall()
        if len(rows) != len(ids):
            raise ValidationError("Contacts", "must all be contacts of the interaction's branch.")
        organisations = {org for _, org in rows}
        if cleaned["organisation_id"] is None and len(organisations) == 1:
            cleaned["organisation_id"] = organisations.pop()
    if (
        cleaned["organisation_id"] is not None
        and not db.execute("SELECT 1 FROM organisations WHERE id = ?", [cleaned["organisation_id"]]).fetchone()
    ):
        raise ValidationError("Organisation", "does not exist.")


def _refresh_last_touched(db: Database, contact_ids: list[int]) -> None:
    # Kept current on every write so lists never scan the whole interactions table. It is derived data:
    # no version bump, so logging a call never makes someone's open edit of the contact conflict.
    if not contact_ids:
        return
    marks = ", ".join("?" for _ in contact_ids)
    db.execute(
        f"""
        UPDATE contacts SET last_touched_on = (
            SELECT max(occurred_on) FROM interaction_contacts WHERE contact_id = contacts.id)
        WHERE id IN ({marks})
        """,
        contact_ids,
    )


def _link_contacts(db: Database, interaction_id: int, contact_ids: list[int], cleaned: dict) -> None:
    # Each link carries the interaction's date and the branch that holds the contact now (the interaction's
    # branch, unless the contact has moved since), so coverage history reads one covering index.
    db.execute("DELETE FROM interaction_contacts WHERE interaction_id = ?", [interaction_id])
    for contact_id in contact_ids:
        db.execute(
            "INSERT INTO interaction_contacts (interaction_id, contact_id, occurred_on, branch_id) "
            "SELECT ?, id, ?, branch_id FROM contacts WHERE id = ?",
            [interaction_id, cleaned["occurred_on"], contact_id],
        )


def log(db: Database, actor: Actor, values: dict, *, confirmed: bool = False, today: date | None = None) -> int:
    """Record an interaction in a branch the actor may edit; returns its id.

    :raises PossibleClientData: when free text looks like it holds an NHS number, unless ``confirmed``.
    """
    cleaned = clean(db, values, today)
    if not confirmed:
        fields.refuse_nhs_numbers(cleaned, SENSITIVE_FIELDS)
    with transaction(db):
        _resolve_people(db, actor, cleaned)
        contact_ids = cleaned.pop("contact_ids")
        now = clock.stamp()
        row = {**cleaned, "created_at": now, "created_by": actor.id, "updated_at": now, "updated_by": actor.id}
        interaction_id = insert(db, "interactions", row)
        _link_contacts(db, interaction_id, contact_ids, cleaned)
        _refresh_last_touched(db, contact_ids)
        audit.record(db, actor, "create", "interactions", interaction_id, {**cleaned, "contact_ids": contact_ids})
    return interaction_id


def get(db: Database, actor: Actor, interaction_id: int) -> dict:
    """One interaction within scope, with its contact ids; :raises NotFound: otherwise.

    ``moved_contact_ids`` are those of its contacts who have since moved to another branch: they stay linked,
    but are not the interaction's branch's to choose or drop, and may be outside the actor's scope.
    """
    select, select_params = _select(actor)
    where, params = branch_clause(actor, "i.branch_id")
    rows = db.execute_returning_dicts(f"{select} WHERE i.id = ? AND {where}", [*select_params, interaction_id, *params])
    if not rows:
        raise NotFound("That interaction does not exist or is not in one of your branches.")
    row = rows[0]
    links = db.execute(
        """SELECT l.contact_id, c.branch_id FROM interaction_contacts l JOIN contacts c ON c.id = l.contact_id
           WHERE l.interaction_id = ? ORDER BY l.contact_id""",
        [interaction_id],
    ).fetchall()
    row["contact_ids"] = [contact_id for contact_id, _ in links]
    row["moved_contact_ids"] = [contact_id for contact_id, branch in links if branch != row["branch_id"]]
    return row


def _check_version(before: dict, expected_version: int) -> None:
    if before["version"] != expected_version:
        raise Conflict(
            "This interaction was changed by someone else while you were editing. "
            "Reload it to see their changes, then make yours again."
        )


def update(
    db: Database, actor: Actor, interaction_id: int, values: dict, expected_version: int, *, confirmed: bool = False
) -> bool:
    """Save edits to an interaction; returns False when they change nothing (and nothing is written).

    :raises Conflict: when someone saved it after ``expected_version``.
    """
    cleaned = clean(db, values)
    if not confirmed:
        fields.refuse_nhs_numbers(cleaned, SENSITIVE_FIELDS)
    with transaction(db):
        before = get(db, actor, interaction_id)
        _check_version(before, expected_version)
        # Contacts who moved to another branch stay linked: the form of this branch neither shows nor drops them.
        moved = set(before["moved_contact_ids"])
        cleaned["contact_ids"] = [c for c in cleaned["contact_ids"] if c not in moved]
        _resolve_people(db, actor, cleaned)
        contact_ids = sorted(set(cleaned.pop("contact_ids")) | moved)
        changes = audit.diff(before, {**cleaned, "contact_ids": contact_ids})
        if not changes:
            return False
        update_row(db, "interactions", interaction_id, {**cleaned, "updated_by": actor.id})
        _link_contacts(db, interaction_id, contact_ids, cleaned)
        _refresh_last_touched(db, sorted(set(contact_ids) | set(before["contact_ids"])))
        audit.record(db, actor, "update", "interactions", interaction_id, changes)
    return True


def delete(db: Database, actor: Actor, interaction_id: int, expected_version: int) -> None:
    """Delete an interaction (its contacts' last-touched dates are recomputed); audited with what it held."""
    with transaction(db):
        before = get(db, actor, interaction_id)
        _check_version(before, expected_version)
        db.execute("DELETE FROM interactions WHERE id = ?", [interaction_id])
        _refresh_last_touched(db, before["contact_ids"])
        kept = ("branch_id", "organisation_id", "occurred_on", "kind_code", "summary", "contact_ids")
        audit.record(db, actor, "delete", "interactions", interaction_id, {k: before[k] for k in kept})


def complete_follow_up(db: Database, actor: Actor, interaction_id: int, done_on: date | None = None) -> None:
    """Mark an interaction's follow-up as done."""
    done = (done_on or clock.now().date()).isoformat()
    with transaction(db):
        before = get(db, actor, interaction_id)
        if not before["follow_up_on"]:
            raise ValidationError("Follow-up", "this interaction has no follow-up to complete.")
        db.execute(
            "UPDATE interactions SET follow_up_done_on = ?, updated_at = ?, updated_by = ?, version = version + 1 "
            "WHERE id = ?",
            [done, clock.stamp(), actor.id, interaction_id],
        )
        audit.record(
            db,
            actor,
            "update",
            "interactions",
            interaction_id,
            {"follow_up_done_on": [before["follow_up_done_on"], done]},
        )


def most_used_kind(db: Database, actor: Actor) -> str:
    """The kind of interaction this user logs most often (ties go to the kind listed first), else a phone call."""
    row = db.execute(
        """SELECT i.kind_code FROM interactions i JOIN interaction_kinds k ON k.code = i.kind_code
           WHERE i.created_by = ? GROUP BY i.kind_code ORDER BY count(*) DESC, k.sort_order, k.label LIMIT 1""",
        [actor.id],
    ).fetchone()
    return row[0] if row else DEFAULT_KIND


def complete_with_touch(
    db: Database, actor: Actor, interaction_id: int, values: dict, *, confirmed: bool = False
) -> int:
    """Log the touch that answers a follow-up and mark the follow-up done on its date, in one transaction;
    returns the new interaction's id. The touch keeps the follow-up's branch, contacts and organisation.

    :raises Conflict: when the follow-up was completed meanwhile (by a colleague, or in another tab).
    :raises PossibleClientData: when the outcome looks like it holds an NHS number, unless ``confirmed``.
    """
    with transaction(db):
        follow_up = get(db, actor, interaction_id)
        if not follow_up["follow_up_on"]:
            raise ValidationError("Follow-up", "this interaction has no follow-up to complete.")
        if follow_up["follow_up_done_on"]:
            raise Conflict("This follow-up has already been marked done.")
        touch = {
            **values,
            "branch_id": follow_up["branch_id"],
            "contact_ids": [c for c in follow_up["contact_ids"] if c not in follow_up["moved_contact_ids"]],
            "organisation_id": follow_up["organisation_id"],
        }
        touch_id = log(db, actor, touch, confirmed=confirmed)
        done_on = db.execute("SELECT occurred_on FROM interactions WHERE id = ?", [touch_id]).fetchone()[0]
        complete_follow_up(db, actor, interaction_id, done_on=date.fromisoformat(done_on))
    return touch_id


def undo_complete_with_touch(db: Database, actor: Actor, interaction_id: int, touch_id: int) -> None:
    """Undo ``complete_with_touch`` in one transaction: delete the touch it logged and reopen the follow-up.

    :raises PermissionDenied: when the touch was logged by someone else (only your own action can be undone).
    """
    with transaction(db):
        touch = get(db, actor, touch_id)
        if db.execute("SELECT created_by FROM interactions WHERE id = ?", [touch_id]).fetchone()[0] != actor.id:
            raise PermissionDenied("Only the person who logged that touch can undo it.")
        follow_up = get(db, actor, interaction_id)
        delete(db, actor, touch_id, touch["version"])
        if follow_up["follow_up_done_on"]:
            db.execute(
                "UPDATE interactions SET follow_up_done_on = NULL, updated_at = ?, updated_by = ?, "
                "version = version + 1 WHERE id = ?",
                [clock.stamp(), actor.id, interaction_id],
            )
            audit.record(
                db,
                actor,
                "update",
                "interactions",
                interaction_id,
                {"follow_up_done_on": [follow_up["follow_up_done_on"], None]},
            )


def _matching(
    actor: Actor,
    *,
    branch_id: int | None = None,
    contact_id: int | None = None,
    organisation_id: int | None = None,
    kind_code: str | None = None,
    since: date | None = None,
    until: date | None = None,
    text: str = "",
) -> tuple[str, list]:
    """The WHERE condition (over ``i``) of the interactions within scope matching every filter given.

    :raises ValidationError: for search text that is too long or holds control characters.
    """
    where, params = branch_clause(actor, "i.branch_id")
    conditions, values = [where], list(params)
    for condition, value in (
        ("i.branch_id = ?", branch_id),
        ("i.id IN (SELECT interaction_id FROM interaction_contacts WHERE contact_id = ?)", contact_id),
        ("i.organisation_id = ?", organisation_id),
        ("i.kind_code = ?", kind_code),
        ("i.occurred_on >= ?", since.isoformat() if since else None),
        ("i.occurred_on <= ?", until.isoformat() if until else None),
    ):
        if value is not None:
            conditions.append(condition)
            values.append(value)
    text = fields.search_text(text)
    if text:
        conditions.append("(i.summary LIKE ? ESCAPE '\\' OR i.notes LIKE ? ESCAPE '\\')")
        values += [fields.like_contains(text)] * 2
    return " AND ".join(conditions), values


def search(
    db: Database,
    actor: Actor,
    *,
    branch_id: int | None = None,
    contact_id: int | None = None,
    organisation_id: int | None = None,
    kind_code: str | None = None,
    since: date | None = None,
    until: date | None = None,
    text: str = "",
    limit: int = 200,
    offset: int = 0,
) -> list[dict]:
    """Interactions within scope matching every filter given, newest first (a timeline): ``limit`` of them,
    after skipping the first ``offset``. ``search_count`` counts them all.

    The page of ids is chosen first, so the contacts' names are looked up only for the rows returned.

    :raises ValidationError: for search text that is too long or holds control characters.
    """
    select, select_params = _select(actor)
    where, values = _matching(
        actor,
        branch_id=branch_id,
        contact_id=contact_id,
        organisation_id=organisation_id,
        kind_code=kind_code,
        since=since,
        until=until,
        text=text,
    )
    return db.execute_returning_dicts(
        f"""{select}
        WHERE i.id IN (SELECT i.id FROM interactions i WHERE {where}
                       ORDER BY i.occurred_on DESC, i.id DESC LIMIT ? OFFSET ?)
        ORDER BY i.occurred_on DESC, i.id DESC""",
        [*select_params, *values, limit, offset],
    )


def search_count(db: Database, actor: Actor, *, at_most: int | None = None, **filters) -> int:
    """How many interactions ``search`` finds with these filters (``search``'s keywords), counted in SQL; with
    ``at_most``, counting stops after at_most + 1 (a result above at_most means "more than at_most"), so a wide
    scope costs no more.

    :raises ValidationError: for search text that is too long or holds control characters.
    """
    where, values = _matching(actor, **filters)
    return db.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM interactions i WHERE {where} LIMIT ?)",
        [*values, -1 if at_most is None else at_most + 1],
    ).fetchone()[0]


def contact_choices(
    db: Database,
    actor: Actor,
    branch_id: int,
    *,
    organisation_id: int | None = None,
    text: str = "",
    limit: int = 50,
) -> list[dict]:
    """Contacts of a branch to pick for an interaction (``id``, ``name``, ``organisation``): those matching
    ``text`` (name, job title, email or organisation), at ``organisation_id`` if given, whether active or left;
    the ``limit`` most recently in touch first (never touched last, then by name). Chosen and cut in SQL.

    :raises ValidationError: for search text that is too long or holds control characters.
    """
    where, params = branch_clause(actor, "c.branch_id")
    conditions, values = [where, "c.branch_id = ?"], [*params, branch_id]
    if organisation_id is not None:
        conditions.append("c.organisation_id = ?")
        values.append(organisation_id)
    text = fields.search_text(text)
    if text:
        searched = ("c.name", "c.job_title", "c.email", "o.name")
        conditions.append("(" + " OR ".join(f"{column} LIKE ? ESCAPE '\\'" for column in searched) + ")")
        values += [fields.like_contains(text)] * len(searched)
    return db.execute_returning_dicts(
        f"""SELECT c.id, c.name, o.name AS organisation
            FROM contacts c JOIN organisations o ON o.id = c.organisation_id
            WHERE {" AND ".join(conditions)}
            ORDER BY c.last_touched_on IS NULL, c.last_touched_on DESC, c.name COLLATE NOCASE, c.id
            LIMIT ?""",
        [*values, limit],
    )


def _due_follow_ups(actor: Actor, today: date, branch_id: int | None) -> tuple[str, list]:
    """The ids of open follow-ups within scope due by the end of the coming week (FROM and WHERE, soonest first
    left to the caller); those whose people are all do-not-contact or erased are left out."""
    where, params = branch_clause(actor, "i.branch_id")
    horizon = (today + timedelta(days=FOLLOW_UP_HORIZON_DAYS)).isoformat()
    sql = f"""
        FROM interactions i
        WHERE i.follow_up_on IS NOT NULL AND i.follow_up_done_on IS NULL AND i.follow_up_on <= ? AND {where}
          AND (? IS NULL OR i.branch_id = ?)
          AND (NOT EXISTS (SELECT 1 FROM interaction_contacts l WHERE l.interaction_id = i.id)
               OR EXISTS (SELECT 1 FROM interaction_contacts l JOIN contacts c ON c.id = l.contact_id
                          WHERE l.interaction_id = i.id AND c.do_not_contact = 0 AND c.erased_at IS NULL))
    """
    return sql, [horizon, *params, branch_id, branch_id]


def follow_ups(
    db: Database,
    actor: Actor,
    *,
    today: date | None = None,
    branch_id: int | None = None,
    limit: int | None = None,
    by_branch: bool = False,
) -> list[dict]:
    """Open follow-ups within scope that are overdue or due within the coming week, soonest first; those whose
    people are all do-not-contact or erased are left out.

    ``limit`` keeps only the soonest ones (chosen and cut in SQL, before the rows are read in full); ``by_branch``
    then lists those branch by branch (by branch name), soonest first within each. ``follow_ups_count`` counts
    them all. Each row has ``state``: "overdue" (date passed) or "due" (today or within FOLLOW_UP_HORIZON_DAYS).
    """
    today = today or clock.now().date()
    select, select_params = _select(actor)
    due, due_params = _due_follow_ups(actor, today, branch_id)
    chosen = f"SELECT i.id {due} ORDER BY i.follow_up_on, i.id"
    if limit is not None:
        chosen += " LIMIT ?"
        due_params.append(limit)
    order = "b.name, i.branch_id, i.follow_up_on, i.id" if by_branch else "i.follow_up_on, i.id"
    rows = db.execute_returning_dicts(
        f"{select} WHERE i.id IN ({chosen}) ORDER BY {order}", [*select_params, *due_params]
    )
    for row in rows:
        row["state"] = "overdue" if row["follow_up_on"] < today.isoformat() else "due"
    return rows


def follow_ups_count(db: Database, actor: Actor, *, today: date | None = None, branch_id: int | None = None) -> int:
    """How many follow-ups ``follow_ups`` would list without a limit, counted in SQL."""
    due, params = _due_follow_ups(actor, today or clock.now().date(), branch_id)
    return db.execute(f"SELECT count(*) {due}", params).fetchone()[0]


def people(db: Database, actor: Actor, interaction_ids: list[int]) -> dict[int, list[dict]]:
    """The contacts of each interaction that ``actor`` may see (in scope, not erased), as contact rows with
    display fields (phone_link and so on), by interaction id; interactions without any map to []."""
    found: dict[int, list[dict]] = {i: [] for i in interaction_ids}
    if not interaction_ids:
        return found
    marks = ", ".join("?" for _ in interaction_ids)
    links = db.execute(
        f"SELECT interaction_id, contact_id FROM interaction_contacts WHERE interaction_id IN ({marks})",
        interaction_ids,
    ).fetchall()
    where, params = branch_clause(actor, "c.branch_id")
    contact_ids = sorted({contact_id for _, contact_id in links})
    visible = {
        row["id"]: row
        for row in contacts.query(
            db,
            f"c.id IN ({', '.join('?' for _ in contact_ids) or 'NULL'}) AND c.erased_at IS NULL AND {where}",
            [*contact_ids, *params],
        )
    }
    for interaction_id, contact_id in links:
        if contact_id in visible:
            found[interaction_id].append(visible[contact_id])
    for rows in found.values():
        rows.sort(key=lambda row: (row["name"].casefold(), row["id"]))
    return found


def referrals_by_type(db: Database, actor: Actor, since: date, until: date) -> list[dict]:
    """Referrals received between two dates (inclusive) per branch and partner type, within scope."""
    where, params = branch_clause(actor, "i.branch_id")
    return db.execute_returning_dicts(
        f"""
        SELECT b.name AS branch, coalesce(t.label, 'No organisation') AS partner_type, count(*) AS referrals
        FROM interactions i
        JOIN branches b ON b.id = i.branch_id
        LEFT JOIN organisations o ON o.id = i.organisation_id
        LEFT JOIN organisation_types t ON t.code = o.type_code
        WHERE i.kind_code = ? AND i.occurred_on BETWEEN ? AND ? AND {where}
        GROUP BY b.id, t.code
        ORDER BY b.name, referrals DESC, partner_type
        """,
        [REFERRAL, since.isoformat(), until.isoformat(), *params],
    )


def to_call(db: Database, actor: Actor, today: date | None = None) -> list[dict]:
    """Who needs a call, within scope: open follow-ups overdue or due this week, then lapsed or never-contacted
    named contacts. One flat list (branch, what, state, date, who, organisation, detail, phone) for the CLI."""
    today = today or clock.now().date()
    rows = [
        {
            "branch": r["branch"],
            "what": "follow-up",
            "state": r["state"],
            "date": r["follow_up_on"],
            "who": r["contacts"] or "",
            "organisation": r["organisation"] or "",
            "detail": r["follow_up_action"] or r["summary"],
            "phone": "",
        }
        for r in follow_ups(db, actor, today=today)
    ]
    rows += [
        {
            "branch": r["branch"],
            "what": "named contact",
            "state": r["relationship"],
            "date": r["last_touched_on"] or "",
            "who": r["name"],
            "organisation": r["organisation"],
            "detail": f"{r['job_title']}; keep in touch every {r['interval_days']} days".lstrip("; "),
            "phone": r["phone_display"],
        }
        for r in contacts.lapsing(db, actor, today=today)
        if r["relationship"] in ("lapsed", "never")
    ]
    return rows
