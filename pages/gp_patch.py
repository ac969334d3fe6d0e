"""GP patch: the active GP practices in a branch's patch, and which ones the branch has a named contact at."""

import streamlit as st

from crm import branches, directory
from crm.access import BRANCH_MANAGER
from crm.ui import session
from crm.ui.widgets import choice, md, rows_table

database, actor = session.require(__file__)

st.title("GP patch")
visible = branches.branch_choices(database, actor)
if not visible:
    st.info("There are no branches yet.")
    st.stop()
branch_id = actor.branch_id if actor.role == BRANCH_MANAGER else choice("Branch", visible, key="gp_patch_branch")
practices = directory.patch_practices(database, actor, branch_id)
covered = sum(p["has_named_contact"] for p in practices)
patch = directory.patch_of(database, branch_id)
patch_set = bool(patch["postcode_district"] or patch["commissioner"])
st.subheader(directory.coverage_text(covered, len(practices), patch_set))
if practices:
    st.caption(
        f"Patch: {md(patch['postcode_district'] or 'no postcode districts')}; "
        f"commissioners: {md(patch['commissioner'] or 'none')}. Practices without a named contact come first."
    )
    rows_table(
        [
            {
                "Named contact": "Yes" if p["has_named_contact"] else "No",
                "Practice": p["name"],
                "ODS code": p["ods_code"] or "",
                "Postcode": p["postcode"],
                "Phone": p["phone_display"],
            }
            for p in practices
        ],
        hide_index=True,
        width="stretch",
    )
