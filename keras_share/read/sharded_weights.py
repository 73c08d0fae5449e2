"""Sharded Keras 3 weights (``ShardedH5IOStore``, Keras 3.10+): a JSON map naming ``.weights.h5`` shard files.

``model.save_weights("x.weights.json", max_shard_size=...)`` writes ``x.weights.json``::

    {"metadata": {"total_size": ...}, "weight_map": {"/layers/dense/vars": ["x_00000.weights.h5", ...], ...}}

and the shards ``x_00000.weights.h5``, ``x_00001.weights.h5``, ... beside it, each in the ``vars`` layout of one
``.weights.h5`` file; one ``vars`` group may be split over several shards (its datasets in the files listed for
it). KerasHub presets store ``model.weights.json`` and its shards beside ``config.json``. Keras opens a shard as
``path_of_the_map.with_name(name)``: a shard is a plain file name in the map's folder.

Read in the reader child (h5py): every shard is read like one ``.weights.h5`` file, and the shards' trees are
merged into one tree whose datasets carry their shard's name (``StoredDataset.origin``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import h5py

from keras_share.errors import ReadError, describe
from keras_share.limits import MAX_WEIGHT_SHARDS
from keras_share.read.base import SHARDED_WEIGHTS_MEMBER
from keras_share.read.files import name_of_open_file, open_regular
from keras_share.read.h5tree import read_tree
from keras_share.read.json_text import parse_json, read_json_text
from keras_share.read.stored import StoredDataset, StoredGroup
from keras_share.read.vars_layout import GROUP_ATTRS

_HDF5_ERRORS = (OSError, ValueError, RuntimeError, KeyError, TypeError)


def _shard_name(value: Any, map_name: str, label: str) -> str:
    """A shard name from the map: a plain file name, as ``Path.with_name`` (which Keras opens it with) accepts."""
    if not isinstance(value, str):
        raise ReadError(label, f"{map_name}: a weight_map entry names a shard with a {type(value).__name__}, "
                        "not a file name")
    if not value or value in (".", "..") or "/" in value or "\\" in value or "\0" in value:
        raise ReadError(label, f"{map_name}: shard {value!r} is not a file name in the map's folder; "
                        "a shard path leading elsewhere is refused")
    return value


def _read_shard_map(stream: Any, map_name: str, label: str) -> dict[str, list[str]]:
    """The ``weight_map`` of a sharded weights map read from ``stream``: each ``vars`` group path to the shards
    that hold it, in order. A ReadError when it is too large, not a map, or names too many shards or a shard
    outside its folder."""
    value = parse_json(read_json_text(stream, label, map_name), label, map_name)
    weight_map = value.get("weight_map") if isinstance(value, dict) else None
    if not isinstance(weight_map, dict):
        raise ReadError(label, f"{map_name} has no weight_map object: not a Keras sharded weights map")
    shards: dict[str, list[str]] = {}
    names: set[str] = set()
    for group_path, listed in weight_map.items():
        files = [_shard_name(item, map_name, label) for item in (listed if isinstance(listed, list) else [listed])]
        names.update(files)
        if len(names) > MAX_WEIGHT_SHARDS:
            raise ReadError(label, f"{map_name} names more than {MAX_WEIGHT_SHARDS:,} shards (the limit); "
                            "refusing to read them")
        shards[group_path] = list(dict.fromkeys(files))
    return shards


def _read_shard(folder: Path, shard: str, map_name: str, label: str) -> StoredGroup:
    """The HDF5 tree of one shard, which must be a regular file resolving inside ``folder``."""
    with open_regular(folder / shard, label, f"shard {shard} (named in {map_name})", within=folder) as stream:
        try:
            with h5py.File(name_of_open_file(stream, folder / shard), "r") as h5:
                return read_tree(h5, GROUP_ATTRS)
        except _HDF5_ERRORS as error:
            raise ReadError(label, f"shard {shard} (named in {map_name}) is not a readable HDF5 file "
                            f"({describe(error)})") from None


def _merge(target: StoredGroup, source: StoredGroup, origin: str) -> None:
    """Add what ``source`` (read from the shard ``origin``) holds and ``target`` does not yet, recursively."""
    for name, attr in source.attrs.items():
        target.attrs.setdefault(name, attr)
    pending = [(target, source)]
    while pending:
        into, group = pending.pop()
        for name, member in group.members.items():
            present = into.members.get(name)
            if isinstance(member, StoredDataset):
                if present is None:
                    into.members[name] = replace(member, origin=origin)
            elif present is None or isinstance(present, StoredGroup):
                if present is None:
                    present = into.members[name] = StoredGroup(attrs=dict(member.attrs))
                pending.append((present, member))


def _group_at(tree: StoredGroup, path: str) -> StoredGroup:
    """The group at ``path`` below ``tree``, created (with its parents) where missing."""
    current = tree
    for part in filter(None, path.split("/")):
        member = current.members.get(part)
        if not isinstance(member, StoredGroup):
            member = current.members[part] = StoredGroup()
        current = member
    return current


def read_sharded_tree(folder: Path, map_stream: Any, map_name: str, label: str) -> StoredGroup:
    """One tree of all the shards a sharded weights map names: each ``vars`` group from the shards listed for it,
    first listed first (as Keras looks it up), then anything else the shards hold. A missing shard, or one that
    leads out of ``folder``, is a ReadError."""
    weight_map = _read_shard_map(map_stream, map_name, label)
    shards: dict[str, StoredGroup] = {}
    for files in weight_map.values():
        for shard in files:
            if shard not in shards:
                shards[shard] = _read_shard(folder, shard, map_name, label)
    merged = StoredGroup()
    for group_path, files in weight_map.items():
        for shard in files:
            found = shards[shard].group(group_path)
            if found is not None:
                _merge(_group_at(merged, group_path), found, shard)
    for shard, tree in shards.items():
        _merge(merged, tree, shard)
    return merged


def read_weights_map_file(path: Path) -> StoredGroup:
    """The merged tree of the sharded weights map at ``path``, a file the user named: its shards are read from
    its folder."""
    with open_regular(path, str(path)) as stream:
        return read_sharded_tree(path.parent, stream, path.name, str(path))


def read_folder_shards(folder: Path) -> StoredGroup:
    """The merged tree of a model folder's ``model.weights.json`` and its shards."""
    with open_regular(folder / SHARDED_WEIGHTS_MEMBER, str(folder), SHARDED_WEIGHTS_MEMBER, within=folder) as stream:
        return read_sharded_tree(folder, stream, SHARDED_WEIGHTS_MEMBER, str(folder))
