"""Model training: the model zoo, the training loop (with DP-SGD), tuning, ONNX export and the
end-to-end ``run_training`` pipeline. Import submodules directly; importing this package is cheap
(torch loads on first use)."""
