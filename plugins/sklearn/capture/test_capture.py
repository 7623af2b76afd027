"""Tests for the sklearn capture (pb_sklearn, fixtures, capture.py --serve).

Run: /usr/bin/python3 -m unittest discover -s plugins/sklearn/capture -p 'test_*.py'
"""

import os
import sys
import unittest
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.normpath(os.path.join(HERE, "..", "..", "..", "capture", "python"))]

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import fixtures  # noqa: E402
import pb_sklearn  # noqa: E402
import pbstream  # noqa: E402
from pbstream_testing import read_frames, read_one, run_serve  # noqa: E402

CAPTURE = os.path.join(HERE, "capture.py")


def fit(est, x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(x, y)


RNG = np.random.default_rng(0)
X = RNG.standard_normal((40, 6))
Y2 = np.stack([np.tanh(X[:, 0]) + X[:, 1], X[:, 2] * 0.5], axis=1)
LABELS3 = np.argmax(X[:, :3], axis=1)


class CaptureTest(unittest.TestCase):
    def test_mlp_regressor(self):
        est = fit(MLPRegressor(hidden_layer_sizes=(5, 4), activation="tanh", max_iter=50, random_state=0), X, Y2)
        doc, t = read_one(pb_sklearn.capture(est, X[:7], "mlp"))
        self.assertEqual((doc["planet"], doc["engine"], doc["planet_version"]), ("sklearn", "scikit-learn", sklearn.__version__))
        model = doc["model"]
        self.assertEqual((model["format"], model["method"]), ("sklearn.estimator", "predict"))
        e = model["estimator"]
        self.assertEqual(e["class"], "MLPRegressor")
        self.assertEqual(e["params"]["activation"], "tanh")
        self.assertEqual(e["params"]["hidden_layer_sizes"], [5, 4])
        a = e["attributes"]
        self.assertEqual(a["coefs_"], [{"tensor": "coefs_.0"}, {"tensor": "coefs_.1"}, {"tensor": "coefs_.2"}])
        self.assertEqual(a["intercepts_"], [{"tensor": f"intercepts_.{i}"} for i in range(3)])
        self.assertEqual((a["out_activation_"], a["n_features_in_"], a["n_outputs_"]), ("identity", 6, 2))
        for i in range(3):  # scikit-learn's own [in, out] layout, f64, untouched
            np.testing.assert_array_equal(t[f"coefs_.{i}"], est.coefs_[i])
            np.testing.assert_array_equal(t[f"intercepts_.{i}"], est.intercepts_[i])
        self.assertEqual(t["coefs_.0"].shape, (6, 5))
        self.assertEqual((doc["inputs"], doc["expected"]), (["X"], ["predict"]))
        self.assertEqual((t["X"].dtype, t["predict"].dtype), (np.float64, np.float64))
        np.testing.assert_array_equal(t["X"], X[:7])
        np.testing.assert_array_equal(t["predict"], est.predict(X[:7]))
        self.assertNotIn("taps", doc)

    def test_classifiers_default_to_predict_proba(self):
        y = np.where(X[:, 0] > 0, "yes", "no")
        for est in (fit(MLPClassifier(hidden_layer_sizes=(3,), max_iter=20, random_state=0), X, y),
                    fit(LogisticRegression(), X, y)):
            doc, t = read_one(pb_sklearn.capture(est, X[:5], "clf"))
            self.assertEqual(doc["model"]["method"], "predict_proba")
            self.assertEqual(doc["model"]["estimator"]["attributes"]["classes_"], ["no", "yes"])
            self.assertEqual(t["predict_proba"].shape, (5, 2))
            np.testing.assert_array_equal(t["predict_proba"], est.predict_proba(X[:5]))
        self.assertEqual(t["coef_"].shape, (1, 6))

    def test_linear_models_keep_their_shapes(self):
        lr = fit(LinearRegression(fit_intercept=False), X, Y2[:, 0])
        doc, t = read_one(pb_sklearn.capture(lr, X, "lr"))
        a = doc["model"]["estimator"]["attributes"]
        self.assertEqual(t["coef_"].shape, (6,))
        self.assertEqual(a["intercept_"], 0.0)  # a Python float: a JSON number
        self.assertEqual(t["predict"].shape, (40,))
        ridge = fit(Ridge(), X, Y2[:, 0])
        doc, _ = read_one(pb_sklearn.capture(ridge, X, "ridge"))
        self.assertEqual(doc["model"]["estimator"]["attributes"]["intercept_"], float(ridge.intercept_))
        ridge = fit(Ridge(), X, Y2)
        doc, t = read_one(pb_sklearn.capture(ridge, X, "ridge2"))
        self.assertEqual((t["coef_"].shape, t["intercept_"].shape), ((2, 6), (2,)))

    def test_pipeline_steps_and_taps(self):
        raw = X * 3 + 5
        pipe = fit(make_pipeline(StandardScaler(with_mean=False), LogisticRegression()), raw, LABELS3)
        doc, t = read_one(pb_sklearn.capture(pipe, raw[:4], "pipe", taps=True))
        e = doc["model"]["estimator"]
        self.assertEqual(e["class"], "Pipeline")
        self.assertNotIn("steps", e["params"])
        self.assertEqual([s["name"] for s in e["steps"]], ["standardscaler", "logisticregression"])
        scaler = e["steps"][0]["estimator"]
        self.assertIs(scaler["params"]["with_mean"], False)
        # mean_ exists even with with_mean=False; the decoder must follow the parameter.
        self.assertEqual(scaler["attributes"]["mean_"], {"tensor": "standardscaler.mean_"})
        np.testing.assert_array_equal(t["standardscaler.scale_"], pipe[0].scale_)
        self.assertEqual(t["logisticregression.coef_"].shape, (3, 6))
        self.assertEqual(doc["taps"], {"standardscaler": "tap.standardscaler",
                                       "logisticregression.decision": "tap.logisticregression.decision"})
        np.testing.assert_array_equal(t["tap.standardscaler"], pipe[0].transform(raw[:4]))
        np.testing.assert_array_equal(t["tap.logisticregression.decision"], pipe.decision_function(raw[:4]))
        np.testing.assert_array_equal(t["predict_proba"], pipe.predict_proba(raw[:4]))

    def test_mlp_hidden_taps(self):
        est = fit(MLPRegressor(hidden_layer_sizes=(4, 3), activation="relu", max_iter=20, random_state=1), X, Y2)
        doc, t = read_one(pb_sklearn.capture(est, X[:3], "m", taps=True))
        self.assertEqual(doc["taps"], {"act.0": "tap.act.0", "act.1": "tap.act.1"})
        h = np.maximum(X[:3] @ est.coefs_[0] + est.intercepts_[0], 0)
        np.testing.assert_allclose(t["tap.act.0"], h, rtol=1e-12)
        np.testing.assert_allclose(t["tap.act.1"], np.maximum(h @ est.coefs_[1] + est.intercepts_[1], 0), rtol=1e-12)

    def test_params_are_json_safe(self):
        est = fit(MLPRegressor(hidden_layer_sizes=3, max_iter=5, random_state=np.random.RandomState(0)), X, Y2)
        doc, _ = read_one(pb_sklearn.capture(est, X[:2], "m"))
        self.assertEqual(doc["model"]["estimator"]["params"]["hidden_layer_sizes"], 3)
        self.assertIn("repr", doc["model"]["estimator"]["params"]["random_state"])

    def test_input_errors(self):
        est = fit(LinearRegression(), X, Y2)
        with self.assertRaisesRegex(ValueError, "method 'transform' is not supported"):
            pb_sklearn.capture(est, X, "m", method="transform")
        with self.assertRaisesRegex(ValueError, "has no method 'predict_proba'"):
            pb_sklearn.capture(est, X, "m", method="predict_proba")
        with self.assertRaisesRegex(ValueError, "X must be 2-D"):
            pb_sklearn.capture(est, X[0], "m")


def fixture(spec, layer="sklearn", fid="fx", samples=12):
    return {"id": fid, "layer": layer, "samples": samples, "seed": 42, "spec": spec}


class FixtureTest(unittest.TestCase):
    def test_dense_maps_onto_mlp_regressor(self):
        doc, t = read_one(fixtures.build(fixture({"input": 8, "units": [6, 5, 3], "activation": "sigmoid"}, "dense")))
        e = doc["model"]["estimator"]
        self.assertEqual((e["class"], e["params"]["activation"], e["params"]["hidden_layer_sizes"]), ("MLPRegressor", "logistic", [6, 5]))
        self.assertEqual([t[f"coefs_.{i}"].shape for i in range(3)], [(8, 6), (6, 5), (5, 3)])
        self.assertEqual(t["X"].shape, (12, 8))
        self.assertEqual(t["predict"].shape, (12, 3))
        self.assertTrue(all(np.all(t[f"intercepts_.{i}"] != 0) for i in range(3)))
        self.assertEqual(set(doc["taps"]), {"act.0", "act.1"})

    def test_single_layer_is_an_mlp_without_hidden_layers(self):
        doc, t = read_one(fixtures.build(fixture({"input": 16, "units": [4]}, "dense")))
        e = doc["model"]["estimator"]
        self.assertEqual((e["params"]["hidden_layer_sizes"], e["params"]["activation"]), ([], "identity"))
        self.assertEqual(t["coefs_.0"].shape, (16, 4))
        np.testing.assert_allclose(t["X"] @ t["coefs_.0"] + t["intercepts_.0"], t["predict"], rtol=1e-12)

    def test_every_layer_influences_the_output(self):
        est, width, n = fixtures.dense_estimator({"input": 8, "units": [6, 6, 2], "activation": "relu"})
        fit(est.set_params(random_state=3), RNG.standard_normal((64, 8)), RNG.standard_normal((64, 2)))
        x = RNG.standard_normal((20, 8))
        base = est.predict(x)
        for attr in ("coefs_", "intercepts_"):
            for i in range(3):
                saved = getattr(est, attr)[i].copy()
                getattr(est, attr)[i] += 0.1
                self.assertFalse(np.allclose(est.predict(x), base), f"{attr}[{i}] does not influence the output")
                getattr(est, attr)[i][...] = saved

    def test_not_applicable(self):
        with self.assertRaisesRegex(pbstream.NotApplicable, "always learns intercepts"):
            fixtures.build(fixture({"input": 8, "units": [4, 2], "bias": False}, "dense"))
        with self.assertRaisesRegex(pbstream.NotApplicable, "no 'gelu' activation"):
            fixtures.build(fixture({"input": 8, "units": [4, 2], "activation": "gelu"}, "dense"))

    def test_spec_errors_name_the_field(self):
        for layer, spec, field in (
                ("dense", {"input": 8, "units": [4, 2], "activation": "swish2"}, "spec.activation"),
                ("dense", {"input": 8, "units": []}, "spec.units"),
                ("dense", {"input": 8, "units": [2], "dropout": 0.1}, "spec.dropout"),
                ("sklearn", {"estimator": "SVC", "input": 4}, "spec.estimator"),
                ("sklearn", {"estimator": "Ridge", "input": 0}, "spec.input"),
                ("sklearn", {"estimator": "Ridge", "input": 4, "classes": 2}, "spec.classes"),
                ("sklearn", {"estimator": "LogisticRegression", "input": 4, "classes": 1}, "spec.classes"),
                ("sklearn", {"estimator": "Ridge", "input": 4, "params": {"bogus": 1}}, "spec.params"),
                ("sklearn", {"estimator": "Ridge", "input": 4, "scaler": {"bogus": 1}}, "spec.scaler"),
                ("sklearn", {"estimator": "Ridge", "input": 4, "extra": 1}, "spec.extra")):
            with self.subTest(spec=spec), self.assertRaisesRegex(ValueError, field):
                fixtures.build(fixture(spec, layer))
        with self.assertRaisesRegex(ValueError, "layer 'conv2'"):
            fixtures.build(fixture({}, "conv2"))

    def test_every_estimator_builds(self):
        for spec, method, shape in (
                ({"estimator": "MLPRegressor", "input": 5, "targets": 1, "params": {"hidden_layer_sizes": [4]}}, "predict", (12,)),
                ({"estimator": "MLPClassifier", "input": 5, "classes": 3}, "predict_proba", (12, 3)),
                ({"estimator": "LinearRegression", "input": 5, "targets": 2}, "predict", (12, 2)),
                ({"estimator": "Ridge", "input": 5}, "predict", (12,)),
                ({"estimator": "LogisticRegression", "input": 5, "classes": 2, "scaler": {}}, "predict_proba", (12, 2))):
            with self.subTest(spec=spec):
                doc, t = read_one(fixtures.build(fixture(spec)))
                self.assertEqual(doc["expected"], [method])
                self.assertEqual(t[method].shape, shape)
        # The scaler is not a no-op: raw features carry offsets and scales.
        self.assertGreater(np.abs(t["standardscaler.mean_"]).max(), 0.5)

    def test_deterministic(self):
        fx = fixture({"estimator": "MLPClassifier", "input": 6, "classes": 2, "scaler": {}})
        self.assertEqual(fixtures.build(fx).to_bytes(), fixtures.build(fx).to_bytes())
        other = fixtures.build({**fx, "id": "other"}).to_bytes()
        self.assertNotEqual(fixtures.build(fx).to_bytes(), other)


class ServeTest(unittest.TestCase):
    def test_protocol_end_to_end(self):
        dense = {"layer": "dense", "samples": 7, "seed": 1, "spec": {"input": 4, "units": [3, 2]}}
        request = {"format": "planetbridge.capture-request", "version": 1,
                   "fixtures": [{**dense, "id": "b"},
                                {**dense, "id": "nobias", "spec": {"input": 4, "units": [3, 2], "bias": False}},
                                {**dense, "id": "conv", "layer": "conv2"}]}
        r = run_serve(CAPTURE, request)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        frames = read_frames(r.stdout)
        self.assertEqual([f[0].get("event") for f in frames], ["hello", None, "not_applicable", "error"])
        hello = frames[0][0]
        self.assertEqual((hello["planet"], hello["engine"], hello["engine_version"]), ("sklearn", "scikit-learn", sklearn.__version__))
        self.assertEqual(frames[1][0]["model_id"], "b")
        self.assertEqual(frames[1][1]["X"].shape, (7, 4))
        self.assertIn("always learns intercepts", frames[2][0]["reason"])
        self.assertEqual(frames[3][0]["message"], "ValueError: layer 'conv2' is not supported by the sklearn capture")


if __name__ == "__main__":
    unittest.main()
