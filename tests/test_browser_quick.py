"""Browser tests of quick entry on This week (issue 12): "Log a touch" from a row, "Done" with the outcome and its
Undo, people as links (their page, tel:, mailto:), and the page and the dialog on a phone without sideways scroll.

Only a browser shows a dialog, where its Save button sits in the viewport, and whether a page scrolls sideways.
"""

import os
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from crm import clock, contacts, interactions, testimonials
from crm.access import COMMAND_LINE
from tests import browserkit
from tests.browserkit import DESKTOP, PHONE

pytestmark = pytest.mark.browser

MANAGER = "manager.leedsnorth"
LONG_AGO = date(2020, 1, 6)
ROW_HEIGHT = 35  # st.dataframe's default row (and header) height, in CSS pixels
# Screenshots land here for a person to look at (never committed); a temporary folder unless set.
SHOTS = os.environ.get("CRM_SCREENSHOTS")


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _manager(server) -> dict:
    return server.rows("SELECT id, branch_id FROM users WHERE username = ?", [MANAGER])[0]


def _lapsed_contact(server, name: str, *, follow_up_action: str | None = None) -> tuple[int, int]:
    """A named contact of the manager's branch last touched in 2020 (so at the top of the lapsing list), with a
    phone and an email; returns (contact id, id of that old interaction, which carries the follow-up if any)."""
    branch_id = _manager(server)["branch_id"]
    database = server.connect()
    try:
        organisation_id = database.execute(
            "SELECT organisation_id FROM contacts WHERE branch_id = ? LIMIT 1", [branch_id]
        ).fetchone()[0]
        contact_id = contacts.add(
            database,
            COMMAND_LINE,
            {
                "name": name,
                "organisation_id": organisation_id,
                "branch_id": branch_id,
                "job_title": "Practice Manager",
                "phone": "0113 496 0123",
                "email": f"{name.split()[0].lower()}@example.org",
                "is_named_contact": True,
            },
            allow_duplicate=True,  # every test's contact shares the phone number
        )
        old = interactions.log(
            database,
            COMMAND_LINE,
            {
                "branch_id": branch_id,
                "occurred_on": LONG_AGO,
                "kind_code": "VISIT",
                "summary": "Introductory visit",
                "contact_ids": [contact_id],
                **(
                    {"follow_up_on": date(2020, 1, 10), "follow_up_action": follow_up_action}
                    if follow_up_action
                    else {}
                ),
            },
        )
        return contact_id, old
    finally:
        database.close()


def _this_week(browser, server, viewport: dict) -> Page:
    page = browserkit.new_tab(browser, viewport=viewport)
    browserkit.sign_in(page, server.url, MANAGER)
    expect(page.get_by_role("heading", name="This week")).to_be_visible()
    browserkit.assert_no_exception(page)
    return page


def _button(page: Page, key: str):
    return page.locator(f".st-key-{key}").get_by_role("button")


def _dialog(page: Page):
    return page.get_by_role("dialog")


def _dialog_text(page: Page) -> str:
    """The dialog's message as read (md() puts an invisible word joiner after ":" and "@" against autolinks)."""
    message = _dialog(page).get_by_test_id("stMarkdownContainer").filter(has_text="cannot be undone")
    return message.inner_text().replace("\u2060", "")


