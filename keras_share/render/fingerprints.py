"""Stable fingerprints of findings: the same finding gets the same one on every run and checkout.

SARIF's ``partialFingerprints`` (code scanning tells new alerts from old ones by them) and ``--baseline`` (a
finding whose fingerprint an earlier run's report holds is not new) share this one definition.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

from keras_share.render.paths import relative_to_root, source_root

FINGERPRINT = "keras-share/v1"
"""The name of the fingerprint scheme (SARIF's ``partialFingerprints`` key): a hash of the rule, the input's path
and the layer."""


class Fingerprints:
    """Fingerprints of one run's findings, in the order they are met: a repeat of the same rule, file and layer is
    told apart by its rank."""

    def __init__(self, root: str | None = None) -> None:
        """``root``: where paths are relative to (None: ``GITHUB_WORKSPACE``, else the working directory)."""
        self.root = root or source_root()
        self.seen: Counter[str] = Counter()

    def path(self, path: str) -> str:
        """The input's path relative to the root, or absolute when it lies outside."""
        return relative_to_root(path, self.root) or Path(os.path.abspath(path)).as_posix()

    def of(self, rule: str, path: str, layer: str = "") -> str:
        """The fingerprint (a hex SHA-256) of the next finding of ``rule`` on ``layer`` of the input at ``path``."""
        key = "\0".join((rule, self.path(path), layer))
        self.seen[key] += 1
        if self.seen[key] > 1:
            key += f"\0{self.seen[key]}"
        return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
