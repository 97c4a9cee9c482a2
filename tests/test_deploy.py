"""The environment contract stays one contract: .env.example, the code that reads it, README and
every file in deploy/ agree. Docker cannot build here (no engine), so the Dockerfile and the
compose file are checked by parsing them; the systemd unit by `systemd-analyze verify`."""

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from bot.config import PLACEHOLDERS, ConfigError, Settings
from bot.run import STOP_SECONDS

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
VARIABLE = re.compile(r"\b(?:SCRUBBOT|TELEGRAM|MATRIX)_[A-Z0-9_]*[A-Z0-9]\b")
SETTING_LINE = re.compile(r"^(# )?([A-Z][A-Z0-9_]+)=(.*)$")
# Read by the local Bot API server image in compose.yaml, not by scrubbot.
BOT_API_SERVER = {"TELEGRAM_API_ID", "TELEGRAM_API_HASH"}
BOT_API_SERVER_ONLY = {"TELEGRAM_LOCAL"}  # set in compose.yaml itself, not in .env


def env_example() -> dict[str, tuple[str, bool]]:
    """name -> (value, commented out) for every setting line of .env.example."""
    settings: dict[str, tuple[str, bool]] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = SETTING_LINE.match(line)
        if match:
            assert match[2] not in settings, f"{match[2]} is listed twice"
            settings[match[2]] = (match[3], bool(match[1]))
    return settings


def code_reads() -> set[str]:
    """Every setting name the code reads: quoted names in bot/ and adapters/."""
    sources = [*ROOT.glob("bot/**/*.py"), *ROOT.glob("adapters/**/*.py")]
    names: set[str] = set()
    for source in sources:
        names |= set(
            re.findall(r"\"((?:SCRUBBOT|TELEGRAM|MATRIX)_[A-Z0-9_]+)\"", source.read_text())
        )
    return names


def test_every_setting_has_exactly_one_comment_line_above_it() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    for number, line in enumerate(lines):
        if SETTING_LINE.match(line):
            above = lines[number - 1]
            assert above.startswith("# "), line
            assert not SETTING_LINE.match(above), line
            assert max(len(line), len(above)) <= 99, line


def test_the_uncommented_lines_are_the_placeholders_and_are_refused() -> None:
    uncommented = {
        name: value for name, (value, commented) in env_example().items() if not commented
    }
    assert uncommented == PLACEHOLDERS
    for name, value in PLACEHOLDERS.items():
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: value})


def test_values_mean_the_same_to_the_shell_systemd_and_compose() -> None:
    """scrubbot (bot/envfile.py), systemd and compose parse .env themselves: the example's
    values need no quoting, spaces or expansions, so all three read the same value."""
    for name, (value, _) in env_example().items():
        assert not re.search(r"[\s\"'$`\\]", value), f"{name}={value}"


def test_every_setting_is_read_by_the_code_and_every_read_setting_is_listed() -> None:
    listed = set(env_example())
    assert listed - BOT_API_SERVER == code_reads()
    assert not BOT_API_SERVER & code_reads()


@pytest.mark.parametrize("path", ["README.md", *sorted(p.name for p in DEPLOY.iterdir())])
def test_variables_named_in_docs_and_deploy_files_are_listed(path: str) -> None:
    file = ROOT / path if path == "README.md" else DEPLOY / path
    named = set(VARIABLE.findall(file.read_text()))
    assert named - set(env_example()) - BOT_API_SERVER_ONLY == set()


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Instructions (KEYWORD, arguments) per stage; continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        keyword, _, arguments = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        if not stages:
            continue  # ARG before the first FROM
        stages[-1].append((keyword.upper(), " ".join(arguments.split())))
    return stages


