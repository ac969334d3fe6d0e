"""Merging duplicates: every kind of linked record moves to the survivor with totals unchanged, fields are kept,
filled or taken, the merged id resolves to the survivor, the audit log records it, scope rules as for editing,
and ``python -m crm merge-contacts`` / ``merge-organisations``."""

import json
from datetime import UTC, date, datetime

import pytest

from crm import __main__ as cli
from crm import clock, contacts, interactions, merge, organisations, privacy, referrals, testimonials
from crm.errors import Conflict, NotFound, PermissionDenied, ValidationError
from tests.conftest import World, copy_world

FROZEN = datetime(2026, 4, 15, 10, 0, tzinfo=UTC)


@pytest.fixture
def world(template, tmp_path, monkeypatch) -> World:
    """Priya Patel twice in Leeds (the second with her mobile and email, do-not-contact), each with interactions
    (one shared), a referral and a testimonial; a contact whose successor is the duplicate."""
    path, built = template
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    scene = copy_world(path, built, tmp_path / "crm.db")
    scene.path = tmp_path / "crm.db"
    scene.priya = scene.contact(scene.leeds, "Priya Patel", job_title="Practice Manager", phone="0113 496 0123")
    scene.dupe = scene.contact(
        scene.leeds,
        "Priya Patel-Shah",
        mobile="07400 123456",
        email="priya@hydepark.example",
        notes="Prefers email.",
        do_not_contact=True,
        allow_duplicate=True,
    )
    scene.old = scene.contact(scene.leeds, "Olive Old")

    def touch(contact_ids, day):
        values = {"branch_id": scene.leeds, "kind_code": "PHONE_CALL", "occurred_on": day, "summary": "Call"}
        return interactions.log(scene.db, scene.admin, {**values, "contact_ids": contact_ids})

    touch([scene.priya], date(2026, 1, 5))
    touch([scene.dupe], date(2026, 4, 1))
    touch([scene.priya, scene.dupe], date(2026, 3, 1))
    referral = {"branch_id": scene.leeds, "received_at": datetime(2026, 4, 2, 9), "channel": "phone"}
    referrals.log(scene.db, scene.admin, {**referral, "contact_id": scene.dupe, "urgency": "urgent"})
    referrals.log(scene.db, scene.admin, {**referral, "contact_id": scene.priya, "urgency": "routine"})
    testimonials.add(
        scene.db,
        scene.admin,
        {
            "branch_id": scene.leeds,
            "quote": "Brilliant team.",
            "contact_id": scene.dupe,
            "received_on": date(2026, 3, 3),
        }
        | {"source": "email"},
    )
    scene.db.execute("UPDATE contacts SET successor_id = ? WHERE id = ?", [scene.dupe, scene.old])
    yield scene
    scene.db.close()


def totals(world: World) -> dict[str, int]:
    """How many links of each kind exist in all (interactions counted by distinct interaction)."""
    return {
        "interactions": world.db.execute("SELECT count(DISTINCT interaction_id) FROM interaction_contacts").fetchone()[
            0
        ],
        "referrals": world.db.execute("SELECT count(*) FROM referrals WHERE contact_id IS NOT NULL").fetchone()[0],
        "testimonials": world.db.execute("SELECT count(*) FROM testimonials WHERE contact_id IS NOT NULL").fetchone()[
            0
        ],
    }


def linked_to(world: World, contact_id: int) -> dict[str, int]:
    return {
        "interactions": world.db.execute(
            "SELECT count(*) FROM interaction_contacts WHERE contact_id = ?", [contact_id]
        ).fetchone()[0],
        "referrals": world.db.execute("SELECT count(*) FROM referrals WHERE contact_id = ?", [contact_id]).fetchone()[
            0
        ],
        "testimonials": world.db.execute(
            "SELECT count(*) FROM testimonials WHERE contact_id = ?", [contact_id]
        ).fetchone()[0],
    }


