"""End to end: photos posted in a Telegram group count towards the sender's limit of 30 a
minute, as in a private chat (the chat core applies one limit to every flow)."""

from pathlib import Path

from tests.fake_telegram import FakeTelegram
from tests.test_telegram import fake, leaky_photo, methods, running_bot, texts, workdir
from tests.test_telegram_groups import clean_photo

__all__ = ["fake", "workdir"]  # the fixtures, shared with the private-chat tests

GROUP = -1009876543210
ADMIN, PARENT = 601, 602


async def test_a_parent_posting_many_photos_in_a_group_is_asked_to_slow_down(
    fake: FakeTelegram, workdir: Path
) -> None:
    in_group = {"user_id": PARENT, "chat_id": GROUP, "chat_type": "supergroup"}
    async with running_bot(fake, workdir):
        fake.add_bot_status(GROUP, "member", by_user=ADMIN)  # mode warn: it may not delete
        await fake.wait_for(lambda calls: bool(texts(fake, GROUP)))
        # Three albums of ten: the limit. Photos with nothing hidden, so the group stays quiet:
        # thirty clean copies would take Telegram's own limit of 20 messages a minute in a group
        # (which the bot keeps) into account, and the minute would be over.
        for album in range(3):
            for _ in range(10):
                fake.add_document(clean_photo(), media_group_id=f"a{album}", **in_group)
            fetched = 10 * (album + 1)
            await fake.wait_for(lambda calls, n=fetched: methods(calls).count("getFile") == n, 30)
        fake.add_document(leaky_photo(99), **in_group)  # the 31st photo within the minute
        await fake.wait_for(
            lambda calls: any("wait a minute" in t for t in texts(fake, GROUP)), timeout=30
        )
    assert methods(fake.calls).count("getFile") == 30  # the 31st was not even downloaded
    assert "sendDocument" not in methods(fake.calls)
    assert "sendMediaGroup" not in methods(fake.calls)
