"""Captures a live torch nn.Module as a planetbridge stream (docs/planets/pytorch.md).

Tensor names in the stream:

- inputs:  "input.0", "input.1", ... in placeholder order (example_inputs order);
- outputs: "output.0", "output.1", ... the module's outputs, nested tuples/lists flattened in
  order (they correspond to the fx output node's first arg flattened the same way);
- weights: a module's parameter or buffer by its qualified name ("0.weight", "fc1.bias");
- get_attr nodes: the fetched tensor under the node's target (also a qualified name, so a
  parameter read by get_attr and by its module shares one tensor);
- taps:    "tap.<fx node name>" for every call_module / call_function / call_method node whose
  output is a tensor, listed in doc["taps"] as {node name: tensor name}.

Float tensors are sent as f32 (float64 stays f64); int64 stays i64, narrower ints go as i32.
capture() leaves the module in eval() mode.
"""

import os
import sys

import torch
import torch.fx
from torch.fx.node import Node, _get_qualified_name

# The library works without capture.py's path setup.
_SDK = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "capture", "python"))
if _SDK not in sys.path:
    sys.path.append(_SDK)
import pbstream  # noqa: E402

PLANET = "pytorch"
ENGINE = "torch"
# Debian's build reports "1.13.0a0+gitunknown"; the suffix carries no information.
PLANET_VERSION = str(torch.__version__).removesuffix("+gitunknown")

_TRACED_OPS = ("call_module", "call_function", "call_method")


# A captured model: the document and its tensors by name (to_bytes, write, post).
Stream = pbstream.Stream


def _to_numpy(t):
    """A detached, owned numpy copy (later in-place ops must not change what we send)."""
    t = t.detach().cpu()
    if t.is_floating_point() and t.dtype != torch.float64:
        t = t.float()
    elif t.dtype in (torch.int8, torch.uint8, torch.int16):
        t = t.int()
    return t.contiguous().numpy().copy()


def _plain(v):
    """Whether v is an attribute value the stream carries in "attrs"."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    return isinstance(v, (tuple, list)) and all(_plain(x) for x in v)


def _json_value(v):
    if isinstance(v, float):
        return pbstream.finite_or_repr(v)
    if isinstance(v, (tuple, list)):
        return [_json_value(x) for x in v]
    return v


def _arg(a):
    """The args/kwargs encoding of docs/planets/pytorch.md."""
    if isinstance(a, Node):
        return {"node": a.name}
    if a is None or isinstance(a, (bool, int, str)):
        return a
    if isinstance(a, float):
        return pbstream.finite_or_repr(a)
    if isinstance(a, (tuple, list)):
        return [_arg(x) for x in a]
    if isinstance(a, slice):
        return {"slice": [_arg(a.start), _arg(a.stop), _arg(a.step)]}
    return {"repr": repr(a)}


def _target(node):
    if node.op == "call_function":
        return _get_qualified_name(node.target)
    return str(node.target)


def _flatten(value):
    """Leaves of nested tuples/lists, in order."""
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in _flatten(v)]
    return [value]


def _module_entry(path, mod, tensors):
    attrs = {k: _json_value(v) for k, v in vars(mod).items()
             if not k.startswith("_") and k != "training" and _plain(v)}
    prefix = path + "." if path else ""
    entry = {"type": type(mod).__name__,
             "class": f"{type(mod).__module__}.{type(mod).__qualname__}",
             "training": mod.training, "attrs": attrs, "params": {}, "buffers": {}}
    for kind, items in (("params", mod.named_parameters(recurse=False)),
                        ("buffers", mod.named_buffers(recurse=False))):
        for name, t in items:
            if t is None:
                continue
            entry[kind][name] = prefix + name
            tensors[prefix + name] = _to_numpy(t)
    return entry


class _Tapper(torch.fx.Interpreter):
    """Runs the traced graph, keeping a copy of every traced node's tensor output."""

    def __init__(self, gm):
        super().__init__(gm)
        self.outputs = {}

    def run_node(self, n):
        result = super().run_node(n)
        if n.op in _TRACED_OPS and isinstance(result, torch.Tensor):
            # Copy now: a later in-place op (ReLU(inplace=True)) would rewrite the tensor.
            self.outputs[n.name] = _to_numpy(result)
        return result