def _no_sideways_scroll(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _assert_in_viewport(page: Page, locator, viewport: dict) -> None:
    box = locator.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["y"] >= 0, box
    assert box["x"] + box["width"] <= viewport["width"] and box["y"] + box["height"] <= viewport["height"], box


def _touches(server, contact_id: int) -> list[dict]:
    return server.rows(
        """SELECT i.kind_code, i.occurred_on, i.summary, i.branch_id, i.created_by, i.follow_up_on
           FROM interactions i JOIN interaction_contacts l ON l.interaction_id = i.id
           WHERE l.contact_id = ? ORDER BY i.id""",
        [contact_id],
    )


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_that_two_clicks_from_this_week_save_a_phone_call(browser, server, shots, viewport):
    """Test that "Log a touch" on a lapsing contact's row opens the dialog with a phone call today chosen and
    Save in view, and that Save (the second click) records it for that contact, branch and user."""
    name = f"Quinn Quick {viewport['width']}"
    contact_id, _ = _lapsed_contact(server, name)
    manager = _manager(server)
    page = _this_week(browser, server, viewport)
    page.screenshot(path=shots / f"quick-home-top-{viewport['width']}.png")
    clicks = 0

    _button(page, f"home_log_contact_{contact_id}").click()
    clicks += 1
    dialog = _dialog(page)
    expect(dialog.get_by_text(f"With {name}")).to_be_visible()
    expect(dialog.get_by_role("combobox", name="Kind")).to_have_value("Phone call")
    expect(dialog.get_by_test_id("stDateInput").first.locator('input[type="date"]')).to_have_value(
        clock.now().date().isoformat()
    )
    save = dialog.get_by_role("button", name="Save")
    expect(save).to_be_visible()
    _assert_in_viewport(page, save, viewport)
    assert _no_sideways_scroll(page)
    page.screenshot(path=shots / f"quick-dialog-{viewport['width']}.png")
    save.click()
    clicks += 1

    expect(page.get_by_text(f"Logged: Phone call with {name}.")).to_be_visible()
    browserkit.assert_no_exception(page)
    assert clicks == 2
    today = clock.now().date().isoformat()
    assert _touches(server, contact_id)[1:] == [
        {
            "kind_code": "PHONE_CALL",
            "occurred_on": today,
            "summary": f"Phone call with {name}",
            "branch_id": manager["branch_id"],
            "created_by": manager["id"],
            "follow_up_on": None,
        }
    ]


def test_that_done_logs_the_outcome_and_undo_restores_the_follow_up(browser, server):
    """Test that "Done" asks for the outcome, then logs it as a touch and completes the follow-up; Undo then
    deletes that touch and reopens the follow-up."""
    contact_id, follow_up = _lapsed_contact(server, "Dana Done", follow_up_action="Send the rota")
    manager = _manager(server)
    page = _this_week(browser, server, DESKTOP)

    _button(page, f"home_done_{follow_up}").click()
    dialog = _dialog(page)
    expect(dialog.get_by_text("Follow-up: Send the rota")).to_be_visible()
    dialog.get_by_role("textbox", name="Outcome").fill("Sent the rota; she will share it")
    dialog.get_by_role("button", name="Save").click()

    expect(page.get_by_text("Follow-up done: Send the rota. Logged: Sent the rota; she will share it.")).to_be_visible()
    today = clock.now().date().isoformat()
    assert _touches(server, contact_id)[1:] == [
        {
            "kind_code": "PHONE_CALL",
            "occurred_on": today,
            "summary": "Sent the rota; she will share it",
            "branch_id": manager["branch_id"],
            "created_by": manager["id"],
            "follow_up_on": None,
        }
    ]
    assert server.rows("SELECT follow_up_done_on FROM interactions WHERE id = ?", [follow_up]) == [
        {"follow_up_done_on": today}
    ]
    expect(_button(page, f"home_done_{follow_up}")).to_have_count(0)

    page.get_by_role("button", name="Undo").click()

    expect(
        page.get_by_text("Undone: the follow-up “Send the rota” is open again and the touch is deleted.")
    ).to_be_visible()
    assert len(_touches(server, contact_id)) == 1
    assert server.rows("SELECT follow_up_done_on FROM interactions WHERE id = ?", [follow_up]) == [
        {"follow_up_done_on": None}
    ]
    expect(_button(page, f"home_done_{follow_up}")).to_be_visible()
    browserkit.assert_no_exception(page)


def test_that_people_on_this_week_link_to_their_page_phone_and_email(browser, server):
    """Test that a lapsing contact's name links to their page on Contacts, their phone is a tel: link and their
    email a mailto: link; following the name opens their page."""
    contact_id, _ = _lapsed_contact(server, "Lena Link")
    page = _this_week(browser, server, DESKTOP)
    row = page.locator(f".st-key-home_contact_{contact_id}")

    expect(row.get_by_role("link", name="0113 496 0123")).to_have_attribute("href", "tel:+441134960123")
    email = row.locator('a[href="mailto:lena@example.org"]')
    expect(email).to_have_count(1)
    assert email.inner_text().replace("\u2060", "") == "lena@example.org"  # md() keeps it from autolinking
    name = row.get_by_role("link", name="Lena Link")
    expect(name).to_have_attribute("href", f"contacts?contact={contact_id}")
    name.click()

    browserkit.wait_for_app(page)
    expect(page.get_by_role("heading", name="Lena Link")).to_be_visible()
    browserkit.assert_no_exception(page)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_that_a_follow_up_row_shows_what_to_do_who_with_links_and_its_buttons(browser, server, viewport):
    """Test that a follow-up's row on This week shows Overdue, the date and what to do after what; the person's
    name links to their page on Contacts, their phone is a tel: link and their email a mailto: link; "Log a
    touch" and "Done" sit beside the text on a desktop and below it, full width, on a phone; following the name
    opens their page in the same tab (the app's own navigation, still signed in)."""
    contact_id, follow_up = _lapsed_contact(server, "Fay Follow", follow_up_action="Send the leaflet")
    page = _this_week(browser, server, viewport)
    row = page.locator(f".st-key-home_follow_up_{follow_up}")

    expect(row.get_by_test_id("stMarkdownContainer").first).to_have_text(
        "Overdue · 10 Jan 2020 · Send the leaflet After: Introductory visit (6 Jan 2020)"
    )
    expect(row.get_by_role("link", name="0113 496 0123")).to_have_attribute("href", "tel:+441134960123")
    expect(row.locator('a[href="mailto:fay@example.org"]')).to_have_count(1)
    name = row.get_by_test_id("stPageLink").get_by_role("link", name="Fay Follow")
    expect(name).to_have_attribute("href", f"contacts?contact={contact_id}")
    log, done = _button(page, f"home_log_follow_up_{follow_up}"), _button(page, f"home_done_{follow_up}")
    expect(log).to_have_text("add_callLog a touch")  # the icon's name is its text (a font ligature)
    expect(done).to_have_text("checkDone")
    text, log_box, done_box = name.bounding_box(), log.bounding_box(), done.bounding_box()
    assert text and log_box and done_box
    if viewport == PHONE:  # below the text, one above the other, as wide as each other
        assert log_box["y"] > text["y"] + text["height"] and done_box["y"] > log_box["y"] + log_box["height"]
        assert log_box["width"] == done_box["width"] > viewport["width"] / 2
    else:  # to the right of the text
        assert min(log_box["x"], done_box["x"]) > text["x"] + text["width"]
    assert _no_sideways_scroll(page)

    name.click()
    browserkit.wait_for_app(page)
    expect(page.get_by_role("heading", name="Fay Follow")).to_be_visible()
    assert page.url == f"{server.url}/contacts?contact={contact_id}"
    assert page.context.pages == [page]  # no other tab was opened
    browserkit.assert_no_exception(page)
    page.context.close()


def test_that_this_week_on_a_phone_does_not_scroll_sideways(browser, server, shots):
    """Test that This week at 390x844 fits the width (rows stack), and so does the Done dialog, Save in view."""
    _, follow_up = _lapsed_contact(server, "Pia Phone", follow_up_action="Book a visit")
    page = _this_week(browser, server, PHONE)
    assert _no_sideways_scroll(page)
    page.screenshot(path=shots / "quick-home-390.png", full_page=True)

    _button(page, f"home_done_{follow_up}").click()
    save = _dialog(page).get_by_role("button", name="Save")
    expect(save).to_be_visible()
    assert _no_sideways_scroll(page)
    _assert_in_viewport(page, save, PHONE)
    page.screenshot(path=shots / "quick-done-390.png")


def test_that_a_contact_opens_by_clicking_their_name_in_the_contacts_list(browser, server):
    """Test that the Contacts list shows each name as a link to the contact's page (a table link opens in a tab
    of its own, still signed in), not only a row checkbox."""
    contact_id, _ = _lapsed_contact(server, "Nora Name")
    page = _this_week(browser, server, DESKTOP)
    browserkit.open_page(page, "Contacts")
    page.get_by_test_id("stMainBlockContainer").get_by_role("textbox", name="Search").fill("Nora Name")
    page.keyboard.press("Enter")
    expect(page.get_by_text("1 contact", exact=True)).to_be_visible()
    box = page.get_by_test_id("stDataFrame").bounding_box()
    assert box is not None
    name_cell = (box["x"] + 60, box["y"] + ROW_HEIGHT * 1.5)  # the first row's Name cell, on the name

    page.mouse.move(*name_cell)  # the table makes a link of a cell's text under the pointer
    with page.context.expect_page() as opened:
        page.mouse.click(*name_cell)

    tab = opened.value
    assert tab.url == f"{server.url}/contacts?contact={contact_id}#Nora%20Name"
    browserkit.wait_for_app(tab)
    expect(tab.get_by_role("heading", name="Nora Name")).to_be_visible()
    browserkit.assert_no_exception(tab)


def test_that_the_admin_pages_show_in_the_menu_without_unfolding_it(browser, server):
    """Test that an administrator's menu is grouped Work, Insight, Admin and shows every admin page at once."""
    page = browserkit.new_tab(browser, viewport=DESKTOP)
    browserkit.sign_in(page, server.url, "ada")
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_test_id("stSidebarNavViewButton")).to_have_count(0)
    for section in ("Work", "Insight", "Admin"):
        expect(nav.get_by_text(section, exact=True)).to_be_visible()
    for title in ("Users", "Regions and branches", "Partner types", "GP directory import", "Backups"):
        expect(nav.get_by_role("link", name=title, exact=True)).to_be_visible()


