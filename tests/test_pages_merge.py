"""Page tests of merging duplicates with Streamlit's AppTest: the "Possible duplicates" list per branch and role,
the side-by-side comparison and merge (every kind of linked record moves, totals unchanged, audited, the message
exact), stale pairs refused with nothing changed, and old addresses of merged records leading to the survivor."""

import json
from datetime import datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from crm import clock, contacts, interactions, merge, organisations, referrals, testimonials
from crm.ui.widgets import day, md
from tests.conftest import World, copy_world
from tests.pagehelpers import button, new_app, rendered_text, run_app_on, sign_in, values
from tests.test_markdown_injection import HOSTILE, markdown_sources, unsafe_markdown


@pytest.fixture(autouse=True)
def app_env(monkeypatch, db_path):
    """Every test's app runs on the test's own database file (see pagehelpers.run_app_on)."""
    run_app_on(monkeypatch, db_path)


def add(world: World, branch_id: int, name: str, **extra) -> int:
    values = {"name": name, "organisation_id": world.gp, "branch_id": branch_id, **extra}
    return contacts.add(world.db, world.admin, values, allow_duplicate=True)


@pytest.fixture
def world(template, db_path) -> World:
    """Priya Patel twice in Leeds (the same email in another letter case), each with interactions, the duplicate
    also with an open follow-up, a referral and a testimonial; and a contact whose successor is the duplicate."""
    path, built = template
    scene = copy_world(path, built, db_path)
    today = clock.now().date()
    scene.priya = add(scene, scene.leeds, "Priya Patel", job_title="Practice Manager", email="priya@hydepark.example")
    scene.dupe = add(
        scene,
        scene.leeds,
        "Dr Priya Patel-Shah",
        job_title="Practice manager (acting)",
        email="Priya@hydepark.example",
        mobile="07400 123456",
    )
    scene.old = add(scene, scene.leeds, "Olive Old", job_title="Receptionist")
    scene.db.execute("UPDATE contacts SET successor_id = ? WHERE id = ?", [scene.dupe, scene.old])

    def touch(contact_ids: list[int], days_ago: int, summary: str, **extra) -> int:
        values = {
            "branch_id": scene.leeds,
            "kind_code": "PHONE_CALL",
            "occurred_on": today - timedelta(days=days_ago),
            "summary": summary,
            "contact_ids": contact_ids,
            **extra,
        }
        return interactions.log(scene.db, scene.admin, values)

    touch([scene.priya], 20, "Call with Priya")
    touch(
        [scene.dupe],
        10,
        "Call with Dr Patel-Shah",
        follow_up_on=today + timedelta(days=7),
        follow_up_action="Send the rota",
    )
    touch([scene.priya, scene.dupe], 5, "Meeting with both")
    referrals.log(
        scene.db,
        scene.admin,
        {
            "branch_id": scene.leeds,
            "contact_id": scene.dupe,
            "received_at": datetime.combine(today - timedelta(days=3), datetime.min.time()).replace(hour=10),
            "channel": "phone",
            "urgency": "routine",
        },
    )
    testimonials.add(
        scene.db,
        scene.admin,
        {"branch_id": scene.leeds, "quote": "Brilliant team.", "contact_id": scene.dupe, "source": "email"},
    )
    scene.today = today
    yield scene
    scene.db.close()


def totals(world: World) -> dict[str, int]:
    one = lambda sql: world.db.execute(sql).fetchone()[0]  # noqa: E731
    return {
        "interactions": one("SELECT count(*) FROM interactions"),
        "links": one("SELECT count(DISTINCT interaction_id) FROM interaction_contacts"),
        "open follow-ups": one("SELECT count(*) FROM interactions WHERE follow_up_on IS NOT NULL"),
        "referrals": one("SELECT count(*) FROM referrals WHERE contact_id IS NOT NULL"),
        "testimonials": one("SELECT count(*) FROM testimonials WHERE contact_id IS NOT NULL"),
    }


def open_duplicates(username: str, **params: int) -> AppTest:
    at = sign_in(new_app(), username)
    at.switch_page("pages/duplicates.py")
    for name, value in params.items():
        at.query_params[name] = str(value)
    at.run()
    assert not at.exception, at.exception
    return at


def pair_text(at: AppTest) -> list[str]:
    return [m.value for m in at.main.markdown]


