"""A person's rights under UK GDPR: everything held about a contact, erasure, and not re-importing them.

Erasing keeps the shape of the history (interactions keep their date, kind, branch and organisation, so counts
stay true) and removes the person: their details on the contact record, their name, email and phone wherever
free text or the audit log mentions them in any branch that holds their data (a move leaves history behind),
and a suppression entry (a keyed hash, not the details; see crm.suppressions) refuses them if they are added,
imported or edited in again.
"""

import json
import re
from collections.abc import Callable

from sqlite_utils import Database

from crm import audit, clock, contacts, interactions, phones, referrals, search, suppressions, testimonials
from crm.access import Actor
from crm.db import transaction, update_row
from crm.errors import ValidationError

ERASED = "[erased]"
ERASED_NAME = "Erased contact"


def export_person(db: Database, actor: Actor, contact_id: int) -> dict:
    """Everything held about one contact (scoped to the actor): the record, their interactions, the testimonials
    they gave, the referrals they sent, the audit trail."""
    contact = contacts.get(db, actor, contact_id)
    history = interactions.search(db, actor, contact_id=contact_id, limit=100_000)
    sent = referrals.search(db, actor, contact_id=contact_id, limit=100_000)
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
        # What concerns the referrer: when, how, from where, and what the branch answered. What the referral asked
        # for (hours, start, area, the provider's reference, the outcome note) is about the client, not them.
        "referrals": [
            {
                "received": r["received"],
                "branch": r["branch"],
                "organisation": r["organisation"],
                "channel": r["channel_label"],
                "urgency": r["urgency_label"],
                "outcome": r["outcome_label"],
                "decline_reason": r["decline_reason_label"],
                "decided": r["decided"],
            }
            for r in sent
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
    lines += ["", f"Referrals sent ({len(data['referrals'])})"]
    for r in data["referrals"]:
        how = ", ".join(part for part in (r["channel"], r["urgency"]) if part)
        line = f"- {r['received']}" + (f" ({how})" if how else "") + f" to {r['branch']}: {r['outcome']}"
        if r["decline_reason"]:
            line += f" ({r['decline_reason']})"
        if r["decided"]:
            line += f", decided {r['decided']}"
        lines.append(line)
    lines += ["", f"Changes to the record ({len(data['changes'])})"]
    lines += [
        f"- {e['at']} {e['username']} {e['action']}: {json.dumps(e['changes'], ensure_ascii=False)}"
        for e in data["changes"]
    ]
    return "\n".join(lines) + "\n"


def to_json(data: dict) -> str:
    """The export as JSON (machine-readable)."""
    return json.dumps(data, ensure_ascii=False, indent=2)


def erase(db: Database, actor: Actor, contact_id: int, *, expected_version: int | None = None) -> None:
    """Erase a contact's personal data everywhere it lies; the interactions themselves stay.

    The actor needs scope over the contact's current branch only: the person's data is then removed from every
    branch that holds it (where they were before a move too), in one transaction. Evidence files of their
    testimonials are deleted once it has committed, so a failed erasure loses nothing.

    :raises Conflict: when the contact changed after ``expected_version`` was read (the page passes the version
        of the record the user chose, so a colleague's change in between is never overridden by position).
    """
    with transaction(db):
        contact = contacts.get(db, actor, contact_id)
        if contact["erased_at"]:
            raise ValidationError("Contact", "has already been erased.")
        contacts.check_version(contact, expected_version, "nothing was erased")
        holding = _branches_holding(db, contact)
        suppressions.add(db, contact)
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
        evidence_files = _delete_testimonials(db, actor, contact, holding)
        _scrub(db, holding, identifiers)
        # Rebuild the search index, so no copy of a deleted or scrubbed word stays in its segments.
        db.execute("INSERT INTO testimonials_fts (testimonials_fts) VALUES ('rebuild')")
        search.forget_deleted(db)
        audit.record(db, actor, "erase", "contacts", contact_id, {"erased": True})
    for name in evidence_files:
        if not db.execute("SELECT 1 FROM testimonials WHERE evidence_file = ?", [name]).fetchone():
            testimonials.evidence_path(db, name).unlink(missing_ok=True)


def _branches_holding(db: Database, contact: dict) -> list[int]:
    """Every branch that holds something of the person: their branch now, and those of the interactions they
    took part in, of the testimonials they gave, and of their record's audit entries (a move leaves the old
    branch's history behind)."""
    contact_id = contact["id"]
    rows = db.execute(
        """SELECT ? UNION
           SELECT i.branch_id FROM interaction_contacts l JOIN interactions i ON i.id = l.interaction_id
           WHERE l.contact_id = ? UNION
           SELECT branch_id FROM testimonials WHERE contact_id = ? UNION
           SELECT branch_id FROM audit_log
           WHERE table_name = 'contacts' AND row_id = ? AND branch_id IS NOT NULL""",
        [contact["branch_id"], contact_id, contact_id, contact_id],
    ).fetchall()
    return sorted(r[0] for r in rows)


def _delete_testimonials(db: Database, actor: Actor, contact: dict, branch_ids: list[int]) -> list[str]:
    """Delete the testimonials the person gave (the quote is theirs), in whichever branch; returns their evidence
    file names, for the caller to delete after the transaction commits."""
    marks = ", ".join("?" for _ in branch_ids)
    found = db.execute(
        f"""SELECT id, branch_id, evidence_file FROM testimonials
            WHERE contact_id = ? OR (branch_id IN ({marks}) AND giver_name = ?)""",
        [contact["id"], *branch_ids, contact["name"]],
    ).fetchall()
    for testimonial_id, branch_id, _ in found:
        db.execute("DELETE FROM testimonials WHERE id = ?", [testimonial_id])
        db.execute(
            "UPDATE audit_log SET changes = '{}' WHERE table_name = 'testimonials' AND row_id = ?", [testimonial_id]
        )
        audit.record(db, actor, "delete", "testimonials", testimonial_id, {"branch_id": branch_id})
    return sorted({name for _, _, name in found if name})


def _identifiers(contact: dict) -> list[str]:
    """Every way the person's details may be written: name, email, and each phone in each usual format.

    Their name counts from two characters (王伟 is a whole name); other details from three.
    """
    values = {contact["email"] or ""}
    for number, ext in ((contact["phone"], contact["phone_ext"]), (contact["mobile"], None)):
        if number:
            values |= {
                number,
                phones.national(number),
                phones.national(number).replace(" ", ""),
                phones.national(number, ext),
            }
    found = {v for v in values if v and len(v) >= 3}
    name = contact["name"].strip()
    if len(name) >= 2:
        found.add(name)
    return sorted(found, key=len, reverse=True)


# Scripts written without spaces between words: a name there is found as it stands, since the letters around
# it belong to the next word ("王伟说" is "王伟" + "说"), not to a longer name.
_UNSPACED = re.compile(
    "[\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3100-\u312f"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003ffff]"
)


