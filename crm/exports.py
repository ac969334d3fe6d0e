"""Writing results out: CSV that is safe to open in Excel, JSON, and plain-text tables for the terminal."""

import csv
import io
import json
import re

from crm import dates
from crm.fields import UNSTORABLE

# OWASP CSV injection: a cell starting with one of these can run as a formula in Excel or LibreOffice.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\0")


def safe_cell(value: object) -> object:
    """A value a spreadsheet will show as text: formula-like strings get a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def to_csv(rows: list[dict], columns: list[str]) -> str:
    """CSV text with a header row, every cell formula-safe (without a BOM; add one for Excel downloads)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(row.get(column, "")) for column in columns])
    return buffer.getvalue()


def to_json(rows: list[dict]) -> str:
    """JSON array of objects, UTF-8 text kept readable."""
    return json.dumps(rows, ensure_ascii=False, indent=2, default=str)


def to_table(rows: list[dict], columns: list[str]) -> str:
    """Aligned plain-text columns for the terminal."""
    cells = [[str(row.get(column) if row.get(column) is not None else "") for column in columns] for row in rows]
    widths = [max([len(column), *(len(r[i]) for r in cells)]) for i, column in enumerate(columns)]
    lines = [[*columns], *cells]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def to_xlsx(rows: list[dict], columns: list[str], sheet_title: str) -> bytes:
    """An Excel workbook with a header row; every value stored as text or number, never as a formula."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = sheet_title[:31]
    sheet.append(columns)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([_xlsx_text(row.get(column, "")) for column in columns])
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str):
                # openpyxl would store "=..." as a formula: a string cell is shown as typed and never run.
                cell.data_type = "s"
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    for index, column in enumerate(columns, start=1):
        width = max([len(column), *(min(len(str(r.get(column, ""))), 60) for r in rows)]) + 2
        sheet.column_dimensions[sheet.cell(row=1, column=index).column_letter].width = width
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_text(value: object) -> object:
    # Formula-like text gets the same apostrophe as in CSV, so it stays inert if the sheet is saved as CSV.
    return xml_safe(safe_cell(value))


def xml_safe(value: object) -> object:
    """Text a Word or Excel file (XML 1.0) can hold: each character it cannot (a control character, U+FFFE...)
    is dropped. Entry refuses them (fields.UNSTORABLE), but rows stored before that must not break exports;
    lists and dicts are cleaned throughout."""
    if isinstance(value, str):
        return UNSTORABLE.sub("", value)
    if isinstance(value, list):
        return [xml_safe(item) for item in value]
    if isinstance(value, dict):
        return {key: xml_safe(item) for key, item in value.items()}
    return value


def testimonials_markdown(rows: list[dict], meta: dict) -> str:
    """Quotes as Markdown block quotes, each with its attribution and month, for web pages and newsletters."""
    lines = ["# What our partners say", "", f"{_md_text(meta['provider'])}, {_md_text(meta['scope'])}.", ""]
    for row in rows:
        quote = row["Quote"].replace("\r", "").split("\n")
        lines += [f"> {_md_text(line)}" if line else ">" for line in quote]
        month = _month(row["Received on"])
        lines += [">", f"> — {_md_text(row['Attribution'])}, {month}", ""]
    return "\n".join(lines).rstrip() + "\n"


def _md_text(text: str) -> str:
    # Quotes are plain text: characters Markdown would act on anywhere in a line (links, emphasis, code, HTML,
    # strikethrough and fences, tables, entities) are escaped, and so is a line start that would make a heading,
    # a setext underline ("==="), a list or numbered list ("1." or "1)"), a quote; leading spaces (an indented
    # code block) are dropped.
    escaped = "".join("\\" + c if c in "\\`*_[]<>|~" else c for c in text.lstrip(" \t"))
    escaped = re.sub(r"&(?=#?[A-Za-z0-9]+;)", r"\\&", escaped)
    if escaped[:1] in ("#", "+", "-") or re.fullmatch(r"=+\s*", escaped):
        return "\\" + escaped
    return re.sub(r"^(\d+)([.)])", r"\1\\\2", escaped)


def _month(iso_date: str) -> str:
    return dates.month(iso_date)


PACK_TITLE = "Feedback from partners"


def evidence_pack(rows: list[dict], flat: list[dict], statements: list[dict], meta: dict) -> bytes:
    """A Word evidence pack on A4: a cover page (provider, scope, period, audience, date produced), a contents list,
    quotes grouped by CQC quality statement then partner type, each with its evidence file named, and a summary
    table of counts by partner type and statement; page numbers in the footer and the document's properties set.

    ``meta`` holds provider, scope, audience, period (text) and produced (a datetime).
    """
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.enum.text import WD_BREAK
    from docx.shared import Mm, Pt

    rows, flat, statements, meta = xml_safe([rows, flat, statements, meta])  # type: ignore[misc]
    document = Document()
    _pack_properties(document, meta)
    style = document.styles["Normal"]
    style.font.name = "Arial"
    style.font.size = Pt(11)
    section = document.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.left_margin = section.right_margin = Mm(25)
    section.top_margin = section.bottom_margin = Mm(25)
    _pack_header_footer(section, meta)

    # The cover reads as one: the title a third of the way down, the provider large beneath it.
    title = document.add_heading(PACK_TITLE, level=0)
    title.paragraph_format.space_before = Mm(60)
    provider = document.add_paragraph().add_run(meta["provider"])
    provider.bold = True
    provider.font.size = Pt(16)
    for label, value in (
        ("Covering", meta["scope"]),
        ("Period", meta["period"]),
        ("Prepared for", meta["audience"]),
        ("Prepared on", dates.long_day(meta["produced"])),
        ("Testimonials", str(len(rows))),
    ):
        paragraph = document.add_paragraph()
        paragraph.add_run(f"{label}: ").bold = True
        paragraph.add_run(value)
    document.add_paragraph(
        "Each quote is reproduced with the giver's consent and attributed as they agreed. Quotes are grouped by "
        "the CQC quality statement they evidence; a quote may appear under more than one statement. The evidence "
        "file named under each quote is kept by the provider and can be shown on request."
    )
    document.paragraphs[-1].runs[-1].add_break(WD_BREAK.PAGE)

    labels = {s["code"]: f"{s['code']}: {s['label']}" for s in statements}
    groups = [(code, label) for code, label in labels.items()] + [("", "Not linked to a quality statement")]
    chosen_by_group = [
        (
            label,
            [
                (r, f)
                for r, f in zip(rows, flat, strict=True)
                if (code in r["statements"]) or (not code and not r["statements"])
            ],
        )
        for code, label in groups
    ]
    chosen_by_group = [(label, chosen) for label, chosen in chosen_by_group if chosen]
    _pack_contents(document, [label for label, _ in chosen_by_group] + ["Summary"])

    for label, chosen in chosen_by_group:
        document.add_heading(label, level=1)
        for partner_type in sorted({f["Partner type"] for _, f in chosen}):
            document.add_heading(partner_type, level=2)
            for r, f in (pair for pair in chosen if pair[1]["Partner type"] == partner_type):
                quote = document.add_paragraph(style="Quote")
                quote.add_run(f"“{f['Quote']}”")
                source = document.add_paragraph()
                source.paragraph_format.keep_with_next = True
                source.add_run(f"{f['Attribution']}, {_month(f['Received on'])}").italic = True
                evidence = document.add_paragraph()
                evidence.paragraph_format.space_after = Pt(14)
                evidence.add_run("Evidence file: ").bold = True
                evidence.add_run(r.get("evidence_name") or f"none kept ({f['How it came'].lower()})")
                # The quote, its attribution and its evidence stay on one page.
                quote.paragraph_format.keep_with_next = True
    document.add_heading("Summary", level=1).paragraph_format.page_break_before = True
    types = sorted({f["Partner type"] for f in flat})
    table = document.add_table(rows=1, cols=len(statements) + 2)
    table.style = "Light Grid Accent 1"
    table.autofit = False
    header = table.rows[0].cells
    header[0].text = "Partner type"
    for i, statement in enumerate(statements, start=1):
        header[i].text = statement["code"]
    header[-1].text = "Testimonials"
    _repeat_header_row(table.rows[0])
    for partner_type in types:
        cells = table.add_row().cells
        mine = [r for r, f in zip(rows, flat, strict=True) if f["Partner type"] == partner_type]
        cells[0].text = partner_type
        for i, statement in enumerate(statements, start=1):
            cells[i].text = str(sum(statement["code"] in r["statements"] for r in mine))
        cells[-1].text = str(len(mine))
    _summary_widths(table, section.page_width - section.left_margin - section.right_margin)
    key = document.add_paragraph()
    key.paragraph_format.space_before = Pt(12)
    key.add_run("Quality statements: ").bold = True
    key.add_run("; ".join(labels.values()) + ".")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _pack_properties(document, meta: dict) -> None:
    # python-docx's template carries its own author and a 2013 date: every property is set from this export.
    properties = document.core_properties
    properties.title = f"{PACK_TITLE}: {meta['provider']}, {meta['scope']}"
    properties.subject = f"Testimonials for {meta['audience']}, {meta['period']}"
    properties.author = meta["provider"]
    properties.last_modified_by = meta["provider"]
    properties.comments = ""
    properties.keywords = "CQC evidence; partner feedback; testimonials"
    properties.category = "Evidence pack"
    properties.language = "en-GB"
    properties.revision = 1
    created = meta["produced"].replace(tzinfo=None)  # python-docx writes it as UTC (a naive datetime)
    properties.created = properties.modified = created
    properties.last_printed = created


def _field(paragraph, instruction: str, placeholder: str = "") -> None:
    """A Word field (PAGE, NUMPAGES, ...) in ``paragraph``, showing ``placeholder`` until Word updates it."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    def char(kind: str):
        run = paragraph.add_run()
        element = OxmlElement("w:fldChar")
        element.set(qn("w:fldCharType"), kind)
        run._r.append(element)

    char("begin")
    code = OxmlElement("w:instrText")
    code.set(qn("xml:space"), "preserve")
    code.text = f" {instruction} "
    paragraph.add_run()._r.append(code)
    char("separate")
    paragraph.add_run(placeholder)
    char("end")


