"""Page tests (AppTest) for lists that show their first rows with a count: This week's follow-ups and lapsing
contacts, the Interactions list a page at a time, and the contacts the "Log an interaction" form offers."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from streamlit.testing.v1 import AppTest

from crm import branches, clock, contacts, interactions, testimonials
from tests.conftest import World, copy_world
from tests.pagehelpers import button, new_app, open_section, run_app_on, sign_in, values


@pytest.fixture(autouse=True)
def app_env(monkeypatch, db_path):
    """Every test's app runs on the test's own database file."""
    run_app_on(monkeypatch, db_path)


@pytest.fixture
def world(template, db_path) -> World:
    """A copy of the template world at the path the app reads (CRM_DB)."""
    path, built = template
    scene = copy_world(path, built, db_path)
    scene.today = clock.now().date()
    yield scene
    scene.db.close()


def open_on(username: str, page: str) -> AppTest:
    at = sign_in(new_app(), username)
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def log_at_gp(world: World, days_ago: int, summary: str, **values) -> int:
    """An interaction with Leeds' GP practice (no contact), ``days_ago`` days ago."""
    return interactions.log(
        world.db,
        world.admin,
        {
            "branch_id": world.leeds,
            "occurred_on": world.today - timedelta(days=days_ago),
            "kind_code": "PHONE_CALL",
            "summary": summary,
            "organisation_id": world.gp,
            **values,
        },
    )


def reruns_as_others_changes_settle(at: AppTest, seconds: list[float], read: Callable[[AppTest], object]) -> tuple:
    """What ``read`` finds on the page re-run a second before another person's change reaches the cached figures
    (crm.ui.cached.SETTLE_SECONDS after the last settled version) and on a re-run once it has. ``seconds[0]`` is
    the clock the cache reads (monkeypatched)."""
    from crm.ui import cached

    seconds[0] += cached.SETTLE_SECONDS - 1
    at.run()
    before_settling = read(at)
    seconds[0] += 1
    at.run()
    return before_settling, read(at)


def keys(at: AppTest, prefix: str) -> list[str]:
    return [str(b.key) for b in at.button if str(b.key).startswith(prefix)]


def test_that_this_week_shows_the_10_most_urgent_lapsing_contacts_how_many_there_are_and_more_on_request(world):
    """Test that with 17 named contacts never contacted, This week lists the first 10 (by name), says it shows 10
    of 17, and "Show 7 more" lists all 17."""
    people = [world.contact(world.leeds, f"Contact {n:02}") for n in range(17)]
    at = open_on("manager.leeds", "pages/home.py")
    assert keys(at, "home_log_contact_") == [f"home_log_contact_{p}" for p in people[:10]]
    assert "17 named contacts to call. Any logged interaction resets the clock." in values(at.main.caption)
    assert "Showing the 10 most urgent of 17." in values(at.main.caption)

    button(at, "Show 7 more").click().run()

    assert not at.exception, at.exception
    assert keys(at, "home_log_contact_") == [f"home_log_contact_{p}" for p in people]
    assert [c for c in values(at.main.caption) if c.startswith("Showing")] == []
    assert [b.label for b in at.button if b.label.startswith("Show ")] == []


def test_that_this_weeks_number_to_call_shows_ones_own_change_at_once_and_anothers_once_settled(world, monkeypatch):
    """Test that This week's number of named contacts to call is contacts.lapsing_count's; that an administrator's
    own new contact (never contacted, so lapsing) counts on the next run; and that another person's counts once the
    figures settle (cached.SETTLE_SECONDS): counting a large provider's 33,000 lapsing contacts took 1.6 ms of
    every rerun. The rows listed are read afresh on every run."""
    from crm.ui import cached

    seconds = [1_000.0]
    monkeypatch.setattr(cached, "_monotonic", lambda: seconds[0])
    for n in range(12):
        world.contact(world.leeds, f"Contact {n:02}")

    def to_call(at: AppTest) -> int:
        [caption] = [
            c
            for c in values(at.main.caption)
            if c.endswith(" named contacts to call. Any logged interaction resets the clock.")
        ]
        return int(caption.split()[0])

    at = open_on("ada", "pages/home.py")
    before = to_call(at)
    assert before == contacts.lapsing_count(world.db, world.admin) >= 12

    contacts.add(
        world.db, world.manager_york, {"name": "Yara GP", "organisation_id": world.gp, "branch_id": world.york}
    )
    assert reruns_as_others_changes_settle(at, seconds, to_call) == (before, before + 1)
    assert to_call(at) == contacts.lapsing_count(world.db, world.admin)

    contacts.add(world.db, world.admin, {"name": "Lola GP", "organisation_id": world.gp, "branch_id": world.leeds})
    at.run()
    assert to_call(at) == before + 2 == contacts.lapsing_count(world.db, world.admin)


