"""Small shared Streamlit helpers: error display, safe text, option pickers."""

import re
from collections.abc import Sequence

import streamlit as st

from crm.errors import CRMError, InvalidFields

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def show_error(error: CRMError) -> None:
    """One plain-English error box per problem."""
    problems = error.errors if isinstance(error, InvalidFields) else [error]
    for problem in problems:
        st.error(str(problem))


def md(text: str | None) -> str:
    """Escape user-entered text for st.markdown, so a name can never become a link, image or heading."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text or "")


def choice(
    label: str,
    options: Sequence[dict],
    key: str,
    *,
    value: str = "id",
    text: str = "name",
    blank: str | None = None,
    index_of: object = None,
    disabled: bool = False,
) -> object:
    """A selectbox over rows, returning the chosen row's ``value`` (or None for the ``blank`` option)."""
    values: list = ([None] if blank is not None else []) + [row[value] for row in options]
    labels = {row[value]: str(row[text]) for row in options}
    index = values.index(index_of) if index_of in values else 0
    return st.selectbox(
        label,
        values,
        index=index,
        format_func=lambda v: str(blank) if v is None else labels[v],
        key=key,
        disabled=disabled,
    )


def flash(message: str | None = None) -> None:
    """Keep a success message across a rerun (``flash("Saved.")``), or show and forget it (``flash()``)."""
    if message is not None:
        st.session_state["crm_flash"] = message
    elif text := st.session_state.pop("crm_flash", None):
        st.success(text)


def organisation_picker(database, key: str, current: int | None = None) -> int | None:
    """Search the organisation directory by name, postcode or ODS code, and pick one; returns its id."""
    from crm import organisations

    query = st.text_input(
        "Find organisation", key=f"{key}_search", placeholder="Name, postcode or ODS code, e.g. Hyde Park or LS6"
    )
    matches = organisations.search(database, query, limit=50)
    if current is not None and all(m["id"] != current for m in matches):
        matches = [organisations.get(database, current), *matches]
    if not matches:
        st.warning("No organisation matches that search. Add it below.")
        return None
    for m in matches:
        m["label"] = f"{m['name']} ({m['type_label']}{', ' + m['postcode'] if m['postcode'] else ''})"
    return choice("Organisation", matches, key=f"{key}_choice", text="label", index_of=current)  # type: ignore[return-value]
