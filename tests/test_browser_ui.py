"""Browser tests for what people press (issue 10, defects 2 to 6): a heatmap click drilling down to who to call,
the organisation picker choosing nothing for the user, organisation search as people type it, every page address
answering for every role, and screens that must not stay stale.

One `streamlit run app.py` on a copy of the demo database serves the module; the set-up screen needs a server on
an empty database of its own.
"""

import pytest
from playwright.sync_api import Page, expect

from crm import dates, organisations, users
from crm.access import ADMIN, BRANCH_MANAGER, REGIONAL_LEAD
from crm.ui import pages
from tests.browserkit import (
    WAIT_MS,
    assert_no_exception,
    open_page,
    retry,
    sign_in,
    streamlit_server,
    wait_for_app,
)
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

LEAD = "lead.northwest"
MANAGER = "manager.manchestercentral"
ACCOUNTS = {ADMIN: "ada", REGIONAL_LEAD: LEAD, BRANCH_MANAGER: MANAGER}


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server


def actor(database, username: str):
    """The demo account ``username`` as the app sees it."""
    [(user_id,)] = database.execute("SELECT id FROM users WHERE username = ?", [username]).fetchall()
    return users.get(database, user_id)


def assert_no_page_not_found(page: Page) -> None:
    """Streamlit's own "Page not found" dialog is not on screen."""
    # (The dialog comes with the navigation message, before the page's content: callers wait for the content.)
    assert page.get_by_text("Page not found").count() == 0, page.locator("body").inner_text()[:500]


# ------------------------------------------------------------------------------------------ 2. heatmap drill-down


def test_that_clicking_a_heatmap_cell_lists_that_branchs_named_contacts_of_that_type(tab, server):
    """Test that a regional lead who clicks a heatmap cell (not the first branch, not GP practices) sees under
    "Who to call" that branch's active named contacts at organisations of that partner type, and no others.

    Regression (issue 10, defect 2): the click highlighted the cell and reran, but "Who to call" stayed on the
    first branch and GP practices (the pickers are keyed widgets, which ignore a changed index)."""
    [lead] = server.rows("SELECT region_id FROM users WHERE username = ?", [LEAD])
    region_id = lead["region_id"]
    social = server.rows(
        """
        SELECT b.id AS branch_id, b.name AS branch, c.name
        FROM contacts c JOIN branches b ON b.id = c.branch_id JOIN organisations o ON o.id = c.organisation_id
        WHERE b.region_id = ? AND o.type_code = 'LA_SOCIAL_CARE' AND c.status = 'active' AND c.is_named_contact = 1
        ORDER BY b.name DESC, c.name
        """,
        [region_id],
    )
    branch = social[0]["branch"]  # the last branch by name: never the one the pickers start on
    expected = sorted(r["name"] for r in social if r["branch"] == branch)
    first_branch_gp = {
        r["name"]
        for r in server.rows(
            """
            SELECT c.name FROM contacts c JOIN branches b ON b.id = c.branch_id
            JOIN organisations o ON o.id = c.organisation_id
            WHERE b.region_id = ? AND o.type_code = 'GP_PRACTICE' AND c.status = 'active' AND c.is_named_contact = 1
            """,
            [region_id],
        )
    }
    assert expected and not set(expected) & first_branch_gp

    sign_in(tab, server.url, LEAD)  # a regional lead lands on Coverage
    expect(tab.get_by_role("heading", name="Coverage", exact=True)).to_be_visible()
    cell = tab.locator(f'path[aria-label^="partner_type: Council adult social care; branch: {branch};"]')
    expect(cell).to_have_count(1)
    cell.click(position={"x": 4, "y": 4})  # a corner: the cell's text label sits in the middle
    wait_for_app(tab)

    expect(tab.get_by_role("combobox", name="Branch", exact=True).last).to_have_value(branch)
    expect(tab.get_by_role("combobox", name="Partner type", exact=True)).to_have_value("Council adult social care")
    # Exactly those people: one row each under "Who to call", their name a link to their page.
    rows = tab.locator('[class*="st-key-coverage_person_"]')
    expect(rows).to_have_count(len(expected))
    assert sorted(rows.get_by_test_id("stPageLink").all_inner_texts()) == expected
    assert_no_exception(tab)


# ---------------------------------------------------------------------- 3 and 4. the organisation picker and search


def test_that_adding_a_contact_needs_an_organisation_chosen_and_ot_finds_the_branchs_own_teams_first(tab, server):
    """Test that Add a contact starts with no organisation chosen; saving with only a name says "Organisation:
    choose one from the directory." and files nothing; typing "OT" lists community therapy teams with the
    branch's own patch first; the chosen one is where the contact is filed.

    Regression (issue 10, defects 3 and 4): the picker started on the directory's first organisation, so a
    contact with only a name was filed there; and "OT" found nothing."""
    database = server.connect()
    try:
        manager = actor(database, MANAGER)
        found = organisations.search(database, "OT", actor=manager)
    finally:
        database.close()
    assert found[0]["in_patch"] and {o["type_code"] for o in found} == {"COMMUNITY_THERAPY"}
    first = found[0]
    first_label = f"{first['name']} ({first['type_label']}, {first['postcode']})"

    sign_in(tab, server.url, MANAGER)
    open_page(tab, "Contacts")
    tab.get_by_text("Add a contact", exact=True).click()
    picker = tab.get_by_role("combobox", name="Organisation", exact=True)
    expect(picker).to_have_value("")
    form = tab.get_by_test_id("stForm").filter(has=tab.get_by_role("button", name="Add contact"))
    form.get_by_label("Name", exact=True).fill("Nora Nochoice")
    form.get_by_role("button", name="Add contact").click()
    expect(tab.get_by_text("Organisation: choose one from the directory.", exact=True)).to_be_visible()
    assert server.rows("SELECT id FROM contacts WHERE name = 'Nora Nochoice'") == []

    search = tab.get_by_label("Find organisation")
    search.fill("OT")
    search.press("Enter")
    expect(tab.get_by_text(f"{len(found)} organisations match; choose one in the list below.")).to_be_visible()
    expect(picker).to_have_value("")
    wait_for_app(tab)  # a box clicked while the script still runs can be redrawn, and its list closed, under us
    picker.click()
    options = tab.get_by_role("listbox").get_by_role("option")
    expect(options).to_have_count(len(found))
    expect(options.first).to_have_text(first_label)
    options.first.click()
    expect(picker).to_have_value(first_label)
    form.get_by_role("button", name="Add contact").click()

    expect(tab.get_by_text("Added Nora Nochoice.")).to_be_visible()
    assert server.rows(
        "SELECT c.organisation_id, u.username FROM contacts c JOIN users u ON u.id = c.created_by "
        "WHERE c.name = 'Nora Nochoice'"
    ) == [{"organisation_id": first["id"], "username": MANAGER}]


