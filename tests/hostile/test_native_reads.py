"""Hostile inputs aimed at libhdf5's reads: arrays whose logical size is far above what the file stores, rows too
long to read in one piece, compressed weights read by seeking, a superblock behind a user block.

``weight-copy`` (selected by default) hashes arrays that share a shape and dtype, so every model here has two
such layers: the hashing, not only the tree walk, is what is attacked.
"""

from __future__ import annotations

import functools
import json
import random
import zipfile
import zlib
from pathlib import Path

import h5py
import numpy as np
from harness import Attack, assert_holds, attack

KERAS_VERSION = "3.5.0"


def _tensor(name: str) -> dict:
    return {"class_name": "__keras_tensor__", "config": {"shape": [None, 4], "dtype": "float32",
                                                         "keras_history": [name, 0, 0]}}


def _config(names: list[str]) -> dict:
    """A Keras 3 Functional model: an input feeding one Dense layer per name."""
    inputs = [{"module": "keras.layers", "class_name": "InputLayer", "name": "x",
               "config": {"name": "x", "batch_shape": [None, 4]}, "inbound_nodes": []}]
    dense = [{"module": "keras.layers", "class_name": "Dense", "name": name,
              "config": {"name": name, "units": 4, "trainable": True, "use_bias": False},
              "inbound_nodes": [{"args": [_tensor("x")], "kwargs": {}}]} for name in names]
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "config": {"name": "hostile", "trainable": True, "layers": inputs + dense,
                       "input_layers": [["x", 0, 0]], "output_layers": [[names[-1], 0, 0]]}}


def _legacy_h5(path: Path, names: list[str], userblock: int = 0) -> tuple[h5py.File, list[h5py.Group]]:
    """A legacy full-model ``.h5`` (config and ``model_weights``), left open: the group of each layer's kernel."""
    h5 = h5py.File(path, "w", userblock_size=userblock)
    h5.attrs["model_config"] = json.dumps(_config(names))
    h5.attrs["keras_version"] = KERAS_VERSION
    weights = h5.create_group("model_weights")
    weights.attrs["layer_names"] = np.array([name.encode() for name in names])
    groups = []
    for name in names:
        group = weights.create_group(name)
        group.attrs["weight_names"] = np.array([f"{name}/kernel".encode()])
        groups.append(group.create_group(name))
    return h5, groups


def _vars_h5(path: Path, names: list[str]) -> tuple[h5py.File, list[h5py.Group]]:
    """A Keras 3 ``model.weights.h5``, left open: each layer's ``vars`` group (named, as Keras names them, after
    the layer's class: ``layers/dense``, ``layers/dense_1``, ...)."""
    h5 = h5py.File(path, "w")
    return h5, [h5.create_group(f"layers/dense{f'_{index}' if index else ''}/vars") for index in range(len(names))]


