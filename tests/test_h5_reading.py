"""How HDF5 content is read: one pass over the tree, hard links only, digests taken on the way."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from h5_files import virtual_layout
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_share.read import deadline, h5tree, h5util, keras_weights
from keras_share.read.arrays import array_digests
from keras_share.read.detect import read_model
from keras_share.read.digest import HashBudget, buffer_digest, dataset_digest, value_digest
from keras_share.read.h5tree import read_tree
from keras_share.read.stored import StoredDataset, StoredGroup

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"
KERAS_SAMPLES = sorted(SAMPLES.glob("*.keras"))


def _all_arrays(path: Path) -> list:
    weights = read_model(path).weights
    groups = [*weights.by_layer.values(), *weights.unattached.values(), weights.optimizer]
    return [array for arrays in groups for array in arrays]


def test_the_tree_holds_groups_datasets_shapes_and_the_attributes_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as h5:
        group = h5.create_group("layers/dense/vars")
        group.attrs["name"] = "dense"
        group.attrs["other"] = "not asked for"
        group.create_dataset("0", data=np.ones((2, 3), "float32"))
        group.create_dataset("1", data=np.zeros(3, "float64")).attrs["dtype"] = "bfloat16"
    with h5py.File(path, "r") as h5:
        tree = read_tree(h5, group_attrs=("name",))
    vars_group = tree.group("layers/dense/vars")
    assert vars_group is not None
    assert vars_group.attrs == {"name": "dense"}
    assert vars_group.members["0"] == StoredDataset((2, 3), "float32", value_digest(np.ones((2, 3), "float32")))
    assert vars_group.members["1"].dtype == "bfloat16"


def test_the_tree_follows_neither_soft_nor_external_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside.h5"
    with h5py.File(outside, "w") as h5:
        h5.create_dataset("secret", data=np.arange(3))
    path = tmp_path / "links.h5"
    with h5py.File(path, "w") as h5:
        h5.create_group("layers/dense/vars").create_dataset("0", data=np.ones(2, "float32"))
        h5["layers/dense/vars/soft"] = h5py.SoftLink("/layers/dense/vars/0")
        h5["layers/external"] = h5py.ExternalLink(str(outside), "/")
    with h5py.File(path, "r") as h5:
        tree = read_tree(h5)
    assert list(tree.group("layers/dense/vars").members) == ["0"]
    assert list(tree.group("layers").members) == ["dense"]


def test_a_hard_link_cycle_ends_and_each_object_is_seen_once_at_its_first_path(tmp_path: Path) -> None:
    path = tmp_path / "cycle.h5"
    with h5py.File(path, "w") as h5:
        group = h5.create_group("layers/dense")
        group.create_group("vars").create_dataset("0", data=np.ones(2, "float32"))
        group["again"] = group
        h5["alias"] = group
    with h5py.File(path, "r") as h5:
        tree = read_tree(h5)
    assert set(tree.group("alias").members) == {"vars"}  # "alias" sorts before "layers"
    assert tree.group("layers").members == {}


def test_a_virtual_dataset_is_kept_without_a_shape(tmp_path: Path) -> None:
    path = tmp_path / "virtual.h5"
    with h5py.File(path, "w") as h5:
        h5.create_virtual_dataset("v", virtual_layout(tmp_path))
    with h5py.File(path, "r") as h5:
        tree = read_tree(h5)
    assert tree.members["v"] == StoredDataset(None, "")


def test_a_dataset_stored_in_an_external_file_is_described_and_never_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(4, dtype="float32").tobytes())
    path = tmp_path / "model.weights.h5"
    with h5py.File(path, "w") as h5:
        group = h5.create_group("layers/dense/vars")
        group.create_dataset("0", shape=(4,), dtype="float32", external=[(str(secret), 0, 16)])
        group.create_dataset("1", data=np.arange(4, dtype="float32"))
        assert np.array_equal(group["0"][()], group["1"][()])  # h5py itself would read the outside file
    monkeypatch.setattr(h5tree, "EAGER_DIGEST_BYTES", 0)  # nothing hashed while reading: all on demand
    model_file = read_model(path)
    arrays = model_file.weights.unattached["layers/dense"]
    assert [(array.location, array.shape) for array in arrays] == [("/layers/dense/vars/0", (4,)),
                                                                 ("/layers/dense/vars/1", (4,))]
    assert set(array_digests(model_file, arrays)) == {"/layers/dense/vars/1"}
    monkeypatch.setattr(h5tree, "EAGER_DIGEST_BYTES", 1 << 20)
    assert set(read_model(path).weights.digests) == {"/layers/dense/vars/1"}


def test_a_dataset_whose_data_cannot_be_read_is_described_without_a_digest(tmp_path: Path) -> None:
    path = tmp_path / "damaged.h5"
    with h5py.File(path, "w") as h5:
        dataset = h5.create_dataset("kernel", data=np.zeros((64, 64), "float32"), chunks=(64, 64), compression="gzip")
        chunk = dataset.id.get_chunk_info(0)
    with open(path, "r+b") as stream:  # garbage where the compressed chunk is: gzip fails, metadata is intact
        stream.seek(chunk.byte_offset)
        stream.write(b"\xff" * chunk.size)
    with h5py.File(path, "r") as h5:
        with pytest.raises(OSError):
            h5["kernel"][()]
        kernel = read_tree(h5).members["kernel"]
    assert (kernel.shape, kernel.dtype, kernel.digest) == ((64, 64), "float32", None)


@pytest.mark.parametrize("name", ["nested_encoder.keras", "nested_encoder.h5", "k2_shared.h5", "shared_dense.weights.h5"])
def test_small_arrays_are_hashed_while_reading_as_they_would_be_on_demand(name: str) -> None:
    path = SAMPLES / name
    model_file = read_model(path)
    arrays = _all_arrays(path)
    assert model_file.weights.digests
    assert set(model_file.weights.digests) == {array.location for array in arrays}
    assert model_file.weights.digests == array_digests(model_file, arrays)


def test_every_numeric_stored_type_is_hashed_as_h5py_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "types.h5"
    with h5py.File(path, "w") as h5:
        h5["big_endian"] = np.arange(6, dtype=">f4").reshape(2, 3)
        h5["int8"] = np.arange(5, dtype="i1")
        h5["bool"] = np.array([True, False])
        h5["uint16"] = np.arange(4, dtype="u2")
        h5["complex"] = np.array([1 + 2j, 3j], dtype="c8")
        h5["text"] = np.array([b"ab", b"cd"])
    with h5py.File(path, "r") as h5:
        tree = read_tree(h5)
        expected = {name: dataset_digest(h5[name]) for name in tree.members if name != "text"}
    assert {name: member.digest for name, member in tree.members.items() if member.digest} == expected
    assert tree.members["text"].digest is None


def test_string_attributes_of_every_kind_are_read_as_h5py_reads_them_and_others_are_none(tmp_path: Path) -> None:
    path = tmp_path / "attrs.h5"
    with h5py.File(path, "w") as h5:
        group = h5.create_group("g")
        group.attrs["text"] = "dénse"
        group.attrs.create("ascii", b"plain", dtype=h5py.string_dtype("ascii"))
        group.attrs.create("not_utf8", b"\xff\xfe", dtype=h5py.string_dtype("ascii"))
        group.attrs["fixed"] = np.bytes_(b"fixed")
        group.attrs.create("fixed_utf8", "ünï".encode(), dtype=h5py.string_dtype("utf-8", 6))
        group.attrs["list"] = ["a", "b"]
        group.attrs["number"] = 3
        group.attrs["empty"] = h5py.Empty(h5py.string_dtype())
    with h5py.File(path, "r") as h5:
        group = h5["g"]
        read = {name: h5util.str_attr(group, name) for name in [*group.attrs, "absent"]}
    assert read == {"text": "dénse", "ascii": "plain", "not_utf8": "\ufffd\ufffd", "fixed": "fixed",
                    "fixed_utf8": "ünï", "list": None, "number": None, "empty": None, "absent": None}


_DIGEST_VALUES = st.sampled_from([0.0, -0.0, 1.5, float("nan"), float("inf"), 7.0])


@settings(deadline=None)
@given(dtype=st.sampled_from(["<f2", "<f4", "<f8", "<i4", "<i8", "u1"]),
       shape=st.lists(st.integers(0, 3), max_size=3).map(tuple), values=st.lists(_DIGEST_VALUES, min_size=1))
def test_an_array_hashed_from_its_bytes_has_the_digest_of_its_value(dtype: str, shape: tuple, values: list) -> None:
    count = int(np.prod(shape))
    source = np.resize(np.array(values, "f8"), count)
    array = (np.nan_to_num(source, posinf=9) if np.dtype(dtype).kind in "iu" else source).astype(dtype).reshape(shape)
    assert buffer_digest(array.tobytes(), array.dtype, array.shape) == value_digest(array)


def test_a_scalar_and_a_one_element_vector_have_different_digests() -> None:
    assert value_digest(np.float32(2.0)) != value_digest(np.array([2.0], "float32"))


@pytest.mark.parametrize("userblock", [0, 512])
def test_arrays_hashed_from_the_file_bytes_match_library_reads_from_a_path_a_memory_image_and_a_file_object(
    userblock: int, tmp_path: Path
) -> None:
    path = tmp_path / "arrays.h5"
    with h5py.File(path, "w", userblock_size=userblock) as h5:
        h5["kernel"] = np.linspace(-1, 1, 12, dtype="<f4").reshape(3, 4)
        h5["step"] = np.int64(41)
        h5["half"] = np.array([0.5, -0.0, 0.0], "<f2")
        h5["big_endian"] = np.arange(3, dtype=">f8")
        h5["empty"] = np.zeros(0, "<f4")
        h5.create_dataset("unwritten", (3,), "<f4")  # no storage allocated: the library reads the fill value
        h5.create_dataset("never_filled", (3,), "<f4", fill_time="never", fillvalue=5)  # h5py reads zeros
    image = path.read_bytes()
    with h5py.File(path, "r") as h5:
        expected = {name: dataset_digest(h5[name]) for name in h5}
        from_path = read_tree(h5)
    with h5py.File(h5py.h5f.open_file_image(image)) as h5:
        from_image = read_tree(h5, raw=keras_weights._image_reader(image))
    with h5py.File(io.BytesIO(image), "r") as h5:
        from_stream = read_tree(h5)
    assert {name: member.digest for name, member in from_path.members.items()} == expected
    assert from_image == from_path == from_stream


def test_a_file_on_disk_has_its_bytes_read_through_the_descriptor_libhdf5_reads_it_with(tmp_path: Path) -> None:
    path = tmp_path / "one.h5"
    with h5py.File(path, "w") as h5:
        h5["x"] = np.arange(4, dtype="<f4")
    with h5py.File(path, "r") as h5:
        assert h5tree._descriptor_reader(h5)(h5["x"].id.get_offset(), 16) == np.arange(4, dtype="<f4").tobytes()
    with h5py.File(io.BytesIO(path.read_bytes()), "r") as h5:
        assert h5tree._descriptor_reader(h5) is None


def _archive_with_weights(path: Path, weights: bytes, compression: int) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr(keras_weights.WEIGHTS_MEMBER, weights, compress_type=compression)
        archive.writestr("after.bin", b"\x07" * 64)


@pytest.mark.parametrize("in_memory", [True, False], ids=["in-memory", "in-place"])
@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
def test_the_weights_member_bytes_are_read_from_the_archive_up_to_the_member_end(
    in_memory: bool, compression: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "weights.h5"
    with h5py.File(weights, "w") as h5:
        h5["x"] = np.arange(4, dtype="<f4")
        offset = h5["x"].id.get_offset()
    path = tmp_path / "model.keras"
    _archive_with_weights(path, weights.read_bytes(), compression)
    if not in_memory:
        monkeypatch.setattr(keras_weights, "IN_MEMORY_WEIGHTS_BYTES", 0)
    size = weights.stat().st_size
    with zipfile.ZipFile(path) as archive, keras_weights.open_weights_h5(archive) as (h5, raw):
        assert h5["x"][()].tolist() == [0, 1, 2, 3]
        assert raw is not None  # a compressed member too: it was inflated once, into memory or a temporary file
        assert bytes(raw(offset, 16)) == np.arange(4, dtype="<f4").tobytes()
        assert bytes(raw(size - 4, 100)) == weights.read_bytes()[-4:]  # never the next member's bytes
        assert bytes(raw(size + 10, 4)) == b""


def test_arrays_above_the_eager_limit_are_left_to_on_demand_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h5tree, "EAGER_DIGEST_BYTES", 0)
    assert read_model(SAMPLES / "nested_encoder.keras").weights.digests == {}


def test_bytes_waiting_past_their_bound_are_hashed_on_the_way_with_the_same_digests_in_the_same_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "many.h5"
    arrays = {f"{index:02d}": np.arange(index, index + 6, dtype="float32").reshape(2, 3) for index in range(12)}
    with h5py.File(path, "w") as h5:
        group = h5.create_group("layers/dense/vars")
        for name, array in arrays.items():
            group.create_dataset(name, data=array)
    with h5py.File(path, "r") as h5:
        all_at_the_end = read_tree(h5).group("layers/dense/vars")
    monkeypatch.setattr(h5tree, "UNHASHED_BYTES", 50)  # two arrays of 24 bytes wait, the third is hashed with them
    batches: list[int] = []
    hash_unhashed = h5tree._TreeBuilder._hash_unhashed

    def counted(builder: h5tree._TreeBuilder) -> None:
        batches.append(len(builder._unhashed))
        hash_unhashed(builder)

    monkeypatch.setattr(h5tree._TreeBuilder, "_hash_unhashed", counted)
    with h5py.File(path, "r") as h5:
        in_batches = read_tree(h5).group("layers/dense/vars")
    assert batches == [3, 3, 3, 3, 0]
    assert in_batches == all_at_the_end
    assert list(in_batches.members) == list(arrays)
    assert [member.digest for member in in_batches.members.values()] == [value_digest(array) for array in arrays.values()]


@pytest.mark.parametrize("path", KERAS_SAMPLES, ids=lambda path: path.name)
def test_weights_read_from_memory_and_in_place_are_the_same(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_memory = read_model(path)
    monkeypatch.setattr(keras_weights, "IN_MEMORY_WEIGHTS_BYTES", 0)
    assert read_model(path) == from_memory


_NAMES = st.sampled_from(["vars", "layers", "dense", "0", "1", "kernel:0", "x"])
_DTYPES = st.sampled_from(["<f4", ">f8", "<f2", "i1", "<u2", "<i8", "c8", "?", "S3"])


def _layouts(depth: int) -> st.SearchStrategy[dict]:
    """Nested dicts: a dict is a group, a (dtype, shape) pair a dataset, "soft" a soft link to the root."""
    leaf = st.one_of(st.tuples(_DTYPES, st.lists(st.integers(0, 3), max_size=3).map(tuple)), st.just("soft"))
    if depth == 0:
        return st.dictionaries(_NAMES, leaf, max_size=3)
    return st.dictionaries(_NAMES, st.one_of(leaf, _layouts(depth - 1)), max_size=3)


def _write(group: h5py.Group, layout: dict) -> None:
    for name, item in layout.items():
        if item == "soft":
            group[name] = h5py.SoftLink("/")
        elif isinstance(item, dict):
            _write(group.create_group(name), item)
        else:
            dtype, shape = item
            group.create_dataset(name, data=np.arange(int(np.prod(shape)), dtype="i8").astype(dtype).reshape(shape))


def _h5py_view(group: h5py.Group) -> dict:
    """What h5py's high-level API shows through hard links: shapes, dtypes, digests of the values it reads."""
    view = {}
    for name in group:
        if not isinstance(group.get(name, getlink=True), h5py.HardLink):
            continue
        item = group[name]
        if isinstance(item, h5py.Group):
            view[name] = _h5py_view(item)
        else:
            digest = dataset_digest(item) if item.dtype.kind in "biufc" else None
            view[name] = (item.shape, str(item.dtype), digest)
    return view


