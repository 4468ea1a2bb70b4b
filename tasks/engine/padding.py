"""Pad picture files to one common size, so a set of pictures cannot be told apart by their bytes.

A unit's sentinels (low-activation images, a quality check) have almost no highlighted region and
compress to smaller files than its top images: an annotator who sorts a HIT's pictures by size would
find the sentinels. The padding is metadata the decoders skip: JPEG comment (COM) segments after the
start-of-image marker, a private ancillary PNG chunk before IEND. The pixels do not change.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

_JPEG_SOI = b"\xff\xd8"
_JPEG_COM = b"\xff\xfe"
_JPEG_SEGMENT_MAX = 0xFFFF + 2  # marker (2) + length field (2) + at most 65533 bytes of payload
_JPEG_OVERHEAD = 4
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_OVERHEAD = 12  # length, type, CRC
_PNG_PAD_TYPE = b"paDd"  # ancillary (p), private (a), reserved bit clear (D), safe to copy (d)


def _jpeg_padding(amount: int) -> bytes:
    """COM segments of exactly `amount` bytes (amount >= 4)."""
    out = []
    while amount:
        size = min(amount, _JPEG_SEGMENT_MAX)
        if 0 < amount - size < _JPEG_OVERHEAD:  # leave enough for one more whole segment
            size -= _JPEG_OVERHEAD
        out.append(_JPEG_COM + struct.pack(">H", size - 2) + b"\0" * (size - _JPEG_OVERHEAD))
        amount -= size
    return b"".join(out)


def _png_padding(amount: int) -> bytes:
    data = b"\0" * (amount - _PNG_OVERHEAD)
    return struct.pack(">I", len(data)) + _PNG_PAD_TYPE + data + struct.pack(">I", zlib.crc32(_PNG_PAD_TYPE + data))


def _overhead(raw: bytes) -> int:
    if raw.startswith(_JPEG_SOI):
        return _JPEG_OVERHEAD
    if raw.startswith(_PNG_SIGNATURE):
        return _PNG_OVERHEAD
    raise ValueError("not a JPEG or PNG file")


def padded(raw: bytes, size: int) -> bytes:
    """`raw` (a JPEG or PNG file) grown to exactly `size` bytes; size - len(raw) must be 0 or at least
    the format's overhead (4 for JPEG, 12 for PNG)."""
    amount = size - len(raw)
    if amount == 0:
        return raw
    if amount < _overhead(raw):
        raise ValueError(f"cannot pad {len(raw)} bytes to {size}")
    if raw.startswith(_JPEG_SOI):
        at = 2
        if raw[2:4] == b"\xff\xe0":  # JFIF's APP0 stays right after the start marker, where readers look
            at = 4 + struct.unpack(">H", raw[4:6])[0]
        return raw[:at] + _jpeg_padding(amount) + raw[at:]
    iend = raw.rindex(b"IEND") - 4  # the chunk starts with its 4-byte length
    return raw[:iend] + _png_padding(amount) + raw[iend:]


def pad_to_common_size(paths: Iterable[Path]) -> int:
    """Rewrite each file so all have the same size (the largest plus one padding block); returns it.
    Files that are not JPEG or PNG are left alone."""
    files = {}
    for path in paths:
        raw = Path(path).read_bytes()
        try:
            _overhead(raw)
        except ValueError:
            continue
        files[Path(path)] = raw
    if not files:
        return 0
    # Every file gains at least one block, so the largest one is not singled out by lacking padding.
    target = max(len(raw) + max(_overhead(r) for r in files.values()) for raw in files.values())
    for path, raw in files.items():
        path.write_bytes(padded(raw, target))
    return target
