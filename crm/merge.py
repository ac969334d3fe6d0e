"""Merging duplicates: two contacts of one branch, or two organisations of the directory.

Everything linked to the merged record (interactions, follow-ups with them, referrals, testimonials, successors;
for an organisation also every branch's contacts there) moves to the survivor in one transaction, the merged row
is deleted, and its id keeps resolving to the survivor (``resolve``). The survivor keeps its own values, takes the
merged record's where its own are blank, and takes the fields the user picks (``take``). Both steps are audited.

Possible duplicates (``duplicate_contacts``, ``duplicate_organisations``) are what the "Possible duplicates" page
lists and a contact's page mentions: pairs found in SQL within the user's scope, never across branches.
"""

import re

from sqlite_utils import Database

from crm import audit, clock, contacts, organisations
from crm.access import ADMIN, BRANCH_MANAGER, REGIONAL_LEAD, Actor, branch_clause
from crm.db import transaction, update_row
from crm.errors import Conflict, NotFound, PermissionDenied, ValidationError

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


def refuse_merged(db: Database, actor: Actor, table: str, ids: tuple[int, ...]) -> None:
    """:raises Conflict: when one of ``ids`` has been merged into another record (a pair chosen from an old list)."""
    for record_id in ids:
        survivor_id = resolve(db, table, record_id)
        if survivor_id == record_id:
            continue
        name = db.execute(f"SELECT name FROM {table} WHERE id = ?", [survivor_id]).fetchone()
        visible = name is not None
        if table == "contacts" and visible:
            try:
                contacts.get(db, actor, survivor_id)
            except NotFound:
                visible = False
        kind = "contact" if table == "contacts" else "organisation"
        into = name[0] if visible else f"another {kind}"
        raise Conflict(f"That {kind} has already been merged into {into}, so nothing was merged.")


def merge_contacts(
    db: Database,
    actor: Actor,
    survivor_id: int,
    merged_id: int,
    *,
    take: list[str] | None = None,
    versions: tuple[int, int] | None = None,
) -> dict[str, int]:
    """Merge contact ``merged_id`` into ``survivor_id`` (same branch, both editable by the actor); returns how
    many links of each kind moved.

    Do-not-contact carries over: if either asked not to be contacted, the survivor is marked so.

    :raises Conflict: when either record was merged meanwhile, or (given ``versions``, the survivor's and the
        merged record's versions the user chose them at) changed since.
    """
    fields_taken = _takes(take, CONTACT_FIELDS)
    if survivor_id == merged_id:
        raise ValidationError("Merge", "choose two different contacts.")
    with transaction(db):
        refuse_merged(db, actor, "contacts", (survivor_id, merged_id))
        survivor = contacts.get(db, actor, survivor_id)
        merged = contacts.get(db, actor, merged_id)
        if versions is not None:
            for record, version in ((survivor, versions[0]), (merged, versions[1])):
                contacts.check_version(record, version, "nothing was merged")
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
    db: Database,
    actor: Actor,
    survivor_id: int,
    merged_id: int,
    *,
    take: list[str] | None = None,
    versions: tuple[int, int] | None = None,
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
        refuse_merged(db, actor, "organisations", (survivor_id, merged_id))
        survivor = organisations.get(db, survivor_id)
        merged = organisations.get(db, merged_id)
        if not (organisations.can_edit(actor, survivor) and organisations.can_edit(actor, merged)):
            raise PermissionDenied("Only administrators and regional leads can merge these organisations.")
        if versions is not None:
            for record, version in ((survivor, versions[0]), (merged, versions[1])):
                if record["version"] != version:
                    raise Conflict(
                        f"“{record['name']}” was changed by someone else after you chose it, so nothing was merged. "
                        "Look at it again, then decide."
                    )
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


# Possible duplicates.

