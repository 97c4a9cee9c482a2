"""ExifTool as the independent judge of a cleaned file: which tags would still tell a stranger
something. Everything not on the allow-list below counts as a leftover."""

import json
import re
import shutil
import subprocess
from pathlib import Path

EXIFTOOL = shutil.which("exiftool")

# Groups (ExifTool family 1) that only describe how to show the picture.
_ALLOWED_GROUPS = {
    "ExifTool",
    "System",
    "JFIF",
    "Adobe",
    "APP14",
    "ICC_Profile",
    "ICC-header",
    "ICC-view",
    "ICC-meas",
    "ICC-chrm",
    "ICC-clrt",
    "ICC-chad",
    "VP8",
    "VP8L",
    "QuickTime",
    "Meta",
    "Composite",
}
# Tags in otherwise sensitive groups that are pure image structure.
_ALLOWED_TAGS = {
    "IFD0:Orientation",
    "IFD0:ImageWidth",
    "IFD0:ImageHeight",
    "IFD0:BitsPerSample",
    "IFD0:Compression",
    "IFD0:PhotometricInterpretation",
    "IFD0:FillOrder",
    "IFD0:StripOffsets",
    "IFD0:SamplesPerPixel",
    "IFD0:RowsPerStrip",
    "IFD0:StripByteCounts",
    "IFD0:XResolution",
    "IFD0:YResolution",
    "IFD0:PlanarConfiguration",
    "IFD0:ResolutionUnit",
    "IFD0:Predictor",
    "IFD0:ExtraSamples",
    "IFD0:SampleFormat",
    "IFD0:TileWidth",
    "IFD0:TileLength",
    "IFD0:TileOffsets",
    "IFD0:TileByteCounts",
    "IFD0:T4Options",
    "IFD0:T6Options",
    "IFD0:SubfileType",
    "IFD0:OldSubfileType",
    "IFD0:YCbCrSubSampling",
    "IFD0:YCbCrPositioning",
    "IFD0:ColorMap",
    "IFD0:WhitePoint",
    "IFD0:PrimaryChromaticities",
    "IFD0:ReferenceBlackWhite",
    "IFD0:TransferFunction",
    "IFD0:InkSet",
    "IFD0:InkNames",
    "IFD0:NumberofInks",
    "IFD0:DotRange",
    "IFD0:Thresholding",
    "IFD0:MinSampleValue",
    "IFD0:MaxSampleValue",
    "IFD0:SMinSampleValue",
    "IFD0:SMaxSampleValue",
    "IFD0:YCbCrCoefficients",
    "IFD0:JPEGTables",
    "RIFF:ImageWidth",
    "RIFF:ImageHeight",
    "RIFF:HorizontalScale",
    "RIFF:VerticalScale",
    "RIFF:VP8Version",
    "RIFF:WebP_Flags",
    "RIFF:AlphaPreprocessing",
    "RIFF:AlphaFiltering",
    "RIFF:AlphaCompression",
    "RIFF:BackgroundColor",
    "RIFF:AnimationLoopCount",
    "RIFF:Duration",
    "RIFF:FrameCount",
    "GIF:GIFVersion",
    "GIF:ImageWidth",
    "GIF:ImageHeight",
    "GIF:HasColorMap",
    "GIF:ColorResolutionDepth",
    "GIF:BitsPerPixel",
    "GIF:BackgroundColor",
    "GIF:AnimationIterations",
    "GIF:FrameCount",
    "GIF:Duration",
    "GIF:TransparentColor",
    "GIF:PixelAspectRatio",
    "PNG:ImageWidth",
    "PNG:ImageHeight",
    "PNG:BitDepth",
    "PNG:ColorType",
    "PNG:Compression",
    "PNG:Filter",
    "PNG:Interlace",
    "PNG:SRGBRendering",
    "PNG:Gamma",
    "PNG:WhitePointX",
    "PNG:WhitePointY",
    "PNG:RedX",
    "PNG:RedY",
    "PNG:GreenX",
    "PNG:GreenY",
    "PNG:BlueX",
    "PNG:BlueY",
    "PNG:PixelsPerUnitX",
    "PNG:PixelsPerUnitY",
    "PNG:PixelUnits",
    "PNG:Palette",
    "PNG:Transparency",
    "PNG:BackgroundColor",
    "PNG:SignificantBits",
    "PNG:ProfileName",
    "PNG:AnimationFrames",
    "PNG:AnimationPlays",
    "PNG:ColorPrimaries",
    "PNG:TransferCharacteristics",
    "PNG:MatrixCoefficients",
    "PNG:VideoFullRangeFlag",
    "PNG-pHYs:PixelsPerUnitX",
    "PNG-pHYs:PixelsPerUnitY",
    "PNG-pHYs:PixelUnits",
    "PNG-cICP:ColorPrimaries",
    "PNG-cICP:TransferCharacteristics",
    "PNG-cICP:MatrixCoefficients",
    "PNG-cICP:VideoFullRangeFlag",
}
# File-group tags that would reveal something (the rest describe the file type and size).
_DENIED_FILE_TAGS = {"Comment", "CurrentIPTCDigest"}
_DENIED_QUICKTIME_WORDS = ("GPS", "Date", "Make", "Model", "Software", "Serial", "Location")
_DENIED_COMPOSITE_WORDS = ("GPS", "Date", "SubSec", "Thumbnail", "Preview", "Lens", "Serial")


