"""Figures that read a whole scope (coverage, referral figures, This week's named contacts by partner type and its
number of contacts to call, possible duplicates, each branch's number of contacts), cached between reruns.

Every write in the app adds an audit entry, so the newest audit entry (its id and time, and the file's identity)
is a version of the whole database.

Others' changes reach the figures within SETTLE_SECONDS, the viewer's own at once. Keyed on the newest entry
alone, any write anywhere recomputed every figure for everyone: on a busy morning an administrator's Coverage,
which adds up 250 branches, recomputed on nearly every rerun. So the version the figures are computed at moves on
at most once every SETTLE_SECONDS (shared by everyone in this process), and each viewer's key also holds their own
newest entry: what they have just done shows at their next rerun. Only entries appended may wait: a log that is
not the one settled on plus new entries (a backup restored, another file in its place) is taken at once. The
moment the version was settled on is in the key too, so figures computed in one settled spell are never served in
another (a restored backup can bring back a version seen before).
"""

import hashlib
import pickle
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from pathlib import Path

import altair as alt
import streamlit as st
from sqlite_utils import Database
from streamlit import dataframe_util

from crm import branches, charts, clock, contacts, coverage, db, merge
from crm import referrals as referral_data  # this module has its own referrals(), for the Coverage page
from crm.access import Actor

SETTLE_SECONDS = 60.0  # how long others' changes may take to reach the figures
_settled: dict[str, tuple[tuple, float]] = {}  # database path -> (the version figures are computed at, since when)
_settled_lock = threading.Lock()
_monotonic = time.monotonic  # (a test moves it on)


