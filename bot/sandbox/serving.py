"""Serving an aiohttp app on loopback for the sandbox and its emulators."""

from __future__ import annotations

from aiohttp import web


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start ``app`` on ``host:port`` (port 0 picks a free one); the runner and the bound port.

    aiohttp keeps the listening socket only on the site's private server, which is where the
    port chosen for 0 can be read; a failed start cleans the runner up before raising."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    server = site._server
    assert server is not None and hasattr(server, "sockets")
    return runner, server.sockets[0].getsockname()[1]
