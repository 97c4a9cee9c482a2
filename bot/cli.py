"""The `scrubbot` command: clean or inspect photos from the terminal, or run the chat bot.

    scrubbot clean PHOTO --output OUT           (OUT "-": standard output; PHOTO "-": input)
    scrubbot clean PHOTO|FOLDER... --out-dir DIR [-r]
    scrubbot clean PHOTO|FOLDER... --in-place [-r]
    scrubbot inspect PHOTO|FOLDER... [-r] [--json] [--lang de]

A user's only copy is never put at risk: no existing file is written over unless asked
(--overwrite, or --in-place, which swaps each photo for its verified clean copy in one rename),
two photos never land on one name, and a copy is complete or absent, even on Ctrl-C, which
ends the batch with exit status 130. Messages follow the terminal's language (en, de).
Cleaning imports neither the chat libraries nor the summary's place names or Babel.
"""

import argparse
import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from bot import cli_files
from bot.cli_files import STDIO, Job
from bot.cli_text import ENGLISH, Messages
from bot.errors import ScrubError
from bot.formats.base import SNIFF_BYTES
from bot.scrub import Inspection, Limits

if TYPE_CHECKING:  # loaded with the first video: cleaning photos never needs it
    from bot import cli_video

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of our output went away

EPILOG = """\
examples:
  scrubbot clean IMG_1234.jpg -o clean.jpg       clean one photo into clean.jpg
  scrubbot clean *.jpg -d cleaned/                clean several into the folder cleaned/
  scrubbot clean -r Holiday/ -d cleaned/          a folder and its subfolders, same layout
  scrubbot clean -r Holiday/ --in-place           replace each photo by its clean copy
  scrubbot clean - -o - < in.jpg > out.jpg        standard input to standard output
  scrubbot inspect IMG_1234.jpg                   what a photo reveals; writes nothing
  scrubbot inspect --json *.jpg                   the same as JSON (schema_version 1)

exit status:
  0    every photo was cleaned (or read)
  1    at least one photo was refused: one line per photo on stderr says why
  2    the command line is wrong
  130  interrupted (Ctrl-C): no partial or temporary file is left behind
  143  stopped by SIGTERM, likewise
  141  the program reading our output went away (a broken pipe)
"""


class _Version(argparse.Action):
    """--version, with the version looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("scrubbot")
        except PackageNotFoundError:
            number = "(not installed)"
        print(f"scrubbot {number}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="scrubbot",
        description=(__doc__ or "").split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True)
    clean = commands.add_parser(
        "clean",
        help="write copies of photos without hidden data",
        description="Write copies of photos without hidden data (place, time, device, ...).",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    clean.add_argument("photos", nargs="+", metavar="PHOTO", help='a photo, a folder, or "-"')
    target = clean.add_mutually_exclusive_group(required=True)
    target.add_argument("--output", "-o", help='where to write the one photo ("-": stdout)')
    target.add_argument("--out-dir", "-d", help="folder for the cleaned photos")
    target.add_argument(
        "--in-place", action="store_true", help="replace each photo by its verified clean copy"
    )
    clean.add_argument(
        "--overwrite", action="store_true", help="replace files that exist (never an input)"
    )
    clean.add_argument("-r", "--recursive", action="store_true", help="clean folders too")
    clean.add_argument("-q", "--quiet", action="store_true", help="print only refusals")
    clean.add_argument("--lang", help="message language, e.g. de (default: the terminal's)")
    look = commands.add_parser(
        "inspect",
        help="list the hidden data in photos",
        description="List the hidden data in photos; nothing is written.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    look.add_argument("photos", nargs="+", metavar="PHOTO", help='a photo, a folder, or "-"')
    look.add_argument("-r", "--recursive", action="store_true", help="inspect folders too")
    look.add_argument("--json", action="store_true", help="machine-readable findings")
    look.add_argument("--lang", help="summary language, e.g. de (default: the terminal's)")
    commands.add_parser("run", help="start the chat bot (unconfigured: how to set it up)")
    stats = commands.add_parser("stats", help="usage totals over the chats that opted in")
    stats.add_argument("--json", action="store_true", help="machine-readable totals")
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, `timeout`): stopped like Ctrl-C, with its own exit status."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """The command; its exit status (see EPILOG). Ctrl-C, SIGTERM and broken pipes end it
    quietly, removing what was not complete. Run as the program (no `argv`), `clean` and
    `inspect` end without the interpreter's clean-up of every module (a few ms of each run)."""
    status = _guarded(argv)
    if argv is None and sys.argv[1:2] in (["clean"], ["inspect"]):
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:
            _silence(sys.stdout)
            _silence(sys.stderr)
            status = status or EXIT_BROKEN_PIPE
        os._exit(status)
    return status


