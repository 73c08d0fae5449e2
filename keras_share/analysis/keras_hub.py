"""KerasHub backbones: what their code (not their preset files) decides about tied embeddings and shared layers.

A preset's ``config.json`` holds a backbone's hyperparameters only; the layers, their calls and the tie of the
token embedding to the output projection are built by the class's Python code. The tables here were built by
reading the sources of **keras-hub 0.32.0** (``keras_hub/src/models/*/*_backbone.py``, every ``Backbone``
subclass of that release, ``BACKBONES``); a preset of a class not listed is reported from its weights alone.

* Tie: ``ReversibleEmbedding(tie_weights=...)`` is hard-coded by some classes (``TIED_BY_CODE``,
  ``UNTIED_BY_CODE``; the default ``tie_weights=True`` counts as hard-coded tied, ``TokenAndPositionEmbedding``
  included), and taken from a constructor argument by others (``TIE_CONFIG_KEYS``), which ``get_config`` may
  not save: keras-hub 0.32's ``LlamaBackbone.get_config`` drops ``tie_word_embeddings`` (keras-hub#3098), so a
  tied Llama preset reloads untied and its ``reverse_embeddings`` are not in the file.
* Sharing: ALBERT applies each of its ``num_groups`` groups of ``num_inner_repetitions`` transformer layers
  ``num_layers // num_groups`` times (``albert_backbone.py``); BART and T5 apply one ``token_embedding`` to the
  encoder's and the decoder's tokens, EdRec one ``embedding`` (``REPEATED_CALLS``). Every other layer of a listed
  backbone is applied once in its Functional graph (DINOv2/DINOv3 apply ``layernorm`` to pyramid outputs that
  reach no output; Gemma 4's shared K/V layers share activations, not weights).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from keras_share.analysis.report import PresetReport, TieGroup
from keras_share.graph.model import CallSite, Graph, Layer
from keras_share.read.base import LoraFile, ModelFile, Preset, WeightArray
from keras_share.vocabulary import LayerKind

KERAS_HUB_VERSION = "0.32.0"
"""The keras-hub release whose sources the tables below were read from (and the tests build presets with)."""

TIED_BY_CODE = frozenset({
    "GemmaBackbone", "Gemma3Backbone", "Gemma4Backbone", "PaliGemmaBackbone",  # tie_weights=True
    "AlbertBackbone", "BartBackbone", "BertBackbone", "BloomBackbone", "DebertaV3Backbone", "ElectraBackbone",
    "FNetBackbone", "FalconBackbone", "GPT2Backbone", "GPTNeoXBackbone", "MoonshineBackbone", "RoformerV2Backbone",
    "SmolLM3Backbone",  # ReversibleEmbedding's default tie_weights=True
    "DistilBertBackbone", "OPTBackbone", "RobertaBackbone", "XLMRobertaBackbone", "WhisperBackbone",
    # TokenAndPositionEmbedding's default tie_weights=True
})
"""Backbones whose token embedding is always tied to the output projection, whatever the config says."""
UNTIED_BY_CODE = frozenset({"MistralBackbone", "MixtralBackbone", "Phi3Backbone", "GptOssBackbone"})
"""Backbones whose token embedding always has its own output projection (``tie_weights=False``)."""


class ConfigTie(NamedTuple):
    """A backbone whose tie is a constructor argument: its name, its default, whether ``get_config`` saves it."""

    key: str
    default: bool
    saved: bool


TIE_CONFIG_KEYS: dict[str, ConfigTie] = {
    "LlamaBackbone": ConfigTie("tie_word_embeddings", False, saved=False),
    "Llama3Backbone": ConfigTie("tie_word_embeddings", False, saved=False),
    "QwenBackbone": ConfigTie("tie_word_embeddings", True, saved=True),
    "Qwen3Backbone": ConfigTie("tie_word_embeddings", True, saved=True),
    "QwenMoeBackbone": ConfigTie("tie_word_embeddings", False, saved=True),
    "Qwen3MoeBackbone": ConfigTie("tie_word_embeddings", False, saved=True),
    "Qwen3_5Backbone": ConfigTie("tie_word_embeddings", False, saved=True),
    "Qwen3_5MoeBackbone": ConfigTie("tie_word_embeddings", False, saved=True),
    "T5Backbone": ConfigTie("tie_embedding_weights", True, saved=True),
    "T5GemmaBackbone": ConfigTie("tie_word_embeddings", True, saved=True),
    "T5Gemma2Backbone": ConfigTie("tie_word_embeddings", True, saved=True),
}
"""Backbones whose tie is taken from a config key when the preset is loaded."""

BACKBONES = TIED_BY_CODE | UNTIED_BY_CODE | TIE_CONFIG_KEYS.keys() | frozenset({
    "BASNetBackbone", "BLIP2Backbone", "CLIPBackbone", "CSPNetBackbone", "DFineBackbone", "DINOV2Backbone",
    "DINOV3Backbone", "DeepLabV3Backbone", "DeiTBackbone", "DenseNetBackbone", "DepthAnythingBackbone",
    "ESMBackbone", "EdRecBackbone", "EfficientNetBackbone", "Gemma3nBackbone", "HGNetV2Backbone",
    "MetaCLIP2Backbone", "MiTBackbone", "MobileNetBackbone", "MobileNetV5Backbone", "PARSeqBackbone",
    "RQVAEBackbone", "RWKV7Backbone", "ResNetBackbone", "RetinaNetBackbone", "SAM3PromptableConceptBackbone",
    "SAMBackbone", "SegFormerBackbone", "SigLIPBackbone", "StableDiffusion3Backbone", "SwinTransformerBackbone",
    "VAEBackbone", "VGGBackbone", "ViTBackbone", "ViTDetBackbone", "VideoPrismBackbone", "XLNetBackbone",
    "XceptionBackbone",
})
"""Every ``Backbone`` subclass of keras-hub 0.32.0: their layers' calls are known (``REPEATED_CALLS``, ALBERT)."""

