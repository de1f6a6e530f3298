"""Evaluation: metrics, cross-validation summaries, confusion matrices, plots, reference statistics
for drift monitoring, and explanations (Integrated Gradients)."""

from consortium.evaluation.metrics import compute_metrics, confusion, summarize_folds

__all__ = ["compute_metrics", "confusion", "summarize_folds"]
