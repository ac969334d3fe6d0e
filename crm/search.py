"""The search box: contacts, organisations, interactions and testimonials in the user's scope, in one ranked list.

Every word typed must be found (in any order, as the start of a word, letter case and accents ignored), in SQLite
full-text indexes (schema steps 0007 and 0012_search). Branch data is scoped inside the index: each contact and
interaction carries its branch as a token, so a manager's search never ranks the rest of the provider's rows.
Results are ranked: whatever is named by every word (a contact's or organisation's name, an interaction's summary)
before what only mentions them, then by full-text relevance; organisations the user's branches know come first.
"""

import re
import unicodedata

from sqlite_utils import Database

from crm import dates
from crm.access import ADMIN, BRANCH_MANAGER, Actor, branch_clause

KINDS = {
    "contact": "Contact",
    "organisation": "Organisation",
    "interaction": "Interaction",
    "testimonial": "Testimonial",
}
# The query parameter each kind's page opens a record with (pages/contacts.py takes ?contact=ID, and so on).
PAGES = {
    "contact": "pages/contacts.py",
    "organisation": "pages/organisations.py",
    "interaction": "pages/interactions.py",
    "testimonial": "pages/testimonials.py",
}
MAX_WORDS = 8
PER_KIND = 10


def words(text: str) -> list[str]:
    """The words of a search, lower case and without accents, at most MAX_WORDS of them."""
    plain = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return re.findall(r"\w+", plain)[:MAX_WORDS]


def _match(terms: list[str], prefix: bool = True, columns: str = "") -> str:
    # Each word is a quoted term: nothing a user types can act as FTS5 syntax (AND, NEAR, column:).
    match = " ".join(f'"{term}"*' if prefix else f'"{term}"' for term in terms)
    return f"{columns} : ({match})" if columns else match


def _branch_filter(db: Database, actor: Actor) -> str:
    """An FTS5 column filter on the branch tokens ``actor`` may see ("" for an administrator)."""
    if actor.role == ADMIN:
        return ""
    ids: list[int | None]
    if actor.role == BRANCH_MANAGER:
        ids = [actor.branch_id]
    else:
        ids = [r[0] for r in db.execute("SELECT id FROM branches WHERE region_id = ?", [actor.region_id])]
    tokens = [f"b{int(i)}" for i in ids if i is not None]
    if not tokens:
        return "branch : b0"  # no branch has id 0
    return "branch : (" + " OR ".join(tokens) + ")"


def _hits(db: Database, table: str, terms: list[str], title: str, branch_filter: str = "") -> list[int]:
    """Row ids of ``table`` matching every word: first those whose ``title`` column holds the very words, then
    those holding the very words anywhere, then those holding words that start with them; newest first within
    each, stopping once PER_KIND are found.

    Newest-first with a limit lets SQLite stop early where ranking every match by relevance costs seconds (a word
    in most of 750,000 interactions); whole words are read lazily, while a word's start makes SQLite gather every
    match first, so that query comes last and only when the others found too few."""
    found: dict[int, None] = {}
    for match in (_match(terms, False, title), _match(terms, False), _match(terms)):
        if len(found) >= PER_KIND:
            break
        if branch_filter:
            match = f"({match}) AND {branch_filter}"
        for (rowid,) in db.execute(
            f"SELECT rowid FROM {table} WHERE {table} MATCH ? ORDER BY rowid DESC LIMIT ?", [match, PER_KIND]
        ):
            found.setdefault(rowid)
    return list(found)


def _in(ids: list[int]) -> str:
    return ", ".join(str(int(i)) for i in ids) or "NULL"


def _tier(title: str, terms: list[str]) -> int:
    """0: the title is the words searched for; 1: it holds every word (or its start); 2: other columns do."""
    title_words = words(title)
    if sorted(title_words) == sorted(terms):
        return 0
    if all(any(w.startswith(t) for w in title_words) for t in terms):
        return 1
    return 2


def find(db: Database, actor: Actor, text: str, limit: int = 20) -> list[dict]:
    """Records in ``actor``'s scope matching every word of ``text``, best first: each a dict of kind, label (the
    kind as people read it), id, title, detail and page (the page that opens it with ?<kind>=id)."""
    terms = words(text)
    if not terms:
        return []
    branch_filter = _branch_filter(db, actor)
    found = (
        _contacts(db, terms, branch_filter)
        + _organisations(db, actor, terms)
        + _interactions(db, terms, branch_filter)
        + _testimonials(db, actor, terms)
    )
    order = list(KINDS)
    # How well the title matches first; then what the user's branches know (organisations), then what is current
    # (active contacts and organisations), then the kind (people first), then each kind's own order (shorter
    # names, newer records).
    found.sort(
        key=lambda row: (_tier(row["title"], terms), *row["rank"][:2], order.index(row["kind"]), *row["rank"][2:])
    )
    return [
        {"kind": r["kind"], "label": KINDS[r["kind"]], "id": r["id"], "title": r["title"], "detail": r["detail"],
         "page": PAGES[r["kind"]]}
        for r in found[:limit]
    ]  # fmt: skip


