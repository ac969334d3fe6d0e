"""Writing results out: CSV that is safe to open in Excel, JSON, and plain-text tables for the terminal."""

import csv
import io
import json

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
