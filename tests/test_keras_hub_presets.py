"""KerasHub presets, built with keras-hub itself (nothing downloaded): the static report of each preset folder
gives the tie status, unique parameters, trainability and shared layers of the live backbone that saved it.

Every backbone is tiny (vocabulary 40, hidden 8; BART and T5 apply their token embedding to the encoder and the
decoder, EdRec its plain Embedding) and saved twice, in one ``model.weights.h5`` and sharded (``max_shard_size``
of about 2 KB: one shard per few layers). The presets are built once per session.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from cli_command import keras_share_command

from keras_share.analysis.report import ModelReport
from keras_share.api import inspect

SHARD_GB = 0.000002
"""About 2 KB per shard: every preset below is split over several."""
FORMS = ("single", "sharded")


class Built(NamedTuple):
    """A live backbone and the preset folders it was saved to, one per form."""

    backbone: Any
    folders: dict[str, Path]


def _llama(hub: Any, tie: bool) -> Any:
    return hub.models.LlamaBackbone(vocabulary_size=40, num_layers=2, num_query_heads=2, num_key_value_heads=1,
                                    hidden_dim=8, intermediate_dim=16, tie_word_embeddings=tie)


def _albert(hub: Any) -> Any:
    return hub.models.AlbertBackbone(vocabulary_size=40, num_layers=4, num_heads=2, embedding_dim=4, hidden_dim=8,
                                     intermediate_dim=16, num_groups=2, num_inner_repetitions=2, max_sequence_length=16)


def _frozen(hub: Any) -> Any:
    backbone = _albert(hub)
    backbone.trainable = False
    return backbone


BUILDERS = {
    "gpt2": lambda hub: hub.models.GPT2Backbone(vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=8,
                                               intermediate_dim=16, max_sequence_length=16),
    "gemma": lambda hub: hub.models.GemmaBackbone(vocabulary_size=40, num_layers=2, num_query_heads=2,
                                                 num_key_value_heads=1, hidden_dim=8, intermediate_dim=16, head_dim=4),
    "llama_tied": lambda hub: _llama(hub, True),
    "llama_untied": lambda hub: _llama(hub, False),
    "mistral": lambda hub: hub.models.MistralBackbone(vocabulary_size=40, num_layers=2, num_query_heads=2,
                                                     num_key_value_heads=1, hidden_dim=8, intermediate_dim=16),
    "albert": _albert,
    "frozen_albert": _frozen,
    "bart": lambda hub: hub.models.BartBackbone(vocabulary_size=40, num_layers=1, num_heads=2, hidden_dim=8,
                                               intermediate_dim=16, max_sequence_length=16),
    "t5_untied": lambda hub: hub.models.T5Backbone(vocabulary_size=40, num_layers=1, num_heads=2, hidden_dim=8,
                                                  intermediate_dim=16, tie_embedding_weights=False),
    "edrec": lambda hub: hub.models.EdRecBackbone(vocab_size=40, num_layers_enc=1, num_layers_dec=1, hidden_dim=8,
                                                 intermediate_dim=16, num_heads=2),
}
CASES = [(name, form) for name in BUILDERS for form in FORMS]


@pytest.fixture(scope="session")
def keras_hub(keras3: Any) -> Any:
    """The keras_hub module, or a skip saying why."""
    return pytest.importorskip("keras_hub", reason="keras-hub is not installed (pip install keras-hub: the test extra)")


@pytest.fixture(scope="session")
def presets(keras_hub: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """Every backbone of ``BUILDERS``, saved as a preset folder in each form."""
    root = tmp_path_factory.mktemp("presets")
    built = {}
    for name, build in BUILDERS.items():
        backbone = build(keras_hub)
        folders = {"single": root / name, "sharded": root / f"{name}_sharded"}
        backbone.save_to_preset(str(folders["single"]))
        backbone.save_to_preset(str(folders["sharded"]), max_shard_size=SHARD_GB)
        built[name] = Built(backbone, folders)
    return built


@pytest.fixture(scope="session")
def reports(presets: dict[str, Built]) -> dict[tuple[str, str], ModelReport]:
    """The static report of every preset folder, with findings."""
    return {(name, form): inspect(folder) for name, built in presets.items() for form, folder in built.folders.items()}


def _live_shared(backbone: Any) -> set[str]:
    """Names of the backbone's layers applied more than once in its Functional graph."""
    return {layer.name for layer in backbone.layers if len(layer._inbound_nodes) > 1}


