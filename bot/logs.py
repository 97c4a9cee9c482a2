"""Logging for the running bot: readable lines, and secrets redacted from every one of them.

python-telegram-bot puts the bot token into each request URL, and httpx logs every request URL
at INFO; that logger is kept at WARNING, and as a second line of defence every formatted record
(tracebacks included) has each registered secret replaced before it is written.
"""

import logging
import sys
from collections.abc import Iterable

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers that would write request URLs (with the token) or payloads at INFO or DEBUG.
QUIET = ("httpx", "httpcore", "telegram.Bot", "telegram.request", "hpack")
# matrix-nio logs room and user ids, event contents and request paths at INFO and DEBUG.
QUIET_MATRIX = ("nio", "peewee")


class RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str], fmt: str = FORMAT) -> None:
        super().__init__(fmt)
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text


def setup(secrets: Iterable[str], level: int = logging.INFO) -> None:
    """Configure the root logger once, for `scrubbot run`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(secrets))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in (*QUIET, *QUIET_MATRIX):
        logging.getLogger(name).setLevel(logging.WARNING)


def add_secret(secret: str) -> None:
    """Redact a secret learnt after `setup` (a Matrix access token from the first login)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, RedactingFormatter) and secret:
            handler.formatter.secrets.append(secret)
