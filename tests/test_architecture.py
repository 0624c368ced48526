"""The one-way imports ARCHITECTURE.md draws, checked on the source: an area imports only the areas below it,
and no GPU package is imported when a module is."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hnet_genomics"
FOUNDATION = {"errors", "atomic", "devices", "options", "outputs", "layout", "config"}

# area -> the areas it may import (besides itself). The foundation modules come first, then the layers.
ALLOWED = {
    "errors": set(),
    "atomic": {"errors"},
    "devices": {"errors"},
    "options": {"errors"},
    "outputs": {"errors", "options"},
    "layout": {"errors"},
    "config": {"errors", "layout", "atomic"},
    "kernels": {"errors"},
    "data": FOUNDATION,
    "model": FOUNDATION | {"kernels"},
    "training": FOUNDATION | {"kernels", "data", "model"},
    "inference": FOUNDATION | {"kernels", "data", "model"},
    "tasks": FOUNDATION | {"kernels", "data", "model", "reporting"},  # benchmark suites write their table
    "export": FOUNDATION | {"kernels", "data", "model", "inference"},
    "reporting": FOUNDATION | {"data"},
    "cli": FOUNDATION | {"data", "training", "tasks", "export", "reporting", "model", "package"},
    "package": {"config", "errors", "model"},  # hnet_genomics/__init__.py, the public face
}
GPU_PACKAGES = ("mamba_ssm", "causal_conv1d", "flash_attn", "triton")
OPTIONAL_PACKAGES = ("huggingface_hub",)  # an extra (hub): imported where needed, which names it when missing


def area_of(module: str) -> str:
    parts = module.split(".")
    return "package" if len(parts) == 1 or parts[1] == "__init__" else parts[1]


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        yield ".".join(rel.parts).removesuffix(".__init__"), path, ast.parse(path.read_text())


def test_every_area_imports_only_the_areas_below_it():
    wrong = []
    for module, path, tree in modules():
        area = area_of(module)
        for node in ast.walk(tree):
            names = (
                [node.module]
                if isinstance(node, ast.ImportFrom) and node.module
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                if name.split(".")[0] != "hnet_genomics":
                    continue
                target = area_of(name)
                if target != area and target not in ALLOWED[area]:
                    wrong.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {area} imports {name}")
    assert wrong == [], "\n".join(wrong)


def test_every_module_belongs_to_an_area_of_the_map():
    assert {area_of(m) for m, _, _ in modules()} <= set(ALLOWED)


def test_no_gpu_or_optional_package_is_imported_at_module_top():
    """Only inside the functions that need them (our own Triton kernel modules are themselves imported lazily,
    by the dispatch table and the tests)."""
    wrong = []
    for module, path, tree in modules():
        if module.startswith("hnet_genomics.kernels.triton"):
            continue
        for node in tree.body:
            names = (
                [node.module]
                if isinstance(node, ast.ImportFrom) and node.module
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            if any(n.split(".")[0] in GPU_PACKAGES + OPTIONAL_PACKAGES for n in names):
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert wrong == [], wrong
