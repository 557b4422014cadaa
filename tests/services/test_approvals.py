"""The approvals service on its own: who approves, what is refused before a decision is
recorded, and when a statement counts as approved. The same rules reached through buttons and
typed commands are tested in tests/drafts and tests/channels/test_approval_flow.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from bot.services import approvals as ap
from bot.services import drafts as dr
from bot.services.permissions import Actor
from storage.db import Database
from storage.models import (
    Agency,
    Approval,
    Crisis,
    CrisisMember,
    Decision,
    Draft,
    DraftStatus,
    Due,
    Role,
    User,
)

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
BODY = "Bộ Giáo dục và Đào tạo thông tin về kỳ thi."


def _desk(db: Database, *, required: int = 2, pin: bool = False) -> dict[str, int]:
    """An agency asking ``required`` approvals, its people, a crisis and a submitted draft."""
    ids: dict[str, int] = {}
    with db.session() as s:
        agency = Agency(
            code="bgd", name="BGD", owner="chat", approvals_required=required, approval_pin=pin
        )
        other = Agency(code="byt", name="BYT", owner="chat")
        s.add_all([agency, other])
        s.flush()
        assert agency.id is not None and other.id is not None
        people = {
            "author": (agency.id, Role.SPOKESPERSON, "active"),
            "sup1": (agency.id, Role.SUPERVISOR, "active"),
            "sup2": (agency.id, Role.SUPERVISOR, "active"),
            "away": (agency.id, Role.SUPERVISOR, "suspended"),
            "member": (agency.id, Role.MEMBER, "active"),
            "outsider": (other.id, Role.SUPERVISOR, "active"),
        }
        for name, (agency_id, role, status) in people.items():
            user = User(full_name=name, agency_id=agency_id, role=role, status=status)
            s.add(user)
            s.flush()
            assert user.id is not None
            ids[name] = user.id
        crisis = Crisis(
            agency_id=agency.id,
            title="Lộ đề thi",
            detected_at=NOW,
            deadline_at=NOW + timedelta(hours=24),
        )
        s.add(crisis)
        s.flush()
        assert crisis.id is not None
        ids["crisis"] = crisis.id
        draft = Draft(
            crisis_id=crisis.id,
            template="holding",
            body=BODY,
            body_sha256=dr.sha256(BODY),
            status=DraftStatus.SUBMITTED,
            author_id=ids["author"],
            submitted_at=NOW,
        )
        s.add(draft)
        s.flush()
        assert draft.id is not None
        ids["draft"] = draft.id
    return ids


def _user(s: Session, user_id: int) -> User:
    user = s.get(User, user_id)
    assert user is not None
    return user


def test_approvers_are_active_supervisors_and_approver_members(db: Database) -> None:
    ids = _desk(db)
    with db.session() as s:
        s.add(CrisisMember(crisis_id=ids["crisis"], user_id=ids["member"], role="approver"))
    with db.session() as s:
        crisis = s.get(Crisis, ids["crisis"])
        assert crisis is not None
        names = [u.full_name for u in ap.approvers_for(s, crisis)]
        assert names == ["sup1", "sup2", "member"]
        assert ap.is_approver(s, Actor("tg:1", _user(s, ids["sup1"])), ids["draft"])
        for who in ("away", "outsider", "author"):
            assert not ap.is_approver(s, Actor("tg:1", _user(s, ids[who])), ids["draft"]), who


def test_two_approvals_make_it_approved_and_schedule_publication_once(db: Database) -> None:
    ids = _desk(db, required=2)
    with db.session() as s:
        first = ap.decide(s, ids["draft"], _user(s, ids["sup1"]), Decision.APPROVE, at=NOW)
        assert (first.approvals, first.required, first.final) == (1, 2, False)
        with pytest.raises(dr.DraftError) as info:
            ap.decide(s, ids["draft"], _user(s, ids["sup1"]), Decision.APPROVE, at=NOW)
        assert info.value.code == "approval_already_voted"
    with db.session() as s:
        second = ap.decide(s, ids["draft"], _user(s, ids["sup2"]), Decision.APPROVE, at=NOW)
        assert (second.approvals, second.final) == (2, True)
        assert second.draft.status == DraftStatus.APPROVED
    with db.session() as s:
        assert len(s.exec(select(Approval)).all()) == 2
        publish = s.exec(select(Due).where(Due.kind == ap.PUBLISH)).all()
        assert [row.ref_id for row in publish] == [ids["draft"]]
        with pytest.raises(dr.DraftError) as info:
            ap.decide(s, ids["draft"], _user(s, ids["member"]), Decision.APPROVE, at=NOW)
        assert info.value.code == "approval_already_decided"


@pytest.mark.parametrize(
    ("who", "decision", "comment", "code"),
    [
        ("author", Decision.APPROVE, "", "approval_self"),
        ("sup1", Decision.REJECT, "  ", "approval_reason_needed"),
        ("sup1", Decision.REQUEST_CHANGES, "", "approval_reason_needed"),
    ],
)
def test_refused_before_anything_is_recorded(
    sqlite_db: Database, who: str, decision: Decision, comment: str, code: str
) -> None:
    ids = _desk(sqlite_db)
    with sqlite_db.session() as s, pytest.raises(dr.DraftError) as info:
        ap.decide(s, ids["draft"], _user(s, ids[who]), decision, comment=comment, at=NOW)
    assert info.value.code == code
    with sqlite_db.session() as s:
        assert s.exec(select(Approval)).all() == []
        draft = s.get(Draft, ids["draft"])
        assert draft is not None and draft.status == DraftStatus.SUBMITTED


def test_tampered_text_and_stale_versions_are_refused(db: Database) -> None:
    ids = _desk(db)
    with db.session() as s:
        draft = s.get(Draft, ids["draft"])
        assert draft is not None
        draft.body = BODY + " (sửa lén)"
    with db.session() as s, pytest.raises(dr.DraftError) as info:
        ap.decide(s, ids["draft"], _user(s, ids["sup1"]), Decision.APPROVE, at=NOW)
    assert info.value.code == "approval_hash_mismatch"
    with db.session() as s:
        newer = Draft(
            crisis_id=ids["crisis"],
            template="holding",
            version=2,
            body=BODY,
            body_sha256=dr.sha256(BODY),
            author_id=ids["author"],
        )
        s.add(newer)
    with db.session() as s, pytest.raises(dr.DraftError) as info:
        ap.decide(s, ids["draft"], _user(s, ids["sup1"]), Decision.APPROVE, at=NOW)
    assert info.value.code == "approval_stale"


def test_rejection_is_final_with_its_reason(db: Database) -> None:
    ids = _desk(db)
    with db.session() as s:
        outcome = ap.decide(
            s,
            ids["draft"],
            _user(s, ids["sup2"]),
            Decision.REJECT,
            comment="  Sai số liệu  ",
            at=NOW,
        )
        assert (outcome.final, outcome.comment) == (True, "Sai số liệu")
    with db.session() as s:
        draft = s.get(Draft, ids["draft"])
        assert draft is not None and draft.status == DraftStatus.REJECTED
        assert s.exec(select(Due).where(Due.kind == ap.PUBLISH)).all() == []


def test_pin_policy_asks_for_the_pin_and_checks_it(db: Database) -> None:
    ids = _desk(db, required=1, pin=True)
    with db.session() as s:
        with pytest.raises(ap.NeedsPin) as info:
            ap.decide(s, ids["draft"], _user(s, ids["sup1"]), Decision.APPROVE, at=NOW)
        assert not info.value.has_pin
        assert s.exec(select(Approval)).all() == []
    stored = ap.hash_pin("482915")
    assert ap.verify_pin(stored, "482915")
    assert not ap.verify_pin(stored, "482916")
    assert not ap.verify_pin(None, "482915")
    assert ap.valid_pin("482915") and not ap.valid_pin("12") and not ap.valid_pin("abcdef")
    with db.session() as s:
        outcome = ap.decide(
            s, ids["draft"], _user(s, ids["sup1"]), Decision.APPROVE, at=NOW, pin_confirmed=True
        )
        assert outcome.final and outcome.draft.status == DraftStatus.APPROVED
