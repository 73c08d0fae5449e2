"""``keras-share diff OLD NEW`` and ``keras_share.diff``: what changed between two saved models, on files written
by real Keras (built once per session, a few tiny models), its JSON against keras_share/schema/diff-v1.json, its
exit codes, and docs/diff.md against the ``ChangeKind`` vocabulary."""

from __future__ import annotations

import copy
import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from cli_command import run_cli
from conftest import ModelStore

import keras_share
from keras_share.analysis.diff import Change, ModelDiff, compare
from keras_share.analysis.digests import NoDigests
from keras_share.errors import ReadError
from keras_share.pipeline import inspect_file
from keras_share.render.diff import SHOWN_CHANGES, DiffFormatter, MarkdownDiffFormatter, TerminalDiffFormatter
from keras_share.vocabulary import ChangeKind

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "diff.md"


def kinds(diff: ModelDiff, path: str | None = None) -> set[ChangeKind]:
    """The kinds of change found, on the layer at ``path`` or anywhere."""
    return {change.kind for change in diff.changes if path is None or change.path == path}


# --------------------------------------------------------------------------
# The saved pairs, each built with Keras 3 once per session.
# --------------------------------------------------------------------------


def _two_inputs(K: Any) -> tuple[Any, Any]:
    return K.Input((4,), name="a"), K.Input((4,), name="b")


def _shared(K: Any) -> Any:
    """One Dense applied to two inputs, then Add and a head."""
    a, b = _two_inputs(K)
    shared = K.layers.Dense(3, name="shared_d")
    return K.Model([a, b], K.layers.Dense(1, name="head")(K.layers.Add(name="add")([shared(a), shared(b)])))


def _copies_of(K: Any, original: Any) -> Any:
    """``_shared`` converted by a tool that lost the sharing: the shared Dense replaced by two copies of it."""
    a, b = _two_inputs(K)
    first, second = K.layers.Dense(3, name="shared_d"), K.layers.Dense(3, name="shared_d_copy")
    head = K.layers.Dense(1, name="head")
    model = K.Model([a, b], head(K.layers.Add(name="add")([first(a), second(b)])))
    for layer in (first, second):
        layer.set_weights(original.get_layer("shared_d").get_weights())
    head.set_weights(original.get_layer("head").get_weights())
    return model


def _permuted(K: Any, original: Any) -> Any:
    """``_shared`` with the calls of the shared Dense permuted (TF#50322): call 0 now takes ``b``, so Add gets
    its two inputs swapped."""
    a, b = _two_inputs(K)
    shared, head = K.layers.Dense(3, name="shared_d"), K.layers.Dense(1, name="head")
    on_b = shared(b)
    on_a = shared(a)
    model = K.Model([a, b], head(K.layers.Add(name="add")([on_b, on_a])))
    shared.set_weights(original.get_layer("shared_d").get_weights())
    head.set_weights(original.get_layer("head").get_weights())
    return model


def _renamed(K: Any, original: Any) -> Any:
    """``_shared`` with its head renamed, weights kept."""
    a, b = _two_inputs(K)
    shared, head = K.layers.Dense(3, name="shared_d"), K.layers.Dense(1, name="output_head")
    model = K.Model([a, b], head(K.layers.Add(name="add")([shared(a), shared(b)])))
    shared.set_weights(original.get_layer("shared_d").get_weights())
    head.set_weights(original.get_layer("head").get_weights())
    return model


def _with_custom_layer(K: Any) -> Any:
    """A model with a registered custom layer (a Keras 3 ``.h5`` file names its class ``Custom>Scale``)."""
    @K.saving.register_keras_serializable(package="Custom")
    class Scale(K.layers.Layer):
        def call(self, inputs: Any) -> Any:
            return inputs * 2.0

    x = K.Input((4,), name="x")
    return K.Model(x, K.layers.Dense(1, name="head")(Scale(name="scale")(x)))


