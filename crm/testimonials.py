"""Testimonials: partners' good words, kept with the giver's consent, and what each audience may see of them.

Consent has a scope (internal only, CQC and commissioners, public) and an attribution (named person, role and
organisation, anonymous). Missing or withdrawn consent blocks every audience but the internal one, and each
audience sees each quote attributed exactly as its consent allows.
"""

import hashlib
from datetime import date
from pathlib import Path

from sqlite_utils import Database

from crm import audit, clock, dates, exports, fields
from crm.access import Actor, branch_clause, require_branch
from crm.db import insert, transaction, update_row
from crm.errors import Conflict, NotFound, ValidationError

SOURCES = {
    "email": "Email",
    "card": "Card",
    "letter": "Letter",
    "verbal": "Verbal",
    "survey": "Survey",
    "online_review": "Online review",
}
SCOPES = {
    "none": "No consent recorded",
    "internal": "Internal only",
    "cqc": "CQC and commissioners",
    "public": "Public",
}
ATTRIBUTIONS = {"named": "Named person", "role": "Role and organisation", "anonymous": "Anonymous"}
AUDIENCES = {"internal": "Internal", "cqc": "CQC and commissioners", "public": "Public"}
# Each audience as the readers named in a sentence ("9 testimonials CQC and commissioners may see").
_READERS = {"internal": "internal readers", "cqc": "CQC and commissioners", "public": "the public"}
# Which consent scopes let a quote reach each audience (a wider consent includes the narrower audiences).
ALLOWED_SCOPES = {"internal": ("none", "internal", "cqc", "public"), "cqc": ("cqc", "public"), "public": ("public",)}
QUOTE_MAX = 5000
EVIDENCE_MAX_BYTES = 5 * 1024 * 1024
# Evidence files are recognised by their first bytes, never by their name.
EVIDENCE_TYPES = {b"%PDF-": "application/pdf", b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}

_SELECT = """
    SELECT t.*, b.name AS branch, r.name AS region, ot.label AS type_label,
           coalesce(o.name, t.organisation_name) AS organisation,
           (SELECT group_concat(statement_code, ',') FROM
              (SELECT statement_code FROM testimonial_statements s WHERE s.testimonial_id = t.id
               ORDER BY statement_code)) AS statements
    FROM testimonials t
    JOIN branches b ON b.id = t.branch_id
    JOIN regions r ON r.id = b.region_id
    JOIN organisation_types ot ON ot.code = t.type_code
    LEFT JOIN organisations o ON o.id = t.organisation_id
"""


def statements(db: Database) -> list[dict]:
    """CQC quality statements (reference data), in order."""
    return db.execute_returning_dicts("SELECT code, label FROM cqc_statements ORDER BY sort_order, code")


def _choice(value: object, options: dict, field: str, default: str | None = None) -> str:
    key = str(value or default or "").strip()
    if key not in options:
        raise ValidationError(field, f"must be one of: {', '.join(options.values())}.")
    return key


def clean(db: Database, values: dict, today: date | None = None) -> dict:
    """Check and normalise a testimonial's fields; the giver comes from a contact or is typed in."""
    today = today or clock.now().date()
    out = fields.check_all(
        {
            "branch_id": lambda: fields.required_id(values.get("branch_id"), "Branch"),
            "quote": lambda: fields.long_text(values.get("quote"), "Quote", max_length=QUOTE_MAX),
            "contact_id": lambda: fields.optional_id(values.get("contact_id"), "Given by"),
            "giver_name": lambda: fields.text(values.get("giver_name"), "Giver's name"),
            "giver_role": lambda: fields.text(values.get("giver_role"), "Giver's role"),
            "organisation_id": lambda: fields.optional_id(values.get("organisation_id"), "Organisation"),
            "organisation_name": lambda: fields.text(values.get("organisation_name"), "Organisation"),
            "type_code": lambda: (values.get("type_code") or "").strip() or None,
            "received_on": lambda: fields.date_value(
                values.get("received_on") or today, "Received on", required=True, past=True, today=today
            ),
            "source": lambda: _choice(values.get("source"), SOURCES, "How it came"),
            "interaction_id": lambda: fields.optional_id(values.get("interaction_id"), "Interaction"),
            "themes": lambda: ", ".join(
                sorted(
                    {
                        t.strip().lower()
                        for t in fields.long_text(values.get("themes"), "Themes").split(",")
                        if t.strip()
                    }
                )
            ),
            "statements": lambda: sorted(set(values.get("statements") or [])),
            "consent_scope": lambda: _choice(values.get("consent_scope"), SCOPES, "Consent", "none"),
            "attribution": lambda: _choice(values.get("attribution"), ATTRIBUTIONS, "Attribution", "anonymous"),
            "consent_given_on": lambda: fields.date_value(
                values.get("consent_given_on"), "Consent given on", past=True, today=today
            ),
            "consent_how": lambda: fields.text(values.get("consent_how"), "How consent was given"),
        }
    )
    if not out["quote"]:
        raise ValidationError("Quote", "is required.")
    if out["received_on"] > today:
        raise ValidationError("Received on", "cannot be in the future.")
    if out["consent_scope"] != "none" and not out["consent_given_on"]:
        raise ValidationError("Consent given on", "is required when consent is recorded.")
    for column in ("received_on", "consent_given_on"):
        out[column] = out[column].isoformat() if out[column] else None
    return out


