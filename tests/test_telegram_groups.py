"""Group mode end to end: `scrubbot run` in parents' groups, against the fake Bot API."""

import asyncio
import io
from pathlib import Path

from PIL import Image

from bot.scrub import inspect
from tests.fake_telegram import Call, FakeTelegram
from tests.test_telegram import (
    FBMD,
    NAME,
    SERIAL,
    chat_key,
    database_bytes,
    fake,
    leaky_photo,
    methods,
    running_bot,
    texts,
    workdir,
)

__all__ = ["fake", "workdir"]  # the fixtures, shared with the private-chat tests

GROUP = -1001234567890
ADMIN, PARENT = 501, 502
DELETE_RIGHTS = {"can_delete_messages": True}
# What a stranger must never read in a group, whatever the bot says there.
SECRETS = (SERIAL, NAME, FBMD, "Kreuzberg", "Berlin", "52.4", "13.4", "Apple")


def group_sends(fake: FakeTelegram, chat: int = GROUP) -> list[Call]:
    return fake.sent_to(chat)


def captions(fake: FakeTelegram, chat: int = GROUP) -> list[str]:
    found = []
    for call in group_sends(fake, chat):
        if "caption" in call.params:
            found.append(str(call.params["caption"]))
        for item in call.params.get("media", []) or []:  # type: ignore[union-attr]
            if isinstance(item, dict) and item.get("caption"):
                found.append(str(item["caption"]))
    return found


def assert_no_values(fake: FakeTelegram, chat: int = GROUP) -> None:
    said = " ".join(texts(fake, chat) + captions(fake, chat))
    for secret in SECRETS:
        assert secret not in said, secret


def clean_photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), "white").save(out, "JPEG")
    return out.getvalue()


def in_group(**extra: object) -> dict[str, object]:
    return {"chat_id": GROUP, "chat_type": "supergroup", **extra}


async def test_added_without_rights_explains_what_is_missing_in_german(
    fake: FakeTelegram, workdir: Path
) -> None:
    async with running_bot(fake, workdir):
        fake.add_bot_status(GROUP, "member", by_user=ADMIN, language_code="de")
        await fake.wait_for(lambda calls: bool(texts(fake, GROUP)))
    (intro,) = texts(fake, GROUP)
    assert intro.startswith("Hallo! Ich bin scrubbot.")
    assert "muss ich hier Admin sein" in intro
    assert "brauche ich das Recht, Nachrichten zu löschen" in intro
    assert "/settings" in intro


async def test_promoted_with_delete_rights_says_it_can_replace(
    fake: FakeTelegram, workdir: Path
) -> None:
    async with running_bot(fake, workdir):
        fake.add_bot_status(GROUP, "member", by_user=ADMIN)
        await fake.wait_for(lambda calls: len(texts(fake, GROUP)) == 1)
        fake.add_bot_status(GROUP, "administrator", old_status="member", **DELETE_RIGHTS)
        await fake.wait_for(lambda calls: len(texts(fake, GROUP)) == 2)
    intro, promoted = texts(fake, GROUP)
    assert intro.startswith("Hello! I am scrubbot.")
    assert "I can replace photos" in promoted
    assert "Hello" not in promoted  # it introduces itself once


async def test_replace_deletes_the_original_and_reposts_a_clean_copy(
    fake: FakeTelegram, workdir: Path
) -> None:
    fake.add_bot_status(GROUP, "administrator", by_user=ADMIN, **DELETE_RIGHTS)
    async with running_bot(fake, workdir):
        await fake.wait_for(lambda calls: bool(texts(fake, GROUP)))
        posted = fake.add_document(leaky_photo(), user_id=PARENT, first_name="Jo", **in_group())
        await fake.wait_for(lambda calls: "sendDocument" in methods(group_sends(fake)))
    (deleted,) = [c for c in fake.calls if c.method == "deleteMessage"]
    assert deleted.params == {"chat_id": GROUP, "message_id": posted}
    (repost,) = [c for c in group_sends(fake) if c.method == "sendDocument"]
    caption = str(repost.params["caption"])
    assert caption.startswith("This photo contained the place where it was taken")
    assert "Clean copy of a photo from Jo." in caption
    assert "reply_parameters" not in repost.params  # the original is gone
    ((name, data),) = repost.files.values()
    assert name == "photo.jpg"
    assert inspect(data).findings == ()
    assert_no_values(fake)


async def test_warn_replies_with_a_clean_copy_when_it_may_not_delete(
    fake: FakeTelegram, workdir: Path
) -> None:
    async with running_bot(fake, workdir):
        fake.add_bot_status(GROUP, "member", by_user=ADMIN)
        await fake.wait_for(lambda calls: bool(texts(fake, GROUP)))
        posted = fake.add_document(leaky_photo(), user_id=PARENT, **in_group())
        await fake.wait_for(lambda calls: "sendDocument" in methods(group_sends(fake)))
    assert "deleteMessage" not in methods(fake.calls)
    (answer,) = [c for c in group_sends(fake) if c.method == "sendDocument"]
    assert answer.params["reply_parameters"] == {"message_id": posted}
    assert "Please delete your original" in str(answer.params["caption"])
    assert_no_values(fake)


async def test_quiet_when_there_is_nothing_to_clean(fake: FakeTelegram, workdir: Path) -> None:
    fake.add_bot_status(GROUP, "administrator", by_user=ADMIN, **DELETE_RIGHTS)
    async with running_bot(fake, workdir):
        await fake.wait_for(lambda calls: bool(texts(fake, GROUP)))
        fake.add_document(clean_photo(), user_id=PARENT, **in_group())
        fake.add_photo(leaky_photo(), user_id=PARENT, **in_group())  # compressed by Telegram
        fake.add_document(b"%PDF-1.5 minutes", file_name="minutes.pdf", **in_group())
        fake.add_text("Who brings the cake?", user_id=PARENT, **in_group())
        await fake.wait_for(lambda calls: methods(calls).count("getFile") == 2)
        await asyncio.sleep(1.0)
    assert len(group_sends(fake)) == 1  # the introduction, nothing else
    assert "deleteMessage" not in methods(fake.calls)