@pytest.fixture(scope="module")
def saved(keras3: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every file of this module, by name: the shared model, its conversions and its re-save by Keras; a transfer
    model, then with its frozen layer's weights changed, then its trainable head's too."""
    K = keras3
    folder = tmp_path_factory.mktemp("diff")
    K.utils.set_random_seed(0)
    original = _shared(K)
    paths = {name: folder / f"{name}.keras" for name in ("shared", "copies", "permuted", "renamed")}
    original.save(paths["shared"])
    _copies_of(K, original).save(paths["copies"])
    _permuted(K, original).save(paths["permuted"])
    _renamed(K, original).save(paths["renamed"])
    paths["resaved"] = folder / "resaved.keras"
    K.models.load_model(paths["shared"]).save(paths["resaved"])
    x = K.Input((4,), name="x")
    feature = K.layers.Dense(3, name="feature")
    feature.trainable = False
    transfer = K.Model(x, K.layers.Dense(2, name="new_head")(feature(x)))
    paths["frozen"] = folder / "frozen.keras"
    transfer.save(paths["frozen"])
    feature.set_weights([weight + 1 for weight in feature.get_weights()])
    paths["frozen_changed"] = folder / "frozen_changed.keras"
    transfer.save(paths["frozen_changed"])
    paths["custom_h5"], paths["custom_keras"] = folder / "custom.h5", folder / "custom.keras"
    custom = _with_custom_layer(K)
    for path in (paths["custom_h5"], paths["custom_keras"]):
        custom.save(path)
    head = transfer.get_layer("new_head")
    head.set_weights([weight * 2 + 1 for weight in head.get_weights()])
    paths["head_changed"] = folder / "head_changed.keras"
    transfer.save(paths["head_changed"])
    return paths


# --------------------------------------------------------------------------
# What the comparison finds.
# --------------------------------------------------------------------------


def test_a_conversion_that_replaced_a_shared_layer_by_two_copies_loses_its_sharing(saved: dict[str, Path]) -> None:
    diff = keras_share.diff(saved["shared"], saved["copies"])
    lost = [change for change in diff.changes if change.kind is ChangeKind.SHARING_LOST]
    assert [change.path for change in lost] == ["shared_d"]
    assert lost[0].before["shared"] and not lost[0].after["shared"]
    assert {ChangeKind.LAYER_ADDED} == kinds(diff, "shared_d_copy")
    assert diff.changed


def test_the_copies_keep_the_shared_layers_weights(saved: dict[str, Path]) -> None:
    diff = keras_share.diff(saved["shared"], saved["copies"])
    assert {"shared_d", "head"} <= set(diff.unchanged_weights)


def test_permuted_calls_of_a_shared_layer_are_a_wiring_change(saved: dict[str, Path]) -> None:
    diff = keras_share.diff(saved["shared"], saved["permuted"])
    wiring = [change for change in diff.changes if change.kind is ChangeKind.WIRING_CHANGED]
    assert [(change.path, change.detail) for change in wiring] == [("shared_d", "the same calls in another order")]
    assert [call[0]["layer"] for call in wiring[0].before] == ["a", "b"]
    assert [call[0]["layer"] for call in wiring[0].after] == ["b", "a"]


def test_a_layer_renamed_with_its_weights_is_one_rename(saved: dict[str, Path]) -> None:
    diff = keras_share.diff(saved["shared"], saved["renamed"])
    assert [(change.kind, change.path, change.before) for change in diff.changes] == [
        (ChangeKind.LAYER_RENAMED, "output_head", "head")]
    assert "output_head" in diff.unchanged_weights


def test_a_fine_tune_that_unfroze_a_transferred_layer_changes_its_trainability(model_store: ModelStore) -> None:
    diff = keras_share.diff(model_store.path("transfer_frozen", 3, "keras"),
                            model_store.path("transfer_unfrozen", 3, "keras"))
    unfrozen = [change for change in diff.changes if change.kind is ChangeKind.TRAINABILITY_CHANGED]
    assert [(change.path, change.before, change.after) for change in unfrozen] == [("feature", False, True)]
    assert diff.changed


def test_a_frozen_layer_whose_weights_changed_is_flagged(saved: dict[str, Path]) -> None:
    diff = keras_share.diff(saved["frozen"], saved["frozen_changed"])
    assert kinds(diff) == {ChangeKind.FROZEN_WEIGHTS_CHANGED}
    assert [change.path for change in diff.changes] == ["feature"]
    assert diff.changes[0].detail == "2 of 2 arrays differ"


def test_a_trainable_layer_whose_weights_changed_is_a_plain_weights_change(saved: dict[str, Path]) -> None:
    diff = keras_share.diff(saved["frozen_changed"], saved["head_changed"])
    assert [(change.kind, change.path) for change in diff.changes] == [(ChangeKind.WEIGHTS_CHANGED, "new_head")]
    assert "feature" in diff.unchanged_weights


@pytest.mark.parametrize("generation", [3, 2])
@pytest.mark.parametrize("case", ["shared_dense", "nested_encoder", "frozen_nested_reenabled", "mha_keywords"])
def test_the_same_model_saved_as_h5_and_as_keras_shows_no_change(model_store: ModelStore, case: str,
                                                                   generation: int) -> None:
    diff = keras_share.diff(model_store.path(case, generation, "h5"), model_store.path(case, generation, "keras"))
    assert diff.changes == []
    assert not diff.changed


def test_a_custom_class_written_as_its_registered_name_in_h5_is_the_same_class(saved: dict[str, Path]) -> None:
    diff = keras_share.diff(saved["custom_h5"], saved["custom_keras"])
    assert diff.old.graph.layers["scale"].class_name == "Custom>Scale"  # what makes this case
    assert diff.changes == []


def test_a_resave_that_changed_nothing_exits_0(saved: dict[str, Path]) -> None:
    result = run_cli("diff", saved["shared"], saved["resaved"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing that matters changed" in result.stdout


def test_a_change_that_matters_exits_1(saved: dict[str, Path]) -> None:
    result = run_cli("diff", saved["shared"], saved["copies"])
    assert result.returncode == 1, result.stderr
    assert "sharing-lost" in result.stdout


def test_arrays_that_could_not_be_hashed_are_listed_but_do_not_fail_the_diff() -> None:
    old, new = (inspect_file(REPO / "sample_models" / name) for name in ("shared_dense.keras", "shared_dense.h5"))
    diff = compare(old, new, NoDigests(), NoDigests())
    assert {change.path for change in diff.changes} == {"shared_dense", "score"}
    assert kinds(diff) == {ChangeKind.WEIGHTS_NOT_COMPARED}
    assert not diff.changed and diff.unchanged_weights == []


def test_an_added_nested_model_is_one_change_counting_the_params_of_the_layers_in_it() -> None:
    diff = keras_share.diff(REPO / "sample_models" / "shared_dense.keras", REPO / "sample_models" / "nested_encoder.keras")
    added = {change.path: change.after for change in diff.changes if change.kind is ChangeKind.LAYER_ADDED}
    inner = [layer for layer in diff.new.layers if layer.layer.path.startswith("encoder/")]
    assert inner and not any(layer.layer.path in added for layer in inner)
    assert added["encoder"] == {"class_name": "Functional", "params": sum(layer.param_count for layer in inner)}


def test_every_change_kind_but_weights_not_compared_matters() -> None:
    assert [kind for kind in ChangeKind if not kind.matters] == [ChangeKind.WEIGHTS_NOT_COMPARED]


# --------------------------------------------------------------------------
# Every verdict against the models Keras loads from the same files.
# --------------------------------------------------------------------------

LIVE_PAIRS = [("shared", "copies"), ("shared", "permuted"), ("shared", "renamed"), ("shared", "resaved"),
              ("frozen", "frozen_changed"), ("frozen_changed", "head_changed")]


def _live_layer(model: Any, path: str) -> Any:
    layer = model
    for name in path.split("/"):
        layer = layer.get_layer(name)
    return layer


def _live_facts(model: Any, path: str) -> tuple[list[bytes], bool, int]:
    """A loaded layer's arrays (sorted bytes: the order is the format's), whether it trains, and its calls."""
    import numpy as np

    layer = _live_layer(model, path)
    arrays = sorted(np.asarray(weight).tobytes() + str(np.asarray(weight).shape).encode() for weight in layer.get_weights())
    trainable = {id(variable) for variable in model.trainable_weights}
    trains = any(id(variable) in trainable for variable in layer.weights)
    return arrays, trains, len(layer._inbound_nodes)


def _assert_agrees_with_keras(keras3: Any, old_file: Path, new_file: Path) -> None:
    """Every verdict of the diff on a layer of both files holds for the models Keras loads from them."""
    diff = keras_share.diff(old_file, new_file)
    old, new = keras3.models.load_model(old_file), keras3.models.load_model(new_file)
    renamed = {change.path: change.before for change in diff.changes if change.kind is ChangeKind.LAYER_RENAMED}
    for layer in diff.new.layers:
        path = layer.layer.path
        if layer.layer.kind == "input" or renamed.get(path, path) not in diff.old.graph.layers:
            continue
        (old_arrays, old_trains, old_calls), (new_arrays, new_trains, new_calls) = \
            _live_facts(old, renamed.get(path, path)), _live_facts(new, path)
        found = kinds(diff, path)
        assert (path in diff.unchanged_weights) == (bool(new_arrays) and old_arrays == new_arrays), path
        assert bool(found & {ChangeKind.WEIGHTS_CHANGED, ChangeKind.FROZEN_WEIGHTS_CHANGED}) == \
            (old_arrays != new_arrays), path
        assert (ChangeKind.FROZEN_WEIGHTS_CHANGED in found) == (old_arrays != new_arrays and not new_trains), path
        assert (ChangeKind.TRAINABILITY_CHANGED in found) == (bool(new_arrays) and old_trains != new_trains), path
        assert (ChangeKind.SHARING_LOST in found) == (old_calls > 1 >= new_calls), path
        assert (ChangeKind.CALLS_CHANGED in found) == (old_calls != new_calls), path


@pytest.mark.parametrize("pair", LIVE_PAIRS, ids="-".join)
def test_every_verdict_on_a_layer_agrees_with_the_models_keras_loads(keras3: Any, saved: dict[str, Path],
                                                                       pair: tuple[str, str]) -> None:
    _assert_agrees_with_keras(keras3, saved[pair[0]], saved[pair[1]])


def test_the_unfrozen_transferred_layer_trains_in_the_model_keras_loads(keras3: Any, model_store: ModelStore) -> None:
    _assert_agrees_with_keras(keras3, model_store.path("transfer_frozen", 3, "keras"),
                              model_store.path("transfer_unfrozen", 3, "keras"))


def test_the_permuted_model_keras_loads_calls_its_shared_layer_on_b_first(keras3: Any, saved: dict[str, Path]) -> None:
    for name, first in (("shared", "a"), ("permuted", "b")):
        node = _live_layer(keras3.models.load_model(saved[name]), "shared_d")._inbound_nodes[0]
        assert node.input_tensors[0]._keras_history.operation.name == first


# --------------------------------------------------------------------------
# Unreadable inputs, usage.
# --------------------------------------------------------------------------


def test_an_unreadable_input_exits_3_with_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    (tmp_path / "fine.keras").write_bytes(b"not a zip either")
    result = run_cli("diff", "broken.keras", "missing.h5", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("keras-share: error: broken.keras: "), result.stderr
    assert lines[1] == "keras-share: error: missing.h5: no such file or folder"


def test_file_names_that_look_like_options_are_read_as_old_and_new_in_order(tmp_path: Path) -> None:
    samples = REPO / "sample_models"
    (tmp_path / "--output=victim").write_bytes((samples / "shared_dense.keras").read_bytes())
    (tmp_path / "-fjson").write_bytes((samples / "nested_encoder.keras").read_bytes())
    result = run_cli("diff", "--output=victim", "-fjson", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("OLD --output=victim (keras, Keras 3.15.1)\nNEW -fjson (keras, ")
    assert not (tmp_path / "victim").exists()


def test_the_api_raises_the_read_error_of_an_unreadable_input(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="missing.keras"):
        keras_share.diff(tmp_path / "missing.keras", tmp_path / "missing.keras")


def test_a_format_diff_does_not_write_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("diff", "--format", "sarif", "a.keras", "b.keras", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "keras-share: usage error: --format sarif is not one of rich, json, markdown for diff"


def test_diff_help_documents_its_exit_codes() -> None:
    text = " ".join(run_cli("diff", "--help").stdout.split())
    assert re.search(r"keras-share diff \[OPTIONS\] \{?OLD\}? \{?NEW\}?", text), text
    for meaning in ("0 nothing that matters changed", "1 something did", "2 usage error", "3 an input could not be read",
                    "4 the report could not be written"):
        assert meaning in text


def test_output_writes_the_report_to_a_file(tmp_path: Path) -> None:
    samples = REPO / "sample_models"
    result = run_cli("diff", "--format", "markdown", "-o", tmp_path / "diff.md", samples / "shared_dense.keras",
                     samples / "shared_dense.h5")
    assert (result.returncode, result.stdout) == (0, "")
    assert (tmp_path / "diff.md").read_text(encoding="utf-8").startswith("# keras-share diff\n")


# --------------------------------------------------------------------------
# Output formats.
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def closed_schema() -> Any:
    """keras_share/schema/diff-v1.json closed (no key, no kind beyond those it lists)."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((files("keras_share") / "schema" / "diff-v1.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    closed = copy.deepcopy(schema)
    stack: list[Any] = [closed]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "object":
                node["additionalProperties"] = False
            if "anyOf" in node and node["anyOf"][-1] == {"type": "string"}:
                node["enum"] = node.pop("anyOf")[0]["enum"]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return jsonschema.Draft202012Validator(closed)


