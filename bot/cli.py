"""The `scrubbot` command: clean or inspect photos from the terminal, or run the chat bot.

    scrubbot clean PHOTO --output OUT
    scrubbot clean PHOTO... --out-dir DIR
    scrubbot inspect PHOTO... [--json]

Exit status: 0 when every file was cleaned (or read), 1 when any file was refused (one line per
file on stderr, no traceback), 2 for usage errors. Chat libraries are imported only by `run`,
so cleaning stays quick to start.
"""

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from bot import firstrun
from bot.errors import ScrubError
from bot.i18n import language_for
from bot.memory import reuse_freed_buffers
from bot.scrub import Limits, inspect, scrub
from bot.summary import render

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scrubbot", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    clean = commands.add_parser("clean", help="write copies of photos without hidden data")
    clean.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    target = clean.add_mutually_exclusive_group(required=True)
    target.add_argument("--output", "-o", type=Path, help="where to write the one cleaned photo")
    target.add_argument("--out-dir", "-d", type=Path, help="folder for the cleaned photos")
    look = commands.add_parser("inspect", help="list the hidden data in photos")
    look.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    look.add_argument("--json", action="store_true", help="machine-readable findings")
    look.add_argument("--lang", help="summary language, e.g. de (default: the terminal's)")
    commands.add_parser("run", help="start the chat bot (unconfigured: how to set it up)")
    stats = commands.add_parser("stats", help="usage totals over the chats that opted in")
    stats.add_argument("--json", action="store_true", help="machine-readable totals")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        limits = Limits.from_env(os.environ)
    except ValueError as error:
        parser.error(str(error))
    if args.command == "clean":
        if args.output is not None and len(args.photos) > 1:
            parser.error("--output takes one photo; use --out-dir for several")
        if args.out_dir is not None and not args.out_dir.is_dir():
            parser.error(f"--out-dir {args.out_dir} is not a folder")
        reuse_freed_buffers()
        return _clean(args.photos, args.output, args.out_dir, limits)
    if args.command == "inspect":
        language = args.lang or _terminal_language(os.environ)
        return _inspect(args.photos, args.json, language_for(language), limits)
    if args.command == "stats":
        return _stats(args.json)
    return _run()


def _stats(as_json: bool) -> int:
    """Totals over opted-in chats, for the operator: a table, or JSON."""
    import asyncio

    from bot.config import ConfigError, Settings
    from bot.store import CLEANED, COUNTED_KINDS, REFUSED, Store, StoreError

    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as error:
        print(f"scrubbot: {error}", file=sys.stderr)
        return EXIT_USAGE
    metrics = [CLEANED, REFUSED, *(kind.value for kind in COUNTED_KINDS)]
    table: dict[str, dict[str, int]] = {}
    chats = 0
    if settings.database.is_file():  # no database yet: nothing was ever counted

        async def read() -> int:
            store = await Store.open(settings.database, settings.data_dir / "store.key")
            try:
                totals = await store.totals()
            finally:
                await store.close()
            for fmt, metric, n in totals.rows:
                table.setdefault(fmt, dict.fromkeys(metrics, 0))[metric] = n
            return totals.chats

        try:
            chats = asyncio.run(read())
        except StoreError as error:
            print(f"scrubbot: {error}", file=sys.stderr)
            return EXIT_REFUSED
    total = {m: sum(row.get(m, 0) for row in table.values()) for m in metrics}
    if as_json:
        json.dump({"chats": chats, "formats": table, "total": total}, sys.stdout, indent=2)
        print()
        return EXIT_OK
    print(f"opted-in chats: {chats}")
    print("  ".join(f"{name:>14}" for name in ["format", *metrics]))
    for fmt, row in [*sorted(table.items()), ("total", total)]:
        print("  ".join(f"{value:>14}" for value in [fmt, *(row.get(m, 0) for m in metrics)]))
    return EXIT_OK


