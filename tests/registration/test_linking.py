"""Linking a second messenger account (``bot.services.linking``) and choosing where alerts go:
the code's expiry, single use, wrong codes and their limit, the refusals that keep two people
apart, and the delivery ledger owing each person one copy per chosen channel."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alert_desk import burst_alert
from sqlmodel import select

from bot.channels.refs import PersonRef
from bot.clock import SimulatedClock
from bot.services import identity, linking
from bot.services import registration as reg
from bot.services.alerts import plan_delivery
from storage.db import Database
from storage.models import (
    Agency,
    AuditEvent,
    ConversationState,
    Delivery,
    LinkCode,
    Role,
    Subscription,
    Topic,
    User,
    UserStatus,
)

LAN_TG = PersonRef("telegram", "5001")
LAN_ZALO = PersonRef("zalo", "7f3a9c0e51d2b4a8")


def add_person(db: Database, who: PersonRef, name: str = "Lan", **fields: object) -> int:
    with db.session() as s:
        user = User(full_name=name, status=UserStatus.ACTIVE, role=Role.SPOKESPERSON, **fields)
        identity.add_person(s, who, user)
        assert user.id is not None
        return user.id


def issue(db: Database, user_id: int, clock: SimulatedClock, channel: str = "telegram") -> str:
    with db.session() as s:
        user = s.get(User, user_id)
        assert user is not None
        return linking.issue_code(s, user, channel, clock.now()).code


def redeem(db: Database, who: PersonRef, code: str, clock: SimulatedClock) -> linking.Redeemed:
    with db.session() as s:
        return linking.redeem(s, who, code, clock.now())


def person(db: Database, who: PersonRef) -> int | None:
    with db.session() as s:
        found = identity.person_for(s, who)
        return found.id if found else None


def test_a_code_links_the_other_messenger_once(db: Database, clock: SimulatedClock) -> None:
    lan = add_person(db, LAN_TG)
    code = issue(db, lan, clock)
    assert len(code) == 9 and code[4] == "-"
    with db.session() as s:
        [row] = s.exec(select(LinkCode)).all()
        assert code.replace("-", "") not in row.code_hash  # only the hash is kept
        assert row.expires_at == clock.now() + linking.CODE_TTL

    # Typed in lower case with a space: still the code.
    assert redeem(db, LAN_ZALO, code.lower().replace("-", " "), clock).user is not None
    assert person(db, LAN_ZALO) == lan
    # Used: nobody else can take it.
    assert redeem(db, PersonRef("zalo", "intruder"), code, clock).refused == "used"
    assert person(db, PersonRef("zalo", "intruder")) is None
    assert redeem(db, LAN_ZALO, code, clock).refused == "used"


def test_an_expired_code_links_nothing(db: Database, clock: SimulatedClock) -> None:
    lan = add_person(db, LAN_TG)
    code = issue(db, lan, clock)
    clock.advance(linking.CODE_TTL + timedelta(seconds=1))
    assert redeem(db, LAN_ZALO, code, clock).refused == "expired"
    assert person(db, LAN_ZALO) is None


def test_a_new_code_replaces_the_old_one(db: Database, clock: SimulatedClock) -> None:
    lan = add_person(db, LAN_TG)
    old = issue(db, lan, clock)
    new = issue(db, lan, clock)
    assert redeem(db, LAN_ZALO, old, clock).refused == "unknown"
    assert redeem(db, LAN_ZALO, new, clock).user is not None


def test_wrong_codes_are_limited(db: Database, clock: SimulatedClock) -> None:
    lan = add_person(db, LAN_TG)
    code = issue(db, lan, clock)
    for _ in range(linking.MAX_ATTEMPTS):
        assert redeem(db, LAN_ZALO, "AAAA-AAAA", clock).refused == "unknown"
    # Even the right code is refused now, without a look-up, until the window has passed.
    assert redeem(db, LAN_ZALO, code, clock).refused == "too_many"
    assert person(db, LAN_ZALO) is None
    clock.advance(linking.ATTEMPT_WINDOW)  # the code has expired meanwhile: a new one
    assert redeem(db, LAN_ZALO, issue(db, lan, clock), clock).user is not None
    with db.session() as s:
        refused = s.exec(select(AuditEvent).where(AuditEvent.action == linking.REFUSED)).all()
    assert len(refused) == linking.MAX_ATTEMPTS
    assert {e.actor_ref for e in refused} == {str(LAN_ZALO)}


def test_two_people_are_never_merged(db: Database, clock: SimulatedClock) -> None:
    lan = add_person(db, LAN_TG)
    hung_zalo = PersonRef("zalo", "b0b0b0b0")
    hung = add_person(db, hung_zalo, "Hùng")
    code = issue(db, lan, clock)
    assert redeem(db, hung_zalo, code, clock).refused == "taken"
    assert person(db, hung_zalo) == hung
    # Refusals that are not guesses leave the code usable by its owner.
    assert redeem(db, PersonRef("telegram", "5002"), code, clock).refused == "same_channel"
    assert redeem(db, LAN_ZALO, code, clock).user is not None
    second = issue(db, lan, clock)
    assert redeem(db, PersonRef("zalo", "another"), second, clock).refused == "has_account"
    assert redeem(db, LAN_ZALO, second, clock).refused == "already"


def test_a_registration_begun_on_the_second_account_is_dropped(
    db: Database, clock: SimulatedClock
) -> None:
    lan = add_person(db, LAN_TG)
    code = issue(db, lan, clock)
    with db.session() as s:
        reg.begin(s, chat_ref=f"{LAN_ZALO.external_id}:0", user_ref=str(LAN_ZALO), now=clock.now())
    assert redeem(db, LAN_ZALO, code, clock).user is not None
    with db.session() as s:
        assert s.exec(select(ConversationState)).all() == []


def test_choosing_where_alerts_go(db: Database, clock: SimulatedClock) -> None:
    lan = add_person(db, LAN_TG)
    with db.session() as s:
        user = s.get(User, lan)
        assert user is not None
        with pytest.raises(linking.ChoiceRefused) as refused:
            linking.choose_alert_channel(s, user, "zalo", clock.now())
        assert refused.value.reason == "no_account"
        with pytest.raises(linking.ChoiceRefused):
            linking.choose_alert_channel(s, user, "viber", clock.now())
    assert redeem(db, LAN_ZALO, issue(db, lan, clock), clock).user is not None
    with db.session() as s:
        user = s.get(User, lan)
        assert user is not None
        assert identity.alert_channels(s, [user]) == {lan: ["telegram", "zalo"]}
        assert linking.choose_alert_channel(s, user, "zalo", clock.now()) == "zalo"
        assert identity.alert_channels(s, [user]) == {lan: ["zalo"]}
        assert linking.choose_alert_channel(s, user, "ca_hai", clock.now()) is None


def test_the_ledger_owes_one_copy_per_chosen_channel(db: Database, clock: SimulatedClock) -> None:
    now = clock.now()
    with db.session() as s:
        agency = Agency(code="BYT", name="Bộ Y tế")
        s.add(agency)
        s.flush()
        topic = Topic(agency_id=agency.id or 0, name="Vắc-xin", query='"vắc-xin"')
        s.add(topic)
        s.flush()
        topic_id, agency_id = topic.id or 0, agency.id
    lan = add_person(db, LAN_TG, agency_id=agency_id)
    with db.session() as s:
        s.add(Subscription(user_id=lan, topic_id=topic_id))
    assert redeem(db, LAN_ZALO, issue(db, lan, clock), clock).user is not None

    def plan(dedupe: str) -> list[tuple[str, str | None]]:
        with db.session() as s:
            alert = burst_alert(topic_id, now, dedupe)
            s.add(alert)
            s.flush()
            plan_delivery(s, alert, now, escalate_after=timedelta(minutes=15))
            plan_delivery(s, alert, now, escalate_after=timedelta(minutes=15))  # idempotent
            rows = s.exec(select(Delivery).where(Delivery.ref_id == alert.id)).all()
            return sorted((r.part, r.channel) for r in rows)

    assert plan("both") == [
        ("photo:warning", "telegram"),
        ("photo:warning@zalo", "zalo"),
        ("text:warning", "telegram"),
        ("text:warning@zalo", "zalo"),
    ]
    with db.session() as s:
        user = s.get(User, lan)
        assert user is not None
        linking.choose_alert_channel(s, user, "zalo", now)
    assert plan("zalo only") == [("photo:warning", "zalo"), ("text:warning", "zalo")]


OA = "3158806452351286345"  # a room provider's scope: a Zalo OA's app id


def redeem_in_oa(db: Database, oa_id: str, code: str, clock: SimulatedClock) -> linking.Redeemed:
    with db.session() as s:
        return linking.redeem_in_scope(s, "zalo", OA, oa_id, code, clock.now())


def oa_ids(db: Database) -> dict[PersonRef, str]:
    with db.session() as s:
        return identity.room_ids(s, [LAN_ZALO, PersonRef("zalo", "binh")], OA)


def test_a_code_sent_to_a_room_provider_links_the_id_it_knows_the_person_by(
    db: Database, clock: SimulatedClock
) -> None:
    """The OA-scoped id is bound once per code and person; another person's id is refused; the
    same person linking again from another account replaces theirs; wrong codes are counted
    per OA id and end in a block; it says nothing about who the person is on the bot."""
    lan = add_person(db, LAN_ZALO)
    binh = add_person(db, PersonRef("zalo", "binh"), name="Bình")
    assert redeem_in_oa(db, "84001", issue(db, lan, clock, "zalo"), clock).user is not None
    assert oa_ids(db) == {LAN_ZALO: "84001"}
    with db.session() as s:
        assert identity.account_for_room_id(s, "zalo", OA, "84001") == LAN_ZALO
        assert identity.account_for_room_id(s, "zalo", "another-oa", "84001") is None
        assert identity.person_for(s, PersonRef("zalo", "84001")) is None  # not an account

    # Bình's code typed from Lan's OA account: that id is Lan's.
    assert redeem_in_oa(db, "84001", issue(db, binh, clock), clock).refused == "taken"
    # Lan again from another Zalo account of hers: her OA id is replaced, audited.
    assert redeem_in_oa(db, "84002", issue(db, lan, clock), clock).user is not None
    assert oa_ids(db) == {LAN_ZALO: "84002"}
    with db.session() as s:
        linked = s.exec(select(AuditEvent).where(AuditEvent.action == "link.room_linked")).all()
        assert [e.before for e in linked] == [None, {"room_id": "84001"}]

    for _ in range(linking.MAX_ATTEMPTS):
        assert redeem_in_oa(db, "84009", "ABCD-EFGH", clock).refused == "unknown"
    code = issue(db, binh, clock)
    assert redeem_in_oa(db, "84009", code, clock).refused == "too_many"
    assert redeem_in_oa(db, "84010", code, clock).user is not None  # another id is not blocked
    assert oa_ids(db) == {LAN_ZALO: "84002", PersonRef("zalo", "binh"): "84010"}


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("K7PM-Q2XD", "K7PMQ2XD"),
        ("k7pm q2xd", "K7PMQ2XD"),
        ("/lienket K7PM-Q2XD", "K7PMQ2XD"),
        ("/link k7pmq2xd", "K7PMQ2XD"),
        ("Cho tôi hỏi giờ làm việc", None),
        ("K7PM-Q2X0", None),  # 0 is not in the alphabet
        ("K7PM-Q2XDA", None),
        ("", None),
    ],
)
def test_only_a_code_typed_alone_is_taken_from_a_providers_chat(
    typed: str, code: str | None
) -> None:
    assert linking.code_in(typed) == code