def test_dockerfile_final_stage_is_slim_unprivileged_and_keeps_state_in_a_volume() -> None:
    *builders, final = dockerfile_stages()
    assert builders, "a builder stage installs the package; the final stage only copies it"
    assert final[0] == ("FROM", "${BASE}")
    assert "ARG BASE=python:3.11-slim-bookworm" in (DEPLOY / "Dockerfile").read_text()
    instructions = dict(final)
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", instructions["USER"])  # numeric (DL3066)
    assert [i for i, (keyword, _) in enumerate(final) if keyword == "USER"][-1] > max(
        i for i, (keyword, _) in enumerate(final) if keyword == "RUN"
    ), "USER comes after the last RUN"
    # The default SCRUBBOT_DATA_DIR (./data) from the working directory is the volume, so with
    # no settings at all the image shows the first-run steps instead of a configuration error.
    assert instructions["VOLUME"] == f"{instructions['WORKDIR']}/data"
    assert "SCRUBBOT_" not in instructions["ENV"]
    assert instructions["CMD"] == '["scrubbot", "run"]'
    assert "/healthz" in instructions["HEALTHCHECK"]
    assert "org.opencontainers.image.licenses=" in instructions["LABEL"]
    final_text = " ".join(arguments for _, arguments in final)
    for tool in ("gcc", "build-essential", "apt-get", "pip install", "make"):
        assert tool not in final_text
    assert all(args.startswith("--from=") for keyword, args in final if keyword == "COPY")


