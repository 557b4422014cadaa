"""Alert charts: the last 48 hours of a topic as a PNG a phone shows well.

Stories per bucket (bars), the seasonal baseline and the alert line, the negative share on a
second axis, and the forecast with its 80 % band. Rendered with matplotlib's Agg backend (no
display, thread-safe enough to run in ``asyncio.to_thread``). The words on the chart come from the
caller (``ChartLabels``), rendered from templates in the reader's language.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import tzinfo

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from scanner.trends import ChartData

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.2, 110  # ≈ 880×460 px: sharp on a phone, small to send


@dataclass(frozen=True)
class ChartLabels:
    title: str
    stories: str
    baseline: str
    alert_line: str
    negative: str
    forecast: str


def render_chart(data: ChartData, labels: ChartLabels, tz: tzinfo) -> bytes:
    """PNG bytes of ``data``; deterministic for the same input (no timestamps in the file)."""
    figure = _draw(data, labels, tz)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _draw(data: ChartData, labels: ChartLabels, tz: tzinfo) -> Figure:
    figure, axis = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained")
    starts = mdates.date2num(data.bucket_starts)  # matplotlib's float days, UTC-based
    width = float(starts[1] - starts[0]) * 0.85 if len(starts) > 1 else 0.01
    if len(starts):
        axis.bar(
            starts, data.stories, width=width, align="edge", color="#4a78b5", label=labels.stories
        )
        axis.plot(starts, data.baseline, color="#555555", linewidth=1.4, label=labels.baseline)
        axis.step(
            starts,
            data.baseline_high,
            where="post",
            color="#d08c1f",
            linewidth=1.0,
            linestyle="--",
            label=labels.alert_line,
        )
    fc = data.forecast
    if data.forecast_starts and fc.per_bucket:
        f_starts = mdates.date2num(data.forecast_starts[: len(fc.per_bucket)])
        expected = list(fc.per_bucket)
        total = sum(expected) or 1.0
        low = [v * fc.low / total for v in expected]
        high = [v * fc.high / total for v in expected]
        axis.plot(f_starts, expected, color="#7a3fb0", linewidth=1.6, label=labels.forecast)
        axis.fill_between(f_starts, low, high, color="#7a3fb0", alpha=0.18, linewidth=0)
    axis.set_ylim(bottom=0)
    axis.set_title(labels.title, fontsize=12, loc="left")
    axis.grid(axis="y", alpha=0.3)
    axis.xaxis_date(tz)
    axis.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M\n%d/%m", tz=tz))
    share = axis.twinx()
    shares = [n / s if s else 0.0 for n, s in zip(data.negative, data.stories, strict=True)]
    if len(starts):
        share.plot(starts, shares, color="#c0392b", linewidth=1.2, alpha=0.9, label=labels.negative)
    share.set_ylim(0, 1)
    share.yaxis.set_major_formatter(lambda value, _pos: f"{value:.0%}")
    handles, names = axis.get_legend_handles_labels()
    more, more_names = share.get_legend_handles_labels()
    axis.legend(handles + more, names + more_names, loc="upper left", fontsize=8, framealpha=0.8)
    return figure
