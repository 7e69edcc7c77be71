"""The layers of docs/architecture.md: a module imports only from its own layer or those below."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "seqmodel"
# Layer -> the seqmodel layers it may import (besides itself); `errors` is open to all.
ALLOWED = {
    "runtime": set(),
    "io": {"runtime"},
    "data": {"io", "runtime"},
    "models": {"data", "io", "plots"},  # plots: figures from arrays (the wandb callback draws them)
}
ENTRY_POINTS = {"train", "predict", "evaluate", "prepare", "simulate_cli", "explain", "score_variants"}


def _layer(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imported_layers(path: Path) -> set[str]:
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "seqmodel" and len(parts) > 1:
                layers.add(parts[1])
    return layers


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_point_down(layer):
    offences = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for imported in _imported_layers(path) - {layer, "errors"}:
            if imported not in ALLOWED[layer]:
                offences.append(f"{path.relative_to(PACKAGE)} imports seqmodel.{imported}")
    assert not offences, offences


def test_nothing_below_the_entry_points_imports_them():
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if _layer(path) in ENTRY_POINTS:
            continue
        for imported in _imported_layers(path) & ENTRY_POINTS:
            offences.append(f"{path.relative_to(PACKAGE)} imports seqmodel.{imported}")
    assert not offences, offences
