"""keras-share on real public model files (../shared/real_models, see its SOURCES.md).

The files are read from their shared location, never copied into the repository; every test is
skipped when the folder is absent. Expectations are computed independently here, with json,
zipfile and h5py only (no TensorFlow/Keras import), and compared with ``--format json``.
"""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import pytest
from cli_command import keras_share_command

REAL = Path(__file__).resolve().parents[2] / "shared" / "real_models"
FILES = sorted(
    [path for path in REAL.glob("*") if path.suffix in (".h5", ".keras")]
    + [path for path in REAL.glob("extra/*") if path.suffix in (".h5", ".keras")]
) if REAL.is_dir() else []
IDS = [path.relative_to(REAL).as_posix() for path in FILES]

pytestmark = pytest.mark.skipif(not FILES, reason="../shared/real_models is not available")

UNRESOLVED_NOTE = re.compile(r"points at no call|unknown layer|node index", re.IGNORECASE)


@pytest.fixture(scope="module")
def run_output() -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run([*keras_share_command(), "inspect", "--fail-on", "never", "--format", "json", *map(str, FILES)],
                          capture_output=True, text=True, timeout=600)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


@pytest.fixture(scope="module")
def reports(run_output: tuple[int, dict[str, Any], str]) -> dict[str, dict[str, Any]]:
    return {Path(model["file"]).relative_to(REAL).as_posix(): model for model in run_output[1]["models"]}


# ---------------------------------------------------------------- independent readers


def read_config(path: Path) -> dict[str, Any]:
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))
    with h5py.File(path, "r") as h5:
        raw = h5.attrs["model_config"]
    return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)


def read_keras_version(path: Path) -> str:
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("metadata.json"))["keras_version"]
    with h5py.File(path, "r") as h5:
        raw = h5.attrs["keras_version"]
    return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)


def _layers_of(entry: dict[str, Any]) -> list[dict[str, Any]] | None:
    config = entry.get("config")
    if isinstance(config, list):  # Keras < 2.2 Sequential: the bare layer list
        return config
    if isinstance(config, dict) and isinstance(config.get("layers"), list):
        return config["layers"]
    return None


def _name(entry: dict[str, Any]) -> str:
    return entry.get("name") or entry["config"]["name"]


