"""Videos in the chat networks: group modes (warn, replace), albums mixing photos and videos,
the `m.video` duration, and replies about videos that never call them photos. End to end through
`scrubbot run` against the fake Bot API and a real Synapse; clips made here with ffmpeg."""

import asyncio
import json
import random
import struct
import subprocess
from pathlib import Path

import pytest

from adapters.matrix_media import duration_ms
from bot.errors import UnsupportedFormat
from bot.findings import Finding, Kind
from bot.formats import isobmff
from bot.formats.isobmff import Budget, box, full
from bot.scrub import inspect, scrub
from bot.store import CLEANED, REFUSED, Counts
from bot.summary import render
from bot.texts import credit, refusal, stats
from tests.fake_telegram import FakeTelegram
from tests.test_mp4 import (
    FFMPEG,
    codes,
    decodes,
    leftovers,
    make_clip,
    phone_clip,
    probe,
    stream_hashes,
    top_boxes,
)
from tests.test_telegram import fake, leaky_photo, methods, replies, running_bot, texts, workdir
from tests.test_telegram_groups import (
    ADMIN,
    DELETE_RIGHTS,
    GROUP,
    PARENT,
    assert_no_values,
    group_sends,
    in_group,
)

__all__ = ["fake", "workdir"]  # the fixtures, shared with the other Telegram tests

pytestmark = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is missing: .ci/run installs it")