def _trainable_params(backbone: Any) -> int:
    return sum(math.prod(variable.shape) for variable in backbone.trainable_weights)


@pytest.mark.parametrize(("name", "form"), CASES)
def test_tie_status_is_the_live_backbones(name: str, form: str, presets: dict[str, Built],
                                          reports: dict[tuple[str, str], ModelReport]) -> None:
    report = reports[name, form]
    assert report.summary.tied_embeddings is getattr(presets[name].backbone.token_embedding, "tie_weights", None)
    assert report.preset is not None and report.preset.sharded is (form == "sharded")


@pytest.mark.parametrize(("name", "form"), CASES)
def test_unique_params_are_the_live_backbones(name: str, form: str, presets: dict[str, Built],
                                              reports: dict[tuple[str, str], ModelReport]) -> None:
    assert reports[name, form].summary.unique_params == presets[name].backbone.count_params()


@pytest.mark.parametrize(("name", "form"), CASES)
def test_trainable_params_are_the_live_backbones(name: str, form: str, presets: dict[str, Built],
                                                 reports: dict[tuple[str, str], ModelReport]) -> None:
    report = reports[name, form]
    trainable = sum(layer.param_count for layer in report.layers if layer.trainable)
    assert trainable == _trainable_params(presets[name].backbone)


@pytest.mark.parametrize(("name", "form"), CASES)
def test_shared_layers_are_the_live_backbones(name: str, form: str, presets: dict[str, Built],
                                              reports: dict[tuple[str, str], ModelReport]) -> None:
    report = reports[name, form]
    shared = {layer.layer.name for layer in report.layers if layer.shared and layer.layer.parent == ""}
    assert shared == _live_shared(presets[name].backbone)


def test_albert_groups_run_num_layers_over_num_groups_times(presets: dict[str, Built],
                                                            reports: dict[tuple[str, str], ModelReport]) -> None:
    report = reports["albert", "single"]
    backbone = presets["albert"].backbone
    calls = {layer.layer.name: layer.effective_calls for layer in report.layers if layer.layer.parent == ""}
    for group in backbone.transformer_layers:
        for layer in group:
            assert calls[layer.name] == len(layer._inbound_nodes) == 2


def test_layers_inside_a_shared_albert_group_are_shared_through_it(reports: dict[tuple[str, str], ModelReport]) -> None:
    report = reports["albert", "single"]
    inner = [layer for layer in report.layers
             if layer.layer.weights and layer.layer.path.startswith("layers/transformer_encoder")]
    assert inner and all(layer.shared and layer.shared_via == "/".join(layer.layer.path.split("/")[:2])
                         for layer in inner)


def test_a_frozen_backbone_freezes_every_layer(reports: dict[tuple[str, str], ModelReport]) -> None:
    report = reports["frozen_albert", "sharded"]
    assert report.layers and not any(layer.trainable for layer in report.layers)


def test_a_tied_llama_preset_is_a_tie_config_mismatch_error(presets: dict[str, Built],
                                                            reports: dict[tuple[str, str], ModelReport],
                                                            keras_hub: Any) -> None:
    for form in FORMS:
        findings = [finding for finding in reports["llama_tied", form].findings if finding.rule == "KS108"]
        assert len(findings) == 1 and findings[0].severity == "error"
        assert '"tie_word_embeddings": true' in findings[0].message
    with pytest.raises(ValueError, match="reverse_embeddings"):
        keras_hub.models.Backbone.from_preset(str(presets["llama_tied"].folders["single"]))


