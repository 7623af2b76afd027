"""Suite fixtures for the sklearn planet: a fixture (as in the capture request) -> Stream.

Layer "dense", spec {input, units, activation, bias} (the suite's shared MLPs):
MLPRegressor(hidden_layer_sizes=units[:-1], activation) fitted on a synthetic regression task
with units[-1] targets. activation maps relu -> relu, tanh -> tanh, sigmoid -> logistic; a
single layer (units [n]) is MLPRegressor(hidden_layer_sizes=()), which scikit-learn 1.2 accepts:
one linear layer, activation "identity". bias: false cannot exist in scikit-learn (the MLP always
learns intercepts): NotApplicable. Activations scikit-learn's MLP lacks (gelu, ...):
NotApplicable.

Layer "sklearn", spec {estimator, input, targets | classes, params, scaler}:
- estimator: MLPRegressor, MLPClassifier, LinearRegression, Ridge or LogisticRegression;
- input: number of features;
- targets (regressors, default 1; 1 fits a 1-D y, so predict is 1-D) or classes (classifiers, >= 2);
- params: constructor keyword arguments (lists become tuples), e.g. {hidden_layer_sizes: [16],
  activation: tanh, multi_class: multinomial};
- scaler: StandardScaler parameters ({} for the defaults): the model becomes
  Pipeline(StandardScaler -> estimator), and the raw features get per-column offsets and scales
  so that the scaler matters.

Training data: 256 rows, z ~ N(0, 1); regression targets tanh(z A) B, class labels
argmax(tanh(z A) B). Sample inputs are drawn the same way. Everything comes from one seed
mixed from the fixture's seed and crc32(id).
"""

import warnings
import zlib

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import pb_sklearn
import pbstream

TRAIN_ROWS = 256
MAX_ITER = 300  # a few hundred Adam steps: non-trivial weights, seconds for the whole suite

# The dense spec's activation -> scikit-learn's MLP activation.
DENSE_ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic", "identity": "identity", "linear": "identity"}
# Activations other planets know that scikit-learn's MLP has no counterpart for.
OTHER_ACTIVATIONS = {"gelu", "gelu_tanh", "silu", "elu", "selu", "leaky_relu", "relu6", "mish", "hardswish",
                     "softplus", "softmax", "log_softmax"}

# estimator name -> (class, is classifier, constructor defaults that make the fit deterministic)
ESTIMATORS = {
    "MLPRegressor": (MLPRegressor, False, {"max_iter": MAX_ITER}),
    "MLPClassifier": (MLPClassifier, True, {"max_iter": MAX_ITER}),
    "LinearRegression": (LinearRegression, False, {}),
    "Ridge": (Ridge, False, {}),
    "LogisticRegression": (LogisticRegression, True, {"max_iter": 1000}),
}
_SKLEARN_KEYS = {"estimator", "input", "targets", "classes", "params", "scaler"}


def _positive_int(v, where):
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise ValueError(f"{where}: expected a positive integer, got {v!r}")
    return v


def _seed(fixture):
    # Mixing in the id gives every fixture its own weights even with the suite-wide seed.
    seed = fixture.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    return int(np.random.SeedSequence([seed, zlib.crc32(fixture["id"].encode())]).generate_state(1, np.uint32)[0])


def _lacks(activation):
    if activation in OTHER_ACTIVATIONS:
        return f"scikit-learn's MLP has no {activation!r} activation (it has identity, logistic, tanh, relu)"
    return None


def _check_keys(spec, known, layer):
    if not isinstance(spec, dict):
        raise ValueError(f"spec: expected a mapping, got {spec!r}")
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f"spec.{unknown[0]}: unknown field for layer '{layer}' (known: {', '.join(sorted(known))})")


