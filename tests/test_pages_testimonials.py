"""Page tests for Testimonials with Streamlit's AppTest: a branch manager records a testimonial through the form, the
list shows only the user's branches, the audience selector changes what is listed and how it is attributed, and
Streamlit's own table download is switched off."""

import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from crm import audit, clock, dates, testimonials
from tests.conftest import World
from tests.pagehelpers import ROOT, button, fill, open_section, rendered_text, run_app_on, sign_in, values
from tests.test_testimonials import ANONYMOUS, NAMED, ROLE, build_world, copy_world

TABLE_COLUMNS = ["Received", "Quote", "Attributed as", "Partner type", "Branch", "Consent"]


@pytest.fixture(autouse=True)
def app_env(monkeypatch, db_path):
    """Every test's app runs on the test's own database file, (see pagehelpers.run_app_on for why AppTest's
    cookies and folder-based multipage mode are switched off)."""
    run_app_on(monkeypatch, db_path)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, World]:
    """The testimonials' world (with Olive Oak, a Leeds contact), built once because hashing passwords is slow."""
    path = tmp_path_factory.mktemp("pages_testimonials") / "crm.db"
    return path, build_world(path)


@pytest.fixture
def world(template, db_path) -> World:
    """A copy of the template world at the path the app reads (CRM_DB)."""
    scene = copy_world(*template, db_path)
    scene.today = clock.now().date()
    yield scene
    scene.db.close()


def record(world: World, branch: str, quote: str, days_ago: int, **values) -> int:
    """A testimonial in ``branch`` received ``days_ago`` days ago (within the page's default year)."""
    giver = (
        {"contact_id": world.olive} if branch == "leeds" else {"giver_name": "Gita Green", "organisation_id": world.gp}
    )
    return testimonials.add(
        world.db,
        world.admin,
        {
            "branch_id": getattr(world, branch),
            "quote": quote,
            "source": "email",
            "received_on": world.today - timedelta(days=days_ago),
            **giver,
            **values,
        },
    )


def open_testimonials(username: str) -> AppTest:
    """A new tab, signed in as ``username``, on the Testimonials page."""
    at = sign_in(AppTest.from_file(str(ROOT / "app.py"), default_timeout=60), username)
    at.switch_page("pages/testimonials.py").run()
    assert not at.exception, at.exception
    assert not at.error, values(at.error)
    return at


def table(at: AppTest) -> list[dict]:
    """The rows of the testimonials table, the only table on the page."""
    [frame] = at.dataframe
    assert list(frame.value.columns) == TABLE_COLUMNS
    return frame.value.to_dict("records")