def _guarded(argv: Sequence[str] | None) -> int:
    language = language_for(_terminal_language(os.environ))
    try:
        return _main(argv)
    except KeyboardInterrupt as stop:
        cli_files.remove_temporaries()
        _say(Messages(language).interrupted())
        return EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED
    except BrokenPipeError:
        cli_files.remove_temporaries()
        _silence(sys.stdout)  # or Python complains again while flushing it at exit
        _silence(sys.stderr)
        return EXIT_BROKEN_PIPE


def _say(line: str) -> None:
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


def _silence(stream: object) -> None:
    try:
        fileno = stream.fileno()  # type: ignore[attr-defined]
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fileno)
        os.close(devnull)
    except (OSError, AttributeError, ValueError):
        pass


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        limits = Limits.from_env(os.environ)
    except ValueError as error:
        parser.error(str(error))
    if args.command in ("clean", "inspect"):
        language = language_for(args.lang or _terminal_language(os.environ))
        if args.photos.count(STDIO) > 1:
            parser.error('"-" (standard input) can be given only once')
    if args.command == "clean":
        _check_clean(parser, args)
        import signal

        signal.signal(signal.SIGTERM, _terminate)
        from bot.memory import reuse_freed_buffers

        reuse_freed_buffers()
        return _clean(args, Messages(language), limits)
    if args.command == "inspect":
        return _inspect(args.photos, args.recursive, args.json, language, limits)
    if args.command == "stats":
        return _stats(args.json)
    return _run()


