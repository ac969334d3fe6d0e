"""``python -m crm loadbench``: signed-in users driving the real server, timed per page.

The command starts ``streamlit run app.py`` (or several workers behind nginx, crm/workers.py) on a free loopback
port against a benchmark database, and signs in N users of mixed roles: sessions are made with
``users.start_session`` and a handle for it is sent in the ``crm_session`` cookie, as a browser sends it. Each user
holds a websocket to ``/_stcore/stream`` and re-runs pages as a browser tab does (a ``rerun_script`` BackMsg
naming the page's script hash), waits a think time, and goes on until the time is up. The time of a page is
from sending the rerun request to the ``script_finished`` ForwardMsg (after any ``st.rerun`` inside it).

The floor is a title-only page served by the same server in the same run: app.py draws only a title when the
bench sets ``CRM_BENCH_FLOOR=1`` for the server and a rerun asks for ``?bench=floor`` (normal runs never set
it). Some branch managers also log interactions through the Interactions page's "Log an interaction" form
(widget states in the BackMsg, as the browser sends them: first the section's open state, as a click on its
header sends it, since the form is drawn only while it is open; then the form's values and its submit button);
afterwards every write the page confirmed must be in the database.

Streamlit's protocol messages are imported here, in the command only (crm/ itself never imports Streamlit).
"""

import asyncio
import contextlib
import random
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crm import bench, db, users, workers
from crm.access import ADMIN, BRANCH_MANAGER, REGIONAL_LEAD, Actor
from crm.handles import Handles

FLOOR = "floor: title-only page"
WRITE = "Log an interaction (write)"
OPEN_LOG = "Interactions, Log an interaction opened"
LOG_SECTION = "interactions_logging_open"  # the key of the section the form is drawn in (pages/interactions.py)
FLOOR_QUERY = "bench=floor"
FLOOR_ENV = "CRM_BENCH_FLOOR"
RUN_SECONDS_LIMIT = 120  # one rerun taking longer than this counts as an error (and the tab reconnects)
ROLE_SHARES = ((BRANCH_MANAGER, 0.7), (REGIONAL_LEAD, 0.2), (ADMIN, 0.1))
SIGN_IN_PASSWORD = "signin_password"  # the sign-in form's password box (crm/ui/session.py)
WRITE_TURNS = 3  # a writer logs an interaction on every third turn
WIDGET_ID = re.compile(r"^\$\$ID-[0-9a-f]+-(.*)$")


@dataclass
class Outcome:
    """What one rerun did, as the browser would have seen it."""

    seconds: float
    error: str | None = None
    widgets: dict[str, object] = field(default_factory=dict)  # user key -> the widget's proto
    pages: dict[str, str] = field(default_factory=dict)  # page title -> script hash (from navigation)
    saw: bool = False  # whether the text looked for appeared
    messages: int = 0  # messages the server sent for the rerun: each element drawn is one


@dataclass
class Tally:
    """Everything measured in one run of the load."""

    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    role_times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    page_role_times: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    page_role_messages: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    floor_messages: list[int] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    attempted: int = 0
    confirmed: int = 0
    elapsed: float = 0.0
    lag: list[float] = field(default_factory=list)  # how late the client's own loop woke up (client-bound?)


