"""The layers of keras_share, stated as a contract on its imports (every import, lazy ones inside functions too).

    read -> graph -> analysis -> rules -> render, wired by pipeline; cli, api and testing on top.

* ``read`` (file formats, the reader child) knows nothing above it.
* ``read.base`` holds the plain results every layer may name (ModelFile, WeightArray, ArrayDigest,
  BytecodeSite); no layer above ``read`` imports any other ``read`` module, but ``live`` (a reader of live
  objects and of files loaded with Keras) and the wiring (``batch``, ``pipeline``, ``cli``).
* ``analysis`` never reads files; ``rules`` never start processes (digests come through a DigestSource);
  ``render`` knows no rule registry and no file format.
* ``errors``, ``limits``, ``configs`` and ``settings`` are leaves anyone may use; ``cli`` is imported by
  ``__main__`` alone, and nothing below the wiring imports ``pipeline``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "keras_share"
LEAVES = ("keras_share.errors", "keras_share.limits", "keras_share.configs", "keras_share.vocabulary")
"""Importable from anywhere, as is the package root's ``__version__``."""
PLAIN_TYPES = ("keras_share.read.base",)

ALLOWED: dict[str, tuple[str, ...]] = {
    "keras_share": ("keras_share.api",),
    "keras_share.errors": (),
    "keras_share.limits": (),
    "keras_share.vocabulary": (),
    "keras_share.configs": ("keras_share.limits",),
    "keras_share.settings": (),
    "keras_share.read": ("keras_share.read",),
    "keras_share.graph": ("keras_share.graph", *PLAIN_TYPES),
    "keras_share.analysis": ("keras_share.analysis", "keras_share.graph", *PLAIN_TYPES),
    "keras_share.rules": ("keras_share.rules", "keras_share.analysis", "keras_share.graph", "keras_share.settings",
                          *PLAIN_TYPES),
    "keras_share.render": ("keras_share.render", "keras_share.analysis", "keras_share.graph", *PLAIN_TYPES),
    "keras_share.live": ("keras_share.live", "keras_share.rules", "keras_share.analysis", "keras_share.graph",
                         "keras_share.read"),
    "keras_share.batch": ("keras_share.analysis.report", "keras_share.read"),
    "keras_share.pipeline": ("keras_share.batch", "keras_share.live", "keras_share.rules", "keras_share.analysis",
                             "keras_share.graph", "keras_share.read", "keras_share.settings"),
    "keras_share.api": ("keras_share.pipeline", "keras_share.live.report", "keras_share.analysis.report",
                        "keras_share.settings"),
    "keras_share.testing": ("keras_share.api", "keras_share.rules"),
    "keras_share.fuzzing": ("keras_share.pipeline", "keras_share.render", "keras_share.analysis.report",
                            *PLAIN_TYPES),
    "keras_share.cli": ("keras_share",),
    "keras_share.__main__": ("keras_share.cli",),
}
"""For each module or package: the modules (or packages) it may import, besides ``LEAVES``. The package root
``keras_share`` is a facade that imports ``api`` lazily: its other names than ``__version__`` count as imports
of ``api``. A new top-level module needs its own entry."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """The keras_share modules ``name`` imports anywhere in its source: ``from keras_share import x`` imports
    ``keras_share.x`` when it is a module, the root for ``__version__``, ``keras_share.api`` for the rest."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "keras_share")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "keras_share":
                continue
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in MODULES:
                    found.add(submodule)
                elif node.module == "keras_share":
                    found.add("keras_share" if alias.name == "__version__" else "keras_share.api")
                else:
                    found.add(node.module)
    return found - {name}


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _rule_for(name: str) -> str:
    return max((key for key in ALLOWED if key == name or key != "keras_share" and _within(name, key)), key=len)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_imports_only_its_own_layer_and_those_below(name: str) -> None:
    allowed = ALLOWED[_rule_for(name)] + LEAVES
    upward = sorted(module for module in _imports(name)
                    if module != "keras_share" and not any(_within(module, ok) for ok in allowed))
    assert upward == [], f"{name} imports {upward}: outside its layer (see ALLOWED in {Path(__file__).name})"


def test_only_main_imports_the_command_line() -> None:
    importers = sorted(name for name in MODULES if "keras_share.cli" in _imports(name))
    assert importers == ["keras_share.__main__"]


def test_the_rules_start_no_process_and_read_no_file() -> None:
    """Digests come through the DigestSource the pipeline hands them (read.arrays forks a reader child)."""
    readers = {"keras_share.read.arrays", "keras_share.read.deadline", "keras_share.read.detect"}
    for name in MODULES:
        if _within(name, "keras_share.rules"):
            assert not readers & _imports(name), name


def test_the_renderers_know_no_rule_registry() -> None:
    for name in MODULES:
        if _within(name, "keras_share.render"):
            assert not any(_within(module, "keras_share.rules") for module in _imports(name)), name


def test_the_imports_form_no_circle() -> None:
    """No chain of imports (lazy ones too) leads from a module back to itself, across packages."""
    def package(name: str) -> str:
        return ".".join(name.split(".")[:2])

    graph = {name: {package(module) for module in _imports(name)} - {package(name)} for name in MODULES}
    packages: dict[str, set[str]] = {}
    for name, targets in graph.items():
        packages.setdefault(package(name), set()).update(targets)
    packages.pop("keras_share", None)  # the facade: imports api lazily, is imported for __version__
    for start in packages:
        seen: set[str] = set()
        todo = [target for target in packages[start] if target in packages]
        while todo:
            current = todo.pop()
            assert current != start, f"an import circle through {start}"
            if current not in seen:
                seen.add(current)
                todo.extend(target for target in packages.get(current, ()) if target in packages)
