"""The signed-in user's menu: every page of the app as a Streamlit page, in sections, for the user's role.

The pages are made once per role in this process and copied on each rerun. Making one resolves its file on disk,
and the menu's twenty took about as long as a title-only page (BENCHMARKS.md); the copies matter because
``st.navigation`` marks on the page object which page this rerun may run, and two users' reruns run at once.
"""

import copy
from pathlib import Path

import streamlit as st
from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.scriptrunner import get_script_run_ctx

from crm.access import Actor
from crm.ui import pages

Menu = dict[str, list[StreamlitPage]]

_made: dict[tuple[Path | None, str], Menu] = {}  # (app folder, role) -> the menu's pages, never handed out themselves


def menu_for(actor: Actor) -> Menu:
    """The menu for ``actor``'s role: the pages it may open in sections (Work, Insight, Admin), never folded; the
    pages it may not open keep their addresses, hidden, saying who they are for; and the role's start page as the
    hidden default at "start" (a default page's address is "", so the landing page itself could not be the
    default without losing its name; a redirect would lose the sign-in cookie sent on that run)."""
    ctx = get_script_run_ctx()
    key = (ctx.pages_manager.main_script_parent if ctx else None, actor.role)  # page files are found from there
    made = _made.get(key)
    if made is None:
        made = _made.setdefault(key, _make(actor))  # the same for every user of the role
    return {section: [copy.copy(page) for page in listed] for section, listed in made.items()}


def _make(actor: Actor) -> Menu:
    menu = {
        section: [st.Page(page.path, title=page.title, icon=page.icon, url_path=page.url_path) for page in listed]
        for section, listed in pages.sections_for(actor).items()
    }
    for page in pages.not_for_actor(actor):
        menu.setdefault(page.section, []).append(_refused(page))
    next(iter(menu.values())).append(
        st.Page(pages.landing_for(actor), title="Start", url_path="start", default=True, visibility="hidden")
    )
    return menu


def _refused(page: pages.PageSpec) -> StreamlitPage:
    def refuse() -> None:
        st.title(page.title)
        st.info(pages.refusal(page))

    return st.Page(refuse, title=page.title, icon=page.icon, url_path=page.url_path, visibility="hidden")
