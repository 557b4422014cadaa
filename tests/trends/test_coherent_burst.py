"""A weak burst whose stories share a rare term alerts; the same volume of unrelated stories
does not (through ``crisisdesk trends replay`` and the real scanner)."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from news_words import SYLLABLES

from scanner.replay import cmd_replay
from scanner.sentiment import LexiconScorer
from scanner.series import BUCKET

START = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)  # Monday 00:00 in Hà Nội
CONFIG = (
    '[[agencies]]\ncode = "A"\nname = "A"\n\n[[topics]]\nagency = "A"\nname = "Lũ"\n'
    "query = '\"lũ quét\"'\n"
)


def _replay(tmp_path: Path, make_settings: Any, shared: str, seed: int = 7) -> list[dict[str, Any]]:
    """Four office days of ~1.5 stories a quarter hour, then at 12:00 on day 5 six stories
    from six outlets whose titles carry ``shared`` (or nothing in common if empty): about
    p = 0.01 for the bucket's volume, notable but no burst at 1e-3 on its own."""
    rng = random.Random(seed)
    lines: list[dict[str, str]] = []

    def add(at: datetime, outlet: str, title: str) -> None:
        lines.append(
            {
                "published_at": at.isoformat(),
                "outlet": outlet,
                "url": f"https://{outlet}.vn/{len(lines)}",
                "title": title,
                "lead": " ".join(rng.sample(SYLLABLES, 12)),
            }
        )

    spike = START + timedelta(days=4, hours=12)
    for b in range(4 * 96 + 12 * 4 + 4):
        at = START + b * BUCKET
        hour = (b // 4) % 24
        rate = 1.5 if 8 <= hour < 18 else 0.1
        background = sum(rng.random() < rate / 4 for _ in range(4))
        for _ in range(0 if at == spike else background):  # the spike's bucket: six, exactly
            add(
                at + timedelta(minutes=rng.uniform(0, 14)),
                f"o{rng.randrange(12)}",
                "Lũ quét " + " ".join(rng.sample(SYLLABLES, 8)),
            )
        if at == spike:
            for i in range(6):
                words = rng.sample(SYLLABLES, 6)
                add(
                    at + timedelta(minutes=1 + i),
                    f"s{i}",
                    f"Lũ quét {' '.join(words[:3])} {shared} {' '.join(words[3:])}",
                )
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    stream = tmp_path / "s.jsonl"
    stream.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert cmd_replay(stream, make_settings(config=str(cfg)), out, err, scorer=LexiconScorer()) == 0
    at_spike = (spike + BUCKET).isoformat()
    return [
        line
        for line in map(json.loads, out.getvalue().splitlines())
        if datetime.fromisoformat(line["at"]) == datetime.fromisoformat(at_spike)
    ]


def test_weak_burst_sharing_a_rare_term_alerts(tmp_path: Path, make_settings: Any) -> None:
    told = _replay(tmp_path, make_settings, "vỡ đập thủy điện")
    assert [t["kind"] for t in told] == ["volume_burst"], told
    assert told[0]["terms"][0] in "vỡ đập thủy điện", told[0]["terms"]  # what it is about


def test_same_volume_of_unrelated_stories_is_silent(tmp_path: Path, make_settings: Any) -> None:
    assert _replay(tmp_path, make_settings, "") == []
