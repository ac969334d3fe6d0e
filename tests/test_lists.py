"""The queries behind lists that show only their first rows (This week, Interactions, Retention review): the rows
are chosen, ordered, cut and counted in SQL, and scoped to the acting user."""

from datetime import UTC, date, datetime, timedelta

import pytest

from crm import clock, contacts, interactions, retention, testimonials
from crm.access import Actor
from tests.conftest import World, copy_world

TODAY = date(2026, 3, 2)
FROZEN = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def world(template, tmp_path, monkeypatch) -> World:
    """A copy of the template world on its own file, with the clock stopped at FROZEN."""
    path, built = template
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    scene = copy_world(path, built, tmp_path / "crm.db")
    yield scene
    scene.db.close()


def ago(days: int) -> str:
    return (TODAY - timedelta(days=days)).isoformat()


def touch(world: World, branch_id: int, contact_ids: list[int], days_ago: int, **values) -> int:
    return interactions.log(
        world.db,
        world.admin,
        {
            "branch_id": branch_id,
            "occurred_on": TODAY - timedelta(days=days_ago),
            "kind_code": "PHONE_CALL",
            "summary": "Catch-up call",
            "contact_ids": contact_ids,
            **values,
        },
        today=TODAY,
    )


def names(rows: list[dict]) -> list[str]:
    return [row["name"] for row in rows]


# Lapsing contacts: the most urgent few and a count.


@pytest.fixture
def slipping(world) -> dict[str, int]:
    """Lapsing contacts in three branches (two regions), with warm, unnamed and departed ones left out."""
    people = {}
    for branch, name, days in [
        (world.leeds, "Lara Lapsed", 200),
        (world.leeds, "Luke Later", 100),
        (world.leeds, "Nina Never", None),
        (world.leeds, "Dan Due", 80),
        (world.leeds, "Wendy Warm", 10),
        (world.york, "Yuri Lapsed", 150),
        (world.york, "Yasmin Yates", None),
        (world.bristol, "Bob Lapsed", 300),
        (world.bristol, "Beth Due", 78),
    ]:
        people[name] = world.contact(branch, name)
        if days is not None:
            touch(world, branch, [people[name]], days)
    people["Una Unnamed"] = world.contact(world.leeds, "Una Unnamed", is_named_contact=False)
    touch(world, world.leeds, [people["Una Unnamed"]], 300)
    return people


def test_that_lapsing_first_gives_the_most_urgent_whole_rows_and_counts_them_all(world, slipping):
    """Test that lapsing_first returns exactly the first rows lapsing lists (whole rows, same order: lapsed by
    longest silence, then never contacted by name, then due soon), and lapsing_count the number it lists in all."""
    everyone = contacts.lapsing(world.db, world.admin, today=TODAY)
    assert names(everyone) == [
        "Bob Lapsed",
        "Lara Lapsed",
        "Yuri Lapsed",
        "Luke Later",
        "Nina Never",
        "Yasmin Yates",
        "Dan Due",
        "Beth Due",
    ]
    assert contacts.lapsing_first(world.db, world.admin, 3, today=TODAY) == everyone[:3]
    assert contacts.lapsing_first(world.db, world.admin, 100, today=TODAY) == everyone
    assert contacts.lapsing_count(world.db, world.admin, today=TODAY) == 8
    assert everyone[0] == {**contacts.get(world.db, world.admin, slipping["Bob Lapsed"]), "relationship": "lapsed"}


def test_that_lapsing_first_by_branch_groups_the_most_urgent_by_branch_name(world, slipping):
    """Test that by_branch keeps the same most urgent rows but lists them by branch name, most urgent first in
    each branch."""
    rows = contacts.lapsing_first(world.db, world.admin, 5, today=TODAY, by_branch=True)
    assert [(row["branch"], row["name"]) for row in rows] == [
        ("Bristol", "Bob Lapsed"),
        ("Leeds", "Lara Lapsed"),
        ("Leeds", "Luke Later"),
        ("Leeds", "Nina Never"),
        ("York", "Yuri Lapsed"),
    ]


