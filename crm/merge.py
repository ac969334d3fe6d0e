"""Merging duplicates: two contacts of one branch, or two organisations of the directory.

Everything linked to the merged record (interactions, follow-ups with them, referrals, testimonials, successors;
for an organisation also every branch's contacts there) moves to the survivor in one transaction, the merged row
is deleted, and its id keeps resolving to the survivor (``resolve``). The survivor keeps its own values, takes the
merged record's where its own are blank, and takes the fields the user picks (``take``). Both steps are audited.
"""

from sqlite_utils import Database

from crm import audit, clock, contacts, organisations
from crm.access import BRANCH_MANAGER, Actor
from crm.db import transaction, update_row
from crm.errors import NotFound, PermissionDenied, ValidationError

# The fields a user may take from the merged record, as the form and --take name them.
CONTACT_FIELDS = (
    "name",
    "job_title",
    "phone",
    "mobile",
    "email",
    "notes",
    "is_named_contact",
    "keep_in_touch_days",
    "lawful_basis",
    "privacy_info_sent_on",
)
ORGANISATION_FIELDS = ("name", "type_code", "address", "postcode", "phone", "email", "website", "ods_code")
# Columns that travel with a field (an extension goes with its phone number).
_WITH = {"phone": ("phone", "phone_ext"), "mobile": ("mobile",)}


def resolve(db: Database, table: str, record_id: int) -> int:
    """The id a record is known by now: itself, or the survivor it was merged into (following later merges)."""
    seen = set()
    while record_id not in seen:
        seen.add(record_id)
        if db.execute(f"SELECT 1 FROM {table} WHERE id = ?", [record_id]).fetchone():
            return record_id
        row = db.execute(
            "SELECT survivor_id FROM merged_records WHERE table_name = ? AND old_id = ?", [table, record_id]
        ).fetchone()
        if row is None:
            return record_id
        record_id = row[0]
    return record_id


def _takes(take: list[str] | None, allowed: tuple[str, ...]) -> list[str]:
    unknown = sorted(set(take or []) - set(allowed))
    if unknown:
        raise ValidationError("Take", f"{', '.join(unknown)}: not a field that can be taken ({', '.join(allowed)}).")
    return list(take or [])


def _blank(value: object) -> bool:
    return value is None or value == ""


def _record_merge(db: Database, actor: Actor, table: str, survivor: int, merged: int, moved: dict, kept: dict) -> None:
    db.execute(
        "INSERT OR REPLACE INTO merged_records (table_name, old_id, survivor_id, merged_at, merged_by) "
        "VALUES (?, ?, ?, ?, ?)",
        [table, merged, survivor, clock.stamp(), actor.id],
    )
    # Earlier merges into the deleted record now lead straight to the survivor.
    db.execute(
        "UPDATE merged_records SET survivor_id = ? WHERE table_name = ? AND survivor_id = ?", [survivor, table, merged]
    )
    audit.record(db, actor, "merge", table, survivor, {"merged_id": merged, "moved": moved})
    audit.record(db, actor, "delete", table, merged, {"merged_into": survivor, **kept})


def merge_contacts(
    db: Database, actor: Actor, survivor_id: int, merged_id: int, *, take: list[str] | None = None
) -> dict[str, int]:
    """Merge contact ``merged_id`` into ``survivor_id`` (same branch, both editable by the actor); returns how
    many links of each kind moved.

    Do-not-contact carries over: if either asked not to be contacted, the survivor is marked so.
    """
    fields_taken = _takes(take, CONTACT_FIELDS)
    if survivor_id == merged_id:
        raise ValidationError("Merge", "choose two different contacts.")
    with transaction(db):
        survivor = contacts.get(db, actor, survivor_id)
        merged = contacts.get(db, actor, merged_id)
        if survivor["branch_id"] != merged["branch_id"]:
            raise ValidationError("Merge", "only contacts of the same branch can be merged.")
        if survivor["erased_at"] or merged["erased_at"]:
            raise ValidationError("Merge", "an erased contact cannot be merged.")
        values: dict = {}
        for field in CONTACT_FIELDS:
            columns = _WITH.get(field, (field,))
            if field in fields_taken or (_blank(survivor[field]) and not _blank(merged[field])):
                values.update({column: merged[column] for column in columns})
        if (
            "notes" not in fields_taken
            and survivor["notes"]
            and merged["notes"]
            and merged["notes"] not in (survivor["notes"])
        ):
            values["notes"] = f"{survivor['notes']}\n{merged['notes']}"
        if merged["do_not_contact"]:
            values["do_not_contact"] = 1
        if survivor["status"] == "left" and merged["status"] == "active":
            values.update(status="active", left_on=None)
        moved = _move_contact_links(db, survivor_id, merged_id)
        changes = audit.diff(survivor, values)
        update_row(db, "contacts", survivor_id, {**changes_to(changes), "updated_by": actor.id})
        db.execute(
            "UPDATE contacts SET last_touched_on = (SELECT max(occurred_on) FROM interaction_contacts "
            "WHERE contact_id = contacts.id) WHERE id = ?",
            [survivor_id],
        )
        db.execute("DELETE FROM contacts WHERE id = ?", [merged_id])
        kept = {k: merged[k] for k in ("branch_id", "organisation_id", "name")}
        _record_merge(db, actor, "contacts", survivor_id, merged_id, {**moved, "fields": changes}, kept)
    return moved