def _contacts(db: Database, terms: list[str], branch_filter: str) -> list[dict]:
    ids = _hits(db, "contacts_fts", terms, "name", branch_filter)
    rows = db.execute_returning_dicts(
        f"""SELECT c.id, c.name, c.job_title, c.status, o.name AS organisation, b.name AS branch
            FROM contacts c JOIN organisations o ON o.id = c.organisation_id JOIN branches b ON b.id = c.branch_id
            WHERE c.id IN ({_in(ids)}) AND c.erased_at IS NULL"""
    )
    return [
        {
            "kind": "contact",
            "id": r["id"],
            "title": r["name"],
            "detail": ", ".join(
                p
                for p in (r["job_title"], r["organisation"], r["branch"], "left" if r["status"] == "left" else "")
                if p
            ),
            "rank": (0, r["status"] == "left", len(r["name"]), r["name"].casefold()),
        }
        for r in rows
    ]


def _organisations(db: Database, actor: Actor, terms: list[str]) -> list[dict]:
    # The directory is shared by every branch; those where the user's branches have contacts rank first, so a
    # manager finds their own practices among England's 14,000.
    where, params = branch_clause(actor, "k.branch_id")
    ids = _hits(db, "organisations_fts", terms, "name")
    if actor.role != ADMIN:
        ids += [
            r[0]
            for r in db.execute(
                f"""SELECT DISTINCT k.organisation_id FROM contacts k
                    WHERE {where} AND k.organisation_id IN (
                        SELECT rowid FROM organisations_fts WHERE organisations_fts MATCH ?)
                    ORDER BY k.organisation_id DESC LIMIT ?""",
                [*params, _match(terms), PER_KIND],
            )
        ]
    rows = db.execute_returning_dicts(
        f"""SELECT o.id, o.name, o.postcode, o.status, t.label AS type_label,
                   EXISTS (SELECT 1 FROM contacts k WHERE k.organisation_id = o.id AND {where}) AS known
            FROM organisations o JOIN organisation_types t ON t.code = o.type_code
            WHERE o.id IN ({_in(ids)})""",
        params,
    )
    return [
        {
            "kind": "organisation",
            "id": r["id"],
            "title": r["name"],
            "detail": ", ".join(
                p for p in (r["type_label"], r["postcode"], r["status"] if r["status"] != "active" else "") if p
            ),
            "rank": (not r["known"], r["status"] != "active", len(r["name"]), r["name"].casefold()),
        }
        for r in rows
    ]


def _interactions(db: Database, terms: list[str], branch_filter: str) -> list[dict]:
    ids = _hits(db, "interactions_fts", terms, "summary", branch_filter)
    rows = db.execute_returning_dicts(
        f"""SELECT i.id, i.summary, i.occurred_on, k.label AS kind_label, o.name AS organisation, b.name AS branch
            FROM interactions i
            JOIN interaction_kinds k ON k.code = i.kind_code
            JOIN branches b ON b.id = i.branch_id
            LEFT JOIN organisations o ON o.id = i.organisation_id
            WHERE i.id IN ({_in(ids)})"""
    )
    return [
        {
            "kind": "interaction",
            "id": r["id"],
            "title": r["summary"],
            "detail": ", ".join(
                p for p in (r["kind_label"], dates.day(r["occurred_on"]), r["organisation"], r["branch"]) if p
            ),
            "rank": (0, False, -date_number(r["occurred_on"]), -r["id"]),
        }
        for r in rows
    ]


def _testimonials(db: Database, actor: Actor, terms: list[str]) -> list[dict]:
    # Testimonials are few (thousands), so their index is searched whole and the scope applied after.
    where, params = branch_clause(actor, "t.branch_id")
    rows = db.execute_returning_dicts(
        f"""SELECT t.id, t.quote, t.received_on, t.giver_name, coalesce(o.name, t.organisation_name) AS organisation,
                   b.name AS branch
            FROM testimonials t
            JOIN branches b ON b.id = t.branch_id
            LEFT JOIN organisations o ON o.id = t.organisation_id
            WHERE t.id IN (SELECT rowid FROM testimonials_fts WHERE testimonials_fts MATCH ?) AND {where}
            ORDER BY t.received_on DESC, t.id DESC
            LIMIT ?""",
        [_match(terms), *params, PER_KIND],
    )
    return [
        {
            "kind": "testimonial",
            "id": r["id"],
            "title": _shortened(r["quote"]),
            "detail": ", ".join(
                p for p in (r["giver_name"], r["organisation"], dates.day(r["received_on"]), r["branch"]) if p
            ),
            "rank": (0, False, i, 0),
        }
        for i, r in enumerate(rows)
    ]


def date_number(iso: str) -> int:
    """An ISO date as a number that sorts like it (20261201)."""
    return int(iso.replace("-", "")[:8])


def _shortened(text: str, length: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1].rsplit(" ", 1)[0] + "…"


def forget_deleted(db: Database) -> None:
    """Merge the contacts' and interactions' indexes (the Contacts list's trigram index too) into one segment each,
    so words deleted from them (an erased person's name) no longer lie in older segments; called on erasure."""
    for table in ("contacts_fts", "contacts_text", "interactions_fts"):
        db.execute(f"INSERT INTO {table} ({table}) VALUES ('optimize')")
