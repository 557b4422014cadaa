"""Zalo Official Account: OAuth tokens, group chats (GMF) and signed webhook events."""

from .client import OAUTH_URL, OPENAPI_URL, OaGroup, ZaloOaClient
from .errors import (
    ACCESS_TOKEN_INVALID,
    OaApiError,
    OaAuthorizationError,
    OaError,
    OaNotConfigured,
    OaTransportError,
)
from .events import (
    SIGNATURE_HEADER,
    BadSignature,
    event_signature,
    group_of,
    oa_event_handler,
    verify_event,
)
from .tokens import OaGrant, OaTokens, OaTokenStore

__all__ = [
    "ACCESS_TOKEN_INVALID",
    "OAUTH_URL",
    "OPENAPI_URL",
    "SIGNATURE_HEADER",
    "BadSignature",
    "OaApiError",
    "OaAuthorizationError",
    "OaError",
    "OaGrant",
    "OaGroup",
    "OaNotConfigured",
    "OaTokenStore",
    "OaTokens",
    "OaTransportError",
    "ZaloOaClient",
    "event_signature",
    "group_of",
    "oa_event_handler",
    "verify_event",
]
