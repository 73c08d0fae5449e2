"""``.keras`` archives (zip) and their unzipped folder form: config.json, metadata.json and model.weights.h5.

The configs are read here, in the process that asked, while a reader child reads the weights' HDF5 tree
(``keras_weights``); ``complete`` then matches the tree to the config. Nothing here imports h5py.
"""

from __future__ import annotations

import bz2
import io
import json
import lzma
import struct
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, NamedTuple

from keras_share.errors import ReadError, describe
from keras_share.read.base import CONFIG_MEMBER, METADATA_MEMBER, WEIGHTS_MEMBER, ModelFile, WeightIndex
from keras_share.read.stored import StoredGroup
from keras_share.read.vars_layout import VarsLayoutReader

ZIP_ERRORS = (
    zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, IndexError, KeyError,
    struct.error, zlib.error, lzma.LZMAError, NotImplementedError, RuntimeError,
)
"""What the standard library's zip reader raises on damaged archives."""
MAX_JSON_BYTES = 64 * 1024 * 1024
"""Largest config.json / metadata.json accepted (uncompressed); real configs are far smaller."""
MAX_MEMBERS = 10_000
"""Most members a ``.keras`` archive may have (Keras writes three, and asset files)."""
MAX_CENTRAL_DIRECTORY_BYTES = 1024 * 1024
"""Largest zip central directory read: ``zipfile`` makes an object of every entry in it."""
_PIECE_BYTES = 64 * 1024
"""Compressed bytes fed to a decompressor at a time."""
_END_RECORD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")


class KerasConfigs(NamedTuple):
    """What a ``.keras`` archive or folder says about its model: where it was read, its form, its configs."""

    path: str
    form: str
    config: dict[str, Any]
    metadata: Any

    def model_file(self) -> ModelFile:
        """The model file these configs describe, with no weights read yet."""
        version = self.metadata.get("keras_version") if isinstance(self.metadata, dict) else None
        return ModelFile(path=self.path, format=self.form, keras_version=version if isinstance(version, str) else None,
                         config=self.config, weights=WeightIndex())


def _bounded_read(stream: IO[bytes], path: str, member: str) -> bytes:
    """Read at most MAX_JSON_BYTES, refusing anything longer whatever its header claims."""
    data = stream.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise ReadError(path, f"{member} is larger than {MAX_JSON_BYTES // (1024 * 1024)} MiB; refusing to read it")
    return data


