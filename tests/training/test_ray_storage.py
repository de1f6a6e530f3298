"""Where a Ray run keeps its checkpoints (``training.distributed.scratch_storage``): a temporary
directory by default, else under ``CONSORTIUM_RAY_STORAGE``, a shared directory or a URI, one
subdirectory per run, removed when the run ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from consortium.training.distributed import scratch_storage


def test_default_is_a_private_temporary_directory_removed_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSORTIUM_RAY_STORAGE", raising=False)
    with scratch_storage() as a, scratch_storage() as b:
        assert a != b and Path(a).is_dir() and Path(a).name.startswith("consortium-ray-")
        (Path(a) / "checkpoint").write_text("x")
    assert not Path(a).exists() and not Path(b).exists()


def test_a_shared_directory_holds_each_run_in_its_own_subdirectory(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "nfs" / "ray"
    monkeypatch.setenv("CONSORTIUM_RAY_STORAGE", str(shared))
    with scratch_storage() as d:
        assert Path(d).parent == shared
        (Path(d) / "checkpoint").write_text("x")
    assert shared.is_dir() and list(shared.iterdir()) == []


def test_a_uri_is_handed_to_ray_and_its_run_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSORTIUM_RAY_STORAGE", f"file://{tmp_path}/store/")
    with scratch_storage() as uri:
        assert uri.startswith(f"file://{tmp_path}/store/consortium-ray-")
        run = Path(uri.removeprefix("file://"))
        run.mkdir(parents=True)
        (run / "checkpoint").write_text("x")  # what Ray Train writes there through pyarrow
    assert not run.exists()
