"""The training loop: learning, reproducibility, schedules, early stopping, stop requests, DP-SGD."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from consortium.errors import InvalidInput
from consortium.recipe import DPSpec, MLPSpec, TrainSpec
from consortium.training.models import build_model
from consortium.training.trainer import predict_proba, seed_everything, train_epochs


def _data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    y = ((X[:, 0] + 0.5 * X[:, 1] ** 2 - X[:, 2]) > 0.3).astype(np.int64)
    return X, y


def _fit(train: TrainSpec, seed: int = 0, **kw: object) -> tuple[torch.nn.Module, list[dict]]:
    X, y = _data()
    seed_everything(seed)
    model = build_model(MLPSpec(hidden=[16]), (6,), 2)
    hist = train_epochs(
        model,
        X[:300],
        y[:300],
        train,
        task="classification",
        epochs=train.epochs,
        seed=seed,
        X_val=X[300:],
        y_val=y[300:],
        **kw,
    )  # type: ignore[arg-type]
    return model, hist


def test_loss_falls_and_model_learns() -> None:
    model, hist = _fit(TrainSpec(lr=0.01, epochs=15))
    assert hist[-1]["loss"] < 0.6 * hist[0]["loss"]
    assert hist[-1]["val_accuracy"] > 0.85
    X, y = _data()
    proba = predict_proba(model, X[300:])
    assert proba.shape == (100, 2) and np.allclose(proba.sum(1), 1, atol=1e-5)


def test_same_seed_same_history_other_seed_differs() -> None:
    spec = TrainSpec(lr=0.01, epochs=3, optimizer="sgd", momentum=0.9)
    a = [h["loss"] for h in _fit(spec, seed=1)[1]]
    b = [h["loss"] for h in _fit(spec, seed=1)[1]]
    c = [h["loss"] for h in _fit(spec, seed=2)[1]]
    assert a == b and a != c


def test_schedules_change_the_learning_rate() -> None:
    _, hist = _fit(TrainSpec(lr=0.01, epochs=4, schedule={"type": "step", "step_size": 2, "gamma": 0.1}))
    assert [round(h["lr"], 6) for h in hist] == [0.01, 0.01, 0.001, 0.001]
    _, hist = _fit(TrainSpec(lr=0.01, epochs=4, optimizer="adamw", schedule={"type": "cosine"}))
    assert hist[0]["lr"] == 0.01 and hist[-1]["lr"] < 0.01


def test_early_stopping_stops_and_restores_best_weights() -> None:
    X, y = _data()
    rng = np.random.default_rng(0)
    y_noise = rng.integers(0, 2, size=len(y))  # unlearnable: val loss rises as the model overfits
    seed_everything(0)
    model = build_model(MLPSpec(hidden=[64, 64]), (6,), 2)
    spec = TrainSpec(lr=0.01, epochs=60, early_stopping={"patience": 3})
    hist = train_epochs(
        model,
        X[:300],
        y_noise[:300],
        spec,
        task="classification",
        epochs=60,
        seed=0,
        X_val=X[300:],
        y_val=y_noise[300:],
    )
    assert len(hist) < 60 and hist[-1].get("early_stopped")
    best = min(h["val_loss"] for h in hist)
    with torch.no_grad():
        out = torch.nn.functional.cross_entropy(
            model(torch.from_numpy(X[300:])), torch.from_numpy(y_noise[300:])
        )
    assert float(out) == pytest.approx(best, abs=1e-5)


def test_should_stop_and_on_epoch() -> None:
    seen: list[int] = []
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return len(seen) >= 2

    _, hist = _fit(TrainSpec(epochs=10), on_epoch=lambda row: seen.append(row["epoch"]), should_stop=stop)
    assert seen == [1, 2] and len(hist) <= 3


def test_binary_cross_entropy_and_regression() -> None:
    X, y = _data()
    seed_everything(0)
    m = build_model(MLPSpec(hidden=[16]), (6,), 1)
    hist = train_epochs(
        m,
        X,
        y,
        TrainSpec(loss="binary_cross_entropy", lr=0.01, epochs=10),
        task="classification",
        epochs=10,
        seed=0,
    )
    proba = predict_proba(m, X)
    assert (
        proba.shape == (400, 2) and (proba.argmax(1) == y).mean() > 0.8 and hist[-1]["loss"] < hist[0]["loss"]
    )
    target = (X @ np.arange(6, dtype=np.float32)).astype(np.float32)
    seed_everything(0)
    r = build_model(MLPSpec(hidden=[16]), (6,), 1)
    hist = train_epochs(
        r,
        X,
        target,
        TrainSpec(loss="mse", lr=0.01, epochs=20),
        task="regression",
        epochs=20,
        seed=0,
        X_val=X[:50],
        y_val=target[:50],
    )
    assert hist[-1]["val_mae"] < 0.3 * hist[0]["val_mae"] and predict_proba(
        r, X, task="regression"
    ).shape == (400,)


def test_dp_sgd_reports_epsilon_and_model_trains_again() -> None:
    X, y = _data(600)
    seed_everything(0)
    model = build_model(MLPSpec(hidden=[16]), (6,), 2)
    dp = DPSpec(epsilon=3.0, delta=1e-5, max_grad_norm=1.0)
    spec = TrainSpec(lr=0.05, epochs=3, batch_size=64, optimizer="sgd")
    hist = train_epochs(model, X, y, spec, task="classification", epochs=3, seed=0, dp=dp)
    eps = [h["epsilon"] for h in hist]
    assert eps == sorted(eps) and 0 < eps[-1] <= 3.0 + 1e-6
    # a federated client trains the same module again next round: hooks must be gone
    hist2 = train_epochs(model, X, y, spec, task="classification", epochs=1, seed=1, dp=dp)
    assert hist2[0]["epsilon"] > 0 and not hasattr(model, "_forward_counter")
    assert (predict_proba(model, X).argmax(1) == y).mean() > 0.6
    with pytest.raises(InvalidInput, match="differential privacy"):
        bn = build_model(MLPSpec(hidden=[8], batch_norm=True), (6,), 2)
        train_epochs(bn, X, y, spec, task="classification", epochs=1, seed=0, dp=dp)


def test_proximal_term_keeps_weights_near_the_start() -> None:
    X, y = _data()
    drift = {}
    for mu in (0.0, 10.0):
        seed_everything(0)
        model = build_model(MLPSpec(hidden=[16]), (6,), 2)
        start = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        train_epochs(
            model, X, y, TrainSpec(lr=0.05, epochs=5), task="classification", epochs=5, seed=0, proximal_mu=mu
        )
        drift[mu] = float((torch.cat([p.detach().flatten() for p in model.parameters()]) - start).norm())
    assert drift[10.0] < 0.5 * drift[0.0]
