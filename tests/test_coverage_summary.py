"""The month-end coverage summary (schema step 0017): after every kind of write that can change a past month end,
what the summary gives equals a fresh recomputation; a write dated today forgets nothing; a manager's or lead's
read computes and reads only their branches; the step fills the summary for a database with data; the trend shows
a back-dated interaction; the interactions per month kept by triggers equal a count of the table."""

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest

from crm import clock, contacts, coverage, db, interactions, merge, organisations, privacy, users
from tests.conftest import PASSWORD, World, copy_world
from tests.test_coverage import (
    COUNCIL,
    FROZEN,
    GP,
    PHARMACY,
    TODAY,
    ago,
    independent_count,
    person,
    random_world,
    touch,
)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, World]:
    """The world of tests/test_coverage.py, built once (hashing its passwords is slow)."""
    path = tmp_path_factory.mktemp("summary") / "crm.db"
    database = db.connect(path)
    world = World(database, users.create_first_admin(database, "ada", "Ada Admin", PASSWORD))
    world.pharmacy = organisations.add(database, world.admin, {"name": "Boots Headingley", "type_code": PHARMACY})
    database.close()
    return path, world


@pytest.fixture
def world(template, tmp_path, monkeypatch) -> World:
    """A copy of the template world on its own file, with the clock stopped at FROZEN."""
    path, built = template
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    scene = copy_world(path, built, tmp_path / "crm.db")
    yield scene
    scene.db.close()


ENDS = coverage.month_ends(TODAY, 13)  # twelve past month ends, then today
PAST_ENDS = ENDS[:-1]


def kept(database) -> list[tuple]:
    return database.execute("SELECT * FROM coverage_months ORDER BY 1, 2, 3, 4").fetchall()


def done(database) -> list[tuple]:
    return database.execute(
        "SELECT branch_id, month_end, window_days FROM coverage_months_done ORDER BY 1, 2, 3"
    ).fetchall()


def forget_summary(database) -> None:
    database.execute("DELETE FROM coverage_months_done")
    database.execute("DELETE FROM coverage_months")


def figures(world: World) -> tuple:
    """Everything the summary feeds, for every role: history of the month ends, trend, today's report."""
    out = []
    for actor in (world.admin, world.lead_north, world.manager_bristol):
        out += [
            coverage.history(world.db, actor, ENDS),
            coverage.trend(world.db, actor, months=13),
            coverage.report(world.db, actor, as_of=PAST_ENDS[-3])[0],
        ]
    return tuple(out)


def interaction_months(database) -> list[tuple]:
    return database.execute(
        "SELECT branch_id, month, interactions FROM interaction_months WHERE interactions > 0 ORDER BY 1, 2"
    ).fetchall()


