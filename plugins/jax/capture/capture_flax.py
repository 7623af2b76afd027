#!/usr/bin/env python3
"""Captures real JAX/Flax (linen) models as planetbridge streams, in the jax planet's dialect
(docs/planets/jax.md): the same "flax.linen" module list the jax-js capture writes, with the
planet's own names, layouts and attributes.

Library (any Python with jax and flax):

    import sys; sys.path.insert(0, "plugins/jax/capture")
    import capture_flax
    model = nn.Sequential([nn.Dense(16), nn.relu, nn.Dense(4)])
    variables = model.init(jax.random.key(0), x)
    capture_flax.capture(model, variables, (x,), "my_model").write("my_model.pbstream")

Understood: ``nn.Sequential`` (nested too) of ``nn.Dense`` and activation functions
(``nn.relu``, ``functools.partial(nn.gelu, approximate=False)``, ...). For any other module, pass ``modules=`` (the dialect's module list, written by hand to describe
what the module computes); its native outputs still come from ``model.apply``.

CLI:
  capture_flax.py --serve          the host's capture protocol, with real Flax fixtures
                                   (the host uses it when PLANETBRIDGE_JAX_CAPTURE=flax)
  capture_flax.py --suite FILE [--fixture GLOB] (--out DIR | --stdout)

Tensor names: variables flattened with "/" ("params/layers_0/kernel", Flax layouts: Dense
kernel [in, out]); inputs "input.N"; outputs "output.N"; taps "tap.<module name>".
"""

import argparse
import fnmatch
import functools
import os
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
_SDK = os.path.normpath(os.path.join(HERE, "..", "..", "sdk", "python"))
if _SDK not in sys.path:
    sys.path.append(_SDK)
import pbstream  # noqa: E402

PLANET, ENGINE = "jax", "jax"

# Function name in the dialect -> (flax.linen attribute, keyword attributes with JAX's defaults).
# The stream always carries every attribute explicitly.
FUNCTIONS = {
    "nn.relu": ("relu", {}),
    "nn.relu6": ("relu6", {}),
    "nn.tanh": ("tanh", {}),
    "nn.sigmoid": ("sigmoid", {}),
    "nn.silu": ("silu", {}),
    "nn.swish": ("swish", {}),
    "nn.selu": ("selu", {}),
    "nn.softplus": ("softplus", {}),
    "nn.hard_swish": ("hard_swish", {}),
    "nn.hard_silu": ("hard_silu", {}),
    "nn.hard_sigmoid": ("hard_sigmoid", {}),
    "nn.gelu": ("gelu", {"approximate": True}),
    "nn.leaky_relu": ("leaky_relu", {"negative_slope": 0.01}),
    "nn.elu": ("elu", {"alpha": 1.0}),
    "nn.softmax": ("softmax", {"axis": -1}),
    "nn.log_softmax": ("log_softmax", {"axis": -1}),
}

# Suite activation names (shared by every planet) -> (dialect function, attributes).
ACTIVATIONS = {
    "relu": ("nn.relu", {}), "tanh": ("nn.tanh", {}), "sigmoid": ("nn.sigmoid", {}),
    "gelu": ("nn.gelu", {"approximate": False}), "gelu_tanh": ("nn.gelu", {"approximate": True}),
    "silu": ("nn.silu", {}), "elu": ("nn.elu", {}), "selu": ("nn.selu", {}),
    "leaky_relu": ("nn.leaky_relu", {}), "relu6": ("nn.relu6", {}), "hardswish": ("nn.hard_swish", {}),
    "softplus": ("nn.softplus", {}), "softmax": ("nn.softmax", {}), "log_softmax": ("nn.log_softmax", {}),
}
NOT_IN_FLAX = {"mish"}  # jax.nn.mish exists, flax.linen does not re-export it

_DENSE_KEYS = {"input", "units", "activation", "bias"}
TRAIN_ROWS, TRAIN_STEPS, LEARNING_RATE = 256, 20, 1e-2
ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8


def load_engine():
    """Imports jax and flax (ImportError when missing); returns jax's version."""
    import jax
    import flax  # noqa: F401
    return jax.__version__


class Stream:
    """A captured model: the document (without tensor offsets) and its tensors by name."""

    def __init__(self, doc, tensors):
        self.doc = doc
        self.tensors = tensors

    def to_bytes(self):
        return pbstream.encode_frame(self.doc, self.tensors)

    def write(self, path):
        with open(path, "wb") as f:
            f.write(self.to_bytes())


