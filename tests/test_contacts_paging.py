"""The Contacts list one page at a time (issue 12): contacts.search with an offset, contacts.count and
contacts.mailing_count, scoped to the acting user in SQL; and the page's Previous/Next and counts."""

from pathlib import Path

import pytest

from crm import contacts, db, privacy, users
from tests.conftest import PASSWORD, World, copy_world
from tests.pagehelpers import button, open_page, run_app_on, values

LEEDS_NAMES = [f"Leeds Person {n:02d}" for n in range(1, 8)]  # 7 active contacts at Leeds
YORK_NAMES = ["Ann Twin", "Ann Twin", "York Person"]  # two people with the same name: the id orders them
BRISTOL_NAMES = ["Bristol Person"]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, World]:
    """Three branches' contacts, with a left, a do-not-contact and an erased one at Leeds. Built once."""
    path = tmp_path_factory.mktemp("paging") / "crm.db"
    database = db.connect(path)
    world = World(database, users.create_first_admin(database, "ada", "Ada Admin", PASSWORD))
    # Added out of name order, so that the order shown is the query's, not the insertion's.
    for name in reversed(LEEDS_NAMES):
        world.contact(world.leeds, name, email=f"{name.split()[-1]}@leeds.example")
    for name in YORK_NAMES:
        values = {"name": name, "organisation_id": world.ot, "branch_id": world.york}
        contacts.add(database, world.admin, values, allow_duplicate=True)
    world.contact(world.bristol, BRISTOL_NAMES[0], world.council)
    left = world.contact(world.leeds, "Leeds Left")
    contacts.mark_left(database, world.admin, left, 1)
    world.contact(world.leeds, "Leeds Do-not-contact", do_not_contact=True)
    erased = world.contact(world.leeds, "Leeds Erased")
    privacy.erase(database, world.admin, erased)
    database.close()
    return path, world


@pytest.fixture
def world(template, db_path) -> World:
    path, built = template
    scene = copy_world(path, built, db_path)
    yield scene
    scene.db.close()


def _actor(world: World, who: str):
    return {
        "admin": world.admin,
        "lead.north": world.lead_north,
        "manager.leeds": world.manager_leeds,
        "manager.york": world.manager_york,
    }[who]


@pytest.mark.parametrize("who", ["admin", "lead.north", "manager.leeds", "manager.york"])
@pytest.mark.parametrize("size", [1, 2, 3, 50])
def test_that_pages_of_search_hold_every_row_once_in_order(world, who, size):
    """Test that reading the list ``size`` rows at a time gives exactly the rows of one unlimited search (whole
    records, same order, none repeated or skipped), and that count says how many there are."""
    actor = _actor(world, who)
    everyone = contacts.search(world.db, actor, status=None)
    paged = []
    for offset in range(0, len(everyone) + size, size):
        paged += contacts.search(world.db, actor, status=None, limit=size, offset=offset)
    assert paged == everyone
    assert contacts.count(world.db, actor, status=None) == len(everyone)


def test_that_a_page_row_is_the_whole_contact_record(world):
    """Test that a row of a page is the same record contacts.get gives (display fields and links too)."""
    [row] = contacts.search(world.db, world.manager_leeds, limit=1, offset=2)
    assert row["name"] == "Leeds Person 02"  # after "Leeds Do-not-contact" and "Leeds Person 01"
    assert row == contacts.get(world.db, world.manager_leeds, row["id"])
    assert (row["phone_link"], row["email"]) == ("", "02@leeds.example")


def test_that_people_with_the_same_name_are_ordered_by_id(world):
    """Test that two contacts with the same name keep one order across pages (the id breaks the tie)."""
    first = contacts.search(world.db, world.manager_york, limit=1, offset=0)
    second = contacts.search(world.db, world.manager_york, limit=1, offset=1)
    assert [r["name"] for r in first + second] == ["Ann Twin", "Ann Twin"]
    assert first[0]["id"] < second[0]["id"]


