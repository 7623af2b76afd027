#!/usr/bin/python3
"""Records the small sklearn test streams in this folder (read by tests/test_sklearn_decoder.cpp).

Each model is a real scikit-learn estimator whose fitted attributes are set by hand (small,
exactly representable numbers), so the expected outputs are scikit-learn's own predict /
predict_proba and the weights are chosen to catch specific mistakes. Written as plain JSON with
"data" arrays so a reader can check them by eye. Run: /usr/bin/python3 make_streams.py
"""

import json
import os
import re
import sys

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "..", "capture"),
                os.path.join(HERE, "..", "..", "..", "..", "capture", "python")]
import pb_sklearn  # noqa: E402

_CODES = {("f", 8): "f64", ("f", 4): "f32", ("i", 8): "i64", ("i", 4): "i32"}
X = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 3.0], [-2.0, 1.0, 0.25]])


def fitted(est, **attrs):
    for k, v in attrs.items():
        setattr(est, k, v)
    return est


def mlp_square():
    # coefs_[0] is a non-symmetric square [3, 3]: read as [out, in] it gives other numbers.
    # Intercepts are large enough that dropping them changes every output.
    return fitted(MLPRegressor(hidden_layer_sizes=(3,), activation="relu"),
                  coefs_=[np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 10.0]]),
                          np.array([[1.0, -1.0], [0.5, 2.0], [-0.25, 1.0]])],
                  intercepts_=[np.array([9.0, 10.0, 12.0]), np.array([0.5, -3.0])],
                  n_layers_=3, n_outputs_=2, out_activation_="identity", n_features_in_=3)


def mlp_classifier_binary():
    return fitted(MLPClassifier(hidden_layer_sizes=(2,), activation="tanh"),
                  coefs_=[np.array([[0.5, -1.0], [0.25, 0.75], [-0.5, 1.0]]), np.array([[1.5], [-2.0]])],
                  intercepts_=[np.array([0.125, -0.25]), np.array([0.5])],
                  n_layers_=3, n_outputs_=1, out_activation_="logistic", n_features_in_=3,
                  classes_=np.array([0, 1]))


def logreg_binary():
    return fitted(LogisticRegression(), coef_=np.array([[0.5, -1.0, 2.0]]), intercept_=np.array([0.25]),
                  classes_=np.array([0, 1]), n_features_in_=3)


def scaler_linreg_1d():
    # Powers of two: the folded affine (1/scale_, -mean_/scale_) is exact in f32.
    scaler = fitted(StandardScaler(), mean_=np.array([1.0, 2.0, -1.0]), scale_=np.array([2.0, 0.5, 4.0]),
                    var_=np.array([4.0, 0.25, 16.0]), n_features_in_=3, n_samples_seen_=10)
    linreg = fitted(LinearRegression(), coef_=np.array([1.0, -2.0, 0.5]), intercept_=1.5, n_features_in_=3)
    return make_pipeline(scaler, linreg)


def as_json(stream):
    doc = dict(stream.doc)
    doc["planet_version"] = "recorded " + doc["planet_version"]
    doc["tensors"] = {}
    for name in sorted(stream.tensors):
        a = np.asarray(stream.tensors[name])
        doc["tensors"][name] = {"dtype": _CODES[(a.dtype.kind, a.dtype.itemsize)], "shape": list(a.shape),
                                "data": a.ravel().tolist()}
    # Indented, with every list of plain values on one line.
    text = json.dumps(doc, indent=1)
    return re.sub(r"\[\s*([^\[\]{}]*?)\s*\]", lambda m: "[" + re.sub(r"\s*\n\s*", " ", m.group(1)) + "]", text) + "\n"


def main():
    for name, make in (("mlp_square", mlp_square), ("mlp_classifier_binary", mlp_classifier_binary),
                       ("logreg_binary", logreg_binary), ("scaler_linreg_1d", scaler_linreg_1d)):
        path = os.path.join(HERE, name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(as_json(pb_sklearn.capture(make(), X, name, taps=True)))
        print(path)


if __name__ == "__main__":
    main()
