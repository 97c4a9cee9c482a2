"""The opt-in usage store on real SQLite files: what is kept, what is not, and forgetting."""

import asyncio
import os
import sqlite3
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.findings import Kind
from bot.store import MIGRATIONS, Store, StoreError

CHAT_ID = -100987654321


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "data" / "db.sqlite3", tmp_path / "data" / "key")
    yield opened
    await opened.close()


def file_bytes(folder: Path) -> bytes:
    """Everything SQLite wrote: the database, its write-ahead log and shared memory."""
    return b"".join(p.read_bytes() for p in sorted(folder.glob("db.sqlite3*")))


async def test_nothing_is_recorded_without_opt_in(store: Store, tmp_path: Path) -> None:
    chat = store.chat_key("telegram", CHAT_ID)
    assert not await store.record(chat, [("jpeg", {Kind.LOCATION})], refused=1)
    assert (await store.counts(chat)).rows == ()
    assert chat.encode() not in await asyncio.to_thread(file_bytes, tmp_path / "data")


async def test_opt_in_counts_per_format_and_kind(store: Store) -> None:
    chat = store.chat_key("telegram", CHAT_ID)
    await store.opt_in(chat)
    assert await store.record(chat, [("jpeg", {Kind.LOCATION, Kind.TRACKING, Kind.OTHER})])
    assert await store.record(chat, [("jpeg", {Kind.LOCATION}), ("png", set())], refused=2)
    counts = await store.counts(chat)
    assert counts.rows == (
        ("-", "refused", 2),
        ("jpeg", "cleaned", 2),
        ("jpeg", "location", 2),
        ("jpeg", "tracking", 1),
        ("png", "cleaned", 1),
    )
    assert counts.total("cleaned") == 3
    other = store.chat_key("telegram", CHAT_ID + 1)
    assert (await store.counts(other)).rows == ()


async def test_chats_are_keyed_by_a_keyed_hash_never_the_id(store: Store, tmp_path: Path) -> None:
    chat = store.chat_key("telegram", CHAT_ID)
    assert chat != store.chat_key("matrix", CHAT_ID)
    assert len(chat) == 64
    await store.opt_in(chat)
    await store.record(chat, [("jpeg", {Kind.PEOPLE})])
    stored = await asyncio.to_thread(file_bytes, tmp_path / "data")
    assert str(CHAT_ID).encode() not in stored
    assert str(abs(CHAT_ID)).encode() not in stored
    key = tmp_path / "data" / "key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "data" / "db.sqlite3").stat().st_mode) == 0o600


async def test_the_key_survives_a_restart(tmp_path: Path) -> None:
    first = await Store.open(tmp_path / "db.sqlite3", tmp_path / "key")
    chat = first.chat_key("telegram", 1)
    await first.opt_in(chat)
    await first.close()
    again = await Store.open(tmp_path / "db.sqlite3", tmp_path / "key")
    assert again.chat_key("telegram", 1) == chat
    assert await again.opted_in(chat)
    await again.close()


async def test_two_hundred_concurrent_bumps_are_exact(store: Store) -> None:
    chats = [store.chat_key("telegram", i) for i in range(4)]
    for chat in chats:
        await store.opt_in(chat)
    await asyncio.gather(
        *(store.record(chats[i % 4], [("jpeg", {Kind.DEVICE})], refused=1) for i in range(200))
    )
    for chat in chats:
        counts = await store.counts(chat)
        assert counts.total("cleaned") == 50
        assert counts.total("device") == 50
        assert counts.total("refused") == 50
    totals = await store.totals()
    assert (totals.chats, totals.total("cleaned")) == (4, 200)


async def test_forget_leaves_no_trace_in_the_files(store: Store, tmp_path: Path) -> None:
    chat = store.chat_key("telegram", CHAT_ID)
    kept = store.chat_key("telegram", 42)
    for who in (chat, kept):
        await store.opt_in(who)
        await store.record(who, [("heif", {Kind.LOCATION, Kind.TIME})])
    await store.set_setting(chat, "language", "de")
    assert chat.encode() in await asyncio.to_thread(file_bytes, tmp_path / "data")

    await store.forget(chat)

    stored = await asyncio.to_thread(file_bytes, tmp_path / "data")
    assert chat.encode() not in stored  # not in the database, not in the write-ahead log
    assert await store.setting(chat, "language") is None
    assert not await store.opted_in(chat)
    assert (await store.counts(kept)).total("cleaned") == 1  # other chats keep theirs
    assert kept.encode() in stored


async def test_opt_out_stops_counting_and_deletes_counts(store: Store) -> None:
    chat = store.chat_key("telegram", CHAT_ID)
    await store.opt_in(chat)
    await store.set_setting(chat, "mode", "warn")
    await store.record(chat, [("gif", set())])
    await store.opt_out(chat)
    assert not await store.record(chat, [("gif", set())])
    assert (await store.counts(chat)).rows == ()
    assert await store.setting(chat, "mode") == "warn"  # configuration is not usage data


def make_version(path: Path, version: int) -> None:
    """A database as an earlier scrubbot left it, with one opted-in chat."""
    db = sqlite3.connect(path)
    for number, script in enumerate(MIGRATIONS[:version], start=1):
        db.executescript(f"BEGIN; {script} PRAGMA user_version = {number}; COMMIT;")
    if version >= 1:
        db.execute("INSERT INTO chats VALUES ('abc', '2026-01-01')")
        db.execute("INSERT INTO counts VALUES ('abc', '2026-01-01', 'jpeg', 'cleaned', 7)")
        db.commit()
    db.close()


@pytest.mark.parametrize("version", range(len(MIGRATIONS) + 1))
async def test_migrates_from_every_earlier_version(tmp_path: Path, version: int) -> None:
    path = tmp_path / "db.sqlite3"
    make_version(path, version)
    store = await Store.open(path, tmp_path / "key")
    await store.set_setting("abc", "language", "de")
    if version >= 1:
        assert (await store.counts("abc")).total("cleaned") == 7  # nothing lost on the way
    await store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


@pytest.mark.parametrize(
    "content",
    [b"this is not a database at all" * 100, b"SQLite format 3\x00" + os.urandom(4000)],
    ids=["text", "garbage-after-header"],
)
async def test_a_damaged_database_is_a_clear_error_at_start(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "db.sqlite3"
    path.write_bytes(content)
    with pytest.raises(StoreError, match="is damaged"):
        await Store.open(path, tmp_path / "key")


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    db.close()
    with pytest.raises(StoreError, match="newer scrubbot"):
        await Store.open(path, tmp_path / "key")


async def test_a_group_that_becomes_a_supergroup_keeps_everything(store: Store) -> None:
    old, new = store.chat_key("telegram", -100), store.chat_key("telegram", -1001000000100)
    await store.opt_in(old)
    await store.record(old, [("jpeg", {Kind.TIME})])
    await store.set_setting(old, "mode", "replace")
    await store.move(old, new)
    assert await store.setting(new, "mode") == "replace"
    assert (await store.counts(new)).total("time") == 1
    assert await store.opted_in(new)
    assert not await store.opted_in(old)
    assert await store.setting(old, "mode") is None