def test_merging_contacts_moves_every_link_with_totals_unchanged(world):
    """Test that merging the duplicate moves its interactions (a shared one kept once), referrals, testimonials
    and successor link to the survivor, totals unchanged; blanks are filled from the duplicate, do-not-contact
    carries over, the last touch is recomputed, and the duplicate's id resolves to the survivor."""
    before = totals(world)

    moved = merge.merge_contacts(world.db, world.manager_leeds, world.priya, world.dupe)

    # Its own call, the interaction its referral logged, and the call with both (kept once).
    assert moved == {"interactions": 3, "referrals": 1, "testimonials": 1, "successor_links": 1}
    assert totals(world) == before
    assert linked_to(world, world.priya) == {"interactions": 5, "referrals": 2, "testimonials": 1}
    assert world.db.execute("SELECT count(*) FROM contacts WHERE id = ?", [world.dupe]).fetchone()[0] == 0
    survivor = contacts.get(world.db, world.admin, world.priya)
    assert {
        k: survivor[k]
        for k in ("name", "job_title", "phone", "mobile", "email", "notes", "do_not_contact", "last_touched_on")
    } == {
        "name": "Priya Patel",
        "job_title": "Practice Manager",
        "phone": "+441134960123",
        "mobile": "+447400123456",
        "email": "priya@hydepark.example",
        "notes": "Prefers email.",
        "do_not_contact": 1,
        "last_touched_on": "2026-04-02",
    }
    assert survivor["version"] == 2
    assert world.db.execute("SELECT successor_id FROM contacts WHERE id = ?", [world.old]).fetchone()[0] == world.priya
    assert merge.resolve(world.db, "contacts", world.dupe) == world.priya
    assert merge.get_contact(world.db, world.manager_leeds, world.dupe)["id"] == world.priya
    entries = world.db.execute_returning_dicts(
        "SELECT action, row_id, changes, branch_id FROM audit_log WHERE action IN ('merge', 'delete') "
        "AND table_name = 'contacts' ORDER BY id"
    )
    assert [(e["action"], e["row_id"], e["branch_id"]) for e in entries] == [
        ("merge", world.priya, world.leeds),
        ("delete", world.dupe, world.leeds),
    ]
    assert json.loads(entries[0]["changes"])["merged_id"] == world.dupe
    assert json.loads(entries[1]["changes"]) == {
        "merged_into": world.priya,
        "branch_id": world.leeds,
        "organisation_id": world.gp,
        "name": "Priya Patel-Shah",
    }


def test_taking_fields_from_the_duplicate(world):
    """Test that fields named in ``take`` come from the duplicate even where the survivor has a value."""
    merge.merge_contacts(world.db, world.admin, world.priya, world.dupe, take=["name"])

    assert contacts.get(world.db, world.admin, world.priya)["name"] == "Priya Patel-Shah"
    with pytest.raises(ValidationError) as refused:
        merge.merge_contacts(world.db, world.admin, world.priya, world.old, take=["colour"])
    assert str(refused.value).startswith("Take: colour: not a field that can be taken")


@pytest.mark.parametrize(
    ("who", "error"),
    [("manager_york", NotFound), ("lead_south", NotFound)],
)
def test_merging_contacts_outside_scope_is_refused(world, who, error):
    """Test that someone who cannot edit the branch's contacts cannot merge them, and nothing changes."""
    before = totals(world)
    with pytest.raises(error):
        merge.merge_contacts(world.db, getattr(world, who), world.priya, world.dupe)
    assert totals(world) == before
    assert linked_to(world, world.dupe)["interactions"] == 3


def test_contacts_of_different_branches_are_not_merged(world):
    """Test that two contacts of different branches are refused with a message, and the same one twice too."""
    york = world.contact(world.york, "Priya Patel")
    with pytest.raises(ValidationError, match="^Merge: only contacts of the same branch can be merged.$"):
        merge.merge_contacts(world.db, world.admin, world.priya, york)
    with pytest.raises(ValidationError, match="^Merge: choose two different contacts.$"):
        merge.merge_contacts(world.db, world.admin, world.priya, world.priya)


