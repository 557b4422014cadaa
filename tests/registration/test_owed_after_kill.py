"""What a registration owes after its state change is finished by the next process.

A process that committed a pending request (or a decision) and died before any message went out
is stood in for by calling the service directly; the Application started afterwards must ask the
deciders (tell the applicant) from the due row alone. Before the due rows nobody was ever asked
(told). The crash matrix (bench/crash_matrix.py, ``reg.*``) kills the real process at these
points."""

from __future__ import annotations

from typing import Any

from emulator_fixtures import running_app
from registration.reg_helpers import add_agencies, add_user

from bot.app import build_application
from bot.channels.telegram.notifier import person_ref
from bot.clock import SimulatedClock
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.services import identity
from bot.services import registration as reg
from bot.services.people import actor_for
from storage.db import Database
from storage.models import ConversationState


def _pending(db: Database, emulator: TelegramEmulator, clock: SimulatedClock) -> tuple[int, int]:
    """An agency, a supervisor and an applicant whose request is committed and owed."""
    ids = add_agencies(db, ("BYT", "Bộ Y tế"))
    sup = emulator.create_user("Sup", language_code="en")
    emulator.send_text(sup.id, "hi")
    add_user(db, sup.id, full_name="Sup", role="supervisor", agency_id=ids["BYT"], language="en")
    kim = emulator.create_user("Kim", language_code="en")
    emulator.send_text(kim.id, "hello")
    with db.session() as s:
        state = ConversationState(
            chat_ref=str(kim.id),
            user_ref=f"tg:{kim.id}",
            flow=reg.FLOW_REGISTER,
            step=reg.STEP_PHONE,
            data={
                "language": "en",
                "full_name": "Kim Lê",
                "agency_id": ids["BYT"],
                "role": "spokesperson",
            },
        )
        s.add(state)
        s.flush()
        reg.give_phone(
            s,
            state,
            phone="+84 912 345 678",
            contact_owner_ref=f"tg:{kim.id}",
            who=person_ref(kim.id),
            username=None,
            now=clock.now(),
        )
    return sup.id, kim.id


async def test_review_requests_owed_by_a_dead_process_go_out(
    emulator: TelegramEmulator, sqlite_db: Database, app_settings: Any, clock: SimulatedClock
) -> None:
    sup, _kim = _pending(sqlite_db, emulator, clock)
    app = build_application(app_settings(TICK_SECONDS="0.1"), sqlite_db, clock)
    async with running_app(app):
        request = await emulator.wait_for_message(
            sup, lambda m: "New registration request" in (m.text or "")
        )
        assert "Kim Lê" in (request.text or "")
        await emulator.wait_for(lambda: len(emulator.calls_to("getUpdates")) >= 3)
    texts = [m.text for m in emulator.messages(sup, from_bot=True)]
    assert sum("New registration request" in (t or "") for t in texts) == 1


async def test_a_decision_owed_by_a_dead_process_is_announced(
    emulator: TelegramEmulator, sqlite_db: Database, app_settings: Any, clock: SimulatedClock
) -> None:
    sup, kim = _pending(sqlite_db, emulator, clock)
    settings = app_settings(TICK_SECONDS="0.1")
    with sqlite_db.session() as s:
        applicant = identity.person_for(s, person_ref(kim))
        assert applicant is not None and applicant.id is not None
        reg.decide(
            s,
            actor=actor_for(s, settings, person_ref(sup)),
            applicant_id=applicant.id,
            approve=True,
            decider_name="Sup",
            now=clock.now(),
        )
    app = build_application(settings, sqlite_db, clock)
    async with running_app(app):
        told = await emulator.wait_for_message(kim, lambda m: "has been approved" in (m.text or ""))
        assert "Spokesperson" in (told.text or "")
    # Decided before anyone was asked: nobody is asked any more.
    assert not [
        m for m in emulator.messages(sup, from_bot=True) if "registration request" in (m.text or "")
    ]
