"""Federated vs centralized training: accuracy, time per round, engine overhead, scale, DP cost.

Run: ``PYTHONPATH=src .venv/bin/python bench/bench_federation.py [--deployment]``; writes
``bench/results/federation.md``. ``--dp-round-cost`` only prints the time per round of a small DP
job against the same job without DP (seconds; no file written). Engine: the in-process
simulation engine (Flower's LinkState, InMemoryGrid and message loop, thread backend), same
ServerApp/ClientApp as a deployment.
``--deployment`` adds one run on real flower-superlink / flower-supernode processes.
``--deployment-compare [N]`` only compares, in one run, the deployment engine as the hub runs it
(SuperNodes polling every 0.25 s, ClientApps forked from a warm SuperExec) against the same
ServerApp/ClientApp on Flower 1.42's stock processes (``flower-supernode``: 3 s idle poll, a
``flwr-clientapp`` process per message), N runs of each alternating (default 1), 3 SuperNodes,
breast_cancer, 3 rounds x 1 epoch; it rewrites that section of ``federation.md``.
``--deployment-scale [NODES]`` only runs one job on NODES (default 20) SuperNodes on loopback:
seconds per round, and the peak RSS of the job's worker, SuperLink and nodes.
``--sites-compare [N]`` only compares the multisite example's consortium (hub and three sites as
network namespaces; needs root) with the same processes on loopback, N runs of each alternating.
Baseline, measured in the same run: the same model trained centrally on the union of the
organizations' rows for the same number of epochs (rounds x local epochs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from consortium.data.samples import load_sample, partition  # noqa: E402
from consortium.federation.app.features import local_stats, merge_stats, to_arrays  # noqa: E402
from consortium.federation.app.model import encode_labels, global_model  # noqa: E402
from consortium.federation.engine.simulation import run_simulation  # noqa: E402
from consortium.recipe import parse_recipe  # noqa: E402
from consortium.training.trainer import evaluate, train_epochs  # noqa: E402

ROUNDS, LOCAL_EPOCHS = 5, 2
MODELS = {
    "digits": {"process": [{"rescale": {"factor": 16.0}}],
               "model": {"type": "cnn", "channels": [16], "dense": [32]}, "train": {"lr": 0.005}},
    "breast_cancer": {"process": [{"normalize": {"method": "standard"}}],
                      "model": {"type": "mlp", "hidden": [16]}, "train": {"lr": 0.01}},
}


def recipe(name: str, nodes: int, **fed: Any) -> Any:
    spec = MODELS[name]
    return parse_recipe({"name": f"bench-{name}", "process": spec["process"], "model": spec["model"],
                         "train": {**spec["train"], "batch_size": 32, "seed": 0},
                         "federated": {"datasets": [f"org{i}/{name}" for i in range(nodes)],
                                       "rounds": fed.pop("rounds", ROUNDS),
                                       "local_epochs": fed.pop("local_epochs", LOCAL_EPOCHS),
                                       "min_nodes": min(2, nodes), **fed}})


def split(data: Any, seed: int = 0) -> tuple[Any, Any]:
    order = np.random.default_rng(seed).permutation(data.n_rows)
    cut = int(0.75 * len(order))
    return data.subset(np.sort(order[:cut])), data.subset(np.sort(order[cut:]))


def centralized(r: Any, train: Any, test: Any) -> tuple[float, float]:
    x, y_raw = to_arrays(train, r.data.target, r.process)
    stats = merge_stats([local_stats(x, y_raw, train.kind)])
    model = global_model(r, stats)
    t0 = time.perf_counter()
    train_epochs(model, x, encode_labels(y_raw, r, stats), r.train, task="classification",
                 epochs=ROUNDS * LOCAL_EPOCHS, seed=0)
    secs = time.perf_counter() - t0
    xt, yt = to_arrays(test, r.data.target, r.process)
    acc = evaluate(model, xt, encode_labels(yt, r, stats), loss="cross_entropy")
    return float(acc["accuracy"]), secs


def federated(r: Any, parts: dict[str, Any], test: Any) -> dict[str, Any]:
    res = run_simulation(r, parts, validation=test)
    rounds = res.history
    per_round = statistics.mean(h["seconds"] for h in rounds)
    local = statistics.mean(sum(m.get("train_seconds", 0.0) for m in h["nodes"].values()) for h in rounds)
    return {"accuracy": res.final["accuracy"], "round_s": per_round, "local_s": local,
            "total_s": res.timings["total_s"], "epsilon": res.epsilon}


def dp_round_cost(repeats: int = 3) -> None:
    """Seconds per round of a DP job (3 nodes, breast_cancer, 5 rounds x 2 epochs, epsilon 3) and
    of the same job without DP; the difference is what DP costs per round (planning, DP-SGD)."""
    train, test = split(load_sample("breast_cancer"))
    parts = {f"org{i}": p for i, p in enumerate(partition(train, 3, seed=0))}
    dp = {"epsilon": 3.0, "delta": 1e-5, "max_grad_norm": 1.0}
    for label, r in (("no DP", recipe("breast_cancer", 3)), ("DP eps=3", recipe("breast_cancer", 3, dp=dp))):
        runs = [federated(r, parts, test) for _ in range(repeats)]
        eps = runs[-1]["epsilon"]
        each = ", ".join(f"{f['round_s']:.3f}" for f in runs)
        print(f"{label}: s/round median {statistics.median(f['round_s'] for f in runs):.3f} (runs: {each}), "
              f"local train s/round {statistics.median(f['local_s'] for f in runs):.3f}, "
              f"total s {statistics.median(f['total_s'] for f in runs):.2f}"
              + (f", spent epsilon {max(eps.values()):.4f}" if eps else ""), flush=True)


def _deployment_run(tuned: bool, parts: dict[str, Any], test: Any) -> dict[str, float]:
    """One 3-round run; seconds to the first round's start, per round, in all, and accuracy."""
    import shutil
    import tempfile

    from consortium.federation.engine import deployment as dep

    r = recipe("breast_cancer", len(parts), rounds=3, local_epochs=1)
    work = Path(tempfile.mkdtemp(prefix="bench-fl-"))
    start = time.monotonic()
    seen: list[tuple[float, dict[str, Any]]] = []
    original = dep.FlowerDeployment.__init__

    def init(self: Any, *a: Any, **kw: Any) -> None:
        original(self, *a, **{**kw, "tuned": tuned})

    dep.FlowerDeployment.__init__ = init  # type: ignore[method-assign]
    try:
        res = dep.run_deployment(r, parts, validation=test, work_dir=work, timeout=600,
                                 progress=lambda rec: seen.append((time.monotonic() - start, rec)))
    finally:
        dep.FlowerDeployment.__init__ = original  # type: ignore[method-assign]
        shutil.rmtree(work, ignore_errors=True)
    rounds = [rec["seconds"] for _, rec in seen if rec.get("kind") == "round"]
    first_end = next(t for t, rec in seen if rec.get("kind") == "round")
    return {"before_first_round_s": first_end - rounds[0], "round_s": statistics.mean(rounds),
            "engine_start_s": res.timings["engine_start_s"], "submit_s": res.timings["submitted_s"]
            - res.timings["engine_start_s"], "total_s": res.timings["total_s"],
            "accuracy": float(res.final["accuracy"])}


