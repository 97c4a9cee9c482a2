"""`GET /healthz` -> 200 `ok`, for whatever watches the bot (a proxy, compose, k8s, Docker).

python-telegram-bot's webhook server takes no routes of ours, so this is a separate, tiny HTTP
server on SCRUBBOT_HEALTH_PORT, on the webhook's listen address (polling too). `scrubbot run`
starts it once the chat adapters are up and closes it first when stopping; `ok` means "taking
updates", and while `healthy()` says updates are not flowing (polling that keeps failing) it
answers 503 `not receiving updates`. Anything but GET or HEAD /healthz is 404; it reads no body
and logs nothing per request.

    server = await start("127.0.0.1", 8080, healthy)   # ConfigError when the port is taken
    server.close(); await server.wait_closed()
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable

from bot.config import ConfigError

log = logging.getLogger(__name__)

PATH = b"/healthz"
TIMEOUT_SECONDS = 5.0
MAX_HEAD = 8192  # request line and headers; we need none of the headers


def _always() -> bool:
    return True


async def start(host: str, port: int, healthy: Callable[[], bool] = _always) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _answer(reader, writer, healthy)

    try:
        server = await asyncio.start_server(answer, host, port, limit=MAX_HEAD)
    except OSError as error:
        raise ConfigError(
            f"SCRUBBOT_HEALTH_PORT: cannot listen on {host}:{port} ({error.strerror or error})."
        ) from error
    log.info("health check on http://%s:%d/healthz", host, port)
    return server


async def _answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, healthy: Callable[[], bool]
) -> None:
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            request = await reader.readuntil(b"\r\n\r\n")
        method, _, rest = request.partition(b" ")
        target = rest.split(b" ", 1)[0].split(b"?", 1)[0]
        if method in (b"GET", b"HEAD") and target == PATH and healthy():
            status, body = b"200 OK", b"ok\n"
        elif method in (b"GET", b"HEAD") and target == PATH:
            status, body = b"503 Service Unavailable", b"not receiving updates\n"
        else:
            status, body = b"404 Not Found", b"not found\n"
        head = (
            b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
        )
        writer.write(head if method == b"HEAD" else head + body)
        await writer.drain()
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        pass  # a client that is slow, too chatty or gone gets no answer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