class Tab:
    """One browser tab: a websocket to the server, re-running pages on request."""

    def __init__(self, url: str, cookie: str):
        self.url = url.replace("http://", "ws://") + "/_stcore/stream"
        self.origin = url
        self.cookie = cookie
        self.socket: Any = None

    async def connect(self) -> None:
        import websockets

        self.socket = await websockets.connect(
            self.url,
            subprotocols=["streamlit"],  # type: ignore[list-item]
            additional_headers={"Cookie": self.cookie, "Origin": self.origin},
            max_size=None,
            open_timeout=RUN_SECONDS_LIMIT,
        )

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
            self.socket = None

    async def rerun(
        self, page_hash: str = "", query: str = "", widget_states: list | None = None, look_for: bytes = b""
    ) -> Outcome:
        """Ask for a rerun of a page and read the server's messages until the script has finished."""
        from streamlit.proto.Alert_pb2 import Alert
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if self.socket is None:
            await self.connect()
        assert self.socket is not None
        message = BackMsg()
        message.rerun_script.query_string = query
        message.rerun_script.page_script_hash = page_hash
        if widget_states:
            message.rerun_script.widget_states.widgets.extend(widget_states)
        outcome = Outcome(seconds=0.0)
        start = time.perf_counter()
        await self.socket.send(message.SerializeToString())
        while True:
            # One limit for the whole rerun, not per message: a run that never finishes ends the wait.
            data = await asyncio.wait_for(self.socket.recv(), max(0.0, start + RUN_SECONDS_LIMIT - time.perf_counter()))
            assert isinstance(data, bytes)
            outcome.messages += 1
            if look_for and look_for in data:
                outcome.saw = True
            forward = ForwardMsg.FromString(data)
            kind = forward.WhichOneof("type")
            if kind == "navigation":
                outcome.pages = {p.page_name: p.page_script_hash for p in forward.navigation.app_pages}
            elif kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                element = forward.delta.new_element
                name = element.WhichOneof("type")
                proto = getattr(element, name)
                if name == "exception":
                    outcome.error = outcome.error or f"exception: {proto.type}: {proto.message}"[:200]
                elif name == "alert" and proto.format == Alert.ERROR:
                    outcome.error = outcome.error or f"error shown: {proto.body}"[:200]
                if match := WIDGET_ID.match(getattr(proto, "id", "") or ""):
                    outcome.widgets[match.group(1)] = proto
                    if match.group(1) == SIGN_IN_PASSWORD:
                        outcome.error = outcome.error or "signed out: the sign-in form was shown"
            elif kind == "delta" and forward.delta.WhichOneof("type") == "add_block":
                block = forward.delta.add_block
                # An expander that keeps its state (drawn only while open) is a widget too, sent as a block.
                if block.HasField("expandable") and (match := WIDGET_ID.match(block.expandable.id)):
                    outcome.widgets[match.group(1)] = block.expandable
            elif kind == "script_finished":
                status = forward.script_finished
                if status == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    continue  # st.rerun(): the page runs again and the user waits for that run too
                if status != ForwardMsg.FINISHED_SUCCESSFULLY:
                    outcome.error = outcome.error or f"script finished with status {status}"
                outcome.seconds = time.perf_counter() - start
                return outcome


@dataclass
class User:
    name: str
    role: str
    cookie: str
    writer: bool


def _log_section_open(widgets: dict[str, object]) -> list | None:
    """The widget state a browser sends when someone clicks "Log an interaction" to open it (an expander's
    state is a bool, True while open); None when the page had no such section."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    section = widgets.get(LOG_SECTION)
    if section is None:
        return None
    return [WidgetState(id=section.id, bool_value=True)]  # type: ignore[attr-defined]


def _log_form_states(widgets: dict[str, object], summary: str) -> list | None:
    """The widget states a browser sends when, in the open "Log an interaction" section, someone picks a contact,
    types a summary and presses "Log interaction": the section (still open), the multiselect outside the form,
    the form's text and its submit button."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    section = _log_section_open(widgets)
    contacts = widgets.get("interactions_log_contacts")
    summary_box = widgets.get("interactions_log_summary")
    submit = next((w for key, w in widgets.items() if key.startswith("FormSubmitter:interactions_log_form")), None)
    if section is None or contacts is None or summary_box is None or submit is None:
        return None
    if not contacts.options:  # type: ignore[attr-defined]
        return None
    picked = WidgetState(id=contacts.id)  # type: ignore[attr-defined]
    picked.string_array_value.data.append(contacts.options[0])  # type: ignore[attr-defined]
    typed = WidgetState(id=summary_box.id, string_value=summary)  # type: ignore[attr-defined]
    pressed = WidgetState(id=submit.id, trigger_value=True)  # type: ignore[attr-defined]
    return [*section, picked, typed, pressed]


