"""Benchmark of the training core: the platform's ``train_epochs`` against a plain PyTorch loop.

Same model (digits CNN from ``build_model``, same seed and initial weights), same preprocessed
data, same epochs, batch size, optimizer and threads (torch.set_num_threads(2)); the two are run
alternately in the same process, ``--repeats`` times each, and compared by median. Also times a
tuning run (TPE + Hyperband) and records the quality floors of the test suite. Results go to
bench/results/training.md.

    python bench/bench_training.py [--repeats 3] [--epochs 12]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from consortium.data.samples import load_sample  # noqa: E402
from consortium.processing import Preprocessor, train_val_test_split  # noqa: E402
from consortium.recipe import parse_recipe  # noqa: E402
from consortium.training.models import build_model  # noqa: E402
from consortium.training.pipeline import run_training  # noqa: E402
from consortium.training.trainer import seed_everything, train_epochs  # noqa: E402
from consortium.training.tuning import tune  # noqa: E402

DIGITS = {
    "name": "digits-cnn",
    "process": [{"rescale": {}}, {"normalize": {}}],
    "model": {"type": "cnn", "channels": [32, 64], "dense": [128]},
    "train": {"epochs": 12, "lr": 0.002, "batch_size": 32, "schedule": {"type": "cosine"}, "seed": 0},
}
BC = {
    "name": "bc-mlp",
    "data": {"target": "target", "seed": 0},
    "process": [{"impute": {"strategy": "median"}}, {"normalize": {"method": "standard"}}],
    "model": {"type": "mlp", "hidden": [32, 16]},
    "train": {"epochs": 40, "lr": 0.003, "early_stopping": {"patience": 5}},
    "evaluate": {"cv_folds": 3},
}


def plain_loop(
    model: torch.nn.Module, X: np.ndarray, y: np.ndarray, epochs: int, lr: float, batch: int, seed: int
) -> float:
    """The textbook loop: Adam, cross-entropy, shuffled mini-batches by index. Returns the last loss."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    last = 0.0
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(Xt), generator=gen)
        for i in range(0, len(Xt), batch):
            idx = order[i : i + batch]
            opt.zero_grad()
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            last = loss.item()
        sched.step()
    return last


