"""``crisisdesk zalo-oa seed``: store an agency's first OA refresh token, and check it.

The OA administrator grants the app access once (Zalo's OAuth page) and hands the refresh token
to the operator; from then on the bot rotates it itself (``tokens.OaTokenStore``). Every way
this can go wrong is answered in one line that says what to fix, because the operator typing
the command has nothing else to go on.
"""

from __future__ import annotations

import asyncio

from sqlmodel import select

from bot.clock import SystemClock
from bot.config import ENV_PREFIX, Settings
from storage.db import Database
from storage.models import Agency

from .client import ZaloOaClient
from .errors import OaAuthorizationError, OaTransportError
from .tokens import OaTokenStore


class SeedError(Exception):
    """What to fix, in one line; ``stored`` says whether the token was written anyway."""

    def __init__(self, message: str, *, stored: bool = False) -> None:
        super().__init__(message)
        self.stored = stored


def agency_app(settings: Settings, db: Database, code: str) -> str:
    """The OA app id of agency ``code``, checked against the configured app and its secrets."""
    with db.session() as session:
        agency = session.exec(select(Agency).where(Agency.code == code)).first()
        app_id = agency.zalo_oa_app_id if agency is not None else None
    if agency is None:
        raise SeedError(f"no agency {code!r} (agencies come from the TOML's [[agencies]])")
    if app_id is None:
        raise SeedError(
            f"agency {code} has no Zalo OA: add zalo_oa_app_id and zalo_oa_assets to its "
            "[[agencies]] entry in the TOML"
        )
    if settings.zalo_oa_app_id != app_id:
        raise SeedError(
            f"agency {code}'s OA app is {app_id}, but {ENV_PREFIX}ZALO_OA_APP_ID is "
            f"{settings.zalo_oa_app_id or 'not set'}: set it to {app_id} with that app's secrets"
        )
    missing = [
        f"{ENV_PREFIX}{name.upper()}"
        for name in ("zalo_oa_app_secret", "zalo_oa_secret_key")
        if getattr(settings, name) is None
    ]
    if missing:
        raise SeedError(f"Zalo OA app {app_id} needs {' and '.join(missing)}")
    return app_id


def seed(settings: Settings, db: Database, code: str, refresh_token: str) -> str:
    """Store ``refresh_token`` for agency ``code``'s app and exchange it once, which checks it
    and leaves fresh tokens in the row; returns what was done."""
    token = refresh_token.strip()
    if not token or any(c.isspace() for c in token):
        raise SeedError("--refresh-token is empty or has spaces: paste the token exactly")
    app_id = agency_app(settings, db, code)
    store = OaTokenStore(db, app_id, SystemClock())
    store.seed(token)
    try:
        tokens = asyncio.run(_check(settings, store))
    except OaAuthorizationError as exc:
        raise SeedError(
            f"{exc}; ask the OA administrator to grant the app access again", stored=True
        ) from None
    except OaTransportError as exc:
        raise SeedError(
            f"stored, but not checked: cannot reach Zalo ({exc}); the bot exchanges it at the "
            "first room",
            stored=True,
        ) from None
    return f"Zalo OA app {app_id} of agency {code}: refresh token accepted (generation {tokens})"


async def _check(settings: Settings, store: OaTokenStore) -> int:
    secret = settings.zalo_oa_app_secret
    assert secret is not None  # agency_app checked it
    async with ZaloOaClient(
        store,
        secret.get_secret_value(),
        oauth_url=settings.zalo_oa_oauth_url,
        api_url=settings.zalo_oa_api_url,
        timeout=settings.send_timeout,
    ) as client:
        return (await client.refresh_now()).generation