async def test_only_admins_change_the_mode(fake: FakeTelegram, workdir: Path) -> None:
    fake.add_bot_status(GROUP, "administrator", by_user=ADMIN, **DELETE_RIGHTS)
    fake.set_chat_member(GROUP, ADMIN, "administrator")
    fake.set_chat_member(GROUP, PARENT, "member")
    async with running_bot(fake, workdir):
        await fake.wait_for(lambda calls: len(texts(fake, GROUP)) == 1)
        fake.add_command("/settings", user_id=ADMIN, **in_group())
        await fake.wait_for(lambda calls: len(texts(fake, GROUP)) == 2)
        menu = group_sends(fake)[-1]
        buttons = menu.params["reply_markup"]["inline_keyboard"][0]  # type: ignore[index]
        assert [b["callback_data"] for b in buttons] == ["mode:off", "mode:warn", "mode:replace"]
        assert buttons[2]["text"].startswith("✓")  # the default where it may delete
        menu_id = last_message_id(fake)
        fake.add_button_press(menu_id, GROUP, "mode:off", user_id=PARENT)
        await fake.wait_for(lambda calls: "answerCallbackQuery" in methods(calls))
        fake.add_button_press(menu_id, GROUP, "mode:off", user_id=ADMIN)
        await fake.wait_for(lambda calls: "editMessageText" in methods(calls))
        fake.add_document(leaky_photo(), user_id=PARENT, **in_group())
        await asyncio.sleep(2.0)  # time enough to (wrongly) fetch and answer it
    refusal = next(c for c in fake.calls if c.method == "answerCallbackQuery")
    assert refusal.params["text"] == "Only the admins of this group can change that."
    edited = next(c for c in fake.calls if c.method == "editMessageText")
    assert edited.params["text"] == "Off: I leave photos alone."
    assert "getFile" not in methods(fake.calls)  # off: the photo was left alone


def last_message_id(fake: FakeTelegram) -> int:
    """The id the fake gave the bot's most recent message to the group."""
    return max(key[1] for key in fake._state.messages if key[0] == GROUP)


async def test_an_anonymous_admin_may_switch_counting(fake: FakeTelegram, workdir: Path) -> None:
    fake.add_bot_status(GROUP, "member", by_user=ADMIN)
    async with running_bot(fake, workdir):
        await fake.wait_for(lambda calls: bool(texts(fake, GROUP)))
        fake.add_command("/stats on", anonymous_admin=True, **in_group())
        await fake.wait_for(lambda calls: len(texts(fake, GROUP)) == 2)
    assert texts(fake, GROUP)[1].startswith("Usage counts are on")


async def test_an_album_in_a_topic_is_replaced_once(fake: FakeTelegram, workdir: Path) -> None:
    fake.add_bot_status(GROUP, "administrator", by_user=ADMIN, **DELETE_RIGHTS)
    async with running_bot(fake, workdir):
        await fake.wait_for(lambda calls: bool(texts(fake, GROUP)))
        for seed in range(3):
            fake.add_document(
                leaky_photo(seed), media_group_id="a1", message_thread_id=7, **in_group()
            )
        await fake.wait_for(lambda calls: "sendMediaGroup" in methods(calls), timeout=20)
    assert methods(fake.calls).count("deleteMessage") == 3
    (album,) = [c for c in group_sends(fake) if c.method == "sendMediaGroup"]
    assert album.params["message_thread_id"] == 7
    media = album.params["media"]
    assert isinstance(media, list)
    assert len(media) == 3
    assert str(media[0]["caption"]).startswith("These 3 photos contained")
    assert all("caption" not in m for m in media[1:])
    assert_no_values(fake)


async def stored(workdir: Path, chat: int, present: bool = True, seconds: float = 10.0) -> None:
    """Wait (bounded) until the store's files hold (or no longer hold) anything about `chat`."""
    for _ in range(int(seconds * 10)):
        if (
            chat_key(workdir, chat) in await asyncio.to_thread(database_bytes, workdir)
        ) == present:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"chat {chat} is {'not ' if present else ''}in the store's files")


async def test_settings_follow_a_migration_and_go_when_removed(
    fake: FakeTelegram, workdir: Path
) -> None:
    old, new = -4001, -1004001
    fake.add_chat(old, "group")
    async with running_bot(fake, workdir):
        fake.add_bot_status(old, "member", by_user=ADMIN, language_code="de")
        await fake.wait_for(lambda calls: bool(texts(fake, old)))
        fake.add_update(
            {
                "message": {
                    "message_id": 900,
                    "date": 1_700_000_000,
                    "chat": {"id": old, "type": "group", "title": "Klasse 2b"},
                    "from": {"id": ADMIN, "is_bot": False, "first_name": "A"},
                    "migrate_to_chat_id": new,
                }
            }
        )
        await stored(workdir, new)  # the settings moved to the supergroup's id
        fake.add_bot_status(new, "member", old_status="member")
        await fake.wait_for(lambda calls: bool(texts(fake, new)))
        fake.add_bot_status(new, "left", old_status="member")
        await stored(workdir, new, present=False)  # removed: its settings are deleted
    assert texts(fake, new)[0].startswith("Damit ich die Fotos sehe")  # German moved along
