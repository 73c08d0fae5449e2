"""Provenance: which layers of a model hold the weights of a ``--base`` model's layers (``transferred_from``)."""

from __future__ import annotations

from collections.abc import Mapping

from keras_share.analysis.digests import DigestSource
from keras_share.analysis.report import LayerReport, ModelReport
from keras_share.read.base import ArrayDigest


def content_key(layer: LayerReport, digests: Mapping[str, ArrayDigest]) -> tuple[object, ...] | None:
    """Shapes and hashes of a layer's arrays, or None when any is unread or all are constant."""
    parts: list[object] = []
    constant = True
    for array in layer.layer.weights:
        digest = digests.get(array.location)
        if digest is None:
            return None
        constant = constant and digest.constant
        parts.append((array.shape, array.dtype, digest.sha256))
    return None if constant or not parts else tuple(parts)


def mark_transferred(report: ModelReport, base: ModelReport, own: DigestSource, theirs: DigestSource) -> None:
    """Set ``transferred_from`` on each layer of ``report`` whose arrays all equal a ``base`` layer's arrays.

    ``own`` and ``theirs`` give the digests of ``report``'s and ``base``'s arrays; only arrays whose shape
    and dtype occur in both models are asked for.
    """
    shapes = {(array.shape, array.dtype) for layer in base.layers for array in layer.layer.weights}
    mine = [layer for layer in report.layers if layer.layer.weights]
    wanted = [array for layer in mine for array in layer.layer.weights if (array.shape, array.dtype) in shapes]
    if not wanted:
        return
    own_digests = own.digests(wanted)
    wanted_keys = {(array.shape, array.dtype) for array in wanted}
    base_arrays = [array for layer in base.layers for array in layer.layer.weights
                   if (array.shape, array.dtype) in wanted_keys]
    base_digests = theirs.digests(base_arrays)
    by_key: dict[tuple[object, ...], str] = {}
    for layer in base.layers:
        key = content_key(layer, base_digests) if layer.layer.weights else None
        if key is not None:
            by_key.setdefault(key, layer.layer.path)
    for layer in mine:
        key = content_key(layer, own_digests)
        if key is not None and key in by_key:
            layer.transferred_from = by_key[key]
