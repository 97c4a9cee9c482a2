"""The command line's files: which photos, where each clean copy goes, and writing it safely.

    sources(args, recursive, skip)    every photo named or found under a folder, in order
    plan(...)                         one `Job` per photo: its target, or why it gets none
    read_input(source, limits)        the photo's bytes (one copy from the kernel)
    write_atomically(target, data)    the whole file or nothing, never over a file unless asked

A target appears complete or not at all. Where the kernel can (Linux, O_TMPFILE), the copy is
written into an unnamed file in the target's folder and linked in under its name only once it
is complete, so nothing is left behind even if the process is killed. Elsewhere a hidden
temporary name is used, remembered in `TEMPORARY` and removed on error or Ctrl-C.
"""

import contextlib
import errno
import itertools
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.scrub import Limits

STDIO = "-"
MAX_RENAMES = 10_000  # "name-1.jpg" ... before a collision is reported as a refusal

TEMPORARY: set[str] = set()  # named temporary files of this process, removed on interrupt

# Writes a whole copy into an open file (readable too, so it can be checked before it is named);
# raising leaves nothing behind.
Writer = Callable[[int], None]


@dataclass(frozen=True)
class Source:
    path: str  # as the user typed it, or the folder they typed joined with the file's place
    relative: str  # where its copy goes under --out-dir
    is_folder: bool = False  # a folder named without -r: refused


@dataclass(frozen=True)
class Job:
    source: str
    target: str  # a path, or "-" for standard output; "" when `problem` says why not
    replace: bool = False  # an existing target may be replaced (--overwrite, --in-place)
    keep_mode: bool = False  # --in-place: the copy gets the original's permissions
    problem: str = ""  # why nothing is written (the reason part of a refusal line)
    folder: bool = False  # the source is a folder named without -r
    note: str = ""  # the line to print once it is done (its copy got another name, ...)


def sources(names: Sequence[str], recursive: bool, skip: str | None = None) -> list[Source]:
    """Each named photo, and with `recursive` each file under a named folder (sorted, links to
    folders not followed), leaving out the folder `skip` (the output folder) and its contents."""
    found: list[Source] = []
    skipped = os.path.realpath(skip) if skip else None
    for name in names:
        if name != STDIO and os.path.isdir(name):
            if not recursive:
                found.append(Source(name, os.path.basename(name), is_folder=True))
                continue
            top = os.path.basename(os.path.realpath(name))
            found.extend(_walk(name, top, skipped))
        else:
            found.append(Source(name, os.path.basename(name)))
    return found


def _walk(root: str, top: str, skipped: str | None) -> Iterator[Source]:
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(
            d for d in subfolders if os.path.realpath(os.path.join(folder, d)) != skipped
        )
        place = os.path.relpath(folder, root)
        for file in sorted(files):
            relative = os.path.normpath(os.path.join(top, place, file))
            yield Source(os.path.join(folder, file), relative)


def _links(path: str) -> int:
    try:
        return os.stat(path).st_nlink
    except (OSError, ValueError):
        return 1


def _identity(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


class PlanMessages(Protocol):
    """The reasons `plan` gives, in the user's language (bot.cli_text.Messages)."""

    def exists(self, target: str) -> str: ...

    def is_input(self, target: str) -> str: ...

    def other_links(self, file: str) -> str: ...

    def renamed(self, file: str, target: str) -> str: ...


def plan(
    found: Sequence[Source],
    *,
    output: str | None,
    out_dir: str | None,
    in_place: bool,
    overwrite: bool,
    messages: PlanMessages,
) -> list[Job]:
    """Where each photo's copy goes. Never onto one of the inputs (unless --in-place), never onto
    an existing file (unless --overwrite), and never two copies onto one name: a later photo
    whose name is taken gets "name-1.jpg" (and a note saying so)."""
    inputs = {ident for s in found if s.path != STDIO and (ident := _identity(s.path))}
    taken: set[str] = set()
    seen_inputs: set[tuple[int, int]] = set()
    jobs: list[Job] = []
    for source in found:
        if source.is_folder:
            jobs.append(Job(source.path, "", folder=True))
            continue
        if in_place:
            ident = _identity(source.path)
            if ident is not None and ident in seen_inputs:
                continue  # the same file named twice: cleaned once
            if ident is not None:
                seen_inputs.add(ident)
            target = os.path.realpath(source.path)
            note = messages.other_links(source.path) if _links(target) > 1 else ""
            jobs.append(Job(source.path, target, True, keep_mode=True, note=note))
            continue
        wanted = output if output is not None else os.path.join(out_dir or ".", source.relative)
        if wanted == STDIO:
            jobs.append(Job(source.path, STDIO))
            continue
        target, problem = _free_name(wanted, taken, inputs, overwrite, messages)
        note = messages.renamed(source.path, target) if target and target != wanted else ""
        if target:
            taken.add(os.path.abspath(target))
        jobs.append(Job(source.path, target, overwrite, problem=problem, note=note))
    return jobs


def _free_name(
    wanted: str,
    taken: set[str],
    inputs: set[tuple[int, int]],
    overwrite: bool,
    messages: PlanMessages,
) -> tuple[str, str]:
    """(target, "") for `wanted` or the first free "stem-N.ext", or ("", why not)."""
    stem, extension = os.path.splitext(wanted)
    candidates = itertools.chain(
        [wanted], (f"{stem}-{n}{extension}" for n in range(1, MAX_RENAMES))
    )
    first = True
    for candidate in candidates:
        if os.path.abspath(candidate) in taken:
            first = False
            continue
        ident = _identity(candidate)
        if ident is not None and ident in inputs:
            if first:
                return "", messages.is_input(candidate)
            continue
        if ident is not None and not overwrite:
            if first:
                return "", messages.exists(candidate)
            continue
        return candidate, ""
    return "", messages.exists(wanted)


def read_input(source: str, limits: Limits) -> bytes:
    """The bytes of `source` ("-": standard input), refused over the size limit before reading
    where the size is known. OSError when it cannot be read; TooLarge over the limit."""
    if source == STDIO:
        data = sys.stdin.buffer.read(limits.max_bytes + 1)
        limits.check_size(len(data))
        return data
    with open(source, "rb", buffering=0) as handle:
        fd = handle.fileno()
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # a pipe or device: its size is known at the end
            data = handle.read(limits.max_bytes + 1) or b""
            limits.check_size(len(data))
            return data
        limits.check_size(info.st_size)
        # One read into a bytes object of exactly the file's size: no buffer to grow or copy.
        data = os.read(fd, info.st_size) if info.st_size else b""
        while len(data) < info.st_size:  # only if it is shrinking under us, or a slow read
            more = os.read(fd, info.st_size - len(data))
            if not more:
                break
            data += more
        if os.read(fd, 1):  # it grew while we read it: read it whole, within the limit
            os.lseek(fd, 0, os.SEEK_SET)
            data = handle.read(limits.max_bytes + 1) or b""
            limits.check_size(len(data))
    return data


def write_stdout(data: bytes) -> None:
    sys.stdout.flush()
    out = sys.stdout.buffer
    out.write(data)
    out.flush()


def make_folders(folder: str) -> None:
    """Create `folder` and its parents as needed; a file in the way is "Not a directory"."""
    if not folder or os.path.isdir(folder):
        return
    try:
        os.makedirs(folder, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), folder) from None


