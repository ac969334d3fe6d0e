"""``python -m crm export-testimonials``, run as users run it: a subprocess from the repository root with CRM_DB set;
each format read back with its library, the audience, region, branch and date options, and one-line errors."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crm import db, settings
from tests.conftest import World
from tests.test_exports import attributions_in, csv_rows, docx_paragraphs, quotes_in
from tests.test_testimonials import NAMED, audit_entries, build_world, copy_world, with_consent

REPO = Path(__file__).resolve().parents[1]

LEEDS_PUBLIC = "Leeds public quote, kind and prompt."
LEEDS_INTERNAL = "Leeds internal quote, thanks."
YORK_CQC = "York quote for the inspectors."
BRISTOL_PUBLIC = "Bristol public quote, lovely team."
YORK_ROLE = "Social Worker, York Council"


def run(*args: str, db_path: Path) -> subprocess.CompletedProcess:
    """Run ``python -m crm`` from the repository root with CRM_DB set (and no other CRM_ settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env["CRM_DB"] = str(db_path)
    return subprocess.run(
        [sys.executable, "-m", "crm", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, World]:
    """The world with the provider's name and four testimonials (dates in 2025, whatever today is): a public and
    an internal one in Leeds, a CQC one in York, a public one in Bristol."""
    path = tmp_path_factory.mktemp("testimonials_cli") / "crm.db"
    world = build_world(path)
    world.db = db.connect(path)
    settings.put(world.db, world.admin, "provider_name", "Acme Care")
    with_consent(world, "public", "named", quote=LEEDS_PUBLIC, received_on="2025-06-10")
    with_consent(world, "internal", "named", quote=LEEDS_INTERNAL, received_on="2025-06-12")
    with_consent(
        world,
        "cqc",
        "role",
        branch_id=world.york,
        contact_id=None,
        giver_name="Yara Young",
        giver_role="Social Worker",
        organisation_name="York Council",
        type_code="LA_SOCIAL_CARE",
        quote=YORK_CQC,
        received_on="2025-06-14",
    )
    with_consent(
        world,
        "public",
        "anonymous",
        branch_id=world.bristol,
        contact_id=None,
        giver_name="Bo Brown",
        organisation_id=world.council,
        quote=BRISTOL_PUBLIC,
        received_on="2025-06-16",
    )
    world.db.close()
    return path, world


@pytest.fixture
def world(template, tmp_path) -> World:
    scene = copy_world(*template, tmp_path / "crm.db")
    scene.path = tmp_path / "crm.db"
    yield scene
    scene.db.close()


def export(world: World, fmt: str, *options: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = world.path.parent / f"out.{fmt}"
    return run("export-testimonials", "--format", fmt, "--out", str(out), *options, db_path=world.path), out


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "docx", "md"])
def test_each_format_writes_a_file_its_library_reads(world, fmt):
    """Test that export-testimonials writes each format to --out, says so in one line, and the file read back with
    its library holds every testimonial (the internal audience by default), newest first, fully attributed."""
    result, out = export(world, fmt)

    assert (result.returncode, result.stdout, result.stderr) == (0, f"wrote {out}\n", "")
    content = out.read_bytes()
    assert quotes_in(fmt, content) == [BRISTOL_PUBLIC, YORK_CQC, LEEDS_INTERNAL, LEEDS_PUBLIC]
    assert attributions_in(fmt, content) == [
        "Bo Brown, Bristol Council Adult Social Care",
        f"Yara Young, {YORK_ROLE}",
        NAMED,
        NAMED,
    ]
    if fmt == "csv":
        assert csv_rows(content)[0][:3] == ["Received on", "Quote", "Attribution"]
    if fmt == "docx":
        assert docx_paragraphs(content)[:5] == [
            ("Title", "Feedback from partners"),
            ("Normal", "Acme Care"),
            ("Normal", "Covering: All branches"),
            ("Normal", "Period: 10 June 2025 to 16 June 2025"),
            ("Normal", "Prepared for: Internal"),
        ]
    if fmt == "md":
        assert content.decode("utf-8").splitlines()[:3] == ["# What our partners say", "", "Acme Care, All branches."]


def test_for_public_leaves_out_what_the_public_may_not_see(world):
    """Test that --for public holds only the testimonials with public consent, attributed as agreed."""
    result, out = export(world, "csv", "--for", "public")

    assert (result.returncode, result.stderr) == (0, "")
    assert [(row[1], row[2], row[9]) for row in csv_rows(out.read_bytes())[1:]] == [
        (BRISTOL_PUBLIC, "Anonymous, Council adult social care", "Public"),
        (LEEDS_PUBLIC, NAMED, "Public"),
    ]
    assert audit_entries(world, "export_testimonials") == [
        {
            "username": "command line",
            "action": "export_testimonials",
            "table_name": "testimonials",
            "row_id": None,
            "changes": {"format": "csv", "audience": "public", "count": 2, "scope": "All branches"},
        }
    ]


def test_for_cqc_with_a_branch(world):
    """Test that --for cqc --branch York holds only York's testimonial, attributed by role and organisation."""
    result, out = export(world, "xlsx", "--for", "cqc", "--branch", "York")

    assert (result.returncode, result.stderr) == (0, "")
    content = out.read_bytes()
    assert list(zip(quotes_in("xlsx", content), attributions_in("xlsx", content), strict=True)) == [
        (YORK_CQC, YORK_ROLE)
    ]


def test_region_limits_the_rows(world):
    """Test that --region North holds only the North region's branches (Leeds and York), and names the region as
    the scope of the evidence pack."""
    result, out = export(world, "docx", "--region", "North")

    assert (result.returncode, result.stderr) == (0, "")
    content = out.read_bytes()
    assert quotes_in("docx", content) == [YORK_CQC, LEEDS_INTERNAL, LEEDS_PUBLIC]
    assert docx_paragraphs(content)[2] == ("Normal", "Covering: North region")


def test_region_south_for_public_in_markdown(world):
    """Test that --region South --for public writes only Bristol's public quote, anonymised, in Markdown."""
    result, out = export(world, "md", "--region", "South", "--for", "public")

    assert (result.returncode, result.stderr) == (0, "")
    assert out.read_text(encoding="utf-8") == (
        "# What our partners say\n"
        "\n"
        "Acme Care, South region.\n"
        "\n"
        f"> {BRISTOL_PUBLIC}\n"
        ">\n"
        "> — Anonymous, Council adult social care, June 2025\n"
    )


def test_since_and_until_limit_the_dates(world):
    """Test that --since and --until keep only the testimonials received between them (inclusive)."""
    result, out = export(world, "csv", "--since", "2025-06-11", "--until", "2025-06-14")

    assert (result.returncode, result.stderr) == (0, "")
    assert quotes_in("csv", out.read_bytes()) == [YORK_CQC, LEEDS_INTERNAL]


@pytest.mark.parametrize(
    ("options", "status", "message"),
    [
        (("--branch", "Nowhere"), 1, "No branch called “Nowhere”."),
        (("--region", "Atlantis"), 1, "No region called “Atlantis”."),
        (("--branch", "Leeds", "--region", "North"), 2, "give --branch or --region, not both"),
    ],
)
def test_bad_scope_is_a_one_line_error_and_writes_nothing(world, options, status, message):
    """Test that an unknown branch or region, or both options at once, is one line on stderr with a non-zero exit,
    no output file and no audit entry."""
    result, out = export(world, "csv", *options)

    assert (result.returncode, result.stdout, result.stderr) == (status, "", f"error: {message}\n")
    assert not out.exists()
    assert audit_entries(world, "export_testimonials") == []


def test_missing_database_is_a_one_line_error(tmp_path):
    """Test that exporting from a database file that does not exist says how to create one, and creates nothing."""
    missing = tmp_path / "nothing.db"

    result = run("export-testimonials", "--format", "csv", "--out", str(tmp_path / "out.csv"), db_path=missing)

    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        f"error: {missing} does not exist; create it with: python -m crm init --admin NAME\n",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["docx", "xlsx"])
def test_a_stored_non_character_does_not_break_word_or_excel_exports(world, fmt):
    """Test that a quote already stored with U+FFFE (accepted on entry before it was refused) and a provider name
    with a control character are written without those characters, instead of ending the export in a traceback.
    Regression: one such testimonial made every Word and Excel export fail."""
    world.db.execute(
        "UPDATE testimonials SET quote = ? WHERE quote = ?", ["York quote\ufffe for the inspectors.", YORK_CQC]
    )
    world.db.execute("UPDATE settings SET value = ? WHERE key = 'provider_name'", ["Acme\x0bCare\uffff"])

    result, out = export(world, fmt)

    assert (result.returncode, result.stdout, result.stderr) == (0, f"wrote {out}\n", "")
    content = out.read_bytes()
    assert quotes_in(fmt, content) == [
        BRISTOL_PUBLIC,
        "York quote for the inspectors.",
        LEEDS_INTERNAL,
        LEEDS_PUBLIC,
    ]
    if fmt == "docx":
        assert docx_paragraphs(content)[1] == ("Normal", "AcmeCare")
