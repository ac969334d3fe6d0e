"""``python -m crm bench``: build a large provider's database and time what its users wait for.

The database is built deterministically (same seed, same rows, dates relative to today) in a temporary file:
250 branches in 10 regions, a directory of about 10,500 organisations, 75,000 contacts and 750,000
interactions over three years, 50,000 of whose referral interactions have their referral (with an outcome).
Rows are written with executemany, not through the app's one-at-a-time
functions, so building takes seconds rather than hours; everything measured goes through the app's own code.
"""

import logging
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from sqlite_utils import Database

from crm import clock, contacts, coverage, db, directory, imports, referrals, users
from crm.access import ADMIN, BRANCH_MANAGER, REGIONAL_LEAD, Actor

SEED = 42
PASSWORD = "benchmark password"  # only ever in the throwaway database
KINDS = ["PHONE_CALL", "EMAIL", "VISIT", "MEETING", "MDT_MEETING", "EVENT", "REFERRAL_RECEIVED", "FEEDBACK_RECEIVED"]
KIND_WEIGHTS = [34, 22, 10, 9, 5, 3, 14, 3]
OTHER_TYPES = [
    "PCN",
    "COMMUNITY_THERAPY",
    "COMMUNITY_NURSING",
    "LA_SOCIAL_CARE",
    "HOSPITAL_DISCHARGE",
    "MENTAL_HEALTH",
    "ICB",
    "HOSPICE",
    "PHARMACY",
    "HOUSING",
    "VOLUNTARY_COMMUNITY",
    "OTHER",
]


