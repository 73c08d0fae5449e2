"""KS106 unsafe-module-reference: a config names an object in a module that can run code (CVE-2025-1550).

The files are saved by real Keras, then their config is edited by hand to name ``os.system``,
``builtins.eval``, ``subprocess.Popen`` or ``keras.utils.get_file`` at some depth. They are never loaded with Keras
(Keras before 3.9 would import and call what they name): truth here is Keras's own serialization code, read in
keras/src/saving/serialization_lib.py (``_retrieve_class_or_fn``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from config_rewrite import layer_entry, rewrite_h5, rewrite_keras

from keras_share import configs
from keras_share.analysis.report import Finding, ModelReport
from keras_share.api import inspect_file
from keras_share.pipeline import Pipeline
from keras_share.settings import LintSettings
from keras_share.vocabulary import Severity

CODE = "KS106"
REAL = Path(__file__).resolve().parents[2] / "shared" / "real_models"
REAL_FILES = sorted(path for pattern in ("*.h5", "*.keras", "extra/*.h5", "extra/*.keras") for path in REAL.glob(pattern))
SAMPLES = sorted(path for path in (Path(__file__).resolve().parents[1] / "sample_models").iterdir()
                 if path.suffix in (".h5", ".keras") or path.is_dir())
OS_SYSTEM = {"module": "os", "class_name": "function", "config": "system", "registered_name": "function"}


def linted(path: Path) -> ModelReport:
    return Pipeline(LintSettings()).finish(inspect_file(path, timeout=None))


def findings(path: Path) -> list[Finding]:
    """The KS106 findings on a saved file."""
    return [finding for finding in linted(path).findings if finding.rule == CODE]


def _model(K: Any) -> Any:
    """A nested encoder (Dense ``e1``), a TimeDistributed Dense and a head, compiled."""
    K.backend.clear_session()
    encoder = K.Sequential([K.Input((3, 4)), K.layers.Dense(4, activation="relu", name="e1")], name="enc")
    x = K.Input((3, 4), name="x")
    y = K.layers.TimeDistributed(K.layers.Dense(2, name="inner"), name="td")(encoder(x))
    model = K.Model(x, y, name="top")
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The model saved once by Keras 3 (``.keras``) and tf_keras (``.h5``); tests copy and edit them."""
    folder = tmp_path_factory.mktemp("ks106")
    files = {"keras3": folder / "model.keras", "tf_keras": folder / "model.h5"}
    _model(pytest.importorskip("keras")).save(str(files["keras3"]))
    _model(pytest.importorskip("tf_keras")).save(str(files["tf_keras"]))
    return files


def _edited(source: Path, target: Path, edit: Any) -> Path:
    target.write_bytes(source.read_bytes())
    (rewrite_keras if target.suffix == ".keras" else rewrite_h5)(target, edit)
    return target


def _encoder_dense(config: dict[str, Any]) -> dict[str, Any]:
    """The entry of Dense ``e1`` in the nested Sequential ``enc`` (its entries carry their name in ``config``)."""
    return next(entry for entry in layer_entry(config, "enc")["config"]["layers"] if entry["config"]["name"] == "e1")


@pytest.mark.parametrize("generation", ["keras3", "tf_keras"])
def test_os_system_as_an_activation_inside_a_nested_model_is_an_error(
        saved: dict[str, Path], tmp_path: Path, generation: str) -> None:
    def edit(config: dict[str, Any]) -> None:
        _encoder_dense(config)["config"]["activation"] = dict(OS_SYSTEM)

    (finding,) = findings(_edited(saved[generation], tmp_path / saved[generation].name, edit))
    assert (finding.layer, finding.severity) == ("enc/e1", Severity.ERROR)
    assert "config.activation.module names 'os.system'" in finding.message
    assert finding.rule_info.is_security