REPEATED_CALLS: dict[str, dict[str, int]] = {
    "BartBackbone": {"token_embedding": 2},
    "T5Backbone": {"token_embedding": 2},
    "EdRecBackbone": {"embedding": 2},
}
"""Top-level layers (by the name stored on their weight group) that a backbone applies more than once."""

ALBERT = "AlbertBackbone"
_ALBERT_GROUP_LAYER = re.compile(r"group_(\d+)_inner_layer_(\d+)")
_REVERSIBLE_GROUP = re.compile(r"reversible_embedding(_\d+)?|token_embedding")
"""The last part of a weight group's path holding a ReversibleEmbedding: named after the class at the
backbone's ``layers/`` level, or after the attribute inside a ``TokenAndPositionEmbedding``."""
_INPUT_GROUP = re.compile(r"layers/input_layer(_\d+)?")


@dataclass
class _Embedding:
    """A ReversibleEmbedding's weight group and what its arrays say about its tie."""

    path: str
    tied: bool
    arrays: list[WeightArray] = field(default_factory=list)


def _embeddings(groups: dict[str, list[WeightArray]]) -> list[_Embedding]:
    """The ReversibleEmbedding groups of a preset, told by their names (``_REVERSIBLE_GROUP``)."""
    return reversible_embeddings({path: arrays for path, arrays in groups.items()
                                  if _REVERSIBLE_GROUP.fullmatch(path.rsplit("/", 1)[-1])})


def reversible_embeddings(groups: dict[str, list[WeightArray]]) -> list[_Embedding]:
    """The tie of each ReversibleEmbedding's arrays (by path): one 2-D (vocab, hidden) array is tied; a second,
    its transpose (``reverse_embeddings``), untied. Arrays of any other make-up are not read as one."""
    found = []
    for path, arrays in groups.items():
        shapes = [array.shape for array in arrays]
        if len(shapes) == 1 and len(shapes[0]) == 2:
            found.append(_Embedding(path, True, arrays))
        elif len(shapes) == 2 and len(shapes[0]) == 2 and shapes[1] == shapes[0][::-1]:
            found.append(_Embedding(path, False, arrays))
    return found


