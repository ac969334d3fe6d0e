"""The command line: ``python -m crm COMMAND``. Parses arguments and calls the same functions the pages call."""

import argparse
import getpass
import os
import sqlite3
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from sqlite_utils import Database

from crm import (
    access,
    backups,
    branches,
    config,
    contacts,
    coverage,
    db,
    demo,
    digest,
    directory,
    exports,
    fields,
    ical,
    imports,
    interactions,
    merge,
    privacy,
    referrals,
    schema,
    settings,
    testimonials,
    users,
)
from crm.access import COMMAND_LINE, ROLES, Actor
from crm.errors import CRMError

PASSWORD_ENV = "CRM_ADMIN_PASSWORD"
DEFAULT_EPRACCUR = Path(__file__).resolve().parents[2] / "shared" / "data" / "epraccur.csv"


class CommandError(Exception):
    """A user mistake on the command line: printed as one line, exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    path = Path(args.db) if getattr(args, "db", None) else config.from_env().db_path
    try:
        return args.handler(path, args)
    except (CRMError, CommandError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, CommandError) else 1
    except sqlite3.DatabaseError as error:
        print(f"error: cannot use the database {path}: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into head and the like
        return 0
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    # --db is accepted before or after the command name (python -m crm --db X check, or check --db X).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS, help="database file (default: $CRM_DB, else data/crm.db)")
    parser = argparse.ArgumentParser(prog="python -m crm", description="Partner CRM command line.", parents=[common])
    commands = _Commands(parser.add_subparsers(required=True, metavar="COMMAND"), common)

    init = commands.add_parser("init", help="create or upgrade the database, with its first administrator")
    init.add_argument("--admin", required=True, metavar="NAME", help="user name of the first administrator")
    init.add_argument("--full-name", help="the administrator's full name (default: the user name)")
    init.add_argument("--demo", action="store_true", help="load the demo provider and its demo accounts")
    init.set_defaults(handler=cmd_init)

    users_parser = commands.add_parser("users", help="manage user accounts")
    users_cmd = _Commands(users_parser.add_subparsers(required=True, metavar="ACTION"), common)
    add = users_cmd.add_parser("add", help=f"add a user (password from ${PASSWORD_ENV} or a prompt)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", required=True, choices=sorted(ROLES))
    add.add_argument("--region", help="region name (regional leads)")
    add.add_argument("--branch", help="branch name (branch managers)")
    add.add_argument("--full-name", help="the user's full name (default: the user name)")
    add.set_defaults(handler=cmd_users_add)
    users_cmd.add_parser("list", help="list user accounts").set_defaults(handler=cmd_users_list)
    for action, disabled in (("disable", True), ("enable", False)):
        sub = users_cmd.add_parser(action, help=f"{action} a user account")
        sub.add_argument("name", metavar="NAME")
        sub.set_defaults(handler=cmd_users_disable, disabled=disabled)

    commands.add_parser("check", help="integrity check, pending migrations, row counts").set_defaults(handler=cmd_check)

    gp = commands.add_parser("import-gp-practices", help="add or update GP practices from the NHS epraccur file")
    gp.add_argument("file", metavar="FILE", type=Path)
    gp.set_defaults(handler=cmd_import_gp_practices)

    contacts_import = commands.add_parser("import-contacts", help="import contacts from a CSV or XLSX file")
    contacts_import.add_argument("file", metavar="FILE", type=Path)
    contacts_import.add_argument("--branch", required=True, metavar="NAME", help="branch the contacts belong to")
    contacts_import.add_argument(
        "--map", default="", metavar="MAP", help='column mapping, e.g. "Tel=phone,Practice=organisation"'
    )
    contacts_import.add_argument("--on-duplicate", choices=["skip", "update"], default="skip")
    contacts_import.add_argument("--dry-run", action="store_true", help="report what would happen; write nothing")
    contacts_import.add_argument("--report", type=Path, metavar="FILE.json", help="write every row's outcome as JSON")
    _force_option(contacts_import)
    contacts_import.set_defaults(handler=cmd_import_contacts)

    cover = commands.add_parser("coverage", help="relationship coverage per branch and partner type")
    _scope_options(cover)
    cover.add_argument("--as-of", type=_iso_date, metavar="DATE", help="coverage as it stood on DATE (YYYY-MM-DD)")
    cover.add_argument("--window-days", type=int, metavar="N", help="a touch within N days is warm (default: 90)")
    cover.add_argument("--format", choices=["table", "csv", "json"], default="table")
    cover.set_defaults(handler=cmd_coverage)

    bench_cmd = commands.add_parser("bench", help="build a large provider's database and time the pages")
    bench_cmd.add_argument("--runs", type=int, default=5, help="timed runs per measurement (median reported)")
    bench_cmd.add_argument("--keep", type=Path, metavar="PATH", help="keep the built database at PATH")
    bench_cmd.add_argument(
        "--epraccur",
        type=Path,
        default=DEFAULT_EPRACCUR,
        metavar="FILE",
        help="NHS GP practice file to time the directory import with",
    )
    bench_cmd.set_defaults(handler=cmd_bench)

    backup_cmd = commands.add_parser("backup", help="write a consistent copy of the database, safe while in use")
    backup_cmd.add_argument("file", metavar="FILE", type=Path)
    _force_option(backup_cmd)
    backup_cmd.set_defaults(handler=cmd_backup)
    restore_cmd = commands.add_parser("restore", help="replace the database with a backup (the old one is kept)")
    restore_cmd.add_argument("file", metavar="FILE", type=Path)
    restore_cmd.set_defaults(handler=cmd_restore)

    export_person = commands.add_parser("export-person", help="everything held about one contact")
    export_person.add_argument("contact_id", metavar="CONTACT_ID", type=int)
    export_person.add_argument("--out", required=True, type=Path, metavar="FILE", help="FILE.json, or .txt to read")
    _force_option(export_person)
    export_person.set_defaults(handler=cmd_export_person)
    erase = commands.add_parser("erase-contact", help="erase a contact's personal data (interactions stay)")
    erase.add_argument("contact_id", metavar="CONTACT_ID", type=int)
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    erase.set_defaults(handler=cmd_erase_contact)

    export_t = commands.add_parser("export-testimonials", help="testimonials as CSV, XLSX, DOCX or Markdown")
    export_t.add_argument("--format", required=True, choices=["csv", "xlsx", "docx", "md"])
    export_t.add_argument("--out", required=True, type=Path, metavar="FILE")
    _force_option(export_t)
    _scope_options(export_t)
    export_t.add_argument("--for", dest="audience", choices=["internal", "cqc", "public"], default="internal")
    export_t.add_argument("--since", type=_iso_date, metavar="DATE")
    export_t.add_argument("--until", type=_iso_date, metavar="DATE")
    export_t.set_defaults(handler=cmd_export_testimonials)

    mailing = commands.add_parser("mailing-list", help="active contacts who may be contacted, as CSV or vCard")
    mailing.add_argument("--format", required=True, choices=["csv", "vcf"])
    mailing.add_argument("--out", required=True, type=Path, metavar="FILE")
    _force_option(mailing)
    _scope_options(mailing)
    mailing.set_defaults(handler=cmd_mailing_list)

    followups = commands.add_parser("followups", help="follow-ups due or overdue, and lapsed named contacts")
    _scope_options(followups)
    followups.add_argument("--format", choices=["table", "csv", "json", "ics"], default="table")
    followups.add_argument("--out", type=Path, metavar="FILE", help="write to FILE (needed for --format ics)")
    followups.set_defaults(handler=cmd_followups)

    digest_cmd = commands.add_parser("digest", help="email each user their week (or write the emails to files)")
    digest_cmd.add_argument("--branch", metavar="NAME", help="only the users of this branch (managers and leads)")
    digest_cmd.add_argument("--dry-run", action="store_true", help="write the emails to --out DIR; send nothing")
    digest_cmd.add_argument("--out", type=Path, metavar="DIR", help="folder for --dry-run's .eml files")
    digest_cmd.add_argument("--send", action="store_true", help="send through the SMTP server in $CRM_SMTP_*")
    digest_cmd.set_defaults(handler=cmd_digest)

    address = users_cmd.add_parser("email", help="set a user's email address for the weekly digest")
    address.add_argument("name", metavar="NAME")
    address.add_argument("address", metavar="ADDRESS", help='the address ("" removes it)')
    choice = address.add_mutually_exclusive_group()
    choice.add_argument("--opt-out", dest="opt_out", action="store_true", default=None, help="no weekly digest")
    choice.add_argument("--opt-in", dest="opt_out", action="store_false", help="the weekly digest again")
    address.set_defaults(handler=cmd_users_email)

    for kind, fields_list in (("contacts", merge.CONTACT_FIELDS), ("organisations", merge.ORGANISATION_FIELDS)):
        merge_cmd = commands.add_parser(f"merge-{kind}", help=f"merge two duplicate {kind}: B into A")
        merge_cmd.add_argument("survivor", metavar="A", type=int, help="id of the record that stays")
        merge_cmd.add_argument("merged", metavar="B", type=int, help="id of the duplicate merged into A")
        merge_cmd.add_argument(
            "--take",
            default="",
            metavar="FIELDS",
            help=f"fields to take from B, comma-separated: {','.join(fields_list)}",
        )
        merge_cmd.set_defaults(handler=cmd_merge, kind=kind)

    referral_cmd = commands.add_parser("referrals", help="referrals received, accepted, response times, declines")
    _scope_options(referral_cmd)
    referral_cmd.add_argument("--since", type=_iso_date, metavar="DATE", help="received on or after DATE (UK time)")
    referral_cmd.add_argument("--until", type=_iso_date, metavar="DATE", help="received on or before DATE (UK time)")
    referral_cmd.add_argument("--by", choices=sorted(referrals.GROUPINGS), default="branch", help="group by")
    referral_cmd.add_argument("--format", choices=["table", "csv", "json"], default="table")
    referral_cmd.set_defaults(handler=cmd_referrals)
    return parser


class _Commands:
    """Adds sub-commands that all accept the common options."""

    def __init__(self, subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser):
        self.subparsers, self.common = subparsers, common

    def add_parser(self, name: str, help: str) -> argparse.ArgumentParser:
        return self.subparsers.add_parser(name, parents=[self.common], help=help)


def _force_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="replace the output file if it exists")


def _output(target: Path, db_path: Path, force: bool) -> Path:
    """Check a file a command is about to write, before any work is done: never the database or its companion
    files (even with --force), never an existing file (the database's backups included) unless ``force``, and
    only into a folder that exists.

    :raises CommandError: saying which, in one line.
    """
    resolved = target.resolve()
    live = db_path.resolve()
    evidence = backups.evidence_folder(live)
    companions = {live, *(live.with_name(live.name + suffix) for suffix in ("-wal", "-shm", "-journal"))}
    if resolved in companions or resolved == evidence or evidence in resolved.parents:
        raise CommandError(f"{target} is the database {db_path} or one of its files; choose another file")
    if resolved.is_dir():
        raise CommandError(f"{target} is a folder; give a file name")
    if not resolved.parent.is_dir():
        raise CommandError(f"the folder {target.parent} does not exist")
    if resolved.exists() and not force:
        raise CommandError(f"{target} already exists; add --force to replace it")
    return target


def _write_out(target: Path, content: str | bytes, db_path: Path, force: bool) -> None:
    """Write a command's output file whole: under a temporary name in the same folder, renamed when complete."""
    _output(target, db_path, force)
    data = content.encode("utf-8") if isinstance(content, str) else content
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        partial.write_bytes(data)
        if force:
            os.replace(partial, target)
        else:
            try:
                os.link(partial, target)  # never replaces a file that appeared since the check
            except FileExistsError:
                raise CommandError(f"{target} already exists; add --force to replace it") from None
    finally:
        partial.unlink(missing_ok=True)


def _scope_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--branch", metavar="NAME", help="only this branch")
    parser.add_argument("--region", metavar="NAME", help="only the branches of this region")


def _scope(database: Database, args: argparse.Namespace) -> Actor:
    if args.branch and args.region:
        raise CommandError("give --branch or --region, not both")
    return access.scope_of(
        region_id=branches.region_id_by_name(database, args.region) if args.region else None,
        branch_id=branches.branch_id_by_name(database, args.branch) if args.branch else None,
    )


def _write(rows: list[dict], columns: list[str], fmt: str) -> None:
    if fmt == "json":
        print(exports.to_json(rows))
    elif fmt == "csv":
        sys.stdout.write(exports.to_csv(rows, columns))
    else:
        print(exports.to_table(rows, columns) if rows else "nothing to show")


def _password(confirm: bool = True) -> str:
    """The new password from the environment, or asked for twice on the terminal (never an argument)."""
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if not sys.stdin.isatty():
        raise CommandError(f"no password: set {PASSWORD_ENV} or run this in a terminal to be asked for one")
    password = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Password again: ") != password:
        raise CommandError("the two passwords differ")
    return password


def cmd_init(path: Path, args: argparse.Namespace) -> int:
    database = db.connect(path)
    if users.count(database):
        if args.demo:
            raise CommandError("this database already has users; demo data only goes into a new database")
        print(f"{path}: schema up to date; already set up, nothing else to do")
        return 0
    password = _password()
    admin = users.create_first_admin(database, args.admin, args.full_name or args.admin, password)
    print(f"{path}: created administrator {admin.username}")
    if args.demo:
        counts = demo.load(database, admin, password)
        print("demo data: " + ", ".join(f"{n} {name}" for name, n in counts.items()))
        print("demo accounts (same password): " + ", ".join(name for name, _, _ in demo.demo_accounts()))
    return 0


def cmd_users_add(path: Path, args: argparse.Namespace) -> int:
    database = _existing(path)
    region_id = branches.region_id_by_name(database, args.region) if args.region else None
    branch_id = branches.branch_id_by_name(database, args.branch) if args.branch else None
    user = users.add_user(
        database, COMMAND_LINE, args.name, args.full_name or args.name, args.role, _password(), region_id, branch_id
    )
    print(f"added {user.role_label.lower()} {user.username}")
    return 0


def cmd_users_list(path: Path, args: argparse.Namespace) -> int:
    rows = users.list_users(_existing(path), COMMAND_LINE)
    table = [
        [
            r["username"],
            r["display_name"],
            ROLES[r["role"]],
            r["region"] or r["branch"] or "all",
            "disabled" if r["disabled"] else "active",
            r["last_sign_in"] or "never",
        ]
        for r in rows
    ]
    _print_table(["user", "name", "role", "scope", "status", "last sign-in"], table)
    return 0


def cmd_users_disable(path: Path, args: argparse.Namespace) -> int:
    users.set_disabled(_existing(path), COMMAND_LINE, args.name, args.disabled)
    print(f"{'disabled' if args.disabled else 'enabled'} {args.name}")
    return 0


def cmd_check(path: Path, args: argparse.Namespace) -> int:
    _must_exist(path)
    database = db.connect(path, migrate=False)
    problems = _check(database)
    for table in ("regions", "branches", "organisations", "contacts", "users", "audit_log"):
        if database[table].exists():
            print(f"{table}: {database[table].count} rows")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    print("ok" if not problems else f"{len(problems)} problem(s) found")
    return 1 if problems else 0


def cmd_followups(path: Path, args: argparse.Namespace) -> int:
    database = _existing(path)
    if args.format == "ics":
        # Every open follow-up, not only this week's: a calendar shows them on their own dates.
        if not args.out:
            raise CommandError("--format ics needs --out FILE")
        scope = _scope(database, args)
        name = f"Partner CRM follow-ups: {args.branch or (args.region + ' region' if args.region else 'all branches')}"
        content = ical.follow_ups_calendar(database, scope, name=name)
        try:
            args.out.write_bytes(content)
        except OSError as error:
            raise CommandError(f"cannot write {args.out}: {error.strerror}") from None
        print(f"wrote {len(ical.open_follow_ups(database, scope))} follow-ups to {args.out}")
        return 0
    if args.out:
        raise CommandError("--out is only for --format ics")
    rows = interactions.to_call(database, _scope(database, args))
    _write(rows, ["branch", "what", "state", "date", "who", "organisation", "detail", "phone"], args.format)
    return 0


def cmd_digest(path: Path, args: argparse.Namespace) -> int:
    database = _existing(path)
    if args.dry_run == args.send:
        raise CommandError("choose --dry-run --out DIR (write the emails) or --send")
    if args.dry_run and not args.out:
        raise CommandError("--dry-run needs --out DIR")
    if args.send and args.out:
        raise CommandError("--out is only for --dry-run")
    branch_id = branches.branch_id_by_name(database, args.branch) if args.branch else None
    smtp = digest.smtp_from_env(dict(os.environ)) if args.send else None  # checked before any work is done
    sender = smtp.sender if smtp else os.environ.get("CRM_SMTP_FROM") or "partner-crm@localhost"
    plan = digest.plan(database, sender=sender, branch_id=branch_id)
    for user, reason in plan.skipped:
        print(f"skipped {user['username']}: {reason}")
    if args.dry_run:
        paths = digest.write(plan.messages, args.out)
        print(f"dry run, nothing sent: wrote {len(paths)} emails to {args.out}")
        return 0
    assert smtp is not None
    sent, refused = digest.send(database, smtp, plan.messages)
    for user in sent:
        print(f"sent to {user['username']} <{user['email']}>")
    for user, reason in refused:
        print(f"error: not sent to {user['username']} <{user['email']}>: {reason}", file=sys.stderr)
    print(f"{len(sent)} sent, {len(refused)} refused, {len(plan.skipped)} skipped")
    return 1 if refused else 0


def cmd_users_email(path: Path, args: argparse.Namespace) -> int:
    database = _existing(path)
    user_id = digest.set_address(database, COMMAND_LINE, args.name, args.address, opt_out=args.opt_out)
    email, opt_out = digest.address_of(database, user_id)
    print(f"{args.name}: {email or 'no email address'}; weekly digest {'off' if opt_out else 'on'}")
    return 0


def cmd_merge(path: Path, args: argparse.Namespace) -> int:
    database = _existing(path)
    take = [field.strip() for field in args.take.split(",") if field.strip()]
    if args.kind == "contacts":
        moved = merge.merge_contacts(database, COMMAND_LINE, args.survivor, args.merged, take=take)
    else:
        moved = merge.merge_organisations(database, COMMAND_LINE, args.survivor, args.merged, take=take)
    what = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in moved.items())
    print(f"merged {args.kind[:-1]} {args.merged} into {args.survivor}; moved {what}")
    return 0


