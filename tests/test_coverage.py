"""Relationship coverage: the window's boundaries, contacts who left, per-contact intervals, coverage as of a past
date rebuilt from history, history against an independent count, today's stored dates after log/update/delete,
scope, the window and required-type settings, branch scores and GP patch figures, trend and referrals, and the
0004/0005 schema steps."""

import random
from collections import defaultdict
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from crm import audit, clock, contacts, coverage, db, directory, interactions, organisations, schema, users
from crm.access import COMMAND_LINE, Actor
from crm.errors import PermissionDenied, ValidationError
from tests.conftest import PASSWORD, World, copy_world

FROZEN = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)  # a Monday
TODAY = date(2026, 3, 2)
LONG_AGO = date(2024, 1, 2)  # when contacts are added unless a test says otherwise: before every as-of date used
LABELS = dict(schema.ORGANISATION_TYPES)
CODES = [code for code, _ in schema.ORGANISATION_TYPES]
GP, OT, COUNCIL, PHARMACY = "GP_PRACTICE", "COMMUNITY_THERAPY", "LA_SOCIAL_CARE", "PHARMACY"
ROLE_REFUSED = "Your role does not allow this."
WINDOW_REFUSED = "Coverage window: must be between 1 and 730 days."


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, World]:
    """The world (regions, branches, users, organisations), built once because hashing passwords is slow."""
    path = tmp_path_factory.mktemp("coverage") / "crm.db"
    database = db.connect(path)
    world = World(database, users.create_first_admin(database, "ada", "Ada Admin", PASSWORD))
    world.pharmacy = organisations.add(database, world.admin, {"name": "Boots Headingley", "type_code": PHARMACY})
    database.close()
    return path, world


@pytest.fixture
def world(template, tmp_path, monkeypatch) -> World:
    """A copy of the template world on its own file, with the clock stopped at FROZEN."""
    path, built = template
    target = tmp_path / "crm.db"
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    scene = copy_world(path, built, target)
    yield scene
    scene.db.close()


@contextmanager
def on(day: date):
    """The clock at 09:00 on ``day`` for the block (the FROZEN clock comes back after it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clock, "now", lambda: datetime.combine(day, time(9), UTC))
        yield


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def person(world: World, branch_id: int, name: str, organisation_id: int | None = None, *, since=LONG_AGO, **extra):
    """A contact added on ``since`` (so that coverage as of earlier dates knows they did not exist yet)."""
    with on(since):
        return world.contact(branch_id, name, organisation_id, **extra)


def branch_of(world: World, contact_id: int) -> int:
    return world.db.execute("SELECT branch_id FROM contacts WHERE id = ?", [contact_id]).fetchone()[0]


def touch(world: World, contact_ids: list[int], days_ago: int, *, kind_code: str = "PHONE_CALL", **values) -> int:
    """Log an interaction ``days_ago`` days before TODAY with these contacts, in their branch."""
    row = {
        "branch_id": branch_of(world, contact_ids[0]) if contact_ids else world.leeds,
        "occurred_on": ago(days_ago),
        "kind_code": kind_code,
        "summary": "Catch-up",
        "contact_ids": contact_ids,
        **values,
    }
    return interactions.log(world.db, world.admin, row)


def cell(world: World, branch_id: int, code: str, status: str, named: int = 0, warm: int = 0, last=None, **over):
    """The whole coverage row expected for one branch and partner type."""
    branch, region = world.db.execute(
        "SELECT b.name, r.name FROM branches b JOIN regions r ON r.id = b.region_id WHERE b.id = ?", [branch_id]
    ).fetchone()
    return {
        "branch_id": branch_id,
        "branch": branch,
        "region": region,
        "type_code": code,
        "partner_type": LABELS[code],
        "required": code in schema.REQUIRED_TYPES,
        "named_contacts": named,
        "warm_named_contacts": warm,
        "last_touched": last.isoformat() if last else None,
        "status": status,
        **over,
    }


def pick(rows: list[dict], branch_id: int, code: str) -> dict:
    [row] = [r for r in rows if (r["branch_id"], r["type_code"]) == (branch_id, code)]
    return row


def statuses(rows: list[dict]) -> dict[tuple[str, str], str]:
    """{(branch, type code): status} for every cell that is not a gap."""
    return {(r["branch"], r["type_code"]): r["status"] for r in rows if r["status"] != "gap"}


def counted(rows: list[dict]) -> dict[tuple[int, str], tuple[int, int, str]]:
    """{(branch id, type code): (named, warm, status)} for every cell that is not a gap."""
    return {
        (r["branch_id"], r["type_code"]): (r["named_contacts"], r["warm_named_contacts"], r["status"])
        for r in rows
        if r["status"] != "gap"
    }


def grid(*branch_ids: int) -> list[tuple[int, str]]:
    """(branch id, type code) of every row, in the order coverage returns them."""
    return [(b, code) for b in branch_ids for code in CODES]


def cells(rows: list[dict]) -> list[tuple[int, str]]:
    return [(r["branch_id"], r["type_code"]) for r in rows]


# The window's boundaries, on both paths: today (stored last touches) and a past date (rebuilt from history).


@pytest.mark.parametrize("window", [None, 30, 1])
@pytest.mark.parametrize("before_today", [0, 45], ids=["today", "as-of-45-days-ago"])
def test_that_a_touch_exactly_window_days_before_counts_and_one_day_more_does_not(world, window, before_today):
    """Test that a touch exactly ``window`` days before the date makes the cell covered and a touch window + 1
    days before leaves it lapsing, with the default window (90) and with 30 and 1 days, today and in the past."""
    days = window or 90
    warm = person(world, world.leeds, "Wendy Warm")
    cold = person(world, world.leeds, "Colin Cold", world.ot)
    touch(world, [warm], before_today + days)
    touch(world, [cold], before_today + days + 1)

    rows = coverage.coverage(world.db, world.admin, as_of=ago(before_today) if before_today else None, window=window)

    assert cells(rows) == grid(world.leeds, world.york, world.bristol)
    assert pick(rows, world.leeds, GP) == cell(world, world.leeds, GP, "covered", 1, 1, ago(before_today + days))
    lapsing = cell(world, world.leeds, OT, "lapsing", 1, 0, ago(before_today + days + 1))
    if before_today:
        # A lapsing cell's last touch as of a past date has a test of its own (it is outside the window):
        # test_that_a_lapsing_cell_as_of_a_past_date_shows_its_last_touch_before_that_date.
        lapsing["last_touched"] = pick(rows, world.leeds, OT)["last_touched"]
    assert pick(rows, world.leeds, OT) == lapsing
    assert statuses(rows) == {("Leeds", GP): "covered", ("Leeds", OT): "lapsing"}


def test_that_todays_lapsing_cell_shows_the_last_touch_outside_the_window(world):
    """Test that today's lapsing cell gives the date of the last touch even though it is outside the window."""
    cold = person(world, world.leeds, "Colin Cold", world.ot)
    touch(world, [cold], 91)

    rows = coverage.coverage(world.db, world.admin)

    assert pick(rows, world.leeds, OT) == cell(world, world.leeds, OT, "lapsing", 1, 0, ago(91))


