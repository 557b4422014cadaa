"""Which commands each role may use: the source of ``/help`` and of the command menus.

Channel-neutral: this module says *which* commands a person may use; the words come from the
``help_command`` template, and a channel with command menus (``bot.channels.base.CommandMenus``,
implemented by its adapter) shows them. Later features add their commands with
:func:`register_command` at import time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.channels.base import CommandMenus, DeliveryError
from bot.channels.refs import ChatRef, PersonRef
from bot.services import identity
from bot.services.permissions import ROLE_RANK, Actor
from storage.models import Role, User, UserStatus

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


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


def _menu(runtime: Runtime, lang: str, names: Sequence[str]) -> list[tuple[str, str]]:
    return [(n, runtime.renderer.render("help_command", lang, key=n)) for n in names]


async def publish_person_commands(runtime: Runtime, user: User) -> None:
    """The command menu of one person's private chat: their role's commands, in their language.

    Suspended, pending and rejected people fall back to the default (public) menu. Every
    account of theirs that this process serves gets it (a person linked on two messengers has
    one role on both); a channel without command menus is left alone; a refusal is logged,
    never raised (a menu is a help).
    """
    if not isinstance(runtime.notifier, CommandMenus) or user.id is None:
        return
    with runtime.db.session() as session:
        accounts = identity.accounts_of(session, user.id, runtime.notifier.channel)
    for account in accounts:
        await _publish_menu(runtime, account, user)


async def _publish_menu(runtime: Runtime, account: PersonRef, user: User) -> None:
    menus = runtime.notifier
    assert isinstance(menus, CommandMenus)
    chat = ChatRef(account.channel, account.external_id)
    admin = identity.is_global_admin(runtime.settings, account)
    try:
        if admin or user.status == UserStatus.ACTIVE:
            role = Role.ADMIN if admin else Role(user.role)
            names = commands_for_role(role)
            await menus.set_chat_commands(_menu(runtime, user.language, names), chat)
        else:
            await menus.clear_commands(chat)
    except DeliveryError as exc:
        log.warning("could not set the command menu of %s: %s", account, exc)


async def publish_default_commands(runtime: Runtime) -> None:
    """Default menus (Vietnamese default, English) and the global admins' own menus (at start)."""
    menus = runtime.notifier
    if not isinstance(menus, CommandMenus):
        return
    public = list(PUBLIC_COMMANDS)
    try:
        await menus.set_default_commands(_menu(runtime, "vi", public))
        await menus.set_default_commands(_menu(runtime, "en", public), language="en")
    except DeliveryError as exc:
        log.warning("could not set the default command menus: %s", exc)
    admins = identity.global_admins(runtime.settings, runtime.notifier.channel)
    with runtime.db.session() as session:
        rows = {account: identity.person_for(session, account) for account in admins}
    for account, row in rows.items():
        person = row or User(status=UserStatus.ACTIVE, role=Role.ADMIN)
        await _publish_menu(runtime, account, person)