def _pack_header_footer(section, meta: dict) -> None:
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt, RGBColor

    # The cover page has neither: it is the cover.
    section.different_first_page_header_footer = True
    header = section.header.paragraphs[0]
    header.text = f"{PACK_TITLE}: {meta['provider']}, {meta['scope']}"
    header.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    footer.add_run(f"For {meta['audience']}. Prepared on {dates.long_day(meta['produced'])}.    Page ")
    _field(footer, "PAGE", "1")
    footer.add_run(" of ")
    _field(footer, "NUMPAGES", "1")
    for paragraph in (header, footer):
        for run in paragraph.runs:
            run.font.size = Pt(9)
            run.font.color.rgb = RGBColor(0x59, 0x59, 0x59)


def _pack_contents(document, sections: list[str]) -> None:
    """A contents page: a TOC field (page numbers once Word updates it) whose shown result, until then and in
    readers that never update fields, is the plain list of the pack's sections."""
    from docx.enum.text import WD_BREAK
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    document.add_heading("Contents", level=1)
    items = [document.add_paragraph(name, style="List Bullet") for name in sections]
    first, last = items[0], items[-1]

    def char(kind: str):
        element = OxmlElement("w:fldChar")
        element.set(qn("w:fldCharType"), kind)
        if kind == "begin":
            element.set(qn("w:dirty"), "true")
        run = OxmlElement("w:r")
        run.append(element)
        return run

    code_run = OxmlElement("w:r")
    code = OxmlElement("w:instrText")
    code.set(qn("xml:space"), "preserve")
    code.text = ' TOC \\o "1-1" \\h \\z \\u '
    code_run.append(code)
    # The field starts before the first item's text and ends after the last's: the items are its result.
    first_text = first._p.find(qn("w:r"))
    for element in (char("begin"), code_run, char("separate")):
        first_text.addprevious(element)
    last._p.append(char("end"))
    note = document.add_paragraph()
    note.add_run("Page numbers appear when the contents are updated in Word (right-click, Update Field).").italic = True
    note.runs[-1].add_break(WD_BREAK.PAGE)


