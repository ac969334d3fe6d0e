"""Contacts: find, add and edit the named contacts of the branches in the user's scope."""

from datetime import date
from urllib.parse import quote

import streamlit as st

from crm import branches, contacts, exports, interactions, merge, organisations, privacy
from crm.access import BRANCH_MANAGER
from crm.errors import CRMError, DuplicateContact, PossibleClientData
from crm.ui import layout, paging, session
from crm.ui import merge as merge_ui
from crm.ui import referrals as referral_ui
from crm.ui.downloads import deferred_download
from crm.ui.logdialog import contacts_page, person_lines, person_link
from crm.ui.widgets import (
    choice,
    day,
    edit_version,
    end_edit,
    flash,
    guarded_save,
    md,
    organisation_picker,
    query_id,
    quick_log,
    rows_table,
    search_box,
    show_error,
    timeline,
)

database, actor = session.require(__file__)
visible_branches = branches.branch_choices(database, actor)
partner_types = organisations.types(database)


def contact_fields(prefix: str, record: dict | None = None) -> dict:
    """The editable fields of a contact, as widgets (inside a form)."""
    record = record or {}
    values = {
        "name": st.text_input("Name", value=record.get("name", ""), key=f"{prefix}_name"),
        "job_title": st.text_input(
            "Job title / role",
            value=record.get("job_title", ""),
            key=f"{prefix}_job_title",
            placeholder="e.g. Practice manager, Social worker, Community OT",
        ),
    }
    left, right = st.columns(2)
    values["phone"] = left.text_input(
        "Phone", value=record.get("phone_display", ""), key=f"{prefix}_phone", placeholder="e.g. 0113 496 0123 ext. 45"
    )
    values["mobile"] = right.text_input("Mobile", value=record.get("mobile_display", ""), key=f"{prefix}_mobile")
    values["email"] = st.text_input("Email", value=record.get("email") or "", key=f"{prefix}_email")
    values["notes"] = st.text_area(
        "Notes",
        value=record.get("notes", ""),
        key=f"{prefix}_notes",
        help="About the working relationship only. Never record details of people you support.",
    )
    left, right = st.columns(2)
    values["is_named_contact"] = left.checkbox(
        "Our named contact at this organisation",
        value=bool(record.get("is_named_contact", True)),
        key=f"{prefix}_named",
    )
    values["keep_in_touch_days"] = right.number_input(
        "Keep in touch every (days)",
        min_value=1,
        max_value=3650,
        value=record.get("keep_in_touch_days"),
        key=f"{prefix}_keep_in_touch",
        placeholder=f"the partner type's default ({record.get('type_keep_in_touch_days', 90)})",
        help="Leave blank to use the default for this partner type.",
    )
    with st.expander("Data protection"):
        left, middle, right = st.columns(3)
        values["lawful_basis"] = left.selectbox(
            "Lawful basis",
            contacts.LAWFUL_BASES,
            index=contacts.LAWFUL_BASES.index(record.get("lawful_basis") or contacts.LAWFUL_BASES[0]),
            format_func=str.capitalize,
            key=f"{prefix}_lawful_basis",
        )
        sent = record.get("privacy_info_sent_on")
        values["privacy_info_sent_on"] = middle.date_input(
            "Privacy information sent on",
            value=date.fromisoformat(sent) if sent else None,
            format="DD/MM/YYYY",
            key=f"{prefix}_privacy_sent",
        )
        values["do_not_contact"] = right.checkbox(
            "Do not contact",
            value=bool(record.get("do_not_contact")),
            key=f"{prefix}_do_not_contact",
            help="Left out of call lists and mailing exports.",
        )
    return values


def back_to_list(contact_id: int) -> None:
    if st.button("← Back to the list", key="contacts_back"):
        end_edit(f"contacts_edit_{contact_id}")
        del st.query_params["contact"]
        st.session_state.pop("contacts_table", None)  # else the old row selection reopens the contact
        st.rerun()


