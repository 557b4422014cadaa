"""A strict local Telegram Bot API emulator for end-to-end tests and the sandbox.

See docs/emulator.md for the HTTP routes, the control API and the exact limits.
"""

from .emulator import DEFAULT_TOKEN, TelegramEmulator
from .errors import ApiError, ControlError
from .server import Call
from .state import Chat, InviteLink, StoredMessage, Topic, User

__all__ = [
    "DEFAULT_TOKEN",
    "ApiError",
    "Call",
    "Chat",
    "ControlError",
    "InviteLink",
    "StoredMessage",
    "TelegramEmulator",
    "Topic",
    "User",
]