def test_merging_organisations_moves_contacts_interactions_referrals_and_testimonials(world):
    """Test that a hand-made GP practice merged into the directory's record moves every branch's contacts,
    interactions, referrals and testimonials there, takes its ODS code when the survivor has none, and its id
    resolves to the survivor; a branch manager may not merge when other branches have records there."""
    hand_made = organisations.add(
        world.db, world.admin, {"name": "Hyde Park Surgery (hand-made)", "type_code": "GP_PRACTICE"}
    )
    world.db.execute("UPDATE organisations SET ods_code = NULL WHERE id = ?", [world.gp])
    world.db.execute("UPDATE organisations SET ods_code = 'B86001' WHERE id = ?", [hand_made])
    bristol = world.contact(world.bristol, "Bob Bristol", hand_made)
    interactions.log(
        world.db,
        world.admin,
        {"branch_id": world.bristol, "kind_code": "VISIT", "summary": "Visit", "contact_ids": [bristol]},
    )
    with pytest.raises(PermissionDenied):
        merge.merge_organisations(world.db, world.manager_leeds, world.gp, hand_made)
    counts_before = {
        t: world.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("contacts", "interactions", "referrals", "testimonials")
    }

    moved = merge.merge_organisations(world.db, world.admin, world.gp, hand_made)

    assert moved == {"contacts": 1, "interactions": 1, "referrals": 0, "testimonials": 0}
    assert {
        t: world.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("contacts", "interactions", "referrals", "testimonials")
    } == counts_before
    assert contacts.get(world.db, world.admin, bristol)["organisation_id"] == world.gp
    assert organisations.get(world.db, world.gp)["ods_code"] == "B86001"
    assert merge.get_organisation(world.db, hand_made)["id"] == world.gp


def test_cli_merges(world, capsys):
    """Test `python -m crm merge-contacts A B --take name` and a refusal as one line."""
    code = cli.main(["--db", str(world.path), "merge-contacts", str(world.priya), str(world.dupe), "--take", "name"])

    assert (code, capsys.readouterr().out) == (
        0,
        f"merged contact {world.dupe} into {world.priya}; moved 3 interactions, 1 referrals, 1 testimonials, "
        "1 successor links\n",
    )
    code = cli.main(["--db", str(world.path), "merge-contacts", str(world.priya), str(world.dupe)])
    assert (code, capsys.readouterr().err) == (
        1,
        "error: That contact has already been merged into Priya Patel-Shah, so nothing was merged.\n",
    )
    code = cli.main(["--db", str(world.path), "merge-contacts", str(world.priya), "999"])
    assert (code, capsys.readouterr().err) == (
        1,
        "error: That contact does not exist or is not in one of your branches.\n",
    )


# Possible duplicates.


def add(world: World, branch_id: int, name: str, organisation_id: int | None = None, **extra) -> int:
    """A contact saved past the duplicate warning, as "Save as a new contact anyway" does."""
    values = {"name": name, "organisation_id": organisation_id or world.gp, "branch_id": branch_id, **extra}
    return contacts.add(world.db, world.admin, values, allow_duplicate=True)


def pairs(world: World, actor, **options) -> list[tuple[str, str, str, list[str]]]:
    """(branch, first name, second name, reasons) of each pair found."""
    return [
        (p["branch"], p["contacts"][0]["name"], p["contacts"][1]["name"], p["reasons"])
        for p in merge.duplicate_contacts(world.db, actor, **options)
    ]


@pytest.fixture
def lookalikes(world) -> World:
    """Leeds: an email in two letter cases, a number as one's phone and another's mobile, the same switchboard
    with different extensions (two people), a name with a title and punctuation, the same surname and initial,
    the same name at another organisation (not a match), a switchboard number four people share (not one person);
    York and Bristol each with a pair of their own, and the
    same email across Leeds and York (never a pair)."""
    world.sam = add(world, world.leeds, "Sam Lee", world.ot, email="Sam.Lee@nhs.example")
    world.samuel = add(world, world.leeds, "Samuel Leigh", world.council, email="sam.lee@NHS.example")
    world.ann = add(world, world.leeds, "Ann Able", world.ot, phone="0113 496 0700")
    world.bea = add(world, world.leeds, "Bea Bee", world.council, mobile="0113 496 0700")
    add(world, world.leeds, "Cal One", world.ot, phone="0113 496 0800 ext. 1")
    add(world, world.leeds, "Dee Two", world.council, phone="0113 496 0800 ext. 2")
    world.sarah = add(world, world.leeds, "Dr. Sarah O'Brien")
    world.sarah2 = add(world, world.leeds, "sarah obrien")
    world.s = add(world, world.leeds, "S. OBrien")
    add(world, world.leeds, "Sarah O'Brien", world.council)
    for name in ("Eve Ash", "Fay Birch", "Gus Cedar", "Hal Dale"):  # a switchboard four people share
        add(world, world.leeds, name, world.council, phone="0113 496 0900")
    add(world, world.york, "Yara York", mobile="07400 111222")
    add(world, world.york, "Yara Yorke", world.ot, mobile="07400 111222")
    add(world, world.york, "Sam Lee", world.ot, email="sam.lee@nhs.example")
    add(world, world.bristol, "Bob Brown", email="bob@bristol.example")
    add(world, world.bristol, "Robert Brown", email="bob@bristol.example")
    return world


