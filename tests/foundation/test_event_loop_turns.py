"""The bot's process gives the event loop the GIL back quickly while a thread computes
(``bot.app.favour_the_event_loop``, which ``crisisdesk run`` calls first).

The scan computes in a thread for seconds; each socket wait of the loop (a Bot API request, a
PostgreSQL query) lets the GIL go and, at Python's default 5 ms switch interval, waited out the
thread's turn to get it back.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from bot.app import SWITCH_INTERVAL_S, favour_the_event_loop


@pytest.fixture
def switch_interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


async def _round_trips(count: int) -> float:
    """Median seconds of a loopback echo while a thread is busy in Python."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(64):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    stop = threading.Event()

    def compute() -> None:
        while not stop.is_set():
            sum(range(1000))

    busy = threading.Thread(target=compute)
    busy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        times = []
        for _ in range(count):
            started = time.perf_counter()
            writer.write(b"ping")
            await writer.drain()
            await reader.readexactly(4)
            times.append(time.perf_counter() - started)
        writer.close()
        await writer.wait_closed()
        await reader.read()  # the echo has seen the end and closed its side
    finally:
        stop.set()
        busy.join()
        server.close()
        await server.wait_closed()
    return statistics.median(times)


async def test_a_busy_thread_holds_the_loop_s_round_trips_less(switch_interval: None) -> None:
    sys.setswitchinterval(0.005)  # Python's default
    slow = await _round_trips(40)
    favour_the_event_loop()
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
    fast = await _round_trips(40)
    assert fast < slow / 2, (fast, slow)