async def _drive(
    user: User,
    url: str,
    tally: Tally,
    start_barrier: asyncio.Event,
    deadline_box: list[float],
    think: float,
    rng: random.Random,
    run_id: str,
    one_at_a_time: asyncio.Lock | None,
    connected: list[int],
) -> None:
    """One user's session: open the app, then until the deadline re-run a random page and think."""
    tab = Tab(url, user.cookie)
    pages: dict[str, str] = {}
    try:
        first = await tab.rerun()
        pages = first.pages
        if first.error:
            tally.errors[f"opening the app: {first.error}"] += 1
    except Exception as error:  # noqa: BLE001 - a failed connection is a result to report, not a crash
        tally.errors[f"opening the app: {type(error).__name__}: {error}"[:200]] += 1
    finally:
        connected[0] += 1
    await start_barrier.wait()
    if not pages:
        await tab.close()
        return
    await asyncio.sleep(rng.uniform(0, think))  # users arrive spread out, not in lockstep
    turn = 0
    writes = 0
    while time.perf_counter() < deadline_box[0]:
        turn += 1
        # The floor as often as any one page, but on a fixed turn, from the first: a short run under load still
        # times it (a random draw could miss it, leaving the pages nothing to be compared with).
        page = FLOOR if turn % (len(pages) + 1) == 1 else rng.choice(list(pages))
        write = user.writer and turn % WRITE_TURNS == 0 and "Interactions" in pages
        if write:
            page = "Interactions"
        try:
            async with one_at_a_time or contextlib.nullcontext():
                if page == FLOOR:
                    outcome = await tab.rerun(query=FLOOR_QUERY)
                else:
                    outcome = await tab.rerun(pages[page])
                _record(tally, page, user.role, outcome)
            if write and outcome.error is None:
                writes += 1
                summary = f"Load bench {run_id} {user.name} write {writes}"
                step_pause = think * rng.uniform(0.5, 1.5)
                await _log_interaction(
                    tab, pages[page], outcome.widgets, user.role, summary, tally, step_pause, one_at_a_time
                )
        except TimeoutError:
            tally.errors[f"no script_finished within {RUN_SECONDS_LIMIT} s"] += 1
            await tab.close()  # the next turn reconnects, as a browser does
        except Exception as error:  # noqa: BLE001 - a dropped websocket is a result to report
            tally.errors[f"connection: {type(error).__name__}: {error}"[:200]] += 1
            await tab.close()
        await asyncio.sleep(think * rng.uniform(0.5, 1.5))
    await tab.close()


async def _log_interaction(
    tab: Tab,
    page_hash: str,
    widgets: dict[str, object],
    role: str,
    summary: str,
    tally: Tally,
    pause: float,
    one_at_a_time: asyncio.Lock | None,
) -> None:
    """Log an interaction as a person does on the Interactions page (``widgets``, as drawn): click "Log an
    interaction" to open it (the form is drawn only while it is open), fill the form and press "Log
    interaction"; it is confirmed when the page shows its summary.

    A person takes a moment (``pause`` seconds) before each click, as between any two reruns. Clicks sent the
    instant a rerun finished measured about 40 ms more each, in Streamlit's server, not in the page: one sent
    40 ms or more after the last rerun finished does not wait."""
    opening = _log_section_open(widgets)
    if opening is None:
        tally.errors["the Log an interaction section was not on the Interactions page"] += 1
        return
    await asyncio.sleep(pause)
    async with one_at_a_time or contextlib.nullcontext():
        opened = await tab.rerun(page_hash, widget_states=opening)
    _record(tally, OPEN_LOG, role, opened)
    if opened.error:
        return
    states = _log_form_states(opened.widgets, summary)
    if states is None:
        tally.errors["the Log an interaction form was not in its opened section"] += 1
        return
    tally.attempted += 1
    await asyncio.sleep(pause)
    async with one_at_a_time or contextlib.nullcontext():
        saved = await tab.rerun(page_hash, widget_states=states, look_for=summary.encode())
    _record(tally, WRITE, role, saved)
    if saved.error is None and saved.saw:
        tally.confirmed += 1
    elif saved.error is None:
        tally.errors["a logged interaction was not confirmed on the page"] += 1


def _record(tally: Tally, page: str, role: str, outcome: Outcome) -> None:
    if outcome.error:
        tally.errors[f"{page}: {outcome.error}"] += 1
        return
    tally.times[page].append(outcome.seconds)
    if page == FLOOR:
        tally.floor_messages.append(outcome.messages)
    else:
        tally.role_times[role].append(outcome.seconds)
        tally.page_role_times[page, role].append(outcome.seconds)
        tally.page_role_messages[page, role].append(outcome.messages)


def _sticky_cookie(url: str) -> str:
    """The proxy's worker cookie, got as a browser gets it: from the first page load (empty without a proxy)."""
    with urllib.request.urlopen(url + "/", timeout=RUN_SECONDS_LIMIT) as response:
        for header in response.headers.get_all("Set-Cookie") or []:
            if header.startswith(f"{workers.STICKY_COOKIE}="):
                return header.split(";", 1)[0]
    return ""


