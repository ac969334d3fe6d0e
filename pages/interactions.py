"""Interactions: log a touch with a partner in full, find past ones, edit or delete them."""

from datetime import date, timedelta

import streamlit as st

from crm import branches, clock, contacts, interactions
from crm.access import BRANCH_MANAGER
from crm.errors import CRMError
from crm.ui import layout, session
from crm.ui.confirm import delete_button
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
    rows_table,
    search_box,
    show_error,
)

database, actor = session.require(__file__)
visible_branches = branches.branch_choices(database, actor)
kinds = interactions.kinds(database)
today = clock.now().date()
PICKER_SHOWN = 50  # contacts offered in the log form before the user types to find others
PAGE_ROWS = 100  # interactions listed per page
COUNTED = 10_000  # the list counts this many at most: beyond, it says "more than" (and the filters narrow it)
PAGE = "interactions_page"  # the list's page (0 = newest)
FILTERS = "interactions_filters"  # the filters that page belongs to


def interaction_fields(prefix: str, record: dict | None = None) -> dict:
    """Widgets for the fields of an interaction other than who it was with (inside a form)."""
    record = record or {}
    left, right = st.columns(2)
    occurred_on = left.date_input(
        "Date",
        value=date.fromisoformat(record["occurred_on"]) if record else today,
        max_value=today,
        format="DD/MM/YYYY",
        key=f"{prefix}_date",
    )
    with right:
        kind = choice(
            "Kind",
            kinds,
            key=f"{prefix}_kind",
            value="code",
            text="label",
            index_of=record.get("kind_code", "PHONE_CALL"),
        )
    values = {
        "occurred_on": occurred_on,
        "kind_code": kind,
        "summary": st.text_input(
            "Summary", value=record.get("summary", ""), key=f"{prefix}_summary", max_chars=interactions.SUMMARY_MAX
        ),
        "notes": st.text_area(
            "Notes",
            value=record.get("notes", ""),
            key=f"{prefix}_notes",
            help="About the partner relationship only; never details of people you support.",
        ),
    }
    left, right = st.columns([1, 2])
    follow_up = record.get("follow_up_on")
    values["follow_up_on"] = left.date_input(
        "Follow up on",
        value=date.fromisoformat(follow_up) if follow_up else None,
        format="DD/MM/YYYY",
        key=f"{prefix}_follow_up",
    )
    values["follow_up_action"] = right.text_input(
        "Follow-up action", value=record.get("follow_up_action", ""), key=f"{prefix}_follow_up_action"
    )
    return values


def who(prefix: str, branch_id: int, record: dict | None = None) -> tuple[list[int], int | None]:
    """Pick the organisation (optional) and the contacts of the branch (outside the form: it searches).

    The contacts offered are the branch's PICKER_SHOWN most recently in touch, or those matching what is typed
    (chosen and cut in SQL, so a branch of any size costs the same), plus the ones already chosen."""
    record = record or {}
    organisation_id = organisation_picker(
        database, f"{prefix}_org", record.get("organisation_id"), optional=True, actor=actor
    )
    text = search_box("Find contacts", f"{prefix}_contacts_search", placeholder="Words of the name, job title or email")
    try:
        people = interactions.contact_choices(
            database, actor, branch_id, organisation_id=organisation_id, text=text, limit=PICKER_SHOWN
        )
    except CRMError as error:
        show_error(error)
        people = []
    if len(people) == PICKER_SHOWN:
        st.caption(f"Showing the {PICKER_SHOWN} most recently in touch; type to find others.")
    elif text.strip() and not people:
        st.caption("No contact of this branch matches that search.")
    # The people already on the record stay choosable even if they have since moved organisation. Those who have
    # moved to another branch stay linked (crm keeps them) but are not this branch's to choose, nor to name.
    # The ones chosen in this form stay choosable when a new search no longer lists them.
    moved = record.get("moved_contact_ids", [])
    own = [c for c in record.get("contact_ids", []) if c not in moved]
    chosen_now = [c for c in st.session_state.get(f"{prefix}_contacts") or [] if isinstance(c, int)]
    listed = {p["id"] for p in people}
    for contact_id in dict.fromkeys([*own, *chosen_now]):
        if contact_id not in listed:
            try:
                person = contacts.get(database, actor, contact_id)
            except CRMError:
                continue  # moved out of sight since: nothing to offer
            if contact_id in own or person["branch_id"] == branch_id:  # not one chosen before the branch changed
                people.append(person)
                listed.add(contact_id)
    labels = {p["id"]: f"{p['name']} ({p['organisation']})" for p in people}
    chosen = st.multiselect(
        "Contacts",
        list(labels),
        default=[c for c in own if c in labels],
        format_func=labels.get,
        key=f"{prefix}_contacts",
    )
    if moved:
        st.caption(
            f"Also with {len(moved)} contact{'s' if len(moved) != 1 else ''} now at another branch, who stay "
            "linked to this interaction."
        )
    return chosen, organisation_id


def log_form() -> None:
    branch_id = (
        actor.branch_id
        if actor.role == BRANCH_MANAGER
        else choice("Branch", visible_branches, key="interactions_log_branch")
    )
    if branch_id is None:
        st.info("There are no branches yet.")
        return
    contact_ids, organisation_id = who("interactions_log", branch_id)
    with st.form("interactions_log_form"):
        values = interaction_fields("interactions_log")
        submitted = st.form_submit_button("Log interaction", type="primary")
    values.update(branch_id=branch_id, contact_ids=contact_ids, organisation_id=organisation_id)
    saved = guarded_save(
        "interactions_log", submitted, lambda confirmed: interactions.log(database, actor, values, confirmed=confirmed)
    )
    if saved is not None:
        for key in [k for k in st.session_state if str(k).startswith("interactions_log_")]:
            del st.session_state[key]
        flash(f"Logged: {values['summary']}.")
        st.rerun()