def cmd_referrals(path: Path, args: argparse.Namespace) -> int:
    database = _existing(path)
    if args.since and args.until and args.since > args.until:
        raise CommandError("--since is after --until")
    rows = referrals.measures(database, _scope(database, args), by=args.by, since=args.since, until=args.until)
    _write(rows, referrals.measure_columns(database, args.by), args.format)
    return 0


def cmd_import_gp_practices(path: Path, args: argparse.Namespace) -> int:
    try:
        data = args.file.read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {args.file}: {error.strerror}") from None
    summary = directory.import_gp_practices(_existing(path), COMMAND_LINE, data)
    print(", ".join(f"{count} {name.replace('_', ' ')}" for name, count in summary.as_dict().items()))
    return 0


def cmd_import_contacts(path: Path, args: argparse.Namespace) -> int:
    database = _existing(path)
    if args.report:
        _output(args.report, path, args.force)  # before importing: a bad report file must not follow an import
    try:
        data = args.file.read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {args.file}: {error.strerror}") from None
    table = imports.read_table(data, args.file.name)
    mapping = imports.parse_mapping(args.map, table.headers)
    branch_id = branches.branch_id_by_name(database, args.branch)
    plan = imports.plan(database, COMMAND_LINE, table, mapping, branch_id, args.on_duplicate)
    report = imports.apply(database, COMMAND_LINE, plan, dry_run=args.dry_run)
    if args.report:
        _write_out(args.report, imports.report_json(report), path, args.force)
    for row in report["rows"]:
        if row["outcome"] in ("error", "skipped"):
            print(f"line {row['line']}: {row['outcome']}: {' '.join(row['messages'])}", file=sys.stderr)
    summary = report["summary"]
    print(("dry run, nothing written: " if args.dry_run else "") + ", ".join(f"{n} {k}" for k, n in summary.items()))
    return 0


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"“{text}” is not a date in the form YYYY-MM-DD") from None


