"""The aiohttp session both Zalo clients (Bot Platform, Official Account) hold."""

from __future__ import annotations

from typing import Self

import aiohttp


class SessionHolder:
    """One aiohttp session, made on first use unless one is passed in, and closed by
    :meth:`close` only if it is ours (a caller's shared session is the caller's to close)."""

    def __init__(self, session: aiohttp.ClientSession | None) -> None:
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session
