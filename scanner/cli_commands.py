"""``crisisdesk scan`` and ``crisisdesk sentiment`` — the command logic; bot/cli.py only wires it.

``register(sub, settings_loader)`` adds the subparsers; each command returns an exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scanner.pipeline import Clock

__all__ = [
    "cmd_scan",
    "cmd_sentiment_eval",
    "cmd_sentiment_score",
    "cmd_sentiment_train",
    "register",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
SCORE_BATCH = 2000


def register(sub: Any, settings_loader: Callable[[argparse.Namespace], Any], clock: Clock) -> None:
    """Add ``scan`` and ``sentiment`` to the ``crisisdesk`` subparsers; ``scan`` runs on
    ``clock`` (the wall clock, passed in by bot/cli.py: the scanner does not import bot/)."""
    scan = sub.add_parser("scan", help="fetch the feeds and store new articles and stories")
    scan.add_argument("--once", action="store_true", required=True, help="run one scan and exit")
    scan.add_argument("--json", action="store_true", help="print the result as JSON")
    scan.set_defaults(func=lambda args: cmd_scan(args, settings_loader(args), clock))

    sentiment = sub.add_parser("sentiment", help="score, train or evaluate the sentiment model")
    actions = sentiment.add_subparsers(dest="sentiment_command", metavar="ACTION")
    score = actions.add_parser(
        "score", help="JSON lines with title/lead on stdin → the same lines with label and score"
    )
    score.add_argument(
        "--scorer", choices=("model", "lexicon"), default="model", help="default: model"
    )
    score.set_defaults(func=cmd_sentiment_score)
    train = actions.add_parser("train", help="retrain the shipped model from the bundled data")
    train.add_argument("--output", type=Path, help="where to write the model (default: package)")
    train.set_defaults(func=cmd_sentiment_train)
    evaluate = actions.add_parser(
        "eval", help="stratified 5-fold CV: macro-F1 and negative recall of model/lexicon/majority"
    )
    evaluate.add_argument("--folds", type=int, default=5)
    evaluate.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="SEED",
        help="seeds of the outer split, figures averaged over them (default: 20240601)",
    )
    evaluate.set_defaults(func=cmd_sentiment_eval)

    def _usage(_args: argparse.Namespace) -> int:
        sentiment.print_help(sys.stderr)
        return EXIT_USAGE

    sentiment.set_defaults(func=_usage)


# --------------------------------------------------------------------------- scan


def cmd_scan(
    args: argparse.Namespace, settings: Any, clock: Clock, *, out: IO[str] | None = None
) -> int:
    """Run one scan against the configured database and print what it found, per topic."""
    from scanner.pipeline import run_scan
    from storage.sync import prepare_database

    out = out or sys.stdout
    db = prepare_database(settings)
    try:
        report = asyncio.run(run_scan(db, settings, clock))
    finally:
        db.dispose()
    if args.json:
        payload = {"summary": report.summary(), "topics": report.by_topic()}
        out.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        return EXIT_OK
    summary = report.summary()
    out.write(
        f"scan: {summary['sources']} sources ({summary['sources_not_modified']} unchanged), "
        f"{summary['new_articles']} new articles, {summary['new_stories']} new stories, "
        f"{len(summary['failing_sources'])} failing, {summary['duration_s']:.2f} s\n"
    )
    for failing in summary["failing_sources"]:
        out.write(f"  ! {failing['name']} <{failing['url']}>: {failing['error']}\n")
    for name, topic in report.by_topic().items():
        out.write(
            f"\n== {name}: {len(topic['articles'])} new articles, {len(topic['stories'])} stories\n"
        )
        for story in topic["stories"]:
            out.write(
                f"  [story {story['id']}] {story['title']} — {story['article_count']} articles, "
                f"{story['outlet_count']} outlets, {story['label']} ({story['sentiment']:+.2f})\n"
            )
        for article in topic["articles"]:
            out.write(
                f"    - {article['outlet']}: {article['title']} "
                f"[{article['label']} {article['sentiment']:+.2f}] {article['url']}\n"
            )
    return EXIT_OK


# --------------------------------------------------------------------------- sentiment


def _parse_line(line: str) -> tuple[dict[str, Any] | None, tuple[str, str] | None, str | None]:
    """(object, (title, lead), None) if scorable, else (object or None, None, error)."""
    text = line.strip()
    if not text:
        return None, None, "empty line"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, None, f"not JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(value, dict):
        return None, None, f"expected a JSON object, got {type(value).__name__}"
    title = value.get("title") or ""
    lead = value.get("lead") or ""
    if not isinstance(title, str) or not isinstance(lead, str):
        return value, None, "title and lead must be strings"
    if not title.strip() and not lead.strip():
        return value, None, "no text: give a non-empty title or lead"
    return value, (title, lead), None


def score_stream(source: IO[str], sink: IO[str], scorer_name: str = "model") -> int:
    """Exactly one output line per input line, in order; returns the number of lines.

    Lines are scored in batches so that the model vectorises thousands of texts per call.
    """
    from scanner.sentiment import LexiconScorer, Scorer, default_scorer

    scorer: Scorer = default_scorer() if scorer_name == "model" else LexiconScorer()
    count = 0
    batch: list[str] = []

    def flush() -> None:
        parsed = [_parse_line(line) for line in batch]
        scores = iter(scorer.score_many([pair for _v, pair, _e in parsed if pair is not None]))
        lines = []
        for (value, pair, error), raw in zip(parsed, batch, strict=True):
            if pair is not None and value is not None:
                result = next(scores)
                value = {**value, "label": result.label, "score": result.score}
            elif value is not None:
                value = {k: v for k, v in value.items() if k not in ("label", "score")}
                value["error"] = error
            else:
                value = {"error": error, "input": raw.rstrip("\r\n")[:200]}
            lines.append(json.dumps(value, ensure_ascii=False))
        sink.write("\n".join(lines) + "\n")
        batch.clear()

    for line in source:
        batch.append(line)
        count += 1
        if len(batch) >= SCORE_BATCH:
            flush()
    if batch:
        flush()
    sink.flush()
    return count


def cmd_sentiment_score(args: argparse.Namespace) -> int:
    stdin = sys.stdin
    try:
        stdin.reconfigure(encoding="utf-8", errors="replace")  # type: ignore[union-attr]
        sys.stdout.reconfigure(encoding="utf-8")  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        pass
    try:
        score_stream(stdin, sys.stdout, getattr(args, "scorer", "model"))
    except OSError as exc:
        print(f"crisisdesk: cannot read input: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_sentiment_train(args: argparse.Namespace) -> int:
    from scanner.sentiment import MODEL_FILE, load_training_data, train_model

    path = args.output or Path(__file__).parent / "data" / MODEL_FILE
    started = time.perf_counter()
    data = load_training_data()
    train_model(path, data)
    print(
        f"crisisdesk: trained on {len(data.labels)} DANeS items in "
        f"{time.perf_counter() - started:.1f} s → {path}"
    )
    return EXIT_OK


def cmd_sentiment_eval(args: argparse.Namespace) -> int:
    from scanner.sentiment import LABELS, RANDOM_STATE, cross_validate

    seeds = args.seeds or [RANDOM_STATE]
    print(
        f"stratified {args.folds}-fold cross-validation on the bundled DANeS training data, "
        f"nested (C chosen inside each outer fold), seed{'s' if len(seeds) > 1 else ''} "
        + " ".join(map(str, seeds))
    )
    print(
        "pooled over the held-out folds"
        + (", mean over seeds" if len(seeds) > 1 else "")
        + "; ± is the standard deviation across "
        + ("all folds of all seeds" if len(seeds) > 1 else "folds")
    )
    print(f"{'scorer':<10} {'macro-F1':>15} {'neg recall':>15}")
    results = cross_validate(folds=args.folds, seeds=seeds)
    for r in results:
        print(
            f"{r.name:<10} {r.macro_f1:>7.3f} ± {r.macro_f1_std:.3f}"
            f" {r.negative_recall:>7.3f} ± {r.negative_recall_std:.3f}"
        )
    print("\nper class, pooled like the above: precision / recall / F1")
    print(f"{'scorer':<10}" + "".join(f" {label:>20}" for label in LABELS))
    for r in results:
        print(
            f"{r.name:<10}"
            + "".join(f" {p:>6.3f} {rec:>6.3f} {f:>6.3f}" for p, rec, f in r.per_class)
        )
    return EXIT_OK
