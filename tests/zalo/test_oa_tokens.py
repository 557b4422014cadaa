"""OA token rotation on SQLite and PostgreSQL: single-use refresh tokens, two workers, -216."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.channels.zalo.oa import (
    OaApiError,
    OaAuthorizationError,
    OaGrant,
    OaNotConfigured,
    OaTokenStore,
    ZaloOaClient,
)
from bot.clock import SystemClock
from bot.sandbox.zalo_emulator import DEFAULT_APP_ID, ZaloEmulator, oa_user_id
from storage.db import Database

APP_SECRET = "app-secret-for-tests"

# The OA knows people by OA-scoped ids, never their Bot Platform ids ("u1"…).
U1, U2, U3 = (oa_user_id(DEFAULT_APP_ID, u) for u in ("u1", "u2", "u3"))


def make_store(db_url: str, app_id: str) -> OaTokenStore:
    return OaTokenStore(Database.from_url(db_url), app_id, SystemClock())


@pytest_asyncio.fixture
async def oa(zalo: ZaloEmulator, db: Database) -> AsyncIterator[ZaloOaClient]:
    store = OaTokenStore(db, zalo.oa.app_id, SystemClock())
    store.seed(zalo.grant_oa_access())
    for user in ("u1", "u2", "u3"):
        zalo.add_oa_follower(user, f"Người {user}")
    zalo.add_oa_asset("gmf10-asset-1")
    async with ZaloOaClient(
        store, APP_SECRET, oauth_url=zalo.root_url, api_url=zalo.root_url, timeout=5
    ) as client:
        yield client


async def test_first_call_exchanges_the_grant_and_rotates(
    oa: ZaloOaClient, zalo: ZaloEmulator
) -> None:
    seeded = zalo.oa.refresh_calls
    assert seeded == []
    await oa.create_group("Tổ phản ứng KH-31", [U1], asset_id="gmf10-asset-1")
    tokens = oa.store.current()
    assert tokens.generation == 1 and tokens.access_token.startswith("at-")
    [refresh] = zalo.oa.refresh_calls
    assert refresh.ok
    # The refresh token sent was spent; the row now holds the new one Zalo issued.
    assert zalo.oa.refresh_tokens[refresh.params["refresh_token"]] is True
    await oa.list_members(next(iter(zalo.oa.groups)))
    assert len(zalo.oa.refresh_calls) == 1  # a live access token is reused


async def test_refresh_now_rotates_a_live_token(oa: ZaloOaClient, zalo: ZaloEmulator) -> None:
    first = await oa.refresh_now()
    second = await oa.refresh_now()
    assert (first.generation, second.generation) == (1, 2)
    assert first.access_token != second.access_token
    assert [c.ok for c in zalo.oa.refresh_calls] == [True, True]


async def test_expired_token_216_is_refreshed_and_the_call_retried_once(
    oa: ZaloOaClient, zalo: ZaloEmulator
) -> None:
    group = await oa.create_group("Tổ KH-31", [U1], asset_id="gmf10-asset-1")
    zalo.expire_oa_access_tokens()
    await oa.invite(group.group_id, [U2])
    invites = zalo.calls_to("invite")
    assert [c.error_code for c in invites] == [-216, 0]
    assert len(zalo.oa.refresh_calls) == 2 and oa.store.current().generation == 2
    assert zalo.oa.group(group.group_id).members == [U1, U2]


async def test_a_second_216_after_refreshing_is_an_error_not_a_loop(
    oa: ZaloOaClient, zalo: ZaloEmulator
) -> None:
    group = await oa.create_group("Tổ KH-31", [U1], asset_id="gmf10-asset-1")
    zalo.inject_oa_error("/group/invite", -216, "Access token is invalid", times=5)
    with pytest.raises(OaApiError) as caught:
        await oa.invite(group.group_id, [U2])
    assert caught.value.code == -216
    assert len(zalo.calls_to("invite")) == 2
    assert len(zalo.oa.refresh_calls) == 2


async def test_an_old_refresh_token_is_refused_and_nothing_is_overwritten(
    oa: ZaloOaClient, zalo: ZaloEmulator
) -> None:
    await oa.create_group("Tổ KH-31", [U1], asset_id="gmf10-asset-1")
    spent = zalo.oa.refresh_calls[0].params["refresh_token"]
    oa.store.seed(spent)  # someone restores an old backup of the token row
    with pytest.raises(OaAuthorizationError, match="refused the OA refresh token"):
        await oa.list_members("anything")
    assert zalo.oa.refresh_calls[-1].error_code != 0
    assert oa.store.current().access_token == ""  # unchanged: still the restored row


async def test_two_workers_refreshing_at_once_spend_the_refresh_token_once(
    zalo: ZaloEmulator, db_url: str
) -> None:
    """Two processes (own engines, own clients) hit -216 together: one refresh reaches Zalo."""
    first, second = make_store(db_url, zalo.oa.app_id), make_store(db_url, zalo.oa.app_id)
    first.seed(zalo.grant_oa_access())
    zalo.add_oa_follower("u1")
    zalo.add_oa_asset("a1")
    kwargs = {"oauth_url": zalo.root_url, "api_url": zalo.root_url, "timeout": 5.0}
    async with (
        ZaloOaClient(first, APP_SECRET, **kwargs) as a,
        ZaloOaClient(second, APP_SECRET, **kwargs) as b,
    ):
        group = await a.create_group("Tổ KH-31", [U1], asset_id="a1")
        zalo.expire_oa_access_tokens()
        for _ in range(3):
            results = await asyncio.gather(
                a.list_members(group.group_id), b.list_members(group.group_id)
            )
            assert results == [[U1], [U1]]
    assert [c.ok for c in zalo.oa.refresh_calls] == [True, True]  # the grant, then one rotation
    assert first.current() == second.current()
    first.db.dispose()
    second.db.dispose()


def test_the_row_lock_makes_the_second_rotation_reuse_the_first(db_url: str) -> None:
    """Deterministic: worker B asks to rotate while A holds the row in the middle of its
    exchange with Zalo; B waits, then takes A's token without calling Zalo."""
    a, b = make_store(db_url, "42"), make_store(db_url, "42")
    a.seed("rt-0")
    in_exchange, release = threading.Event(), threading.Event()
    spent: list[str] = []

    def slow_exchange(refresh_token: str) -> OaGrant:
        spent.append(refresh_token)
        in_exchange.set()
        assert release.wait(10)
        return OaGrant("at-1", "rt-1", 3600)

    def must_not_run(refresh_token: str) -> OaGrant:
        raise AssertionError("the refresh token would be spent twice")

    results = {}
    worker_a = threading.Thread(target=lambda: results.setdefault("a", a.rotate("", slow_exchange)))
    worker_a.start()
    assert in_exchange.wait(10)
    worker_b = threading.Thread(target=lambda: results.setdefault("b", b.rotate("", must_not_run)))
    worker_b.start()
    worker_b.join(0.5)
    assert worker_b.is_alive()  # waiting for A's lock
    release.set()
    worker_a.join(10)
    worker_b.join(20)
    assert spent == ["rt-0"]
    assert results["a"] == results["b"]
    assert results["b"].access_token == "at-1" and results["b"].generation == 1
    a.db.dispose()
    b.db.dispose()


def test_a_failed_exchange_changes_nothing(db_url: str) -> None:
    store = make_store(db_url, "42")
    with pytest.raises(OaNotConfigured):
        store.current()
    store.seed("rt-0")

    def refused(refresh_token: str) -> OaGrant:
        raise OaAuthorizationError("no")

    with pytest.raises(OaAuthorizationError):
        store.rotate("", refused)
    assert store.current().generation == 0
    assert store.rotate("", lambda rt: OaGrant("at-1", rt + "'", 60)).generation == 1
    store.db.dispose()
