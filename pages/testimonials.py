"""Testimonials: record partners' good words with their consent, find them, and export them as evidence."""

from datetime import date, timedelta

import streamlit as st

from crm import branches, clock, contacts, organisations, settings, testimonials
from crm.access import ADMIN, BRANCH_MANAGER
from crm.errors import CRMError
from crm.ui import layout, paging, session
from crm.ui.confirm import delete_button
from crm.ui.downloads import deferred_download
from crm.ui.widgets import (
    choice,
    day,
    edit_version,
    end_edit,
    flash,
    guarded_save,
    md,
    query_id,
    rows_table,
    search_box,
    show_error,
)

database, actor = session.require(__file__)
visible_branches = branches.branch_choices(database, actor)
partner_types = organisations.types(database)
quality_statements = testimonials.statements(database)
statement_labels = {s["code"]: f"{s['code']} {s['label']}" for s in quality_statements}
today = clock.now().date()


def testimonial_fields(prefix: str, branch_id: int, record: dict | None = None) -> dict:
    """The fields of a testimonial, as widgets (inside a form)."""
    record = record or {}
    values: dict = {"quote": st.text_area("Quote", value=record.get("quote", ""), key=f"{prefix}_quote")}
    people = [
        p for p in contacts.search(database, actor, branch_id=branch_id, status=None, limit=2000) if not p["erased_at"]
    ]
    labels = {p["id"]: f"{p['name']}, {p['job_title'] or 'no job title'} ({p['organisation']})" for p in people}
    left, right = st.columns(2)
    values["contact_id"] = left.selectbox(
        "Given by (a contact)",
        [None, *labels],
        index=[None, *labels].index(record.get("contact_id")) if record.get("contact_id") in labels else 0,
        format_func=lambda c: "Someone not in the contacts: type below" if c is None else labels[c],
        key=f"{prefix}_contact",
    )
    values["received_on"] = right.date_input(
        "Received on",
        value=date.fromisoformat(record["received_on"]) if record else today,
        max_value=today,
        format="DD/MM/YYYY",
        key=f"{prefix}_received",
    )
    left, middle, right = st.columns(3)
    values["giver_name"] = left.text_input("Giver's name", value=record.get("giver_name", ""), key=f"{prefix}_name")
    values["giver_role"] = middle.text_input("Giver's role", value=record.get("giver_role", ""), key=f"{prefix}_role")
    values["organisation_name"] = right.text_input(
        "Organisation",
        value=record.get("organisation_name", ""),
        key=f"{prefix}_organisation",
        help="Filled in from the contact when left blank.",
    )
    left, middle, right = st.columns(3)
    with left:
        values["type_code"] = choice(
            "Partner type",
            partner_types,
            key=f"{prefix}_type",
            value="code",
            text="label",
            blank="(from the contact's organisation)",
            index_of=record.get("type_code"),
        )
    values["source"] = middle.selectbox(
        "How it came",
        list(testimonials.SOURCES),
        format_func=testimonials.SOURCES.get,
        index=list(testimonials.SOURCES).index(record.get("source", "email")),
        key=f"{prefix}_source",
    )
    values["themes"] = right.text_input(
        "Themes", value=record.get("themes", ""), key=f"{prefix}_themes", placeholder="e.g. communication, reablement"
    )
    values["statements"] = st.multiselect(
        "CQC quality statements it evidences",
        list(statement_labels),
        default=record.get("statements", []),
        format_func=statement_labels.get,
        key=f"{prefix}_statements",
    )
    st.markdown("**Consent**")
    left, middle, right = st.columns(3)
    values["consent_scope"] = left.selectbox(
        "May be used for",
        list(testimonials.SCOPES),
        format_func=testimonials.SCOPES.get,
        index=list(testimonials.SCOPES).index(record.get("consent_scope", "none")),
        key=f"{prefix}_scope",
    )
    values["attribution"] = middle.selectbox(
        "Attributed as",
        list(testimonials.ATTRIBUTIONS),
        format_func=testimonials.ATTRIBUTIONS.get,
        index=list(testimonials.ATTRIBUTIONS).index(record.get("attribution", "anonymous")),
        key=f"{prefix}_attribution",
    )
    given = record.get("consent_given_on")
    values["consent_given_on"] = right.date_input(
        "Consent given on",
        value=date.fromisoformat(given) if given else None,
        format="DD/MM/YYYY",
        key=f"{prefix}_consent_on",
    )
    values["consent_how"] = st.text_input(
        "How consent was given",
        value=record.get("consent_how", ""),
        key=f"{prefix}_consent_how",
        placeholder="e.g. replied to our email",
    )
    return {**values, "branch_id": branch_id}


