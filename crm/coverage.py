"""Relationship coverage: for each branch and partner type, is there a warm named contact?

covered: at least one active named contact at an organisation of that type was touched within the window;
lapsing: there are named contacts, none touched within the window; gap: no named contact at all.
A branch's score is the share of the required partner types it has covered.

Today's coverage reads each contact's stored last_touched_on. Coverage "as of" a past date is rebuilt from the
interaction history: the contacts that existed and had not left by then, and the interactions in the window
before it (is_named_contact is taken as it is now: changes to that flag are not historised). Past month ends are
kept in a summary (coverage_months, schema step 0017) for the coverage window setting: read, not recomputed.
Triggers forget a branch's month ends when a write reaches them, and the next read recomputes that branch alone,
in a write transaction, so no write can slip between the computation and its storing.
"""

import calendar
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlite_utils import Database

from crm import audit, clock, directory, fields, settings
from crm.access import ADMIN, Actor, branch_clause, require_role
from crm.db import transaction
from crm.errors import ValidationError

STATUSES = {"covered": "Covered", "lapsing": "Lapsing", "gap": "Gap"}
DEFAULT_WINDOW_DAYS = 90
WINDOW_SETTING = "coverage_window_days"


@dataclass(frozen=True)
class Scope:
    """The actor's branches, optionally narrowed to one region or branch (both still limited by the actor)."""

    actor: Actor
    region_id: int | None = None
    branch_id: int | None = None

    def clause(self, column: str) -> tuple[str, list]:
        where, params = branch_clause(self.actor, column)
        if self.region_id is not None:
            where += f" AND {column} IN (SELECT id FROM branches WHERE region_id = ?)"
            params = [*params, self.region_id]
        if self.branch_id is not None:
            where += f" AND {column} = ?"
            params = [*params, self.branch_id]
        return where, params


def window_days(db: Database) -> int:
    """The coverage window in days (how recent a touch must be for a contact to count as warm)."""
    return int(settings.get(db, WINDOW_SETTING, str(DEFAULT_WINDOW_DAYS)))


def set_window_days(db: Database, actor: Actor, days: int) -> None:
    """Change the default coverage window (administrators)."""
    require_role(actor, ADMIN)
    value = fields.optional_id(days, "Coverage window")
    if value is None or not 1 <= value <= 730:
        raise ValidationError("Coverage window", "must be between 1 and 730 days.")
    settings.put(db, actor, WINDOW_SETTING, str(value))


def set_required_types(db: Database, actor: Actor, codes: list[str]) -> None:
    """Choose the partner types every branch should cover (administrators)."""
    require_role(actor, ADMIN)
    if not codes:
        raise ValidationError("Required partner types", "choose at least one.")
    with transaction(db):
        before = sorted(r[0] for r in db.execute("SELECT code FROM organisation_types WHERE required = 1"))
        marks = ", ".join("?" for _ in codes)
        known = db.execute(f"SELECT count(*) FROM organisation_types WHERE code IN ({marks})", codes).fetchone()[0]
        if known != len(set(codes)):
            raise ValidationError("Required partner types", "one of them is not a partner type.")
        db.execute(f"UPDATE organisation_types SET required = (code IN ({marks}))", codes)
        audit.record(db, actor, "update", "organisation_types", None, {"required": [before, sorted(codes)]})


def _branches(db: Database, scope: Scope) -> list[tuple[int, str, str]]:
    where, params = scope.clause("b.id")
    return db.execute(
        f"SELECT b.id, b.name, r.name FROM branches b JOIN regions r ON r.id = b.region_id WHERE {where} "
        "ORDER BY r.name, b.name",
        params,
    ).fetchall()


def _counts_today(db: Database, scope: Scope, cutoff: str) -> list[tuple]:
    where, params = scope.clause("c.branch_id")
    # Counted per branch and organisation first, in the order of idx_contacts_coverage, then each organisation's
    # type looked up once: joining every contact to its organisation looked up 60,000 organisations for a large
    # provider's whole scope (30 ms of the query; 23 ms this way).
    return db.execute(
        f"""
        WITH per_organisation AS (
            SELECT c.branch_id, c.organisation_id, count(*) AS named, sum(c.last_touched_on >= ?) AS touched,
                max(c.last_touched_on) AS last_touched
            FROM contacts c
            WHERE c.is_named_contact = 1 AND c.status = 'active' AND {where}
            GROUP BY c.branch_id, c.organisation_id
        )
        SELECT p.branch_id, o.type_code, sum(p.named), sum(p.touched), max(p.last_touched)
        FROM per_organisation p JOIN organisations o ON o.id = p.organisation_id
        GROUP BY p.branch_id, o.type_code
        """,
        [cutoff, *params],
    ).fetchall()


