"""Page tests with Streamlit's AppTest: the sign-in gate on every page, set-up, sign-in, a smoke test of every
page for every role, and behaviour tests that drive a page and check both the screen and the database."""

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from crm import audit, clock, contacts, demo, organisations, users
from crm.access import ADMIN, BRANCH_MANAGER, REGIONAL_LEAD
from crm.ui.pages import PAGES, for_actor, landing_for, sections_for
from tests.conftest import PASSWORD
from tests.pagehelpers import (
    NOT_FOR_YOUR_ROLE,
    PAGE_FILES,
    ROOT,
    SET_UP_TITLE,
    SIGN_IN_TITLE,
    button,
    fill,
    is_sign_in_form,
    leaf_types,
    new_app,
    open_page,
    open_section,
    page_path,
    rendered_text,
    run_app_on,
    sign_in,
    submit_sign_in,
    values,
)

ROLE_USERS = {ADMIN: "ada", REGIONAL_LEAD: "lead.north", BRANCH_MANAGER: "manager.leeds"}


@pytest.fixture(autouse=True)
def app_env(monkeypatch, db_path):
    """Every test's app runs on the test's own database file, with the default idle limit."""
    run_app_on(monkeypatch, db_path, without_cookies=False)


@pytest.fixture
def seeded(world):
    """The `world` fixture plus one contact, so there is data of every kind that must not leak."""
    world.quentin = world.contact(
        world.leeds,
        "Quentin Quarry",
        job_title="Practice Manager",
        phone="0113 496 0123",
        email="quentin.quarry@hydepark.example",
    )
    return world


# What the seeded database holds that a signed-out visitor must never see.
SEEDED_DATA = [
    "Quentin Quarry",
    "quentin.quarry@hydepark.example",
    "0113 496 0123",
    "+441134960123",
    "Practice Manager",
    "Hyde Park Surgery",
    "Leeds Community OT",
    "Bristol Council Adult Social Care",
    "Ada Admin",
    "Nia North",
    "Sol South",
    "Lee Leeds",
    "Yan York",
    "Bea Bristol",
    "lead.north",
    "manager.leeds",
    "manager.york",
    "York",
    "Bristol",
]


def assert_shows_no_seeded_data(at: AppTest) -> None:
    text = rendered_text(at)
    assert [item for item in SEEDED_DATA if item in text] == []


def contact_rows(database) -> list[dict]:
    return list(database["contacts"].rows_where(order_by="id"))


# The gate: every page, opened any way, shows nothing to a signed-out visitor.


def test_that_every_page_file_is_listed_in_pages():
    """Test that the pages folder and crm.ui.pages.PAGES list the same files (an unlisted page has no roles at all)."""
    assert sorted(path.relative_to(ROOT).as_posix() for path in PAGE_FILES) == sorted(page.path for page in PAGES)