def deployment_compare(n: int) -> None:
    """Tuned deployment engine against Flower's stock processes, alternating, in one run."""
    train, test = split(load_sample("breast_cancer"))
    parts = {f"org{i}": p for i, p in enumerate(partition(train, 3, seed=0))}
    med = _alternating(n, (True, False), lambda tuned: _deployment_run(tuned, parts, test),
                       {True: "tuned", False: "stock"})
    t, b = med[True], med[False]
    lines = ["## Deployment engine: tuned against Flower's stock processes", "",
             f"One run of `bench_federation.py --deployment-compare {n}`: breast_cancer, 3 SuperNodes (secure "
             "SuperLink, node authentication), 3 rounds x 1 local epoch, the same ServerApp and ClientApp; "
             f"{n} run(s) of each, alternating, medians. *Tuned* is what the hub runs: SuperNodes polling the "
             "SuperLink every 0.25 s (`engine/supernode.py`), ClientApps and the run's ServerApp forked from one "
             "warm process (`engine/warm_exec.py`; the SuperLink with `--isolation process`), node keys "
             "registered and the run started through the Control API from the worker's own process "
             "(`engine/control.py`). *Stock* is Flower 1.42 as it ships: `flower-supernode` with its 3 s idle "
             "poll and a `flwr-clientapp` process per message, a `flwr-serverapp` process per run, one "
             "`flwr supernode register` process per node and `flwr run`. *Before 1st round* is from the call "
             "(the nodes' data written, the SuperLink started, ...) to the first round's start. Machine: "
             "2 cores, the server processes and the nodes on the same cores; the ratio is the figure to read.", "",
             "| | engine start s | submit s | before 1st round s | s/round | total s | accuracy |",
             "|---|---|---|---|---|---|---|"]
    for name, m in (("tuned", t), ("stock Flower 1.42", b)):
        lines.append(f"| {name} | {m['engine_start_s']:.1f} | {m['submit_s']:.1f} | {m['before_first_round_s']:.1f} "
                     f"| {m['round_s']:.2f} | {m['total_s']:.1f} | {m['accuracy']:.3f} |")
    lines += ["", f"Ratio stock/tuned: {b['round_s'] / t['round_s']:.1f}x per round, "
              f"{b['before_first_round_s'] / t['before_first_round_s']:.1f}x before the first round, "
              f"{b['total_s'] / t['total_s']:.1f}x in all.", ""]
    _rewrite_section("## Deployment engine: tuned against Flower's stock processes", lines)


