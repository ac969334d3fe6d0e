"""Browser tests of the app on a phone (390x844) and a desktop (1440x900), issue 12: no page scrolls sideways,
the Contacts list reads as cards on a phone and as a table on a desktop and moves page by page, and a touch is
logged in two clicks from Coverage's "Who to call".

Only a browser applies the CSS that picks cards or table (crm.ui.layout), lays a page out at a width, and opens
a dialog.
"""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from crm import clock, interactions, users
from tests import browserkit
from tests.browserkit import DESKTOP, PHONE

pytestmark = pytest.mark.browser

MANAGER = "manager.leedsnorth"
LEAD = "lead.northwest"
SIZES = [PHONE, DESKTOP]
SIZE_IDS = ["phone", "desktop"]
# Screenshots land here for a person to look at (never committed); none are taken unless set.
SHOTS = os.environ.get("CRM_SCREENSHOTS")


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server


def _shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=Path(SHOTS) / f"{name}.png")


def _fits_the_width(page: Page) -> bool:
    """No sideways scroll: neither the document nor Streamlit's own scrolling main area is wider than the window."""
    return page.evaluate(
        """() => {
            const main = document.querySelector('[data-testid="stMain"]');
            return document.documentElement.scrollWidth <= window.innerWidth
                && (!main || main.scrollWidth <= main.clientWidth);
        }"""
    )


def _scope(server, username: str) -> tuple[str, list]:
    """The SQL condition (over contacts c) and parameters for the branches ``username`` sees."""
    [user] = server.rows("SELECT role, branch_id, region_id FROM users WHERE username = ?", [username])
    if user["branch_id"] is not None:
        return "c.branch_id = ?", [user["branch_id"]]
    return "c.branch_id IN (SELECT id FROM branches WHERE region_id = ?)", [user["region_id"]]


def _busiest_contact(server, username: str) -> dict:
    """The active contact in the user's scope with the most interactions (the longest history to lay out)."""
    where, params = _scope(server, username)
    return server.rows(
        f"""SELECT c.id, c.name FROM contacts c JOIN interaction_contacts l ON l.contact_id = c.id
            WHERE {where} AND c.status = 'active' GROUP BY c.id ORDER BY count(*) DESC, c.id LIMIT 1""",
        params,
    )[0]


def _active_names(server, username: str, limit: int, offset: int) -> list[str]:
    where, params = _scope(server, username)
    rows = server.rows(
        f"""SELECT c.name FROM contacts c WHERE {where} AND c.status = 'active'
            ORDER BY c.name COLLATE NOCASE, c.id LIMIT ? OFFSET ?""",
        [*params, limit, offset],
    )
    return [r["name"] for r in rows]


def _cards(page: Page):
    return page.locator('[class*="st-key-contacts_card_"]')


def _signed_in(browser, server, username: str, viewport: dict) -> Page:
    page = browserkit.new_tab(browser, viewport=viewport)
    browserkit.sign_in(page, server.url, username)
    browserkit.assert_no_exception(page)
    return page


def _open(page: Page, server, path: str, heading: str) -> None:
    page.goto(f"{server.url}/{path}")
    browserkit.wait_for_app(page)
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    browserkit.assert_no_exception(page)