def show_contact(contact_id: int) -> None:
    merged = merge.merged_note(database, "contacts", contact_id)  # an old address leads to the survivor
    contact_id = merged["survivor_id"] if merged else contact_id
    back_to_list(contact_id)
    try:
        contact = contacts.get(database, actor, contact_id)
    except CRMError as error:
        show_error(error)
        return
    flash()
    st.header(md(contact["name"]))
    merge_ui.merged_notice(merged, contact["name"])
    st.write(
        f"{md(contact['job_title']) or 'No job title'} at **{md(contact['organisation'])}** "
        f"({md(contact['type_label'])}), {md(contact['branch'])} branch"
    )
    if contact["erased_at"]:
        st.info(f"This person's details were erased on {day(contact['erased_at'][:10])} at their request.")
        return
    if contact["do_not_contact"]:
        st.warning("Do not contact: this person asked not to be contacted.")
    if contact["status"] == "left":
        st.warning(f"Left this organisation on {day(contact['left_on'])}.")
    else:
        last = day(contact["last_touched_on"]) or "never"
        st.write(
            f"Relationship: **{contacts.RELATIONSHIPS[contact['relationship']]}** (last touched {last}; "
            f"keep in touch every {contact['interval_days']} days)"
        )
    details = []
    if contact["phone"]:
        details.append(f"Phone: [{md(contact['phone_display'])}]({contact['phone_link']})")
    if contact["mobile"]:
        details.append(f"Mobile: [{md(contact['mobile_display'])}]({contact['mobile_link']})")
    if contact["email"]:
        details.append(f"Email: [{md(contact['email'])}](mailto:{quote(contact['email'], safe='@')})")
    st.markdown("  \n".join(details) or "No phone or email recorded.")
    merge_ui.duplicates_notice(database, actor, contact)
    quick_log(
        database,
        actor,
        f"contacts_log_{contact_id}",
        subject=contact["name"],
        contact_ids=[contact_id],
        branch_id=contact["branch_id"],
    )
    st.subheader("History")
    history = interactions.search(database, actor, contact_id=contact_id)
    # A seven-column table scrolls sideways on a phone: there the same rows read as a list (crm.ui.layout).
    if not history:
        st.info("Nothing logged yet.")
    else:
        layout.breakpoint_style()
        with layout.wide("contacts_history"):
            timeline(history, show_contacts=False)
        with layout.narrow("contacts_history_list"):
            history_list(history)
    referral_ui.sent_by(database, actor, f"contacts_referral_{contact_id}", contact=contact)

    prefix = f"contacts_edit_{contact_id}"
    version = edit_version(prefix, contact["version"])
    st.subheader("Edit")
    organisation_id = organisation_picker(
        database, f"contacts_edit_org_{contact_id}", contact["organisation_id"], actor=actor
    )
    with st.form(f"contacts_edit_form_{contact_id}"):
        values = contact_fields(prefix, contact)
        branch_id = contact["branch_id"]
        if actor.role != BRANCH_MANAGER:
            branch_id = choice(
                "Branch", visible_branches, key=f"contacts_edit_branch_{contact_id}", index_of=contact["branch_id"]
            )
        saved = st.form_submit_button("Save changes", type="primary")
    values.update(organisation_id=organisation_id, branch_id=branch_id)
    updated = guarded_save(
        prefix,
        saved,
        lambda confirmed: contacts.update(database, actor, contact_id, values, version, confirmed=confirmed),
    )
    if updated is False:
        st.info("No changes to save.")
    elif updated:
        end_edit(prefix)
        flash(f"Saved changes to {contact['name']}.")
        st.rerun()

    personal_data(contact, version)
    st.subheader("Status")
    try:
        if contact["status"] == "active":
            if st.button("Mark as left the organisation", key="contacts_mark_left"):
                contacts.mark_left(database, actor, contact_id, version)
                end_edit(prefix)
                flash(
                    f"{contact['name']} is marked as left. Their history stays on file. "
                    f"Who took over at {contact['organisation']}? Add them below."
                )
                st.rerun()
        elif st.button("Reinstate as active", key="contacts_reinstate"):
            contacts.reinstate(database, actor, contact_id, version)
            end_edit(prefix)
            flash(f"{contact['name']} is active again.")
            st.rerun()
    except CRMError as error:
        show_error(error)
    if contact["status"] == "left":
        successor_form(contact)