def test_that_deleting_an_interaction_asks_first_naming_it_as_plain_text(browser, server):
    """Test that Delete on an interaction opens a dialog naming it as typed (markdown shown as plain text);
    Cancel keeps it, "Yes, delete" deletes it."""
    contact_id, old = _lapsed_contact(server, "Del Delete")
    database = server.connect()
    try:
        database.execute("UPDATE interactions SET summary = ? WHERE id = ?", ["**Intro** [visit](https://x.test)", old])
    finally:
        database.close()
    page = _this_week(browser, server, DESKTOP)
    page.goto(f"{server.url}/interactions?interaction={old}")
    browserkit.wait_for_app(page)
    page.get_by_text("Delete this interaction").click()
    question = "Delete the interaction “**Intro** [visit](https://x.test), 6 Jan 2020”? This cannot be undone."

    page.get_by_role("button", name="Delete", exact=True).click()
    expect(_dialog(page).get_by_role("button", name="Yes, delete")).to_be_visible()
    assert _dialog_text(page) == question
    _dialog(page).get_by_role("button", name="Cancel").click()
    expect(_dialog(page)).to_have_count(0)
    assert server.rows("SELECT count(*) AS n FROM interactions WHERE id = ?", [old]) == [{"n": 1}]

    # Cancel reran the page, which may fold the expander again, and a click that lands while that rerun draws is
    # lost: once the script has finished, open it if need be and press Delete until the question is asked.
    browserkit.wait_for_app(page)
    delete = page.get_by_role("button", name="Delete", exact=True)
    yes = _dialog(page).get_by_role("button", name="Yes, delete")
    for _ in range(3):
        if not delete.is_visible():
            page.get_by_text("Delete this interaction").click()
        delete.click()
        try:
            expect(yes).to_be_visible(timeout=5000)
            break
        except AssertionError:
            browserkit.wait_for_app(page)
    yes.click()

    expect(page.get_by_text("Interaction deleted.")).to_be_visible()
    assert server.rows("SELECT count(*) AS n FROM interactions WHERE id = ?", [old]) == [{"n": 0}]
    browserkit.assert_no_exception(page)


