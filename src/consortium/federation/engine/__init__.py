"""Running the Flower apps: the deployment engine (``flower-superlink`` and ``flower-supernode``
processes, TLS and node keys, tagged process supervision), the in-process simulation engine, and
the standing node agents ``consortium up`` starts on the hub's machine."""
