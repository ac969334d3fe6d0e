"""A person's rights under UK GDPR: everything held about a contact, erasure, and not re-importing them.

Erasing keeps the shape of the history (interactions keep their date, kind, branch and organisation, so counts
stay true) and removes the person: their details on the contact record, their name, email and phone wherever
free text or the audit log mentions them in that branch, and a suppression entry (a salted hash, not the details)
refuses them if they are added or imported again.
"""

import json
import re

from sqlite_utils import Database

from crm import audit, clock, contacts, interactions, phones, suppressions, testimonials
from crm.access import Actor
from crm.db import transaction
from crm.errors import ValidationError

ERASED = "[erased]"
ERASED_NAME = "Erased contact"


def export_person(db: Database, actor: Actor, contact_id: int) -> dict:
    """Everything held about one contact (scoped to the actor): the record, their interactions, the audit trail."""
    contact = contacts.get(db, actor, contact_id)
    history = interactions.search(db, actor, contact_id=contact_id, limit=100_000)
    trail = audit.entries(db, "contacts", contact_id, limit=100_000)
    given = [t for t in testimonials.search(db, actor, branch_id=contact["branch_id"]) if t["contact_id"] == contact_id]
    with transaction(db):
        audit.record(db, actor, "export_person", "contacts", contact_id)
    keep = (
        "id",
        "name",
        "job_title",
        "organisation",
        "type_label",
        "branch",
        "phone_display",
        "mobile_display",
        "email",
        "notes",
        "is_named_contact",
        "status",
        "left_on",
        "lawful_basis",
        "privacy_info_sent_on",
        "do_not_contact",
        "created_at",
        "updated_at",
        "last_touched_on",
    )
    return {
        "exported_at": clock.stamp(),
        "contact": {k: contact.get(k) for k in keep},
        "interactions": [
            {
                k: r[k]
                for k in (
                    "occurred_on",
                    "kind",
                    "summary",
                    "notes",
                    "follow_up_on",
                    "follow_up_action",
                    "logged_by",
                    "branch",
                    "organisation",
                )
            }
            for r in history
        ],
        "testimonials": [
            {
                k: t[k]
                for k in (
                    "received_on",
                    "quote",
                    "source",
                    "consent_scope",
                    "attribution",
                    "consent_given_on",
                    "consent_withdrawn_on",
                )
            }
            for t in given
        ],
        "changes": [{k: e[k] for k in ("at", "username", "action", "changes")} for e in trail],
    }


def export_text(data: dict) -> str:
    """The export as plain text a person can read."""
    contact = data["contact"]
    lines = [f"Everything Partner CRM holds about {contact['name']}", f"Exported {data['exported_at']}", ""]
    lines += [
        f"{key.replace('_', ' ').capitalize()}: {value if value not in (None, '') else '-'}"
        for key, value in contact.items()
    ]
    lines += ["", f"Interactions ({len(data['interactions'])})"]
    lines += [
        f"- {r['occurred_on']} {r['kind']}: {r['summary']}" + (f" ({r['notes']})" if r["notes"] else "")
        for r in data["interactions"]
    ]
    lines += ["", f"Testimonials given ({len(data['testimonials'])})"]
    lines += [f"- {t['received_on']}: {t['quote']} (consent: {t['consent_scope']})" for t in data["testimonials"]]
    lines += ["", f"Changes to the record ({len(data['changes'])})"]
    lines += [
        f"- {e['at']} {e['username']} {e['action']}: {json.dumps(e['changes'], ensure_ascii=False)}"
        for e in data["changes"]
    ]
    return "\n".join(lines) + "\n"


def to_json(data: dict) -> str:
    """The export as JSON (machine-readable)."""
    return json.dumps(data, ensure_ascii=False, indent=2)