@pytest.mark.parametrize("username", [MANAGER, LEAD])
@pytest.mark.parametrize("viewport", SIZES, ids=SIZE_IDS)
def test_that_the_daily_pages_fit_the_width_with_cards_on_a_phone_and_a_table_on_a_desktop(
    browser, server, username, viewport
):
    """Test that This week, its Log a touch dialog, Contacts, a contact's page (and its Log an interaction form)
    and Coverage never scroll sideways; that Contacts shows cards on a phone (name linking to the contact's page,
    phone as a tel: link) and the table on a desktop, and Coverage the branch's row as a list on a phone and the
    heatmap on a desktop (only the one that fits is drawn); and that a card's name opens the contact's page."""
    size = f"{viewport['width']}x{viewport['height']}"
    page = _signed_in(browser, server, username, viewport)

    _open(page, server, "home", "This week")  # (on a phone the menu is folded away: go by address)
    assert _fits_the_width(page), f"This week scrolls sideways at {size}"
    _shot(page, f"phone-home-{username}-{size}")
    page.locator('[class*="st-key-home_log_contact_"]').first.get_by_role("button", name="Log a touch").click()
    save = page.get_by_role("dialog").get_by_role("button", name="Save")
    expect(save).to_be_in_viewport()
    assert _fits_the_width(page), f"the Log a touch dialog scrolls sideways at {size}"
    _shot(page, f"phone-dialog-{username}-{size}")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)

    _open(page, server, "contacts", "Contacts")
    assert _fits_the_width(page), f"Contacts scrolls sideways at {size}"
    _shot(page, f"phone-contacts-{username}-{size}")
    first = _active_names(server, username, 1, 0)[0]
    table = page.get_by_test_id("stDataFrame")
    if viewport == PHONE:  # only the layout that fits is drawn (crm.ui.layout.on_phone)
        expect(table).to_have_count(0)
        card = _cards(page).first
        expect(card).to_be_visible()
        expect(card.get_by_test_id("stPageLink")).to_have_text(first)
        phone = card.locator('a[href^="tel:"]').first
        expect(phone).to_be_visible()
        assert (phone.get_attribute("href") or "").startswith("tel:+44")
        link = card.get_by_test_id("stPageLink").get_by_role("link")
        linked = re.search(r"contacts\?contact=(\d+)$", link.get_attribute("href") or "")
        assert linked and server.rows("SELECT name FROM contacts WHERE id = ?", [int(linked[1])]) == [{"name": first}]
        link.click()
        browserkit.wait_for_app(page)
        expect(page.get_by_role("heading", name=first, exact=True)).to_be_visible()
    else:
        expect(table).to_be_visible()
        expect(_cards(page)).to_have_count(0)

    contact = _busiest_contact(server, username)
    _open(page, server, f"contacts?contact={contact['id']}", contact["name"])
    assert _fits_the_width(page), f"a contact's page scrolls sideways at {size}"
    _shot(page, f"phone-contact-{username}-{size}")
    page.get_by_role("button", name="Log an interaction").click()
    expect(page.get_by_test_id("stPopoverBody").get_by_role("button", name="Save")).to_be_visible()
    assert _fits_the_width(page), f"a contact's Log an interaction form scrolls sideways at {size}"
    page.keyboard.press("Escape")

    _open(page, server, "coverage", "Coverage")
    assert _fits_the_width(page), f"Coverage scrolls sideways at {size}"
    heatmap = page.locator(".st-key-coverage_heatmap_chart")
    branch_row = page.locator(".st-key-coverage_branch_row")
    if viewport == PHONE:
        expect(branch_row.get_by_text("GP practice (required)")).to_be_visible()
        expect(heatmap).to_have_count(0)
    else:
        expect(heatmap.locator("canvas, svg").first).to_be_visible()
        expect(branch_row).to_have_count(0)
    _shot(page, f"phone-coverage-{username}-{size}")
    page.context.close()


def test_that_next_on_contacts_shows_the_next_page_of_names(browser, server):
    """Test that on a phone the Contacts list shows the first 50 active contacts of the lead's region by name,
    Next the following 50 (as the database orders them), and Previous the first again."""
    page = _signed_in(browser, server, LEAD, PHONE)
    _open(page, server, "contacts", "Contacts")
    first, second = _active_names(server, LEAD, 50, 0), _active_names(server, LEAD, 50, 50)
    assert len(first) == 50 and second
    names = _cards(page).get_by_test_id("stPageLink")
    # expect(...).to_have_text waits for the whole list: right after a rerun Streamlit still shows some stale cards
    expect(names).to_have_text(first)

    page.get_by_role("button", name="Next").click()
    browserkit.wait_for_app(page)
    expect(names.first).to_have_text(second[0])
    expect(names.first).to_be_in_viewport()  # the new page's start is brought into view, not left above
    expect(names).to_have_text(second)
    expect(page.get_by_text(re.compile(r"^Page 2 of \d+$"))).to_be_visible()

    page.get_by_role("button", name="Previous").click()
    browserkit.wait_for_app(page)
    expect(names).to_have_text(first)
    browserkit.assert_no_exception(page)
    page.context.close()


