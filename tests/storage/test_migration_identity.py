"""Migration 0004 on a database with people in it: Telegram and Zalo ids move to
``channelidentity`` and back without loss, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from migration_rows import reflect, user_row

from storage.migrate import downgrade, upgrade

BEFORE = "0006_several_workers"
AFTER = "0007_channel_identity"
AT = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)

# Larger than 32 bits, as real Telegram ids are; one person on both channels, one on none.
PEOPLE = [
    {"id": 1, "telegram_id": 7_123_456_789, "zalo_id": None, "full_name": "An"},
    {"id": 2, "telegram_id": 42, "zalo_id": "zl-8841", "full_name": "Bình"},
    {"id": 3, "telegram_id": None, "zalo_id": "zl-0007", "full_name": "Chi"},
    {"id": 4, "telegram_id": None, "zalo_id": None, "full_name": "Dũng"},
]


@pytest.fixture
def url(empty_db: tuple[str, sa.Engine]) -> str:
    return empty_db[0]


@pytest.fixture
def engine(empty_db: tuple[str, sa.Engine]) -> sa.Engine:
    return empty_db[1]


def _people(engine: sa.Engine) -> list[dict[str, Any]]:
    user = reflect(engine, "user")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(user).order_by(user.c.id)).mappings().all()
    return [dict(row) for row in rows]


def _identities(engine: sa.Engine) -> set[tuple[int, str, str]]:
    identity = reflect(engine, "channelidentity")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(identity.c.user_id, identity.c.channel, identity.c.external_id)
        ).all()
    return {(r.user_id, r.channel, r.external_id) for r in rows}


def _seed(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(reflect(engine, "user")), [user_row(AT, **p) for p in PEOPLE])


def test_ids_move_to_identities_and_back(url: str, engine: sa.Engine) -> None:
    upgrade(url, BEFORE)
    _seed(engine)
    before = _people(engine)

    upgrade(url, AFTER)
    assert not {"telegram_id", "zalo_id"} & {
        c["name"] for c in sa.inspect(engine).get_columns("user")
    }
    assert _identities(engine) == {
        (1, "telegram", "7123456789"),
        (2, "telegram", "42"),
        (2, "zalo", "zl-8841"),
        (3, "zalo", "zl-0007"),
    }

    downgrade(url, BEFORE)
    assert "channelidentity" not in sa.inspect(engine).get_table_names()
    restored = _people(engine)
    assert restored == before
    assert restored[0]["telegram_id"] == 7_123_456_789


def test_identity_added_after_upgrade_survives_downgrade(url: str, engine: sa.Engine) -> None:
    """A person who registered on the new schema keeps their Telegram id on the way back."""
    upgrade(url, BEFORE)
    _seed(engine)
    upgrade(url, AFTER)
    identity = reflect(engine, "channelidentity")
    with engine.begin() as conn:
        conn.execute(
            sa.insert(identity),
            [
                {"user_id": 4, "channel": "telegram", "external_id": "555", "created_at": AT},
                {"user_id": 4, "channel": "zalo", "external_id": "zl-4", "created_at": AT},
            ],
        )
    downgrade(url, BEFORE)
    dung = _people(engine)[3]
    assert (dung["telegram_id"], dung["zalo_id"]) == (555, "zl-4")


def test_one_account_per_channel(url: str, engine: sa.Engine) -> None:
    """The same Telegram account cannot belong to two people, nor a person have two."""
    upgrade(url, BEFORE)
    _seed(engine)
    upgrade(url, AFTER)
    identity = reflect(engine, "channelidentity")
    for clash in (
        {"user_id": 4, "channel": "telegram", "external_id": "42"},  # Bình's account
        {"user_id": 1, "channel": "telegram", "external_id": "999"},  # An has one already
    ):
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(sa.insert(identity), [{**clash, "created_at": AT}])


def _insert(engine: sa.Engine, name: str, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(reflect(engine, name)), rows)


def _select(engine: sa.Engine, name: str, *columns: str) -> list[tuple[Any, ...]]:
    table = reflect(engine, name)
    with engine.connect() as conn:
        query = sa.select(*(table.c[c] for c in columns)).order_by(table.c.id)
        return [tuple(row) for row in conn.execute(query)]


def _seed_rooms(engine: sa.Engine) -> None:
    """A forum-topic crisis with its pinned brief, a pooled group, and two delivered messages."""
    _insert(
        engine,
        "agency",
        [
            {
                "id": 1,
                "code": "BYT",
                "name": "Bộ Y tế",
                "hub_chat_id": -1001234567890,
                "deadline_hours": 24.0,
                "approvals_required": 1,
                "approval_pin": False,
                "owner": "toml",
                "created_at": AT,
            }
        ],
    )
    crisis = {"agency_id": 1, "severity": "warning", "status": "open", "invite_link": None}
    times = {"detected_at": AT, "deadline_at": AT, "created_at": AT}
    _insert(
        engine,
        "crisis",
        [
            {"id": 1, "title": "Topic", **crisis, **times, "room_chat_id": -1001234567890,
             "room_thread_id": 77, "brief_message_id": 901},
            {"id": 2, "title": "No room yet", **crisis, **times, "room_chat_id": None,
             "room_thread_id": None, "brief_message_id": None},
        ],
    )  # fmt: skip
    _insert(
        engine,
        "room",
        [
            {"id": 1, "kind": "forum_topic", "chat_id": -1001234567890, "thread_id": 77,
             "title": "Topic", "state": "in_use", "crisis_id": 1, "created_at": AT},
            {"id": 2, "kind": "pooled_group", "chat_id": -1009876543210, "thread_id": None,
             "title": "Pool 1", "state": "free", "crisis_id": None, "created_at": AT},
        ],
    )  # fmt: skip
    delivery = {"kind": "alert", "ref_id": 1, "user_id": 1, "attempts": 1, "created_at": AT}
    _insert(
        engine,
        "delivery",
        [
            {"id": 1, **delivery, "part": "text", "status": "sent", "chat_id": 7_123_456_789,
             "message_id": 12},
            {"id": 2, **delivery, "part": "chart", "status": "pending", "chat_id": None,
             "message_id": None},
        ],
    )  # fmt: skip


def test_room_and_message_ids_become_strings_and_back(url: str, engine: sa.Engine) -> None:
    upgrade(url, BEFORE)
    _seed(engine)
    _seed_rooms(engine)
    columns = {
        "room": ("chat_id", "thread_id"),
        "crisis": ("room_chat_id", "room_thread_id", "brief_message_id"),
        "delivery": ("chat_id", "message_id"),
    }
    before = {name: _select(engine, name, *cols) for name, cols in columns.items()}

    upgrade(url, AFTER)
    assert _select(engine, "room", "channel", "chat_id", "thread_id") == [
        ("telegram", "-1001234567890", "77"),
        ("telegram", "-1009876543210", None),
    ]
    assert _select(
        engine, "crisis", "room_channel", "room_chat_id", "room_thread_id", "brief_message_id"
    ) == [("telegram", "-1001234567890", "77", "901"), (None, None, None, None)]
    assert _select(engine, "delivery", "channel", "chat_id", "message_id") == [
        ("telegram", "7123456789", "12"),
        (None, None, None),
    ]

    # Something another channel stored cannot go back into number columns: it is dropped.
    _insert(
        engine,
        "room",
        [
            {"id": 3, "kind": "pooled_group", "channel": "zalo", "chat_id": "g-abc",
             "thread_id": None, "title": "Zalo pool", "state": "free", "crisis_id": None,
             "created_at": AT},
        ],
    )  # fmt: skip
    downgrade(url, BEFORE)
    assert {name: _select(engine, name, *cols) for name, cols in columns.items()} == before
