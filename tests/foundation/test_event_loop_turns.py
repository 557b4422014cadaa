"""The bot's process gives the event loop the GIL back quickly while a thread computes
(``bot.app.favour_the_event_loop``, which ``crisisdesk run`` calls first).

The scan computes in a thread for seconds; each socket wait of the loop (a Bot API request, a
PostgreSQL query) lets the GIL go and, at Python's default 5 ms switch interval, waited out the
thread's turn to get it back. Measured in a process of its own (pytest-xdist's worker has
threads of its own that change the picture).
"""

from __future__ import annotations

import subprocess
import sys

MEASURE = """
import asyncio, socket, statistics, sys, threading, time
from bot.app import SWITCH_INTERVAL_S, favour_the_event_loop

ECHO = '''
import socket
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
peer, _ = server.accept()
while data := peer.recv(64):
    peer.sendall(data)
'''


async def round_trips(count):
    echo = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ECHO, stdout=asyncio.subprocess.PIPE
    )
    port = int(await echo.stdout.readline())
    stop = threading.Event()

    def compute():
        while not stop.is_set():
            sum(range(1000))

    busy = threading.Thread(target=compute)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    busy.start()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        writer.write(b"ping")
        await writer.drain()
        await reader.readexactly(4)
        times.append(time.perf_counter() - started)
    stop.set()
    busy.join()
    writer.close()
    await echo.wait()
    return statistics.median(times)


sys.setswitchinterval(0.005)  # Python's default
slow = asyncio.run(round_trips(40))
favour_the_event_loop()
assert sys.getswitchinterval() == SWITCH_INTERVAL_S
print(slow, asyncio.run(round_trips(40)))
"""


def test_a_busy_thread_holds_the_loop_s_round_trips_less() -> None:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE], capture_output=True, text=True, timeout=60, check=True
    )
    slow, fast = map(float, done.stdout.split())
    assert fast < slow / 2, (fast, slow)