@pytest.mark.parametrize(
    ("who", "filters", "expected"),
    [
        ("admin", {}, sorted(LEEDS_NAMES + ["Leeds Do-not-contact"] + YORK_NAMES + BRISTOL_NAMES)),
        ("lead.north", {}, sorted(LEEDS_NAMES + ["Leeds Do-not-contact"] + YORK_NAMES)),
        ("manager.leeds", {}, ["Leeds Do-not-contact", *LEEDS_NAMES]),
        ("manager.leeds", {"status": "left"}, ["Erased contact", "Leeds Left"]),
        ("manager.leeds", {"text": "person 0"}, LEEDS_NAMES),
        ("manager.leeds", {"type_code": "COMMUNITY_THERAPY"}, []),
        ("manager.york", {"type_code": "COMMUNITY_THERAPY"}, YORK_NAMES),
        # Another branch named in the filter: a manager still sees only their own branch, so nothing.
        ("manager.leeds", {"branch_id": "york"}, []),
        ("lead.north", {"branch_id": "bristol"}, []),
        ("lead.north", {"branch_id": "york"}, YORK_NAMES),
    ],
)
def test_that_count_and_pages_keep_to_the_users_scope_and_filters(world, who, filters, expected):
    """Test that count and every page keep to the actor's branches (a manager never sees another branch's
    contacts, even when asking for that branch) and to the filters, and that the count is exact."""
    actor = _actor(world, who)
    if "branch_id" in filters:
        filters = {**filters, "branch_id": getattr(world, filters["branch_id"])}
    names = []
    for offset in range(0, 20, 4):
        names += [r["name"] for r in contacts.search(world.db, actor, **filters, limit=4, offset=offset)]
    assert sorted(names, key=str.lower) == names  # name order, letter case aside
    assert sorted(names) == sorted(expected)
    assert contacts.count(world.db, actor, **filters) == len(expected)


@pytest.mark.parametrize("who", ["admin", "lead.north", "manager.leeds", "manager.york"])
@pytest.mark.parametrize("branch", [None, "leeds", "york", "bristol"])
def test_that_the_mailing_count_is_the_length_of_the_mailing_list(world, who, branch):
    """Test that mailing_count counts exactly the people mailing_list holds (never left, do-not-contact or erased
    people, never outside the actor's scope) for every role and branch filter."""
    actor = _actor(world, who)
    branch_id = getattr(world, branch) if branch else None
    people = contacts.mailing_list(world.db, actor, branch_id=branch_id)
    assert contacts.mailing_count(world.db, actor, branch_id=branch_id) == len(people)
    if who == "manager.leeds" and branch in (None, "leeds"):
        assert sorted(p["Name"] for p in people) == LEEDS_NAMES


# The Contacts page: a page of rows, Previous and Next.


@pytest.fixture
def app_env(monkeypatch, db_path):
    run_app_on(monkeypatch, db_path)


def _names_shown(at) -> list[str]:
    """The names in the Contacts table (each cell is "contacts?contact=ID#Name")."""
    [table] = [frame for frame in at.dataframe if "Name" in frame.value.columns]
    return [cell.split("#", 1)[1] for cell in table.value["Name"]]


def test_that_next_and_previous_move_through_the_pages_of_the_list(app_env, world, monkeypatch):
    """Test that with more contacts than a page holds, the Contacts page shows the first page and the count,
    Next shows the following rows, Previous goes back, and a new search starts again on its first page."""
    monkeypatch.setattr(contacts, "PAGE_SIZE", 5)  # eleven active contacts make three pages of five
    names = [r["name"] for r in contacts.search(world.db, world.lead_north)]
    assert len(names) == 11
    at = open_page("lead.north", "contacts")
    assert _names_shown(at) == names[:5]
    assert values(at.caption)[:1] == ["11 contacts, 1 to 5 shown"]
    assert "Page 1 of 3" in values(at.markdown)
    assert button(at, "Previous").disabled

    button(at, "Next").click().run()
    assert _names_shown(at) == names[5:10]
    assert "Page 2 of 3" in values(at.markdown)
    button(at, "Next").click().run()
    assert _names_shown(at) == names[10:]
    assert values(at.caption)[:1] == ["11 contacts, 11 to 11 shown"]
    assert button(at, "Next").disabled
    button(at, "Previous").click().run()
    assert _names_shown(at) == names[5:10]

    at.text_input(key="contacts_filter_text").set_value("person").run()
    found = [*LEEDS_NAMES, "York Person"]
    assert _names_shown(at) == found[:5]
    assert values(at.caption)[:1] == ["8 contacts, 1 to 5 shown"]
    assert "Page 1 of 2" in values(at.markdown)


