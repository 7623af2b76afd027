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
global pooling as ``functools.partial(jnp.mean / jnp.max, axis=(1, 2))``, and ``nn.RNN`` /
``nn.Bidirectional`` over ``SimpleCell``, ``LSTMCell``, ``OptimizedLSTMCell``, ``GRUCell``
(without ``return_carry`` inside a Sequential). For anything else (``@nn.compact`` modules,
residual connections, reshapes), pass ``modules=`` (the dialect's module list describing what
the model computes; an entry giving only type, name and inputs takes its attributes from the
recorded Flax module at that path); module names and taps then come from the recorded calls,
the native outputs still from ``model.apply``.

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
embedding (all Sequentials), rnn, lstm and gru (compact modules, wired as the jax-js fixtures);
residual and model are served by the jax-js capture only.
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


def _einsum_entry(module, name, where):
    if module.einsum_str is None:
        raise ValueError(f"{where}: Einsum's einsum_str given at call time is not recorded; set it on the module")
    return {"type": "Einsum", "name": name, "shape": [int(v) for v in module.shape], "einsum_str": str(module.einsum_str),
            "use_bias": bool(module.use_bias), **_dtypes(module)}


def _attention_arguments(n_inputs, kwargs):
    """The call's arrays by Flax keyword: the positional ones, then inputs_kv / mask passed by keyword."""
    kwargs = kwargs or {}
    keyword = [k for k in ("inputs_k", "inputs_v", "inputs_kv", "mask") if kwargs.get(k) is not None]
    positional = ["inputs_q", "inputs_k", "inputs_v"][:max(n_inputs - len(keyword), 0)]
    return positional + keyword


def _attention_entry(module, name, where, kwargs=None, n_inputs=1):
    import flax.linen as nn
    if module.attention_fn is not nn.dot_product_attention:
        raise ValueError(f"{where}: {type(module).__name__} with a custom attention_fn is not understood")
    deterministic = (kwargs or {}).get("deterministic", module.deterministic)
    return {"type": type(module).__name__, "name": name, "num_heads": int(module.num_heads),
            "qkv_features": None if module.qkv_features is None else int(module.qkv_features),
            "out_features": None if module.out_features is None else int(module.out_features),
            "use_bias": bool(module.use_bias), "dropout_rate": float(module.dropout_rate),
            "deterministic": bool(deterministic) if deterministic is not None else module.dropout_rate == 0,
            "broadcast_dropout": bool(module.broadcast_dropout), "decode": bool(module.decode),
            "normalize_qk": bool(getattr(module, "normalize_qk", False)), "attention_fn": "dot_product_attention",
            "arguments": _attention_arguments(n_inputs, kwargs), **_dtypes(module)}


def _attention_classes():
    import flax.linen as nn
    return (nn.MultiHeadDotProductAttention, nn.SelfAttention)


def _module_entries():
    """Flax module class -> the dialect entry of a bound instance (docs/planets/jax.md)."""
    import flax.linen as nn
    entries = {nn.Dense: lambda m, name, where: _dense_entry(m, name, where), nn.Conv: _conv_entry,
               nn.BatchNorm: _batchnorm_entry, nn.LayerNorm: _norm_entry, nn.Embed: _embed_entry,
               nn.Dropout: _dropout_entry, nn.Einsum: _einsum_entry}
    for cls in _attention_classes():
        entries[cls] = _attention_entry
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


# ------------------------------------------------------------------ recurrent modules (flax/linen/recurrent.py)

CELL_TYPES = ("SimpleCell", "LSTMCell", "OptimizedLSTMCell", "GRUCell")
# nn.RNN's scan settings: only Flax's defaults (the cell's params broadcast over time, no other
# collection scanned or carried).
_SCAN_DEFAULTS = {"variable_axes": {}, "variable_broadcast": "params", "variable_carry": False, "split_rngs": {"params": False}}


def _fn_name(fn, where):
    """The dialect name of a cell's gate_fn / activation_fn: nn.sigmoid, nn.tanh, nn.relu, ..."""
    import flax.linen as nn
    for name, (attr, _) in FUNCTIONS.items():
        if getattr(nn, attr, None) is fn:
            return name
    raise ValueError(f"{where}: function {fn!r} is not understood (known: {', '.join(FUNCTIONS)})")


def _carry_init_name(init):
    """"zeros" for an initializer that gives zeros (Flax's default zeros_init()), else its name
    (written as is: the decoder refuses it, the carry would start elsewhere)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    try:
        if not np.any(np.asarray(init(jax.random.PRNGKey(0), (2, 3), jnp.float32))):
            return "zeros"
    except Exception:  # noqa: BLE001 - any initializer that cannot say is not zeros
        pass
    return str(getattr(init, "__name__", type(init).__name__))


def _cell_entry(cell, where):
    """The dialect description of a bound cell. Its "name" is its Flax path, where its params are:
    adopted by the RNN as "<rnn>/cell" when passed in from outside (or made in setup), the
    compact parent's "LSTMCell_0" when made inline in a compact method."""
    import flax.linen as nn
    kind = next((k for k in CELL_TYPES if getattr(nn, k, None) is not None and type(cell) is getattr(nn, k)), None)
    if kind is None:
        raise ValueError(f"{where}: cell {type(cell).__name__} is not understood (known: {', '.join(CELL_TYPES)})")
    e = {"type": kind, "name": "/".join(cell.scope.path), "features": int(cell.features)}
    if kind != "SimpleCell":
        e["gate_fn"] = _fn_name(cell.gate_fn, f"{where}.gate_fn")
    e["activation_fn"] = _fn_name(cell.activation_fn, f"{where}.activation_fn")
    if kind == "SimpleCell":
        e["residual"] = bool(cell.residual)
    e["carry_init"] = _carry_init_name(cell.carry_init)
    e.update(_dtypes(cell))
    return e