def test_a_layer_class_from_subprocess_inside_a_wrapper_is_an_error(saved: dict[str, Path], tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        inner = layer_entry(config, "td")["config"]["layer"]
        inner.update(module="subprocess", class_name="Popen", registered_name=None)

    (finding,) = findings(_edited(saved["keras3"], tmp_path / "wrapped.keras", edit))
    assert finding.layer == "td"
    assert "config.layer.module names 'subprocess.Popen'" in finding.message


def test_builtins_eval_in_the_compile_config_is_an_error(saved: dict[str, Path], tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        config["compile_config"]["loss"] = {"module": "builtins", "class_name": "function", "config": "eval",
                                            "registered_name": "function"}

    (finding,) = findings(_edited(saved["keras3"], tmp_path / "loss.keras", edit))
    assert (finding.layer, "compile_config.loss.module names 'builtins.eval'" in finding.message) == ("", True)


def test_a_keras_function_that_is_not_modelling_code_is_an_error(saved: dict[str, Path], tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        _encoder_dense(config)["config"]["kernel_initializer"] = {
            "module": "keras.utils", "class_name": "function", "config": "get_file", "registered_name": "function"}

    (finding,) = findings(_edited(saved["keras3"], tmp_path / "get_file.keras", edit))
    assert "names 'keras.utils.get_file'" in finding.message


def test_a_dotted_fn_name_in_an_unsafe_module_is_an_error(saved: dict[str, Path], tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        config["compile_config"]["metrics"] = [{"module": "keras.metrics", "class_name": "MeanMetricWrapper",
                                                "config": {"name": "m", "fn": "pickle.loads"}}]

    (finding,) = findings(_edited(saved["keras3"], tmp_path / "fn.keras", edit))
    assert "compile_config.metrics[0].config.fn names 'pickle.loads'" in finding.message


@pytest.mark.parametrize("generation", ["keras3", "tf_keras"])
def test_files_keras_wrote_have_no_unsafe_reference(saved: dict[str, Path], generation: str) -> None:
    report = linted(saved[generation])
    assert [finding for finding in report.findings if finding.rule == CODE] == []
    assert report.module_references == []


def test_builtin_function_names_keras_writes_are_not_flagged(saved: dict[str, Path], tmp_path: Path) -> None:
    """``relu`` saved by name under ``builtins``: Keras looks it up among its own activations."""
    def edit(config: dict[str, Any]) -> None:
        _encoder_dense(config)["config"]["activation"] = {"module": "builtins", "class_name": "function",
                                                          "config": "relu", "registered_name": "function"}

    assert findings(_edited(saved["keras3"], tmp_path / "relu.keras", edit)) == []


def test_a_registered_custom_layer_is_a_custom_object_note_not_a_finding(keras3: Any, tmp_path: Path) -> None:
    @keras3.saving.register_keras_serializable(package="my_package")
    class Scale(keras3.layers.Layer):
        def call(self, inputs: Any) -> Any:
            return inputs * 2

    keras3.backend.clear_session()
    x = keras3.Input((4,), name="x")
    path = tmp_path / "custom.keras"
    keras3.Model(x, Scale(name="scale")(x)).save(str(path))
    report = linted(path)
    assert [finding for finding in report.findings if finding.rule == CODE] == []
    (reference,) = report.module_references
    assert (reference.layer, reference.unsafe, reference.name) == ("scale", False, "Scale")
    assert any(note.startswith("custom objects (Keras needs their code to load the file): ")
               and f"'{reference.module}.Scale'" in note for note in report.notes)


def test_a_module_reference_is_never_imported(saved: dict[str, Path], tmp_path: Path) -> None:
    """A module that does not exist (and would print if it did) is named, not imported."""
    import sys

    def edit(config: dict[str, Any]) -> None:
        _encoder_dense(config)["config"]["activation"] = {"module": "os.keras_share_probe", "class_name": "function",
                                                          "config": "run", "registered_name": "function"}

    (finding,) = findings(_edited(saved["keras3"], tmp_path / "probe.keras", edit))
    assert "'os.keras_share_probe.run'" in finding.message
    assert "os.keras_share_probe" not in sys.modules


def test_the_walk_lists_at_most_its_limit_and_runs_without_recursion() -> None:
    deep: dict[str, Any] = dict(OS_SYSTEM)
    for _ in range(5_000):
        deep = {"class_name": "Wrapper", "config": {"layer": deep}}
    assert len(configs.module_references(deep)) == 1
    many = {"layers": [dict(OS_SYSTEM) for _ in range(configs.MAX_MODULE_REFERENCES + 50)]}
    assert len(configs.module_references(many)) == configs.MAX_MODULE_REFERENCES
    assert json.dumps(configs.module_references(many)[0]) == json.dumps(["unsafe", "", "layers[0].module", "os", "system"])


@pytest.mark.skipif(not REAL_FILES, reason="../shared/real_models is not available")
@pytest.mark.parametrize("path", REAL_FILES, ids=[path.name for path in REAL_FILES])
def test_no_real_model_names_an_unsafe_module(path: Path) -> None:
    assert findings(path) == []


@pytest.mark.parametrize("path", SAMPLES, ids=[path.name for path in SAMPLES])
def test_no_sample_model_names_an_unsafe_module(path: Path) -> None:
    assert findings(path) == []


def _edit_training_config(path: Path, edit: Any) -> None:
    """Edit the ``training_config`` attribute of a legacy ``.h5`` file in place."""
    import h5py

    with h5py.File(path, "r+") as h5:
        raw = h5.attrs["training_config"]
        config = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        edit(config)
        h5.attrs["training_config"] = json.dumps(config)


@pytest.mark.parametrize("writer", ["keras", "tf_keras"])
def test_an_unsafe_loss_in_an_h5_training_config_is_an_error(tmp_path: Path, writer: str) -> None:
    path = tmp_path / f"{writer}.h5"
    _model(pytest.importorskip(writer)).save(str(path))
    assert findings(path) == []
    _edit_training_config(path, lambda config: config.update(loss=dict(OS_SYSTEM)))
    (finding,) = findings(path)
    assert (finding.layer, "training_config.loss.module names 'os.system'" in finding.message) == ("", True)


def test_an_unsafe_loss_in_a_savedmodel_training_config_is_an_error(tf_keras: Any, tmp_path: Path) -> None:
    from config_rewrite import rewrite_savedmodel

    path = tmp_path / "model_savedmodel"
    _model(tf_keras).save(str(path), save_format="tf")
    assert findings(path) == []

    def edit(node: str, metadata: dict[str, Any]) -> None:
        if node == "root":
            metadata["training_config"]["loss"] = dict(OS_SYSTEM)

    rewrite_savedmodel(path, edit)
    (finding,) = findings(path)
    assert "training_config.loss.module names 'os.system'" in finding.message


@pytest.mark.parametrize(("text", "may_name"), [
    ('{"module": "keras.layers", "class_name": "Dense", "config": {"activation": "relu"}}', False),
    ('{"module": "builtins", "class_name": "function", "config": "relu"}', False),
    ('{"module": "builtins", "class_name": "function", "config": "eval"}', True),
    ('{"module": "os", "class_name": "function", "config": "system"}', True),
    ('{"module": null, "class_name": "Scale", "registered_name": "my_package>Scale"}', True),
    ('{"class_name": "subprocess.Popen"}', True),
    ('{"output_shape_module": "__main__"}', True),
    ('{"module": "\\u006fs"}', True),
    ('{"module": "keras.utils", "class_name": "function", "config": "get_file"}', True),
])
def test_the_text_scan_skips_the_walk_only_when_nothing_can_be_found(text: str, may_name: bool) -> None:
    assert configs.text_may_name_module(text) is may_name
    if not may_name:
        assert configs.module_references(json.loads(text)) == []


def test_a_module_spelled_with_unicode_escapes_is_found(saved: dict[str, Path], tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "escaped.keras"
    with zipfile.ZipFile(saved["keras3"]) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "config.json":
                spelled = b'{"module": "\\u006fs", "class_name": "function", "config": "system"}'
                data = data.replace(b'"activation": "relu"', b'"activation": ' + spelled, 1)
                assert spelled in data
            target.writestr(info, data)
    (finding,) = findings(path)
    assert (finding.layer, "names 'os.system'" in finding.message) == ("enc/e1", True)
