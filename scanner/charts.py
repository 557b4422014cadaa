"""Alert charts: the hours around an alert as a PNG read at a glance on a phone.

What a press officer needs from the picture, in the order the eye finds it: the alert window
(shaded, with its numbers — the same the alert text quotes), each bucket's stories as a bar
whose negative part is red, the level the detector expected and its 80 % band, and the forecast
continuing past "now". 1280×720 px with large type, so it stays legible as Telegram's small
preview. Rendered with matplotlib's Agg backend (no display; safe in ``asyncio.to_thread``). The
words come from the caller (``ChartLabels``), rendered from templates in the reader's language.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import timedelta, tzinfo
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from scanner.trends import ChartData

WIDTH_IN, HEIGHT_IN, DPI = 12.8, 7.2, 100  # 1280×720 px
STORIES, NEGATIVE = "#7f9cc7", "#c0392b"
EXPECTED, WINDOW, FORECAST = "#333333", "#f5b041", "#7a3fb0"


@dataclass(frozen=True)
class ChartLabels:
    """The chart's words; each is the template ``chart_<field>`` in the reader's language."""

    title: str  # the topic
    stories: str  # the y axis
    other: str  # the part of each bar that is not negative
    negative: str  # the negative part of each bar
    baseline: str  # the expected level and its band
    alert_line: str  # the alert window's legend entry, with its numbers
    window_note: str  # the alert window's key numbers, written large beside it
    forecast: str
    now: str

    @classmethod
    def build(cls, render: Callable[[str], str]) -> ChartLabels:
        """Every label from ``render(field name)`` (message templates escape for Telegram's
        HTML; a picture shows the characters themselves)."""
        return cls(**{f.name: html.unescape(render(f.name)) for f in fields(cls)})


def render_chart(data: ChartData, labels: ChartLabels, tz: tzinfo) -> bytes:
    """PNG bytes of ``data``; deterministic for the same input (no timestamps in the file)."""
    figure = _draw(data, labels, tz)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _band(
    axis: Axes,
    edges: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
    color: str,
    alpha: float,
) -> None:
    """A step band between ``low`` and ``high`` over the bars whose edges are ``edges``."""
    axis.stairs(
        high, edges, baseline=low, fill=True, color=color, alpha=alpha, linewidth=0, zorder=0.5
    )


def _level(
    axis: Axes, edges: Sequence[float], values: Sequence[float], color: str, label: str, style: Any
) -> None:
    """A step line (no risers to zero at its ends) over the bars whose edges are ``edges``."""
    axis.stairs(
        values, edges, baseline=None, color=color, linewidth=2.6, linestyle=style, label=label
    )


def _draw(data: ChartData, labels: ChartLabels, tz: tzinfo) -> Figure:
    figure, axis = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained")
    step = data.bucket / timedelta(days=1)  # matplotlib dates are float days
    starts = mdates.date2num(data.bucket_starts)
    ends = mdates.date2num(data.bar_ends)
    rest = [s - n for s, n in zip(data.stories, data.negative, strict=True)]
    top = max([*data.stories, *data.band_high, *data.forecast_high, 1.0])
    if data.window_start is not None and data.window_end is not None:
        w0, w1 = mdates.date2num([data.window_start, data.window_end])
        axis.axvspan(w0, w1, color=WINDOW, alpha=0.22, linewidth=0, label=labels.alert_line)
        if labels.window_note and len(starts):  # beside the window, pointing at it
            left = w0 - starts[0] > 0.3 * (ends[-1] - starts[0])  # room before the window
            axis.text(
                w0 if left else w1,
                top * 1.12,
                f"{labels.window_note} →" if left else f"← {labels.window_note}",
                fontsize=17,
                fontweight="bold",
                color="#8a4b08",
                va="top",
                ha="right" if left else "left",
            )
    if len(starts):
        widths = (ends - starts) * 0.86
        axis.bar(
            starts, data.negative, width=widths, align="edge", color=NEGATIVE, label=labels.negative
        )
        axis.bar(
            starts,
            rest,
            width=widths,
            align="edge",
            bottom=data.negative,
            color=STORIES,
            label=labels.other,
        )
        _band(axis, [*starts, ends[-1]], data.band_low, data.band_high, EXPECTED, 0.12)
        _level(axis, [*starts, ends[-1]], data.expected, EXPECTED, labels.baseline, "solid")
    if data.forecast_starts:
        f_starts = mdates.date2num(data.forecast_starts)
        f_edges = [*f_starts, f_starts[-1] + step]
        _band(axis, f_edges, data.forecast_low, data.forecast_high, FORECAST, 0.18)
        _level(axis, f_edges, data.forecast_expected, FORECAST, labels.forecast, (0, (4, 2)))
        now = f_starts[0]
        axis.axvline(now, color="#777777", linewidth=1.2, linestyle=":")
        axis.text(
            now, top * 1.01, f" {labels.now}", fontsize=15, color="#555555", va="bottom", ha="left"
        )
    axis.set_ylim(0, top * 1.15)
    axis.set_title(labels.title, fontsize=22, loc="left", pad=12, fontweight="bold")
    axis.set_ylabel(labels.stories, fontsize=15)
    axis.tick_params(labelsize=15)
    axis.grid(axis="y", alpha=0.3)
    axis.spines[["top", "right"]].set_visible(False)
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    axis.xaxis_date(tz)
    axis.xaxis.set_major_locator(mdates.AutoDateLocator(tz=tz, minticks=5, maxticks=9))
    axis.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, fontsize=14, frameon=False)
    return figure
