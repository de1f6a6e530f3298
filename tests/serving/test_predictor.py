"""OnnxPredictor: session options, predictions, input checks."""

from __future__ import annotations

import numpy as np
import pytest
from serving_models import linear_onnx, linear_ref

from consortium.errors import BadRequest, InvalidInput
from consortium.serving.predictor import OnnxPredictor, available_cores, session_options


def test_session_options_are_set_for_cpu_serving() -> None:
    import onnxruntime as ort

    o = session_options(workers=1)
    assert o.intra_op_num_threads == max(1, available_cores() - 1)  # one core stays with the event loop
    assert o.inter_op_num_threads == 1
    assert o.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert o.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert session_options(workers=available_cores() * 2).intra_op_num_threads == 1
    with pytest.raises(InvalidInput):
        session_options(workers=0)


def test_predict_matches_reference(linear_bytes: bytes) -> None:
    p = OnnxPredictor(linear_bytes, name="lin", threads=1)
    x = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    out = p.predict({"x": x})
    np.testing.assert_allclose(out["y"], linear_ref(x), rtol=1e-6)
    assert out["label"].dtype == np.int64 and (out["label"] == linear_ref(x).argmax(1)).all()
    assert list(p.predict({"x": x}, outputs=["label"])) == ["label"]
    assert p.batchable and p.nbytes == len(linear_bytes)


def test_same_kind_numbers_are_cast_unless_told_not_to(linear_bytes: bytes) -> None:
    p = OnnxPredictor(linear_bytes, threads=1)
    x64 = np.ones((2, 4))  # float64, as JSON numbers parse
    np.testing.assert_allclose(p.predict({"x": x64})["y"], linear_ref(x64), rtol=1e-6)
    np.testing.assert_allclose(p.predict({"x": [[1, 2, 3, 4]]})["y"], linear_ref(np.array([[1, 2, 3, 4]])))
    with pytest.raises(BadRequest, match=r"float64 \(FP64\); the model expects float32 \(FP32\)"):
        p.validate({"x": x64}, cast=False)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({}, "missing input 'x'"),
        ({"x": np.ones((2, 4), np.float32), "z": 1}, "unknown input 'z'"),
        ({"x": np.ones((2, 5), np.float32)}, r"shape \[2, 5\]; the model expects \[-1, 4\]"),
        ({"x": np.ones(4, np.float32)}, r"shape \[4\]; the model expects \[-1, 4\]"),
        ({"x": np.array([["a", "b", "c", "d"]])}, r"dtype str.*expects float32 \(FP32\)"),
        ({"x": [[1.0, 2.0], [1.0]]}, "not a rectangular array"),
    ],
)
def test_bad_inputs_name_expected_shape_and_dtype(linear_bytes: bytes, batch: dict, message: str) -> None:
    p = OnnxPredictor(linear_bytes, threads=1)
    with pytest.raises(BadRequest, match=message) as e:
        p.predict(batch)
    if "unknown" not in message:
        assert "float32 (FP32) with shape [-1, 4]" in str(e.value)


def test_unknown_output_and_fixed_batch_model() -> None:
    p = OnnxPredictor(linear_onnx(batch=2), threads=1)
    assert not p.batchable
    with pytest.raises(BadRequest, match=r"shape \[3, 4\]; the model expects \[2, 4\]"):
        p.predict({"x": np.ones((3, 4), np.float32)})
    with pytest.raises(BadRequest, match="unknown output 'nope'"):
        p.predict({"x": np.ones((2, 4), np.float32)}, outputs=["nope"])


def test_predict_rows_reshapes_flat_rows() -> None:
    import onnx
    import onnx.helper as oh

    x = oh.make_tensor_value_info("img", onnx.TensorProto.FLOAT, ["N", 1, 2, 2])
    y = oh.make_tensor_value_info("flat", onnx.TensorProto.FLOAT, ["N", 4])
    shape = onnx.numpy_helper.from_array(np.array([-1, 4], np.int64), "s")
    g = oh.make_graph([oh.make_node("Reshape", ["img", "s"], ["flat"])], "r", [x], [y], initializer=[shape])
    model = oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)]).SerializeToString()
    p = OnnxPredictor(model, threads=1)
    out = p.predict_rows([[1, 2, 3, 4], [5, 6, 7, 8]])
    np.testing.assert_array_equal(out["flat"], [[1, 2, 3, 4], [5, 6, 7, 8]])


def test_corrupt_model_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="onnxruntime cannot load"):
        OnnxPredictor(b"\x08\x01not really")
