"""The ``notify`` due kind: a templated message to one person at a later time, and
``send_direct``, how every reminder reaches one person.

``notify`` is the general-purpose reminder (task due soon, deadline at 80 %, …): other services
schedule rows with a template name and its context; the person's language is looked up when the
row fires, so a language change in between is honoured.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from bot.channels.base import Buttons, RecipientUnreachable
from bot.services import audit, identity
from bot.services.due import due_handler
from storage.models import Due, User

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


def notify_payload(user_id: int, template: str, **context: Any) -> dict[str, Any]:
    """The payload of a ``notify`` row; context values must be JSON-serialisable."""
    return {"user_id": user_id, "template": template, "context": context}


@due_handler("notify")
async def fire_notify(runtime: Runtime, session: Session, due: Due) -> None:
    user = session.get(User, due.payload["user_id"])
    if user is None or not user.reachable:
        log.info("due %s: nobody to notify", due.id)
        return
    text = runtime.renderer.render(due.payload["template"], user.language, **due.payload["context"])
    await send_direct(runtime, session, user, text)


async def send_direct(
    runtime: Runtime, session: Session, person: User, text: str, buttons: Buttons | None = None
) -> None:
    """A direct message to ``person`` on the notifier's channel; one with no account there is
    skipped (logged), one who blocked the bot is marked unreachable in ``session``, with an
    audit row, so later sends skip them."""
    to = identity.direct_chat(session, person.id, runtime.notifier.channel)
    if to is None:
        log.info("user %s has no %s account: message skipped", person.id, runtime.notifier.channel)
        return
    try:
        await runtime.notifier.send_text(to, text, buttons)
    except RecipientUnreachable as exc:
        person.reachable = False
        audit.record(
            session,
            action="user.unreachable",
            subject=f"user:{person.id}",
            after={"reason": str(exc)},
            at=runtime.clock.now(),
        )
