"""KerasHub preset folders written by hand (h5py and JSON, no keras-hub): what the reader and the rules make of
layouts keras-hub writes (tests/test_keras_hub_presets.py checks the same against keras-hub itself), and of
damaged extras. Runs without TensorFlow."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from cli_command import keras_share_command

from keras_share.api import inspect


def write_preset(folder: Path, class_name: str, arrays: list[tuple[int, ...]], config: dict[str, Any] | None = None,
                 parameter_count: int | None = None) -> Path:
    """A preset folder of ``class_name`` whose only weight group is a ReversibleEmbedding holding ``arrays``."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "module": "keras_hub.src.models.x", "class_name": class_name, "registered_name": f"keras_hub>{class_name}",
        "config": {"name": "backbone", "trainable": True, **(config or {})}}))
    count = parameter_count if parameter_count is not None else sum(int(np.prod(shape)) for shape in arrays)
    (folder / "metadata.json").write_text(json.dumps({"keras_version": "3.15.1", "keras_hub_version": "0.32.0",
                                                      "parameter_count": count}))
    with h5py.File(folder / "model.weights.h5", "w") as h5:
        group = h5.create_group("layers/reversible_embedding/vars")
        group.attrs["name"] = "token_embedding"
        for index, shape in enumerate(arrays):
            group.create_dataset(str(index), data=np.zeros(shape, "float32"))
    return folder


def _rules(report: Any) -> list[str]:
    return [finding.rule for finding in report.findings]


def test_a_tied_llama_preset_without_its_config_key_is_a_tie_config_mismatch(tmp_path: Path) -> None:
    report = inspect(write_preset(tmp_path / "llama", "LlamaBackbone", [(10, 4)]))
    (finding,) = [finding for finding in report.findings if finding.rule == "KS108"]
    assert finding.severity == "error" and finding.layer == "layers/reversible_embedding"
    assert "keras-hub#3098" in finding.message and '"tie_word_embeddings": true' in finding.message


def test_a_tied_llama_preset_that_sets_its_config_key_is_not_a_mismatch(tmp_path: Path) -> None:
    report = inspect(write_preset(tmp_path / "llama", "LlamaBackbone", [(10, 4)], {"tie_word_embeddings": True}))
    assert "KS108" not in _rules(report) and report.summary.tied_embeddings is True


def test_an_untied_gemma_preset_is_a_tie_config_mismatch(tmp_path: Path) -> None:
    report = inspect(write_preset(tmp_path / "gemma", "GemmaBackbone", [(10, 4), (4, 10)]))
    assert report.summary.tied_embeddings is False and "KS108" in _rules(report)


def test_an_embedding_whose_second_array_is_not_the_transpose_has_no_tie_status(tmp_path: Path) -> None:
    report = inspect(write_preset(tmp_path / "odd", "MistralBackbone", [(10, 4), (10, 4)]))
    assert report.summary.tied_embeddings is None and "KS108" not in _rules(report)


def test_an_unknown_backbone_class_gets_its_tie_but_no_reload_check(tmp_path: Path) -> None:
    report = inspect(write_preset(tmp_path / "custom", "MyBackbone", [(10, 4)]))
    assert report.summary.tied_embeddings is True and report.preset is not None
    assert report.preset.reload_tied is None and not report.preset.known_class and not report.layers


def test_metadata_parameter_count_unlike_the_stored_weights_is_a_warning(tmp_path: Path) -> None:
    report = inspect(write_preset(tmp_path / "gpt2", "GPT2Backbone", [(10, 4)], parameter_count=41))
    (finding,) = [finding for finding in report.findings if finding.rule == "KS212"]
    assert finding.severity == "warning" and "41" in finding.message and "40" in finding.message


def test_an_unreadable_task_weights_file_is_a_note_not_an_error(tmp_path: Path) -> None:
    folder = write_preset(tmp_path / "gpt2", "GPT2Backbone", [(10, 4)])
    (folder / "task.weights.h5").write_bytes(b"not hdf5")
    (folder / "task.json").write_text(json.dumps({"class_name": "GPT2CausalLM", "config": {}}))
    proc = subprocess.run([*keras_share_command(), "inspect", "--format", "json", str(folder)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    model = json.loads(proc.stdout)["models"][0]
    assert model["preset"]["task"]["class_name"] == "GPT2CausalLM"
    assert any("task.weights.h5 is not a readable HDF5 file" in note for note in model["notes"])


def test_a_plain_keras_folder_is_not_a_preset(tmp_path: Path) -> None:
    folder = write_preset(tmp_path / "plain", "Scorer", [(10, 4)])
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "registered_name": "Scorer", "module": "mine"}))
    (folder / "metadata.json").write_text(json.dumps({"keras_version": "3.15.1"}))
    report = inspect(folder)
    assert report.preset is None and report.summary.tied_embeddings is None
