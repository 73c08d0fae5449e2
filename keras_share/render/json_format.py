"""``--format json``: the versioned schema documented in docs/json-schema.md."""

from __future__ import annotations

import json
from typing import Any

from keras_share.analysis.report import (
    Finding,
    LayerReport,
    LiveLayer,
    LiveModel,
    ModelReport,
    PresetReport,
    Summary,
)
from keras_share.analysis.shapes import CallShapes
from keras_share.errors import ReadError
from keras_share.graph.model import CallSite, Shape
from keras_share.read.base import WeightArray, WeightIndex
from keras_share.render.base import Formatter
from keras_share.version import __version__

SCHEMA_VERSION = 1
OUTLINE_DEPTH = 4
"""Objects and arrays nested this deep (a layer, a finding) are written on one line each."""
_encode = json.JSONEncoder(check_circular=False).encode
"""``json.dumps`` for the documents built here, which are trees: no check for cycles."""


def _weight(array: WeightArray) -> dict[str, Any]:
    return {"name": array.name, "shape": list(array.shape), "dtype": array.dtype, "location": array.location}


def _finding(finding: Finding) -> dict[str, Any]:
    return {"rule": finding.rule, "name": finding.name, "severity": finding.severity, "layer": finding.layer,
            "message": finding.message, "layers": list(finding.layers)}


def _shape_list(shapes: list[Shape | None] | None) -> list[list[int | None] | None] | None:
    return None if shapes is None else [list(shape) if shape is not None else None for shape in shapes]


def _call_shapes(shapes: CallShapes | None) -> dict[str, Any] | None:
    if shapes is None:
        return None
    return {"inputs": _shape_list(shapes.inputs), "input_sources": list(shapes.input_sources),
            "outputs": _shape_list(shapes.outputs),
            "output_sources": None if shapes.output_sources is None else list(shapes.output_sources)}


def _call_site(call: CallSite, shapes: CallShapes | None = None) -> dict[str, Any]:
    return {
        "index": call.index,
        "inputs": [
            {"layer": ref.layer, "call": ref.call, "tensor": ref.tensor, "keyword": ref.keyword,
             "shape": list(ref.shape) if ref.shape is not None else None}
            for ref in call.inputs
        ],
        "input_shapes": [list(shape) if shape is not None else None for shape in call.input_shapes],
        "shapes": _call_shapes(shapes),
    }


def _live_layer(live: LiveLayer | None) -> dict[str, Any] | None:
    if live is None:
        return None
    return {
        "external_calls": live.external_calls,
        "other_models": list(live.other_models),
        "origin_model": live.origin_model,
        "origin_path": live.origin_path,
        "variables": [
            {"name": v.name, "location": v.location, "trainable": v.trainable, "tied_with": list(v.tied_with)}
            for v in live.variables
        ],
    }


def _live_model(live: LiveModel | None) -> dict[str, Any] | None:
    if live is None:
        return None
    return {
        "source": live.source,
        "keras": live.keras,
        "inspected_with": list(live.inspected_with),
        "tie_groups": [list(group) for group in live.tie_groups],
        "load_error": live.load_error,
        "mismatches": [
            {"layer": m.layer, "severity": m.severity, "message": m.message} for m in live.mismatches
        ],
    }


def _layer(report: LayerReport) -> dict[str, Any]:
    layer = report.layer
    return {
        "path": layer.path,
        "name": layer.name,
        "class_name": layer.class_name,
        "kind": layer.kind,
        "parent": layer.parent,
        "calls": layer.calls,
        "effective_calls": report.effective_calls,
        "unreachable_calls": list(report.unreachable_calls),
        "shared": report.shared,
        "same_as": report.same_as,
        "shared_via": report.shared_via,
        "trainable": report.trainable,
        "trainable_flag": layer.trainable_flag,
        "frozen_by": report.frozen_by,
        "transferred_from": report.transferred_from,
        "call_sites": [_call_site(call, report.call_shapes[index] if index < len(report.call_shapes) else None)
                       for index, call in enumerate(layer.call_sites)],
        "weights": [_weight(array) for array in layer.weights],
        "params": report.param_count,
        "trainable_params": report.trainable_params,
        "non_trainable_params": report.non_trainable_params,
        "unique_params": report.unique_params,
        "weights_missing": layer.weights_missing,
        "live": _live_layer(report.live),
    }


