"""What Telegram sends besides new messages, and the command menus, through `scrubbot run`."""

import asyncio
from pathlib import Path

from tests.fake_telegram import FakeTelegram
from tests.test_telegram import fake, leaky_photo, methods, replies, running_bot, texts, workdir
from tests.test_telegram_groups import ADMIN, DELETE_RIGHTS, GROUP, PARENT, group_sends, in_group

__all__ = ["fake", "workdir"]  # the fixtures

CHANNEL = -1005555555555


async def test_an_edited_caption_is_not_answered_again(fake: FakeTelegram, workdir: Path) -> None:
    async with running_bot(fake, workdir):
        sent = fake.add_document(leaky_photo(), user_id=1501, caption="for grandma")
        await fake.wait_for(lambda calls: len(texts(fake, 1501)) == 1, timeout=20)
        fake.add_edit(1501, sent, caption="for grandpa")
        fake.add_text("and a question", user_id=1501)  # answered: the edit was taken and left
        await fake.wait_for(lambda calls: len(texts(fake, 1501)) == 2, timeout=20)
        await asyncio.sleep(0.5)
    assert len(replies(fake, 1501, "sendDocument")) == 1
    assert "📎" in texts(fake, 1501)[1]


async def test_an_edit_in_a_group_posts_and_deletes_nothing(
    fake: FakeTelegram, workdir: Path
) -> None:
    fake.add_bot_status(GROUP, "administrator", by_user=ADMIN, **DELETE_RIGHTS)
    async with running_bot(fake, workdir):
        await fake.wait_for(lambda calls: bool(texts(fake, GROUP)))
        posted = fake.add_document(leaky_photo(), user_id=PARENT, **in_group())
        await fake.wait_for(lambda calls: "deleteMessage" in methods(calls), timeout=20)
        # Telegram still sends an edit of a message that is gone, e.g. a late caption change
        fake.add_update(
            {
                "edited_message": {
                    "message_id": posted,
                    "date": 0,
                    "caption": "edited",
                    "chat": {"id": GROUP, "type": "supergroup", "title": "Test group"},
                    "from": {"id": PARENT, "is_bot": False, "first_name": "Ada"},
                    "document": {"file_id": "file-x", "file_unique_id": "x", "file_size": 10},
                }
            }
        )
        fake.add_command("/help", user_id=PARENT, **in_group())
        await fake.wait_for(lambda calls: len(texts(fake, GROUP)) == 2, timeout=20)
    assert methods(fake.calls).count("deleteMessage") == 1
    assert len(replies(fake, GROUP, "sendDocument")) == 1


async def test_business_messages_are_left_to_the_owner(fake: FakeTelegram, workdir: Path) -> None:
    async with running_bot(fake, workdir):
        fake.add_business_message(leaky_photo(), user_id=1601)
        fake.add_text("hello", user_id=1602)
        await fake.wait_for(lambda calls: bool(texts(fake, 1602)), timeout=20)
        await asyncio.sleep(0.5)
    assert fake.sent_to(1601) == []
    assert "getFile" not in methods(fake.calls)


async def test_a_channel_is_left_without_a_word(fake: FakeTelegram, workdir: Path) -> None:
    fake.add_chat(CHANNEL, "channel", "News")
    async with running_bot(fake, workdir):
        fake.add_bot_status(CHANNEL, "administrator", by_user=ADMIN)
        fake.add_channel_post(leaky_photo(), CHANNEL)
        await fake.wait_for(lambda calls: "leaveChat" in methods(calls), timeout=20)
        await asyncio.sleep(0.5)
    assert fake.sent_to(CHANNEL) == []
    assert "getFile" not in methods(fake.calls)


