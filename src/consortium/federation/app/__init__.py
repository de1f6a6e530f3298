"""The Flower apps of a federated job: the ServerApp (hub side) and the ClientApp (every node),
and the pieces they share. Loaded by Flower by module path (``consortium.federation.app.server_app:app``,
``consortium.federation.app.client_app:app``); free of web frameworks and of the hub's database."""