def _keras(path: Path, names: list[str], weights: Path, compression: int = zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": KERAS_VERSION}))
        archive.writestr("config.json", json.dumps(_config(names)))
        archive.write(weights, "model.weights.h5", compress_type=compression)
    weights.unlink()


def _model(folder: Path, rng: random.Random, names: list[str]) -> tuple[Path, h5py.File, list[h5py.Group], Path | None]:
    """A legacy ``.h5``, or the weights of a ``.keras`` (to zip with ``_keras`` once written): (the input, the open
    HDF5 file, a group per layer to put its kernel in, the weights file to zip or None)."""
    if rng.random() < 0.5:
        path = folder / "model.h5"
        h5, groups = _legacy_h5(path, names)
        return path, h5, list(groups), None
    weights = folder / "weights.h5"
    h5, groups = _vars_h5(weights, names)
    return folder / "model.keras", h5, groups, weights


def _kernel_name(groups: list[h5py.Group], index: int) -> str:
    return "kernel" if groups[index].name.startswith("/model_weights") else "0"


def _finish(path: Path, h5: h5py.File, names: list[str], weights: Path | None) -> Attack:
    """Close the model's weights (and zip them into its ``.keras``): a model to report on, not to refuse."""
    h5.close()
    if weights is not None:
        _keras(path, names, weights)
    return Attack(args=["inspect", path.name], cwd=path.parent, exit_codes=(0, 1))


@attack("native-unwritten-huge-arrays")
def unwritten_huge_arrays(folder: Path, rng: random.Random) -> Attack:
    """Chunked arrays of tens of GiB whose chunks were never written: a file of kilobytes."""
    names = [f"dense_{index}" for index in range(rng.randint(2, 4))]
    shape, chunks = rng.choice([((131072, 65536), (1024, 1024)), ((1, 1 << 33), (1, 1 << 20)),
                                ((1 << 20, 4096, 2), (256, 256, 2))])
    path, h5, groups, weights = _model(folder, rng, names)
    for index, group in enumerate(groups):
        group.create_dataset(_kernel_name(groups, index), shape=shape, chunks=chunks,
                             dtype=rng.choice(["<f4", "<f8"]), fillvalue=rng.choice([0, 1.5]))
    return _finish(path, h5, names, weights)


@attack("native-gib-single-row")
def gib_single_row(folder: Path, rng: random.Random) -> Attack:
    """Rows of 1 GiB in chunks, none or a few of which were written: the file stays small."""
    names = ["left", "right"]
    row = 1 << 28
    path, h5, groups, weights = _model(folder, rng, names)
    for index, group in enumerate(groups):
        dataset = group.create_dataset(_kernel_name(groups, index), shape=(1, row), chunks=(1, 1 << 18), dtype="<f4")
        for _ in range(rng.randint(0, 3)):
            start = rng.randrange(0, row, 1 << 18)
            dataset[0, start:start + (1 << 18)] = np.float32(rng.random())
    return _finish(path, h5, names, weights)


@functools.cache
def _deflated_zeros(size: int) -> bytes:
    """A zlib stream of ``size`` zero bytes (about a thousandth of that)."""
    compressor = zlib.compressobj(1)
    piece = bytes(8 << 20)
    return b"".join([*(compressor.compress(piece) for _ in range(size // len(piece))), compressor.flush()])


@attack("native-inflating-chunk")
def inflating_chunk(folder: Path, rng: random.Random) -> Attack:
    """Deflated chunks that inflate to hundreds of MB, far past the few KB their datasets declare: libhdf5 inflates
    a chunk whole, into memory, whatever its declared size."""
    names = ["left", "right"]
    path, h5, groups, weights = _model(folder, rng, names)
    elements = rng.choice([1024, 1 << 19])  # hashed while the tree is walked, or only when weight-copy asks
    for index, group in enumerate(groups):
        dataset = group.create_dataset(_kernel_name(groups, index), shape=(elements,), chunks=(elements,),
                                       dtype="<f4", compression="gzip")
        dataset.id.write_direct_chunk((0,), _deflated_zeros(rng.choice([320, 480]) << 20))
    return _finish(path, h5, names, weights)


@attack("native-written-long-row")
def written_long_row(folder: Path, rng: random.Random) -> Attack:
    """A written row of 144 MiB beside a twin that was never written: hashing must read it in blocks."""
    names = ["left", "right"]
    path, h5, groups, weights = _model(folder, rng, names)
    row = (144 << 20) // 4
    written = rng.randrange(2)
    for index, group in enumerate(groups):
        name = _kernel_name(groups, index)
        dataset = group.create_dataset(name, shape=(1, row), dtype="<f4")
        for start in range(0, row if index == written else 0, 1 << 20):  # in pieces: the test process stays small
            dataset[0, start:start + (1 << 20)] = np.arange(start, start + (1 << 20), dtype="<f4")
    return _finish(path, h5, names, weights)


@attack("native-deflated-weights-seeks")
def deflated_weights_seeks(folder: Path, rng: random.Random) -> Attack:
    """A ``.keras`` whose ``model.weights.h5`` is deflated, tens of MB that compress to kilobytes, with each layer's
    metadata stored after the data of the layers that come after it by name: walking the layers in name order,
    libhdf5 seeks backwards through the compressed stream at every layer."""
    count = rng.randint(150, 250)
    names = [f"dense_{count - index:05d}" for index in range(count)]  # created in the reverse of name order
    weights = folder / "weights.h5"
    with h5py.File(weights, "w") as h5:
        for name in names:
            h5.create_dataset(f"layers/{name}/vars/0", data=np.full((256, 256), rng.random(), "<f4"))
    path = folder / "model.keras"
    _keras(path, sorted(names), weights, zipfile.ZIP_DEFLATED)
    return Attack(args=["inspect", path.name], cwd=folder, exit_codes=(0, 1))


@attack("native-user-block")
def user_block(folder: Path, rng: random.Random) -> Attack:
    """A legacy ``.h5`` whose superblock sits behind a user block of 2 MiB or more: h5py opens it, so must this."""
    path = folder / "model.h5"
    h5, groups = _legacy_h5(path, ["left", "right"], userblock=rng.choice([2, 4, 8]) << 20)
    for group in groups:
        group.create_dataset("kernel", data=np.full((4, 4), rng.random(), "<f4"))
    h5.close()
    return Attack(args=["inspect", path.name], cwd=folder, exit_codes=(0, 1))


def test_arrays_never_written_are_not_read(tmp_path: Path) -> None:
    assert_holds(unwritten_huge_arrays, tmp_path)


def test_a_gib_row_mostly_never_written_is_not_read(tmp_path: Path) -> None:
    assert_holds(gib_single_row, tmp_path)


def test_a_chunk_that_inflates_past_its_size_is_not_read(tmp_path: Path) -> None:
    assert_holds(inflating_chunk, tmp_path)


def test_a_long_written_row_is_hashed_in_blocks(tmp_path: Path) -> None:
    assert_holds(written_long_row, tmp_path)


def test_deflated_weights_are_inflated_once(tmp_path: Path) -> None:
    assert_holds(deflated_weights_seeks, tmp_path)


def test_a_file_behind_a_large_user_block_is_read(tmp_path: Path) -> None:
    assert_holds(user_block, tmp_path)