def _alternating(n: int, modes: tuple[bool, ...], run: Any, names: dict[bool, str]) -> dict[bool, dict[str, float]]:
    """``n`` rounds of ``run(mode)`` for each mode in turn (the modes alternate, so a drift of the
    machine touches both alike); the median of each figure per mode."""
    got: dict[bool, list[dict[str, float]]] = {m: [] for m in modes}
    for _ in range(n):
        for mode in modes:
            got[mode].append(run(mode))
            print(names[mode], got[mode][-1], flush=True)
    return {m: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for m, rs in got.items()}


def _memory_mb(dep: Any) -> dict[str, float]:
    """One snapshot of the memory of this process (what the hub's job worker holds for the job),
    the SuperLink with the ServerApp it runs (its SuperExec, forked from the warm process, and that
    one's forks), and the nodes (every SuperNode, the warm process and its other forks: the nodes'
    SuperExecs and their ClientApps), in MB. The proportional set size (PSS) where Linux gives it,
    so pages that forked processes share with the warm process count once over all of them, else
    RSS. Each process is read once and counted in one group."""
    import psutil

    def size(p: Any) -> float:
        try:
            info = p.memory_full_info()
            return float(getattr(info, "pss", info.rss)) / 1e6
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return 0.0

    def tree(pid: int | None) -> list[Any]:
        try:
            root = psutil.Process(pid)
            return [root, *root.children(recursive=True)]
        except (psutil.NoSuchProcess, ValueError, TypeError):
            return []

    me = psutil.Process()
    link = {p.pid for p in tree(dep.superlink.popen.pid)} if dep.superlink is not None else set()
    exec_ = dep.superlink.extra.get("exec") if dep.superlink is not None else None
    link |= {p.pid for p in tree(exec_.pid if exec_ is not None else None)}
    out = {"worker": size(me), "superlink": 0.0, "nodes": 0.0}
    for p in me.children(recursive=True):
        out["superlink" if p.pid in link else "nodes"] += size(p)
    return out