def _tree_view(group: StoredGroup) -> dict:
    return {name: _tree_view(member) if isinstance(member, StoredGroup) else (member.shape, member.dtype, member.digest)
            for name, member in group.members.items()}


@given(layout=_layouts(3))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_tree_shows_what_h5py_shows_through_hard_links(layout: dict, tmp_path: Path) -> None:
    path = tmp_path / "random.h5"
    with h5py.File(path, "w") as h5:
        _write(h5, layout)
    with h5py.File(path, "r") as h5:
        assert _tree_view(read_tree(h5)) == _h5py_view(h5)


def _many_layers(path: Path, layers: int) -> None:
    """A vars-layout file of ``layers`` layers, each with a name and two small datasets."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as h5:
        for index in range(layers):
            group = h5.create_group(f"layers/dense_{index}/vars")
            group.attrs["name"] = f"layer_{index}"
            group.create_dataset("0", data=rng.random((3, 2), dtype="float32"))
            group.create_dataset("1", data=np.zeros(2, "float32")).attrs["dtype"] = "bfloat16"


@pytest.mark.parametrize("opened", ["path", "memory image", "file object"])
def test_a_tree_read_in_a_reader_child_is_the_tree_read_here(opened: str, tmp_path: Path) -> None:
    path = tmp_path / "many.h5"
    _many_layers(path, 200)

    def read() -> StoredGroup:
        if opened == "path":
            h5 = h5py.File(path, "r")
        elif opened == "memory image":
            h5 = h5py.File(h5py.h5f.open_file_image(path.read_bytes()))
        else:
            h5 = h5py.File(io.BytesIO(path.read_bytes()), "r")
        with h5:
            return read_tree(h5, group_attrs=("name",))

    alone = read()
    assert alone.group("layers/dense_7/vars").attrs == {"name": "layer_7"}
    assert deadline.call_with_deadline(read, str(path), 60) == alone


def test_a_dataset_never_written_has_the_digest_of_what_h5py_reads_without_being_read(tmp_path: Path) -> None:
    path = tmp_path / "unwritten.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("chunked", (300, 7), "<f4", chunks=(16, 7), fillvalue=2.5)
        h5.create_dataset("contiguous", (5, 3), "<f8")
        h5.create_dataset("never_filled", (4,), "<i4", fill_time="never", fillvalue=5)
        h5.create_dataset("huge", (1 << 20, 1 << 20), "<f4", chunks=(1024, 1024), fillvalue=1.5)
    with h5py.File(path, "r") as h5:
        for name in ("chunked", "contiguous", "never_filled"):
            assert dataset_digest(h5[name], HashBudget(0)) == value_digest(h5[name][...])
        huge = dataset_digest(h5["huge"], HashBudget(0))  # 4 TiB that nothing may be spent reading
    assert huge is not None and huge.constant


def test_a_constant_array_has_one_digest_whether_it_was_written_or_never_written(tmp_path: Path) -> None:
    path = tmp_path / "constant.h5"
    with h5py.File(path, "w") as h5:
        h5["written"] = np.full((64, 64), 1.5, "<f4")
        h5.create_dataset("unwritten", (64, 64), "<f4", chunks=(8, 8), fillvalue=1.5)
    with h5py.File(path, "r") as h5:
        written, unwritten = dataset_digest(h5["written"]), dataset_digest(h5["unwritten"])
    assert written == unwritten == value_digest(np.full((64, 64), 1.5, "<f4"))


@pytest.mark.parametrize("shape", [(1, 3000), (3, 5, 7, 11), (2000,), (7, 1, 300)])
@pytest.mark.parametrize("chunks", [None, True], ids=["contiguous", "chunked"])
def test_a_dataset_hashed_in_blocks_smaller_than_a_row_has_the_digest_of_its_value(
    shape: tuple[int, ...], chunks: bool | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keras_share.read import digest

    monkeypatch.setattr(digest, "BLOCK_BYTES", 64)
    values = np.random.default_rng(0).random(shape).astype("<f4")
    path = tmp_path / "blocks.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("values", data=values, chunks=chunks)
        h5.create_dataset("constant", data=np.full(shape, 3.0, "<f4"), chunks=chunks)
    with h5py.File(path, "r") as h5:  # blocks this small cost more chunk visits than a file's budget pays for
        assert dataset_digest(h5["values"], HashBudget(1 << 40)) == value_digest(values)
        assert dataset_digest(h5["constant"], HashBudget(1 << 40)) == value_digest(np.full(shape, 3.0, "<f4"))


def test_blocks_cover_an_array_in_c_order_without_passing_the_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    from keras_share.read import digest

    monkeypatch.setattr(digest, "BLOCK_BYTES", 40)
    shape = (3, 4, 25)
    covered = np.zeros(shape, "i4")
    order = []
    for selection in digest._blocks(shape, 4):
        block = covered[selection]
        assert block.size * 4 <= 40
        covered[selection] += 1
        order.extend(np.arange(covered.size).reshape(shape)[selection].reshape(-1).tolist())
    assert (covered == 1).all() and order == list(range(covered.size))


def test_a_written_dataset_the_budget_cannot_pay_for_is_not_hashed(tmp_path: Path) -> None:
    path = tmp_path / "budget.h5"
    with h5py.File(path, "w") as h5:
        h5["kernel"] = np.arange(1000, dtype="<f4")
    with h5py.File(path, "r") as h5:
        assert dataset_digest(h5["kernel"], HashBudget(0)) is None
        assert dataset_digest(h5["kernel"], HashBudget(4000)) == value_digest(np.arange(1000, dtype="<f4"))


def test_a_sparse_array_far_larger_than_its_file_is_not_hashed(tmp_path: Path) -> None:
    path = tmp_path / "sparse.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("row", (1, 1 << 28), "<f4", chunks=(1, 1 << 16))[0, :4] = 1
    with h5py.File(path, "r") as h5:
        assert dataset_digest(h5["row"]) is None


def test_a_deflated_chunk_that_inflates_past_its_bound_is_not_read(tmp_path: Path) -> None:
    import zlib

    path = tmp_path / "inflating.h5"
    with h5py.File(path, "w") as h5:
        dataset = h5.create_dataset("kernel", (1024,), "<f4", chunks=(1024,), compression="gzip")
        dataset.id.write_direct_chunk((0,), zlib.compress(bytes(64 << 20), 1))
        h5.create_dataset("fine", data=np.arange(1024, dtype="<f4"), chunks=(256,), compression="gzip")
    with h5py.File(path, "r") as h5:
        assert dataset_digest(h5["kernel"]) is None
        assert read_tree(h5).members["kernel"].digest is None
        assert dataset_digest(h5["fine"]) == value_digest(np.arange(1024, dtype="<f4"))


def test_weights_are_hashed_for_the_rules_in_a_reader_child(monkeypatch: pytest.MonkeyPatch) -> None:
    from keras_share.read.arrays import FileDigests

    monkeypatch.setattr(h5tree, "EAGER_DIGEST_BYTES", 0)
    path = SAMPLES / "shared_dense.keras"
    model_file = read_model(path)
    seen: list[float | None] = []
    monkeypatch.setattr("keras_share.read.arrays.call_with_deadline",
                        lambda function, path, seconds: seen.append(seconds) or {})
    FileDigests(model_file).digests(_all_arrays(path))
    assert seen == [deadline.DEFAULT_TIMEOUT_SECONDS]