Clause = Callable[[str], tuple[str, list]]  # a column's condition and its parameters, as Scope.clause gives


def _counts_as_of(db: Database, clause: Clause, ends: list[date], window: int) -> dict[date, list[tuple]]:
    """Counts per branch and partner type as they stood at the end of each day in ``ends``, in one query.

    One pass over the links in the whole span finds, per contact and per end date, the latest touch within that
    end's window; the contacts that existed and had not left by each end are then counted per branch and type.
    A cell with no touch in the window still shows its last touch before the date: from the stored last touch
    when that is older, otherwise by one index look-up for that contact.
    """
    link_where, link_params = clause("l.branch_id")
    where, params = clause("c.branch_id")
    latest, latest_params, counts, count_params = [], [], [], []
    for k, end in enumerate(ends):
        day = end.isoformat()
        latest.append(f"max(CASE WHEN l.occurred_on BETWEEN ? AND ? THEN l.occurred_on END) AS t{k}")
        latest_params += [(end - timedelta(days=window)).isoformat(), day]
        eligible = "(c.created_at <= ? AND (c.left_on IS NULL OR c.left_on > ?))"
        last_before = (
            "CASE WHEN c.last_touched_on <= ? THEN c.last_touched_on ELSE (SELECT max(x.occurred_on) "
            "FROM interaction_contacts x WHERE x.contact_id = c.id AND x.occurred_on <= ?) END"
        )
        counts.append(
            f"sum({eligible}), count(CASE WHEN {eligible} THEN w.t{k} END), "
            f"max(CASE WHEN {eligible} THEN coalesce(w.t{k}, {last_before}) END)"
        )
        count_params += [f"{day}T23:59:59Z", day] * 3 + [day, day]
    span = [(min(ends) - timedelta(days=window)).isoformat(), max(ends).isoformat()]
    rows = db.execute(
        f"""
        WITH w AS (
            SELECT l.contact_id, {", ".join(latest)}
            FROM interaction_contacts l
            WHERE l.occurred_on BETWEEN ? AND ? AND {link_where}
            GROUP BY l.contact_id
        )
        SELECT c.branch_id, o.type_code, {", ".join(counts)}
        FROM contacts c
        JOIN organisations o ON o.id = c.organisation_id
        LEFT JOIN w ON w.contact_id = c.id
        WHERE c.is_named_contact = 1 AND {where}
        GROUP BY c.branch_id, o.type_code
        """,
        [*latest_params, *span, *link_params, *count_params, *params],
    ).fetchall()
    return {end: [(row[0], row[1], *row[2 + 3 * k : 5 + 3 * k]) for row in rows] for k, end in enumerate(ends)}


def _is_month_end(day: date) -> bool:
    return day.day == calendar.monthrange(day.year, day.month)[1]


def _branch_ids(ids: list[int]) -> Clause:
    def clause(column: str) -> tuple[str, list]:
        return f"{column} IN ({', '.join('?' for _ in ids)})", list(ids)

    return clause


def _missing(db: Database, branch_ids: list[int], days: list[str], window: int) -> list[int]:
    """The branches of ``branch_ids`` lacking one of the month ends ``days`` in the summary."""
    marks = ", ".join("?" for _ in days)
    done = dict(
        db.execute(
            f"SELECT branch_id, count(*) FROM coverage_months_done WHERE window_days = ? AND month_end IN ({marks}) "
            "GROUP BY branch_id",
            [window, *days],
        ).fetchall()
    )
    return [b for b in branch_ids if done.get(b, 0) < len(days)]


