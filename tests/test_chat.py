"""The chat core's policy, in process: a fake network (tests/fake_network.py) drives bot/chat.py
with real photos, the real Service and a real SQLite store; the end-to-end tests prove the
adapters' wiring."""

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from bot import chat as core
from bot.chat import Chat, Mode
from bot.errors import TooLarge, Unavailable
from bot.ratelimit import RateLimit
from bot.scrub import Limits, inspect
from bot.service import Service
from bot.store import Store
from bot.texts import Syntax
from tests.fake_network import FakeDialect, FakeNetwork, said
from tests.test_telegram import FBMD, NAME, SERIAL, leaky_photo

GROUP_SECRETS = (SERIAL, NAME, FBMD, "Kreuzberg", "Berlin", "52.4", "13.4", "Apple")


def clean_photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), "white").save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "data" / "db.sqlite3", tmp_path / "data" / "store.key")
    yield opened
    await opened.close()


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    running = Service(Limits())
    yield running
    running.close()


def network(
    service: Service,
    store: Store,
    syntax: str = "/",
    limit: RateLimit | None = None,
    download_limit: int | None = None,
) -> FakeNetwork:
    dialect = FakeDialect(Syntax(syntax), download_limit)
    return FakeNetwork(Chat("fake", dialect, service, store, limit))


def kinds(actions: list[core.Action]) -> list[type]:
    return [type(action) for action in actions]


async def test_a_private_photo_gets_values_and_a_clean_file(
    service: Service, store: Store
) -> None:
    net = network(service, store)
    actions = await net.send([leaky_photo()])
    assert kinds(actions) == [core.SendFiles, core.Say]  # the file first, then the words
    summary = actions[1].summary  # type: ignore[union-attr]
    assert summary is not None
    assert "near Kreuzberg, Berlin, Germany" in summary.text
    assert any(SERIAL in line.values for line in summary.lines)
    (cleaned,) = actions[0].files  # type: ignore[union-attr]
    assert cleaned.file_name == "photo.jpg"
    assert inspect(cleaned.data).findings == ()


async def test_an_album_is_answered_once(service: Service, store: Store) -> None:
    net = network(service, store)
    actions = await net.send([leaky_photo(seed) for seed in range(3)], language="de-AT")
    assert kinds(actions) == [core.SendFiles, core.Say]  # the file first, then the words
    assert said(actions)[0].startswith("Diese 3 Fotos enthielten")
    files = actions[0].files  # type: ignore[union-attr]
    assert [f.file_name for f in files] == ["photo-1.jpg", "photo-2.jpg", "photo-3.jpg"]
    assert [f.source for f in files] == [0, 1, 2]


async def test_bad_files_are_refused_in_private_with_one_line_each(
    service: Service, store: Store
) -> None:
    net = network(service, store)
    actions = await net.send([b"%PDF-1.7", None, leaky_photo()[:300]])
    assert kinds(actions) == [core.Say]  # nothing cleaned: no summary, no file
    (text,) = said(actions)
    assert "not a photo or video I can clean" in text
    assert text.count("damaged or incomplete") == 1  # the unfetchable and the cut one, once


async def unavailable() -> bytes | None:
    raise Unavailable


async def test_a_file_of_unannounced_size_gets_the_size_message(
    service: Service, store: Store
) -> None:
    net = network(service, store, download_limit=1000)

    async def too_large() -> bytes | None:
        raise TooLarge

    event = core.Photos(
        net.where("parent", False), net.who("parent"), (core.Photo(None, too_large),)
    )
    assert said(await net.chat.photos(event)) == ["too large: up to 1000 bytes"]


async def test_a_group_is_told_of_a_file_it_could_not_fetch(
    service: Service, store: Store
) -> None:
    net = network(service, store)
    net.may_remove = True
    lost = core.Photo(None, unavailable)
    photos = (lost, net.photo(leaky_photo()))
    actions = await net.chat.photos(core.Photos(net.where("g", True), net.who("p"), photos))
    assert kinds(actions) == [core.Say, core.ScrubbedCopy, core.Remove]
    assert said(actions)[0] == "I could not download one file. Please send it again."
    assert actions[2] == core.Remove((1,))