def test_that_the_stored_window_is_the_default_and_an_explicit_window_overrides_it(world):
    """Test that coverage and history use the administrator's window when none is given, and the window passed
    in when one is."""
    priya = person(world, world.leeds, "Priya Patel")
    touch(world, [priya], 31)
    assert coverage.window_days(world.db) == 90

    coverage.set_window_days(world.db, world.admin, 30)

    assert coverage.window_days(world.db) == 30
    assert pick(coverage.coverage(world.db, world.admin), world.leeds, GP)["status"] == "lapsing"
    assert pick(coverage.coverage(world.db, world.admin, window=31), world.leeds, GP)["status"] == "covered"
    [past] = coverage.history(world.db, world.admin, [ago(1)])
    assert pick(past, world.leeds, GP)["status"] == "covered"  # 30 days before yesterday
    [past] = coverage.history(world.db, world.admin, [ago(1)], window=29)
    assert pick(past, world.leeds, GP)["status"] == "lapsing"
    assert pick(coverage.coverage(world.db, world.admin, as_of=ago(0)), world.leeds, GP)["status"] == "lapsing"


# Contacts who left, and per-contact intervals.


def test_that_a_contact_who_left_is_not_counted_from_the_day_they_left(world):
    """Test that a named contact who left counts as of the day before they left and not from that day on, and
    that a successor counts from the day they were added."""
    priya = person(world, world.leeds, "Priya Patel")
    touch(world, [priya], 20)
    contacts.mark_left(world.db, world.admin, priya, 1, left_on=ago(10))
    successor = person(world, world.leeds, "Sunil Successor", since=ago(8))
    contacts.set_successor(world.db, world.admin, priya, successor)
    touch(world, [successor], 5)

    def leeds_gp(as_of: date | None) -> dict:
        return pick(coverage.coverage(world.db, world.admin, as_of=as_of), world.leeds, GP)

    assert leeds_gp(ago(11)) == cell(world, world.leeds, GP, "covered", 1, 1, ago(20))
    assert leeds_gp(ago(10)) == cell(world, world.leeds, GP, "gap")
    assert leeds_gp(ago(9)) == cell(world, world.leeds, GP, "gap")
    assert leeds_gp(ago(8)) == cell(world, world.leeds, GP, "lapsing", 1, 0)  # the successor, not yet touched
    assert leeds_gp(ago(5)) == cell(world, world.leeds, GP, "covered", 1, 1, ago(5))
    assert leeds_gp(None) == cell(world, world.leeds, GP, "covered", 1, 1, ago(5))


def test_that_only_a_contact_who_left_leaves_a_gap_today_and_is_counted_again_once_reinstated(world):
    """Test that a branch whose only named contact of a type has left has a gap today, whatever their touches,
    and that reinstating them counts them again."""
    priya = person(world, world.leeds, "Priya Patel")
    touch(world, [priya], 2)
    contacts.mark_left(world.db, world.admin, priya, 1, left_on=ago(1))

    assert pick(coverage.coverage(world.db, world.admin), world.leeds, GP) == cell(world, world.leeds, GP, "gap")

    contacts.reinstate(world.db, world.admin, priya, 2)

    assert pick(coverage.coverage(world.db, world.admin), world.leeds, GP) == cell(
        world, world.leeds, GP, "covered", 1, 1, ago(2)
    )


def test_that_contacts_who_are_not_named_contacts_are_not_counted(world):
    """Test that a contact who is not a named contact counts for nothing, however recently touched."""
    nina = person(world, world.leeds, "Nina Notnamed", is_named_contact=False)
    touch(world, [nina], 1)

    assert pick(coverage.coverage(world.db, world.admin), world.leeds, GP) == cell(world, world.leeds, GP, "gap")
    assert pick(coverage.coverage(world.db, world.admin, as_of=ago(1)), world.leeds, GP) == cell(
        world, world.leeds, GP, "gap"
    )


def test_that_a_contacts_own_keep_in_touch_interval_does_not_change_coverage(world):
    """Test that coverage uses the coverage window, not a contact's own keep-in-touch interval nor the partner
    type's: a contact due every 30 days touched 60 days ago still covers, one due every 365 days touched 120 days
    ago does not, while their relationship status follows their own interval."""
    short = person(world, world.leeds, "Sam Short", keep_in_touch_days=30)
    long = person(world, world.leeds, "Len Long", world.ot, keep_in_touch_days=365)
    council = person(world, world.leeds, "Cara Council", world.council)
    organisations.update_type(world.db, world.admin, COUNCIL, LABELS[COUNCIL], 7)
    touch(world, [short], 60)
    touch(world, [long], 120)
    touch(world, [council], 30)

    rows = coverage.coverage(world.db, world.admin)
    yesterday = coverage.coverage(world.db, world.admin, as_of=ago(1))

    assert pick(rows, world.leeds, GP) == cell(world, world.leeds, GP, "covered", 1, 1, ago(60))
    assert pick(rows, world.leeds, OT) == cell(world, world.leeds, OT, "lapsing", 1, 0, ago(120))
    assert pick(rows, world.leeds, COUNCIL) == cell(world, world.leeds, COUNCIL, "covered", 1, 1, ago(30))
    assert counted(yesterday) == counted(rows)
    assert [contacts.get(world.db, world.admin, c)["relationship"] for c in (short, long, council)] == [
        "lapsed",
        "warm",
        "lapsed",
    ]


