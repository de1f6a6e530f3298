"""Federated training with Flower, in three roles (as Flower itself splits them):

- ``app``: the Flower ServerApp and ClientApp and what they run (strategies, secure aggregation,
  differential privacy, feature statistics, the global model, contribution, the message protocol,
  the site's local dataset store the ClientApp reads);
  no web framework and no SQL.
- ``engine``: runs those apps on Flower's deployment engine (SuperLink and SuperNode processes,
  their PKI and process supervision) or its simulation engine, and the hub's standing local nodes.
- ``node``: what runs at an organization's site: the ``consortium node`` agent.

The layers run one way: ``node`` runs SuperNodes with ``engine``'s processes, ``engine`` runs
``app``; ``app`` (with the site's local dataset store, ``app.datasets``) imports neither.

The hub's side of federated jobs (node registry, approvals, privacy budgets, run assignment)
lives in ``consortium.jobs``.
"""
