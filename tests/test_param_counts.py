"""Parameter counts as the file will load (keras_share/analysis/params.py) against the model Keras loads from
the same file: the model's trainable and non-trainable totals (``model.trainable_weights``,
``model.non_trainable_weights``, ``count_params``), and per layer its trainable and non-trainable scalars and,
for a nested model, its ``count_params()``."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ModelStore
from live_truth import _api, load_model

from keras_share.analysis.report import ModelReport
from keras_share.pipeline import inspect_file

CASES = ("nested_encoder", "frozen_nested_reenabled", "frozen_top_reenabled", "frozen_sequential_reenabled",
         "frozen_top_sequential_reenabled", "frozen_model_beside_a_layer", "three_levels", "frozen_mha",
         "transfer_frozen")
LAYOUTS = [(3, "keras"), (2, "h5")]
MORE_LAYOUTS = {"frozen_nested_reenabled": [(3, "h5"), (2, "keras"), (2, "savedmodel")],
                "frozen_mha": [(3, "h5"), (2, "keras"), (2, "savedmodel")]}
"""Each case in the main layout of each generation; two cases in every layout (loading is slow)."""
PARAMS = [(case, generation, fmt) for case in CASES for generation, fmt in LAYOUTS + MORE_LAYOUTS.get(case, [])]

def _size(variable: Any) -> int:
    count = 1
    for dim in variable.shape:
        count *= int(dim)
    return count


def _live_counts(model: Any, generation: int) -> dict[str, tuple[int, int, int]]:
    """Per layer path: (trainable scalars, non-trainable scalars, count_params()); "" for the whole model."""
    trainable = {id(variable) for variable in model.trainable_weights}
    api = _api(generation)
    counts = {"": (sum(_size(v) for v in model.trainable_weights), sum(_size(v) for v in model.non_trainable_weights),
                   int(model.count_params()))}

    def visit(parent: Any, prefix: str) -> None:
        for layer in api.children(parent):
            path = f"{prefix}{layer.name}"
            if api.is_model(layer):
                counts[path] = (-1, -1, int(layer.count_params()))
                visit(layer, path + "/")
            else:
                weights = list(layer.weights)
                counts[path] = (sum(_size(v) for v in weights if id(v) in trainable),
                                sum(_size(v) for v in weights if id(v) not in trainable), sum(map(_size, weights)))

    visit(model, "")
    return counts


def _static_counts(report: ModelReport) -> dict[str, tuple[int, int, int]]:
    summary = report.summary
    counts = {"": (summary.trainable_params or 0, summary.non_trainable_params or 0, summary.unique_params)}
    for layer in report.layers:
        if layer.layer.is_model:
            counts[layer.layer.path] = (-1, -1, layer.unique_params)
        else:
            counts[layer.layer.path] = (layer.trainable_params, layer.non_trainable_params, layer.unique_params)
    return counts


@pytest.mark.parametrize(("case", "generation", "fmt"), PARAMS, ids=[f"{c}-k{g}-{f}" for c, g, f in PARAMS])
def test_param_counts_equal_the_loaded_model(case: str, generation: int, fmt: str, model_store: ModelStore) -> None:
    pytest.importorskip("keras" if generation == 3 else "tf_keras")
    if fmt not in model_store.formats(case, generation):
        pytest.skip(f"{case} is not saved as {fmt}")
    path = model_store.path(case, generation, fmt)
    try:
        model = load_model(path, generation)
    except ValueError as error:  # Keras 3 cannot load some of its own .h5 files (a nested Sequential's weights)
        pytest.skip(f"Keras cannot load it: {str(error)[:120]}")
    live = _live_counts(model, generation)
    static = _static_counts(inspect_file(path, timeout=None))
    differ = {path: (live[path], static.get(path)) for path in live if static.get(path) != live[path]}
    assert differ == {}
