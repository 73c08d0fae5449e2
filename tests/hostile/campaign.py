"""Run many fresh variants of every hostile-input class and print which promises broke.

    python tests/hostile/campaign.py                 # 100 variants of each class
    python tests/hostile/campaign.py --variants 20 fifo symlink-escape

Exit 1 when any variant broke a promise (exit code, 5 s, 300 MB, nothing ran, nothing read outside the
input, nothing injected into the output).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from harness import ATTACKS, run_attack  # noqa: E402


def load_attacks() -> None:
    """Import every ``test_*.py`` of this folder: each registers its builders."""
    for module in sorted(HERE.glob("test_*.py")):
        importlib.import_module(module.stem)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=1000, help="seeds the tests do not use")
    parser.add_argument("classes", nargs="*", help="attack classes (default: all)")
    options = parser.parse_args()
    load_attacks()
    names = options.classes or sorted(ATTACKS)
    failed = 0
    print(f"{'class':<28} {'runs':>5} {'broken':>6} {'max s':>6} {'max MB':>7}  exit codes")
    for name in names:
        worst_seconds, worst_bytes, broken, codes = 0.0, 0, 0, set()
        for seed in range(options.first_seed, options.first_seed + options.variants):
            with tempfile.TemporaryDirectory(prefix=f"hostile-{name}-") as folder:
                Path(folder).chmod(0o755)
                _, outcome, sentences = run_attack(ATTACKS[name], Path(folder), seed)
            worst_seconds = max(worst_seconds, outcome.seconds)
            worst_bytes = max(worst_bytes, outcome.peak_bytes)
            codes.add(outcome.status)
            if sentences:
                broken += 1
                print(f"  {name} seed {seed}: " + "; ".join(sentences), file=sys.stderr)
        failed += broken
        print(f"{name:<28} {options.variants:>5} {broken:>6} {worst_seconds:>6.2f} {worst_bytes / (1 << 20):>7.0f}  "
              f"{sorted(codes)}")
    started = time.strftime("%Y-%m-%d %H:%M")
    print(f"{started}: {failed} broken variant(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
