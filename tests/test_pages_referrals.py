"""Page tests for referrals with Streamlit's AppTest: logging one from a contact's page (a touch with them, the
NHS number confirmation), the Referrals page's list and outcome form, its figures for each role's scope, and the
referral count beside each branch's coverage score."""

from datetime import timedelta

import pytest
import streamlit
from streamlit.testing.v1 import AppTest

from crm import clock, referrals
from tests.conftest import World, copy_world
from tests.pagehelpers import button, chart_table, fill, new_app, run_app_on, sign_in, values

SAVE_ANYWAY = "It is not client data: save anyway"
NHS_WARNING = (
    "Your reference: contains what looks like an NHS number. Partner records must not hold details of the people "
    "you support: remove it, or confirm that it is not an NHS number."
)


@pytest.fixture(autouse=True)
def app_env(monkeypatch, db_path):
    run_app_on(monkeypatch, db_path)
    streamlit.cache_data.clear()
    streamlit.cache_resource.clear()
    yield
    streamlit.cache_data.clear()
    streamlit.cache_resource.clear()


@pytest.fixture
def world(template, db_path) -> World:
    path, built = template
    scene = copy_world(path, built, db_path)
    yield scene
    scene.db.close()


def open_on(username: str, page: str, **query_params: str) -> AppTest:
    at = sign_in(new_app(), username)
    at.switch_page(page)
    at.query_params.update(query_params)
    at.run()
    assert not at.exception, at.exception
    return at


def two_hours_ago() -> tuple:
    moment = (clock.now() - timedelta(hours=2)).astimezone(referrals.UK).replace(second=0, tzinfo=None)
    return moment.date(), moment.time()


def test_that_a_referral_logged_on_a_contacts_page_is_stored_touches_them_and_is_listed(world):
    """Test that the "Log a referral" pop-over on a contact's page stores the referral in their branch (UK time
    typed, UTC stored), logs the referral interaction that touches them, and lists it under "Referrals sent"."""
    priya = world.contact(world.leeds, "Priya Patel")
    at = open_on("manager.leeds", "pages/contacts.py", contact=str(priya))
    assert [p.proto.popover.label for p in at.get("popover")] == ["Log an interaction", "Log a referral"]
    key = f"contacts_referral_{priya}"
    day, moment = two_hours_ago()
    fill(
        at,
        **{
            f"{key}_received_date": day,
            f"{key}_received_time": moment,
            f"{key}_channel": "portal",
            f"{key}_urgency": "urgent",
            f"{key}_hours": 14.0,
            f"{key}_area": "LS6",
            f"{key}_reference": "CM-42",
        },
    )
    button(at, "Save referral").click().run()
    assert not at.exception, at.exception
    assert not at.error, values(at.error)

    [row] = world.db.execute_returning_dicts("SELECT * FROM referrals")
    expected_stamp = referrals.to_stamp(referrals.datetime.combine(day, moment))
    assert {k: row[k] for k in ("branch_id", "contact_id", "organisation_id", "channel", "urgency")} == {
        "branch_id": world.leeds,
        "contact_id": priya,
        "organisation_id": world.gp,
        "channel": "portal",
        "urgency": "urgent",
    }
    assert (row["received_at"], row["hours_per_week"], row["area"], row["provider_reference"], row["outcome"]) == (
        expected_stamp,
        14.0,
        "LS6",
        "CM-42",
        "open",
    )
    kind, occurred = world.db.execute(
        "SELECT kind_code, occurred_on FROM interactions WHERE id = ?", [row["interaction_id"]]
    ).fetchone()
    assert (kind, occurred) == ("REFERRAL_RECEIVED", day.isoformat())
    last = world.db.execute("SELECT last_touched_on FROM contacts WHERE id = ?", [priya]).fetchone()[0]
    assert last == day.isoformat()
    tables = [t.value for t in at.dataframe]
    sent = next(t for t in tables if "Outcome" in t.columns)
    assert sent[["From", "Organisation", "How", "Urgency", "Outcome", "Your reference"]].to_dict("records") == [
        {
            "From": "Priya Patel",
            "Organisation": "Hyde Park Surgery",
            "How": "Council portal",
            "Urgency": "Urgent",
            "Outcome": "Open",
            "Your reference": "CM-42",
        }
    ]


