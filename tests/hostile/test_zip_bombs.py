"""Hostile ``.keras`` zips: members compressed with bzip2 or LZMA that expand to hundreds of MB from a few KB
(``zipfile`` decompresses each piece of these whole, whatever was asked for), and central directories of
hundreds of thousands of entries.

The archives are written by hand: making a bomb with the compressors themselves takes seconds per variant.
"""

from __future__ import annotations

import functools
import json
import random
import struct
import zipfile
import zlib
from pathlib import Path

from harness import Attack, assert_holds, attack

DATA = Path(__file__).resolve().parent / "data"
LZMA_ZEROS = DATA / "zeros_320mib.lzma1"
"""A raw LZMA1 stream (lc 3, lp 0, pb 2, 1 MiB dictionary, end marker) of 320 MiB of zero bytes, made with
``lzma.LZMACompressor(lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA1, "mode": lzma.MODE_FAST, "nice_len": 273,
"mf": lzma.MF_HC3, "depth": 1, "dict_size": 1 << 20, "lc": 3, "lp": 0, "pb": 2}])``."""
LZMA_ZEROS_SIZE = 320 << 20
CONFIG = {"module": "keras.src.models.functional", "class_name": "Functional",
          "config": {"name": "bomb", "trainable": True, "layers": [
              {"module": "keras.layers", "class_name": "InputLayer", "name": "x",
               "config": {"name": "x", "batch_shape": [None, 4]}, "inbound_nodes": []}],
              "input_layers": [["x", 0, 0]], "output_layers": [["x", 0, 0]]}}


@functools.cache
def _bzip2_zeros(blocks: int) -> bytes:
    """A bzip2 stream of ``blocks`` times 4 MiB of zero bytes: one compressed block repeated, bit by bit."""
    import bz2

    one = bz2.compress(bytes(4 << 20), 1)
    bits = format(int.from_bytes(one, "big"), f"0{len(one) * 8}b")
    end_marker = format(0x177245385090, "048b")
    end = bits.rfind(end_marker)
    block = bits[32:end]  # after "BZh1"
    block_crc = int(block[48:80], 2)
    combined = 0
    for _ in range(blocks):
        combined = (((combined << 1) | (combined >> 31)) & 0xFFFFFFFF) ^ block_crc
    stream = bits[:32] + block * blocks + end_marker + format(combined, "032b")
    stream += "0" * (-len(stream) % 8)
    return int(stream, 2).to_bytes(len(stream) // 8, "big")


def _zeros_crc(size: int) -> int:
    crc, piece = 0, bytes(1 << 20)
    for _ in range(size >> 20):
        crc = zlib.crc32(piece, crc)
    return crc


def _lzma_member() -> bytes:
    """The zip form of LZMA_ZEROS: LZMA SDK version, properties' size, properties, stream."""
    properties = struct.pack("<BI", 3 + 0 * 9 + 2 * 45, 1 << 20)
    return struct.pack("<BBH", 9, 20, len(properties)) + properties + LZMA_ZEROS.read_bytes()


def write_zip(path: Path, members: list[tuple[str, int, bytes, int, int]], repeat_last: int = 1,
              declared_entries: int | None = None) -> None:
    """A zip of ``(name, method, compressed bytes, declared size, crc)`` members; the last one's directory entry
    ``repeat_last`` times (each pointing at the same local header); the end record declares ``declared_entries``
    entries (by default, as many as there are, or 65,535). Written as it goes: the test process stays small."""
    with open(path, "wb") as stream:
        entries: list[tuple[bytes, int, int]] = []
        for name, method, compressed, size, crc in members:
            flags = 0x2 if method == zipfile.ZIP_LZMA else 0  # the LZMA stream has an end marker
            entries.append((struct.pack("<4s6H3L", b"PK\x01\x02", 63, 63, flags, method, 0, 0x21, crc, len(compressed),
                                        size), stream.tell(), len(name.encode())))
            stream.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 63, flags, method, 0, 0x21, crc, len(compressed), size,
                                     len(name.encode()), 0) + name.encode() + compressed)
        directory_start, count = stream.tell(), 0
        for position, ((start, offset, _), (name, *_)) in enumerate(zip(entries, members)):
            copies = repeat_last if position == len(members) - 1 else 1
            for copy in range(copies):
                unique = name.encode() if copies == 1 else f"{name}{copy}".encode()
                stream.write(start + struct.pack("<5H2L", len(unique), 0, 0, 0, 0, 0, offset) + unique)
            count += copies
        directory_bytes = stream.tell() - directory_start
        declared = min(count, 0xFFFF) if declared_entries is None else declared_entries
        stream.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, declared, declared, directory_bytes,
                                 directory_start, 0))


def _stored(name: str, payload: bytes) -> tuple[str, int, bytes, int, int]:
    return name, zipfile.ZIP_STORED, payload, len(payload), zlib.crc32(payload)


@attack("zip-bzip2-lzma-bomb")
def bzip2_lzma_bomb(folder: Path, rng: random.Random) -> Attack:
    """config.json, metadata.json or model.weights.h5 compressed with bzip2 or LZMA, a few KB that expand to
    hundreds of MB; its declared size the truth, or a lie of a thousand bytes."""
    target = rng.choice(["config.json", "metadata.json", "model.weights.h5"])
    if rng.random() < 0.5:
        size = rng.choice([64, 96]) << 22
        bomb = (target, zipfile.ZIP_BZIP2, _bzip2_zeros(size >> 22), size, _zeros_crc(size))
    else:
        size = LZMA_ZEROS_SIZE
        bomb = (target, zipfile.ZIP_LZMA, _lzma_member(), size, _zeros_crc(size))
    if rng.random() < 0.5:
        bomb = (*bomb[:3], 1000, bomb[4])
    members = [_stored("metadata.json", b'{"keras_version": "3.5.0"}'), _stored("config.json", json.dumps(CONFIG).encode())]
    members = [member for member in members if member[0] != target] + [bomb]
    rng.shuffle(members)
    path = folder / "model.keras"
    write_zip(path, members)
    return Attack(args=["inspect", path.name], cwd=folder, exit_codes=(3,))


