"""The import rules of docs/architecture.md hold: every ``assoc_lightning`` import in the
package, top-level or inside a function, goes where its layer may go."""

from __future__ import annotations

import ast

from tests.conftest import ROOT

PACKAGE = ROOT / "assoc_lightning"

# layer (a module prefix) -> the prefixes it may import; the most specific layer applies
ALLOWED = {
    "cli": ("",),
    "retrieve": ("retrieve", "methods", "data", "eval", "nn", "utils", "errors"),
    "runs": ("runs", "utils", "errors"),
    "augmentation": ("augmentation", "nn", "utils", "errors"),
    "methods": ("methods", "nn", "losses", "features", "utils", "errors", "data.protocols"),
    "eval": ("eval", "utils", "errors", "data.protocols"),
    "features": ("features", "nn.towers", "utils", "errors"),
    "nn": ("nn", "losses", "utils", "errors"),
    "losses": ("losses", "utils", "errors"),
    "utils": ("utils", "errors"),
    "errors": (),
    "data": ("data", "utils", "errors"),
    "data.io": ("data.io", "data.errors", "utils", "errors"),
    "data.datasets": ("data.datasets", "data.io", "data.errors", "utils", "errors"),
    "data.datamodules": (
        "data.datamodules",
        "data.datasets",
        "data.io",
        "data.base",
        "data.errors",
        "errors",
    ),
    "data.protocols": ("data", "errors"),
}


def module_name(path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def imports(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    prefix = "assoc_lightning."
    return {m[len(prefix) :] for m in found if m.startswith(prefix)} | (
        {""} if "assoc_lightning" in found else set()
    )


def layer_of(module: str) -> str:
    matches = [k for k in ALLOWED if module == k or module.startswith(k + ".")]
    return max(matches, key=len) if matches else ""


def under(module: str, prefix: str) -> bool:
    return prefix == "" or module == prefix or module.startswith(prefix + ".")


def test_every_import_respects_its_layer():
    broken = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        layer = layer_of(module)
        if not layer:
            continue  # the package root (__init__)
        for target in sorted(imports(path)):
            if not any(under(target, ok) for ok in ALLOWED[layer]):
                broken.append(f"{module} ({layer}) imports {target}")
    assert not broken, "\n".join(broken)


def test_the_rules_catch_a_violation():
    assert not any(under("data.datasets.mnist", ok) for ok in ALLOWED["data.io"])
    assert not any(under("eval.callbacks", ok) for ok in ALLOWED[layer_of("methods.cmcr")])
    assert layer_of("data.datasets.digits") == "data.datasets"
