"""aac: an MPEG-4 AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) cut at its last field.

An AAC track's 'esds' carries the decoder's configuration: a few bits of object type, sampling
rate and channels, the general audio fields, and the backward-compatible signalling of SBR and
PS (HE-AAC). A decoder stops reading there, so bytes after it could carry anything. `trimmed`
reads the fields of the general audio object types and returns them alone; a configuration of
other object types, with a program config element (whose comment is free text), or with error
protection is returned as it is (see Residual in `bot.formats.mp4`).
"""

from bot.formats.avc import Bits

_GENERAL_AUDIO = frozenset({1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23})
_ERROR_RESILIENT = frozenset({17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 39})
_SBR, _PS, _BSAC = 5, 29, 22
_SYNC_SBR, _SYNC_PS = 0x2B7, 0x548


def trimmed(config: bytes) -> bytes:
    """`config` up to its last field, the bits after it zero."""
    bits = Bits(config, "the sound's configuration")
    kind = _object_type(bits)
    _rate(bits)
    channels = bits.u(4)
    explicit = kind in (_SBR, _PS)
    if explicit:  # hierarchical signalling: the extension's rate, then the core's type
        _rate(bits)
        kind = _object_type(bits)
        if kind == _BSAC:
            bits.u(4)
    if kind not in _GENERAL_AUDIO or not channels:
        return config
    _general_audio(bits, kind)
    if kind in _ERROR_RESILIENT and bits.u(2) in (2, 3):
        return config
    if not explicit and (bits.size - bits.pos) >= 16 and bits.peek(11) == _SYNC_SBR:
        _sync_extension(bits)
    return bits.taken()


def _object_type(bits: Bits) -> int:
    kind = bits.u(5)
    return 32 + bits.u(6) if kind == 31 else kind


def _rate(bits: Bits) -> None:
    if bits.u(4) == 0xF:  # an explicit rate
        bits.u(24)


def _general_audio(bits: Bits, kind: int) -> None:
    """GASpecificConfig (4.4.1) of a configuration with channels (no program config element)."""
    bits.u(1)  # frame length
    if bits.u(1):  # depends on a core coder: its delay
        bits.u(14)
    extension = bits.u(1)
    if kind in (6, 20):
        bits.u(3)  # layer
    if extension:
        if kind == _BSAC:
            bits.u(16)  # sub-frames, layer length
        if kind in (17, 19, 20, 23):
            bits.u(3)  # the resilience flags
        bits.u(1)  # extension flag 3


def _sync_extension(bits: Bits) -> None:
    """The backward-compatible SBR signalling, and PS after it (looked for whatever the
    extension, as ffmpeg's decoder does)."""
    bits.u(11)
    kind = _object_type(bits)
    if kind in (_SBR, _BSAC) and bits.u(1):  # present: its rate
        _rate(bits)
    if kind == _BSAC:
        bits.u(4)  # its channels
    ps = bits.peek(12)
    if ps is not None and ps >> 1 == _SYNC_PS:
        bits.u(12)  # and the PS flag
