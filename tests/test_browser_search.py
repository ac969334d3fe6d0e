"""Browser test of the sidebar search box: a real `streamlit run app.py` on the demo data, driven by Chromium.

A branch manager types words from a contact, an organisation, an interaction and a testimonial of their branch;
each is listed with its kind, and picking it opens it on its own page. Another branch's contact is not found.
"""

import re

import pytest
from playwright.sync_api import expect

from crm import db, search, users
from tests.browserkit import new_tab, sign_in, wait_for_app

pytestmark = pytest.mark.browser

MANAGER = "manager.manchestercentral"


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server


def records_to_find(server) -> tuple[list[tuple[str, str, str]], str]:
    """(kind, words to type, title shown) for one record of each kind in the manager's branch, checked to come
    first in the search (crm.search), and the name of a contact in another branch only."""
    database = db.connect(server.db_path)
    try:
        manager = users.get(
            database, database.execute("SELECT id FROM users WHERE username = ?", [MANAGER]).fetchone()[0]
        )
        mine = manager.branch_id
        candidates = {
            "contact": "SELECT id, name FROM contacts WHERE branch_id = ? ORDER BY id",
            "organisation": "SELECT o.id, o.name FROM organisations o WHERE o.id IN "
            "(SELECT organisation_id FROM contacts WHERE branch_id = ?) ORDER BY o.id",
            "interaction": "SELECT id, summary FROM interactions WHERE branch_id = ? ORDER BY id DESC",
            "testimonial": "SELECT id, quote FROM testimonials WHERE branch_id = ? ORDER BY id DESC",
        }
        chosen = []
        for kind, sql in candidates.items():
            for record_id, text in database.execute(sql, [mine]).fetchall():
                words = " ".join(reversed(search.words(text)[:4]))  # typed in another order
                first = search.find(database, manager, words)[0]
                if (first["kind"], first["id"]) == (kind, record_id):
                    chosen.append((kind, words, first["title"]))
                    break
        elsewhere = database.execute(
            "SELECT name FROM contacts WHERE branch_id != ? AND name NOT IN "
            "(SELECT name FROM contacts WHERE branch_id = ?) ORDER BY id LIMIT 1",
            [mine, mine],
        ).fetchone()[0]
    finally:
        database.close()
    assert [kind for kind, _, _ in chosen] == list(search.KINDS)
    return chosen, elsewhere


def test_the_search_box_finds_each_kind_and_opens_it(server, browser):
    """Test that the sidebar search box lists a contact, an organisation, an interaction and a testimonial of the
    manager's branch with their kind, that picking each opens it on its page, and that a contact of another
    branch is not found."""
    chosen, elsewhere = records_to_find(server)
    page = new_tab(browser)
    sign_in(page, server.url, MANAGER)
    sidebar = page.get_by_test_id("stSidebar")
    box = sidebar.get_by_role("textbox", name="Search")
    for kind, words, title in chosen:
        box.fill(words)
        box.press("Enter")
        wait_for_app(page)
        link = sidebar.get_by_role("link", name=title).first
        expect(link).to_be_visible()
        expect(sidebar.get_by_text(f"{search.KINDS[kind]} ·").first).to_be_visible()
        link.click()
        expect(page).to_have_url(re.compile(rf"/{search.PAGES[kind][6:-3]}\?{kind}=\d+$"))
        wait_for_app(page)
        main = page.get_by_test_id("stMain")
        expect(main.get_by_text(title.rstrip("…"), exact=False).first).to_be_visible()
        assert page.get_by_test_id("stException").count() == 0

    box.fill(elsewhere)
    box.press("Enter")
    wait_for_app(page)
    expect(box).to_have_value(elsewhere)
    assert sidebar.get_by_role("link", name=elsewhere).count() == 0
    page.context.close()