LEEDS_PAIRS = [
    ("Leeds", "Ann Able", "Bea Bee", ["same phone number"]),
    ("Leeds", "Dr. Sarah O'Brien", "sarah obrien", ["same name at the same organisation"]),
    ("Leeds", "Dr. Sarah O'Brien", "S. OBrien", ["similar name at the same organisation"]),
    ("Leeds", "Sam Lee", "Samuel Leigh", ["same email"]),
    ("Leeds", "sarah obrien", "S. OBrien", ["similar name at the same organisation"]),
]
YORK_PAIRS = [("York", "Yara York", "Yara Yorke", ["same phone number"])]
BRISTOL_PAIRS = [("Bristol", "Bob Brown", "Robert Brown", ["same email"])]


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("admin", BRISTOL_PAIRS + LEEDS_PAIRS + YORK_PAIRS),
        ("lead_north", LEEDS_PAIRS + YORK_PAIRS),
        ("lead_south", BRISTOL_PAIRS),
        ("manager_leeds", LEEDS_PAIRS),
        ("manager_york", YORK_PAIRS),
    ],
)
def test_possible_duplicates_by_reason_and_scope(lookalikes, who, expected):
    """Test that each reason finds its pair (email in any case; a number as phone or mobile; the same name with
    titles and punctuation aside; the same surname and first initial at one organisation), that different
    extensions, a number more than MAX_SHARED contacts share, one name at two organisations and pairs across
    branches are not listed, and that each role sees
    only the branches it may edit, by branch then name."""
    assert pairs(lookalikes, getattr(lookalikes, who)) == expected


def test_possible_duplicates_of_one_branch_and_whole_records(lookalikes):
    """Test that a branch can be asked for on its own, that a pair with several reasons lists each once, and that
    each pair carries both whole contact records (as contacts.get gives them), the older first."""
    world = lookalikes
    contacts.update(
        world.db,
        world.admin,
        world.sarah2,
        {"name": "sarah obrien", "organisation_id": world.gp, "branch_id": world.leeds, "email": "so@x.example"},
        1,
    )
    contacts.update(
        world.db,
        world.admin,
        world.sarah,
        {"name": "Dr. Sarah O'Brien", "organisation_id": world.gp, "branch_id": world.leeds, "email": "SO@x.example"},
        1,
    )

    found = merge.duplicate_contacts(world.db, world.lead_north, branch_id=world.leeds)

    assert [p["reasons"] for p in found if p["contacts"][1]["id"] == world.sarah2] == [
        ["same email", "same name at the same organisation"]
    ]
    [pair] = [p for p in found if p["contacts"][1]["id"] == world.sarah2]
    assert pair == {
        "branch_id": world.leeds,
        "branch": "Leeds",
        "reasons": ["same email", "same name at the same organisation"],
        "contacts": [
            contacts.get(world.db, world.admin, world.sarah),
            contacts.get(world.db, world.admin, world.sarah2),
        ],
    }
    assert pairs(world, world.admin, branch_id=world.york) == YORK_PAIRS


def test_erased_and_merged_contacts_are_never_listed(lookalikes):
    """Test that erasing one of a pair, or merging it, takes the pair off the list."""
    world = lookalikes
    privacy.erase(world.db, world.admin, world.samuel)
    merge.merge_contacts(world.db, world.admin, world.sarah, world.sarah2)

    assert pairs(world, world.manager_leeds) == [
        ("Leeds", "Ann Able", "Bea Bee", ["same phone number"]),
        ("Leeds", "Dr. Sarah O'Brien", "S. OBrien", ["similar name at the same organisation"]),
    ]


