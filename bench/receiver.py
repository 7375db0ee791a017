"""A minimal event receiver for the benchmark's `switchboard_events` server.

    python -m bench.receiver --port 8200 --avoid-core 0

It answers every POST with 204 and checks nothing: it stands for the
operator's webhook, off the server's core (`--avoid-core`), so what the
benchmark measures is what events cost the server itself.
"""

from __future__ import annotations

import argparse
import os

from aiohttp import web


async def _take(_request: web.Request) -> web.Response:
    await _request.read()
    return web.Response(status=204)


def main(argv: list[str] | None = None) -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--avoid-core", type=int, help="a core to stay off (the server's)")
    args = parser.parse_args(argv)
    if args.avoid_core is not None and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)) - {args.avoid_core})
    app = web.Application()
    app.router.add_post("/{path:.*}", _take)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
