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

Understood: ``nn.Sequential`` (nested too) of ``nn.Dense``, ``nn.Conv``, ``nn.BatchNorm``
(constructed with ``use_running_average=True``), ``nn.LayerNorm``, ``nn.RMSNorm``, ``nn.Embed``,
``nn.Dropout`` (``deterministic=True``), activation functions (``nn.relu``,
``functools.partial(nn.gelu, approximate=False)``, ...), pooling as
``functools.partial(nn.max_pool / nn.avg_pool, window_shape=..., strides=..., padding=...)`` and
global pooling as ``functools.partial(jnp.mean / jnp.max, axis=(1, 2))``. For anything else
(``@nn.compact`` modules, residual connections, reshapes), pass ``modules=`` (the dialect's
module list, written by hand to describe what the model computes); module names and taps then
come from the recorded calls, the native outputs still from ``model.apply``.

CLI (the shared one of every Python capture, pbstream.main):
  capture_flax.py --serve          the host's capture protocol, with real Flax fixtures
                                   (the host uses it when PLANETBRIDGE_JAX_CAPTURE=flax)
  capture_flax.py --suite FILE [--fixture GLOB] (--out DIR | --stdout | --post URL)
                                   capture a suite's jax fixtures from real Flax standalone;
                                   --post streams each to `planetbridge serve` at URL and
                                   prints its verdict

Tensor names: variables flattened with "/" ("params/layers_0/kernel", "batch_stats/layers_1/mean";
Flax layouts: Dense kernel [in, out], Conv kernel [k..., in/groups, out], channels-last
activations); inputs "input.N"; outputs "output.N"; taps "tap.<module name>".

Suite fixtures from real Flax: layers dense, cnn1/2/3, pool, batchnorm, layernorm, rmsnorm and
embedding (all Sequentials); residual and model need non-Sequential modules and are served by
the jax-js capture only.
"""

import functools
import os
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
_SDK = os.path.normpath(os.path.join(HERE, "..", "..", "..", "capture", "python"))
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


def _lacks(activation):
    return f'flax.linen has no "{activation}" activation' if activation in NOT_IN_FLAX else None


TRAIN_ROWS, TRAIN_STEPS, LEARNING_RATE = 256, 20, 1e-2
FIT_STEPS, BN_PASSES = 5, 45  # as the jax-js fixtures (fixtures.js)
ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8


def load_engine():
    """Imports jax and flax (ImportError when missing); returns jax's version."""
    import jax
    import flax  # noqa: F401
    return jax.__version__


# A captured model: the document and its tensors by name (to_bytes, write, post).
Stream = pbstream.Stream


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


def _dtypes(module):
    import jax.numpy as jnp

    def name(d):
        return None if d is None else str(jnp.dtype(d))
    out = {"dtype": name(getattr(module, "dtype", None)), "param_dtype": name(getattr(module, "param_dtype", None))}
    if hasattr(module, "precision"):
        out["precision"] = None if module.precision is None else str(module.precision)
    return out


def _ints(v, n, where, what):
    """Flax's int-or-sequence attributes (strides, dilations; None is ones) as a list of n ints."""
    if v is None:
        return [1] * n
    if isinstance(v, int):
        return [v] * n
    v = [int(e) for e in v]
    if len(v) != n:
        raise ValueError(f"{where}: {what} has {len(v)} entries, expected {n}")
    return v


def _padding(p):
    """Flax's padding as the dialect writes it: a string, an int, or [int or [low, high], ...]."""
    if isinstance(p, (str, int)):
        return p
    return [int(e) if isinstance(e, int) else [int(e[0]), int(e[1])] for e in p]


def _axes(v):
    return int(v) if isinstance(v, int) else [int(e) for e in v]


def _conv_entry(module, name, where):
    import jax
    ks = module.kernel_size
    if isinstance(ks, int):
        raise ValueError(f"{where}: Conv kernel_size must be a tuple (Flax rejects an int)")
    n = len(ks)
    if getattr(module, "mask", None) is not None:
        raise ValueError(f"{where}: Conv with a mask is not understood")
    if getattr(module, "conv_general_dilated", None) not in (None, jax.lax.conv_general_dilated) \
            or getattr(module, "conv_general_dilated_cls", None):
        raise ValueError(f"{where}: Conv with a custom conv_general_dilated is not understood")
    return {"type": "Conv", "name": name, "features": int(module.features), "kernel_size": [int(k) for k in ks],
            "strides": _ints(module.strides, n, where, "strides"), "padding": _padding(module.padding),
            "input_dilation": _ints(module.input_dilation, n, where, "input_dilation"),
            "kernel_dilation": _ints(module.kernel_dilation, n, where, "kernel_dilation"),
            "feature_group_count": int(module.feature_group_count), "use_bias": bool(module.use_bias), **_dtypes(module)}