REASONS = {
    "email": "same email",
    "phone": "same phone number",
    "name": "same name at the same organisation",
    "similar_name": "similar name at the same organisation",
}
# Titles people put before a name, left out when names are compared ("Dr Sarah Jones" is "Sarah Jones").
TITLES = ("dr", "mr", "mrs", "ms", "miss", "mx", "prof", "professor", "sir", "dame", "rev")
DUPLICATES_LIMIT = 200


def name_words(name: str | None) -> list[str]:
    """A person's name as compared: lower-case words, punctuation and titles left out
    ("Dr. Sarah O'Brien" is ["sarah", "obrien"])."""
    text = re.sub(r"['’]", "", (name or "").casefold())
    return [word for word in re.split(r"[\W_]+", text) if word and word not in TITLES]


def _whole_name(name: str | None) -> str | None:
    return "".join(name_words(name)) or None


def _initial_and_surname(name: str | None) -> str | None:
    words = name_words(name)
    return f"{words[0][0]} {words[-1]}" if len(words) > 1 else None


# A number or an email shared by more of one branch's contacts than this is a switchboard or a team's inbox, not
# one person entered twice (pairing them all would also list dozens of pairs per number).
MAX_SHARED = 3


def _shared_numbers(scope: str, params: list) -> tuple[str, list]:
    """SQL for (branch_id, number, ext) of every number two to MAX_SHARED contacts of one branch share (none erased):
    a phone with its extension (a switchboard's extensions are different people), a mobile, or a phone without
    an extension that is someone else's mobile. Each is read in the order of an index of
    0021_whole_scope_indexes (the last by one look-up per mobile): no contact row is read, nothing sorted."""
    sql = f"""
        SELECT a.branch_id, a.phone, a.phone_ext FROM contacts a
        WHERE a.phone IS NOT NULL AND a.erased_at IS NULL AND {scope}
        GROUP BY a.branch_id, a.phone, a.phone_ext HAVING count(*) BETWEEN 2 AND ?
        UNION
        SELECT a.branch_id, a.mobile, NULL FROM contacts a
        WHERE a.mobile IS NOT NULL AND a.erased_at IS NULL AND {scope}
        GROUP BY a.branch_id, a.mobile HAVING count(*) BETWEEN 2 AND ?
        UNION
        SELECT a.branch_id, a.mobile, NULL FROM contacts a
        WHERE a.mobile IS NOT NULL AND a.erased_at IS NULL AND {scope} AND EXISTS (
            SELECT 1 FROM contacts p WHERE p.branch_id = a.branch_id AND p.phone = a.mobile
            AND p.phone IS NOT NULL AND p.phone_ext IS NULL AND p.erased_at IS NULL AND p.id != a.id)"""
    return sql, [*params, MAX_SHARED, *params, MAX_SHARED, *params]


