"""The search box in every page's sidebar: one text box, results of every kind, each a link that opens it."""

import streamlit as st

from crm import search
from crm.access import Actor
from crm.ui.widgets import md

ICONS = {
    "contact": ":material/person:",
    "organisation": ":material/domain:",
    "interaction": ":material/forum:",
    "testimonial": ":material/format_quote:",
}
SHOWN = 10


def search_box(database, actor: Actor) -> None:
    """Draw the search box and its results (links to ?contact=ID and so on) in the current container."""
    text = st.text_input(
        "Search",
        key="app_search",
        placeholder="People, organisations, notes, quotes",
        help="Every word you type must be found, in any order; the start of a word is enough.",
    )
    if not text.strip():
        return
    results = search.find(database, actor, text, limit=SHOWN)
    if not results:
        st.caption("Nothing found. Check the spelling, or use fewer words.")
        return
    for result in results:
        st.page_link(
            result["page"],
            label=md(result["title"]),
            icon=ICONS[result["kind"]],
            query_params={result["kind"]: str(result["id"])},
        )
        st.caption(f"{result['label']} · {md(result['detail'])}")