def _store(db: Database, branch_ids: list[int], ends: list[date], window: int) -> None:
    """Compute and keep the counts of ``branch_ids`` as of ``ends`` (the caller holds the write transaction)."""
    everyone = len(branch_ids) == db.execute("SELECT count(*) FROM branches").fetchone()[0]
    counts = _counts_as_of(db, (lambda column: ("1", [])) if everyone else _branch_ids(branch_ids), ends, window)
    days, branches = [end.isoformat() for end in ends], ", ".join("?" for _ in branch_ids)
    db.execute(
        f"DELETE FROM coverage_months WHERE window_days = ? AND month_end IN ({', '.join('?' for _ in days)}) "
        f"AND branch_id IN ({branches})",
        [window, *days, *branch_ids],
    )
    db.conn.executemany(
        "INSERT INTO coverage_months (window_days, month_end, branch_id, type_code, named, warm, last_touched) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(window, end.isoformat(), *row) for end in ends for row in counts[end]],
    )
    db.conn.executemany(
        "INSERT OR REPLACE INTO coverage_months_done (branch_id, month_end, window_days) VALUES (?, ?, ?)",
        [(branch, day, window) for branch in branch_ids for day in days],
    )


def _refresh(db: Database, scope: Scope, ends: list[date], window: int) -> None:
    """Compute into the summary the month ends ``ends`` of the branches in scope it lacks."""
    branch_ids = [b[0] for b in _branches(db, scope)]
    days = [end.isoformat() for end in ends]
    if branch_ids and _missing(db, branch_ids, days, window):
        with transaction(db):
            # Again under the write lock: another reader may have filled them meanwhile, and no write can come
            # between computing these counts and storing them (its trigger would forget them too early).
            missing = _missing(db, branch_ids, days, window)
            if missing:
                _store(db, missing, ends, window)


def _counts_kept(db: Database, scope: Scope, ends: list[date], window: int) -> dict[date, list[tuple]]:
    """Counts as of past month ends, read from the summary after computing the branches in scope it lacks."""
    _refresh(db, scope, ends, window)
    days = [end.isoformat() for end in ends]
    where, params = scope.clause("branch_id")
    by_end: dict[date, list[tuple]] = {end: [] for end in ends}
    by_day = dict(zip(days, ends, strict=True))
    for day, *row in db.execute(
        f"""
        SELECT month_end, branch_id, type_code, named, warm, last_touched FROM coverage_months
        WHERE window_days = ? AND month_end IN ({", ".join("?" for _ in days)}) AND {where}
        """,
        [window, *days, *params],
    ):
        by_end[by_day[day]].append(tuple(row))
    return by_end


def _covered_kept(db: Database, scope: Scope, ends: list[date], window: int) -> dict[date, Counter]:
    """Per month end in ``ends`` (kept in the summary): each branch's required partner types with a warm named
    contact, for the branches in scope that have any."""
    by_end: dict[date, Counter] = {end: Counter() for end in ends}
    if not ends:
        return by_end
    _refresh(db, scope, ends, window)
    days = [end.isoformat() for end in ends]
    by_day = dict(zip(days, ends, strict=True))
    where, params = scope.clause("m.branch_id")
    for day, branch, covered in db.execute(
        f"""
        SELECT m.month_end, m.branch_id, count(*) FROM coverage_months m
        WHERE m.window_days = ? AND m.month_end IN ({", ".join("?" for _ in days)}) AND m.warm > 0
            AND m.type_code IN (SELECT code FROM organisation_types WHERE required = 1) AND {where}
        GROUP BY m.month_end, m.branch_id
        """,
        [window, *days, *params],
    ):
        by_end[by_day[day]][branch] = covered
    return by_end


def fill_summary(db: Database, months: int = 12) -> None:
    """Compute the past ``months`` month ends of every branch into the summary, for the coverage window setting
    (schema step 0017 fills it for the data already there; the caller holds the transaction)."""
    branch_ids = [r[0] for r in db.execute("SELECT id FROM branches ORDER BY id")]
    if branch_ids:
        _store(db, branch_ids, month_ends(clock.now().date(), months + 1)[:-1], window_days(db))


def _rows(db: Database, scope: Scope, counts: list[tuple]) -> list[dict]:
    found = {(b, t): (named, warm, last) for b, t, named, warm, last in counts}
    types = db.execute("SELECT code, label, required FROM organisation_types ORDER BY sort_order, label").fetchall()
    rows = []
    for branch, branch_name, region in _branches(db, scope):
        for code, label, required in types:
            named, warm, last = found.get((branch, code), (0, 0, None))
            status = "covered" if warm else "lapsing" if named else "gap"
            rows.append(
                {
                    "branch_id": branch,
                    "branch": branch_name,
                    "region": region,
                    "type_code": code,
                    "partner_type": label,
                    "required": bool(required),
                    "named_contacts": named,
                    "warm_named_contacts": warm or 0,
                    "last_touched": last,
                    "status": status,
                }
            )
    return rows


