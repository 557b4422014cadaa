"""TOML sync: idempotent, TOML-owned rows follow the file, chat-owned rows are never touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import select

from storage.db import Database
from storage.models import Agency, Owner, Source, Topic
from storage.sync import sync_config

TOML = """
[[agencies]]
code = "BYT"
name = "Bộ Y tế"

[[topics]]
agency = "BYT"
name = "Vắc-xin"
query = '"vắc-xin" OR vaccine'

[[topics]]
agency = "BYT"
name = "Ngộ độc"
query = '"ngộ độc"'

[[sources]]
name = "Sức khỏe"
outlet = "VnExpress"
url = "https://example.vn/rss/suc-khoe.rss"
"""


def settings_from(tmp_path: Path, make_settings: Any, text: str) -> Any:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return make_settings({"CRISISDESK_CONFIG": str(path)})


def test_sync_is_idempotent(db: Database, tmp_path: Path, make_settings: Any) -> None:
    settings = settings_from(tmp_path, make_settings, TOML)
    with db.session() as s:
        first = sync_config(s, settings)
    with db.session() as s:
        second = sync_config(s, settings)
    assert first.created == {"agency": 1, "topic": 2, "source": 1}
    assert not second.changed
    with db.session() as s:
        assert len(s.exec(select(Topic)).all()) == 2
        assert all(t.owner == Owner.TOML for t in s.exec(select(Topic)))


def test_toml_changes_update_and_deactivate_only_toml_rows(
    db: Database, tmp_path: Path, make_settings: Any
) -> None:
    with db.session() as s:
        sync_config(s, settings_from(tmp_path, make_settings, TOML))
    with db.session() as s:
        agency = s.exec(select(Agency)).one()
        # A topic and a source added in chat, one of them colliding with a TOML name later.
        s.add(Topic(agency_id=agency.id, name="Sữa", query="sữa", owner=Owner.CHAT))
        s.add(
            Source(name="Chat feed", outlet="Tuổi Trẻ", url="https://tt.vn/rss", owner=Owner.CHAT)
        )
    changed = (
        TOML.replace("'\"ngộ độc\"'", "'\"ngộ độc thực phẩm\"'").replace(
            '[[topics]]\nagency = "BYT"\nname = "Vắc-xin"\nquery = \'"vắc-xin" OR vaccine\'\n', ""
        )
        + '\n[[topics]]\nagency = "BYT"\nname = "Sữa"\nquery = "sữa bột"\n'
    )
    with db.session() as s:
        report = sync_config(s, settings_from(tmp_path, make_settings, changed))
    assert report.updated["topic"] == 1
    assert report.deactivated["topic"] == 1
    assert report.conflicts == ["topic BYT/Sữa"]
    with db.session() as s:
        topics = {t.name: t for t in s.exec(select(Topic))}
    assert topics["Ngộ độc"].query == '"ngộ độc thực phẩm"'
    assert topics["Vắc-xin"].active is False
    assert topics["Sữa"].owner == Owner.CHAT and topics["Sữa"].query == "sữa"
    with db.session() as s:
        sources = {src.url: src for src in s.exec(select(Source))}
    assert sources["https://tt.vn/rss"].active is True  # chat-owned: untouched


def test_removed_source_is_deactivated_then_revived(
    db: Database, tmp_path: Path, make_settings: Any
) -> None:
    without = TOML.split("[[sources]]")[0]
    with db.session() as s:
        sync_config(s, settings_from(tmp_path, make_settings, TOML))
    with db.session() as s:
        assert (
            sync_config(s, settings_from(tmp_path, make_settings, without)).deactivated["source"]
            == 1
        )
    with db.session() as s:
        sync_config(s, settings_from(tmp_path, make_settings, TOML))
        assert s.exec(select(Source)).one().active is True
