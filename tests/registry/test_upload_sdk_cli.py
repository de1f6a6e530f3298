"""Uploads and deployments through the SDK and the CLI against a real server: the seed's Keras CNN
is uploaded, converted to ONNX, deployed and served."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from registry_models import tiny_classifier


@pytest.fixture(scope="module")
def actor(world: Any) -> Any:
    return world.actor(world.org(), "admin")


@pytest.fixture(scope="module")
def keras_cnn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """The seed document's CNN in Keras 3 (torch backend), saved as .keras, with its own predictions."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(32, (3, 3), activation="relu"),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32)
    want = np.asarray(model.predict(x, verbose=0))
    path = tmp_path_factory.mktemp("keras") / "cnn.keras"
    model.save(path)
    return path, x, want


def test_keras_cnn_upload_deploy_and_serve_via_sdk(live_url: str, actor: Any,
                                                   keras_cnn: tuple[Path, np.ndarray, np.ndarray]) -> None:
    from consortium.sdk.client import Client

    path, x, want = keras_cnn
    with Client(live_url, actor.token) as c:
        v = c.models.upload(path, name="seed-cnn", task="classification", class_names=["no", "yes"])
        assert v["source_format"] == "keras" and v["version"] == 1
        assert v["signature"]["inputs"][0]["shape"][1:] == [8, 8, 1]
        c.models.set_alias("seed-cnn", "production", 1)
        d = c.deployments.create(f"cnn-{actor.org}", "seed-cnn@production")
        assert d["alias"] == "production" and d["version"] == 1
        out = c.deployments.predict(d["name"], x.reshape(4, -1).tolist())  # flat pixels are reshaped
        probs = np.array(out["probabilities"])
        np.testing.assert_allclose(probs[:, 1], want[:, 0], rtol=1e-4, atol=1e-5)
        assert out["predictions"] == [["no", "yes"][int(p > 0.5)] for p in want[:, 0]]
        assert [m["name"] for m in c.deployments.list()] == [d["name"]]
        assert c.models.get("seed-cnn")["deployments"][0]["alias"] == "production"
        c.deployments.delete(d["name"])


def test_sdk_raises_the_hubs_errors(live_url: str, actor: Any, tmp_path: Path) -> None:
    import pickle

    from consortium.errors import InvalidInput, NotFound
    from consortium.sdk.client import Client

    bad = tmp_path / "model.pkl"
    bad.write_bytes(pickle.dumps([1, 2, 3]))
    with Client(live_url, actor.token) as c:
        with pytest.raises(InvalidInput, match="pickle"):
            c.models.upload(bad, name="pickled")
        with pytest.raises(NotFound):
            c.deployments.predict("does-not-exist", [[1, 2]])


def test_cli_upload_and_deploy(live_url: str, actor: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from consortium.cli.main import app

    monkeypatch.setenv("CONSORTIUM_URL", live_url)
    monkeypatch.setenv("CONSORTIUM_TOKEN", actor.token)
    monkeypatch.setenv("CONSORTIUM_CONFIG", str(tmp_path / "cli.json"))
    f = tmp_path / "clf.onnx"
    f.write_bytes(tiny_classifier(5))
    runner = CliRunner()
    r = runner.invoke(app, ["models", "upload", str(f), "--name", "cli-model", "--task", "classification",
                            "--json"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["models", "alias", "cli-model", "production", "1"])
    assert r.exit_code == 0, r.output
    name = f"cli-{actor.org}"
    r = runner.invoke(app, ["deploy", "cli-model@production", "--name", name, "--json"])
    assert r.exit_code == 0 and name in r.output, r.output
    r = runner.invoke(app, ["deployments", "predict", name, "[[1, 2, 3, 4]]", "--json"])
    assert r.exit_code == 0 and '"probabilities"' in r.output, r.output
    r = runner.invoke(app, ["models", "upload", str(f), "--name", "Bad Name"])
    assert r.exit_code == 1 and "not valid" in r.output
    r = runner.invoke(app, ["deployments", "delete", name])
    assert r.exit_code == 0, r.output
