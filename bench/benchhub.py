"""A hub for the serving benchmarks: one organization, an owner token, deployments of one model.

``build`` sets it up in this process (for in-process measurements); run as a script it serves
the hub with uvicorn until killed, and writes the token to ``HOME/token``:

    python bench/benchhub.py HOME MODEL.onnx STATE.json PORT [--models N] [--rate NAME=R ...]
                             [--setting KEY=VALUE ...]

STATE.json holds ``{"preprocessing": ..., "class_names": ...}`` from a training run. ``--models N``
registers N copies (digits, digits-1, ...), each deployed under its own name; ``--rate NAME=R``
adds deployment NAME of ``digits`` (or reuses it) with prediction-log sample rate R.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def build(home: str | Path, onnx: bytes, state: dict[str, Any], models: int = 1,
          rates: dict[str, float] | None = None, **settings: Any) -> tuple[Any, Any, str]:
    """``(settings, services, token)`` of a fresh hub with the deployments described above."""
    from consortium.config import Settings
    from consortium.governance import credentials, identity
    from consortium.governance.roles import Role
    from consortium.monitoring.config import save_settings
    from consortium.registry import models as reg
    from consortium.services import Services
    from consortium.serving.hub import deployments as deps
    from consortium.store.db import transaction

    def deploy(s: Any, p: Any, name: str, model_ref: str) -> Any:
        served = reg.to_serve(s, p, model_ref)
        return deps.create_deployment(s, p, name, served.model, version_id=served.version_id, alias=served.alias)

    cfg = Settings(home=home, **settings)
    svc = Services.start(cfg)
    with transaction(svc.session_factory) as s:
        org = identity.create_org(s, svc.keys, "bench-org", "Bench")
        u = identity.create_user(s, "b@bench.example", "b", "correct horse battery")
        identity.add_member(s, org.id, u.id, Role.owner)
        p = credentials.principal_for(u, org, Role.owner, "bench")
        _, token = credentials.create_token(s, p, "bench", Role.owner, 30)
        names = ["digits"] + [f"digits-{i}" for i in range(1, models)]
        deployed = {}
        for name in names:
            reg.register_version(s, p, name, onnx=onnx, blobs=svc.blobs, preprocessing=state["preprocessing"],
                                 task="classification", class_names=state["class_names"])
            deployed[name] = deploy(s, p, name, name)
        for name, rate in (rates or {}).items():
            d = deployed.get(name) or deploy(s, p, name, "digits")
            save_settings(s, d.id, {"sample_rate": rate}, u.id)
    return cfg, svc, token


def main() -> None:
    import uvicorn

    from consortium.web import create_app

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for arg in ("home", "onnx", "state"):
        ap.add_argument(arg)
    ap.add_argument("port", type=int)
    ap.add_argument("--models", type=int, default=1)
    ap.add_argument("--rate", action="append", default=[], help="NAME=R")
    ap.add_argument("--setting", action="append", default=[], help="KEY=VALUE (a Settings field)")
    a = ap.parse_args()
    rates = {k: float(v) for k, v in (kv.split("=", 1) for kv in a.rate)}
    settings = dict(kv.split("=", 1) for kv in a.setting)
    cfg, svc, token = build(a.home, Path(a.onnx).read_bytes(), json.loads(Path(a.state).read_text()),
                            a.models, rates, **settings)
    (Path(a.home) / "token").write_text(token)
    uvicorn.run(create_app(cfg, services=svc), host="127.0.0.1", port=a.port, log_level="warning",
                access_log=False)


if __name__ == "__main__":
    main()
