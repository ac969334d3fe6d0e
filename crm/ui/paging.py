"""A long list one page at a time (Contacts, Organisations, Testimonials, Referrals, the Audit log): which page to
show, what the caption says, and Previous / "Page n of m" / Next under the list.

The rows of the page and their count both come from SQL (a search with ``limit`` and ``offset``, and a count), so
a rerun costs the same for a branch of 300 rows and a provider of 75,000. The page shown is kept in
``st.session_state[f"{prefix}_page"]`` (0 = first).
"""

import streamlit as st

# After Next or Previous (pressed under the list), bring the start of the new page into view: on a phone the
# browser would otherwise stay at the bottom of fifty cards. At once, and again when the new page has been
# laid out (a shorter list, charts drawn below it, move the count after the first scroll). A fixed script: only
# a container key of ours in it.
_TO_LIST_TOP = """<script>
(() => {{
  const toListTop = () => document.querySelector(".st-key-{key}")?.scrollIntoView({{block: "start"}});
  toListTop();
  requestAnimationFrame(toListTop);
  setTimeout(toListTop, 300);
}})();
</script>"""


def page_of(prefix: str, total: int, size: int, filters: object) -> tuple[int, int]:
    """The page to show (from 0) of ``total`` rows, ``size`` to a page, and how many pages there are; back to the
    first page whenever ``filters`` differ from the last run's (a new search), and never past the last page."""
    if st.session_state.get(f"{prefix}_filters_shown") != filters:
        st.session_state[f"{prefix}_filters_shown"] = filters
        st.session_state[f"{prefix}_page"] = 0
    pages = max(1, -(-total // size))
    page = st.session_state[f"{prefix}_page"] = min(max(st.session_state.get(f"{prefix}_page", 0), 0), pages - 1)
    return page, pages


def count_label(total: int, at_most: int) -> str:
    """``total`` for a caption ("1,234"), or "more than ``at_most``" when the count stopped past it."""
    return f"more than {at_most:,}" if total > at_most else f"{total:,}"


def range_shown(page: int, pages: int, size: int, rows_shown: int) -> str:
    """ ", 51 to 100 shown" for the second page of 50, to follow the count in a caption; "" when there is one page."""
    return f", {page * size + 1} to {page * size + rows_shown} shown" if pages > 1 else ""


def count_caption(prefix: str, text: str) -> None:
    """The list's count (``text``) as a caption above it, in the container (key ``{prefix}_count``) that a press
    of Next or Previous scrolls into view right after."""
    with st.container(key=f"{prefix}_count"):
        st.caption(text)
    if st.session_state.pop(f"{prefix}_page_turned", False):
        st.html(_TO_LIST_TOP.format(key=f"{prefix}_count"), unsafe_allow_javascript=True)


def _turn_page(prefix: str, step: int, table_key: str | None) -> None:
    st.session_state[f"{prefix}_page"] = st.session_state.get(f"{prefix}_page", 0) + step
    if table_key:  # a row selected on the old page names another row on the new
        st.session_state.pop(table_key, None)
    st.session_state[f"{prefix}_page_turned"] = True


def pager(prefix: str, page: int, pages: int, *, table_key: str | None = None, more: bool = False) -> None:
    """Previous, "Page n of m" and Next (keys ``{prefix}_previous`` and ``{prefix}_next``), when there is more than
    one page; a press also forgets the row selected in the table keyed ``table_key``. ``more``: the count stopped
    at ``pages`` pages and there are more ("Page n of more than m"; the filters narrow them)."""
    if pages <= 1:
        return
    with st.container(horizontal=True, vertical_alignment="center", key=f"{prefix}_pager"):
        st.button(
            "Previous",
            key=f"{prefix}_previous",
            icon=":material/chevron_left:",
            disabled=page == 0,
            on_click=_turn_page,
            args=(prefix, -1, table_key),
        )
        st.markdown(f"Page {page + 1} of {'more than ' if more else ''}{pages}", width="content")
        st.button(
            "Next",
            key=f"{prefix}_next",
            icon=":material/chevron_right:",
            disabled=page == pages - 1,
            on_click=_turn_page,
            args=(prefix, 1, table_key),
        )