def test_that_deleting_a_testimonial_asks_first_naming_it_as_plain_text(browser, server):
    """Test that Delete on a testimonial opens a dialog quoting it as typed; only "Yes, delete" deletes it."""
    contact_id, _ = _lapsed_contact(server, "Tess Testimonial")
    database = server.connect()
    try:
        testimonial_id = testimonials.add(
            database,
            COMMAND_LINE,
            {
                "branch_id": _manager(server)["branch_id"],
                "quote": "_Brilliant_ <b>care</b>",
                "contact_id": contact_id,
                "source": "email",
            },
        )
    finally:
        database.close()
    page = _this_week(browser, server, DESKTOP)
    page.goto(f"{server.url}/testimonials?testimonial={testimonial_id}")
    browserkit.wait_for_app(page)
    page.get_by_text("Delete this testimonial").click()

    page.get_by_role("button", name="Delete", exact=True).click()
    question = "Delete the testimonial “_Brilliant_ <b>care</b>”? This cannot be undone."
    expect(_dialog(page).get_by_role("button", name="Yes, delete")).to_be_visible()
    assert _dialog_text(page) == question
    assert server.rows("SELECT count(*) AS n FROM testimonials WHERE id = ?", [testimonial_id]) == [{"n": 1}]
    _dialog(page).get_by_role("button", name="Yes, delete").click()

    expect(page.get_by_text("Testimonial deleted.")).to_be_visible()
    assert server.rows("SELECT count(*) AS n FROM testimonials WHERE id = ?", [testimonial_id]) == [{"n": 0}]
    browserkit.assert_no_exception(page)


def test_that_the_dialog_asks_before_saving_what_looks_like_an_nhs_number(browser, server):
    """Test that a summary holding what looks like an NHS number gets the warning inside the dialog (the dialog
    stays open, nothing saved), and "save anyway" then saves it."""
    contact_id, _ = _lapsed_contact(server, "Nia Number")
    page = _this_week(browser, server, DESKTOP)
    _button(page, f"home_log_contact_{contact_id}").click()
    dialog = _dialog(page)
    dialog.get_by_role("textbox", name="Summary").fill("Asked about 943 476 5919")
    dialog.get_by_role("button", name="Save").click()

    expect(dialog.get_by_text("Summary: contains what looks like an NHS number.", exact=False)).to_be_visible()
    assert len(_touches(server, contact_id)) == 1
    dialog.get_by_role("button", name="It is not client data: save anyway").click()

    expect(page.get_by_text("Logged: Asked about 943 476 5919.")).to_be_visible()
    assert [t["summary"] for t in _touches(server, contact_id)] == ["Introductory visit", "Asked about 943 476 5919"]
    browserkit.assert_no_exception(page)