def record_form() -> None:
    branch_id = (
        actor.branch_id
        if actor.role == BRANCH_MANAGER
        else choice("Branch", visible_branches, key="testimonials_add_branch")
    )
    if branch_id is None:
        return
    with st.form("testimonials_add_form"):
        values = testimonial_fields("testimonials_add", branch_id)
        upload = st.file_uploader(
            "Evidence (the email as PDF, or a photo of the card)",
            type=["pdf", "png", "jpg", "jpeg"],
            key="testimonials_add_evidence",
        )
        submitted = st.form_submit_button("Save testimonial", type="primary")
    evidence = (upload.name, upload.getvalue()) if upload is not None else None
    saved = guarded_save(
        "testimonials_add",
        submitted,
        lambda confirmed: testimonials.add(database, actor, values, evidence, confirmed=confirmed),
    )
    if saved is not None:
        end_edit("testimonials_add")
        flash("Testimonial saved.")
        st.rerun()


def show(testimonial_id: int) -> None:
    if st.button("← Back to the list", key="testimonials_back"):
        end_edit(f"testimonials_edit_{testimonial_id}")
        del st.query_params["testimonial"]
        st.session_state.pop("testimonials_table", None)
        st.rerun()
    try:
        record = testimonials.get(database, actor, testimonial_id)
    except CRMError as error:
        show_error(error)
        return
    flash()
    st.markdown("> " + md(record["quote"]).replace("\n", "\n> "))
    st.caption(
        f"{md(testimonials.attribution(record, 'internal'))}, received {day(record['received_on'])}. "
        f"Consent: {testimonials.SCOPES[record['consent_scope']]}, "
        f"{testimonials.ATTRIBUTIONS[record['attribution']].lower()}."
    )
    if record["consent_withdrawn_on"]:
        st.warning(f"Consent withdrawn on {day(record['consent_withdrawn_on'])}: internal use only.")
    elif record["consent_scope"] != "none" and st.button(
        "Record that consent was withdrawn", key="testimonials_withdraw"
    ):
        testimonials.withdraw_consent(database, actor, testimonial_id)
        end_edit(f"testimonials_edit_{testimonial_id}")
        flash("Consent withdrawn: the quote now appears only in internal exports.")
        st.rerun()
    if record["evidence_file"]:
        deferred_download(
            f"Evidence: {md(record['evidence_name'])}",
            lambda database, actor: testimonials.evidence(database, actor, testimonial_id)[2],
            file_name=record["evidence_name"],
            mime=record["evidence_type"],
            key="testimonials_evidence",
        )
    prefix = f"testimonials_edit_{testimonial_id}"
    version = edit_version(prefix, record["version"])
    with st.form(f"{prefix}_form"):
        values = testimonial_fields(prefix, record["branch_id"], record)
        submitted = st.form_submit_button("Save changes", type="primary")
    saved = guarded_save(
        prefix,
        submitted,
        lambda confirmed: testimonials.update(database, actor, testimonial_id, values, version, confirmed=confirmed),
    )
    if saved is False:
        st.info("No changes to save.")
    elif saved:
        end_edit(prefix)
        flash("Saved changes.")
        st.rerun()
    with st.expander("Delete this testimonial"):
        quote = record["quote"] if len(record["quote"]) <= 80 else f"{record['quote'][:80].rstrip()}…"
        if delete_button("testimonials_delete", testimonial_id, quote, "testimonial"):
            testimonials.delete(database, actor, testimonial_id)
            end_edit(prefix)
            del st.query_params["testimonial"]
            flash("Testimonial deleted.")
            st.rerun()


