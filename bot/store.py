"""The only thing scrubbot keeps: opt-in usage counts per chat and day, in one SQLite file.

    store = await Store.open(path, secret_path)   # migrates; a damaged file is a StoreError
    chat = store.chat_key("telegram", chat_id)    # HMAC-SHA256: raw ids never reach the file
    await store.opt_in(chat) / opt_out(chat) / forget(chat)
    await store.record(chat, cleaned=[(format, kinds), ...], refused=n)   # no-op unless opted in
    await store.counts(chat) / totals()

No names, no file names, no metadata values, no time finer than a day. Deleting really
deletes: `secure_delete` overwrites removed rows and the write-ahead log is truncated after a
`forget`, so neither the chat's key nor its rows remain anywhere in the files.
"""

import asyncio
import hashlib
import hmac
import os
import secrets
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

from bot.findings import Kind

# Kinds counted per photo; the others are too fine-grained to be worth keeping.
COUNTED_KINDS = (
    Kind.LOCATION,
    Kind.TRACKING,
    Kind.PEOPLE,
    Kind.HIDDEN_PICTURE,
    Kind.HIDDEN_MEDIA,
    Kind.DEVICE,
    Kind.TIME,
)
CLEANED, REFUSED = "cleaned", "refused"
UNKNOWN_FORMAT = "-"

