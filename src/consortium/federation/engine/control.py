"""The SuperLink's Control API, called from this process: register SuperNode keys, start a run,
read a run's status.

The ``flwr`` CLI does each of these as a process of its own (``flwr supernode register``, ``flwr
run``, ``flwr ls``), and each process imports flwr first: 1.5-2 s on an idle 2-core machine, 7 s
on a loaded one, three times before a job's first round. This client makes the same requests with
the CLI's own pieces (Flower's ``ControlHttpClient`` with the CLI's client and version
interceptors, ``build_fab_from_disk``, ``StartRunRequest``, ``RegisterNodeRequest``,
``ListRunsRequest``), so what reaches the SuperLink is what the CLI sends; only the process is
saved. The account-authentication interceptor is left out: the hub's SuperLink runs Flower's
no-op account auth, whose interceptor sends nothing (its Control API answers this machine only,
``superlink``).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

from consortium.errors import Unavailable


class Control:
    """A Control API client for one SuperLink (``address`` as ``host:port``; ``ca_cert`` the CA
    the SuperLink's certificate is verified with, None for a plain-HTTP SuperLink)."""

    def __init__(self, address: str, ca_cert: Path | None) -> None:
        from flwr.cli.cli_client_interceptor import CliClientHttpInterceptor
        from flwr.supercore.control.control_http_client import ControlHttpClient
        from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor

        self.address = address
        self.client = ControlHttpClient.from_server_address(
            server_address=address, insecure=ca_cert is None,
            root_certificates=str(ca_cert) if ca_cert is not None else None,
            interceptors=[CliClientHttpInterceptor(), RuntimeVersionHttpInterceptor(component_name="flwr CLI")])

    def _call(self, what: str, fn: Any, request: Any) -> Any:
        try:
            return fn(request)
        except Exception as e:
            raise Unavailable(f"the SuperLink at {self.address} refused to {what}: {e}") from e

    def register(self, name: str, public_key: str) -> int:
        """Allow the SuperNode holding the private half of ``public_key`` (OpenSSH) to join; its node id."""
        from cryptography.hazmat.primitives import serialization
        from flwr.proto.control_pb2 import RegisterNodeRequest
        from flwr.supercore.primitives.asymmetric import public_key_to_bytes

        key = serialization.load_ssh_public_key(public_key.encode())
        res = self._call(f"register the key of {name}", self.client.RegisterNode,
                         RegisterNodeRequest(public_key=public_key_to_bytes(key), name=name))  # type: ignore[arg-type]
        if not res.node_id:
            raise Unavailable(f"the SuperLink at {self.address} did not register the key of {name}")
        return int(res.node_id)

    def start_run(self, app: Path, run_config: dict[str, Any]) -> int:
        """Start a run of the app in ``app`` (a directory with its ``pyproject.toml``, built into a
        FAB as ``flwr run`` builds it) with these run-config values; the run id."""
        from flwr.cli.build import build_fab_from_disk
        from flwr.common.serde import fab_to_proto, user_config_to_proto
        from flwr.proto.control_pb2 import StartRunRequest
        from flwr.supercore.fab import Fab

        with warnings.catch_warnings():  # pathspec's deprecation of the pattern style Flower asks for
            warnings.simplefilter("ignore", DeprecationWarning)
            fab_bytes = build_fab_from_disk(app)
        fab = Fab(hashlib.sha256(fab_bytes).hexdigest(), fab_bytes, {})
        res = self._call("start the run", self.client.StartRun,
                         StartRunRequest(fab=fab_to_proto(fab), override_config=user_config_to_proto(run_config),
                                         federation=""))
        if not res.HasField("run_id"):
            raise Unavailable(f"the SuperLink at {self.address} started no run" +
                              (f": {res.note}" if res.HasField("note") else ""))
        return int(res.run_id)

    def status(self, run_id: int) -> str:
        """The run's status as ``flwr ls`` prints it (``running``, ``finished:completed``, ...); ''
        when the SuperLink does not know the run."""
        from flwr.proto.control_pb2 import ListRunsRequest

        res = self._call(f"list run {run_id}", self.client.ListRuns, ListRunsRequest(run_id=run_id))
        run = res.run_dict.get(run_id)
        if run is None:
            return ""
        status, sub = run.status.status, run.status.sub_status
        return f"{status}:{sub}" if sub else str(status)

    def close(self) -> None:
        self.client.close()
