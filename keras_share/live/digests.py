"""The digest source of a live report: its variables' values hashed in memory, never a file read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from keras_share.live.flavors import Flavor
from keras_share.read.base import ArrayDigest, WeightArray
from keras_share.read.digest import value_digest


class LiveDigests:
    """Digests of a live report's variables by location (``keras_share.analysis.digests.DigestSource``), each
    computed the first time it is asked for."""

    def __init__(self, variables: Mapping[str, object]) -> None:
        self._variables = variables
        self._known: dict[str, ArrayDigest] = {}

    def digests(self, arrays: Sequence[WeightArray]) -> Mapping[str, ArrayDigest]:
        """Digests by location, including those of ``arrays`` that are variables of the report."""
        for array in arrays:
            if array.location not in self._known and array.location in self._variables:
                self._known[array.location] = value_digest(Flavor.variable_value(self._variables[array.location]))
        return self._known
