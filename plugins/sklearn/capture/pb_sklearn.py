"""Captures a fitted scikit-learn estimator (or Pipeline) as a planetbridge stream
(docs/planets/sklearn.md).

The capture stays thin: it sends the estimator's class, its get_params() and its fitted
attributes under scikit-learn's own names and layouts (coefs_[i] is [in, out]); the C++ decoder
owns every layout and semantics decision.

Tensor names in the stream:

- input "X" (float64, as scikit-learn computes), expected output named after the method that
  produced it ("predict" or "predict_proba");
- fitted float arrays by attribute name ("coef_", "mean_"), lists of arrays by index
  ("coefs_.0", "intercepts_.1"); inside a Pipeline prefixed by the step name
  ("standardscaler.mean_", "mlpregressor.coefs_.0");
- taps (taps=True): "tap.<IR value>" for what scikit-learn itself computes on the way: each
  Pipeline step's transform output, MLP hidden layers, linear classifiers' decision_function.
"""

import os
import sys

import numpy as np
import sklearn
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline

# The library works without capture.py's path setup.
_SDK = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "capture", "python"))
if _SDK not in sys.path:
    sys.path.append(_SDK)
import pbstream  # noqa: E402

PLANET = "sklearn"
ENGINE = "scikit-learn"
PLANET_VERSION = sklearn.__version__
METHODS = ("predict", "predict_proba")


# A captured model: the document and its tensors by name (to_bytes, write, post).
Stream = pbstream.Stream


def _json_value(v):
    """A parameter or small attribute value as JSON; anything else as {"repr": ...}."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return pbstream.finite_or_repr(v)
    if isinstance(v, (tuple, list)):
        return [_json_value(x) for x in v]
    if isinstance(v, np.ndarray) and v.dtype.kind in "biuUO":  # labels (classes_), counts
        return [_json_value(x) for x in v.tolist()]
    return {"repr": repr(v)}


def _is_float_array(v):
    return isinstance(v, np.ndarray) and v.dtype.kind == "f"


def _float_tensor(v):
    # An owned copy: refitting the estimator later must not change what we send.
    return np.array(v, dtype=v.dtype if v.dtype.itemsize in (4, 8) else np.float64, order="C", copy=True)


def _attributes(est, prefix, tensors):
    """Fitted attributes (public names ending in "_"): float arrays become tensors
    ({"tensor": name}), lists of float arrays lists of tensors, everything else JSON (a float
    scalar such as Ridge's single-target intercept_ is a JSON number: exact, shortest repr)."""
    out = {}
    for name in sorted(vars(est)):
        if name.startswith("_") or not name.endswith("_"):
            continue
        v = getattr(est, name)
        if _is_float_array(v):
            tensors[prefix + name] = _float_tensor(v)
            out[name] = {"tensor": prefix + name}
        elif isinstance(v, (list, tuple)) and v and all(_is_float_array(a) for a in v):
            refs = []
            for i, a in enumerate(v):
                tensors[f"{prefix}{name}.{i}"] = _float_tensor(a)
                refs.append({"tensor": f"{prefix}{name}.{i}"})
            out[name] = refs
        else:
            out[name] = _json_value(v)
    return out


def _params(est):
    # Nested estimators (Pipeline.steps) are described by "steps", not as params.
    return {k: _json_value(v) for k, v in est.get_params(deep=False).items() if not (isinstance(est, Pipeline) and k == "steps")}


def _describe(est, prefix, X, tensors, taps):
    """The model entry for `est` fed with X; fills tensors and taps (None: no taps)."""
    entry = {"class": type(est).__name__, "module": type(est).__module__, "params": _params(est)}
    if isinstance(est, Pipeline):
        steps = []
        for i, (name, step) in enumerate(est.steps):
            last = i == len(est.steps) - 1
            if step is None or step == "passthrough":
                steps.append({"name": name, "estimator": {"class": "passthrough"}})
                continue
            steps.append({"name": name, "estimator": _describe(step, prefix + name + ".", X, tensors, taps)})
            if not last:
                X = step.transform(X)
                if taps is not None:
                    taps[prefix + name] = X  # the decoder names a step's output after the step
        entry["steps"] = steps
        return entry
    entry["attributes"] = _attributes(est, prefix, tensors)
    if taps is not None:
        _internal_taps(est, prefix, X, taps)
    return entry


def _internal_taps(est, prefix, X, taps):
    """scikit-learn's own intermediate values, keyed by the IR value the decoder names them."""
    if hasattr(est, "coefs_") and hasattr(est, "_forward_pass"):
        # MLP hidden layers after their activation (the private forward pass keeps them all).
        acts = est._forward_pass([np.asarray(X, dtype=np.float64)] + [None] * (est.n_layers_ - 1))
        for i in range(est.n_layers_ - 2):
            taps[f"{prefix}act.{i}"] = acts[i + 1]
    elif is_classifier(est) and hasattr(est, "decision_function") and hasattr(est, "coef_"):
        d = est.decision_function(X)
        taps[f"{prefix}decision"] = d.reshape(len(d), -1)  # the IR keeps [N, 1] for binary


def capture(estimator, X, model_id, method=None, taps=False):
    """Runs a fitted `estimator` (or Pipeline) on X and returns the Stream.

    method: "predict_proba" for classifiers, "predict" otherwise, unless given. X is converted
    to a C-contiguous float64 array first (what scikit-learn computes in) and sent as is.
    """
    method = method or ("predict_proba" if is_classifier(estimator) else "predict")
    if method not in METHODS:
        raise ValueError(f"{model_id}: method {method!r} is not supported (known: {', '.join(METHODS)})")
    if not hasattr(estimator, method):
        raise ValueError(f"{model_id}: {type(estimator).__name__} has no method {method!r}")
    X = np.array(X, dtype=np.float64, order="C", copy=True)
    if X.ndim != 2:
        raise ValueError(f"{model_id}: X must be 2-D [samples, features], got shape {list(X.shape)}")
    native = np.asarray(getattr(estimator, method)(X.copy()))
    if native.dtype.kind != "f":
        raise ValueError(f"{model_id}: {method} returned {native.dtype} values, expected floats")

    tensors = {}
    tap_values = {} if taps else None
    model = {"format": "sklearn.estimator", "method": method,
             "estimator": _describe(estimator, "", X.copy(), tensors, tap_values)}

    def put(name, array):
        if name in tensors:
            raise ValueError(f'{model_id}: tensor name "{name}" is used twice')
        tensors[name] = np.array(array, order="C", copy=True)

    put("X", X)
    put(method, native)
    tap_map = {}
    for value, array in (tap_values or {}).items():
        tap_map[value] = "tap." + value
        put(tap_map[value], array)
    doc = pbstream.stream_doc(PLANET, PLANET_VERSION, ENGINE, model_id, model, ["X"], [method], tap_map)
    return Stream(doc, tensors)
