"""One layout for a phone, another for a wider screen, chosen by the browser.

Streamlit runs the page on the server, which never learns how wide the screen is, so a page cannot pick a layout
in Python. Instead it draws both from the same (small) data, each inside a keyed container (Streamlit gives the
element the CSS class ``st-key-<key>``), and one CSS @media rule hides the one that does not fit. The rule is
injected once per run by ``breakpoint_style``; keep what goes in both containers cheap (a block of text).

A layout of many elements (a card per row) is too dear to draw for nothing on every desktop rerun: each element is
a message the server sends. ``on_phone`` chooses it on the server, from what the browser says it is.

Also here: tabs of which only the open one is drawn (``one_tab_at_a_time``), for pages of several charts, and
expanders whose contents are drawn only while open (``drawn_when_open``).
"""

from collections.abc import Callable

import streamlit as st

BREAKPOINT_PX = 640  # where Streamlit itself stacks columns; below it, a phone held upright
NARROW_PREFIX = "layout_narrow_"
WIDE_PREFIX = "layout_wide_"

_STYLE = f"""<style>
@media (max-width: {BREAKPOINT_PX - 0.02}px) {{
  div[class*="st-key-{WIDE_PREFIX}"] {{ display: none !important; }}
}}
@media (min-width: {BREAKPOINT_PX}px) {{
  div[class*="st-key-{NARROW_PREFIX}"] {{ display: none !important; }}
}}
</style>"""


def breakpoint_style() -> None:
    """The CSS that shows ``narrow`` containers below BREAKPOINT_PX and ``wide`` ones from it up (once a run)."""
    st.html(_STYLE)


def narrow(key: str, **options):
    """A container shown only on a narrow screen (a phone); ``key`` names it (st-key-layout_narrow_<key>)."""
    return st.container(key=f"{NARROW_PREFIX}{key}", **options)


def wide(key: str, **options):
    """A container shown only from BREAKPOINT_PX wide up; ``key`` names it (st-key-layout_wide_<key>)."""
    return st.container(key=f"{WIDE_PREFIX}{key}", **options)


def on_phone() -> bool:
    """Whether the browser says it is a phone: "Mobi" in its User-Agent, the test MDN recommends ("Mobile" on
    Android and iPhone browsers; tablets, and phones asking for the desktop site, leave it out and get the desktop
    layout, which fits their width). No browser (a test of the page script) is a desktop."""
    return "Mobi" in (st.context.headers.get("User-Agent") or "")


def one_tab_at_a_time(views: dict, key: str) -> None:
    """Tabs named by ``views`` ({label: function drawing that tab}), of which only the open one is drawn: the
    others' charts and queries do not run (Streamlit's tabs rerun the page when one is opened). The first tab is
    open to start with, and again when the one that was open is no longer offered."""
    if st.session_state.get(key) not in views:
        st.session_state.pop(key, None)
    for tab, draw in zip(st.tabs(list(views), key=key, on_change="rerun"), views.values(), strict=True):
        if tab.open:
            with tab:
                draw()


def drawn_when_open(label: str, key: str, draw: Callable[[], object], *, open_now: bool = False) -> None:
    """An expander whose contents ``draw`` draws only while it is open (opening or closing it reruns the page).

    A plain st.expander runs its body and sends every widget in it on each rerun even while it is closed: a
    closed form, picker or table cost the page as much as an open one. ``key`` holds whether it is open
    (st.session_state[key]; a test opens it by setting it True, as a click does). ``open_now`` opens it for this
    run whatever the user did, e.g. while a save inside it waits for an answer. Closing it forgets the values
    typed in it (Streamlit drops the state of widgets not drawn)."""
    if open_now:
        # Written before the expander exists, as for any keyed widget: ``expanded=`` sets only a first value, and
        # a changed one makes it another widget, which forgets whether the user had opened it.
        st.session_state[key] = True
    box = st.expander(label, key=key, on_change="rerun")
    if box.open:
        with box:
            draw()
