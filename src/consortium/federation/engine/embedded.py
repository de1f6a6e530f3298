"""Run a federated job over node data directories that already exist, on either Flower engine.

The hub's embedded default uses this: the worker writes each organization's rows into that
organization's node directory (``CONSORTIUM_HOME/nodes/<org>/``) and then starts one SuperNode
per organization on loopback (``engine="deployment"``: real ``flower-superlink`` and
``flower-supernode`` processes on free ports, never 8000) or runs Flower's simulation engine in
this process (``engine="simulation"``: same ServerApp/ClientApp, about 50x less overhead per
round; the hub's tests use it). Unlike ``run_deployment`` / ``run_simulation`` nothing is copied
into a temporary store: the nodes read the directories they are given. Nodes that run elsewhere
(``consortium node`` agents: a site's own node, or the standing demo nodes of ``consortium up``)
are not started here: ``on_superlink`` registers their keys and tells them where to connect.

>>> from consortium.federation.app.datasets import save_dataset          # doctest: +SKIP
>>> res = run_on_nodes(recipe, {"a": ("/home/nodes/a", "bc"), "b": ("/home/nodes/b", "bc")},
...                    engine="simulation", work_dir="/tmp/fl-job")    # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from consortium.data.frame import DataFrameSet
from consortium.errors import InvalidInput
from consortium.federation.app import protocol as P
from consortium.federation.app.progress import ProgressSink
from consortium.federation.engine.result import FederatedResult, load_result

if TYPE_CHECKING:
    from consortium.federation.engine.deployment import FlowerDeployment
    from consortium.federation.engine.network import Listen
    from consortium.federation.engine.refusals import Refusal

Engine = Literal["deployment", "simulation"]
ENGINES = ("deployment", "simulation")


def run_on_nodes(recipe: Any, nodes: dict[str, tuple[str | Path, str]], *, engine: Engine = "deployment",
                 validation: DataFrameSet | None = None, progress: ProgressSink | None = None,
                 work_dir: str | Path, round_timeout: float = 300.0, node_wait: float = 120.0,
                 shapley_samples: int = 0, timeout: float = 3600.0,
                 on_superlink: Callable[[FlowerDeployment], None] | None = None, secure: bool = True,
                 pki_dir: str | Path | None = None, tag: str | None = None,
                 listen: Listen | None = None,
                 on_refusal: Callable[[Refusal], None] | None = None) -> FederatedResult:
    """Run ``recipe`` with one node per organization: ``nodes`` maps org -> (data dir, dataset name).

    ``progress`` gets every record (``start``, ``round``, ``done``); an exception it raises stops
    the job (the deployment's processes are ended). ``on_superlink`` (deployment engine) is called
    with the running ``FlowerDeployment`` (address, CA certificate, ``register_node``) before the run is
    submitted, so that nodes started elsewhere (``consortium node``) can join. ``secure``,
    ``pki_dir``, ``tag``, ``listen`` (where the SuperLink listens) and ``on_refusal`` (each SuperNode the
    SuperLink refused) go to the ``FlowerDeployment``.
    """
    from consortium.federation.app.datasets import save_dataset
    from consortium.federation.app.features import check_process
    from consortium.federation.engine.simulation import job_run_config
    from consortium.recipe import parse_recipe

    if engine not in ENGINES:
        raise InvalidInput(f"unknown federation engine {engine!r}", hint=f"use one of: {', '.join(ENGINES)}")
    recipe = parse_recipe(recipe)
    if recipe.federated is None:
        raise InvalidInput("the recipe has no federated section")
    check_process(recipe.process)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    vdir = ""
    if validation is not None:
        save_dataset(work / "server", "validation", validation)
        vdir = str(work / "server")
    out = work / "out"
    cfg = job_run_config(recipe, out, validation_dir=vdir, round_timeout=round_timeout,
                         node_wait=node_wait if engine == "deployment" else 10.0, shapley_samples=shapley_samples)
    configs = [{P.DATA_DIR: str(d), P.DATASET: name, P.ORG: org} for org, (d, name) in nodes.items()]
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    if engine == "simulation":
        from consortium.federation.app.run import LOCAL_SINKS
        from consortium.federation.engine.simulation import run_engine

        if progress is not None:
            LOCAL_SINKS[str(out)] = progress
        try:
            run_engine(configs, cfg)
        finally:
            LOCAL_SINKS.pop(str(out), None)
        timings["total_s"] = time.monotonic() - t0
        return load_result(out, "simulation (in-process Flower engine, thread backend)", timings)
    from consortium.federation.engine.deployment import FlowerDeployment

    with FlowerDeployment(work / "engine", secure=secure, pki_dir=pki_dir, tag=tag, listen=listen,
                          on_refusal=on_refusal, local_nodes=bool(configs)) as dep:
        dep.add_nodes([(c[P.ORG], c[P.DATA_DIR], c[P.DATASET]) for c in configs])
        timings["engine_start_s"] = time.monotonic() - t0
        if on_superlink is not None:
            on_superlink(dep)
        run_id = dep.submit(cfg)
        dep.wait(out, run_id, progress=progress, timeout=timeout)
    timings["total_s"] = time.monotonic() - t0
    return load_result(out, "deployment (flower-superlink + one flower-supernode per organization, loopback)",
                       timings)