def _scan_unroll(module, where):
    for attr, want in _SCAN_DEFAULTS.items():
        got = getattr(module, attr, want)
        if (dict(got) if hasattr(got, "items") else got) != want:
            raise ValueError(f"{where}: nn.RNN with {attr}={got!r} is not understood (only Flax's default {want!r})")
    return int(module.unroll)


def _effective(kwargs, key, module):
    """A flag nn.RNN / Bidirectional takes at construction and may override at call time."""
    v = (kwargs or {}).get(key)
    return bool(getattr(module, key) if v is None else v)


def _check_call(kwargs, where, carry_inputs):
    kwargs = kwargs or {}
    if kwargs.get("seq_lengths") is not None:
        raise ValueError(f"{where}: seq_lengths (variable-length sequences) is not understood")
    if carry_inputs is not None and (kwargs.get("initial_carry") is not None) != carry_inputs:
        raise ValueError(f"{where}: the module's inputs and its call's initial_carry disagree")


def _rnn_entry(module, name, where, kwargs=None, carry_inputs=None):
    """nn.RNN(cell): its effective time_major, return_carry, reverse, keep_order (call overrides)."""
    _check_call(kwargs, where, carry_inputs)
    unroll = _scan_unroll(module, where)
    return {"type": "RNN", "name": name, "cell": _cell_entry(module.cell, f"{where}.cell"),
            "time_major": _effective(kwargs, "time_major", module), "return_carry": _effective(kwargs, "return_carry", module),
            "reverse": _effective(kwargs, "reverse", module), "keep_order": _effective(kwargs, "keep_order", module),
            "unroll": unroll}


def _merge_fn_name(fn, where):
    import jax.numpy as jnp
    from flax.linen import recurrent
    if fn is getattr(recurrent, "_concatenate", None):
        return "concatenate"
    if fn is jnp.add:
        return "add"
    raise ValueError(f"{where}: merge_fn {fn!r} is not understood (Flax's default concatenation, or jnp.add)")


def _bidirectional_entry(module, name, where, kwargs=None, carry_inputs=None):
    """nn.Bidirectional(forward_rnn, backward_rnn): it sets its RNNs' reverse / keep_order itself."""
    import flax.linen as nn
    _check_call(kwargs, where, carry_inputs)
    e = {"type": "Bidirectional", "name": name}
    for d in ("forward_rnn", "backward_rnn"):
        r = getattr(module, d)
        if type(r) is not nn.RNN:
            raise ValueError(f"{where}.{d}: {type(r).__name__} is not understood (an nn.RNN)")
        e[d] = {"type": "RNN", "cell": _cell_entry(r.cell, f"{where}.{d}.cell"), "unroll": _scan_unroll(r, f"{where}.{d}")}
    e.update({"merge_fn": _merge_fn_name(module.merge_fn, where), "time_major": _effective(kwargs, "time_major", module),
              "return_carry": _effective(kwargs, "return_carry", module)})
    return e


def _recurrent_entries():
    import flax.linen as nn
    return {nn.RNN: _rnn_entry, nn.Bidirectional: _bidirectional_entry}


def _carry_values(prefix, cell, carry):
    """A final carry's leaves as dialect values: LSTM cells carry (c, h), the others h."""
    if cell["type"] in ("LSTMCell", "OptimizedLSTMCell"):
        return {f"{prefix}/c": carry[0], f"{prefix}/h": carry[1]}
    return {prefix: carry}


def _recurrent_values(entry, out, bound, recorded):
    """The values a recurrent module defines (its output; a Bidirectional's directions; with
    return_carry its final carry's leaves), from its call's output `out` and, for a
    Bidirectional's directions, the recorded calls of its RNNs (wherever they live)."""
    name = entry["name"]
    carry, y = out if entry["return_carry"] else (None, out)
    values = {name: y}
    if entry["type"] == "RNN":
        if carry is not None:
            values.update(_carry_values(f"{name}:carry", entry["cell"], carry))
        return values
    for i, d in enumerate(("forward_rnn", "backward_rnn")):
        sub = recorded.get("/".join(getattr(bound, d).scope.path))
        if sub is not None:
            values[f"{name}/{d}"] = sub[1]  # Bidirectional calls its RNNs with return_carry=True
        if carry is not None:
            values.update(_carry_values(f"{name}:carry/{d}", entry[d]["cell"], carry[i]))
    return values