def _np(a):
    import numpy as np
    a = np.asarray(a)
    return a.astype(np.float32) if a.dtype.kind == "f" and a.dtype != np.float64 else a


def _function(layer, where):
    """(dialect name, attributes) of an activation callable, e.g. partial(nn.gelu, approximate=False)."""
    import flax.linen as nn
    fn, keywords = layer, {}
    if isinstance(layer, functools.partial):
        if layer.args:
            raise ValueError(f"{where}: functools.partial with positional arguments is not understood: {layer!r}")
        fn, keywords = layer.func, dict(layer.keywords)
    for name, (attr, defaults) in FUNCTIONS.items():  # first match: nn.silu before its alias nn.swish
        if getattr(nn, attr, None) is fn:
            unknown = sorted(set(keywords) - set(defaults))
            if unknown:
                raise ValueError(f"{where}: {name} has no attribute {unknown[0]!r} here (known: {', '.join(defaults) or 'none'})")
            attrs = {**defaults, **keywords}
            for k, v in attrs.items():
                if not isinstance(v, (bool, int, float)):
                    raise ValueError(f"{where}: {name} attribute {k}={v!r} is not a number or boolean")
            return name, attrs
    raise ValueError(f"{where}: unsupported callable {layer!r} (known: {', '.join(FUNCTIONS)})")


def _dense_entry(module, name, where):
    import jax
    import jax.numpy as jnp

    def dtype_name(d):
        return None if d is None else str(jnp.dtype(d))

    if getattr(module, "dot_general", None) not in (None, jax.lax.dot_general) or getattr(module, "dot_general_cls", None):
        raise ValueError(f"{where}: Dense with a custom dot_general is not understood")
    precision = module.precision
    return {"type": "Dense", "name": name, "features": int(module.features), "use_bias": bool(module.use_bias),
            "dtype": dtype_name(module.dtype), "param_dtype": dtype_name(module.param_dtype),
            "precision": None if precision is None else str(precision)}


class _Describer:
    """Walks a Sequential's layers against the recorded module calls (pre-order, call order)."""

    def __init__(self, calls):
        self.calls = list(calls)
        self.pos = 0
        self.modules, self.taps, self.counts = [], {}, {}

    def call(self, module, where):
        if self.pos >= len(self.calls):
            raise ValueError(f"{where}: {type(module).__name__} was never called")
        path, bound, out = self.calls[self.pos]
        self.pos += 1
        if type(bound) is not type(module):
            raise ValueError(f"{where}: expected a call of {type(module).__name__}, recorded {type(bound).__name__}")
        return "/".join(path), bound, out

    def layer(self, layer, value, where, prefix):
        import flax.linen as nn
        if isinstance(layer, nn.Sequential):
            _, bound, out = self.call(layer, where)
            for i, sub in enumerate(layer.layers):
                value = self.layer(sub, value, f"{where}.layers[{i}]", self._prefix(bound))
            return out
        if isinstance(layer, nn.Dense):
            name, bound, out = self.call(layer, where)
            self.modules.append(_dense_entry(bound, name, where))
            self.taps[name] = out
            return out
        if isinstance(layer, nn.Module):
            raise ValueError(f"{where}: module type {type(layer).__name__} is not understood; pass modules=[...]")
        fn, attrs = _function(layer, where)
        stem = fn.split(".")[-1]
        k = self.counts.get(prefix + stem, 0)
        self.counts[prefix + stem] = k + 1
        name = f"{prefix}{stem}_{k}"
        out = layer(value)  # JAX itself, eagerly: the same call Sequential made
        self.modules.append({"type": "fn", "name": name, "fn": fn, **attrs})
        self.taps[name] = out
        return out

    @staticmethod
    def _prefix(bound):
        path = "/".join(bound.scope.path)
        return path + "/" if path else ""


def _record_calls(model, variables, inputs):
    """Runs model.apply eagerly, recording every module __call__ as (path, bound module, output)."""
    import flax.linen as nn
    calls = []

    def interceptor(next_fun, args, kwargs, context):
        if context.method_name != "__call__":
            return next_fun(*args, **kwargs)
        entry = [tuple(context.module.scope.path), context.module, None]
        calls.append(entry)
        entry[2] = next_fun(*args, **kwargs)
        return entry[2]

    with nn.intercept_methods(interceptor):
        model.apply(variables, *inputs)
    return [tuple(c) for c in calls]


def _flatten_variables(variables):
    from flax import traverse_util
    from flax.core import unfreeze
    return traverse_util.flatten_dict(unfreeze(variables), sep="/")