# Coverage as of a past date, rebuilt from the history.


def test_that_coverage_as_of_a_past_date_counts_only_the_contacts_and_touches_of_then(world):
    """Test that coverage as of a past date leaves out contacts added after it and touches logged for later
    dates, and counts a contact added on that very day."""
    end = ago(30)
    olive = person(world, world.leeds, "Olive Old")
    touch(world, [olive], 40)
    touch(world, [olive], 10)  # after the date: ignored
    nora = person(world, world.leeds, "Nora New", world.ot, since=ago(29))
    touch(world, [nora], 5)
    person(world, world.leeds, "Sid Sameday", world.council, since=end)

    then = coverage.coverage(world.db, world.admin, as_of=end)
    now = coverage.coverage(world.db, world.admin)

    assert cells(then) == grid(world.leeds, world.york, world.bristol)
    assert [pick(then, world.leeds, code) for code in (GP, OT, COUNCIL)] == [
        cell(world, world.leeds, GP, "covered", 1, 1, ago(40)),
        cell(world, world.leeds, OT, "gap"),
        cell(world, world.leeds, COUNCIL, "lapsing", 1, 0),
    ]
    assert statuses(then) == {("Leeds", GP): "covered", ("Leeds", COUNCIL): "lapsing"}
    assert [pick(now, world.leeds, code) for code in (GP, OT, COUNCIL)] == [
        cell(world, world.leeds, GP, "covered", 1, 1, ago(10)),
        cell(world, world.leeds, OT, "covered", 1, 1, ago(5)),
        cell(world, world.leeds, COUNCIL, "lapsing", 1, 0),
    ]


def test_that_a_lapsing_cell_as_of_a_past_date_shows_its_last_touch_before_that_date(world):
    """Test that a lapsing cell as of a past date gives the last touch on or before that date, as today's
    coverage does, not "never touched" because the touch is outside the window (regression: the history path
    only looked inside the window for last_touched)."""
    omar = person(world, world.leeds, "Omar Okafor", world.ot)
    touch(world, [omar], 200)
    touch(world, [omar], 150)

    today = coverage.coverage(world.db, world.admin)
    then = coverage.coverage(world.db, world.admin, as_of=ago(30))

    assert pick(today, world.leeds, OT) == cell(world, world.leeds, OT, "lapsing", 1, 0, ago(150))
    assert pick(then, world.leeds, OT) == cell(world, world.leeds, OT, "lapsing", 1, 0, ago(150))


def test_that_coverage_as_of_yesterday_equals_today_when_nothing_was_logged_since(world):
    """Test that the stored last touches (today) and the history (yesterday) give the same whole rows when
    nothing happened yesterday or today and no touch sits on either day's window boundary."""
    priya = person(world, world.leeds, "Priya Patel")
    omar = person(world, world.leeds, "Omar Okafor", world.ot)
    cara = person(world, world.bristol, "Cara Council", world.council)
    touch(world, [priya], 30)
    touch(world, [omar], 300)
    touch(world, [cara], 60)
    touch(world, [cara], 120)

    assert coverage.coverage(world.db, world.admin, as_of=ago(1)) == coverage.coverage(world.db, world.admin)


def test_that_today_and_the_history_of_today_agree_after_log_update_and_delete(world):
    """Test that logging, editing and deleting an interaction moves today's coverage as expected (the contacts'
    stored last touches), and that each time the history of the same day, read the next morning, counts the
    same (named, warm, status)."""
    priya = person(world, world.leeds, "Priya Patel")
    omar = person(world, world.leeds, "Omar Okafor", world.ot)
    touch(world, [priya], 200)

    def today_and_tomorrow() -> tuple[list[dict], list[dict]]:
        rows = coverage.coverage(world.db, world.admin)
        with on(TODAY + timedelta(days=1)):
            again = coverage.coverage(world.db, world.admin, as_of=TODAY)
        assert counted(again) == counted(rows)
        return rows, again

    rows, _ = today_and_tomorrow()
    assert [pick(rows, world.leeds, code) for code in (GP, OT)] == [
        cell(world, world.leeds, GP, "lapsing", 1, 0, ago(200)),
        cell(world, world.leeds, OT, "lapsing", 1, 0),
    ]

    interaction_id = touch(world, [priya], 3)
    rows, again = today_and_tomorrow()
    assert pick(rows, world.leeds, GP) == cell(world, world.leeds, GP, "covered", 1, 1, ago(3))
    assert pick(again, world.leeds, GP) == pick(rows, world.leeds, GP)

    values = {"branch_id": world.leeds, "kind_code": "PHONE_CALL", "summary": "Catch-up"}
    interactions.update(
        world.db, world.admin, interaction_id, {**values, "occurred_on": ago(120), "contact_ids": [priya]}, 1
    )
    rows, _ = today_and_tomorrow()
    assert pick(rows, world.leeds, GP) == cell(world, world.leeds, GP, "lapsing", 1, 0, ago(120))

    interactions.update(
        world.db, world.admin, interaction_id, {**values, "occurred_on": ago(3), "contact_ids": [omar]}, 2
    )
    rows, again = today_and_tomorrow()
    assert [pick(rows, world.leeds, code) for code in (GP, OT)] == [
        cell(world, world.leeds, GP, "lapsing", 1, 0, ago(200)),
        cell(world, world.leeds, OT, "covered", 1, 1, ago(3)),
    ]
    assert pick(again, world.leeds, OT) == pick(rows, world.leeds, OT)

    interactions.delete(world.db, world.admin, interaction_id, 3)
    rows, _ = today_and_tomorrow()
    assert [pick(rows, world.leeds, code) for code in (GP, OT)] == [
        cell(world, world.leeds, GP, "lapsing", 1, 0, ago(200)),
        cell(world, world.leeds, OT, "lapsing", 1, 0),
    ]