class _Describer:
    """Walks a Sequential's layers against the recorded module calls (pre-order, call order)."""

    def __init__(self, calls):
        self.calls = list(calls)
        self.recorded = {"/".join(path): out for path, _, out, _ in self.calls if path}
        self.pos = 0
        self.modules, self.taps, self.counts = [], {}, {}

    def call(self, module, where, inside=False):
        """The next recorded call, of `module`'s type; `inside`: skip the calls made within it."""
        if self.pos >= len(self.calls):
            raise ValueError(f"{where}: {type(module).__name__} was never called")
        path, bound, out, kwargs = self.calls[self.pos]
        self.pos += 1
        if type(bound) is not type(module):
            raise ValueError(f"{where}: expected a call of {type(module).__name__}, recorded {type(bound).__name__}")
        while inside and self.pos < len(self.calls) and self.calls[self.pos][0][:len(path)] == path \
                and len(self.calls[self.pos][0]) > len(path):
            self.pos += 1  # a recurrent module's RNNs and cells (traced inside its scan)
        return "/".join(path), bound, out, kwargs

    def layer(self, layer, value, where, prefix):
        import flax.linen as nn
        if isinstance(layer, nn.Sequential):
            _, bound, out, _ = self.call(layer, where)
            for i, sub in enumerate(layer.layers):
                value = self.layer(sub, value, f"{where}.layers[{i}]", self._prefix(bound))
            return out
        for cls, entry in _module_entries().items():
            if type(layer) is cls:
                # attention's DenseGeneral query/key/value/out calls are part of it
                name, bound, out, _ = self.call(layer, where, inside=cls in _attention_classes())
                self.modules.append(entry(bound, name, where))
                self.taps[name] = out
                return out
        for cls, entry in _recurrent_entries().items():
            if type(layer) is cls:
                name, bound, out, kwargs = self.call(layer, where, inside=True)
                e = entry(bound, name, where, kwargs, carry_inputs=False)
                if e["return_carry"]:
                    raise ValueError(f"{where}: {cls.__name__} with return_carry hands (carry, outputs) to the next layer of the "
                                     "Sequential; describe the model with modules=[...]")
                self.modules.append(e)
                self.taps.update(_recurrent_values(e, out, bound, self.recorded))
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
    """Runs model.apply eagerly, recording every module __call__ as (path, bound module, output,
    keyword arguments)."""
    import flax.linen as nn
    calls = []

    def interceptor(next_fun, args, kwargs, context):
        if context.method_name != "__call__":
            return next_fun(*args, **kwargs)
        entry = [tuple(context.module.scope.path), context.module, None, dict(kwargs)]
        calls.append(entry)
        entry[2] = next_fun(*args, **kwargs)
        return entry[2]

    with nn.intercept_methods(interceptor):
        model.apply(variables, *inputs)
    return [tuple(c) for c in calls]


def _complete(m, bound, kwargs, where):
    """A hand-written module entry as written, or, when it gives only type, name and inputs, the
    entry of the recorded Flax module at that path (its attributes from Flax itself)."""
    if set(m) - {"type", "name", "inputs", "arguments"} or bound is None:
        return m
    e = None
    for cls, entry in _module_entries().items():
        if type(bound) is cls:
            e = entry(bound, m["name"], where, kwargs, len(m.get("inputs", [])) or 1) if cls in _attention_classes() \
                else entry(bound, m["name"], where)
    for cls, entry in _recurrent_entries().items():
        if type(bound) is cls:
            e = entry(bound, m["name"], where, kwargs, carry_inputs=len(m.get("inputs", [])) > 1)
    if e is None:
        raise ValueError(f"{where}: {type(bound).__name__} at {m['name']!r} cannot be described from Flax; write its attributes")
    if e["type"] != m["type"]:
        raise ValueError(f"{where}: type {m['type']!r}, but Flax's module at {m['name']!r} is {type(bound).__name__}")
    if "inputs" in m:
        e["inputs"] = list(m["inputs"])
    if "arguments" in m:
        e["arguments"] = list(m["arguments"])
    return e


def _flatten_variables(variables):
    from flax import traverse_util
    from flax.core import unfreeze
    return traverse_util.flatten_dict(unfreeze(variables), sep="/")