def test_a_branch_manager_records_a_testimonial_through_the_form(world):
    """Test that a branch manager's "Record a testimonial" form saves one testimonial in their own branch with
    every value entered, the giver taken from the chosen contact, audited as theirs, and then lists it."""
    at = open_testimonials("manager.leeds")
    assert [e.label for e in at.expander] == ["Record a testimonial"]
    open_section(at, "Record a testimonial")
    assert at.selectbox(key="testimonials_add_contact").options == [
        "Someone not in the contacts: type below",
        "Olive Oak, Community Occupational Therapist (Leeds City Council)",
    ]
    consent_on = world.today - timedelta(days=1)

    fill(
        at,
        testimonials_add_quote="Thank you for making Mr A's discharge so calm.",
        testimonials_add_contact=world.olive,
        testimonials_add_source="card",
        testimonials_add_themes="Discharge, calm",
        testimonials_add_statements=["W6", "S2"],
        testimonials_add_scope="public",
        testimonials_add_attribution="role",
        testimonials_add_consent_on=consent_on,
        testimonials_add_consent_how="Replied to our email",
    )
    button(at, "Save testimonial").click().run()

    assert not at.exception, at.exception
    assert not at.error, values(at.error)
    assert values(at.success) == ["Testimonial saved."]
    [row] = list(world.db["testimonials"].rows)
    expected = {
        "branch_id": world.leeds,
        "quote": "Thank you for making Mr A's discharge so calm.",
        "contact_id": world.olive,
        "giver_name": "Olive Oak",
        "giver_role": "Community Occupational Therapist",
        "organisation_id": world.city_council,
        "organisation_name": "Leeds City Council",
        "type_code": "LA_SOCIAL_CARE",
        "received_on": world.today.isoformat(),
        "source": "card",
        "interaction_id": None,
        "themes": "calm, discharge",
        "evidence_file": None,
        "evidence_name": None,
        "evidence_type": None,
        "consent_scope": "public",
        "attribution": "role",
        "consent_given_on": consent_on.isoformat(),
        "consent_how": "Replied to our email",
        "consent_withdrawn_on": None,
        "created_by": world.manager_leeds.id,
        "updated_by": world.manager_leeds.id,
        "version": 1,
    }
    assert {column: row[column] for column in expected} == expected
    assert testimonials.get(world.db, world.admin, row["id"])["statements"] == ["S2", "W6"]
    [entry] = audit.entries(world.db, "testimonials", row["id"])
    assert (entry["username"], entry["action"]) == ("manager.leeds", "create")
    assert table(at) == [
        {
            "Received": dates.day(world.today),
            "Quote": "Thank you for making Mr A's discharge so calm.",
            "Attributed as": NAMED,
            "Partner type": "Council adult social care",
            "Branch": "Leeds",
            "Consent": "Public",
        }
    ]


def test_the_form_shows_the_problem_and_saves_nothing(world):
    """Test that a testimonial saved without a quote shows the exact error and writes nothing."""
    at = open_section(open_testimonials("manager.leeds"), "Record a testimonial")

    fill(at, testimonials_add_contact=world.olive)
    button(at, "Save testimonial").click().run()

    assert not at.exception, at.exception
    assert values(at.error) == ["Quote: is required."]
    assert world.db["testimonials"].count == 0


def test_record_a_testimonial_is_drawn_only_while_open(world):
    """Test that the closed "Record a testimonial" section draws none of its form (its contact picker reads the
    branch's contacts on every rerun otherwise), and that opening it, as a click does, draws the form."""
    at = open_testimonials("lead.north")
    form_keys = ["testimonials_add_branch", "testimonials_add_contact", "testimonials_add_quote"]

    def drawn() -> list[str]:
        return [w.key for w in [*at.selectbox, *at.text_area] if w.key in form_keys]

    assert drawn() == []
    assert "Save testimonial" not in [b.label for b in at.button]

    open_section(at, "Record a testimonial")
    assert not at.exception, at.exception
    assert sorted(drawn()) == sorted(form_keys)
    assert button(at, "Save testimonial")


@pytest.mark.parametrize(
    ("username", "branches"),
    [
        ("manager.leeds", ["Leeds"]),
        ("manager.bristol", ["Bristol"]),
        ("lead.north", ["Leeds", "York"]),
        ("ada", ["Leeds", "York", "Bristol"]),
    ],
)
def test_the_list_shows_only_the_users_branches(world, username, branches):
    """Test that the list holds only the signed-in user's branches' testimonials, newest first, and that no other
    branch's quote reaches the browser."""
    quotes = {
        "Leeds": "Leeds said thank you.",
        "York": "York said thank you.",
        "Bristol": "Bristol said thank you.",
    }
    for days_ago, branch in enumerate(["leeds", "york", "bristol"], start=3):
        record(world, branch, quotes[branch.capitalize()], days_ago)
    for days_ago in (1, 2):  # testimonials from before the default year, not listed for anyone
        record(world, "leeds", f"Long ago {days_ago}.", 366 + days_ago)

    at = open_testimonials(username)

    assert [(r["Branch"], r["Quote"]) for r in table(at)] == [(b, quotes[b]) for b in branches]
    assert values(at.main.caption) == [
        f"{len(branches)} testimonial{'s' if len(branches) > 1 else ''} internal readers may see."
    ]
    text = rendered_text(at)
    assert [q for b, q in quotes.items() if b not in branches and q in text] == []


