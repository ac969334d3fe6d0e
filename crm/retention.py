"""Retention review: contacts nobody has been in touch with for a long time are reviewed, not kept by default.

Each is kept (with a reason and a date for the next review), marked as having left, or erased.
"""

import json
from datetime import date, timedelta

from sqlite_utils import Database

from crm import audit, clock, contacts, fields, settings
from crm.access import ADMIN, Actor, branch_clause, require_role
from crm.db import transaction, update_row
from crm.errors import ValidationError

SETTING = "retention_months"
DEFAULT_MONTHS = 24


def months(db: Database) -> int:
    """How long a contact may go untouched before review (months)."""
    return int(settings.get(db, SETTING, str(DEFAULT_MONTHS)))


def set_months(db: Database, actor: Actor, value: int) -> None:
    """Change the review period (administrators)."""
    require_role(actor, ADMIN)
    number = fields.optional_id(value, "Review contacts untouched for")
    if number is None or not 1 <= number <= 120:
        raise ValidationError("Review contacts untouched for", "must be between 1 and 120 months.")
    settings.put(db, actor, SETTING, str(number))


def cutoff(db: Database, today: date) -> date:
    """The day before which a last touch counts as too long ago (months taken as 30.44 days)."""
    return today - timedelta(days=round(months(db) * 30.44))


def _due_ids(
    db: Database, actor: Actor, today: date, branch_id: int | None, limit: int | None
) -> list[tuple[int, int]]:
    """(id, how many are due in all) of the contacts due for review, oldest touch first, up to ``limit``: read
    from the contacts table alone (its few columns the test and the order need), counted in the same scan."""
    where, params = branch_clause(actor, "c.branch_id")
    rows = db.execute(
        f"""SELECT c.id, count(*) OVER () FROM contacts c
            WHERE c.erased_at IS NULL AND {where} AND (? IS NULL OR c.branch_id = ?)
              AND coalesce(c.last_touched_on, substr(c.created_at, 1, 10)) < ?
              AND (c.retention_review_on IS NULL OR c.retention_review_on <= ?)
            ORDER BY coalesce(c.last_touched_on, ''), c.name, c.id
            LIMIT ?""",
        [*params, branch_id, branch_id, cutoff(db, today).isoformat(), today.isoformat(), limit or -1],
    ).fetchall()
    return [(contact_id, total) for contact_id, total in rows]


def _contacts_in_order(db: Database, ranked: list[tuple[int, int]], today: date) -> list[dict]:
    position = {contact_id: n for n, (contact_id, _) in enumerate(ranked)}
    rows = contacts.query(db, "c.id IN (SELECT value FROM json_each(?))", [json.dumps(list(position))], today=today)
    return sorted(rows, key=lambda row: position[row["id"]])


def due(db: Database, actor: Actor, *, today: date | None = None, branch_id: int | None = None) -> list[dict]:
    """Contacts in scope to review: untouched since the cutoff (or never touched and added before it), not erased,
    and not kept past today by an earlier review. Oldest touch first."""
    today = today or clock.now().date()
    return _contacts_in_order(db, _due_ids(db, actor, today, branch_id, None), today)


def due_first(
    db: Database, actor: Actor, limit: int, *, today: date | None = None, branch_id: int | None = None
) -> tuple[list[dict], int]:
    """The first ``limit`` contacts ``due`` lists, and how many it lists in all (counted in SQL)."""
    today = today or clock.now().date()
    ranked = _due_ids(db, actor, today, branch_id, limit)
    return _contacts_in_order(db, ranked, today), ranked[0][1] if ranked else 0


def keep(
    db: Database,
    actor: Actor,
    contact_id: int,
    reason: str,
    review_on: date | str,
    *,
    expected_version: int | None = None,
) -> None:
    """Keep a contact after review, saying why, until the next review date.

    :raises Conflict: when the contact changed after ``expected_version`` (the version the user chose it at).
    """
    reason = fields.text(reason, "Reason for keeping", required=True)
    review = fields.date_value(review_on, "Next review", required=True)
    assert review is not None
    if review <= clock.now().date():
        raise ValidationError("Next review", "must be in the future.")
    with transaction(db):
        before = contacts.get(db, actor, contact_id)
        if before["erased_at"]:
            raise ValidationError("Contact", "has been erased, so it cannot be changed.")
        contacts.check_version(before, expected_version, "they were not kept")
        changes = {"retention_review_on": review.isoformat(), "retention_reason": reason}
        update_row(db, "contacts", contact_id, {**changes, "updated_by": actor.id})
        audit.record(db, actor, "retention_keep", "contacts", contact_id, audit.diff(before, changes))