def _summary(summary: Summary) -> dict[str, Any]:
    """The counts; an unknown one (None) is named in ``unknown`` and written as schema version 1 always wrote it
    (layers 0, naive params = unique params: no call known to repeat a weight)."""
    unknown_as = {"layers": 0, "shared_layers": 0, "naive_params": summary.unique_params}
    counts = {"layers": summary.layers, "shared_layers": summary.shared_layers,
              "unique_params": summary.unique_params, "naive_params": summary.naive_params,
              "optimizer_arrays": summary.optimizer_arrays}
    return {**{key: unknown_as[key] if count is None else count for key, count in counts.items()},
            "unknown": [key for key, count in counts.items() if count is None],
            "tied_embeddings": summary.tied_embeddings,
            "trainable_params": summary.trainable_params, "non_trainable_params": summary.non_trainable_params}


def _groups(index: WeightIndex | None, names: dict[str, str]) -> list[dict[str, Any]]:
    if index is None:
        return []
    return [{"group": group, "name": names.get(group, ""), "weights": [_weight(array) for array in arrays]}
            for group, arrays in index.unattached.items()]


def _preset(preset: PresetReport | None) -> dict[str, Any] | None:
    if preset is None:
        return None
    facts = preset.facts
    task = facts.task
    return {
        "backbone_class": preset.backbone_class,
        "keras_hub_version": preset.keras_hub_version,
        "parameter_count": preset.parameter_count,
        "sharded": preset.sharded,
        "known_class": preset.known_class,
        "tied_embeddings": preset.tied_embeddings,
        "embedding_layers": list(preset.embedding_layers),
        "reload_tied": preset.reload_tied,
        "reload_reason": preset.reload_reason,
        "dropped_config_key": preset.dropped_key,
        "tie_groups": [{"layer": group.layer, "location": group.location, "uses": list(group.uses)}
                       for group in preset.tie_groups],
        "weight_groups": [{"group": group, "name": name} for group, name in facts.group_names.items()],
        "task": None if task is None else {
            "class_name": task.class_name, "params": preset.task_params,
            "weight_groups": _groups(task.weights, task.group_names),
        },
        "lora": [{"file": lora.name, "rank": lora.rank, "targets": [
            {"index": target.index, "kernel_a": None if target.kernel_a is None else list(target.kernel_a),
             "kernel_b": None if target.kernel_b is None else list(target.kernel_b)} for target in lora.targets]}
            for lora in facts.lora],
        "files": list(facts.files),
        "notes": list(preset.lora_notes),
    }


def model_to_dict(report: ModelReport) -> dict[str, Any]:
    """One entry of the top-level ``models`` list."""
    root = report.graph.root
    return {
        "file": report.file.path,
        "format": report.file.format,
        "keras_version": report.file.keras_version,
        "backend": report.file.backend,
        "model": {
            "name": root.name,
            "class_name": root.class_name,
            "kind": root.kind,
            "has_graph": report.graph.has_graph,
            "trainable_flag": root.trainable_flag,
        },
        "layers": [_layer(layer) for layer in report.layers],
        "unattached_weights": [
            {"group": group, "weights": [_weight(array) for array in arrays]}
            for group, arrays in report.file.weights.unattached.items()
        ],
        "findings": [_finding(finding) for finding in report.findings],
        "summary": {**_summary(report.summary), "in_baseline": len(report.in_baseline)},
        "notes": report.notes,
        "live": _live_model(report.live),
        "preset": _preset(report.preset),
        "in_baseline": [_finding(finding) for finding in report.in_baseline],
    }


def run_to_dict(reports: list[ModelReport], errors: list[ReadError]) -> dict[str, Any]:
    """The whole JSON document of a run."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "keras-share", "version": __version__},
        "models": [model_to_dict(report) for report in reports],
        "errors": [{"file": error.path, "error": error.problem} for error in errors],
    }


def dumps_outlined(value: Any, depth: int = OUTLINE_DEPTH, level: int = 0) -> str:
    """JSON indented by two spaces per level down to ``depth`` levels, and one line per value below that.

    ``json.loads`` gives back exactly ``value``. Each layer of a report is one line, so the output greps
    and diffs by layer, and the deep part is written by the json module's C encoder (an indented
    ``json.dumps`` runs in pure Python, and took most of a large model's rendering time).
    """
    if level >= depth or not isinstance(value, (dict, list)) or not value:
        return _encode(value)
    inner = "\n" + "  " * (level + 1)
    if isinstance(value, dict):
        items = [f"{_encode(str(key))}: {dumps_outlined(item, depth, level + 1)}" for key, item in value.items()]
        return "{" + inner + ("," + inner).join(items) + "\n" + "  " * level + "}"
    items = [dumps_outlined(item, depth, level + 1) for item in value]
    return "[" + inner + ("," + inner).join(items) + "\n" + "  " * level + "]"


class JsonFormatter(Formatter):
    """Outlined JSON (indented to the layer level, a line per layer), stable key order."""

    def format(self, reports: list[ModelReport], errors: list[ReadError]) -> str:
        return dumps_outlined(run_to_dict(reports, errors)) + "\n"