def test_that_log_update_and_delete_keep_each_links_date_and_branch(world):
    """Test that every link between an interaction and a contact carries the interaction's date and branch, after
    logging, after moving it to another day and branch, and that deleting it removes its links."""
    priya = person(world, world.leeds, "Priya Patel")
    paul = person(world, world.leeds, "Paul Price")
    yan = person(world, world.york, "Yusuf York")
    interaction_id = touch(world, [priya, paul], 4)

    def links() -> list[dict]:
        return world.db.execute_returning_dicts(
            "SELECT interaction_id, contact_id, occurred_on, branch_id FROM interaction_contacts "
            "ORDER BY interaction_id, contact_id"
        )

    assert links() == [
        {
            "interaction_id": interaction_id,
            "contact_id": priya,
            "occurred_on": ago(4).isoformat(),
            "branch_id": world.leeds,
        },
        {
            "interaction_id": interaction_id,
            "contact_id": paul,
            "occurred_on": ago(4).isoformat(),
            "branch_id": world.leeds,
        },
    ]
    values = {
        "branch_id": world.york,
        "occurred_on": ago(9),
        "kind_code": "VISIT",
        "summary": "Moved",
        "contact_ids": [yan],
    }
    interactions.update(world.db, world.admin, interaction_id, values, 1)
    assert links() == [
        {
            "interaction_id": interaction_id,
            "contact_id": yan,
            "occurred_on": ago(9).isoformat(),
            "branch_id": world.york,
        }
    ]
    interactions.delete(world.db, world.admin, interaction_id, 2)
    assert links() == []
    assert [world.db["contacts"].get(c)["last_touched_on"] for c in (priya, paul, yan)] == [None, None, None]


# history(): one pass for many dates, checked against coverage() date by date and against an independent count.


def random_world(world: World) -> None:
    """Contacts added, leaving and touched on dates drawn from a seeded generator, in every branch."""
    rng = random.Random(42)
    organisations_ = [world.gp, world.ot, world.council, world.pharmacy]
    for n in range(30):
        branch = rng.choice([world.leeds, world.york, world.bristol])
        since = ago(rng.randint(0, 420))
        contact_id = person(
            world, branch, f"Person {n}", rng.choice(organisations_), since=since, is_named_contact=rng.random() < 0.85
        )
        for _ in range(rng.randint(0, 4)):
            # Sometimes logged as of before the contact was added (a visit written up later).
            touch(world, [contact_id], rng.randint(0, min(420, (TODAY - since).days + 30)))
        if rng.random() < 0.25:
            left_on = since + timedelta(days=rng.randint(0, (TODAY - since).days))
            version = contacts.get(world.db, world.admin, contact_id)["version"]
            contacts.mark_left(world.db, world.admin, contact_id, version, left_on=left_on)


def independent_count(database: Database, end: date, window: int) -> dict[tuple[int, str], tuple[int, int, str]]:
    """Coverage counted in Python from the contacts and interactions tables (not the links' own date copies)."""
    touches = defaultdict(list)
    for contact_id, occurred_on in database.execute(
        "SELECT l.contact_id, i.occurred_on FROM interaction_contacts l JOIN interactions i ON i.id = l.interaction_id"
    ):
        touches[contact_id].append(date.fromisoformat(occurred_on))
    found: dict[tuple[int, str], list[int]] = {}
    for contact_id, branch_id, code, created_at, status, left_on in database.execute(
        "SELECT c.id, c.branch_id, o.type_code, c.created_at, c.status, c.left_on FROM contacts c "
        "JOIN organisations o ON o.id = c.organisation_id WHERE c.is_named_contact = 1"
    ):
        if end >= TODAY:
            there = status == "active"
        else:
            there = date.fromisoformat(created_at[:10]) <= end and (
                left_on is None or date.fromisoformat(left_on) > end
            )
        if not there:
            continue
        day = min(end, TODAY)
        warm = any(day - timedelta(days=window) <= t <= day for t in touches[contact_id])
        named_warm = found.setdefault((branch_id, code), [0, 0])
        named_warm[0] += 1
        named_warm[1] += warm
    return {key: (named, warm, "covered" if warm else "lapsing") for key, (named, warm) in found.items()}


@pytest.mark.parametrize("window", [None, 30])
def test_that_history_equals_coverage_as_of_each_date_and_an_independent_count(world, window):
    """Test that history() for a list of dates gives, date by date, exactly what coverage(as_of=date) gives, and
    that both count named and warm contacts as an independent count over the raw tables does."""
    random_world(world)
    ends = [*coverage.month_ends(TODAY, 13), ago(1), ago(2), ago(90), ago(91), TODAY + timedelta(days=3)]

    for actor in (world.admin, world.lead_north, world.manager_bristol):
        history = coverage.history(world.db, actor, ends, window=window)
        assert history == [coverage.coverage(world.db, actor, as_of=end, window=window) for end in ends]

    history = coverage.history(world.db, world.admin, ends, window=window)
    assert [counted(rows) for rows in history] == [independent_count(world.db, end, window or 90) for end in ends]
    assert history[-1] == coverage.coverage(world.db, world.admin, window=window)  # a future date is today
    assert len({len(counted(rows)) for rows in history}) > 1  # the dates really differ


def test_that_a_contact_moved_to_another_branch_counts_the_same_for_every_actor_as_of_a_past_date(world):
    """Test that a contact moved to a branch of another region, touched while in the first branch, counts the
    same as of yesterday for the administrator, the new region's lead and the new branch's manager (and the same
    as today); regression: the history read the touches through the branch they were logged in, so the scope
    filter dropped them."""
    mo = person(world, world.leeds, "Mo Mover")
    touch(world, [mo], 20)
    contacts.update(
        world.db, world.admin, mo, {"name": "Mo Mover", "organisation_id": world.gp, "branch_id": world.bristol}, 1
    )
    expected = cell(world, world.bristol, GP, "covered", 1, 1, ago(20))

    for actor in (world.admin, world.lead_south, world.manager_bristol):
        assert pick(coverage.coverage(world.db, actor), world.bristol, GP) == expected
        assert pick(coverage.coverage(world.db, actor, as_of=ago(1)), world.bristol, GP) == expected


