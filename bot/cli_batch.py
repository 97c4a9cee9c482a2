"""Run one function over many jobs on every core, reporting the results in input order.

    run(jobs, work, report, workers)    report(index, result) for each job, in order

Scrubbing is CPU-bound Python, so the work is spread over forked worker processes, one per core
this process may run on. Each worker reads the inputs and writes its outputs itself; only the
job's index goes to it and a short result (done or not, and a line of text) comes back, never
a photo. A worker
gets its next job as soon as it hands back a result, so a large photo does not hold up the rest.
Ctrl-C (SIGINT to the whole process group) or SIGTERM from the parent stops the workers after
their write has cleaned up (see bot.cli_files); the parent then raises KeyboardInterrupt.
"""

import contextlib
import os
import select
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

_J = TypeVar("_J")
Result = tuple[bool, str]  # (done, the line to print or "")
QUEUED = 2  # jobs handed to a worker ahead of its results: one in work, one waiting
EXIT_INTERRUPTED = 130


def cores() -> int:
    """The cores this process may use (its affinity, not merely the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def run(
    jobs: Sequence[_J],
    work: Callable[[_J], Result],
    report: Callable[[int, Result], None],
    workers: int,
    lost: Callable[[int], Result],
) -> None:
    """`work` over `jobs`; `report` sees each result in input order. `lost(index)` stands in
    for the result of a job whose worker died (it was killed, or ran out of memory)."""
    workers = min(workers, len(jobs))
    if workers <= 1 or not hasattr(os, "fork"):
        for index, job in enumerate(jobs):
            report(index, work(job))
        return
    _forked(jobs, work, report, workers, lost)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _serve(inbox: int, outbox: int, jobs: Sequence[_J], work: Callable[[_J], Result]) -> None:
    """A worker: job indices in (4 bytes each), one framed result out per job. Never returns."""
    code = 0
    try:
        signal.signal(signal.SIGTERM, _interrupt)
        with os.fdopen(inbox, "rb") as indices, os.fdopen(outbox, "wb") as results:
            while len(raw := indices.read(4)) == 4:
                index = int.from_bytes(raw, "little")
                done, line = work(jobs[index])
                results.write(_frame(index, done, line))
                results.flush()
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except BaseException:
        code = 70
    finally:
        os._exit(code)


_HEAD = 9  # index (4 bytes), done (1), length of the text (4)


def _frame(index: int, done: bool, line: str) -> bytes:
    text = line.encode("utf-8", "surrogateescape")  # file names need not be UTF-8
    head = index.to_bytes(4, "little") + bytes([done]) + len(text).to_bytes(4, "little")
    return head + text


def _unframe(buffer: bytes) -> tuple[list[tuple[int, Result]], bytes]:
    """The complete results at the start of `buffer`, and the rest."""
    found = []
    while len(buffer) >= _HEAD:
        size = int.from_bytes(buffer[5:9], "little")
        if len(buffer) < _HEAD + size:
            break
        index = int.from_bytes(buffer[:4], "little")
        text = buffer[_HEAD : _HEAD + size].decode("utf-8", "surrogateescape")
        found.append((index, (bool(buffer[4]), text)))
        buffer = buffer[_HEAD + size :]
    return found, buffer


class _Worker:
    def __init__(self, pid: int, inbox: int, outbox: int) -> None:
        self.pid, self.inbox, self.outbox = pid, inbox, outbox
        self.pending: list[int] = []
        self.buffer = b""


def _forked(
    jobs: Sequence[_J],
    work: Callable[[_J], Result],
    report: Callable[[int, Result], None],
    count: int,
    lost: Callable[[int], Result],
) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    workers: dict[int, _Worker] = {}  # by the fd their results come from
    try:
        for _ in range(count):
            job_read, job_write = os.pipe()
            result_read, result_write = os.pipe()
            pid = os.fork()
            if pid == 0:
                for other in workers.values():  # or their workers would never see the end
                    os.close(other.inbox)
                    os.close(other.outbox)
                os.close(job_write)
                os.close(result_read)
                _serve(job_read, result_write, jobs, work)
            os.close(job_read)
            os.close(result_write)
            workers[result_read] = _Worker(pid, job_write, result_read)
        _collect(jobs, report, workers, lost)
    except BaseException:
        for worker in workers.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGTERM)
        raise
    finally:
        for worker in workers.values():
            for fd in (worker.inbox, worker.outbox):
                with contextlib.suppress(OSError):
                    os.close(fd)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(worker.pid, 0)


def _collect(
    jobs: Sequence[object],
    report: Callable[[int, Result], None],
    workers: dict[int, _Worker],
    lost: Callable[[int], Result],
) -> None:
    results: dict[int, Result] = {}
    following = 0  # the next index to report
    queued = 0  # jobs handed out so far

    def hand_out(worker: _Worker) -> None:
        nonlocal queued
        if queued < len(jobs) and worker.inbox >= 0:
            try:
                os.write(worker.inbox, queued.to_bytes(4, "little"))
            except BrokenPipeError:  # it died: the job stays for the others
                os.close(worker.inbox)
                worker.inbox = -1
                return
            worker.pending.append(queued)
            queued += 1
        if queued == len(jobs):
            for each in workers.values():  # no more jobs: each worker ends after its last
                if each.inbox >= 0:
                    os.close(each.inbox)
                    each.inbox = -1

    for _ in range(QUEUED):  # round by round, so a short batch is spread over every worker
        for worker in list(workers.values()):
            if worker.inbox >= 0:
                hand_out(worker)
    poller = select.poll()
    for fd in workers:
        poller.register(fd, select.POLLIN)
    live = len(workers)
    while live:
        for fd, _event in poller.poll():
            worker = workers[fd]
            chunk = os.read(fd, 65536)
            if not chunk:  # the worker is gone; whatever it still had is lost
                poller.unregister(fd)
                live -= 1
                for index in worker.pending:
                    results[index] = lost(index)
                worker.pending.clear()
                continue
            found, worker.buffer = _unframe(worker.buffer + chunk)
            for index, result in found:
                worker.pending.remove(index)
                results[index] = result
                hand_out(worker)
        while following in results:
            report(following, results.pop(following))
            following += 1
    while following < len(jobs):  # handed to no one: every worker died early
        report(following, results.pop(following) if following in results else lost(following))
        following += 1
