"""The .env file is read by scrubbot itself, in the one format compose and systemd read alike."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot import envfile
from bot.config import ConfigError


def test_single_quoted_values_are_literal() -> None:
    """`$` and `#` used to be mangled by the shell: ab$HOMEcd#x became ab#x."""
    text = "# comment\n\nMATRIX_PASSWORD='ab$HOMEcd#x y\"z'\nTELEGRAM_BOT_TOKEN=1:abc-_\n"
    assert envfile.parse(text) == {
        "MATRIX_PASSWORD": 'ab$HOMEcd#x y"z',
        "TELEGRAM_BOT_TOKEN": "1:abc-_",
    }


def test_an_empty_value_is_empty() -> None:
    assert envfile.parse("SCRUBBOT_DB=\nSCRUBBOT_DATA_DIR=''\n") == {
        "SCRUBBOT_DB": "",
        "SCRUBBOT_DATA_DIR": "",
    }


@pytest.mark.parametrize(
    "line",
    [
        "MATRIX_PASSWORD=ab$HOMEcd",  # compose would expand $HOME, systemd would not
        "MATRIX_PASSWORD=ab #x",  # a shell cuts at ' #'
        'MATRIX_PASSWORD="quoted"',  # double quotes: escapes and expansions differ
        "MATRIX_PASSWORD='unterminated",
        "MATRIX_PASSWORD=back\\slash",
    ],
)
def test_values_the_readers_would_disagree_on_are_refused_by_name_not_value(line: str) -> None:
    with pytest.raises(ConfigError) as refused:
        envfile.parse(f"# first\n{line}\n")
    assert "line 2" in str(refused.value)
    assert "MATRIX_PASSWORD" in str(refused.value)
    assert line.partition("=")[2].strip("'\"") not in str(refused.value)


@pytest.mark.parametrize("line", ["export TELEGRAM_BOT_TOKEN=1:a", "lower=1", "JUST TEXT"])
def test_lines_that_are_not_settings_are_refused(line: str) -> None:
    with pytest.raises(ConfigError, match="line 1 is not NAME=value"):
        envfile.parse(line)


def test_the_real_environment_wins_over_the_file(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("SCRUBBOT_DB=from-file\nSCRUBBOT_DATA_DIR=from-file\n")
    env = {"SCRUBBOT_DB": "from-env"}
    envfile.load(env, dotenv)
    assert env == {"SCRUBBOT_DB": "from-env", "SCRUBBOT_DATA_DIR": "from-file"}
    envfile.load(env, tmp_path / "missing")  # no file: nothing changes
    assert env == {"SCRUBBOT_DB": "from-env", "SCRUBBOT_DATA_DIR": "from-file"}


def run_in(folder: Path) -> subprocess.CompletedProcess[str]:
    """`scrubbot run` in `folder`, with no scrubbot or Telegram setting in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCRUBBOT_", "TELEGRAM_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_scrubbot_run_reads_dotenv_itself(tmp_path: Path) -> None:
    """A setting only in .env reaches the program: here a refused one, named in one line."""
    (tmp_path / ".env").write_text("TELEGRAM_WEBHOOK_PORT='not a port'\nTELEGRAM_BOT_TOKEN=1:a\n")
    result = run_in(tmp_path)
    assert result.returncode == 2, result.stderr
    assert "TELEGRAM_WEBHOOK_PORT" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_a_malformed_dotenv_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MATRIX_PASSWORD=ab$HOME\n")
    result = run_in(tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "scrubbot: .env line 1: put the value of MATRIX_PASSWORD in single quotes "
        "(MATRIX_PASSWORD='...'), so scrubbot, compose and systemd read it the same way"
    ]