def tied_embeddings(layers: list[Layer]) -> bool | None:
    """For a model with a layer graph: whether its ``ReversibleEmbedding`` layers (Keras 3.12+, KerasHub) are
    tied, from their stored arrays; None when it has none, or their arrays say neither."""
    embeddings = reversible_embeddings({layer.path: layer.weights for layer in layers
                                        if layer.class_name == "ReversibleEmbedding"})
    return all(embedding.tied for embedding in embeddings) if embeddings else None


class ReloadTie(NamedTuple):
    """Whether the backbone class rebuilds a tied embedding when the preset is loaded, and why."""

    tied: bool | None
    reason: str
    key_dropped: str | None = None
    """The config key ``get_config`` does not save, when its absence decided the tie."""


def reload_tie(class_name: str, config: dict[str, Any]) -> ReloadTie:
    """What loading the preset builds: the class's hard-coded tie, or its config key (its default when absent)."""
    if class_name in TIED_BY_CODE:
        return ReloadTie(True, f"{class_name} always ties its token embedding (keras-hub {KERAS_HUB_VERSION})")
    if class_name in UNTIED_BY_CODE:
        return ReloadTie(False, f"{class_name} never ties its token embedding (keras-hub {KERAS_HUB_VERSION})")
    tie = TIE_CONFIG_KEYS.get(class_name)
    if tie is None:
        return ReloadTie(None, f"{class_name} is not a keras-hub {KERAS_HUB_VERSION} backbone")
    value = config.get(tie.key)
    if isinstance(value, bool):
        return ReloadTie(value, f"config.json sets {tie.key}: {str(value).lower()}")
    dropped = tie.key if not tie.saved else None
    why = (f"; {class_name}.get_config does not save it (keras-hub {KERAS_HUB_VERSION}, keras-hub#3098)"
           if dropped else "")
    return ReloadTie(tie.default, f"config.json has no {tie.key}, whose default is "
                     f"{str(tie.default).lower()}{why}", dropped)