def dense_estimator(spec):
    """(MLPRegressor without random_state, targets) for a "dense" spec; errors name the field."""
    width, units, activation, bias = pbstream.dense_spec(
        spec, DENSE_ACTIVATIONS, lacks=_lacks, known=sorted(set(DENSE_ACTIVATIONS) | OTHER_ACTIVATIONS))
    if not bias:
        raise pbstream.NotApplicable("scikit-learn's MLP always learns intercepts; a layer without bias cannot exist")
    hidden = tuple(units[:-1])
    # One layer has no hidden activation; say so rather than leave the default "relu" unused.
    est = MLPRegressor(hidden_layer_sizes=hidden, activation=DENSE_ACTIVATIONS[activation] if hidden else "identity",
                       max_iter=MAX_ITER)
    return est, width, units[-1]


def sklearn_estimator(spec):
    """(estimator without random_state, input width, targets or classes, scaler params or None)."""
    _check_keys(spec, _SKLEARN_KEYS, "sklearn")
    name = spec.get("estimator")
    if name not in ESTIMATORS:
        raise ValueError(f"spec.estimator: unknown estimator {name!r} (known: {', '.join(ESTIMATORS)})")
    cls, classifier, defaults = ESTIMATORS[name]
    width = _positive_int(spec.get("input"), "spec.input")
    wrong, key = ("targets", "classes") if classifier else ("classes", "targets")
    if wrong in spec:
        raise ValueError(f"spec.{wrong}: {name} takes '{key}'")
    n = _positive_int(spec.get(key, 2 if classifier else 1), f"spec.{key}")
    if classifier and n < 2:
        raise ValueError(f"spec.classes: expected at least 2, got {n}")
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError(f"spec.params: expected a mapping, got {params!r}")
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    try:
        est = cls(**{**defaults, **params})
    except TypeError as e:
        raise ValueError(f"spec.params: {e}") from None
    scaler = spec.get("scaler")
    if scaler is not None and not isinstance(scaler, dict):
        raise ValueError(f"spec.scaler: expected a mapping of StandardScaler parameters, got {scaler!r}")
    return est, width, n, classifier, scaler


def _task(rng, width, n, classifier, raw):
    """A draw function for inputs and the (X, y) training set. raw: per-column (offset, scale)."""
    hidden = max(n, 8)
    a = rng.standard_normal((width, hidden)) / width ** 0.5  # scaled so tanh is not saturated
    b = rng.standard_normal((hidden, n)) / hidden ** 0.5

    def draw(rows):
        z = rng.standard_normal((rows, width))
        return z if raw is None else z * raw[1] + raw[0]

    z = rng.standard_normal((TRAIN_ROWS, width))
    target = np.tanh(z @ a) @ b
    if classifier:
        y = target.argmax(axis=1) if n > 2 else (target[:, 0] > np.median(target[:, 0])).astype(np.int64)
        if len(np.unique(y)) != n:
            raise ValueError(f"the synthetic task produced {len(np.unique(y))} of {n} classes")
    else:
        y = target[:, 0] if n == 1 else target
    x = z if raw is None else z * raw[1] + raw[0]
    return draw, x, y


def build(fixture):
    """The Stream for one fixture {id, layer, samples, seed, spec}."""
    layer = fixture.get("layer")
    samples = _positive_int(fixture.get("samples"), "samples")
    spec = fixture.get("spec")
    scaler = None
    if layer == "dense":
        est, width, n = dense_estimator(spec)
        classifier = False
    elif layer == "sklearn":
        est, width, n, classifier, scaler = sklearn_estimator(spec)
    else:
        raise ValueError(f"layer {layer!r} is not supported by the sklearn capture")
    seed = _seed(fixture)
    rng = np.random.default_rng(seed)
    if "random_state" in est.get_params():
        est.set_params(random_state=seed)
    raw = None
    if scaler is not None:
        raw = (rng.normal(0.0, 3.0, width), np.exp(rng.uniform(-1.0, 1.5, width)))
        try:
            est = make_pipeline(StandardScaler(**scaler), est)
        except TypeError as e:
            raise ValueError(f"spec.scaler: {e}") from None
    draw, x, y = _task(rng, width, n, classifier, raw)
    with warnings.catch_warnings():
        # A modest max_iter is deliberate; the weights only need to be realistic.
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(x, y)
    return pb_sklearn.capture(est, draw(samples), fixture["id"], taps=True)