def test_that_an_nhs_number_as_the_reference_is_saved_only_once_confirmed(world):
    """Test that a reference that looks like an NHS number shows the warning and saves nothing until the user
    confirms it is not client data."""
    priya = world.contact(world.leeds, "Priya Patel")
    at = open_on("manager.leeds", "pages/contacts.py", contact=str(priya))
    key = f"contacts_referral_{priya}"
    day, moment = two_hours_ago()
    fill(at, **{f"{key}_received_date": day, f"{key}_received_time": moment, f"{key}_reference": "9434765919"})
    button(at, "Save referral").click().run()

    assert values(at.warning) == [NHS_WARNING]
    assert world.db.table("referrals").count == 0
    button(at, SAVE_ANYWAY).click().run()
    assert [r["provider_reference"] for r in world.db["referrals"].rows] == ["9434765919"]


def test_that_the_outcome_form_records_a_decline_with_its_reason(world):
    """Test that selecting a referral on the Referrals page and saving "declined" with a reason stores it, and
    that a decline without a reason is refused with the rule's message."""
    priya = world.contact(world.leeds, "Priya Patel")
    moment = (clock.now() - timedelta(days=2)).astimezone(referrals.UK).replace(second=0, tzinfo=None)
    referral_id = referrals.log(
        world.db,
        world.admin,
        {
            "branch_id": world.leeds,
            "received_at": moment,
            "contact_id": priya,
            "channel": "phone",
            "urgency": "routine",
        },
    )
    at = open_on("manager.leeds", "pages/referrals.py")
    [listed] = [t for t in at.dataframe if "From" in t.value.columns]
    assert listed.value["Outcome"].tolist() == ["Open"]
    # AppTest cannot click a table row: set the selection the way a click does.
    at.session_state["referrals_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert not at.exception, at.exception
    key = f"referrals_outcome_{referral_id}_1"
    decided = moment + timedelta(hours=5)
    fill(at, **{f"{key}_decided_date": decided.date(), f"{key}_decided_time": decided.time()})
    at.radio(key=f"{key}_outcome").set_value("declined")
    button(at, "Save outcome").click().run()
    assert values(at.error) == ["Reason declined: choose a reason."]
    assert referrals.get(world.db, world.admin, referral_id)["outcome"] == "open"

    at.selectbox(key=f"{key}_reason").select("NO_CAPACITY")
    button(at, "Save outcome").click().run()
    assert not at.error, values(at.error)
    after = referrals.get(world.db, world.admin, referral_id)
    assert (after["outcome"], after["decline_reason"], after["response_hours"]) == ("declined", "NO_CAPACITY", 5.0)


@pytest.mark.parametrize(("username", "branches"), [("lead.north", ["Leeds", "York"]), ("manager.york", ["York"])])
def test_that_the_figures_are_the_users_scope(world, username, branches):
    """Test that the Referrals page's list and figures show only the user's branches, with the same numbers as
    referrals.measures for them."""
    moment = (clock.now() - timedelta(days=3)).astimezone(referrals.UK).replace(second=0, tzinfo=None)
    for branch, organisation in ((world.leeds, world.gp), (world.york, world.ot), (world.bristol, world.council)):
        referrals.log(
            world.db,
            world.admin,
            {"branch_id": branch, "received_at": moment, "organisation_id": organisation, "channel": "email"}
            | {"urgency": "routine"},
        )
    at = open_on(username, "pages/referrals.py")
    [listed] = [t for t in at.dataframe if "From" in t.value.columns]
    organisations = {"Leeds": "Hyde Park Surgery", "York": "Leeds Community OT"}
    assert sorted(listed.value["Organisation"]) == sorted(organisations[b] for b in branches)
    figures = chart_table(at, "Referrals by outcome per branch")
    assert figures["Branch"].tolist() == branches
    assert figures["Received"].tolist() == [1] * len(branches)
    assert [m.value for m in at.metric][:2] == [str(len(branches)), "0"]


def test_that_coverage_shows_referrals_in_the_last_90_days_beside_each_score(world):
    """Test that the Coverage page's branch league data has each branch's referrals of the last 90 days."""
    moment = (clock.now() - timedelta(days=10)).astimezone(referrals.UK).replace(second=0, tzinfo=None)
    old = (clock.now() - timedelta(days=120)).astimezone(referrals.UK).replace(second=0, tzinfo=None)
    for when in (moment, moment, old):
        referrals.log(
            world.db,
            world.admin,
            {"branch_id": world.leeds, "received_at": when, "organisation_id": world.gp, "channel": "email"}
            | {"urgency": "routine"},
        )
    at = open_on("lead.north", "pages/coverage.py")
    at.session_state["coverage_view"] = "Branch league"  # the tab the league is drawn in, as a click opens it
    at.run()
    league = chart_table(at, "Branch league")
    assert dict(zip(league["Branch"], league["Referrals, last 90 days"], strict=True)) == {"Leeds": 2, "York": 0}


# The list one page at a time, and the figures kept between reruns (issue 13).

PAGE_NAMES = ["Ann", "Bea", "Cal", "Dev", "Eve", "Fay", "Gus"]  # received one day apart, Ann the newest


def log_from(world: World, names: list[str]) -> dict[str, int]:
    """One referral from each named contact (York and Leeds in turn), received a day apart, the first newest;
    returns their ids by name."""
    ids = {}
    for days, name in enumerate(names, start=1):
        branch = (world.leeds, world.york)[days % 2]
        moment = (clock.now() - timedelta(days=days)).astimezone(referrals.UK).replace(second=0, tzinfo=None)
        values = {"branch_id": branch, "received_at": moment, "contact_id": world.contact(branch, name)}
        ids[name] = referrals.log(world.db, world.admin, values | {"channel": "phone", "urgency": "routine"})
    return ids


def listed(at: AppTest) -> list[str]:
    [table] = [t.value for t in at.dataframe if "From" in t.value.columns]
    return table["From"].tolist()


def count_caption(at: AppTest) -> str:
    [caption] = [c for c in values(at.caption) if c.split(" ", 1)[0].isdigit()]
    return caption


def test_that_next_and_previous_move_through_the_pages_of_referrals(world, monkeypatch):
    """Test that with more referrals than a page holds, the Referrals page lists the newest page with the count,
    Next and Previous move through the pages, a referral selected on the second page opens the outcome form of
    that referral (named by id, not by its row), and a new filter starts again on the first page."""
    monkeypatch.setattr(referrals, "PAGE_SIZE", 3)  # seven referrals make three pages of three
    ids = log_from(world, PAGE_NAMES)
    at = open_on("lead.north", "pages/referrals.py")
    assert listed(at) == ["Ann", "Bea", "Cal"]
    assert count_caption(at) == (
        "7 referrals, 1 to 3 shown, newest first. Select a referral to record or correct its outcome."
    )
    assert "Page 1 of 3" in values(at.markdown)
    assert button(at, "Previous").disabled

    button(at, "Next").click().run()
    assert listed(at) == ["Dev", "Eve", "Fay"]
    assert "Page 2 of 3" in values(at.markdown)
    at.session_state["referrals_table"] = {"selection": {"rows": [1], "columns": []}}  # as a click on Eve's row
    at.run()
    assert not at.exception, at.exception
    assert at.radio(key=f"referrals_outcome_{ids['Eve']}_1_outcome").value == "open"
    assert any(m.startswith("**Outcome of the referral from Eve**") for m in values(at.markdown))

    button(at, "Next").click().run()
    assert listed(at) == ["Gus"]
    [table] = [t.value for t in at.dataframe if "From" in t.value.columns]
    assert table["Branch"].tolist() == ["York"]  # the lead's list may hold two branches: a page of one keeps it
    assert count_caption(at).startswith("7 referrals, 7 to 7 shown, newest first.")
    assert button(at, "Next").disabled
    # The selection was Eve's row on the page before; it names no row here, and the form is still Eve's.
    assert at.radio(key=f"referrals_outcome_{ids['Eve']}_1_outcome").value == "open"
    button(at, "Previous").click().run()
    assert listed(at) == ["Dev", "Eve", "Fay"]

    at.selectbox(key="referrals_branch").select(world.york).run()
    assert listed(at) == ["Ann", "Cal", "Eve"]
    assert count_caption(at).startswith("4 referrals, 1 to 3 shown, newest first.")
    assert "Page 1 of 2" in values(at.markdown)


def test_that_one_page_of_referrals_shows_no_pager(world):
    """Test that a list that fits one page says how many there are and offers no Previous or Next."""
    log_from(world, PAGE_NAMES[:2])
    at = open_on("manager.york", "pages/referrals.py")
    assert listed(at) == ["Ann"]
    assert count_caption(at) == "1 referral, newest first. Select a referral to record or correct its outcome."
    assert [b.label for b in at.button if b.label in ("Previous", "Next")] == []


def figures_shown(at: AppTest) -> dict:
    """The Referrals page's headline figures and its table of figures per branch."""
    table = chart_table(at, "Referrals by outcome per branch")
    return {
        "metrics": [m.value for m in at.metric],
        "per branch": dict(zip(table["Branch"], table["Received"], strict=True)),
    }


def test_that_the_figures_follow_a_change_at_once_and_stay_each_users_own(world):
    """Test that the Referrals page's figures, kept between reruns while the data is unchanged, show a referral
    logged and an outcome recorded as soon as the page runs again, and that a second user viewing the same
    filters sees their own branch's figures, not the first user's."""
    ids = log_from(world, PAGE_NAMES[:3])  # Leeds: Bea; York: Ann and Cal
    at = open_on("ada", "pages/referrals.py")
    assert figures_shown(at) == {"metrics": ["3", "0", "n/a"], "per branch": {"Leeds": 1, "York": 2}}

    log_from(world, ["Dan"])  # received yesterday at York
    decided = (clock.now() - timedelta(hours=1)).astimezone(referrals.UK).replace(second=0, tzinfo=None)
    referrals.record_outcome(world.db, world.admin, ids["Bea"], {"outcome": "accepted", "decided_at": decided}, 1)
    at.run()
    assert figures_shown(at) == {"metrics": ["4", "1", "100%"], "per branch": {"Leeds": 1, "York": 3}}

    york = open_on("manager.york", "pages/referrals.py")
    assert figures_shown(york) == {"metrics": ["3", "0", "n/a"], "per branch": {"York": 3}}


def test_that_log_a_referral_on_the_referrals_page_is_drawn_when_opened_and_logs_one_from_a_contact(world):
    """Test that the Referrals page's "Log a referral" section draws its form only once opened, and that a
    referral from one of the branch's contacts saved there is stored in the manager's branch and listed."""
    priya = world.contact(world.leeds, "Priya Patel")
    at = open_on("manager.leeds", "pages/referrals.py")
    assert [e.label for e in at.expander][0] == "Log a referral"
    assert [w for w in at.date_input if w.key == "referrals_log_received_date"] == []  # closed: not drawn

    at.session_state["referrals_log_open"] = True  # as a click on the section opens it
    at.run()
    at.selectbox(key=f"referrals_log_contact_{world.leeds}").set_value(priya).run()
    day, moment = two_hours_ago()
    fill(at, referrals_log_received_date=day, referrals_log_received_time=moment, referrals_log_channel="email")
    button(at, "Save referral").click().run()

    assert not at.exception, at.exception
    assert not at.error, values(at.error)
    [row] = world.db.execute_returning_dicts("SELECT branch_id, contact_id, organisation_id, channel FROM referrals")
    assert row == {"branch_id": world.leeds, "contact_id": priya, "organisation_id": world.gp, "channel": "email"}
    assert "Referral logged." in values(at.success)
    [listed] = [t.value for t in at.dataframe if "From" in t.value.columns]
    assert listed["From"].tolist() == ["Priya Patel"]


def test_that_the_figures_draw_one_chart_at_a_time(world):
    """Test that the figures' tabs draw only the open tab's chart and table: by outcome first, then each other
    one when opened."""
    for when in (two_hours_ago(),):
        referrals.log(
            world.db,
            world.admin,
            {"branch_id": world.leeds, "received_at": referrals.datetime.combine(*when), "organisation_id": world.gp}
            | {"channel": "email", "urgency": "routine"},
        )
    at = open_on("manager.leeds", "pages/referrals.py")
    charts_shown = {}
    for tab in ("By outcome", "Response time", "Declines", "Per month"):
        at.session_state["referrals_view"] = tab
        at.run()
        assert not at.exception, at.exception
        charts_shown[tab] = [e.label for e in at.expander if e.label.endswith(": data as a table")]
    assert [t.label for t in at.tabs] == ["By outcome", "Response time", "Declines", "Per month"]
    assert charts_shown == {
        "By outcome": ["Referrals by outcome per branch: data as a table"],
        "Response time": ["Median response time per branch: data as a table"],
        "Declines": ["Declines by reason: data as a table"],
        "Per month": ["Referrals per month: data as a table"],
    }
