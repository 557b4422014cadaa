"""The Zalo Bot Platform channel: our own aiohttp client, webhook receiver and chart links.

The client, receiver and links below import neither python-telegram-bot nor the services;
``notifier`` and ``conversation`` plug Zalo into the conversation layer and ``app`` runs
CrisisDesk on it (import those modules directly). ``oa`` holds the optional Official Account
group rooms.
"""

from .bot_api import (
    OFFICIAL_API_URL,
    ZaloBotClient,
    ZaloBotInfo,
    ZaloSent,
    ZaloWebhookInfo,
    check_webhook_url,
    poll_updates,
)
from .chart_links import ChartLinks, chart_route
from .errors import (
    MessageTooLong,
    ZaloApiError,
    ZaloBadRequest,
    ZaloBadResponse,
    ZaloError,
    ZaloNetworkError,
    ZaloServerError,
    ZaloTimeout,
    ZaloUnauthorized,
)
from .text import TEXT_LIMIT, check_text, split_text
from .updates import UpdateFormatError, ZaloChat, ZaloMessage, ZaloUpdate, ZaloUser, parse_update
from .webhook import SECRET_HEADER, add_webhook_route, webhook_handler

__all__ = [
    "OFFICIAL_API_URL",
    "SECRET_HEADER",
    "TEXT_LIMIT",
    "ChartLinks",
    "MessageTooLong",
    "UpdateFormatError",
    "ZaloApiError",
    "ZaloBadRequest",
    "ZaloBadResponse",
    "ZaloBotClient",
    "ZaloBotInfo",
    "ZaloChat",
    "ZaloError",
    "ZaloMessage",
    "ZaloNetworkError",
    "ZaloSent",
    "ZaloServerError",
    "ZaloTimeout",
    "ZaloUnauthorized",
    "ZaloUpdate",
    "ZaloUser",
    "ZaloWebhookInfo",
    "add_webhook_route",
    "chart_route",
    "check_text",
    "check_webhook_url",
    "parse_update",
    "poll_updates",
    "split_text",
    "webhook_handler",
]