def _batchnorm_entry(module, name, where):
    if module.use_running_average is not True:
        raise ValueError(f"{where}: BatchNorm needs use_running_average=True at construction (inference; a Sequential "
                         "passes no call arguments)")
    if module.axis_name is not None:
        raise ValueError(f"{where}: BatchNorm with axis_name (cross-device statistics) is not understood")
    return {"type": "BatchNorm", "name": name, "use_running_average": True, "axis": _axes(module.axis),
            "momentum": float(module.momentum), "epsilon": float(module.epsilon), "use_bias": bool(module.use_bias),
            "use_scale": bool(module.use_scale), **_dtypes(module)}


def _norm_entry(module, name, where):
    rms = type(module).__name__ == "RMSNorm"
    e = {"type": type(module).__name__, "name": name, "epsilon": float(module.epsilon), "use_scale": bool(module.use_scale),
         "reduction_axes": _axes(module.reduction_axes), "feature_axes": _axes(module.feature_axes), **_dtypes(module)}
    if not rms:
        e["use_bias"] = bool(module.use_bias)
    return e


def _embed_entry(module, name, where):
    return {"type": "Embed", "name": name, "num_embeddings": int(module.num_embeddings), "features": int(module.features),
            **_dtypes(module)}


def _dropout_entry(module, name, where):
    if module.deterministic is not True and module.rate != 0:
        raise ValueError(f"{where}: Dropout needs deterministic=True at construction (inference)")
    return {"type": "Dropout", "name": name, "rate": float(module.rate), "deterministic": True}


def _module_entries():
    """Flax module class -> the dialect entry of a bound instance (docs/planets/jax.md)."""
    import flax.linen as nn
    entries = {nn.Dense: lambda m, name, where: _dense_entry(m, name, where), nn.Conv: _conv_entry,
               nn.BatchNorm: _batchnorm_entry, nn.LayerNorm: _norm_entry, nn.Embed: _embed_entry,
               nn.Dropout: _dropout_entry}
    if hasattr(nn, "RMSNorm"):  # flax >= 0.8
        entries[nn.RMSNorm] = _norm_entry
    return entries


def _window_function(layer, where):
    """(type, entry) of partial(nn.max_pool / nn.avg_pool / jnp.mean / jnp.max, ...), else None."""
    import flax.linen as nn
    import jax.numpy as jnp
    if not isinstance(layer, functools.partial):
        return None
    fn, kw = layer.func, dict(layer.keywords)
    pools = {"nn.max_pool": (nn.max_pool, {"window_shape", "strides", "padding"}),
             "nn.avg_pool": (nn.avg_pool, {"window_shape", "strides", "padding", "count_include_pad"})}
    for name, (f, known) in pools.items():
        if fn is f:
            if layer.args or sorted(set(kw) - known) or "window_shape" not in kw:
                raise ValueError(f"{where}: write functools.partial({name}, window_shape=..., strides=..., padding=...) "
                                 f"with keywords only (known: {', '.join(sorted(known))})")
            n = len(kw["window_shape"])
            e = {"fn": name, "window_shape": [int(w) for w in kw["window_shape"]],
                 "strides": _ints(kw.get("strides"), n, where, "strides"), "padding": _padding(kw.get("padding", "VALID"))}
            if name == "nn.avg_pool":
                e["count_include_pad"] = bool(kw.get("count_include_pad", True))
            return "fn", e
    for name, f in (("mean", jnp.mean), ("max", jnp.max)):
        if fn is f:
            if layer.args or sorted(set(kw) - {"axis", "keepdims"}) or "axis" not in kw:
                raise ValueError(f"{where}: write functools.partial(jnp.{name}, axis=(...)) (global pooling over the spatial axes)")
            return name, {"axis": [int(a) for a in (kw["axis"] if not isinstance(kw["axis"], int) else [kw["axis"]])],
                          "keepdims": bool(kw.get("keepdims", False))}
    return None


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
        for cls, entry in _module_entries().items():
            if type(layer) is cls:
                name, bound, out = self.call(layer, where)
                self.modules.append(entry(bound, name, where))
                self.taps[name] = out
                return out
        if isinstance(layer, nn.Module):
            raise ValueError(f"{where}: module type {type(layer).__name__} is not understood; pass modules=[...]")
        window = _window_function(layer, where)
        if window:
            kind, attrs = window
            stem = attrs["fn"].split(".")[-1] if kind == "fn" else kind
            k = self.counts.get(prefix + stem, 0)
            self.counts[prefix + stem] = k + 1
            name = f"{prefix}{stem}_{k}"
            out = layer(value)
            self.modules.append({"type": kind, "name": name, **attrs})
            self.taps[name] = out
            return out
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
    _, units, activation, bias = pbstream.dense_spec(spec, ACTIVATIONS, lacks=_lacks)
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


