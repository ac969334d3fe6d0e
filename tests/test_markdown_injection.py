"""Markdown injection: text users typed (names, summaries, quotes...) reaches elements that render markdown (titles,
captions, messages, labels, buttons, tabs, expanders). It must show as typed, never as a link, image, heading or
emoji. Regression: a contact named ``[Reset your password](https://evil.example/reset)`` was a live link on
Retention review, and an organisation's name became a link in another branch's "Logged: ..." message.

Two layers: crm.ui.widgets.md itself, checked by rendering its output through a CommonMark parser; and every page
for every role on a database where every text a user can type is the hostile string, checked element by element
(AppTest gives each element's markdown source), so a new unescaped call fails here.
"""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from google.protobuf.descriptor import FieldDescriptor
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from crm import branches, clock, contacts, db, interactions, organisations, settings, testimonials, users
from crm.access import ADMIN, BRANCH_MANAGER, REGIONAL_LEAD
from crm.ui.pages import PAGES
from crm.ui.widgets import flash, md, show_error
from tests.conftest import PASSWORD, copy_database
from tests.pagehelpers import new_app, run_app_on, sign_in

HOSTILE = (
    "[Reset your password](https://evil.example/reset) ![px](https://evil.example/px.png) "
    "www.evil.example a@evil.example :smile: **bold**"
)
HOSTILE_SHORT = (
    "[Reset](https://evil.example/r) ![px](https://evil.example/p.png) :smile: **bold**"  # 100 characters at most
)
WORD_JOINER = "\u2060"

# What markdown would make of unescaped user text: a link or image ("](" not escaped), an image opener, bold. Then
# what Streamlit links or replaces even after backslash escapes (so they are looked for with backslashes removed):
# a bare URL, a www address, an email address, an emoji shortcode.
UNSAFE = {
    "link or image": re.compile(r"(?<!\\)\]\("),
    "image": re.compile(r"(?<!\\)!\["),
    "bold": re.compile(r"(?<!\\)\*\*bold"),
}
UNSAFE_EVEN_ESCAPED = {
    "bare URL": re.compile(r"https?://"),
    "www address": re.compile(r"www\.evil"),
    "email address": re.compile(r"@evil"),
    "emoji": re.compile(r":smile:"),
}
# A contact's phone and email are meant to be tel: and mailto: links (issue 12): their targets are left out of the
# check (the link text, escaped user text, is still checked).
CONTACT_LINK_TARGET = re.compile(r"\]\((?:mailto|tel):[^)\s]*\)")
# The fields of Streamlit's element messages that the browser renders as markdown (radio options too).
MARKDOWN_FIELDS = {"body", "label", "help"}


def commonmark(source: str) -> str:
    """HTML from CommonMark plus GFM tables and strikethrough (Streamlit's markdown, without its extras)."""
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(source)


@pytest.mark.parametrize(
    "text",
    [
        HOSTILE,
        "# Heading",
        "Title\n===",
        "Title\n---",
        "1. first",
        "1) first",
        "- item",
        "+ item",
        "> quoted",
        "    indented code",
        "~~~\nfenced\n~~~",
        "```\nfenced\n```",
        "*em* _em_ ~~struck~~ `code`",
        "<b>bold</b> <https://evil.example>",
        "&amp; &#60; &copy;",
        "a | b\n--- | ---\nc | d",
        "[ref]: https://evil.example",
        "back\\slash \\[not a link\\](x)",
        "$x^2$",
    ],
)
def test_md_renders_user_text_as_one_paragraph_of_exactly_that_text(text):
    """Test that markdown made by md() from any user text renders as one paragraph holding exactly that text (line
    breaks as <br>), with no link, image, heading, list, quote, code, emphasis or entity."""
    html = commonmark(md(text))
    inner = html.removeprefix("<p>").removesuffix("</p>\n")
    assert html.startswith("<p>") and "<p>" not in inner and "</p>" not in inner, html
    assert not re.search(r"<(?!br />)", inner.replace("&lt;", "")), html
    expected = "<br />\n".join(line.lstrip(" ") for line in text.splitlines())
    shown = inner.replace(WORD_JOINER, "").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
    assert shown.replace("&amp;", "&") == expected