async def test_automatic_forwards_from_a_linked_channel_stay(
    fake: FakeTelegram, workdir: Path
) -> None:
    fake.add_bot_status(GROUP, "administrator", by_user=ADMIN, **DELETE_RIGHTS)
    async with running_bot(fake, workdir):
        await fake.wait_for(lambda calls: bool(texts(fake, GROUP)))
        fake.add_document(leaky_photo(), **in_group(automatic_forward=True))
        fake.add_command("/help", user_id=PARENT, **in_group())
        await fake.wait_for(lambda calls: len(texts(fake, GROUP)) == 2, timeout=20)
        await asyncio.sleep(0.5)
    assert "deleteMessage" not in methods(fake.calls)
    assert not replies(fake, GROUP, "sendDocument")


async def test_a_restricted_bot_keeps_the_groups_settings(
    fake: FakeTelegram, workdir: Path
) -> None:
    fake.add_bot_status(GROUP, "administrator", by_user=ADMIN, **DELETE_RIGHTS)
    async with running_bot(fake, workdir):
        await fake.wait_for(lambda calls: bool(texts(fake, GROUP)))
        fake.set_chat_member(GROUP, ADMIN, "administrator")
        fake.add_command("/settings", user_id=ADMIN, **in_group())
        await fake.wait_for(lambda calls: len(texts(fake, GROUP)) == 2)
        menu = fake.last_message(GROUP)["message_id"]
        fake.add_button_press(menu, GROUP, "mode:warn", user_id=ADMIN)
        await fake.wait_for(lambda calls: "editMessageText" in methods(calls), timeout=20)
        fake.add_bot_status(
            GROUP, "restricted", by_user=ADMIN, old_status="administrator", is_member=True
        )
        fake.add_bot_status(
            GROUP, "administrator", by_user=ADMIN, old_status="restricted", **DELETE_RIGHTS
        )
        await fake.wait_for(lambda calls: len(texts(fake, GROUP)) == 3, timeout=20)
        fake.add_document(leaky_photo(), user_id=PARENT, **in_group())
        await fake.wait_for(lambda calls: bool(replies(fake, GROUP, "sendDocument")), timeout=20)
    # still in warn mode: the clean copy answers the original, which stays
    (copy,) = replies(fake, GROUP, "sendDocument")
    assert "reply_parameters" in copy.params
    assert "deleteMessage" not in methods(fake.calls)


async def test_help_and_privacy_are_answered_in_groups_too(
    fake: FakeTelegram, workdir: Path
) -> None:
    fake.add_bot_status(GROUP, "member", by_user=ADMIN)
    async with running_bot(fake, workdir):
        await fake.wait_for(lambda calls: bool(texts(fake, GROUP)))
        fake.add_command("/help@scrubbot_test_bot", user_id=PARENT, **in_group())
        fake.add_command("/privacy", user_id=PARENT, **in_group())
        await fake.wait_for(lambda calls: len(texts(fake, GROUP)) == 3, timeout=20)
    helped, private = sorted(texts(fake, GROUP)[1:], key=len)
    assert "as a file" in helped or "as a file" in private
    assert any("I never store photos" in text for text in texts(fake, GROUP))


async def test_command_menus_per_scope_and_a_refusal_is_not_fatal(
    fake: FakeTelegram, workdir: Path
) -> None:
    fake.fail_next("setMyCommands", 400, "Bad Request: invalid language code specified")
    async with running_bot(fake, workdir):
        fake.add_document(leaky_photo(), user_id=1701)
        await fake.wait_for(lambda calls: bool(replies(fake, 1701, "sendDocument")), timeout=20)
    menus = fake.scoped_commands
    names = {key: [c["command"] for c in value] for key, value in menus.items()}
    assert names[("all_chat_administrators", "de")] == [
        "help",
        "privacy",
        "stats",
        "forget",
        "settings",
    ]
    assert names[("all_group_chats", "")] == ["help", "privacy", "stats"]
    assert "settings" not in names[("all_private_chats", "de")]
    assert not group_sends(fake)


def test_language_folders_give_two_letter_command_languages() -> None:
    from adapters.telegram_commands import command_language  # loads PTB

    assert command_language("pt_BR") == "pt"
    assert command_language("de") == "de"
    assert command_language("en") is None