def _first_statement_after_imports(tree: ast.Module) -> ast.stmt:
    body = list(tree.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the module docstring
    return next(stmt for stmt in body if not isinstance(stmt, ast.Import | ast.ImportFrom))


@pytest.mark.parametrize("page_file", PAGE_FILES, ids=lambda path: path.name)
def test_that_every_page_calls_the_gate_before_anything_else(page_file):
    """Test that the first statement of every page after its docstring and imports is
    `database, actor = session.require(__file__)`, so nothing can render before the sign-in check."""
    statement = _first_statement_after_imports(ast.parse(page_file.read_text(encoding="utf-8")))
    call = statement.value if isinstance(statement, ast.Assign | ast.Expr) else None
    assert isinstance(call, ast.Call), ast.unparse(statement)
    assert ast.unparse(call) == "session.require(__file__)"


@pytest.mark.parametrize("page_file", PAGE_FILES, ids=lambda path: path.name)
def test_that_a_page_opened_directly_while_signed_out_shows_only_the_sign_in_form(seeded, page_file):
    """Test that running a page file on its own, with no session, raises nothing, shows the sign-in form and
    shows none of the data in the database."""
    at = new_app(page_file).run()
    assert not at.exception, at.exception
    assert values(at.title) == [SIGN_IN_TITLE]
    assert is_sign_in_form(at)
    assert_shows_no_seeded_data(at)


@pytest.mark.parametrize("page_file", PAGE_FILES, ids=lambda path: path.name)
def test_that_a_page_opened_directly_on_a_new_database_shows_the_set_up_screen(database, page_file):
    """Test that a page file run on a database with no users shows the set-up screen and nothing else."""
    at = new_app(page_file).run()
    assert not at.exception, at.exception
    assert values(at.title) == [SET_UP_TITLE]
    assert [t.key for t in at.text_input] == [
        "setup_username",
        "setup_full_name",
        "setup_password",
        "setup_password_again",
    ]


def test_that_the_app_signed_out_shows_only_the_sign_in_form(seeded):
    """Test that app.py with no session shows the sign-in form, no menu, and no data."""
    at = new_app().run()
    assert not at.exception, at.exception
    assert values(at.title) == [SIGN_IN_TITLE]
    assert is_sign_in_form(at)
    assert not at.sidebar.button
    assert_shows_no_seeded_data(at)


# First run: the set-up screen.


def _set_up(at: AppTest, *, username="ada", full_name="Ada Admin", password=PASSWORD, again=None, load_demo=False):
    fill(
        at,
        setup_username=username,
        setup_full_name=full_name,
        setup_password=password,
        setup_password_again=password if again is None else again,
        setup_demo=load_demo,
    )
    return button(at, "Create administrator").click().run()


def test_that_set_up_creates_the_first_administrator_and_signs_them_in(database):
    """Test that the set-up form creates an administrator with an argon2id password hash and opens the app."""
    at = new_app().run()
    assert values(at.title) == [SET_UP_TITLE]
    _set_up(at)
    assert not at.exception, at.exception
    assert values(at.title) == [PAGES[0].title]
    rows = list(database["users"].rows)
    assert [(r["username"], r["display_name"], r["role"], r["region_id"], r["branch_id"]) for r in rows] == [
        ("ada", "Ada Admin", ADMIN, None, None)
    ]
    assert rows[0]["password_hash"].startswith("$argon2id$")
    assert database["branches"].count == 0
    admin = users.sign_in(database, "ada", PASSWORD)
    assert admin.role == ADMIN


def test_that_set_up_with_demo_data_loads_the_demo_provider(database):
    """Test that ticking "Load demo data" loads the 12 demo branches and their accounts, with the chosen password."""
    at = new_app().run()
    _set_up(at, load_demo=True)
    assert not at.exception, at.exception
    assert values(at.title) == [PAGES[0].title]
    assert database["branches"].count == 12
    assert database.execute("SELECT value FROM settings WHERE key = 'demo_loaded'").fetchone() == ("1",)
    usernames = {row["username"] for row in database["users"].rows}
    assert usernames == {"ada"} | {name for name, _, _ in demo.demo_accounts()}
    assert users.sign_in(database, "manager.leedsnorth", PASSWORD).role == BRANCH_MANAGER


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"again": "correct horse battery staple"}, "Password again: the two passwords differ."),
        ({"password": "too short", "again": "too short"}, "Password: must be at least 10 characters long."),
        ({"username": ""}, "User name: is required."),
        ({"username": "ada lovelace"}, "User name: cannot contain spaces (try a dot: jo.bloggs)."),
    ],
)
def test_that_set_up_refuses_bad_input_and_creates_nothing(database, form, message):
    """Test that the set-up form shows the exact problem with bad input and creates no user and no demo data."""
    at = new_app().run()
    _set_up(at, load_demo=True, **form)
    assert not at.exception, at.exception
    assert values(at.error) == [message]
    assert values(at.title) == [SET_UP_TITLE]
    assert database["users"].count == 0
    assert database["branches"].count == 0


# Signing in.


@pytest.mark.parametrize(
    ("username", "password"),
    [("manager.leeds", "not the password"), ("nobody.here", PASSWORD), ("", "")],
)
def test_that_a_wrong_sign_in_is_refused_without_saying_which_part_was_wrong(world, username, password):
    """Test that a wrong password, an unknown user name or an empty form all show the same message."""
    at = submit_sign_in(new_app().run(), username, password)
    assert not at.exception, at.exception
    assert values(at.error) == ["Incorrect user name or password."]
    assert is_sign_in_form(at)


def test_that_five_failed_sign_ins_make_even_a_new_session_wait_and_unknown_names_alike(world, database, monkeypatch):
    """Test that after five wrong passwords a brand-new session with the right password must wait (the count is
    in the database), with the very answers an unknown user name gets, and that it signs in once the wait is over.
    Regression: only real accounts were locked, so the lock message told which names exist."""
    stopped = clock.now()
    monkeypatch.setattr(clock, "now", lambda: stopped)

    def answers(username: str, password: str) -> list[str]:
        at = new_app().run()
        said = []
        for _ in range(users.MAX_FAILED_ATTEMPTS):
            said += values(submit_sign_in(at, username, "not the password").error)
        fresh = submit_sign_in(new_app().run(), username, password)
        assert not fresh.exception, fresh.exception
        assert is_sign_in_form(fresh)
        return said + values(fresh.error)

    real, unknown = answers("manager.leeds", PASSWORD), answers("nobody.here", PASSWORD)

    assert real == unknown
    assert real == ["Incorrect user name or password."] * 5 + [
        "Too many failed sign-ins. Wait 2 seconds before trying again."
    ]
    monkeypatch.setattr(clock, "now", lambda: stopped + timedelta(seconds=2))
    assert not is_sign_in_form(submit_sign_in(new_app().run(), "manager.leeds", PASSWORD))