def test_md_breaks_the_patterns_streamlit_links_after_escapes():
    """Test that md() puts a word joiner inside bare URLs, www addresses, email addresses and emoji shortcodes
    (Streamlit links and replaces them even in escaped text), and leaves ordinary sentences untouched."""
    assert md("see https://evil.example, www.evil.example, a@evil.example :smile:") == (
        f"see https:{WORD_JOINER}//evil.example, www{WORD_JOINER}.evil.example, "
        f"a@{WORD_JOINER}evil.example :{WORD_JOINER}smile:"
    )
    assert md("Logged: Phone call with Quentin Quarry-Smith (Leeds).") == (
        "Logged: Phone call with Quentin Quarry-Smith (Leeds)."
    )
    assert md(None) == ""


class _Screen:
    """What st.success / st.error received, for the helpers that show messages."""

    def __init__(self, monkeypatch):
        self.shown: list[str] = []
        import streamlit as st

        monkeypatch.setattr(st, "success", self.shown.append)
        monkeypatch.setattr(st, "error", self.shown.append)
        monkeypatch.setattr(st, "session_state", {})


def test_flash_and_show_error_show_their_message_as_plain_text(monkeypatch):
    """Test that a flashed success message and an error message quoting user text are shown escaped: the
    messages name records by what users typed (regression: "Logged: <an organisation's name>" was a link)."""
    from crm.errors import ValidationError

    screen = _Screen(monkeypatch)
    flash(f"Logged: Phone call with {HOSTILE}.")
    flash()
    show_error(ValidationError("Name", f"“{HOSTILE}” is taken."))
    assert screen.shown == [md(f"Logged: Phone call with {HOSTILE}."), md(f"Name: “{HOSTILE}” is taken.")]


def markdown_sources(at: AppTest) -> list[tuple[str, str]]:
    """(element type, markdown source) for every field of every element on screen that renders markdown."""
    found: list[tuple[str, str]] = []

    def walk(message, kind: str) -> None:
        for field, value in message.ListFields():
            items = list(value) if not isinstance(value, str | bytes) and hasattr(value, "__len__") else [value]
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                for item in items:
                    walk(item, kind)
            elif field.type == FieldDescriptor.TYPE_STRING and (
                field.name in MARKDOWN_FIELDS or (kind == "radio" and field.name == "options")
            ):
                found.extend((kind, item) for item in items)

    for block in (at.main, at.sidebar):
        for node in block:
            proto = getattr(node, "proto", None)
            if proto is not None and hasattr(proto, "ListFields"):
                walk(proto, node.type)
    return found


def unsafe_markdown(at: AppTest) -> list[tuple[str, str, str]]:
    """Every (element type, what it would become, source) where user text reaches markdown unescaped."""
    problems = []
    for kind, shown in markdown_sources(at):
        source = CONTACT_LINK_TARGET.sub("", shown)
        problems += [(kind, problem, shown) for problem, pattern in UNSAFE.items() if pattern.search(source)]
        unescaped = source.replace("\\", "")
        problems += [
            (kind, problem, shown) for problem, pattern in UNSAFE_EVEN_ESCAPED.items() if pattern.search(unescaped)
        ]
    return problems


