"""No photo bytes ever reach the disk: the real `scrubbot run` cleans several photos with TMPDIR
pointed at an empty folder, then TMPDIR, the working directory and the data directory are
searched for the signatures of every picture format we handle."""

import io
import re
from pathlib import Path

import pillow_heif
from PIL import Image

from tests.fake_telegram import FakeTelegram
from tests.test_telegram import fake, leaky_photo, replies, running_bot  # noqa: F401 (fixture)

pillow_heif.register_heif_opener()

PICTURE_SIGNATURES = re.compile(
    rb"\xff\xd8\xff|\x89PNG|RIFF....WEBP|ftyp(?:heic|heix|mif1|avif)|GIF8[79]a|II\*\0|MM\0\*",
    re.DOTALL,
)


def picture(fmt: str, seed: int) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", (320, 240), (seed * 50 % 256, 90, 160))
    exif = Image.Exif()
    exif[0x013B], exif[0x010F] = "Mia Tochter", "Apple"  # Artist, Make
    image.save(out, fmt, exif=exif)
    return out.getvalue()


async def test_no_photo_bytes_reach_the_disk(fake: FakeTelegram, tmp_path: Path) -> None:  # noqa: F811
    workdir, tmpdir = tmp_path / "work", tmp_path / "tmp"
    workdir.mkdir()
    tmpdir.mkdir()
    photos = [leaky_photo(1, (800, 600)), leaky_photo(2)]
    photos += [picture(fmt, seed) for seed, fmt in enumerate(("PNG", "WEBP", "HEIF", "TIFF"))]
    users = range(4400, 4400 + len(photos))
    env = {"TMPDIR": str(tmpdir), "TEMP": str(tmpdir), "TMP": str(tmpdir)}
    async with running_bot(fake, workdir, **env):
        for user, data in zip(users, photos, strict=True):
            fake.add_document(data, user_id=user, file_name="IMG_0001.dat")
        await fake.wait_for(
            lambda calls: all(replies(fake, u, "sendDocument") for u in users), timeout=60
        )
    searched = [path for folder in (tmpdir, workdir) for path in folder.rglob("*")]
    files = [path for path in searched if path.is_file()]
    assert (workdir / "data") in searched  # the bot did use its data directory
    for path in files:
        found = PICTURE_SIGNATURES.search(path.read_bytes())
        assert found is None, f"{path.relative_to(tmp_path)} holds {found.group()!r}"
    assert not any(tmpdir.iterdir()), "the bot left files in TMPDIR"
