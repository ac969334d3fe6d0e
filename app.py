"""Partner CRM: the entry point. Run with ``streamlit run app.py``."""

import os
from pathlib import Path

import streamlit as st

from crm import branches, settings
from crm.ui import pages, session
from crm.ui.search_box import search_box
from crm.ui.widgets import md

# The tab icon is a file served by this server: a ":material/...:" page icon makes the browser fetch an SVG from
# fonts.gstatic.com (crm/ui/favicon.png is Material Symbols' "handshake", drawn from the font Streamlit bundles).
st.set_page_config(page_title="Partner CRM", page_icon=Path(__file__).parent / "crm/ui/favicon.png", layout="wide")

if os.environ.get("CRM_BENCH_FLOOR") == "1" and st.query_params.get("bench") == "floor":
    # The load benchmark's floor (python -m crm loadbench): a page that only draws a title, served by the same
    # server. Only a server the benchmark starts sets CRM_BENCH_FLOOR; normal runs never show this.
    st.title("Floor")
    st.stop()

st.session_state[session.APP_KEY] = True
database, actor = session.start_run()
try:
    session.send_cookie()
    if actor is None:
        # Signed out: every page's address leads to the gate (no menu, no page content), and after sign-in the
        # rerun lands on the page that was asked for.
        def gate() -> None:
            session.gate(database)

        # The root address gets its own gate page, so signing in there lands on the role's start page.
        navigation = st.navigation(
            [st.Page(gate, title="Sign in", url_path="sign-in", default=True)]
            + [st.Page(gate, title="Sign in", url_path=page.url_path) for page in pages.PAGES],
            position="hidden",
        )
    else:
        # Every page keeps its own address whatever the role. The root address shows the role's landing page as a
        # hidden default of its own (a default page's address is "", so the landing page itself could not be the
        # default without losing its name; a redirect would lose the sign-in cookie sent on that run). A page this
        # role may not see keeps its address too, hidden from the menu, saying who it is for.
        landing = pages.landing_for(actor)

        def refused(page: pages.PageSpec):
            def refuse() -> None:
                st.title(page.title)
                st.info(pages.refusal(page))

            return st.Page(refuse, title=page.title, icon=page.icon, url_path=page.url_path, visibility="hidden")

        # The menu in sections (Work, Insight, Admin), never folded; the refused and start pages are hidden.
        menu = {
            section: [st.Page(page.path, title=page.title, icon=page.icon, url_path=page.url_path) for page in listed]
            for section, listed in pages.sections_for(actor).items()
        }
        for page in pages.not_for_actor(actor):
            menu.setdefault(page.section, []).append(refused(page))
        next(iter(menu.values())).append(
            st.Page(landing, title="Start", url_path="start", default=True, visibility="hidden")
        )
        navigation = st.navigation(menu, expanded=True)
        if (asked := st.session_state.pop(session.RETURN_KEY, None)) in {page.path for page in pages.for_actor(actor)}:
            st.switch_page(asked)  # a page address opened before app.py had run on this server (session.require)
        with st.sidebar:
            search_box(database, actor)
            st.markdown(f"**{md(settings.get(database, 'provider_name', 'Partner CRM'))}**")
            st.caption(f"{md(actor.display_name)}, {actor.role_label}  \n{md(branches.scope_label(database, actor))}")
            if st.button("Sign out", key="app_sign_out"):
                session.sign_out(database, "You have signed out.")
                st.rerun()

    navigation.run()
finally:
    session.end_run(database)