# Scope: a lead sees their region, a manager their branch; the filters only narrow.


@pytest.fixture
def spread(world) -> World:
    """Named contacts, touches and referrals in every branch (Bristol in the other region)."""
    for branch, name in ((world.leeds, "Lena"), (world.york, "Yuri"), (world.bristol, "Bram")):
        gp = person(world, branch, f"{name} GP")
        council = person(world, branch, f"{name} Council", world.council)
        touch(world, [gp], 10, kind_code="REFERRAL_RECEIVED")
        touch(world, [council], 100)
    return world


def test_that_a_regional_lead_sees_only_the_branches_of_their_region(spread):
    """Test that every coverage figure for a regional lead (coverage, history, report, trend, referrals) is the
    administrator's figure for their region and never includes another region's branch."""
    world, lead = spread, spread.lead_north
    ends = [ago(40), TODAY]

    rows = coverage.coverage(world.db, lead)
    assert cells(rows) == grid(world.leeds, world.york)
    assert rows == coverage.coverage(world.db, world.admin, region_id=world.north)
    assert coverage.history(world.db, lead, ends) == coverage.history(
        world.db, world.admin, ends, region_id=world.north
    )
    assert coverage.report(world.db, lead) == coverage.report(world.db, world.admin, region_id=world.north)
    assert [b["branch"] for b in coverage.report(world.db, lead)[1]] == ["Leeds", "York"]
    assert coverage.trend(world.db, lead) == coverage.trend(world.db, world.admin, region_id=world.north)
    assert coverage.referrals_by_month(world.db, lead) == [
        {"month": "2026-02", "partner_type": "GP practice", "referrals": 2}
    ]
    assert coverage.referrals_by_month(world.db, world.admin) == [
        {"month": "2026-02", "partner_type": "GP practice", "referrals": 3}
    ]


def test_that_a_branch_manager_sees_only_their_branch(spread):
    """Test that a branch manager's coverage figures are their branch's alone."""
    world, manager = spread, spread.manager_york

    assert coverage.coverage(world.db, manager) == coverage.coverage(world.db, world.admin, branch_id=world.york)
    assert cells(coverage.coverage(world.db, manager)) == grid(world.york)
    assert cells(coverage.history(world.db, manager, [ago(40)])[0]) == grid(world.york)
    assert [b["branch"] for b in coverage.report(world.db, manager)[1]] == ["York"]
    assert coverage.trend(world.db, manager) == coverage.trend(world.db, world.admin, branch_id=world.york)
    assert coverage.referrals_by_month(world.db, manager) == [
        {"month": "2026-02", "partner_type": "GP practice", "referrals": 1}
    ]
    assert cells(coverage.coverage(world.db, manager, region_id=world.north)) == grid(world.york)


def empty_trend() -> list[dict]:
    return [{"month": end.strftime("%Y-%m"), "score": 0.0, "interactions": 0} for end in coverage.month_ends(TODAY)]


@pytest.mark.parametrize(
    ("who", "narrowing"),
    [
        ("lead_north", {"region_id": "south"}),
        ("lead_north", {"branch_id": "bristol"}),
        ("lead_south", {"branch_id": "leeds"}),
        ("manager_leeds", {"branch_id": "york"}),
        ("manager_leeds", {"region_id": "south"}),
        ("manager_bristol", {"branch_id": "leeds"}),
    ],
)
def test_that_filters_outside_the_scope_give_nothing(spread, who, narrowing):
    """Test that asking for another region or branch than one's own gives no rows at all, never that region's or
    branch's figures: the filters narrow the actor's scope and cannot widen it."""
    world = spread
    actor: Actor = getattr(world, who)
    filters = {key: getattr(world, name) for key, name in narrowing.items()}

    assert coverage.coverage(world.db, actor, **filters) == []
    assert coverage.coverage(world.db, actor, as_of=ago(40), **filters) == []
    assert coverage.history(world.db, actor, [ago(40), TODAY], **filters) == [[], []]
    assert coverage.report(world.db, actor, **filters) == ([], [])
    assert coverage.trend(world.db, actor, **filters) == empty_trend()
    assert coverage.referrals_by_month(world.db, actor, **filters) == []


def test_that_a_lead_can_narrow_to_one_of_their_branches(spread):
    """Test that a regional lead's branch filter within their region gives that branch's rows."""
    world = spread

    rows = coverage.coverage(world.db, world.lead_north, branch_id=world.york)

    assert rows == coverage.coverage(world.db, world.admin, branch_id=world.york)
    assert pick(rows, world.york, GP) == cell(world, world.york, GP, "covered", 1, 1, ago(10))
    assert pick(rows, world.york, COUNCIL) == cell(world, world.york, COUNCIL, "lapsing", 1, 0, ago(100))


# Settings: the window and the required partner types (administrators only).


@pytest.mark.parametrize("days", [0, -1, 731, 10_000])
def test_that_a_window_out_of_range_is_refused_and_nothing_changes(world, days):
    """Test that a coverage window outside 1 to 730 days is refused with the message the user sees."""
    before = len(audit.entries(world.db))

    with pytest.raises(ValidationError) as refused:
        coverage.set_window_days(world.db, world.admin, days)

    assert (str(refused.value), refused.value.field) == (WINDOW_REFUSED, "Coverage window")
    assert (coverage.window_days(world.db), len(audit.entries(world.db))) == (90, before)


@pytest.mark.parametrize("days", [1, 730, 45])
def test_that_a_window_in_range_is_stored_and_audited(world, days):
    """Test that a window of 1 to 730 days is stored, read back, and audited with its old and new values."""
    coverage.set_window_days(world.db, world.admin, days)

    assert coverage.window_days(world.db) == days
    entry = audit.entries(world.db, "settings")[0]
    assert (entry["username"], entry["action"], entry["changes"]) == (
        "ada",
        "update",
        {"coverage_window_days": ["90", str(days)]},
    )


