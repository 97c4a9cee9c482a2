"""The fake Bot API against the real python-telegram-bot over real HTTP: no mocks anywhere."""

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from telegram import (
    Bot,
    BotCommandScopeAllChatAdministrators,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    MessageOriginHiddenUser,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from tests.fake_telegram import DROPPED, Call, FakeTelegram

TOKEN = "123456:TEST-token"
USER = 1001
GROUP = -1001234567890
JPEG = b"\xff\xd8\xff\xe0 not really a photo \xff\xd9"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=fake.api_url, base_file_url=fake.file_url) as client:
        yield client


def methods(calls: list[Call]) -> list[str]:
    return [call.method for call in calls]


async def test_get_me_answers_the_bot_of_the_token(bot: Bot, fake: FakeTelegram) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456, True, "scrubbot_test_bot")
    assert fake.calls[0] == Call("getMe", {}, {})


async def test_send_message_is_recorded_with_decoded_params(bot: Bot, fake: FakeTelegram) -> None:
    asked = fake.add_text("hello")
    sent = await bot.send_message(
        USER,
        "<b>clean</b> &amp; safe",
        parse_mode=ParseMode.HTML,
        reply_parameters=ReplyParameters(asked),
    )
    assert sent.text == "clean & safe"
    assert sent.message_id > asked
    assert sent.reply_to_message is not None
    assert sent.reply_to_message.text == "hello"
    [call] = fake.sent_to(USER)
    assert call.params["chat_id"] == USER
    assert call.params["text"] == "<b>clean</b> &amp; safe"
    assert call.params["reply_parameters"] == {"message_id": asked}


