"""Regions and branches (administrators only): the provider's own structure."""

import streamlit as st

from crm import branches, directory
from crm.errors import CRMError
from crm.ui import cached, session
from crm.ui.widgets import choice, flash, rows_table, show_error

database, actor = session.require(__file__)

st.title("Regions and branches")
flash()
regions = branches.regions(database, actor)
left, right = st.columns(2)
with left:
    st.subheader("Regions")
    rows_table([{"Region": r["name"], "Branches": r["branches"]} for r in regions], hide_index=True, width="stretch")
    with st.form("branches_add_region_form", clear_on_submit=True):
        name = st.text_input("New region", key="branches_region_name")
        if st.form_submit_button("Add region"):
            try:
                branches.add_region(database, actor, name)
            except CRMError as error:
                show_error(error)
            else:
                flash(f"Added region {name}.")
                st.rerun()
with right:
    st.subheader("Branches")
    rows_table(
        [
            {"Branch": b["name"], "Region": b["region"], "Active contacts": b["contacts"]}
            for b in cached.branch_list(database, actor)  # (others' changes show within a minute)
        ],
        hide_index=True,
        width="stretch",
    )
    if regions:
        with st.form("branches_add_branch_form", clear_on_submit=True):
            name = st.text_input("New branch", key="branches_branch_name")
            region_id = choice("In region", regions, key="branches_branch_region")
            if st.form_submit_button("Add branch"):
                try:
                    branches.add_branch(database, actor, name, region_id)
                except CRMError as error:
                    show_error(error)
                else:
                    flash(f"Added branch {name}.")
                    st.rerun()
    else:
        st.info("Add a region first.")

st.subheader("GP patch of a branch")
st.write(
    "The postcode districts (e.g. LS6, LS7, LS16) and/or commissioner codes whose active GP practices a branch "
    "should have a named contact at. Import the NHS GP directory first (GP directory import)."
)
all_branches = branches.branch_choices(database, actor)
if all_branches:
    branch_id = choice("Branch", all_branches, key="branches_patch_branch")
    patch = directory.patch_of(database, branch_id)
    with st.form(f"branches_patch_form_{branch_id}"):
        districts = st.text_input(
            "Postcode districts",
            value=patch["postcode_district"],
            key=f"branches_patch_districts_{branch_id}",
            placeholder="LS6, LS7, LS16",
        )
        commissioners = st.text_input(
            "Commissioner codes",
            value=patch["commissioner"],
            key=f"branches_patch_commissioners_{branch_id}",
            placeholder="15F",
        )
        if st.form_submit_button("Save patch", type="primary"):
            try:
                directory.set_patch(database, actor, branch_id, districts, commissioners)
            except CRMError as error:
                show_error(error)
            else:
                covered, total = directory.patch_coverage(database, actor, branch_id)
                patch_set = bool(districts.strip() or commissioners.strip())
                flash(f"Saved the patch. {directory.coverage_text(covered, total, patch_set)}.")
                st.rerun()