def test_that_the_list_counts_at_most_counted_and_says_there_are_more(app_env, world, monkeypatch):
    """Test that the Contacts list stops counting past contacts.COUNTED (a provider's 75,000 cost 10 ms a rerun
    to count): the caption says "more than", the pager "of more than", and the pages stop there; count with
    at_most counts one past it."""
    monkeypatch.setattr(contacts, "PAGE_SIZE", 2)
    monkeypatch.setattr(contacts, "COUNTED", 4)
    names = [r["name"] for r in contacts.search(world.db, world.lead_north)]
    assert len(names) == 11
    assert contacts.count(world.db, world.lead_north, at_most=4) == 5
    assert contacts.count(world.db, world.lead_north, at_most=20) == 11
    at = open_page("lead.north", "contacts")
    assert _names_shown(at) == names[:2]
    assert values(at.caption)[:1] == ["more than 4 contacts, 1 to 2 shown"]
    assert "Page 1 of more than 2" in values(at.markdown)
    button(at, "Next").click().run()
    assert _names_shown(at) == names[2:4]
    assert button(at, "Next").disabled

    at.text_input(key="contacts_filter_text").set_value("york").run()
    assert values(at.caption)[:1] == ["1 contact"]


def test_that_one_page_of_contacts_shows_no_pager(app_env, world):
    """Test that a list that fits one page says only how many there are and offers no Previous or Next."""
    at = open_page("manager.leeds", "contacts")
    assert _names_shown(at) == ["Leeds Do-not-contact", *LEEDS_NAMES]
    assert values(at.caption)[:1] == ["8 contacts"]
    assert [b.label for b in at.button if b.label in ("Previous", "Next")] == []


@pytest.mark.parametrize("who", ["admin", "lead.north", "manager.leeds", "manager.york"])
@pytest.mark.parametrize("region", [None, "north", "south"])
def test_that_the_mailing_count_of_a_region_is_the_length_of_its_mailing_list(world, who, region):
    """Test that mailing_count by region counts exactly the people mailing_list holds for that region, within
    the actor's scope (a lead or manager asking for another region gets nobody)."""
    actor = _actor(world, who)
    region_id = getattr(world, region) if region else None
    people = contacts.mailing_list(world.db, actor, region_id=region_id)
    assert contacts.mailing_count(world.db, actor, region_id=region_id) == len(people)
    expected = {
        "admin": {None: 11, "north": 10, "south": 1},
        "lead.north": {None: 10, "north": 10, "south": 0},
        "manager.leeds": {None: 7, "north": 7, "south": 0},
        "manager.york": {None: 3, "north": 3, "south": 0},
    }[who][region]
    assert len(people) == expected


def _plans(database, read) -> list[tuple[str, list[str]]]:
    """Each statement ``read()`` runs (with its values), and SQLite's plan for it."""
    statements: list[str] = []
    database.conn.set_trace_callback(statements.append)
    try:
        read()
    finally:
        database.conn.set_trace_callback(None)
    return [
        (sql, [row[-1] for row in database.conn.execute(f"EXPLAIN QUERY PLAN {sql}")])
        for sql in statements
        # (a full-text index runs statements of its own on its shadow tables, named 'main'.'...')
        if sql.lstrip().upper().startswith("SELECT") and "'main'." not in sql
    ]


