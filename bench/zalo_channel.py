"""Zalo channel figures: client round trips, webhook delivery, token rotation under contention.

    python -m bench.zalo_channel [--messages 500] [--updates 300] [--workers 8]

Everything runs on loopback against the Zalo emulator (bot/sandbox/zalo_emulator), so the
figures are our client's and receiver's own cost plus the emulator's, not Zalo's network:
* sendMessage: sequential round trips (median and p95 latency) and throughput with 20 in flight;
* webhook: time for the emulator to deliver N updates, one at a time as Zalo does, through
  ``add_webhook_route`` (secret checked, update parsed) to a queue;
* getUpdates: updates per second when polling one per call;
* OA rotation: ``--workers`` clients with their own engines on one SQLite file all hit an
  expired token at once; how many refreshes reached Zalo (must be 1) and the wall time;
* split_text on a 100,000-character draft.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from aiohttp import web

from bot.channels.zalo import ZaloBotClient, ZaloUpdate, add_webhook_route, split_text
from bot.channels.zalo.oa import OaTokenStore, ZaloOaClient
from bot.clock import SystemClock
from bot.sandbox.zalo_emulator import ZaloEmulator
from storage.db import Database
from storage.migrate import upgrade

SECRET = "bench-webhook-secret"


async def send_figures(emu: ZaloEmulator, client: ZaloBotClient, count: int) -> None:
    emu.send_text("bench", "hi")
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        await client.send_message("bench", f"Cảnh báo số {i}: " + "nội dung " * 20)
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    p95 = latencies[int(len(latencies) * 0.95)]
    print(
        f"sendMessage sequential: {count} messages, median {statistics.median(latencies) * 1e3:.2f}"
        f" ms, p95 {p95 * 1e3:.2f} ms"
    )
    gate = asyncio.Semaphore(20)

    async def one(i: int) -> None:
        async with gate:
            await client.send_message("bench", f"song song {i}")

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - started
    print(
        f"sendMessage 20 in flight: {count} messages in {elapsed:.2f} s = {count / elapsed:.0f}/s"
    )


async def webhook_figures(emu: ZaloEmulator, client: ZaloBotClient, count: int) -> None:
    received: asyncio.Queue[ZaloUpdate] = asyncio.Queue()
    app = web.Application()
    add_webhook_route(app, "/zalo", SECRET, received.put)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await client.set_webhook(f"http://127.0.0.1:{port}/zalo", SECRET)
    started = time.perf_counter()
    for i in range(count):
        emu.send_text(f"user{i % 50}", f"/ack {i}")
    for _ in range(count):
        await received.get()
    elapsed = time.perf_counter() - started
    rate = count / elapsed
    print(f"webhook: {count} updates delivered and parsed in {elapsed:.2f} s = {rate:.0f}/s")
    await client.delete_webhook()
    await runner.cleanup()


async def polling_figures(emu: ZaloEmulator, client: ZaloBotClient, count: int) -> None:
    for i in range(count):
        emu.send_text(f"user{i % 50}", f"/duyet {i}")
    started = time.perf_counter()
    got = 0
    while got < count:
        if await client.get_update(wait_seconds=1) is not None:
            got += 1
    elapsed = time.perf_counter() - started
    print(
        f"getUpdates: {count} updates, one per call, in {elapsed:.2f} s = {count / elapsed:.0f}/s"
    )


async def rotation_figures(emu: ZaloEmulator, workers: int, folder: Path) -> None:
    url = f"sqlite:///{folder / 'oa.sqlite3'}"
    upgrade(url)
    stores = [
        OaTokenStore(Database.from_url(url), emu.oa.app_id, SystemClock()) for _ in range(workers)
    ]
    stores[0].seed(emu.grant_oa_access())
    follower = emu.add_oa_follower("u1")  # the OA's own id for them
    emu.add_oa_asset("a1")
    clients = [
        ZaloOaClient(s, "app-secret-for-tests", oauth_url=emu.root_url, api_url=emu.root_url)
        for s in stores
    ]
    group = await clients[0].create_group("Bench", [follower], asset_id="a1")
    before = len(emu.oa.refresh_calls)
    emu.expire_oa_access_tokens()
    started = time.perf_counter()
    await asyncio.gather(*(c.list_members(group.group_id) for c in clients))
    elapsed = time.perf_counter() - started
    spent = len(emu.oa.refresh_calls) - before
    print(
        f"OA rotation: {workers} workers hit an expired token at once: {spent} refresh reached"
        f" Zalo, all answered in {elapsed * 1e3:.0f} ms"
    )
    for client, store in zip(clients, stores, strict=True):
        await client.close()
        store.db.dispose()


def split_figures() -> None:
    draft = "\n\n".join(
        f"Đoạn {i}. " + "Thông tin chính thức về vụ việc. " * 12 for i in range(250)
    )
    started = time.perf_counter()
    parts = split_text(draft)
    elapsed = time.perf_counter() - started
    print(
        f"split_text: {len(draft)} characters into {len(parts)} messages in {elapsed * 1e3:.2f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    async with ZaloEmulator() as emu, ZaloBotClient(emu.token, base_url=emu.bot_api_url) as client:
        await send_figures(emu, client, args.messages)
        await polling_figures(emu, client, args.updates)
        await webhook_figures(emu, client, args.updates)
        with tempfile.TemporaryDirectory() as folder:
            await rotation_figures(emu, args.workers, Path(folder))
    split_figures()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--workers", type=int, default=8)
    asyncio.run(main(parser.parse_args()))