class _LeafTracer(torch.fx.Tracer):
    """Keeps modules of the given classes as single call_module nodes (not traced through)."""

    def __init__(self, leaf_modules):
        super().__init__()
        self.leaf_modules = tuple(leaf_modules)

    def is_leaf_module(self, m, qualname):
        return isinstance(m, self.leaf_modules) or super().is_leaf_module(m, qualname)


def capture(module, example_inputs, model_id, taps=False, leaf_modules=(), composed=()):
    """Traces `module` with torch.fx, runs it on `example_inputs` and returns the Stream.

    leaf_modules: module classes kept whole (one call_module node, type = class name), e.g. a
    composed RMSNorm the decoder knows by name. composed: notes naming layers the planet has
    no stock module for, built here from the planet's own ops; they go in doc["composed"]."""
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    example_inputs = tuple(example_inputs)
    for i, x in enumerate(example_inputs):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{model_id}: example input {i} is a {type(x).__name__}, expected a tensor")
    module.eval()  # before tracing, so code that branches on self.training traces as eval
    gm = torch.fx.GraphModule(module, _LeafTracer(leaf_modules).trace(module))
    nodes = list(gm.graph.nodes)

    placeholders = [n for n in nodes if n.op == "placeholder"]
    if len(placeholders) != len(example_inputs):
        raise ValueError(f"{model_id}: the traced module takes {len(placeholders)} inputs "
                         f"({', '.join(n.name for n in placeholders)}), got {len(example_inputs)} example inputs")

    tensors = {}
    graph, modules = [], {}
    for n in nodes:
        graph.append({"name": n.name, "op": n.op, "target": _target(n),
                      "args": _arg(n.args), "kwargs": {k: _arg(v) for k, v in n.kwargs.items()}})
        if n.op == "call_module" and n.target not in modules:
            modules[n.target] = _module_entry(n.target, gm.get_submodule(n.target), tensors)
        elif n.op == "get_attr":
            value = gm
            for part in n.target.split("."):
                value = getattr(value, part)
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"{model_id}: get_attr node {n.name} fetches a {type(value).__name__}, not a tensor")
            tensors[n.target] = _to_numpy(value)

    def put(name, array):
        # Inputs, outputs and taps must not shadow a weight of the same qualified name.
        if name in tensors:
            raise ValueError(f'{model_id}: tensor name "{name}" is used twice')
        tensors[name] = array

    input_names = [f"input.{i}" for i in range(len(example_inputs))]
    for name, x in zip(input_names, example_inputs):
        put(name, _to_numpy(x))

    # Each run gets its own clones: an in-place op on an input must not leak into the other.
    with torch.no_grad():
        native = module(*(x.clone() for x in example_inputs))
        tapper = _Tapper(gm) if taps else None
        if tapper is not None:
            tapper.run(*(x.clone() for x in example_inputs))

    outputs = _flatten(native)
    for i, y in enumerate(outputs):
        if not isinstance(y, torch.Tensor):
            raise ValueError(f"{model_id}: output {i} is a {type(y).__name__}; expected tensors "
                             "or (nested) tuples/lists of tensors")
    output_node = next(n for n in nodes if n.op == "output")
    traced_outputs = _flatten(output_node.args[0])
    if len(traced_outputs) != len(outputs):
        raise ValueError(f"{model_id}: the fx output node lists {len(traced_outputs)} values, "
                         f"the module returned {len(outputs)} tensors")
    output_names = [f"output.{i}" for i in range(len(outputs))]
    for name, y in zip(output_names, outputs):
        put(name, _to_numpy(y))

    tap_map = {}
    if tapper is not None:
        for node_name, array in tapper.outputs.items():
            tap_map[node_name] = f"tap.{node_name}"
            put(tap_map[node_name], array)

    model = {"format": "torch.fx", "graph": graph, "modules": modules}
    doc = pbstream.stream_doc(PLANET, PLANET_VERSION, ENGINE, model_id, model,
                              input_names, output_names, tap_map if taps else None)
    if composed:
        doc["composed"] = list(composed)
    return Stream(doc, tensors)