def test_that_signing_out_returns_to_the_sign_in_form(world, database):
    """Test that the sidebar's Sign out button ends the session (in the database too) and says so."""
    open_sessions = "SELECT count(*) FROM sessions WHERE user_id = ?"
    at = sign_in(new_app(), "manager.leeds")
    assert database.execute(open_sessions, [world.manager_leeds.id]).fetchone() == (1,)
    at.sidebar.button(key="app_sign_out").click().run()
    assert not at.exception, at.exception
    assert is_sign_in_form(at)
    assert values(at.info) == ["You have signed out."]
    assert database.execute(open_sessions, [world.manager_leeds.id]).fetchone() == (0,)
    at.run()
    assert is_sign_in_form(at)


# Smoke test: every page for every role.


# Pages that manage the whole provider: never offered to a regional lead or a branch manager.
ADMIN_ONLY = {"users.py", "branches.py", "partner_types.py", "gp_directory.py", "backups.py"}
NOT_FOR_BRANCH_MANAGERS = {"audit.py"}  # administrators and regional leads


def test_that_the_administrators_pages_are_for_administrators_only():
    """Test that every page managing the whole provider is listed for administrators and nobody else."""
    roles = {Path(page.path).name: page.roles for page in PAGES}
    assert {name: roles.get(name) for name in ADMIN_ONLY} == {name: (ADMIN,) for name in ADMIN_ONLY}


@pytest.mark.parametrize("role", [ADMIN, REGIONAL_LEAD, BRANCH_MANAGER])
def test_that_each_role_gets_its_pages_in_the_menu(world, role):
    """Test that an administrator's menu holds every page, a lead's or manager's every page except those for
    administrators only, in PAGES order; and that the app's navigation opens those pages and no other."""
    expected = [
        page.path
        for page in PAGES
        if role == ADMIN
        or (page.roles != (ADMIN,) and not (role == BRANCH_MANAGER and Path(page.path).name in NOT_FOR_BRANCH_MANAGERS))
    ]
    if role != ADMIN:
        assert ADMIN_ONLY.isdisjoint(Path(path).name for path in expected)
    actor = users.sign_in(world.db, ROLE_USERS[role], PASSWORD)
    assert [page.path for page in for_actor(actor)] == expected
    at = sign_in(new_app(), ROLE_USERS[role])
    for page in PAGES:
        if page.path in expected:
            at.switch_page(page.path).run()
            assert not at.exception, at.exception
            assert values(at.title) == [page.title]
        else:
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                at.switch_page(page.path)


def test_that_the_menu_groups_an_administrators_pages_into_work_insight_and_admin(world):
    """Test that every page is in a menu section, and an administrator's menu reads Work, Insight, Admin with
    each section's pages in PAGES order (issue 12: admin pages reachable without unfolding a long menu)."""
    actor = users.sign_in(world.db, ROLE_USERS[ADMIN], PASSWORD)
    grouped = sections_for(actor)
    assert {section: [Path(page.path).stem for page in listed] for section, listed in grouped.items()} == {
        "Work": [
            "home",
            "contacts",
            "interactions",
            "organisations",
            "testimonials",
            "referrals",
            "import_contacts",
            "duplicates",
        ],
        "Insight": ["coverage", "gp_patch", "audit"],
        "Admin": ["retention", "users", "branches", "partner_types", "gp_directory", "backups", "account"],
    }
    assert sorted(page.path for listed in grouped.values() for page in listed) == sorted(p.path for p in PAGES)


@pytest.mark.parametrize("role", [ADMIN, REGIONAL_LEAD, BRANCH_MANAGER])
def test_that_signing_in_at_the_root_address_opens_the_roles_start_page(world, role):
    """Test that a user who signs in on the app's root address lands on their role's start page
    (crm.ui.pages.landing_for: Coverage for a regional lead, the first page of the menu otherwise)."""
    actor = users.sign_in(world.db, ROLE_USERS[role], PASSWORD)
    landing = next(page for page in PAGES if page.path == landing_for(actor))
    at = sign_in(new_app(), ROLE_USERS[role])
    assert values(at.title) == [landing.title]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.title)
@pytest.mark.parametrize("role", [ADMIN, REGIONAL_LEAD, BRANCH_MANAGER])
def test_smoke_every_page_for_every_role(seeded, role, page):
    """Test that a page its role may open renders without an exception under its title, and that a page it may
    not open (reached by running the file directly) shows only the refusal."""
    if role in page.roles:
        at = open_page(ROLE_USERS[role], Path(page.path).stem)
        assert values(at.title) == [page.title]
        assert not at.error, values(at.error)
    else:
        at = submit_sign_in(new_app(ROOT / page.path).run(), ROLE_USERS[role])
        assert not at.exception, at.exception
        assert values(at.error) == [NOT_FOR_YOUR_ROLE]
        assert set(leaf_types(at)) - {"html"} == {"error"}
        assert not at.text_input and not at.button and not at.title


# Contacts: add, validate, de-duplicate, edit.


def _pick_organisation(at: AppTest, search: str, org_id: int, prefix: str = "contacts_add_org") -> AppTest:
    at.text_input(key=f"{prefix}_search").input(search).run()
    assert not at.exception, at.exception
    at.selectbox(key=f"{prefix}_choice").select(org_id).run()
    assert not at.exception, at.exception
    return at