@pytest.mark.parametrize("who", ["lead_north", "manager_leeds"])
def test_that_only_administrators_change_the_coverage_settings(world, who):
    """Test that regional leads and branch managers may change neither the window nor the required types."""
    actor = getattr(world, who)

    with pytest.raises(PermissionDenied) as window_refused:
        coverage.set_window_days(world.db, actor, 30)
    with pytest.raises(PermissionDenied) as types_refused:
        coverage.set_required_types(world.db, actor, [GP])

    assert (str(window_refused.value), str(types_refused.value)) == (ROLE_REFUSED, ROLE_REFUSED)
    assert coverage.window_days(world.db) == 90
    assert required_codes(world) == sorted(schema.REQUIRED_TYPES)


def required_codes(world: World) -> list[str]:
    return [r[0] for r in world.db.execute("SELECT code FROM organisation_types WHERE required = 1 ORDER BY code")]


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        ([], "Required partner types: choose at least one."),
        ([GP, "NOT_A_TYPE"], "Required partner types: one of them is not a partner type."),
        (["gp_practice"], "Required partner types: one of them is not a partner type."),
    ],
)
def test_that_bad_required_types_are_refused_and_nothing_changes(world, codes, message):
    """Test that an empty choice or an unknown code is refused with the message the user sees, leaving the
    required types as they were and nothing audited."""
    before = len(audit.entries(world.db))

    with pytest.raises(ValidationError) as refused:
        coverage.set_required_types(world.db, world.admin, codes)

    assert (str(refused.value), refused.value.field) == (message, "Required partner types")
    assert (required_codes(world), len(audit.entries(world.db))) == (sorted(schema.REQUIRED_TYPES), before)


def test_that_the_required_types_are_stored_audited_and_used_by_coverage(world):
    """Test that choosing the required partner types marks exactly those, audits the old and new lists, and
    coverage rows carry the new flags."""
    coverage.set_required_types(world.db, world.admin, [PHARMACY, GP])

    assert required_codes(world) == [GP, PHARMACY]
    entry = audit.entries(world.db, "organisation_types")[0]
    assert (entry["action"], entry["changes"]) == (
        "update",
        {"required": [sorted(schema.REQUIRED_TYPES), [GP, PHARMACY]]},
    )
    rows = coverage.coverage(world.db, world.admin, branch_id=world.leeds)
    assert [r["type_code"] for r in rows if r["required"]] == [GP, PHARMACY]


# Scores: only required types count; GP patch figures from patch_coverage_by_branch.


def scored(world: World, branch_id: int, covered: int, required: int, gaps: list[str], **patch) -> dict:
    name, region = world.db.execute(
        "SELECT b.name, r.name FROM branches b JOIN regions r ON r.id = b.region_id WHERE b.id = ?", [branch_id]
    ).fetchone()
    return {
        "branch_id": branch_id,
        "branch": name,
        "region": region,
        "covered": covered,
        "required": required,
        "gaps": gaps,
        "score": covered / required,
        "gp_patch_practices": 0,
        "gp_patch_with_named_contact": 0,
        "gp_patch_share": None,
        **patch,
    }


def test_that_a_branch_score_counts_only_the_required_partner_types(world):
    """Test that a branch's score is its covered required types over its required types, a covered type that is
    not required adding nothing, with the uncovered required types listed as gaps in display order."""
    touch(world, [person(world, world.leeds, "Priya Patel")], 5)
    touch(world, [person(world, world.leeds, "Phil Pharmacist", world.pharmacy)], 5)
    touch(world, [person(world, world.leeds, "Omar Okafor", world.ot)], 120)
    touch(world, [person(world, world.bristol, "Cara Council", world.council)], 5)
    required = [LABELS[c] for c in CODES if c in schema.REQUIRED_TYPES]

    branch_scores = coverage.scores(coverage.coverage(world.db, world.admin))

    assert branch_scores == [
        scored(world, world.leeds, 1, 5, [label for label in required if label != LABELS[GP]]),
        scored(world, world.york, 0, 5, required),
        scored(world, world.bristol, 1, 5, [label for label in required if label != LABELS[COUNCIL]]),
    ]
    assert coverage.median_score(branch_scores) == 0.2

    coverage.set_required_types(world.db, world.admin, [GP, PHARMACY])
    branch_scores = coverage.scores(coverage.coverage(world.db, world.admin))

    assert branch_scores == [
        scored(world, world.leeds, 2, 2, []),
        scored(world, world.york, 0, 2, [LABELS[GP], LABELS[PHARMACY]]),
        scored(world, world.bristol, 0, 2, [LABELS[GP], LABELS[PHARMACY]]),
    ]
    assert coverage.median_score(branch_scores) == 0.0


@pytest.mark.parametrize(
    ("values", "median"), [([], None), ([0.2], 0.2), ([1.0, 0.0, 0.4], 0.4), ([0.2, 0.4, 0.6, 1.0], 0.5)]
)
def test_median_score(values, median):
    """Test that the median score is the middle branch's score (the mean of the two middle ones for an even
    number) and None when there are no branches."""
    assert coverage.median_score([{"score": v} for v in values]) == median