@pytest.mark.parametrize("pair", [("shared", "copies"), ("shared", "permuted"), ("shared", "renamed"),
                                  ("frozen", "frozen_changed"), ("shared", "frozen")])
def test_json_output_validates_against_the_diff_schema(saved: dict[str, Path], closed_schema: Any,
                                                       pair: tuple[str, str]) -> None:
    document = keras_share.to_dict(keras_share.diff(saved[pair[0]], saved[pair[1]]))
    assert [f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in closed_schema.iter_errors(document)] == []


def test_the_schema_rejects_a_change_whose_before_does_not_fit_its_kind(closed_schema: Any) -> None:
    change = {"kind": "trainability-changed", "path": "x", "matters": True, "before": "no", "after": True, "detail": ""}
    assert not closed_schema.is_valid({"schema_version": 1, "tool": {"name": "keras-share", "version": "1"},
                                       "old": {"file": "a", "format": "keras", "keras_version": None, "params": 0},
                                       "new": {"file": "b", "format": "keras", "keras_version": None, "params": 0},
                                       "changed": True, "params_delta": 0, "changes": [change],
                                       "unchanged_weights": [], "notes": []})


def test_format_json_prints_to_dict_of_the_api_diff(saved: dict[str, Path]) -> None:
    result = run_cli("diff", "--format", "json", saved["shared"], saved["copies"])
    assert json.loads(result.stdout) == keras_share.to_dict(keras_share.diff(saved["shared"], saved["copies"]))