def history_list(rows: list[dict]) -> None:
    """A contact's interactions newest first, as one block of text that wraps to a phone's width."""
    entries = []
    for r in rows:
        entry = f"**{day(r['occurred_on'])}** · {md(r['kind'])} · {md(r['logged_by'])}  \n{md(r['summary'])}"
        if r["follow_up_on"]:
            done = f" (done {day(r['follow_up_done_on'])})" if r["follow_up_done_on"] else ""
            entry += f"  \nFollow up {day(r['follow_up_on'])}: {md(r['follow_up_action'])}{done}"
        entries.append(entry)
    st.markdown("\n\n".join(entries))


def personal_data(contact: dict, version: int) -> None:
    """A person's rights: everything held about them, and erasure."""
    with st.expander("Everything we hold about this person, and erasing it"):
        st.write("Export what the app holds about them (for a subject access request), or erase them.")
        left, right = st.columns(2)
        with left:
            deferred_download(
                "Export (readable text)",
                lambda database, actor: privacy.export_text(privacy.export_person(database, actor, contact["id"])),
                file_name=f"contact-{contact['id']}.txt",
                mime="text/plain",
                key="contacts_export_text",
            )
        with right:
            deferred_download(
                "Export (JSON)",
                lambda database, actor: privacy.to_json(privacy.export_person(database, actor, contact["id"])),
                file_name=f"contact-{contact['id']}.json",
                mime="application/json",
                key="contacts_export_json",
            )
        st.caption(
            "Erasing removes their name, numbers, email and notes everywhere the app holds them, in every branch "
            "they were at, including interaction notes that name them. Interactions keep their date and kind."
        )
        # The confirmation names the person (as plain text) and the erasure names the record by id and the
        # version this page showed, so a change made by someone else in the meantime is refused, not erased over.
        typed = st.text_input("Type their name to confirm", key="contacts_erase_confirm")
        ready = typed.strip() == contact["name"]
        if ready:
            st.warning(f"Erase {md(contact['name'])}? This cannot be undone.")
        if st.button("Erase this person", key="contacts_erase", disabled=not ready):
            try:
                privacy.erase(database, actor, contact["id"], expected_version=version)
            except CRMError as error:
                show_error(error)
            else:
                end_edit(f"contacts_edit_{contact['id']}")
                flash("Erased. The contact's interactions remain, without their details.")
                st.rerun()


def successor_form(contact: dict) -> None:
    """After someone leaves: record who took over, so the relationship survives the move."""
    if contact["successor_id"]:
        try:
            successor = contacts.get(database, actor, contact["successor_id"])
        except CRMError:
            st.write("Succeeded by a contact of another branch.")
        else:
            st.write(f"Succeeded by **{md(successor['name'])}**, {md(successor['job_title'])}.")
        return
    st.subheader(f"Who took over at {md(contact['organisation'])}?")
    prefix = f"contacts_successor_{contact['id']}"
    with st.form(f"{prefix}_form"):
        values = contact_fields(prefix, {"job_title": contact["job_title"]})
        submitted = st.form_submit_button("Add successor", type="primary")
    values.update(organisation_id=contact["organisation_id"], branch_id=contact["branch_id"])

    def save(confirmed: bool) -> int:
        successor_id = contacts.add(database, actor, values, allow_duplicate=True, confirmed=confirmed)
        contacts.set_successor(database, actor, contact["id"], successor_id)
        return successor_id

    successor_id = guarded_save(prefix, submitted, save)
    if successor_id is not None:
        flash(f"Added {values['name']} as successor to {contact['name']}.")
        st.query_params["contact"] = str(successor_id)
        st.rerun()


def add_contact() -> None:
    if actor.role == BRANCH_MANAGER:
        branch_id = actor.branch_id
    else:
        branch_id = choice("Branch", visible_branches, key="contacts_add_branch")
    organisation_id = organisation_picker(database, "contacts_add_org", actor=actor)
    with st.expander("Organisation not listed? Add it to the directory"):
        with st.form("contacts_new_org_form", clear_on_submit=True):
            org_values = {
                "name": st.text_input("Organisation name", key="contacts_new_org_name"),
                "type_code": choice(
                    "Partner type", partner_types, key="contacts_new_org_type", value="code", text="label"
                ),
                "postcode": st.text_input("Postcode", key="contacts_new_org_postcode"),
                "phone": st.text_input("Main phone", key="contacts_new_org_phone"),
            }
            if st.form_submit_button("Add organisation"):
                try:
                    new_id = organisations.add(database, actor, org_values)
                except CRMError as error:
                    show_error(error)
                else:
                    st.session_state["contacts_add_org_search"] = org_values["name"]
                    st.session_state["contacts_add_org_choice"] = new_id
                    st.rerun()
    with st.form("contacts_add_form"):
        values = contact_fields("contacts_add")
        submitted = st.form_submit_button("Add contact", type="primary")
    if submitted:
        # What the user chose so far on the way to saving; the duplicate and client-data questions add to it.
        st.session_state["contacts_pending"] = {
            "values": {**values, "organisation_id": organisation_id, "branch_id": branch_id},
            "allow_duplicate": False,
            "confirmed": False,
        }
    if "contacts_pending" in st.session_state:
        save_new(st.session_state["contacts_pending"])