def cmd_coverage(path: Path, args: argparse.Namespace) -> int:
    database = _existing(path)
    if args.branch and args.region:
        raise CommandError("give --branch or --region, not both")
    if args.window_days is not None and not 1 <= args.window_days <= 730:
        raise CommandError("--window-days must be between 1 and 730")
    if args.as_of is not None:
        fields.date_in_range(args.as_of, "--as-of", past=True)  # coverage as it stood: a plausible past date
    rows, _ = coverage.report(
        database,
        COMMAND_LINE,
        as_of=args.as_of,
        window=args.window_days,
        region_id=branches.region_id_by_name(database, args.region) if args.region else None,
        branch_id=branches.branch_id_by_name(database, args.branch) if args.branch else None,
    )
    _write(rows, coverage.REPORT_COLUMNS, args.format)
    return 0


def cmd_bench(path: Path, args: argparse.Namespace) -> int:
    from crm import bench  # pulls in Streamlit's test harness: only load it for this command

    return bench.run(runs=args.runs, keep=args.keep, epraccur=args.epraccur)


def cmd_backup(path: Path, args: argparse.Namespace) -> int:
    database = _existing(path)
    _output(args.file, path, args.force)
    target = backups.backup(database, COMMAND_LINE, args.file, replace=args.force)
    print(f"backed up {path} to {target}")
    return 0


