"""Fetching feeds: one aiohttp session, bounded concurrency, and a guard against SSRF.

Why each limit exists:

* **concurrency overall and per host** — a scan of hundreds of feeds must not open hundreds of
  sockets, and many feeds of one outlet must not hammer that outlet (``TCPConnector`` limits);
* **connect and total timeouts** — one slow server must not hold up the scan;
* **body cap** — a feed is read in chunks and cut off past ``max_bytes`` with a recorded error,
  so a huge or endless (or gzip-bomb) response never sits in memory;
* **conditional GET** — ``If-None-Match``/``If-Modified-Since`` from the Source row; a 304 costs
  no parsing;
* **redirects** are followed by hand, at most ``max_redirects``, each hop re-checked;
* **address guard** — feed URLs are entered by people in chat, so a URL (or a redirect, or a DNS
  name) pointing at loopback, private, link-local or otherwise non-public addresses is refused
  unless ``allow_private`` (``CRISISDESK_ALLOW_PRIVATE_FEEDS``) is set. The check runs on the
  *resolved* addresses, inside the connector's resolver, so the address that is checked is the
  address that is connected to (no DNS-rebinding window).

Per-source health (``last_fetched_at``, ``last_success_at``, ``consecutive_failures``,
``last_error``, ``next_fetch_after``) is written with :func:`record_success` /
:func:`record_failure`; failing sources back off exponentially.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from storage.models import Source

__all__ = [
    "FeedFetcher",
    "FetchPolicy",
    "FetchResult",
    "UnsafeURLError",
    "backoff_delay",
    "check_address",
    "check_url",
    "record_failure",
    "record_success",
]

USER_AGENT = "CrisisDesk/0.1 (+press-office media monitor)"
MAX_ERROR_LENGTH = 500


class UnsafeURLError(OSError):
    """A URL refused before connecting: wrong scheme, or a non-public address."""


@dataclass(frozen=True)
class FetchPolicy:
    concurrency: int = 32
    per_host: int = 4
    connect_timeout: float = 5.0
    total_timeout: float = 20.0
    max_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    allow_private: bool = False
    #: Exact URLs exempt from the address check although private (say, an IP-literal feed of
    #: the sandbox's own server). Only these URLs: where they redirect is checked as usual.
    trusted_urls: frozenset[str] = frozenset()
    user_agent: str = USER_AGENT
    backoff_base: timedelta = timedelta(minutes=1)
    backoff_max: timedelta = timedelta(hours=6)


@dataclass
class FetchResult:
    url: str
    status: Literal["ok", "not_modified", "error"]
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    http_status: int | None = None
    final_url: str = ""
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != "error"


# --------------------------------------------------------------------------- address guard


def check_address(address: str) -> None:
    """Raise :class:`UnsafeURLError` if ``address`` (an IP literal) is not a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    ):
        raise UnsafeURLError(
            f"refused: {address} is a loopback/private/link-local address "
            "(set CRISISDESK_ALLOW_PRIVATE_FEEDS=true to allow it)"
        )


def check_url(url: str, *, allow_private: bool) -> None:
    """Scheme check, plus an address check when the host is an IP literal.

    aiohttp does not call the resolver for IP literals, so they are checked here.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise UnsafeURLError(
            f"refused: only http(s) feed URLs are fetched, not {parts.scheme or 'no scheme'!r}"
        )
    host = parts.hostname
    if not host:
        raise UnsafeURLError(f"refused: no host in URL {url!r}")
    if allow_private:
        return
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        if host.lower().rstrip(".") in (
            "localhost",
            "localhost.localdomain",
        ) or host.lower().endswith(".localhost"):
            raise UnsafeURLError(
                f"refused: {host} is a loopback host "
                "(set CRISISDESK_ALLOW_PRIVATE_FEEDS=true to allow it)"
            ) from None
        return
    check_address(host)


class GuardedResolver(AbstractResolver):
    """DNS resolver that drops non-public addresses, so a name cannot smuggle in 10.0.0.1."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        safe: list[ResolveResult] = []
        refused: UnsafeURLError | None = None
        for result in results:
            try:
                check_address(result["host"])
            except UnsafeURLError as exc:
                refused = UnsafeURLError(
                    f"refused: {host} resolves to {result['host']}, {str(exc)[9:]}"
                )
            else:
                safe.append(result)
        if not safe:
            raise refused or UnsafeURLError(f"refused: {host} did not resolve")
        return safe

    async def close(self) -> None:
        await self._inner.close()