def save_new(pending: dict) -> None:
    values = pending["values"]
    try:
        contact_id = contacts.add(
            database, actor, values, allow_duplicate=pending["allow_duplicate"], confirmed=pending["confirmed"]
        )
    except DuplicateContact as duplicate:
        st.warning(md(str(duplicate) + " Open the existing record, or save this one as a new contact."))
        for match in duplicate.matches:
            label = f"Open {match['name']}, {match['job_title'] or 'no job title'} at {match['organisation']}"
            if st.button(md(label), key=f"contacts_open_existing_{match['id']}"):
                del st.session_state["contacts_pending"]
                st.query_params["contact"] = str(match["id"])
                st.rerun()
        if st.button("Save as a new contact anyway", key="contacts_save_anyway"):
            pending["allow_duplicate"] = True
            st.rerun()
    except PossibleClientData as warning:
        st.warning(md(str(warning)))
        if st.button("It is not client data: save anyway", key="contacts_add_confirm"):
            pending["confirmed"] = True
            st.rerun()
    except CRMError as error:
        del st.session_state["contacts_pending"]
        show_error(error)
    else:
        del st.session_state["contacts_pending"]
        for key in [k for k in st.session_state if str(k).startswith("contacts_add_")]:
            del st.session_state[key]
        # Saved despite the duplicate warning: its page offers to compare and merge the two.
        also = " It may be a contact the branch already has: see below." if pending["allow_duplicate"] else ""
        flash(f"Added {values['name']}.{also}")
        st.query_params["contact"] = str(contact_id)
        st.rerun()


def contact_card(row: dict, several_branches: bool, page: st.Page | str) -> None:
    """One contact as a card, for a phone: their name (a link to their page), job and organisation, status, and
    their numbers (tap to call) and email. ``page`` is where names lead (contacts_page(), looked up once
    for the list: given as a path, each name's link would resolve it on the disk)."""
    with st.container(border=True, key=f"contacts_card_{row['id']}"):
        person_link(row, page=page)
        about, reach = person_lines(row)
        status = "Left" if row["status"] == "left" else contacts.RELATIONSHIPS[row["relationship"]]
        if row["do_not_contact"]:
            status += " · Do not contact"
        if several_branches:
            status += f" · {md(row['branch'])} branch"
        st.caption("  \n".join(part for part in (about, status, reach) if part))