# Each entry moves the schema one version up; PRAGMA user_version says how many have run.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE chats (
        chat TEXT PRIMARY KEY,          -- HMAC-SHA256 of network and chat id, hex
        since TEXT NOT NULL             -- the day it opted in
    ) WITHOUT ROWID;
    CREATE TABLE counts (
        chat TEXT NOT NULL REFERENCES chats (chat) ON DELETE CASCADE,
        day TEXT NOT NULL,              -- YYYY-MM-DD, UTC
        format TEXT NOT NULL,           -- jpeg, png, ... or '-' when it was not a photo
        metric TEXT NOT NULL,           -- cleaned, refused, or a kind of finding
        n INTEGER NOT NULL,
        PRIMARY KEY (chat, day, format, metric)
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE settings (
        chat TEXT PRIMARY KEY,          -- keyed like chats; no opt-in needed: an admin set it
        language TEXT,
        mode TEXT
    ) WITHOUT ROWID;
    """,
)


class StoreError(Exception):
    """The database cannot be used; the message says which file and what to do."""


@dataclass(frozen=True)
class Counts:
    chats: int  # opted-in chats counted (1 for one chat's own counts)
    rows: tuple[tuple[str, str, int], ...]  # (format, metric, n), sorted

    def total(self, metric: str) -> int:
        return sum(n for _, m, n in self.rows if m == metric)


class Store:
    def __init__(self, db: aiosqlite.Connection, secret: bytes) -> None:
        self._db = db
        self._secret = secret
        self._write = asyncio.Lock()  # one writer at a time on the shared connection

    @classmethod
    async def open(cls, path: Path, secret_path: Path) -> "Store":
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        secret = _secret(secret_path)
        try:
            db = await aiosqlite.connect(path)
        except sqlite3.Error as error:
            raise StoreError(f"Cannot open the database {path}: {error}.") from error
        try:
            await _prepare(db)
        except sqlite3.DatabaseError as error:
            await db.close()
            raise StoreError(
                f"The database {path} is damaged ({error}). Move it away and start again; "
                "it only holds opt-in usage counts."
            ) from error
        os.chmod(path, 0o600)
        return cls(db, secret)

    async def close(self) -> None:
        await self._db.close()

    def chat_key(self, network: str, chat_id: object) -> str:
        """The only form in which a chat is stored: a keyed hash of its network and id."""
        message = f"{network}:{chat_id}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    async def opted_in(self, chat: str) -> bool:
        async with self._db.execute("SELECT 1 FROM chats WHERE chat = ?", (chat,)) as rows:
            return await rows.fetchone() is not None

    async def opt_in(self, chat: str) -> None:
        async with self._write:
            await self._db.execute(
                "INSERT OR IGNORE INTO chats (chat, since) VALUES (?, ?)", (chat, _today())
            )
            await self._db.commit()

    async def opt_out(self, chat: str) -> None:
        """Stop counting and delete what was counted (the settings stay)."""
        await self._delete(chat, ("DELETE FROM chats WHERE chat = ?",))

    async def forget(self, chat: str) -> None:
        """Delete every row about the chat: counts, opt-in and settings."""
        await self._delete(
            chat, ("DELETE FROM chats WHERE chat = ?", "DELETE FROM settings WHERE chat = ?")
        )

    async def move(self, old: str, new: str) -> None:
        """A group became a supergroup (new id): its opt-in, counts and settings go along."""
        async with self._write:
            await self._db.execute("BEGIN")
            await self._db.execute(
                "INSERT OR IGNORE INTO chats (chat, since) "
                "SELECT ?, since FROM chats WHERE chat = ?",
                (new, old),
            )
            for table in ("counts", "settings"):
                await self._db.execute(
                    f"UPDATE OR REPLACE {table} SET chat = ? WHERE chat = ?",  # noqa: S608
                    (new, old),
                )
            await self._db.execute("DELETE FROM chats WHERE chat = ?", (old,))
            await self._db.commit()

    async def _delete(self, chat: str, statements: Iterable[str]) -> None:
        async with self._write:
            for statement in statements:
                await self._db.execute(statement, (chat,))
            await self._db.commit()
            # Old page images with the chat's key live on in the write-ahead log until a
            # checkpoint; TRUNCATE writes them back (zeroed by secure_delete) and empties it.
            await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def record(
        self, chat: str, cleaned: Iterable[tuple[str, Iterable[Kind]]], refused: int = 0
    ) -> bool:
        """Count one reply for an opted-in chat; returns False (and stores nothing) otherwise."""
        bumps: dict[tuple[str, str], int] = {}
        for fmt, kinds in cleaned:
            bumps[(fmt, CLEANED)] = bumps.get((fmt, CLEANED), 0) + 1
            for kind in set(kinds) & set(COUNTED_KINDS):
                bumps[(fmt, kind.value)] = bumps.get((fmt, kind.value), 0) + 1
        if refused:
            bumps[(UNKNOWN_FORMAT, REFUSED)] = refused
        async with self._write:
            if not bumps or not await self.opted_in(chat):
                return False
            day = _today()
            await self._db.executemany(
                "INSERT INTO counts (chat, day, format, metric, n) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (chat, day, format, metric) DO UPDATE SET n = n + excluded.n",
                [(chat, day, fmt, metric, n) for (fmt, metric), n in bumps.items()],
            )
            await self._db.commit()
        return True

    async def counts(self, chat: str) -> Counts:
        query = (
            "SELECT format, metric, SUM(n) FROM counts WHERE chat = ? "
            "GROUP BY format, metric ORDER BY format, metric"
        )
        async with self._db.execute(query, (chat,)) as cursor:
            rows = tuple((str(f), str(m), int(n)) for f, m, n in await cursor.fetchall())
        return Counts(1 if await self.opted_in(chat) else 0, rows)

    async def totals(self) -> Counts:
        """Over every opted-in chat, for the operator."""
        query = "SELECT format, metric, SUM(n) FROM counts GROUP BY format, metric ORDER BY 1, 2"
        async with self._db.execute(query) as cursor:
            rows = tuple((str(f), str(m), int(n)) for f, m, n in await cursor.fetchall())
        async with self._db.execute("SELECT COUNT(*) FROM chats") as cursor:
            (chats,) = await cursor.fetchone() or (0,)
        return Counts(int(chats), rows)

    async def setting(self, chat: str, name: str) -> str | None:
        if name not in ("language", "mode"):
            raise ValueError(name)
        query = f"SELECT {name} FROM settings WHERE chat = ?"  # noqa: S608 - name is checked
        async with self._db.execute(query, (chat,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None or row[0] is None else str(row[0])

    async def set_setting(self, chat: str, name: str, value: str) -> None:
        if name not in ("language", "mode"):
            raise ValueError(name)
        async with self._write:
            await self._db.execute(
                f"INSERT INTO settings (chat, {name}) VALUES (?, ?) "  # noqa: S608 - checked
                f"ON CONFLICT (chat) DO UPDATE SET {name} = excluded.{name}",
                (chat, value),
            )
            await self._db.commit()


async def _prepare(db: aiosqlite.Connection) -> None:
    """Check the file, set the connection up and run the migrations it has not seen."""
    async with db.execute("PRAGMA quick_check") as cursor:
        (verdict,) = await cursor.fetchone() or ("no answer",)
    if verdict != "ok":
        raise sqlite3.DatabaseError(str(verdict))
    for pragma in ("journal_mode = WAL", "foreign_keys = ON", "secure_delete = ON"):
        await db.execute(f"PRAGMA {pragma}")
    async with db.execute("PRAGMA user_version") as cursor:
        (version,) = await cursor.fetchone() or (0,)
    if version > len(MIGRATIONS):
        raise sqlite3.DatabaseError(f"made by a newer scrubbot (schema {version})")
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        await db.executescript(f"BEGIN; {script} PRAGMA user_version = {number}; COMMIT;")


def _secret(path: Path) -> bytes:
    """The HMAC key: made on first start, readable by the bot user only."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
        handle.write(key)
    return key


def _today() -> str:
    return datetime.now(UTC).date().isoformat()
