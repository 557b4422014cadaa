"""The alerts' "Draft response" button, Telegram only for now.

It opens (or reuses) the alert's crisis through the neutral alert flow, then starts a holding
statement in the crisis room with ``handlers.drafts.start_in_room``, which still speaks PTB (its
prompt is a ForceReply in a Telegram room). When the drafts flows move onto the conversation
layer this becomes a neutral ``on_press`` flow in ``handlers/alerts.py``.
"""

from __future__ import annotations

from functools import partial

from telegram import Update
from telegram.ext import ContextTypes

from bot.buttons import int_id
from bot.channels.telegram.conversation import turn_of
from bot.services.permissions import Actor
from handlers.alerts import DRAFT, crisis_for_alert, refusing
from handlers.buttons import on_button
from handlers.conversation.turn import Turn
from handlers.drafts import start_in_room


async def _start(
    turn: Turn, ident: str, *, context: ContextTypes.DEFAULT_TYPE, user_id: int
) -> None:
    await turn.replies.notice(turn.render("alert_starting_draft"))
    crisis_id = await crisis_for_alert(turn, int_id(ident))
    if crisis_id is None:
        return
    problem = await start_in_room(context, crisis_id, user_id, "holding", turn.lang)
    await turn.replies.say(problem or turn.render("alert_draft_started", crisis_id=crisis_id))


@on_button(DRAFT.name)
async def draft_response(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    """Open or reuse the alert's crisis, then start a holding statement in its room."""
    query = update.callback_query
    assert query is not None and query.from_user is not None
    flow = refusing(partial(_start, context=context, user_id=query.from_user.id))
    await flow(turn_of(update, context, actor), ident)
