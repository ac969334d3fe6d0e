"""Browser test of Retention review (issue 11, item 1): a row chosen in the real table stays the person acted on,
even when a colleague deals with someone above it before the user presses Erase.

AppTest sets a selection by writing session state; only a browser shows what the table itself sends back when its
rows change under a selection.
"""

from datetime import date

import pytest
from playwright.sync_api import Page, expect

from crm import contacts, db, interactions, organisations, privacy, retention
from crm.access import COMMAND_LINE
from tests.browserkit import WAIT_MS
from tests.test_browser import _sign_in, _streamlit, _wait_for_app

pytestmark = pytest.mark.browser

ROW_HEIGHT = 35  # st.dataframe's default row (and header) height, in CSS pixels
NAMES = ("Ann Above", "Bob Chosen", "Cat Below")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with _streamlit(tmp_path_factory.mktemp("browser_retention")) as running:
        yield running


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    yield tab
    context.close()


def _due_contacts(db_path) -> list[int]:
    """Ann, Bob and Cat of the server's branch, last touched in 2020: due for review, listed in that order."""
    database = db.connect(db_path)
    try:
        branch_id = database.execute("SELECT id FROM branches").fetchone()[0]
        surgery = organisations.add(database, COMMAND_LINE, {"name": "Retention Surgery", "type_code": "GP_PRACTICE"})
        ids = []
        for name in NAMES:
            contact_id = contacts.add(
                database,
                COMMAND_LINE,
                {
                    "name": name,
                    "organisation_id": surgery,
                    "branch_id": branch_id,
                    "email": f"{name.split()[0].lower()}@example.org",
                },
            )
            interactions.log(
                database,
                COMMAND_LINE,
                {
                    "branch_id": branch_id,
                    "occurred_on": date(2020, 1, 6),
                    "kind_code": "PHONE_CALL",
                    "summary": "Call",
                    "contact_ids": [contact_id],
                },
            )
            ids.append(contact_id)
        return ids
    finally:
        database.close()


def _click_row(page: Page, row: int) -> None:
    """Tick a row's selection box in the table (drawn on a canvas: clicked by position)."""
    grid = page.get_by_test_id("stDataFrame").first
    expect(grid).to_be_visible()
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 15, box["y"] + ROW_HEIGHT * (row + 1) + ROW_HEIGHT / 2)


def test_that_erase_acts_on_the_chosen_row_after_a_colleague_keeps_the_one_above(page, server):
    """Test that, in a real browser, a manager who ticks Bob (the second row), then erases after a colleague kept
    Ann (the first row), is asked "Erase Bob Chosen?" and erases Bob, while Cat, now in Bob's row, is untouched."""
    ann, bob, cat = _due_contacts(server.db_path)
    _sign_in(page, server.url, "manager.leeds")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Retention review", exact=True).click()
    expect(page.get_by_role("heading", name="Retention review", exact=True)).to_be_visible()
    _wait_for_app(page)

    _click_row(page, 1)
    expect(page.get_by_role("heading", name="Bob Chosen", exact=True)).to_be_visible()

    database = db.connect(server.db_path)
    try:
        retention.keep(database, COMMAND_LINE, ann, "Chairs the discharge group", "2030-01-01")
        cat_before = database["contacts"].get(cat)
    finally:
        database.close()

    page.get_by_role("tab", name="Erase").click()
    page.get_by_role("button", name="Erase", exact=True).click()
    expect(page.get_by_text("Erase Bob Chosen? This cannot be undone.")).to_be_visible()
    page.get_by_role("button", name="Yes, erase").click()
    expect(page.get_by_text("Erased.", exact=True)).to_be_visible()
    _wait_for_app(page)

    database = db.connect(server.db_path)
    try:
        assert database["contacts"].get(bob)["name"] == privacy.ERASED_NAME
        assert database["contacts"].get(cat) == cat_before
        assert database["contacts"].get(ann)["retention_reason"] == "Chairs the discharge group"
    finally:
        database.close()
