"""Page tests (Streamlit AppTest) for Backups: administrators get a download of a consistent copy, nobody else
gets the page at all."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from crm import audit
from tests.conftest import PASSWORD
from tests.pagehelpers import button, fill, run_app_on

ROOT = Path(__file__).resolve().parents[1]
NOT_FOR_YOUR_ROLE = "This page is not available to your role."


@pytest.fixture(autouse=True)
def app_env(monkeypatch, db_path):
    """Every test's app runs on the test's own database file, with Streamlit's folder-based page mode off (as
    tests/test_pages.py explains: AppTest would otherwise run pages/<page>.py without app.py after a rerun)."""
    run_app_on(monkeypatch, db_path, without_cookies=False)


def signed_in(username: str, script: Path = ROOT / "app.py") -> AppTest:
    """A new tab on ``script``, signed in as ``username`` through the sign-in form."""
    at = AppTest.from_file(str(script), default_timeout=60).run()
    fill(at, signin_username=username, signin_password=PASSWORD)
    button(at, "Sign in").click().run()
    assert not at.exception, at.exception
    return at


def test_that_an_administrator_gets_the_download(world):
    """Test that an administrator opening Backups sees its title, no error, and the download button (whose
    backup is only taken when it is clicked: opening the page writes no backup and no audit entry)."""
    at = signed_in("ada")
    at.switch_page("pages/backups.py").run()

    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Backups"]
    assert [e.value for e in at.error] == []
    download = at.get_by_key("backups_download")
    assert (download.type, download.proto.label) == ("download_button", "Download a backup")
    assert audit.entries(world.db, "database") == []


def test_that_a_branch_manager_is_refused(world):
    """Test that Backups is not in a branch manager's menu, and that opening the page file directly shows the
    refusal and nothing else (no title, no download)."""
    menu = signed_in("manager.leeds")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        menu.switch_page("pages/backups.py")

    at = signed_in("manager.leeds", ROOT / "pages" / "backups.py")

    assert [e.value for e in at.error] == [NOT_FOR_YOUR_ROLE]
    assert [t.value for t in at.title] == []
    assert [b.key for b in at.get("download_button")] == []
