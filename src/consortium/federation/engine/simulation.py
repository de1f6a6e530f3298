"""Run a federated job in one process on Flower's simulation engine (fast tests, benchmarks).

The engine is Flower's own: its in-memory ``LinkState``, ``InMemoryGrid`` and the simulation
runtime's message loop (``vce_api.run_api``). Flower 1.42 only ships a Ray backend for that
loop and Ray is not installed here, so ``ThreadBackend`` (home-made, ~20 lines) runs the
ClientApp in worker threads of this process instead. The ServerApp and ClientApp are the same
objects the deployment engine loads. Each organization's partition is written to a temporary
node store and reaches its virtual node through ``node_config`` as in a real deployment.

>>> from consortium.data.samples import load_sample, partition
>>> from consortium.recipe import parse_recipe
>>> data = load_sample("breast_cancer")
>>> parts = dict(zip(["a", "b"], partition(data, 2, seed=0)))
>>> recipe = parse_recipe({"name": "bc", "process": [{"normalize": {}}],
...     "model": {"type": "logistic"}, "train": {"lr": 0.05},
...     "federated": {"datasets": ["a/bc", "b/bc"], "rounds": 2}})
>>> res = run_simulation(recipe, parts, validation=data)   # doctest: +SKIP
>>> len(res.history), res.contributors                      # doctest: +SKIP
(2, ['a', 'b'])
"""

from __future__ import annotations

import copy
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from consortium.data.frame import DataFrameSet
from consortium.errors import InvalidInput, Unavailable
from consortium.federation.app import protocol as P
from consortium.federation.app.progress import ProgressSink
from consortium.federation.engine.result import FederatedResult, load_result


class ThreadBackend:
    """Simulation backend that calls the ClientApp in the calling worker thread."""

    def __init__(self, run_config: dict[str, Any], workers: int) -> None:
        self.run_config = run_config
        self.workers = workers
        self.app: Any = None

    def build(self, app_fn: Callable[[], Any]) -> None:
        self.app = app_fn()

    @property
    def num_workers(self) -> int:
        return self.workers

    def is_worker_idle(self) -> bool:
        return True

    def terminate(self) -> None:
        self.app = None

    def process_message(self, message: Any, context: Any) -> tuple[Any, Any]:
        # a real node gets its own copy off the wire; in-memory messages may share one RecordDict
        message.content = copy.deepcopy(message.content)
        return self.app(message=message, context=context), context


def _backend_class() -> type:
    from flwr.server.superlink.fleet.vce.backend import Backend

    return type("ConsortiumThreadBackend", (ThreadBackend, Backend), {})


def run_engine(node_configs: list[dict[str, Any]], run_config: dict[str, Any], *, workers: int = 1,
               server_app: Any = None, client_app: Any = None) -> None:
    """Run the ServerApp against one virtual SuperNode per ``node_configs`` entry."""
    from flwr.app import Context, RecordDict
    from flwr.common.constant import HEARTBEAT_INTERVAL_INF, NOOP_ACCOUNT_NAME, NOOP_FLWR_AID
    from flwr.compat.client.run_info_store import DeprecatedRunInfoStore
    from flwr.proto.task_pb2 import Task
    from flwr.server.run_serverapp import run as run_serverapp
    from flwr.server.superlink.fleet.vce.metrics import VceMetrics
    from flwr.server.superlink.fleet.vce.vce_api import run_api
    from flwr.server.superlink.linkstate import InMemoryLinkState, LinkStateFactory
    from flwr.server.superlink.linkstate.utils import generate_rand_int_from_bytes
    from flwr.supercore.constant import FLWR_IN_MEMORY_DB_NAME, NOOP_FEDERATION_ID
    from flwr.supercore.object_store import ObjectStoreFactory
    from flwr.supercore.run import Run
    from flwr.superlink.federation import NoOpFederationManager
    from flwr.superlink.grid.inmemory_grid import InMemoryGrid

    from consortium.federation.app.client_app import app as default_client
    from consortium.federation.app.server_app import app as default_server

    factory = LinkStateFactory(FLWR_IN_MEMORY_DB_NAME, NoOpFederationManager(), ObjectStoreFactory())
    state = factory.state()
    if not isinstance(state, InMemoryLinkState):  # the run is registered in its tables below
        raise Unavailable(f"the simulation needs Flower's in-memory link state, not {type(state).__name__}",
                          hint="install the pinned Flower version (requirements.txt)")
    run = Run.create_empty(run_id=generate_rand_int_from_bytes(8))
    run.primary_task_id = generate_rand_int_from_bytes(8)
    run.federation_id = NOOP_FEDERATION_ID
    state.run_ids[run.run_id] = _run_record(run)
    state.task_store[run.primary_task_id] = Task(task_id=run.primary_task_id, run_id=run.run_id)
    mapping, stores = {}, {}
    for i, cfg in enumerate(node_configs):
        nid = state.create_node(NOOP_FLWR_AID, NOOP_ACCOUNT_NAME, secrets.token_bytes(32),
                                heartbeat_interval=HEARTBEAT_INTERVAL_INF)
        state.acknowledge_node_heartbeat(node_id=nid, heartbeat_interval=HEARTBEAT_INTERVAL_INF)
        mapping[nid] = i
        stores[nid] = DeprecatedRunInfoStore(node_id=nid, node_config=dict(cfg))
        stores[nid].register_context(run_id=run.run_id, run=run)
        info = stores[nid].run_infos[run.run_id]  # the Python API leaves run_config empty
        info.initial_run_config = dict(run_config)
        info.context.run_config = dict(run_config)
    from flwr.common.constant import SUPERLINK_NODE_ID
    from flwr.supercore.task_identity import TaskIdentity

    TaskIdentity.task_id = 1  # as Flower's own Python simulation API does
    TaskIdentity.run_id = run.run_id
    TaskIdentity.node_id = SUPERLINK_NODE_ID
    grid = InMemoryGrid(state_factory=factory, pull_interval=0.05)
    grid.set_run(run)
    stop = threading.Event()
    errors: list[BaseException] = []
    backend_cls = _backend_class()

    def engine() -> None:
        try:
            run_api(lambda: client_app or default_client, lambda: backend_cls(run_config, workers),
                    mapping, factory, stores, stop, VceMetrics())
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(e)

    thread = threading.Thread(target=engine, name="flower-sim-engine", daemon=True)
    thread.start()
    try:
        context = Context(run_id=run.run_id, node_id=0, node_config={}, state=RecordDict(),
                          run_config=dict(run_config))
        run_serverapp(grid=grid, context=context, server_app_dir="", loaded_server_app=server_app or default_server)
    finally:
        stop.set()
        thread.join(timeout=30)
    if errors:
        raise errors[0]


