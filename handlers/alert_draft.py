"""The alerts' "Draft response" button; written once for every channel
(``handlers.conversation``); typed ``/soan <alert id>`` where there are no buttons.

It opens (or reuses) the alert's crisis through the alert flow, then starts a holding statement
in the crisis room (``handlers.drafts.start_in_room``). It lives apart from ``handlers.alerts``
because it needs the drafts flows, which need nothing of the alerts.
"""

from __future__ import annotations

from bot.buttons import int_id
from handlers.alerts import DRAFT, crisis_for_alert, refusing
from handlers.conversation.dispatch import on_press
from handlers.conversation.turn import Turn
from handlers.drafts import start_in_room


@on_press(DRAFT, command="soan")
@refusing
async def draft_response(turn: Turn, ident: str) -> None:
    """Open or reuse the alert's crisis, then start a holding statement in its room."""
    await turn.replies.notice(turn.render("alert_starting_draft"))
    crisis_id = await crisis_for_alert(turn, int_id(ident))
    if crisis_id is None:
        return
    problem = await start_in_room(turn, crisis_id, "holding")
    await turn.replies.say(problem or turn.render("alert_draft_started", crisis_id=crisis_id))