def test_that_scores_and_the_report_carry_the_gp_patch_figures(world):
    """Test that scores() takes each branch's GP patch figures from patch_coverage_by_branch (active practices in
    the patch with a named contact of the branch), the report shows them as "covered/total", and a past date
    shows none (the patch is not historised)."""
    headingley = organisations.add(
        world.db, world.admin, {"name": "Headingley Surgery", "type_code": GP, "postcode": "LS6 3BB"}
    )
    organisations.add(world.db, world.admin, {"name": "Chapeltown Surgery", "type_code": GP, "postcode": "LS7 3BB"})
    directory.set_patch(world.db, world.admin, world.leeds, "LS6", "")
    directory.set_patch(world.db, world.admin, world.york, "LS6", "")
    touch(world, [person(world, world.leeds, "Priya Patel")], 5)
    person(world, world.leeds, "Harry Headingley", headingley, is_named_contact=False)

    patch = directory.patch_coverage_by_branch(world.db, world.admin)
    rows, branch_scores = coverage.report(world.db, world.admin)

    assert patch == {world.leeds: (1, 2), world.york: (0, 2)}
    assert directory.patch_coverage_by_branch(world.db, world.lead_south) == {}
    assert directory.patch_coverage_by_branch(world.db, world.manager_leeds) == {world.leeds: (1, 2)}
    required = [LABELS[c] for c in CODES if c in schema.REQUIRED_TYPES]
    leeds_patch = {"gp_patch_practices": 2, "gp_patch_with_named_contact": 1, "gp_patch_share": 0.5}
    york_patch = {"gp_patch_practices": 2, "gp_patch_with_named_contact": 0, "gp_patch_share": 0.0}
    assert branch_scores == [
        scored(world, world.leeds, 1, 5, required[1:], **leeds_patch),
        scored(world, world.york, 0, 5, required, **york_patch),
        scored(world, world.bristol, 0, 5, required),
    ]
    assert branch_scores == coverage.scores(coverage.coverage(world.db, world.admin), patch)
    assert {(r["branch"], r["branch_score"], r["gp_patch"]) for r in rows} == {
        ("Leeds", "1/5", "1/2"),
        ("York", "0/5", "0/2"),
        ("Bristol", "0/5", ""),
    }
    assert pick(rows, world.leeds, GP) == cell(
        world, world.leeds, GP, "covered", 1, 1, ago(5), branch_score="1/5", gp_patch="1/2"
    )
    assert set(coverage.REPORT_COLUMNS) <= set(rows[0])

    past_rows, past_scores = coverage.report(world.db, world.admin, as_of=ago(1))
    assert {(r["branch"], r["branch_score"], r["gp_patch"]) for r in past_rows} == {
        ("Leeds", "1/5", ""),
        ("York", "0/5", ""),
        ("Bristol", "0/5", ""),
    }
    assert [b["gp_patch_share"] for b in past_scores] == [None, None, None]


# Month ends, the trend and referrals.


@pytest.mark.parametrize(
    ("today", "months", "expected"),
    [
        (date(2026, 3, 2), 3, [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 2)]),
        (date(2024, 3, 15), 2, [date(2024, 2, 29), date(2024, 3, 15)]),
        (date(2026, 1, 10), 3, [date(2025, 11, 30), date(2025, 12, 31), date(2026, 1, 10)]),
        (date(2026, 3, 31), 1, [date(2026, 3, 31)]),
    ],
)
def test_month_ends(today, months, expected):
    """Test that month_ends gives the last day of each past month, oldest first, with today for this month
    (leap years and the turn of the year included)."""
    assert coverage.month_ends(today, months) == expected


def test_month_ends_default_is_twelve_months():
    """Test that month_ends covers twelve months by default."""
    ends = coverage.month_ends(TODAY)

    assert (len(ends), ends[0], ends[-2], ends[-1]) == (12, date(2025, 4, 30), date(2026, 2, 28), TODAY)


def test_trend(world):
    """Test that the trend gives, per month, the mean branch score at the month's end (today for this month) and
    the interactions logged in the month, across the branches in scope."""
    leeds_gp = person(world, world.leeds, "Lena GP")
    leeds_ot = person(world, world.leeds, "Lena OT", world.ot)
    york_ot = person(world, world.york, "Yuri OT", world.ot)
    bristol_gp = person(world, world.bristol, "Bram GP")
    bristol_council = person(world, world.bristol, "Bram Council", world.council)
    for contact_id, day in (
        (bristol_gp, date(2025, 12, 1)),  # covers to the end of February (cutoff 30 Nov), not on 2 March
        (bristol_council, date(2026, 1, 5)),
        (leeds_gp, date(2026, 1, 20)),
        (york_ot, date(2026, 2, 10)),
        (leeds_ot, date(2026, 3, 1)),
    ):
        touch(world, [contact_id], (TODAY - day).days)

    trend = coverage.trend(world.db, world.admin, months=3)

    assert trend == [
        {"month": "2026-01", "score": pytest.approx((1 + 0 + 2) / 15), "interactions": 2},
        {"month": "2026-02", "score": pytest.approx((1 + 1 + 2) / 15), "interactions": 1},
        {"month": "2026-03", "score": pytest.approx((2 + 1 + 1) / 15), "interactions": 1},
    ]
    assert coverage.trend(world.db, world.lead_north, months=3) == [
        {"month": "2026-01", "score": pytest.approx(1 / 10), "interactions": 1},
        {"month": "2026-02", "score": pytest.approx(2 / 10), "interactions": 1},
        {"month": "2026-03", "score": pytest.approx(3 / 10), "interactions": 1},
    ]
    assert coverage.trend(world.db, world.admin, months=3, window=30) == [
        {"month": "2026-01", "score": pytest.approx((1 + 0 + 1) / 15), "interactions": 2},
        {"month": "2026-02", "score": pytest.approx((0 + 1 + 0) / 15), "interactions": 1},
        {"month": "2026-03", "score": pytest.approx((1 + 1 + 0) / 15), "interactions": 1},
    ]


def test_referrals_by_month(world):
    """Test that referrals received are counted per month and partner type over the past twelve months (from the
    first day of the oldest month), other kinds of interaction left out, "No organisation" when the referral
    names contacts at two organisations."""
    priya = person(world, world.leeds, "Priya Patel")
    omar = person(world, world.leeds, "Omar Okafor", world.ot)
    cara = person(world, world.bristol, "Cara Council", world.council)
    for contact_ids, day, kind in (
        ([priya], date(2025, 3, 31), "REFERRAL_RECEIVED"),  # before the twelve months
        ([priya], date(2025, 4, 1), "REFERRAL_RECEIVED"),
        ([priya], date(2026, 2, 3), "REFERRAL_RECEIVED"),
        ([priya], date(2026, 2, 20), "REFERRAL_RECEIVED"),
        ([priya], date(2026, 2, 21), "PHONE_CALL"),
        ([omar], date(2026, 1, 10), "REFERRAL_RECEIVED"),
        ([priya, omar], date(2026, 3, 2), "REFERRAL_RECEIVED"),
        ([cara], date(2026, 2, 11), "REFERRAL_RECEIVED"),
    ):
        touch(world, contact_ids, (TODAY - day).days, kind_code=kind)

    assert coverage.referrals_by_month(world.db, world.admin) == [
        {"month": "2025-04", "partner_type": "GP practice", "referrals": 1},
        {"month": "2026-01", "partner_type": LABELS[OT], "referrals": 1},
        {"month": "2026-02", "partner_type": LABELS[COUNCIL], "referrals": 1},
        {"month": "2026-02", "partner_type": "GP practice", "referrals": 2},
        {"month": "2026-03", "partner_type": "No organisation", "referrals": 1},
    ]
    assert coverage.referrals_by_month(world.db, world.admin, months=2) == [
        {"month": "2026-02", "partner_type": LABELS[COUNCIL], "referrals": 1},
        {"month": "2026-02", "partner_type": "GP practice", "referrals": 2},
        {"month": "2026-03", "partner_type": "No organisation", "referrals": 1},
    ]


