"""Errors the emulator answers with, shaped exactly like Telegram's.

Bot API methods raise :class:`ApiError`; the server turns it into
``{"ok": false, "error_code": ..., "description": ..., "parameters": ...}``. Control-API misuse
(e.g. a user posting in a group they are not in) raises :class:`ControlError`, which is a test
bug rather than a bot bug, so it is kept separate.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A Bot API error response: HTTP status, Telegram's description and optional parameters."""

    def __init__(self, status: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        """The JSON body Telegram sends for this error."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(detail: str) -> ApiError:
    """400 with Telegram's ``Bad Request:`` prefix."""
    return ApiError(400, f"Bad Request: {detail}")


def forbidden(detail: str) -> ApiError:
    """403 with Telegram's ``Forbidden:`` prefix."""
    return ApiError(403, f"Forbidden: {detail}")


class ControlError(ValueError):
    """The test (or web page) asked the emulator for something impossible in Telegram."""