def coverage(
    db: Database,
    actor: Actor,
    *,
    as_of: date | None = None,
    window: int | None = None,
    region_id: int | None = None,
    branch_id: int | None = None,
) -> list[dict]:
    """One row per branch in scope and partner type: named and warm named contacts, last touch, status."""
    return history(
        db, actor, [as_of] if as_of else [clock.now().date()], window=window, region_id=region_id, branch_id=branch_id
    )[0]


def history(
    db: Database,
    actor: Actor,
    ends: list[date],
    *,
    window: int | None = None,
    region_id: int | None = None,
    branch_id: int | None = None,
) -> list[list[dict]]:
    """Coverage rows as they stood at each date in ``ends`` (today's from the stored last touches)."""
    scope = Scope(actor, region_id, branch_id)
    by_end = _counts(db, scope, ends, window or window_days(db))
    today = clock.now().date()
    return [_rows(db, scope, by_end[min(end, today)]) for end in ends]


def _kept_ends(db: Database, ends: list[date], window: int) -> list[date]:
    """The dates of ``ends`` the summary keeps: past month ends, for the window setting (others are computed)."""
    today = clock.now().date()
    if window != window_days(db):
        return []
    return sorted({end for end in ends if end < today and _is_month_end(end)})


def _counts(db: Database, scope: Scope, ends: list[date], window: int, *, kept: bool = True) -> dict[date, list[tuple]]:
    """(branch, type, named, warm, last touch) per date in ``ends``, any date from today on counted as today;
    without ``kept``, the dates the summary keeps are left out."""
    today = clock.now().date()
    past = sorted({end for end in ends if end < today})
    in_summary = _kept_ends(db, past, window)
    by_end = _counts_kept(db, scope, in_summary, window) if in_summary and kept else {}
    computed = [end for end in past if end not in in_summary]
    if computed:
        by_end.update(_counts_as_of(db, scope.clause, computed, window))
    if any(end >= today for end in ends):
        # A touch on the cutoff day itself is inside the window: day 0 is today, day `window` the cutoff.
        by_end[today] = _counts_today(db, scope, (today - timedelta(days=window)).isoformat())
    return by_end


def scores(rows: list[dict], patch: dict[int, tuple[int, int]] | None = None) -> list[dict]:
    """Each branch's score from coverage rows: covered required types / required types (0 to 1), plus its GP
    patch coverage where ``patch`` ({branch_id: (practices with a named contact, practices)}) knows it."""
    out: dict[int, dict] = {}
    for row in rows:
        branch = out.setdefault(
            row["branch_id"],
            {
                "branch_id": row["branch_id"],
                "branch": row["branch"],
                "region": row["region"],
                "covered": 0,
                "required": 0,
                "gaps": [],
            },
        )
        if row["required"]:
            branch["required"] += 1
            branch["covered"] += row["status"] == "covered"
            if row["status"] != "covered":
                branch["gaps"].append(row["partner_type"])
    for branch in out.values():
        branch["score"] = branch["covered"] / branch["required"] if branch["required"] else 0.0
        covered, total = (patch or {}).get(branch["branch_id"], (0, 0))
        branch["gp_patch_practices"] = total
        branch["gp_patch_with_named_contact"] = covered
        branch["gp_patch_share"] = covered / total if total else None
    return list(out.values())


def median_score(branch_scores: list[dict]) -> float | None:
    """The median branch score (None when there are no branches)."""
    return statistics.median(b["score"] for b in branch_scores) if branch_scores else None


def month_ends(today: date, months: int = 12) -> list[date]:
    """The last day of each of the past ``months`` months, oldest first, the current month counted as today."""
    ends = [today]
    year, month = today.year, today.month
    for _ in range(months - 1):
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        ends.append(date(year, month, calendar.monthrange(year, month)[1]))
    return ends[::-1]