async def test_too_large_is_refused_before_fetching(service: Service, store: Store) -> None:
    net = network(service, store, download_limit=1000)
    big = net.photo(leaky_photo(), size=5000)
    event = core.Photos(net.where("parent", False), net.who("parent"), (big,))
    assert said(await net.chat.photos(event)) == ["too large: up to 1000 bytes"]
    group = core.Photos(net.where("g", True), net.who("parent"), (big,))
    assert await net.chat.photos(group) == []  # silent in a group
    assert net.fetched == 0


async def test_group_replace_removes_and_credits_without_values(
    service: Service, store: Store
) -> None:
    net = network(service, store)
    net.may_remove = True
    actions = await net.send([leaky_photo()], chat="g", group=True, name="Jo")
    assert kinds(actions) == [core.ScrubbedCopy, core.Remove]  # post, then remove
    assert actions[1] == core.Remove((0,))
    assert actions[1].if_kept.startswith("Here is a clean copy. Please delete your original")
    copy = actions[0]
    assert isinstance(copy, core.ScrubbedCopy)
    assert (copy.reply, copy.to, copy.note) == (False, 0, "Clean copy of a photo from Jo.")
    assert copy.summary.lines == ()  # kinds only
    for secret in GROUP_SECRETS:
        assert secret not in " ".join(said(actions))
    anonymous = await net.send([leaky_photo()], chat="g", group=True, sender="a2", name=None)
    assert said(anonymous)[0].endswith("Clean copy of a photo from an admin.")


async def test_group_warn_is_the_default_without_the_right_to_remove(
    service: Service, store: Store
) -> None:
    net = network(service, store)
    actions = await net.send([clean_photo(), leaky_photo(1), leaky_photo(2)], chat="g", group=True)
    (copy,) = actions
    assert isinstance(copy, core.ScrubbedCopy)
    assert copy.reply
    assert copy.to == 1  # answers the first leaky original
    assert [f.source for f in copy.files] == [1, 2]  # the clean one is not re-posted
    assert copy.note.startswith("Here are clean copies. Please delete your originals")


async def test_group_is_quiet_when_nothing_is_hidden_and_off_fetches_nothing(
    service: Service, store: Store
) -> None:
    net = network(service, store)
    assert await net.send([clean_photo(), b"%PDF-1.5"], chat="g", group=True) == []
    net.admins.add("admin")
    await net.say("/mode off", sender="admin", chat="g", group=True)
    fetched = net.fetched
    assert await net.send([leaky_photo()], chat="g", group=True) == []
    assert net.fetched == fetched


async def test_a_group_where_the_bot_may_not_post_is_left_alone(
    service: Service, store: Store
) -> None:
    net = network(service, store)
    net.may_post = False
    assert await net.send([leaky_photo()], chat="g", group=True) == []
    assert net.fetched == 0  # not even downloaded


async def test_only_admins_change_settings_in_groups(service: Service, store: Store) -> None:
    net = network(service, store)
    net.admins.add("admin")
    for line in ("/mode off", "/stats on", "/stats off", "/forget", "/language de"):
        assert said(await net.say(line, sender="parent", chat="g", group=True)) == ["admins only"]
    assert isinstance((await net.say("/mode", chat="g", group=True))[0], core.ModeMenu)
    assert said(await net.say("/mode replace", sender="admin", chat="g", group=True)) == [
        "I need level 50 to remove messages"
    ]
    assert said(await net.say("/mode off", sender="admin", chat="g", group=True)) == [
        "Off: I leave photos alone."
    ]
    (menu,) = await net.say("/mode", chat="g", group=True)
    assert isinstance(menu, core.ModeMenu)
    assert menu.current is Mode.OFF
    assert [mode for mode, _ in menu.labels] == list(core.MODES)
    # in a private chat the sender decides alone
    assert said(await net.say("/stats on"))[0].startswith("Usage counts are on")