def walk_config(entry: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, entry) of every layer of a model config, nested models included, parents first."""
    for child in _layers_of(entry) or []:
        path = f"{prefix}{_name(child)}"
        yield path, child
        if _layers_of(child) is not None:
            yield from walk_config(child, path + "/")


def stored_datasets(path: Path) -> tuple[set[str], int]:
    """Model weight datasets (as keras-share locations) and the number of optimizer/metrics arrays."""
    weights: set[str] = set()
    optimizer = 0

    def visit(h5: h5py.File, root: str, prefix: str) -> None:
        nonlocal optimizer

        def collect(name: str, obj: Any) -> None:
            nonlocal optimizer
            if not isinstance(obj, h5py.Dataset):
                return
            full = f"{root}/{name}" if root else name
            if full.split("/")[0] in ("optimizer", "metrics", "optimizer_weights"):
                optimizer += 1
            else:
                weights.add(prefix + full)

        h5.visititems(collect) if not root else h5[root].visititems(collect)

    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as stream:
            with h5py.File(stream, "r") as h5:
                visit(h5, "", "model.weights.h5:/")
    else:
        with h5py.File(path, "r") as h5:
            visit(h5, "model_weights", "")
            if "optimizer_weights" in h5:
                visit(h5, "optimizer_weights", "")
            weights = {name for name in weights if not name.startswith("optimizer_weights/")}
    return weights, optimizer


def _layer(report: dict[str, Any], path: str) -> dict[str, Any]:
    matches = [layer for layer in report["layers"] if layer["path"] == path]
    assert len(matches) == 1, f"{path!r} not reported once in {report['file']}"
    return matches[0]


def _shared_paths(report: dict[str, Any]) -> list[str]:
    return [layer["path"] for layer in report["layers"] if layer["shared"]]


# ---------------------------------------------------------------- every file


def test_every_file_is_reported_without_errors(run_output: tuple[int, dict[str, Any], str]) -> None:
    code, document, stderr = run_output
    assert code == 0, stderr
    assert stderr == ""
    assert document["errors"] == []
    assert [Path(model["file"]) for model in document["models"]] == FILES
    assert len(FILES) >= 18


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_calls_match_inbound_nodes(path: Path, reports: dict[str, dict[str, Any]]) -> None:
    """Conformance: layers with more than one inbound node are exactly the layers with calls > 1."""
    report = reports[path.relative_to(REAL).as_posix()]
    config = read_config(path)
    expected = {
        layer_path for layer_path, entry in walk_config(config)
        if isinstance(entry.get("inbound_nodes"), list) and len(entry["inbound_nodes"]) > 1
    }
    assert {layer["path"] for layer in report["layers"] if layer["calls"] > 1} == expected
    for layer_path, entry in walk_config(config):
        nodes = entry.get("inbound_nodes")
        if isinstance(nodes, list) and nodes:
            assert _layer(report, layer_path)["calls"] == len(nodes), layer_path


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_layer_list_and_flags_match_config(path: Path, reports: dict[str, dict[str, Any]]) -> None:
    report = reports[path.relative_to(REAL).as_posix()]
    config = read_config(path)
    walked = list(walk_config(config))
    assert [layer["path"] for layer in report["layers"]] == [layer_path for layer_path, _ in walked]
    for layer_path, entry in walked:
        layer = _layer(report, layer_path)
        assert layer["class_name"] == entry["class_name"], layer_path
        assert layer["trainable_flag"] is entry["config"].get("trainable", True), layer_path
    assert report["model"]["has_graph"] is (_layers_of(config) is not None)
    assert report["keras_version"] == read_keras_version(path)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_weight_locations_match_stored_datasets(path: Path, reports: dict[str, dict[str, Any]]) -> None:
    """Every stored model array is reported exactly once (identity = location); optimizer state apart."""
    report = reports[path.relative_to(REAL).as_posix()]
    stored, optimizer = stored_datasets(path)
    reported = [w["location"] for layer in report["layers"] for w in layer["weights"]]
    same_object = {layer["path"] for layer in report["layers"] if layer["same_as"]}
    if not same_object:
        assert len(reported) == len(set(reported)), "an array is attached to two layers"
    reported += [w["location"] for group in report["unattached_weights"] for w in group["weights"]]
    assert set(reported) == stored
    assert report["summary"]["optimizer_arrays"] == optimizer


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_call_sites_resolve(path: Path, reports: dict[str, dict[str, Any]]) -> None:
    """Every input names a call of its producer (the Keras-2 node index +1 is normalised away)."""
    report = reports[path.relative_to(REAL).as_posix()]
    by_path = {layer["path"]: layer for layer in report["layers"]}
    for layer in report["layers"]:
        for site in layer["call_sites"]:
            for ref in site["inputs"]:
                if ref["call"] is None:
                    # only the input of a Sequential without an InputLayer: the model itself
                    assert ref["layer"] == layer["parent"], (layer["path"], ref)
                    continue
                producer = by_path[ref["layer"]]
                if producer["kind"] == "input":
                    assert ref["call"] == 0
                else:
                    assert 0 <= ref["call"] < producer["calls"], (layer["path"], ref)
    assert not [note for note in report["notes"] if UNRESOLVED_NOTE.search(note)]


# ---------------------------------------------------------------- facts from SOURCES.md


def _calls_consumed(report: dict[str, Any], producer: str) -> list[int]:
    return sorted(ref["call"] for layer in report["layers"] for site in layer["call_sites"]
                  for ref in site["inputs"] if ref["layer"] == producer)


@pytest.mark.parametrize("name", ["attend_triplet_k3.h5", "attend_triplet_k3.keras"])
def test_attend_dense_applied_three_times(name: str, reports: dict[str, dict[str, Any]]) -> None:
    report = reports[name]
    dense = _layer(report, "dense")
    assert (dense["class_name"], dense["kind"], dense["calls"], dense["effective_calls"], dense["shared"]) == (
        "Dense", "layer", 3, 3, True)
    assert _shared_paths(report) == ["dense"]
    assert report["summary"]["naive_params"] == 3 * report["summary"]["unique_params"]


def test_attend_formats_agree(reports: dict[str, dict[str, Any]]) -> None:
    h5, keras = reports["attend_triplet_k3.h5"], reports["attend_triplet_k3.keras"]
    shapes = [[(w["name"], w["shape"]) for w in _layer(report, "dense")["weights"]] for report in (h5, keras)]
    assert shapes[0] == shapes[1] == [("kernel", [512, 512]), ("bias", [512])]
    assert h5["summary"] == keras["summary"]
    for report in (h5, keras):
        inputs = [site["inputs"][0]["layer"] for site in _layer(report, "dense")["call_sites"]]
        assert inputs == ["anchor_input", "positive_input", "negative_input"]


def test_birdsong_nested_encoder_called_three_times(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["birdsong_triplet.h5"]
    model = _layer(report, "model")
    assert (model["kind"], model["calls"], model["effective_calls"], model["shared"]) == ("functional", 3, 3, True)
    inner = [layer for layer in report["layers"] if layer["parent"] == "model"]
    assert len(inner) == 21
    called = [layer for layer in inner if layer["kind"] != "input"]
    assert len(called) == 20
    assert all(layer["calls"] == 1 and layer["effective_calls"] == 3 and layer["shared"] for layer in called)
    assert all(layer["effective_calls"] == 0 for layer in inner if layer["kind"] == "input")
    assert sorted(_shared_paths(report)) == sorted(["model"] + [layer["path"] for layer in called])
    assert _calls_consumed(report, "model") == [0, 1, 2]
    assert report["summary"]["optimizer_arrays"] == 73
    assert report["summary"]["naive_params"] == 3 * report["summary"]["unique_params"]


def test_birdsong_encoder_identity_across_files(reports: dict[str, dict[str, Any]]) -> None:
    triplet, encoder = reports["birdsong_triplet.h5"], reports["birdsong_encoder.h5"]
    assert triplet["summary"]["unique_params"] == encoder["summary"]["unique_params"]
    nested = {layer["name"]: [(w["name"], w["shape"]) for w in layer["weights"]]
              for layer in triplet["layers"] if layer["parent"] == "model"}
    alone = {layer["name"]: [(w["name"], w["shape"]) for w in layer["weights"]] for layer in encoder["layers"]}
    assert nested == alone
    assert sum(len(weights) for weights in alone.values()) == 54


def test_birdsong_weight_bytes_identical() -> None:
    """The premise of the identity test above, checked on the files themselves."""
    def arrays(path: Path, root: str) -> list[bytes]:
        found: list[tuple[str, bytes]] = []
        with h5py.File(path, "r") as h5:
            h5[root].visititems(lambda name, obj: found.append(
                (name.split("/")[-2] + "/" + name.split("/")[-1], obj[()].tobytes()))
                if isinstance(obj, h5py.Dataset) else None)
        return sorted(data for _, data in found)

    assert arrays(REAL / "birdsong_triplet.h5", "model_weights/model") == arrays(
        REAL / "birdsong_encoder.h5", "model_weights")


@pytest.mark.parametrize(
    ("name", "nested", "class_name", "kind", "calls", "inner"),
    [
        ("bigwode_siamese.h5", "model_1", "Model", "functional", 2, 7),
        ("pnnl_siamese.h5", "sequential", "Sequential", "sequential", 2, 11),
        ("speaker_siamese.keras", "functional_4", "Functional", "functional", 2, 6),
        ("birdsong_triplet.h5", "model", "Functional", "functional", 3, 21),
    ],
)
def test_nested_model_shared(name: str, nested: str, class_name: str, kind: str, calls: int, inner: int,
                             reports: dict[str, dict[str, Any]]) -> None:
    report = reports[name]
    layer = _layer(report, nested)
    assert (layer["class_name"], layer["kind"], layer["calls"], layer["shared"]) == (class_name, kind, calls, True)
    children = [child for child in report["layers"] if child["parent"] == nested]
    assert len(children) == inner
    assert all(child["effective_calls"] == calls for child in children if child["kind"] != "input")
    assert _calls_consumed(report, nested) == list(range(calls))
    assert {path.split("/")[0] for path in _shared_paths(report)} == {nested}
    weighted = [child for child in children if child["weights"]]
    assert weighted and all(child["shared"] for child in weighted)
    own = sum(child["params"] for child in children)
    top = sum(other["params"] for other in report["layers"] if other["parent"] == "")
    assert report["summary"]["unique_params"] == own + top
    assert report["summary"]["naive_params"] == calls * own + top


def test_imgsim_subclassed_layer_shared(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["imgsim_siamese.h5"]
    res_net = _layer(report, "res_net")
    assert (res_net["class_name"], res_net["kind"], res_net["calls"], res_net["shared"]) == ("ResNet", "layer", 2, True)
    assert _shared_paths(report) == ["res_net"]
    assert res_net["weights"], "the ResNet's arrays are attached to it despite the double slash in weight_names"
    assert not any("//" in w["name"] or w["name"].startswith("/") for w in res_net["weights"])
    assert _calls_consumed(report, "res_net") == [0, 1]


@pytest.mark.parametrize(
    "name",
    ["onlinesig_siamese.h5", "nnom_mnist_densenet.h5", "fml_seq_cnn_k231.h5", "birdsong_encoder.h5",
     "tabtl_baseline.h5", "reenaeem_transfer_frozen.h5", "extra/fml_qkeras_v3_seq.keras",
     "extra/stine_transfer_seq_k215.h5"],
)
def test_negative_controls_share_nothing(name: str, reports: dict[str, dict[str, Any]]) -> None:
    report = reports[name]
    assert report["model"]["has_graph"]
    assert _shared_paths(report) == []
    assert report["summary"]["shared_layers"] == 0
    assert report["summary"]["unique_params"] == report["summary"]["naive_params"] > 0
    assert all(layer["calls"] <= 1 for layer in report["layers"])


def test_tabtl_transfer_frozen_layers(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["tabtl_transfer_frozen.h5"]
    for frozen in ("dense_6", "dropout_4", "dense_7", "dropout_5"):
        layer = _layer(report, frozen)
        assert layer["trainable_flag"] is False and layer["trainable"] is False, frozen
    assert _layer(report, "dense_8")["trainable"] is True
    baseline = reports["tabtl_baseline.h5"]
    for name in ("dense_6", "dense_7", "dense_8"):
        assert _layer(baseline, name)["trainable"] is True
        assert [w["shape"] for w in _layer(baseline, name)["weights"]] == [
            w["shape"] for w in _layer(report, name)["weights"]]


def test_reenaeem_grafted_transfer(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["reenaeem_transfer_frozen.h5"]
    frozen = [layer["path"] for layer in report["layers"] if not layer["trainable_flag"]]
    assert len(frozen) == 14 and "dense" in frozen
    assert sum(len(layer["weights"]) for layer in report["layers"]) == 24
    assert [layer["path"] for layer in report["layers"] if layer["trainable"] and layer["weights"]] == [
        "dense_10", "dense_11"]
    assert _layer(report, "flatten_5")["call_sites"][0]["inputs"][0]["layer"] == "dense"


def test_onlinesig_keyword_tensor_is_an_input(reports: dict[str, dict[str, Any]]) -> None:
    """SOURCES.md note 7 calls the validation branch dangling, but the file records it as a keyword
    tensor (``validation_embed``) of the L1Dist call; keras-share must see it, and still no sharing."""
    report = reports["onlinesig_siamese.h5"]
    (site,) = _layer(report, "L1_Distance_Layer")["call_sites"]
    assert [(ref["layer"], ref["call"], ref["keyword"]) for ref in site["inputs"]] == [
        ("Dense_layer_input", 0, None), ("Dense_layer_validation", 0, "validation_embed")]
    assert _shared_paths(report) == []


def test_onlinesig_validation_branch_reaches_the_output(reports: dict[str, dict[str, Any]]) -> None:
    """The branch SOURCES.md note 7 calls dangling feeds L1Dist through its keyword tensor: every call reaches the
    output, so each layer runs once."""
    report = reports["onlinesig_siamese.h5"]
    for name in ("LSTM_layer_1_validation", "LSTM_layer_2_validation", "Dense_layer_validation"):
        assert (_layer(report, name)["unreachable_calls"], _layer(report, name)["effective_calls"]) == ([], 1), name


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_every_call_keras_saved_reaches_an_output(path: Path, reports: dict[str, dict[str, Any]]) -> None:
    """Keras saves only the calls of the graph it mapped back from the outputs: none of these files has others."""
    report = reports[path.relative_to(REAL).as_posix()]
    assert [layer["path"] for layer in report["layers"] if layer["unreachable_calls"]] == []


def test_nested_container_subclassed(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["extra/keras_nested_container_subclassed.keras"]
    assert report["model"] == {"name": "nested_dense_model", "class_name": "NestedDenseModel", "kind": "subclassed",
                               "has_graph": False, "trainable_flag": True}
    assert report["layers"] == []
    groups = [group["group"] for group in report["unattached_weights"]]
    assert groups == ["layers/dense", "layers/dense_1", "layers/dense_2", "layers/dense_3"]
    assert all(group["weights"] for group in report["unattached_weights"])
    assert report["summary"]["unique_params"] == report["summary"]["naive_params"] == 3 * 16 + 8 + 2
    assert any("subclassed" in note for note in report["notes"])


def test_bugged_noweights(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["extra/keras_pr_bugged_noweights.keras"]
    assert report["model"]["has_graph"] is False
    assert not any(layer["weights"] for layer in report["layers"])
    assert all(not group["weights"] for group in report["unattached_weights"])
    assert report["summary"]["unique_params"] == 0
    assert report["summary"]["optimizer_arrays"] > 0
    assert report["summary"]["optimizer_arrays"] == stored_datasets(REAL / "extra/keras_pr_bugged_noweights.keras")[1]


def test_shared_object_id_is_not_sharing(reports: dict[str, dict[str, Any]]) -> None:
    """Configs with many shared_object_id entries (DTypePolicy, initializers) report no extra sharing."""
    for name, shared in [("extra/fml_qkeras_v3_seq.keras", []), ("onlinesig_siamese.h5", []),
                         ("attend_triplet_k3.keras", ["dense"])]:
        assert "shared_object_id" in json.dumps(read_config(REAL / name))
        assert _shared_paths(reports[name]) == shared, name


def _raw_node_indices(config: dict[str, Any], producer: str) -> list[int]:
    """Node indices that the top model's Keras-2 ``inbound_nodes`` use for ``producer``."""
    found: list[int] = []

    def visit(value: Any) -> None:
        if isinstance(value, list):
            if len(value) in (3, 4) and value[0] == producer and isinstance(value[1], int):
                found.append(value[1])
                return
            for item in value:
                visit(item)

    for entry in _layers_of(config) or []:
        visit(entry.get("inbound_nodes"))
    return sorted(found)


