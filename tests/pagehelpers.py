"""Helpers for the page tests: driving AppTest like a user, and reading everything a page rendered."""

import re
from pathlib import Path
from types import SimpleNamespace

import streamlit.runtime.context
from streamlit.proto.TextInput_pb2 import TextInput as TextInputProto
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Button

from crm.ui.pages import PAGES
from tests.conftest import PASSWORD, PHONE_USER_AGENT

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
PAGES_DIR = ROOT / Path(PAGES[0].path).parent
PAGE_FILES = sorted(PAGES_DIR.glob("*.py"))
TIMEOUT = 30  # seconds per script run: generous, argon2 hashing and demo loading are slow on purpose

SIGN_IN_TITLE = "Partner CRM"
SET_UP_TITLE = "Set up Partner CRM"
NOT_FOR_YOUR_ROLE = "This page is not available to your role."


def run_app_on(monkeypatch, db_path: Path, *, without_cookies: bool = True) -> None:
    """Point the app at the test's own database file (CRM_DB), with the default idle limit.

    AppTest forgets before every run that app.py uses st.navigation, and with a pages/ folder present falls back
    to Streamlit's old folder-based multipage mode: from the second run on it would run pages/<page>.py on its
    own, without app.py (no menu, no sidebar). A real server forgets nothing once app.py has called
    st.navigation, so keep the folder mode off, as it is once app.py has run. (Pages run on their own, as on a
    new server before anyone has opened its root address, are tested by running the page files directly; the
    menu that folder mode shows is tested in test_browser.py.) ``without_cookies`` gives AppTest no client
    context, so no cookie from an earlier test's session can sign a later one in.
    """
    monkeypatch.setenv("CRM_DB", str(db_path))
    monkeypatch.delenv("CRM_IDLE_MINUTES", raising=False)
    if without_cookies:
        monkeypatch.setattr(streamlit.runtime.context, "_get_client_context", lambda: None)
    real_init = PagesManager.__init__

    def init_without_folder_mode(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init_without_folder_mode)


def as_a_phone(monkeypatch) -> None:
    """Every tab run from here on is a phone's browser: its User-Agent says so (crm.ui.layout.on_phone), and it
    sends no cookie, as with ``run_app_on``'s default."""
    phone = SimpleNamespace(headers=[("User-Agent", PHONE_USER_AGENT)], cookies={}, remote_ip=None)
    monkeypatch.setattr(streamlit.runtime.context, "_get_client_context", lambda: phone)


def new_app(script: Path = APP) -> AppTest:
    """A fresh browser tab on ``script`` (app.py by default), not yet run."""
    return AppTest.from_file(str(script), default_timeout=TIMEOUT)


def button(at: AppTest, label: str) -> Button:
    """The one button (or form submit button) on screen with this label."""
    matches = [b for b in at.button if b.label == label]
    assert len(matches) == 1, f"expected one button {label!r}, found {[b.label for b in at.button]}"
    return matches[0]


def open_section(at: AppTest, label: str) -> AppTest:
    """Open the closed expander with this label and run, as a click on its header does: its contents are drawn
    only while it is open (crm.ui.layout.drawn_when_open), and its key (in its element id) holds whether it is."""
    matches = [e for e in at.expander if e.label == label]
    assert len(matches) == 1, f"expected one expander {label!r}, found {[e.label for e in at.expander]}"
    key = re.fullmatch(r"\$\$ID-[0-9a-f]+-(.+)", matches[0].proto.id)
    assert key, f"the expander {label!r} keeps no state: it is not drawn only while open"
    assert not at.session_state[key[1]], f"the expander {label!r} is open already"
    at.session_state[key[1]] = True
    return at.run()


def chart_table(at: AppTest, name: str):
    """The data table (a DataFrame) under the chart called ``name`` (crm.ui.widgets.chart_with_data), its
    section opened first when it is closed (and left open)."""
    label = f"{name}: data as a table"
    if not [e for e in at.expander if e.label == label][0].dataframe:
        open_section(at, label)
    [expander] = [e for e in at.expander if e.label == label]
    [frame] = expander.dataframe
    return frame.value


def fill(at: AppTest, **values: object) -> AppTest:
    """Set keyed widgets (text inputs, text areas, checkboxes, selectboxes) by key, without running."""
    for key, value in values.items():
        at.get_by_key(key).set_value(value)
    return at


def submit_sign_in(at: AppTest, username: str, password: str = PASSWORD) -> AppTest:
    """Fill the sign-in form on screen and press Sign in."""
    fill(at, signin_username=username, signin_password=password)
    return button(at, "Sign in").click().run()


def sign_in(at: AppTest, username: str, password: str = PASSWORD) -> AppTest:
    """Open the app (if not yet run) and sign in; fails the test unless the sign-in worked."""
    if not at.text_input:
        at.run()
    submit_sign_in(at, username, password)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert not is_sign_in_form(at), "still on the sign-in form"
    return at


def page_path(name: str) -> str:
    """The path (as PAGES lists it) of the page in ``<name>.py``."""
    paths = [page.path for page in PAGES if Path(page.path).stem == name]
    assert paths, f"no page {name}.py in crm.ui.pages.PAGES"
    return paths[0]


def open_page(username: str, name: str) -> AppTest:
    """A new tab, signed in as ``username``, on the page in ``<name>.py`` (e.g. "contacts")."""
    at = sign_in(new_app(), username)
    at.switch_page(page_path(name)).run()
    assert not at.exception, at.exception
    return at


def is_sign_in_form(at: AppTest) -> bool:
    """Whether the screen is the sign-in form: a user name box and a password box, and nothing else to type in."""
    inputs = {(t.label, t.proto.type) for t in at.text_input}
    return inputs == {("User name", TextInputProto.DEFAULT), ("Password", TextInputProto.PASSWORD)}


def values(elements) -> list:
    """The values of a list of elements (titles, errors, warnings...), for exact comparisons."""
    return [e.value for e in elements]


def rendered_text(at: AppTest) -> str:
    """Everything the last run sent to the browser, as text: every element's message (labels, values,
    options, markdown, table cells), so a test can check that some piece of data was never shown."""
    parts = []
    for block in (at.main, at.sidebar):
        for node in block:
            proto = getattr(node, "proto", None)
            if proto is not None:
                parts.append(proto.SerializeToString().decode("utf-8", errors="replace"))
                parts.append(str(proto))
            if node.type in ("arrow_data_frame", "dataframe", "table"):
                parts.append(node.value.to_csv())
    return "\n".join(parts)


def leaf_types(at: AppTest) -> list[str]:
    """The type of every element in the main area (containers left out), in order."""
    return [node.type for node in at.main if not hasattr(node, "children")]


def shown_in(at: AppTest, key: str) -> list[tuple]:
    """What the keyed container ``key`` (a row of a list) shows, in order: ("markdown", text), ("caption", text),
    ("page_link", label, page address, query string) and ("button", key, label), so a test can compare a whole
    row at once: the name's link target, the tel: and mailto: links, the buttons."""
    shown: list[tuple] = []
    for node in at.main.get_by_key(key):
        if node.type in ("markdown", "caption"):
            shown.append((node.type, node.value))
        elif node.type == "page_link":
            shown.append(("page_link", node.proto.label, node.proto.page, node.proto.query_string))
        elif node.type == "button":
            shown.append(("button", node.key, node.label))
        elif not hasattr(node, "children"):
            shown.append((node.type,))
    return shown