def cmd_restore(path: Path, args: argparse.Namespace) -> int:
    _must_exist(path)
    kept = backups.restore(path, args.file)
    db.connect(path).close()  # upgrades a backup taken by an older version of the app
    print(f"restored {path} from {args.file}; the database it replaced is kept as {kept}")
    return 0


def cmd_export_person(path: Path, args: argparse.Namespace) -> int:
    database = _existing(path)
    _output(args.out, path, args.force)
    data = privacy.export_person(database, COMMAND_LINE, args.contact_id)
    text = privacy.export_text(data) if args.out.suffix.lower() == ".txt" else privacy.to_json(data)
    _write_out(args.out, text, path, args.force)
    print(f"wrote everything held about contact {args.contact_id} to {args.out}")
    return 0


def cmd_erase_contact(path: Path, args: argparse.Namespace) -> int:
    database = _existing(path)
    contact = contacts.get(database, COMMAND_LINE, args.contact_id)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError("add --yes to erase without being asked")
        if input(f"Erase {contact['name']} for good? Type yes: ").strip().lower() != "yes":
            raise CommandError("not erased")
    privacy.erase(database, COMMAND_LINE, args.contact_id, expected_version=contact["version"])
    print(f"erased contact {args.contact_id}")
    return 0


def cmd_export_testimonials(path: Path, args: argparse.Namespace) -> int:
    database = _existing(path)
    if args.branch and args.region:
        raise CommandError("give --branch or --region, not both")
    _output(args.out, path, args.force)
    region_id = branches.region_id_by_name(database, args.region) if args.region else None
    branch_id = branches.branch_id_by_name(database, args.branch) if args.branch else None
    scope_label = args.branch or (f"{args.region} region" if args.region else "All branches")
    content, _ = testimonials.export(
        database,
        COMMAND_LINE,
        args.format,
        args.audience,
        provider=settings.get(database, "provider_name", ""),
        scope_label=scope_label,
        region_id=region_id,
        branch_id=branch_id,
        since=args.since,
        until=args.until,
    )
    _write_out(args.out, content, path, args.force)
    print(f"wrote {args.out}")
    return 0


