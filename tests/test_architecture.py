"""The dependency direction holds: import-linter checks the contracts in pyproject.toml
(``[tool.importlinter]``: the layers, the CLI through the SDK, the SDK a client, no web or SQL
in training, evaluation, the serving core and the Flower apps, evaluation alone, no cycles),
imports inside functions and under TYPE_CHECKING included. About a second."""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import consortium.serving

ROOT = Path(__file__).resolve().parents[1]


def _contract(contract_id: str) -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return next(c for c in config["contracts"] if c["id"] == contract_id)


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    out = run.stdout + run.stderr
    assert run.returncode == 0, f"lint-imports found a broken contract (exit {run.returncode}):\n{out}"
    analyzed = re.search(r"Analyzed (\d+) files", out)
    assert analyzed and int(analyzed.group(1)) > 200, f"the import graph looks empty:\n{out}"
    assert re.search(r"Contracts: (\d+) kept, 0 broken", out), out


def test_the_serving_core_rule_names_every_serving_module_outside_its_hub_side() -> None:
    """The no-web-no-sql contract lists serving's modules one by one (serving.hub, its side on the
    hub's database, is the exception): a new module must join the list, or move into serving.hub."""
    listed = set(_contract("no-web-no-sql")["source_modules"])  # type: ignore[arg-type]
    modules = {f"consortium.serving.{m.name}" for m in pkgutil.iter_modules(consortium.serving.__path__)
               if m.name != "hub"}
    assert modules, "found no serving modules"
    missing = sorted(modules - listed)
    assert not missing, f"add {missing} to the no-web-no-sql contract in pyproject.toml, or move them into serving.hub"
