"""Splits are stratified, disjoint and reproducible; augmentation only changes training batches."""

from __future__ import annotations

import numpy as np
import torch

from consortium.data.samples import load_sample
from consortium.processing import kfold, train_val_test_split
from consortium.processing.augment import build_augmenter


def test_train_val_test_is_stratified_disjoint_and_seeded() -> None:
    y = load_sample("digits").labels
    tr, va, te = train_val_test_split(y, test_size=0.2, val_size=0.1, seed=3)
    assert len(set(tr) | set(va) | set(te)) == len(y) and len(tr) + len(va) + len(te) == len(y)
    assert abs(len(te) - 0.2 * len(y)) <= 1 and abs(len(va) - 0.1 * len(y)) <= 1
    share = np.bincount(y[te], minlength=10) / len(te)
    assert np.abs(share - np.bincount(y, minlength=10) / len(y)).max() < 0.01
    again = train_val_test_split(y, test_size=0.2, val_size=0.1, seed=3)
    assert all((a == b).all() for a, b in zip((tr, va, te), again, strict=False))
    other = train_val_test_split(y, test_size=0.2, val_size=0.1, seed=4)
    assert not (other[2] == te).all()


def test_regression_targets_and_no_validation() -> None:
    y = np.linspace(0, 1, 100)
    tr, va, te = train_val_test_split(y, test_size=0.25, val_size=0, seed=0, stratify=False)
    assert len(va) == 0 and len(te) == 25 and len(tr) == 75


def test_kfold_covers_every_row_once() -> None:
    y = np.array([0] * 30 + [1] * 20)
    folds = kfold(y, 5, seed=0)
    tests = np.concatenate([t for _, t in folds])
    assert sorted(tests.tolist()) == list(range(50))
    assert all(y[t].sum() == 4 for _, t in folds)  # stratified: 20 positives / 5 folds
    assert all((a[1] == b[1]).all() for a, b in zip(folds, kfold(y, 5, seed=0), strict=False))


def test_augmenter_changes_images_and_keeps_shape() -> None:
    torch.manual_seed(0)
    aug = build_augmenter(
        [{"rotation": {"degrees": 30, "p": 1.0}}, {"gaussian_noise": {"std": 0.1, "p": 1.0}}]
    )
    assert aug is not None and build_augmenter([]) is None
    x = torch.rand(8, 1, 8, 8)
    out = aug(x)
    assert out.shape == x.shape and not torch.allclose(out, x)
    noise_only = build_augmenter([{"gaussian_noise": {"std": 0.5, "p": 1.0}}])
    tab = torch.zeros(4, 3)
    assert noise_only is not None and noise_only(tab).abs().sum() > 0
