"""Facts about embedded pictures and videos: size, whether a thumbnail shows more than the
photo (it was cropped), and how long a motion-photo video runs. All reads are bounded."""

import io
import struct
import warnings

from bot.errors import DamagedImage
from bot.formats import isobmff

_MAX_THUMBNAIL_PIXELS = 1024 * 1024
_MAX_VIDEO_BOXES = 64  # top-level and moov boxes looked at before mvhd
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE})


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a JPEG's frame header, without decoding; None if unreadable."""
    pos = 2
    if not data.startswith(b"\xff\xd8"):
        return None
    while pos + 9 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker in _SOF:
            height, width = struct.unpack_from(">HH", data, pos + 5)
            return (width, height) if width and height else None
        if marker in (0xD9, 0xDA) or length < 2:
            return None
        pos += 2 + length
    return None


def shows_more(thumbnail: bytes, width: int, height: int) -> bool:
    """True when a thumbnail's picture has another shape than the photo: the photo was cropped
    after the thumbnail was made, so the thumbnail shows what was cut away. Black bars that
    cameras add to fit a 4:3 thumbnail are ignored."""
    size = jpeg_size(thumbnail)
    if size is None or size[0] * size[1] > _MAX_THUMBNAIL_PIXELS or not width or not height:
        return False
    photo = width / height
    if _differs(size[0] / size[1], photo):
        box = _content_box(thumbnail) or (0, 0, *size)  # decoded only when the shapes differ
        inner_w, inner_h = box[2] - box[0], box[3] - box[1]
        return inner_w >= 4 and inner_h >= 4 and _differs(inner_w / inner_h, photo)
    return False


def _differs(shape: float, photo: float) -> bool:
    return abs(shape - photo) / photo > 0.08


def _content_box(thumbnail: bytes) -> tuple[int, int, int, int] | None:
    """The part of a thumbnail that is not a black border, or None if it cannot be decoded."""
    from PIL import Image  # Pillow is slow to import and rarely needed here

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(thumbnail)) as image:
                gray = image.convert("L")
                mask = gray.point(lambda v: 255 if v > 16 else 0)
                return mask.getbbox()
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        return None


def video_seconds(data: bytes) -> float | None:
    """Duration of an MP4/MOV from its `moov/mvhd` box, None when it cannot be found."""
    budget = isobmff.Budget("video", _MAX_VIDEO_BOXES)
    try:
        moov = next(
            (b for b in isobmff.walk(data, 0, len(data), budget) if b.type == b"moov"), None
        )
        if moov is None:
            return None
        mvhd = next(
            (b for b in isobmff.walk(data, moov.body, moov.end, budget) if b.type == b"mvhd"), None
        )
        if mvhd is None:
            return None
        version, _, reader = isobmff.full_box(data, mvhd)
        reader.take(16 if version == 1 else 8)  # creation and modification times
        scale = reader.uint(4)
        duration = reader.uint(8 if version == 1 else 4)
    except DamagedImage:
        return None
    return duration / scale if scale else None
