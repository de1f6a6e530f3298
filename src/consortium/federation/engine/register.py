"""Register several SuperNode keys with a SuperLink in one process (``flwr supernode register``
takes one key a call, and each call is a CLI process importing flwr: 2 s on an idle 2-core
machine, 7 s on a loaded one).

It uses the CLI's own pieces (the connection read from ``FLWR_HOME``'s ``config.toml``, the
Control API client, ``RegisterNode``), so what reaches the SuperLink is what the CLI sends. Run
by ``FlowerDeployment.register_nodes`` as ``python -m consortium.federation.engine.register
CONNECTION NAME=KEYFILE ...``; prints one JSON line ``{"node-ids": {NAME: id}}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from cryptography.hazmat.primitives import serialization
    from flwr.cli.flower_config import read_superlink_connection
    from flwr.cli.utils import init_http_client_from_connection
    from flwr.proto.control_pb2 import RegisterNodeRequest
    from flwr.supercore.primitives.asymmetric import public_key_to_bytes

    connection, pairs = argv[0], [a.split("=", 1) for a in argv[1:]]
    client = init_http_client_from_connection(read_superlink_connection(connection))
    ids = {}
    try:
        for name, path in pairs:
            key = serialization.load_ssh_public_key(Path(path).read_bytes())
            res = client.RegisterNode(request=RegisterNodeRequest(public_key=public_key_to_bytes(key),  # type: ignore[arg-type]
                                                                  name=name))
            if not res.node_id:
                print(f"the SuperLink did not register {name}", file=sys.stderr)
                return 1
            ids[name] = int(res.node_id)
    finally:
        client.close()
    print(json.dumps({"node-ids": ids}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