def _build(path: Path) -> dict:
    """Everything a user can type, typed as HOSTILE: names of people, organisations, branches, regions, the
    provider and a partner type; job titles, notes, summaries, follow-up actions, quotes, evidence file names."""
    database = db.connect(path)
    try:
        admin = users.create_first_admin(database, "ada", HOSTILE, PASSWORD)
        settings.put(database, admin, "provider_name", HOSTILE)
        region = branches.add_region(database, admin, HOSTILE_SHORT)
        branch = branches.add_branch(database, admin, HOSTILE_SHORT, region)
        users.add_user(database, admin, "lead", HOSTILE, REGIONAL_LEAD, PASSWORD, region_id=region)
        users.add_user(database, admin, "manager", HOSTILE, BRANCH_MANAGER, PASSWORD, branch_id=branch)
        organisations.update_type(database, admin, "GP_PRACTICE", HOSTILE_SHORT, 90)
        organisation = organisations.add(
            database, admin, {"name": HOSTILE, "type_code": "GP_PRACTICE", "postcode": "LS6 1AA"}
        )
        contact = contacts.add(
            database,
            admin,
            {
                "name": HOSTILE,
                "job_title": HOSTILE,
                "notes": HOSTILE,
                "organisation_id": organisation,
                "branch_id": branch,
                "email": "a@evil.example",
            },
        )
        stale = contacts.add(
            database, admin, {"name": HOSTILE + " (left)", "organisation_id": organisation, "branch_id": branch}
        )
        database.execute("UPDATE contacts SET created_at = '2001-01-01T00:00:00' WHERE id = ?", [stale])
        today = clock.now().date()
        interaction = interactions.log(
            database,
            admin,
            {
                "branch_id": branch,
                "kind_code": "PHONE_CALL",
                "occurred_on": today - timedelta(days=1),
                "summary": HOSTILE,
                "notes": HOSTILE,
                "follow_up_on": today,
                "follow_up_action": HOSTILE,
                "contact_ids": [contact],
                "organisation_id": organisation,
            },
        )
        png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
        testimonial = testimonials.add(
            database,
            admin,
            {
                "branch_id": branch,
                "quote": HOSTILE,
                "contact_id": contact,
                "giver_role": HOSTILE,
                "themes": HOSTILE,
                "consent_how": HOSTILE,
                "source": "email",
                "received_on": today,
            },
            ("[Reset](evil.example) ![px](px.png) :smile: **bold**.png", png),  # no "/" in a file name
        )
    finally:
        database.close()
    return {"contact": contact, "interaction": interaction, "organisation": organisation, "testimonial": testimonial}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("markdown_injection") / "crm.db"
    return path, _build(path)


@pytest.fixture
def hostile(template, db_path, monkeypatch) -> dict:
    copy_database(template[0], db_path)
    run_app_on(monkeypatch, db_path)
    return template[1]


DETAIL_PAGES = [
    ("pages/contacts.py", "contact"),
    ("pages/interactions.py", "interaction"),
    ("pages/organisations.py", "organisation"),
    ("pages/testimonials.py", "testimonial"),
]


@pytest.mark.parametrize("username", ["ada", "lead", "manager"])
def test_no_page_renders_user_text_as_markdown(hostile, username):
    """Test that on every page a role may open (and on a contact's, interaction's, organisation's and testimonial's
    own page), no element that renders markdown holds user text unescaped: no link, image, bare URL, email
    address, emoji or bold from data, when every text users can type is a hostile markdown string."""
    at = sign_in(new_app(), username)
    problems = []
    shown = []
    pages = [(page.path, None) for page in PAGES if _may_open(username, page)] + DETAIL_PAGES
    for path, parameter in pages:
        at.query_params.clear()
        at.switch_page(path)
        if parameter:
            at.query_params[parameter] = str(hostile[parameter])
        at.run()
        assert not at.exception, (path, at.exception)
        problems += [(path, *problem) for problem in unsafe_markdown(at)]
        shown += [source for _, source in markdown_sources(at)]
    assert problems == []
    assert any(md(HOSTILE) in source for source in shown)  # the hostile text was on screen, escaped


def _may_open(username: str, page) -> bool:
    role = {"ada": ADMIN, "lead": REGIONAL_LEAD, "manager": BRANCH_MANAGER}[username]
    return role in page.roles
