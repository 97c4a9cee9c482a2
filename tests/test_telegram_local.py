"""Big videos with a local Bot API server: cleaned where they lie, uploaded as they are read.

In process: the skeleton check of `bot.mapped_video` gives the same verdict and the same parts
whatever the ranges of the output hold (zeros, random bytes, the real samples), over plain and
fragmented clips, and refuses layouts that are not clean; the reader streams exactly the clean
copy and stops when its file changes. End to end through `scrubbot run` against the fake Bot
API in local mode: a clip of about 80 MB (made here with ffmpeg: a planted title, place and a
subtitle track) sent as a file, SCRUBBOT_MAX_BYTES=8000000; the upload is hashed by the fake as
it arrives and equals `scrubbot clean`'s output, ExifTool (-ee) and ffmpeg's stream hashes judge
it, and the bot's peak memory stays far below the clip's size.
"""

import asyncio
import hashlib
import mmap
import os
import random
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from bot import chat as core
from bot import mapped_video
from bot.errors import NotClean
from bot.formats import mp4
from bot.scrub import Limits, scrub
from bot.service import Service
from bot.store import Store
from tests.fake_network import FakeDialect
from tests.fake_telegram import DROPPED, Call, FakeTelegram, Upload
from tests.test_mp4 import (
    FRAGMENTED,
    codes,
    exif_tags,
    fragmented_clip,
    leftovers,
    make_clip,
    phone_clip,
    stream_hashes,
    timed_fragmented_clip,
    top_boxes,
)
from tests.test_telegram import (
    ROOT,
    TOKEN,
    bot_environment,
    leaky_photo,
    methods,
    replies,
    texts,
)
from tests.test_telegram_groups import ADMIN, DELETE_RIGHTS, GROUP, group_sends, in_group

FFMPEG = shutil.which("ffmpeg")
pytestmark = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is missing: .ci/run installs it")

MAX_BYTES = 8_000_000  # the bot's in-memory limit in these tests: the clip is ten times that
CLIP_SECONDS = 40  # lossless 720p: about 80 MB
PARENT = 1001


# --- in process: the skeleton check --------------------------------------------------------------


def _clip(tmp_path: Path, kind: str) -> bytes:
    value = codes(sum(map(ord, kind)))
    if kind == "phone":
        return phone_clip(tmp_path, "mov", value)
    if kind == "timed-fragmented":
        return timed_fragmented_clip(tmp_path, value)
    if kind in FRAGMENTED:
        return fragmented_clip(tmp_path, kind, value)
    return make_clip(tmp_path, kind, "-metadata", f"title={value['title']}")


def _filled(parts: list[mp4.Part], fill: bytes | None) -> bytes:
    """The output laid out as `parts`, the ranges filled with `fill` (None: zeros)."""
    out = bytearray(mapped_video.size_of(parts))
    pos = 0
    for part in parts:
        if isinstance(part, bytes):
            out[pos : pos + len(part)] = part
            pos += len(part)
        else:
            if fill is not None:
                out[pos : pos + part[1]] = fill[: part[1]]
            pos += part[1]
    return bytes(out)


@pytest.mark.parametrize(
    "kind", ["mp4", "mp4-faststart", "mov", "3gp", "phone", *FRAGMENTED, "timed-fragmented"]
)
def test_the_verdict_never_depends_on_the_samples(kind: str, tmp_path: Path) -> None:
    """The parser reads nothing of a kept sample: with the ranges zero, random or the real
    samples, the output parses the same, checks the same, and strips to the same parts."""
    data = _clip(tmp_path, kind)
    source = tmp_path / "source.mp4"
    source.write_bytes(data)
    cleaned = mapped_video.clean_file(str(source), Limits(), 1 << 40)
    parts = list(cleaned.stream.parts)
    output = scrub(data).data
    assert any(not isinstance(part, bytes) for part in parts)  # there are samples to ignore
    noise = random.Random(kind).randbytes(max(p[1] for p in parts if isinstance(p, tuple)))
    fmt = cleaned.inspection.format
    results = []
    for laid_out in (_filled(parts, None), _filled(parts, noise), output):
        mapped_video.check_layout(fmt, laid_out, parts)
        results.append(mp4.parse_parts(laid_out))
    assert results[0] == results[1] == results[2]
    with cleaned.stream.open() as reader:
        assert reader.read() == output  # what the bot uploads: the in-memory clean copy