def _positive_int(config: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = config.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _top_level_calls(class_name: str, config: dict[str, Any], names: dict[str, str]) -> tuple[dict[str, int], str | None]:
    """The calls of the backbone's top-level layers applied more than once (by group path), and a note when the
    config does not say how many."""
    calls: dict[str, int] = {}
    repeated = REPEATED_CALLS.get(class_name, {})
    for path, name in names.items():
        if path.count("/") == 1 and name in repeated:
            calls[path] = repeated[name]
    if class_name != ALBERT:
        return calls, None
    layers, groups = _positive_int(config, "num_layers"), _positive_int(config, "num_groups", 1)
    if layers is None or groups is None or layers % groups:
        return calls, (f"{ALBERT}'s num_layers and num_groups are not positive integers with num_groups dividing "
                       "num_layers: how often each transformer group runs is unknown (counted once)")
    for path, name in names.items():
        if path.count("/") == 1 and _ALBERT_GROUP_LAYER.fullmatch(name):
            calls[path] = layers // groups
    return calls, None


def preset_graph(model_file: ModelFile, graph: Graph) -> Graph:
    """For a preset of a known backbone class (``BACKBONES``), the graph whose layers are its weight groups (taken
    out of the unattached groups), nested by path, called as the class's code calls them; else ``graph``. Each
    layer's own flag is the backbone's: setting a Keras 3 layer's ``trainable`` sets every layer inside it, and
    the preset records no other."""
    preset = model_file.preset
    class_name = graph.root.class_name
    if preset is None or class_name not in BACKBONES or graph.layers:
        return graph
    unattached = model_file.weights.unattached
    calls, note = _top_level_calls(class_name, graph.root.config, preset.group_names)
    layers: dict[str, Layer] = {}
    for path in sorted(set(preset.group_names) | set(unattached)):
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        while parent and parent not in preset.group_names and parent not in unattached:
            parent = parent.rsplit("/", 1)[0] if "/" in parent else ""
        is_input = _INPUT_GROUP.fullmatch(path) is not None
        count = 0 if is_input else calls.get(path, 1)
        layer = Layer(path=path, name=preset.group_names.get(path) or path.rsplit("/", 1)[-1], class_name="",
                      kind=LayerKind.INPUT if is_input else LayerKind.LAYER, parent=parent, config={},
                      trainable_flag=graph.root.trainable_flag, call_sites=[CallSite(index) for index in range(count)],
                      weights=unattached.pop(path, []))
        layers[path] = layer
        if parent in layers:
            layers[parent].children.append(path)
    notes = [text for text in graph.notes if "is a subclassed model" not in text]
    notes.append(f"KerasHub preset of {class_name}: its layers are its weight groups, and their calls those of "
                 f"keras-hub {KERAS_HUB_VERSION}'s {class_name} code, not read from the file")
    if note is not None:
        notes.append(note)
    return Graph(root=graph.root, layers=layers, has_graph=False, notes=notes, from_class_table=True)


def _task_params(preset: Preset) -> int:
    index = preset.task.weights if preset.task is not None else None
    return sum(array.size for arrays in index.unattached.values() for array in arrays) if index is not None else 0


def preset_report(model_file: ModelFile, graph: Graph, groups: dict[str, list[WeightArray]]) -> PresetReport | None:
    """What the analysis says about a preset: its tie from the weights (``groups``: every weight group with its
    arrays), what reloading will build, its tie groups; None for other models."""
    preset = model_file.preset
    if preset is None:
        return None
    class_name = graph.root.class_name
    embeddings = _embeddings(groups)
    tied = None if not embeddings else all(embedding.tied for embedding in embeddings)
    config = graph.root.config if isinstance(graph.root.config, dict) else {}
    reload = reload_tie(class_name, config)
    return PresetReport(
        backbone_class=class_name,
        keras_hub_version=preset.keras_hub_version,
        parameter_count=preset.parameter_count,
        sharded=preset.sharded,
        known_class=class_name in BACKBONES,
        tied_embeddings=tied,
        embedding_layers=[embedding.path for embedding in embeddings],
        reload_tied=reload.tied if embeddings else None,
        reload_reason=reload.reason,
        dropped_key=reload.key_dropped,
        tie_groups=[TieGroup(embedding.path, embedding.arrays[0].location,
                             ["token embedding", "output projection (its transpose)"])
                    for embedding in embeddings if embedding.tied],
        task_class=preset.task.class_name if preset.task is not None else None,
        task_params=_task_params(preset),
        facts=preset,
        lora_notes=[note for lora in preset.lora for note in _lora_notes(lora, groups)],
    )


def _lora_notes(lora: LoraFile, groups: dict[str, list[WeightArray]]) -> list[str]:
    """What does not fit in a LoRA file: factors whose rank differs from the file's, or whose product has the
    shape of no kernel of the backbone."""
    kernels = {array.shape for arrays in groups.values() for array in arrays[:1]}
    notes = []
    for target in lora.targets:
        a, b = target.kernel_a, target.kernel_b
        if a is None or b is None or not a or not b:
            notes.append(f"{lora.name}: layer #{target.index} lacks lora_kernel_a or lora_kernel_b")
            continue
        if a[-1] != b[0] or (lora.rank is not None and a[-1] != lora.rank):
            notes.append(f"{lora.name}: layer #{target.index}'s factors {list(a)} and {list(b)} are not of the "
                         f"file's rank {lora.rank}")
        elif a[:-1] + b[1:] not in kernels:
            notes.append(f"{lora.name}: layer #{target.index}'s factors make a {list(a[:-1] + b[1:])} update, the "
                         "shape of no kernel in the backbone")
    return notes

