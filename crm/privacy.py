"""A person's rights under UK GDPR: everything held about a contact, erasure, and not re-importing them.

Erasing keeps the shape of the history (interactions keep their date, kind, branch and organisation, so counts
stay true) and removes the person: their details on the contact record, their name, email and phone wherever
free text or the audit log mentions them in that branch, and a suppression entry (a salted hash, not the details)
refuses them if they are added or imported again.
"""

import json
import re
from collections.abc import Callable

from sqlite_utils import Database

from crm import audit, clock, contacts, interactions, phones, search, suppressions, testimonials
from crm.access import Actor
from crm.db import transaction, update_row
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


LABELS = {
    "id": "Record number",
    "name": "Name",
    "job_title": "Job title",
    "organisation": "Organisation",
    "type_label": "Partner type",
    "branch": "Branch",
    "phone_display": "Phone",
    "mobile_display": "Mobile",
    "email": "Email",
    "notes": "Notes",
    "is_named_contact": "Named contact",
    "status": "Status",
    "left_on": "Left on",
    "lawful_basis": "Lawful basis",
    "privacy_info_sent_on": "Privacy information sent on",
    "do_not_contact": "Do not contact",
    "created_at": "Added",
    "updated_at": "Last changed",
    "last_touched_on": "Last touched",
}


YES_NO = {"is_named_contact", "do_not_contact"}


def _readable(key: str, value: object) -> str:
    if key in YES_NO:
        return "yes" if value else "no"
    return "-" if value in (None, "") else str(value)


def export_text(data: dict) -> str:
    """The export as plain text a person can read."""
    contact = data["contact"]
    lines = [f"Everything Partner CRM holds about {contact['name']}", f"Exported {data['exported_at']}", ""]
    lines += [f"{LABELS.get(key, key)}: {_readable(key, value)}" for key, value in contact.items()]
    lines += ["", f"Interactions ({len(data['interactions'])})"]
    for r in data["interactions"]:
        line = f"- {r['occurred_on']} {r['kind']}: {r['summary']}" + (f" ({r['notes']})" if r["notes"] else "")
        if r["follow_up_on"]:
            line += f"; follow up on {r['follow_up_on']}: {r['follow_up_action'] or 'no action given'}"
        lines.append(line)
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
                   privacy_info_sent_on = NULL, left_on = coalesce(left_on, ?), erased_at = ?,
                   version = version + 1
               WHERE id = ?""",
            [ERASED_NAME, clock.now().date().isoformat(), clock.stamp(), contact_id],
        )
        db.execute("UPDATE audit_log SET changes = '{}' WHERE table_name = 'contacts' AND row_id = ?", [contact_id])
        # Testimonials they gave go entirely (the quote is theirs); other text that names them is scrubbed.
        for (testimonial_id,) in db.execute(
            "SELECT id FROM testimonials WHERE contact_id = ? OR (branch_id = ? AND giver_name = ?)",
            [contact_id, contact["branch_id"], contact["name"]],
        ).fetchall():
            testimonials.delete(db, actor, testimonial_id)
            db.execute(
                "UPDATE audit_log SET changes = '{}' WHERE table_name = 'testimonials' AND row_id = ? AND action != ?",
                [testimonial_id, "delete"],
            )
        _scrub(db, contact["branch_id"], identifiers)
        # Rebuild the search index, so no copy of a deleted or scrubbed word stays in its segments.
        db.execute("INSERT INTO testimonials_fts (testimonials_fts) VALUES ('rebuild')")
        search.forget_deleted(db)
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


def _scrub(db: Database, branch_id: int, values: list[str]) -> None:
    """Replace each of ``values`` (any letter case, as whole words) with [erased] in the branch's free text and
    in the audit entries about the branch's records.

    Rows are matched in Python: SQLite's LIKE folds case for ASCII letters only, so "ZOË" would escape it.
    Every changed record gets a new version, so an edit opened before the erasure cannot save the name back.
    """
    words = [re.compile(rf"(?<!\w){re.escape(value)}(?!\w)", re.IGNORECASE) for value in values]

    def scrubbed(text: str) -> str:
        for word in words:
            text = word.sub(ERASED, text)
        return text

    for table, columns in (
        ("interactions", ("summary", "notes", "follow_up_action")),
        ("testimonials", ("quote", "giver_name")),
        ("contacts", ("notes",)),
    ):
        for row in db.execute_returning_dicts(
            f"SELECT id, {', '.join(columns)} FROM {table} WHERE branch_id = ?", [branch_id]
        ):
            changed = {c: scrubbed(row[c]) for c in columns if row[c] and scrubbed(row[c]) != row[c]}
            if changed:
                update_row(db, table, row["id"], changed)
    for row_id, changes in db.execute(
        "SELECT a.id, a.changes FROM audit_log a WHERE a.branch_id = ?", [branch_id]
    ).fetchall():
        cleaned = json.dumps(_replace_strings(json.loads(changes), scrubbed), ensure_ascii=False)
        if cleaned != changes:
            db.execute("UPDATE audit_log SET changes = ? WHERE id = ?", [cleaned, row_id])


def _replace_strings(value: object, scrubbed: Callable[[str], str]) -> object:
    if isinstance(value, str):
        return scrubbed(value)
    if isinstance(value, list):
        return [_replace_strings(v, scrubbed) for v in value]
    if isinstance(value, dict):
        return {k: _replace_strings(v, scrubbed) for k, v in value.items()}
    return value