def _run() -> int:
    import asyncio  # only `run` needs the event loop and the chat libraries

    from bot import envfile
    from bot.config import ConfigError, Settings
    from bot.run import StartError, run
    from bot.store import StoreError

    if firstrun.nothing_configured(os.environ):  # a fresh clone: show what it does, and how
        command = sys.argv[0] if Path(sys.argv[0]).name == "scrubbot" else "scrubbot"
        firstrun.introduce(sys.stdout, language_for(_terminal_language(os.environ)), command)
        return EXIT_OK
    try:
        envfile.load(os.environ)
        asyncio.run(run(Settings.from_env(os.environ)))
    except ConfigError as error:
        print(f"scrubbot: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (StoreError, StartError) as error:
        print(f"scrubbot: {error}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


def _clean(photos: list[Path], output: Path | None, out_dir: Path | None, limits: Limits) -> int:
    def clean_one(photo: Path) -> str | None:
        target = output if output is not None else (out_dir or Path()) / photo.name
        try:
            _write_whole(target, scrub(_read(photo, limits), limits).data)
        except ScrubError as error:
            return f"{photo}: not cleaned: {error.message}"
        return None

    errors = [error for error in _on_two_cores(clean_one, photos) if error]
    for error in errors:
        print(error, file=sys.stderr)
    return EXIT_REFUSED if errors else EXIT_OK


def _on_two_cores(work: Callable[[Path], str | None], photos: list[Path]) -> list[str | None]:
    """`work` over every photo, results in order. Scrubbing is CPU-bound Python, so with two
    or more cores a forked child takes every other photo and sends its results back as JSON."""
    if len(photos) < 2 or (os.cpu_count() or 1) < 2 or not hasattr(os, "fork"):
        return [work(photo) for photo in photos]
    theirs_photos = photos[1::2]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        os.close(read_end)
        code = 1
        try:
            with os.fdopen(write_end, "w") as pipe:
                json.dump([work(photo) for photo in theirs_photos], pipe)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    mine = [work(photo) for photo in photos[0::2]]
    with os.fdopen(read_end) as pipe:
        reply = pipe.read()
    os.waitpid(pid, 0)
    try:
        theirs = json.loads(reply)
    except ValueError:
        theirs = None
    if not isinstance(theirs, list) or len(theirs) != len(theirs_photos):
        theirs = [work(photo) for photo in theirs_photos]  # the child failed: do its share
    results: list[str | None] = [None] * len(photos)
    results[0::2], results[1::2] = mine, theirs
    return results


def _read(photo: Path, limits: Limits) -> bytes:
    try:
        with photo.open("rb") as handle:
            limits.check_size(os.fstat(handle.fileno()).st_size)
            return handle.read()
    except OSError as error:
        raise ScrubError(f"cannot read it ({error.strerror or error}).") from error


def _write_whole(target: Path, data: bytes) -> None:
    """Write to a hidden file beside `target`, then rename it: no partial file is ever left."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.scrubbot")
    try:
        with temporary.open("xb") as handle:
            handle.write(data)
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ScrubError(f"cannot write {target} ({error.strerror or error}).") from error


def _terminal_language(env: Mapping[str, str]) -> str | None:
    """The language the terminal asks for, as gettext reads it (LANGUAGE, LC_ALL, ...)."""
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        if env.get(name):
            return env[name].split(":")[0]
    return None


def _inspect(photos: list[Path], as_json: bool, language: str, limits: Limits) -> int:
    """Print the same summary a parent gets in a private chat, or the findings as JSON."""
    status = EXIT_OK
    reports: list[dict[str, object]] = []
    for photo in photos:
        try:
            report = inspect(_read(photo, limits), limits)
        except ScrubError as error:
            print(f"{photo}: not read: {error.message}", file=sys.stderr)
            reports.append({"file": str(photo), "error": error.message})
            status = EXIT_REFUSED
            continue
        found = [asdict(f) for f in report.findings]
        reports.append({"file": str(photo), "format": report.format.name, "findings": found})
        if not as_json:
            print(f"{photo} ({report.format.name})\n{render(report.findings, language).text}\n")
    if as_json:
        json.dump(reports, sys.stdout, indent=2, ensure_ascii=False)
        print()
    return status


if __name__ == "__main__":
    sys.exit(main())