def test_that_an_administrators_list_reads_one_page_and_counts_from_indexes(world):
    """Test that the Contacts list of an administrator (every branch) picks its page of rows in name order from
    an index and stops there, and counts the list and the mailing list from indexes alone: the page cost an
    administrator of 250 branches 320 ms against a branch manager's 170 ms, reading and sorting all 75,000
    contacts for a page of 50, and reading every contact row for each count."""
    [(_, page)] = _plans(world.db, lambda: contacts.search(world.db, world.admin, limit=2, offset=2))
    [(_, counted)] = _plans(world.db, lambda: contacts.count(world.db, world.admin))
    [(_, mailable)] = _plans(world.db, lambda: contacts.mailing_count(world.db, world.admin))

    picked = page[: page.index("SCAN page")]  # the ids of the page, before any row is joined
    assert picked[:2] == ["MATERIALIZE page", "SCAN c USING COVERING INDEX idx_contacts_name"]
    assert "USE TEMP B-TREE FOR ORDER BY" not in picked  # ties of one name are put in id order, never the list
    reads = [step for step in counted if step.startswith(("SCAN c", "SEARCH c"))]  # (the rest: a count of a LIMIT)
    assert len(reads) == 1 and "USING COVERING INDEX" in reads[0]
    assert mailable == ["SCAN c USING COVERING INDEX idx_contacts_mailable"]
    names = [r["name"] for r in contacts.search(world.db, world.admin)]
    assert [r["name"] for r in contacts.search(world.db, world.admin, limit=2, offset=2)] == names[2:4]
    assert contacts.count(world.db, world.admin) == len(names) == 12


def test_that_a_leads_page_of_contacts_is_picked_before_their_organisations_are_read(world):
    """Test that a regional lead's page of contacts is chosen from the contacts' index alone, and only the page's
    rows are then joined to their organisation, type and branch: joining first read and sorted each of a region's
    7,500 contacts with its organisation (3 ms of every rerun of the Contacts list, where a branch manager's took
    0.3)."""
    [(_, page)] = _plans(world.db, lambda: contacts.search(world.db, world.lead_north, limit=2, offset=1))

    picked, joined = page[: page.index("SCAN page")], page[page.index("SCAN page") :]
    reads = [step for step in picked if step.startswith(("SCAN", "SEARCH"))]
    assert [step.split(" USING ")[0] for step in reads] == ["SEARCH c", "SEARCH branches"]
    assert all("COVERING INDEX" in step for step in reads)
    joins = [step.split(" USING ")[0] for step in joined if step.startswith(("SCAN", "SEARCH"))]
    assert joins == [
        "SCAN page",
        "SEARCH c",
        "SEARCH o",
        "SEARCH t",
        "SEARCH b",
    ]
    names = sorted(LEEDS_NAMES + ["Leeds Do-not-contact"] + YORK_NAMES)
    assert [r["name"] for r in contacts.search(world.db, world.lead_north, limit=2, offset=1)] == names[1:3]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"text": "person 0"}, LEEDS_NAMES),
        ({"text": "hyde park"}, ["Leeds Do-not-contact", *LEEDS_NAMES]),  # the organisation's name
        ({"type_code": "COMMUNITY_THERAPY"}, YORK_NAMES),
        ({"type_code": "COMMUNITY_THERAPY", "text": "twin"}, YORK_NAMES[:2]),
    ],
)
def test_that_an_administrators_search_asks_the_organisations_once(world, filters, expected):
    """Test that a search by text (the organisation's name too) or partner type counts and lists exactly the
    contacts matching, with the organisations asked once for the ids that match rather than looked up for
    each of an administrator's contacts; and that text is looked up in the trigram index (schema step 0025),
    only the contacts it finds read, where LIKE read all 75,000 (30 to 40 ms of each rerun)."""
    [(_, counted)] = _plans(world.db, lambda: contacts.count(world.db, world.admin, **filters))
    rows = contacts.search(world.db, world.admin, **filters)

    assert [r["name"] for r in rows] == expected
    assert contacts.count(world.db, world.admin, **filters) == len(expected)
    assert not [step for step in counted if step.startswith("SEARCH o ")], counted
    if "text" in filters:
        assert any(step.startswith("SCAN contacts_text VIRTUAL TABLE") for step in counted), counted
        assert not [step for step in counted if step.startswith("SCAN c ")], counted
    else:
        assert "LIST SUBQUERY 1" in counted