# ------------------------------------------------------------------ layers of issue #4 (Sequentials)


def _activation(name):
    import flax.linen as nn
    if name in NOT_IN_FLAX:
        raise pbstream.NotApplicable(f'flax.linen has no "{name}" activation')
    if name not in ACTIVATIONS:
        raise ValueError(f"spec.activation: unknown activation {name!r} (known: linear, {', '.join(ACTIVATIONS)})")
    fn_name, attrs = ACTIVATIONS[name]
    act = getattr(nn, FUNCTIONS[fn_name][0])
    return functools.partial(act, **attrs) if attrs else act


# Each builder: (spec, samples) -> (make(train) -> nn.Sequential, input shape, vocab or None). The
# training twin differs only in BatchNorm's use_running_average (a Sequential passes no flags).
def _conv_layers(dims):
    def build_model(spec, n):
        import flax.linen as nn
        s = pbstream.Spec(spec, {"in_channels", "size", "filters", "kernel", "stride", "padding", "dilation", "activation", "bias"})
        k, stride, dilation = s.int("kernel"), s.int("stride", 1), s.int("dilation", 1)
        padding = s.choice("padding", ("valid", "same"), "valid").upper()
        activation = s.spec.get("activation", "linear")
        act = None if activation == "linear" else _activation(activation)
        bias = s.bool("bias", True)
        filters = s.ints("filters")

        def make(train):
            layers = []
            for f in filters:
                layers.append(nn.Conv(f, (k,) * dims, strides=stride, padding=padding, kernel_dilation=dilation, use_bias=bias))
                if act:
                    layers.append(act)
            return nn.Sequential(layers)
        return make, (n, *(s.int("size"),) * dims, s.int("in_channels")), None
    return build_model


def _pool_layers(spec, n):
    import flax.linen as nn
    import jax.numpy as jnp
    s = pbstream.Spec(spec, {"dims", "in_channels", "size", "filters", "pool", "kernel", "stride", "padding"})
    dims = s.choice("dims", (1, 2, 3))
    pool = s.choice("pool", ("max", "avg", "global_avg", "global_max"))
    if pool in ("max", "avg"):
        k = s.int("kernel")
        stride, pad = s.int("stride", k), s.int("padding", 0, minimum=0)
        fn = nn.max_pool if pool == "max" else nn.avg_pool
        last = functools.partial(fn, window_shape=(k,) * dims, strides=(stride,) * dims,
                                 padding=((pad, pad),) * dims if pad else "VALID")
    else:
        last = functools.partial(jnp.mean if pool == "global_avg" else jnp.max, axis=tuple(range(1, dims + 1)))
    filters = s.int("filters")
    return (lambda train: nn.Sequential([nn.Conv(filters, (3,) * dims, padding="SAME"), nn.relu, last]),
            (n, *(s.int("size"),) * dims, s.int("in_channels")), None)


def _batchnorm_layers(spec, n):
    import flax.linen as nn
    s = pbstream.Spec(spec, {"dims", "in_channels", "size", "filters"})
    dims = s.choice("dims", (0, 1, 2, 3))
    cin, f = s.int("in_channels"), s.int("filters")

    def make(train):
        first = nn.Dense(f) if dims == 0 else nn.Conv(f, (3,) * dims, padding="SAME")
        return nn.Sequential([first, nn.BatchNorm(use_running_average=not train), nn.relu])
    return make, (n, cin) if dims == 0 else (n, *(s.int("size"),) * dims, cin), None


def _norm_layers(norm):
    def build_model(spec, n):
        import flax.linen as nn
        s = pbstream.Spec(spec, {"features", "eps"})
        f, eps = s.int("features"), s.float("eps", 1e-6)
        cls = nn.LayerNorm if norm == "layernorm" else getattr(nn, "RMSNorm", None)
        if cls is None:
            raise pbstream.NotApplicable("this Flax has no nn.RMSNorm (flax >= 0.8)")
        return (lambda train: nn.Sequential([nn.Dense(f), cls(epsilon=eps)])), (n, f), None
    return build_model


