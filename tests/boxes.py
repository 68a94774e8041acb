"""HEIF boxes and AV1 sequence headers, built by hand for the files Pillow
does not write: items in idat, several extents, sequence headers of any size."""

import struct

FTYP = b'\x00\x00\x00\x18ftypavif\x00\x00\x00\x00mif1avif'


def box(kind: bytes, body: bytes = b'') -> bytes:
    return struct.pack('>I4s', 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, body: bytes = b'') -> bytes:
    """A box of a version and no flags."""
    return box(kind, bytes([version, 0, 0, 0]) + body)


def obu(kind: int, payload: bytes) -> bytes:
    """An OBU with a size field: its header, a leb128 length, its payload."""
    size, length = bytearray(), len(payload)
    while True:
        size.append(length & 0x7F | (0x80 if length > 0x7F else 0))
        length >>= 7
        if not length:
            break
    return bytes([kind << 3 | 0b10]) + bytes(size) + payload


class _Bits:
    def __init__(self) -> None:
        self.bits = ''

    def put(self, value: int, count: int) -> None:
        self.bits += format(value, f'0{count}b') if count else ''

    def done(self) -> bytes:
        # trailing_bits (AV1 5.3.4): a one, then zeros to a byte.
        bits = self.bits + '1'
        bits += '0' * (-len(bits) % 8)
        return int(bits, 2).to_bytes(len(bits) // 8)


def sequence_header(
    size: tuple[int, int],
    *,
    reduced: bool = True,
    timing: bool = False,
    interval_zeros: int | None = None,
    decoder_model: bool = False,
    level: int = 8,
    points: int = 1,
    display_delay: bool = False,
) -> bytes:
    """A sequence header OBU (AV1 5.5.1) whose largest frame is size.

    reduced: a still picture's short header. Else a full one, with timing
    info (of equal intervals if interval_zeros is given: its
    num_ticks_per_picture a uvlc of that many leading zeros), a decoder
    model (with timing), and points operating points.
    """
    bits = _Bits()
    bits.put(0, 3)  # seq_profile
    bits.put(1, 1)  # still_picture
    bits.put(reduced, 1)
    if reduced:
        bits.put(level, 5)
    else:
        _full_header(
            bits, timing, interval_zeros, decoder_model, level, points, display_delay
        )
    bits.put(15, 4)  # frame_width_bits_minus_1: 16-bit sides
    bits.put(15, 4)
    bits.put(size[0] - 1, 16)
    bits.put(size[1] - 1, 16)
    return obu(1, bits.done())


def _full_header(
    bits: _Bits,
    timing: bool,
    interval_zeros: int | None,
    decoder_model: bool,
    level: int,
    points: int,
    display_delay: bool,
) -> None:
    """The fields of a full sequence header before its sizes."""
    bits.put(timing, 1)  # timing_info_present_flag
    if timing:
        bits.put(1, 32)
        bits.put(30, 32)
        bits.put(interval_zeros is not None, 1)  # equal_picture_interval
        if interval_zeros is not None:
            # A uvlc: dav1d reads 32 zeros as its largest, without the rest.
            bits.put(0, interval_zeros)
            if interval_zeros < 32:
                bits.put(1, 1)
                bits.put(0, interval_zeros)
        bits.put(decoder_model, 1)
        if decoder_model:
            bits.put(9, 5)  # buffer_delay_length_minus_1: 10-bit delays
            bits.put(1, 32)
            bits.put(0, 10)
    bits.put(display_delay, 1)
    bits.put(points - 1, 5)
    for _ in range(points):
        bits.put(0, 12)
        bits.put(level, 5)
        if level > 7:
            bits.put(0, 1)  # seq_tier
        if decoder_model:
            bits.put(1, 1)
            bits.put(0, 2 * 10 + 1)
        if display_delay:
            bits.put(1, 1)
            bits.put(3, 4)


def iloc(
    extents,
    *,
    version: int = 1,
    method: int = 0,
    reference: int = 0,
    base: int = 0,
    sizes=(4, 4, 0, 0),
    item: int = 1,
) -> bytes:
    """An iloc box locating one item, in extents of (offset, length).

    sizes: of its offsets, lengths, base offset and extent indexes, in bytes.
    """
    offset_size, length_size, base_size, index_size = sizes
    wide = '>I' if version == 2 else '>H'
    body = bytes([offset_size << 4 | length_size, base_size << 4 | index_size])
    body += struct.pack(wide, 1) + struct.pack(wide, item)
    if version:
        body += struct.pack('>H', method)
    body += struct.pack('>H', reference) + base.to_bytes(base_size)
    body += struct.pack('>H', len(extents))
    for offset, length in extents:
        body += bytes(index_size) + offset.to_bytes(offset_size)
        body += length.to_bytes(length_size)
    return full_box(b'iloc', version, body)


def iinf(*entries: bytes, version: int = 0) -> bytes:
    count = struct.pack('>H' if version == 0 else '>I', len(entries))
    return full_box(b'iinf', version, count + b''.join(entries))


def infe(item: int = 1, kind: bytes = b'av01', version: int = 2) -> bytes:
    """An item info entry; versions 0 and 1 have no item type."""
    if version < 2:
        return full_box(b'infe', version, struct.pack('>HH', item, 0) + b'\x00\x00')
    width = '>H' if version == 2 else '>I'
    return full_box(
        b'infe', version, struct.pack(width, item) + bytes(2) + kind + b'\x00'
    )


def ispe(size: tuple[int, int]) -> bytes:
    return box(b'iprp', box(b'ipco', full_box(b'ispe', 0, struct.pack('>2I', *size))))


def avif(
    coded: bytes, extents=None, *, entry: bytes | None = None, idat=False, **located
):
    """An AVIF of one 40x30 item whose data is coded, as ispe says.

    extents(start, length) gives the item's extents, where coded begins at
    start (in the file, or in idat) and is length bytes long: one extent
    by default. The other keywords are iloc's.
    """
    extents = extents or (lambda start, length: [(start, length)])
    entry = entry if entry is not None else infe()

    def meta(start: int) -> bytes:
        where = iloc(extents(start, len(coded)), **located)
        kept = box(b'idat', coded) if idat else b''
        return full_box(b'meta', 0, iinf(entry) + where + ispe((40, 30)) + kept)

    if idat:
        return FTYP + meta(0)
    start = len(FTYP) + len(meta(1 << 16)) + 8  # as long, whatever the offsets
    return FTYP + meta(start) + box(b'mdat', coded)