# ------------------------------------------------------------------------------------------------ 5. page addresses


def check_address(page: Page, spec: pages.PageSpec, role: str) -> None:
    """The page at this address: its own content for a role that may see it, a plain refusal otherwise; never
    Streamlit's "Page not found"."""
    expect(page.get_by_role("heading", name=spec.title, exact=True)).to_be_visible()
    wait_for_app(page)
    if role in spec.roles:
        expect(page.get_by_text(pages.refusal(spec))).to_have_count(0)
    else:
        expect(page.get_by_text(pages.refusal(spec), exact=True)).to_be_visible()
    assert_no_page_not_found(page)
    assert_no_exception(page)


@pytest.mark.parametrize("role", [ADMIN, REGIONAL_LEAD, BRANCH_MANAGER])
def test_that_every_page_address_opens_for_every_role(tab, server, role):
    """Test that, signed in, every page's address opened directly shows that page (or, for a page the role may
    not see, who it is for), never Streamlit's "Page not found".

    Regression (issue 10, defect 5): the landing page was the default page, whose address is the root, so
    /coverage was "Page not found" for regional leads and /home for everyone else; pages of other roles too."""
    sign_in(tab, server.url, ACCOUNTS[role])
    for spec in pages.PAGES:
        tab.goto(f"{server.url}/{spec.url_path}")
        check_address(tab, spec, role)


@pytest.mark.parametrize(("role", "address"), [(ADMIN, "home"), (REGIONAL_LEAD, "coverage"), (BRANCH_MANAGER, "users")])
def test_that_signing_in_at_a_page_address_never_shows_page_not_found(tab, server, role, address):
    """Test that signing in on the form shown at a page's address (one that is not the role's start page) ends
    on a page without "Page not found", and that the address then opens: the page, or who it is for."""
    sign_in(tab, server.url, ACCOUNTS[role], path=address)
    assert_no_page_not_found(tab)
    assert_no_exception(tab)
    spec = next(p for p in pages.PAGES if p.url_path == address)
    tab.goto(f"{server.url}/{address}")
    check_address(tab, spec, role)


# --------------------------------------------------------------------------------------------- 6. stale screens


@pytest.fixture
def empty_server(tmp_path):
    """A server on a database with no users yet (the set-up screen)."""
    with streamlit_server(tmp_path / "crm.db", tmp_path / "streamlit.log") as running:
        yield running


def test_that_setting_up_clears_the_passwords_differ_error_and_records_the_administrators_sign_in(tab, empty_server):
    """Test that on the set-up screen a "passwords differ" error is gone once the passwords match and the demo
    data is loading, and that the administrator then finds their own last sign-in on the Users page.

    Regression (issue 10, defect 6): the error stayed on screen under the "Loading demo data..." spinner, and
    the Users page said "Last sign-in: Never" for the administrator who had just set up and was signed in."""
    tab.goto(empty_server.url)
    tab.get_by_role("textbox", name="Administrator user name").fill("ada")
    tab.get_by_role("textbox", name="Full name").fill("Ada Admin")
    tab.get_by_role("textbox", name="Password", exact=True).fill(PASSWORD)
    tab.get_by_role("textbox", name="Password again").fill(PASSWORD + "x")
    tab.get_by_role("button", name="Create administrator").click()
    differ = tab.get_by_text("Password again: the two passwords differ.")
    expect(differ).to_be_visible()

    tab.get_by_role("textbox", name="Password again").fill(PASSWORD)
    tab.get_by_text("Load demo data", exact=False).click()
    tab.get_by_role("button", name="Create administrator").click()
    expect(tab.get_by_text("Loading demo data...")).to_be_visible()
    assert not differ.is_visible()  # at once, not eventually: not while the demo data loads
    expect(tab.get_by_role("button", name="Sign out")).to_be_visible(timeout=4 * WAIT_MS)

    assert retry(lambda: empty_server.rows("SELECT last_sign_in FROM users WHERE username = 'ada'")[0]["last_sign_in"])
    [ada] = empty_server.rows("SELECT last_sign_in FROM users WHERE username = 'ada'")
    open_page(tab, "Users")
    grid = tab.locator("[role=grid]").filter(has_text="Last sign-in")
    row = grid.locator("tbody tr").filter(has_text="Ada Admin")  # the grid's accessible (hidden) table
    expect(row).to_contain_text(dates.moment(ada["last_sign_in"]))
    expect(row).not_to_contain_text("Never")
