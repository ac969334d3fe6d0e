"""Referrals: requests to care for someone, who sent them, how fast the branch answered and what it decided.

A referral holds no client identity: at most the provider's own reference from its care management system.
Logging one also logs a REFERRAL_RECEIVED interaction with the referrer, so it counts as a touch (the
keep-in-touch clock and coverage read interactions). Times are stored as UTC ISO stamps and shown, and typed,
in UK local time (GMT or BST).

Response time is the hours from receipt to the branch's answer (accepted or declined). A referral withdrawn by
the referrer was not answered by the branch, so it has a decision time but no response time; open referrals and
those migrated from old interactions (outcome "unknown") have neither. The acceptance rate is accepted out of
answered (accepted + declined).
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from crm import audit, clock, fields, interactions
from crm.access import Actor, branch_clause, require_branch
from crm.coverage import Scope
from crm.db import insert, transaction, update_row
from crm.errors import Conflict, NotFound, ValidationError

UK = ZoneInfo("Europe/London")
EARLIEST = date(2000, 1, 1)
REFERENCE_MAX = 40
NOTE_MAX = 200
CHANNELS = {"phone": "Phone", "email": "Email", "portal": "Council portal", "e_referral": "E-referral"}
URGENCIES = {"routine": "Routine", "urgent": "Urgent", "hospital_discharge": "Hospital discharge"}
OUTCOMES = {
    "open": "Open",
    "accepted": "Accepted",
    "declined": "Declined",
    "withdrawn": "Withdrawn by the referrer",
    "unknown": "Unknown (logged before outcomes were kept)",
}
# What a user may record; "unknown" is only ever set by the migration from old referral interactions.
RECORDABLE = ("open", "accepted", "declined", "withdrawn")
SENSITIVE_FIELDS = {"provider_reference": "Your reference", "area": "Area", "outcome_note": "Note"}
GROUPINGS = {"branch": "Branch", "partner_type": "Partner type", "organisation": "Referring organisation"}
NO_ORGANISATION = "No organisation"


# Time: stored UTC, typed and shown in UK local time.


def to_stamp(moment: datetime) -> str:
    """A moment as stored (UTC ISO); a naive datetime is taken as UK local time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UK)
    return clock.stamp(moment.astimezone(UTC).replace(microsecond=0))


def from_stamp(stamp: str) -> datetime:
    """A stored UTC stamp as an aware UK local datetime."""
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).astimezone(UK)


def shown(stamp: str | None) -> str:
    """A stored stamp as people in the UK read it: 14 Mar 2026 09:30 (local time)."""
    return from_stamp(stamp).strftime("%-d %b %Y %H:%M") if stamp else ""


def local_day_start(day: date) -> str:
    """The stored stamp of midnight UK time at the start of ``day``."""
    return to_stamp(datetime.combine(day, time()))


def response_hours(received_at: str | None, decided_at: str | None) -> float | None:
    """Hours from receipt to decision, to one decimal; None while either is missing."""
    if not received_at or not decided_at:
        return None
    seconds = (datetime.fromisoformat(decided_at) - datetime.fromisoformat(received_at)).total_seconds()
    return round(seconds / 3600, 1)


