"""What every incoming event passes before any flow: the sender's @username is kept fresh, and a
suspended person is stopped (written once for every channel; each adapter calls ``admit``, e.g.
``bot.channels.telegram.guards``).

Presses are not stopped here: the dispatcher refuses a suspended person's press itself, with the
press's own audit row (``handlers.conversation.dispatch``).
"""

from __future__ import annotations

from bot.runtime import Runtime
from bot.services import registration as reg
from bot.services.permissions import Actor
from handlers.conversation.degrade import Replies
from handlers.conversation.events import Incoming
from handlers.conversation.surface import Surface
from handlers.conversation.turn import Turn


async def admit(
    runtime: Runtime, event: Incoming, surface: Surface, new_message: bool = True
) -> Actor | None:
    """The sender, if ``event`` goes on to the flows (which take this Actor rather than read the
    person again); None if it stops here. A suspended person's message stops: they are told so
    in their private chat or when they typed a command (audited as refused), and their group
    chatter is dropped silently. ``new_message`` False: an update that is not a message just
    sent (an edit, a change of membership), which is never stopped here."""
    actor = reg.admit_sender(runtime, event.who, event.username)
    if not actor.suspended or event.press is not None or not new_message:
        return actor
    turn = Turn(runtime, event, actor, Replies(surface, event.where))
    typed_command = event.text.startswith("/")
    if typed_command:
        turn.audit_refusal("suspended")
    if event.private or typed_command:
        await turn.say("suspended")
    return None
