"""The ``/status`` summary: a typed command reads afresh, Refresh presses within a second share
one read (issue 17: at a hundred presses a second the summary's queries were most of the work)."""

from __future__ import annotations

from typing import Any

from bot.clock import SimulatedClock
from bot.runtime import Runtime
from bot.services.status import SHARED_SECONDS, current_status, refreshed_status
from bot.templating import Renderer
from storage.db import Database
from storage.models import User


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _runtime(db: Database, make_settings: Any, clock: SimulatedClock) -> Runtime:
    return Runtime(make_settings(), db, clock, Renderer(), notifier=None)  # type: ignore[arg-type]


def _add_active(db: Database, name: str) -> None:
    with db.session() as s:
        s.add(User(full_name=name, status="active", role="member"))


def test_refresh_presses_within_a_second_share_one_read(
    sqlite_db: Database, make_settings: Any, clock: SimulatedClock
) -> None:
    runtime, ticks = _runtime(sqlite_db, make_settings, clock), Ticks()
    first = refreshed_status(runtime, ticks)
    assert first.users.get("active", 0) == 0
    _add_active(sqlite_db, "Lan")
    ticks.now += SHARED_SECONDS / 2
    assert refreshed_status(runtime, ticks) is first  # the same read, shown again
    ticks.now += SHARED_SECONDS / 2
    later = refreshed_status(runtime, ticks)
    assert later is not first and later.users["active"] == 1


def test_a_typed_status_always_reads_afresh(
    sqlite_db: Database, make_settings: Any, clock: SimulatedClock
) -> None:
    runtime, ticks = _runtime(sqlite_db, make_settings, clock), Ticks()
    refreshed_status(runtime, ticks)
    _add_active(sqlite_db, "Lan")
    assert current_status(runtime, ticks).users["active"] == 1
    # ... and what it read serves the presses right after it.
    _add_active(sqlite_db, "Minh")
    assert refreshed_status(runtime, ticks).users["active"] == 1


def test_each_database_has_its_own_summary(
    sqlite_db: Database, bot_db: tuple[str, Database], make_settings: Any, clock: SimulatedClock
) -> None:
    ticks, (_url, other) = Ticks(), bot_db
    _add_active(sqlite_db, "Lan")
    assert refreshed_status(_runtime(sqlite_db, make_settings, clock), ticks).users["active"] == 1
    elsewhere = refreshed_status(_runtime(other, make_settings, clock), ticks)
    assert elsewhere.users.get("active", 0) == 0