def changes_to(changes: dict) -> dict:
    """New values from an audit diff ({column: [old, new]})."""
    return {column: new for column, (_, new) in changes.items()}


def _move_contact_links(db: Database, survivor_id: int, merged_id: int) -> dict[str, int]:
    # An interaction with both people keeps one link, to the survivor.
    both = db.execute(
        "DELETE FROM interaction_contacts WHERE contact_id = ? AND interaction_id IN "
        "(SELECT interaction_id FROM interaction_contacts WHERE contact_id = ?)",
        [merged_id, survivor_id],
    ).rowcount
    moved = {
        "interactions": db.execute(
            "UPDATE interaction_contacts SET contact_id = ? WHERE contact_id = ?", [survivor_id, merged_id]
        ).rowcount
        + both,
        "referrals": db.execute(
            "UPDATE referrals SET contact_id = ? WHERE contact_id = ?", [survivor_id, merged_id]
        ).rowcount,
        "testimonials": db.execute(
            "UPDATE testimonials SET contact_id = ? WHERE contact_id = ?", [survivor_id, merged_id]
        ).rowcount,
        "successor_links": db.execute(
            "UPDATE contacts SET successor_id = ? WHERE successor_id = ? AND id != ?",
            [survivor_id, merged_id, survivor_id],
        ).rowcount,
    }
    db.execute("UPDATE contacts SET successor_id = NULL WHERE id = ? AND successor_id = ?", [survivor_id, merged_id])
    return moved


def merge_organisations(
    db: Database, actor: Actor, survivor_id: int, merged_id: int, *, take: list[str] | None = None
) -> dict[str, int]:
    """Merge organisation ``merged_id`` into ``survivor_id`` (typically a hand-made GP practice into the NHS
    directory's record); returns how many records of each kind moved.

    Who may: whoever may edit both records. A branch manager only when nothing at the merged organisation
    belongs to another branch (the move would change other branches' records).
    """
    fields_taken = _takes(take, ORGANISATION_FIELDS)
    if survivor_id == merged_id:
        raise ValidationError("Merge", "choose two different organisations.")
    with transaction(db):
        survivor = organisations.get(db, survivor_id)
        merged = organisations.get(db, merged_id)
        if not (organisations.can_edit(actor, survivor) and organisations.can_edit(actor, merged)):
            raise PermissionDenied("Only administrators and regional leads can merge these organisations.")
        if actor.role == BRANCH_MANAGER:
            others = db.execute(
                """SELECT (SELECT count(*) FROM contacts WHERE organisation_id = :o AND branch_id != :b)
                        + (SELECT count(*) FROM interactions WHERE organisation_id = :o AND branch_id != :b)
                        + (SELECT count(*) FROM referrals WHERE organisation_id = :o AND branch_id != :b)
                        + (SELECT count(*) FROM testimonials WHERE organisation_id = :o AND branch_id != :b)""",
                {"o": merged_id, "b": actor.branch_id},
            ).fetchone()[0]
            if others:
                raise PermissionDenied("Other branches have records at this organisation: ask your regional lead.")
        values: dict = {}
        for field in ORGANISATION_FIELDS:
            columns = _WITH.get(field, (field,))
            if field in fields_taken or (_blank(survivor[field]) and not _blank(merged[field])):
                values.update({column: merged[column] for column in columns})
        moved = {
            table: db.execute(
                f"UPDATE {table} SET organisation_id = ? WHERE organisation_id = ?", [survivor_id, merged_id]
            ).rowcount
            for table in ("contacts", "interactions", "referrals", "testimonials")
        }
        kept = {k: merged[k] for k in ("name", "type_code", "ods_code", "postcode")}
        db.execute("DELETE FROM organisations WHERE id = ?", [merged_id])  # frees its ODS code for the survivor
        changes = audit.diff(survivor, values)
        if changes:
            update_row(db, "organisations", survivor_id, changes_to(changes))
        _record_merge(db, actor, "organisations", survivor_id, merged_id, {**moved, "fields": changes}, kept)
    return moved


def get_contact(db: Database, actor: Actor, contact_id: int) -> dict:
    """A contact by any id it has had (a merged id gives its survivor); :raises NotFound: as contacts.get."""
    return contacts.get(db, actor, resolve(db, "contacts", contact_id))


def get_organisation(db: Database, organisation_id: int) -> dict:
    """An organisation by any id it has had."""
    try:
        return organisations.get(db, resolve(db, "organisations", organisation_id))
    except NotFound:
        raise NotFound("That organisation does not exist.") from None
