"""The Matrix sync mechanics in process (adapters/matrix_sync.py): when a sync token may be
saved, which timeline events the bot is meant to answer, which it has answered already."""

import asyncio
from typing import Any

from nio import Event

from adapters.matrix_sync import (
    REPLACES,
    Checkpoints,
    PowerLevelCache,
    after_invitation,
    changes_power,
    files_only,
    replied_to,
)

BOT = "@scrubbot:example.org"
PARENT = "@parent:example.org"


def member(membership: str, prev: str | None = None, ts: int = 0, user: str = BOT) -> Any:
    event: dict[str, Any] = {
        "type": "m.room.member",
        "state_key": user,
        "sender": PARENT,
        "event_id": f"$member-{membership}-{ts}",
        "origin_server_ts": ts,
        "content": {"membership": membership},
    }
    if prev:
        event["unsigned"] = {"prev_content": {"membership": prev}}
    return Event.parse_event(event)


def message(name: str, ts: int = 0, sender: str = PARENT, **content: Any) -> Any:
    return Event.parse_event(
        {
            "type": "m.room.message",
            "sender": sender,
            "event_id": f"${name}",
            "origin_server_ts": ts,
            "content": {"msgtype": "m.text", "body": name, **content},
        }
    )


def ids(events: list[Any]) -> list[str]:
    return [e.event_id for e in events]


def test_events_after_the_invitation_are_answered_not_those_before() -> None:
    timeline = [
        message("history", 1),
        member("invite", ts=2),
        message("first photo", 3),  # sent before the bot could join
        member("join", "invite", ts=4),
        message("second", 5),
    ]
    assert ids(after_invitation(timeline, BOT, None)) == [
        "$first photo",
        "$member-join-4",
        "$second",
    ]


def test_a_rejoin_is_cut_at_the_new_invitation() -> None:
    timeline = [
        message("before", 1),
        member("leave", "join", ts=2),
        message("while away", 3),
        member("invite", "leave", ts=4),
        member("join", "invite", ts=5),
        message("after", 6),
    ]
    assert ids(after_invitation(timeline, BOT, None))[-1:] == ["$after"]
    assert "$while away" not in ids(after_invitation(timeline, BOT, None))


def test_a_join_without_invitation_is_the_cut() -> None:
    timeline = [message("history", 1), member("join", ts=2), message("new", 3)]
    assert ids(after_invitation(timeline, BOT, None)) == ["$new"]


def test_a_timeline_without_the_invitation_is_cut_by_its_time() -> None:
    timeline = [message("old", 1), message("after the invite", 5), member("join", "invite", 6)]
    assert ids(after_invitation(timeline, BOT, 4)) == ["$after the invite", "$member-join-6"]
    assert ids(after_invitation(timeline, BOT, None)) == []  # unknown: only after the join


def test_an_ordinary_timeline_is_answered_whole() -> None:
    timeline = [message("a", 1), member("join", ts=2, user=PARENT), message("b", 3)]
    assert len(after_invitation(timeline, BOT, None)) == 3


def test_replies_and_clean_copies_mark_what_was_answered() -> None:
    timeline = [
        message("photo"),
        message("reply", sender=BOT, **{"m.relates_to": {"m.in_reply_to": {"event_id": "$a"}}}),
        message("copy", sender=BOT, **{REPLACES: "$b"}),
        message("not ours", **{"m.relates_to": {"m.in_reply_to": {"event_id": "$c"}}}),
    ]
    assert replied_to(timeline, BOT) == {"$a", "$b"}


def test_a_file_without_its_summary_is_told_apart() -> None:
    def reply(to: str, msgtype: str) -> Any:
        relates = {"m.relates_to": {"m.in_reply_to": {"event_id": to}}}
        return message(f"{msgtype} to {to}", sender=BOT, msgtype=msgtype, **relates)

    timeline = [reply("$both", "m.image"), reply("$both", "m.notice"), reply("$file", "m.file")]
    assert files_only(timeline, BOT) == {"$file"}
    assert replied_to(timeline, BOT) == {"$both", "$file"}


async def test_a_token_is_saved_only_when_its_batch_and_all_before_are_done() -> None:
    saved: list[str] = []
    checkpoints = Checkpoints(saved.append)
    slow, fast = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(slow.wait())
    second = asyncio.create_task(fast.wait())
    checkpoints.add("t1", [first])  # type: ignore[list-item]
    checkpoints.add("t2", [second])  # type: ignore[list-item]
    checkpoints.add("t3", [])
    fast.set()
    await second
    await asyncio.sleep(0)
    assert saved == []  # t1's photo is still in flight
    slow.set()
    await first
    await asyncio.sleep(0)
    assert saved == ["t3"]  # everything up to t3 is answered: one save, the latest
    assert checkpoints.pending == 0


async def test_a_cancelled_task_holds_the_token_back() -> None:
    saved: list[str] = []
    checkpoints = Checkpoints(saved.append)
    waiting = asyncio.create_task(asyncio.sleep(10))
    checkpoints.add("t1", [waiting])  # type: ignore[list-item]
    checkpoints.add("t2", [])
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    await asyncio.sleep(0)
    assert saved == []  # its event comes again after a restart
    assert checkpoints.pending == 2


async def test_power_levels_are_fetched_once_until_they_change() -> None:
    fetched: list[str] = []

    async def fetch(room_id: str) -> int:
        fetched.append(room_id)
        await asyncio.sleep(0.01)  # a request to the homeserver
        return len(fetched)

    cache = PowerLevelCache(fetch)
    together = await asyncio.gather(*(cache.get("!r") for _ in range(3)))
    assert together == [1, 1, 1]  # photos arriving at once share one fetch
    assert await cache.get("!r") == 1
    levels = Event.parse_event(
        {
            "type": "m.room.power_levels",
            "state_key": "",
            "sender": PARENT,
            "event_id": "$pl",
            "origin_server_ts": 1,
            "content": {"users": {PARENT: 100}},
        }
    )
    assert changes_power([message("chatter"), levels])
    assert not changes_power([message("chatter")])
    cache.forget("!r")
    assert await cache.get("!r") == 2
    cache.seconds = 0
    assert await cache.get("!r") == 3