def exiftool_tags(path: Path) -> dict[str, object]:
    """Every tag ExifTool reads from `path`, keyed "Group:Tag" (family 1 groups)."""
    assert EXIFTOOL, "exiftool is needed: apt-get install libimage-exiftool-perl"
    out = subprocess.run(
        [EXIFTOOL, "-j", "-a", "-G1", "-s", "-b", "-api", "LargeFileSupport=1", str(path)],
        capture_output=True,
        check=False,
    )
    records = json.loads(out.stdout or b"[{}]")
    tags: dict[str, object] = records[0]
    tags.pop("SourceFile", None)
    return tags


# ExifTool calls the single strip of a JPEG-compressed TIFF page a "PreviewImage".
_TIFF_JPEG_STRIP = {
    "PreviewImage": "StripOffsets",
    "PreviewImageStart": "StripOffsets",
    "PreviewImageLength": "StripByteCounts",
}


def _tiff_page(key: str, value: object, tags: dict[str, object]) -> str:
    """In a TIFF file IFD1, IFD2, ... are further pages: judge them like IFD0, unless the page
    says it is a reduced-resolution copy (a thumbnail)."""
    group, _, tag = key.partition(":")
    if tags.get("File:FileType") != "TIFF" or not re.fullmatch(r"IFD\d+", group):
        return key
    if "Reduced" in str(value):
        return f"{key} (thumbnail)"
    if tag in _TIFF_JPEG_STRIP and tags.get(f"{group}:Compression") == "JPEG":
        tag = _TIFF_JPEG_STRIP[tag]
    return f"IFD0:{tag}"


def leftovers(path: Path) -> dict[str, object]:
    """The tags ExifTool still finds in a cleaned file that could reveal anything."""
    left = {}
    tags = exiftool_tags(path)
    for key, value in tags.items():
        group, _, tag = key.partition(":")
        if _tiff_page(key, value, tags) in _ALLOWED_TAGS:
            continue
        if group == "File" and tag not in _DENIED_FILE_TAGS:
            continue
        if group in {"QuickTime", "Meta"} and any(w in tag for w in _DENIED_QUICKTIME_WORDS):
            left[key] = value
            continue
        if group == "Composite" and any(w in tag for w in _DENIED_COMPOSITE_WORDS):
            left[key] = value
            continue
        if group in _ALLOWED_GROUPS or group.startswith("ICC"):
            continue
        left[key] = value
    return left