def test_the_audience_selector_changes_what_is_listed_and_how_it_is_attributed(world):
    """Test that choosing the CQC or public audience lists only what that audience may see, attributed as each
    giver agreed, and says how many it may see and for whom the export is, naming the audience with its capitals.

    Regression (issue 10, defect 7): the page said "2 testimonials cqc readers may see" and "attributed for cqc
    and commissioners readers"."""
    record(
        world,
        "leeds",
        "Role-attributed, for CQC.",
        2,
        consent_scope="cqc",
        attribution="role",
        consent_given_on=world.today,
    )
    record(
        world,
        "leeds",
        "Anonymous, for the public.",
        3,
        consent_scope="public",
        attribution="anonymous",
        consent_given_on=world.today,
    )
    record(world, "leeds", "No consent recorded.", 4)
    at = open_testimonials("manager.leeds")

    shown = {}
    exported_for = {}
    for audience in ("internal", "cqc", "public", "internal"):
        at.selectbox(key="testimonials_audience").set_value(audience).run()
        assert not at.exception, at.exception
        shown[audience] = ([(r["Quote"], r["Attributed as"]) for r in table(at)], values(at.main.caption))
        exported_for[audience] = [m for m in values(at.main.markdown) if m.startswith("Exactly")]

    assert shown["internal"] == (
        [
            ("Role-attributed, for CQC.", NAMED),
            ("Anonymous, for the public.", NAMED),
            ("No consent recorded.", NAMED),
        ],
        ["3 testimonials internal readers may see."],
    )
    assert shown["cqc"] == (
        [("Role-attributed, for CQC.", ROLE), ("Anonymous, for the public.", ANONYMOUS)],
        ["2 testimonials CQC and commissioners may see."],
    )
    assert shown["public"] == (
        [("Anonymous, for the public.", ANONYMOUS)],
        ["1 testimonial the public may see."],
    )
    assert exported_for == {
        "internal": [
            "Exactly the testimonials listed above, attributed for internal readers. Every export is recorded."
        ],
        "cqc": [
            "Exactly the testimonials listed above, attributed for CQC and commissioners. Every export is recorded."
        ],
        "public": ["Exactly the testimonials listed above, attributed for the public. Every export is recorded."],
    }


def test_searching_the_words_lists_only_matches_and_a_lone_quote_does_not_break_the_page(world):
    """Test that the "Search the words" box lists only the testimonials holding the word, and that search text
    made only of a double quote lists nothing rather than crashing the page.

    Regression: typing a lone " made pages/testimonials.py fail with sqlite3.OperationalError from
    testimonials.search() (the page only catches CRMError)."""
    record(world, "leeds", "Calm and kind on every visit.", 2)
    record(world, "leeds", "Quick to reply.", 3)
    at = open_testimonials("manager.leeds")

    at.text_input(key="testimonials_search").set_value("calm").run()
    assert not at.exception, at.exception
    assert [r["Quote"] for r in table(at)] == ["Calm and kind on every visit."]

    at.text_input(key="testimonials_search").set_value('"').run()
    assert not at.exception, at.exception
    assert not at.error, values(at.error)
    assert [frame.value.to_dict("records") for frame in at.dataframe] == [[]]
    assert values(at.main.caption) == ["0 testimonials internal readers may see."]


def test_streamlit_table_download_is_disabled():
    """Test that .streamlit/config.toml switches off Streamlit's own table download, which would bypass the
    permission checks and formula escaping of the exports."""
    with (ROOT / ".streamlit" / "config.toml").open("rb") as config:
        settings = tomllib.load(config)

    assert settings["client"]["disableDataExport"] is True