def test_a_layout_that_is_not_clean_is_refused(tmp_path: Path) -> None:
    data = phone_clip(tmp_path, "mov", codes(3))
    fmt = scrub(data).format
    boxes = top_boxes(data)
    # The input's own layout, its samples as ranges: parses, but with everything planted.
    first = next(b for b in boxes if b.type == b"mdat")
    as_it_was: list[mp4.Part] = [data[: first.body], (first.body, first.end - first.body)]
    as_it_was.append(data[first.end :])
    with pytest.raises(NotClean):
        mapped_video.verify_parts(fmt, as_it_was)
    # A clean copy whose samples are given as our bytes: stripping it again makes them ranges,
    # so the layout differs (what is in the ranges must never be decided by our bytes).
    source = tmp_path / "source.mov"
    source.write_bytes(data)
    parts = list(mapped_video.clean_file(str(source), Limits(), 1 << 40).stream.parts)
    as_bytes = [bytes(p[1]) if isinstance(p, tuple) else p for p in parts]
    with pytest.raises(NotClean):
        mapped_video.verify_parts(fmt, as_bytes)
    with pytest.raises(NotClean):
        mapped_video.verify_parts(fmt, [])


def read_all(reader: mapped_video.PartsReader) -> None:
    while reader.read(4096):  # bounded: it ends with the copy's size
        pass


def test_the_reader_stops_when_its_file_changes(tmp_path: Path) -> None:
    data = make_clip(tmp_path, "mp4", "-t", "1")
    source = tmp_path / "source.mp4"
    source.write_bytes(data)
    stream = mapped_video.clean_file(str(source), Limits(), 1 << 40).stream
    with stream.open() as reader:
        assert reader.seek(0, os.SEEK_END) == stream.size == len(scrub(data).data)
        reader.seek(0)
        with source.open("r+b") as file:
            file.truncate(len(data) - 100)
        with pytest.raises(mapped_video.SourceChanged):
            read_all(reader)
    with pytest.raises(mapped_video.SourceChanged):
        stream.open()  # shorter than it was
    replacement = tmp_path / "replacement.mp4"
    replacement.write_bytes(data)
    replacement.replace(source)  # the same bytes, but another file
    with pytest.raises(mapped_video.SourceChanged):
        stream.open()


async def test_the_fake_refuses_what_a_local_server_refuses(tmp_path: Path) -> None:
    """Over 2000 MB a local Bot API server takes no upload (here the limit is made small)."""
    async with FakeTelegram(TOKEN, local_dir=tmp_path) as fake:
        fake.upload_limit = 1 << 20
        url = f"{fake.api_url}{TOKEN}/sendDocument"
        async with httpx.AsyncClient() as client:
            files = {"document": ("v.mp4", b"x" * (2 << 20), "video/mp4")}
            answer = await client.post(url, data={"chat_id": "1"}, files=files)
            assert answer.status_code == 413
            files = {"document": ("v.mp4", b"x" * 1000, "video/mp4")}
            answer = await client.post(url, data={"chat_id": "1"}, files=files)
            assert answer.status_code == 400  # no such chat: but the upload was taken
        (_, taken) = fake.calls
        assert taken.uploads["document"].size == 1000
        assert taken.uploads["document"].content_length is not None


# --- in process: the chat core's choice --------------------------------------------------------


async def test_the_core_takes_the_local_way_only_over_its_limit(tmp_path: Path) -> None:
    """Over SCRUBBOT_MAX_BYTES but within the network's limit, a file the network can show
    where it lies is cleaned there (nothing fetched); otherwise everything is as before."""
    clip = make_clip(tmp_path, "mp4", "-metadata", "title=planted")
    path = tmp_path / "on-disk.mp4"
    path.write_bytes(clip)
    store = await Store.open(tmp_path / "data" / "db.sqlite3", tmp_path / "data" / "store.key")
    service = Service(Limits(max_bytes=len(clip)))
    chat = core.Chat("fake", FakeDialect(download_limit=len(clip) * 2), service, store)
    asked: list[str] = []

    def photo(size: int, where: str | None) -> core.Photo:
        async def fetch() -> bytes:
            asked.append("fetch")
            return clip

        async def local() -> str | None:
            asked.append("local")
            return where

        return core.Photo(size, fetch, local)

    async def answer(*photos: core.Photo) -> list[core.Action]:
        asked.clear()
        event = core.Photos(core.Where("chat"), core.Who("someone"), photos)
        return await chat.photos(event)

    try:
        sent, summary = await answer(photo(len(clip) + 1, str(path)))
        assert asked == ["local"]
        assert isinstance(sent, core.SendFiles)
        (streamed,) = sent.files
        assert streamed.data == b""
        assert streamed.stream is not None
        with streamed.stream.open() as reader:
            assert reader.read() == scrub(clip).data
        assert isinstance(summary, core.Say)
        assert summary.summary is not None
        for where, size in ((None, len(clip) + 1), (str(path), len(clip) * 3)):
            (refused,) = await answer(photo(size, where))
            assert refused == core.Say(f"too large: up to {len(clip)} bytes")
            assert asked == (["local"] if where is None else [])  # over the network's: not asked
        sent, _ = await answer(photo(len(clip), str(path)))
        assert asked == ["fetch"]  # within the limit: in memory, as before
        assert isinstance(sent, core.SendFiles)
        assert sent.files[0].stream is None
        assert sent.files[0].data == scrub(clip).data
    finally:
        service.close()
        await store.close()