def _version(database: Database, actor: Actor) -> tuple[str, tuple, float, int | None, date]:
    """The key of the figures ``actor`` sees: the database, the version others' changes have settled at and since
    when, the actor's own newest audit entry, and today (which moves the window at midnight)."""
    path = database.execute("PRAGMA database_list").fetchone()[2]
    newest = database.execute("SELECT id, at FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    current = (db.file_key(Path(path)), *(newest or ()))
    now = _monotonic()
    with _settled_lock:
        settled, since = _settled.get(path, ((), float("-inf")))
        appended = len(settled) == len(current) == 3 and current[0] == settled[0] and current[1] > settled[1]
        if current != settled and (not appended or now - since >= SETTLE_SECONDS):
            _settled[path] = (current, now)
            settled, since = current, now
    # (idx_audit_user is (user_id, at): newest first without reading the user's whole history)
    own = database.execute(
        "SELECT id FROM audit_log WHERE user_id = ? ORDER BY at DESC, id DESC LIMIT 1", [actor.id]
    ).fetchone()
    return path, settled, since, own and own[0], clock.now().date()


# Coverage's and the referral figures are kept as shared objects (st.cache_resource), not copies: st.cache_data
# unpickles a copy for every rerun, 5.5 ms of an administrator's Coverage (3,250 heatmap rows), and the same
# objects on every rerun let chart_spec find their chart at once. Never change what these return.
@st.cache_resource(max_entries=64, show_spinner=False)
def _report(version: tuple, actor: Actor, as_of, window, region_id, branch_id):  # type: ignore[no-untyped-def]
    with db.connect(version[0]) as database:
        return coverage.report(database, actor, as_of=as_of, window=window, region_id=region_id, branch_id=branch_id)


@st.cache_resource(max_entries=64, show_spinner=False)
def _trend(version: tuple, actor: Actor, window, region_id, branch_id):  # type: ignore[no-untyped-def]
    with db.connect(version[0]) as database:
        return coverage.trend(database, actor, window=window, region_id=region_id, branch_id=branch_id)


@st.cache_resource(max_entries=64, show_spinner=False)
def _referrals(version: tuple, actor: Actor, region_id, branch_id):  # type: ignore[no-untyped-def]
    with db.connect(version[0]) as database:
        return coverage.referrals_by_month(database, actor, region_id=region_id, branch_id=branch_id)


@st.cache_resource(max_entries=64, show_spinner=False)
def _named_matrix(version: tuple, actor: Actor) -> list[dict]:
    with db.connect(version[0]) as database:
        return contacts.named_matrix(database, actor)


def named_matrix(database: Database, actor: Actor) -> list[dict]:
    """contacts.named_matrix (This week's named contacts by partner type), cached (the module says until when): a
    regional lead's 25 branches counted 7,500 contacts on every rerun of This week (6 ms)."""
    return _named_matrix(_version(database, actor), actor)


@st.cache_resource(max_entries=64, show_spinner=False)
def _lapsing_count(version: tuple, actor: Actor) -> int:
    with db.connect(version[0]) as database:
        return contacts.lapsing_count(database, actor, today=version[-1])


def lapsing_count(database: Database, actor: Actor) -> int:
    """contacts.lapsing_count (This week's number of named contacts to call), cached (the module says until when):
    an administrator's count read the index entry of every lapsing contact, 33,363 for the benchmark's provider
    (1.4 ms of each rerun, growing with the provider)."""
    return _lapsing_count(_version(database, actor), actor)


@st.cache_resource(max_entries=64, show_spinner=False)
def _branches(version: tuple, actor: Actor) -> list[dict]:
    with db.connect(version[0]) as database:
        return branches.branches(database, actor)


def branch_list(database: Database, actor: Actor) -> list[dict]:
    """branches.branches (each branch with its number of active contacts, for Regions and branches), cached (the
    module says until when): counting a provider's 75,000 contacts took 8 ms of every rerun of the page."""
    return _branches(_version(database, actor), actor)


def report(database: Database, actor: Actor, **filters) -> tuple[list[dict], list[dict]]:
    """coverage.report, cached (the module says until when)."""
    return _report(
        _version(database, actor),
        actor,
        filters.get("as_of"),
        filters.get("window"),
        filters.get("region_id"),
        filters.get("branch_id"),
    )


def trend(database: Database, actor: Actor, **filters) -> list[dict]:
    """coverage.trend, cached (the module says until when)."""
    version = _version(database, actor)
    return _trend(version, actor, filters.get("window"), filters.get("region_id"), filters.get("branch_id"))


def referrals(database: Database, actor: Actor, **filters) -> list[dict]:
    """coverage.referrals_by_month, cached (the module says until when)."""
    return _referrals(_version(database, actor), actor, filters.get("region_id"), filters.get("branch_id"))


@st.cache_resource(max_entries=64, show_spinner=False)
def _referral_figures(version: tuple, actor: Actor, by, region_id, branch_id, since, until):  # type: ignore[no-untyped-def]
    filters = {"region_id": region_id, "branch_id": branch_id, "since": since, "until": until}
    with db.connect(version[0]) as database:
        return (
            referral_data.measures(database, actor, by=by, **filters),
            referral_data.declines(database, actor, **filters),
            referral_data.by_month(database, actor, **filters),
        )


def referral_figures(database: Database, actor: Actor, *, by: str, **filters) -> tuple[list, list, list]:
    """crm.referrals measures (per ``by``), declines and by_month for the same filters, cached while the data is
    unchanged (for an administrator they add up every referral of the period)."""
    return _referral_figures(
        _version(database, actor),
        actor,
        by,
        filters.get("region_id"),
        filters.get("branch_id"),
        filters.get("since"),
        filters.get("until"),
    )


@st.cache_data(max_entries=64, show_spinner=False)
def _duplicate_contacts(version: tuple, actor: Actor, branch_id: int | None) -> list[dict]:
    with db.connect(version[0]) as database:
        return merge.duplicate_contacts(database, actor, branch_id=branch_id)


@st.cache_data(max_entries=16, show_spinner=False)
def _duplicate_organisations(version: tuple, actor: Actor) -> list[dict]:
    with db.connect(version[0]) as database:
        return merge.duplicate_organisations(database, actor)


def duplicate_contacts(database: Database, actor: Actor, *, branch_id: int | None = None) -> list[dict]:
    """merge.duplicate_contacts, cached (the module says until when; it reads every contact in scope)."""
    return _duplicate_contacts(_version(database, actor), actor, branch_id)


def duplicate_organisations(database: Database, actor: Actor) -> list[dict]:
    """merge.duplicate_organisations, cached (the module says until when)."""
    return _duplicate_organisations(_version(database, actor), actor)


SPECS_KEPT = 32  # charts' specs kept in this process; the largest (a 250-branch heatmap) is about 1 MB
RECENT_KEPT = 4  # the arguments each chart was most recently drawn with, to find its spec without hashing them
_specs: OrderedDict[tuple, dict] = OrderedDict()
_recent: dict[tuple[str, str], list[tuple[tuple, dict]]] = {}
_specs_lock = threading.Lock()


def chart_spec(build: Callable[..., alt.TopLevelMixin], *args: object) -> dict:
    """``charts.page_spec(build(*args))`` with its data as Arrow, made once per distinct arguments (while among
    the SPECS_KEPT most recently used). Building a chart with Altair and converting it checks every part against
    the Vega-Lite schema: for a branch's small heatmap that was about 35 ms of each Coverage rerun, and a chart
    depends on nothing but its arguments.

    The spec is shared by every rerun that draws the same chart: never change it.
    """
    chart = (build.__module__, build.__qualname__)
    # First among the arguments this chart was last drawn with: the figures cached here come back as the very same
    # objects on every rerun, and comparing a list with itself only checks each row is itself (an administrator's
    # heatmap, 3,250 rows: 0.1 ms, where pickling and hashing them took 3).
    with _specs_lock:
        for drawn_with, drawn in _recent.get(chart, ()):
            if len(drawn_with) == len(args) and all(a is b or a == b for a, b in zip(drawn_with, args, strict=True)):
                return drawn
    # Else by the arguments' bytes: pickling a 250-branch heatmap's 3,250 rows takes 1.5 ms, writing them as JSON 8.
    # Equal arguments pickled differently (the same text shared or not) only cost a rebuild, never a wrong chart.
    key = (*chart, hashlib.sha1(pickle.dumps(args, protocol=5)).digest())
    with _specs_lock:
        if (spec := _specs.get(key)) is not None:
            _specs.move_to_end(key)
            _remember(chart, args, spec)
            return spec
    spec = charts.page_spec(build(*args))
    # The data as Arrow, which st.vega_lite_chart would otherwise make from the rows on every rerun (more than half
    # of drawing a small chart); it takes the bytes as they are.
    spec["datasets"] = {
        name: dataframe_util.convert_anything_to_arrow_bytes(rows) for name, rows in spec.get("datasets", {}).items()
    }
    with _specs_lock:
        _specs[key] = spec
        while len(_specs) > SPECS_KEPT:
            _specs.popitem(last=False)
        _remember(chart, args, spec)
    return spec


def _remember(chart: tuple[str, str], args: tuple, spec: dict) -> None:
    """Keep ``args`` (the objects themselves) and ``spec`` as the chart's most recently drawn (hold _specs_lock)."""
    recent = [(args, spec), *(kept for kept in _recent.get(chart, ()) if kept[1] is not spec)]
    _recent[chart] = recent[:RECENT_KEPT]
