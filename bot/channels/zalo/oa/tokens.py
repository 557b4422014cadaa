"""The OA's access and refresh tokens in the database, rotated under a row lock.

Zalo's refresh token is single-use: a refresh returns a new access token *and* a new refresh
token, and the old refresh token is dead from then on. Two workers that both see an expired
access token and both refresh would send the same refresh token twice; the second is refused and,
if it won the race to the database, would overwrite the good pair with nothing usable. So a
refresh runs inside one transaction that holds the token row (``SELECT … FOR UPDATE`` on
PostgreSQL, SQLite's write lock via :func:`storage.db.begin_write`): whoever gets the lock second
re-reads the row, sees that the access token it found expired has already been replaced, and uses
the new one without calling Zalo. The exchange with Zalo happens while the lock is held, which is
the point; it is rare (about once a day) and short.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from bot.clock import Clock
from storage.db import Database, begin_write
from storage.models import ZaloOaToken

from .errors import OaNotConfigured

#: Refresh this long before Zalo's stated expiry, so a call never starts with a dying token.
EXPIRY_MARGIN = timedelta(minutes=10)


@dataclass(frozen=True)
class OaGrant:
    """What Zalo's token endpoint returned."""

    access_token: str
    refresh_token: str
    expires_in: float  # seconds


@dataclass(frozen=True)
class OaTokens:
    access_token: str
    access_expires_at: datetime | None
    generation: int


class OaTokenStore:
    """Reads and rotates the token row of one OA app (``app_id``)."""

    def __init__(self, db: Database, app_id: str, clock: Clock) -> None:
        self.db = db
        self.app_id = app_id
        self.clock = clock

    def seed(self, refresh_token: str) -> None:
        """Store the refresh token of a fresh grant; the first call will exchange it.

        Replaces whatever was stored: a new grant supersedes every earlier token.
        """
        with self.db.session() as session:
            begin_write(session)
            row = session.get(ZaloOaToken, self.app_id)
            if row is None:
                row = ZaloOaToken(app_id=self.app_id, refresh_token=refresh_token)
            row.refresh_token = refresh_token
            row.access_token = ""
            row.access_expires_at = None
            row.updated_at = self.clock.now()
            session.add(row)

    def rotated_at(self) -> datetime | None:
        """When the tokens were last stored (seeded or rotated); None before any seed."""
        with self.db.session() as session:
            row = session.get(ZaloOaToken, self.app_id)
            return row.updated_at if row is not None else None

    def current(self) -> OaTokens:
        with self.db.session() as session:
            return self._tokens(self._row(session))

    def usable(self, tokens: OaTokens) -> bool:
        return bool(tokens.access_token) and (
            tokens.access_expires_at is None
            or tokens.access_expires_at - EXPIRY_MARGIN > self.clock.now()
        )

    def rotate(self, stale_access_token: str, exchange: Callable[[str], OaGrant]) -> OaTokens:
        """Replace ``stale_access_token``, unless someone else already has.

        ``exchange`` sends a refresh token to Zalo and returns the new grant (blocking: this
        runs in a worker thread while the row is locked). If it raises, nothing is changed.
        """
        with self.db.session() as session:
            begin_write(session)  # SQLite: take the write lock before reading
            row = session.exec(
                select(ZaloOaToken).where(ZaloOaToken.app_id == self.app_id).with_for_update()
            ).one_or_none()
            if row is None:
                raise OaNotConfigured(f"no Zalo OA tokens stored for app {self.app_id}")
            latest = self._tokens(row)
            if latest.access_token != stale_access_token and self.usable(latest):
                return latest  # rotated by another worker while we waited for the lock
            grant = exchange(row.refresh_token)
            now = self.clock.now()
            row.access_token = grant.access_token
            row.refresh_token = grant.refresh_token
            row.access_expires_at = now + timedelta(seconds=grant.expires_in)
            row.generation += 1
            row.updated_at = now
            session.add(row)
            session.flush()
            return self._tokens(row)

    def _row(self, session: Session) -> ZaloOaToken:
        row = session.get(ZaloOaToken, self.app_id)
        if row is None:
            raise OaNotConfigured(f"no Zalo OA tokens stored for app {self.app_id}")
        return row

    @staticmethod
    def _tokens(row: ZaloOaToken) -> OaTokens:
        return OaTokens(row.access_token, row.access_expires_at, row.generation)