def erase(db: Database, actor: Actor, contact_id: int) -> None:
    """Erase a contact's personal data everywhere in their branch; the interactions themselves stay."""
    with transaction(db):
        contact = contacts.get(db, actor, contact_id)
        if contact["erased_at"]:
            raise ValidationError("Contact", "has already been erased.")
        suppressions.add(db, actor, contact)
        identifiers = _identifiers(contact)
        db.execute(
            """UPDATE contacts SET name = ?, job_title = '', phone = NULL, phone_ext = NULL, mobile = NULL,
                   email = NULL, notes = '', status = 'left', is_named_contact = 0, do_not_contact = 1,
                   privacy_info_sent_on = NULL, erased_at = ?, version = version + 1
               WHERE id = ?""",
            [ERASED_NAME, clock.stamp(), contact_id],
        )
        db.execute("UPDATE audit_log SET changes = '{}' WHERE table_name = 'contacts' AND row_id = ?", [contact_id])
        # Testimonials they gave go entirely (the quote is theirs); other text that names them is scrubbed.
        for (testimonial_id,) in db.execute(
            "SELECT id FROM testimonials WHERE contact_id = ? OR (branch_id = ? AND giver_name = ?)",
            [contact_id, contact["branch_id"], contact["name"]],
        ).fetchall():
            testimonials.delete(db, actor, testimonial_id)
        for value in identifiers:
            _scrub(db, contact["branch_id"], value)
        # Rebuild the search index, so no copy of a deleted or scrubbed word stays in its segments.
        db.execute("INSERT INTO testimonials_fts (testimonials_fts) VALUES ('rebuild')")
        audit.record(db, actor, "erase", "contacts", contact_id, {"erased": True})


def _identifiers(contact: dict) -> list[str]:
    """Every way the person's details may be written: name, email, and each phone in each usual format."""
    values = {contact["name"], contact["email"] or ""}
    for number, ext in ((contact["phone"], contact["phone_ext"]), (contact["mobile"], None)):
        if number:
            values |= {
                number,
                phones.national(number),
                phones.national(number).replace(" ", ""),
                phones.national(number, ext),
            }
    return sorted((v for v in values if v and len(v) >= 3), key=len, reverse=True)


def _scrub(db: Database, branch_id: int, value: str) -> None:
    """Replace ``value`` (any case, as a whole word) with [erased] in the branch's free text and the audit log."""
    pattern = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    word = re.compile(rf"(?<!\w){re.escape(value)}(?!\w)", re.IGNORECASE)
    for table, column in (
        ("interactions", "summary"),
        ("interactions", "notes"),
        ("interactions", "follow_up_action"),
        ("testimonials", "quote"),
        ("testimonials", "giver_name"),
    ):
        for row_id, text in db.execute(
            f"SELECT id, {column} FROM {table} WHERE branch_id = ? AND {column} LIKE ? ESCAPE '\\'",
            [branch_id, pattern],
        ).fetchall():
            db.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", [word.sub(ERASED, text), row_id])
    for row_id, text in db.execute(
        "SELECT id, notes FROM contacts WHERE branch_id = ? AND notes LIKE ? ESCAPE '\\'", [branch_id, pattern]
    ).fetchall():
        db.execute("UPDATE contacts SET notes = ? WHERE id = ?", [word.sub(ERASED, text), row_id])
    # The audit trail keeps who did what and when, not the person's details.
    for row_id, changes in db.execute(
        "SELECT id, changes FROM audit_log WHERE changes LIKE ? ESCAPE '\\'", [pattern]
    ).fetchall():
        cleaned = _replace_strings(json.loads(changes), word)
        db.execute("UPDATE audit_log SET changes = ? WHERE id = ?", [json.dumps(cleaned, ensure_ascii=False), row_id])


def _replace_strings(value: object, word: re.Pattern) -> object:
    if isinstance(value, str):
        return word.sub(ERASED, value)
    if isinstance(value, list):
        return [_replace_strings(v, word) for v in value]
    if isinstance(value, dict):
        return {k: _replace_strings(v, word) for k, v in value.items()}
    return value
