"""Errors the Zalo emulator answers with.

Bot Platform methods raise :class:`BotApiError`, answered as
``{"ok": false, "error_code": N, "description": …}`` with HTTP status N. The OA Open API answers
every error with HTTP 200 and ``{"error": <negative code>, "message": …}``: :class:`OaFailure`.
Misuse of the control API (an unknown person, a group that does not exist) is a test bug:
:class:`ControlError`.
"""

from __future__ import annotations

from typing import Any


class BotApiError(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description

    def payload(self) -> dict[str, Any]:
        return {"ok": False, "error_code": self.code, "description": self.description}


class OaFailure(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def payload(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message}


class ControlError(ValueError):
    """The test asked the emulator for something impossible on Zalo."""