async def _load(
    url: str, people: list[User], seconds: float, think: float, seed: int, run_id: str, one_at_a_time: bool
) -> Tally:
    tally = Tally()
    rng = random.Random(seed)
    barrier = asyncio.Event()
    deadline = [float("inf")]
    connected = [0]
    lock = asyncio.Lock() if one_at_a_time else None
    tasks = [
        asyncio.create_task(
            _drive(person, url, tally, barrier, deadline, think, random.Random(rng.random()), run_id, lock, connected)
        )
        for person in people
    ]
    while connected[0] < len(people):  # every tab has opened the app (its landing page) before the clock starts
        await asyncio.sleep(0.1)
    start = time.perf_counter()
    deadline[0] = start + seconds
    barrier.set()
    watcher = asyncio.create_task(_watch_lag(tally, deadline))
    await asyncio.gather(*tasks)
    await watcher
    tally.elapsed = time.perf_counter() - start
    return tally


async def _watch_lag(tally: Tally, deadline: list[float]) -> None:
    """Sample how late a 100 ms sleep wakes up: when the bench's own process is starved of CPU, every time it
    measures includes that delay, and the report says so."""
    while time.perf_counter() < deadline[0]:
        before = time.perf_counter()
        await asyncio.sleep(0.1)
        tally.lag.append(time.perf_counter() - before - 0.1)


def prepare_users(db_path: Path, count: int, writers_every: int, seed: int) -> list[User]:
    """Sign in ``count`` users of mixed roles (about 70% branch managers, 20% regional leads, 10% admins),
    creating ``load.*`` accounts where the database has too few; every ``writers_every``-th manager writes."""
    rng = random.Random(seed)
    database = db.connect(db_path)
    try:
        admin = users.get(database, database.execute("SELECT min(id) FROM users WHERE role = ?", [ADMIN]).fetchone()[0])
        branch_ids = [r[0] for r in database.execute("SELECT id FROM branches ORDER BY id")]
        region_ids = [r[0] for r in database.execute("SELECT id FROM regions ORDER BY id")]
        wanted = {role: max(1, round(count * share)) for role, share in ROLE_SHARES} if count >= 3 else {}
        if count < 3:
            wanted = {BRANCH_MANAGER: 1, REGIONAL_LEAD: 1 if count > 1 else 0, ADMIN: 0}
        wanted[BRANCH_MANAGER] += count - sum(wanted.values())
        people = []
        for role, how_many in wanted.items():
            for number in range(how_many):
                actor = _account(database, admin, role, number, branch_ids, region_ids)
                # The browser's cookie holds a handle for the session, never its token (crm/handles.py).
                token = users.start_session(database, actor)
                people.append((role, actor, Handles().issue(database, token, users.SESSION_HOURS * 3600)))
        rng.shuffle(people)
    finally:
        database.close()
    result = []
    managers = 0
    for role, actor, handle in people:
        writer = False
        if role == BRANCH_MANAGER:
            writer = writers_every > 0 and managers % writers_every == 0
            managers += 1
        result.append(User(actor.username, role, f"crm_session={handle}", writer))
    return result


def _account(database, admin: Actor, role: str, number: int, branch_ids: list[int], region_ids: list[int]) -> Actor:
    """The ``number``-th load account of ``role``, created (password bench.PASSWORD) if it does not exist."""
    short = {BRANCH_MANAGER: "manager", REGIONAL_LEAD: "lead", ADMIN: "admin"}[role]
    name = f"load.{short}.{number + 1:03d}"
    row = database.execute("SELECT id FROM users WHERE username = ?", [name]).fetchone()
    if row:
        return users.get(database, row[0])
    where: dict[str, int] = {}
    if role == BRANCH_MANAGER:
        where["branch_id"] = branch_ids[number % len(branch_ids)]
    elif role == REGIONAL_LEAD:
        where["region_id"] = region_ids[number % len(region_ids)]
    return users.add_user(database, admin, name, f"Load {short} {number + 1}", role, bench.PASSWORD, **where)


def build_demo(path: Path) -> None:
    """The demo provider (12 branches) in a new database at ``path``."""
    from crm import demo

    database = db.connect(path)
    try:
        admin = users.create_first_admin(database, "bench.admin", "Benchmark Admin", bench.PASSWORD)
        demo.load(database, admin, bench.PASSWORD)
    finally:
        database.close()


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(share * len(ordered) + 0.5)) - 1))]