def capture(model, variables, inputs, model_id, taps=True, modules=None, input_names=None, output_names=None):
    """Runs `model` (jit-compiled) on `inputs` and returns the Stream of docs/planets/jax.md.

    modules / input_names / output_names describe a model that is not a Sequential or Dense,
    in the dialect (docs/planets/jax.md); they default to ["x"] and the last module.
    """
    import flax
    import flax.linen as nn
    import jax

    if not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    inputs = tuple(inputs)
    calls = _record_calls(model, variables, inputs)
    if modules is None:
        # A root module has no name (its params sit at params/kernel): wrap a lone Dense in a Sequential.
        if not isinstance(model, nn.Sequential):
            raise ValueError(f"{model_id}: {type(model).__name__} is not an nn.Sequential; describe it with modules=[...]")
        if len(inputs) != 1:
            raise ValueError(f"{model_id}: a Sequential takes one input, got {len(inputs)}")
        d = _Describer(calls)
        d.layer(model, inputs[0], "model", "")
        modules, tap_values = d.modules, d.taps
    else:
        recorded = {"/".join(path): out for path, _, out in calls if path}
        tap_values = {m["name"]: recorded[m["name"]] for m in modules if m.get("name") in recorded}
    input_names = list(input_names or ["x"])
    output_names = list(output_names or [modules[-1]["name"]])

    tensors = {}

    def put(name, array):
        if name in tensors:
            raise ValueError(f'{model_id}: tensor name "{name}" is used twice')
        tensors[name] = _np(array)

    for name, a in _flatten_variables(variables).items():
        put(name, a)
    stream_inputs = [f"input.{i}" for i in range(len(inputs))]
    for name, x in zip(stream_inputs, inputs):
        put(name, x)
    native = jax.jit(model.apply)(variables, *inputs)  # the forward pass, jit-compiled
    outputs = list(native) if isinstance(native, (tuple, list)) else [native]
    stream_outputs = [f"output.{i}" for i in range(len(outputs))]
    for name, y in zip(stream_outputs, outputs):
        put(name, y)
    tap_map = {}
    if taps:
        for name, value in tap_values.items():
            tap_map[name] = f"tap.{name}"
            put(tap_map[name], value)

    model_doc = {"format": "flax.linen", "flax_version": flax.__version__, "modules": modules,
                 "inputs": input_names, "outputs": output_names}
    doc = pbstream.stream_doc(PLANET, jax.__version__, ENGINE, model_id, model_doc, stream_inputs, stream_outputs,
                              tap_map or None)
    return Stream(doc, tensors)


# ------------------------------------------------------------------ suite fixtures

def _seed(fixture):
    seed = fixture.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    # Mixing in the id gives every fixture its own weights; 31 bits fit any PRNGKey seed.
    return zlib.crc32(f"{seed}:{fixture['id']}".encode()) >> 1


def dense_model(spec):
    """The nn.Sequential for a "dense" spec; errors name the spec field."""
    import flax.linen as nn
    if not isinstance(spec, dict):
        raise ValueError(f"spec: expected a mapping, got {spec!r}")
    unknown = sorted(set(spec) - _DENSE_KEYS)
    if unknown:
        raise ValueError(f"spec.{unknown[0]}: unknown field for layer 'dense' (known: {', '.join(sorted(_DENSE_KEYS))})")
    width = spec.get("input")
    if not isinstance(width, int) or isinstance(width, bool) or width <= 0:
        raise ValueError(f"spec.input: expected a positive integer, got {width!r}")
    units = spec.get("units")
    if (not isinstance(units, list) or not units
            or any(not isinstance(u, int) or isinstance(u, bool) or u <= 0 for u in units)):
        raise ValueError(f"spec.units: expected a non-empty list of positive integers, got {units!r}")
    activation = spec.get("activation", "relu")
    if activation in NOT_IN_FLAX:
        raise pbstream.NotApplicable(f'flax.linen has no "{activation}" activation')
    if activation not in ACTIVATIONS:
        raise ValueError(f"spec.activation: unknown activation {activation!r} (known: {', '.join(ACTIVATIONS)})")
    bias = spec.get("bias", True)
    if not isinstance(bias, bool):
        raise ValueError(f"spec.bias: expected true or false, got {bias!r}")
    fn_name, attrs = ACTIVATIONS[activation]
    act = getattr(nn, FUNCTIONS[fn_name][0])
    act = functools.partial(act, **attrs) if attrs else act
    layers = []
    for i, u in enumerate(units):
        if i:
            layers.append(act)
        layers.append(nn.Dense(u, use_bias=bias))
    return nn.Sequential(layers)


