"""A file sent twice (its first answer lost, the retry posted again) is found and removed, and
nothing else is: PTB's Bot with the adapter's Delivery, over real HTTP to the fake Bot API."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from telegram import InputFile, InputMediaDocument
from telegram.ext import ExtBot

from adapters import telegram_duplicates
from adapters.telegram_delivery import Delivery
from adapters.telegram_duplicates import MAX_PROBES, ambiguous
from tests.fake_telegram import JSON, Call, FakeTelegram
from tests.test_telegram import TOKEN, leaky_photo

PARENT = 1501


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as server:
        server.hang_seconds = 1.0
        server.add_text("hi", user_id=PARENT)  # the chat exists
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[ExtBot[None]]:
    async with ExtBot(TOKEN, base_url=fake.api_url, rate_limiter=Delivery()) as client:
        yield client


def documents(fake: FakeTelegram, chat: int = PARENT) -> list[JSON]:
    """The bot's file messages that are still in the chat."""
    return [
        message
        for (chat_id, _), message in sorted(fake._state.messages.items())
        if chat_id == chat and "document" in message and message["from"]["id"] == fake.bot_id
    ]


def probes(fake: FakeTelegram) -> list[Call]:
    return [c for c in fake.calls if c.method == "editMessageCaption"]


def deleted(fake: FakeTelegram) -> list[object]:
    return [c.params["message_id"] for c in fake.calls if c.method == "deleteMessage"]


async def send(bot: ExtBot[None], caption: str, seed: int = 0) -> int:
    document = InputFile(leaky_photo(seed), filename="clean.jpg")
    message = await bot.send_document(PARENT, document, caption=caption)
    return message.message_id


@pytest.mark.parametrize("kind", ["reset", "hang"])
async def test_a_send_whose_answer_was_lost_ends_as_one_message(
    fake: FakeTelegram, bot: ExtBot[None], kind: str
) -> None:
    await bot.send_message(PARENT, "earlier")  # this process has a message in the chat
    fake.drop_next("sendDocument", kind, after=True)
    kept = await send(bot, "Clean copy")
    (lost,) = [c for c in fake.calls if c.fault == f"{kind} after"]  # the drop did happen
    assert [m["message_id"] for m in documents(fake)] == [kept]
    assert deleted(fake) == [kept - 1]  # the lost attempt's message, nothing else
    (probe,) = probes(fake)
    assert probe.params == {"chat_id": PARENT, "message_id": kept - 1, "caption": "Clean copy"}
    assert probe.error_code == 400
    assert lost.params["caption"] == "Clean copy"


async def test_an_album_sent_twice_loses_each_repeated_item(
    fake: FakeTelegram, bot: ExtBot[None]
) -> None:
    await bot.send_message(PARENT, "earlier")
    fake.drop_next("sendMediaGroup", "reset", after=True)
    media = [
        InputMediaDocument(leaky_photo(n), filename=f"{n}.jpg", caption=None if n else "Album")
        for n in range(3)
    ]
    kept = [m.message_id for m in await bot.send_media_group(PARENT, media)]
    assert [m["message_id"] for m in documents(fake)] == kept
    assert sorted(deleted(fake)) == [kept[0] - 3, kept[0] - 2, kept[0] - 1]
    assert [m.get("caption") for m in documents(fake)] == ["Album", None, None]


async def test_no_probe_without_an_own_earlier_message_in_the_chat(
    fake: FakeTelegram, bot: ExtBot[None]
) -> None:
    fake.drop_next("sendDocument", "reset", after=True)  # perhaps an earlier process's, too
    await send(bot, "Clean copy")
    assert len(documents(fake)) == 2  # a duplicate stays: no photo may be lost
    assert not probes(fake)
    assert not deleted(fake)


async def test_an_answered_failure_is_no_reason_to_probe(
    fake: FakeTelegram, bot: ExtBot[None]
) -> None:
    await bot.send_message(PARENT, "earlier")
    fake.fail_next("sendDocument", 502, "Bad Gateway")  # answered: not carried out
    fake.fail_next("sendDocument", 503, "Service Unavailable")
    await send(bot, "Clean copy")
    assert len(documents(fake)) == 1
    assert not probes(fake)


async def test_confirmed_and_others_messages_are_never_probed(
    fake: FakeTelegram, bot: ExtBot[None]
) -> None:
    earlier = (await bot.send_message(PARENT, "earlier")).message_id
    theirs = fake.add_text("a parent's message", user_id=PARENT)  # never seen by this bot
    fake.drop_next("sendDocument", "hang")  # held, then dropped: carried out or not?
    first = asyncio.create_task(send(bot, "Clean copy"))
    await fake.wait_for(lambda calls: any(c.fault == "hang" for c in calls))
    confirmed = (await bot.send_message(PARENT, "meanwhile")).message_id  # while it hangs
    other = await send(bot, "Another copy", seed=1)
    kept = await first
    assert earlier < theirs < confirmed < other < kept
    # the whole range was looked at: only the id nobody knew
    assert [c.params["message_id"] for c in probes(fake)] == [theirs]
    assert [c.error_code for c in probes(fake)] == [400]  # "message can't be edited"
    assert (PARENT, theirs) in fake._state.messages  # left alone
    assert [m["message_id"] for m in documents(fake)] == [other, kept]
    assert not deleted(fake)