def _add_contact(at: AppTest, **fields: object) -> AppTest:
    fill(at, **{f"contacts_add_{name}": value for name, value in fields.items()})
    return button(at, "Add contact").click().run()


def test_that_a_branch_manager_adds_a_contact_with_a_messy_phone_number(world, database):
    """Test that a contact added on the Contacts page is stored in the manager's own branch, with the phone
    number in E.164 plus extension, audited, and then shown with the number in national format."""
    at = open_page("manager.leeds", "contacts")
    assert [e.label for e in at.expander] == ["Add a contact", "Partner mailing list"]
    open_section(at, "Add a contact")
    assert [e.label for e in at.expander] == [
        "Add a contact",
        "Organisation not listed? Add it to the directory",
        "Data protection",
        "Partner mailing list",
    ]
    assert not at.selectbox(key="contacts_add_org_choice").disabled
    _pick_organisation(at, "Hyde", world.gp)
    _add_contact(
        at,
        name="Dr Pat Phone",
        job_title="GP Partner",
        phone="(0113) 496-0555 x12",
        mobile="07400 123456",
        email="Pat.Phone@HydePark.example",
        notes="Prefers email.",
        named=True,
    )
    assert not at.exception, at.exception
    assert not at.error, values(at.error)
    assert values(at.success) == ["Added Dr Pat Phone."]
    assert values(at.header) == ["Dr Pat Phone"]
    assert (
        "Phone: [0113 496 0555 ext. 12](tel:+441134960555;ext=12)  \n"
        "Mobile: [07400 123456](tel:+447400123456)  \n"
        # A mailto: link; in its text the word joiner keeps the address from becoming a second, automatic link.
        "Email: [Pat.Phone@\u2060hydepark.example](mailto:Pat.Phone@hydepark.example)"
    ) in values(at.markdown)

    [row] = contact_rows(database)
    assert row["id"] == int(at.query_params["contact"])
    expected = {
        "branch_id": world.leeds,
        "organisation_id": world.gp,
        "name": "Dr Pat Phone",
        "job_title": "GP Partner",
        "phone": "+441134960555",
        "phone_ext": "12",
        "mobile": "+447400123456",
        "email": "Pat.Phone@hydepark.example",
        "notes": "Prefers email.",
        "is_named_contact": 1,
        "status": "active",
        "left_on": None,
        "created_by": world.manager_leeds.id,
        "updated_by": world.manager_leeds.id,
        "version": 1,
    }
    assert {column: row[column] for column in expected} == expected
    [entry] = audit.entries(database, "contacts", row["id"])
    assert (entry["user_id"], entry["username"], entry["action"]) == (world.manager_leeds.id, "manager.leeds", "create")
    assert entry["changes"]["phone"] == "+441134960555"


@pytest.mark.parametrize(
    ("fields", "messages"),
    [
        (
            {"name": "Pat Short", "phone": "0113 496"},
            ["Phone: “0113 496” is not a valid phone number (check the number of digits and the area code)."],
        ),
        (
            {"name": "Pat Mobile", "mobile": "07400 123456 ext 4"},
            ["Mobile: mobile numbers do not have extensions; put the extension on Phone."],
        ),
        (
            {"name": "", "email": "pat@", "phone": "not a phone"},
            [
                "Name: is required.",
                "Phone: “not a phone” is not a phone number.",
                "Email: “pat@” is not a valid email address. There must be something after the @-sign.",
            ],
        ),
    ],
)
def test_that_an_invalid_contact_shows_each_problem_and_writes_nothing(world, database, fields, messages):
    """Test that bad input on the add form names each refused field, quotes the input, and writes no row."""
    at = open_section(open_page("manager.leeds", "contacts"), "Add a contact")
    _pick_organisation(at, "Hyde", world.gp)
    _add_contact(at, **fields)
    assert not at.exception, at.exception
    assert values(at.error) == messages
    assert contact_rows(database) == []
    assert audit.entries(database, "contacts") == []


def test_that_a_duplicate_contact_is_only_saved_when_the_user_insists(world, database):
    """Test that a contact with the same email as one the branch has shows the duplicate warning and writes
    nothing, until "Save as a new contact anyway" is clicked."""
    existing = world.contact(world.leeds, "Pat Existing", email="pat@hydepark.example")
    at = open_section(open_page("manager.leeds", "contacts"), "Add a contact")
    _pick_organisation(at, "Hyde", world.gp)
    _add_contact(at, name="Patricia New", email="PAT@hydepark.example")
    assert not at.exception, at.exception
    assert values(at.warning) == [
        "This looks like a contact the branch already has: Pat Existing. "
        "Open the existing record, or save this one as a new contact."
    ]
    assert button(at, "Open Pat Existing, no job title at Hyde Park Surgery")
    assert [row["id"] for row in contact_rows(database)] == [existing]

    at.run()  # an unrelated rerun keeps the question open and still writes nothing
    assert len(at.warning) == 1
    assert [row["id"] for row in contact_rows(database)] == [existing]

    button(at, "Save as a new contact anyway").click().run()
    assert not at.exception, at.exception
    assert values(at.success) == ["Added Patricia New. It may be a contact the branch already has: see below."]
    # Her page offers to compare the two and merge them.
    assert values(at.warning) == ["Possibly the same person as Pat Existing (same email)."]
    rows = contact_rows(database)
    assert [(r["name"], r["email"], r["branch_id"]) for r in rows] == [
        ("Pat Existing", "pat@hydepark.example", world.leeds),
        ("Patricia New", "PAT@hydepark.example", world.leeds),
    ]
    assert len(audit.entries(database, "contacts")) == 2


