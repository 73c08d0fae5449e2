"""An HDF5 tree as plain Python: what the reader child sends back, and what the format readers match configs to."""

from __future__ import annotations

from dataclasses import dataclass, field

from keras_share.read.base import ArrayDigest, WeightArray, WeightIndex


@dataclass(frozen=True)
class StoredDataset:
    """A dataset's metadata, and its digest when it was small enough to hash on the way.

    ``shape`` is None for a dataset that cannot be described without reading outside the file (a
    virtual dataset) or whose metadata is damaged.
    """

    shape: tuple[int, ...] | None
    dtype: str
    digest: ArrayDigest | None = None
    origin: str = ""
    """For weights spread over several files (shards), the name of the file it was read from; else empty."""

    def weight(self, name: str, location: str, index: WeightIndex) -> WeightArray | None:
        """This dataset as the weight array ``name`` at ``location``, its digest kept in ``index``'s digests;
        None when it could not be described."""
        if self.shape is None:
            return None
        if self.digest is not None:
            index.digests[location] = self.digest
        return WeightArray(name, self.shape, self.dtype, location)


@dataclass
class StoredGroup:
    """A group: its members in the order HDF5 lists them, and the string attributes asked for."""

    members: dict[str, StoredGroup | StoredDataset] = field(default_factory=dict)
    attrs: dict[str, str] = field(default_factory=dict)

    def groups(self) -> list[tuple[str, StoredGroup]]:
        """Member groups, in order."""
        return [(name, member) for name, member in self.members.items() if isinstance(member, StoredGroup)]

    def datasets(self) -> list[tuple[str, StoredDataset]]:
        """Member datasets, in order."""
        return [(name, member) for name, member in self.members.items() if isinstance(member, StoredDataset)]

    def origins(self) -> set[str]:
        """The files (shards) the datasets below this group were read from, when they carry one."""
        found: set[str] = set()
        pending = [self]
        while pending:
            for member in pending.pop().members.values():
                if isinstance(member, StoredGroup):
                    pending.append(member)
                elif member.origin:
                    found.add(member.origin)
        return found

    def group(self, path: str) -> StoredGroup | None:
        """The group at ``a/b/c`` below this one, or None."""
        current: StoredGroup | StoredDataset | None = self
        for part in path.split("/"):
            if part and isinstance(current, StoredGroup):
                current = current.members.get(part)
            elif part:
                return None
        return current if isinstance(current, StoredGroup) else None
