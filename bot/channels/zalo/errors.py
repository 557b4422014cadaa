"""Typed errors of the Zalo Bot Platform client.

The Bot Platform answers ``{"ok": false, "error_code": N, "description": "…"}``; the client turns
each answer into one of these so that the neutral layer can decide between "retry later", "this
person cannot be reached" and "our request was wrong" without reading descriptions.
"""

from __future__ import annotations

from bot.channels.base import DeliveryError, RecipientUnreachable, Rejected


class AnsweredError(Exception):
    """A Zalo API answered with a failure: ``where`` it was asked (a Bot Platform method, an OA
    path), Zalo's ``code`` and its ``text``. Both Zalo clients raise it (``ZaloApiError``,
    ``oa.errors.OaApiError``), so the notifier and the OA rooms read a refusal one way."""

    def __init__(self, where: str, code: int, text: str) -> None:
        super().__init__(f"{where}: {text} (error {code})")
        self.where = where
        self.code = code
        self.text = text

    def as_refusal(self) -> DeliveryError:
        """The refusal as services read it: Zalo names a chat or person it cannot find "not
        found" (that person cannot be reached); anything else it refused was our request."""
        if "not found" in self.text.lower():
            return RecipientUnreachable(str(self))
        return Rejected(str(self))


class ZaloError(Exception):
    """Anything the Zalo client could not do."""


class ZaloApiError(ZaloError, AnsweredError):
    """Zalo answered ``ok: false``. ``code`` is its ``error_code`` (or the HTTP status)."""


class ZaloUnauthorized(ZaloApiError):
    """The bot token was refused: a configuration problem, never worth retrying."""


class ZaloBadRequest(ZaloApiError):
    """Zalo refused the request itself (unknown chat, text too long, bad parameter)."""


class ZaloServerError(ZaloApiError):
    """Zalo failed on its side (5xx); retrying later may help."""


class ZaloTimeout(ZaloError):
    """No answer in time. For a send the message may or may not have been delivered."""


class ZaloNetworkError(ZaloError):
    """The request did not reach Zalo (DNS, refused connection, TLS)."""


class ZaloBadResponse(ZaloError):
    """Zalo answered something that is not its JSON envelope."""


class MessageTooLong(ZaloError, ValueError):
    """Text over the 2,000-character limit where splitting was not asked for."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"text is {length} characters; Zalo accepts at most {limit} "
            "(split it with split_text or send it with send_long_message)"
        )
        self.length = length
        self.limit = limit
