"""The `.env` file, read by scrubbot itself (not by a shell), in the one format that scrubbot,
Docker Compose (`env_file`) and systemd (`EnvironmentFile=`) all read the same way:

    # a comment line
    NAME=value            no spaces, quotes, `$`, `#`, backslashes or backticks in a bare value
    NAME='any value'      single quotes: everything inside is literal ($, #, spaces, "...")

Anything else is refused with the line number and the setting's name (never its value), since
the three readers would disagree about it: a shell expands `$HOME` and cuts at ` #`, compose
expands `$HOME` in bare values, systemd does neither.
"""

import re
from collections.abc import MutableMapping
from pathlib import Path

from bot.config import ConfigError

_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_BARE = re.compile(r"[^\s'\"$#\\`]*")
_QUOTED = re.compile(r"'([^']*)'")


def parse(text: str) -> dict[str, str]:
    """NAME -> value for every setting line of `text`; ConfigError for a line we cannot read."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, value = line.partition("=")
        if not equals or not _NAME.fullmatch(name):
            raise ConfigError(f".env line {number} is not NAME=value (names are A-Z, 0-9, _)")
        quoted = _QUOTED.fullmatch(value)
        if quoted:
            values[name] = quoted[1]
        elif _BARE.fullmatch(value):
            values[name] = value
        else:
            raise ConfigError(
                f".env line {number}: put the value of {name} in single quotes "
                f"({name}='...'), so scrubbot, compose and systemd read it the same way"
            )
    return values


def load(env: MutableMapping[str, str], path: Path = Path(".env")) -> None:
    """Add the settings of `path` to `env` where `env` has none (the real environment wins)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f".env cannot be read ({error.__class__.__name__})") from None
    for name, value in parse(text).items():
        env.setdefault(name, value)