def count_writes(db_path: Path, run_id: str) -> int:
    """Interactions the bench logged in run ``run_id`` that are in the database."""
    database = db.connect(db_path)
    try:
        return database.execute(
            "SELECT count(*) FROM interactions WHERE summary LIKE ?", [f"Load bench {run_id} %"]
        ).fetchone()[0]
    finally:
        database.close()


@dataclass
class Report:
    workers: int
    tally: Tally
    found: int
    users: list[User]


def run_once(
    db_path: Path,
    *,
    workers_count: int,
    count: int,
    seconds: float,
    think: float,
    writers_every: int,
    seed: int,
    one_at_a_time: bool = False,
) -> Report:
    """Serve the app with ``workers_count`` workers, drive ``count`` users for ``seconds``, check the writes."""
    people = prepare_users(db_path, count, writers_every, seed)
    with workers.serve(db_path, workers=workers_count, env={FLOOR_ENV: "1"}) as cluster:
        return drive(cluster.url, db_path, people, workers_count, seconds, think, seed, one_at_a_time)


def drive(
    url: str,
    db_path: Path,
    people: list[User],
    workers_count: int,
    seconds: float,
    think: float,
    seed: int = bench.SEED,
    one_at_a_time: bool = False,
) -> Report:
    """Drive signed-in ``people`` against the server at ``url`` (started with FLOOR_ENV set) for ``seconds``,
    then count their confirmed writes in the database."""
    run_id = f"{time.time_ns()}-{workers_count}w"
    for person in people:
        if sticky := _sticky_cookie(url):
            person.cookie = f"{person.cookie}; {sticky}"
    tally = asyncio.run(_load(url, people, seconds, think, seed, run_id, one_at_a_time))
    return Report(workers_count, tally, count_writes(db_path, run_id), people)


def _ms(value: float) -> str:
    return f"{value * 1000:,.0f}"