def list_contacts() -> None:
    flash()
    several_branches = len(visible_branches) > 1
    columns = st.columns([2, 2, 3, 1] if several_branches else [2, 3, 1])
    branch_id = None
    if several_branches:
        with columns.pop(0):
            branch_id = choice("Branch", visible_branches, key="contacts_filter_branch", blank="All my branches")
    type_code = columns[0].selectbox(
        "Partner type",
        [None] + [t["code"] for t in partner_types],
        key="contacts_filter_type",
        format_func=lambda c: "All types" if c is None else next(t["label"] for t in partner_types if t["code"] == c),
    )
    text = search_box(
        "Search", "contacts_filter_text", placeholder="Name, role, email or organisation", container=columns[1]
    )
    status = columns[2].selectbox(
        "Status",
        ["active", "left", None],
        key="contacts_filter_status",
        format_func=lambda s: {"active": "Active", "left": "Left", None: "All"}[s],
    )
    filters = {"branch_id": branch_id, "type_code": type_code, "text": text, "status": status}
    # One page of rows and a count, both in SQL: a rerun costs the same for a branch of 300 and a provider of 75,000.
    # The count stops past contacts.COUNTED (as the Audit log's): beyond, the caption and the pager say there are more.
    try:
        total = contacts.count(database, actor, **filters, at_most=contacts.COUNTED)
        page, pages = paging.page_of("contacts", min(total, contacts.COUNTED), contacts.PAGE_SIZE, filters)
        rows = contacts.search(database, actor, **filters, limit=contacts.PAGE_SIZE, offset=page * contacts.PAGE_SIZE)
    except CRMError as error:
        show_error(error)
        return
    shown = paging.range_shown(page, pages, contacts.PAGE_SIZE, len(rows))
    counted = paging.count_label(total, contacts.COUNTED)
    paging.count_caption("contacts", f"{counted} contact{'s' if total != 1 else ''}{shown}")
    # A phone gets the page of rows as cards, anything else as a table: only one is drawn, as the browser says what
    # it is (crm.ui.layout.on_phone). Fifty cards drawn and hidden on a desktop were most of the page's messages.
    event = None
    if layout.on_phone():
        names_lead_to = contacts_page()
        for row in rows:
            contact_card(row, several_branches, names_lead_to)
    else:
        event = rows_table(
            [
                {
                    # The name is a link to the contact's page; the text after "#" is what the cell shows.
                    "Name": f"contacts?contact={r['id']}#{r['name']}",
                    "Job title": r["job_title"],
                    "Organisation": r["organisation"],
                    "Partner type": r["type_label"],
                    **({"Branch": r["branch"]} if several_branches else {}),
                    "Phone": r["phone_link"] and f"{r['phone_link']}#{r['phone_display']}",
                    "Mobile": r["mobile_link"] and f"{r['mobile_link']}#{r['mobile_display']}",
                    "Email": r["email"] and f"mailto:{quote(r['email'], safe='@')}#{r['email']}",
                    "Named contact": bool(r["is_named_contact"]),
                    "Do not contact": bool(r["do_not_contact"]),
                }
                for r in rows
            ],
            hide_index=True,
            column_config={
                column: st.column_config.LinkColumn(column, display_text=r"#(.*)$")
                for column in ("Name", "Phone", "Mobile", "Email")
            },
            on_select="rerun",
            selection_mode="single-row",
            key="contacts_table",
            width="stretch",
        )
    paging.pager("contacts", page, pages, table_key="contacts_table", more=total > contacts.COUNTED)
    if event and event.selection.rows:
        st.query_params["contact"] = str(rows[event.selection.rows[0]]["id"])
        st.rerun()

    def mailing_list() -> None:  # drawn only while open: it counts the people on the list
        st.write(
            "Active contacts of the branch selected above (or all yours) who may be contacted: people marked "
            "do-not-contact, who have left, or were erased are never included."
        )
        # Counted in SQL; the list itself is built only when a file is asked for.
        people = contacts.mailing_count(database, actor, branch_id=branch_id)
        left, right = st.columns(2)
        with left:
            deferred_download(
                f"CSV ({people} {'person' if people == 1 else 'people'})",
                lambda database, actor: (
                    "\ufeff"
                    + exports.to_csv(
                        contacts.mailing_list(database, actor, branch_id=branch_id), contacts.MAILING_COLUMNS
                    )
                ),
                file_name="mailing-list.csv",
                mime="text/csv",
                key="contacts_mailing_csv",
            )
        with right:
            deferred_download(
                "vCard",
                lambda database, actor: exports.to_vcards(contacts.mailing_list(database, actor, branch_id=branch_id)),
                file_name="mailing-list.vcf",
                mime="text/vcard",
                key="contacts_mailing_vcf",
            )

    layout.drawn_when_open("Partner mailing list", "contacts_mailing_open", mailing_list)


st.title("Contacts")
if "contact" in st.query_params:
    if (contact_id := query_id("contact")) is not None:
        show_contact(contact_id)
else:
    # Drawn only while open (its organisation picker is a quarter of the page's time), and open by itself while a
    # save waits for an answer (a possible duplicate, client data). Its state is kept (contacts_add_open), so the
    # organisation search's rerun leaves it open under the user's cursor.
    layout.drawn_when_open(
        "Add a contact", "contacts_add_open", add_contact, open_now="contacts_pending" in st.session_state
    )
    list_contacts()