def _check_clean(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    many = len(args.photos) > 1 or (args.recursive and os.path.isdir(args.photos[0]))
    if args.output is not None and many:
        parser.error("--output takes one photo; use --out-dir for several")
    if args.output is not None and args.output != STDIO and os.path.isdir(args.output):
        parser.error(f"--output {args.output} is a folder; use --out-dir for a folder")
    if args.out_dir is not None and not os.path.isdir(args.out_dir):
        parser.error(f"--out-dir {args.out_dir} is not a folder")
    if args.output == STDIO and sys.stdout.isatty():
        parser.error("--output - would print the photo's bytes on the terminal; redirect it")
    if STDIO in args.photos and args.output is None:
        parser.error('"-" (standard input) has no name: give --output FILE or --output -')


def _clean(args: argparse.Namespace, messages: Messages, limits: Limits) -> int:
    from bot import cli_batch

    found = cli_files.sources(args.photos, args.recursive, skip=args.out_dir)
    jobs = cli_files.plan(
        found,
        output=args.output,
        out_dir=args.out_dir,
        in_place=args.in_place,
        overwrite=args.overwrite,
        messages=messages,
    )
    progress = _Progress(len(jobs), messages, show=not args.quiet and sys.stderr.isatty())

    def report(index: int, result: cli_batch.Result) -> None:
        done, line = result
        if line and (not done or not args.quiet):
            progress.line(line)
        progress.count(done)

    def work(job: Job) -> cli_batch.Result:
        return _clean_one(job, messages, limits)

    def lost(index: int) -> cli_batch.Result:
        why = messages.unexpected("its worker process stopped")
        return False, messages.refused(jobs[index].source, why)

    _choose_scanner(jobs)
    cli_batch.run(jobs, work, report, cli_batch.cores(), lost)
    progress.finish(show_summary=not args.quiet and len(jobs) != 1)  # 0: an empty folder
    return EXIT_REFUSED if progress.refused else EXIT_OK


class _Progress:
    """On a terminal, one line on stderr that counts up; every batch ends with the counts."""

    def __init__(self, total: int, messages: Messages, show: bool) -> None:
        self.total, self.messages, self.show = total, messages, show
        self.cleaned = self.refused = 0

    def line(self, text: str) -> None:
        self._clear()
        print(text, file=sys.stderr)
        self._draw()

    def count(self, done: bool) -> None:
        if done:
            self.cleaned += 1
        else:
            self.refused += 1
        self._draw()

    def finish(self, show_summary: bool) -> None:
        self._clear()
        if show_summary:
            print(self.messages.summary(self.cleaned, self.refused), file=sys.stderr)

    def _draw(self) -> None:
        if self.show:
            done = self.cleaned + self.refused
            text = self.messages.progress(done, self.total, self.cleaned, self.refused)
            sys.stderr.write(f"\r{text}")
            sys.stderr.flush()

    def _clear(self) -> None:
        if self.show:
            sys.stderr.write("\r\x1b[K")


SIMD_BATCH_BYTES = 128 * 1024 * 1024  # from here on loading Hyperscan (9 ms) saves time


def _choose_scanner(jobs: Sequence[Job]) -> None:
    """Hyperscan for a batch whose JPEGs are big enough to win back its loading (it scans
    nothing else: a big video does not need it), loaded before the workers fork so they share
    it; never for a small one (bot.formats.jpeg_scan)."""
    from bot.formats import jpeg_scan

    sizes = [(job.source, _size(job.source)) for job in jobs if job.source != STDIO]
    if sum(size for _, size in sizes) >= SIMD_BATCH_BYTES:  # then look at what they are
        sizes = [(path, size) for path, size in sizes if _starts_as_jpeg(path)]
    jpeg_scan.use_simd(sum(size for _, size in sizes) >= SIMD_BATCH_BYTES)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except (OSError, ValueError):
        return 0


def _starts_as_jpeg(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            head = file.read(SNIFF_BYTES)
    except (OSError, ValueError):
        return False
    if not head.startswith(b"\xff\xd8"):  # no JPEG: no need to load its module (a video)
        return False
    from bot.formats import jpeg  # a batch of 128 MB or more: its JPEGs load it anyway

    return jpeg.accepts(head)


def _clean_one(job: Job, messages: Messages, limits: Limits) -> tuple[bool, str]:
    """Clean one photo into its target: (True, a note or "") or (False, the refusal line)."""
    from bot.scrub import scrub

    if job.folder:
        return False, messages.refused(job.source, messages.folder())
    if job.problem:
        return False, messages.refused(job.source, job.problem)
    if job.source != STDIO and job.target != STDIO:
        from bot import cli_video

        try:
            video = cli_video.open_video(job.source)
        except OSError as error:
            return False, messages.refused(job.source, messages.cannot_read(_why(error)))
        if video is not None:
            with video:
                return _clean_video(job, video, messages, limits)
    try:
        data = cli_files.read_input(job.source, limits)
    except OSError as error:
        return False, messages.refused(job.source, messages.cannot_read(_why(error)))
    except ScrubError as error:
        return False, messages.refused(job.source, messages.reason(error))
    try:
        cleaned = scrub(data, limits).data
    except ScrubError as error:
        return False, messages.refused(job.source, messages.reason(error))
    except Exception as error:
        return False, messages.refused(job.source, messages.unexpected(type(error).__name__))
    del data
    return _deliver(job, cleaned, messages)


def _clean_video(
    job: Job, video: "cli_video.Video", messages: Messages, limits: Limits
) -> tuple[bool, str]:
    """A video, by ranges: parsed from its mapping, copied by the kernel, checked on disk."""
    from bot import cli_video

    try:
        parts = cli_video.plan(video, limits)
    except ScrubError as error:
        return False, messages.refused(job.source, messages.reason(error))
    except Exception as error:
        return False, messages.refused(job.source, messages.unexpected(type(error).__name__))
    return _deliver(job, cli_video.writer(video, parts), messages)


def _deliver(job: Job, cleaned: bytes | cli_files.Writer, messages: Messages) -> tuple[bool, str]:
    """The clean copy into its target (standard output only as bytes)."""
    try:
        if job.target == STDIO and isinstance(cleaned, bytes):
            cli_files.write_stdout(cleaned)
        else:
            cli_files.make_folders(os.path.dirname(job.target))  # the layout under -d with -r
            cli_files.write_atomically(
                job.target, cleaned, replace=job.replace, keep_mode=job.keep_mode
            )
    except BrokenPipeError:
        raise
    except FileExistsError:
        return False, messages.refused(job.source, messages.exists(job.target))
    except ScrubError as error:  # a video's copy did not verify: it never got its name
        return False, messages.refused(job.source, messages.reason(error))
    except OSError as error:
        return False, messages.refused(job.source, messages.cannot_write(job.target, _why(error)))
    return True, job.note


def _why(error: OSError) -> str:
    return error.strerror or str(error)


def _stats(as_json: bool) -> int:
    """Totals over opted-in chats, for the operator: a table, or JSON."""
    import asyncio
    import json

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
    from pathlib import Path

    from bot import envfile, firstrun
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


def language_for(tag: str | None) -> str:
    """bot.i18n.language_for, without loading the catalogs' machinery for English."""
    primary = (tag or "").replace("_", "-").split("-")[0].split(".")[0].strip().lower()
    if primary in ("", ENGLISH, "c", "posix"):
        return ENGLISH
    from bot.i18n import language_for as known

    return known(tag)


def _terminal_language(env: Mapping[str, str]) -> str | None:
    """The language the terminal asks for, as gettext reads it (LANGUAGE, LC_ALL, ...)."""
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        if env.get(name):
            return env[name].split(":")[0]
    return None


def _inspect(
    names: list[str], recursive: bool, as_json: bool, language: str, limits: Limits
) -> int:
    """Print the summary a parent gets in a private chat, phrased as what cleaning would
    remove, or the findings as JSON (bot.cli_json)."""
    import json

    from bot import cli_json
    from bot.summary import render

    messages = Messages(language)
    status = EXIT_OK
    reports: list[dict[str, cli_json.JsonValue]] = []
    for source in cli_files.sources(names, recursive):
        if source.is_folder:
            print(messages.unread(source.path, messages.folder()), file=sys.stderr)
            reports.append(cli_json.error_report(source.path, messages.folder()))
            status = EXIT_REFUSED
            continue
        try:
            report = _inspected(source.path, limits)
        except (OSError, ScrubError) as error:
            reason = (
                messages.reason(error)
                if isinstance(error, ScrubError)
                else messages.cannot_read(_why(error))
            )
            print(messages.unread(source.path, reason), file=sys.stderr)
            reports.append(cli_json.error_report(source.path, reason))
            status = EXIT_REFUSED
            continue
        if as_json:
            reports.append(cli_json.file_report(source.path, report))
        else:
            videos = report.format.mime.startswith("video/")
            verdict, *rest = render(report.findings, language, videos=videos).text.split("\n")
            text = "\n".join([messages.would_remove(verdict, videos), *rest])
            print(f"{source.path} ({report.format.name})\n{text}\n", flush=True)
    if as_json:
        json.dump(cli_json.document(reports), sys.stdout, indent=2, ensure_ascii=False)
        print(flush=True)
    return status


def _inspected(path: str, limits: Limits) -> Inspection:
    """What the file holds: a video mapped and read by ranges, as `clean` reads it (so its
    size is no limit), anything else read whole."""
    from bot.scrub import inspect

    if path != STDIO:
        from bot import mapped_video

        video = mapped_video.open_video(path)
        if video is not None:
            with video:
                parsed, _ = mapped_video.inspect_parts(video, limits)
                inspection = Inspection(video.format, parsed)
                inspection.findings  # noqa: B018 - read while the file is mapped
                return inspection
    return inspect(cli_files.read_input(path, limits), limits)


if __name__ == "__main__":
    sys.exit(main())