def print_report(reports: list[Report], heading: str, out=sys.stdout) -> None:
    """The per-page table (p50 / p95 / max per worker count, ratio to the floor) and the summary lines."""
    print(heading, file=out)
    print("", file=out)
    pages = sorted({p for r in reports for p in r.tally.times if p not in (FLOOR, WRITE)})
    columns = " | ".join(
        f"{r.workers} worker{'s' if r.workers > 1 else ''}: n, p50 / p95 / max ms, p50 ÷ floor" for r in reports
    )
    print(f"| page | {columns} |", file=out)
    print("| --- |" + " --- |" * len(reports), file=out)
    for page in [FLOOR, *pages, WRITE]:
        cells = []
        for report in reports:
            times = report.tally.times.get(page, [])
            floor = report.tally.times.get(FLOOR, [])
            if not times:
                cells.append("")
                continue
            ratio = f", {statistics.median(times) / statistics.median(floor):.1f}x" if floor and page != FLOOR else ""
            cells.append(
                f"{len(times)}, {_ms(statistics.median(times))} / {_ms(_percentile(times, 0.95))} / "
                f"{_ms(max(times))}{ratio}"
            )
        print(f"| {page} | " + " | ".join(cells) + " |", file=out)
    for label, pick in (
        ("every page (floor left out)", lambda r: [t for p, ts in r.tally.times.items() if p != FLOOR for t in ts]),
    ):
        cells = []
        for report in reports:
            times = pick(report)
            cells.append(
                f"{len(times)}, {_ms(statistics.median(times))} / {_ms(_percentile(times, 0.95))} / {_ms(max(times))}"
                if times
                else ""
            )
        print(f"| **{label}** | " + " | ".join(cells) + " |", file=out)
    print("", file=out)
    print("| | " + " | ".join(f"{r.workers} worker{'s' if r.workers > 1 else ''}" for r in reports) + " |", file=out)
    print("| --- |" + " --- |" * len(reports), file=out)
    for role in (BRANCH_MANAGER, REGIONAL_LEAD, ADMIN):
        cells = []
        for report in reports:
            times = report.tally.role_times.get(role, [])
            cells.append(
                f"p50 {_ms(statistics.median(times))} / p95 {_ms(_percentile(times, 0.95))} ms" if times else ""
            )
        print(f"| {role.replace('_', ' ')} pages | " + " | ".join(cells) + " |", file=out)
    rates = []
    for report in reports:
        done = sum(len(t) for t in report.tally.times.values())
        rates.append(done / report.tally.elapsed if report.tally.elapsed else 0.0)
    print("| reruns per second | " + " | ".join(f"{r:.2f}" for r in rates) + " |", file=out)
    print("| errors | " + " | ".join(str(sum(r.tally.errors.values())) for r in reports) + " |", file=out)
    print(
        "| the bench client's own delay (100 ms timer lateness, p50 / p95 ms) | "
        + " | ".join(
            f"{_ms(statistics.median(r.tally.lag))} / {_ms(_percentile(r.tally.lag, 0.95))}" if r.tally.lag else ""
            for r in reports
        )
        + " |",
        file=out,
    )
    print(
        "| writes: sent, confirmed on the page, in the database, missing | "
        + " | ".join(
            f"{r.tally.attempted}, {r.tally.confirmed}, {r.found}, {max(0, r.tally.confirmed - r.found)}"
            for r in reports
        )
        + " |",
        file=out,
    )
    if len(reports) > 1 and rates[0]:
        print(
            "| scaling (reruns per second ÷ the first column's) | "
            + " | ".join(f"{rate / rates[0]:.2f}x" for rate in rates)
            + " |",
            file=out,
        )
    roles = (BRANCH_MANAGER, REGIONAL_LEAD, ADMIN)
    for report in reports:
        floor = report.tally.times.get(FLOOR, [])
        if not floor:
            continue
        print("", file=out)
        print(
            f"Median per page and role, {report.workers} worker{'s' if report.workers > 1 else ''} "
            f"(ms, ÷ the floor's median of {_ms(statistics.median(floor))} ms, and the messages the rerun sent, "
            f"the floor's {statistics.median(report.tally.floor_messages):.0f}):",
            file=out,
        )
        print("", file=out)
        print("| page | " + " | ".join(role.replace("_", " ") for role in roles) + " |", file=out)
        print("| --- |" + " --- |" * len(roles), file=out)
        for page in [*pages, WRITE]:
            cells = []
            for role in roles:
                times = report.tally.page_role_times.get((page, role), [])
                median = statistics.median(times) if times else 0
                messages = statistics.median(report.tally.page_role_messages[page, role]) if times else 0
                cells.append(
                    f"{_ms(median)}, {median / statistics.median(floor):.1f}x, {messages:.0f} msgs (n={len(times)})"
                    if times
                    else ""
                )
            print(f"| {page} | " + " | ".join(cells) + " |", file=out)
    for report in reports:
        for what, n in sorted(report.tally.errors.items(), key=lambda item: -item[1]):
            print(f"- {report.workers} worker(s): {n} x {what}", file=out)


def run(
    *,
    data: str = "large",
    keep: Path | None = None,
    users_count: int = 50,
    seconds: float = 60,
    think: float = 5,
    worker_counts: list[int] | None = None,
    writers_every: int = 4,
    one_at_a_time: bool = False,
    seed: int = bench.SEED,
    out=sys.stdout,
) -> int:
    """Build (or reuse, with ``keep``) the database, run the load with each worker count, print the report."""
    worker_counts = worker_counts or [1]
    with tempfile.TemporaryDirectory() as folder:
        path = keep or Path(folder) / f"{data}.db"
        if not path.exists():
            start = time.perf_counter()
            if data == "large":
                bench.build(path)
            else:
                build_demo(path)
            print(f"Built the {data} database in {time.perf_counter() - start:.1f} s at {path}.", file=out)
        reports = [
            run_once(
                path,
                workers_count=count,
                count=users_count,
                seconds=seconds,
                think=think,
                writers_every=writers_every,
                seed=seed,
                one_at_a_time=one_at_a_time,
            )
            for count in worker_counts
        ]
    roles = Counter(u.role for u in reports[0].users)
    mix = ", ".join(f"{n} {role.replace('_', ' ')}" for role, n in roles.most_common())
    writers = sum(u.writer for u in reports[0].users)
    heading = (
        f"Load on the {data} database: {users_count} signed-in users ({mix}; {writers} of them also log "
        f"interactions), a random page each, think time {think:g} s (0.5-1.5x), for {seconds:g} s"
        + (", one rerun at a time" if one_at_a_time else "")
        + ". Times in ms from the rerun request to script_finished."
    )
    print_report(reports, heading, out)
    lost = sum(max(0, r.tally.confirmed - r.found) for r in reports)
    return 1 if lost else 0