def build(
    path: Path,
    *,
    branches: int = 250,
    referral_count: int = 50_000,
    regions: int = 10,
    contacts_per_branch: int = 300,
    interactions_per_branch: int = 3000,
    gp_per_branch: int = 30,
    seed: int = SEED,
) -> dict[str, int]:
    """Create the large-provider database at ``path``; returns its row counts."""
    rng = random.Random(seed)
    database = db.connect(path)
    admin = users.create_first_admin(database, "bench.admin", "Benchmark Admin", PASSWORD)
    today = clock.now().date()
    stamp = clock.stamp()
    three_years_ago = today - timedelta(days=3 * 365)
    conn = database.conn
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO regions (id, name, created_at) VALUES (?, ?, ?)",
        [(r + 1, f"Region {r + 1:02d}", stamp) for r in range(regions)],
    )
    conn.executemany(
        "INSERT INTO branches (id, name, region_id, created_at) VALUES (?, ?, ?, ?)",
        [(b + 1, f"Branch {b + 1:03d}", b % regions + 1, stamp) for b in range(branches)],
    )
    organisations: list[tuple] = []
    by_branch: dict[int, dict[str, list[int]]] = {}
    for b in range(1, branches + 1):
        district = f"ZZ{b}"  # a made-up district per branch: its GP patch
        mine: dict[str, list[int]] = {"GP_PRACTICE": []}
        for g in range(gp_per_branch):
            organisations.append(
                (
                    len(organisations) + 1,
                    f"Practice {b}-{g}",
                    "GP_PRACTICE",
                    f"{district} {g % 9 + 1}AA",
                    "active" if rng.random() > 0.1 else "closed",
                    f"Z{b:03d}{g:02d}",
                )
            )
            mine["GP_PRACTICE"].append(len(organisations))
        for code in OTHER_TYPES:
            organisations.append(
                (len(organisations) + 1, f"{code.title()} {b}", code, f"{district} 1AB", "active", None)
            )
            mine[code] = [len(organisations)]
        by_branch[b] = mine
    conn.executemany(
        "INSERT INTO organisations (id, name, type_code, postcode, status, ods_code, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(*o, stamp, stamp) for o in organisations],
    )
    conn.executemany(
        "INSERT INTO branch_patch (branch_id, kind, value) VALUES (?, 'postcode_district', ?)",
        [(b, f"ZZ{b}") for b in range(1, branches + 1)],
    )
    contacts: list[tuple] = []
    interactions: list[tuple] = []
    links: list[tuple[int, int, str, int]] = []
    created = f"{three_years_ago.isoformat()}T09:00:00Z"
    for b in range(1, branches + 1):
        # Each branch has its own habits: how many partner types it neglects, so coverage varies.
        neglected = set(rng.sample(OTHER_TYPES + ["GP_PRACTICE"], rng.choice([0, 0, 1, 2, 3])))
        first = len(contacts) + 1
        for _ in range(contacts_per_branch):
            code = "GP_PRACTICE" if rng.random() < 0.45 else rng.choice(OTHER_TYPES)
            org = rng.choice(by_branch[b][code])
            left = rng.random() < 0.05
            contacts.append(
                (
                    len(contacts) + 1,
                    b,
                    org,
                    f"Contact {len(contacts) + 1}",
                    "+441134960000",
                    int(rng.random() < 0.85),
                    "left" if left else "active",
                    (today - timedelta(days=rng.randint(1, 700))).isoformat() if left else None,
                    created,
                    stamp,
                    code,
                )
            )
        branch_contacts = contacts[first - 1 :]
        for _ in range(interactions_per_branch):
            contact = rng.choice(branch_contacts)
            recent_ok = contact[10] not in neglected
            days_ago = rng.randint(0, 3 * 365 - 1) if recent_ok else rng.randint(120, 3 * 365 - 1)
            interactions.append(
                (
                    len(interactions) + 1,
                    b,
                    contact[2],
                    (today - timedelta(days=days_ago)).isoformat(),
                    rng.choices(KINDS, KIND_WEIGHTS)[0],
                    "Logged for the benchmark",
                    stamp,
                    stamp,
                )
            )
            links.append((len(interactions), contact[0], interactions[-1][3], b))
    conn.executemany(
        "INSERT INTO contacts (id, branch_id, organisation_id, name, phone, is_named_contact, status, left_on, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [c[:10] for c in contacts],
    )
    conn.executemany(
        "INSERT INTO interactions (id, branch_id, organisation_id, occurred_on, kind_code, summary, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        interactions,
    )
    conn.executemany(
        "INSERT INTO interaction_contacts (interaction_id, contact_id, occurred_on, branch_id) VALUES (?, ?, ?, ?)",
        links,
    )
    conn.execute(
        """UPDATE contacts SET last_touched_on = (
               SELECT max(occurred_on) FROM interaction_contacts WHERE contact_id = contacts.id)"""
    )
    conn.executemany(
        "INSERT INTO referrals (branch_id, received_at, contact_id, organisation_id, channel, urgency, outcome, "
        "decline_reason, decided_at, interaction_id, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        _referrals(rng, interactions, links, referral_count, stamp),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    users.add_user(database, admin, "bench.lead", "Benchmark Lead", REGIONAL_LEAD, PASSWORD, region_id=1)
    counts = {
        t: database.table(t).count for t in ("branches", "organisations", "contacts", "interactions", "referrals")
    }
    database.close()
    return counts


REFERRAL_OUTCOMES = ["accepted", "declined", "withdrawn", "open"]
REFERRAL_OUTCOME_WEIGHTS = [55, 30, 10, 5]
DECLINE_REASONS = ["NO_CAPACITY", "OUTSIDE_AREA", "NEEDS_BEYOND_SERVICE", "CHOSE_OTHER_PROVIDER", "FUNDING_NOT_AGREED"]


def _referrals(rng: random.Random, interactions: list[tuple], links: list[tuple], count: int, stamp: str) -> list:
    """Referral rows for ``count`` of the "Referral received" interactions, with outcomes and response times."""
    received_ones = [i for i in interactions if i[4] == "REFERRAL_RECEIVED"]
    rows = []
    for interaction in sorted(rng.sample(received_ones, min(count, len(received_ones)))):
        interaction_id, branch, organisation, day = interaction[:4]
        received = datetime.fromisoformat(f"{day}T{rng.randint(7, 17):02d}:{rng.randint(0, 59):02d}:00+00:00")
        outcome = rng.choices(REFERRAL_OUTCOMES, REFERRAL_OUTCOME_WEIGHTS)[0]
        decided = None if outcome == "open" else clock.stamp(received + timedelta(hours=rng.uniform(0.5, 120)))
        rows.append(
            (
                branch,
                clock.stamp(received),
                links[interaction_id - 1][1],
                organisation,
                rng.choice(["phone", "email", "portal", "e_referral"]),
                rng.choice(["routine", "urgent", "hospital_discharge"]),
                outcome,
                rng.choice(DECLINE_REASONS) if outcome == "declined" else None,
                decided,
                interaction_id,
                stamp,
                stamp,
            )
        )
    return rows


def median_seconds(work: Callable[[], object], runs: int, before: Callable[[], object] | None = None) -> float:
    """Median wall time of ``runs`` calls, after one warm-up call (so caches are as a user finds them); ``before``
    runs, untimed, before each timed call."""
    work()
    times = []
    for _ in range(runs):
        if before:
            before()
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _ratio(seconds: float, floor: float, target: float) -> str:
    return f"within {target:g}x floor: {seconds / floor:.1f}x"


def _summary_fill_seconds(database: Database) -> float:
    """Forget the month-end coverage summary and fill it again for every branch, as schema step 0017 does."""
    start = time.perf_counter()
    with db.transaction(database):
        database.execute("DELETE FROM coverage_months_done")
        database.execute("DELETE FROM coverage_months")
        coverage.fill_summary(database)
    return time.perf_counter() - start


def _back_dated_touch(database: Database, actor: Actor) -> Callable[[], object]:
    """A write that reaches past month ends: an interaction dated 100 days ago logged with a contact of branch 1
    (through the app, so its triggers forget that branch's month ends from then on)."""
    from crm import interactions

    contact = database.execute("SELECT id FROM contacts WHERE branch_id = 1 ORDER BY id LIMIT 1").fetchone()[0]

    def write() -> int:
        values = {
            "branch_id": 1,
            "occurred_on": clock.now().date() - timedelta(days=100),
            "kind_code": "PHONE_CALL",
            "summary": "Logged for the benchmark, dated back",
            "contact_ids": [contact],
        }
        return interactions.log(database, actor, values)

    return write


def _only_errors(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def quiet_streamlit() -> None:
    """Keep Streamlit's warnings about running outside a server out of the report.

    AppTest runs each page on this process's main thread, where Streamlit warns "missing ScriptRunContext" on
    every run, and a cache cleared outside a server warns that there is no runtime: both expected here. A filter
    on the loggers (not a level, which Streamlit resets when it reads its config) keeps errors only.
    """
    for name in ("streamlit.runtime.scriptrunner_utils.script_run_context", "streamlit.runtime.caching.cache_data_api"):
        logger = logging.getLogger(name)
        if _only_errors not in logger.filters:
            logger.addFilter(_only_errors)


def _page_runner(
    script: str, db_path: Path, actor: Actor | None, cold: bool = False, write: Callable[[], object] | None = None
) -> Callable[[], object]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from crm.ui import session

    quiet_streamlit()

    os.environ["CRM_DB"] = str(db_path)
    token = None
    if actor is not None:
        with db.connect(db_path) as database:
            token = users.start_session(database, actor)

    def run() -> object:
        if write:  # someone's change, made just before the view (timed with it: it is one write)
            write()
        if cold:  # as the first view after someone's change: nothing cached
            st.cache_data.clear()
            st.cache_resource.clear()
        at = AppTest.from_file(script, default_timeout=120)
        if token:
            at.session_state[session.TOKEN_KEY] = token
        at.run()
        if at.exception:
            raise RuntimeError(f"{script} failed: {at.exception[0].message}")
        return at

    return run


def measure(db_path: Path, runs: int, epraccur: Path | None) -> list[tuple[str, float, str]]:
    """Run every measurement; returns (what, seconds, target) rows."""
    results = []
    database = db.connect(db_path)
    admin = users.get(database, database.execute("SELECT id FROM users WHERE role = ?", [ADMIN]).fetchone()[0])
    lead = users.get(database, database.execute("SELECT id FROM users WHERE role = ?", [REGIONAL_LEAD]).fetchone()[0])

    floor = median_seconds(lambda: database.execute("SELECT branch_id, organisation_id FROM contacts").fetchall(), runs)
    results.append(("floor: read every contact row once", floor, ""))
    every = median_seconds(lambda: coverage.coverage(database, admin), runs)
    results.append(("coverage for every branch (today)", every, f"within 3x floor: {every / floor:.1f}x"))
    ends = coverage.month_ends(clock.now().date(), 13)[:-1]
    filled = _summary_fill_seconds(database)
    results.append(("month-end coverage summary filled, every branch, 12 month ends (schema step 0017)", filled, ""))
    as_of = median_seconds(lambda: coverage.history(database, admin, ends), runs)
    results.append(
        ("as-of coverage, 12 past month ends, in total, read from the summary", as_of, _ratio(as_of, floor, 10))
    )
    back_dated = median_seconds(
        lambda: coverage.history(database, admin, ends), runs, before=_back_dated_touch(database, admin)
    )
    results.append(
        (
            "as-of coverage, 12 past month ends, after a back-dated interaction (its branch recomputed)",
            back_dated,
            _ratio(back_dated, floor, 10),
        )
    )
    trend = median_seconds(lambda: coverage.trend(database, admin), runs, before=_back_dated_touch(database, admin))
    results.append(("coverage trend, admin, after a back-dated interaction", trend, ""))

    for who, actor in (("admin, all 250 branches", admin), ("regional lead, 25 branches", lead)):
        for by in ("branch", "partner_type", "organisation"):
            seconds = median_seconds(partial(referrals.measures, database, actor, by=by), runs)
            results.append((f"referral measures per {by.replace('_', ' ')}, {who}", seconds, "under 200 ms"))
    seconds = median_seconds(lambda: referrals.declines(database, admin), runs)
    results.append(("referral declines by reason, admin, all 250 branches", seconds, "under 200 ms"))
    year_ago = clock.now().date() - timedelta(days=365)
    seconds = median_seconds(lambda: referrals.measures(database, admin, since=year_ago), runs)
    results.append(("referral measures per branch, admin, last 12 months", seconds, "under 200 ms"))

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as folder:
        title_page = Path(folder) / "title.py"
        title_page.write_text("import streamlit as st\n\nst.title('Floor')\n")
        page_floor = median_seconds(_page_runner(str(title_page), db_path, None), runs)
    results.append(("AppTest floor: a page that only draws a title", page_floor, ""))
    page = str(root / "pages" / "coverage.py")
    for who, actor in (("admin, all 250 branches", admin), ("regional lead, 25 branches", lead)):
        for view, cold in (("first view after a change", True), ("repeat view", False)):
            seconds = median_seconds(_page_runner(page, db_path, actor, cold), runs)
            results.append((f"Coverage page, {who}, {view}", seconds, _ratio(seconds, page_floor, 3)))
    # A change dated in the past (branch 1's month ends recomputed on the view): the write and the view, timed.
    seconds = median_seconds(_page_runner(page, db_path, admin, True, _back_dated_touch(database, admin)), runs)
    results.append(
        (
            "Coverage page, admin, first view after a back-dated interaction (write included)",
            seconds,
            _ratio(seconds, page_floor, 3),
        )
    )

    if epraccur and epraccur.exists():
        data = epraccur.read_bytes()
        with tempfile.TemporaryDirectory() as folder:

            def gp_import() -> float:
                target = db.connect(Path(folder) / f"gp{time.perf_counter_ns()}.db")
                founder = users.create_first_admin(target, "gp.admin", "GP Admin", PASSWORD)
                start = time.perf_counter()
                directory.import_gp_practices(target, founder, data)
                return time.perf_counter() - start

            gp = statistics.median(gp_import() for _ in range(max(1, min(runs, 3))))
        results.append((f"GP directory import, {len(data.splitlines()):,} rows", gp, "under 3 s"))
    contacts_file = _contacts_csv(10_000)
    with tempfile.TemporaryDirectory() as folder:

        def contacts_import() -> float:
            target = db.connect(Path(folder) / f"c{time.perf_counter_ns()}.db")
            founder = users.create_first_admin(target, "import.admin", "Import Admin", PASSWORD)
            target.execute("INSERT INTO regions (id, name, created_at) VALUES (1, 'R', '')")
            target.execute("INSERT INTO branches (id, name, region_id, created_at) VALUES (1, 'B', 1, '')")
            start = time.perf_counter()
            table = imports.read_table(contacts_file, "contacts.csv")
            plan = imports.plan(target, founder, table, imports.guess_mapping(table.headers), 1)
            imports.apply(target, founder, plan)
            return time.perf_counter() - start

        seconds = statistics.median(contacts_import() for _ in range(max(1, min(runs, 3))))
    results.append(("contacts import, 10,000 rows (read, validate, de-duplicate, insert)", seconds, "under 3 s"))
    results += search_timings(database, admin, lead, runs)
    results += contacts_list_timings(database, admin, lead, runs, floor)
    database.close()
    return results


# The branch manager the searches below are timed for (branch 17): an Actor alone, no account or session needed.
BENCH_MANAGER = Actor(None, "bench.manager", "Benchmark Manager", BRANCH_MANAGER, None, 17)

# What people type in the search box, and who: a whole name, a name's start, an ODS code, a word that is in every
# one of the 750,000 interactions (the benchmark logs them all with the same summary) and its start, and nothing.
SEARCHES = [
    ("a contact's name", "Contact 4321"),
    ("an organisation's name, last word half typed", "pharmacy 1"),
    ("an ODS code", "Z01702"),
    ("a word in every interaction", "benchmark"),
    ("the start of a word in every interaction", "bench"),
    ("two words found nowhere together", "pharmacy benchmark"),
]


def search_timings(database: Database, admin: Actor, lead: Actor, runs: int) -> list[tuple[str, float, str]]:
    """The search box (crm.search.find) for an administrator, a regional lead and a branch manager."""
    from crm import search

    results = []
    for what, text in SEARCHES:
        for who, actor in (("admin", admin), ("regional lead", lead), ("branch manager", BENCH_MANAGER)):
            seconds = median_seconds(partial(search.find, database, actor, text), runs)
            results.append((f"search box, {who}: {what} (“{text}”)", seconds, "under 100 ms"))
    return results


# What people type in the Contacts list's search: part of a name, an organisation's name (thousands of contacts
# work at pharmacies), and what nobody's details hold.
CONTACT_SEARCHES = [
    ("part of a name", "contact 43"),
    ("an organisation's name", "pharmacy"),
    ("what no one's details hold", "zzz"),
]


def contacts_list_timings(
    database: Database, admin: Actor, lead: Actor, runs: int, floor: float
) -> list[tuple[str, float, str]]:
    """The Contacts list searched as pages/contacts.py does (the count, then the first page of rows) for an
    administrator, a regional lead and a branch manager: within 1x the floor means less than one read of every
    contact, which LIKE over an administrator's 75,000 was not (29 to 37 ms, against a floor of 27)."""
    results = []
    for what, text in CONTACT_SEARCHES:
        for who, actor in (("admin", admin), ("regional lead", lead), ("branch manager", BENCH_MANAGER)):

            def listed(actor: Actor = actor, text: str = text) -> None:
                contacts.count(database, actor, text=text, at_most=contacts.COUNTED)
                contacts.search(database, actor, text=text, limit=contacts.PAGE_SIZE)

            seconds = median_seconds(listed, runs)
            results.append((f"Contacts list, {who}: {what} (“{text}”)", seconds, _ratio(seconds, floor, 1)))
    return results


def _contacts_csv(rows: int) -> bytes:
    rng = random.Random(SEED)
    types = ["GP practice", "OT", "Social services", "District nurses", "Discharge"]
    lines = ["Full name,Job title,Telephone,Email,Organisation,Type"]
    for i in range(rows):
        lines.append(
            f"Person {i},Practice Manager,0113 2{i // 10000}{i % 10000:05d},person{i}@org{i % 50}.example,"
            f"Organisation {i % 300},{rng.choice(types)}"
        )
    return ("\n".join(lines) + "\n").encode()


def run(runs: int = 5, keep: Path | None = None, epraccur: Path | None = None, out=sys.stdout) -> int:
    """Build, measure, print a report (Markdown) with the command to reproduce it."""
    with tempfile.TemporaryDirectory() as folder:
        path = keep or Path(folder) / "bench.db"
        if path.exists():
            raise SystemExit(f"{path} already exists")
        start = time.perf_counter()
        counts = build(path)
        built = time.perf_counter() - start
        results = measure(path, runs, epraccur)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"Built in {built:.1f} s: " + ", ".join(f"{n:,} {t}" for t, n in counts.items()), file=out)
    print(f"Median of {runs} runs after one warm-up. Peak memory of the process: {peak_mb:.0f} MB.\n", file=out)
    print("| measurement | median | target |", file=out)
    print("| --- | ---: | --- |", file=out)
    for what, seconds, target in results:
        print(f"| {what} | {seconds * 1000:,.1f} ms | {target} |", file=out)
    return 0
