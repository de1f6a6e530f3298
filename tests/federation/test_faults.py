"""Faults on Flower's deployment engine, with real processes: four SuperNodes and ``min_nodes: 3``
on one SuperLink shared by the module (each test is one run on it, in this order):

- a SuperNode with a key nobody registered is refused, and the refusal is read from the log;
- secure aggregation (SecAgg+) with a node that died just before the run (sampled, then dropped
  at the setup stage of each round) still finishes;
- a node killed mid-round: the round goes on without it and records it, the contribution
  report says so, and the node restarted at once takes part in the next round;
- a straggler (a node stopped with SIGSTOP) is dropped after the recipe's round timeout, long
  before the straggler grace would have let the round go on;
- the hub's job worker killed mid-job: the Flower processes it left are killed by the next worker,
  the job is re-queued, a second worker runs it to the end, and a SuperNode its SuperLink refused
  there is in the audit log;
- closing the deployment leaves none of its processes behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fl_helpers import bc_recipe, two_orgs_sharing_bc
from support import start_worker, stop_worker, wait_for

from consortium.data.samples import partition
from consortium.federation.app import protocol as P
from consortium.federation.app.progress import read_progress
from consortium.federation.engine.deployment import FlowerDeployment
from consortium.federation.engine.network import free_port
from consortium.federation.engine.pki import node_key
from consortium.federation.engine.processes import BIN, job_tag, tagged
from consortium.federation.engine.refusals import fingerprint
from consortium.federation.engine.simulation import job_run_config, prepare

pytestmark = [pytest.mark.slow, pytest.mark.one_backend]

ORGS = ["northwind", "riverside", "lakeside", "hillcrest"]


@pytest.fixture(scope="module")
def fleet(breast_cancer: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One secure SuperLink and four SuperNodes (one per organization) for the whole module."""
    work = tmp_path_factory.mktemp("faults")
    parts = dict(zip(ORGS, partition(breast_cancer["train"], 4, skew="iid", seed=0), strict=True))
    _, configs, vdir = prepare(bc_recipe(), parts, breast_cancer["test"], work)
    dep = FlowerDeployment(work / "engine")
    try:
        dep.start()
        dep.add_nodes([(c[P.ORG], c[P.DATA_DIR], c[P.DATASET]) for c in configs])
        yield {"dep": dep, "configs": {c[P.ORG]: c for c in configs}, "vdir": vdir, "work": work}
    finally:
        dep.close()


def _recipe(**federated: Any) -> Any:
    return bc_recipe(datasets=[f"{o}/bc" for o in ORGS], min_nodes=3, local_epochs=1, **federated)


def _run(fleet: dict[str, Any], name: str, recipe: Any, chaos: Callable[[dict[str, Any]], None] | None = None,
         *, grace: float = 8.0, timeout: float = 240) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One run on the module's deployment: its progress records and ``result.json``."""
    import json

    out = fleet["work"] / name
    dep: FlowerDeployment = fleet["dep"]
    # the engine's own round timeout stays long: only the recipe's may cut a round short
    cfg = job_run_config(recipe, out, validation_dir=fleet["vdir"], round_timeout=120, straggler_grace=grace,
                         node_wait=60)
    run_id = dep.submit(cfg)
    dep.wait(out, run_id, timeout=timeout, on_record=chaos)
    return list(read_progress(out / "progress.jsonl")), json.loads((out / "result.json").read_text())


def _restart(fleet: dict[str, Any], org: str) -> None:
    """Start ``org``'s node again if it is not running."""
    dep: FlowerDeployment = fleet["dep"]
    if org in dep.nodes and dep.nodes[org].popen.poll() is None:
        return
    c = fleet["configs"][org]
    dep.add_node(org, c[P.DATA_DIR], c[P.DATASET])


def _rogue(address: str, ca: Path, key: Path, log: Path) -> subprocess.Popen[bytes]:
    """A SuperNode with a key of its own that nobody registered at the SuperLink."""
    with log.open("wb") as f:
        return subprocess.Popen(
            [str(BIN / "flower-supernode"), "--root-certificates", str(ca), "--auth-supernode-private-key", str(key),
             "--superlink", address, "--node-config", "org='rogue'", "--host", "127.0.0.1", "--port", str(free_port())],
            stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})


def _finish(p: subprocess.Popen[bytes], timeout: float = 60) -> int:
    try:
        return p.wait(timeout)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


