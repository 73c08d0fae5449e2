"""HDF5 pieces that several test modules write."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def virtual_layout(folder: Path) -> h5py.VirtualLayout:
    """A 4-element float32 virtual layout whose values live in ``folder/source.h5``, another file."""
    source = folder / "source.h5"
    with h5py.File(source, "w") as h5:
        h5.create_dataset("data", data=np.arange(4, dtype="float32"))
    layout = h5py.VirtualLayout(shape=(4,), dtype="float32")
    layout[:] = h5py.VirtualSource(str(source), "data", shape=(4,))
    return layout