def test_the_list_shows_each_branchs_pairs_with_their_reasons(world):
    """Test that a branch manager sees the pairs of their branch only, under the branch's name, with what matched,
    and no organisations section (they may not edit the NHS directory)."""
    add(world, world.york, "Priya Patel", email="priya@hydepark.example")  # York's, not Leeds's
    sam = add(world, world.leeds, "Sam Lee", phone="0113 496 0500")
    samuel = add(world, world.leeds, "Samuel Jones", mobile="0113 496 0500")

    at = open_duplicates("manager.leeds")

    assert values(at.title) == ["Possible duplicates"]
    assert values(at.subheader) == ["Contacts"]
    assert pair_text(at) == [
        "**Leeds**",
        "Priya Patel (Hyde Park Surgery) and Dr Priya Patel-Shah (Hyde Park Surgery): same email",
        "Sam Lee (Hyde Park Surgery) and Samuel Jones (Hyde Park Surgery): same phone number",
    ]
    assert [b.key for b in at.button if b.key and b.key.startswith("duplicates_pair_")] == [
        f"duplicates_pair_{world.priya}_{world.dupe}",
        f"duplicates_pair_{sam}_{samuel}",
    ]


def test_the_list_is_found_once_while_nothing_changes_and_again_after_any_change(world, monkeypatch):
    """Test that rerunning the list (another branch chosen and back, a return from a comparison) finds the pairs
    once while the data is unchanged, and that the administrator's own change (a contact added) shows at the next
    rerun: an administrator's list reads all 75,000 contacts of 250 branches."""
    found = []
    real = merge.duplicate_contacts

    def counted(*args, **kwargs):
        found.append(kwargs.get("branch_id"))
        return real(*args, **kwargs)

    monkeypatch.setattr(merge, "duplicate_contacts", counted)
    at = open_duplicates("ada")
    at.selectbox(key="duplicates_branch").set_value(world.leeds).run()
    at.selectbox(key="duplicates_branch").set_value(None).run()
    at.run()

    assert found == [None, world.leeds]
    assert pair_text(at) == [
        "**Leeds**",
        "Priya Patel (Hyde Park Surgery) and Dr Priya Patel-Shah (Hyde Park Surgery): same email",
    ]
    add(world, world.york, "Yan Young", phone="01904 960500")
    add(world, world.york, "Zoe Zed", mobile="01904 960500")
    at.run()

    assert found == [None, world.leeds, None]
    assert pair_text(at) == [
        "**Leeds**",
        "Priya Patel (Hyde Park Surgery) and Dr Priya Patel-Shah (Hyde Park Surgery): same email",
        "**York**",
        "Yan Young (Hyde Park Surgery) and Zoe Zed (Hyde Park Surgery): same phone number",
    ]


def test_an_administrator_also_sees_organisation_pairs(world):
    """Test that an administrator sees a hand-made organisation beside the NHS directory's record of the same
    name and postcode."""
    world.db.execute(
        "UPDATE organisations SET ods_code = 'B86001', name = 'HYDE PARK SURGERY' WHERE id = ?", [world.gp]
    )
    hand_made = organisations.add(
        world.db,
        world.manager_leeds,
        {"name": "The Hyde Park Surgery", "type_code": "GP_PRACTICE", "postcode": "ls6 1aa"},
    )

    at = open_duplicates("ada")

    assert values(at.subheader) == ["Contacts", "Organisations"]
    assert pair_text(at)[-1] == "The Hyde Park Surgery (added by hand) and HYDE PARK SURGERY (ODS B86001), LS6 1AA"
    assert f"duplicates_org_{world.gp}_{hand_made}" in [b.key for b in at.button]


def test_merging_from_the_page_moves_everything_and_says_what_moved(world):
    """Test that comparing a pair, keeping Priya Patel's record but the duplicate's job title, and merging moves
    every kind of linked record to her (totals unchanged), takes the chosen field, fills blanks, writes the audit
    entry, and says exactly what moved with a link to her page."""
    before = totals(world)
    at = open_duplicates("manager.leeds")
    button(at, "Compare").click().run()
    prefix = f"duplicates_contacts_{world.priya}_{world.dupe}"
    assert values(at.header) == ["Compare two contacts"]
    # Both have a name, a job title and an email (in another letter case): a radio each, defaulting to the
    # duplicate's (the newer record's).
    assert [r.label for r in at.radio] == ["The record that stays", "Name", "Job title", "Email"]
    at.radio(key=f"{prefix}_field_email").set_value(world.priya)
    at.radio(key=f"{prefix}_survivor").set_value(world.priya)
    at.radio(key=f"{prefix}_field_name").set_value(world.priya)
    at.radio(key=f"{prefix}_field_job_title").set_value(world.dupe)
    at.run()
    assert "Filled from the other record (blank in the one that stays): Mobile." in values(at.caption)

    button(at, "Merge").click().run()

    assert not at.exception, at.exception
    assert values(at.error) == []
    assert values(at.success) == [
        "Merged Dr Priya Patel-Shah into Priya Patel: moved 3 interactions (1 open follow-up), 1 referral, "
        "1 testimonial and 1 successor link."
    ]
    assert f"contact={world.priya}" in rendered_text(at)
    assert totals(world) == before
    survivor = contacts.get(world.db, world.admin, world.priya)
    assert {k: survivor[k] for k in ("name", "job_title", "email", "mobile")} == {
        "name": "Priya Patel",
        "job_title": "Practice manager (acting)",
        "email": "priya@hydepark.example",
        "mobile": "+447400123456",
    }
    links = merge.contact_links(world.db, world.admin, world.priya)
    assert links == {"interactions": 4, "follow_ups": 1, "referrals": 1, "testimonials": 1, "successor_links": 1}
    assert world.db.execute("SELECT count(*) FROM contacts WHERE id = ?", [world.dupe]).fetchone()[0] == 0
    [entry] = world.db.execute_returning_dicts(
        "SELECT username, row_id, changes FROM audit_log WHERE action = 'merge' AND table_name = 'contacts'"
    )
    assert (entry["username"], entry["row_id"], json.loads(entry["changes"])["merged_id"]) == (
        "manager.leeds",
        world.priya,
        world.dupe,
    )
    assert json.loads(entry["changes"])["moved"]["fields"]["job_title"] == [
        "Practice Manager",
        "Practice manager (acting)",
    ]