def write_atomically(
    target: str, data: bytes | Writer, *, replace: bool, keep_mode: bool = False
) -> None:
    """Write `data` as `target`, all or nothing. Without `replace` an existing `target` raises
    FileExistsError and is left alone; with it, the old file is swapped for the new in one
    rename, after the new one is on disk (`keep_mode`: with the old one's permissions).
    `data` may be a `Writer` that fills the open file itself (a video copied by ranges); if it
    raises, the file never gets a name."""
    folder = os.path.dirname(target) or "."
    like = os.stat(target) if keep_mode else None
    unnamed = _open_unnamed(folder)
    if unnamed is not None:
        try:
            _write_all(unnamed, data, like, sync=keep_mode)
            if _link_unnamed(unnamed, target, folder, replace):
                return
        finally:
            os.close(unnamed)
    _write_named(target, folder, data, like, replace, sync=keep_mode)


def _open_unnamed(folder: str) -> int | None:
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(folder, flag | os.O_RDWR | os.O_CLOEXEC, 0o666)
    except OSError as error:
        if error.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            return None  # this file system (or kernel) has no unnamed files
        raise


def _link_unnamed(fd: int, target: str, folder: str, replace: bool) -> bool:
    """Give the complete unnamed file its name; False when the kernel will not link it."""
    # linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd/N names the unnamed file; os.link calls
    # linkat (rather than link, which would refuse) only when given a directory fd.
    try:
        proc = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if not replace:
            os.link(str(fd), target, src_dir_fd=proc)  # fails if target exists: no race
            return True
        temporary = _temporary_name(target, folder)
        TEMPORARY.add(temporary)
        try:
            os.link(str(fd), temporary, src_dir_fd=proc)
            os.replace(temporary, target)
        finally:
            _remove(temporary)
        return True
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.EPERM, errno.EXDEV, errno.EOPNOTSUPP):
            return False
        raise
    finally:
        os.close(proc)


def _write_named(
    target: str,
    folder: str,
    data: bytes | Writer,
    like: os.stat_result | None,
    replace: bool,
    *,
    sync: bool,
) -> None:
    temporary = _temporary_name(target, folder)
    TEMPORARY.add(temporary)
    try:
        fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            _write_all(fd, data, like, sync=sync)
        finally:
            os.close(fd)
        if replace:
            os.replace(temporary, target)
        else:
            try:
                os.link(temporary, target)
            except OSError as error:
                if error.errno not in (errno.EPERM, errno.EOPNOTSUPP):
                    raise
                if os.path.lexists(target):  # a file system without hard links
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST)) from None
                os.replace(temporary, target)
    finally:
        _remove(temporary)


def _temporary_name(target: str, folder: str) -> str:
    name = f".{os.path.basename(target)}.{os.getpid()}-{os.urandom(4).hex()}.scrubbot-partial"
    return os.path.join(folder, name)


def _write_all(fd: int, data: bytes | Writer, like: os.stat_result | None, *, sync: bool) -> None:
    """All of `data` into `fd`; with `like` (the file it replaces) its permissions and, where
    we may set them, its owner and group."""
    if isinstance(data, bytes):
        write_bytes(fd, data)
    else:
        data(fd)
    if like is not None:
        if (like.st_uid, like.st_gid) != (os.geteuid(), os.getegid()):
            with contextlib.suppress(PermissionError):
                os.fchown(fd, like.st_uid, like.st_gid)
        os.fchmod(fd, stat.S_IMODE(like.st_mode))  # after fchown, which may clear set-id bits
    if sync:  # --in-place: the new copy is on disk before it replaces the only original
        os.fsync(fd)


def write_bytes(fd: int, data: bytes) -> None:
    """All of `data` into `fd` (at its position); a full disk is ENOSPC."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    TEMPORARY.discard(path)


def remove_temporaries() -> None:
    """Remove every named temporary file this process still has (on Ctrl-C)."""
    for path in list(TEMPORARY):
        try:
            _remove(path)
        except OSError:
            TEMPORARY.discard(path)