def _moment(value: object, field: str, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise ValidationError(field, "is required.")
        return None
    if isinstance(value, datetime):
        return to_stamp(value)
    if isinstance(value, str):
        try:
            return to_stamp(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            raise ValidationError(field, f"“{value}” is not a date and time (YYYY-MM-DD HH:MM).") from None
    raise ValidationError(field, "is not a date and time.")


def _not_future(stamp: str, field: str, now: datetime) -> None:
    if stamp > clock.stamp(now):
        raise ValidationError(field, "cannot be in the future.")
    if stamp < local_day_start(EARLIEST):
        raise ValidationError(field, f"cannot be before {EARLIEST.isoformat()}.")


# Reference data.


def decline_reasons(db: Database) -> list[dict]:
    """Reasons for declining (reference data), in display order."""
    return db.execute_returning_dicts("SELECT code, label FROM referral_decline_reasons ORDER BY sort_order, label")


def _choice(value: object, allowed: dict[str, str], field: str, *, required: bool) -> str | None:
    code = (str(value) if value is not None else "").strip()
    if not code:
        if required:
            raise ValidationError(field, "is required.")
        return None
    if code not in allowed:
        raise ValidationError(field, f"choose one of: {', '.join(allowed.values())}.")
    return code


def _hours(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        hours = float(str(value).strip())
    except ValueError:
        raise ValidationError("Hours of care per week", f"“{value}” is not a number.") from None
    if not 0 < hours <= 168:
        raise ValidationError("Hours of care per week", "must be more than 0 and at most 168.")
    return round(hours, 2)


# Writing.


def clean(values: dict, now: datetime | None = None) -> dict:
    """Check and normalise a new referral's fields, reporting every problem at once."""
    now = now or clock.now()
    out = fields.check_all(
        {
            "branch_id": lambda: fields.required_id(values.get("branch_id"), "Branch"),
            "received_at": lambda: _moment(values.get("received_at"), "Received", required=True),
            "contact_id": lambda: fields.optional_id(values.get("contact_id"), "Contact"),
            "organisation_id": lambda: fields.optional_id(values.get("organisation_id"), "Organisation"),
            "channel": lambda: _choice(values.get("channel"), CHANNELS, "How it came", required=True),
            "urgency": lambda: _choice(values.get("urgency"), URGENCIES, "Urgency", required=True),
            "hours_per_week": lambda: _hours(values.get("hours_per_week")),
            "start_wanted_on": lambda: fields.date_value(values.get("start_wanted_on"), "Start wanted"),
            "area": lambda: fields.text(values.get("area"), "Area", max_length=100),
            "provider_reference": lambda: fields.text(
                values.get("provider_reference"), "Your reference", max_length=REFERENCE_MAX
            ),
        }
    )
    _not_future(out["received_at"], "Received", now)
    if out["contact_id"] is None and out["organisation_id"] is None:
        raise ValidationError("Referred by", "choose the contact or the organisation that sent the referral.")
    if out["start_wanted_on"]:
        out["start_wanted_on"] = out["start_wanted_on"].isoformat()
    return out


def log(db: Database, actor: Actor, values: dict, *, confirmed: bool = False, now: datetime | None = None) -> int:
    """Record a referral received by a branch the actor may edit (outcome open); returns its id.

    Also logs a "Referral received" interaction with the referrer, the touch that resets the keep-in-touch clock.

    :raises PossibleClientData: when the reference or area looks like it holds an NHS number, unless ``confirmed``.
    """
    now = now or clock.now()
    cleaned = clean(values, now)
    if not confirmed:
        fields.refuse_nhs_numbers(cleaned, SENSITIVE_FIELDS)
    with transaction(db):
        require_branch(db, actor, cleaned["branch_id"])
        referrer = _referrer(db, cleaned)
        received_local = from_stamp(cleaned["received_at"])
        summary = f"Referral received from {referrer}"
        if cleaned["urgency"] != "routine":
            summary += f" ({URGENCIES[cleaned['urgency']].lower()})"
        interaction_id = interactions.log(
            db,
            actor,
            {
                "branch_id": cleaned["branch_id"],
                "occurred_on": received_local.date(),
                "kind_code": interactions.REFERRAL,
                "summary": summary[: interactions.SUMMARY_MAX],
                "contact_ids": [cleaned["contact_id"]] if cleaned["contact_id"] else [],
                "organisation_id": cleaned["organisation_id"],
            },
            confirmed=True,
            today=now.astimezone(UK).date(),
        )
        return _insert(db, actor, cleaned, interaction_id, now)


def for_interaction(
    db: Database,
    actor: Actor,
    interaction_id: int,
    values: dict,
    *,
    confirmed: bool = False,
    now: datetime | None = None,
) -> int:
    """Record the referral behind a "Referral received" interaction that has none yet (one logged on the
    Interactions page, or by the demo); the interaction's branch, contact and organisation are the referral's.
    ``values`` holds the referral's other fields; ``received_at`` defaults to midday UTC of its date.

    :raises ValidationError: when the interaction is not a referral, or already has its referral.
    """
    now = now or clock.now()
    with transaction(db):
        interaction = interactions.get(db, actor, interaction_id)
        if interaction["kind_code"] != interactions.REFERRAL:
            raise ValidationError("Interaction", "is not a referral received.")
        if db.execute("SELECT 1 FROM referrals WHERE interaction_id = ?", [interaction_id]).fetchone():
            raise ValidationError("Interaction", "already has its referral.")
        cleaned = clean(
            {
                "received_at": f"{interaction['occurred_on']}T12:00:00+00:00",
                **values,
                "branch_id": interaction["branch_id"],
                "contact_id": (interaction["contact_ids"] or [None])[0],
                "organisation_id": interaction["organisation_id"],
            },
            now,
        )
        if not confirmed:
            fields.refuse_nhs_numbers(cleaned, SENSITIVE_FIELDS)
        return _insert(db, actor, cleaned, interaction_id, now)


def _insert(db: Database, actor: Actor, cleaned: dict, interaction_id: int, now: datetime) -> int:
    """Write a new open referral tied to its "Referral received" interaction, audited (the caller holds the
    transaction)."""
    stamp = clock.stamp(now)
    row = {
        **cleaned,
        "outcome": "open",
        "interaction_id": interaction_id,
        "created_at": stamp,
        "created_by": actor.id,
        "updated_at": stamp,
        "updated_by": actor.id,
    }
    referral_id = insert(db, "referrals", row)
    audit.record(db, actor, "create", "referrals", referral_id, {**cleaned, "interaction_id": interaction_id})
    return referral_id


def _referrer(db: Database, cleaned: dict) -> str:
    """Check the contact is the branch's and the organisation exists (taking the contact's when unset); the
    referrer's name for the interaction's summary."""
    name = None
    if cleaned["contact_id"] is not None:
        row = db.execute(
            "SELECT name, organisation_id FROM contacts WHERE id = ? AND branch_id = ?",
            [cleaned["contact_id"], cleaned["branch_id"]],
        ).fetchone()
        if row is None:
            raise ValidationError("Contact", "must be a contact of the referral's branch.")
        name = row[0]
        if cleaned["organisation_id"] is None:
            cleaned["organisation_id"] = row[1]
    organisation = db.execute("SELECT name FROM organisations WHERE id = ?", [cleaned["organisation_id"]]).fetchone()
    if organisation is None:
        raise ValidationError("Organisation", "does not exist.")
    return f"{name}, {organisation[0]}" if name else organisation[0]


def clean_outcome(db: Database, referral: dict, values: dict, now: datetime | None = None) -> dict:
    """Check an outcome against the rules: a decision time for every outcome but open, not before receipt nor in
    the future; a reason (from the list) exactly when declined, with a note when the reason is Other; a care start
    date only when accepted, not before receipt."""
    now = now or clock.now()
    out = fields.check_all(
        {
            "outcome": lambda: _recordable(values.get("outcome")),
            "decided_at": lambda: _moment(values.get("decided_at"), "Decided"),
            "decline_reason": lambda: str(values.get("decline_reason") or "").strip() or None,
            "care_started_on": lambda: fields.date_value(values.get("care_started_on"), "Care started on"),
            "outcome_note": lambda: fields.text(values.get("outcome_note"), "Note", max_length=NOTE_MAX),
        }
    )
    if out["outcome"] == "open":
        return {"outcome": "open", "decided_at": None, "decline_reason": None, "care_started_on": None, **_note(out)}
    if out["decided_at"] is None:
        raise ValidationError("Decided", "is required for an outcome other than open.")
    _not_future(out["decided_at"], "Decided", now)
    if out["decided_at"] < referral["received_at"]:
        raise ValidationError(
            "Decided", f"cannot be before the referral was received ({shown(referral['received_at'])})."
        )
    received_on = from_stamp(referral["received_at"]).date()
    if out["outcome"] == "declined":
        reasons = {r["code"] for r in decline_reasons(db)}
        if out["decline_reason"] is None:
            raise ValidationError("Reason declined", "choose a reason.")
        if out["decline_reason"] not in reasons:
            raise ValidationError("Reason declined", f"“{out['decline_reason']}” is not on the list of reasons.")
        if out["decline_reason"] == "OTHER" and not out["outcome_note"]:
            raise ValidationError("Note", "say why, when the reason is Other.")
    else:
        out["decline_reason"] = None
    if out["outcome"] == "accepted":
        if out["care_started_on"] and out["care_started_on"] < received_on:
            raise ValidationError("Care started on", "cannot be before the referral was received.")
        out["care_started_on"] = out["care_started_on"].isoformat() if out["care_started_on"] else None
    else:
        out["care_started_on"] = None
    return out


def _note(out: dict) -> dict:
    return {"outcome_note": out["outcome_note"]}


def _recordable(value: object) -> str:
    code = str(value or "").strip()
    if code not in RECORDABLE:
        raise ValidationError("Outcome", "choose open, accepted, declined or withdrawn.")
    return code


def record_outcome(
    db: Database,
    actor: Actor,
    referral_id: int,
    values: dict,
    expected_version: int,
    *,
    confirmed: bool = False,
    now: datetime | None = None,
) -> None:
    """Record (or correct) a referral's outcome; :raises Conflict: when someone saved it after
    ``expected_version``."""
    with transaction(db):
        before = get(db, actor, referral_id)
        if before["version"] != expected_version:
            raise Conflict(
                "This referral was changed by someone else while you were editing. "
                "Reload it to see their changes, then make yours again."
            )
        cleaned = clean_outcome(db, before, values, now)
        if not confirmed:
            fields.refuse_nhs_numbers(cleaned, SENSITIVE_FIELDS)
        changes = audit.diff(before, cleaned)
        if not changes:
            return
        update_row(db, "referrals", referral_id, {**cleaned, "updated_by": actor.id})
        audit.record(db, actor, "update", "referrals", referral_id, changes)


# Reading.

_SELECT = """
    SELECT r.id, r.branch_id, b.name AS branch, r.received_at, r.contact_id, c.name AS contact,
           r.organisation_id, coalesce(o.name, '') AS organisation, coalesce(t.label, '') AS partner_type,
           r.channel, r.urgency, r.hours_per_week, r.start_wanted_on, r.area, r.provider_reference, r.outcome,
           r.decline_reason, coalesce(d.label, '') AS decline_reason_label, r.care_started_on, r.decided_at,
           r.outcome_note, r.interaction_id, coalesce(u.display_name, 'command line') AS logged_by, r.version
    FROM referrals r
    JOIN branches b ON b.id = r.branch_id
    LEFT JOIN contacts c ON c.id = r.contact_id
    LEFT JOIN organisations o ON o.id = r.organisation_id
    LEFT JOIN organisation_types t ON t.code = o.type_code
    LEFT JOIN referral_decline_reasons d ON d.code = r.decline_reason
    LEFT JOIN users u ON u.id = r.created_by
"""
LIST_COLUMNS = [
    "id",
    "branch",
    "received",
    "contact",
    "organisation",
    "partner_type",
    "channel",
    "urgency",
    "hours_per_week",
    "start_wanted_on",
    "area",
    "provider_reference",
    "outcome",
    "decline_reason",
    "care_started_on",
    "decided",
    "response_hours",
]


def _display(row: dict) -> dict:
    row["received"] = shown(row["received_at"])
    row["decided"] = shown(row["decided_at"])
    row["outcome_label"] = OUTCOMES[row["outcome"]]
    row["channel_label"] = CHANNELS.get(row["channel"] or "", "")
    row["urgency_label"] = URGENCIES.get(row["urgency"] or "", "")
    row["response_hours"] = (
        response_hours(row["received_at"], row["decided_at"]) if row["outcome"] in ("accepted", "declined") else None
    )
    return row


def get(db: Database, actor: Actor, referral_id: int) -> dict:
    """One referral within scope; :raises NotFound: otherwise."""
    where, params = branch_clause(actor, "r.branch_id")
    rows = db.execute_returning_dicts(f"{_SELECT} WHERE r.id = ? AND {where}", [referral_id, *params])
    if not rows:
        raise NotFound("That referral does not exist or is not in one of your branches.")
    return _display(rows[0])


def _received_between(since: date | None, until: date | None) -> tuple[list[str], list]:
    """Conditions on r.received_at for UK local dates ``since`` to ``until``, both whole days included."""
    conditions, params = [], []
    if since:
        conditions.append("r.received_at >= ?")
        params.append(local_day_start(since))
    if until:
        conditions.append("r.received_at < ?")
        params.append(local_day_start(until + timedelta(days=1)))
    return conditions, params


PAGE_SIZE = 50  # referrals listed at a time on the Referrals page, whatever the size of the user's scope


def _filters(
    actor: Actor,
    *,
    region_id: int | None = None,
    branch_id: int | None = None,
    contact_id: int | None = None,
    organisation_id: int | None = None,
    outcome: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> tuple[str, list]:
    """The SQL condition (over r) and its parameters for the actor's scope and every filter given."""
    where, params = Scope(actor, region_id, branch_id).clause("r.branch_id")
    conditions, values = [where], list(params)
    for condition, value in (
        ("r.contact_id = ?", contact_id),
        ("r.organisation_id = ?", organisation_id),
        ("r.outcome = ?", outcome),
    ):
        if value is not None:
            conditions.append(condition)
            values.append(value)
    between, between_params = _received_between(since, until)
    return " AND ".join(conditions + between), [*values, *between_params]


def search(db: Database, actor: Actor, *, limit: int = 500, offset: int = 0, **filters) -> list[dict]:
    """Referrals within scope matching every filter given (_filters' keywords: region_id, branch_id, contact_id,
    organisation_id, outcome, since, until), newest first (then by id, so that pages of ``limit`` rows from
    ``offset`` neither repeat nor skip any)."""
    where, values = _filters(actor, **filters)
    # The page's ids first, from the index on receipt time, and only those rows read and joined.
    rows = db.execute_returning_dicts(
        f"""
        {_SELECT}
        WHERE r.id IN (
            SELECT r.id FROM referrals r WHERE {where} ORDER BY r.received_at DESC, r.id DESC LIMIT ? OFFSET ?
        )
        ORDER BY r.received_at DESC, r.id DESC
        """,
        [*values, limit, max(offset, 0)],
    )
    return [_display(row) for row in rows]


def count(db: Database, actor: Actor, **filters) -> int:
    """How many referrals ``search`` finds with these filters (``search``'s keywords, without its limit and
    offset), counted in SQL: no row is read."""
    where, values = _filters(actor, **filters)
    return db.execute(f"SELECT count(*) FROM referrals r WHERE {where}", values).fetchone()[0]


# Measures, aggregated in SQL.

# Per grouping: the referral column counted by (``base``), then the group's key, name and second column over
# those counts (``g``), with the joins they need.
_GROUP_KEYS = {
    "branch": (
        "r.branch_id",
        "g.base",
        "b.name",
        "rg.name",
        "JOIN branches b ON b.id = g.base JOIN regions rg ON rg.id = b.region_id",
    ),
    "partner_type": (
        "r.organisation_id",
        "coalesce(o.type_code, '')",
        f"coalesce(t.label, '{NO_ORGANISATION}')",
        "''",
        "LEFT JOIN organisations o ON o.id = g.base LEFT JOIN organisation_types t ON t.code = o.type_code",
    ),
    "organisation": (
        "r.organisation_id",
        "coalesce(g.base, 0)",
        f"coalesce(o.name, '{NO_ORGANISATION}')",
        "coalesce(t.label, '')",
        "LEFT JOIN organisations o ON o.id = g.base LEFT JOIN organisation_types t ON t.code = o.type_code",
    ),
}


def measure_columns(db: Database, by: str = "branch") -> list[str]:
    """The columns of ``measures`` rows, in order (for tables and CSV)."""
    first = {
        "branch": ["region", "branch"],
        "partner_type": ["partner_type"],
        "organisation": ["organisation", "partner_type"],
    }
    reasons = [f"declined_{r['code'].lower()}" for r in decline_reasons(db)]
    return [
        *first[by],
        "received",
        "open",
        "accepted",
        "declined",
        "withdrawn",
        "unknown",
        "acceptance_rate",
        "median_response_hours",
        *reasons,
    ]


def measures(
    db: Database,
    actor: Actor,
    *,
    by: str = "branch",
    region_id: int | None = None,
    branch_id: int | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[dict]:
    """Per branch, partner type or referring organisation (``by``), within scope and received between the UK
    dates ``since`` and ``until``: referrals received, by outcome, acceptance rate (accepted of answered), median
    response time in hours (answered ones), and declines by reason. Groups with no referral are left out."""
    if by not in _GROUP_KEYS:
        raise ValidationError("Group by", f"choose one of: {', '.join(GROUPINGS)}.")
    base, key, label, extra, joins = _GROUP_KEYS[by]
    where, params = Scope(actor, region_id, branch_id).clause("r.branch_id")
    between, between_params = _received_between(since, until)
    conditions = " AND ".join([where, *between])
    reasons = [r["code"] for r in decline_reasons(db)]
    outcome_sums = "".join(f", sum(CASE WHEN g.outcome = '{outcome}' THEN g.n ELSE 0 END)" for outcome in OUTCOMES)
    reason_sums = "".join(", sum(CASE WHEN g.decline_reason = ? THEN g.n ELSE 0 END)" for _ in reasons)
    # Counted per branch or referring organisation, outcome and reason first: one count per referral, from the
    # index on receipt time (no read of the wide rows), sorted once into a few thousand rows; then named and
    # added up per group over those, rather than joining every referral to its branch or organisation or
    # testing each one against every outcome and reason.
    rows = db.execute(
        f"""
        WITH picked AS (
            SELECT {base} AS base, r.outcome, r.decline_reason, count(*) AS n
            FROM referrals r
            WHERE {conditions}
            GROUP BY 1, 2, 3
        )
        SELECT {key}, min({label}), min({extra}), sum(g.n){outcome_sums}{reason_sums}
        FROM picked g {joins}
        GROUP BY 1
        ORDER BY min({extra}), min({label}), 1
        """,
        [*params, *between_params, *reasons],
    ).fetchall()
    medians = _median_hours(db, by, conditions, [*params, *between_params])
    reason_names = [f"declined_{code.lower()}" for code in reasons]
    out = []
    for row in rows:
        group, name, extra_value, received, open_, accepted, declined, withdrawn, unknown = row[:9]
        median, reason_numbers = medians.get(group), row[9:]
        first: dict = {
            "branch": {"region": extra_value, "branch": name},
            "partner_type": {"partner_type": name},
            "organisation": {"organisation": name, "partner_type": extra_value},
        }[by]
        answered = accepted + declined
        out.append(
            {
                **first,
                "received": received,
                "open": open_,
                "accepted": accepted,
                "declined": declined,
                "withdrawn": withdrawn,
                "unknown": unknown,
                "acceptance_rate": round(accepted / answered, 3) if answered else None,
                "median_response_hours": round(median, 1) if median is not None else None,
                **dict(zip(reason_names, reason_numbers, strict=True)),
            }
        )
    return out


def _median_hours(db: Database, by: str, conditions: str, params: list) -> dict:
    """The median response time of the answered referrals (``conditions`` on their branch and receipt, ``r``)
    per group key of ``by``: the mean of the middle one or two, as the measures have always given it. The times
    are those stored when each outcome was saved (referral_responses, kept by triggers: schema step 0019)."""
    key, joins = {
        "branch": ("r.branch_id", ""),
        "partner_type": ("coalesce(o.type_code, '')", "LEFT JOIN organisations o ON o.id = r.organisation_id"),
        "organisation": ("coalesce(r.organisation_id, 0)", ""),
    }[by]
    hours: dict = {}
    for group, value in db.execute(
        f"SELECT {key}, r.hours FROM referral_responses r {joins} WHERE {conditions}",
        params,
    ):
        hours.setdefault(group, []).append(value)
    medians = {}
    for group, values in hours.items():
        values.sort()
        middle = len(values) // 2
        medians[group] = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    return medians


def declines(
    db: Database,
    actor: Actor,
    *,
    region_id: int | None = None,
    branch_id: int | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[dict]:
    """Declined referrals within scope per reason (every reason on the list, zero included), in list order."""
    where, params = Scope(actor, region_id, branch_id).clause("r.branch_id")
    between, between_params = _received_between(since, until)
    # Counted per reason over the declined referrals in scope first (one range of the index on receipt time), then
    # put on the list of reasons: joining the list to the referrals read the range once per reason.
    return db.execute_returning_dicts(
        f"""
        WITH counted AS (
            SELECT r.decline_reason AS code, count(*) AS declined
            FROM referrals r
            WHERE r.outcome = 'declined' AND {" AND ".join([where, *between])}
            GROUP BY r.decline_reason
        )
        SELECT d.label AS reason, coalesce(c.declined, 0) AS declined
        FROM referral_decline_reasons d LEFT JOIN counted c ON c.code = d.code
        ORDER BY d.sort_order, d.label
        """,
        [*params, *between_params],
    )


def by_month(
    db: Database,
    actor: Actor,
    *,
    region_id: int | None = None,
    branch_id: int | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[dict]:
    """Referrals received per UTC month and outcome, within scope (months as YYYY-MM)."""
    where, params = Scope(actor, region_id, branch_id).clause("r.branch_id")
    between, between_params = _received_between(since, until)
    rows = db.execute_returning_dicts(
        f"""
        SELECT substr(r.received_at, 1, 7) AS month, r.outcome, count(*) AS referrals
        FROM referrals r WHERE {" AND ".join([where, *between])}
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        [*params, *between_params],
    )
    for row in rows:
        row["outcome"] = OUTCOMES[row["outcome"]]
    return rows


def received_by_branch(
    db: Database,
    actor: Actor,
    *,
    days: int = 90,
    region_id: int | None = None,
    branch_id: int | None = None,
    now: datetime | None = None,
) -> dict[int, int]:
    """Referrals received in the last ``days`` days per branch within scope: {branch_id: count}."""
    where, params = Scope(actor, region_id, branch_id).clause("r.branch_id")
    since = clock.stamp((now or clock.now()) - timedelta(days=days))
    return dict(
        db.execute(
            f"SELECT r.branch_id, count(*) FROM referrals r WHERE r.received_at >= ? AND {where} GROUP BY 1",
            [since, *params],
        ).fetchall()
    )
