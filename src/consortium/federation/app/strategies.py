"""Flower strategies for a recipe's ``federated.strategy``: fedavg, fedprox (mu), fedadam.

``message_strategy`` gives the message-API strategy (``flwr.serverapp.strategy``) used by the
normal round loop; ``legacy_strategy`` gives the legacy one that the SecAgg+ workflow needs.
Both are Flower's own implementations; only the choice and the parameters are ours.

>>> s = message_strategy("fedprox", min_nodes=2, proximal_mu=0.1); type(s).__name__, s.proximal_mu
('FedProx', 0.1)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from consortium.errors import InvalidInput

NAMES = ("fedavg", "fedprox", "fedadam")


class _Sampling(TypedDict):
    """The keywords every message-API strategy takes alike: who trains and evaluates each round."""

    fraction_train: float
    fraction_evaluate: float
    min_train_nodes: int
    min_evaluate_nodes: int
    min_available_nodes: int


def _check(name: str) -> None:
    if name not in NAMES:
        raise InvalidInput(f"unknown federated strategy {name!r}", hint=f"use one of: {', '.join(NAMES)}")


def message_strategy(name: str, *, min_nodes: int, proximal_mu: float = 0.0) -> Any:
    """Message-API strategy; every connected node trains each round (fraction 1.0)."""
    from flwr.serverapp.strategy import FedAdam, FedAvg, FedProx

    _check(name)
    common = _Sampling(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=min_nodes,
                       min_evaluate_nodes=0, min_available_nodes=min_nodes)
    if name == "fedprox":
        return FedProx(proximal_mu=proximal_mu, **common)
    if name == "fedadam":
        return FedAdam(eta=0.05, eta_l=0.05, beta_1=0.9, beta_2=0.99, tau=1e-3, **common)
    return FedAvg(**common)


def legacy_strategy(name: str, *, min_nodes: int, initial: list[Any], proximal_mu: float,
                    fit_config: Callable[[int], dict[str, Any]],
                    fit_metrics: Callable[[list[tuple[int, dict[str, Any]]]], dict[str, Any]],
                    evaluate_fn: Callable[[int, list[Any], dict[str, Any]], Any]) -> Any:
    """Legacy strategy (``flwr.server.strategy``) for the SecAgg+ workflow."""
    from flwr.common import ndarrays_to_parameters
    from flwr.server.strategy import FedAdam, FedAvg, FedProx

    _check(name)
    common: dict[str, Any] = dict(
        fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=min_nodes, min_evaluate_clients=0,
        min_available_clients=min_nodes, initial_parameters=ndarrays_to_parameters(initial),
        on_fit_config_fn=fit_config, fit_metrics_aggregation_fn=fit_metrics, evaluate_fn=evaluate_fn)
    if name == "fedprox":
        return FedProx(proximal_mu=proximal_mu, **common)
    if name == "fedadam":
        return FedAdam(eta=0.05, eta_l=0.05, beta_1=0.9, beta_2=0.99, tau=1e-3, **common)
    return FedAvg(**common)