def capture(model, variables, inputs, model_id, taps=True, modules=None, input_names=None, output_names=None):
    """Runs `model` (jit-compiled) on `inputs` and returns the Stream of docs/planets/jax.md.

    modules / input_names / output_names describe a model that is not a Sequential or Dense,
    in the dialect (docs/planets/jax.md); they default to ["x"] and the last module. An entry of
    `modules` that gives only "type", "name" (its Flax path) and "inputs" takes its attributes
    from the recorded Flax module of that path (nn.RNN / nn.Bidirectional with their cells, and
    the layers of the Sequential describer): {"type": "RNN", "name": "RNN_0", "inputs": ["x"]}.
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
        recorded = {"/".join(path): out for path, _, out, _ in calls if path}
        bound = {"/".join(path): b for path, b, _, _ in calls if path}
        call_kwargs = {"/".join(path): k for path, _, _, k in calls if path}
        modules = [_complete(m, bound.get(m.get("name")), call_kwargs.get(m.get("name")), f"modules[{i}]")
                   for i, m in enumerate(modules)]
        tap_values = {}
        for m in modules:
            name = m.get("name")
            if name not in recorded:
                continue
            if m.get("type") in ("RNN", "Bidirectional"):
                tap_values.update(_recurrent_values(m, recorded[name], bound[name], recorded))
            else:
                tap_values[name] = recorded[name]
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
    hidden = max(outputs, 8)
    kx, ka, kb = jax.random.split(key, 3)
    x = jax.random.normal(kx, (TRAIN_ROWS, inputs))
    a = jax.random.normal(ka, (inputs, hidden)) / inputs ** 0.5  # scaled so tanh is not saturated
    b = jax.random.normal(kb, (hidden, outputs)) / hidden ** 0.5
    y = jnp.tanh(x @ a) @ b

    def loss(params):
        return jnp.mean((model.apply({"params": params}, x) - y) ** 2)

    return {"params": _adam(loss, variables["params"], TRAIN_STEPS)}


def _adam(loss, params, steps):
    """`steps` full-batch Adam steps on loss(params), the step jit-compiled (as optax under jax.jit)."""
    import jax
    import jax.numpy as jnp
    tree_map = jax.tree_util.tree_map

    @jax.jit
    def step(params, m, s, t):
        g = jax.grad(loss)(params)
        m = tree_map(lambda mi, gi: ADAM_B1 * mi + (1 - ADAM_B1) * gi, m, g)
        s = tree_map(lambda si, gi: ADAM_B2 * si + (1 - ADAM_B2) * gi * gi, s, g)
        c1, c2 = 1 / (1 - ADAM_B1 ** t), 1 / (1 - ADAM_B2 ** t)
        params = tree_map(lambda p, mi, si: p - LEARNING_RATE * mi * c1 / (jnp.sqrt(si * c2) + ADAM_EPS), params, m, s)
        return params, m, s

    m = tree_map(jnp.zeros_like, params)
    s = tree_map(jnp.zeros_like, params)
    for t in range(1, steps + 1):
        params, m, s = step(params, m, s, jnp.float32(t))
    return params


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


def _einsum_layers(spec, n):
    """Layer einsum: nn.Einsum head split, relu, head merge (the jax-js fixture's modules)."""
    import flax.linen as nn
    s = pbstream.Spec(spec, {"seq", "d_model", "heads", "layout", "bias"})
    d, h, b = s.int("d_model"), s.int("heads"), s.bool("bias", True)
    if d % h:
        raise ValueError(f"spec.heads: {h} heads do not divide d_model {d}")
    k = d // h
    if s.choice("layout", ("blhk", "bhlk"), "blhk") == "blhk":
        layers = [nn.Einsum((d, h, k), "bld,dhk->blhk", use_bias=b), nn.relu, nn.Einsum((h, k, d), "blhk,hkd->bld", use_bias=b)]
    else:
        layers = [nn.Einsum((h, d, k), "bld,hdk->bhlk", use_bias=b), nn.relu, nn.Einsum((k, h, d), "bhlk,khd->bld", use_bias=b)]
    return (lambda train: nn.Sequential(layers)), (n, s.int("seq"), d), None


BUILDERS = {"cnn1": _conv_layers(1), "cnn2": _conv_layers(2), "cnn3": _conv_layers(3), "pool": _pool_layers,
            "batchnorm": _batchnorm_layers, "layernorm": _norm_layers("layernorm"), "rmsnorm": _norm_layers("rmsnorm"),
            "embedding": _embedding_layers, "einsum": _einsum_layers}


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


# ------------------------------------------------------------------ recurrent layers (issue #11)

RECURRENT_LAYERS = ("rnn", "lstm", "gru")
RECURRENT_KEYS = {"input", "hidden", "seq", "layers", "bidirectional", "merge", "activation", "reset_after", "initial_state",
                  "output", "head"}
ARCH_KEYS = {"text_classifier": {"arch", "vocab", "embed", "hidden", "seq", "classes"},
             "seq2seq": {"arch", "input", "hidden", "seq", "targets"}}
RNN_TRAIN_ROWS, RNN_TRAIN_STEPS, BIAS_SCALE = 128, 10, 0.2  # as the jax-js fixtures (fixtures.js)


def _recurrent_classes():
    """The recurrent fixtures' models, written as Flax users write them: compact methods making
    their cells inline (so each cell's params are the parent's LSTMCell_k, GRUCell_k, ...: the
    streams' cell "name"s say so), nn.RNN per layer or nn.Bidirectional."""
    import flax.linen as nn
    import jax.numpy as jnp

    class RecurrentStack(nn.Module):
        layer: str
        hidden: int
        layers: int = 1
        bidirectional: bool = False
        merge: str = "concat"
        activation: str = "tanh"
        initial_state: bool = False
        output: str = "sequence"
        head: int = 0

        @nn.compact
        def __call__(self, x, *carries):
            lstm = self.layer == "lstm"
            leaves = 2 if lstm else 1

            def cell():
                if self.layer == "rnn":
                    return nn.SimpleCell(self.hidden, activation_fn=nn.relu if self.activation == "relu" else nn.tanh)
                return nn.LSTMCell(self.hidden) if lstm else nn.GRUCell(self.hidden)

            def carry_of(arrays):  # Flax's carry: (c, h) for LSTMCell, h for the others
                return tuple(arrays) if lstm else arrays[0]

            directions = 2 if self.bidirectional else 1
            y, finals, used = x, [], 0
            for k in range(self.layers):
                rc = self.output == "states" or (self.output == "last" and k == self.layers - 1)
                init = None
                if self.initial_state:
                    per = [carry_of(carries[used + d * leaves:used + (d + 1) * leaves]) for d in range(directions)]
                    used += directions * leaves
                    init = tuple(per) if self.bidirectional else per[0]
                if self.bidirectional:
                    extra = {"merge_fn": jnp.add} if self.merge == "sum" else {}
                    out = nn.Bidirectional(nn.RNN(cell()), nn.RNN(cell()), return_carry=rc, **extra)(y, initial_carry=init)
                else:
                    out = nn.RNN(cell(), return_carry=rc)(y, initial_carry=init)
                if rc:
                    carry, y = out
                    finals.extend(carry if self.bidirectional else (carry,))
                else:
                    y = out
            if self.output == "sequence":
                return y
            hs = [c[1] if lstm else c for c in finals]
            if self.output == "last":
                return nn.Dense(self.head)(hs[-1]) if self.head else hs[-1]
            return (y, *hs, *([c[0] for c in finals] if lstm else []))

    class TextClassifier(nn.Module):
        vocab: int
        embed: int
        hidden: int
        classes: int

        @nn.compact
        def __call__(self, ids):
            x = nn.Embed(self.vocab, self.embed)(ids)
            (_, h), _ = nn.RNN(nn.OptimizedLSTMCell(self.hidden), return_carry=True)(x)
            return nn.Dense(self.classes)(h)

    class Seq2Seq(nn.Module):
        hidden: int
        targets: int

        @nn.compact
        def __call__(self, x):
            return nn.Dense(self.targets)(nn.RNN(nn.GRUCell(self.hidden))(x))

    return RecurrentStack, TextClassifier, Seq2Seq


def _carry_value(module, direction, leaf, lstm):
    """The dialect's name of a final carry leaf: RNN_0:carry/h, Bidirectional_0:carry/forward_rnn."""
    return f"{module}:carry" + (f"/{direction}" if direction else "") + (f"/{leaf}" if lstm else "")


def recurrent_fixture(layer, spec, n):
    """The rnn / lstm / gru fixture of docs/suites.md, wired as the jax-js capture wires it: {make
    (() -> the Flax model), inputs [(shape, vocab)], input_names, modules (entries of type, name
    and inputs: the capture takes their attributes from Flax), output_names, task (key -> (x, y,
    loss)) or None}. Checking the spec and the wiring needs no JAX."""
    arch = spec.get("arch") if isinstance(spec, dict) else None
    if arch is not None:
        if arch not in ARCH_KEYS:
            raise ValueError(f"spec.arch: expected one of {', '.join(ARCH_KEYS)}, got {arch!r}")
        s = pbstream.Spec(spec, ARCH_KEYS[arch])
        if arch == "text_classifier":
            if layer != "lstm":
                raise ValueError(f"spec.arch: text_classifier is an lstm fixture, not {layer}")
            vocab, classes, seq = s.int("vocab"), s.int("classes"), s.int("seq")
            embed, hidden = s.int("embed"), s.int("hidden")
            return {"make": lambda: _recurrent_classes()[1](vocab, embed, hidden, classes), "inputs": [((n, seq), vocab)],
                    "input_names": ["x"], "output_names": ["Dense_0"],
                    "modules": [{"type": "Embed", "name": "Embed_0"}, {"type": "RNN", "name": "RNN_0"},
                                {"type": "Dense", "name": "Dense_0", "inputs": ["RNN_0:carry/h"]}],
                    "task": lambda key: _text_task(key, vocab, seq, classes)}
        if layer != "gru":
            raise ValueError(f"spec.arch: seq2seq is a gru fixture, not {layer}")
        inp, seq, targets, hidden = s.int("input"), s.int("seq"), s.int("targets"), s.int("hidden")
        return {"make": lambda: _recurrent_classes()[2](hidden, targets), "inputs": [((n, seq, inp), None)], "input_names": ["x"],
                "output_names": ["Dense_0"], "modules": [{"type": "RNN", "name": "RNN_0"}, {"type": "Dense", "name": "Dense_0"}],
                "task": lambda key: _seq2seq_task(key, inp, seq, targets)}

    s = pbstream.Spec(spec, RECURRENT_KEYS)
    inp, hidden, seq, layers = s.int("input"), s.int("hidden"), s.int("seq"), s.int("layers", 1)
    bidirectional = s.bool("bidirectional", False)
    merge = s.choice("merge", ("concat", "sum"), "concat")
    if not bidirectional and "merge" in spec:
        raise ValueError("spec.merge: only for bidirectional layers")
    if layer != "rnn" and "activation" in spec:
        raise ValueError(f"spec.activation: only for layer rnn, not {layer}")
    if layer != "gru" and "reset_after" in spec:
        raise ValueError(f"spec.reset_after: only for layer gru, not {layer}")
    activation = s.choice("activation", ("tanh", "relu"), "tanh")
    if layer == "gru" and not s.bool("reset_after", True):
        raise pbstream.NotApplicable("Flax's GRUCell applies the reset gate after the recurrent product (reset_after) only")
    initial_state = s.bool("initial_state", False)
    output = s.choice("output", ("sequence", "last", "states"), "sequence")
    if "head" in spec and output != "last":
        raise ValueError("spec.head: only with output last")
    head = s.int("head") if "head" in spec else 0
    if output == "last" and bidirectional:
        raise ValueError("spec.output: last reads the last layer's final carry, which is its last step only for a unidirectional layer")

    lstm = layer == "lstm"
    leaves = ("c", "h") if lstm else ("h",)
    directions = ("forward_rnn", "backward_rnn") if bidirectional else ("",)
    inputs, input_names, modules, carries, previous = [((n, seq, inp), None)], ["x"], [], [], "x"
    for k in range(layers):
        name = f"Bidirectional_{k}" if bidirectional else f"RNN_{k}"
        carry_inputs = [f"{leaf}0_{k * len(directions) + d}" for d in range(len(directions)) for leaf in leaves] if initial_state else []
        input_names += carry_inputs
        inputs += [((n, hidden), None)] * len(carry_inputs)
        modules.append({"type": "Bidirectional" if bidirectional else "RNN", "name": name, "inputs": [previous, *carry_inputs]})
        carries += [(name, d) for d in directions]
        previous = name
    if output == "last":
        h = _carry_value(previous, "", "h", lstm)
        if head:
            modules.append({"type": "Dense", "name": "Dense_0", "inputs": [h]})
        outputs = ["Dense_0" if head else h]
    else:
        outputs = [previous]
        if output == "states":
            outputs += [_carry_value(m, d, leaf, lstm) for leaf in ("h", "c") if leaf in leaves for m, d in carries]
    def make():
        return _recurrent_classes()[0](layer, hidden, layers, bidirectional, merge, activation, initial_state, output, head)
    return {"make": make, "inputs": inputs, "input_names": input_names, "modules": modules, "output_names": outputs, "task": None}


def _text_task(key, vocab, seq, classes):
    """ids -> the vocabulary part (of `classes` equal parts) holding most of them (one-hot)."""
    import jax
    import jax.numpy as jnp
    ids = jax.random.randint(key, (RNN_TRAIN_ROWS, seq), 0, vocab, dtype=jnp.int32)
    counts = jax.nn.one_hot(jnp.floor(ids.astype(jnp.float32) * (classes / vocab)).astype(jnp.int32), classes).sum(1)
    return ids, jax.nn.one_hot(jnp.argmax(counts, 1), classes), "softmax_cross_entropy"


def _seq2seq_task(key, inp, seq, targets):
    """x -> tanh(cumsum(x) A / sqrt(t)) on every step."""
    import jax
    import jax.numpy as jnp
    kx, ka = jax.random.split(key)
    x = jax.random.normal(kx, (RNN_TRAIN_ROWS, seq, inp), jnp.float32)
    a = jax.random.normal(ka, (inp, targets), jnp.float32) / inp ** 0.5
    steps = jnp.arange(1, seq + 1, dtype=jnp.float32).reshape(1, seq, 1)
    return x, jnp.tanh((jnp.cumsum(x, 1) / jnp.sqrt(steps)) @ a), "mse"


def _fit_task(model, variables, x, y, loss_name):
    """RNN_TRAIN_STEPS Adam steps on softmax cross-entropy (one-hot y) or MSE."""
    import jax
    import jax.numpy as jnp

    def loss(params):
        out = model.apply({"params": params}, x)
        if loss_name == "softmax_cross_entropy":
            return -jnp.mean(jnp.sum(jax.nn.log_softmax(out, -1) * y, -1))
        return jnp.mean((out - y) ** 2)

    return {"params": _adam(loss, variables["params"], RNN_TRAIN_STEPS)}


def _perturb_biases(variables, key, leaf="bias"):
    """Every bias (or every leaf named `leaf`: "scale", the norms') + N(0, BIAS_SCALE²) (Flax initialises them to 0 / 1)."""
    import jax
    from flax import traverse_util
    from flax.core import unfreeze
    flat = traverse_util.flatten_dict(unfreeze(variables["params"]), sep="/")
    names = sorted(k for k in flat if k.split("/")[-1] == leaf)
    keys = jax.random.split(key, max(len(names), 1))
    for i, k in enumerate(names):
        flat[k] = flat[k] + BIAS_SCALE * jax.random.normal(keys[i], flat[k].shape, flat[k].dtype)
    return {"params": traverse_util.unflatten_dict(flat, sep="/")}


def _swiglu_fixture(spec, n):
    """Layer swiglu: LLaMA's MLP as Flax users write it (a compact module of three nn.Dense)."""
    import flax.linen as nn
    s = pbstream.Spec(spec, {"d_model", "hidden", "seq", "bias"})
    d, hidden, bias = s.int("d_model"), s.int("hidden"), s.bool("bias", False)

    class SwiGLU(nn.Module):
        @nn.compact
        def __call__(self, x):
            gate = nn.Dense(hidden, use_bias=bias, name="gate_proj")(x)
            up = nn.Dense(hidden, use_bias=bias, name="up_proj")(x)
            return nn.Dense(d, use_bias=bias, name="down_proj")(nn.silu(gate) * up)

    class Model(nn.Module):
        @nn.compact
        def __call__(self, x):
            return SwiGLU()(x)

    p = "SwiGLU_0/"
    modules = [{"type": "Dense", "name": p + "gate_proj", "inputs": ["x"]}, {"type": "fn", "name": p + "silu_0", "fn": "nn.silu"},
               {"type": "Dense", "name": p + "up_proj", "inputs": ["x"]},
               {"type": "multiply", "name": p + "multiply_0", "inputs": [p + "silu_0", p + "up_proj"]},
               {"type": "Dense", "name": p + "down_proj"}]
    return {"make": Model, "inputs": [((n, s.int("seq"), d), None)], "modules": modules, "input_names": ["x"],
            "output_names": [p + "down_proj"]}


def _mha_fixture(spec, n):
    """Layer mha: nn.MultiHeadDotProductAttention / nn.SelfAttention as the jax-js fixture wires it."""
    import flax.linen as nn
    import jax.numpy as jnp
    s = pbstream.Spec(spec, {"d_model", "heads", "seq", "kv_seq", "kv_features", "qkv_features", "out_features", "bias", "mask",
                             "vocab", "self_attention"})
    d, heads, seq = s.int("d_model"), s.int("heads"), s.int("seq")
    mask = s.choice("mask", ("none", "causal", "padding"), "none")
    cross, self_attention = spec.get("kv_seq") is not None, s.bool("self_attention", False)
    if cross and (self_attention or mask != "none"):
        raise ValueError("spec.kv_seq: cross-attention takes no self_attention and no mask here")
    if spec.get("vocab") is not None and mask != "causal":
        raise ValueError("spec.vocab: only with mask causal (the ids the causal mask is made of)")
    kw = {"num_heads": heads, "use_bias": s.bool("bias", True), "deterministic": True,
          "qkv_features": s.int("qkv_features") if spec.get("qkv_features") is not None else None,
          "out_features": s.int("out_features") if spec.get("out_features") is not None else None}
    cls = nn.SelfAttention if self_attention else nn.MultiHeadDotProductAttention
    name = f"{cls.__name__}_0"
    vocab = s.int("vocab", 50) if mask == "causal" else None
    kv_shape = (n, s.int("kv_seq"), s.int("kv_features", d)) if cross else None

    class Model(nn.Module):
        @nn.compact
        def __call__(self, x, other=None):
            if cross:
                return cls(**kw)(x, inputs_kv=other)
            if mask == "causal":
                return cls(**kw)(nn.Embed(vocab, d)(x), mask=nn.make_causal_mask(x))
            if mask == "padding":
                return cls(**kw)(x, mask=nn.make_attention_mask(other, other))
            return cls(**kw)(x)

    attn = {"type": cls.__name__, "name": name}
    if cross:
        return {"make": Model, "inputs": [((n, seq, d), None), (kv_shape, None)], "input_names": ["x", "kv"], "output_names": [name],
                "modules": [{**attn, "inputs": ["x", "kv"], "arguments": ["inputs_q", "inputs_kv"]}]}
    if mask == "causal":
        return {"make": Model, "inputs": [((n, seq), vocab)], "input_names": ["ids"], "output_names": [name],
                "modules": [{"type": "Embed", "name": "Embed_0", "inputs": ["ids"]},
                            {"type": "make_causal_mask", "name": "make_causal_mask_0", "inputs": ["ids"]},
                            {**attn, "inputs": ["Embed_0", "make_causal_mask_0"], "arguments": ["inputs_q", "mask"]}]}
    if mask == "padding":
        return {"make": Model, "inputs": [((n, seq, d), None), ((n, seq), "valid")], "input_names": ["x", "valid"], "output_names": [name],
                "modules": [{"type": "make_attention_mask", "name": "make_attention_mask_0", "inputs": ["valid", "valid"]},
                            {**attn, "inputs": ["x", "make_attention_mask_0"], "arguments": ["inputs_q", "mask"]}]}
    return {"make": Model, "inputs": [((n, seq, d), None)], "input_names": ["x"], "output_names": [name],
            "modules": [{**attn, "inputs": ["x"], "arguments": ["inputs_q"]}]}


TRANSFORMER_KEYS = {"d_model", "heads", "ff", "seq", "norm_first", "activation", "layers", "final_norm", "mask", "vocab",
                    "self_attention", "kind"}


def transformer_fixture(spec, n):
    """Layer transformer: blocks as Flax tutorials write them (wmt / lm1b), wired as the jax-js
    fixture (fixtures.transformerModel): EncoderBlock_k (DecoderBlock_k with mask causal) of an
    attention, LayerNorm_0 / LayerNorm_1, MlpBlock_0 (Dense_0, relu / gelu, Dense_1) and the
    residual adds, post-norm or pre-norm; mask padding: make_attention_mask(valid, valid); mask
    causal: ids -> Embed -> blocks with make_causal_mask(ids). The module list needs no JAX."""
    s = pbstream.Spec(spec, TRANSFORMER_KEYS)
    d, heads, ff, seq, layers = s.int("d_model"), s.int("heads"), s.int("ff"), s.int("seq"), s.int("layers", 1)
    if d % heads:
        raise ValueError(f"spec.heads: {heads} heads do not divide d_model {d}")
    s.choice("kind", ("encoder",), "encoder")  # PyTorch's kind decoder attends to a memory; decoder-only is mask: causal
    norm_first, final_norm, self_attention = s.bool("norm_first", False), s.bool("final_norm", False), s.bool("self_attention", False)
    activation = s.choice("activation", ("relu", "gelu"), "relu")
    mask = s.choice("mask", ("none", "causal", "padding"), "none")
    if spec.get("vocab") is not None and mask != "causal":
        raise ValueError("spec.vocab: only with mask causal (the ids the causal mask is made of)")
    vocab = s.int("vocab", 50) if mask == "causal" else None
    block = "DecoderBlock" if mask == "causal" else "EncoderBlock"
    attn_type = "SelfAttention" if self_attention else "MultiHeadDotProductAttention"
    fn = {"type": "fn", "fn": "nn.relu"} if activation == "relu" else {"type": "fn", "fn": "nn.gelu", "approximate": False}

    modules, x, mask_value = [], "x", None
    inputs, input_names = [((n, seq, d), None)], ["x"]
    if mask == "causal":
        modules += [{"type": "Embed", "name": "Embed_0", "inputs": ["ids"]},
                    {"type": "make_causal_mask", "name": "make_causal_mask_0", "inputs": ["ids"]}]
        x, mask_value, inputs, input_names = "Embed_0", "make_causal_mask_0", [((n, seq), vocab)], ["ids"]
    elif mask == "padding":
        modules.append({"type": "make_attention_mask", "name": "make_attention_mask_0", "inputs": ["valid", "valid"]})
        mask_value, input_names = "make_attention_mask_0", ["x", "valid"]
        inputs.append(((n, seq), "valid"))
    for k in range(layers):
        p = f"{block}_{k}/"
        attn_name = p + attn_type + "_0"

        def attention(q):
            return {"type": attn_type, "name": attn_name, "inputs": [q, mask_value] if mask_value else [q],
                    "arguments": ["inputs_q", "mask"] if mask_value else ["inputs_q"]}

        def mlp(h):
            return [{"type": "Dense", "name": p + "MlpBlock_0/Dense_0", "inputs": [h]},
                    {**fn, "name": p + f"MlpBlock_0/{activation}_0"}, {"type": "Dense", "name": p + "MlpBlock_0/Dense_1"}]
        if norm_first:
            modules += [{"type": "LayerNorm", "name": p + "LayerNorm_0", "inputs": [x]}, attention(p + "LayerNorm_0"),
                        {"type": "add", "name": p + "add_0", "inputs": [x, attn_name]},
                        {"type": "LayerNorm", "name": p + "LayerNorm_1", "inputs": [p + "add_0"]}, *mlp(p + "LayerNorm_1"),
                        {"type": "add", "name": p + "add_1", "inputs": [p + "add_0", p + "MlpBlock_0/Dense_1"]}]
            x = p + "add_1"
        else:
            modules += [attention(x), {"type": "add", "name": p + "add_0", "inputs": [x, attn_name]},
                        {"type": "LayerNorm", "name": p + "LayerNorm_0", "inputs": [p + "add_0"]}, *mlp(p + "LayerNorm_0"),
                        {"type": "add", "name": p + "add_1", "inputs": [p + "LayerNorm_0", p + "MlpBlock_0/Dense_1"]},
                        {"type": "LayerNorm", "name": p + "LayerNorm_1", "inputs": [p + "add_1"]}]
            x = p + "LayerNorm_1"
    final = ("decoder_norm" if mask == "causal" else "encoder_norm") if final_norm else None
    if final:
        modules.append({"type": "LayerNorm", "name": final, "inputs": [x]})
        x = final

    def make():
        import flax.linen as nn
        act = nn.relu if activation == "relu" else functools.partial(nn.gelu, approximate=False)
        cls = nn.SelfAttention if self_attention else nn.MultiHeadDotProductAttention

        class MlpBlock(nn.Module):
            @nn.compact
            def __call__(self, h):
                return nn.Dense(d)(act(nn.Dense(ff)(h)))

        class Block(nn.Module):
            @nn.compact
            def __call__(self, h, attn_mask=None):
                def attention(q):
                    kw = {"mask": attn_mask} if attn_mask is not None else {}
                    return cls(num_heads=heads, deterministic=True)(q, **kw)
                if norm_first:
                    a = h + attention(nn.LayerNorm()(h))
                    return a + MlpBlock()(nn.LayerNorm()(a))
                a = nn.LayerNorm()(h + attention(h))
                return nn.LayerNorm()(a + MlpBlock()(a))

        class Model(nn.Module):
            @nn.compact
            def __call__(self, h, valid=None):
                attn_mask = None
                if mask == "causal":
                    attn_mask, h = nn.make_causal_mask(h), nn.Embed(vocab, d)(h)
                elif mask == "padding":
                    attn_mask = nn.make_attention_mask(valid, valid)
                for i in range(layers):
                    h = Block(name=f"{block}_{i}")(h, attn_mask)
                return nn.LayerNorm(name=final)(h) if final else h

        return Model()

    return {"make": make, "inputs": inputs, "input_names": input_names, "output_names": [x], "modules": modules, "scales": True}


DESCRIBED = {"swiglu": _swiglu_fixture, "mha": _mha_fixture, "transformer": transformer_fixture}


def _draw_input(key, shape, vocab):
    """_draw, and the padding fixture's valid mask: row i valid for its first T - i mod ceil(T/2) steps."""
    import jax.numpy as jnp
    if vocab == "valid":
        rows, t = shape
        keep = [t - (i % -(-t // 2)) for i in range(rows)]
        return jnp.asarray([[1.0 if j < keep[i] else 0.0 for j in range(t)] for i in range(rows)], jnp.float32)
    return _draw(key, shape, vocab)


def _build_described(fixture, samples):
    """swiglu, mha and transformer: compact modules described with modules=[...], biases perturbed (as the jax-js fixtures)."""
    import jax
    f = DESCRIBED[fixture["layer"]](fixture.get("spec"), samples)
    model = f["make"]()
    keys = jax.random.split(jax.random.PRNGKey(_seed(fixture)), 3 + len(f["inputs"]))
    init_keys = jax.random.split(keys[2], len(f["inputs"]))
    variables = model.init(keys[0], *(_draw_input(init_keys[i], shape, vocab) for i, (shape, vocab) in enumerate(f["inputs"])))
    if f.get("scales"):  # transformer: the LayerNorm scales too, as the jax-js fixture
        k_bias, k_scale = jax.random.split(keys[1])
        variables = _perturb_biases(_perturb_biases(variables, k_bias), k_scale, "scale")
    else:
        variables = _perturb_biases(variables, keys[1])
    xs = tuple(_draw_input(keys[3 + i], shape, vocab) for i, (shape, vocab) in enumerate(f["inputs"]))
    return capture(model, variables, xs, fixture["id"], taps=True, modules=f["modules"], input_names=f["input_names"],
                   output_names=f["output_names"])


def _build_recurrent(fixture, samples):
    import jax
    f = recurrent_fixture(fixture["layer"], fixture.get("spec"), samples)
    f["model"] = f["make"]()
    keys = jax.random.split(jax.random.PRNGKey(_seed(fixture)), 3 + len(f["inputs"]))
    k_init, k_train, k_init_x, k_x = keys[0], keys[1], keys[2], keys[3:]
    init_keys = jax.random.split(k_init_x, len(f["inputs"]))
    variables = f["model"].init(k_init, *(_draw(init_keys[i], shape, vocab) for i, (shape, vocab) in enumerate(f["inputs"])))
    if f["task"]:
        x, y, loss = f["task"](k_train)
        variables = _fit_task(f["model"], variables, x, y, loss)
    else:
        variables = _perturb_biases(variables, k_train)
    xs = tuple(_draw(k_x[i], shape, vocab) for i, (shape, vocab) in enumerate(f["inputs"]))  # never seen in training
    return capture(f["model"], variables, xs, fixture["id"], taps=True, modules=f["modules"], input_names=f["input_names"],
                   output_names=f["output_names"])


def build(fixture):
    """The Stream for one fixture {id, layer, samples, seed, spec}, from real Flax."""
    import jax
    import jax.numpy as jnp
    layer = fixture.get("layer")
    if layer != "dense" and layer not in BUILDERS and layer not in RECURRENT_LAYERS and layer not in DESCRIBED:
        raise ValueError(f"layer {layer!r} is not supported by the real-Flax capture (known: dense, {', '.join(BUILDERS)}, "
                         f"{', '.join(RECURRENT_LAYERS)}, {', '.join(DESCRIBED)}; residual and model need the jax-js capture)")
    samples = fixture.get("samples")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples <= 0:
        raise ValueError(f"samples: expected a positive integer, got {samples!r}")
    if layer in RECURRENT_LAYERS:
        return _build_recurrent(fixture, samples)
    if layer in DESCRIBED:
        return _build_described(fixture, samples)
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