def _embedding_layers(spec, n):
    import flax.linen as nn
    s = pbstream.Spec(spec, {"vocab", "dim", "seq"})
    vocab, dim = s.int("vocab"), s.int("dim")
    return (lambda train: nn.Sequential([nn.Embed(vocab, dim)])), (n, s.int("seq")), vocab


BUILDERS = {"cnn1": _conv_layers(1), "cnn2": _conv_layers(2), "cnn3": _conv_layers(3), "pool": _pool_layers,
            "batchnorm": _batchnorm_layers, "layernorm": _norm_layers("layernorm"), "rmsnorm": _norm_layers("rmsnorm"),
            "embedding": _embedding_layers}


def _draw(key, shape, vocab):
    import jax
    import jax.numpy as jnp
    if vocab:
        return jax.random.randint(key, shape, 0, vocab, dtype=jnp.int32)
    return jax.random.normal(key, shape, jnp.float32)


def _fit_random_target(make, variables, key, x):
    """FIT_STEPS Adam steps towards a random target in training mode (batch_stats move with
    Flax's momentum), then BN_PASSES training-mode passes: as the jax-js fixtures."""
    import jax
    import jax.numpy as jnp
    tree_map = jax.tree_util.tree_map
    model, train_model = make(False), make(True)
    y = jax.random.normal(key, model.apply(variables, x).shape, jnp.float32)
    has_stats = "batch_stats" in variables

    def forward(params, stats):
        if not has_stats:
            return train_model.apply({"params": params}, x), stats
        out, updates = train_model.apply({"params": params, "batch_stats": stats}, x, mutable=["batch_stats"])
        return out, updates["batch_stats"]

    def loss(params, stats):
        out, stats = forward(params, stats)
        return jnp.mean((out - y) ** 2), stats

    @jax.jit
    def step(params, stats, m, s, t):
        (_, stats), g = jax.value_and_grad(loss, has_aux=True)(params, stats)
        m = tree_map(lambda mi, gi: ADAM_B1 * mi + (1 - ADAM_B1) * gi, m, g)
        s = tree_map(lambda si, gi: ADAM_B2 * si + (1 - ADAM_B2) * gi * gi, s, g)
        c1, c2 = 1 / (1 - ADAM_B1 ** t), 1 / (1 - ADAM_B2 ** t)
        params = tree_map(lambda p, mi, si: p - LEARNING_RATE * mi * c1 / (jnp.sqrt(si * c2) + ADAM_EPS), params, m, s)
        return params, stats, m, s

    params, stats = variables["params"], variables.get("batch_stats", {})
    m = tree_map(jnp.zeros_like, params)
    s = tree_map(jnp.zeros_like, params)
    for t in range(1, FIT_STEPS + 1):
        params, stats, m, s = step(params, stats, m, s, jnp.float32(t))
    if has_stats:
        calibrate = jax.jit(lambda p, st: forward(p, st)[1])
        for _ in range(BN_PASSES):
            stats = calibrate(params, stats)
        return {"params": params, "batch_stats": stats}
    return {"params": params}


def build(fixture):
    """The Stream for one fixture {id, layer, samples, seed, spec}, from real Flax."""
    import jax
    import jax.numpy as jnp
    layer = fixture.get("layer")
    if layer != "dense" and layer not in BUILDERS:
        raise ValueError(f"layer {layer!r} is not supported by the real-Flax capture (known: dense, {', '.join(BUILDERS)}; "
                         "residual and model need the jax-js capture)")
    samples = fixture.get("samples")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples <= 0:
        raise ValueError(f"samples: expected a positive integer, got {samples!r}")
    if layer in BUILDERS:
        make, shape, vocab = BUILDERS[layer](fixture.get("spec"), samples)
        model = make(False)
        k_init, k_train, k_x = jax.random.split(jax.random.PRNGKey(_seed(fixture)), 3)
        k_fit, k_target = jax.random.split(k_train)
        x_fit = _draw(k_fit, shape, vocab)
        variables = _fit_random_target(make, model.init(k_init, x_fit), k_target, x_fit)
        x = _draw(k_x, shape, vocab)  # evaluate on inputs the training never saw
        return capture(model, variables, (x,), fixture["id"], taps=True)
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


def main(argv=None):
    return pbstream.main(PLANET, ENGINE, load_engine, _build_frame, argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
