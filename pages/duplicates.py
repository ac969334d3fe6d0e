"""Possible duplicates: contacts of a branch (and directory organisations) that may be one, compared side by side
and merged, the user picking the record that stays and its values field by field."""

from collections.abc import Callable

import streamlit as st

from crm import branches, contacts, merge, organisations, phones
from crm.errors import CRMError, PermissionDenied
from crm.ui import cached, session
from crm.ui.merge import pick_fields
from crm.ui.widgets import choice, day, flash, md, query_id, show_error

database, actor = session.require(__file__)

CONTACT_FIELDS = {
    "name": "Name",
    "job_title": "Job title",
    "phone": "Phone",
    "mobile": "Mobile",
    "email": "Email",
    "is_named_contact": "Named contact",
    "keep_in_touch_days": "Keep in touch every (days)",
    "lawful_basis": "Lawful basis",
    "privacy_info_sent_on": "Privacy information sent on",
}
ORGANISATION_FIELDS = {
    "name": "Name",
    "type_code": "Partner type",
    "address": "Address",
    "postcode": "Postcode",
    "phone": "Main phone",
    "email": "Email",
    "website": "Website",
    "ods_code": "ODS code",
}
DONE_KEY = "duplicates_done"


def contact_value(record: dict, field: str) -> str:
    if field == "phone":
        return record["phone_display"]
    if field == "mobile":
        return record["mobile_display"]
    if field == "is_named_contact":
        return "Yes" if record[field] else "No"
    if field == "privacy_info_sent_on":
        return day(record[field])
    value = record[field]
    return "" if value is None else str(value)


def organisation_value(record: dict, field: str) -> str:
    if field == "phone":
        return phones.national(record["phone"], record["phone_ext"])
    if field == "type_code":
        return record["type_label"]
    value = record[field]
    return "" if value is None else str(value)


def back(prefix: str) -> None:
    if st.button("← Back to the list", key="duplicates_back"):
        forget(prefix)
        st.query_params.clear()
        st.rerun()


def forget(prefix: str) -> None:
    for key in [k for k in st.session_state if str(k).startswith(f"{prefix}_")]:
        del st.session_state[key]


def chosen_versions(prefix: str, records: dict[int, dict]) -> dict[int, int]:
    """The versions of both records as the user first saw them here: a merge is refused if either changed since."""
    key = f"{prefix}_versions"
    current = {i: r["version"] for i, r in records.items()}
    st.session_state.setdefault(key, current)
    if st.session_state[key] != current:
        st.info("Someone has changed one of these records since you opened them.")
        if st.button("Reload", key=f"{prefix}_reload", help="Compare them as they are now"):
            forget(prefix)
            st.rerun()
    return st.session_state[key]


def survivor_choice(prefix: str, records: dict[int, dict], default: int, describe) -> int:
    options = list(records)
    return st.radio(
        "The record that stays",
        options,
        index=options.index(default),
        format_func=lambda i: md(describe(records[i])),
        key=f"{prefix}_survivor",
        help="The other record's id keeps leading here: old links and bookmarks still work.",
    )


def completeness(record: dict) -> tuple:
    filled = sum(1 for field in CONTACT_FIELDS if record[field] not in (None, ""))
    return filled, record["updated_at"], -record["id"]


def compare_contacts(first_id: int, second_id: int) -> None:
    prefix = f"duplicates_contacts_{first_id}_{second_id}"
    back(prefix)
    try:
        merge.refuse_merged(database, actor, "contacts", (first_id, second_id))
        records = {i: contacts.get(database, actor, i) for i in (first_id, second_id)}
        links = {i: merge.contact_links(database, actor, i) for i in records}
    except CRMError as error:
        show_error(error)
        return
    if first_id == second_id:
        st.error("Choose two different contacts.")
        return
    st.header("Compare two contacts")
    versions = chosen_versions(prefix, records)
    columns = st.columns(2)
    for column, record in zip(columns, records.values(), strict=True):
        with column:
            st.subheader(md(record["name"]))
            st.write(md(f"{record['job_title'] or 'No job title'} at {record['organisation']}, {record['branch']}"))
            st.caption(
                f"Record {record['id']}, added {day(record['created_at'])}, last changed {day(record['updated_at'])}"
                + (f"; left on {day(record['left_on'])}" if record["status"] == "left" else "")
            )
            st.caption(f"Linked: {merge.moved_text(links[record['id']])}.")
    default = max(records, key=lambda i: completeness(records[i]))
    survivor_id = survivor_choice(
        prefix, records, default, lambda r: f"{r['name']} (record {r['id']}, added {day(r['created_at'])})"
    )
    merged_id = next(i for i in records if i != survivor_id)
    st.write("Where the two differ, choose the value to keep:")
    take = pick_fields(prefix, records, survivor_id, CONTACT_FIELDS, contact_value)
    if records[survivor_id]["notes"] and records[merged_id]["notes"]:
        st.caption("Notes: both records' notes are kept.")
    st.write(
        md(
            f"Moving to {records[survivor_id]['name']}: {merge.moved_text(links[merged_id])}. "
            f"Then {records[merged_id]['name']} (record {merged_id}) is deleted."
        )
    )
    merge_button(
        prefix,
        lambda: merge.merge_contact_pair(
            database, actor, survivor_id, merged_id, take=take, versions=(versions[survivor_id], versions[merged_id])
        ),
        "pages/contacts.py",
        {"contact": str(survivor_id)},
    )


