"""``.keras`` archives (zip) and their unzipped folder form: config.json, metadata.json and model.weights.h5.

The configs are read here, in the process that asked, while a reader child reads the weights' HDF5 tree
(``keras_weights``); ``complete`` then matches the tree to the config. Nothing here imports h5py.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO, NamedTuple

from keras_share import configs as config_facts
from keras_share.errors import ReadError, describe
from keras_share.limits import MAX_ZIP_DIRECTORY_BYTES, MAX_ZIP_MEMBERS
from keras_share.read import preset
from keras_share.read.base import (
    CONFIG_MEMBER,
    METADATA_MEMBER,
    SHARDED_WEIGHTS_MEMBER,
    WEIGHTS_MEMBER,
    ModelFile,
    WeightIndex,
)
from keras_share.read.files import open_member, open_regular
from keras_share.read.foreign import foreign_zip
from keras_share.read.json_text import parse_json, read_json_text
from keras_share.read.stored import StoredGroup
from keras_share.read.truncation import truncated_zip
from keras_share.read.vars_layout import TooManyLayers, VarsLayoutReader
from keras_share.vocabulary import Format

ZIP_ERRORS = (
    zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, IndexError, KeyError,
    struct.error, zlib.error, lzma.LZMAError, NotImplementedError, RuntimeError,
)
"""What the standard library's zip reader raises on damaged archives."""
_PIECE_BYTES = 64 * 1024
"""Compressed bytes fed to a decompressor at a time."""
_END_RECORD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")


class KerasConfigs(NamedTuple):
    """What a ``.keras`` archive or folder says about its model: where it was read, its form, its configs."""

    path: str
    form: Format
    config: dict[str, Any]
    metadata: Any
    bytecode_free: bool = False
    """config.json's text cannot hold a serialized function (``configs.text_may_hold_bytecode``)."""
    module_free: bool = False
    """config.json's text names no module outside Keras's own (``configs.text_may_name_module``)."""
    task: Any = None
    """A KerasHub preset's ``task.json`` (None: not a preset, or none there)."""
    names: tuple[str, ...] = ()
    """A KerasHub preset's file (or top-level member) names, to list its other files; empty for other models."""

    def model_file(self) -> ModelFile:
        """The model file these configs describe, with no weights read yet."""
        version = self.metadata.get("keras_version") if isinstance(self.metadata, dict) else None
        return ModelFile(path=self.path, format=self.form, keras_version=version if isinstance(version, str) else None,
                         config=self.config, weights=WeightIndex(), config_bytecode_free=self.bytecode_free,
                         config_module_free=self.module_free)


def _model_config(text: bytes, path: str) -> tuple[dict[str, Any], bool, bool]:
    """config.json's model config, whether its text cannot hold a serialized function, and whether it names no
    module outside Keras's own."""
    config = parse_json(text, path, CONFIG_MEMBER)
    if not isinstance(config, dict):
        raise ReadError(path, f"{CONFIG_MEMBER} does not hold a model config object")
    return config, not config_facts.text_may_hold_bytecode(text), not config_facts.text_may_name_module(text)


def _central_directory(stream: BinaryIO) -> tuple[int, int] | None:
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


@contextmanager
def open_archive(path: Path) -> Iterator[zipfile.ZipFile]:
    """The ``.keras`` zip at ``path`` (a regular file, ``files.open_regular``); a ReadError when its directory
    cannot be read or is too large."""
    with open_regular(path, str(path)) as stream, zip_in(stream, str(path)) as archive:
        yield archive


@contextmanager
def zip_in(stream: BinaryIO, label: str) -> Iterator[zipfile.ZipFile]:
    """The zip archive the open file ``stream`` holds, its directory within MAX_ZIP_MEMBERS and
    MAX_ZIP_DIRECTORY_BYTES; a ReadError naming ``label`` when it cannot be read or is too large."""
    try:
        directory = _central_directory(stream)
        if directory is not None and directory[0] > MAX_ZIP_MEMBERS:
            raise ReadError(label, f"zip archive of {directory[0]:,} members (more than {MAX_ZIP_MEMBERS:,}); "
                            "refusing to read it")
        if directory is not None and directory[1] > MAX_ZIP_DIRECTORY_BYTES:
            raise ReadError(label, f"zip directory larger than {MAX_ZIP_DIRECTORY_BYTES >> 20} MiB; "
                            "refusing to read it")
        stream.seek(0)
        archive = zipfile.ZipFile(stream)
    except ZIP_ERRORS as error:
        raise ReadError(label, truncated_zip(stream) or f"not a readable zip archive ({describe(error)})") from None
    with archive:
        if len(archive.infolist()) > MAX_ZIP_MEMBERS:
            raise ReadError(label, f"zip archive of more than {MAX_ZIP_MEMBERS:,} members; refusing to read it")
        yield archive


def member_data_start(stream: IO[bytes], info: zipfile.ZipInfo) -> int | None:
    """Where an unencrypted zip member's (compressed) bytes start in the archive file ``stream``; None for others."""
    if info.flag_bits & 0x1:
        return None
    try:
        header = os.pread(stream.fileno(), 30, info.header_offset)
    except (OSError, OverflowError):  # an offset before the file or past what the system can address
        return None
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        return None
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_length + extra_length


def stored_data_start(stream: IO[bytes], info: zipfile.ZipInfo) -> int | None:
    """Where an uncompressed, unencrypted zip member's bytes start in the archive file ``stream``; None for
    others."""
    return member_data_start(stream, info) if info.compress_type == zipfile.ZIP_STORED else None


