"""Rows most test scenarios start from."""

from __future__ import annotations

from sqlmodel import Session

from storage.models import Agency, Topic


def add_topic(
    session: Session,
    name: str = "An toàn thực phẩm",
    query: str = '"ngộ độc"',
    *,
    code: str = "BYT",
    agency_name: str = "Bộ Y tế",
) -> Topic:
    """A topic of a new agency, both flushed so that they have their ids."""
    agency = Agency(code=code, name=agency_name)
    session.add(agency)
    session.flush()
    assert agency.id is not None
    topic = Topic(agency_id=agency.id, name=name, query=query)
    session.add(topic)
    session.flush()
    assert topic.id is not None
    return topic
