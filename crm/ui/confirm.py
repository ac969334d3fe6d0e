"""Asking before an action that cannot be undone, naming the very record it will act on."""

import streamlit as st

from crm.ui.widgets import md


def erase_step(key: str, chosen: dict, label: str = "Erase") -> dict | None:
    """An erase button that first asks "Erase <name>? This cannot be undone." (the name as plain text).

    ``chosen`` is the record as the user chose it: its id, version and name. What is confirmed is kept in session
    state, so a rerun in between (a colleague's change, another click) cannot swap the person. Returns that
    record once the user confirms, else None.
    """
    pending_key = f"{key}_pending"
    pending = st.session_state.get(pending_key)
    if pending is not None and pending["id"] != chosen["id"]:  # the user has since chosen someone else
        del st.session_state[pending_key]
        pending = None
    if pending is None:
        if st.button(label, key=key):
            st.session_state[pending_key] = {k: chosen[k] for k in ("id", "version", "name")}
            st.rerun()
        return None
    st.warning(f"Erase {md(pending['name'])}? This cannot be undone.")
    yes, no = st.columns(2)
    if no.button("Cancel", key=f"{key}_cancel"):
        del st.session_state[pending_key]
        st.rerun()
    if yes.button("Yes, erase", key=f"{key}_yes", type="primary"):
        del st.session_state[pending_key]
        return pending
    return None


def delete_button(key: str, record_id: int, name: str, what: str) -> bool:
    """A Delete button that first asks in a dialog "Delete the <what> “<name>”?" (the name as plain text).

    True on the run after the user pressed "Yes, delete" for this very record (by id), so the page deletes it
    with its own connection; a rerun of the whole page closes the dialog.
    """
    confirmed = st.session_state.pop(f"{key}_confirmed", None)
    if st.button("Delete", key=key, icon=":material/delete:"):
        _confirm_delete(key, record_id, name, what)
    return confirmed == record_id


@st.dialog("Delete?")
def _confirm_delete(key: str, record_id: int, name: str, what: str) -> None:
    st.markdown(f"Delete the {what} “{md(name)}”? This cannot be undone.")
    yes, no = st.columns(2)
    if yes.button("Yes, delete", key=f"{key}_yes", type="primary", width="stretch"):
        st.session_state[f"{key}_confirmed"] = record_id
        st.rerun()
    if no.button("Cancel", key=f"{key}_cancel", width="stretch"):
        st.rerun()