async def test_group_photos_are_rate_limited_like_private_ones(
    service: Service, store: Store
) -> None:
    net = network(service, store, limit=RateLimit(2, 60))
    net.may_remove = True
    for _ in range(2):
        assert kinds(await net.send([leaky_photo()], chat="g", group=True)) == [
            core.ScrubbedCopy,
            core.Remove,
        ]
    fetched = net.fetched
    slowed = await net.send([leaky_photo()], chat="g", group=True)
    assert said(slowed) == [
        "You have sent me a lot of photos in a short time. Please wait a minute, then send the "
        "rest."
    ]
    assert net.fetched == fetched  # nothing downloaded
    assert kinds(await net.send([leaky_photo()], sender="other", chat="g", group=True)) == [
        core.ScrubbedCopy,
        core.Remove,
    ]  # another sender has their own allowance


@pytest.mark.parametrize("syntax", ["/", "!scrubbot "])
async def test_commands_show_the_networks_own_syntax(
    service: Service, store: Store, syntax: str
) -> None:
    net = network(service, store, syntax=syntax)
    other = "!scrubbot " if syntax == "/" else "/"
    shown = []
    for words in ("help", "privacy", "stats", "stats on", "mode", "language xx", "forget"):
        shown += said(await net.say(syntax + words))
    everything = "\n".join(shown)
    for command in ("stats on", "stats off", "forget", "mode off", "language de"):
        assert syntax + command in everything
        assert other + command not in everything
    assert f"[{syntax}] send it as a file" in everything  # the network's own hint under help


async def test_stats_count_only_after_opting_in_and_forget_deletes(
    service: Service, store: Store
) -> None:
    net = network(service, store)
    await net.send([leaky_photo()])
    assert said(await net.say("/stats"))[0].startswith("Usage counts are off")
    await net.say("/stats on")
    await net.send([leaky_photo(1), b"%PDF-1.4"])
    counts = said(await net.say("/stats"))[0]
    assert counts.startswith("This chat: 1 photo cleaned, 1 refused.")
    assert "With a location: 1." in counts
    assert said(await net.say("/forget", language="de")) == [
        "Ich habe alles gelöscht, was ich über diesen Chat gespeichert hatte."
    ]
    assert not await store.opted_in(net.chat.key("parent"))


async def test_a_rooms_language_is_chosen_by_command(service: Service, store: Store) -> None:
    net = network(service, store, syntax="!scrubbot ")
    assert "Deutsch" in said(await net.say("!scrubbot sprache de", language=None))[0]
    assert said(await net.send([leaky_photo()], language=None))[0].startswith("Dieses Foto")
    assert "!scrubbot language de" in said(await net.say("!scrubbot language", language=None))[0]


async def test_a_group_speaks_the_language_of_whoever_added_the_bot(
    service: Service, store: Store
) -> None:
    net = network(service, store)
    where = net.where("g", True)
    assert await net.chat.joined(where, "de-AT") == "de"
    actions = await net.send([leaky_photo()], chat="g", group=True, language="en")
    assert said(actions)[0].startswith("Dieses Foto")
    await net.chat.moved("g", "g2")
    assert await net.chat.language(net.where("g2", True)) == "de"
    await net.chat.left(net.where("g2", True))
    assert await net.chat.language(net.where("g2", True)) == "en"


def real_dialects() -> list[object]:
    from adapters.matrix import MatrixDialect
    from adapters.telegram import TelegramDialect

    return [
        pytest.param(TelegramDialect(20 * 1024 * 1024), "/", "!scrubbot", id="telegram"),
        pytest.param(MatrixDialect(), "!scrubbot ", "/", id="matrix"),
    ]


@pytest.mark.parametrize(("dialect", "own", "other"), real_dialects())
@pytest.mark.parametrize("language", ["en", "de"])
async def test_each_network_shows_only_its_own_syntax(
    service: Service, store: Store, dialect: core.Dialect, own: str, other: str, language: str
) -> None:
    net = FakeNetwork(Chat("x", dialect, service, store))
    shown = []
    for words in ("help", "privacy", "stats", "stats on", "stats off", "mode", "language xx"):
        verb, *args = words.split()
        for group in (False, True):
            net.admins.add("parent")
            event = core.Command(
                net.where("c", group, language), net.who("parent"), verb, tuple(args)
            )
            shown += said(await net.chat.command(event))
    everything = "\n".join(shown)
    assert own + "stats on" in everything
    assert own + "forget" in everything
    for command in ("stats", "forget", "mode", "language"):
        assert other + command not in everything