def trend(
    db: Database,
    actor: Actor,
    *,
    months: int = 12,
    window: int | None = None,
    region_id: int | None = None,
    branch_id: int | None = None,
) -> list[dict]:
    """Per month: the mean branch score at the month's end and the interactions logged in the month."""
    today = clock.now().date()
    ends = month_ends(today, months)
    scope = Scope(actor, region_id, branch_id)
    activity = dict(_interactions_by_month(db, scope, ends[0].replace(day=1), today))
    window = window or window_days(db)
    # The scores straight from the counts, as ``scores`` would give them from every branch's rows (each branch
    # has a row for every partner type), without building those rows: per date, each branch's covered required
    # types, counted in SQL for the month ends the summary keeps.
    required = {code for (code,) in db.execute("SELECT code FROM organisation_types WHERE required = 1")}
    covered_by_end = _covered_kept(db, scope, _kept_ends(db, ends, window), window)
    for end, counts in _counts(db, scope, ends, window, kept=False).items():
        covered_by_end[end] = Counter(b for b, code, _, warm, _ in counts if warm and code in required)
    branch_ids = [b[0] for b in _branches(db, scope)]
    has_types = db.execute("SELECT 1 FROM organisation_types LIMIT 1").fetchone() is not None
    out = []
    for end in ends:
        covered = covered_by_end[min(end, today)]
        branch_scores = [covered[b] / len(required) if required else 0.0 for b in branch_ids] if has_types else []
        mean = statistics.fmean(branch_scores) if branch_scores else 0.0
        out.append(
            {"month": end.strftime("%Y-%m"), "score": mean, "interactions": activity.get(end.strftime("%Y-%m"), 0)}
        )
    return out


def _interactions_by_month(db: Database, scope: Scope, since: date, until: date) -> list[tuple[str, int]]:
    # ``since`` is the first day of a month. Whole months before ``until``'s are counted by triggers
    # (interaction_months); its own month is counted here.
    where, params = scope.clause("i.branch_id")
    month_start = until.replace(day=1)
    kept = []
    if since < month_start:
        kept_where, kept_params = scope.clause("m.branch_id")
        kept = db.execute(
            f"""
            SELECT m.month, sum(m.interactions) FROM interaction_months m
            WHERE m.month BETWEEN ? AND ? AND {kept_where} GROUP BY 1 HAVING sum(m.interactions) > 0
            """,
            [since.strftime("%Y-%m"), (month_start - timedelta(days=1)).strftime("%Y-%m"), *kept_params],
        ).fetchall()
    this_month = db.execute(
        f"""
        SELECT substr(i.occurred_on, 1, 7), count(*) FROM interactions i
        WHERE i.occurred_on BETWEEN ? AND ? AND {where} GROUP BY 1
        """,
        [max(since, month_start).isoformat(), until.isoformat(), *params],
    ).fetchall()
    return kept + this_month


def referrals_by_month(
    db: Database, actor: Actor, *, months: int = 12, region_id: int | None = None, branch_id: int | None = None
) -> list[dict]:
    """Referrals received per month and partner type over the past ``months`` months."""
    today = clock.now().date()
    since = month_ends(today, months)[0].replace(day=1)
    where, params = Scope(actor, region_id, branch_id).clause("i.branch_id")
    return db.execute_returning_dicts(
        f"""
        SELECT substr(i.occurred_on, 1, 7) AS month, coalesce(t.label, 'No organisation') AS partner_type,
               count(*) AS referrals
        FROM interactions i
        LEFT JOIN organisations o ON o.id = i.organisation_id
        LEFT JOIN organisation_types t ON t.code = o.type_code
        WHERE i.kind_code = 'REFERRAL_RECEIVED' AND i.occurred_on BETWEEN ? AND ? AND {where}
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        [since.isoformat(), today.isoformat(), *params],
    )


REPORT_COLUMNS = [
    "region",
    "branch",
    "partner_type",
    "required",
    "named_contacts",
    "warm_named_contacts",
    "last_touched",
    "status",
    "branch_score",
    "gp_patch",
]


def report(
    db: Database,
    actor: Actor,
    *,
    as_of: date | None = None,
    window: int | None = None,
    region_id: int | None = None,
    branch_id: int | None = None,
) -> tuple[list[dict], list[dict]]:
    """Coverage rows (one per branch and partner type, each with its branch's score) and branch scores:
    what the Coverage page and ``python -m crm coverage`` both show."""
    rows = coverage(db, actor, as_of=as_of, window=window, region_id=region_id, branch_id=branch_id)
    patch = directory.patch_coverage_by_branch(db, actor) if as_of is None or as_of >= clock.now().date() else {}
    branch_scores = scores(rows, patch)
    by_branch = {b["branch_id"]: b for b in branch_scores}
    for row in rows:
        branch = by_branch[row["branch_id"]]
        row["branch_score"] = f"{branch['covered']}/{branch['required']}"
        total = branch["gp_patch_practices"]
        row["gp_patch"] = f"{branch['gp_patch_with_named_contact']}/{total}" if total else ""
    return rows, branch_scores
