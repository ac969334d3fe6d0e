"""Partner types (administrators only): the reference list of partner organisation types and how often to
keep in touch with each."""

import streamlit as st

from crm import coverage, organisations
from crm.errors import CRMError
from crm.ui import session
from crm.ui.widgets import choice, flash, rows_table, show_error

database, actor = session.require(__file__)

st.title("Partner types")
st.write(
    "Each partner type has a default keep-in-touch interval: a named contact not touched within it counts as "
    "lapsed. A contact can override it on their own record."
)
flash()
partner_types = organisations.types(database)
rows_table(
    [
        {"Partner type": t["label"], "Code": t["code"], "Keep in touch every (days)": t["keep_in_touch_days"]}
        for t in partner_types
    ],
    hide_index=True,
)

st.subheader("Change a partner type")
code = choice("Partner type", partner_types, key="partner_types_edit_code", value="code", text="label")
current = next(t for t in partner_types if t["code"] == code)
with st.form("partner_types_edit_form"):
    label = st.text_input("Label", value=current["label"], key=f"partner_types_edit_label_{code}")
    days = st.number_input(
        "Keep in touch every (days)",
        min_value=1,
        max_value=3650,
        value=current["keep_in_touch_days"],
        key=f"partner_types_edit_days_{code}",
    )
    if st.form_submit_button("Save", type="primary"):
        try:
            changed = organisations.update_type(database, actor, code, label, days)
        except CRMError as error:
            show_error(error)
        else:
            if changed:
                flash(f"Saved {label}.")
                st.rerun()
            st.info("No changes to save.")

st.subheader("Add a partner type")
with st.form("partner_types_add_form", clear_on_submit=True):
    left, middle, right = st.columns([2, 3, 2])
    new_code = left.text_input("Code", key="partner_types_add_code", placeholder="e.g. CARE_HOME")
    new_label = middle.text_input("Label", key="partner_types_add_label", placeholder="e.g. Care home")
    new_days = right.number_input(
        "Keep in touch every (days)", min_value=1, max_value=3650, value=90, key="partner_types_add_days"
    )
    if st.form_submit_button("Add partner type"):
        try:
            organisations.add_type(database, actor, new_code, new_label, new_days)
        except CRMError as error:
            show_error(error)
        else:
            flash(f"Added {new_label}.")
            st.rerun()

st.subheader("Coverage")
st.write(
    "A branch covers a partner type when one of its named contacts there was touched within the coverage window. "
    "Its score is the share of the required partner types it covers."
)
with st.form("partner_types_coverage_form"):
    window = st.number_input(
        "Coverage window (days)",
        min_value=1,
        max_value=730,
        value=coverage.window_days(database),
        key="partner_types_window",
    )
    required = st.multiselect(
        "Required partner types",
        [t["code"] for t in partner_types],
        default=[t["code"] for t in partner_types if t["required"]],
        format_func={t["code"]: t["label"] for t in partner_types}.get,
        key="partner_types_required",
    )
    if st.form_submit_button("Save coverage settings"):
        try:
            coverage.set_window_days(database, actor, window)
            coverage.set_required_types(database, actor, required)
        except CRMError as error:
            show_error(error)
        else:
            flash("Saved the coverage settings.")
            st.rerun()
