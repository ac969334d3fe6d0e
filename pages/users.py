"""Users (administrators only): accounts, roles, and where each person works."""

import streamlit as st

from crm import branches, dates, users
from crm.access import BRANCH_MANAGER, REGIONAL_LEAD, ROLES
from crm.errors import CRMError
from crm.ui import session
from crm.ui.widgets import choice, flash, rows_table, show_error

database, actor = session.require(__file__)

st.title("Users")
flash()
rows = users.list_users(database, actor)
rows_table(
    [
        {
            "User name": r["username"],
            "Name": r["display_name"],
            "Role": ROLES[r["role"]],
            "Works in": r["branch"] or r["region"] or "All branches",
            "Status": "Disabled" if r["disabled"] else ("Locked" if r["locked_until"] else "Active"),
            "Last sign-in": dates.moment(r["last_sign_in"]) or "Never",
        }
        for r in rows
    ],
    hide_index=True,
    width="stretch",
)

st.subheader("Add a user")
role = st.selectbox("Role", list(ROLES), format_func=ROLES.get, key="users_add_role")
with st.form("users_add_form"):
    left, right = st.columns(2)
    username = left.text_input("User name", key="users_add_username", placeholder="e.g. jo.bloggs")
    full_name = right.text_input("Full name", key="users_add_full_name")
    region_id = branch_id = None
    if role == REGIONAL_LEAD:
        region_id = choice("Region", branches.regions(database, actor), key="users_add_region")
    elif role == BRANCH_MANAGER:
        branch_id = choice("Branch", branches.branch_choices(database, actor), key="users_add_branch")
    left, right = st.columns(2)
    password = left.text_input(
        "Password",
        type="password",
        key="users_add_password",
        help=f"At least {users.MIN_PASSWORD_LENGTH} characters. Tell the user in person.",
    )
    again = right.text_input("Password again", type="password", key="users_add_password_again")
    submitted = st.form_submit_button("Add user", type="primary")
if submitted:
    if password != again:
        st.error("Password again: the two passwords differ.")
    else:
        try:
            added = users.add_user(database, actor, username, full_name, role, password, region_id, branch_id)
        except CRMError as error:
            show_error(error)
        else:
            flash(f"Added {added.display_name} ({added.username}) as {added.role_label.lower()}.")
            st.rerun()

st.subheader("Disable, enable or reset a password")
others = [r for r in rows if r["id"] != actor.id]
if others:
    target = choice("User", others, key="users_manage_user", value="username", text="username")
    target_row = next(r for r in others if r["username"] == target)
    left, right = st.columns(2)
    with left:
        label = "Enable account" if target_row["disabled"] else "Disable account"
        if st.button(label, key="users_toggle_disabled"):
            try:
                users.set_disabled(database, actor, target, not target_row["disabled"])
            except CRMError as error:
                show_error(error)
            else:
                flash(f"{target} is now {'enabled' if target_row['disabled'] else 'disabled'}.")
                st.rerun()
    with right, st.form("users_reset_form", clear_on_submit=True):
        new_password = st.text_input("New password", type="password", key="users_reset_password")
        if st.form_submit_button("Set new password"):
            try:
                users.set_password(database, actor, target, new_password)
            except CRMError as error:
                show_error(error)
            else:
                flash(f"New password set for {target}; their open sessions have ended.")
                st.rerun()