def test_that_this_week_shows_the_10_soonest_follow_ups_how_many_are_due_and_more_on_request(world):
    """Test that with 21 follow-ups due, This week lists the 10 soonest and says it shows the first 10 of 21;
    "Show 10 more" shows 20, and "Show 1 more" the last one."""
    follow_ups = [
        log_at_gp(world, 10, f"Call {n}", follow_up_on=world.today - timedelta(days=5) + timedelta(days=n % 10))
        for n in range(21)
    ]
    soonest = sorted(follow_ups, key=lambda i: (interactions.get(world.db, world.admin, i)["follow_up_on"], i))
    at = open_on("manager.leeds", "pages/home.py")
    assert keys(at, "home_done_") == [f"home_done_{i}" for i in soonest[:10]]
    assert "Showing the first 10 of 21." in values(at.main.caption)

    button(at, "Show 10 more").click().run()

    assert keys(at, "home_done_") == [f"home_done_{i}" for i in soonest[:20]]
    assert "Showing the first 20 of 21." in values(at.main.caption)

    button(at, "Show 1 more").click().run()

    assert not at.exception, at.exception
    assert keys(at, "home_done_") == [f"home_done_{i}" for i in soonest]
    assert [c for c in values(at.main.caption) if c.startswith("Showing")] == []


