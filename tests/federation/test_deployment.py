"""End to end on Flower's deployment engine: real flower-superlink / flower-supernode processes
on loopback, three organizations with an IID split of breast_cancer. Faults on the same engine
(killed, restarted and straggling nodes, SecAgg+ dropouts) are ``test_faults``'s."""

from __future__ import annotations

from pathlib import Path

import pytest
from fl_helpers import bc_recipe, centralized_accuracy

from consortium.federation.engine.deployment import run_deployment

pytestmark = pytest.mark.slow


def _flower_spawned() -> list[str]:
    """Command lines of the processes Flower would spawn itself for a run: its SuperExec and the
    ``flwr-serverapp`` / ``flwr-clientapp`` processes (the hub's engine forks them instead)."""
    found = []
    for cmd in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmd.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(name in line for name in ("flower-superexec", "flwr-serverapp", "flwr-clientapp")):
            found.append(line)
    return found


def test_fedavg_matches_centralized_accuracy(breast_cancer, tmp_path):
    recipe = bc_recipe(rounds=2, local_epochs=5)
    records: list[dict] = []
    spawned: list[str] = []

    def progress(rec: dict) -> None:
        records.append(rec)
        if rec["kind"] in ("start", "round"):  # the ServerApp runs; the nodes' ClientApps answered
            spawned.extend(_flower_spawned())

    res = run_deployment(recipe, breast_cancer["parts"], validation=breast_cancer["test"],
                         progress=progress, work_dir=tmp_path, timeout=240)
    assert not spawned, spawned  # the ServerApp and the ClientApps were forks of the warm process
    central = centralized_accuracy(recipe, breast_cancer["train"], breast_cancer["test"], epochs=10)
    assert res.final["accuracy"] >= central - 0.02, (res.final["accuracy"], central)
    assert [r["kind"] for r in records] == ["start", "round", "round", "done"]
    assert res.contributors == sorted(breast_cancer["orgs"])
    assert all(set(r["nodes"]) == set(breast_cancer["orgs"]) for r in res.history)
    assert set(res.contribution["leave_one_out"]) == set(breast_cancer["orgs"])
    assert res.state_dict and res.engine.startswith("deployment")
    assert not list((tmp_path / "engine").glob("leftover*"))
