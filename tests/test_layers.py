"""The layer contract, read from the source with `ast`: imports point one way, all under `hashpivot`.

    models  <-  feeds  <-  optimizer.forecast  <-  optimizer.milp  <-  optimizer.pipeline
            <-  optimizer.studies | optimizer.service (neither imports the other)  <-  optimizer.cli

Below the CLI no module imports hashpivot code inside a function (the habit of dodging an import cycle);
the CLI does so on purpose, to keep `--help` and `solve` from loading every library.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hashpivot.feeds.registry import SOURCES
from hashpivot.models.series import FEED_GROUPS, FEED_SOURCES

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"models": "hashpivot.models", "feeds": "hashpivot.feeds", "optimizer": "hashpivot.optimizer",
            "configs": "hashpivot.configs"}
LAYERS = [  # (module prefix, rank): a module may import only from prefixes of lower or equal rank
    ("hashpivot.models", 0),
    ("hashpivot.configs", 0),
    ("hashpivot.feeds", 1),
    ("hashpivot.optimizer.forecast", 2),
    ("hashpivot.optimizer.peak_forecast", 2),
    ("hashpivot.optimizer.milp", 3),
    ("hashpivot.optimizer.pipeline", 4),
    ("hashpivot.optimizer.studies", 5),
    ("hashpivot.optimizer.service", 5),
    ("hashpivot.optimizer.console", 5),  # the operator console (web page): beside the service it reads
    ("hashpivot.optimizer.cli", 6),
    ("hashpivot.optimizer", 6),  # the package's own __init__
]
SIBLINGS_APART = {("hashpivot.optimizer.studies", "hashpivot.optimizer.service"),
                  ("hashpivot.optimizer.service", "hashpivot.optimizer.studies")}


def layer(module: str) -> tuple[str, int]:
    for prefix, rank in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return prefix, rank
    raise AssertionError(f"{module}: in no layer")


def source_modules():
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            yield ".".join((package, *parts)), path


def imports(tree: ast.Module):
    """(imported module, line, at module level?) for every import in the file."""
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) in top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno, id(node) in top


def contract_breaches(module: str, tree: ast.Module) -> list[str]:
    out = []
    own_prefix, own_rank = layer(module)
    for name, line, at_top in imports(tree):
        if name.split(".")[0] in PACKAGES:
            out.append(f"{module}:{line}: imports {name!r}: install-level name, use hashpivot.{name}")
            continue
        if not name.startswith("hashpivot."):
            continue
        prefix, rank = layer(name)
        if rank > own_rank or (own_prefix, prefix) in SIBLINGS_APART:
            out.append(f"{module}:{line}: imports {name} ({prefix}) from the lower layer {own_prefix}")
        if not at_top and own_prefix != "hashpivot.optimizer.cli":
            out.append(f"{module}:{line}: imports {name} inside a function (import cycles are fixed by layering)")
    return out


def test_imports_point_one_way_under_the_hashpivot_namespace():
    breaches = []
    for module, path in source_modules():
        breaches += contract_breaches(module, ast.parse(path.read_text(encoding="utf-8")))
    assert breaches == []


@pytest.mark.parametrize("source, module, expected", [
    ("from hashpivot.optimizer.milp.solve import solve", "hashpivot.feeds.collect", "from the lower layer hashpivot.feeds"),
    ("from models.config import SiteConfig", "hashpivot.feeds.store", "install-level name"),
    ("from hashpivot.optimizer.studies.sweep import run_sweep", "hashpivot.optimizer.service.daemon", "lower layer"),
    ("def f():\n    from hashpivot.models.errors import DataError", "hashpivot.feeds.store", "inside a function"),
])
def test_the_contract_catches_each_kind_of_breach(source, module, expected):
    breaches = contract_breaches(module, ast.parse(source))
    assert len(breaches) == 1 and expected in breaches[0]


def test_the_cli_may_import_lazily_and_upward_imports_of_lower_layers_are_fine():
    source = "from hashpivot.models.config import SiteConfig\ndef f():\n    from hashpivot.optimizer.milp.solve import solve"
    assert contract_breaches("hashpivot.optimizer.cli.solve", ast.parse(source)) == []


def test_the_source_names_config_validates_are_the_registry_s():
    assert sorted({s.name for s in SOURCES}) == sorted(FEED_SOURCES)
    assert {s.group for s in SOURCES} <= set(FEED_GROUPS)
