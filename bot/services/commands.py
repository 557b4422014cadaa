"""Which commands each role may use: the source of ``/help`` and of Telegram's command menus.

Channel-neutral: this module only says *which* commands a person may use; the words come from the
``help_command`` template and the Telegram handler layer publishes them with ``setMyCommands``.
Later features add their commands with :func:`register_command` at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.services.permissions import ROLE_RANK, Actor
from storage.models import Role


@dataclass(frozen=True)
class Command:
    name: str
    minimum: Role | None  # None: everyone, registered or not


_COMMANDS: dict[str, Command] = {}


def register_command(name: str, minimum: Role | None) -> Command:
    """Declare a command and the least role that may use it (None: everyone)."""
    if not (1 <= len(name) <= 32 and all(c.islower() or c.isdigit() or c == "_" for c in name)):
        raise ValueError(f"command name {name!r} must be 1-32 lowercase letters, digits or _")
    command = Command(name, minimum)
    _COMMANDS[name] = command
    return command


# Everyone (the default scope of the command menu).
for _name in ("start", "help", "me", "cancel"):
    register_command(_name, None)
register_command("invite", Role.SUPERVISOR)
register_command("invites", Role.SUPERVISOR)
register_command("people", Role.SUPERVISOR)
register_command("status", Role.ADMIN)

PUBLIC_COMMANDS = ("start", "help", "me", "cancel")
# Typed in a crisis room by its members; /help lists them for active people (not in the menu of
# the private chat, where they do nothing).
ROOM_COMMANDS = (
    "task",
    "tasks",
    "update",
    "note",
    "timeline",
    "roster",
    "role",
    "convene",
    "set",
    "history",
    "pin",
    "resolve",
)


def commands_for_role(role: Role | None) -> list[str]:
    """Command names a person holding ``role`` may use (None: not active), in menu order."""
    rank = ROLE_RANK[role] if role is not None else -1
    return [
        c.name
        for c in _COMMANDS.values()
        if c.minimum is None or (rank >= 0 and rank >= ROLE_RANK[c.minimum])
    ]


def commands_for(actor: Actor) -> list[str]:
    """Commands ``actor`` may use right now (suspended and pending people: the public ones)."""
    return commands_for_role(actor.role)
