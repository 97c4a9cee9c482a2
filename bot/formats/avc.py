"""avc: H.264 (ISO/IEC 14496-10) parameter sets cut at their last field.

A video's 'avcC' carries its sequence and picture parameter sets (SPS, PPS) as NAL units. A
decoder reads their fields (7.3.2.1, 7.3.2.2, the VUI of E.1.1) up to the stop bit and ignores
whatever follows it, so bytes after it could carry anything through a scrub. `trimmed_sps` and
`trimmed_pps` read every field and return the unit up to its stop bit; a unit whose fields do
not end in a stop bit, or that names no profile and level of Annex A, is no parameter set a
decoder reads alike, and is damage. `Bits` (u(n), ue(v), se(v)) is also `bot.formats.aac`'s.
"""

from bot.errors import DamagedImage

# profile_idc values whose SPS has chroma format, bit depths and scaling lists (7.3.2.1.1)
_CHROMA_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
_PROFILES = _CHROMA_PROFILES | {66, 77, 88}
_LEVELS = frozenset(
    {9, 10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 52, 60, 61, 62}
)
_MAX_UE_ZEROS = 31


_PARAMETER_SET = "an H.264 parameter set"


def _damaged(what: str = _PARAMETER_SET) -> DamagedImage:
    return DamagedImage(f"The video is damaged ({what} cannot be read).")


