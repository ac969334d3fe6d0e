"""Referrals in a real browser: a branch manager logs a referral from a contact's page and sees it on the Referrals
page; the Referrals list a page at a time, a referral chosen on the second page; the This week calendar download
gives an .ics file that parses back."""

import re
from datetime import timedelta

import pytest
from icalendar import Calendar
from playwright.sync_api import expect

from crm import clock, db, interactions, referrals, users
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

    mine = "FROM referrals WHERE branch_id = (SELECT branch_id FROM contacts WHERE id = ?)"  # Leeds's
    assert browserkit.retry(lambda: len(server.rows(f"SELECT id {mine}", [server.priya])) == 1)
    [row] = server.rows(f"SELECT contact_id, area, provider_reference, outcome, channel {mine}", [server.priya])
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


ROW_HEIGHT = 35  # st.dataframe's default row (and header) height, in CSS pixels


def test_that_next_shows_the_older_referrals_and_a_row_there_opens_its_outcome(page, server):
    """Test that with more referrals than a page holds, the York manager's Referrals page lists the newest 50
    with the count, Next shows the older ones (the count brought into view), and clicking a row of that page
    opens the outcome form of that referral."""
    database = server.connect()
    try:
        york = database.execute("SELECT id FROM branches WHERE name = 'York'").fetchone()[0]
        ot = database.execute("SELECT id FROM organisations WHERE name = 'Leeds Community OT'").fetchone()[0]
        admin = users.get(database, database.execute("SELECT id FROM users WHERE username = 'ada'").fetchone()[0])
        for days in range(1, 53):  # 52 referrals, one a day, the oldest from "Older 52"
            moment = (clock.now() - timedelta(days=days)).astimezone(referrals.UK).replace(second=0, tzinfo=None)
            values = {"branch_id": york, "received_at": moment, "organisation_id": ot, "channel": "email"}
            referrals.log(database, admin, values | {"urgency": "routine", "provider_reference": f"Older {days:02d}"})
    finally:
        database.close()
    browserkit.sign_in(page, server.url, "manager.york")
    browserkit.open_page(page, "Referrals")
    count = page.locator(".st-key-referrals_count")
    expect(count).to_contain_text("52 referrals, 1 to 50 shown, newest first.")
    cells = page.get_by_test_id("stDataFrame").first.locator('[role="gridcell"]')
    expect(cells.filter(has_text="Older 01")).to_have_count(1)
    expect(cells.filter(has_text="Older 51")).to_have_count(0)

    page.get_by_role("button", name="Next").click()
    browserkit.wait_for_app(page)
    expect(count).to_contain_text("52 referrals, 51 to 52 shown, newest first.")
    expect(count).to_be_in_viewport()  # the new page's start is brought into view, not left below
    expect(page.get_by_text(re.compile(r"^Page 2 of 2$"))).to_be_visible()
    expect(cells.filter(has_text="Older 51")).to_have_count(1)
    expect(cells.filter(has_text="Older 01")).to_have_count(0)
    browserkit.assert_no_exception(page)

    grid = page.get_by_test_id("stDataFrame").first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 15, box["y"] + ROW_HEIGHT * 2.5)  # the second row's selection box: Older 52
    browserkit.wait_for_app(page)
    [older_52] = server.rows("SELECT id, received_at FROM referrals WHERE provider_reference = 'Older 52'")
    heading = f"Outcome of the referral from Leeds Community OT, received {referrals.shown(older_52['received_at'])}"
    expect(page.get_by_text(heading)).to_be_visible()
    expect(page.get_by_role("button", name="Save outcome")).to_be_visible()
    browserkit.assert_no_exception(page)
