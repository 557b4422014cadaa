"""Rebuild ``newsday.jsonl`` from the DANeS headlines and the written crisis items.

Run from the repository root::

    python bot/sandbox/data/make_newsday.py /path/to/danes-sentiment-train.jsonl

Deterministic (fixed seed), so the bundled file only changes when this script does.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).parent
HISTORY_DAYS = 14

# Fictional local outlets (the sandbox's feed server serves one RSS 2.0 feed per outlet).
OUTLET_BY_TOPIC = [
    ({"Kinh tế", "Chứng khoán", "Bất động sản"}, "kinhte"),
    ({"Sức khoẻ", "Covid-19"}, "yte"),
    ({"Xã hội", "Pháp luật", "Chính trị", "Giáo dục", "Giao thông"}, "thoisu"),
    ({"Đời sống", "Giải trí", "Hóng biến", "Phim ảnh", "Du lịch", "Văn hoá"}, "doisong"),
]

# Minutes after local midnight, weighted like a newsroom's day: morning and afternoon peaks.
HOURS = [
    0.2,
    0.1,
    0.1,
    0.1,
    0.3,
    1.0,
    2.5,
    4.0,
    4.5,
    4.0,
    3.5,
    3.0,
    2.0,
    2.5,
    3.5,
    3.5,
    3.0,
    2.5,
    2.0,
    2.5,
    3.0,
    2.5,
    1.5,
    0.6,
]


def outlet_for(topics: list[str], rng: random.Random) -> str:
    for names, outlet in OUTLET_BY_TOPIC:
        if names & set(topics) and rng.random() < 0.85:
            return outlet
    return "tinnhanh"


def minute_of_day(rng: random.Random) -> int:
    hour = rng.choices(range(24), weights=HOURS)[0]
    return hour * 60 + rng.randrange(60)


def main(danes_path: str) -> None:
    rng = random.Random(20261102)
    rows = [json.loads(line) for line in Path(danes_path).read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if r["title"].strip()]
    rng.shuffle(rows)
    per_day = len(rows) // (HISTORY_DAYS + 1)
    out = []
    for index, row in enumerate(rows):
        day = min(index // per_day, HISTORY_DAYS) - HISTORY_DAYS  # -14 … 0
        minute = minute_of_day(rng)
        out.append(
            {
                "id": f"danes-{row['id']}",
                "kind": "danes",
                "outlet": outlet_for(row["topics"], rng),
                "minute": day * 1440 + minute,
                "title": row["title"].strip(),
                "lead": row["lead"].strip(),
                "url": row["url"],
                "sentiment": row["sentiment"],
            }
        )
    written = [
        json.loads(line)
        for line in (HERE / "crisis_written.jsonl").read_text("utf-8").splitlines()
        if line.strip()
    ]
    for item in written:
        h, m = (int(x) for x in item.pop("time").split(":"))
        item["minute"] = h * 60 + m
        item["kind"] = "written"
        out.append(item)
    out.sort(key=lambda item: (item["minute"], item["id"]))
    with (HERE / "newsday.jsonl").open("w", encoding="utf-8") as fh:
        for item in out:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(f"{len(out)} items ({len(written)} written)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/danes-sentiment-train.jsonl")
