"""Parameter counts as the file will load: per layer (its own arrays, trainable or not, and the unique scalars of
everything it holds) and for the whole model (Keras' "Trainable params" and "Non-trainable params")."""

from __future__ import annotations

from keras_share.analysis.report import LayerReport, Summary
from keras_share.read.base import WeightArray

NON_TRAINABLE_VARIABLES: dict[str, frozenset[str]] = {
    "BatchNormalization": frozenset({"moving_mean", "moving_variance"}),
    "SyncBatchNormalization": frozenset({"moving_mean", "moving_variance"}),
    "Normalization": frozenset({"mean", "variance", "count"}),
}
"""Variables a class creates with ``trainable=False``: they never train, whatever the flags."""


def _variable_name(array: WeightArray) -> str:
    """``moving_mean`` of ``bn/moving_mean:0``."""
    return array.name.rsplit("/", 1)[-1].split(":", 1)[0]


def array_trains(report: LayerReport, array: WeightArray) -> bool:
    """Whether fitting the loaded model updates this array of the layer of ``report``."""
    if not report.trainable:
        return False
    if array.trainable is not None:
        return array.trainable
    return _variable_name(array) not in NON_TRAINABLE_VARIABLES.get(report.layer.class_name, frozenset())


def count_params(reports: list[LayerReport], summary: Summary, known: bool) -> None:
    """Fill each report's ``trainable_params``, ``non_trainable_params`` and ``unique_params``, and the
    summary's ``trainable_params`` and ``non_trainable_params`` (None without a layer graph). Each array counts
    once in the model's totals and once in each model that holds it."""
    by_path = {report.layer.path: report for report in reports}
    inside: dict[str, set[str]] = {}
    trains: dict[str, bool] = {}
    sizes: dict[str, int] = {}
    for report in reports:
        own: set[str] = set()
        for array in report.layer.weights:
            training = array_trains(report, array)
            trains[array.location] = trains.get(array.location, False) or training
            sizes[array.location] = array.size
            if array.location not in own:
                own.add(array.location)
                if training:
                    report.trainable_params += array.size
                else:
                    report.non_trainable_params += array.size
        report.unique_params = sum(sizes[location] for location in own)
        parent = by_path.get(report.layer.parent or "")
        while parent is not None and own:
            inside.setdefault(parent.layer.path, set()).update(own)
            parent = by_path.get(parent.layer.parent or "")
    for path, locations in inside.items():
        by_path[path].unique_params = sum(sizes[location] for location in locations)
    if known:
        summary.trainable_params = sum(sizes[location] for location, training in trains.items() if training)
        summary.non_trainable_params = sum(sizes[location] for location, training in trains.items() if not training)
