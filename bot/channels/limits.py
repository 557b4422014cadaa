"""How much text one message may hold on each channel, as its adapter declares it.

Services split a long text (a statement of several pages goes to a room in numbered parts) to fit
the channel of the notifier they hold, without naming the channel: each adapter declares its
limit where the app is wired (``bot.wiring``), as it registers its ``RoomAdmin``.
"""

from __future__ import annotations

from bot.channels.refs import ANY_CHANNEL

_MAX_TEXT: dict[str, int] = {}


def declare_max_text(channel: str, characters: int) -> None:
    """``channel`` accepts at most ``characters`` of text in one message."""
    _MAX_TEXT[channel] = characters


def channels() -> list[str]:
    """The channels whose adapters are wired (each declared its limit), in name order."""
    return sorted(_MAX_TEXT)


def max_text(channel: str) -> int:
    """The most text one message on ``channel`` may hold, in characters as the channel counts
    (on ``ANY_CHANNEL``, a router's: the smallest limit, which fits wherever the text goes)."""
    if channel == ANY_CHANNEL and _MAX_TEXT:
        return min(_MAX_TEXT.values())
    try:
        return _MAX_TEXT[channel]
    except KeyError:
        raise LookupError(
            f"no text limit declared for channel {channel!r}; declare it where the app is "
            "wired (bot.wiring.wire)"
        ) from None