@pytest.mark.parametrize("viewport", SIZES, ids=SIZE_IDS)
def test_that_log_a_touch_from_who_to_call_saves_the_interaction(browser, server, viewport):
    """Test that each person under Coverage's "Who to call" has their name linking to their page and their phone
    as a tel: link, and that Log a touch then Save records a touch today, of the user's most used kind, with that
    person, in their branch, by the user."""
    [manager] = server.rows("SELECT id FROM users WHERE username = ?", [MANAGER])
    database = server.connect()
    try:
        kind = interactions.most_used_kind(database, users.get(database, manager["id"]))
    finally:
        database.close()
    where, params = _scope(server, MANAGER)
    [busiest] = server.rows(
        f"""SELECT t.label FROM contacts c JOIN organisations o ON o.id = c.organisation_id
            JOIN organisation_types t ON t.code = o.type_code
            WHERE {where} AND c.status = 'active' AND c.is_named_contact = 1
            GROUP BY t.code ORDER BY count(*) DESC, t.code LIMIT 1""",
        params,
    )
    page = _signed_in(browser, server, MANAGER, viewport)
    _open(page, server, "coverage", "Coverage")
    picker = page.get_by_role("combobox", name="Partner type", exact=True)
    picker.click()
    page.keyboard.type(busiest["label"])  # the list is long: typing narrows it to that type
    page.keyboard.press("Enter")
    expect(picker).to_have_value(busiest["label"])
    browserkit.wait_for_app(page)
    row = page.locator('[class*="st-key-coverage_person_"]').first
    expect(row).to_be_visible()
    contact_id = int(re.search(r"st-key-coverage_person_(\d+)", row.get_attribute("class") or "").group(1))
    [contact] = server.rows("SELECT name, branch_id, phone FROM contacts WHERE id = ?", [contact_id])
    expect(row.get_by_test_id("stPageLink")).to_have_text(contact["name"])
    expect(row.get_by_test_id("stPageLink").get_by_role("link")).to_have_attribute(
        "href", re.compile(rf"contacts\?contact={contact_id}$")
    )
    if contact["phone"]:
        expect(row.locator('a[href^="tel:"]').first).to_have_attribute(
            "href", re.compile(rf"^tel:{re.escape(contact['phone'])}(;ext=\d+)?$")
        )
    before = _touches(server, contact_id)

    row.get_by_role("button", name="Log a touch").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text(f"With {contact['name']}")).to_be_visible()
    save = dialog.get_by_role("button", name="Save")
    expect(save).to_be_in_viewport()
    assert _fits_the_width(page)
    save.click()

    expect(page.get_by_text(re.compile(r"^Logged: "))).to_be_visible()
    browserkit.assert_no_exception(page)
    [label] = server.rows("SELECT label FROM interaction_kinds WHERE code = ?", [kind])
    assert _touches(server, contact_id) == [
        *before,
        {
            "kind_code": kind,
            "occurred_on": clock.now().date().isoformat(),
            "summary": f"{label['label']} with {contact['name']}",
            "branch_id": contact["branch_id"],
            "created_by": manager["id"],
            "contact_id": contact_id,
        },
    ]
    page.context.close()


def _touches(server, contact_id: int) -> list[dict]:
    return server.rows(
        """SELECT i.kind_code, i.occurred_on, i.summary, i.branch_id, i.created_by, l.contact_id
           FROM interactions i JOIN interaction_contacts l ON l.interaction_id = i.id
           WHERE l.contact_id = ? ORDER BY i.id""",
        [contact_id],
    )
