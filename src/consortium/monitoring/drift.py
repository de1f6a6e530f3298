"""Input drift of live traffic against a model version's ``reference_stats`` (from training):
per feature the population stability index (PSI) over the reference histogram's bins and the
Kolmogorov-Smirnov statistic against the reference distribution, then an overall status.

The reference keeps histograms, not rows, so KS is the one-sample test (``scipy.stats.kstest``)
against the reference CDF interpolated linearly inside each bin (home-made approximation: exact
at the bin edges). PSI uses the reference bins merged into about 10 of similar mass, the outer ones stretched
to infinity, and adds 1e-4 to every share so empty bins stay finite. A KS statistic counts as
an alert only when its p-value is also below 0.01.

>>> import numpy as np
>>> from consortium.evaluation.reference import reference_stats
>>> rng = np.random.default_rng(0)
>>> ref = reference_stats(rng.normal(size=(2000, 2)), ["a", "b"])
>>> th = {"psi_warn": 0.1, "psi_alert": 0.25, "ks_alert": 0.2, "min_rows": 50}
>>> drift_report(ref, rng.normal(size=(500, 2)), th)["status"]
'ok'
>>> r = drift_report(ref, rng.normal(size=(500, 2)) + [0.0, 1.5], th)
>>> r["status"], [f["name"] for f in r["features"] if f["status"] == "alert"]
('alert', ['b'])
"""

from __future__ import annotations

from typing import Any

import numpy as np

EPS = 1e-4
PSI_BINS = 10
KS_PVALUE = 0.01
ORDER = {"ok": 0, "warn": 1, "alert": 2}


def coarsen(edges: list[float], counts: list[int], target: int = PSI_BINS) -> tuple[list[float], list[int]]:
    """Merge adjacent reference bins into about ``target`` bins of similar mass (fewer, fuller
    bins keep PSI's small-sample bias low: about (bins - 1) / rows under no drift)."""
    total = float(sum(counts))
    if total <= 0 or len(counts) <= target:
        return list(edges), list(counts)
    out_e, out_c, acc = [edges[0]], [], 0
    for i, c in enumerate(counts):
        acc += c
        if acc >= total / target or i == len(counts) - 1:
            out_e.append(edges[i + 1])
            out_c.append(acc)
            acc = 0
    return out_e, out_c


def psi(edges: list[float], ref_counts: list[int], live: np.ndarray) -> float:
    """PSI of ``live`` values against a reference histogram (bins = the reference's)."""
    edges, ref_counts = coarsen(edges, ref_counts)
    e = np.asarray(ref_counts, dtype=np.float64)
    inner = np.asarray(edges[1:-1], dtype=np.float64)
    a = np.bincount(np.searchsorted(inner, live, side="right"), minlength=len(e)).astype(np.float64)
    e = e / max(e.sum(), 1.0) + EPS
    a = a / max(a.sum(), 1.0) + EPS
    return float(np.sum((a - e) * np.log(a / e)))


def ks(edges: list[float], ref_counts: list[int], live: np.ndarray) -> tuple[float, float]:
    """KS statistic and p-value of ``live`` against the reference CDF (piecewise linear)."""
    from scipy.stats import kstest

    c = np.asarray(ref_counts, dtype=np.float64)
    cdf_at_edges = np.concatenate([[0.0], np.cumsum(c) / max(c.sum(), 1.0)])
    xs = np.asarray(edges, dtype=np.float64)
    res = kstest(live, lambda x: np.interp(x, xs, cdf_at_edges, left=0.0, right=1.0))
    return float(res.statistic), float(res.pvalue)


def _feature(name: str, hist: dict[str, Any], live: np.ndarray, th: dict[str, Any],
             ref_mean: float | None = None) -> dict[str, Any]:
    live = live[np.isfinite(live)]
    edges, counts = hist.get("bin_edges") or [], hist.get("counts") or []
    if len(edges) < 2 or live.size == 0:
        return {"name": name, "psi": None, "ks": None, "status": "ok"}
    p = psi(edges, counts, live)
    d, pval = ks(edges, counts, live)
    ks_flag = d >= th["ks_alert"] and pval < KS_PVALUE  # large and not a small-sample accident
    status = "alert" if p >= th["psi_alert"] or ks_flag else "warn" if p >= th["psi_warn"] else "ok"
    out = {"name": name, "psi": round(p, 4), "ks": round(d, 4), "ks_pvalue": float(f"{pval:.3g}"),
           "live_mean": round(float(live.mean()), 4), "status": status}
    if ref_mean is not None:
        out["reference_mean"] = round(ref_mean, 4)
    return out


def drift_report(reference: dict[str, Any] | None, X: np.ndarray, thresholds: dict[str, Any]) -> dict[str, Any]:
    """Compare model inputs ``X`` ((N, F) tabular, or (N, ...) images) with ``reference``.

    Status: ``alert`` if any feature is in alert, ``warn`` if any warns, else ``ok``;
    ``insufficient_data`` below ``min_rows`` rows; ``no_reference`` if the version has none."""
    n = int(X.shape[0]) if X.ndim else 0
    base: dict[str, Any] = {"rows": n, "status": "ok", "features": []}
    if not reference:
        return {**base, "status": "no_reference"}
    if n < thresholds["min_rows"]:
        return {**base, "status": "insufficient_data", "min_rows": thresholds["min_rows"]}
    if reference.get("kind") == "image":
        feats = [_feature("pixels", reference.get("pixel_histogram") or {}, X.reshape(-1).astype(np.float64),
                          thresholds, reference.get("pixel_mean"))]
    else:
        X2 = X.reshape(n, -1).astype(np.float64)
        ref_feats = reference.get("features") or []
        if X2.shape[1] != len(ref_feats):
            return {**base, "status": "no_reference",
                    "detail": f"inputs have {X2.shape[1]} features, the reference {len(ref_feats)}"}
        feats = [_feature(f["name"], f, X2[:, i], thresholds, f.get("mean")) for i, f in enumerate(ref_feats)]
    status = max((f["status"] for f in feats), key=ORDER.__getitem__, default="ok")
    psis = [f["psi"] for f in feats if f["psi"] is not None]
    kss = [f["ks"] for f in feats if f["ks"] is not None]
    return {"rows": n, "status": status, "max_psi": max(psis, default=None), "max_ks": max(kss, default=None),
            "features_alert": sum(f["status"] == "alert" for f in feats),
            "features_warn": sum(f["status"] == "warn" for f in feats), "features": feats}
