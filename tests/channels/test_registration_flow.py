"""Registration on a channel with no buttons, no edits, no contact sharing and 2,000 characters.

A newcomer registers by typing (numbered choices, a typed Vietnamese phone number) and a
supervisor of the agency approves or rejects them by typing: the same flows and services as on
Telegram (tests/registration), nothing channel-specific added. The verifier is told that the
number was typed, because this channel cannot vouch that it is the applicant's own.
"""

from __future__ import annotations

from alert_desk import Desk
from channels.fake_channel import FakeChannel, account_of
from channels.test_alert_flow import fake_runtime
from sqlmodel import select

import handlers.registration  # noqa: F401  (the registration flows register with the layer)
from bot.channels.refs import PersonRef
from bot.runtime import Runtime
from bot.services import identity
from storage.models import AuditEvent, Role, User, UserStatus

NEWCOMER = "zl-7001"  # an account on the fake channel only


def choice(message: str, wanted: str) -> str:
    """The number to type for the line of ``message`` offering ``wanted``."""
    for line in message.splitlines():
        number, _, label = line.partition(". ")
        if number.isdigit() and wanted in label:
            return number
    raise AssertionError(f"no choice {wanted!r} in {message!r}")


async def register(channel: FakeChannel, runtime: Runtime) -> list[str]:
    """The newcomer goes from /start to a typed phone; returns the last answer."""
    [ask_language] = await channel.type(runtime, NEWCOMER, "/start")
    assert "1. Tiếng Việt" in ask_language and "2. English" in ask_language
    [ask_name] = await channel.type(runtime, NEWCOMER, choice(ask_language, "English"))
    assert "name" in ask_name.lower()
    [ask_agency] = await channel.type(runtime, NEWCOMER, "Trần Thị Bình")
    [ask_role] = await channel.type(runtime, NEWCOMER, choice(ask_agency, "(BYT)"))
    [ask_phone] = await channel.type(runtime, NEWCOMER, choice(ask_role, "Spokesperson"))
    assert "type your mobile phone number" in ask_phone and "button" not in ask_phone
    assert await channel.type(runtime, NEWCOMER, "12345") == [
        "That is not a valid Vietnamese phone number. Please type it again, "
        "for example 0912 345 678."
    ]
    return await channel.type(runtime, NEWCOMER, "0912 345 678")


def newcomer(desk: Desk) -> User:
    with desk.db.session() as s:
        user = identity.person_for(s, PersonRef("fake", NEWCOMER))
        assert user is not None
        return user


async def test_register_by_typing_and_be_approved(desk: Desk) -> None:
    _tg, supervisor_id = desk.add_person("Hùng", Role.SUPERVISOR)
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)
    supervisor = account_of(_tg.id)

    [done] = await register(channel, runtime)
    assert "awaiting approval" in done
    applicant = newcomer(desk)
    assert applicant.status == UserStatus.PENDING and applicant.role == Role.MEMBER
    assert applicant.phone == "+84912345678" and applicant.phone_typed
    assert applicant.requested_role == Role.SPOKESPERSON

    [request] = channel.inbox(supervisor)
    assert "Trần Thị Bình" in request and "+84912345678" in request
    assert (
        "Số do người đăng ký tự gõ" in request
    )  # the verifier sees the number was typed, not vouched
    assert f"/accept {applicant.id}" in request and f"/decline {applicant.id}" in request

    # Someone who may not decide is refused, and nothing changes.
    outsider = account_of(desk.outsider[0].id)
    assert await channel.type(runtime, outsider, f"/accept {applicant.id}") == [
        "Bạn không có quyền thực hiện thao tác này."
    ]
    assert newcomer(desk).status == UserStatus.PENDING

    # The request cannot be edited here: the supervisor gets its decided state anew.
    saved, decided_copy = await channel.type(runtime, supervisor, f"/accept {applicant.id}")
    assert saved == "Đã lưu quyết định."
    assert "✓ Đã phê duyệt bởi Hùng" in decided_copy and "Trần Thị Bình" in decided_copy
    approved = newcomer(desk)
    assert approved.status == UserStatus.ACTIVE and approved.role == Role.SPOKESPERSON
    assert "approved" in channel.inbox(NEWCOMER)[-1].lower()
    with desk.db.session() as s:
        decided = s.exec(
            select(AuditEvent).where(AuditEvent.subject == f"user:{applicant.id}")
        ).all()
        assert {e.action for e in decided} >= {"user.registered", "user.approved"}
        assert any(e.actor_id == supervisor_id for e in decided if e.action == "user.approved")


async def test_rejected_with_a_typed_reason(desk: Desk) -> None:
    _tg, _supervisor_id = desk.add_person("Hùng", Role.SUPERVISOR)
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)
    supervisor = account_of(_tg.id)
    await register(channel, runtime)
    applicant = newcomer(desk)

    [ask_reason] = await channel.type(runtime, supervisor, f"/decline {applicant.id}")
    assert "Trần Thị Bình" in ask_reason
    saved, decided_copy = await channel.type(runtime, supervisor, "Không thuộc cơ quan")
    assert saved == "Đã lưu quyết định."
    assert "✗ Đã từ chối bởi Hùng: Không thuộc cơ quan" in decided_copy
    assert newcomer(desk).status != UserStatus.PENDING
    assert "Không thuộc cơ quan" in channel.inbox(NEWCOMER)[-1]
    # Decided already: a second decision is refused with who decided.
    [again] = await channel.type(runtime, supervisor, f"/accept {applicant.id}")
    assert "Hùng" in again
