"""A strict local Zalo (Bot Platform and Official Account) for tests and the sandbox."""

from .emulator import DEFAULT_APP_ID, DEFAULT_TOKEN, ZaloEmulator
from .errors import ControlError
from .official_account import oa_user_id
from .state import Call, Group, Person, StoredMessage

__all__ = [
    "DEFAULT_APP_ID",
    "DEFAULT_TOKEN",
    "Call",
    "ControlError",
    "Group",
    "Person",
    "StoredMessage",
    "ZaloEmulator",
    "oa_user_id",
]