def test_that_add_a_contact_is_drawn_only_while_open(world):
    """Test that the Contacts page's closed "Add a contact" section draws none of its widgets (its organisation
    picker was a quarter of the page's time), and that opening it, as a click does, draws its form."""
    at = open_page("manager.leeds", "contacts")
    add_keys = ("contacts_add_org_search", "contacts_add_org_choice", "contacts_add_name", "contacts_new_org_name")
    assert [w.key for w in [*at.text_input, *at.selectbox] if w.key in add_keys] == []
    assert "Add contact" not in [b.label for b in at.button]

    open_section(at, "Add a contact")
    assert not at.exception, at.exception
    assert sorted(w.key for w in [*at.text_input, *at.selectbox] if w.key in add_keys) == sorted(add_keys)
    assert button(at, "Add contact")


def test_that_add_a_contact_opens_itself_while_a_save_waits_for_an_answer(world, database):
    """Test that while an added contact waits for the answer to the duplicate question, "Add a contact" stays
    open even when its header is clicked to close it (the question would otherwise be hidden, unanswered), and
    that once saved, the section is closed again."""
    existing = world.contact(world.leeds, "Pat Existing", email="pat@hydepark.example")
    at = open_section(open_page("manager.leeds", "contacts"), "Add a contact")
    _pick_organisation(at, "Hyde", world.gp)
    _add_contact(at, name="Patricia New", email="PAT@hydepark.example")
    assert len(at.warning) == 1

    at.session_state["contacts_add_open"] = False  # as a click on its header closes it
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["contacts_add_open"] is True
    assert values(at.warning) == [
        "This looks like a contact the branch already has: Pat Existing. "
        "Open the existing record, or save this one as a new contact."
    ]
    button(at, "Save as a new contact anyway").click().run()
    assert values(at.success) == ["Added Patricia New. It may be a contact the branch already has: see below."]
    assert [row["name"] for row in contact_rows(database)] == ["Pat Existing", "Patricia New"]
    assert existing == contact_rows(database)[0]["id"]

    at.query_params.clear()  # back to the list
    at.run()
    assert [e.label for e in at.expander][0] == "Add a contact"
    assert at.session_state["contacts_add_open"] is False
    assert "contacts_add_name" not in [w.key for w in at.text_input]


