"""What a person hears when no flow took what they sent: a pointer onwards, never silence.

Every adapter asks here last (Telegram's private chats, Zalo): text that belongs to a flow
(registration, a draft's question) was taken before; what is left was typed outside any flow.
"""

from __future__ import annotations

from bot.runtime import Runtime
from bot.services import people
from handlers.conversation.events import Incoming
from handlers.conversation.turn import language


def pointer(runtime: Runtime, event: Incoming, command: bool) -> str:
    """The answer to an unknown ``command``, or to free text: what the bot can do for this
    person, by where their registration stands."""
    actor = people.actor_of(runtime, event.who)
    lang = language(actor, event.language)
    if command:
        return runtime.renderer.render("help_unknown_command", lang)
    status = "active" if actor.active else (actor.user.status if actor.user else "new")
    return runtime.renderer.render("free_text", lang, status=status)