def counted_months(database) -> list[tuple]:
    return database.execute(
        "SELECT branch_id, substr(occurred_on, 1, 7), count(*) FROM interactions GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()


def a_named_contact(world: World, branch_id: int, *, touched: bool = True) -> int:
    return world.db.execute(
        "SELECT c.id FROM contacts c WHERE c.branch_id = ? AND c.is_named_contact = 1 AND c.status = 'active' "
        "AND (? = 0 OR EXISTS (SELECT 1 FROM interaction_contacts l WHERE l.contact_id = c.id)) ORDER BY c.id",
        [branch_id, touched],
    ).fetchone()[0]


def two_named_contacts(world: World, branch_id: int) -> list[int]:
    """The branch's first named contact and its last touched one (merged into the first)."""
    return [
        world.db.execute(
            f"SELECT id FROM contacts WHERE branch_id = ? AND is_named_contact = 1 AND status = 'active' "
            f"ORDER BY {order} LIMIT 1",
            [branch_id],
        ).fetchone()[0]
        for order in ("id", "last_touched_on DESC, id DESC")
    ]


def an_old_interaction(world: World) -> dict:
    interaction_id = world.db.execute(
        "SELECT id FROM interactions WHERE occurred_on < ? ORDER BY occurred_on DESC, id LIMIT 1",
        [PAST_ENDS[-3].isoformat()],
    ).fetchone()[0]
    return interactions.get(world.db, world.admin, interaction_id)


def edit_interaction(world: World, **changes) -> None:
    before = an_old_interaction(world)
    values = {k: before[k] for k in ("branch_id", "occurred_on", "kind_code", "summary", "contact_ids")}
    interactions.update(world.db, world.admin, before["id"], {**values, **changes}, before["version"])


def edit_contact(world: World, contact_id: int, **changes) -> None:
    before = contacts.get(world.db, world.admin, contact_id)
    values = {k: before[k] for k in ("name", "organisation_id", "branch_id", "is_named_contact")}
    contacts.update(world.db, world.admin, contact_id, {**values, **changes}, before["version"])


def a_never_touched_contact(world: World, branch_id: int) -> int:
    return world.db.execute(
        "SELECT id FROM contacts WHERE branch_id = ? AND is_named_contact = 1 AND last_touched_on IS NULL "
        "ORDER BY id LIMIT 1",
        [branch_id],
    ).fetchone()[0]


def touch_a_never_touched_contact(world: World) -> None:
    """Set-up for the writes below: the only touch of a York contact, 40 days ago (so moving or deleting it
    changes that branch's last two month ends)."""
    world.only_touch = touch(world, [a_never_touched_contact(world, world.york)], 40)


def edit_only_touch(world: World, **changes) -> None:
    before = interactions.get(world.db, world.admin, world.only_touch)
    values = {k: before[k] for k in ("branch_id", "occurred_on", "kind_code", "summary", "contact_ids")}
    interactions.update(world.db, world.admin, before["id"], {**values, **changes}, before["version"])


def left_contact(world: World) -> int:
    return world.db.execute("SELECT id FROM contacts WHERE status = 'left' ORDER BY id").fetchone()[0]


WRITES: dict[str, Callable[[World], object]] = {
    "back-dated interaction logged": lambda w: touch(w, [a_named_contact(w, w.leeds, touched=False)], 100),
    "interaction's date moved back": lambda w: edit_only_touch(w, occurred_on=ago(300)),
    "interaction's date moved forward to today": lambda w: edit_interaction(w, occurred_on=TODAY),
    "interaction's contacts changed": lambda w: edit_interaction(
        w, contact_ids=[a_named_contact(w, an_old_interaction(w)["branch_id"], touched=False)]
    ),
    "interaction deleted": lambda w: interactions.delete(w.db, w.admin, w.only_touch, 1),
    "contact added, back-dated": lambda w: person(w, w.york, "Late Entry", w.council, since=ago(200)),
    "contact moved to another branch": lambda w: edit_contact(w, a_named_contact(w, w.leeds), branch_id=w.bristol),
    "contact moved to an organisation of another type": lambda w: edit_contact(
        w, a_named_contact(w, w.york), organisation_id=w.council
    ),
    "contact no longer a named contact": lambda w: edit_contact(w, a_named_contact(w, w.bristol), is_named_contact=0),
    "contact left in the past": lambda w: contacts.mark_left(
        w.db,
        w.admin,
        a_named_contact(w, w.leeds),
        contacts.get(w.db, w.admin, a_named_contact(w, w.leeds))["version"],
        left_on=ago(200),
    ),
    "contact reinstated": lambda w: contacts.reinstate(
        w.db, w.admin, left_contact(w), contacts.get(w.db, w.admin, left_contact(w))["version"]
    ),
    "organisation's type changed": lambda w: organisations.update(
        w.db,
        w.admin,
        w.council,
        {**organisations.get(w.db, w.council), "type_code": "HOSPICE"},
        organisations.get(w.db, w.council)["version"],
    ),
    "contacts merged": lambda w: merge.merge_contacts(w.db, w.admin, *two_named_contacts(w, w.york)),
    "contacts merged, the duplicate never touched": lambda w: merge.merge_contacts(
        w.db, w.admin, two_named_contacts(w, w.york)[0], a_never_touched_contact(w, w.york)
    ),
    "organisations merged": lambda w: merge.merge_organisations(w.db, w.admin, w.pharmacy, w.ot),
    "contact erased": lambda w: privacy.erase(w.db, w.admin, a_named_contact(w, w.bristol)),
    "coverage window changed": lambda w: coverage.set_window_days(w.db, w.admin, 30),
    "required types changed": lambda w: coverage.set_required_types(w.db, w.admin, [GP, COUNCIL]),
}

SET_UP = {w: touch_a_never_touched_contact for w in ("interaction's date moved back", "interaction deleted")}


@pytest.mark.parametrize("write", list(WRITES), ids=list(WRITES))
def test_that_the_summary_equals_a_fresh_recomputation_after_each_kind_of_write(world, write):
    """Test that, with the summary filled beforehand, a write of each kind leaves every coverage figure that reads
    the summary (history, trend, report as of a month end; every role) equal to a recomputation from an empty
    summary, the stored rows equal to freshly computed ones, and the figures changed by the write (so a stale
    summary would show); the trend's interactions per month equal a count of the table."""
    random_world(world)
    if write in SET_UP:
        SET_UP[write](world)
    before = figures(world)
    assert len(done(world.db)) == 3 * len(PAST_ENDS)  # every branch's month ends were kept

    WRITES[write](world)
    after = figures(world)
    stored = kept(world.db)
    forget_summary(world.db)
    fresh = figures(world)

    assert after == fresh
    assert kept(world.db) == stored
    assert after[0] != before[0]  # the administrator's history of the month ends
    assert interaction_months(world.db) == counted_months(world.db)
    window = coverage.window_days(world.db)
    history = coverage.history(world.db, world.admin, PAST_ENDS)
    assert [
        {(r["branch_id"], r["type_code"]): r["named_contacts"] for r in rows if r["named_contacts"]} for rows in history
    ] == [{key: named for key, (named, _, _) in independent_count(world.db, end, window).items()} for end in PAST_ENDS]


def test_that_an_interaction_logged_today_forgets_no_month_end(world):
    """Test that the everyday write, a touch dated today, leaves every kept month end in place (nothing to
    recompute), while a touch dated in the past forgets that branch's month ends from its date on, and only those."""
    random_world(world)
    coverage.history(world.db, world.admin, ENDS)
    all_done = done(world.db)

    touch(world, [a_named_contact(world, world.leeds)], 0)
    assert done(world.db) == all_done

    touch(world, [a_named_contact(world, world.leeds)], (TODAY - date(2025, 12, 15)).days)
    assert done(world.db) == [row for row in all_done if not (row[0] == world.leeds and row[1] >= "2025-12-15")]
    assert [row for row in all_done if row not in done(world.db)] == [
        (world.leeds, day, 90) for day in ("2025-12-31", "2026-01-31", "2026-02-28")
    ]


def test_that_a_manager_or_lead_computes_and_reads_only_their_branches(world):
    """Test that from an empty summary a branch manager's read computes only their branch's month ends and a
    regional lead's only their region's, each gets only their branches' rows, and those equal the administrator's
    rows for the same branches."""
    random_world(world)
    forget_summary(world.db)

    manager = coverage.history(world.db, world.manager_bristol, PAST_ENDS)
    assert {row[0] for row in done(world.db)} == {world.bristol}
    assert {r["branch_id"] for rows in manager for r in rows} == {world.bristol}

    lead = coverage.history(world.db, world.lead_north, PAST_ENDS)
    assert {row[0] for row in done(world.db)} == {world.bristol, world.leeds, world.york}
    assert {r["branch_id"] for rows in lead for r in rows} == {world.leeds, world.york}

    # A back-dated write in Bristol: the lead's read does not recompute it, the manager's does.
    touch(world, [a_named_contact(world, world.bristol, touched=False)], 60)
    coverage.history(world.db, world.lead_north, PAST_ENDS)
    assert world.bristol not in {row[0] for row in done(world.db) if row[1] >= ago(60).isoformat()}
    manager = coverage.history(world.db, world.manager_bristol, PAST_ENDS)

    admin = coverage.history(world.db, world.admin, PAST_ENDS)
    assert manager == [[r for r in rows if r["branch_id"] == world.bristol] for rows in admin]
    assert lead == [[r for r in rows if r["branch_id"] in (world.leeds, world.york)] for rows in admin]


def test_that_another_window_or_date_is_computed_and_not_kept(world):
    """Test that coverage for a window other than the setting, or as of a day that is not a month end, is computed
    each time (equal to a fresh computation) and adds nothing to the summary."""
    random_world(world)
    forget_summary(world.db)

    other = coverage.history(world.db, world.admin, PAST_ENDS, window=30)
    mid_month = coverage.coverage(world.db, world.admin, as_of=ago(45), window=90)

    assert done(world.db) == [] and kept(world.db) == []
    coverage.set_window_days(world.db, world.admin, 30)
    assert coverage.history(world.db, world.admin, PAST_ENDS) == other
    assert {row[2] for row in done(world.db)} == {30}
    assert coverage.coverage(world.db, world.admin, as_of=ago(45), window=90) == mid_month
    assert {row[2] for row in done(world.db)} == {30}


def test_that_the_trend_shows_a_back_dated_interaction(world):
    """Test that an interaction logged today but dated in an earlier month raises that month's (and the next
    months') score and interactions in the trend, read after the summary was filled."""
    lena = person(world, world.leeds, "Lena GP")
    touch(world, [lena], (TODAY - date(2025, 9, 10)).days)
    before = coverage.trend(world.db, world.admin, months=4)
    assert before == [
        {"month": "2025-12", "score": 0.0, "interactions": 0},
        {"month": "2026-01", "score": 0.0, "interactions": 0},
        {"month": "2026-02", "score": 0.0, "interactions": 0},
        {"month": "2026-03", "score": 0.0, "interactions": 0},
    ]

    touch(world, [lena], (TODAY - date(2026, 1, 20)).days)

    one_of_fifteen = pytest.approx(1 / 15)  # one of five required types in one of three branches
    assert coverage.trend(world.db, world.admin, months=4) == [
        {"month": "2025-12", "score": 0.0, "interactions": 0},
        {"month": "2026-01", "score": one_of_fifteen, "interactions": 1},
        {"month": "2026-02", "score": one_of_fifteen, "interactions": 0},
        {"month": "2026-03", "score": one_of_fifteen, "interactions": 0},
    ]


def test_that_step_0017_fills_the_summary_for_a_database_with_data(world):
    """Test that upgrading a database with data to step 0017 keeps every branch's last twelve month ends for the
    window setting, equal to a recomputation, and counts its interactions per branch and month."""
    random_world(world)
    path = world.db.execute("PRAGMA database_list").fetchone()[2]
    expected = figures(world)
    fresh_rows = kept(world.db)
    # The database as it was before the step: its tables, triggers and index gone, the step not applied.
    for kind, name in world.db.execute(
        "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'trigger', 'index') "
        "AND (name LIKE 'coverage_months%' OR name LIKE 'interaction_months%' "
        "OR name IN ('idx_contacts_coverage', 'idx_interactions_kind_organisation'))"
    ).fetchall():
        world.db.execute(f"DROP {kind} IF EXISTS {name}")
    world.db.execute("CREATE INDEX idx_interactions_kind ON interactions(kind_code, occurred_on)")
    world.db.execute("DELETE FROM _sqlite_migrations WHERE name = '0017_coverage_months'")
    world.db.close()

    world.db = db.connect(path)

    assert kept(world.db) == fresh_rows
    assert done(world.db) == sorted(
        (branch, end.isoformat(), 90) for branch in (world.leeds, world.york, world.bristol) for end in PAST_ENDS
    )
    assert interaction_months(world.db) == counted_months(world.db)
    assert figures(world) == expected
    assert clock.now().date() == TODAY


# The dates each contact is due soon and lapses (schema step 0022), kept on the contact by triggers.

DUE_DATE_WRITES: dict[str, Callable[[World], object]] = {
    **WRITES,
    "contact's own interval set": lambda w: edit_contact(w, a_named_contact(w, w.leeds), keep_in_touch_days=20),
    "partner type's interval changed": lambda w: organisations.update_type(
        w.db, w.admin, GP, organisations.type_labels(w.db)[GP], 45
    ),
}


def stored_due_dates(database) -> list[tuple]:
    return database.execute("SELECT id, due_soon_on, lapses_on FROM contacts ORDER BY id").fetchall()


def fresh_due_dates(database) -> list[tuple]:
    """Each contact's due-soon and lapse dates worked out afresh in Python from their last touch and interval."""
    rows = database.execute(
        """
        SELECT c.id, c.last_touched_on, coalesce(c.keep_in_touch_days, t.keep_in_touch_days)
        FROM contacts c JOIN organisations o ON o.id = c.organisation_id
        JOIN organisation_types t ON t.code = o.type_code ORDER BY c.id
        """
    ).fetchall()
    fresh = []
    for contact_id, last, interval in rows:
        if last is None:
            fresh.append((contact_id, None, None))
            continue
        touched = date.fromisoformat(last)
        due_in = interval - min(contacts.MAX_DUE_SOON_DAYS, interval // 4)
        fresh.append(
            (
                contact_id,
                (touched + timedelta(days=due_in)).isoformat(),
                (touched + timedelta(days=interval)).isoformat(),
            )
        )
    return fresh


@pytest.mark.parametrize("write", list(DUE_DATE_WRITES), ids=list(DUE_DATE_WRITES))
def test_that_each_contacts_stored_due_dates_equal_a_fresh_working_out_after_each_kind_of_write(world, write):
    """Test that after a write of each kind every contact's stored due-soon and lapse dates are what their last
    touch and interval give, and that the lapsing list read through them is the one relationship() gives."""
    random_world(world)
    if write in SET_UP:
        SET_UP[write](world)
    assert stored_due_dates(world.db) == fresh_due_dates(world.db)

    DUE_DATE_WRITES[write](world)

    assert stored_due_dates(world.db) == fresh_due_dates(world.db)
    expected = sorted(
        (row["id"], row["relationship"])
        for row in contacts.search(world.db, world.admin, limit=100_000)
        if row["is_named_contact"] and not row["do_not_contact"] and row["relationship"] != "warm"
    )
    rows = contacts.lapsing_first(world.db, world.admin, 10_000, today=TODAY)
    count = contacts.lapsing_count(world.db, world.admin, today=TODAY)
    assert sorted((row["id"], row["relationship"]) for row in rows) == expected
    assert count == len(expected)


def test_that_the_most_urgent_few_are_the_first_of_the_whole_lapsing_list_in_relationship_order(world):
    """Test that lapsing_first's rows, for any number asked, are the first of the whole list, and that the whole list
    is in the order relationship() gives: lapsed (longest untouched first), never contacted (by name), due soon
    (longest untouched first); names then ids break ties."""
    random_world(world)
    urgency = {"lapsed": 0, "never": 1, "due_soon": 2}
    everyone = contacts.search(world.db, world.admin, limit=100_000)
    expected = [
        row["id"]
        for row in sorted(
            (r for r in everyone if r["is_named_contact"] and not r["do_not_contact"] and r["relationship"] != "warm"),
            key=lambda r: (urgency[r["relationship"]], r["last_touched_on"] or "", r["name"], r["id"]),
        )
    ]
    assert {r["relationship"] for r in everyone if r["id"] in expected} == set(urgency)  # every group is there
    whole = contacts.lapsing(world.db, world.admin, today=TODAY)
    assert [row["id"] for row in whole] == expected
    for wanted in (1, 3, len(expected) - 1, len(expected), len(expected) + 5):
        rows = contacts.lapsing_first(world.db, world.admin, wanted, today=TODAY)
        count = contacts.lapsing_count(world.db, world.admin, today=TODAY)
        assert (rows, count) == (whole[:wanted], len(expected))