def compare_pair(world: World, username: str = "manager.leeds") -> tuple[AppTest, str]:
    """A tab on the comparison of Priya and her duplicate (the address the contact's page links to)."""
    at = open_duplicates(username, contact=world.priya, other=world.dupe)
    assert values(at.header) == ["Compare two contacts"]
    return at, f"duplicates_contacts_{world.priya}_{world.dupe}"


def snapshot(world: World) -> dict:
    """Everything a merge would change: both records, the links, the audit log's length."""
    return {
        "contacts": world.db.execute_returning_dicts("SELECT * FROM contacts ORDER BY id"),
        "links": world.db.execute("SELECT * FROM interaction_contacts ORDER BY 1, 2").fetchall(),
        "referrals": world.db.execute("SELECT id, contact_id FROM referrals ORDER BY id").fetchall(),
        "testimonials": world.db.execute("SELECT id, contact_id FROM testimonials ORDER BY id").fetchall(),
        "merged": world.db.execute("SELECT * FROM merged_records").fetchall(),
        "audit": world.db.execute("SELECT count(*) FROM audit_log").fetchone()[0],
    }


def test_a_pair_changed_since_it_was_opened_is_not_merged(world):
    """Test that when someone edits one of the pair after the comparison was opened, Merge says so and changes
    nothing."""
    at, _ = compare_pair(world)
    row = contacts.get(world.db, world.admin, world.dupe)
    contacts.update(
        world.db,
        world.admin,
        world.dupe,
        {**row, "phone": row["phone_display"], "mobile": row["mobile_display"], "job_title": "Practice Manager"},
        row["version"],
    )
    before = snapshot(world)

    button(at, "Merge").click().run()

    assert values(at.error) == [
        "Dr Priya Patel-Shah's record was changed by someone else after you chose it, so nothing was merged. "
        "Look at it again, then decide."
    ]
    assert values(at.success) == []
    assert snapshot(world) == before


def test_a_pair_merged_meanwhile_is_not_merged_again(world):
    """Test that when a colleague merged the duplicate elsewhere after the comparison was opened, Merge says into
    whom and changes nothing."""
    at, _ = compare_pair(world)
    merge.merge_contacts(world.db, world.admin, world.old, world.dupe)
    before = snapshot(world)

    button(at, "Merge").click().run()

    assert values(at.error) == ["That contact has already been merged into Olive Old, so nothing was merged."]
    assert snapshot(world) == before


@pytest.mark.parametrize("username", ["manager.york", "lead.south"])
def test_a_pair_outside_the_users_scope_is_not_shown(world, username):
    """Test that the comparison of another branch's contacts (an edited address) shows the not-found message and
    no record, and nothing can be merged."""
    at = open_duplicates(username, contact=world.priya, other=world.dupe)

    assert values(at.error) == ["That contact does not exist or is not in one of your branches."]
    assert "Priya" not in rendered_text(at)
    assert [b.label for b in at.button if b.label == "Merge"] == []


def test_contacts_of_two_branches_are_refused_with_a_message(world):
    """Test that an administrator comparing contacts of two branches gets the reason on Merge, nothing changed."""
    york = add(world, world.york, "Priya Patel", email="priya@hydepark.example")
    at = open_duplicates("ada", contact=world.priya, other=york)
    before = snapshot(world)

    button(at, "Merge").click().run()

    assert values(at.error) == ["Merge: only contacts of the same branch can be merged."]
    assert snapshot(world) == before