def compare_organisations(first_id: int, second_id: int) -> None:
    prefix = f"duplicates_organisations_{first_id}_{second_id}"
    back(prefix)
    try:
        if not merge.may_merge_organisations(actor):
            raise PermissionDenied("Only administrators and regional leads can merge organisations.")
        merge.refuse_merged(database, actor, "organisations", (first_id, second_id))
        records = {i: organisations.get(database, i) for i in (first_id, second_id)}
        links = {i: merge.organisation_links(database, i) for i in records}
    except CRMError as error:
        show_error(error)
        return
    if first_id == second_id:
        st.error("Choose two different organisations.")
        return
    st.header("Compare two organisations")
    versions = chosen_versions(prefix, records)
    columns = st.columns(2)
    for column, record in zip(columns, records.values(), strict=True):
        with column:
            st.subheader(md(record["name"]))
            st.write(md(f"{record['type_label']}, {record['postcode'] or 'no postcode'}"))
            st.caption(
                f"Record {record['id']}, ODS code {record['ods_code'] or 'none (added by hand)'}; "
                f"{links[record['id']]['branches']} branches have contacts here"
            )
            st.caption(f"Linked: {merge.moved_text(links[record['id']])}.")
    # The NHS directory's record stays by default: the next import updates it by its ODS code.
    default = next((i for i in records if records[i]["ods_code"]), first_id)
    survivor_id = survivor_choice(
        prefix,
        records,
        default,
        lambda r: f"{r['name']} ({'ODS ' + r['ods_code'] if r['ods_code'] else 'added by hand'}, record {r['id']})",
    )
    merged_id = next(i for i in records if i != survivor_id)
    st.write("Where the two differ, choose the value to keep:")
    take = pick_fields(prefix, records, survivor_id, ORGANISATION_FIELDS, organisation_value)
    st.write(
        md(
            f"Moving to {records[survivor_id]['name']}: {merge.moved_text(links[merged_id])}, "
            f"of every branch. Then record {merged_id} is deleted."
        )
    )
    merge_button(
        prefix,
        lambda: merge.merge_organisation_pair(
            database, actor, survivor_id, merged_id, take=take, versions=(versions[survivor_id], versions[merged_id])
        ),
        "pages/organisations.py",
        {"organisation": str(survivor_id)},
    )


def merge_button(prefix: str, merge_pair: Callable[[], str], page: str, params: dict[str, str]) -> None:
    """The Merge button: merges, then shows what moved with a link to the record that stays (``page`` with
    ``params``); a refusal (changed or merged meanwhile, out of scope) is shown and nothing changes."""
    if st.button("Merge", type="primary", key=f"{prefix}_merge"):
        try:
            message = merge_pair()
        except CRMError as error:
            show_error(error)
            return
        forget(prefix)
        st.session_state[DONE_KEY] = {"message": message, "page": page, "params": params}
        st.query_params.clear()
        st.rerun()


def done() -> None:
    """After a merge: what moved, and a link to the record that stays."""
    finished = st.session_state.pop(DONE_KEY, None)
    if finished:
        st.success(md(finished["message"]))
        st.page_link(
            finished["page"],
            label="Open the record that stays",
            icon=":material/arrow_forward:",
            query_params=finished["params"],
        )


def open_pair(kind: str, first_id: int, second_id: int) -> None:
    st.query_params.from_dict({kind: str(first_id), "other": str(second_id)})
    st.rerun()


def list_pairs() -> None:
    flash()
    done()
    visible = branches.branch_choices(database, actor)
    branch_id = None
    if len(visible) > 1:
        branch_id = choice("Branch", visible, key="duplicates_branch", blank="All my branches")
    try:
        pairs = cached.duplicate_contacts(database, actor, branch_id=branch_id)
    except CRMError as error:
        show_error(error)
        return
    st.subheader("Contacts")
    if not pairs:
        st.info("No possible duplicates among the contacts.")
    elif len(pairs) == merge.DUPLICATES_LIMIT:
        st.caption(f"The first {merge.DUPLICATES_LIMIT} pairs; merge some to see more.")
    current_branch = None
    for pair in pairs:
        if pair["branch"] != current_branch:
            current_branch = pair["branch"]
            st.markdown(f"**{md(current_branch)}**")
        first, second = pair["contacts"]
        left, right = st.columns([5, 1])
        left.markdown(
            md(
                f"{first['name']} ({first['organisation']}) and {second['name']} ({second['organisation']}): "
                f"{', '.join(pair['reasons'])}"
            )
        )
        if right.button("Compare", key=f"duplicates_pair_{first['id']}_{second['id']}"):
            open_pair("contact", first["id"], second["id"])
    if not merge.may_merge_organisations(actor):
        return
    st.subheader("Organisations")
    st.caption("Added by hand, with the same name and postcode as a record of the NHS directory.")
    organisation_pairs = cached.duplicate_organisations(database, actor)
    if not organisation_pairs:
        st.info("No possible duplicates among the organisations.")
    for pair in organisation_pairs:
        directory, hand_made = pair["directory"], pair["hand_made"]
        left, right = st.columns([5, 1])
        left.markdown(
            md(
                f"{hand_made['name']} (added by hand) and {directory['name']} (ODS {directory['ods_code']}), "
                f"{directory['postcode']}"
            )
        )
        if right.button("Compare", key=f"duplicates_org_{directory['id']}_{hand_made['id']}"):
            open_pair("organisation", directory["id"], hand_made["id"])


st.title("Possible duplicates")
if "contact" in st.query_params or "organisation" in st.query_params:
    kind = "contact" if "contact" in st.query_params else "organisation"
    first_id, second_id = query_id(kind), query_id("other")
    if first_id is not None and second_id is not None:
        if kind == "contact":
            compare_contacts(first_id, second_id)
        else:
            compare_organisations(first_id, second_id)
else:
    list_pairs()
