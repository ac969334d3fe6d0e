"""Scope: which branches' contacts each role may list, open, edit, add to and mark as left."""

from pathlib import Path

import pytest

from crm import audit, branches, contacts, db, users
from crm.access import COMMAND_LINE, Actor
from crm.errors import NotFound, PermissionDenied
from tests.conftest import PASSWORD, World, copy_world

ROLES = ["admin", "lead.north", "lead.south", "manager.leeds", "manager.york", "manager.bristol"]
BRANCHES = ["leeds", "york", "bristol"]
SCOPE = {
    "admin": {"leeds", "york", "bristol"},
    "lead.north": {"leeds", "york"},
    "lead.south": {"bristol"},
    "manager.leeds": {"leeds"},
    "manager.york": {"york"},
    "manager.bristol": {"bristol"},
}
CONTACT_NOT_FOUND = "That contact does not exist or is not in one of your branches."
BRANCH_NOT_FOUND = "That branch does not exist or is not one of yours."
CASES = [(role, branch) for role in ROLES for branch in BRANCHES]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, World]:
    """The world with one contact per branch, built once (password hashing is slow) and copied per test."""
    path = tmp_path_factory.mktemp("access") / "crm.db"
    database = db.connect(path)
    world = World(database, users.create_first_admin(database, "ada", "Ada Admin", PASSWORD))
    world.contacts = {name: world.contact(getattr(world, name), f"{name.title()} Contact") for name in BRANCHES}
    database.close()
    return path, world


@pytest.fixture
def world(template, tmp_path) -> World:
    """A copy of the template world on its own database file."""
    path, built = template
    target = tmp_path / "crm.db"
    scene = copy_world(path, built, target)
    yield scene
    scene.db.close()


def actor(world: World, role: str) -> Actor:
    return world.admin if role == "admin" else getattr(world, role.replace(".", "_"))


def _row(world: World, contact_id: int) -> dict:
    return contacts.get(world.db, COMMAND_LINE, contact_id)


@pytest.mark.parametrize("role", ROLES)
def test_list(world, role):
    """Test that search lists exactly the contacts of the branches in the role's scope."""
    found = contacts.search(world.db, actor(world, role))

    assert [(c["name"], c["branch"]) for c in found] == sorted((f"{b.title()} Contact", b.title()) for b in SCOPE[role])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("branch", BRANCHES)
def test_search_filtered_to_a_branch_outside_scope_is_empty(world, role, branch):
    """Test that asking search for another branch's contacts gives nothing rather than the rows."""
    found = contacts.search(world.db, actor(world, role), branch_id=getattr(world, branch))

    assert [c["name"] for c in found] == ([f"{branch.title()} Contact"] if branch in SCOPE[role] else [])


@pytest.mark.parametrize(("role", "branch"), CASES)
def test_open(world, role, branch):
    """Test that a contact opens only within scope; outside it, it is NotFound as if it did not exist."""
    contact_id = world.contacts[branch]

    if branch in SCOPE[role]:
        record = contacts.get(world.db, actor(world, role), contact_id)
        assert (record["id"], record["name"], record["branch"]) == (
            contact_id,
            f"{branch.title()} Contact",
            branch.title(),
        )
    else:
        with pytest.raises(NotFound) as caught:
            contacts.get(world.db, actor(world, role), contact_id)
        assert str(caught.value) == CONTACT_NOT_FOUND


@pytest.mark.parametrize("role", ROLES)
def test_missing_contact_looks_the_same_as_out_of_scope(world, role):
    """Test that a contact id that does not exist gets the same message as one in another branch."""
    with pytest.raises(NotFound) as caught:
        contacts.get(world.db, actor(world, role), 999)

    assert str(caught.value) == CONTACT_NOT_FOUND


@pytest.mark.parametrize(("role", "branch"), CASES)
def test_edit(world, role, branch):
    """Test that a contact can be edited only within scope, and an out-of-scope edit changes nothing."""
    contact_id = world.contacts[branch]
    before = _row(world, contact_id)
    values = {
        "name": before["name"],
        "job_title": "Practice Manager",
        "organisation_id": before["organisation_id"],
        "branch_id": before["branch_id"],
    }
    log_size = len(audit.entries(world.db))

    if branch in SCOPE[role]:
        contacts.update(world.db, actor(world, role), contact_id, values, expected_version=1)
        after = _row(world, contact_id)
        assert (after["job_title"], after["version"]) == ("Practice Manager", 2)
        assert len(audit.entries(world.db)) == log_size + 1
    else:
        with pytest.raises(NotFound) as caught:
            contacts.update(world.db, actor(world, role), contact_id, values, expected_version=1)
        assert str(caught.value) == CONTACT_NOT_FOUND
        assert _row(world, contact_id) == before
        assert len(audit.entries(world.db)) == log_size


@pytest.mark.parametrize(("role", "branch"), CASES)
def test_add_into(world, role, branch):
    """Test that a contact can be added only to a branch in scope."""
    values = {"name": "New Person", "organisation_id": world.ot, "branch_id": getattr(world, branch)}
    count = world.db.table("contacts").count

    if branch in SCOPE[role]:
        contact_id = contacts.add(world.db, actor(world, role), values)
        assert _row(world, contact_id)["branch"] == branch.title()
        assert world.db.table("contacts").count == count + 1
    else:
        with pytest.raises(NotFound) as caught:
            contacts.add(world.db, actor(world, role), values)
        assert str(caught.value) == BRANCH_NOT_FOUND
        assert world.db.table("contacts").count == count