def test_that_organisations_are_listed_a_page_at_a_time_with_the_patch_first(world, database, monkeypatch):
    """Test that the Organisations page lists one page of the directory (the manager's patch first) under the
    whole count, that Next and Previous move through it, and that a search starts again on its first page."""
    monkeypatch.setattr(organisations, "PAGE_SIZE", 2)
    for name in ("Aire Valley OT", "Beeston Surgery", "Chapeltown Social Work Team", "Zeta Community Group"):
        organisations.add(database, world.admin, {"name": name, "type_code": "OTHER"})
    world.contact(
        world.leeds, "Zoe Zeta", database.execute("SELECT id FROM organisations WHERE name LIKE 'Zeta%'").fetchone()[0]
    )
    manager = users.get(
        database, database.execute("SELECT id FROM users WHERE username = 'manager.leeds'").fetchone()[0]
    )
    everyone = [o["name"] for o in organisations.search(database, "", limit=1000, actor=manager)]
    assert len(everyone) == organisations.count(database) > 4
    assert everyone.index("Zeta Community Group") < everyone.index("Aire Valley OT")  # Leeds has a contact there
    at = open_page("manager.leeds", "organisations")
    pages = -(-len(everyone) // 2)

    def names() -> list[str]:
        return list(at.dataframe[0].value["Name"])

    assert values(at.main.caption) == [f"{len(everyone)} organisations, 1 to 2 shown, your patch first"]
    assert names() == everyone[:2]
    assert f"Page 1 of {pages}" in values(at.main.markdown)
    button(at, "Next").click().run()
    assert values(at.main.caption) == [f"{len(everyone)} organisations, 3 to 4 shown, your patch first"]
    assert names() == everyone[2:4]
    button(at, "Previous").click().run()
    assert names() == everyone[:2]
    button(at, "Next").click().run()

    at.text_input(key="organisations_search").set_value("leeds").run()
    found = [o["name"] for o in organisations.search(database, "leeds", limit=1000, actor=manager)]
    assert names() == found[:2]
    assert values(at.main.caption)[0].startswith(f"{len(found)} organisation")


def test_that_add_an_organisation_is_drawn_only_while_open_and_adds_one(world, database):
    """Test that the Organisations page's closed "Add an organisation" section draws none of its form, and that
    opened, as a click does, its form adds the organisation and opens its page."""
    at = open_page("manager.leeds", "organisations")
    assert [w.key for w in at.text_input if w.key.startswith("organisations_add_")] == []
    assert "Add organisation" not in [b.label for b in at.button]

    open_section(at, "Add an organisation")
    assert "organisations_add_name" in [w.key for w in at.text_input]
    fill(at, organisations_add_name="Chapel Allerton Surgery", organisations_add_type="GP_PRACTICE")
    button(at, "Add organisation").click().run()
    assert not at.exception, at.exception
    assert not at.error, values(at.error)
    assert values(at.success) == ["Added Chapel Allerton Surgery to the directory."]
    [row] = database.execute_returning_dicts(
        "SELECT id, name, type_code FROM organisations WHERE name = 'Chapel Allerton Surgery'"
    )
    assert (row["name"], row["type_code"], at.query_params["organisation"]) == (
        "Chapel Allerton Surgery",
        "GP_PRACTICE",
        str(row["id"]),
    )


def _open_contact(username: str, contact_id: int) -> AppTest:
    at = sign_in(new_app(), username)
    at.switch_page(page_path("contacts"))
    at.query_params["contact"] = str(contact_id)
    at.run()
    assert not at.exception, at.exception
    return at


def test_that_editing_a_contact_saves_the_changes_and_bumps_the_version(world, database):
    """Test that the detail view's edit form saves the new values (phone normalised) and increments the version."""
    contact_id = world.contact(world.leeds, "Quentin Quarry", phone="0113 496 0123")
    at = _open_contact("manager.leeds", contact_id)
    assert values(at.header) == ["Quentin Quarry"]
    prefix = f"contacts_edit_{contact_id}"
    assert at.text_input(key=f"{prefix}_phone").value == "0113 496 0123"
    fill(at, **{f"{prefix}_job_title": "Practice Manager", f"{prefix}_phone": "+44 113 496 0999 ext. 7"})
    button(at, "Save changes").click().run()
    assert not at.exception, at.exception
    assert not at.error, values(at.error)
    assert values(at.success) == ["Saved changes to Quentin Quarry."]
    row = database["contacts"].get(contact_id)
    assert (row["job_title"], row["phone"], row["phone_ext"], row["version"], row["updated_by"]) == (
        "Practice Manager",
        "+441134960999",
        "7",
        2,
        world.manager_leeds.id,
    )
    [update] = [e for e in audit.entries(database, "contacts", contact_id) if e["action"] == "update"]
    assert update["changes"] == {
        "job_title": ["", "Practice Manager"],
        "phone": ["+441134960123", "+441134960999"],
        "phone_ext": [None, "7"],
    }


def test_that_saving_a_contact_without_changing_anything_says_there_is_nothing_to_save(world, database):
    """Test that pressing Save changes on a contact's edit form without changing anything says "No changes to
    save." and writes nothing (same version, no audit entry).

    Regression (issue 10, defect 6): "Saved changes" was shown when nothing had changed."""
    contact_id = world.contact(world.leeds, "Quentin Quarry", phone="0113 496 0123", email="q@hydepark.example")
    at = _open_contact("manager.leeds", contact_id)
    button(at, "Save changes").click().run()

    assert not at.exception, at.exception
    assert (values(at.success), values(at.error)) == ([], [])
    assert "No changes to save." in values(at.info)
    assert database["contacts"].get(contact_id)["version"] == 1
    assert [e["action"] for e in audit.entries(database, "contacts", contact_id)] == ["create"]


def test_that_a_contact_changed_by_someone_else_while_editing_is_not_overwritten(world, database):
    """Test that saving an edit form opened before someone else's save shows the conflict message and keeps the
    other change; after reloading, the form shows their values and a save goes through."""
    contact_id = world.contact(world.leeds, "Quentin Quarry")
    at = _open_contact("manager.leeds", contact_id)
    prefix = f"contacts_edit_{contact_id}"
    contacts.update(
        database,
        world.admin,
        contact_id,
        {"name": "Quentin Quarry-Smith", "organisation_id": world.gp, "branch_id": world.leeds},
        expected_version=1,
    )
    fill(at, **{f"{prefix}_job_title": "Receptionist"})
    button(at, "Save changes").click().run()
    assert not at.exception, at.exception
    assert values(at.error) == [
        "Quentin Quarry-Smith's record was changed by someone else while you were editing. "
        "Reload it to see their changes, then make yours again."
    ]
    row = database["contacts"].get(contact_id)
    assert (row["name"], row["job_title"], row["version"]) == ("Quentin Quarry-Smith", "", 2)

    at.button(key=f"{prefix}_reload").click().run()  # "Show their changes; yours are discarded"
    assert not at.exception, at.exception
    assert at.text_input(key=f"{prefix}_name").value == "Quentin Quarry-Smith"
    assert at.text_input(key=f"{prefix}_job_title").value == ""
    fill(at, **{f"{prefix}_job_title": "Receptionist"})
    button(at, "Save changes").click().run()
    assert not at.exception, at.exception
    assert values(at.success) == ["Saved changes to Quentin Quarry-Smith."]
    row = database["contacts"].get(contact_id)
    assert (row["name"], row["job_title"], row["version"]) == ("Quentin Quarry-Smith", "Receptionist", 3)


def test_that_a_branch_manager_cannot_open_another_branchs_contact_by_link(world, database):
    """Test that a contact link to another branch's contact shows "not found" and none of the contact's data."""
    contact_id = world.contact(world.york, "Yolanda Yorkshire", email="yolanda@example.org")
    at = _open_contact("manager.leeds", contact_id)
    assert values(at.error) == ["That contact does not exist or is not in one of your branches."]
    text = rendered_text(at)
    assert "Yolanda" not in text and "yolanda@example.org" not in text


# Sessions: disabled accounts and idle time.


def test_that_a_disabled_users_open_session_ends_on_the_next_rerun(world, database):
    """Test that disabling a signed-in user sends their open tab to the sign-in form, with the reason, and
    without the page's data."""
    contact_id = world.contact(world.leeds, "Quentin Quarry")
    at = _open_contact("manager.leeds", contact_id)
    assert values(at.header) == ["Quentin Quarry"]
    users.set_disabled(database, world.admin, "manager.leeds", True)
    at.run()
    assert not at.exception, at.exception
    assert is_sign_in_form(at)
    assert values(at.info) == ["This account has been disabled. Ask an administrator."]
    assert "Quentin Quarry" not in rendered_text(at)


def test_that_a_password_reset_ends_the_users_open_session(world, database):
    """Test that an administrator setting a new password for a signed-in user sends their open tab to the
    sign-in form with the reason (resume_session's "password or account was changed")."""
    at = open_page("manager.leeds", "contacts")
    users.set_password(database, world.admin, "manager.leeds", "a brand new password")
    at.run()
    assert not at.exception, at.exception
    assert is_sign_in_form(at)
    assert values(at.info) == ["Your password or account was changed, so you were signed out. Sign in again."]


def _later(monkeypatch, minutes: int) -> None:
    """Move the app's clock forward (clock.now is what stamps and checks session activity)."""
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(minutes=minutes))