# --- end to end: `scrubbot run` with a local Bot API server --------------------------------------


@pytest.fixture(scope="module")
def planted() -> dict[str, str]:
    rng = random.Random(os.urandom(8))
    return {
        "title": f"title{rng.randrange(10**9)}",
        "subtitle": f"subtitle{rng.randrange(10**9)}",
        "lat": f"{rng.uniform(10, 60):+08.4f}",
        "lon": f"{rng.uniform(10, 120):+09.4f}",
    }


@pytest.fixture(scope="module")
def big_clip(tmp_path_factory: pytest.TempPathFactory, planted: dict[str, str]) -> Path:
    """Lossless 720p H.264 with AAC sound and a subtitle track, a title and a place."""
    folder = tmp_path_factory.mktemp("local")
    subtitles = folder / "subs.srt"
    subtitles.write_text(f"1\n00:00:00,000 --> 00:00:30,000\n{planted['subtitle']}\n")
    clip = folder / "big.mp4"
    subprocess.run(
        [
            *(str(FFMPEG), "-v", "error", "-y"),
            *("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"),
            *("-f", "lavfi", "-i", "sine=frequency=440", "-i", str(subtitles)),
            *("-map", "0:v", "-map", "1:a", "-map", "2:s", "-t", str(CLIP_SECONDS)),
            *("-c:v", "libx264", "-preset", "ultrafast", "-qp", "0"),
            *("-c:a", "aac", "-c:s", "mov_text"),
            *("-metadata", f"title={planted['title']}"),
            *("-metadata", f"location={planted['lat']}{planted['lon']}/"),
            str(clip),
        ],
        check=True,
    )
    assert clip.stat().st_size > 8 * MAX_BYTES
    return clip


