"""Log lines as text or JSON, with every registered secret redacted in both."""

import json
import logging
import sys

import pytest

from bot import logs

SECRET = 'pa"ss\\word-ünïcode'  # characters JSON escapes, and some it need not
TOKEN = "777:token-in-a-url"


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError(f"failed with {SECRET} and {TOKEN}")
        except RuntimeError:
            exc_info = sys.exc_info()
    return logging.LogRecord("bot.test", logging.ERROR, __file__, 1, message, args, exc_info)


def test_json_lines_carry_time_level_logger_message_and_traceback() -> None:
    formatter = logs.JsonFormatter([SECRET, TOKEN])
    line = formatter.format(record("GET https://api/bot%s/getMe for %s", TOKEN, SECRET, exc=True))
    assert "\n" not in line
    entry = json.loads(line)
    assert set(entry) == {"time", "level", "logger", "message", "exc_info"}
    assert (entry["level"], entry["logger"]) == ("ERROR", "bot.test")
    assert entry["message"] == "GET https://api/bot[redacted]/getMe for [redacted]"
    assert "RuntimeError: failed with [redacted] and [redacted]" in entry["exc_info"]
    assert entry["time"].endswith("+00:00")
    assert SECRET not in line
    assert json.dumps(SECRET)[1:-1] not in line
    assert TOKEN not in line


def test_text_lines_are_redacted_too() -> None:
    line = logs.RedactingFormatter([TOKEN]).format(record("url %s", TOKEN, exc=True))
    assert TOKEN not in line
    assert "ERROR bot.test: url [redacted]" in line


@pytest.mark.usefixtures("root_logging")
@pytest.mark.parametrize(
    ("fmt", "kind"), [("json", logs.JsonFormatter), ("text", logs.RedactingFormatter)]
)
def test_setup_picks_the_format_and_secrets_learnt_later_are_redacted(
    fmt: str, kind: type[logging.Formatter]
) -> None:
    logs.setup([TOKEN], fmt=fmt)
    (handler,) = logging.getLogger().handlers
    formatter = handler.formatter
    assert type(formatter) is kind
    assert isinstance(formatter, logs.RedactingFormatter)
    logs.add_secret("learnt-later")
    assert "learnt-later" not in formatter.format(record("token %s", "learnt-later"))