def test_that_an_idle_session_is_signed_out(world, monkeypatch):
    """Test that a rerun after more than the idle limit (CRM_IDLE_MINUTES) signs the user out with the reason."""
    monkeypatch.setenv("CRM_IDLE_MINUTES", "5")
    at = open_page("manager.leeds", "contacts")
    _later(monkeypatch, 6)
    at.run()
    assert not at.exception, at.exception
    assert is_sign_in_form(at)
    assert values(at.info) == ["You were signed out after 5 minutes without activity. Sign in again."]
    sign_in(at, "manager.leeds")
    assert values(at.title) == ["Contacts"]  # back on the page that was open


def test_that_activity_within_the_idle_limit_keeps_the_session_open(world, monkeypatch):
    """Test that each rerun counts as activity: two gaps each shorter than the idle limit do not sign out."""
    monkeypatch.setenv("CRM_IDLE_MINUTES", "5")
    at = open_page("manager.leeds", "contacts")
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(minutes=4))
    at.run()
    assert values(at.title) == ["Contacts"]
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(minutes=8))
    at.run()
    assert not at.exception, at.exception
    assert values(at.title) == ["Contacts"]


# Administrators' pages.


@pytest.mark.parametrize(
    ("role", "place_key", "expected_place"),
    [(BRANCH_MANAGER, "users_add_branch", "york"), (REGIONAL_LEAD, "users_add_region", "south")],
)
def test_that_an_administrator_adds_a_user(world, database, role, place_key, expected_place):
    """Test that the Users page adds an account with its role and its branch or region."""
    place_id = getattr(world, expected_place)
    at = open_page("ada", "users")
    at.selectbox(key="users_add_role").select(role).run()
    assert not at.exception, at.exception
    fill(
        at,
        users_add_username="mo.new",
        users_add_full_name="Mo New",
        users_add_password="a long new password",
        users_add_password_again="a long new password",
        **{place_key: place_id},
    )
    button(at, "Add user").click().run()
    assert not at.exception, at.exception
    assert not at.error, values(at.error)
    label = {BRANCH_MANAGER: "branch manager", REGIONAL_LEAD: "regional lead"}[role]
    assert values(at.success) == [f"Added Mo New (mo.new) as {label}."]
    row = database.execute_returning_dicts("SELECT * FROM users WHERE username = 'mo.new'")[0]
    place = {"branch_id": place_id, "region_id": None} if role == BRANCH_MANAGER else {"branch_id": None}
    place.setdefault("region_id", place_id)
    assert {k: row[k] for k in ("display_name", "role", "branch_id", "region_id", "disabled")} == {
        "display_name": "Mo New",
        "role": role,
        **place,
        "disabled": 0,
    }
    assert row["password_hash"].startswith("$argon2id$")
    assert users.sign_in(database, "mo.new", "a long new password").role == role


