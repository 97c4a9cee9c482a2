"""Logging for the running bot: readable lines, and secrets redacted from every one of them.

Chat libraries log request URLs (with tokens), ids and contents at INFO; each network names the
loggers to keep at WARNING (`Network.quiet`), and as a second line of defence every formatted
record (tracebacks included) has each registered secret replaced before it is written.

SCRUBBOT_LOG_FORMAT=json writes one JSON object per line instead (time, level, logger, message,
and exc_info with the traceback when there is one), for log collectors; redacted the same way.
"""

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str], fmt: str = FORMAT) -> None:
        super().__init__(fmt)
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text


class JsonFormatter(RedactingFormatter):
    """One JSON object per line; each field is redacted before encoding, so a secret with
    characters JSON escapes (a Matrix password with a quote) is still caught."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exc_info"] = self.redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack_info"] = self.redact(self.formatStack(record.stack_info))
        return self.redact(json.dumps(entry, ensure_ascii=False))


def setup(
    secrets: Iterable[str],
    level: int = logging.INFO,
    fmt: str = "text",
    quiet: Iterable[str] = (),
) -> None:
    """Configure the root logger once, for `scrubbot run`; `fmt` is "text" or "json", and the
    `quiet` loggers only write warnings."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter if fmt == "json" else RedactingFormatter
    handler.setFormatter(formatter(secrets))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)


def add_secret(secret: str) -> None:
    """Redact a secret learnt after `setup` (a Matrix access token from the first login)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, RedactingFormatter) and secret:
            handler.formatter.secrets.append(secret)
