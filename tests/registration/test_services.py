"""Unit tests of the registration, invite and command services (no Telegram)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from registration.reg_helpers import add_agencies, add_user
from sqlmodel import select

from bot.channels.telegram.notifier import person_ref
from bot.clock import SimulatedClock
from bot.services import commands, identity, invites, people
from bot.services import registration as reg
from bot.services.people import actor_for
from bot.services.permissions import Actor
from storage.db import Database
from storage.models import AuditEvent, Role, User


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Nguyễn   Văn An ", "Nguyễn Văn An"),
        ("Nguye\u0302\u0303n", "Nguyễn"),  # NFC
        ("محمد عبد الله", "محمد عبد الله"),
        ("An 👩‍💻", "An 👩‍💻"),
        ("\u200fRTL mark", "\u200fRTL mark"),
    ],
)
def test_clean_name_accepts(raw: str, expected: str) -> None:
    assert reg.clean_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("A", "too_short"),
        ("   ", "too_short"),
        ("x" * 101, "too_long"),
        ("x" * 10_000, "too_long"),
        ("An\nB", "control"),
        ("An\x00", "control"),
        ("An\u2028", "control"),
    ],
)
def test_clean_name_refuses(raw: str, code: str) -> None:
    with pytest.raises(reg.InvalidName) as info:
        reg.clean_name(raw)
    assert info.value.code == code


def _actor(db: Database, telegram_id: int, admins: tuple[int, ...] = ()) -> Actor:
    with db.session() as s:
        user = identity.person_for(s, person_ref(telegram_id))
    return Actor(f"tg:{telegram_id}", user, telegram_id in admins)


def test_invite_is_single_use_and_expires(sqlite_db: Database, clock: SimulatedClock) -> None:
    ids = add_agencies(sqlite_db, ("BYT", "Bộ Y tế"), ("BTC", "Bộ Tài chính"))
    add_user(sqlite_db, 10, role="supervisor", agency_id=ids["BYT"])
    sup = _actor(sqlite_db, 10)
    with sqlite_db.session() as s:
        with pytest.raises(invites.InviteNotAllowed):
            invites.create_invite(
                s, actor=sup, agency_id=ids["BTC"], role="member", ttl_hours=72, now=clock.now()
            )
        with pytest.raises(invites.InviteNotAllowed):
            invites.create_invite(
                s, actor=sup, agency_id=ids["BYT"], role="supervisor", ttl_hours=72, now=clock.now()
            )
        invite = invites.create_invite(
            s, actor=sup, agency_id=ids["BYT"], role="member", ttl_hours=72, now=clock.now()
        )
        late = invites.create_invite(
            s, actor=sup, agency_id=ids["BYT"], role="member", ttl_hours=1, now=clock.now()
        )
    assert len(invite.code) == 32 and invite.code != late.code
    with sqlite_db.session() as s:
        assert invites.claim(s, invite.code, actor_ref="tg:1", now=clock.now()).id == invite.id
    for code, reason in ((invite.code, "used"), ("nope", "unknown"), ("bad code!", "unknown")):
        with sqlite_db.session() as s, pytest.raises(invites.InviteRefused) as info:
            invites.claim(s, code, actor_ref="tg:2", now=clock.now())
        assert info.value.reason == reason
    clock.advance(timedelta(hours=1))
    with sqlite_db.session() as s, pytest.raises(invites.InviteRefused) as info:
        invites.claim(s, late.code, actor_ref="tg:2", now=clock.now())
    assert info.value.reason == "expired"


def test_release_on_cancel_gives_the_code_back(sqlite_db: Database, clock: SimulatedClock) -> None:
    ids = add_agencies(sqlite_db, ("BYT", "Bộ Y tế"))
    admin = Actor("tg:1", None, True)
    with sqlite_db.session() as s:
        invite = invites.create_invite(
            s, actor=admin, agency_id=ids["BYT"], role="supervisor", ttl_hours=1, now=clock.now()
        )
    with sqlite_db.session() as s:
        reg.begin_with_invite(s, chat_ref="5", user_ref="tg:5", code=invite.code, now=clock.now())
    with sqlite_db.session() as s:
        assert reg.cancel(s, chat_ref="5", user_ref="tg:5", now=clock.now())
    with sqlite_db.session() as s:
        state = reg.begin_with_invite(
            s, chat_ref="6", user_ref="tg:6", code=invite.code, now=clock.now()
        )
        assert state.data["role"] == "supervisor"


def _pending(db: Database, clock: SimulatedClock, telegram_id: int, agency_id: int) -> int:
    with db.session() as s:
        state = reg.begin(
            s, chat_ref=str(telegram_id), user_ref=f"tg:{telegram_id}", now=clock.now()
        )
        reg.choose_language(s, state, "en", clock.now())
        reg.give_name(s, state, "Applicant", clock.now())
        reg.choose_agency(s, state, agency_id, clock.now())
        reg.choose_role(s, state, "spokesperson", clock.now())
        with pytest.raises(reg.RegistrationError):
            reg.give_phone(
                s,
                state,
                phone="+84900",
                contact_owner_ref="tg:999",
                who=person_ref(telegram_id),
                username=None,
                now=clock.now(),
            )
        done = reg.give_phone(
            s,
            state,
            phone="+84 900 000 000",
            contact_owner_ref=f"tg:{telegram_id}",
            who=person_ref(telegram_id),
            username="@Appl",
            now=clock.now(),
        )
        assert done.user.id is not None and not done.invited
        return done.user.id


def test_decisions_are_made_once_and_only_by_the_right_people(
    sqlite_db: Database, clock: SimulatedClock
) -> None:
    ids = add_agencies(sqlite_db, ("BYT", "Bộ Y tế"), ("BTC", "Bộ Tài chính"))
    add_user(sqlite_db, 10, role="supervisor", agency_id=ids["BYT"], full_name="Sup")
    add_user(sqlite_db, 11, role="supervisor", agency_id=ids["BTC"])
    add_user(sqlite_db, 12, role="spokesperson", agency_id=ids["BYT"])
    applicant = _pending(sqlite_db, clock, 50, ids["BYT"])
    with sqlite_db.session() as s:
        assert people.find_by_username(s, "@APPL") is not None
        assert people.find_by_username(s, "appl").id == applicant  # type: ignore[union-attr]
        assert people.find_by_username(s, "") is None
        deciders = reg.deciders_for(
            s,
            [person_ref(1)],
            s.get(User, applicant),  # type: ignore[arg-type]
            "telegram",
        )
        assert [d.account.external_id for d in deciders] == ["1", "10"]
        assert [u.full_name for u in reg.agency_supervisors(s, ids["BYT"])] == ["Sup"]
    for tid in (11, 12):
        with sqlite_db.session() as s, pytest.raises(reg.NotAllowed):
            reg.decide(
                s,
                actor=_actor(sqlite_db, tid),
                applicant_id=applicant,
                approve=True,
                decider_name="x",
                now=clock.now(),
            )
    with sqlite_db.session() as s:
        result = reg.decide(
            s,
            actor=_actor(sqlite_db, 10),
            applicant_id=applicant,
            approve=True,
            decider_name="Sup",
            now=clock.now(),
        )
    assert result.applicant.status == "active" and result.applicant.role == "spokesperson"
    with sqlite_db.session() as s, pytest.raises(reg.AlreadyDecided) as info:
        reg.decide(
            s,
            actor=Actor("tg:1", None, True),
            applicant_id=applicant,
            approve=False,
            decider_name="Admin",
            now=clock.now(),
        )
    assert (info.value.status, info.value.by) == ("active", "Sup")
    with sqlite_db.session() as s:
        actions = [e.action for e in s.exec(select(AuditEvent)).all()]
    assert actions.count("user.approved") == 1 and "user.rejected" not in actions


def test_people_management_rules(sqlite_db: Database, clock: SimulatedClock) -> None:
    ids = add_agencies(sqlite_db, ("BYT", "Bộ Y tế"))
    sup_id = add_user(sqlite_db, 10, role="supervisor", agency_id=ids["BYT"])
    other_sup = add_user(sqlite_db, 13, role="supervisor", agency_id=ids["BYT"])
    member = add_user(sqlite_db, 12, role="member", agency_id=ids["BYT"])
    sup = _actor(sqlite_db, 10)
    admin = Actor("tg:1", None, True)
    with sqlite_db.session() as s:
        assert not reg.can_manage(s, sup, sup_id)  # never oneself
        assert not reg.can_manage(s, sup, other_sup)  # supervisors are managed by admins
        with pytest.raises(reg.NotAllowed):
            reg.change_role(s, actor=sup, target_id=member, role="supervisor", now=clock.now())
        reg.change_role(s, actor=sup, target_id=member, role="spokesperson", now=clock.now())
        reg.suspend(s, actor=sup, target_id=member, now=clock.now())
        with pytest.raises(reg.RegistrationError):
            reg.suspend(s, actor=sup, target_id=member, now=clock.now())
        reg.change_role(s, actor=admin, target_id=other_sup, role="member", now=clock.now())
    with sqlite_db.session() as s:
        row = s.get(User, member)
        assert row is not None and row.status == "suspended" and row.role == "spokesperson"
        assert actor_for(s, _settings_stub(), person_ref(12)).suspended
        rows, page, pages = people.people_of_agency(s, ids["BYT"], 0, per_page=2)
        assert (len(rows), page, pages) == (2, 0, 2)
        actions = [e.action for e in s.exec(select(AuditEvent)).all()]
    assert actions == ["user.role_changed", "user.suspended", "user.role_changed"]


def _settings_stub() -> Any:
    return SimpleNamespace(admin_ids=[])


def test_command_lists_follow_the_role() -> None:
    assert commands.commands_for_role(None) == ["start", "help", "me", "cancel"]
    spokesperson = commands.commands_for_role(Role.SPOKESPERSON)
    assert {"start", "help", "me", "cancel"} <= set(spokesperson)
    assert not {"invite", "invites", "people", "status"} & set(spokesperson)
    assert "people" in commands.commands_for_role(Role.SUPERVISOR)
    assert "status" not in commands.commands_for_role(Role.SUPERVISOR)
    assert "status" in commands.commands_for_role(Role.ADMIN)