async def test_send_document_upload_is_stored(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_text("hi")
    sent = await bot.send_document(USER, JPEG, filename="clean.jpg", caption="Cleaned")
    assert sent.document is not None
    assert (sent.document.file_name, sent.document.mime_type) == ("clean.jpg", "image/jpeg")
    assert sent.document.file_size == len(JPEG)
    assert sent.caption == "Cleaned"
    assert fake.file_bytes(sent.document.file_id) == JPEG
    [call] = fake.sent_to(USER)
    assert call.files == {"document": ("clean.jpg", JPEG)}


async def test_send_media_group_of_two_documents(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_text("hi")
    media = [
        InputMediaDocument(b"first", filename="a.jpg"),
        InputMediaDocument(b"second", filename="b.png", caption="two files"),
    ]
    sent = await bot.send_media_group(USER, media)
    documents = [message.document for message in sent]
    assert [d.file_name for d in documents if d] == ["a.jpg", "b.png"]
    assert [fake.file_bytes(d.file_id) for d in documents if d] == [b"first", b"second"]
    assert len({message.media_group_id for message in sent}) == 1
    [call] = fake.sent_to(USER)
    media_params = call.params["media"]
    assert isinstance(media_params, list)
    assert [item["type"] for item in media_params] == ["document", "document"]
    assert len(call.files) == 2


async def test_get_updates_delivers_an_injected_document(bot: Bot, fake: FakeTelegram) -> None:
    message_id = fake.add_document(JPEG, language_code="de", caption="Urlaub")
    [update] = await bot.get_updates(timeout=0)
    message = update.message
    assert message is not None
    assert message.message_id == message_id
    assert message.document is not None
    assert (message.document.file_name, message.document.mime_type) == (
        "IMG_1234.jpg",
        "image/jpeg",
    )
    assert message.document.file_size == len(JPEG)
    assert message.from_user is not None
    assert message.from_user.language_code == "de"
    assert (message.chat.id, message.chat.type, message.caption) == (USER, "private", "Urlaub")


async def test_get_file_and_download_return_the_injected_bytes(
    bot: Bot, fake: FakeTelegram
) -> None:
    fake.add_document(JPEG, file_name="Holiday.JPG")
    [update] = await bot.get_updates()
    assert update.message is not None
    assert update.message.document is not None
    file = await bot.get_file(update.message.document.file_id)
    assert file.file_path is not None
    assert file.file_path.startswith(fake.file_url)
    assert file.file_path.endswith(".jpg")
    assert file.file_size == len(JPEG)
    assert await file.download_as_bytearray() == bytearray(JPEG)
    assert len(fake.downloads) == 1


async def test_get_file_refuses_files_above_20_mb(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_document(JPEG, file_size=21 * 1024 * 1024)
    [update] = await bot.get_updates()
    assert update.message is not None
    assert update.message.document is not None
    assert update.message.document.file_size == 21 * 1024 * 1024
    with pytest.raises(BadRequest, match=r"(?i)file is too big"):
        await bot.get_file(update.message.document.file_id)


async def test_photo_sizes_end_with_the_sent_picture(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_photo(JPEG)
    [update] = await bot.get_updates()
    assert update.message is not None
    smallest, largest = update.message.photo
    assert largest.width > smallest.width
    assert fake.file_bytes(largest.file_id) == JPEG
    assert fake.file_bytes(smallest.file_id) != JPEG


async def test_forwarded_message_has_a_hidden_user_origin(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_document(JPEG, forward_from_name="Oma Erna")
    [update] = await bot.get_updates()
    assert update.message is not None
    origin = update.message.forward_origin
    assert isinstance(origin, MessageOriginHiddenUser)
    assert origin.sender_user_name == "Oma Erna"


async def test_command_carries_a_bot_command_entity(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_command(
        "/start@scrubbot_test_bot now", chat_id=-100, chat_type="supergroup", message_thread_id=7
    )
    [update] = await bot.get_updates()
    assert update.message is not None
    [entity] = update.message.entities
    assert (entity.type, entity.offset, entity.length) == ("bot_command", 0, 24)
    assert (update.message.chat.type, update.message.message_thread_id) == ("supergroup", 7)
    assert update.message.is_topic_message


def test_group_messages_need_a_chat_id() -> None:
    with pytest.raises(ValueError, match="chat_id"):
        FakeTelegram().add_text("hi", chat_type="supergroup")


async def test_offset_confirms_earlier_updates(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_text("one")
    fake.add_text("two")
    first, second = await bot.get_updates()
    assert [u.update_id for u in await bot.get_updates(offset=second.update_id)] == [
        second.update_id
    ]
    assert await bot.get_updates(offset=second.update_id + 1) == ()
    assert first.update_id < second.update_id


async def test_long_poll_times_out_with_no_updates(bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 <= time.monotonic() - started < 3


async def test_long_poll_answers_as_soon_as_an_update_arrives(
    bot: Bot, fake: FakeTelegram
) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await fake.wait_for(lambda calls: "getUpdates" in methods(calls))
    fake.add_text("now")
    [update] = await poll
    assert update.message is not None
    assert update.message.text == "now"
    assert time.monotonic() - started < 2


async def test_closing_the_server_ends_a_long_poll() -> None:
    async with FakeTelegram(TOKEN) as server:
        url = f"{server.api_url}{TOKEN}/getUpdates"
        async with aiohttp.ClientSession() as session:
            poll = asyncio.create_task(session.post(url, data={"timeout": "30"}))
            await server.wait_for(lambda calls: bool(calls))
            started = time.monotonic()
            await server.aclose()
            async with await poll as answer:
                assert await answer.json() == {"ok": True, "result": []}
            assert time.monotonic() - started < 1


async def test_wrong_token_raises_invalid_token(fake: FakeTelegram) -> None:
    intruder = Bot("654321:WRONG", base_url=fake.api_url, base_file_url=fake.file_url)
    with pytest.raises(InvalidToken):
        async with intruder:
            pass
    assert fake.calls == []


async def test_unknown_method_is_not_found(bot: Bot, fake: FakeTelegram) -> None:
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendTelepathy", api_kwargs={"chat_id": USER})
    assert fake.calls[-1].error_code == 404


async def test_fail_next_raises_retry_after_once(
    bot: Bot, fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without PTB_TIMEDELTA, PTB 22 warns (PTBDeprecationWarning) whenever it builds a RetryAfter.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    fake.add_text("hi")
    fake.fail_next("sendMessage")
    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(USER, "first try")
    assert raised.value.retry_after == dt.timedelta(seconds=1)
    await bot.send_message(USER, "second try")
    assert [c.params["text"] for c in fake.sent_to(USER)] == ["second try"]
    assert [c.error_code for c in fake.calls if c.method == "sendMessage"] == [429, None]


async def test_fail_next_with_another_code(bot: Bot, fake: FakeTelegram) -> None:
    fake.fail_next("getFile", 400, "Bad Request: wrong file_id")
    with pytest.raises(BadRequest, match=r"(?i)wrong file_id"):
        await bot.get_file("anything")


async def test_blocked_chat_raises_forbidden(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_text("hi")
    fake.block_chat(USER)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_document(USER, JPEG, filename="clean.jpg")
    with pytest.raises(Forbidden):
        await bot.send_chat_action(USER, "typing")
    assert fake.sent_to(USER) == []


async def test_sends_to_unknown_chats_and_messages_fail(bot: Bot, fake: FakeTelegram) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(4242, "who?")
    fake.add_chat(4242)
    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(4242, "hi", reply_parameters=ReplyParameters(999))


async def test_html_the_real_server_would_refuse(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_text("hi")
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(USER, "1 < 2", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(USER, "<h1>big</h1>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(USER, "x" * 4097)


async def test_edit_and_delete_messages(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_text("hi")
    sent = await bot.send_message(USER, "Cleaning...")
    edited = await bot.edit_message_text("Done", chat_id=USER, message_id=sent.message_id)
    assert isinstance(edited, type(sent))
    assert edited.text == "Done"
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_text("Done", chat_id=USER, message_id=sent.message_id)
    assert await bot.delete_message(USER, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(USER, sent.message_id)


async def test_chat_and_member_lookups(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_text("hi", chat_id=-100, chat_type="supergroup")
    chat = await bot.get_chat(-100)
    assert (chat.id, chat.type) == (-100, "supergroup")
    member = await bot.get_chat_member(-100, USER)
    assert (member.status, member.user.id) == ("member", USER)
    fake.set_chat_member(-100, bot.id, "left")
    assert (await bot.get_chat_member(-100, bot.id)).status == "left"


async def test_commands_are_kept_per_language(bot: Bot, fake: FakeTelegram) -> None:
    await bot.set_my_commands([("start", "Start")])
    await bot.set_my_commands([("start", "Los geht's")], language_code="de")
    assert fake.commands == {
        "": [{"command": "start", "description": "Start"}],
        "de": [{"command": "start", "description": "Los geht's"}],
    }
    [command] = await bot.get_my_commands(language_code="de")
    assert command.description == "Los geht's"


async def test_webhook_blocks_polling_until_deleted(bot: Bot, fake: FakeTelegram) -> None:
    assert await bot.set_webhook("https://example.org/hook")
    assert (await bot.get_webhook_info()).url == "https://example.org/hook"
    with pytest.raises(Conflict):
        await bot.get_updates()
    fake.add_text("queued")
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert await bot.get_updates() == ()
    assert await bot.answer_callback_query("42")
    assert await bot.log_out()
    assert await bot.close()


async def test_other_encodings_query_and_json(fake: FakeTelegram) -> None:
    fake.add_text("hi")
    async with aiohttp.ClientSession() as session:
        url = f"{fake.api_url}{TOKEN}/sendmessage"
        async with session.get(url, params={"chat_id": str(USER), "text": "42"}) as answer:
            assert (await answer.json())["result"]["text"] == "42"
        async with session.post(url, json={"chat_id": USER, "text": "json"}) as answer:
            assert (await answer.json())["ok"] is True
        async with session.get(f"{fake.api_url}nope/getMe") as answer:
            assert answer.status == 401
            assert await answer.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
    assert [c.params for c in fake.sent_to(USER)] == [
        {"chat_id": USER, "text": "42"},
        {"chat_id": USER, "text": "json"},
    ]


async def test_wait_for_gives_up_with_a_summary(fake: FakeTelegram) -> None:
    with pytest.raises(TimeoutError, match="0 calls"):
        await fake.wait_for(lambda calls: bool(calls), timeout=0.1)


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answers a text with the same text."""
    assert update.effective_message is not None
    await update.effective_message.reply_text(update.effective_message.text or "")


async def test_application_polls_and_answers(fake: FakeTelegram) -> None:
    app = (
        Application.builder()
        .token(TOKEN)
        .base_url(fake.api_url)
        .base_file_url(fake.file_url)
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT, echo))
    assert app.updater is not None
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=1)
        fake.add_text("echo me")
        await fake.wait_for(lambda calls: bool(fake.sent_to(USER)), timeout=5)
        await app.updater.stop()
        await app.stop()
    [reply] = fake.sent_to(USER)
    assert reply.params["text"] == "echo me"
    assert {"deleteWebhook", "getUpdates"} <= set(methods(fake.calls))


# --- what the real Bot API refuses -------------------------------------------------------------


async def test_albums_of_more_than_ten_or_mixed_types_are_refused(
    bot: Bot, fake: FakeTelegram
) -> None:
    fake.add_text("hi")
    eleven = [InputMediaDocument(JPEG, filename=f"{n}.jpg") for n in range(11)]
    with pytest.raises(BadRequest, match=r"(?i)too many messages to send as an album"):
        await bot.send_media_group(USER, eleven)
    mixed = [InputMediaDocument(JPEG, filename="a.jpg"), InputMediaPhoto(JPEG)]
    with pytest.raises(BadRequest, match=r"(?i)document can't be mixed with other media types"):
        await bot.send_media_group(USER, mixed)
    assert fake.sent_to(USER) == []


async def test_captions_are_measured_after_parsing(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_text("hi")
    tags = "<b>" + "x" * 1024 + "</b>"  # 1031 characters of HTML, 1024 shown
    sent = await bot.send_document(USER, JPEG, caption=tags, parse_mode=ParseMode.HTML)
    assert sent.caption == "x" * 1024
    with pytest.raises(BadRequest, match=r"(?i)message caption is too long"):
        await bot.send_document(USER, JPEG, caption="x" * 1025)


async def test_callback_data_over_64_bytes_is_refused(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_text("hi")
    ok = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="m" * 64)]])
    await bot.send_message(USER, "fits", reply_markup=ok)
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("no", callback_data="ü" * 33)]])
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(USER, "66 bytes", reply_markup=too_long)


async def test_deleting_others_messages_needs_the_right(bot: Bot, fake: FakeTelegram) -> None:
    theirs = fake.add_text("a parent's photo", chat_id=GROUP, chat_type="supergroup")
    mine = await bot.send_message(GROUP, "the bot's own message")
    with pytest.raises(BadRequest, match=r"(?i)message can't be deleted"):
        await bot.delete_message(GROUP, theirs)
    assert await bot.delete_message(GROUP, mine.message_id)  # its own: always
    fake.set_chat_member(GROUP, fake.bot_id, "administrator", can_delete_messages=True)
    assert await bot.delete_message(GROUP, theirs)


async def test_unknown_topics_are_refused(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_text("in a topic", chat_id=GROUP, chat_type="supergroup", message_thread_id=7)
    await bot.send_message(GROUP, "known topic", message_thread_id=7)
    with pytest.raises(BadRequest, match=r"(?i)message thread not found"):
        await bot.send_message(GROUP, "no such topic", message_thread_id=8)
    fake.add_topic(GROUP, 8)
    await bot.send_message(GROUP, "now it exists", message_thread_id=8)


async def test_invalid_command_names_and_language_codes_are_refused(
    bot: Bot, fake: FakeTelegram
) -> None:
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([("Settings", "capital letters")])
    with pytest.raises(BadRequest, match=r"(?i)invalid language code"):
        await bot.set_my_commands([("help", "Ajuda")], language_code="pt_BR")
    await bot.set_my_commands([("help", "Ajuda")], language_code="pt")
    admins = BotCommandScopeAllChatAdministrators()
    await bot.set_my_commands([("settings", "Mode")], scope=admins)
    assert fake.commands == {"pt": [{"command": "help", "description": "Ajuda"}]}
    assert set(fake.scoped_commands) == {("default", "pt"), ("all_chat_administrators", "")}
    [command] = await bot.get_my_commands(scope=admins)
    assert command.command == "settings"


async def test_documents_without_a_known_size(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_document(JPEG, size_known=False)
    [update] = await bot.get_updates(timeout=0)
    assert update.message is not None
    assert update.message.document is not None
    assert update.message.document.file_size is None


# --- faults of the network ----------------------------------------------------------------------


async def test_a_reset_connection_is_a_network_error(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_text("hi")
    fake.drop_next("sendMessage")
    with pytest.raises(NetworkError):
        await bot.send_message(USER, "lost before it was sent")
    fake.drop_next("sendMessage", after=True)
    with pytest.raises(NetworkError):
        await bot.send_message(USER, "sent, but the answer was lost")
    assert [c.params["text"] for c in fake.sent_to(USER)] == ["sent, but the answer was lost"]
    sends = [(c.error_code, c.fault) for c in fake.calls if c.method == "sendMessage"]
    assert sends == [(DROPPED, "reset"), (None, "reset after")]


async def test_a_hang_outlasts_the_client_time_out(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_text("hi")
    fake.hang_seconds = 5.0
    fake.drop_next("getFile", "hang")
    started = time.monotonic()
    with pytest.raises(TimedOut):
        await bot.get_file("file-1-documents", read_timeout=0.5)
    assert time.monotonic() - started < 3


async def test_downloads_fail_too(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_document(JPEG)
    file = await bot.get_file("file-1-documents")
    fake.fail_next("download", 502, "Bad Gateway")
    with pytest.raises(NetworkError):
        await file.download_as_bytearray()
    fake.drop_next("download")
    with pytest.raises(NetworkError):
        await file.download_as_bytearray()
    assert bytes(await file.download_as_bytearray()) == JPEG


async def test_random_faults_are_seeded_and_bounded(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_text("hi")
    fake.hang_seconds = 0.1
    faults = fake.faults(0.5, seed=3, kinds=("502", "reset", "hang"))
    outcomes = []
    for _ in range(20):
        try:
            await bot.send_chat_action(USER, "typing")
            outcomes.append("ok")
        except NetworkError:
            outcomes.append("failed")
    assert 4 <= outcomes.count("failed") <= 16, outcomes
    assert len(faults.injected) == outcomes.count("failed")
    fake.faults(0)
    await bot.send_chat_action(USER, "typing")
    again = FakeTelegram(TOKEN).faults(0.5, seed=3, kinds=("502", "reset", "hang"))
    assert [again.draw("sendChatAction") is None for _ in range(20)] == [
        o == "ok" for o in outcomes
    ]


async def test_a_flood_limits_one_chat_with_the_time_left(
    bot: Bot, fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    fake.add_text("hi")
    fake.add_text("other chat", user_id=2002)
    fake.flood(USER, 30)
    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(USER, "flooded")
    assert raised.value.retry_after == dt.timedelta(seconds=30)
    await bot.send_message(2002, "another chat is not limited")
