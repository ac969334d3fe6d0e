"""The search box (crm/search.py): each kind found, only within the user's scope, every word in any order, ranked,
and the full-text indexes (schema step 0012_search) kept in step with every insert, edit, delete and erasure."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from crm import clock, contacts, db, interactions, merge, organisations, privacy, schema, search, testimonials, users
from tests.conftest import PASSWORD, World, copy_world

FROZEN = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
QUOTE = "The reablement team were wonderful with my patients."


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, World]:
    """The conftest world with people, organisations, interactions and testimonials in Leeds, York and Bristol,
    built once because hashing passwords is slow."""
    path = tmp_path_factory.mktemp("search") / "crm.db"
    database = db.connect(path)
    world = World(database, users.create_first_admin(database, "ada", "Ada Admin", PASSWORD))
    world.bramley = organisations.add(
        database, world.admin, {"name": "Bramley Health Centre", "type_code": "GP_PRACTICE", "postcode": "LS13 2JL"}
    )
    world.olive = world.contact(world.leeds, "Olive Oak", world.ot, job_title="Community OT")
    world.zoe = world.contact(world.leeds, "Zoë Ash", world.bramley, job_title="Practice Manager")
    world.olive_york = world.contact(world.york, "Olive Oakley", world.gp, job_title="Social Worker")
    world.olive_bristol = world.contact(world.bristol, "Olive Oak", world.council, job_title="Broker")
    world.call = interactions.log(
        database,
        world.admin,
        {
            "branch_id": world.leeds,
            "kind_code": "PHONE_CALL",
            "occurred_on": "2026-02-20",
            "summary": "Discharge plan agreed with Olive",
            "notes": "She will send the reablement goals.",
            "contact_ids": [world.olive],
        },
        today=FROZEN.date(),
    )
    world.visit = interactions.log(
        database,
        world.admin,
        {
            "branch_id": world.bristol,
            "kind_code": "VISIT",
            "occurred_on": "2026-02-21",
            "summary": "Reablement goals reviewed",
            "contact_ids": [world.olive_bristol],
        },
        today=FROZEN.date(),
    )
    world.quote = testimonials.add(
        database,
        world.admin,
        {
            "branch_id": world.leeds,
            "quote": "The reablement team were wonderful with my patients.",
            "contact_id": world.zoe,
            "source": "email",
            "received_on": "2026-02-10",
        },
    )
    database.close()
    return path, world


@pytest.fixture
def world(template, tmp_path, monkeypatch) -> World:
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    scene = copy_world(*template, tmp_path / "crm.db")
    yield scene
    scene.db.close()


def found(world: World, actor, text: str) -> list[tuple[str, int, str]]:
    return [(r["kind"], r["id"], r["title"]) for r in search.find(world.db, actor, text)]


def test_each_kind_is_found_with_what_opens_it(world):
    """Test that one search returns contacts, organisations, interactions and testimonials, each with its kind as
    people read it, a title, a detail line and the page that opens it (by ?contact=ID and so on)."""
    results = search.find(world.db, world.manager_leeds, "reablement")

    # The quote holds the word; the interaction only in its notes.
    assert results == [
        {
            "kind": "testimonial",
            "label": "Testimonial",
            "id": world.quote,
            "title": "The reablement team were wonderful with my patients.",
            "detail": "Zoë Ash, Bramley Health Centre, 10 Feb 2026, Leeds",
            "page": "pages/testimonials.py",
        },
        {
            "kind": "interaction",
            "label": "Interaction",
            "id": world.call,
            "title": "Discharge plan agreed with Olive",
            "detail": "Phone call, 20 Feb 2026, Leeds Community OT, Leeds",
            "page": "pages/interactions.py",
        },
    ]
    assert search.find(world.db, world.manager_leeds, "olive oak")[0] == {
        "kind": "contact",
        "label": "Contact",
        "id": world.olive,
        "title": "Olive Oak",
        "detail": "Community OT, Leeds Community OT, Leeds",
        "page": "pages/contacts.py",
    }
    assert search.find(world.db, world.manager_leeds, "bramley") == [
        {
            "kind": "organisation",
            "label": "Organisation",
            "id": world.bramley,
            "title": "Bramley Health Centre",
            "detail": "GP practice, LS13 2JL",
            "page": "pages/organisations.py",
        },
        {
            "kind": "contact",
            "label": "Contact",
            "id": world.zoe,
            "title": "Zoë Ash",
            "detail": "Practice Manager, Bramley Health Centre, Leeds",
            "page": "pages/contacts.py",
        },
        {
            "kind": "testimonial",
            "label": "Testimonial",
            "id": world.quote,
            "title": "The reablement team were wonderful with my patients.",
            "detail": "Zoë Ash, Bramley Health Centre, 10 Feb 2026, Leeds",
            "page": "pages/testimonials.py",
        },
    ]


def test_a_manager_never_sees_another_branchs_records(world):
    """Test that a branch manager finds only their own branch's contacts, interactions and testimonials, a regional
    lead only their region's, and an administrator every branch's (the shared organisation directory is for all)."""
    assert found(world, world.manager_leeds, "olive") == [
        ("contact", world.olive, "Olive Oak"),
        ("interaction", world.call, "Discharge plan agreed with Olive"),
    ]
    assert found(world, world.manager_bristol, "olive") == [("contact", world.olive_bristol, "Olive Oak")]
    assert found(world, world.manager_bristol, "reablement") == [
        ("interaction", world.visit, "Reablement goals reviewed")
    ]
    assert found(world, world.lead_north, "olive") == [
        ("contact", world.olive, "Olive Oak"),
        ("contact", world.olive_york, "Olive Oakley"),
        ("interaction", world.call, "Discharge plan agreed with Olive"),
    ]
    assert sorted(found(world, world.admin, "olive")) == sorted(
        [
            ("contact", world.olive, "Olive Oak"),
            ("contact", world.olive_bristol, "Olive Oak"),
            ("contact", world.olive_york, "Olive Oakley"),
            ("interaction", world.call, "Discharge plan agreed with Olive"),
        ]
    )


def test_every_word_in_any_order_as_the_start_of_a_word_ignoring_case_and_accents(world):
    """Test that every word must be found, in any order and in any of the record's columns (a contact's organisation
    included), each word matching the start of a word, without regard to letter case or accents."""
    olive = [("contact", world.olive, "Olive Oak")]
    assert found(world, world.manager_leeds, "Oak Olive") == olive
    assert found(world, world.manager_leeds, "olive oak") == olive
    assert found(world, world.manager_leeds, "OL OA") == olive
    assert found(world, world.manager_leeds, "olive community leeds") == olive  # job title and organisation
    assert found(world, world.manager_leeds, "olive surgery") == []  # every word must be found
    assert found(world, world.manager_leeds, "zoe ash") == [
        ("contact", world.zoe, "Zoë Ash"),
        ("testimonial", world.quote, "The reablement team were wonderful with my patients."),  # she gave it
    ]
    assert found(world, world.manager_leeds, "ZOË") == [
        ("contact", world.zoe, "Zoë Ash"),
        ("testimonial", world.quote, "The reablement team were wonderful with my patients."),
    ]


def test_ranking_puts_the_record_named_by_the_words_first(world):
    """Test that an exact name ranks before a longer name holding the words, which ranks before a record that only
    mentions them in another column; the user's own branches' organisations come before the rest of the directory."""
    assert found(world, world.lead_north, "olive oak") == [
        ("contact", world.olive, "Olive Oak"),
        ("contact", world.olive_york, "Olive Oakley"),
    ]
    assert found(world, world.lead_north, "olive")[-1] == (
        "interaction",
        world.call,
        "Discharge plan agreed with Olive",
    )
    # Every organisation's name holds "surgery" or not: the York manager's own practice (Hyde Park Surgery, where
    # their contact works) comes before a surgery the branch has no one at.
    other = organisations.add(world.db, world.admin, {"name": "Abbey Surgery", "type_code": "GP_PRACTICE"})
    assert found(world, world.manager_york, "surgery") == [
        ("organisation", world.gp, "Hyde Park Surgery"),
        ("organisation", other, "Abbey Surgery"),
        ("contact", world.olive_york, "Olive Oakley"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("   ", []),
        ('"', []),
        ("AND OR NOT", []),
        ("NEAR(", []),
        ("-", []),
        ("*", []),
        ("^olive*", [("contact", "Olive Oak"), ("interaction", "Discharge plan agreed with Olive")]),
        ('"olive" AND', []),  # "and" is a word to find, and no record holds it
        ("name:olive", []),  # "name" too
    ],
)
def test_search_syntax_typed_by_a_user_is_plain_words(world, text, expected):
    """Test that FTS5 operators and punctuation typed in the box are searched as words (or ignored), never run as
    query syntax and never an error."""
    assert [(r["kind"], r["title"]) for r in search.find(world.db, world.manager_leeds, text)] == expected


def test_the_indexes_follow_every_edit_rename_delete_and_erasure(world):
    """Test that the indexes are kept in step by the schema's triggers: a renamed contact or organisation is found
    by its new name and not its old, a deleted interaction is no longer found, and an erased person is not found
    by their name again (and the rebuilt indexes hold no trace of it)."""
    contact = contacts.get(world.db, world.admin, world.zoe)
    contacts.update(
        world.db, world.admin, world.zoe, {**contact, "name": "Zoë Birch"}, expected_version=contact["version"]
    )
    # (The testimonial she gave keeps the name she gave it under.)
    assert found(world, world.manager_leeds, "ash") == [("testimonial", world.quote, QUOTE)]
    assert found(world, world.manager_leeds, "birch") == [("contact", world.zoe, "Zoë Birch")]

    organisation = organisations.get(world.db, world.bramley)
    organisations.update(
        world.db,
        world.admin,
        world.bramley,
        {**organisation, "name": "Kirkstall Lane Surgery"},
        organisation["version"],
    )
    # (The testimonial keeps the organisation's name as given, so only the contact is asked about here.)
    assert [r for r in found(world, world.manager_leeds, "zoe bramley") if r[0] == "contact"] == []
    assert found(world, world.manager_leeds, "zoe kirkstall") == [("contact", world.zoe, "Zoë Birch")]

    call = interactions.get(world.db, world.admin, world.call)
    interactions.delete(world.db, world.admin, world.call, call["version"])
    assert found(world, world.manager_leeds, "discharge plan") == []

    email = interactions.log(
        world.db,
        world.admin,
        {
            "branch_id": world.leeds,
            "kind_code": "EMAIL",
            "summary": "Sent Zoë Birch the rota",
            "contact_ids": [world.zoe],
        },
    )
    assert found(world, world.manager_leeds, "birch") == [
        ("contact", world.zoe, "Zoë Birch"),
        ("interaction", email, "Sent Zoë Birch the rota"),
    ]

    def stored(table: str) -> list[str]:
        # Segments store terms with a shared prefix cut off ("b" + "irch"): look for what follows it.
        return [table for (block,) in world.db.execute(f"SELECT block FROM {table}_data") if b"irch" in bytes(block)]

    assert stored("contacts_fts") and stored("interactions_fts")
    privacy.erase(world.db, world.manager_leeds, world.zoe)
    assert found(world, world.manager_leeds, "birch") == []
    # A deleted row's words stay in older segments until they are merged: erasing merges them.
    assert stored("contacts_fts") + stored("interactions_fts") == []


def test_migration_indexes_rows_that_existed_before_it(db_path):
    """Test that upgrading a database left before step 0012_search indexes the contacts, organisations and
    interactions already in it, so they are found at once."""
    from tests.test_schema import OLD_ROWS

    old = db.connect(db_path, migrate=False)
    schema.migrations.apply(old, stop_before="0012_search")
    for statement in OLD_ROWS.split(";"):
        old.execute(statement)
    old.execute(
        "INSERT INTO interactions (id, branch_id, organisation_id, occurred_on, kind_code, summary, created_at, "
        "updated_at) VALUES (1, 1, 1, '2025-01-05', 'VISIT', 'Flu clinic planning', '', '')"
    )
    old.close()

    upgraded = db.connect(db_path)
    manager = users.get(upgraded, 1)

    assert [(r["kind"], r["id"], r["title"]) for r in search.find(upgraded, manager, "priya hyde")] == [
        ("contact", 1, "Priya Patel")
    ]
    assert [(r["kind"], r["id"]) for r in search.find(upgraded, manager, "B86001")] == [("organisation", 1)]
    assert [(r["kind"], r["id"]) for r in search.find(upgraded, manager, "flu clinic")] == [("interaction", 1)]
    upgraded.close()


# The Contacts list's search (crm.contacts._filters): the text anywhere in a name, job title or email, from the
# trigram index of schema step 0025.


def listed(world: World, text: str) -> list[str]:
    return [row["name"] for row in contacts.search(world.db, world.admin, text=text, status=None)]


def test_the_contacts_lists_text_index_follows_every_edit_merge_and_erasure(world):
    """Test that the Contacts list finds a contact by any part of their name, job title or email as they are now,
    never as they were, through an edit, a merge and an erasure; and that SQLite's own check of the index against
    the contacts passes after each (the triggers kept every row of it in step)."""

    def index_agrees() -> None:  # raises sqlite3.DatabaseError when the index and the contacts differ
        world.db.execute("INSERT INTO contacts_text (contacts_text) VALUES ('integrity-check')")

    index_agrees()
    assert listed(world, "oak") == ["Olive Oak", "Olive Oak", "Olive Oakley"]
    assert listed(world, "actice man") == ["Zoë Ash"]

    contact = contacts.get(world.db, world.admin, world.zoe)
    contacts.update(
        world.db,
        world.admin,
        world.zoe,
        {**contact, "name": "Zoë Birch", "job_title": "Care Navigator", "email": "zoe.birch@bramley.example"},
        expected_version=contact["version"],
    )
    index_agrees()
    assert listed(world, "Zoë Ash") == [] and listed(world, "practice man") == []
    assert listed(world, "ë bir") == listed(world, "navig") == listed(world, "birch@bram") == ["Zoë Birch"]

    twin = world.contact(world.leeds, "Olive Oak-Twin", world.ot, job_title="Community OT")
    assert listed(world, "oak-tw") == ["Olive Oak-Twin"]
    merge.merge_contacts(world.db, world.admin, world.olive, twin)
    index_agrees()
    assert listed(world, "oak-tw") == []

    privacy.erase(world.db, world.manager_leeds, world.zoe)
    index_agrees()
    assert listed(world, "birch") == [] and listed(world, "navig") == []


def test_the_contacts_list_finds_contacts_that_were_there_before_its_index(db_path):
    """Test that upgrading a database left before step 0025 indexes the contacts already in it, so the Contacts
    list finds them by any part of their name, job title or email at once."""
    from tests.test_schema import OLD_ROWS

    old = db.connect(db_path, migrate=False)
    schema.migrations.apply(old, stop_before="0025_contacts_text_index")
    for statement in OLD_ROWS.split(";"):
        old.execute(statement)
    old.close()

    upgraded = db.connect(db_path)
    manager = users.get(upgraded, 1)
    for text in ("iya pat", "ctice manag", "priya@example.nh"):
        assert [r["id"] for r in contacts.search(upgraded, manager, text=text)] == [1], text
    upgraded.close()