async def test_two_sends_lost_at_once_end_as_one_copy_each(
    fake: FakeTelegram, bot: ExtBot[None]
) -> None:
    await bot.send_message(PARENT, "earlier")
    fake.drop_next("sendDocument", "hang", after=True)  # the first send's answer is held
    fake.drop_next("sendDocument", "reset", after=True)  # the second's is lost at once
    first = asyncio.create_task(send(bot, "First photo", seed=1))
    await fake.wait_for(lambda calls: any(c.fault == "hang after" for c in calls))
    second = await send(bot, "Second photo", seed=2)  # probes only once the first succeeded
    kept = await first
    assert [c.fault for c in fake.calls if c.fault] == ["hang after", "reset after"]
    assert [m["message_id"] for m in documents(fake)] == [second, kept]
    assert [m["caption"] for m in documents(fake)] == ["Second photo", "First photo"]
    assert all("edit_date" not in m for m in documents(fake))  # no delivered copy edited
    # the first send's held attempt lies in both ranges: whichever send probed it with its own
    # caption either found its repeat or changed a repeat of the other, and deleted it at once
    assert sorted(deleted(fake)) == sorted(c for c in (kept - 2, kept - 3))


async def test_an_unfinished_sends_attempt_is_never_probed(
    fake: FakeTelegram, bot: ExtBot[None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(telegram_duplicates, "PROBE_WAIT", 0.5)
    await bot.send_message(PARENT, "earlier")
    fake.hang_seconds = 3.0  # longer than the probe waits for it
    fake.drop_next("sendDocument", "hang", after=True)  # carried out, answer not yet come
    fake.drop_next("sendDocument", "reset", after=True)
    document = InputFile(leaky_photo(1), filename="first.jpg")
    first = asyncio.create_task(
        bot.send_document(PARENT, document, caption="First photo", read_timeout=10)
    )
    await fake.wait_for(lambda calls: any(c.fault == "hang after" for c in calls))
    held = max(n for (chat, n) in fake._state.messages if chat == PARENT)
    await send(bot, "Second photo", seed=2)
    assert not first.done()
    # still held: its message may yet be the only copy of the first photo, so it is not probed
    assert held not in [c.params["message_id"] for c in probes(fake)]
    assert "edit_date" not in fake._state.messages[(PARENT, held)]
    await first
    assert (PARENT, held) in fake._state.messages or held in deleted(fake)


async def test_probes_are_bounded(fake: FakeTelegram, bot: ExtBot[None]) -> None:
    await bot.send_message(PARENT, "earlier")
    for n in range(MAX_PROBES + 5):  # ids the bot never saw, below the lost attempt's
        fake.add_text(f"message {n}", user_id=PARENT)
    fake.drop_next("sendDocument", "reset", after=True)
    await send(bot, "Clean copy")
    assert len(probes(fake)) == MAX_PROBES
    assert len(documents(fake)) == 2  # out of reach: the duplicate stays
    assert not deleted(fake)


@pytest.mark.parametrize("lost", [False, True], ids=["502", "reset"])
async def test_a_failed_probe_is_tried_again_and_finds_the_repeat(
    fake: FakeTelegram, bot: ExtBot[None], lost: bool
) -> None:
    """A probe is tried again like any call (editing to the caption a message has changes
    nothing): after a 502 or a dropped connection, the next try still finds our repeat."""
    await bot.send_message(PARENT, "earlier")
    fake.drop_next("sendDocument", "reset", after=True)
    if lost:
        fake.drop_next("editMessageCaption", "reset")
    else:
        fake.fail_next("editMessageCaption", 502, "Bad Gateway")
    await send(bot, "Clean copy")
    assert len(probes(fake)) == 2
    assert len(deleted(fake)) == 1
    assert len(documents(fake)) == 1  # posted twice, the repeat deleted


def test_only_a_request_that_may_have_arrived_is_ambiguous() -> None:
    import httpx
    from telegram.error import BadRequest, NetworkError, TimedOut

    def raised(error: Exception, cause: Exception | None) -> Exception:
        error.__cause__ = cause
        return error

    assert ambiguous(raised(NetworkError("reset"), httpx.RemoteProtocolError("gone")))
    assert ambiguous(raised(NetworkError("read"), httpx.ReadError("gone")))
    assert ambiguous(raised(TimedOut(), httpx.ReadTimeout("slow")))
    assert not ambiguous(raised(NetworkError("refused"), httpx.ConnectError("no")))
    assert not ambiguous(raised(TimedOut(), httpx.ConnectTimeout("no")))
    assert not ambiguous(raised(TimedOut("pool"), httpx.PoolTimeout("busy")))
    assert not ambiguous(NetworkError("Bad Gateway"))  # an answer: not carried out
    assert not ambiguous(raised(BadRequest("no"), httpx.ReadError("x")))
