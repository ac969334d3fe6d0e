"""Retention review: contacts nobody has been in touch with for a long time are reviewed, not kept by default.

Each is kept (with a reason and a date for the next review), marked as having left, or erased.
"""

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


def due(db: Database, actor: Actor, *, today: date | None = None, branch_id: int | None = None) -> list[dict]:
    """Contacts in scope to review: untouched since the cutoff (or never touched and added before it), not erased,
    and not kept past today by an earlier review. Oldest touch first."""
    today = today or clock.now().date()
    limit = cutoff(db, today).isoformat()
    where, params = branch_clause(actor, "c.branch_id")
    return contacts.query(
        db,
        f"""c.erased_at IS NULL AND {where} AND (? IS NULL OR c.branch_id = ?)
            AND coalesce(c.last_touched_on, substr(c.created_at, 1, 10)) < ?
            AND (c.retention_review_on IS NULL OR c.retention_review_on <= ?)""",
        [*params, branch_id, branch_id, limit, today.isoformat()],
        order_by="coalesce(c.last_touched_on, ''), c.name",
        today=today,
    )


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