def _candidate_groups(db: Database, scope: str, params: list) -> list[tuple[str, list[int]]]:
    """(reason, ids) of each group of two to MAX_SHARED contacts of one branch, none erased, sharing a key.

    The keys two contacts share are found first, each by one pass over a covering index in its order (indexes of
    0021_whole_scope_indexes); only the contacts with such a key are then read and grouped. An
    administrator's 75,000 contacts cost a pass over each index, never a sort of them all; the work never
    grows with the square of the contacts, however many share a switchboard number.
    """
    shared, shared_params = _shared_numbers(scope, params)
    # A contact whose phone (without an extension) is their own mobile is one member of that number's group.
    numbers = f"""
        WITH shared(branch_id, number, ext) AS ({shared})
        SELECT group_concat(id) FROM (
            SELECT a.id, a.branch_id, s.number, s.ext FROM shared s
            JOIN contacts a ON a.branch_id = s.branch_id AND a.phone = s.number AND a.phone_ext IS s.ext
            WHERE a.phone IS NOT NULL AND a.erased_at IS NULL
            UNION
            SELECT a.id, a.branch_id, s.number, NULL FROM shared s
            JOIN contacts a ON a.branch_id = s.branch_id AND a.mobile = s.number
            WHERE s.ext IS NULL AND a.mobile IS NOT NULL AND a.erased_at IS NULL)
        GROUP BY branch_id, number, ext HAVING count(*) BETWEEN 2 AND ?"""
    emails = f"""
        SELECT group_concat(a.id) FROM contacts a
        WHERE a.email IS NOT NULL AND a.erased_at IS NULL AND {scope}
        GROUP BY a.branch_id, lower(a.email) HAVING count(*) BETWEEN 2 AND ?"""
    groups = []
    for reason, sql, values in (("phone", numbers, shared_params), ("email", emails, list(params))):
        for (ids,) in db.execute(sql, [*values, MAX_SHARED]):
            groups.append((reason, sorted(int(i) for i in ids.split(","))))
    # Names are compared among the contacts of one branch at one organisation whose names end alike (both reasons
    # need the same last word): found by a GROUP BY, so only those few names are read and compared.
    tail = f"substr(rtrim(lower(a.name), ' .,-()/''{chr(0x2019)}'), -3)"
    near = f"""SELECT a.id, a.branch_id, a.organisation_id, a.name FROM contacts a
               WHERE a.erased_at IS NULL AND {scope} AND (a.branch_id, a.organisation_id, {tail}) IN (
                   SELECT a.branch_id, a.organisation_id, {tail} FROM contacts a
                   WHERE a.erased_at IS NULL AND {scope} GROUP BY 1, 2, 3 HAVING count(*) > 1)"""
    # The few names that end alike are compared here, word by word (titles and punctuation aside).
    by_key: dict[tuple, list[int]] = {}
    for contact_id, branch, organisation, name in db.execute(near, [*params, *params]):
        for reason, key in (("name", _whole_name(name)), ("similar_name", _initial_and_surname(name))):
            if key is not None:
                by_key.setdefault((reason, branch, organisation, key), []).append(contact_id)
    groups += [(reason, sorted(ids)) for (reason, *_), ids in by_key.items() if 2 <= len(ids) <= MAX_SHARED]
    return groups


def duplicate_contacts(
    db: Database, actor: Actor, *, branch_id: int | None = None, limit: int = DUPLICATES_LIMIT
) -> list[dict]:
    """Pairs of contacts in the actor's scope that may be one person, per branch: the same email (in any letter
    case), the same phone number (phone or mobile; a switchboard's extensions are different people), or the same
    or a similar name (titles and punctuation aside, or the same surname and first initial) at the same
    organisation. Erased contacts are never listed; both of a pair are in one branch (as merging needs); a number
    or email that more than MAX_SHARED contacts of a branch share is no reason.

    Each pair: {"branch_id", "branch", "reasons" (what matched, as read), "contacts": [first, second]} with the
    two contacts as ``contacts.get`` gives them, the older record first; by branch name, then name.
    """
    scope, params = branch_clause(actor, "a.branch_id")
    if branch_id is not None:
        scope, params = f"{scope} AND a.branch_id = ?", [*params, branch_id]
    reasons: dict[tuple[int, int], set[str]] = {}
    for reason, ids in _candidate_groups(db, scope, params):
        for i, first in enumerate(ids):
            for second in ids[i + 1 :]:
                reasons.setdefault((first, second), set()).add(reason)
    if not reasons:
        return []
    ids = sorted({i for pair in reasons for i in pair})
    where, scope_params = branch_clause(actor, "c.branch_id")
    found = {
        c["id"]: c
        for c in contacts.query(
            db, f"c.id IN ({', '.join('?' for _ in ids)}) AND {where}", [*ids, *scope_params], order_by="c.id"
        )
    }
    ordered = sorted(
        (pair for pair in reasons if pair[0] in found and pair[1] in found),
        key=lambda pair: (found[pair[0]]["branch"].casefold(), found[pair[0]]["name"].casefold(), pair),
    )
    return [
        {
            "branch_id": found[first]["branch_id"],
            "branch": found[first]["branch"],
            "reasons": [
                REASONS[code]
                for code in REASONS
                if code in reasons[first, second] and not (code == "similar_name" and "name" in reasons[first, second])
            ],
            "contacts": [found[first], found[second]],
        }
        for first, second in ordered[:limit]
    ]