@pytest.mark.parametrize(("role", "branch"), CASES)
def test_mark_left(world, role, branch):
    """Test that only a contact in scope can be marked as left (and reinstated)."""
    contact_id = world.contacts[branch]
    before = _row(world, contact_id)

    if branch in SCOPE[role]:
        contacts.mark_left(world.db, actor(world, role), contact_id, expected_version=1)
        assert _row(world, contact_id)["status"] == "left"
        contacts.reinstate(world.db, actor(world, role), contact_id, expected_version=2)
        assert _row(world, contact_id)["status"] == "active"
    else:
        with pytest.raises(NotFound) as caught:
            contacts.mark_left(world.db, actor(world, role), contact_id, expected_version=1)
        assert str(caught.value) == CONTACT_NOT_FOUND
        with pytest.raises(NotFound):
            contacts.reinstate(world.db, actor(world, role), contact_id, expected_version=1)
        assert _row(world, contact_id) == before


@pytest.mark.parametrize(("role", "branch"), CASES)
def test_move_own_contact_into_branch(world, role, branch):
    """Test that a contact in scope can be moved only into another branch in scope."""
    home = sorted(SCOPE[role])[0]
    contact_id = world.contacts[home]
    before = _row(world, contact_id)
    values = {"name": before["name"], "organisation_id": before["organisation_id"], "branch_id": getattr(world, branch)}

    if branch in SCOPE[role]:
        contacts.update(world.db, actor(world, role), contact_id, values, expected_version=1)
        assert _row(world, contact_id)["branch"] == branch.title()
    else:
        with pytest.raises(NotFound) as caught:
            contacts.update(world.db, actor(world, role), contact_id, values, expected_version=1)
        assert str(caught.value) == BRANCH_NOT_FOUND
        assert _row(world, contact_id) == before


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("admin", [("Leeds", "North"), ("York", "North"), ("Bristol", "South")]),
        ("lead.north", [("Leeds", "North"), ("York", "North")]),
        ("lead.south", [("Bristol", "South")]),
        ("manager.leeds", [("Leeds", "North")]),
        ("manager.york", [("York", "North")]),
        ("manager.bristol", [("Bristol", "South")]),
    ],
)
def test_branch_list_per_role(world, role, expected):
    """Test that each role sees only its own branches, ordered by region, each with its active contact count."""
    listed = branches.branches(world.db, actor(world, role))

    assert [(b["name"], b["region"]) for b in listed] == expected
    assert [(b["id"], b["region_id"], b["contacts"]) for b in listed] == [
        (getattr(world, name.lower()), getattr(world, region.lower()), 1) for name, region in expected
    ]


@pytest.mark.parametrize("role", ROLES)
def test_branch_choices_per_role_are_the_branch_list_without_counts(world, role):
    """Test that the branch picker's list is each role's branch list, whole records in the same order, without
    the contact count."""
    who = actor(world, role)

    assert branches.branch_choices(world.db, who) == [
        {"id": b["id"], "name": b["name"], "region_id": b["region_id"], "region": b["region"]}
        for b in branches.branches(world.db, who)
    ]
    assert {b["name"].lower() for b in branches.branch_choices(world.db, who)} == SCOPE[role]


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("admin", ["North", "South"]),
        ("lead.north", ["North"]),
        ("lead.south", ["South"]),
        ("manager.leeds", ["North"]),
        ("manager.york", ["North"]),
        ("manager.bristol", ["South"]),
    ],
)
def test_regions_visible(world, role, expected):
    """Test that each role sees only the regions holding its branches."""
    assert [r["name"] for r in branches.regions(world.db, actor(world, role))] == expected


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("admin", "All branches"),
        ("lead.north", "North region"),
        ("lead.south", "South region"),
        ("manager.leeds", "Leeds branch"),
        ("manager.york", "York branch"),
        ("manager.bristol", "Bristol branch"),
    ],
)
def test_scope_label(world, role, expected):
    """Test that the scope is described in words for each role."""
    assert branches.scope_label(world.db, actor(world, role)) == expected


def test_actor_without_a_role_sees_nothing(world):
    """Test that an actor whose role is unknown is refused rather than given everything."""
    stranger = Actor(id=99, username="stranger", display_name="Stranger", role="visitor")

    with pytest.raises(PermissionDenied) as caught:
        contacts.search(world.db, stranger)

    assert str(caught.value) == "Your account has no role; ask an administrator."


@pytest.mark.parametrize("role", ["lead.north", "manager.leeds"])
def test_only_admins_manage_regions_and_branches(world, role):
    """Test that regional leads and branch managers cannot add regions or branches."""
    with pytest.raises(PermissionDenied) as caught:
        branches.add_region(world.db, actor(world, role), "East")
    assert str(caught.value) == "Your role does not allow this."
    with pytest.raises(PermissionDenied):
        branches.add_branch(world.db, actor(world, role), "Hull", world.north)
    assert [r["name"] for r in branches.regions(world.db, world.admin)] == ["North", "South"]
