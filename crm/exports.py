"""Writing results out: CSV that is safe to open in Excel, JSON, and plain-text tables for the terminal."""

import csv
import io
import json
import re

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
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    # Formula-like text gets the same apostrophe as in CSV, so it stays inert if the sheet is saved as CSV;
    # control characters XML cannot hold are dropped.
    value = safe_cell(value)
    return ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value


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
    from datetime import date

    return date.fromisoformat(iso_date).strftime("%B %Y")


def evidence_pack(rows: list[dict], flat: list[dict], statements: list[dict], meta: dict) -> bytes:
    """A Word evidence pack: title page, quotes grouped by CQC quality statement then partner type, and a
    summary table of counts by partner type and statement."""
    from docx import Document
    from docx.enum.text import WD_BREAK
    from docx.shared import Pt

    document = Document()
    style = document.styles["Normal"]
    style.font.name = "Arial"
    style.font.size = Pt(11)
    document.add_heading("Feedback from partners", level=0)
    document.add_paragraph().add_run(meta["provider"]).bold = True  # (a paragraph of no text has no run)
    for label, value in (
        ("Covering", meta["scope"]),
        ("Period", meta["period"]),
        ("Prepared for", meta["audience"]),
        ("Prepared on", meta["generated"]),
        ("Testimonials", str(len(rows))),
    ):
        paragraph = document.add_paragraph()
        paragraph.add_run(f"{label}: ").bold = True
        paragraph.add_run(value)
    document.add_paragraph(
        "Each quote is reproduced with the giver's consent and attributed as they agreed. Quotes are grouped by "
        "the CQC quality statement they evidence; a quote may appear under more than one statement."
    )
    document.paragraphs[-1].runs[-1].add_break(WD_BREAK.PAGE)
    labels = {s["code"]: f"{s['code']}: {s['label']}" for s in statements}
    groups = [(code, label) for code, label in labels.items()] + [("", "Not linked to a quality statement")]
    for code, label in groups:
        chosen = [
            (r, f)
            for r, f in zip(rows, flat, strict=True)
            if (code in r["statements"]) or (not code and not r["statements"])
        ]
        if not chosen:
            continue
        document.add_heading(label, level=1)
        for partner_type in sorted({f["Partner type"] for _, f in chosen}):
            document.add_heading(partner_type, level=2)
            for _, f in (pair for pair in chosen if pair[1]["Partner type"] == partner_type):
                quote = document.add_paragraph(style="Quote")
                quote.add_run(f"“{f['Quote']}”")
                source = document.add_paragraph()
                source.add_run(f"{f['Attribution']}, {_month(f['Received on'])}").italic = True
    document.add_heading("Summary", level=1)
    types = sorted({f["Partner type"] for f in flat})
    table = document.add_table(rows=1, cols=len(statements) + 2)
    table.style = "Light Grid Accent 1"
    header = table.rows[0].cells
    header[0].text = "Partner type"
    for i, statement in enumerate(statements, start=1):
        header[i].text = statement["code"]
    header[-1].text = "Testimonials"
    for partner_type in types:
        cells = table.add_row().cells
        mine = [r for r, f in zip(rows, flat, strict=True) if f["Partner type"] == partner_type]
        cells[0].text = partner_type
        for i, statement in enumerate(statements, start=1):
            cells[i].text = str(sum(statement["code"] in r["statements"] for r in mine))
        cells[-1].text = str(len(mine))
    key = document.add_paragraph()
    key.add_run("Quality statements: ").bold = True
    key.add_run("; ".join(labels.values()) + ".")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


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