def _resolve_giver(db: Database, actor: Actor, cleaned: dict) -> None:
    """Fill the giver from their contact record (as it is today), and the partner type from the organisation."""
    require_branch(db, actor, cleaned["branch_id"])
    if cleaned["contact_id"] is not None:
        where, params = branch_clause(actor, "c.branch_id")
        row = db.execute_returning_dicts(
            f"SELECT c.name, c.job_title, c.organisation_id, c.branch_id FROM contacts c "
            f"WHERE c.id = ? AND c.erased_at IS NULL AND {where}",
            [cleaned["contact_id"], *params],
        )
        if not row or row[0]["branch_id"] != cleaned["branch_id"]:
            raise ValidationError("Given by", "must be a contact of the testimonial's branch.")
        cleaned["giver_name"] = cleaned["giver_name"] or row[0]["name"]
        cleaned["giver_role"] = cleaned["giver_role"] or row[0]["job_title"]
        cleaned["organisation_id"] = cleaned["organisation_id"] or row[0]["organisation_id"]
    if not cleaned["giver_name"] and not cleaned["giver_role"]:
        raise ValidationError("Given by", "choose a contact, or type the giver's name or role.")
    if cleaned["organisation_id"] is not None:
        org = db.execute(
            "SELECT name, type_code FROM organisations WHERE id = ?", [cleaned["organisation_id"]]
        ).fetchone()
        if org is None:
            raise ValidationError("Organisation", "does not exist.")
        cleaned["organisation_name"] = cleaned["organisation_name"] or org[0]
        cleaned["type_code"] = cleaned["type_code"] or org[1]
    if not cleaned["type_code"]:
        raise ValidationError("Partner type", "is required when the organisation is typed in.")
    if not db.execute("SELECT 1 FROM organisation_types WHERE code = ?", [cleaned["type_code"]]).fetchone():
        raise ValidationError("Partner type", f"“{cleaned['type_code']}” is not a partner type.")
    if (
        cleaned["interaction_id"] is not None
        and not db.execute(
            "SELECT 1 FROM interactions WHERE id = ? AND branch_id = ?",
            [cleaned["interaction_id"], cleaned["branch_id"]],
        ).fetchone()
    ):
        raise ValidationError("Interaction", "must be an interaction of the testimonial's branch.")
    known = {r[0] for r in db.execute("SELECT code FROM cqc_statements")}
    unknown = [s for s in cleaned["statements"] if s not in known]
    if unknown:
        raise ValidationError("CQC quality statements", f"{', '.join(unknown)} is not a quality statement.")


def _evidence_dir(db: Database) -> Path:
    # Beside the database file, under a name the app chooses: a user's file name never becomes a path.
    path = Path(db.execute("PRAGMA database_list").fetchone()[2])
    return path.parent / f"{path.stem}-evidence"


def evidence_path(db: Database, name: str) -> Path:
    """Where the evidence file stored as ``name`` lives."""
    return _evidence_dir(db) / name


def check_evidence(name: str, data: bytes) -> tuple[str, str]:
    """The display name and type of an uploaded evidence file, if acceptable.

    :raises ValidationError: for a file too large, of a type not recognised from its content, or whose name
        holds folders, control characters or is too long.
    """
    display = (name or "").strip()
    if not display or "/" in display or "\\" in display or ".." in display or any(ord(c) < 32 for c in display):
        raise ValidationError("Evidence file", f"“{display}” is not an acceptable file name (no folders).")
    if len(display) > 150:
        raise ValidationError("Evidence file", "the file name is too long (150 characters at most).")
    fields.refuse_unstorable(display, "Evidence file")
    if len(data) > EVIDENCE_MAX_BYTES:
        raise ValidationError("Evidence file", f"is larger than {EVIDENCE_MAX_BYTES // (1024 * 1024)} MB.")
    kind = next((mime for magic, mime in EVIDENCE_TYPES.items() if data.startswith(magic)), None)
    if kind is None:
        raise ValidationError("Evidence file", "must be a PDF, PNG or JPEG file (checked by its content).")
    return display, kind