@pytest.mark.parametrize(
    ("who", "expected", "count"),
    [
        ("manager_leeds", ["Lara Lapsed", "Luke Later"], 4),
        ("manager_york", ["Yuri Lapsed", "Yasmin Yates"], 2),
        ("lead_north", ["Lara Lapsed", "Yuri Lapsed"], 6),
        ("lead_south", ["Bob Lapsed", "Beth Due"], 2),
    ],
)
def test_that_lapsing_first_sees_only_the_actors_branches(world, slipping, who, expected, count):
    """Test that a manager sees only their branch's lapsing contacts, and a lead only their region's, in the rows
    and in the count."""
    actor = getattr(world, who)
    rows = contacts.lapsing_first(world.db, actor, 2, today=TODAY)
    assert (names(rows), contacts.lapsing_count(world.db, actor, today=TODAY)) == (expected, count)


def test_that_a_regional_leads_lapsing_contacts_are_found_and_counted_from_indexes(world, slipping):
    """Test that a regional lead's lapsing contacts are the region's rows of the whole list, in its order (lapsed,
    never contacted, due soon), and that SQLite finds the lapsed ones in the order of the index on the last touch
    and counts them all on indexes led by the branch: given the region's branches it read each of a region's
    7,500 contacts, for the rows and again for the count (4.7 ms of a lead's This week)."""
    statements: list[str] = []
    world.db.conn.set_trace_callback(statements.append)
    try:
        rows = contacts.lapsing_first(world.db, world.lead_north, 10, today=TODAY)
        count = contacts.lapsing_count(world.db, world.lead_north, today=TODAY)
    finally:
        world.db.conn.set_trace_callback(None)
    plans = [
        [step[-1] for step in world.db.conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
        for sql in statements
        if "c.lapses_on < " in sql or "count(*)" in sql
    ]

    north = [row for row in contacts.lapsing(world.db, world.admin, today=TODAY) if row["branch"] != "Bristol"]
    assert (rows, count) == (north, 6)
    assert names(rows) == ["Lara Lapsed", "Yuri Lapsed", "Luke Later", "Nina Never", "Yasmin Yates", "Dan Due"]
    lapsed, counted = plans
    assert lapsed[0] == "SCAN c USING INDEX idx_contacts_longest_untouched"
    assert [step.split(" (")[0].split()[-1] for step in counted if step.startswith("SEARCH c")] == [
        "idx_contacts_due_by_branch",  # due soon or lapsed, by the due-soon date
        "idx_contacts_last_touched",  # never contacted
    ]


@pytest.mark.parametrize(
    ("interval", "days"),
    [(None, d) for d in (75, 76, 77, 89, 90, 91)] + [(30, d) for d in (22, 23, 30, 31)] + [(8, d) for d in (5, 6, 9)],
)
def test_that_lapsing_in_sql_agrees_with_relationship_at_every_boundary(world, interval, days):
    """Test that the SQL deciding who is lapsing (per partner type, or a contact's own interval) puts a contact
    where ``contacts.relationship`` does, on each side of the due-soon and lapsed boundaries."""
    extra = {"keep_in_touch_days": interval} if interval else {}
    contact_id = world.contact(world.leeds, "Edge Case", **extra)
    touch(world, world.leeds, [contact_id], days)
    expected = contacts.relationship(ago(days), interval or 90, TODAY)
    rows = contacts.lapsing_first(world.db, world.admin, 5, today=TODAY)
    count = contacts.lapsing_count(world.db, world.admin, today=TODAY)
    assert [(row["name"], row["relationship"]) for row in rows] == (
        [] if expected == "warm" else [("Edge Case", expected)]
    )
    assert count == (0 if expected == "warm" else 1)
    assert contacts.lapsing(world.db, world.admin, today=TODAY) == rows


def test_that_lapsing_first_is_empty_with_nothing_lapsing(world):
    """Test that no lapsing contact gives no rows and a count of 0."""
    touch(world, world.leeds, [world.contact(world.leeds, "Wendy Warm")], 10)
    assert contacts.lapsing_first(world.db, world.admin, 30, today=TODAY) == []
    assert contacts.lapsing_count(world.db, world.admin, today=TODAY) == 0


# Follow-ups due: the soonest few and a count.


@pytest.fixture
def due(world) -> dict[str, int]:
    """Open follow-ups in three branches, one done and one beyond the coming week."""
    follow_ups = {}
    for branch, action, in_days in [
        (world.york, "York overdue", -5),
        (world.leeds, "Leeds overdue", -3),
        (world.bristol, "Bristol today", 0),
        (world.leeds, "Leeds soon", 2),
        (world.york, "York soon", 6),
        (world.leeds, "Leeds later", 20),
        (world.leeds, "Leeds done", -1),
    ]:
        follow_ups[action] = touch(
            world,
            branch,
            [world.contact(branch, f"Someone for {action}")],
            10,
            follow_up_on=TODAY + timedelta(days=in_days),
            follow_up_action=action,
        )
    interactions.complete_follow_up(world.db, world.admin, follow_ups["Leeds done"])
    return follow_ups


def actions(rows: list[dict]) -> list[str]:
    return [row["follow_up_action"] for row in rows]


def test_that_follow_ups_with_a_limit_gives_the_soonest_whole_rows_and_a_count(world, due):
    """Test that follow_ups with a limit returns exactly the first rows of the whole list (soonest first), and
    follow_ups_count the number of the whole list."""
    everyone = interactions.follow_ups(world.db, world.admin, today=TODAY)
    assert actions(everyone) == ["York overdue", "Leeds overdue", "Bristol today", "Leeds soon", "York soon"]
    assert interactions.follow_ups(world.db, world.admin, today=TODAY, limit=2) == everyone[:2]
    assert interactions.follow_ups_count(world.db, world.admin, today=TODAY) == 5
    assert [row["state"] for row in everyone] == ["overdue", "overdue", "due", "due", "due"]


def test_that_follow_ups_by_branch_lists_the_soonest_by_branch_name(world, due):
    """Test that by_branch keeps the soonest rows but lists them by branch name, soonest first in each."""
    rows = interactions.follow_ups(world.db, world.admin, today=TODAY, limit=4, by_branch=True)
    assert [(row["branch"], row["follow_up_action"]) for row in rows] == [
        ("Bristol", "Bristol today"),
        ("Leeds", "Leeds overdue"),
        ("Leeds", "Leeds soon"),
        ("York", "York overdue"),
    ]


@pytest.mark.parametrize(
    ("who", "expected", "count"),
    [
        ("manager_leeds", ["Leeds overdue"], 2),
        ("manager_bristol", ["Bristol today"], 1),
        ("lead_north", ["York overdue"], 4),
        ("lead_south", ["Bristol today"], 1),
    ],
)
def test_that_follow_ups_and_their_count_see_only_the_actors_branches(world, due, who, expected, count):
    """Test that a manager's follow-ups and count are their branch's only, a lead's their region's only."""
    actor = getattr(world, who)
    assert actions(interactions.follow_ups(world.db, actor, today=TODAY, limit=1)) == expected
    assert interactions.follow_ups_count(world.db, actor, today=TODAY) == count


# The interactions list, a page at a time.


def test_that_search_pages_through_interactions_newest_first_with_a_count(world):
    """Test that search with limit and offset gives consecutive pages of the newest-first list (whole rows, as
    without paging), and search_count the number of them all, with the same filters."""
    nina = world.contact(world.leeds, "Nina Newman")
    logged = [touch(world, world.leeds, [nina], days, summary=f"Call {days}") for days in (5, 1, 3, 2, 4)]
    touch(world, world.york, [world.contact(world.york, "Yasmin Yates")], 1)
    everyone = interactions.search(world.db, world.manager_leeds)
    assert [row["summary"] for row in everyone] == ["Call 1", "Call 2", "Call 3", "Call 4", "Call 5"]
    assert interactions.search(world.db, world.manager_leeds, limit=2) == everyone[:2]
    assert interactions.search(world.db, world.manager_leeds, limit=2, offset=2) == everyone[2:4]
    assert interactions.search(world.db, world.manager_leeds, limit=2, offset=4) == everyone[4:]
    assert interactions.search_count(world.db, world.manager_leeds) == 5
    # Counting stops one past at_most: more than 3 reads as 4, and 5 of at most 5 or 10 as 5.
    assert [interactions.search_count(world.db, world.manager_leeds, at_most=n) for n in (3, 5, 10)] == [4, 5, 5]
    assert interactions.search_count(world.db, world.admin) == 6
    assert interactions.search_count(world.db, world.manager_york) == 1
    assert interactions.search_count(world.db, world.lead_south) == 0
    assert interactions.search_count(world.db, world.admin, since=TODAY - timedelta(days=2), text="call") == 3
    assert [(row["id"], row["contacts"]) for row in everyone] == [(logged[i], "Nina Newman") for i in (1, 3, 2, 4, 0)]
    assert [logged[i] for i in (1, 3, 2, 4, 0)] == [row["id"] for row in everyone]


# The contacts offered in the "Log an interaction" form.


def test_that_contact_choices_offers_the_most_recently_touched_first_limited_and_searchable(world):
    """Test that the picker's contacts are the branch's, most recently touched first and never-touched last by
    name, cut at the limit, narrowed by the search text (name, job title, email or organisation)."""
    old = world.contact(world.leeds, "Olive Old", job_title="District nurse")
    recent = world.contact(world.leeds, "Rita Recent")
    never_b = world.contact(world.leeds, "Bea Never")
    never_a = world.contact(world.leeds, "Abe Never", organisation_id=world.ot)
    world.contact(world.york, "Yasmin Yates")
    touch(world, world.leeds, [old], 30)
    touch(world, world.leeds, [recent], 2)

    def offered(actor: Actor, **kwargs) -> list[tuple]:
        found = interactions.contact_choices(world.db, actor, world.leeds, **kwargs)
        return [(row["id"], row["name"], row["organisation"]) for row in found]

    assert offered(world.manager_leeds) == [
        (recent, "Rita Recent", "Hyde Park Surgery"),
        (old, "Olive Old", "Hyde Park Surgery"),
        (never_a, "Abe Never", "Leeds Community OT"),
        (never_b, "Bea Never", "Hyde Park Surgery"),
    ]
    assert [name for _, name, _ in offered(world.manager_leeds, limit=2)] == ["Rita Recent", "Olive Old"]
    assert [name for _, name, _ in offered(world.manager_leeds, text="nurse")] == ["Olive Old"]
    assert [name for _, name, _ in offered(world.manager_leeds, text="community ot")] == ["Abe Never"]
    assert [name for _, name, _ in offered(world.lead_north, organisation_id=world.ot)] == ["Abe Never"]
    assert offered(world.manager_york) == []  # another branch's contacts are never offered
    assert offered(world.lead_south) == []


# Retention review: the longest untouched few and a count.


def test_that_retention_due_first_gives_the_first_rows_due_and_counts_them_all(world):
    """Test that due_first returns exactly the first rows due lists (oldest touch first) and how many it lists,
    within the actor's scope."""
    for branch, name, days in [
        (world.leeds, "Lena Long", 900),
        (world.leeds, "Lou Longer", 1000),
        (world.york, "Yves Yore", 950),
        (world.leeds, "Rita Recent", 10),
    ]:
        touch(world, branch, [world.contact(branch, name)], days)
    everyone = retention.due(world.db, world.admin, today=TODAY)
    assert names(everyone) == ["Lou Longer", "Yves Yore", "Lena Long"]
    assert retention.due_first(world.db, world.admin, 2, today=TODAY) == (everyone[:2], 3)
    assert names(retention.due_first(world.db, world.manager_leeds, 1, today=TODAY)[0]) == ["Lou Longer"]
    assert retention.due_first(world.db, world.manager_leeds, 1, today=TODAY)[1] == 2
    assert retention.due_first(world.db, world.lead_south, 5, today=TODAY) == ([], 0)


# Testimonials: the newest few and a count.


def test_that_testimonials_search_count_counts_what_search_finds_within_scope(world):
    """Test that search with a limit gives the newest testimonials (as the whole list starts) and search_count
    the number of them all with the same filters, within the actor's scope."""
    for branch, day, quote in [
        (world.leeds, "2026-02-01", "Leeds in February was calm."),
        (world.leeds, "2026-02-10", "Leeds again, safe discharge."),
        (world.york, "2026-02-05", "York was kind."),
        (world.bristol, "2026-02-07", "Bristol was quick."),
    ]:
        testimonials.add(
            world.db,
            world.admin,
            {
                "branch_id": branch,
                "quote": quote,
                "giver_name": "A nurse",
                "organisation_name": "A practice",
                "type_code": "GP_PRACTICE",
                "source": "email",
                "received_on": day,
            },
        )
    everyone = testimonials.search(world.db, world.admin)
    assert [row["quote"] for row in everyone] == [
        "Leeds again, safe discharge.",
        "Bristol was quick.",
        "York was kind.",
        "Leeds in February was calm.",
    ]
    assert testimonials.search(world.db, world.admin, limit=2) == everyone[:2]
    assert testimonials.search_count(world.db, world.admin) == 4
    assert testimonials.search_count(world.db, world.manager_leeds) == 2
    assert testimonials.search_count(world.db, world.lead_north) == 3
    assert testimonials.search_count(world.db, world.admin, region_id=world.south) == 1
    assert testimonials.search_count(world.db, world.admin, text="discharge") == 1
    assert testimonials.search_count(world.db, world.admin, text='""') == 0
    assert testimonials.search_count(world.db, world.admin, audience="public") == 0