def test_that_the_interactions_list_pages_through_its_rows_with_a_count(world):
    """Test that with 101 interactions the list shows the newest 100 and the count, "Older →" shows the 101st,
    and "← Newer" goes back; a new filter starts at the first page again."""
    for n in range(101):
        log_at_gp(world, n // 2, f"Call {n:03}")
    at = open_on("manager.leeds", "pages/interactions.py")
    [table] = at.dataframe
    assert "Showing 1-100 of 101 interactions, newest first" in values(at.main.caption)
    assert len(table.value) == 100
    assert (table.value["Summary"].iloc[0], table.value["Summary"].iloc[99]) == ("Call 001", "Call 098")
    assert button(at, "← Newer").disabled and not button(at, "Older →").disabled

    button(at, "Older →").click().run()

    [table] = at.dataframe
    assert "Showing 101-101 of 101 interactions, newest first" in values(at.main.caption)
    assert list(table.value["Summary"]) == ["Call 100"]
    assert button(at, "Older →").disabled

    button(at, "← Newer").click().run()
    assert "Showing 1-100 of 101 interactions, newest first" in values(at.main.caption)

    button(at, "Older →").click().run()
    at.text_input(key="interactions_filter_text").set_value("Call 09").run()
    [table] = at.dataframe
    assert sorted(table.value["Summary"]) == [f"Call 09{n}" for n in range(10)]
    assert "10 interactions" in values(at.main.caption)


def test_that_the_log_form_offers_the_50_most_recent_contacts_and_finds_others(world):
    """Test that the form offers a branch's 50 most recently touched contacts, finds another by typing, keeps a
    chosen contact offered (and chosen) when the search changes, and logs the interaction with them."""
    people = [world.contact(world.leeds, f"Person {n:02}") for n in range(52)]
    for n, person in enumerate(people[:50]):
        interactions.log(
            world.db,
            world.admin,
            {
                "branch_id": world.leeds,
                "occurred_on": world.today - timedelta(days=n),
                "kind_code": "PHONE_CALL",
                "summary": "Hello",
                "contact_ids": [person],
            },
        )
    at = open_section(open_on("manager.leeds", "pages/interactions.py"), "Log an interaction")
    picker = at.multiselect(key="interactions_log_contacts")
    assert len(picker.options) == 50
    assert picker.options[0] == "Person 00 (Hyde Park Surgery)"
    assert "Showing the 50 most recently in touch; type to find others." in values(at.main.caption)

    at.text_input(key="interactions_log_contacts_search").set_value("Person 51").run()
    assert at.multiselect(key="interactions_log_contacts").options == ["Person 51 (Hyde Park Surgery)"]
    at.multiselect(key="interactions_log_contacts").set_value([people[51]]).run()
    at.text_input(key="interactions_log_contacts_search").set_value("Person 0").run()
    picker = at.multiselect(key="interactions_log_contacts")
    assert picker.value == [people[51]]
    assert "Person 51 (Hyde Park Surgery)" in picker.options

    at.text_input(key="interactions_log_summary").set_value("Met the new one")
    button(at, "Log interaction").click().run()
    assert not at.exception, at.exception
    [logged] = interactions.search(world.db, world.admin, text="Met the new one")
    assert interactions.get(world.db, world.admin, logged["id"])["contact_ids"] == [people[51]]
    assert contacts.get(world.db, world.admin, people[51])["last_touched_on"] == world.today.isoformat()


def test_that_testimonials_are_listed_fifty_at_a_time_newest_first_and_the_export_holds_them_all(world):
    """Test that with 201 testimonials the page lists the newest 50 under the whole count, that Next and Previous
    move through them (the last page holding the oldest), and that it says the exports hold all 201."""
    for n in range(201):
        testimonials.add(
            world.db,
            world.admin,
            {
                "branch_id": world.leeds,
                "quote": f"Quote {n:03}",
                "giver_name": "A nurse",
                "organisation_name": "A practice",
                "type_code": "GP_PRACTICE",
                "source": "email",
                "received_on": (world.today - timedelta(days=n)).isoformat(),
            },
        )
    at = open_on("manager.leeds", "pages/testimonials.py")

    def quotes() -> list[str]:
        [table] = at.dataframe
        return list(table.value["Quote"])

    assert quotes() == [f"Quote {n:03}" for n in range(50)]
    assert "201 testimonials internal readers may see, 1 to 50 shown." in values(at.main.caption)
    assert "Page 1 of 5" in values(at.main.markdown)
    assert "All 201 testimonials found, attributed for internal readers. Every export is recorded." in values(
        at.main.markdown
    )
    at.button(key="testimonials_next").click().run()
    assert quotes() == [f"Quote {n:03}" for n in range(50, 100)]
    assert "201 testimonials internal readers may see, 51 to 100 shown." in values(at.main.caption)
    for _ in range(3):
        at.button(key="testimonials_next").click().run()
    assert quotes() == ["Quote 200"]
    assert at.button(key="testimonials_next").disabled
    at.button(key="testimonials_previous").click().run()
    assert quotes() == [f"Quote {n:03}" for n in range(150, 200)]


def test_that_a_contact_chosen_in_one_branch_is_not_offered_after_choosing_another_branch(world):
    """Test that an administrator who picks a Leeds contact and then switches the form to York is offered only
    York's contacts (the kept choice is for the branch it was made in)."""
    leeds = world.contact(world.leeds, "Lena Leeds")
    world.contact(world.york, "Yuri York")
    at = open_section(open_on("ada", "pages/interactions.py"), "Log an interaction")
    at.selectbox(key="interactions_log_branch").set_value(world.leeds).run()
    at.multiselect(key="interactions_log_contacts").set_value([leeds]).run()
    at.selectbox(key="interactions_log_branch").set_value(world.york).run()
    assert not at.exception, at.exception
    picker = at.multiselect(key="interactions_log_contacts")
    assert (picker.options, picker.value) == (["Yuri York (Hyde Park Surgery)"], [])


def test_that_this_weeks_named_contacts_by_partner_type_show_ones_own_change_at_once_and_anothers_once_settled(
    world, monkeypatch
):
    """Test that This week's "Named contacts by partner type" gives a regional lead's branches' counts of active
    named contacts, as crm counts them; that the lead's own new contact shows on the next run; and that another
    person's shows once the figures settle (cached.SETTLE_SECONDS), as Coverage's do, not on every write."""
    from crm.ui import cached

    seconds = [1_000.0]
    monkeypatch.setattr(cached, "_monotonic", lambda: seconds[0])

    def gp_counts(at: AppTest) -> dict:
        [gp] = [row for row in at.dataframe[-1].value.to_dict("records") if row["Partner type"] == "GP practice"]
        return gp

    at = open_on("lead.north", "pages/home.py")
    assert at.dataframe[-1].value.to_dict("records") == contacts.named_matrix(world.db, world.lead_north)
    assert gp_counts(at) == {"Partner type": "GP practice", "Leeds": 0, "York": 0}

    contacts.add(
        world.db, world.manager_york, {"name": "Yara GP", "organisation_id": world.gp, "branch_id": world.york}
    )
    seconds[0] += cached.SETTLE_SECONDS - 1
    at.run()
    assert gp_counts(at) == {"Partner type": "GP practice", "Leeds": 0, "York": 0}
    seconds[0] += 1
    at.run()
    assert gp_counts(at) == {"Partner type": "GP practice", "Leeds": 0, "York": 1}

    contacts.add(world.db, world.lead_north, {"name": "Lola GP", "organisation_id": world.gp, "branch_id": world.leeds})
    at.run()
    assert gp_counts(at) == {"Partner type": "GP practice", "Leeds": 1, "York": 1}


def test_that_each_branchs_contacts_on_regions_and_branches_show_ones_own_change_at_once_and_anothers_once_settled(
    world, monkeypatch
):
    """Test that Regions and branches gives each branch's number of active contacts, as crm counts them; that an
    administrator's own new contact shows on the next run; and that another person's shows once the figures settle
    (cached.SETTLE_SECONDS), as Coverage's do: counting a provider's 75,000 contacts took 8 ms of every rerun."""
    from crm.ui import cached

    seconds = [1_000.0]
    monkeypatch.setattr(cached, "_monotonic", lambda: seconds[0])

    def counts(at: AppTest) -> dict:
        return {row["Branch"]: row["Active contacts"] for row in at.dataframe[1].value.to_dict("records")}

    at = open_on("ada", "pages/branches.py")
    before = counts(at)
    assert before == {b["name"]: b["contacts"] for b in branches.branches(world.db, world.admin)}
    assert set(before) == {"Leeds", "York", "Bristol"}

    contacts.add(
        world.db, world.manager_york, {"name": "Yara GP", "organisation_id": world.gp, "branch_id": world.york}
    )
    assert reruns_as_others_changes_settle(at, seconds, counts) == (before, {**before, "York": before["York"] + 1})

    contacts.add(world.db, world.admin, {"name": "Lola GP", "organisation_id": world.gp, "branch_id": world.leeds})
    at.run()
    assert counts(at) == {**before, "York": before["York"] + 1, "Leeds": before["Leeds"] + 1}