def test_the_list_is_limited(lookalikes):
    """Test that the list stops at the limit asked for, in its order."""
    assert pairs(lookalikes, lookalikes.admin, limit=2) == BRISTOL_PAIRS + LEEDS_PAIRS[:1]


def test_duplicates_of_one_contact(lookalikes):
    """Test that a contact's possible duplicates list the contact first in each pair."""
    world = lookalikes
    found = merge.duplicates_of(world.db, world.manager_leeds, world.s)
    assert [[c["id"] for c in p["contacts"]] for p in found] == [[world.s, world.sarah], [world.s, world.sarah2]]


@pytest.fixture
def shared_numbers(world) -> World:
    """Leeds: a contact whose phone is also her own mobile and someone else's mobile (one pair); three phones and
    a mobile on one number (four people); a switchboard four people share that is also a fifth one's mobile;
    two people on one number with one extension (a pair), beside a third on another extension; an erased
    contact on a number with one other. York: one person's mobile as another's phone (a pair)."""
    world.ivy = add(world, world.leeds, "Ivy Ink", world.ot, phone="0113 496 0100", mobile="0113 496 0100")
    world.jo = add(world, world.leeds, "Jo Jay", world.council, mobile="0113 496 0100")
    for name in ("Kit Kay", "Lou Low", "Max Mee"):
        add(world, world.leeds, name, world.ot, phone="0113 496 0200")
    add(world, world.leeds, "Ned Nye", world.council, mobile="0113 496 0200")
    for name in ("Oli Oak", "Pam Pine", "Quin Quay", "Rae Rye"):
        add(world, world.leeds, name, world.council, phone="0113 496 0300")
    add(world, world.leeds, "Sid Sand", world.ot, mobile="0113 496 0300")
    world.tia = add(world, world.leeds, "Tia Tay", world.ot, phone="0113 496 0400 ext. 7")
    world.uma = add(world, world.leeds, "Uma Urn", world.council, phone="0113 496 0400 ext. 7")
    add(world, world.leeds, "Vic Vale", world.council, phone="0113 496 0400 ext. 8")
    world.wes = add(world, world.leeds, "Wes Wood", world.ot, mobile="07400 555666")
    add(world, world.leeds, "Xan Yew", world.council, mobile="07400 555666")
    privacy.erase(world.db, world.admin, world.wes)
    add(world, world.york, "Yan Zed", world.ot, mobile="07400 777888")
    add(world, world.york, "Zoe Zed", world.council, phone="07400 777888")
    return world


SHARED_LEEDS = [
    ("Leeds", "Ivy Ink", "Jo Jay", ["same phone number"]),
    ("Leeds", "Tia Tay", "Uma Urn", ["same phone number"]),
]
SHARED_YORK = [("York", "Yan Zed", "Zoe Zed", ["same phone number"])]


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("admin", SHARED_LEEDS + SHARED_YORK),
        ("lead_north", SHARED_LEEDS + SHARED_YORK),
        ("lead_south", []),
        ("manager_leeds", SHARED_LEEDS),
        ("manager_york", SHARED_YORK),
    ],
)
def test_a_number_is_counted_once_per_contact_across_phone_and_mobile(shared_numbers, who, expected):
    """Test that a number is one person's however it is held: a contact whose phone is her own mobile counts
    once (a pair with the one other holder, never with herself); phones and mobiles on one number together make
    more than MAX_SHARED holders (no pair), as does a switchboard four share that a fifth has as mobile; the
    same extension pairs, another extension does not; an erased holder never counts; each role sees its own."""
    assert pairs(shared_numbers, getattr(shared_numbers, who)) == expected
    if who == "admin":
        assert merge.duplicate_contacts(shared_numbers.db, shared_numbers.admin)[0]["contacts"] == [
            contacts.get(shared_numbers.db, shared_numbers.admin, shared_numbers.ivy),
            contacts.get(shared_numbers.db, shared_numbers.admin, shared_numbers.jo),
        ]


