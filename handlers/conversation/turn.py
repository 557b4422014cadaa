"""What a flow holds while it answers one event: the runtime, the event, who sent it (as the
people service sees them), their language and the replies; plus the audited refusal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.runtime import Runtime
from bot.services import audit
from bot.services.permissions import Actor, has_role
from bot.templating import normalise_language
from handlers.conversation.degrade import Replies
from handlers.conversation.events import Incoming
from storage.models import Role

# Error codes that mean "you may not", as opposed to "that did not work": each is audited.
REFUSAL_CODES = frozenset(
    {
        "not_allowed",
        "not_lead",
        "not_member_self",
        "not_registered",
        "draft_not_allowed",
        "approval_self",
        "suspended",
    }
)


def language(actor: Actor, hint: str | None) -> str:
    """A registered person's chosen language, else their client's."""
    if actor.user is not None:
        return actor.user.language
    return normalise_language(hint)


@dataclass
class Turn:
    runtime: Runtime
    event: Incoming
    actor: Actor
    replies: Replies

    @property
    def lang(self) -> str:
        return language(self.actor, self.event.language)

    def render(self, template: str, **context: Any) -> str:
        return self.runtime.renderer.render(template, self.lang, **context)

    async def say(self, template: str, **context: Any) -> None:
        await self.replies.say(self.render(template, **context))

    def audit_refusal(self, reason: str, action: str = "command.refused") -> None:
        """Record that this event was refused, and why (``bot.services.audit.refused``)."""
        audit.refused(self.runtime, self.actor, action, refusal_subject(self.event), reason)

    def audited(self, code: str, text: str) -> str:
        """``text`` (the message for error ``code``), after auditing it if ``code`` is a
        refusal (``REFUSAL_CODES``)."""
        if code in REFUSAL_CODES:
            self.audit_refusal(code, "button.refused" if self.event.press else "command.refused")
        return text

    async def gate(self, minimum: Role) -> bool:
        """Whether the sender's role allows a command; if not they are told, and it is audited
        (checked on the server, whatever menu they were shown)."""
        if has_role(self.actor, minimum):
            return True
        self.audit_refusal(f"needs {minimum.value}")
        await self.say("not_allowed")
        return False


def refusal_subject(event: Incoming) -> str:
    """What a refusal was about: the button data, the command word, or "message"."""
    if event.press is not None:
        return f"button:{event.press[:100]}"
    return f"command:/{event.command[:39]}" if event.command else "message"