def deployment_scale(nodes: int, rounds: int = 3) -> None:
    """``nodes`` SuperNodes on loopback in one job on the deployment engine (the hub's tuned
    processes, TLS and node authentication): seconds per round and before the first round, and the
    peak RSS of this process (what the hub's job worker holds while it runs a job: the same
    prepare/submit/follow calls), of the SuperLink with the ServerApp it runs, and of the nodes.
    Rewrites that section of ``federation.md``."""
    import shutil
    import tempfile

    from consortium.federation.app import protocol as P
    from consortium.federation.engine.deployment import FlowerDeployment
    from consortium.federation.engine.simulation import job_run_config, prepare

    train, test = split(load_sample("breast_cancer"))
    parts = {f"org{i}": p for i, p in enumerate(partition(train, nodes, seed=0))}
    r = recipe("breast_cancer", nodes, rounds=rounds, local_epochs=1, min_nodes=nodes)
    work = Path(tempfile.mkdtemp(prefix="bench-fl-scale-"))
    peak = {"worker": 0.0, "superlink": 0.0, "nodes": 0.0}
    seen: list[tuple[float, dict[str, Any]]] = []
    try:
        t0 = time.monotonic()
        r, configs, vdir = prepare(r, parts, test, work)
        cfg = job_run_config(r, work / "out", validation_dir=vdir, round_timeout=300, straggler_grace=30,
                             node_wait=300)
        with FlowerDeployment(work / "engine") as dep:
            dep.add_nodes([(c[P.ORG], c[P.DATA_DIR], c[P.DATASET]) for c in configs])
            started = time.monotonic() - t0

            def sample(rec: dict[str, Any]) -> None:
                seen.append((time.monotonic() - t0, rec))
                for k, v in _memory_mb(dep).items():
                    peak[k] = max(peak[k], v)

            dep.wait(work / "out", dep.submit(cfg), timeout=1800, on_record=sample)
        total = time.monotonic() - t0
    except BaseException:
        print(f"the run failed; its files are kept in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    rounds_s = [rec["seconds"] for _, rec in seen if rec.get("kind") == "round"]
    first_end = next(t for t, rec in seen if rec.get("kind") == "round")
    per_node = [len(rec["nodes"]) for _, rec in seen if rec.get("kind") == "round"]
    acc = next(rec for _, rec in reversed(seen) if rec.get("kind") == "round").get("global", {}) or {}
    lines = [f"## Deployment engine at scale: {nodes} SuperNodes", "",
             f"One run of `bench_federation.py --deployment-scale {nodes}`: breast_cancer IID over {nodes} "
             f"organizations, {rounds} rounds x 1 local epoch, `min_nodes: {nodes}` (every node in every round), "
             "one SuperLink with TLS and node authentication and one SuperNode process per organization on "
             "loopback, as the hub's job worker runs them. Peak resident memory sampled at each progress record: "
             "*worker* is this process (what the hub's job worker holds for the job: data preparation, "
             "submission, following the run), *SuperLink* includes the ServerApp process it runs, *nodes* is "
             "the sum over all SuperNodes, the one warm process that forks their SuperExecs, and the "
             "ClientApps those fork. Memory is the proportional set size (PSS): pages forked processes share "
             "count once in all.", "",
             "| nodes | engine start s | before 1st round s | s/round | total s | nodes per round | accuracy "
             "| worker MB | SuperLink MB | nodes MB (per node) |",
             "|---|---|---|---|---|---|---|---|---|---|",
             f"| {nodes} | {started:.1f} | {first_end - rounds_s[0]:.1f} | {statistics.mean(rounds_s):.2f} "
             f"| {total:.1f} | {min(per_node)}-{max(per_node)} | {float(acc.get('accuracy', float('nan'))):.3f} "
             f"| {peak['worker']:.0f} | {peak['superlink']:.0f} | {peak['nodes']:.0f} "
             f"({peak['nodes'] / nodes:.0f}) |"]
    _rewrite_section(f"## Deployment engine at scale: {nodes} SuperNodes", lines)


def _sites_run(namespaced: bool, rounds: int) -> dict[str, float]:
    """One federated job of the multisite example (hub, three ``consortium node`` sites, TLS, the
    site rows at the sites): namespaced hosts on veth links, or the same processes on loopback.
    Seconds from the submit to the first round's start, per round, and submit to succeeded, from
    the job's own events."""
    import shutil
    import tempfile
    from datetime import datetime

    sys.path.insert(0, str(ROOT / "examples" / "multisite"))
    import multisite

    root = Path(tempfile.mkdtemp(prefix="bench-sites-"))
    with multisite.Consortium(root, namespaced=namespaced) as c:
        c.build()
        c.start_hub()
        for i in range(len(multisite.SITES)):
            multisite.site_csv(c.site_dir(i) / "rows.csv", i, 1)
            c.start_site(i, c.site_dir(i) / "rows.csv")
        multisite.grant_and_wait(c)
        hospital = c.client(multisite.SITES[0])
        recipe = {**multisite.RECIPE, "federated": {**multisite.RECIPE["federated"], "rounds": rounds}}
        job = hospital.jobs.submit(recipe)
        final = hospital.jobs.wait(job["id"], timeout_s=600)
        if final["state"] != "succeeded":
            raise RuntimeError(f"the job {final['state']}: {final.get('error')} (files kept in {root})")
        events = hospital.jobs.events(job["id"])
    shutil.rmtree(root, ignore_errors=True)

    def at(e: dict[str, Any]) -> float:
        return datetime.fromisoformat(e["time"]).timestamp()

    submitted = at(events[0])
    done = next(at(e) for e in events if e["kind"] == "state" and e["data"].get("state") == "succeeded")
    rnds = [e for e in events if e["kind"] == "progress" and e["data"].get("stage") == "training"
            and (e["data"].get("round") or 0) >= 1 and e["data"].get("seconds") is not None]
    first = rnds[0]
    return {"before_first_round_s": at(first) - float(first["data"]["seconds"]) - submitted,
            "round_s": statistics.mean(float(e["data"]["seconds"]) for e in rnds),
            "total_s": done - submitted, "rounds": len({e["data"]["round"] for e in rnds})}


def sites_compare(runs: int, rounds: int = 3) -> None:
    """Sites as network namespaces against the same consortium on loopback, alternating, in one run;
    rewrites that section of ``federation.md``."""
    sys.path.insert(0, str(ROOT / "examples" / "multisite"))
    import multisite

    reason = multisite.why_not()
    if reason:
        print(f"skipped: no network namespaces here ({reason})")
        return
    med = _alternating(runs, (False, True), lambda namespaced: _sites_run(namespaced, rounds),
                       {True: "namespaced", False: "loopback"})
    ns, lo = med[True], med[False]
    lines = ["## Sites as hosts: network namespaces against loopback", "",
             f"`bench_federation.py --sites-compare {runs}`: the multisite example (`examples/multisite`): a hub "
             "(`consortium serve` over HTTPS, one job worker) and three `consortium node` sites, each with its "
             "third of breast_cancer in its own directory, the job's SuperLink with TLS and node authentication; "
             f"one federated job of {rounds} rounds (logistic, `min_nodes: 3`), the first of a hub just started "
             "(its job worker imports torch and flwr for it). *Namespaced*: the hub and each "
             "site in a network namespace of its own, joined by veth links to a bridge; *loopback*: the same "
             f"processes on this machine's loopback. {runs} run(s) of each, alternating, medians; times from "
             "the job's events (submit to the first round's start, the rounds' own seconds, submit to succeeded).",
             "", "| sites | before 1st round s | s/round | submit to succeeded s |", "|---|---|---|---|"]
    for name, m in (("loopback", lo), ("namespaced", ns)):
        lines.append(f"| {name} | {m['before_first_round_s']:.1f} | {m['round_s']:.2f} | {m['total_s']:.1f} |")
    lines += ["", f"Ratio namespaced/loopback: {ns['round_s'] / lo['round_s']:.2f}x per round, "
              f"{ns['before_first_round_s'] / lo['before_first_round_s']:.2f}x before the first round, "
              f"{ns['total_s'] / lo['total_s']:.2f}x in all."]
    _rewrite_section("## Sites as hosts: network namespaces against loopback", lines)


def _rewrite_section(head: str, lines: list[str]) -> None:
    """Replace (or append) the section that starts with ``head`` in ``federation.md``."""
    out = ROOT / "bench" / "results" / "federation.md"
    text = out.read_text() if out.exists() else "# Federated training (consortium.federation)\n"
    if head in text:
        before, _, rest = text.partition(head)
        nxt = rest.find("\n## ")
        text = before + (rest[nxt + 1:] if nxt >= 0 else "")
    out.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--deployment", action="store_true", help="also run once on real Flower processes")
    ap.add_argument("--dp-round-cost", action="store_true", help="only time DP rounds against plain rounds")
    ap.add_argument("--deployment-compare", type=int, nargs="?", const=1, default=0, metavar="N",
                    help="only compare the tuned deployment engine with Flower's stock processes, N runs each")
    ap.add_argument("--deployment-scale", type=int, nargs="?", const=20, default=0, metavar="NODES",
                    help="only run one job on NODES SuperNodes (default 20): s/round and RSS")
    ap.add_argument("--sites-compare", type=int, nargs="?", const=1, default=0, metavar="N",
                    help="only compare sites as network namespaces with the same sites on loopback, N runs each")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.sites_compare:
        sites_compare(args.sites_compare)
        return
    if args.dp_round_cost:
        dp_round_cost()
        return
    if args.deployment_scale:
        deployment_scale(args.deployment_scale)
        return
    if args.deployment_compare:
        deployment_compare(args.deployment_compare)
        return
    lines = ["# Federated training (consortium.federation)", "",
             f"Engine: in-process Flower simulation engine (LinkState + InMemoryGrid + message loop, thread "
             f"backend, 1 worker), unless marked. {ROUNDS} rounds x {LOCAL_EPOCHS} local epochs FedAvg vs the "
             f"same model trained centrally for {ROUNDS * LOCAL_EPOCHS} epochs on the union of the rows; "
             "accuracy on a held-out 25% test set. Machine: 2 cores shared. torch threads: 1.", "",
             "## Accuracy and time per round", "",
             "| dataset | split | nodes | centralized acc | federated acc | gap (pts) | s/round "
             "| local train s/round | overhead s/round |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in ("digits", "breast_cancer"):
        train, test = split(load_sample(name))
        for skew in ("iid", "label"):
            for nodes in (3, 10):
                r = recipe(name, nodes)
                parts = {f"org{i}": p for i, p in enumerate(partition(train, nodes, skew=skew, seed=0))}
                c_acc, _ = centralized(r, train, test)
                f = federated(r, parts, test)
                lines.append(f"| {name} | {skew} | {nodes} | {c_acc:.3f} | {f['accuracy']:.3f} | "
                             f"{100 * (f['accuracy'] - c_acc):+.1f} | {f['round_s']:.3f} | {f['local_s']:.3f} | "
                             f"{f['round_s'] - f['local_s']:.3f} |")
                print(lines[-1], flush=True)
    lines += ["", "Overhead = wall time of a round minus the nodes' summed local training time (the thread "
              "backend runs nodes one after another): messaging, serialization, aggregation, global evaluation.",
              "", "## Scale (breast_cancer, IID, 2 rounds x 1 epoch)", "", "| nodes | s/round | total s | accuracy |",
              "|---|---|---|---|"]
    train, test = split(load_sample("breast_cancer"))
    for nodes in (20, 50, 100):
        r = recipe("breast_cancer", nodes, rounds=2, local_epochs=1)
        parts = {f"org{i}": p for i, p in enumerate(partition(train, nodes, seed=0))}
        f = federated(r, parts, test)
        lines.append(f"| {nodes} | {f['round_s']:.2f} | {f['total_s']:.1f} | {f['accuracy']:.3f} |")
        print(lines[-1], flush=True)
    lines += ["", "## DP-SGD accuracy cost (breast_cancer, 3 nodes IID, sample-level DP at each node)", "",
              "| target epsilon | accuracy | max spent epsilon | accuracy without DP | s/round |",
              "|---|---|---|---|---|"]
    parts = {f"org{i}": p for i, p in enumerate(partition(train, 3, seed=0))}
    base = federated(recipe("breast_cancer", 3), parts, test)["accuracy"]
    for eps in (1.0, 3.0, 8.0):
        f = federated(recipe("breast_cancer", 3, dp={"epsilon": eps, "delta": 1e-5, "max_grad_norm": 1.0}),
                      parts, test)
        lines.append(f"| {eps:g} | {f['accuracy']:.3f} | {max(f['epsilon'].values()):.2f} | {base:.3f} | "
                     f"{f['round_s']:.2f} |")
        print(lines[-1], flush=True)
    if args.deployment:
        from consortium.federation.engine.deployment import run_deployment

        r = recipe("breast_cancer", 3, rounds=2, local_epochs=5)
        res = run_deployment(r, parts, validation=test, timeout=600)
        per_round = statistics.mean(h["seconds"] for h in res.history)
        lines += ["", "## Deployment engine (flower-superlink + 3 flower-supernode processes, loopback)", "",
                  f"breast_cancer, 2 rounds x 5 epochs: accuracy {res.final['accuracy']:.3f}, "
                  f"{per_round:.1f} s/round, engine start {res.timings['engine_start_s']:.1f} s, "
                  f"total {res.timings['total_s']:.1f} s."]
    out = ROOT / "bench" / "results" / "federation.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
