"""Errors the Zalo emulator answers with.

Bot Platform methods raise :class:`BotApiError`, answered as
``{"ok": false, "error_code": N, "description": …}`` with HTTP status N. The OA Open API answers
every error with HTTP 200 and ``{"error": <negative code>, "message": …}``: :class:`OaFailure`.
Misuse of the control API (an unknown person, a group that does not exist) is a test bug:
:class:`ControlError`.
"""

from __future__ import annotations

from typing import Any


class Refusal(Exception):
    """A failure the emulator answers with a code and a text: both Zalo APIs report one so, each
    in an envelope of its own (``payload``)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text

    def payload(self) -> dict[str, Any]:
        raise NotImplementedError


class BotApiError(Refusal):
    def payload(self) -> dict[str, Any]:
        return {"ok": False, "error_code": self.code, "description": self.text}


class OaFailure(Refusal):
    def payload(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.text}


class ControlError(ValueError):
    """The test asked the emulator for something impossible on Zalo."""