def duplicates_of(db: Database, actor: Actor, contact_id: int) -> list[dict]:
    """The possible duplicates of one contact (pairs as ``duplicate_contacts`` gives them, the other one second)."""
    contact = contacts.get(db, actor, contact_id)
    if contact["erased_at"]:
        return []
    pairs = duplicate_contacts(db, actor, branch_id=contact["branch_id"], limit=100_000)
    found = []
    for pair in pairs:
        ids = [c["id"] for c in pair["contacts"]]
        if contact_id in ids:
            if ids[1] == contact_id:
                pair = {**pair, "contacts": pair["contacts"][::-1]}
            found.append(pair)
    return found


def _org_key(column: str) -> str:
    """SQL for an organisation's name compared: lower case, without punctuation, spaces or a leading "the"."""
    key = f"(' ' || lower({column}) || ' ')"
    for mark in (".", ",", "-", "(", ")", "'", "\u2019", "&"):
        key = f"replace({key}, '{mark if mark != chr(39) else chr(39) * 2}', ' ')"
    key = f"replace({key}, ' the ', ' ')"
    key = f"replace({key}, ' and ', ' ')"
    return f"replace({key}, ' ', '')"


def may_merge_organisations(actor: Actor) -> bool:
    """Whether the actor may review organisation duplicates: those who edit the whole directory (a branch manager
    edits only what they added, never the NHS directory's records)."""
    return actor.role in (ADMIN, REGIONAL_LEAD)


def duplicate_organisations(db: Database, actor: Actor, *, limit: int = DUPLICATES_LIMIT) -> list[dict]:
    """Hand-made organisations (no ODS code) with the same name (letter case, punctuation and "the" aside) and
    postcode as a record of the NHS directory (with an ODS code): {"directory": record, "hand_made": record}.
    Empty for anyone who may not edit the directory."""
    if not may_merge_organisations(actor):
        return []
    rows = db.execute(
        f"""
        SELECT d.id, h.id FROM organisations h
        JOIN organisations d ON d.postcode = h.postcode AND d.id != h.id
        WHERE h.ods_code IS NULL AND h.postcode != '' AND d.ods_code IS NOT NULL
          AND {_org_key("d.name")} = {_org_key("h.name")}
        ORDER BY h.name COLLATE NOCASE, h.id, d.id
        LIMIT ?
        """,
        [limit],
    ).fetchall()
    return [{"directory": organisations.get(db, d), "hand_made": organisations.get(db, h)} for d, h in rows]


def contact_links(db: Database, actor: Actor, contact_id: int) -> dict[str, int]:
    """What a merge of this contact would move: interactions, open follow-ups among them, referrals, testimonials
    and contacts it is the successor of."""
    contacts.get(db, actor, contact_id)  # in scope, or NotFound
    row = db.execute(
        """SELECT (SELECT count(*) FROM interaction_contacts WHERE contact_id = :c),
                  (SELECT count(*) FROM interaction_contacts l JOIN interactions i ON i.id = l.interaction_id
                   WHERE l.contact_id = :c AND i.follow_up_on IS NOT NULL AND i.follow_up_done_on IS NULL),
                  (SELECT count(*) FROM referrals WHERE contact_id = :c),
                  (SELECT count(*) FROM testimonials WHERE contact_id = :c),
                  (SELECT count(*) FROM contacts WHERE successor_id = :c)""",
        {"c": contact_id},
    ).fetchone()
    return dict(zip(("interactions", "follow_ups", "referrals", "testimonials", "successor_links"), row, strict=True))