class _DecompressedMember(io.RawIOBase):
    """A bzip2 or LZMA zip member, decompressed at most as many bytes at a time as are asked for.

    ``zipfile`` hands each piece of such a member to a decompressor without an output bound, so a few
    kilobytes can expand to gigabytes before any cap is checked. More bytes than the member declares, or
    a checksum that does not match, is a ``zipfile.BadZipFile``.
    """

    def __init__(self, archive_file: BinaryIO, info: zipfile.ZipInfo, start: int) -> None:
        super().__init__()
        self._fd, self._at = archive_file.fileno(), start  # read with pread: the archive's own position is left alone
        self._compressed_left, self._left = info.compress_size, info.file_size
        self._crc, self._expected_crc = 0, info.CRC
        self._decompressor: Any = bz2.BZ2Decompressor() if info.compress_type == zipfile.ZIP_BZIP2 else self._lzma()

    def _take(self, size: int) -> bytes:
        data = os.pread(self._fd, min(size, self._compressed_left), self._at)
        self._at += len(data)
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



def open_zip_member(archive: zipfile.ZipFile, name: str) -> IO[bytes]:
    """The member ``name`` of ``archive`` (opened by ``open_archive``) as a stream whose ``read(n)`` decompresses
    no more than ``n`` bytes, whatever the compression method."""
    info = archive.getinfo(name)
    if info.compress_type not in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        return archive.open(info)  # stored, or deflated: zipfile bounds each piece it inflates
    archive_file: Any = archive.fp
    start = member_data_start(archive_file, info)
    if start is None:
        raise zipfile.BadZipFile(f"{name} is encrypted or has no local header")
    return io.BufferedReader(_DecompressedMember(archive_file, info, start))


def read_archive_configs(path: Path) -> KerasConfigs:
    """config.json and metadata.json of a ``.keras`` zip, read without extracting anything to disk."""
    with open_archive(path) as archive:
        names = set(archive.namelist())
        if CONFIG_MEMBER not in names:
            known = foreign_zip(archive.namelist())
            raise ReadError(str(path), f"{known}; not a .keras model" if known else
                            f"zip archive without {CONFIG_MEMBER}: not a .keras model")
        try:
            with open_zip_member(archive, CONFIG_MEMBER) as stream:
                config, bytecode_free, module_free = _model_config(read_json_text(stream, str(path), CONFIG_MEMBER),
                                                                   str(path))
            metadata: Any = {}
            if METADATA_MEMBER in names:
                with open_zip_member(archive, METADATA_MEMBER) as stream:
                    metadata = parse_json(read_json_text(stream, str(path), METADATA_MEMBER), str(path), METADATA_MEMBER)
            if not preset.is_preset(config, metadata):
                return KerasConfigs(str(path), Format.KERAS, config, metadata, bytecode_free, module_free)
            task: Any = None
            if preset.TASK_CONFIG in names:
                with open_zip_member(archive, preset.TASK_CONFIG) as stream:
                    task = parse_json(read_json_text(stream, str(path), preset.TASK_CONFIG), str(path), preset.TASK_CONFIG)
        except ZIP_ERRORS as error:
            raise ReadError(str(path), f"corrupt zip member ({describe(error)})") from None
        return KerasConfigs(str(path), Format.KERAS, config, metadata, bytecode_free, module_free, task,
                            tuple(preset.zip_names(archive)))


def read_folder_configs(path: Path) -> KerasConfigs:
    """config.json and metadata.json of an unzipped ``.keras`` folder (regular files inside it only)."""
    def load(member: str) -> bytes:
        with open_member(path, member) as stream:
            try:
                return read_json_text(stream, str(path), member)
            except OSError as error:
                raise ReadError(str(path), f"cannot read {member} ({error.strerror or error})") from None

    metadata = parse_json(load(METADATA_MEMBER), str(path), METADATA_MEMBER) if os.path.lexists(path / METADATA_MEMBER) else {}
    config, bytecode_free, module_free = _model_config(load(CONFIG_MEMBER), str(path))
    if not preset.is_preset(config, metadata):
        return KerasConfigs(str(path), Format.KERAS_DIR, config, metadata, bytecode_free, module_free)
    task = parse_json(load(preset.TASK_CONFIG), str(path), preset.TASK_CONFIG) if os.path.lexists(path / preset.TASK_CONFIG) else None
    return KerasConfigs(str(path), Format.KERAS_DIR, config, metadata, bytecode_free, module_free, task,
                        tuple(preset.folder_names(path)))


def complete(configs: KerasConfigs, weights: StoredGroup | None,
             extras: dict[str, preset.ExtraTree] | None = None) -> ModelFile:
    """The model file: its configs, and the weights' tree (None: the file has no weights) matched to them; for a
    KerasHub preset, its facts (``preset.preset_facts``) from the trees of its ``extras`` HDF5 files too."""
    model = configs.model_file()
    if preset.is_preset(configs.config, configs.metadata):
        model.preset = preset.preset_facts(configs.metadata, weights, extras or {}, configs.task, list(configs.names),
                                           model.keras_version)
        model.notes.extend(extra.problem for extra in (extras or {}).values() if extra.problem is not None)
    if weights is None:
        model.notes.append(f"no {WEIGHTS_MEMBER}: the file stores an architecture without weights")
    else:
        try:
            reader = VarsLayoutReader(weights, WEIGHTS_MEMBER + ":", model.keras_generation, model.keras_version)
            model.weights = reader.read(configs.config)
            model.notes.extend(reader.notes)
        except TooManyLayers as error:
            raise ReadError(configs.path, str(error)) from None
        shards = weights.origins()
        if shards:
            model.notes.append(f"weights read from {SHARDED_WEIGHTS_MEMBER} and the {len(shards):,} shard file(s) "
                               "holding them (Keras's sharded weights, as KerasHub presets store them)")
    return model
