"""Model files never reach outside themselves: ONNX external data is refused on every load.

An ONNX tensor may keep its bytes in another file (``data_location: EXTERNAL`` with a
``location``). onnxruntime resolves that location against the model's directory, or, for a
model given as bytes, against the process's working directory, so an uploaded model naming
``home/master.key`` would hand the hub's own files back as model outputs. Every path that loads
a model (uploads, Keras conversion, registration from jobs, serving, explanations) calls
``refuse_external_data`` first; ``harden`` adds onnxruntime's own guards for defence in depth.

What is checked, at every graph level: initializers and sparse initializers, tensors in node
attributes (``TENSOR``/``TENSORS``/``SPARSE_TENSOR(S)``), subgraphs in attributes (``If``,
``Loop``, ``Scan`` bodies: ``GRAPH``/``GRAPHS``), model-local ``functions`` (node attributes and
attribute defaults) and training graphs. ``EPContext`` nodes, which name compiled blobs on disk,
are refused too. A file that does not parse as an ONNX ``ModelProto`` is refused rather than
handed to onnxruntime, and what onnxruntime loads is the re-serialization of what was checked
(``canonical_bytes``), so a parser difference cannot smuggle a tensor past the check.

>>> import onnx, onnx.helper as h, onnx.numpy_helper as nh, numpy as np
>>> w = nh.from_array(np.zeros(3, np.float32), "w")
>>> g = h.make_graph([h.make_node("Add", ["x", "w"], ["y"])], "g",
...                  [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [3])],
...                  [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [3])], initializer=[w])
>>> model = h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
>>> refuse_external_data(model.SerializeToString()).graph.initializer[0].name
'w'
>>> onnx.external_data_helper.set_external_data(model.graph.initializer[0], location="master.key")
>>> refuse_external_data(model.SerializeToString())  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
consortium.errors.InvalidInput: the ONNX model keeps tensor 'w' (initializer of the main graph) in external data...
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from consortium.errors import InvalidInput

# onnxruntime resolves a from-bytes model's external data in this folder when it is set: a path
# under /dev/null can never exist, so nothing resolves there, and '..' is refused as an escape.
NO_EXTERNAL_DATA_DIR = os.path.join(os.devnull, "consortium-no-external-data")
_FIX = ("save it with every tensor inside the file: onnx.save(model, path, save_as_external_data=False), "
        "or export it with torch.onnx.export(..., external_data=False); a model over 2 GB cannot be one ONNX file")
_NOT_ONNX = ("the file is not a complete ONNX model, so onnxruntime cannot load it: "
             "it does not parse as an ONNX ModelProto")


def _label(name: str) -> str:
    """An attacker-chosen tensor or node name, shortened for a message."""
    return repr(name[:80] + ("..." if len(name) > 80 else ""))


def _node(node: Any) -> str:
    return f"{node.op_type} node {_label(node.name)}" if node.name else f"an unnamed {node.op_type} node"


def _tensors(model: Any) -> Iterator[tuple[Any, str]]:
    """Every TensorProto in ``model`` with where it sits; also refuses EPContext nodes."""
    graphs: list[tuple[Any, str]] = [(model.graph, "the main graph")]
    for i, info in enumerate(model.training_info):
        graphs += [(info.initialization, f"training graph {i}"), (info.algorithm, f"training graph {i}")]
    attrs: list[tuple[Any, Any, str]] = []  # (attribute, its node or None for a function default, where)

    def node_attrs(nodes: Any, where: str) -> None:
        for node in nodes:
            if node.op_type == "EPContext":
                raise InvalidInput(
                    f"the ONNX model has {_node(node)} in {where}; EPContext nodes load a compiled "
                    "model from a file outside the model", hint="upload the original ONNX model")
            attrs.extend((a, node, where) for a in node.attribute)

    for f in model.functions:
        where = f"function {_label(f.name)}"
        node_attrs(f.node, where)
        attrs.extend((a, None, where) for a in f.attribute_proto)
    while graphs or attrs:  # iterative: nesting depth is the file's choice
        if graphs:
            g, where = graphs.pop()
            yield from ((t, f"initializer of {where}") for t in g.initializer)
            for s in g.sparse_initializer:
                yield s.values, f"sparse initializer of {where}"
                yield s.indices, f"sparse initializer of {where}"
            node_attrs(g.node, where)
            continue
        a, node, where = attrs.pop()
        sparse = ([a.sparse_tensor] if a.HasField("sparse_tensor") else []) + list(a.sparse_tensors)
        tensors = ([a.t] if a.HasField("t") else []) + list(a.tensors)
        tensors += [t for sp in sparse for t in (sp.values, sp.indices)]
        subgraphs = ([a.g] if a.HasField("g") else []) + list(a.graphs)
        if not tensors and not subgraphs:  # most attributes: ints, floats, strings
            continue
        owner = f"of {_node(node)} in {where}" if node is not None else f"default of {where}"
        here = f"attribute {_label(a.name)} {owner}"
        yield from ((t, here) for t in tensors)
        graphs += [(sub, f"a subgraph in {here}") for sub in subgraphs]


def refuse_external_data(data: bytes) -> Any:
    """Parse ONNX bytes and refuse them if any tensor lives outside the file; returns the
    ``onnx.ModelProto``. Raises ``InvalidInput`` whose message names the tensor, never a path."""
    import onnx
    from google.protobuf.message import DecodeError

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):  # the message may quote the bytes: not passed on
        raise InvalidInput(_NOT_ONNX, hint="upload the .onnx file itself, saved in one piece") from None
    if not model.HasField("graph"):
        raise InvalidInput("the ONNX model has no graph", hint="upload the .onnx file itself")
    external = onnx.TensorProto.EXTERNAL
    for tensor, where in _tensors(model):
        if tensor.data_location == external or len(tensor.external_data):
            raise InvalidInput(
                f"the ONNX model keeps tensor {_label(tensor.name)} ({where}) in external data, a file "
                "outside the model; the hub only loads self-contained models", hint=_FIX)
    return model


def canonical_bytes(model: Any) -> bytes:
    """``model`` serialized again without fields this onnx does not know: what was checked is
    exactly what onnxruntime gets."""
    model.DiscardUnknownFields()
    return bytes(model.SerializeToString())


def harden(options: Any) -> Any:
    """Set onnxruntime's own guards on ``SessionOptions``: external data may only come from a
    folder that cannot exist, and the bytes are read as ONNX (never as an ORT-format model)."""
    options.add_session_config_entry("session.model_external_initializers_file_folder_path",
                                     NO_EXTERNAL_DATA_DIR)
    options.add_session_config_entry("session.load_model_format", "ONNX")
    return options