def dataloader_loop(
    model: torch.nn.Module, X: np.ndarray, y: np.ndarray, epochs: int, lr: float, batch: int, seed: int
) -> float:
    """The other common idiom: TensorDataset + DataLoader(shuffle=True)."""
    from torch.utils.data import DataLoader, TensorDataset

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = torch.nn.CrossEntropyLoss()
    loader = DataLoader(
        TensorDataset(torch.from_numpy(X), torch.from_numpy(y)),
        batch_size=batch,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    last = 0.0
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            last = loss.item()
        sched.step()
    return last


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--loop-only", action="store_true", help="skip tuning and quality floors; print only")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "training.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    recipe = parse_recipe(DIGITS)
    digits = load_sample("digits")
    tr, va, te = train_val_test_split(digits.labels, seed=0)
    prep = Preprocessor.fit(digits.subset(tr), recipe.process)
    X, y = prep.transform(digits.subset(tr))
    X_va, y_va = prep.transform(digits.subset(va))
    spec = recipe.train.model_copy(update={"epochs": args.epochs})

    def fresh() -> torch.nn.Module:
        seed_everything(0)
        return build_model(recipe.model, prep.output_shape, 10)

    times: dict[str, list[float]] = {"platform": [], "plain": [], "dataloader": []}
    final: dict[str, float] = {}
    fresh()(torch.from_numpy(X[:32])).sum().backward()  # warm-up (first-call allocations)
    for _ in range(args.repeats):
        for name in ("plain", "platform", "dataloader"):
            model = fresh()
            t = time.perf_counter()
            if name == "platform":
                hist = train_epochs(model, X, y, spec, task="classification", epochs=args.epochs, seed=0)
                final[name] = hist[-1]["loss"]
            elif name == "plain":
                final[name] = plain_loop(model, X, y, args.epochs, spec.lr, spec.batch_size, 0)
            else:
                final[name] = dataloader_loop(model, X, y, args.epochs, spec.lr, spec.batch_size, 0)
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    overhead = med["platform"] / med["plain"] - 1.0
    overhead_min = best["platform"] / best["plain"] - 1.0
    if args.loop_only:
        print({k: [round(x, 2) for x in v] for k, v in times.items()}, f"overhead {overhead * 100:+.1f}%")
        return

    # tuning: TPE + Hyperband on the digits CNN
    tune_recipe = parse_recipe(
        {
            **DIGITS,
            "model": {"type": "cnn", "channels": [16, 32], "dense": [64]},
            "train": {**DIGITS["train"], "epochs": 9},
            "tune": {
                "trials": 12,
                "space": {
                    "train.lr": {"low": 1e-4, "high": 3e-2, "log": True},
                    "model.dense.0": {"choices": [32, 64, 128]},
                },
            },
        }
    )
    t = time.perf_counter()
    _, summary = tune(
        tune_recipe, X, y, X_va, y_va, task="classification", input_shape=prep.output_shape, n_outputs=10
    )
    tune_s = time.perf_counter() - t
    epochs_run = sum(tr_["epochs"] for tr_ in summary["trials"])

    floors = []
    for rec, floor in ((DIGITS, 0.97), (BC, 0.95)):
        t = time.perf_counter()
        res = run_training(rec, load_sample("digits" if rec is DIGITS else "breast_cancer"))
        floors.append(
            (
                rec["name"],
                floor,
                res.metrics["accuracy"],
                res.metrics["f1_macro"],
                res.cv["summary"]["accuracy"] if res.cv else None,
                time.perf_counter() - t,
                res.timings,
            )
        )

    per_epoch = {k: v / args.epochs for k, v in med.items()}
    n_params = sum(p.numel() for p in fresh().parameters())
    n_trials = len(summary["trials"])
    lines = [
        "# Training core: platform loop vs. plain PyTorch",
        "",
        f"Digits CNN (channels [32, 64], dense [128], {n_params:,} parameters), "
        f"{len(X)} training images 1x8x8, {args.epochs} epochs, batch {spec.batch_size}, "
        f"Adam + cosine schedule, torch.set_num_threads({args.threads}), {platform.machine()}, "
        f"torch {torch.__version__}. Same seed and initial weights; runs alternate, "
        f"median of {args.repeats}.",
        "",
        "| loop | median s | min s | s / epoch (median) | ratio to plain (median) | ratio to plain (min) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, label in (
        ("plain", "plain PyTorch loop (baseline)"),
        ("platform", "platform `train_epochs`"),
        ("dataloader", "plain loop with DataLoader"),
    ):
        lines.append(
            f"| {label} | {med[name]:.2f} | {best[name]:.2f} | {per_epoch[name]:.3f} | "
            f"{med[name] / med['plain']:.2f}x | {best[name] / best['plain']:.2f}x |"
        )
    lines += [
        "",
        f"Overhead of the platform loop: {overhead * 100:+.1f}% by median, "
        f"{overhead_min * 100:+.1f}% by best run (goal <= 10%). The machine's 2 cores are shared with "
        "other work, so single runs vary; the minimum is the least disturbed. "
        "Final train loss (platform: epoch mean; plain: last batch): "
        + ", ".join(f"{k} {v:.4f}" for k, v in final.items())
        + ". All runs: "
        + "; ".join(f"{k} {', '.join(f'{v:.2f}' for v in vs)} s" for k, vs in times.items())
        + ".",
        "",
        "## Tuning (Optuna TPE sampler + Hyperband pruner)",
        "",
        f"Digits CNN (channels [16, 32]), {n_trials} trials of up to 9 epochs, search over lr (log) "
        f"and dense width: wall time {tune_s:.1f} s; {summary['n_complete']} complete, "
        f"{summary['n_pruned']} pruned by Hyperband; {epochs_run} epochs trained of {n_trials * 9} "
        f"without pruning; best val loss {summary['best_value']:.4f} with {summary['best_params']}.",
        "",
        "## Quality floors (fixed seeds; `run_training` end to end: split, fit, train, test, CV, ONNX)",
        "",
        "| recipe | floor (test accuracy) | test accuracy | test F1 macro | CV accuracy | wall s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, floor, acc, f1, cv, wall, _ in floors:
        cv_s = f"{cv['mean']:.3f} ± {cv['std']:.3f}" if cv else "-"
        lines.append(f"| {name} | {floor:.2f} | {acc:.4f} | {f1:.4f} | {cv_s} | {wall:.1f} |")
    lines += ["", "Command: `python bench/bench_training.py`", ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