def test_that_adding_a_user_with_mismatched_passwords_creates_nothing(world, database):
    """Test that the Users page refuses two different passwords with the exact message and adds no account."""
    at = open_page("ada", "users")
    at.selectbox(key="users_add_role").select(BRANCH_MANAGER).run()
    fill(
        at,
        users_add_username="mo.new",
        users_add_full_name="Mo New",
        users_add_branch=world.york,
        users_add_password="a long new password",
        users_add_password_again="a long new passw0rd",
    )
    button(at, "Add user").click().run()
    assert values(at.error) == ["Password again: the two passwords differ."]
    assert database.execute("SELECT count(*) FROM users WHERE username = 'mo.new'").fetchone() == (0,)


def test_that_an_administrator_adds_a_region_and_a_branch(world, database):
    """Test that the Regions and branches page adds a region, then a branch in it."""
    at = open_page("ada", "branches")
    fill(at, branches_region_name="Wales")
    button(at, "Add region").click().run()
    assert not at.exception, at.exception
    assert values(at.success) == ["Added region Wales."]
    [wales] = database.execute_returning_dicts("SELECT id, name FROM regions WHERE name = 'Wales'")

    fill(at, branches_branch_name="Cardiff", branches_branch_region=wales["id"])
    button(at, "Add branch").click().run()
    assert not at.exception, at.exception
    assert values(at.success) == ["Added branch Cardiff."]
    assert database.execute_returning_dicts("SELECT name, region_id FROM branches WHERE name = 'Cardiff'") == [
        {"name": "Cardiff", "region_id": wales["id"]}
    ]
    regions_table = at.dataframe[0].value
    assert regions_table.to_dict("records")[-1] == {"Region": "Wales", "Branches": 1}


def test_that_adding_a_branch_with_a_taken_name_shows_why(world, database):
    """Test that a branch name already in use is refused with the exact message and adds nothing."""
    at = open_page("ada", "branches")
    fill(at, branches_branch_name="leeds", branches_branch_region=world.south)
    button(at, "Add branch").click().run()
    assert values(at.error) == ["A branch called “leeds” already exists."]
    assert database["branches"].count == 3


TWO_MENUS = """
import streamlit as st

from crm.access import Actor
from crm.ui.menu import menu_for

lead = Actor(id=7, username="lead", display_name="Lead", role="regional_lead", region_id=1)
first, second = menu_for(lead), menu_for(lead)
first["Insight"][0]._can_be_called = True  # what st.navigation marks on the page a rerun is about to run
st.session_state["seen"] = {
    "sections": list(first),
    "same_pages": [page.url_path for page in first["Work"]] == [page.url_path for page in second["Work"]],
    "shared_objects": any(a is b for a, b in zip(first["Work"], second["Work"], strict=True)),
    "other_rerun_may_run_it": second["Insight"][0]._can_be_called,
    "default": [page.title for section in first.values() for page in section if page._default],
}
"""


def test_that_each_rerun_gets_its_own_copy_of_the_roles_menu(tmp_path):
    """Made once per role and copied per rerun: navigation marks on a page object which page a rerun may run, and
    two users' reruns of the same page at once must not unmark each other's."""
    (tmp_path / "pages").mkdir()
    for page in PAGES:
        (tmp_path / page.path).write_text("")
    script = tmp_path / "menu_app.py"
    script.write_text(TWO_MENUS)
    at = AppTest.from_file(str(script)).run()
    assert not at.exception
    assert at.session_state["seen"] == {
        "sections": ["Work", "Insight", "Admin"],
        "same_pages": True,
        "shared_objects": False,
        "other_rerun_may_run_it": False,
        "default": ["Start"],
    }


def _two_tables() -> None:
    from crm.ui.widgets import rows_table

    rows_table(
        [{"Name": "Ann Ash", "Referrals": 3, "Hours": None}, {"Name": "Bob Brown", "Referrals": 0, "Hours": 2.5}]
    )
    rows_table([{"Ward": "A", "Beds": 3}, {"Ward": "B", "Beds": "closed"}])  # a column Arrow cannot type


def test_that_rows_table_shows_rows_as_given_and_rows_of_mixed_values_too():
    at = AppTest.from_function(_two_tables).run()
    assert not at.exception
    typed, mixed = at.dataframe
    assert list(typed.value.columns) == ["Name", "Referrals", "Hours"]
    assert typed.value.astype(object).where(typed.value.notna(), None).to_dict("records") == [
        {"Name": "Ann Ash", "Referrals": 3, "Hours": None},
        {"Name": "Bob Brown", "Referrals": 0, "Hours": 2.5},
    ]
    assert mixed.value.astype(str).to_dict("records") == [{"Ward": "A", "Beds": "3"}, {"Ward": "B", "Beds": "closed"}]