def _repeat_header_row(row) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    properties = row._tr.get_or_add_trPr()
    repeat = OxmlElement("w:tblHeader")
    repeat.set(qn("w:val"), "true")
    properties.append(repeat)


def _summary_widths(table, usable: int) -> None:
    """Partner type names get the room (equal columns wrapped them letter by letter), the counts a narrow
    column each; no row is split across pages."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Mm

    counts = len(table.columns) - 2
    total_column, count_column = Mm(28), Mm(14)
    widths = [usable - total_column - counts * count_column, *[count_column] * counts, total_column]
    for index, width in enumerate(widths):
        table.columns[index].width = width
    for row in table.rows:
        for cell, width in zip(row.cells, widths, strict=True):
            cell.width = width  # Word reads the cells' widths, LibreOffice the columns'
        row._tr.get_or_add_trPr().append(OxmlElement("w:cantSplit"))
        row._tr.trPr[-1].set(qn("w:val"), "true")


def to_vcards(people: list[dict]) -> str:
    """vCard 3.0 cards (one per person) for address books and mailing tools."""

    def escape(value: object) -> str:
        text = str(value or "")
        return text.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\n", "\\n")

    cards = []
    for person in people:
        lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{escape(person['name'])}", f"N:{escape(person['name'])};;;;"]
        if person.get("organisation"):
            lines.append(f"ORG:{escape(person['organisation'])}")
        if person.get("job_title"):
            lines.append(f"TITLE:{escape(person['job_title'])}")
        if person.get("email"):
            lines.append(f"EMAIL;TYPE=INTERNET:{escape(person['email'])}")
        if person.get("phone"):
            lines.append(f"TEL;TYPE=WORK,VOICE:{escape(person['phone'])}")
        if person.get("mobile"):
            lines.append(f"TEL;TYPE=CELL:{escape(person['mobile'])}")
        lines.append("END:VCARD")
        cards.append("\r\n".join(lines))
    return "\r\n".join(cards) + ("\r\n" if cards else "")