def show_interaction(interaction_id: int) -> None:
    if st.button("← Back to the list", key="interactions_back"):
        end_edit(f"interactions_edit_{interaction_id}")
        del st.query_params["interaction"]
        st.session_state.pop("interactions_table", None)
        st.rerun()
    try:
        record = interactions.get(database, actor, interaction_id)
    except CRMError as error:
        show_error(error)
        return
    flash()
    st.header(md(record["summary"]))
    st.write(
        f"{md(record['kind'])} on {day(record['occurred_on'])}, {md(record['branch'])} branch. Logged by "
        f"{md(record['logged_by'])}."
    )
    prefix = f"interactions_edit_{interaction_id}"
    version = edit_version(prefix, record["version"])
    contact_ids, organisation_id = who(prefix, record["branch_id"], record)
    with st.form(f"{prefix}_form"):
        values = interaction_fields(prefix, record)
        submitted = st.form_submit_button("Save changes", type="primary")
    values.update(branch_id=record["branch_id"], contact_ids=contact_ids, organisation_id=organisation_id)
    saved = guarded_save(
        prefix,
        submitted,
        lambda confirmed: interactions.update(database, actor, interaction_id, values, version, confirmed=confirmed),
    )
    if saved is False:
        st.info("No changes to save.")
    elif saved:
        end_edit(prefix)
        flash("Saved changes.")
        st.rerun()
    with st.expander("Delete this interaction"):
        st.write("Deleting removes it from every timeline and recalculates when its contacts were last touched.")
        name = f"{record['summary']}, {day(record['occurred_on'])}"
        if delete_button("interactions_delete", interaction_id, name, "interaction"):
            try:
                interactions.delete(database, actor, interaction_id, version)
            except CRMError as error:
                show_error(error)
            else:
                end_edit(prefix)
                del st.query_params["interaction"]
                flash("Interaction deleted.")
                st.rerun()


def list_interactions() -> None:
    flash()
    columns = st.columns(4)
    branch_id = None
    if len(visible_branches) > 1:
        with columns[0]:
            branch_id = choice("Branch", visible_branches, key="interactions_filter_branch", blank="All my branches")
    with columns[1]:
        kind = choice("Kind", kinds, key="interactions_filter_kind", value="code", text="label", blank="All kinds")
    period = columns[2].date_input(
        "Between", value=(today - timedelta(days=90), today), format="DD/MM/YYYY", key="interactions_filter_dates"
    )
    text = search_box(
        "Search", "interactions_filter_text", placeholder="Words in summary or notes", container=columns[3]
    )
    since, until = (period[0], period[1]) if len(period) == 2 else (None, None)
    filters = {"branch_id": branch_id, "kind_code": kind, "since": since, "until": until, "text": text}
    if st.session_state.get(FILTERS) != filters:  # new filters start at their first page
        st.session_state[FILTERS] = filters
        st.session_state[PAGE] = 0
    try:
        total = interactions.search_count(database, actor, **filters, at_most=COUNTED)
        last_page = max(0, (total - 1) // PAGE_ROWS)
        page = min(st.session_state.get(PAGE, 0), last_page)
        rows = interactions.search(database, actor, **filters, limit=PAGE_ROWS, offset=page * PAGE_ROWS)
    except CRMError as error:
        show_error(error)
        return
    if total > PAGE_ROWS:
        first = page * PAGE_ROWS + 1
        of = f"more than {COUNTED:,}" if total > COUNTED else f"{total:,}"
        st.caption(f"Showing {first:,}-{first + len(rows) - 1:,} of {of} interactions, newest first")
    else:
        st.caption(f"{total} interaction{'s' if total != 1 else ''}")
    event = rows_table(
        [
            {
                "Date": day(r["occurred_on"]),
                **({"Branch": r["branch"]} if len(visible_branches) > 1 else {}),
                "Kind": r["kind"],
                "Summary": r["summary"],
                "With": r["contacts"] or r["organisation"] or "",
                "Follow-up": day(r["follow_up_on"]),
                "Logged by": r["logged_by"],
            }
            for r in rows
        ],
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="interactions_table",
        width="stretch",
    )
    if total > PAGE_ROWS:
        back, _, forward = st.columns([1, 4, 1])
        back.button("← Newer", key="interactions_newer", disabled=page == 0, on_click=turn_page, args=(page - 1,))
        forward.button(
            "Older →", key="interactions_older", disabled=page >= last_page, on_click=turn_page, args=(page + 1,)
        )
    if event and event.selection.rows and event.selection.rows[0] < len(rows):
        st.query_params["interaction"] = str(rows[event.selection.rows[0]]["id"])
        st.rerun()


def turn_page(page: int) -> None:
    """Show another page of the list; a row selected on the page left names nothing on the new one."""
    st.session_state[PAGE] = max(0, page)
    st.session_state.pop("interactions_table", None)


st.title("Interactions")
if "interaction" in st.query_params:
    if (interaction_id := query_id("interaction")) is not None:
        show_interaction(interaction_id)
else:
    # Its key is outside the form's prefix (interactions_log_), which a save clears: it stays open for the next.
    layout.drawn_when_open("Log an interaction", "interactions_logging_open", log_form)
    list_interactions()
