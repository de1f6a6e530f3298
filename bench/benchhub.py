"""A hub for the serving benchmarks: one organization, an owner token, N deployments of one model.

``build`` sets it up in this process (for in-process measurements); run as a script it serves
the hub with uvicorn until killed, and writes the token to ``HOME/token``:

    python bench/benchhub.py HOME MODEL.onnx STATE.json PORT N_MODELS [KEY=VALUE settings...]

STATE.json holds ``{"preprocessing": ..., "class_names": ...}`` from a training run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def build(home: str | Path, onnx: bytes, state: dict[str, Any], n_models: int,
          **settings: Any) -> tuple[Any, Any, str]:
    """``(settings, services, token)`` of a fresh hub with deployments digits, digits-1, ..."""
    from consortium.config import Settings
    from consortium.governance import credentials, identity
    from consortium.governance.roles import Role
    from consortium.registry import deployments as deps
    from consortium.registry import models as reg
    from consortium.services import Services
    from consortium.store.db import transaction

    cfg = Settings(home=home, **settings)
    svc = Services.start(cfg)
    with transaction(svc.session_factory) as s:
        org = identity.create_org(s, "bench-org", "Bench")
        u = identity.create_user(s, "b@bench.example", "b", "correct horse battery")
        identity.add_member(s, org.id, u.id, Role.owner)
        p = credentials.principal_for(u, org, Role.owner, "bench")
        _, token = credentials.create_token(s, p, "bench", Role.owner, 30)
        for i in range(n_models):
            name = "digits" if i == 0 else f"digits-{i}"
            reg.register_version(s, p, name, onnx=onnx, blobs=svc.blobs, preprocessing=state["preprocessing"],
                                 task="classification", class_names=state["class_names"])
            deps.create_deployment(s, p, name, name)
    return cfg, svc, token


def main() -> None:
    import uvicorn

    from consortium.api.app import create_app

    home, onnx_path, state_path, port, n_models, *extra = sys.argv[1:]
    settings = dict(kv.split("=", 1) for kv in extra)
    cfg, svc, token = build(home, Path(onnx_path).read_bytes(), json.loads(Path(state_path).read_text()),
                            int(n_models), **settings)
    (Path(home) / "token").write_text(token)
    uvicorn.run(create_app(cfg, services=svc), host="127.0.0.1", port=int(port), log_level="warning",
                access_log=False)


if __name__ == "__main__":
    main()
