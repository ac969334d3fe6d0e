"""The load benchmark's pieces that need no server: its floor page in app.py, and its accounts."""

import io
import logging
import tomllib

import pytest

from crm import bench, loadbench, users
from crm.access import ADMIN, BRANCH_MANAGER, REGIONAL_LEAD
from crm.handles import Handles
from tests.pagehelpers import ROOT, is_sign_in_form, new_app, run_app_on, values


@pytest.mark.parametrize("setting", [None, "0"])
def test_that_the_floor_page_is_not_served_unless_the_benchmark_started_the_server(
    monkeypatch, db_path, world, setting
):
    """Test that ?bench=floor shows the sign-in form, not the title-only floor page, on a server that the load
    benchmark did not start (CRM_BENCH_FLOOR unset or not "1")."""
    run_app_on(monkeypatch, db_path)
    if setting is None:
        monkeypatch.delenv(loadbench.FLOOR_ENV, raising=False)
    else:
        monkeypatch.setenv(loadbench.FLOOR_ENV, setting)
    at = new_app()
    at.query_params["bench"] = "floor"
    at.run()
    assert not at.exception
    assert is_sign_in_form(at)
    assert "Floor" not in values(at.title)


def test_that_the_floor_page_draws_only_a_title_when_the_benchmark_started_the_server(monkeypatch, db_path, world):
    """Test that with CRM_BENCH_FLOOR=1, ?bench=floor draws one title and nothing else (no sign-in form)."""
    run_app_on(monkeypatch, db_path)
    monkeypatch.setenv(loadbench.FLOOR_ENV, "1")
    at = new_app()
    at.query_params["bench"] = "floor"
    at.run()
    assert not at.exception
    assert values(at.title) == ["Floor"]
    assert [node.type for node in at.main if not hasattr(node, "children")] == ["title"]


def test_that_the_bench_signs_in_a_mix_of_roles_and_reuses_its_accounts(db_path, world, database):
    """Test that prepare_users signs in 10 users (7 branch managers, 2 regional leads, 1 administrator) with
    working session cookies, every second manager writing, and that a second run reuses the same accounts."""
    first = loadbench.prepare_users(db_path, 10, writers_every=2, seed=1)
    again = loadbench.prepare_users(db_path, 10, writers_every=2, seed=1)
    roles = sorted(u.role for u in first)
    assert roles == sorted([BRANCH_MANAGER] * 7 + [REGIONAL_LEAD] * 2 + [ADMIN])
    assert sum(u.writer for u in first) == 4
    assert all(not u.writer for u in first if u.role != BRANCH_MANAGER)
    assert sorted(u.name for u in again) == sorted(u.name for u in first)
    assert database.execute("SELECT count(*) FROM users WHERE username LIKE 'load.%'").fetchone()[0] == 10
    for user in first:
        token = Handles().exchange(database, user.cookie.removeprefix("crm_session="))
        assert token is not None and users.resume_session(database, token, 30).username == user.name


def test_that_the_bench_page_runs_log_no_streamlit_warnings(tmp_path, db_path, database, monkeypatch):
    """Test that timing a page with AppTest, with the cache cleared as for a first view, passes no warning to
    Streamlit's log handlers ("missing ScriptRunContext", "No runtime found"): python -m crm bench prints none.

    Regression test: every AppTest run in the bench printed "missing ScriptRunContext" (screens of it)."""
    monkeypatch.setenv("CRM_DB", str(db_path))
    page = tmp_path / "title.py"
    page.write_text("import streamlit as st\n\nst.title('Floor')\n")
    seen: list[logging.LogRecord] = []
    catcher = logging.Handler()
    catcher.emit = seen.append  # type: ignore[method-assign]
    names = ["streamlit.runtime.scriptrunner_utils.script_run_context", "streamlit.runtime.caching.cache_data_api"]
    for name in names:
        logging.getLogger(name).addHandler(catcher)
    try:
        run = bench._page_runner(str(page), db_path, None, cold=True)
        run()
        run()
    finally:
        for name in names:
            logging.getLogger(name).removeHandler(catcher)
    assert [(r.name, r.getMessage()) for r in seen if r.levelno >= logging.WARNING] == []


def test_that_streamlit_skips_the_full_garbage_collection_after_every_script_run():
    """Test that the project's Streamlit configuration turns off runner.postScriptGC.

    Regression test: Streamlit's default gc.collect(2) after every script run cost about as much as a
    title-only page on every rerun of every user (py-spy: half of the script thread's time under load)."""
    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert settings["runner"]["postScriptGC"] is False


def test_that_the_report_gives_each_pages_median_time_ratio_and_messages_per_role():
    tally = loadbench.Tally()
    for page, role, seconds, messages in [
        (loadbench.FLOOR, BRANCH_MANAGER, 0.004, 6),
        (loadbench.FLOOR, ADMIN, 0.006, 6),
        ("Contacts", BRANCH_MANAGER, 0.010, 30),
        ("Contacts", BRANCH_MANAGER, 0.014, 40),
        ("Contacts", BRANCH_MANAGER, 0.020, 50),
        ("Contacts", ADMIN, 0.025, 60),
    ]:
        loadbench._record(tally, page, role, loadbench.Outcome(seconds=seconds, messages=messages))
    tally.elapsed = 1.0
    out = io.StringIO()
    loadbench.print_report([loadbench.Report(1, tally, 0, [])], "Heading.", out)
    lines = out.getvalue().splitlines()
    start = lines.index(
        "Median per page and role, 1 worker (ms, ÷ the floor's median of 5 ms, and the messages the rerun sent, "
        "the floor's 6):"
    )
    assert lines[start + 2 : start + 5] == [
        "| page | branch manager | regional lead | admin |",
        "| --- | --- | --- | --- |",
        "| Contacts | 14, 2.8x, 40 msgs (n=3) |  | 25, 5.0x, 60 msgs (n=1) |",
    ]