async def _check_resolved(host: str, port: int) -> None:
    """Pre-flight check for sessions we did not create (their resolver is not ours)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for info in infos:
        address = info[4][0]
        try:
            check_address(str(address))
        except UnsafeURLError as exc:
            raise UnsafeURLError(f"refused: {host} resolves to {address}, {str(exc)[9:]}") from None


# --------------------------------------------------------------------------- fetching


class BodyTooLarge(Exception):
    pass


class FeedFetcher:
    """Owns (or borrows) an aiohttp session and fetches feeds under a :class:`FetchPolicy`.

    Use as ``async with FeedFetcher(policy) as fetcher: await fetcher.fetch_many(...)``.
    ``resolver`` replaces the DNS resolver under the guard (custom DNS, tests). A
    borrowed ``session`` is not closed; its resolver is not ours, so addresses are checked by a
    pre-flight DNS lookup instead.
    """

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.policy = policy or FetchPolicy()
        self._resolver = resolver
        self._session = session
        self._owns_session = session is None
        self._semaphore = asyncio.Semaphore(self.policy.concurrency)

    async def __aenter__(self) -> FeedFetcher:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.policy.concurrency,
                limit_per_host=self.policy.per_host,
                resolver=(
                    self._resolver if self.policy.allow_private else GuardedResolver(self._resolver)
                ),
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=self.policy.total_timeout, connect=self.policy.connect_timeout
                ),
                headers={"User-Agent": self.policy.user_agent},
                auto_decompress=True,
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch_many(
        self, requests: Sequence[tuple[str, str | None, str | None]]
    ) -> list[FetchResult]:
        """Fetch (url, etag, last_modified) triples concurrently; results in the same order."""
        return list(await asyncio.gather(*(self.fetch(u, e, m) for u, e, m in requests)))

    async def fetch(
        self, url: str, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """Never raises for network or HTTP trouble: the error is in the result."""
        started = time.perf_counter()
        async with self._semaphore:
            try:
                result = await asyncio.wait_for(
                    self._fetch(url, etag, last_modified), timeout=self.policy.total_timeout
                )
            except TimeoutError:
                result = FetchResult(
                    url, "error", error=f"timed out after {self.policy.total_timeout:g} s"
                )
            except UnsafeURLError as exc:
                result = FetchResult(url, "error", error=str(exc))
            except BodyTooLarge as exc:
                result = FetchResult(url, "error", error=str(exc))
            except aiohttp.ClientConnectorError as exc:
                inner = exc.os_error if isinstance(exc.os_error, UnsafeURLError) else None
                cause = exc.__cause__
                if inner is None and isinstance(cause, UnsafeURLError):
                    inner = cause
                message = str(inner) if inner else f"cannot connect: {exc}"
                result = FetchResult(url, "error", error=message)
            except aiohttp.ClientError as exc:
                result = FetchResult(url, "error", error=f"{type(exc).__name__}: {exc}")
            except (OSError, ValueError) as exc:
                result = FetchResult(url, "error", error=f"{type(exc).__name__}: {exc}")
        result.elapsed = time.perf_counter() - started
        if result.error:
            result.error = result.error[:MAX_ERROR_LENGTH]
        return result

    async def _fetch(self, url: str, etag: str | None, last_modified: str | None) -> FetchResult:
        assert self._session is not None, "use FeedFetcher as an async context manager"
        policy = self.policy
        headers = {
            "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"
        }
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        seen: list[str] = []
        for _hop in range(policy.max_redirects + 1):
            allowed = policy.allow_private or current in policy.trusted_urls
            check_url(current, allow_private=allowed)
            if not allowed and not self._owns_session:
                parts = urlsplit(current)
                await _check_resolved(
                    parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
                )
            seen.append(current)
            async with self._session.get(
                current,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=policy.total_timeout, connect=policy.connect_timeout
                ),
            ) as response:
                if response.status in (301, 302, 303, 307, 308):
                    location = response.headers.get("Location")
                    if not location:
                        return FetchResult(
                            url,
                            "error",
                            http_status=response.status,
                            error=f"HTTP {response.status} without Location",
                        )
                    current = urljoin(current, location)
                    continue
                response_headers = {k.lower(): v for k, v in response.headers.items()}
                if response.status == 304:
                    return FetchResult(
                        url,
                        "not_modified",
                        headers=response_headers,
                        http_status=304,
                        final_url=current,
                        etag=response.headers.get("ETag") or etag,
                        last_modified=response.headers.get("Last-Modified") or last_modified,
                    )
                if response.status >= 400:
                    return FetchResult(
                        url,
                        "error",
                        http_status=response.status,
                        final_url=current,
                        error=f"HTTP {response.status} {response.reason or ''}".strip(),
                    )
                if response.status != 200:
                    return FetchResult(
                        url,
                        "error",
                        http_status=response.status,
                        final_url=current,
                        error=f"unexpected HTTP {response.status}",
                    )
                body = await self._read_capped(response)
                return FetchResult(
                    url,
                    "ok",
                    body=body,
                    headers=response_headers,
                    http_status=200,
                    final_url=current,
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                )
        return FetchResult(
            url,
            "error",
            final_url=current,
            error=f"too many redirects (over {policy.max_redirects}): {' -> '.join(seen[-3:])}",
        )

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self.policy.max_bytes
        declared = response.content_length
        if declared is not None and declared > limit and "content-encoding" not in response.headers:
            raise BodyTooLarge(f"body of {declared} bytes exceeds the {limit}-byte cap; not read")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                response.release()
                raise BodyTooLarge(f"body exceeds the {limit}-byte cap; cut off after {size} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


# --------------------------------------------------------------------------- health


def backoff_delay(failures: int, policy: FetchPolicy) -> timedelta:
    """base, 2×base, 4×base … capped: a dead feed is retried hours apart, a flaky one soon."""
    exponent = max(0, min(failures - 1, 30))
    delay = policy.backoff_base * (2**exponent)
    return min(delay, policy.backoff_max)


def record_success(
    source: Source, result: FetchResult, now: datetime, *, warning: str | None = None
) -> None:
    source.last_fetched_at = now
    source.last_success_at = now
    source.consecutive_failures = 0
    source.last_error = f"warning: {warning}"[:MAX_ERROR_LENGTH] if warning else None
    source.next_fetch_after = None
    if result.etag is not None:
        source.etag = result.etag[:512]
    if result.last_modified is not None:
        source.last_modified = result.last_modified[:128]


def record_failure(source: Source, error: str, now: datetime, policy: FetchPolicy) -> None:
    source.last_fetched_at = now
    source.consecutive_failures = (source.consecutive_failures or 0) + 1
    source.last_error = error[:MAX_ERROR_LENGTH]
    source.next_fetch_after = now + backoff_delay(source.consecutive_failures, policy)


def due_sources(sources: Iterable[Source], now: datetime) -> list[Source]:
    """Active sources whose backoff has passed."""
    return [
        s for s in sources if s.active and (s.next_fetch_after is None or s.next_fetch_after <= now)
    ]
