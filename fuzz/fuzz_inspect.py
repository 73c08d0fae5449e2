"""Coverage-guided fuzzing of the static reader and every output format with atheris (``pip install atheris``).

    python fuzz/fuzz_inspect.py -atheris_runs=100000 fuzz/corpus/

The first byte of each input picks how the rest is saved (a ``.keras`` file, an ``.h5`` file, or the
unzipped folder form of a ``.keras``, its members split at ``keras_share.fuzzing.MEMBER_SEPARATOR``), the
second byte the output format (every ``--format``, and ``--all-layers``). Seed the corpus with the sample
models (``python fuzz/fuzz_inspect.py --seed-corpus fuzz/corpus``). Any exception other than ReadError is
a crash, an injected output line included: add the input to tests/regressions/ as a sample.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path


def test_one_input(data: bytes) -> None:
    """The atheris target: ``keras_share.fuzzing.fuzz_one_input``."""
    from keras_share.fuzzing import fuzz_one_input

    fuzz_one_input(data)


def seed_corpus(folder: Path) -> None:
    """Write every sample model, in each output format, into ``folder``: ``.keras`` and ``.h5`` files as they
    are, and each ``.keras`` also in the folder form."""
    from keras_share.fuzzing import FOLDER_MEMBERS, MEMBER_SEPARATOR, OUTPUTS, encode_input

    samples = Path(__file__).resolve().parents[1] / "sample_models"
    folder.mkdir(parents=True, exist_ok=True)
    for sample in sorted(samples.iterdir()):
        if sample.suffix not in (".keras", ".h5") or not sample.is_file():
            continue
        inputs = {sample.suffix: sample.read_bytes()}
        if sample.suffix == ".keras":
            with zipfile.ZipFile(sample) as archive:
                inputs["folder"] = MEMBER_SEPARATOR.join(archive.read(member) for member in FOLDER_MEMBERS)
        for layout, payload in inputs.items():
            for output in OUTPUTS:
                name = f"{sample.stem}-{layout.lstrip('.')}-{output}"
                (folder / name).write_bytes(encode_input(layout, output, payload))


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