def _train(model, variables, key, inputs, outputs):
    """Full-batch Adam (written in JAX, the step jit-compiled) on target = tanh(X @ A) @ B."""
    import jax
    import jax.numpy as jnp
    tree_map = jax.tree_util.tree_map
    hidden = max(outputs, 8)
    kx, ka, kb = jax.random.split(key, 3)
    x = jax.random.normal(kx, (TRAIN_ROWS, inputs))
    a = jax.random.normal(ka, (inputs, hidden)) / inputs ** 0.5  # scaled so tanh is not saturated
    b = jax.random.normal(kb, (hidden, outputs)) / hidden ** 0.5
    y = jnp.tanh(x @ a) @ b

    def loss(params):
        return jnp.mean((model.apply({"params": params}, x) - y) ** 2)

    @jax.jit
    def step(params, m, s, t):
        g = jax.grad(loss)(params)
        m = tree_map(lambda mi, gi: ADAM_B1 * mi + (1 - ADAM_B1) * gi, m, g)
        s = tree_map(lambda si, gi: ADAM_B2 * si + (1 - ADAM_B2) * gi * gi, s, g)
        c1, c2 = 1 / (1 - ADAM_B1 ** t), 1 / (1 - ADAM_B2 ** t)
        params = tree_map(lambda p, mi, si: p - LEARNING_RATE * mi * c1 / (jnp.sqrt(si * c2) + ADAM_EPS), params, m, s)
        return params, m, s

    params = variables["params"]
    m = tree_map(jnp.zeros_like, params)
    s = tree_map(jnp.zeros_like, params)
    for t in range(1, TRAIN_STEPS + 1):
        params, m, s = step(params, m, s, jnp.float32(t))
    return {"params": params}


def build(fixture):
    """The Stream for one fixture {id, layer, samples, seed, spec}, from real Flax."""
    import jax
    import jax.numpy as jnp
    layer = fixture.get("layer")
    if layer != "dense":
        raise ValueError(f"layer {layer!r} is not supported by the jax capture yet")
    samples = fixture.get("samples")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples <= 0:
        raise ValueError(f"samples: expected a positive integer, got {samples!r}")
    model = dense_model(fixture.get("spec"))
    spec = fixture["spec"]
    k_init, k_train, k_x = jax.random.split(jax.random.PRNGKey(_seed(fixture)), 3)
    variables = model.init(k_init, jnp.zeros((1, spec["input"]), jnp.float32))  # lecun_normal, zero biases
    variables = _train(model, variables, k_train, spec["input"], spec["units"][-1])
    x = jax.random.normal(k_x, (samples, spec["input"]), jnp.float32)
    return capture(model, variables, (x,), fixture["id"], taps=True)


def _build_frame(fixture):
    s = build(fixture)
    return s.doc, s.tensors


def suite_fixtures(path, pattern):
    import yaml
    with open(path, encoding="utf-8") as f:
        suite = yaml.safe_load(f)
    defaults = suite.get("defaults") or {}
    return [{"id": fx["id"], "layer": fx.get("layer"), "samples": fx.get("samples", defaults.get("samples")),
             "seed": fx.get("seed", defaults.get("seed")), "spec": fx.get("spec")}
            for fx in suite.get("fixtures") or []
            if PLANET in (fx.get("planets") or []) and fnmatch.fnmatchcase(fx["id"], pattern)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--serve", action="store_true", help="speak the capture protocol on stdin/stdout")
    mode.add_argument("--suite", metavar="FILE", help="suite YAML to capture")
    p.add_argument("--fixture", metavar="GLOB", default="*")
    dest = p.add_mutually_exclusive_group()
    dest.add_argument("--out", metavar="DIR")
    dest.add_argument("--stdout", action="store_true")
    args = p.parse_args(argv)
    if args.serve:
        return pbstream.serve(PLANET, ENGINE, load_engine, _build_frame)
    if not (args.out or args.stdout):
        p.error("--suite needs --out DIR or --stdout")
    load_engine()
    failed = 0
    for fx in suite_fixtures(args.suite, args.fixture):
        try:
            frame = build(fx).to_bytes()
        except Exception as e:  # report and go on with the next fixture
            failed += 1
            print(f"{fx['id']}: ERROR {type(e).__name__}: {e}", file=sys.stderr)
            continue
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            with open(os.path.join(args.out, fx["id"] + ".pbstream"), "wb") as f:
                f.write(frame)
        else:
            sys.stdout.buffer.write(frame)
            sys.stdout.buffer.flush()
        print(f"{fx['id']}: {len(frame)} bytes", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
