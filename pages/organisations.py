"""Organisations: the shared directory of partner organisations."""

import streamlit as st

from crm import contacts, interactions, merge, organisations
from crm.access import ADMIN
from crm.errors import CRMError
from crm.ui import layout, paging, session
from crm.ui import merge as merge_ui
from crm.ui import referrals as referral_ui
from crm.ui.widgets import (
    choice,
    edit_version,
    end_edit,
    flash,
    md,
    query_id,
    quick_log,
    rows_table,
    search_box,
    show_error,
    timeline,
)

database, actor = session.require(__file__)
partner_types = organisations.types(database)


def organisation_fields(prefix: str, record: dict | None = None) -> dict:
    """The editable fields of an organisation, as widgets (inside a form)."""
    record = record or {}
    left, right = st.columns(2)
    values = {
        "name": left.text_input("Organisation name", value=record.get("name", ""), key=f"{prefix}_name"),
    }
    with right:
        values["type_code"] = choice(
            "Partner type",
            partner_types,
            key=f"{prefix}_type",
            value="code",
            text="label",
            index_of=record.get("type_code"),
        )
    values["address"] = st.text_input("Address", value=record.get("address", ""), key=f"{prefix}_address")
    left, middle, right = st.columns(3)
    values["postcode"] = left.text_input("Postcode", value=record.get("postcode", ""), key=f"{prefix}_postcode")
    values["phone"] = middle.text_input("Main phone", value=record.get("phone_display", ""), key=f"{prefix}_phone")
    values["ods_code"] = right.text_input(
        "ODS code", value=record.get("ods_code") or "", key=f"{prefix}_ods", help="NHS organisation code, if it has one"
    )
    left, right = st.columns(2)
    values["email"] = left.text_input("Email", value=record.get("email") or "", key=f"{prefix}_email")
    values["website"] = right.text_input("Website", value=record.get("website", ""), key=f"{prefix}_website")
    return values


def show_organisation(org_id: int) -> None:
    merged = merge.merged_note(database, "organisations", org_id)  # an old address leads to the survivor
    org_id = merged["survivor_id"] if merged else org_id
    if st.button("← Back to the directory", key="organisations_back"):
        end_edit(f"organisations_edit_{org_id}")
        del st.query_params["organisation"]
        st.session_state.pop("organisations_table", None)
        st.rerun()
    try:
        organisation = organisations.get(database, org_id)
    except CRMError as error:
        show_error(error)
        return
    flash()
    st.header(md(organisation["name"]))
    merge_ui.merged_notice(merged, organisation["name"])
    st.write(
        f"{md(organisation['type_label'])}" + (f", {md(organisation['postcode'])}" if organisation["postcode"] else "")
    )
    quick_log(
        database,
        actor,
        f"organisations_log_{org_id}",
        subject=organisation["name"],
        organisation_id=org_id,
        branch_id=actor.branch_id,
    )
    people = contacts.search(database, actor, organisation_id=org_id, status=None)
    st.subheader("Your contacts here")
    if people:
        rows_table(
            [
                {
                    "Name": p["name"],
                    "Job title": p["job_title"],
                    "Branch": p["branch"],
                    "Phone": p["phone_display"],
                    "Email": p["email"] or "",
                    "Status": contacts.STATUSES[p["status"]],
                }
                for p in people
            ],
            hide_index=True,
            width="stretch",
        )
    else:
        st.info("None of your branches has a contact here yet: a gap worth closing.")
    st.subheader("History")
    timeline(interactions.search(database, actor, organisation_id=org_id))
    referral_ui.sent_by(database, actor, f"organisations_referral_{org_id}", organisation=organisation)
    if not organisations.can_edit(actor, organisation):
        st.caption("Administrators and regional leads keep the directory up to date.")
        return
    st.subheader("Edit")
    prefix = f"organisations_edit_{org_id}"
    version = edit_version(prefix, organisation["version"])
    with st.form(f"organisations_edit_form_{org_id}"):
        values = organisation_fields(prefix, organisation)
        saved = st.form_submit_button("Save changes", type="primary")
    if saved:
        try:
            changed = organisations.update(database, actor, org_id, values, expected_version=version)
        except CRMError as error:
            show_error(error)
        else:
            if not changed:
                st.info("No changes to save.")
                return
            end_edit(prefix)
            flash(f"Saved changes to {values['name']}.")
            st.rerun()


def list_organisations() -> None:
    flash()

    def add_organisation() -> None:
        with st.form("organisations_add_form"):
            values = organisation_fields("organisations_add")
            if st.form_submit_button("Add organisation", type="primary"):
                try:
                    org_id = organisations.add(database, actor, values)
                except CRMError as error:
                    show_error(error)
                else:
                    flash(f"Added {values['name']} to the directory.")
                    st.query_params["organisation"] = str(org_id)
                    st.rerun()

    layout.drawn_when_open("Add an organisation", "organisations_add_open", add_organisation)
    left, right = st.columns([3, 2])
    query = search_box(
        "Search",
        "organisations_search",
        placeholder="Words of the name, postcode, ODS code or type, e.g. Leeds OT",
        container=left,
    )
    with right:
        type_code = choice(
            "Partner type", partner_types, key="organisations_type", value="code", text="label", blank="All types"
        )
    # One page of rows and a count, both in SQL: the directory holds every GP practice of the patch and more (a
    # large provider's, 10,500), and a rerun that listed 500 of them with their phones cost most of the page.
    try:
        total = organisations.count(database, query, type_code)
        page, pages = paging.page_of("organisations", total, organisations.PAGE_SIZE, (query, type_code))
        rows = organisations.search(
            database,
            query,
            type_code,
            limit=organisations.PAGE_SIZE,
            actor=actor,
            offset=page * organisations.PAGE_SIZE,
        )
    except CRMError as error:
        show_error(error)
        return
    shown = paging.range_shown(page, pages, organisations.PAGE_SIZE, len(rows))
    patch_first = ", your patch first" if actor.role != ADMIN else ""
    paging.count_caption("organisations", f"{total} organisation{'s' if total != 1 else ''}{shown}{patch_first}")
    event = rows_table(
        [
            {
                "Name": r["name"],
                "Partner type": r["type_label"],
                "Postcode": r["postcode"],
                "Phone": r["phone_display"],
                "ODS code": r["ods_code"] or "",
            }
            for r in rows
        ],
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="organisations_table",
        width="stretch",
    )
    paging.pager("organisations", page, pages, table_key="organisations_table")
    if event and event.selection.rows:
        st.query_params["organisation"] = str(rows[event.selection.rows[0]]["id"])
        st.rerun()


st.title("Organisations")
if "organisation" in st.query_params:
    if (org_id := query_id("organisation")) is not None:
        show_organisation(org_id)
else:
    list_organisations()
