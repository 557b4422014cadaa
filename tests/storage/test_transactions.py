"""Units of work: all or nothing, with the audit row inside the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from bot.channels.telegram.notifier import person_ref
from bot.services import audit, identity
from storage.db import Database
from storage.models import Agency, AuditEvent, User

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def test_failed_transaction_leaves_no_rows_and_no_audit(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as s:
        agency = Agency(code="BYT", name="Bộ Y tế")
        s.add(agency)
        s.flush()
        identity.add_person(s, person_ref(1), User(full_name="A", agency_id=agency.id))
        audit.record(s, action="user.created", subject="user:1", at=NOW)
        s.flush()
        raise RuntimeError("the chat send failed before commit")
    with db.session() as s:
        assert s.exec(select(Agency)).all() == []
        assert s.exec(select(User)).all() == []
        assert s.exec(select(AuditEvent)).all() == []


def test_change_and_audit_commit_together(db: Database) -> None:
    with db.session() as s:
        s.add(Agency(code="BYT", name="Bộ Y tế"))
        audit.record(
            s, action="agency.created", subject="agency:BYT", after={"code": "BYT"}, at=NOW
        )
    with db.session() as s:
        (event,) = audit.history(s, "agency:BYT")
        assert event.after == {"code": "BYT"}
        assert event.at == NOW and event.at.tzinfo is not None


def test_audit_events_are_append_only(db: Database) -> None:
    with db.session() as s:
        audit.record(s, action="x", subject="s", at=NOW)
    with pytest.raises(PermissionError), db.session() as s:
        event = s.exec(select(AuditEvent)).one()
        event.action = "tampered"
    with pytest.raises(PermissionError), db.session() as s:
        s.delete(s.exec(select(AuditEvent)).one())
    with db.session() as s:
        assert s.exec(select(AuditEvent)).one().action == "x"


def test_foreign_keys_are_enforced(db: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), db.session() as s:
        identity.add_person(s, person_ref(2), User(full_name="B", agency_id=999))


def test_naive_datetimes_are_refused(db: Database) -> None:
    from sqlalchemy.exc import StatementError

    with pytest.raises(StatementError, match="naive datetime"), db.session() as s:
        audit.record(s, action="x", at=datetime(2026, 1, 1))
