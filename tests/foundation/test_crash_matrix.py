"""A slice of the crash matrix (bench/crash_matrix.py) in the suite: the real ``crisisdesk run``
killed at two points on SQLite, restarted, every invariant checked. The full matrix (58 points,
both databases) is a bench: ``python -m bench.crash_matrix --db both``."""

from __future__ import annotations

import ast

import pytest

from bench.crash_matrix import all_points, matrix

pytestmark = pytest.mark.slow

# A statement's .docx in flight at the kill (it used to be posted again with the statement),
# and the room summary of a resolution in flight (the reports and the topic closing used to be
# lost for good).
SLICE = ("pub.room.docx", "res.room-summary")


async def test_killed_twice_nothing_lost_nothing_doubled() -> None:
    points = [p for p in all_points() if p.name in SLICE]
    assert [p.name for p in points] == list(SLICE)
    results = await matrix(["sqlite"], points, verbose=False)
    broken = [
        (r.point, name, detail) for r in results for name, held, detail in r.checks if not held
    ]
    assert all(r.reached for r in results), [r.point for r in results if not r.reached]
    assert broken == []
    assert all(len(r.checks) >= 5 for r in results)


@pytest.mark.postgres
async def test_two_workers_the_leader_killed_nothing_lost_nothing_doubled(
    pg_server_url: str,
) -> None:
    """Two webhook workers behind the round-robin front; the leader (outbox, timers) is killed
    while the Approve press is answered, the other takes over and publishes every part once."""
    points = [p for p in all_points() if p.name == "pub.approve-answer"]
    results = await matrix(["postgres"], points, verbose=False, workers=2)
    assert [(r.point, r.db, r.reached) for r in results] == [
        ("pub.approve-answer", "postgres×2", True)
    ]
    broken = {name: detail for name, held, detail in results[0].checks if not held}
    # Two workers: the kill falls on the leader at whatever moment of its own work the other
    # worker's held press leaves it, sometimes mid-send. A part it had claimed and was sending
    # then stays ``in_doubt`` and is not sent again: at most once, flagged (docs/reliability.md,
    # residual risks). That is the one failure allowed, and only for parts flagged so.
    lost = broken.pop("no statement part lost", None)
    assert broken == {}
    if lost is not None:
        missing, flagged = lost.removeprefix("lost ").split(", in doubt ")
        assert set(ast.literal_eval(missing)) <= set(ast.literal_eval(flagged)), lost


def test_the_matrix_has_fifty_distinct_named_points() -> None:
    points = all_points()
    assert len({p.name for p in points}) == len(points) >= 50
    scenarios = {p.scenario.name for p in points}
    assert scenarios == {"alerts", "registration", "publication", "convening", "resolve"}
