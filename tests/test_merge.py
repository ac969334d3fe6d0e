"""Merging duplicates: every kind of linked record moves to the survivor with totals unchanged, fields are kept,
filled or taken, the merged id resolves to the survivor, the audit log records it, scope rules as for editing,
and ``python -m crm merge-contacts`` / ``merge-organisations``."""

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from crm import __main__ as cli
from crm import clock, contacts, db, interactions, merge, organisations, referrals, testimonials, users
from crm.errors import NotFound, PermissionDenied, ValidationError
from tests.conftest import PASSWORD, World, copy_world

FROZEN = datetime(2026, 4, 15, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, World]:
    path = tmp_path_factory.mktemp("merge") / "crm.db"
    database = db.connect(path)
    world = World(database, users.create_first_admin(database, "ada", "Ada Admin", PASSWORD))
    database.close()
    return path, world


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
