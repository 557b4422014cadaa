"""Task-force spin-up time: from ``/crisis`` to the room ready, the brief pinned and 20
invitations delivered, with the real Application against the Bot API emulator (flood limits off).

    python -m bench.spinup [--runs 20] [--mode forum|pool|both] [--invitees 20]

Each run opens a new crisis that convenes ``--invitees`` people (the agency's supervisor and
people named by @username) and stops the watch when the emulator holds every invitation and the
pinned brief. Forum mode gives each run a fresh hub and pool mode a fresh pooled group, so the
bot's own per-group limit (20 messages a minute, kept by ``TelegramRateLimiter``) does not turn
the measurement into a measurement of that limit. Prints the median and p95 per mode.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.app import build_application
from bot.channels.telegram.notifier import person_ref
from bot.clock import SystemClock
from bot.config import load_settings
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.services import identity
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Agency, Crisis, User

RIGHTS = {
    "can_manage_topics": True,
    "can_pin_messages": True,
    "can_invite_users": True,
    "can_restrict_members": True,
    "can_change_info": True,
}


def _person(emu: TelegramEmulator, db: Database, agency_id: int, name: str, role: str) -> int:
    user = emu.create_user(name.title(), username=name, language_code="vi")
    user.started = True
    emu.world.private_chat(user)
    with db.session() as s:
        identity.add_person(
            s,
            person_ref(user.id),
            User(
                username=name,
                full_name=name.title(),
                agency_id=agency_id,
                role=role,
                status="active",
                language="vi",
            ),
        )
    return user.id


async def _poll(predicate: Any, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("spin-up did not complete")
        await asyncio.sleep(0.002)


async def measure(mode: str, runs: int, invitees: int) -> list[float]:
    emu = TelegramEmulator(flood_limits=False)
    await emu.start()
    tmp = Path(tempfile.mkdtemp(prefix="spinup-"))
    url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    upgrade(url)
    db = Database.from_url(url)
    try:
        with db.session() as s:
            agency = Agency(code="BYT", name="Bộ Y tế", owner="chat")
            s.add(agency)
            s.flush()
            agency_id = agency.id or 0
        lead = _person(emu, db, agency_id, "lead", "spokesperson")
        others = [_person(emu, db, agency_id, "boss", "supervisor")]
        others += [
            _person(emu, db, agency_id, f"p{i:02d}", "spokesperson") for i in range(invitees - 1)
        ]
        names = " ".join(f"@p{i:02d}" for i in range(invitees - 1))
        settings = load_settings(
            {
                "CRISISDESK_TELEGRAM_TOKEN": emu.token,
                "CRISISDESK_TELEGRAM_API_URL": emu.root_url,
                "CRISISDESK_DATA_DIR": str(tmp),
                "CRISISDESK_TICK_SECONDS": "0.5",
            }
        )
        app = build_application(settings, db, SystemClock())
        timings: list[float] = []
        async with app:
            await app.start()
            assert app.updater is not None
            await app.updater.start_polling(poll_interval=0, timeout=1)
            for run in range(1, runs + 1):
                if mode == "forum":
                    room = emu.create_supergroup(f"Hub {run}", forum=True)
                    emu.add_bot(room.id, rights=RIGHTS)
                    with db.session() as s:
                        row = s.get(Agency, agency_id)
                        assert row is not None
                        row.hub_channel, row.hub_chat_id = "telegram", str(room.id)
                else:
                    room = emu.create_supergroup(f"Spare {run}")
                    emu.add_bot(room.id, rights=RIGHTS)
                    await _poll(lambda r=room: bool(emu.messages(r.id, from_bot=True)))
                await asyncio.sleep(0.05)
                started = time.perf_counter()
                emu.send_text(lead, f"/crisis critical Bench crisis {run} {names}")

                def ready(chat_id: int = room.id, run: int = run) -> bool:
                    chat = emu.chat(chat_id)
                    if not chat.pinned:
                        return False
                    for person in others:
                        texts = [m.text or "" for m in emu.messages(person, from_bot=True)]
                        if not any(f"Bench crisis {run} ·" in t for t in texts):
                            return False
                    return True

                await _poll(ready)
                timings.append(time.perf_counter() - started)
                with db.session() as s:
                    crisis = s.get(Crisis, run)
                    assert crisis is not None and crisis.room_chat_id == str(room.id)
            await app.updater.stop()
            await app.stop()
        return timings
    finally:
        db.dispose()
        await emu.stop()


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(0.95 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--invitees", type=int, default=20)
    parser.add_argument("--mode", choices=("forum", "pool", "both"), default="both")
    args = parser.parse_args(argv)
    modes = ("forum", "pool") if args.mode == "both" else (args.mode,)
    print(f"spin-up to room ready + brief pinned + {args.invitees} invitations, {args.runs} runs")
    for mode in modes:
        timings = await measure(mode, args.runs, args.invitees)
        print(
            f"{mode:5s}  median {statistics.median(timings):.3f} s   p95 {_p95(timings):.3f} s"
            f"   min {min(timings):.3f} s   max {max(timings):.3f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