def probed_ms(path: Path) -> int:
    """The duration ffprobe reads, in milliseconds: the independent judge of `duration_ms`."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return round(float(json.loads(out)["format"]["duration"]) * 1000)


# --- in process ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("variant", "seconds"), [("mp4", "1"), ("mov", "0.5"), ("3gp", "0.7")])
def test_the_duration_is_read_from_the_cleaned_movie(
    variant: str, seconds: str, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path, variant, "-t", seconds)
    out = scrub(clip).data
    path = tmp_path / f"out.{variant}"
    path.write_bytes(out)
    measured = duration_ms(out)
    assert measured is not None
    assert abs(measured - probed_ms(path)) <= 50
    assert abs(measured - float(seconds) * 1000) <= 150


def test_a_movie_without_a_header_duration_has_none() -> None:
    assert duration_ms(b"\0\0\0\x10ftypisom\0\0\0\0") is None
    assert duration_ms(b"not a movie at all") is None


def test_a_live_photo_id_in_a_video_is_not_called_a_photo() -> None:
    found = [
        Finding(Kind.TRACKING, "apple_id", "8C1B2D6E-4F3A-4B8E-9C1D-2E3F4A5B6C7D", "QuickTime")
    ]
    english = render(found, "en", videos=True).text
    german = render(found, "de", videos=True).text
    assert "Apple IDs that link this file to its Live Photo" in english
    assert "this photo" not in english
    assert "diese Datei mit ihrem Live Photo" in german
    assert "dieses Foto" not in german


def test_an_album_of_photos_and_videos_is_named_as_both() -> None:
    found = [Finding(Kind.DEVICE, "model", "Pixel 8", "EXIF")]
    assert render(found, "en", photos=3, mixed=True).text.startswith(
        "These 3 photos and videos contained"
    )
    assert render(found, "de", photos=3, mixed=True).text.startswith(
        "Diese 3 Fotos und Videos enthielten"
    )


def test_credits_and_refusals_say_video_where_it_is_one() -> None:
    assert credit("en", "Jo", videos=1, files=1) == "Clean copy of a video from Jo."
    assert credit("de", "Jo", videos=1, files=1) == "Bereinigte Kopie eines Videos von Jo."
    assert credit("en", "Jo", videos=1, files=2) == "Clean copies of photos and videos from Jo."
    assert credit("en", "Jo") == "Clean copy of a photo from Jo."
    assert "not a photo or video I can clean" in refusal(UnsupportedFormat("This file"), "en")
    assert "kein Foto und kein Video" in refusal(UnsupportedFormat("This file"), "de")
    assert str(UnsupportedFormat("A fragmented (streaming) MP4 video")) == (
        "A fragmented (streaming) MP4 video is not a photo or video format I can clean."
    )


AMR_FRAMES = 50  # 20 ms each: one second of sound
AMR_122 = 7  # frame type of the 12.2 kbit/s mode: 244 bits, 31 bytes after the header


def amr_track(
    track_id: int, vendor: bytes, frames: list[bytes], first: int, version: int = 0
) -> bytes:
    """An AMR-NB sound track ('samr' with its 'damr', as a phone's 3GP recorder writes it) whose
    frames lie one after another from `first`, one frame per sample, one chunk."""
    count = len(frames)
    tkhd = struct.pack(">IIIII", 0, 0, track_id, 0, 1000) + bytes(8)
    tkhd += struct.pack(">hhhh", 0, 1, 0x0100, 0)  # layer, group, full volume
    tkhd += struct.pack(">9i", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000) + bytes(8)
    mdhd = struct.pack(">IIIIHH", 0, 0, 8000, 160 * count, 0x55C4, 0)
    hdlr = full(b"hdlr", 0, 0, bytes(4) + b"soun" + bytes(12) + b"SoundHandler\0")
    damr = box(b"damr", vendor + bytes([version]) + struct.pack(">H", 0x81FF) + bytes([0, 1]))
    entry = bytes(6) + struct.pack(">H", 1) + bytes(8) + struct.pack(">HHHH", 1, 16, 0, 0)
    entry += struct.pack(">I", 8000 << 16) + damr
    stsd = full(b"stsd", 0, 0, struct.pack(">I", 1) + box(b"samr", entry))
    stts = full(b"stts", 0, 0, struct.pack(">III", 1, count, 160))
    stsc = full(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, count, 1))
    stsz = full(b"stsz", 0, 0, struct.pack(f">II{count}I", 0, count, *map(len, frames)))
    stco = full(b"stco", 0, 0, struct.pack(">II", 1, first))
    dinf = box(b"dinf", full(b"dref", 0, 0, struct.pack(">I", 1) + full(b"url ", 0, 1, b"")))
    stbl = box(b"stbl", stsd + stts + stsc + stsz + stco)
    minf = box(b"minf", full(b"smhd", 0, 0, bytes(4)) + dinf + stbl)
    mdia = box(b"mdia", full(b"mdhd", 0, 0, mdhd) + hdlr + minf)
    return box(b"trak", full(b"tkhd", 0, 7, tkhd) + mdia)


def amr_clip(tmp_path: Path, vendor: bytes, seed: int, version: int = 0) -> bytes:
    """A 3GP clip with H.264 pictures (ffmpeg, which has no AMR encoder) and AMR-NB sound built
    here: random 12.2 kbit/s frames (any bits decode), in an 'mdat' after the movie."""
    data = make_clip(tmp_path, "3gp", "-an")
    *_, moov = top_boxes(data)
    assert moov.type == b"moov", "the builder needs the movie last"
    rng = random.Random(seed)
    header = bytes([AMR_122 << 3 | 0x04])  # quality bit set
    frames = [header + rng.randbytes(31) for _ in range(AMR_FRAMES)]
    body = data[moov.body : moov.end]
    size = len(amr_track(2, vendor, frames, 0, version))
    first = moov.start + 8 + len(body) + size + 8
    new_moov = box(b"moov", body + amr_track(2, vendor, frames, first, version))
    return data[: moov.start] + new_moov + box(b"mdat", b"".join(frames))


def test_amr_sound_in_3gp_stays_identical_and_loses_its_vendor(tmp_path: Path) -> None:
    """ExifTool still names the fields of the kept 'damr' (an empty vendor, the decoder version
    0 planted here); nothing else is left, the packets are identical and decode."""
    vendor = "".join(random.Random(45).choices("ABCDEFGHJKLMNPQRSTUVWXYZ", k=4))
    clip = amr_clip(tmp_path, vendor.encode(), 45)
    source, out = tmp_path / "in-amr.3gp", tmp_path / "out-amr.3gp"
    source.write_bytes(clip)
    assert [codec for codec, _, _ in probe(source)] == ["h264", "amr_nb"]  # ffmpeg reads both
    assert leftovers(source)["Track2:EncoderVendor"] == vendor
    cleaned = scrub(clip).data
    out.write_bytes(cleaned)
    assert leftovers(out) == {"Track2:EncoderVendor": "", "Track2:EncoderVersion": 0}
    assert vendor.encode() not in cleaned
    assert stream_hashes(out) == stream_hashes(source)
    assert probe(out) == probe(source)
    assert decodes(out) == ""
    assert inspect(cleaned).findings == ()
    assert scrub(cleaned).data == cleaned
    moov = next(b for b in top_boxes(cleaned) if b.type == b"moov")
    traks = [b for b in isobmff.children(cleaned, moov, Budget()) if b.type == b"trak"]
    assert len(traks) == 2  # the sound stays
    assert cleaned.count(b"samr") == cleaned.count(b"damr") == 1


def test_the_encoders_decoder_version_in_damr_is_zeroed(tmp_path: Path) -> None:
    """No decoder reads it; an encoder writes its own version there (a fingerprint)."""
    clip = amr_clip(tmp_path, b"ABCD", 46, version=7)
    source, out = tmp_path / "in-v7.3gp", tmp_path / "out-v7.3gp"
    source.write_bytes(clip)
    assert leftovers(source)["Track2:EncoderVersion"] == 7
    cleaned = scrub(clip).data
    out.write_bytes(cleaned)
    assert leftovers(out) == {"Track2:EncoderVendor": "", "Track2:EncoderVersion": 0}
    assert stream_hashes(out) == stream_hashes(source)
    assert decodes(out) == ""


def test_usage_counts_tell_videos_from_photos() -> None:
    rows = (("jpeg", CLEANED, 2), ("mov", CLEANED, 1), ("mp4", CLEANED, 2), ("-", REFUSED, 1))
    assert stats(Counts(1, rows), "en").startswith(
        "This chat: 2 photos and 3 videos cleaned, 1 refused.\n"
    )
    assert stats(Counts(1, rows), "de").startswith(
        "Dieser Chat: 2 Fotos und 3 Videos bereinigt, 1 abgelehnt.\n"
    )
    assert stats(Counts(1, rows[1:2]), "en").startswith("This chat: 1 video cleaned, 0 refused.")
    assert stats(Counts(1, rows[:1]), "en").startswith("This chat: 2 photos cleaned, 0 refused.")


# --- Telegram, end to end ------------------------------------------------------------------------


async def test_a_video_in_a_group_is_replaced_then_deleted(
    fake: FakeTelegram, workdir: Path, tmp_path: Path
) -> None:
    value = codes(41)
    clip = phone_clip(tmp_path, "mov", value)
    fake.add_bot_status(GROUP, "administrator", by_user=ADMIN, **DELETE_RIGHTS)
    async with running_bot(fake, workdir) as log_path:
        await fake.wait_for(lambda calls: bool(texts(fake, GROUP)))
        posted = fake.add_document(
            clip,
            user_id=PARENT,
            first_name="Jo",
            file_name="IMG_7.MOV",
            mime_type="video/quicktime",
            **in_group(),
        )
        await fake.wait_for(
            lambda calls: (
                "deleteMessage" in methods(fake.calls)
                and "sendDocument" in methods(group_sends(fake))
            ),
            timeout=30,
        )
        log = log_path.read_text()
    sent = methods(fake.calls)
    assert sent.index("sendDocument") < sent.index("deleteMessage")  # post, then delete
    (deleted,) = [c for c in fake.calls if c.method == "deleteMessage"]
    assert deleted.params == {"chat_id": GROUP, "message_id": posted}
    (repost,) = [c for c in group_sends(fake) if c.method == "sendDocument"]
    caption = str(repost.params["caption"])
    assert caption.startswith("This video contained the route it was recorded along")
    assert "Clean copy of a video from Jo." in caption
    assert "photo" not in caption
    assert "12 positions" not in caption  # kinds only in a group, never the route itself
    ((name, data),) = repost.files.values()
    assert name == "video.mov"
    assert inspect(data).findings == ()
    assert_no_values(fake)
    for code in (value["make"], value["model"], value["identifier"], "IMG_7"):
        assert code not in caption
        assert code not in log


async def test_a_video_in_a_group_without_delete_rights_is_warned_about(
    fake: FakeTelegram, workdir: Path, tmp_path: Path
) -> None:
    clip = phone_clip(tmp_path, "mp4", codes(42))
    async with running_bot(fake, workdir):
        fake.add_bot_status(GROUP, "member", by_user=ADMIN, language_code="de")
        await fake.wait_for(lambda calls: bool(texts(fake, GROUP)))
        posted = fake.add_document(
            clip,
            user_id=PARENT,
            file_name="VID_2.mp4",
            mime_type="video/mp4",
            language_code="de",
            **in_group(),
        )
        await fake.wait_for(lambda calls: "sendDocument" in methods(group_sends(fake)), timeout=30)
    assert "deleteMessage" not in methods(fake.calls)
    (copy,) = [c for c in group_sends(fake) if c.method == "sendDocument"]
    assert copy.params["reply_parameters"]["message_id"] == posted  # type: ignore[index]
    caption = str(copy.params["caption"])
    assert caption.startswith("Dieses Video enthielt")
    assert "Foto" not in caption
    ((_, data),) = copy.files.values()
    assert inspect(data).findings == ()


async def test_an_album_mixing_photos_and_videos_gets_one_summary_and_one_album(
    fake: FakeTelegram, workdir: Path, tmp_path: Path
) -> None:
    clip = phone_clip(tmp_path, "mp4", codes(43))
    async with running_bot(fake, workdir):
        fake.add_document(leaky_photo(1), user_id=5005, media_group_id="mixed-1")
        fake.add_document(
            clip,
            user_id=5005,
            file_name="VID_1.mp4",
            media_group_id="mixed-1",
            mime_type="video/mp4",
        )
        fake.add_document(leaky_photo(2), user_id=5005, media_group_id="mixed-1")
        await fake.wait_for(lambda calls: bool(replies(fake, 5005, "sendMediaGroup")), timeout=30)
        await asyncio.sleep(1.5)  # nothing more may follow
    (summary,) = texts(fake, 5005)
    assert summary.startswith("These 3 photos and videos contained")
    (album,) = replies(fake, 5005, "sendMediaGroup")
    media = album.params["media"]
    assert isinstance(media, list)
    assert [m["type"] for m in media] == ["document"] * 3  # documents group only with documents
    names = [str(name) for name, _ in album.files.values()]
    assert names == ["photo-1.jpg", "video-2.mp4", "photo-3.jpg"]  # in the order sent
    for _, data in album.files.values():
        assert inspect(data).findings == ()
    assert not replies(fake, 5005, "sendDocument")


# --- Matrix, end to end (a real Synapse) ---------------------------------------------------------


async def test_a_video_in_a_matrix_room_is_warned_about_then_replaced(tmp_path: Path) -> None:
    """A family room: in `warn` a clean `m.video` answers the clip; in `replace` one is posted
    with the credit and the original is redacted after it. Every `m.video` gives its duration
    in ms as ffprobe measures the cleaned file."""
    from nio import RoomEncryptedVideo, RoomMessageVideo

    from tests.synapse import Synapse
    from tests.test_matrix import (
        Bot,
        Parent,
        bot_events,
        client_api,
        command,
        family_room,
        fetch_event,
    )

    value = codes(44)
    clip = phone_clip(tmp_path, "mp4", value)
    videos = (RoomMessageVideo, RoomEncryptedVideo)
    with Synapse.start(tmp_path / "synapse") as synapse:
        bot = Bot(synapse, tmp_path / "bot")
        async with (
            Parent.login(synapse, tmp_path / "a") as parent,
            Parent.login(synapse, tmp_path / "b") as grandma,
            bot.running() as log_path,
        ):
            room = await family_room(parent, grandma, bot)
            warned = await grandma.send_photo(room, clip, "m.video")

            def answer_to(event_id: str) -> list[object]:
                return [e for e in grandma.replies(room, event_id) if isinstance(e, videos)]

            await grandma.sync_until(
                lambda: bool(answer_to(warned) and grandma.notices(room, warned))
            )
            (note,) = grandma.notices(room, warned)
            assert note.startswith("This video contained the route it was recorded along")
            assert "Please delete your original" in note
            assert "12 positions" not in note  # kinds only in a room of more than two
            assert (await fetch_event(parent, room, warned))["content"]  # still there
            (copy,) = answer_to(warned)
            cleaned = await grandma.download(copy)
            path = tmp_path / "warned.mp4"
            path.write_bytes(cleaned)
            info = copy.source["content"]["info"]  # type: ignore[attr-defined]
            assert info["mimetype"] == "video/mp4"
            assert abs(info["duration"] - probed_ms(path)) <= 50
            assert inspect(cleaned).findings == ()

            path = f"/rooms/{room}/state/m.room.power_levels"
            levels = await client_api(parent.client, "GET", path)
            levels["users"][bot.user_id] = 50
            await client_api(parent.client, "PUT", path, levels)
            assert (await command(parent, room, "!scrubbot mode replace")).startswith("Replace")
            replaced = await grandma.send_photo(room, clip, "m.video")

            def reposted() -> list[object]:
                return [e for e in bot_events(parent, room, bot) if isinstance(e, videos)][1:]

            def credited() -> bool:
                bodies = [getattr(e, "body", "") for e in bot_events(parent, room, bot)]
                return any("Clean copy of a video from" in body for body in bodies)

            await parent.sync_until(lambda: bool(reposted()) and credited())
            for _ in range(100):  # the original goes once the clean copy is there
                original = await fetch_event(parent, room, replaced)
                if original["content"] == {}:
                    break
                await asyncio.sleep(0.1)
            assert original["content"] == {}
            assert original["unsigned"]["redacted_because"]["sender"] == bot.user_id
            (repost,) = reposted()
            info = repost.source["content"]["info"]  # type: ignore[attr-defined]
            assert abs(info["duration"] - probed_ms(tmp_path / "warned.mp4")) <= 50
            assert inspect(await parent.download(repost)).findings == ()
            bodies = [str(getattr(e, "body", "")) for e in bot_events(parent, room, bot)]
            about = [note, *(b for b in bodies if "Clean copy" in b)]
            assert len(about) >= 2
            assert all("photo" not in text.lower() for text in about)  # it hears of a video
            said = " ".join(bodies)
        log = log_path.read_text()
    for code in (value["make"], value["model"], value["identifier"], value["title"]):
        assert code not in said
        assert code not in log


async def test_a_mixed_album_in_a_group_is_reposted_as_one_album_then_deleted(
    fake: FakeTelegram, workdir: Path, tmp_path: Path
) -> None:
    clip = phone_clip(tmp_path, "mp4", codes(46))
    fake.add_bot_status(GROUP, "administrator", by_user=ADMIN, **DELETE_RIGHTS)
    async with running_bot(fake, workdir):
        await fake.wait_for(lambda calls: bool(texts(fake, GROUP)))
        posted = [
            fake.add_document(
                leaky_photo(3), user_id=PARENT, first_name="Jo", media_group_id="g", **in_group()
            ),
            fake.add_document(
                clip,
                user_id=PARENT,
                first_name="Jo",
                media_group_id="g",
                file_name="VID_3.mp4",
                mime_type="video/mp4",
                **in_group(),
            ),
        ]
        await fake.wait_for(
            lambda calls: len([c for c in calls if c.method == "deleteMessage"]) == 2, timeout=30
        )
    sent = methods(fake.calls)
    assert sent.index("sendMediaGroup") < sent.index("deleteMessage")  # post, then delete
    deleted = [c.params["message_id"] for c in fake.calls if c.method == "deleteMessage"]
    assert sorted(deleted) == sorted(posted)  # type: ignore[type-var]
    (album,) = [c for c in group_sends(fake) if c.method == "sendMediaGroup"]
    media = album.params["media"]
    assert isinstance(media, list)
    assert [m["type"] for m in media] == ["document", "document"]
    caption = str(media[0]["caption"])
    assert caption.startswith("These 2 photos and videos contained")
    assert "Clean copies of photos and videos from Jo." in caption
    assert [str(name) for name, _ in album.files.values()] == ["photo-1.jpg", "video-2.mp4"]
    for _, data in album.files.values():
        assert inspect(data).findings == ()
    assert_no_values(fake)