def test_to_json_writes_one_line_per_change(saved: dict[str, Path]) -> None:
    diff = keras_share.diff(saved["shared"], saved["copies"])
    lines = [line.strip().rstrip(",") for line in keras_share.to_json(diff).splitlines()]
    assert [json.loads(line)["kind"] for line in lines if line.startswith('{"kind"')] == \
        [str(change.kind) for change in diff.changes]


def test_markdown_output_is_a_table_of_changes_for_a_pull_request(saved: dict[str, Path]) -> None:
    text = MarkdownDiffFormatter().format(keras_share.diff(saved["shared"], saved["copies"]))
    assert text.startswith("# keras-share diff\n")
    assert re.search(r"^\| sharing-lost \| `shared_d` \| sharing lost: shared \(2 calls\) -> not shared \(1 call\) "
                     r"\| yes \|$", text, re.MULTILINE), text


@pytest.mark.parametrize("formatter", [MarkdownDiffFormatter(), TerminalDiffFormatter(width=200)], ids=["markdown", "rich"])
def test_human_formats_list_the_first_changes_and_count_the_rest(formatter: DiffFormatter) -> None:
    report = inspect_file(REPO / "sample_models" / "shared_dense.keras")
    many = [Change(ChangeKind.WEIGHTS_CHANGED, f"layer_{number}", [], [], "") for number in range(SHOWN_CHANGES + 7)]
    text = formatter.format(ModelDiff(report, report, many))
    assert re.search(rf"\blayer_{SHOWN_CHANGES - 1}\b", text) and not re.search(rf"\blayer_{SHOWN_CHANGES}\b", text)
    assert "and 7 more changes (--format json lists them all)" in text


def test_the_diff_repr_names_both_files_and_the_verdict(saved: dict[str, Path]) -> None:
    diff = keras_share.diff(saved["shared"], saved["resaved"])
    expected = f"<ModelDiff {str(saved['shared'])!r} -> {str(saved['resaved'])!r}: 0 changes, nothing that matters changed>"
    assert repr(diff) == expected


def test_docs_describe_every_change_kind_and_whether_it_matters() -> None:
    text = DOCS.read_text(encoding="utf-8")
    documented = dict(re.findall(r"^### `([a-z-]+)` \(matters: (yes|no)\)$", text, re.MULTILINE))
    assert documented == {str(kind): "yes" if kind.matters else "no" for kind in ChangeKind}