def organisation_links(db: Database, organisation_id: int) -> dict[str, int]:
    """What a merge of this organisation would move: every branch's contacts there (and how many branches),
    interactions, referrals and testimonials."""
    row = db.execute(
        """SELECT (SELECT count(*) FROM contacts WHERE organisation_id = :o),
                  (SELECT count(DISTINCT branch_id) FROM contacts WHERE organisation_id = :o),
                  (SELECT count(*) FROM interactions WHERE organisation_id = :o),
                  (SELECT count(*) FROM referrals WHERE organisation_id = :o),
                  (SELECT count(*) FROM testimonials WHERE organisation_id = :o)""",
        {"o": organisation_id},
    ).fetchone()
    return dict(zip(("contacts", "branches", "interactions", "referrals", "testimonials"), row, strict=True))


def _counted(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def moved_text(moved: dict[str, int]) -> str:
    """What a merge moved, as read: "3 interactions (1 open follow-up), 1 referral and 1 testimonial"."""
    names = {
        "contacts": ("contact", None),
        "interactions": ("interaction", None),
        "referrals": ("referral", None),
        "testimonials": ("testimonial", None),
        "successor_links": ("successor link", None),
    }
    parts = []
    for key, (singular, plural) in names.items():
        if moved.get(key):
            part = _counted(moved[key], singular, plural)
            if key == "interactions" and moved.get("follow_ups"):
                part += f" ({_counted(moved['follow_ups'], 'open follow-up')})"
            parts.append(part)
    if not parts:
        return "nothing else was linked to it"
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def merge_contact_pair(
    db: Database,
    actor: Actor,
    survivor_id: int,
    merged_id: int,
    *,
    take: list[str] | None = None,
    versions: tuple[int, int] | None = None,
) -> str:
    """Merge two contacts as the review page does (see ``merge_contacts``) and say what moved, e.g.
    "Merged Priya Patel-Shah into Priya Patel: moved 3 interactions (1 open follow-up) and 1 referral."."""
    with transaction(db):
        refuse_merged(db, actor, "contacts", (survivor_id, merged_id))
        merged_name = contacts.get(db, actor, merged_id)["name"]
        follow_ups = contact_links(db, actor, merged_id)["follow_ups"]
        moved = merge_contacts(db, actor, survivor_id, merged_id, take=take, versions=versions)
        survivor_name = contacts.get(db, actor, survivor_id)["name"]
    return f"Merged {merged_name} into {survivor_name}: moved {moved_text({**moved, 'follow_ups': follow_ups})}."


def merge_organisation_pair(
    db: Database,
    actor: Actor,
    survivor_id: int,
    merged_id: int,
    *,
    take: list[str] | None = None,
    versions: tuple[int, int] | None = None,
) -> str:
    """Merge two organisations as the review page does (see ``merge_organisations``) and say what moved."""
    with transaction(db):
        refuse_merged(db, actor, "organisations", (survivor_id, merged_id))
        merged_name = organisations.get(db, merged_id)["name"]
        moved = merge_organisations(db, actor, survivor_id, merged_id, take=take, versions=versions)
        survivor_name = organisations.get(db, survivor_id)["name"]
    return f"Merged {merged_name} into {survivor_name}: moved {moved_text(moved)}."


def merged_note(db: Database, table: str, old_id: int) -> dict | None:
    """How an old id came to lead elsewhere: {"name" (the merged record's name then, if the audit log still has
    it), "survivor_id", "merged_at"}, or None if it was not merged. Callers show it only beside the survivor,
    which they read within the user's scope (a merged contact was of the survivor's branch)."""
    rows = db.execute_returning_dicts(
        "SELECT survivor_id, merged_at FROM merged_records WHERE table_name = ? AND old_id = ?", [table, old_id]
    )
    if not rows:
        return None
    name = db.execute(
        "SELECT json_extract(changes, '$.name') FROM audit_log WHERE table_name = ? AND row_id = ? "
        "AND action = 'delete' AND json_extract(changes, '$.merged_into') IS NOT NULL ORDER BY id DESC LIMIT 1",
        [table, old_id],
    ).fetchone()
    return {
        "name": name[0] if name else None,
        "survivor_id": resolve(db, table, old_id),
        "merged_at": rows[0]["merged_at"],
    }
