"""Monitoring and feedback: request metrics (Prometheus and per-deployment figures), the sampled
and encrypted prediction log, input drift against the training reference, feedback and live
accuracy, and the opt-in retraining trigger.

Modules: ``recorder`` (hot-path hooks and the background writer), ``prometheus`` (``/metrics``),
``latency`` (histogram buckets), ``config`` (per-deployment settings), ``predictions`` (the log,
read side), ``drift`` (PSI/KS), ``feedback`` (scoring labels), ``analysis`` (what the API
answers), ``retrain`` (the trigger).
"""