def test_a_contacts_page_offers_to_merge_a_likely_duplicate(world):
    """Test that a contact's page says who they may be the same person as, and why, with a link to compare."""
    at = sign_in(new_app(), "manager.leeds")
    at.switch_page("pages/contacts.py")
    at.query_params["contact"] = str(world.dupe)
    at.run()

    assert values(at.warning) == ["Possibly the same person as Priya Patel (same email)."]
    assert f"other={world.priya}" in rendered_text(at)
    assert f"contact={world.dupe}" in rendered_text(at)


def test_a_merged_contacts_old_address_shows_the_survivor(world):
    """Test that opening a merged contact's old address shows the survivor, with both records' interactions and a
    note saying what was merged into whom, and when."""
    merge.merge_contacts(world.db, world.manager_leeds, world.priya, world.dupe)
    at = sign_in(new_app(), "manager.leeds")
    at.switch_page("pages/contacts.py")
    at.query_params["contact"] = str(world.dupe)
    at.run()

    assert not at.exception, at.exception
    assert values(at.header) == ["Priya Patel"]
    assert values(at.info)[0] == f"Dr Priya Patel-Shah was merged into Priya Patel on {day(clock.now().date())}."
    [history] = [frame.value for frame in at.dataframe][:1]
    assert sorted(history["Summary"]) == sorted(
        [
            "Call with Priya",
            "Call with Dr Patel-Shah",
            "Meeting with both",
            "Referral received from Dr Priya Patel-Shah, Hyde Park Surgery",
        ]
    )


def test_merging_organisations_from_the_page_and_the_old_address(world):
    """Test that an administrator merges a hand-made GP practice into the NHS directory's record from the page
    (its contacts and interactions move, the message says so), and its old address shows the survivor."""
    world.db.execute("UPDATE organisations SET ods_code = 'B86001' WHERE id = ?", [world.gp])
    hand_made = organisations.add(
        world.db,
        world.manager_leeds,
        {"name": "The Hyde Park Surgery", "type_code": "GP_PRACTICE", "postcode": "LS6 1AA"},
    )
    bob = add(world, world.bristol, "Bob Bristol", organisation_id=hand_made)
    at = open_duplicates("ada")
    [compare] = [b for b in at.button if b.key == f"duplicates_org_{world.gp}_{hand_made}"]
    compare.click().run()
    assert values(at.header) == ["Compare two organisations"]
    prefix = f"duplicates_organisations_{world.gp}_{hand_made}"
    assert at.radio(key=f"{prefix}_survivor").value == world.gp
    at.radio(key=f"{prefix}_field_name").set_value(world.gp)

    button(at, "Merge").click().run()

    assert values(at.success) == ["Merged The Hyde Park Surgery into Hyde Park Surgery: moved 1 contact."]
    assert contacts.get(world.db, world.admin, bob)["organisation_id"] == world.gp
    assert world.db.execute("SELECT count(*) FROM organisations WHERE id = ?", [hand_made]).fetchone()[0] == 0
    at = sign_in(new_app(), "manager.leeds")
    at.switch_page("pages/organisations.py")
    at.query_params["organisation"] = str(hand_made)
    at.run()
    assert values(at.header) == ["Hyde Park Surgery"]
    assert values(at.info)[0] == (
        f"The Hyde Park Surgery was merged into Hyde Park Surgery on {day(clock.now().date())}."
    )


def test_names_on_the_duplicates_page_show_as_typed(world):
    """Test that names, job titles and organisation names on the list and the comparisons never render as markdown
    (links, images, emoji, bold): radio options, headings, messages and the notice on the contact's page."""
    world.db.execute("UPDATE organisations SET ods_code = 'B86001', name = ? WHERE id = ?", [HOSTILE, world.gp])
    hand_made = organisations.add(
        world.db, world.admin, {"name": "The " + HOSTILE, "type_code": "GP_PRACTICE", "postcode": "LS6 1AA"}
    )
    first = add(world, world.leeds, HOSTILE, job_title=HOSTILE, email="x@hostile.example")
    second = add(world, world.leeds, HOSTILE + " Jr", job_title=HOSTILE + "!", email="X@hostile.example")
    screens = [
        open_duplicates("ada"),
        open_duplicates("ada", contact=first, other=second),
        open_duplicates("ada", organisation=world.gp, other=hand_made),
    ]
    at = sign_in(new_app(), "ada")
    at.switch_page("pages/contacts.py")
    at.query_params["contact"] = str(first)
    at.run()
    screens.append(at)
    merge.merge_contacts(world.db, world.admin, first, second)
    at = sign_in(new_app(), "ada")
    at.switch_page("pages/contacts.py")
    at.query_params["contact"] = str(second)
    at.run()
    screens.append(at)

    assert [problem for screen in screens for problem in unsafe_markdown(screen)] == []
    shown = [source for screen in screens for _, source in markdown_sources(screen)]
    assert any(md(HOSTILE) in source for source in shown)
    assert any(source.startswith(md(HOSTILE + " Jr was merged into")) for source in shown)