def browse() -> None:
    flash()
    # Its key is outside the form's prefix (testimonials_add_), which a save clears: it stays open for the next.
    layout.drawn_when_open("Record a testimonial", "testimonials_recording_open", record_form)
    columns = st.columns(4)
    text = search_box("Search the words", "testimonials_search", placeholder="e.g. discharge", container=columns[0])
    branch_id = region_id = None
    if len(visible_branches) > 1:
        with columns[1]:
            branch_id = choice("Branch", visible_branches, key="testimonials_branch", blank="All my branches")
    if actor.role == ADMIN:
        with columns[2]:
            region_id = choice(
                "Region", branches.regions(database, actor), key="testimonials_region", blank="All regions"
            )
    with columns[3]:
        type_code = choice(
            "Partner type", partner_types, key="testimonials_type", value="code", text="label", blank="All types"
        )
    columns = st.columns(4)
    theme = search_box("Theme", "testimonials_theme", container=columns[0]).strip() or None
    statement = columns[1].selectbox(
        "CQC quality statement",
        [None, *statement_labels],
        format_func=lambda c: "Any" if c is None else statement_labels[c],
        key="testimonials_statement",
    )
    period = columns[2].date_input(
        "Received between", value=(today - timedelta(days=365), today), format="DD/MM/YYYY", key="testimonials_period"
    )
    audience = columns[3].selectbox(
        "Show what this audience may see",
        list(testimonials.AUDIENCES),
        format_func=testimonials.AUDIENCES.get,
        key="testimonials_audience",
    )
    since, until = (period[0], period[1]) if len(period) == 2 else (None, None)
    filters = {
        "text": text,
        "branch_id": branch_id,
        "region_id": region_id,
        "type_code": type_code,
        "theme": theme,
        "statement": statement,
        "since": since,
        "until": until,
    }
    # One page of rows and a count, both in SQL (newest first): a rerun costs the same for a branch's dozens and a
    # provider's 20,000.
    size = testimonials.PAGE_SIZE
    try:
        total = testimonials.search_count(database, actor, audience=audience, **filters)
        page, pages = paging.page_of("testimonials", total, size, (audience, filters))
        rows = testimonials.search(database, actor, audience=audience, **filters, limit=size, offset=page * size)
    except CRMError as error:
        show_error(error)
        return
    readers = testimonials.readers(audience)
    shown = paging.range_shown(page, pages, size, len(rows))
    paging.count_caption("testimonials", f"{total} testimonial{'s' if total != 1 else ''} {readers} may see{shown}.")
    event = rows_table(
        [
            {
                "Received": day(r["received_on"]),
                "Quote": r["quote"],
                "Attributed as": testimonials.attribution(r, audience),
                "Partner type": r["type_label"],
                "Branch": r["branch"],
                "Consent": testimonials.SCOPES[r["consent_scope"]]
                + (" (withdrawn)" if r["consent_withdrawn_on"] else ""),
            }
            for r in rows
        ],
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="testimonials_table",
        width="stretch",
    )
    paging.pager("testimonials", page, pages, table_key="testimonials_table")
    if event and event.selection.rows:
        st.query_params["testimonial"] = str(rows[event.selection.rows[0]]["id"])
        st.rerun()
    st.subheader("Export")
    listed = "Exactly the testimonials listed above" if total == len(rows) else f"All {total} testimonials found"
    st.write(f"{listed}, attributed for {readers}. Every export is recorded.")
    provider = settings.get(database, "provider_name", "")
    scope_label = branches.scope_label(database, actor)
    buttons = st.columns(4)
    for column, (fmt, label) in zip(
        buttons, (("docx", "Evidence pack (Word)"), ("xlsx", "Excel"), ("csv", "CSV"), ("md", "Markdown")), strict=True
    ):
        with column:
            deferred_download(
                label,
                lambda database, actor, fmt=fmt: testimonials.export(
                    database, actor, fmt, audience, provider=provider, scope_label=scope_label, **filters
                )[0],
                file_name=f"testimonials-{audience}-{today.isoformat()}.{testimonials.FORMATS[fmt][1]}",
                mime=testimonials.FORMATS[fmt][0],
                key=f"testimonials_export_{fmt}",
            )


st.title("Testimonials")
if "testimonial" in st.query_params:
    if (testimonial_id := query_id("testimonial")) is not None:
        show(testimonial_id)
else:
    browse()
