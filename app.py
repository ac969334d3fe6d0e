"""Partner CRM: the entry point. Run with ``streamlit run app.py``."""

import base64
import os
from pathlib import Path

import streamlit as st

from crm import branches, settings
from crm.ui import pages, session
from crm.ui.menu import menu_for
from crm.ui.search_box import search_box
from crm.ui.widgets import md

# The tab icon comes with the page: a ":material/...:" page icon makes the browser fetch an SVG from
# fonts.gstatic.com (crm/ui/favicon.png is Material Symbols' "handshake", drawn from the font Streamlit bundles).
# As a data URL (1 KB): given the file, Streamlit opened and checked the image with Pillow on every rerun.
FAVICON = (
    "data:image/png;base64," + base64.b64encode((Path(__file__).parent / "crm/ui/favicon.png").read_bytes()).decode()
)
st.set_page_config(page_title="Partner CRM", page_icon=FAVICON, layout="wide")

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
        # Every page keeps its own address whatever the role (crm.ui.menu); a page the role may not open says so.
        navigation = st.navigation(menu_for(actor), expanded=True)
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