def test_possible_duplicates_read_no_contact_row_and_sort_no_whole_scope(lookalikes):
    """Test that finding an administrator's possible duplicates reads the contacts only through covering indexes
    in their order (0021_whole_scope_indexes) and sorts only the few contacts that share a key: the page
    cost 445 ms for an administrator of 250 branches, against 220 ms for a branch manager, reading and sorting
    all 75,000 contacts."""
    world = lookalikes
    plans: list[tuple[str, list[str]]] = []
    execute = world.db.execute

    def explained(sql, params=()):
        if "contacts a" in sql:
            plans.append((sql, [row[-1] for row in execute(f"EXPLAIN QUERY PLAN {sql}", params)]))
        return execute(sql, params)

    world.db.execute = explained  # type: ignore[method-assign]
    try:
        found = pairs(world, world.admin)
    finally:
        world.db.execute = execute  # type: ignore[method-assign]

    assert found == BRISTOL_PAIRS + LEEDS_PAIRS + YORK_PAIRS
    assert len(plans) == 3  # numbers, emails, names
    for sql, plan in plans:
        scans = [step for step in plan if step.startswith("SCAN a") or step.startswith("SCAN contacts")]
        assert scans, sql
        assert all(" USING COVERING INDEX idx_contacts_duplicate_" in step for step in scans), (sql, plan)
        sorts = [step for step in plan if "TEMP B-TREE" in step]
        # Only the numbers' last step sorts, and only the contacts holding a shared number.
        assert sorts == [] or ("WITH shared" in sql and sorts[-1] == "USE TEMP B-TREE FOR GROUP BY"), (sql, plan)


@pytest.mark.parametrize("name", ["HYDE PARK SURGERY", "The Hyde Park Surgery", "Hyde Park Surgery."])
def test_hand_made_organisations_beside_the_nhs_directory(world, name):
    """Test that a hand-made organisation (no ODS code) with the name (case, punctuation and "the" aside) and
    postcode of a directory record is a candidate for administrators and regional leads only; another postcode or
    another name is not."""
    directory = organisations.add(
        world.db, world.admin, {"name": name, "type_code": "GP_PRACTICE", "postcode": "LS6 9ZZ", "ods_code": "B86001"}
    )
    # As the directory import writes it (the form refuses a second "Hyde Park Surgery" at one postcode).
    world.db.execute("UPDATE organisations SET postcode = 'LS6 1AA' WHERE id = ?", [directory])
    organisations.add(world.db, world.admin, {"name": "Hyde Park Surgery", "type_code": "GP_PRACTICE"})
    organisations.add(
        world.db, world.admin, {"name": "Hyde Park Clinic", "type_code": "GP_PRACTICE", "postcode": "LS6 1AA"}
    )

    found = merge.duplicate_organisations(world.db, world.lead_south)

    assert [(p["directory"]["id"], p["hand_made"]["id"]) for p in found] == [(directory, world.gp)]
    assert found[0]["directory"] == organisations.get(world.db, directory)
    assert merge.duplicate_organisations(world.db, world.manager_leeds) == []


def test_merging_organisations_changed_since_they_were_chosen_is_refused(world):
    """Test that an organisation merge given the versions the user chose them at is refused once one changed."""
    hand_made = organisations.add(
        world.db, world.admin, {"name": "Hyde Park Surgery (old)", "type_code": "GP_PRACTICE"}
    )
    with pytest.raises(Conflict) as refused:
        merge.merge_organisations(world.db, world.admin, world.gp, hand_made, versions=(1, 0))
    assert str(refused.value) == (
        "“Hyde Park Surgery (old)” was changed by someone else after you chose it, so nothing was merged. "
        "Look at it again, then decide."
    )
    assert organisations.get(world.db, hand_made)["id"] == hand_made


def test_moved_text():
    """Test how what a merge moved is said."""
    assert merge.moved_text({}) == "nothing else was linked to it"
    assert merge.moved_text({"contacts": 2, "interactions": 1}) == "2 contacts and 1 interaction"
    assert merge.moved_text({"interactions": 2, "follow_ups": 2, "referrals": 1, "testimonials": 3}) == (
        "2 interactions (2 open follow-ups), 1 referral and 3 testimonials"
    )
