"""Benchmark of the tuning methods at a fixed budget of children: random search, TPE + Hyperband
(the default), the RL controller + Hyperband (``tune.method: rl``) and Population Based Training
(``tune.method: pbt``, Ray Tune), on the digits CNN and the breast-cancer MLP (sklearn's bundled
data), over several seeds.

Every method searches the same space (recipe ``tune.space``) with the same budget (``tune.trials``
children, a PBT population of that size), on the same splits (``data.seed`` 0); ``train.seed`` is the
run's seed. Each run is the whole job's path (``run_training``: tune on the validation split, train
the best child's recipe, score it on the test split). Per run: the best validation accuracy among
the children (pruned ones included), the test accuracy of the final model, and the wall time of the
search. Random, TPE and RL run single-threaded in this process; PBT on a private 2-CPU Ray cluster
(two trials at a time), so its wall time is not comparable one for one. The baseline is random
search at the same budget, measured in the same run. Results go to bench/results/tuning_methods.md
and a plot of the mean best-so-far validation accuracy against children to tuning_methods.png.

    python bench/bench_tuning_methods.py [--children 30] [--seeds 5] [--methods random,tpe,rl,pbt] [--pbt-seeds N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # support.start_ray_cluster

METHODS = {"random": "random + Hyperband", "tpe": "TPE + Hyperband", "rl": "RL controller + Hyperband",
           "pbt": "PBT (Ray Tune)"}
TASKS: dict[str, dict[str, Any]] = {
    "digits CNN": {
        "sample": "digits",
        "recipe": {"name": "digits-cnn", "data": {"seed": 0}, "process": [{"rescale": {}}, {"normalize": {}}],
                   "model": {"type": "cnn", "channels": [8, 16], "dense": [32]},
                   "train": {"epochs": 6, "batch_size": 32}, "evaluate": {"cv_folds": 0}},
        "space": {"train.lr": {"low": 1e-4, "high": 3e-2, "log": True},
                  "model.channels.0": {"choices": [4, 8, 16]}, "model.channels.1": {"choices": [8, 16, 32]},
                  "model.kernel_size": {"choices": [3, 5]}, "model.dropout": {"choices": [0.0, 0.25, 0.5]}},
    },
    "breast-cancer MLP": {
        "sample": "breast_cancer",
        "recipe": {"name": "bc-mlp", "data": {"target": "target", "seed": 0},
                   "process": [{"impute": {"strategy": "median"}}, {"normalize": {"method": "standard"}}],
                   "model": {"type": "mlp", "hidden": [32, 16]}, "train": {"epochs": 12, "batch_size": 32},
                   "evaluate": {"cv_folds": 0}},
        "space": {"train.lr": {"low": 1e-4, "high": 3e-2, "log": True},
                  "model.hidden.0": {"choices": [4, 16, 64]}, "model.hidden.1": {"choices": [4, 16, 32]},
                  "train.optimizer": {"choices": ["adam", "sgd"]}, "model.dropout": {"choices": [0.0, 0.25, 0.5]}},
    },
}


def say(what: str) -> None:
    print(f"[bench_tuning_methods {time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def best_so_far(rewards: list[float | None]) -> list[float]:
    """The best reward after each child (a child without one keeps the previous best)."""
    out: list[float] = []
    for r in rewards:
        prev = out[-1] if out else float("nan")
        out.append(r if r is not None and not (prev >= r) else prev)
    return out


def run_one(task: dict[str, Any], data: Any, method: str, seed: int, children: int) -> dict[str, Any]:
    from consortium.recipe import parse_recipe
    from consortium.training.pipeline import run_training

    base = task["recipe"]
    recipe = parse_recipe({**base, "train": {**base["train"], "seed": seed},
                           "tune": {"method": method, "trials": children, "space": task["space"]}})
    t = time.perf_counter()
    res = run_training(recipe, data)
    tuning = res.tuning or {}
    rewards = list(tuning.get("rewards") or [])
    return {"best_val": tuning.get("best_reward"), "test": res.metrics.get("accuracy"),
            "tune_s": res.timings.get("tune_s"), "total_s": time.perf_counter() - t,
            "curve": best_so_far(rewards), "n_pruned": tuning.get("n_pruned"),
            "best_params": tuning.get("best_params")}


def mean_sd(xs: list[float]) -> str:
    xs = [x for x in xs if x is not None]
    if not xs:
        return "—"
    return f"{statistics.mean(xs):.4f} ± {statistics.stdev(xs):.4f}" if len(xs) > 1 else f"{xs[0]:.4f}"


def verdict(name: str, runs: dict[str, list[dict[str, Any]]], key: str) -> str:
    """Which method has the highest mean, and whether it is clear of the runner-up by more than the
    larger of their standard deviations (else a tie)."""
    stats = {m: [r[key] for r in rs if r[key] is not None] for m, rs in runs.items()}
    stats = {m: xs for m, xs in stats.items() if xs}
    if len(stats) < 2:
        return f"{name}: one method only"
    ranked = sorted(stats, key=lambda m: statistics.mean(stats[m]), reverse=True)
    a, b = ranked[0], ranked[1]
    gap = statistics.mean(stats[a]) - statistics.mean(stats[b])
    sd = max((statistics.stdev(stats[m]) if len(stats[m]) > 1 else 0.0) for m in (a, b))
    if gap <= sd:
        tied = [m for m in ranked if statistics.mean(stats[a]) - statistics.mean(stats[m]) <= sd]
        return (f"{name}: a tie between {', '.join(METHODS[m] for m in tied)} (the best mean, {METHODS[a]}, leads "
                f"{METHODS[b]} by {gap:.4f}, within one standard deviation, {sd:.4f})")
    return f"{name}: {METHODS[a]} wins, {gap:.4f} ahead of {METHODS[b]} (more than one standard deviation, {sd:.4f})"


def plot(results: dict[str, dict[str, list[dict[str, Any]]]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        return False
    import numpy as np

    fig = Figure(figsize=(5 * len(results), 3.8), dpi=100)
    axes = fig.subplots(1, len(results), squeeze=False)[0]
    for ax, (task, runs) in zip(axes, results.items(), strict=True):
        for m, rs in runs.items():
            curves = [r["curve"] for r in rs if r["curve"]]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            mean = np.nanmean(np.array([c[:n] for c in curves], dtype=float), axis=0)
            ax.plot(range(1, n + 1), mean, marker=".", label=METHODS[m])
        ax.set_title(f"{task}: best-so-far (mean of seeds)")
        ax.set_xlabel("children")
        ax.set_ylabel("best validation accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--children", type=int, default=30, help="the budget: children per search")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--methods", default="random,tpe,rl,pbt")
    ap.add_argument("--pbt-seeds", type=int, default=None,
                    help="run PBT for the first N seeds only (it trains every child to the end, on Ray)")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "tuning_methods.md"))
    ap.add_argument("--merge", default=None, metavar="RUNS.json",
                    help="an earlier run's raw results (the .json written beside --out): its methods that this "
                         "run does not measure are reported with this run's")
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import torch

    from consortium.data.samples import load_sample

    methods = [m for m in args.methods.split(",") if m]
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [m for m in methods if m not in METHODS] + [t for t in tasks if t not in TASKS]
    if unknown:
        sys.exit(f"unknown method or task: {', '.join(unknown)}; methods: {', '.join(METHODS)}; "
                 f"tasks: {', '.join(TASKS)}")
    load = os.getloadavg()
    torch.set_num_threads(1)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {t: {m: [] for m in methods} for t in tasks}
    pbt_seeds = args.seeds if args.pbt_seeds is None else min(args.pbt_seeds, args.seeds)
    started = time.perf_counter()
    samples = {t: load_sample(TASKS[t]["sample"]) for t in tasks}
    if args.merge:  # an earlier run's methods that this one does not measure
        for t, runs in json.loads(Path(args.merge).read_text()).items():
            for m, rs in runs.items():
                if t in results and m not in methods and m in METHODS:
                    results[t][m] = rs

    def one(t: str, m: str, seed: int) -> None:
        say(f"{t} seed {seed} {m}")
        r = run_one(TASKS[t], samples[t], m, seed, args.children)
        say(f"  best val {r['best_val']}, test {r['test']}, tune {r['tune_s']:.1f} s, best {r['best_params']}")
        results[t][m].append(r)
        report(args, methods, pbt_seeds, results, load, time.perf_counter() - started)

    for t in tasks:  # in-process methods first, alternating within a seed: load drifts hit them alike
        for seed in range(args.seeds):
            for m in methods:
                if m != "pbt":
                    one(t, m, seed)
    if "pbt" in methods and pbt_seeds:  # then PBT, on a private Ray cluster
        import ray
        from support import start_ray_cluster, stop_ray_cluster

        try:
            cluster = start_ray_cluster(cpus=2)
        except RuntimeError:  # its start-up has a 60 s deadline, which a loaded machine can miss
            say("ray start failed; once more")
            cluster = start_ray_cluster(cpus=2)
        try:
            ray.init(address=cluster.address, log_to_driver=False)
            for t in tasks:
                for seed in range(pbt_seeds):
                    one(t, "pbt", seed)
        finally:
            ray.shutdown()
            stop_ray_cluster(cluster)
    print(Path(args.out).read_text())


def report(args: Any, methods: list[str], pbt_seeds: int, results: dict[str, dict[str, list[dict[str, Any]]]],
           load: tuple[float, float, float], elapsed: float) -> None:
    """Write the section (after every run, so a stopped benchmark still leaves what it measured)."""
    out = Path(args.out)
    png = out.with_suffix(".png")
    drew = plot(results, png)
    pbt_note = "" if "pbt" not in methods or pbt_seeds == args.seeds else f" (PBT: seeds 0..{pbt_seeds - 1} only)"
    lines = [
        "## Tuning methods: random, TPE + Hyperband, RL controller + Hyperband, PBT",
        "",
        f"`python bench/bench_tuning_methods.py --children {args.children} --seeds {args.seeds} --methods "
        f"{','.join(methods)}{'' if args.pbt_seeds is None else f' --pbt-seeds {args.pbt_seeds}'}` on "
        f"{platform.machine()}, {os.cpu_count()} cores, shared with other agents (load average {load[0]:.1f} at "
        f"the start); {elapsed:.0f} s in all. Budget: {args.children} children per search (a PBT population of "
        f"{args.children}); seeds 0..{args.seeds - 1}{pbt_note} (`train.seed`); the same splits (`data.seed` 0) "
        "for every run. Best val: the best validation accuracy among a search's children (pruned ones "
        "included). Test: the accuracy on the test split of the model trained with the best child's values "
        "(the best completed child by validation loss, as the job picks it). Tune s: the search's wall time. "
        "Random, TPE and RL run single-threaded in one process; PBT runs on a private 2-CPU Ray cluster, two "
        "trials at a time and every trial to its last epoch, so its wall time includes Ray's overhead and is "
        "not one-for-one comparable. TPE's first 5 children are random draws from the same seed as random "
        "search's (Optuna's startup trials), so the two agree up to child 5. Mean ± standard deviation over "
        "seeds (n: runs). Baseline: random search at the same budget."
        + (f" Rows of methods this run did not measure come from an earlier run of the same budget "
           f"(`--merge {Path(args.merge).name}`)." if args.merge else ""),
        "",
        "| task | method | n | best val accuracy | test accuracy | tune s | pruned children |",
        "|---|---|---|---|---|---|---|",
    ]
    for t, runs in results.items():
        for m, rs in runs.items():
            if not rs:
                continue
            lines.append(f"| {t} | {METHODS[m]} | {len(rs)} | {mean_sd([r['best_val'] for r in rs])} | "
                         f"{mean_sd([r['test'] for r in rs])} | {statistics.mean(r['tune_s'] for r in rs):.1f} | "
                         f"{statistics.mean(r['n_pruned'] or 0 for r in rs):.1f} |")
    lines += ["", "Which wins (a lead within one standard deviation counts as a tie):", ""]
    for t, runs in results.items():
        lines.append(f"- best val, {verdict(t, runs, 'best_val')}")
        lines.append(f"- test, {verdict(t, runs, 'test')}")
    lines += ["", "Mean best-so-far validation accuracy after k children:", ""]
    ks = sorted({k for k in (1, 3, 5, 10, 20, 30, args.children) if k <= args.children})
    lines += [f"| task | method | {' | '.join(f'k={k}' for k in ks)} |", "|---|---|" + "---|" * len(ks)]
    for t, runs in results.items():
        for m, rs in runs.items():
            if not rs:
                continue
            cells = []
            for k in ks:
                xs = [r["curve"][k - 1] for r in rs if len(r["curve"]) >= k and r["curve"][k - 1] == r["curve"][k - 1]]
                cells.append(f"{statistics.mean(xs):.4f}" if xs else "—")
            lines.append(f"| {t} | {METHODS[m]} | {' | '.join(cells)} |")
    if drew:
        lines += ["", f"![best-so-far validation accuracy against children](results/{png.name})"]
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))  # the raw runs, for --merge


if __name__ == "__main__":
    main()
