"""Inline-button scheme: ``action:id`` callback data and the registry of actions.

Telegram gives a button at most 64 bytes of callback data and lets anyone in a chat press it, so
the data carries only an action name and a row id, and every press is re-checked: the action must
be registered, the id well-formed, and the action's permission rule must pass for the presser
against rows reloaded from the database. This module is channel-neutral (no ``telegram`` import);
the conversation layer's dispatcher (``handlers.conversation.dispatch``) checks every press.
``Button`` itself and ``encode`` are in ``bot.channels.base``, below the services, so a channel
need not know the permission rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from bot.channels.base import ACTION_PATTERN, ID_PATTERN, MAX_CALLBACK_BYTES
from bot.services.permissions import Actor


class ForgedButton(ValueError):
    """Callback data that no button of ours could have carried."""


# A rule gets a session, the presser and the id; it reloads what it needs and says yes or no.
Rule = Callable[[Session, Actor, str], bool]


@dataclass(frozen=True)
class ButtonAction:
    name: str
    rule: Rule
    description: str


_REGISTRY: dict[str, ButtonAction] = {}


def register(name: str, rule: Rule, description: str) -> ButtonAction:
    """Declare an action once, at import time of the module that handles it."""
    if not ACTION_PATTERN.match(name):
        raise ValueError(f"action name {name!r} must match {ACTION_PATTERN.pattern}")
    existing = _REGISTRY.get(name)
    if existing is not None and existing.rule is not rule:
        raise ValueError(f"button action {name!r} is registered twice")
    action = ButtonAction(name, rule, description)
    _REGISTRY[name] = action
    return action


def lookup(name: str) -> ButtonAction:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ForgedButton(f"unknown action {name!r}") from None


def decode(data: str | None) -> tuple[ButtonAction, str]:
    """Parse callback data into the registered action and the id; raise ForgedButton otherwise."""
    if not data or len(data.encode()) > MAX_CALLBACK_BYTES or data.count(":") != 1:
        raise ForgedButton("malformed callback data")
    name, ident = data.split(":")
    if not ACTION_PATTERN.match(name) or not ID_PATTERN.match(ident):
        raise ForgedButton("malformed callback data")
    return lookup(name), ident


def int_id(ident: str) -> int:
    """An id that must be a positive integer (row ids); forged otherwise."""
    if not ident.isdigit() or len(ident) > 18:
        raise ForgedButton(f"bad id {ident!r}")
    return int(ident)


def id_rule(check: Callable[[Session, Actor, int], bool]) -> Rule:
    """The rule of a button that carries one row id: ``check`` on that id, which ``int_id``
    parses first, so that a malformed id is refused as forged rather than as a lack of right."""

    def rule(session: Session, actor: Actor, ident: str) -> bool:
        return check(session, actor, int_id(ident))

    return rule
