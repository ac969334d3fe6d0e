"""Partner CRM: the entry point. Run with ``streamlit run app.py``."""

import streamlit as st

from crm import branches, settings
from crm.ui import pages, session
from crm.ui.widgets import md

st.set_page_config(page_title="Partner CRM", page_icon=":material/handshake:", layout="wide")

database = session.open_database()
actor = session.current_actor(database)

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
    landing = pages.landing_for(actor)
    navigation = st.navigation(
        {
            section: [
                st.Page(page.path, title=page.title, icon=page.icon, default=page.path == landing)
                for page in section_pages
            ]
            for section, section_pages in pages.sections_for(actor).items()
        },
        expanded=True,  # never folded: an administrator's pages are in view without "View more"
    )
    with st.sidebar:
        st.markdown(f"**{md(settings.get(database, 'provider_name', 'Partner CRM'))}**")
        st.caption(f"{md(actor.display_name)}, {actor.role_label}  \n{md(branches.scope_label(database, actor))}")
        if st.button("Sign out", key="app_sign_out"):
            session.sign_out(database, "You have signed out.")
            st.rerun()

try:
    navigation.run()
finally:
    database.close()
