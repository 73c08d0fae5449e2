"""Where the content digests of a report's arrays come from: the protocol analysis and rules ask through.

A saved file's arrays are hashed by a reader child (``keras_share.read.arrays.FileDigests``), a live model's
variables in memory (``keras_share.live.digests.LiveDigests``); the pipeline hands one source per report.
Whoever asks never knows which, and never starts a process itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from keras_share.read.base import ArrayDigest, WeightArray


class DigestSource(Protocol):
    """Content digests of one report's arrays."""

    def digests(self, arrays: Sequence[WeightArray]) -> Mapping[str, ArrayDigest]:
        """Digests by location, including those of ``arrays`` the source can give (others are left out)."""
        ...


class NoDigests:
    """A source that gives no digests: the weight-comparing checks then find nothing to compare."""

    def digests(self, arrays: Sequence[WeightArray]) -> Mapping[str, ArrayDigest]:
        return {}