def _run_record(run: Any) -> Any:
    from flwr.server.superlink.linkstate.in_memory_linkstate import RunRecord

    return RunRecord(run=run)


def write_partitions(root: Path, partitions: dict[str, DataFrameSet]) -> list[dict[str, Any]]:
    """Save each organization's partition as its own node store; returns their node configs."""
    from consortium.federation.app.datasets import save_dataset

    configs = []
    for org, data in partitions.items():
        save_dataset(root / org, "data", data)
        configs.append({P.DATA_DIR: str(root / org), P.DATASET: "data", P.ORG: org})
    return configs


def job_run_config(recipe: Any, out_dir: Path, *, validation_dir: str = "", round_timeout: float = 600.0,
                   straggler_grace: float = 8.0, node_wait: float = 120.0,
                   shapley_samples: int = 0) -> dict[str, Any]:
    cfg = dict(P.DEFAULT_RUN_CONFIG)
    cfg.update({P.RECIPE: P.recipe_to_json(recipe), P.OUTPUT_DIR: str(out_dir),
                P.VALIDATION_DIR: validation_dir, P.VALIDATION_NAME: "validation" if validation_dir else "",
                P.ROUND_TIMEOUT: float(round_timeout), P.STRAGGLER_GRACE: float(straggler_grace),
                P.NODE_WAIT: float(node_wait), P.SHAPLEY_SAMPLES: int(shapley_samples)})
    return cfg


def prepare(recipe: Any, partitions: dict[str, DataFrameSet], validation: DataFrameSet | None,
            work: Path) -> tuple[Any, list[dict[str, Any]], str]:
    """Validate inputs, write node stores and the validation set under ``work``."""
    from consortium.federation.app.datasets import save_dataset
    from consortium.federation.app.features import check_process
    from consortium.recipe import parse_recipe

    recipe = parse_recipe(recipe)
    if recipe.federated is None:
        raise InvalidInput("the recipe has no federated section", hint="add federated: {datasets: [...], rounds: 5}")
    check_process(recipe.process)
    if len(partitions) < recipe.federated.min_nodes:
        raise InvalidInput(f"{len(partitions)} organizations but federated.min_nodes is "
                           f"{recipe.federated.min_nodes}")
    configs = write_partitions(work / "nodes", partitions)
    vdir = ""
    if validation is not None:
        save_dataset(work / "server", "validation", validation)
        vdir = str(work / "server")
    return recipe, configs, vdir


def run_simulation(recipe: Any, partitions: dict[str, DataFrameSet], *,
                   validation: DataFrameSet | None = None, progress: ProgressSink | None = None,
                   workers: int = 1, shapley_samples: int = 0, round_timeout: float = 600.0,
                   work_dir: str | Path | None = None) -> FederatedResult:
    """Run the recipe's federated job over ``partitions`` (organization -> its rows) in-process.

    ``validation``: server-held rows for the global evaluation and the contribution report;
    ``progress``: called with each progress record; ``workers``: ClientApp threads.
    """
    from consortium.federation.app.run import LOCAL_SINKS

    tmp = None
    if work_dir:
        work = Path(work_dir)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="consortium-fl-")
        work = Path(tmp.name)
    try:
        t0 = time.monotonic()
        recipe, configs, vdir = prepare(recipe, partitions, validation, work)
        out = work / "out"
        cfg = job_run_config(recipe, out, validation_dir=vdir, shapley_samples=shapley_samples,
                             round_timeout=round_timeout, node_wait=10.0)
        if progress is not None:
            LOCAL_SINKS[str(out)] = progress
        try:
            run_engine(configs, cfg, workers=workers)
        finally:
            LOCAL_SINKS.pop(str(out), None)
        return load_result(out, "simulation (in-process Flower engine, thread backend)",
                           {"total_s": time.monotonic() - t0})
    finally:
        if tmp is not None:
            tmp.cleanup()