def test_an_unregistered_supernode_is_refused(fleet: dict[str, Any], tmp_path: Path) -> None:
    dep: FlowerDeployment = fleet["dep"]
    assert dep.pki is not None
    key, public = node_key(tmp_path / "rogue.key")
    code = _finish(_rogue(dep.local_address, dep.pki.ca_cert, key, tmp_path / "rogue.log"))
    assert code != 0, (tmp_path / "rogue.log").read_text()[-2000:]
    refused = wait_for(lambda: [r for r in dep.refused + dep.check_refusals()
                                if r.fingerprint == fingerprint(public)], 15, 0.2, "the refusal in the log")
    assert refused[0].peer == "127.0.0.1" and "public key" in refused[0].reason
    assert refused[0].openssh is not None and refused[0].openssh.split()[:2] == public.split()[:2]


def test_secure_aggregation_finishes_with_one_dropout(fleet: dict[str, Any]) -> None:
    """A node that died just before the run still counts as connected (the SuperLink has not
    missed its heartbeats yet), so SecAgg+ samples it; it drops out at the setup stage and the other
    three finish the round (threshold: 3 of 4). Flower 1.42's own workflow ended such a round "Not
    enough shares to recover secret" (``secure.DropoutTolerantSecAggPlus`` mends it). The grace is
    short: it starts only once the three live nodes answered."""
    victim = ORGS[1]
    fleet["dep"].kill_node(victim)
    try:
        records, result = _run(fleet, "secagg", _recipe(rounds=1, secure_aggregation=True, round_timeout_s=60),
                               grace=3, timeout=300)
    finally:
        _restart(fleet, victim)  # the next tests have four nodes again
    rounds = [r for r in records if r["kind"] == "round"]
    assert len(rounds) == 1 and records[-1]["kind"] == "done"
    assert all(set(r["nodes"]) == set(ORGS) - {victim} for r in rounds), [sorted(r["nodes"]) for r in rounds]
    assert result["final"]["accuracy"] > 0.8
    assert result["contribution"]["reason"] == "secure aggregation hides individual updates from the server"


def test_a_killed_node_is_recorded_and_rejoins_the_next_round(fleet: dict[str, Any]) -> None:
    victim = ORGS[3]
    seen: dict[str, bool] = {}

    def chaos(rec: dict[str, Any]) -> None:
        if rec.get("kind") == "round" and rec["round"] == 1:
            fleet["dep"].kill_node(victim)  # round 2 is already under way
            seen["killed"] = True
            _restart(fleet, victim)  # back under a new node id, in time for round 3

    try:
        records, result = _run(fleet, "kill", _recipe(rounds=3, round_timeout_s=30), chaos)
    finally:
        _restart(fleet, victim)
    rounds = [r for r in records if r["kind"] == "round"]
    assert seen == {"killed": True} and len(rounds) == 3
    assert victim in rounds[0]["nodes"]
    assert victim not in rounds[1]["nodes"] and rounds[1]["missing"] == [victim] and len(rounds[1]["nodes"]) == 3
    assert victim in rounds[2]["nodes"]  # rejoined
    # the dead sessions still listed (the one killed here, the secure aggregation test's) do not
    # hold a round for the straggler grace once every organization answered
    assert rounds[2]["seconds"] < 8.0, rounds[2]
    contribution = result["contribution"]
    assert contribution["dropped"] == {victim: [2]}
    assert f"{victim} dropped out of round 2" in contribution["dropped_note"]
    assert contribution["rounds_taken_part"] == {**{o: 3 for o in ORGS}, victim: 2}
    assert set(contribution["leave_one_out"]) == set(ORGS)  # it is in the last round's updates again