class Bits:
    """u(n), ue(v) and se(v) over bytes (an RBSP), big-endian, bounded by their length (each
    read costs the bytes it spans, however long they are); `what` names them in a refusal."""

    def __init__(self, data: bytes, what: str = _PARAMETER_SET) -> None:
        self.data, self.size, self.pos, self.what = data, 8 * len(data), 0, what

    def u(self, count: int) -> int:
        start, end = self.pos, self.pos + count
        if end > self.size:
            raise _damaged(self.what)
        self.pos = end
        window = int.from_bytes(self.data[start // 8 : (end + 7) // 8], "big")
        return (window >> (-end % 8)) & ((1 << count) - 1)

    def ue(self, limit: int = 0xFFFFFFFE) -> int:
        zeros = 0
        while not self.u(1):
            zeros += 1
            if zeros > _MAX_UE_ZEROS:
                raise _damaged(self.what)
        value = (1 << zeros) - 1 + self.u(zeros)
        if value > limit:
            raise _damaged(self.what)
        return value

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)

    def more_data(self) -> bool:
        """more_rbsp_data(): whether a field comes before the stop bit (the last 1 bit)."""
        last = len(self.data.rstrip(b"\0"))
        if not last:
            return False
        stop = 8 * last - 1 - (self.data[last - 1] & -self.data[last - 1]).bit_length() + 1
        return self.pos < stop

    def peek(self, count: int) -> int | None:
        """The next `count` bits without reading them; None when fewer are left."""
        if self.pos + count > self.size:
            return None
        value = self.u(count)
        self.pos -= count
        return value

    def taken(self) -> bytes:
        """The bytes read so far, the bits after the last one read in its byte zero."""
        kept = self.data[: (self.pos + 7) // 8]
        if not self.pos % 8:
            return kept
        return kept[:-1] + bytes([kept[-1] & (0xFF << (8 - self.pos % 8)) & 0xFF])


def _rbsp(unit: bytes) -> tuple[bytes, list[int]]:
    """The RBSP of a NAL unit (after its header byte, emulation prevention bytes removed) and
    where each of its bytes is in `unit`."""
    out, where, zeros = bytearray(), [], 0
    for pos in range(1, len(unit)):
        byte = unit[pos]
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        zeros = zeros + 1 if byte == 0 else 0
        out.append(byte)
        where.append(pos)
    return bytes(out), where


def _cut(unit: bytes, bits: Bits, where: list[int]) -> bytes:
    """`unit` up to the byte of its stop bit, which must be the bit at `bits.pos`, only zero
    bits after it in that byte."""
    if bits.u(1) != 1:
        raise _damaged()
    if bits.pos % 8 and bits.u(8 - bits.pos % 8):
        raise _damaged()
    return unit[: where[bits.pos // 8 - 1] + 1]


def _scaling_list(bits: Bits, size: int) -> None:
    """scaling_list() (7.3.2.1.1.1): deltas until one makes the next scale 0."""
    last = following = 8
    for _ in range(size):
        if following:
            delta = bits.se()
            if not -128 <= delta <= 127:
                raise _damaged()
            following = (last + delta + 256) % 256
        last = following or last


def _hrd(bits: Bits) -> None:
    """hrd_parameters() (E.1.2)."""
    buffers = bits.ue(31) + 1
    bits.u(8)  # bit rate and buffer size scales
    for _ in range(buffers):
        bits.ue()
        bits.ue()  # bit rate, buffer size
        bits.u(1)  # constant bit rate
    bits.u(20)  # four 5-bit lengths


def _vui(bits: Bits) -> None:
    """vui_parameters() (E.1.1)."""
    if bits.u(1) and bits.u(8) == 255:  # aspect ratio; extended: sar width, height
        bits.u(32)
    if bits.u(1):  # overscan
        bits.u(1)
    if bits.u(1):  # video signal type: format, range; colour description
        bits.u(4)
        if bits.u(1):
            bits.u(24)
    if bits.u(1):  # chroma sample location
        bits.ue()
        bits.ue()
    if bits.u(1):  # timing: units in a tick, time scale, fixed rate
        bits.u(65)
    hrd = False
    for _ in range(2):  # NAL and VCL hypothetical reference decoders
        if bits.u(1):
            _hrd(bits)
            hrd = True
    if hrd:
        bits.u(1)  # low delay
    bits.u(1)  # pic struct present
    if bits.u(1):  # bitstream restriction
        bits.u(1)
        for _ in range(6):
            bits.ue()


def _profile(bits: Bits) -> int:
    """profile_idc, checked with the level and the reserved bits: a profile and level of
    Annex A (bytes that merely parse as an SPS seldom name one)."""
    profile, constraints, level = bits.u(8), bits.u(8), bits.u(8)
    if profile not in _PROFILES or level not in _LEVELS or constraints & 3:
        raise _damaged()
    return profile


def sps_chroma(unit: bytes) -> tuple[int, int]:
    """(seq_parameter_set_id, chroma_format_idc) of an SPS."""
    bits = Bits(_rbsp(unit)[0])
    profile = _profile(bits)
    sps_id = bits.ue(31)
    return sps_id, bits.ue(3) if profile in _CHROMA_PROFILES else 1


def trimmed_sps(unit: bytes) -> bytes:
    """An SPS NAL unit up to its stop bit (7.3.2.1.1)."""
    rbsp, where = _rbsp(unit)
    bits = Bits(rbsp)
    profile = _profile(bits)
    bits.ue(31)
    if profile in _CHROMA_PROFILES:
        chroma = bits.ue(3)
        if chroma == 3:
            bits.u(1)  # separate colour planes
        bits.ue(6)
        bits.ue(6)  # bit depths
        bits.u(1)  # lossless
        if bits.u(1):  # scaling matrices
            for index in range(12 if chroma == 3 else 8):
                if bits.u(1):
                    _scaling_list(bits, 16 if index < 6 else 64)
    bits.ue(12)  # log2 of the largest frame number, less 4
    order = bits.ue(2)
    if order == 0:
        bits.ue(12)
    elif order == 1:
        bits.u(1)
        bits.se()
        bits.se()
        for _ in range(bits.ue(255)):
            bits.se()
    bits.ue(16)  # reference frames
    bits.u(1)  # gaps allowed
    bits.ue()
    bits.ue()  # width and height in macroblocks
    if not bits.u(1):  # frames only; else adaptive frame/field
        bits.u(1)
    bits.u(1)  # direct 8x8 inference
    if bits.u(1):  # cropping
        for _ in range(4):
            bits.ue()
    if bits.u(1):
        _vui(bits)
    return _cut(unit, bits, where)


def trimmed_pps(unit: bytes, chroma: dict[int, int]) -> bytes:
    """A PPS NAL unit up to its stop bit (7.3.2.2); `chroma`: the chroma format of each SPS
    by its id (the PPS's scaling lists depend on it); one that names no SPS is damage."""
    rbsp, where = _rbsp(unit)
    bits = Bits(rbsp)
    bits.ue(255)
    sps_id = bits.ue(31)
    if sps_id not in chroma:
        raise _damaged()
    bits.u(2)  # entropy coding, bottom field order
    groups = bits.ue(7)
    if groups:
        _slice_groups(bits, groups)
    bits.ue(31)
    bits.ue(31)  # reference indices
    bits.u(3)  # weighted prediction, bi-prediction
    for _ in range(3):
        bits.se()  # initial QP, QS, chroma QP offset
    bits.u(3)  # deblocking control, constrained intra, redundant picture count
    if bits.more_data():
        transform = bits.u(1)
        if bits.u(1):  # scaling matrices
            lists = 6 + (6 if chroma.get(sps_id, 1) == 3 else 2) * transform
            for index in range(lists):
                if bits.u(1):
                    _scaling_list(bits, 16 if index < 6 else 64)
        bits.se()  # second chroma QP offset
    return _cut(unit, bits, where)


def _slice_groups(bits: Bits, groups: int) -> None:
    kind = bits.ue(6)
    if kind == 0:
        for _ in range(groups + 1):
            bits.ue()
    elif kind == 2:
        for _ in range(2 * groups):
            bits.ue()
    elif kind in (3, 4, 5):
        bits.u(1)
        bits.ue()
    elif kind == 6:
        width = groups.bit_length()  # Ceil(Log2(groups + 1))
        for _ in range(bits.ue() + 1):
            bits.u(width)
