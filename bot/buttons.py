"""Inline-button scheme: ``action:id`` callback data and the registry of actions.

Telegram gives a button at most 64 bytes of callback data and lets anyone in a chat press it, so
the data carries only an action name and a row id, and every press is re-checked: the action must
be registered, the id well-formed, and the action's permission rule must pass for the presser
against rows reloaded from the database. This module is channel-neutral (no ``telegram`` import);
the Telegram dispatcher lives in ``handlers/buttons.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from bot.services.permissions import Actor

MAX_CALLBACK_BYTES = 64
_ACTION = re.compile(r"^[a-z][a-z0-9_.]{0,31}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,28}$")


class ForgedButton(ValueError):
    """Callback data that no button of ours could have carried."""


@dataclass(frozen=True)
class Button:
    """A button as services describe it: a label and the ``action:id`` it triggers."""

    label: str
    action: str
    id: str | int = 0

    @property
    def data(self) -> str:
        return encode(self.action, self.id)


Keyboard = list[list[Button]]

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
    if not _ACTION.match(name):
        raise ValueError(f"action name {name!r} must match {_ACTION.pattern}")
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


def encode(action: str, ident: str | int = 0) -> str:
    ident_text = str(ident)
    if not _ACTION.match(action) or not _ID.match(ident_text):
        raise ValueError(f"bad button action or id: {action!r}, {ident_text!r}")
    data = f"{action}:{ident_text}"
    if len(data.encode()) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data over {MAX_CALLBACK_BYTES} bytes: {data!r}")
    return data


def decode(data: str | None) -> tuple[ButtonAction, str]:
    """Parse callback data into the registered action and the id; raise ForgedButton otherwise."""
    if not data or len(data.encode()) > MAX_CALLBACK_BYTES or data.count(":") != 1:
        raise ForgedButton("malformed callback data")
    name, ident = data.split(":")
    if not _ACTION.match(name) or not _ID.match(ident):
        raise ForgedButton("malformed callback data")
    return lookup(name), ident


def int_id(ident: str) -> int:
    """An id that must be a positive integer (row ids); forged otherwise."""
    if not ident.isdigit() or len(ident) > 18:
        raise ForgedButton(f"bad id {ident!r}")
    return int(ident)