def cmd_mailing_list(path: Path, args: argparse.Namespace) -> int:
    database = _existing(path)
    if args.branch and args.region:
        raise CommandError("give --branch or --region, not both")
    _output(args.out, path, args.force)
    people = contacts.mailing_list(
        database,
        COMMAND_LINE,
        region_id=branches.region_id_by_name(database, args.region) if args.region else None,
        branch_id=branches.branch_id_by_name(database, args.branch) if args.branch else None,
    )
    if args.format == "vcf":
        _write_out(args.out, exports.to_vcards(people), path, args.force)
    else:
        _write_out(args.out, "\ufeff" + exports.to_csv(people, contacts.MAILING_COLUMNS), path, args.force)
    print(f"wrote {len(people)} contacts to {args.out}")
    return 0


def _must_exist(path: Path) -> None:
    if not path.exists():
        raise CommandError(f"{path} does not exist; create it with: python -m crm init --admin NAME")


def _existing(path: Path) -> Database:
    """Open a database that must already exist: only init creates one, so a mistyped --db is caught."""
    _must_exist(path)
    return db.connect(path)


def _check(database: Database) -> list[str]:
    problems = []
    integrity = [row[0] for row in database.execute("PRAGMA integrity_check").fetchall()]
    if integrity != ["ok"]:
        problems += [f"integrity: {line}" for line in integrity]
    for table, rowid, parent, _ in database.execute("PRAGMA foreign_key_check").fetchall():
        problems.append(f"foreign key: {table} row {rowid} points to a missing {parent} row")
    pending = schema.pending(database)
    if pending:
        problems.append(f"pending migrations: {', '.join(pending)} (run: python -m crm init --admin NAME)")
    return problems


def _print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(v)) for v in column) for column in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