def _parse_json(data: bytes, path: str, member: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ReadError(path, f"{member} is not valid JSON ({describe(error)})") from None


def _configs(path: str, form: str, config: Any, metadata: Any) -> KerasConfigs:
    if not isinstance(config, dict):
        raise ReadError(path, f"{CONFIG_MEMBER} does not hold a model config object")
    return KerasConfigs(path, form, config, metadata)


def _central_directory(stream: IO[bytes]) -> tuple[int, int] | None:
    """(entries, bytes) of the central directory the zip end record at the end of ``stream`` declares, found as
    ``zipfile`` finds it; None when there is none."""
    size = stream.seek(0, io.SEEK_END)
    tail_start = max(0, size - _END_RECORD.size - 0xFFFF)
    stream.seek(tail_start)
    tail = stream.read(size - tail_start)
    at = tail.rfind(b"PK\x05\x06", 0, max(0, len(tail) - _END_RECORD.size + 4))
    if at < 0:
        return None
    entries, directory_bytes = _END_RECORD.unpack_from(tail, at)[4:6]
    locator_at = tail_start + at - _ZIP64_LOCATOR.size
    if locator_at >= 0:
        stream.seek(locator_at)
        locator = stream.read(_ZIP64_LOCATOR.size)
        if len(locator) == _ZIP64_LOCATOR.size and locator[:4] == b"PK\x06\x07":
            stream.seek(_ZIP64_LOCATOR.unpack(locator)[2])
            record = stream.read(_ZIP64_END_RECORD.size)
            if len(record) == _ZIP64_END_RECORD.size and record[:4] == b"PK\x06\x06":
                entries, directory_bytes = _ZIP64_END_RECORD.unpack(record)[7:9]
    return entries, directory_bytes


def open_archive(path: Path) -> zipfile.ZipFile:
    """The ``.keras`` zip at ``path``; a ReadError when its directory cannot be read or is too large."""
    try:
        with open(path, "rb") as stream:
            directory = _central_directory(stream)
        if directory is not None and directory[0] > MAX_MEMBERS:
            raise ReadError(str(path), f"zip archive of {directory[0]:,} members (more than {MAX_MEMBERS:,}); refusing to read it")
        if directory is not None and directory[1] > MAX_CENTRAL_DIRECTORY_BYTES:
            raise ReadError(str(path), f"zip directory larger than {MAX_CENTRAL_DIRECTORY_BYTES >> 20} MiB; refusing to read it")
        archive = zipfile.ZipFile(path)
    except ZIP_ERRORS as error:
        raise ReadError(str(path), f"not a readable zip archive ({describe(error)})") from None
    if len(archive.infolist()) > MAX_MEMBERS:
        archive.close()
        raise ReadError(str(path), f"zip archive of more than {MAX_MEMBERS:,} members; refusing to read it")
    return archive


def member_data_start(path: Path, info: zipfile.ZipInfo) -> int | None:
    """Where an unencrypted zip member's (compressed) bytes start in the archive file; None for others."""
    if info.flag_bits & 0x1:
        return None
    with open(path, "rb") as stream:
        stream.seek(info.header_offset)
        header = stream.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        return None
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_length + extra_length


class _DecompressedMember(io.RawIOBase):
    """A bzip2 or LZMA zip member, decompressed at most as many bytes at a time as are asked for.

    ``zipfile`` hands each piece of such a member to a decompressor without an output bound, so a few
    kilobytes can expand to gigabytes before any cap is checked. More bytes than the member declares, or
    a checksum that does not match, is a ``zipfile.BadZipFile``.
    """

    def __init__(self, path: Path, info: zipfile.ZipInfo, start: int) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed with this object
        self._file.seek(start)
        self._compressed_left, self._left = info.compress_size, info.file_size
        self._crc, self._expected_crc = 0, info.CRC
        self._decompressor: Any = bz2.BZ2Decompressor() if info.compress_type == zipfile.ZIP_BZIP2 else self._lzma()

    def _take(self, size: int) -> bytes:
        data = self._file.read(min(size, self._compressed_left))
        self._compressed_left -= len(data)
        return data

    def _lzma(self) -> Any:
        """The decompressor of a zip LZMA member, after its header (version, properties' size, properties)."""
        header = self._take(4)
        if len(header) != 4:
            raise zipfile.BadZipFile("truncated LZMA member")
        properties = self._take(struct.unpack("<H", header[2:4])[0])
        if len(properties) != 5:
            raise zipfile.BadZipFile("bad LZMA properties")
        lc_lp_pb, dictionary = properties[0], struct.unpack("<I", properties[1:5])[0]
        if lc_lp_pb >= 9 * 5 * 5:
            raise zipfile.BadZipFile("bad LZMA properties")
        dictionary = min(dictionary, max(self._left, 4096))  # no match reaches further back than the member's size
        return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[{
            "id": lzma.FILTER_LZMA1, "dict_size": dictionary,
            "lc": lc_lp_pb % 9, "lp": lc_lp_pb // 9 % 5, "pb": lc_lp_pb // 45}])

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        data = b""
        ended = self._decompressor.eof
        while size and not data and not ended:
            if self._decompressor.needs_input:
                piece = self._take(_PIECE_BYTES)
                ended = not piece  # as zipfile: a stream without an end marker ends with the member's bytes
                data = self._decompressor.decompress(piece, size) if piece else b""
            else:
                data = self._decompressor.decompress(b"", size)
            ended = ended or self._decompressor.eof
        if len(data) > self._left:
            raise zipfile.BadZipFile("member holds more bytes than its header declares")
        self._left -= len(data)
        self._crc = zlib.crc32(data, self._crc)
        if ended and self._crc != self._expected_crc:
            raise zipfile.BadZipFile("bad CRC of a compressed member")
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._file.close()
        super().close()


def open_member(archive: zipfile.ZipFile, path: Path, name: str) -> IO[bytes]:
    """The member ``name`` of ``archive`` (read from ``path``) as a stream whose ``read(n)`` decompresses no more
    than ``n`` bytes, whatever the compression method."""
    info = archive.getinfo(name)
    if info.compress_type not in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        return archive.open(info)  # stored, or deflated: zipfile bounds each piece it inflates
    start = member_data_start(path, info)
    if start is None:
        raise zipfile.BadZipFile(f"{name} is encrypted or has no local header")
    return io.BufferedReader(_DecompressedMember(path, info, start))


def read_archive_configs(path: Path) -> KerasConfigs:
    """config.json and metadata.json of a ``.keras`` zip, read without extracting anything to disk."""
    with open_archive(path) as archive:
        names = set(archive.namelist())
        if CONFIG_MEMBER not in names:
            raise ReadError(str(path), f"zip archive without {CONFIG_MEMBER}: not a .keras model")
        try:
            with open_member(archive, path, CONFIG_MEMBER) as stream:
                config = _parse_json(_bounded_read(stream, str(path), CONFIG_MEMBER), str(path), CONFIG_MEMBER)
            metadata: Any = {}
            if METADATA_MEMBER in names:
                with open_member(archive, path, METADATA_MEMBER) as stream:
                    metadata = _parse_json(_bounded_read(stream, str(path), METADATA_MEMBER), str(path), METADATA_MEMBER)
        except ZIP_ERRORS as error:
            raise ReadError(str(path), f"corrupt zip member ({describe(error)})") from None
    return _configs(str(path), "keras", config, metadata)


def read_folder_configs(path: Path) -> KerasConfigs:
    """config.json and metadata.json of an unzipped ``.keras`` folder."""
    def load(member: str) -> Any:
        try:
            with open(path / member, "rb") as stream:
                return _parse_json(_bounded_read(stream, str(path), member), str(path), member)
        except OSError as error:
            raise ReadError(str(path), f"cannot read {member} ({error.strerror or error})") from None

    metadata = load(METADATA_MEMBER) if (path / METADATA_MEMBER).is_file() else {}
    return _configs(str(path), "keras-dir", load(CONFIG_MEMBER), metadata)


def complete(configs: KerasConfigs, weights: StoredGroup | None) -> ModelFile:
    """The model file: its configs, and the weights' tree (None: the file has no weights) matched to them."""
    model = configs.model_file()
    if weights is None:
        model.notes.append(f"no {WEIGHTS_MEMBER}: the file stores an architecture without weights")
    else:
        model.weights = VarsLayoutReader(weights, WEIGHTS_MEMBER + ":", model.keras_generation).read(configs.config)
    return model