def test_no_tie_config_mismatch_where_reloading_builds_the_stored_tie(reports: dict[tuple[str, str], ModelReport]) -> None:
    flagged = {name for (name, _), report in reports.items() if any(f.rule == "KS108" for f in report.findings)}
    assert flagged == {"llama_tied"}


def test_the_tie_config_fix_loads_and_clears_the_finding(presets: dict[str, Built], keras_hub: Any,
                                                         tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "llama_fixed"
    shutil.copytree(presets["llama_tied"].folders["sharded"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["config"]["tie_word_embeddings"] = True
    (folder / "config.json").write_text(json.dumps(config))
    report = inspect(folder)
    assert not [finding for finding in report.findings if finding.rule == "KS108"]
    reloaded = keras_hub.models.Backbone.from_preset(str(folder))
    assert reloaded.token_embedding.tie_weights and reloaded.count_params() == report.summary.unique_params


def test_tied_embedding_is_one_tie_group(reports: dict[tuple[str, str], ModelReport]) -> None:
    preset = reports["gemma", "single"].preset
    assert preset is not None and len(preset.tie_groups) == 1
    assert preset.tie_groups[0].uses == ["token embedding", "output projection (its transpose)"]
    assert reports["mistral", "single"].preset.tie_groups == []  # type: ignore[union-attr]


def test_stored_layer_names_are_reported_per_weight_group(reports: dict[tuple[str, str], ModelReport]) -> None:
    preset = reports["gpt2", "sharded"].preset
    assert preset is not None and preset.facts.group_names["layers/reversible_embedding"] == "token_embedding"


def test_json_report_carries_the_tie_and_the_preset(presets: dict[str, Built]) -> None:
    import subprocess

    folder = presets["mistral"].folders["sharded"]
    proc = subprocess.run([*keras_share_command(), "inspect", "--format", "json", str(folder)],
                          capture_output=True, text=True, timeout=120)
    model = json.loads(proc.stdout)["models"][0]
    assert model["summary"]["tied_embeddings"] is False
    assert model["preset"]["backbone_class"] == "MistralBackbone" and model["preset"]["sharded"] is True


def test_a_zip_of_the_preset_layout_reads_as_its_folder(presets: dict[str, Built],
                                                        reports: dict[tuple[str, str], ModelReport],
                                                        tmp_path: Path) -> None:
    archive = tmp_path / "gemma.keras"
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in sorted(presets["gemma"].folders["single"].iterdir()):
            zipped.write(file, file.name)
    report = inspect(archive)
    folder = reports["gemma", "single"]
    assert (report.summary.tied_embeddings, report.summary.unique_params) == (True, folder.summary.unique_params)
    assert report.preset is not None and report.preset.backbone_class == "GemmaBackbone"


def test_task_head_and_its_weights_are_read(keras_hub: Any, presets: dict[str, Built], tmp_path: Path) -> None:
    backbone = presets["albert"].backbone
    task = keras_hub.models.AlbertTextClassifier(backbone=backbone, num_classes=3, preprocessor=None)
    task.save_to_preset(str(tmp_path / "task"))
    report = inspect(tmp_path / "task")
    assert report.preset is not None and report.preset.task_class == "AlbertTextClassifier"
    assert report.preset.task_params == task.count_params() - backbone.count_params()


def test_lora_file_rank_and_targets_match_the_adapted_layers(keras_hub: Any, tmp_path: Path) -> None:
    backbone = _llama(keras_hub, False)
    backbone.enable_lora(rank=2)
    backbone.save_to_preset(str(tmp_path / "lora"))
    backbone.save_lora_weights(str(tmp_path / "lora" / "adapter.lora.h5"))
    report = inspect(tmp_path / "lora")
    assert report.preset is not None
    (lora,) = report.preset.facts.lora
    weighted = [layer for layer in backbone._flatten_layers(include_self=False) if layer.weights]
    assert lora.rank == 2
    assert {int(target.index) for target in lora.targets} == set(backbone._lora_enabled_layers)
    for target in lora.targets:
        assert target.kernel_a is not None and target.kernel_b is not None
        assert target.kernel_a[:-1] + target.kernel_b[1:] == tuple(weighted[int(target.index)].kernel.shape)
    assert report.preset.lora_notes == []


def test_metadata_counting_unsaved_lora_kernels_is_a_parameter_count_mismatch(keras_hub: Any, tmp_path: Path) -> None:
    backbone = _llama(keras_hub, False)
    backbone.enable_lora(rank=2)
    backbone.save_to_preset(str(tmp_path / "lora"))
    report = inspect(tmp_path / "lora")
    reloaded = keras_hub.models.Backbone.from_preset(str(tmp_path / "lora"))
    assert report.summary.unique_params == reloaded.count_params() != backbone.count_params()
    assert [finding.rule for finding in report.findings if finding.rule == "KS212"] == ["KS212"]


def test_a_preset_matching_its_metadata_has_no_parameter_count_finding(reports: dict[tuple[str, str], ModelReport]) -> None:
    assert not [finding for report in reports.values() for finding in report.findings if finding.rule == "KS212"]


def test_a_frozen_backbone_is_not_a_trainable_in_frozen_parent_finding(reports: dict[tuple[str, str], ModelReport]) -> None:
    assert not [finding for finding in reports["frozen_albert", "single"].findings if finding.rule == "KS301"]


def test_terminal_row_of_a_shared_albert_group_names_it_and_totals_its_sublayers(
        reports: dict[tuple[str, str], ModelReport]) -> None:
    from keras_share.render.terminal import TerminalFormatter

    text = TerminalFormatter(width=200).format([reports["albert", "single"]], [])
    assert "group_0_inner_layer_0" in text and "16 arrays, 600 params" in text
    assert "tied embeddings: yes (layers/reversible_embedding); reloading builds tied" in text


def test_markdown_states_the_tie_and_the_reload(reports: dict[tuple[str, str], ModelReport]) -> None:
    from keras_share.render.markdown import MarkdownFormatter

    text = MarkdownFormatter().format([reports["llama_tied", "single"]], [])
    assert "tied embeddings: yes" in text and "reloading builds untied" in text and "KS108" in text


@pytest.mark.parametrize("tie", [True, False], ids=["tied", "untied"])
def test_a_keras_model_with_a_reversible_embedding_reports_its_tie(keras3: Any, tie: bool, tmp_path: Path) -> None:
    inputs = keras3.Input((3,), dtype="int32")
    embedding = keras3.layers.ReversibleEmbedding(20, 4, tie_weights=tie, name="embedding")
    keras3.Model(inputs, embedding(embedding(inputs), reverse=True)).save(tmp_path / "model.keras")
    loaded = keras3.models.load_model(tmp_path / "model.keras")
    assert inspect(tmp_path / "model.keras").summary.tied_embeddings is loaded.get_layer("embedding").tie_weights is tie


def test_a_model_without_a_reversible_embedding_has_no_tie_status(keras3: Any, tmp_path: Path) -> None:
    inputs = keras3.Input((3,), dtype="int32")
    keras3.Model(inputs, keras3.layers.Embedding(20, 4)(inputs)).save(tmp_path / "model.keras")
    assert inspect(tmp_path / "model.keras").summary.tied_embeddings is None


def test_tokenizer_and_preprocessor_files_are_listed_not_read(presets: dict[str, Built], tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "with_tokenizer"
    shutil.copytree(presets["gpt2"].folders["sharded"], folder)
    (folder / "tokenizer.json").write_text("not json: never read")
    (folder / "preprocessor.json").write_text("{}")
    (folder / "assets").mkdir()
    report = inspect(folder)
    assert report.preset is not None and report.preset.facts.files == ["assets", "preprocessor.json", "tokenizer.json"]
