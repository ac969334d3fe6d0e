"""Browser tests: Debian's Chromium, driven by Playwright, against a real `streamlit run` on a local port.

Only what a browser alone shows is tested here: signing in, a whole add-a-contact round trip through the
real widgets, and that a signed-out visitor opening a page address sees the sign-in form and no data.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from crm import branches, db, organisations, users
from crm.access import BRANCH_MANAGER
from crm.contacts import add as add_contact
from crm.ui.pages import PAGES
from tests import browserkit
from tests.browserkit import WAIT_MS, choose
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

ORGANISATION = "Hyde Park Surgery"
ORGANISATION_LABEL = "Hyde Park Surgery (GP practice, LS6 1AA)"
SEEDED_CONTACT = "Quincy Seeded"


class Server:
    def __init__(self, url: str, db_path: Path, branch_id: int, manager_id: int):
        self.url = url
        self.db_path = db_path
        self.branch_id = branch_id
        self.manager_id = manager_id


def _seed(db_path: Path) -> tuple[int, int]:
    """An administrator, one region and branch, its manager, an organisation, and one contact there."""
    database = db.connect(db_path)
    try:
        admin = users.create_first_admin(database, "ada", "Ada Admin", PASSWORD)
        region = branches.add_region(database, admin, "North")
        branch = branches.add_branch(database, admin, "Leeds", region)
        manager = users.add_user(
            database, admin, "manager.leeds", "Lee Leeds", BRANCH_MANAGER, PASSWORD, branch_id=branch
        )
        gp = organisations.add(
            database, admin, {"name": ORGANISATION, "type_code": "GP_PRACTICE", "postcode": "LS6 1AA"}
        )
        add_contact(
            database,
            admin,
            {"name": SEEDED_CONTACT, "organisation_id": gp, "branch_id": branch, "phone": "0113 496 0123"},
        )
    finally:
        database.close()
    return branch, manager.id


@contextmanager
def _streamlit(tmp: Path) -> Iterator[Server]:
    """`streamlit run app.py` on a free local port, on a newly seeded database in ``tmp``; stopped afterwards."""
    db_path = tmp / "crm.db"
    branch_id, manager_id = _seed(db_path)
    with browserkit.streamlit_server(db_path, tmp / "streamlit.log") as running:
        yield Server(running.url, db_path, branch_id, manager_id)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module's tests (they do not depend on what the others did)."""
    with _streamlit(tmp_path_factory.mktemp("browser")) as running:
        yield running


@pytest.fixture
def fresh_server(tmp_path):
    """A server of the test's own that no browser has visited yet."""
    with _streamlit(tmp_path) as running:
        yield running


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies, no storage) and one tab in it."""
    context = browser.new_context()
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    yield tab
    context.close()


def _wait_for_app(page: Page) -> None:
    browserkit.wait_for_app(page)


def _sign_in(page: Page, url: str, username: str) -> None:
    page.goto(url)
    page.get_by_role("textbox", name="User name").fill(username)
    page.get_by_role("textbox", name="Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible(timeout=WAIT_MS)


def test_that_a_branch_manager_adds_a_contact_and_sees_the_phone_number_in_national_format(page, server):
    """Test that, in a real browser, a branch manager signs in, adds a contact with a messy phone number on
    the Contacts page, and then sees the number as 0113 496 0777 (stored as E.164)."""
    _sign_in(page, server.url, "manager.leeds")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Contacts", exact=True).click()
    expect(page.get_by_role("heading", name="Contacts", exact=True)).to_be_visible()

    page.get_by_text("Add a contact", exact=True).click()
    search = page.get_by_label("Find organisation")
    search.fill("Hyde")
    search.press("Enter")
    picker = page.get_by_role("combobox", name="Organisation", exact=True)
    expect(page.get_by_text("1 organisation matches; choose one in the list below.")).to_be_visible()
    expect(picker).to_have_value("")  # nothing is chosen for the user, even the only match
    choose(page, "Organisation", ORGANISATION_LABEL)

    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Add contact"))
    form.get_by_label("Name", exact=True).fill("Tess Browser")
    form.get_by_label("Phone", exact=True).fill("+44 (0)113 496 0777")
    form.get_by_role("button", name="Add contact").click()

    expect(page.get_by_text("Added Tess Browser.")).to_be_visible()
    expect(page.get_by_role("heading", name="Tess Browser")).to_be_visible()
    expect(page.get_by_role("link", name="0113 496 0777", exact=True)).to_have_attribute("href", "tel:+441134960777")

    database = db.connect(server.db_path)
    try:
        rows = database.execute_returning_dicts(
            "SELECT name, phone, phone_ext, branch_id, created_by FROM contacts WHERE name = 'Tess Browser'"
        )
    finally:
        database.close()
    assert rows == [
        {
            "name": "Tess Browser",
            "phone": "+441134960777",
            "phone_ext": None,
            "branch_id": server.branch_id,
            "created_by": server.manager_id,
        }
    ]


@pytest.mark.parametrize("address", ["contacts", "users"])
def test_that_a_page_address_opened_while_signed_out_shows_only_the_sign_in_form(page, server, address):
    """Test that opening a page's address in a fresh browser, signed out, shows the sign-in form (with a
    password box) and none of the database's data."""
    page.goto(f"{server.url}/{address}")
    expect(page.locator("input[type=password]")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("textbox", name="User name")).to_be_visible()
    _wait_for_app(page)
    html = page.content()
    text = page.locator("body").inner_text()
    for seeded in (SEEDED_CONTACT, ORGANISATION, "Lee Leeds", "manager.leeds", "0113 496 0123"):
        assert seeded not in html
        assert seeded not in text


def test_that_a_reload_keeps_the_sign_in_until_the_user_signs_out(page, server):
    """Test that reloading the page after signing in keeps the user signed in on the same page (the session
    cookie), and that after Sign out a reload shows the sign-in form again."""
    _sign_in(page, server.url, "manager.leeds")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Contacts", exact=True).click()
    expect(page.get_by_role("heading", name="Contacts", exact=True)).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Contacts", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    page.reload()
    expect(page.get_by_role("textbox", name="Password", exact=True)).to_be_visible()
    _wait_for_app(page)
    assert SEEDED_CONTACT not in page.content()


def test_that_the_first_visit_to_a_page_address_shows_no_menu_before_sign_in(page, fresh_server):
    """Test that when the first request a new server gets is a page's address (a bookmark), the visitor sees
    the sign-in form and no menu of page names; and once signed in as a branch manager, the app's own menu
    (without the administrators' pages) and the Sign out button.

    Regression test: with the pages in a folder called pages/, Streamlit runs its old folder-based multipage
    mode until app.py has called st.navigation once, listing every file in pages/ in the sidebar.
    """
    page.goto(f"{fresh_server.url}/users")
    expect(page.get_by_role("textbox", name="Password", exact=True)).to_be_visible()
    _wait_for_app(page)
    expect(page.get_by_test_id("stSidebarNavLink")).to_have_count(0)

    page.get_by_role("textbox", name="User name").fill("manager.leeds")
    page.get_by_role("textbox", name="Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    links = page.get_by_test_id("stSidebarNav").get_by_role("link")
    expect(links.first).to_be_visible()
    titles = [text.splitlines()[-1] for text in links.all_inner_texts()]  # the first lines name the icon
    sections = ["Work", "Insight", "Admin"]  # the menu's groups; PAGES order within each
    listed = [spec for spec in PAGES if BRANCH_MANAGER in spec.roles]
    assert titles == [spec.title for spec in sorted(listed, key=lambda spec: sections.index(spec.section))]
