"""Admin commands: ``/status``, the health of the desk at a glance, with a Refresh button;
written once for every channel (``handlers.conversation``).

The Refresh button is the reference example of the button scheme: only admins may press it, and
the rule is evaluated on the server for every press (on a channel without buttons it is a
numbered choice, and the refreshed status comes as a new message).
"""

from __future__ import annotations

from bot.buttons import register
from bot.channels.base import Button, Buttons
from bot.services.permissions import Role, is_admin
from bot.services.status import StatusSummary, current_status, refreshed_status
from handlers.conversation.dispatch import on_command, on_press
from handlers.conversation.turn import Turn

REFRESH = register("sys.status", lambda _s, actor, _id: is_admin(actor), "refresh /status")


def _status(turn: Turn, summary: StatusSummary) -> tuple[str, Buttons]:
    return turn.render("status", s=summary), [[Button(turn.render("button_refresh"), REFRESH.name)]]


@on_command("status", Role.ADMIN)
async def status_command(turn: Turn) -> None:
    await turn.replies.say(*_status(turn, current_status(turn.runtime)))


@on_press(REFRESH)
async def refresh_status(turn: Turn, _ident: str) -> None:
    """The status as it is now, in place of the pressed one (where the channel edits)."""
    await turn.replies.notice()
    await turn.replies.replace(turn.event.message, *_status(turn, refreshed_status(turn.runtime)))