def mention_pattern(value: str) -> re.Pattern[str]:
    """A pattern finding ``value`` in any letter case as a whole word: not inside a longer word of a spaced
    script ("Sam Lee" is not in "Sam Leeson"), and anywhere where its edge is in an unspaced one (Chinese,
    Japanese, Korean, Thai...)."""
    before = "" if _UNSPACED.match(value[0]) else r"(?<!\w)"
    after = "" if _UNSPACED.match(value[-1]) else r"(?!\w)"
    return re.compile(before + re.escape(value) + after, re.IGNORECASE)


def _scrub(db: Database, branch_ids: list[int], values: list[str]) -> None:
    """Replace each of ``values`` (any letter case, as whole words) with [erased] in the free text of the given
    branches and in the audit entries about their records.

    Rows are matched in Python: SQLite's LIKE folds case for ASCII letters only, so "ZOË" would escape it.
    Every changed record gets a new version, so an edit opened before the erasure cannot save the name back.
    """
    words = [mention_pattern(value) for value in values]
    marks = ", ".join("?" for _ in branch_ids)

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
            f"SELECT id, {', '.join(columns)} FROM {table} WHERE branch_id IN ({marks})", branch_ids
        ):
            changed = {c: scrubbed(row[c]) for c in columns if row[c] and scrubbed(row[c]) != row[c]}
            if changed:
                update_row(db, table, row["id"], changed)
    for row_id, changes in db.execute(
        f"SELECT a.id, a.changes FROM audit_log a WHERE a.branch_id IN ({marks})", branch_ids
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
