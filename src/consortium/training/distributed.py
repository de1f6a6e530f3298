"""Data-parallel training (``train.workers`` > 1): PyTorch DistributedDataParallel over gloo, run by
Ray Train's ``TorchTrainer`` on the Ray cluster the job runs in.

Each of the N workers builds the same model (same seed; DDP also broadcasts rank 0's weights), takes
its shard of the training rows through a ``DistributedSampler`` (same seed on every rank, reshuffled
each epoch) and steps on ``batch_size / N`` rows at a time, so the gradient DDP averages is the one of
a ``batch_size`` batch, as in one process. The loop is ``trainer.train_epochs`` itself, with a
``Shard`` (``trainer.Sharding``) for the wrapped module, the batches and the epoch's end. Rank 0
reports the final weights and history as a Ray Train checkpoint; the caller rebuilds the model from
it and the job goes on as with one process (evaluation, ONNX export, registration, lineage).

Progress and cancellation cross the cluster through a small actor (``_Relay``, no CPU): rank 0
pushes each epoch's row, the caller forwards them to the job's progress and sets its stop flag when
the job is cancelled. Stopping is decided together (rank 0's answer broadcast every few batches),
so no worker waits forever in an allreduce the others left.

Ray is imported here only, and only when a recipe asks for workers > 1 (``pipeline.train_step``).
The caller runs inside a Ray task (the ray executor) or has connected with ``ray.init(address=...)``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from consortium.errors import InvalidInput
from consortium.recipe import Recipe

STOP_EVERY = 8  # batches between two collective "stop?" checks (a round trip to the relay actor)


def connect() -> Any:
    """The ``ray`` module, connected: the job's task already is; else ``RAY_ADDRESS`` (or
    ``CONSORTIUM_RAY_ADDRESS``) names the cluster. Without either, a 422 that says how to run it."""
    import ray

    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS") or os.environ.get("CONSORTIUM_RAY_ADDRESS")
        if not address:
            raise InvalidInput("train.workers > 1 and parallel tuning run on a Ray cluster, and none is connected",
                               hint="run the hub with CONSORTIUM_EXECUTOR=ray and CONSORTIUM_RAY_ADDRESS "
                                    "(start one with `ray start --head`), or set train.workers and "
                                    "tune.parallel to 1")
        ray.init(address=address, log_to_driver=False)
    return ray


def cpus_per_worker(ray: Any, n: int) -> float:
    """CPUs to reserve for each of ``n`` workers: an equal share of what the cluster has free (whole
    CPUs when there are enough, else a fraction, so that a job whose own task holds a CPU still fits)."""
    free = float(ray.available_resources().get("CPU", 0.0))
    if free >= n:
        return float(int(free // n))
    return max(free / n, 0.25)


@contextmanager
def scratch_storage() -> Iterator[str]:
    """A private place for Ray's results and checkpoints of one run, removed afterwards.

    By default a directory on this node's disk, which is enough while the run's workers share the
    node. On a cluster of several machines Ray Train and Tune need storage every node reaches:
    ``CONSORTIUM_RAY_STORAGE`` names it, a shared directory (e.g. an NFS mount, the same path on
    every node) or a URI pyarrow opens (``s3://bucket/prefix``); the hub's dispatcher forwards
    the variable to each job's task. Each run gets its own subdirectory there."""
    base = os.environ.get("CONSORTIUM_RAY_STORAGE", "").strip()
    if "://" in base:
        import pyarrow.fs

        uri = f"{base.rstrip('/')}/consortium-ray-{uuid.uuid4().hex[:12]}"
        try:
            yield uri
        finally:
            try:
                fs, path = pyarrow.fs.FileSystem.from_uri(uri)
                fs.delete_dir(path)
            except (OSError, ValueError):  # nothing written, or the store refuses: the run is over anyway
                pass
        return
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    d = tempfile.mkdtemp(prefix="consortium-ray-", dir=base or None)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Shard:
    """One worker's part of data-parallel training (``trainer.Sharding``), on the process group
    Ray Train set up (gloo)."""

    def __init__(self, rank: int, world: int, seed: int) -> None:
        self.rank, self.world, self.seed = rank, world, seed
        self.sampler: Any = None

    def wrap(self, model: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)

    def batches(self, X: torch.Tensor, y: torch.Tensor, batch_size: int, epoch: int) -> Iterable[Any]:
        from torch.utils.data import DistributedSampler, TensorDataset

        if self.sampler is None:
            self.sampler = DistributedSampler(TensorDataset(X, y), num_replicas=self.world, rank=self.rank,
                                              shuffle=True, seed=self.seed)
        self.sampler.set_epoch(epoch)
        order = torch.as_tensor(list(iter(self.sampler)))  # this rank's rows, equally many on every rank
        local = max(1, batch_size // self.world)
        for i in range(0, len(order), local):
            idx = order[i : i + local]
            yield X[idx], y[idx]

    def end_epoch(self, model: nn.Module, total: float, seen: int) -> float:
        import torch.distributed as dist

        for b in model.buffers():  # batch-norm statistics: rank 0's, so validation agrees everywhere
            dist.broadcast(b, src=0)
        t = torch.tensor([total, float(seen)], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t[0]) / max(float(t[1]), 1.0)


def _relay_class(ray: Any) -> Any:
    @ray.remote(num_cpus=0)
    class _Relay:
        """Progress rows from rank 0 to the job, and the job's stop flag to the workers."""

        def __init__(self) -> None:
            self.rows: list[dict[str, Any]] = []
            self.stop = False

        def push(self, row: dict[str, Any]) -> None:
            self.rows.append(row)

        def drain(self) -> list[dict[str, Any]]:
            rows, self.rows = self.rows, []
            return rows

        def cancel(self) -> None:
            self.stop = True

        def stopped(self) -> bool:
            return self.stop

    return _Relay


def _collective_stop(relay: Any, rank: int) -> Callable[[], bool]:
    """``should_stop`` for ``train_epochs`` on every rank: every ``STOP_EVERY`` calls (the same calls
    on every rank: equal batches per rank) rank 0 asks the relay and broadcasts its answer."""
    import ray
    import torch.distributed as dist

    calls = [0]

    def should_stop() -> bool:
        calls[0] += 1
        if calls[0] % STOP_EVERY:
            return False
        flag = torch.tensor([1 if rank == 0 and ray.get(relay.stopped.remote()) else 0])
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    return should_stop


def _worker(config: dict[str, Any]) -> None:
    """Ray Train's ``train_loop_per_worker``: one rank of the data-parallel run."""
    import ray
    import ray.train

    from consortium.processing.augment import build_augmenter
    from consortium.training.models import build_model
    from consortium.training.trainer import seed_everything, train_epochs

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(config["threads"])  # Ray's OMP_NUM_THREADS is 1 unless told; we reserve these CPUs
    recipe: Recipe = config["recipe"]
    X, y, X_val, y_val = ray.get(config["data"])
    relay = config["relay"]
    seed = recipe.train.seed
    seed_everything(seed)
    model = build_model(recipe.model, tuple(config["input_shape"]), config["n_outputs"])
    t0 = time.perf_counter()
    history = train_epochs(
        model, X, y, recipe.train, task=recipe.resolved_task, epochs=recipe.train.epochs,
        seed=seed + rank,  # dropout and augmentation draw differently on each rank; the sampler's seed is shared
        X_val=X_val, y_val=y_val, augment=build_augmenter(recipe.augment),
        on_epoch=(lambda row: relay.push.remote(row)) if rank == 0 else None,
        should_stop=_collective_stop(relay, rank), shard=Shard(rank, world, seed),
    )
    wall = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        checkpoint = None
        if rank == 0:
            torch.save(model.state_dict(), Path(d) / "model.pt")
            (Path(d) / "history.json").write_text(json.dumps(history))
            checkpoint = ray.train.Checkpoint.from_directory(d)
        ray.train.report({"epochs": len(history), "train_wall_s": wall}, checkpoint=checkpoint)


def train_distributed(
    recipe: Recipe,
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray | None,
    y_val: np.ndarray | None,
    *,
    input_shape: tuple[int, ...],
    n_outputs: int,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[nn.Module, list[dict[str, Any]], dict[str, Any]]:
    """Train ``recipe`` on ``recipe.train.workers`` Ray Train workers; (rank 0's model, its history,
    the run's facts: workers, cpus_per_worker, wall seconds)."""
    ray = connect()
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from consortium.training.models import build_model

    n = recipe.train.workers
    cpus = cpus_per_worker(ray, n)
    relay = _relay_class(ray).remote()
    data = ray.put((X, y, X_val, y_val))
    outcome: dict[str, Any] = {}
    t0 = time.perf_counter()
    with scratch_storage() as storage:
        trainer = TorchTrainer(
            _worker,
            train_loop_config={"recipe": recipe, "data": data, "relay": relay, "threads": max(1, int(cpus)),
                               "input_shape": list(input_shape), "n_outputs": n_outputs},
            torch_config=TorchConfig(backend="gloo"),
            scaling_config=ScalingConfig(num_workers=n, use_gpu=False, resources_per_worker={"CPU": cpus}),
            run_config=RunConfig(name=f"consortium-train-{uuid.uuid4().hex[:8]}", storage_path=storage,
                                 failure_config=FailureConfig(max_failures=0)),
        )

        def fit() -> None:
            try:
                outcome["result"] = trainer.fit()
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread below
                outcome["error"] = e

        thread = threading.Thread(target=fit, name="ray-train-fit", daemon=True)
        thread.start()
        cancelled = False
        while True:
            thread.join(0.5)
            for row in ray.get(relay.drain.remote()):
                if on_epoch is not None:
                    on_epoch(row)
            if not cancelled and should_stop is not None and should_stop():
                relay.cancel.remote()
                cancelled = True
            if not thread.is_alive():
                break
        if "error" in outcome:
            raise outcome["error"]
        checkpoint = outcome["result"].checkpoint
        if checkpoint is None:
            raise RuntimeError("the data-parallel run ended without rank 0's checkpoint")
        with checkpoint.as_directory() as d:
            state = torch.load(Path(d) / "model.pt", weights_only=True)
            history = json.loads((Path(d) / "history.json").read_text())
    ray.kill(relay)
    model = build_model(recipe.model, input_shape, n_outputs)
    model.load_state_dict(state)
    facts = {"workers": n, "cpus_per_worker": cpus, "backend": "gloo", "wall_s": round(time.perf_counter() - t0, 3),
             "train_wall_s": round(float(outcome["result"].metrics.get("train_wall_s", 0.0)), 3)}
    return model, history, facts