def test_dockerfile_builds_only_what_the_makefile_builds() -> None:
    """The package sources pyproject names, and nothing else (no tests, no .env, no data)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    needed = {
        "pyproject.toml",
        pyproject["project"]["readme"],
        *pyproject["project"]["license-files"],
        *packages,
        "requirements.lock",
    }
    (builder, *_), copied = dockerfile_stages(), set()
    installs = []
    for keyword, arguments in builder:
        if keyword == "COPY":
            *sources, _ = arguments.split()
            copied |= set(sources)
            installs.append(("COPY", sources))
        if keyword == "RUN" and "pip install" in arguments:
            assert "[dev]" not in arguments
            installs.append(("RUN", arguments.split()))
    assert copied == needed
    # The locked dependencies are installed before any source is copied (a cached layer).
    assert installs[0] == ("COPY", ["requirements.lock"])
    assert "--require-hashes" in installs[1][1]
    assert installs[1][0] == "RUN"
    assert "--no-deps" in installs[-1][1]
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert {line.strip("!/") for line in ignore if line.startswith("!")} == needed
    assert (ROOT / "Makefile").read_text().count("find bot adapters") == 1  # SOURCES in step


def compose() -> dict[str, dict[str, dict[str, object]]]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_builds_the_image_and_keeps_state_in_a_named_volume() -> None:
    config = compose()
    bot = config["services"]["scrubbot"]
    build = bot["build"]
    assert isinstance(build, dict)
    assert (DEPLOY / str(build["context"]) / str(build["dockerfile"])).resolve() == (
        DEPLOY / "Dockerfile"
    )
    (env_file,) = bot["env_file"]
    assert isinstance(env_file, dict)
    assert (DEPLOY / str(env_file["path"])).resolve() == ROOT / ".env"
    assert env_file["required"] is False  # without .env: the setup steps, exit 0
    assert "environment" not in bot  # SCRUBBOT_* there would hide the first-run steps
    final = dict(dockerfile_stages()[-1])
    mounts = {str(m).split(":")[1]: str(m).split(":")[0] for m in bot["volumes"]}
    assert mounts[final["VOLUME"]] in config["volumes"]  # a named volume, not a host folder


def test_compose_is_healthy_rotates_logs_and_stops_restarting_a_broken_setup() -> None:
    for name, service in compose()["services"].items():
        logging = service["logging"]
        assert isinstance(logging, dict)
        assert logging["driver"] == "json-file", name
        assert logging["options"] == {"max-size": "10m", "max-file": "3"}, name
        # "always"/"unless-stopped" loop forever on a wrong token; exit 0 is never restarted
        assert re.fullmatch(r"on-failure:[1-5]", str(service["restart"])), name
    test = compose()["services"]["scrubbot"]["healthcheck"]["test"]
    assert isinstance(test, list)
    assert "/healthz" in test[-1]


def test_compose_local_bot_api_server_is_optional_and_consistent() -> None:
    config = compose()
    server = config["services"]["telegram-bot-api"]
    assert server["profiles"] == ["local-bot-api"]  # only started when asked for
    # A third-party image: only its own two settings (never .env, the token or passwords),
    # and a pinned tag.
    assert "env_file" not in server
    assert set(server["environment"]) == BOT_API_SERVER | BOT_API_SERVER_ONLY
    assert server["environment"]["TELEGRAM_LOCAL"] == "1"  # --local: files by path
    for name in BOT_API_SERVER:
        assert str(server["environment"][name]).startswith(f"${{{name}:?")
    image, _, tag = str(server["image"]).partition(":")
    assert tag, image
    assert tag != "latest", image
    (work,) = server["volumes"]
    volume, path = str(work).split(":")
    # in local mode getFile answers with a path on the server's disk: the bot mounts the same
    assert f"{volume}:{path}:ro" in config["services"]["scrubbot"]["volumes"]
    text = (DEPLOY / "compose.yaml").read_text()
    urls = dict(re.findall(r"#\s+(TELEGRAM_(?:API|FILE)_URL)=(\S+)", text))
    assert urls == {
        "TELEGRAM_API_URL": "http://telegram-bot-api:8081/bot",
        "TELEGRAM_FILE_URL": "http://telegram-bot-api:8081/file/bot",
    }
    assert "#   TELEGRAM_LOCAL_MODE=1" in text
    settings = Settings.from_env({"TELEGRAM_BOT_TOKEN": "1:a", **urls, "TELEGRAM_LOCAL_MODE": "1"})
    assert settings.telegram is not None
    assert settings.telegram.download_limit == 2000 * 1024 * 1024


def unit() -> dict[str, list[str]]:
    """`Section.Key` -> values (systemd allows a key more than once)."""
    keys: dict[str, list[str]] = {}
    section = ""
    for line in (DEPLOY / "scrubbot.service").read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif line and not line.startswith("#"):
            key, _, value = line.partition("=")
            keys.setdefault(f"{section}.{key}", []).append(value)
    return keys


def test_systemd_unit_is_sandboxed_and_keeps_state_in_its_state_directory() -> None:
    keys = unit()
    expected = {
        "Service.DynamicUser": ["yes"],
        "Service.StateDirectory": ["scrubbot"],
        "Service.Environment": ["SCRUBBOT_DATA_DIR=/var/lib/scrubbot"],
        "Service.EnvironmentFile": ["/etc/scrubbot/env"],
        "Service.ProtectSystem": ["strict"],
        "Service.NoNewPrivileges": ["yes"],
        "Service.PrivateTmp": ["yes"],
        "Service.MemoryMax": ["512M"],
        "Service.Restart": ["on-failure"],
        "Service.RestartPreventExitStatus": ["2"],  # configuration errors: no restart loop
        "Install.WantedBy": ["multi-user.target"],
    }
    assert {key: keys.get(key) for key in expected} == expected
    (command,) = keys["Service.ExecStart"]
    assert command.endswith("/scrubbot run")
    (stop,) = keys["Service.TimeoutStopSec"]
    assert float(stop.removesuffix("s")) > STOP_SECONDS


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is missing")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    """The unit as shipped, but starting an executable that exists on this machine."""
    text = (DEPLOY / "scrubbot.service").read_text()
    (command,) = unit()["Service.ExecStart"]
    verified = tmp_path / "scrubbot.service"
    verified.write_text(text.replace(command.split()[0], sys.executable))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(verified)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "scrubbot.service" not in result.stderr + result.stdout  # no warning about our unit


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def _requirement_name(requirement: str) -> str:
    return _normalized(re.split(r"[\s\[<>=;!~]", requirement, maxsplit=1)[0])


def _third_party_imports() -> set[str]:
    """Top-level modules bot/ and adapters/ import that are not the standard library."""
    modules: set[str] = set()
    for source in [*ROOT.glob("bot/**/*.py"), *ROOT.glob("adapters/**/*.py")]:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module.split(".")[0])
    ours = {"bot", "adapters"}
    return {m for m in modules if m not in sys.stdlib_module_names and m not in ours}


def test_runtime_dependencies_are_exactly_what_the_bot_imports() -> None:
    from importlib.metadata import packages_distributions

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = {_requirement_name(r) for r in pyproject["project"]["dependencies"]}
    providers = packages_distributions()
    imported = {_normalized(providers[module][0]) for module in _third_party_imports()}
    assert imported == runtime


def test_the_runtime_lock_holds_no_development_tool() -> None:
    lock = (ROOT / "requirements.lock").read_text()
    pinned = set(re.findall(r"^([a-z0-9][a-z0-9._-]*)==", lock, re.MULTILINE))
    for tool in ("pytest", "mypy", "ruff", "hypothesis", "matrix-synapse", "pillow-heif", "scipy"):
        assert tool not in pinned
    dev = (ROOT / "requirements-dev.lock").read_text()
    assert "pytest==" in dev
    assert "matrix-synapse==" in dev
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements.lock" in makefile
    assert "--require-hashes -r requirements-dev.lock" in makefile