def _store_evidence(db: Database, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    folder = _evidence_dir(db)
    folder.mkdir(exist_ok=True)
    target = folder / digest
    if not target.exists():
        partial = folder / f"{digest}.partial"
        partial.write_bytes(data)
        partial.replace(target)  # atomic: never a half-written evidence file under its final name
    return digest


def add(
    db: Database, actor: Actor, values: dict, evidence: tuple[str, bytes] | None = None, *, confirmed: bool = False
) -> int:
    """Record a testimonial (with an optional evidence file: (file name, bytes)); returns its id."""
    cleaned = clean(db, values)
    if not confirmed:
        fields.refuse_nhs_numbers(cleaned, {"quote": "Quote"})
    file_fields = {}
    if evidence:
        display, kind = check_evidence(*evidence)
        file_fields = {"evidence_name": display, "evidence_type": kind}
    with transaction(db):
        _resolve_giver(db, actor, cleaned)
        chosen = cleaned.pop("statements")
        if evidence:
            file_fields["evidence_file"] = _store_evidence(db, evidence[1])
        now = clock.stamp()
        row = {
            **cleaned,
            **file_fields,
            "created_at": now,
            "created_by": actor.id,
            "updated_at": now,
            "updated_by": actor.id,
        }
        testimonial_id = insert(db, "testimonials", row)
        for code in chosen:
            db.execute("INSERT INTO testimonial_statements VALUES (?, ?)", [testimonial_id, code])
        audit.record(
            db, actor, "create", "testimonials", testimonial_id, {**cleaned, **file_fields, "statements": chosen}
        )
    return testimonial_id


def get(db: Database, actor: Actor, testimonial_id: int) -> dict:
    """One testimonial within scope; :raises NotFound: otherwise."""
    where, params = branch_clause(actor, "t.branch_id")
    rows = db.execute_returning_dicts(f"{_SELECT} WHERE t.id = ? AND {where}", [testimonial_id, *params])
    if not rows:
        raise NotFound("That testimonial does not exist or is not in one of your branches.")
    return _shaped(rows[0])


def _shaped(row: dict) -> dict:
    row["statements"] = row["statements"].split(",") if row["statements"] else []
    return row


def update(
    db: Database, actor: Actor, testimonial_id: int, values: dict, expected_version: int, *, confirmed: bool = False
) -> bool:
    """Save edits; returns False when they change nothing (and nothing is written).

    :raises Conflict: when someone saved it after ``expected_version`` was read.
    """
    cleaned = clean(db, values)
    if not confirmed:
        fields.refuse_nhs_numbers(cleaned, {"quote": "Quote"})
    with transaction(db):
        before = get(db, actor, testimonial_id)
        if before["version"] != expected_version:
            raise Conflict(
                "This testimonial was changed by someone else while you were editing. "
                "Reload it to see their changes, then make yours again."
            )
        _resolve_giver(db, actor, cleaned)
        chosen = cleaned.pop("statements")
        changes = audit.diff(before, {**cleaned, "statements": chosen})
        if not changes:
            return False
        update_row(db, "testimonials", testimonial_id, {**cleaned, "updated_by": actor.id})
        db.execute("DELETE FROM testimonial_statements WHERE testimonial_id = ?", [testimonial_id])
        for code in chosen:
            db.execute("INSERT INTO testimonial_statements VALUES (?, ?)", [testimonial_id, code])
        audit.record(db, actor, "update", "testimonials", testimonial_id, changes)
    return True


def withdraw_consent(db: Database, actor: Actor, testimonial_id: int, on: date | None = None) -> None:
    """Record that the giver withdrew consent: from then on only the internal audience sees the quote."""
    when = (on or clock.now().date()).isoformat()
    with transaction(db):
        before = get(db, actor, testimonial_id)
        if before["consent_withdrawn_on"]:
            raise ValidationError("Consent", "was already withdrawn.")
        db.execute(
            "UPDATE testimonials SET consent_withdrawn_on = ?, version = version + 1, updated_at = ?, updated_by = ? "
            "WHERE id = ?",
            [when, clock.stamp(), actor.id, testimonial_id],
        )
        audit.record(db, actor, "withdraw_consent", "testimonials", testimonial_id, {"consent_withdrawn_on": when})


def delete(db: Database, actor: Actor, testimonial_id: int) -> None:
    """Delete a testimonial and, when no other testimonial uses it, its evidence file."""
    with transaction(db):
        before = get(db, actor, testimonial_id)
        db.execute("DELETE FROM testimonials WHERE id = ?", [testimonial_id])
        audit.record(db, actor, "delete", "testimonials", testimonial_id, {"branch_id": before["branch_id"]})
        still_used = (
            before["evidence_file"]
            and db.execute("SELECT 1 FROM testimonials WHERE evidence_file = ?", [before["evidence_file"]]).fetchone()
        )
    if before["evidence_file"] and not still_used:
        (_evidence_dir(db) / before["evidence_file"]).unlink(missing_ok=True)


def evidence(db: Database, actor: Actor, testimonial_id: int) -> tuple[str, str, bytes]:
    """(file name, type, bytes) of a testimonial's evidence file; :raises NotFound: when it has none."""
    row = get(db, actor, testimonial_id)
    if not row["evidence_file"]:
        raise NotFound("This testimonial has no evidence file.")
    return row["evidence_name"], row["evidence_type"], (_evidence_dir(db) / row["evidence_file"]).read_bytes()


def _matching(
    db: Database,
    actor: Actor,
    *,
    text: str = "",
    audience: str = "internal",
    branch_id: int | None = None,
    region_id: int | None = None,
    type_code: str | None = None,
    theme: str | None = None,
    statement: str | None = None,
    since: date | None = None,
    until: date | None = None,
    consent_scope: str | None = None,
) -> tuple[str, list] | None:
    """The WHERE condition (over ``t`` and ``b``) of ``search``'s filters, or None when nothing can match."""
    if audience not in AUDIENCES:
        raise ValidationError("Audience", f"must be one of: {', '.join(AUDIENCES)}.")
    text = fields.search_text(text)
    theme = fields.search_text(theme, "Theme") or None
    where, params = branch_clause(actor, "t.branch_id")
    conditions, values = [where], list(params)
    allowed = ALLOWED_SCOPES[audience]
    conditions.append(f"t.consent_scope IN ({', '.join('?' for _ in allowed)})")
    values += list(allowed)
    if audience != "internal":
        conditions.append("t.consent_withdrawn_on IS NULL")
    for condition, value in (
        ("t.branch_id = ?", branch_id),
        ("b.region_id = ?", region_id),
        ("t.type_code = ?", type_code),
        (
            "(', ' || t.themes || ',') LIKE ? ESCAPE '\\'",
            f"%, {fields.like_escape(theme.lower())},%" if theme else None,
        ),
        ("t.id IN (SELECT testimonial_id FROM testimonial_statements WHERE statement_code = ?)", statement),
        ("t.received_on >= ?", since.isoformat() if since else None),
        ("t.received_on <= ?", until.isoformat() if until else None),
        ("t.consent_scope = ?", consent_scope),
    ):
        if value is not None:
            conditions.append(condition)
            values.append(value)
    words = db.quote_fts(text) if text else ""
    if words.strip('" '):
        conditions.append("t.id IN (SELECT rowid FROM testimonials_fts WHERE testimonials_fts MATCH ?)")
        values.append(words)
    elif text:
        return None  # only quote marks: nothing to search for
    return " AND ".join(conditions), values


PAGE_SIZE = 50  # testimonials listed at a time on the Testimonials page; the exports hold every one found


def search(
    db: Database,
    actor: Actor,
    *,
    text: str = "",
    audience: str = "internal",
    branch_id: int | None = None,
    region_id: int | None = None,
    type_code: str | None = None,
    theme: str | None = None,
    statement: str | None = None,
    since: date | None = None,
    until: date | None = None,
    consent_scope: str | None = None,
    limit: int = 10_000,
    offset: int = 0,
) -> list[dict]:
    """Testimonials within scope that ``audience`` may see, matching every filter, newest first; ``limit`` of
    them from the ``offset``-th (``search_count`` counts them all).

    :raises ValidationError: for an unknown audience, or search text or a theme that is too long or holds
        control characters.
    """
    matching = _matching(
        db,
        actor,
        text=text,
        audience=audience,
        branch_id=branch_id,
        region_id=region_id,
        type_code=type_code,
        theme=theme,
        statement=statement,
        since=since,
        until=until,
        consent_scope=consent_scope,
    )
    if matching is None:
        return []
    where, values = matching
    rows = db.execute_returning_dicts(
        f"{_SELECT} WHERE {where} ORDER BY t.received_on DESC, t.id DESC LIMIT ? OFFSET ?",
        [*values, limit, offset],
    )
    return [_shaped(r) for r in rows]


def search_count(db: Database, actor: Actor, **filters) -> int:
    """How many testimonials ``search`` finds with these filters (``search``'s keywords, without its limit),
    counted in SQL.

    :raises ValidationError: as ``search``.
    """
    matching = _matching(db, actor, **filters)
    if matching is None:
        return 0
    where, values = matching
    return db.execute(
        f"SELECT count(*) FROM testimonials t JOIN branches b ON b.id = t.branch_id WHERE {where}", values
    ).fetchone()[0]


def attribution(row: dict, audience: str) -> str:
    """How the quote is attributed for ``audience``: exactly as far as the giver's consent allows."""
    organisation = row["organisation"] or row["type_label"]
    named = ", ".join(p for p in (row["giver_name"], row["giver_role"], organisation) if p)
    by_role = ", ".join(p for p in (row["giver_role"] or "A colleague", organisation) if p)
    if audience == "internal":
        return named
    if row["attribution"] == "named":
        return named
    if row["attribution"] == "role":
        return by_role
    return f"Anonymous, {row['type_label']}"


EXPORT_COLUMNS = [
    "Received on",
    "Quote",
    "Attribution",
    "Partner type",
    "Branch",
    "Region",
    "How it came",
    "Themes",
    "CQC quality statements",
    "Consent",
    "Attribution agreed",
    "Consent given on",
    "Consent withdrawn on",
]
FORMATS = {
    "csv": ("text/csv", "csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    "md": ("text/markdown", "md"),
}


def readers(audience: str) -> str:
    """An audience as people are named in a sentence, with proper capitals: "CQC and commissioners"."""
    return _READERS[audience]


def export_rows(db: Database, rows: list[dict], audience: str) -> list[dict]:
    """One flat row per testimonial, attributed for ``audience``, with its consent (what CSV and XLSX hold)."""
    labels = {s["code"]: f"{s['code']} {s['label']}" for s in statements(db)}
    return [
        {
            "Received on": r["received_on"],
            "Quote": r["quote"],
            "Attribution": attribution(r, audience),
            "Partner type": r["type_label"],
            "Branch": r["branch"],
            "Region": r["region"],
            "How it came": SOURCES[r["source"]],
            "Themes": r["themes"],
            "CQC quality statements": "; ".join(labels[c] for c in r["statements"]),
            "Consent": SCOPES[r["consent_scope"]],
            "Attribution agreed": ATTRIBUTIONS[r["attribution"]],
            "Consent given on": r["consent_given_on"] or "",
            "Consent withdrawn on": r["consent_withdrawn_on"] or "",
        }
        for r in rows
    ]


def export(
    db: Database, actor: Actor, fmt: str, audience: str, *, provider: str, scope_label: str, **filters: object
) -> tuple[bytes, str]:
    """The testimonials ``audience`` may see, as a file in ``fmt``; returns (content, file name). Audited."""
    if fmt not in FORMATS:
        raise ValidationError("Format", f"must be one of: {', '.join(FORMATS)}.")
    rows = search(db, actor, audience=audience, **filters)  # type: ignore[arg-type]
    produced = clock.now()
    meta = {
        "provider": provider,
        "scope": scope_label,
        "audience": AUDIENCES[audience],
        "period": _period(filters.get("since"), filters.get("until"), rows),  # type: ignore[arg-type]
        "generated": produced.date().isoformat(),
        "produced": produced,
    }
    flat = export_rows(db, rows, audience)
    if fmt == "csv":
        content = ("\ufeff" + exports.to_csv(flat, EXPORT_COLUMNS)).encode("utf-8")
    elif fmt == "xlsx":
        content = exports.to_xlsx(flat, EXPORT_COLUMNS, "Testimonials")
    elif fmt == "docx":
        content = exports.evidence_pack(rows, flat, statements(db), meta)
    else:
        content = exports.testimonials_markdown(flat, meta).encode("utf-8")
    with transaction(db):
        audit.record(
            db,
            actor,
            "export_testimonials",
            "testimonials",
            None,
            {"format": fmt, "audience": audience, "count": len(rows), "scope": scope_label},
        )
    return content, f"testimonials-{audience}-{meta['generated']}.{FORMATS[fmt][1]}"


def _period(since: date | None, until: date | None, rows: list[dict]) -> str:
    first = since.isoformat() if since else (min(r["received_on"] for r in rows) if rows else "")
    last = until.isoformat() if until else (max(r["received_on"] for r in rows) if rows else "")
    if not first and not last:
        return "all dates"
    return f"{dates.long_day(first) or 'the start'} to {dates.long_day(last) or 'now'}"
