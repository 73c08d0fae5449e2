"""Coverage-guided fuzzing of the static reader with atheris (``pip install atheris``).

    python fuzz/fuzz_inspect.py -atheris_runs=100000 fuzz/corpus/

The first byte of each input picks the file suffix the bytes are saved under; the rest is the file.
Seed the corpus with the sample models (``python fuzz/fuzz_inspect.py --seed-corpus fuzz/corpus``).
Any exception other than ReadError is a crash: add the input to tests/regressions/ as a sample.
"""

from __future__ import annotations

import sys
from pathlib import Path

SUFFIXES = (".keras", ".h5")


def test_one_input(data: bytes) -> None:
    """The atheris target: inspect the bytes as a model file."""
    from keras_share.fuzzing import inspect_bytes

    if not data:
        return
    inspect_bytes(data[1:], SUFFIXES[data[0] % len(SUFFIXES)])


def seed_corpus(folder: Path) -> None:
    """Write every sample model into ``folder`` with its suffix byte in front."""
    samples = Path(__file__).resolve().parents[1] / "sample_models"
    folder.mkdir(parents=True, exist_ok=True)
    for sample in sorted(samples.iterdir()):
        if sample.suffix in SUFFIXES and sample.is_file():
            (folder / sample.name).write_bytes(bytes([SUFFIXES.index(sample.suffix)]) + sample.read_bytes())


def main() -> None:
    """Run atheris, or seed the corpus with ``--seed-corpus FOLDER``."""
    if len(sys.argv) == 3 and sys.argv[1] == "--seed-corpus":
        seed_corpus(Path(sys.argv[2]))
        return
    import atheris

    with atheris.instrument_imports():
        import keras_share.fuzzing  # noqa: F401
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
