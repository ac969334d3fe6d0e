"""My account: who I am signed in as, and changing my password."""

import streamlit as st

from crm import branches, digest, users
from crm.errors import CRMError, SignInFailed
from crm.ui import session
from crm.ui.widgets import md, show_error

database, actor = session.require(__file__)

st.title("My account")
st.write(
    f"**{md(actor.display_name)}** ({md(actor.username)}), {actor.role_label}: "
    f"{md(branches.scope_label(database, actor))}"
)

st.subheader("Weekly digest")
current_email, opted_out = digest.address_of(database, actor.id) if actor.id is not None else (None, False)
with st.form("account_digest_form"):
    email = st.text_input("Email address", value=current_email or "", key="account_email")
    wanted = st.checkbox("Send me the weekly digest", value=not opted_out, key="account_digest")
    st.caption("Monday's email: your follow-ups, named contacts lapsing, open referrals and coverage scores.")
    saved_digest = st.form_submit_button("Save")
if saved_digest:
    try:
        digest.set_address(database, actor, actor.username, email, opt_out=not wanted)
    except CRMError as error:
        show_error(error)
    else:
        st.success("Saved.")

st.subheader("Change password")
with st.form("account_password_form", clear_on_submit=True):
    current = st.text_input("Current password", type="password", key="account_current_password")
    new = st.text_input(
        "New password",
        type="password",
        key="account_new_password",
        help=f"At least {users.MIN_PASSWORD_LENGTH} characters.",
    )
    again = st.text_input("New password again", type="password", key="account_new_password_again")
    submitted = st.form_submit_button("Change password", type="primary")
if submitted:
    if new != again:
        st.error("New password again: the two passwords differ.")
    else:
        try:
            users.sign_in(database, actor.username, current)
            users.set_password(database, actor, actor.username, new)
        except SignInFailed:
            st.error("Current password: that is not your current password.")
        except CRMError as error:
            show_error(error)
        else:
            session.sign_out(database, "Your password has been changed. Sign in with the new one.")
            st.rerun()