# The schema steps.


def test_that_a_new_database_requires_the_five_main_types_and_a_ninety_day_window(database):
    """Test that step 0004 marks GP practices, community therapy, council social care, hospital discharge and
    community nursing as required and stores a 90-day window."""
    required = [r[0] for r in database.execute("SELECT code FROM organisation_types WHERE required = 1")]

    assert sorted(required) == sorted(schema.REQUIRED_TYPES)
    assert database.execute("SELECT value FROM settings WHERE key = 'coverage_window_days'").fetchone() == ("90",)


OLD_ROWS = """
INSERT INTO regions (id, name, created_at) VALUES (1, 'North', '2025-01-01T09:00:00Z');
INSERT INTO branches (id, name, region_id, created_at) VALUES (1, 'Leeds', 1, '2025-01-01T09:00:00Z');
INSERT INTO branches (id, name, region_id, created_at) VALUES (2, 'York', 1, '2025-01-01T09:00:00Z');
INSERT INTO organisations (id, name, type_code, created_at, updated_at)
    VALUES (1, 'Hyde Park Surgery', 'GP_PRACTICE', '2025-01-02T09:00:00Z', '2025-01-02T09:00:00Z');
INSERT INTO contacts (id, branch_id, organisation_id, name, created_at, updated_at, last_touched_on)
    VALUES (1, 1, 1, 'Priya Patel', '2025-01-03T09:00:00Z', '2025-01-03T09:00:00Z', '2026-02-20');
INSERT INTO contacts (id, branch_id, organisation_id, name, created_at, updated_at, last_touched_on)
    VALUES (2, 2, 1, 'Yusuf York', '2025-01-03T09:00:00Z', '2025-01-03T09:00:00Z', '2025-10-01');
INSERT INTO interactions (id, branch_id, organisation_id, occurred_on, kind_code, summary, created_at, updated_at)
    VALUES (1, 1, 1, '2026-02-20', 'VISIT', 'Visit', '2026-02-20T09:00:00Z', '2026-02-20T09:00:00Z');
INSERT INTO interactions (id, branch_id, organisation_id, occurred_on, kind_code, summary, created_at, updated_at)
    VALUES (2, 2, 1, '2025-10-01', 'PHONE_CALL', 'Call', '2025-10-01T09:00:00Z', '2025-10-01T09:00:00Z');
INSERT INTO interaction_contacts (interaction_id, contact_id) VALUES (1, 1);
INSERT INTO interaction_contacts (interaction_id, contact_id) VALUES (2, 2)
"""


def test_that_upgrading_to_0005_gives_every_link_its_interactions_date_and_branch(tmp_path, monkeypatch):
    """Test that step 0005 copies each interaction's date and branch onto its links, loses no row, and that
    coverage as of a past date then reads them."""
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    path = tmp_path / "old.db"
    old = Database(path)
    schema.migrations.apply(old, stop_before="0005_coverage_history")
    for statement in OLD_ROWS.split(";"):
        old.execute(statement)
    old.conn.commit()
    tables = ["regions", "branches", "organisations", "contacts", "interactions"]
    before = {t: old.execute_returning_dicts(f"SELECT * FROM {t} ORDER BY id") for t in tables}
    old.close()

    upgraded = db.connect(path)

    assert schema.pending(upgraded) == []
    after = {t: upgraded.execute_returning_dicts(f"SELECT * FROM {t} ORDER BY id") for t in tables}
    assert {t: len(rows) for t, rows in after.items()} == {t: len(rows) for t, rows in before.items()}
    # Later steps may add columns: the rows must keep every value they had.
    kept = {t: [{k: row[k] for k in was} for row, was in zip(after[t], before[t], strict=True)] for t in tables}
    assert kept == before
    assert upgraded.execute_returning_dicts("SELECT * FROM interaction_contacts ORDER BY interaction_id") == [
        {"interaction_id": 1, "contact_id": 1, "occurred_on": "2026-02-20", "branch_id": 1},
        {"interaction_id": 2, "contact_id": 2, "occurred_on": "2025-10-01", "branch_id": 2},
    ]
    then = coverage.coverage(upgraded, COMMAND_LINE, as_of=date(2025, 12, 1))
    assert counted(then) == {(1, GP): (1, 0, "lapsing"), (2, GP): (1, 1, "covered")}
    assert counted(coverage.coverage(upgraded, COMMAND_LINE)) == {
        (1, GP): (1, 1, "covered"),
        (2, GP): (1, 0, "lapsing"),
    }
    upgraded.close()


def test_that_todays_coverage_counts_contacts_per_organisation_before_it_reads_their_organisations(world):
    """Test that an administrator's coverage today counts the named contacts per branch and organisation from
    idx_contacts_coverage first, and then looks up each organisation's type once per counted row, not once per
    contact. Regression: every contact was joined to its organisation (60,000 look-ups for a large provider)."""
    statements: list[str] = []
    world.db.conn.set_trace_callback(statements.append)
    try:
        coverage.coverage(world.db, world.admin)
    finally:
        world.db.conn.set_trace_callback(None)
    [sql] = [s for s in statements if "per_organisation" in s]

    plan = [step[-1] for step in world.db.conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
    assert plan[:4] == [
        "MATERIALIZE per_organisation",
        "SCAN c USING INDEX idx_contacts_coverage",
        "SCAN p",
        "SEARCH o USING INTEGER PRIMARY KEY (rowid=?)",
    ]