@functools.cache
def _raw_deflated_zeros(size: int) -> bytes:
    """A raw deflate stream (as zip members hold) of ``size`` zero bytes."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    piece = bytes(8 << 20)
    return b"".join([*(compressor.compress(piece) for _ in range(size // len(piece))), compressor.flush()])


@attack("zip-deflated-weights-bomb")
def deflated_weights_bomb(folder: Path, rng: random.Random) -> Attack:
    """A deflated model.weights.h5 of up to 1 GiB of zeros (a megabyte or so): inflated whole before libhdf5 reads
    it, within the cap on compressed weights, or refused; its declared size the truth or a lie."""
    size = rng.choice([64, 256, 1024]) << 20
    declared = rng.choice([size, 1000, 256 << 20])
    members = [_stored("metadata.json", b'{"keras_version": "3.5.0"}'), _stored("config.json", json.dumps(CONFIG).encode()),
               ("model.weights.h5", zipfile.ZIP_DEFLATED, _raw_deflated_zeros(size), declared, _zeros_crc(size))]
    rng.shuffle(members)
    path = folder / "model.keras"
    write_zip(path, members)
    return Attack(args=["inspect", path.name], cwd=folder, exit_codes=(3,))


@attack("zip-huge-directory")
def huge_directory(folder: Path, rng: random.Random) -> Attack:
    """Hundreds of thousands of directory entries, all naming one small member; the end record says so, or that
    there are three."""
    members = [_stored("metadata.json", b'{"keras_version": "3.5.0"}'), _stored("config.json", json.dumps(CONFIG).encode()),
               _stored("assets/a", b"x")]
    path = folder / "model.keras"
    write_zip(path, members, repeat_last=rng.randint(300_000, 500_000), declared_entries=rng.choice([None, 3]))
    return Attack(args=["inspect", path.name], cwd=folder, exit_codes=(3,))


def test_bzip2_and_lzma_members_are_capped_while_they_expand(tmp_path: Path) -> None:
    assert_holds(bzip2_lzma_bomb, tmp_path)


def test_deflated_weights_are_inflated_within_their_cap(tmp_path: Path) -> None:
    assert_holds(deflated_weights_bomb, tmp_path)


def test_a_huge_zip_directory_is_refused(tmp_path: Path) -> None:
    assert_holds(huge_directory, tmp_path)


def _bzip2_bomb_archive(path: Path, declared: int) -> Path:
    size = 64 << 22
    write_zip(path, [_stored("metadata.json", b"{}"), ("config.json", zipfile.ZIP_BZIP2, _bzip2_zeros(size >> 22), declared,
                                                        _zeros_crc(size))])
    return path


def test_a_bzip2_member_decompresses_no_more_than_is_read(tmp_path: Path) -> None:
    import tracemalloc

    from keras_share.read.keras_archive import open_archive, open_zip_member

    path = _bzip2_bomb_archive(tmp_path / "bomb.keras", 64 << 22)
    tracemalloc.start()
    with open_archive(path) as archive, open_zip_member(archive, "config.json") as stream:
        assert stream.read(1 << 20) == bytes(1 << 20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 32 << 20


def test_a_compressed_member_holding_more_than_it_declares_is_refused(tmp_path: Path) -> None:
    import pytest

    from keras_share.read.keras_archive import open_archive, open_zip_member

    path = _bzip2_bomb_archive(tmp_path / "bomb.keras", 1000)
    with open_archive(path) as archive, open_zip_member(archive, "config.json") as stream:
        with pytest.raises(zipfile.BadZipFile, match="more bytes than"):
            stream.read(1 << 20)


def test_bzip2_and_lzma_members_read_back_as_zipfile_reads_them(tmp_path: Path) -> None:
    from keras_share.read.keras_archive import open_archive, open_zip_member

    path = tmp_path / "model.keras"
    content = json.dumps(CONFIG).encode() * 50
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", content, compress_type=zipfile.ZIP_BZIP2)
        archive.writestr("metadata.json", content, compress_type=zipfile.ZIP_LZMA)
    with open_archive(path) as archive:
        for name in ("config.json", "metadata.json"):
            with open_zip_member(archive, name) as stream:
                assert stream.read(10) + stream.read() == content


def test_a_bzip2_config_bomb_is_refused_quickly_with_little_memory(tmp_path: Path) -> None:
    import time
    import tracemalloc

    import pytest

    from keras_share.errors import ReadError
    from keras_share.read.keras_archive import read_archive_configs

    path = _bzip2_bomb_archive(tmp_path / "bomb.keras", 64 << 22)
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ReadError, match="larger than 16 MiB"):
        read_archive_configs(path)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200 << 20 and elapsed < 5


def test_a_zip_directory_larger_than_its_cap_is_refused_whatever_the_entry_count_says(tmp_path: Path) -> None:
    import pytest

    from keras_share.errors import ReadError
    from keras_share.read.keras_archive import open_archive

    path = tmp_path / "model.keras"
    write_zip(path, [_stored("config.json", b"{}"), _stored("a", b"x")], repeat_last=40_000, declared_entries=2)
    with pytest.raises(ReadError, match="zip directory larger than"), open_archive(path):
        pass
