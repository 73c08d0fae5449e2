"""Tell a file that was cut short (a download or copy that stopped) from one that is damaged otherwise, so that the
one-line error says "truncated". Only the few bytes that record where the file ends are read."""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
_ZIP_END_MAGIC = b"PK\x05\x06"
_ZIP_END_BYTES = 22
_ZIP_END_SEARCH_BYTES = _ZIP_END_BYTES + 0xFFFF
"""The end record and the longest comment after it: where ``zipfile`` looks for the record."""
_SUPERBLOCK_BYTES = 96
"""Enough for any superblock version up to its end-of-file address (version 1 with 8-byte offsets: 52)."""
_INCOMPLETE = "an incomplete download or copy?"


def signature_prefix(content: bytes) -> str | None:
    """For a whole file shorter than a signature that begins one (the first bytes of an HDF5 or zip file), what is
    left of it; else None."""
    for magic, kind in ((HDF5_MAGIC, "an HDF5 file"), (ZIP_MAGIC, "a zip archive")):
        if content and len(content) < len(magic) and magic.startswith(content):
            return f"truncated file: its {len(content)} bytes are only the start of {kind} ({_INCOMPLETE})"
    return None


def truncated_zip(stream: BinaryIO) -> str | None:
    """Why the zip archive ``stream`` is cut short, when it starts like a zip but has no whole end record (which
    Keras's ``zipfile`` writes last); else None."""
    size = stream.seek(0, os.SEEK_END)
    stream.seek(0)
    if stream.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
        return None
    start = max(0, size - _ZIP_END_SEARCH_BYTES)
    stream.seek(start)
    tail = stream.read(size - start)
    at = tail.rfind(_ZIP_END_MAGIC)
    while at >= 0:
        if at + _ZIP_END_BYTES <= len(tail):
            comment_bytes = struct.unpack_from("<H", tail, at + _ZIP_END_BYTES - 2)[0]
            if at + _ZIP_END_BYTES + comment_bytes <= len(tail):
                return None
        at = tail.rfind(_ZIP_END_MAGIC, 0, at)
    return f"truncated zip archive: its {size:,} bytes end before the zip's directory does ({_INCOMPLETE})"


def _end_address(superblock: bytes) -> tuple[int, int, int | None] | None:
    """(bytes the superblock needs up to its end-of-file address, base address, end-of-file address) of an HDF5
    superblock (``superblock``: its first bytes); the addresses are -1 when ``superblock`` is too short to hold
    them, the end None when it is the undefined address; None for a version or offset size libhdf5 does not
    write."""
    if len(superblock) <= 13:
        return _SUPERBLOCK_BYTES, -1, -1
    version = superblock[8]
    if version in (0, 1):
        offset_size, base_at = superblock[13], 24 if version == 0 else 28
    elif version in (2, 3):
        offset_size, base_at = superblock[9], 12
    else:
        return None
    if offset_size not in (2, 4, 8):
        return None
    needed = base_at + 3 * offset_size
    if len(superblock) < needed:
        return needed, -1, -1
    unpack = struct.Struct("<" + {2: "H", 4: "I", 8: "Q"}[offset_size]).unpack_from
    end = unpack(superblock, base_at + 2 * offset_size)[0]
    return needed, unpack(superblock, base_at)[0], None if end == (1 << (8 * offset_size)) - 1 else end


def hdf5_signature_at(stream: BinaryIO) -> int | None:
    """Where the HDF5 superblock is: byte 0, 512, 1024, 2048, ... (a user block may precede it), each offset up to
    the end of the file, as libhdf5 looks; None if nowhere."""
    size = os.fstat(stream.fileno()).st_size
    offset = 0
    while offset + len(HDF5_MAGIC) <= size:
        stream.seek(offset)
        if stream.read(len(HDF5_MAGIC)) == HDF5_MAGIC:
            return offset
        offset = 512 if offset == 0 else offset * 2
    return None


def truncated_hdf5(stream: BinaryIO) -> str | None:
    """Why the HDF5 file ``stream`` is cut short, when it ends inside its superblock or before the end of file the
    superblock records; else None."""
    superblock_at = hdf5_signature_at(stream)
    if superblock_at is None:
        stream.seek(0)
        return signature_prefix(stream.read(len(HDF5_MAGIC)))
    size = stream.seek(0, os.SEEK_END)
    stream.seek(superblock_at)
    superblock = stream.read(_SUPERBLOCK_BYTES)
    if not superblock.startswith(HDF5_MAGIC) or (found := _end_address(superblock)) is None:
        return None
    needed, base, end = found
    if len(superblock) < needed:
        return f"truncated HDF5 file: its {size:,} bytes end inside the HDF5 superblock ({_INCOMPLETE})"
    if end is None:
        return None
    stored = (base or superblock_at) + end
    if size >= stored:
        return None
    return f"truncated HDF5 file: {size:,} bytes of the {stored:,} its superblock records ({_INCOMPLETE})"
