"""Errors of the Zalo Official Account (OA) client.

The OA Open API answers HTTP 200 even when it fails, with ``{"error": <non-zero>, "message": …}``
in the body; the client checks ``error`` on every answer and raises these.
"""

from __future__ import annotations

from ..errors import AnsweredError

#: "Access token is invalid": Zalo's answer to an expired or rotated-away access token.
ACCESS_TOKEN_INVALID = -216


class OaError(Exception):
    """Anything the OA client could not do."""


class OaApiError(OaError, AnsweredError):
    """An OA Open API answer with a non-zero ``error`` (``where`` is the path, ``text`` Zalo's
    ``message``)."""


class OaAuthorizationError(OaError):
    """Zalo refused our refresh token (expired after ~3 months, revoked, or used elsewhere).

    Only the OA's administrator can mend this, by granting the app access again; retrying
    cannot help.
    """


class OaNotConfigured(OaError):
    """No token row for this app: seed it with the refresh token from the OA's grant."""


class OaTransportError(OaError):
    """The request did not get an answer (network, timeout, not JSON)."""
