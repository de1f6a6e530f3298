"""Cross-validation: the folds cover the rows once each, the caller's fit decides the scores, and
``evaluation`` imports neither ``training`` nor ``federation`` (directly or through what it imports)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from consortium.evaluation.cross_validation import FoldPrediction, cross_validate

FORBIDDEN = ("consortium.training", "consortium.federation")


def test_each_row_is_held_out_once_and_folds_are_stratified() -> None:
    y = np.array(["a"] * 12 + ["b"] * 6, dtype=object)
    seen: list[tuple[int, np.ndarray, np.ndarray]] = []
    rows: list[dict] = []

    def fit_predict(i: int, fit_rows: np.ndarray, held_rows: np.ndarray) -> FoldPrediction:
        seen.append((i, fit_rows, held_rows))
        enc = (y[held_rows] == "b").astype(int)
        p = np.where(enc == 1, 0.9, 0.1) if i else np.full(len(enc), 0.9)  # fold 0 says "b" everywhere
        return FoldPrediction(enc, np.stack([1 - p, p], axis=1), ["a", "b"])

    cv = cross_validate(y, 3, fit_predict, task="classification", seed=0, metrics=["accuracy"], on_fold=rows.append)
    assert [i for i, _, _ in seen] == [0, 1, 2]
    held = np.concatenate([h for _, _, h in seen])
    assert sorted(held.tolist()) == list(range(len(y)))  # every row held out exactly once
    for _, fit_rows, held_rows in seen:
        assert not set(fit_rows) & set(held_rows) and len(fit_rows) + len(held_rows) == len(y)
        assert (y[held_rows] == "b").sum() == 2  # stratified: each fold keeps the 2:1 mix
    assert [m["accuracy"] for m in cv["per_fold"]] == pytest.approx([1 / 3, 1.0, 1.0])
    assert cv["summary"]["accuracy"]["mean"] == pytest.approx(7 / 9)
    assert [(r["fold"], r["folds"]) for r in rows] == [(1, 3), (2, 3), (3, 3)]


def test_regression_folds_score_values() -> None:
    y = np.linspace(0.0, 1.0, 20)
    cv = cross_validate(y, 4, lambda i, a, b: FoldPrediction(y[b], y[b] + 0.5, []), task="regression")
    assert cv["summary"]["mae"]["mean"] == pytest.approx(0.5) and cv["summary"]["mse"]["std"] == pytest.approx(0.0)


def _imports(path: Path) -> set[str]:
    """Every ``consortium.*`` module a file imports, at the top or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in out if m.startswith("consortium.")}


def test_evaluation_imports_neither_training_nor_federation() -> None:
    root = Path(importlib.util.find_spec("consortium.evaluation").origin).parent  # type: ignore[arg-type, union-attr]
    todo = [p for p in root.glob("*.py")]
    done: set[Path] = set()
    reached: dict[str, Path] = {}
    while todo:
        path = todo.pop()
        if path in done:
            continue
        done.add(path)
        for name in _imports(path):
            bad = [f for f in FORBIDDEN if name == f or name.startswith(f + ".")]
            assert not bad, f"{path.name} imports {name} (reached from consortium.evaluation)"
            try:
                spec = importlib.util.find_spec(name)
            except ModuleNotFoundError:  # ``from package import function``: the package is listed too
                continue
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                reached[name] = Path(spec.origin)
                todo.append(Path(spec.origin))
    assert "consortium.processing.preprocessor" in reached  # the walk follows imports