@pytest.mark.parametrize(
    ("name", "nested", "calls"),
    [("bigwode_siamese.h5", "model_1", 2), ("birdsong_triplet.h5", "model", 3), ("pnnl_siamese.h5", "sequential", 2)],
)
def test_keras2_node_index_offset_is_normalised(name: str, nested: str, calls: int,
                                                reports: dict[str, dict[str, Any]]) -> None:
    config = read_config(REAL / name)
    assert _raw_node_indices(config, nested) == list(range(1, calls + 1))  # the file's 1..N (SOURCES note 1)
    report = reports[name]
    assert _calls_consumed(report, nested) == list(range(calls))  # keras-share's 0..N-1
    refs = [ref for layer in report["layers"] for site in layer["call_sites"] for ref in site["inputs"]]
    assert all(ref["call"] is not None for ref in refs)
    assert not [note for note in report["notes"] if UNRESOLVED_NOTE.search(note)]


def test_keras3_nested_indices_are_zero_based(reports: dict[str, dict[str, Any]]) -> None:
    config = read_config(REAL / "speaker_siamese.keras")
    histories = re.findall(r'"keras_history": \[\s*"functional_4",\s*(\d+)', json.dumps(config))
    assert sorted(map(int, histories)) == [0, 1]
    assert _calls_consumed(reports["speaker_siamese.keras"], "functional_4") == [0, 1]


def test_rich_report_of_all_files_fits_80_columns() -> None:
    proc = subprocess.run([*keras_share_command(), "inspect", "--fail-on", "never", "--all-layers", *map(str, FILES)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout
    assert [line for line in proc.stdout.splitlines() if len(line) > 80] == []
    for path in FILES:
        assert str(path) in proc.stdout


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_a_real_file_read_in_a_reader_child_is_the_file_read_here(path: Path) -> None:
    """What comes back from the reader child is what one process reads (the path the Keras comparisons of
    tests/live_truth.py use)."""
    from keras_share.read.detect import read_model

    assert read_model(path) == read_model(path, timeout=None)