@pytest.fixture(scope="module")
def reference(big_clip: Path) -> Path:
    """What `scrubbot clean` writes for the clip."""
    out = big_clip.with_name("reference.mp4")
    subprocess.run(
        [sys.executable, "-m", "bot", "clean", str(big_clip), "--output", str(out)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return out


def file_size(path: Path) -> int:
    return path.stat().st_size


def folder(path: Path) -> Path:
    path.mkdir()
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while piece := file.read(1 << 20):
            digest.update(piece)
    return digest.hexdigest()


def on_disk(clip: Path, folder: Path, name: str = "clip.mp4") -> Path:
    """The clip on the local server's disk (a hard link where it can: no second copy)."""
    folder.mkdir(exist_ok=True)
    target = folder / name
    try:
        os.link(clip, target)
    except OSError:
        shutil.copyfile(clip, target)
    return target


def free_boxes(path: Path) -> list[bytes]:
    """The contents of the file's top-level 'free' boxes."""
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        found = top_boxes(data)  # slices of an mmap are bytes
        return [data[box.body : box.end] for box in found if box.type == b"free"]


def memory(pid: int, field: str = "VmHWM") -> int:
    """The process's peak resident memory so far (VmHWM) or its resident memory now (VmRSS),
    in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1)) * 1024


@asynccontextmanager
async def bot_process(
    fake: FakeTelegram, workdir: Path, **env: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, Path]]:
    """`scrubbot run` against the fake, ready once it polls; yields the process (for its memory)
    and its log, and checks a clean stop (as `tests.test_telegram.running_bot`)."""
    log_path = workdir.parent / f"{workdir.name}.log"
    environment = bot_environment(fake, workdir, SCRUBBOT_MAX_BYTES=str(MAX_BYTES), **env)
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=workdir, env=environment, stderr=log_file
        )
        try:
            await fake.wait_for(lambda calls: "getUpdates" in methods(calls), timeout=30)
            yield process, log_path
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), timeout=30)
    assert code == 0, log_path.read_text()


def uploads(fake: FakeTelegram) -> list[tuple[Call, Upload]]:
    return [(c, u) for c in fake.calls if c.method == "sendDocument" for u in c.uploads.values()]


async def test_a_big_video_is_cleaned_where_it_lies_and_streamed(
    big_clip: Path, reference: Path, planted: dict[str, str], tmp_path: Path
) -> None:
    """The first upload fails with a 502: the retry sends the whole file again, from the start."""
    server = tmp_path / "server"
    source = on_disk(big_clip, server)
    async with FakeTelegram(TOKEN, local_dir=server) as fake:
        async with bot_process(fake, folder(tmp_path / "work"), TELEGRAM_LOCAL_MODE="1") as (
            bot,
            log,
        ):
            before = memory(bot.pid, "VmRSS")  # the peak may lie above: this is stricter
            fake.fail_next("sendDocument", 502, "Bad Gateway")
            fake.add_local_document(source, user_id=PARENT, file_name="VID_20250502.mp4")
            await fake.wait_for(lambda calls: bool(texts(fake, PARENT)), timeout=120)
            peak = memory(bot.pid)
        log_text = log.read_text()
    size = file_size(big_clip)
    grown = peak - before
    print(f"\nclip {size / 1e6:.1f} MB: the bot's RSS {before / 1e6:.1f} MB before it, ", end="")
    print(f"peak RSS {peak / 1e6:.1f} MB after (+{grown / 1e6:.1f} MB)")
    # The bot alone (PTB, the place index) takes more than half the clip: what the clip adds
    # is what it must not hold (in memory, it would add its size and the clean copy's).
    assert grown < size / 8, (peak, before, size)
    (summary,) = texts(fake, PARENT)
    assert summary.startswith("This video contained")
    (failed, first), (sent, second) = uploads(fake)
    assert (failed.error_code, sent.error_code) == (502, None)
    assert replies(fake, PARENT, "sendDocument") == [sent]
    expected = sha256(reference)
    for upload in (first, second):  # each attempt the whole clean copy, with its length
        assert upload.file_name == "video.mp4"
        assert upload.size == file_size(reference) < size
        assert upload.sha256 == expected
        assert upload.content_length is not None
        assert upload.content_length > upload.size
    assert fake.downloads == []  # read where it lies, never over HTTP
    cleaned = second.path
    left = leftovers(cleaned)
    if left.pop("QuickTime:Free", None) is not None:  # the padding before a run: zeros only
        assert all(not pad.strip(b"\0") for pad in free_boxes(cleaned))
    assert left == {}
    tags = str(exif_tags(cleaned))
    for value in planted.values():
        assert value not in tags
    assert stream_hashes(cleaned) == stream_hashes(big_clip)
    for secret in (TOKEN, str(source), "VID_20250502", planted["title"], str(PARENT)):
        assert secret not in log_text
    assert "streamed from a local file" in log_text


def first_part(clip: Path, target: Path, share: float) -> Path:
    with clip.open("rb") as whole, target.open("wb") as part:
        os.copy_file_range(whole.fileno(), part.fileno(), int(file_size(clip) * share))
    return target


async def test_in_a_group_an_album_with_a_big_video_is_replaced(
    big_clip: Path, reference: Path, planted: dict[str, str], tmp_path: Path
) -> None:
    """A streamed video and a photo in memory, in one album posted in their place (replace)."""
    server = tmp_path / "server"
    source = on_disk(big_clip, server)
    async with FakeTelegram(TOKEN, local_dir=server) as fake:
        fake.add_bot_status(GROUP, "administrator", by_user=ADMIN, **DELETE_RIGHTS)
        async with bot_process(fake, folder(tmp_path / "work"), TELEGRAM_LOCAL_MODE="1"):
            await fake.wait_for(lambda calls: bool(group_sends(fake)), timeout=30)
            album = {"user_id": PARENT, "first_name": "Jo", "media_group_id": "g1"}
            video = fake.add_local_document(source, **album, **in_group())
            photo = fake.add_document(leaky_photo(4), **album, **in_group())
            await fake.wait_for(
                lambda calls: len([c for c in calls if c.method == "deleteMessage"]) == 2,
                timeout=60,
            )
    sent = methods(fake.calls)
    assert sent.index("sendMediaGroup") < sent.index("deleteMessage")  # post, then delete
    deleted = {c.params["message_id"] for c in fake.calls if c.method == "deleteMessage"}
    assert deleted == {video, photo}
    (copy,) = [c for c in group_sends(fake) if c.method == "sendMediaGroup"]
    caption = str(copy.params["media"][0]["caption"])
    assert caption.startswith("These 2 photos and videos contained")
    assert "Clean copies of photos and videos from Jo." in caption
    streamed = [u for u in copy.uploads.values() if u.size > MAX_BYTES]
    assert [u.sha256 for u in streamed] == [sha256(reference)]
    assert sorted(str(u.file_name) for u in copy.uploads.values()) == [
        "photo-2.jpg",
        "video-1.mp4",
    ]
    for value in planted.values():
        assert value not in caption


def lying(clip: Path, target: Path) -> Path:
    """A copy whose 'mdat' claims to reach past the end of the file."""
    first_part(clip, target, 1)
    with target.open("r+b") as file:
        head = file.read(1 << 16)
        at = head.index(b"mdat") - 4
        file.seek(at)
        file.write((file_size(clip) - at + 1000).to_bytes(4, "big"))
    return target


@pytest.mark.parametrize("damage", ["truncated", "lying"])
async def test_a_damaged_big_video_is_refused_in_one_line(
    damage: str, big_clip: Path, tmp_path: Path
) -> None:
    server = folder(tmp_path / "server")
    if damage == "truncated":  # the first 60 %: the movie box at its end is missing
        broken = first_part(big_clip, server / "broken.mp4", 0.6)
    else:
        broken = lying(big_clip, server / "broken.mp4")
    async with (
        FakeTelegram(TOKEN, local_dir=server) as fake,
        bot_process(fake, folder(tmp_path / "work"), TELEGRAM_LOCAL_MODE="1"),
    ):
        fake.add_local_document(broken, user_id=PARENT)
        await fake.wait_for(lambda calls: bool(texts(fake, PARENT)), timeout=60)
    assert texts(fake, PARENT) == ["This file is damaged or incomplete, so I could not clean it."]
    assert uploads(fake) == []


async def test_a_video_that_shrinks_while_it_is_sent_is_not_sent(
    big_clip: Path, tmp_path: Path
) -> None:
    server = folder(tmp_path / "server")
    # a copy of its own: it is cut while it is uploaded
    source = first_part(big_clip, server / "clip.mp4", 1)
    whole = file_size(big_clip)

    def cut(received: int) -> None:
        if received > 4 << 20 and file_size(source) == whole:
            os.truncate(source, whole // 2)

    async with FakeTelegram(TOKEN, local_dir=server) as fake:
        fake.while_uploading = cut
        async with bot_process(fake, folder(tmp_path / "work"), TELEGRAM_LOCAL_MODE="1") as (
            _,
            log,
        ):
            fake.add_local_document(source, user_id=PARENT)
            await fake.wait_for(lambda calls: bool(texts(fake, PARENT)), timeout=60)
            await asyncio.sleep(1)  # nothing follows the refusal
        log_text = log.read_text()
    assert texts(fake, PARENT) == ["This file is damaged or incomplete, so I could not clean it."]
    assert replies(fake, PARENT, "sendDocument") == []
    (aborted,) = [c for c in fake.calls if c.method == "sendDocument"]  # tried once, no retry
    assert aborted.error_code == DROPPED
    assert "Traceback" not in log_text


async def test_without_a_local_server_a_big_video_gets_the_size_message(
    big_clip: Path, tmp_path: Path
) -> None:
    """Not in local mode, or in local mode with a path the bot cannot read: refused before
    anything is downloaded, with the size message, as before."""
    small = make_clip(tmp_path, "mp4")
    size = file_size(big_clip)
    async with FakeTelegram(TOKEN) as fake, bot_process(fake, folder(tmp_path / "cloud")):
        fake.add_document(small, user_id=PARENT, file_name="v.mp4", file_size=size)
        await fake.wait_for(lambda calls: bool(texts(fake, PARENT)), timeout=30)
    (cloud,) = texts(fake, PARENT)
    assert "too large" in cloud
    assert "7 MB" in cloud
    assert "getFile" not in methods(fake.calls)
    assert fake.downloads == []
    server = tmp_path / "server"
    gone = on_disk(big_clip, server)
    async with (
        FakeTelegram(TOKEN, local_dir=server) as fake,
        bot_process(fake, folder(tmp_path / "local"), TELEGRAM_LOCAL_MODE="1"),
    ):
        fake.add_local_document(gone, user_id=PARENT)
        os.unlink(gone)  # before the bot asks for it: the path is on no disk it can read
        await fake.wait_for(lambda calls: bool(texts(fake, PARENT)), timeout=30)
    assert texts(fake, PARENT) == [cloud]
    assert fake.downloads == []
    assert uploads(fake) == []
