"""Overview: the named contacts a branch (or region) holds, by partner type."""

import streamlit as st

from crm import branches, contacts
from crm.ui import session
from crm.ui.widgets import md

database, actor = session.require(__file__)

st.title("Overview")
st.caption(md(branches.scope_label(database, actor)))

totals = contacts.totals(database, actor)
left, middle, right = st.columns(3)
left.metric("Active contacts", totals["active_contacts"])
middle.metric("Named contacts", totals["named_contacts"])
right.metric("Organisations with a named contact", totals["organisations_with_named_contact"])

st.subheader("Named contacts by partner type")
matrix = contacts.named_matrix(database, actor)
if not matrix:
    st.info("There are no branches yet. An administrator adds them under Regions and branches.")
else:
    st.dataframe(matrix, hide_index=True)
    st.caption("Active named contacts at organisations of each type. A zero is a gap.")