def test_a_straggler_past_the_round_timeout_is_dropped(fleet: dict[str, Any]) -> None:
    straggler = ORGS[2]
    group = fleet["dep"].nodes[straggler].popen.pid
    timeout_s = 10.0  # five times a normal round (1-2 s) on this 2-core machine

    def stall(rec: dict[str, Any]) -> None:
        if rec.get("kind") == "start":  # it answered the statistics query; round 1 is being sent
            os.killpg(group, signal.SIGSTOP)  # alive (its connection open) but answers nothing
        if rec.get("kind") == "round":
            os.killpg(group, signal.SIGCONT)

    try:
        records, result = _run(fleet, "straggler", _recipe(rounds=1, round_timeout_s=timeout_s), stall, grace=90)
    finally:
        os.killpg(group, signal.SIGCONT)
    (rnd,) = [r for r in records if r["kind"] == "round"]
    assert rnd["missing"] == [straggler] and set(rnd["nodes"]) == set(ORGS) - {straggler}
    # cut at the round timeout, not at the 90 s straggler grace after the other three replied
    assert timeout_s - 0.5 < rnd["seconds"] < 60, rnd["seconds"]
    assert result["contribution"]["dropped"] == {straggler: [1]}


def test_a_restarted_hub_worker_requeues_and_finishes_the_job(http: Any, world: Any, settings: Any,
                                                              tmp_path: Path) -> None:
    a, b = two_orgs_sharing_bc(http, world)
    recipe = {"name": "restart", "data": {"target": "target"}, "model": {"type": "logistic"},
              "federated": {"datasets": [f"{a.org}/bc", f"{b.org}/bc"], "rounds": 2, "local_epochs": 1}}
    job = http.post("/api/v1/jobs", json={"recipe": recipe}, headers=a.headers).json()

    def get() -> dict[str, Any]:
        return http.get(f"/api/v1/jobs/{job['id']}", headers=a.headers).json()  # type: ignore[no-any-return]

    connection = settings.home / "federation" / job["id"] / "engine" / "flwr_home" / "config.toml"
    first = start_worker(settings, lease_s=3)
    second = None
    rogue = None
    try:
        wait_for(lambda: (get()["progress"] or {}).get("round", 0) >= 1, 180, 0.5, "the first round")
        address = connection.read_text()
        first_attempt = job_tag(job["id"], 1)
        assert len(tagged(first_attempt)) >= 3  # SuperLink, two SuperNodes and what they started
        first.kill()  # the hub's worker dies mid-job (SIGKILL: no chance to clean up)
        first.wait(10)
        assert tagged(first_attempt)  # its Flower processes live in their own sessions: still running
        second = start_worker(settings, lease_s=3)
        # the next worker kills them when it re-queues the job
        wait_for(lambda: not tagged(first_attempt), 60, 0.2, "the first attempt's processes to be killed")
        # the second attempt's SuperLink (a new address); a SuperNode nobody registered dials it
        wait_for(lambda: connection.exists() and connection.read_text() != address, 120, 0.2, "the second attempt")
        dial = next(line.split('"')[1] for line in connection.read_text().splitlines() if line.startswith("address"))
        key, public = node_key(tmp_path / "rogue.key")
        rogue = _rogue(dial, settings.home / "federation-pki" / "ca.pem", key, tmp_path / "rogue.log")
        done = wait_for(lambda: (lambda j: j if j["state"] in ("succeeded", "failed") else None)(get()), 240, 0.5,
                        "the re-queued job")
    finally:
        for w in (first, second):
            if w is not None:
                stop_worker(w)
        if rogue is not None:
            _finish(rogue, 5)
    assert done["state"] == "succeeded", done.get("error")
    events = http.get(f"/api/v1/jobs/{job['id']}/events", params={"limit": 200}, headers=a.headers).json()["items"]
    assert any("re-queued" in str((e.get("data") or {}).get("reason", "")) for e in events), events
    assert done["result"]["rounds"] == 2
    trail = http.get("/api/v1/audit", params={"action": "federation.node_refused", "limit": 50},
                     headers=a.headers).json()["items"]
    mine = [e for e in trail if e["details"].get("key_fingerprint") == fingerprint(public)]
    assert mine and mine[0]["outcome"] == "denied" and mine[0]["resource_id"] == job["id"], trail
    assert mine[0]["details"]["node"] is None and mine[0]["details"]["peer"] == "127.0.0.1"


def test_closing_the_deployment_leaves_no_process_behind(fleet: dict[str, Any]) -> None:
    """Last in the module: the fleet's processes (restarted nodes included) carry its tag, and
    ``close`` ends every one of them."""
    dep: FlowerDeployment = fleet["dep"]
    assert len(dep.leftovers()) >= 1 + len(ORGS)  # the tag finds the SuperLink and the SuperNodes ...
    dep.close()
    wait_for(lambda: not dep.leftovers(), 10, 0.2, "no process of the deployment left")  # ... and none stay
