"""Referrals in a real browser: a branch manager logs a referral from a contact's page and sees it on the Referrals
page; the This week calendar download gives an .ics file that parses back."""

from datetime import timedelta

import pytest
from icalendar import Calendar
from playwright.sync_api import expect

from crm import clock, db, interactions, users
from tests import browserkit
from tests.conftest import PASSWORD, World

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module on a small world: Priya Patel, a Leeds contact with an open follow-up."""
    folder = tmp_path_factory.mktemp("browser_referrals")
    path = folder / "crm.db"
    database = db.connect(path)
    world = World(database, users.create_first_admin(database, "ada", "Ada Admin", PASSWORD))
    priya = world.contact(world.leeds, "Priya Patel", job_title="Practice Manager")
    interactions.log(
        database,
        world.admin,
        {"branch_id": world.leeds, "kind_code": "PHONE_CALL", "summary": "Call", "contact_ids": [priya]}
        | {
            "follow_up_on": (clock.now().date() + timedelta(days=30)).isoformat(),
            "follow_up_action": "Send availability",
        },
    )
    database.close()
    with browserkit.streamlit_server(path, folder / "server.log") as running:
        running.priya = priya
        yield running


@pytest.fixture
def page(browser):
    tab = browserkit.new_tab(browser)
    yield tab
    tab.context.close()


def test_that_a_referral_logged_on_a_contacts_page_shows_on_the_referrals_page(page, server):
    """Test that a branch manager opens a contact, logs a referral in the "Log a referral" pop-over, and finds it
    stored (open, in their branch, from that contact) and listed on the Referrals page."""
    browserkit.sign_in(page, server.url, "manager.leeds")
    page.goto(f"{server.url}/contacts?contact={server.priya}")
    browserkit.wait_for_app(page)
    expect(page.get_by_role("heading", name="Priya Patel")).to_be_visible()

    page.get_by_role("button", name="Log a referral").click()
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Save referral"))
    expect(form.get_by_text("No client identity here", exact=False)).to_be_visible()
    form.get_by_label("Area").fill("LS6")
    form.get_by_label("Your reference (optional)").fill("CM-777")
    form.get_by_role("button", name="Save referral").click()
    expect(page.get_by_text("Referral logged.", exact=False)).to_be_visible()
    browserkit.assert_no_exception(page)

    assert browserkit.retry(lambda: len(server.rows("SELECT id FROM referrals")) == 1)
    [row] = server.rows("SELECT contact_id, area, provider_reference, outcome, channel FROM referrals")
    assert row == {
        "contact_id": server.priya,
        "area": "LS6",
        "provider_reference": "CM-777",
        "outcome": "open",
        "channel": "phone",
    }

    browserkit.open_page(page, "Referrals")
    expect(page.get_by_role("heading", name="Referrals", exact=True)).to_be_visible()
    browserkit.assert_no_exception(page)
    received = page.get_by_test_id("stMetric").filter(has_text="Received")
    expect(received.get_by_test_id("stMetricValue")).to_have_text("1")
    listing = page.get_by_test_id("stDataFrame").first
    # The grid draws on a canvas; its cells are also in an accessibility table, which is what is read here.
    cells = listing.locator('[role="gridcell"]')
    expect(cells.filter(has_text="Priya Patel")).to_have_count(1)
    expect(cells.filter(has_text="CM-777")).to_have_count(1)
    expect(cells.filter(has_text="Open")).to_have_count(1)


def test_that_this_weeks_calendar_download_parses_back(page, server):
    """Test that the This week page's calendar button gives an .ics file with the open follow-up in it."""
    browserkit.sign_in(page, server.url, "manager.leeds")
    name, content = browserkit.download(page, "Follow-ups for your calendar (.ics)")

    assert name == "partner-crm-follow-ups.ics"
    events = Calendar.from_ical(content).walk("VEVENT")
    assert [str(e["SUMMARY"]) for e in events] == ["Send availability: Priya Patel"]
