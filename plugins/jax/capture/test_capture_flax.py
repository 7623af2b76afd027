"""Tests for capture_flax.py (real JAX/Flax). The CLI's usage tests run everywhere; the capture
tests run where `jax` and `flax` import and are skipped elsewhere; the "unavailable" tests run
only where they are missing.

Run: python3 -m unittest discover -s plugins/jax/capture -p 'test_*.py'
"""

import functools
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.normpath(os.path.join(HERE, "..", "..", "..", "capture", "python"))]

import capture_flax  # noqa: E402
import pbstream  # noqa: E402
from pbstream_testing import read_frames, run_serve  # noqa: E402

try:
    import jax
    import jax.numpy as jnp
    import flax.linen as nn
    import numpy as np
    HAVE_FLAX, WHY = True, ""
except ImportError as e:  # the reason the skip reports
    HAVE_FLAX, WHY = False, f"needs jax and flax: {e}"

CAPTURE = os.path.join(HERE, "capture_flax.py")
SUITE = os.path.normpath(os.path.join(HERE, "..", "..", "..", "config", "suites", "bedrock.yaml"))
NOWHERE = "http://127.0.0.1:9"  # never reached: these runs stop before posting


def serve(request):
    return run_serve(CAPTURE, request, timeout=600)


def cli(*args):
    """capture_flax.py with args, from / with nothing on stdin."""
    return subprocess.run([sys.executable, CAPTURE, *args], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=600, cwd="/")


def write_suite(folder):
    """A suite of two jax fixtures, the second not applicable to Flax (no mish); returns its path."""
    path = os.path.join(folder, "suite.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write("fixtures:\n"
                "  - {id: a_relu, layer: dense, samples: 5, seed: 1, spec: {input: 4, units: [3, 2]}, planets: [jax]}\n"
                "  - {id: b_mish, layer: dense, samples: 5, seed: 1, spec: {input: 4, units: [3, 2], activation: mish},"
                " planets: [jax]}\n")
    return path


class CliTest(unittest.TestCase):
    """The CLI is pbstream.main, the one every Python capture shares; usage needs no engine."""

    def test_help_names_every_mode(self):
        r = cli("--help")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        out = r.stdout.decode()
        self.assertIn("Captures real JAX/Flax", out)
        for flag in ("--serve", "--suite FILE", "--fixture GLOB", "--out DIR", "--stdout", "--post URL"):
            self.assertIn(flag, out)

    def test_usage_errors_exit_2(self):
        for args, message in (((), "one of the arguments --serve --suite is required"),
                              (("--suite", "suite.yaml"), "--suite needs --out DIR, --stdout or --post URL"),
                              (("--serve", "--post", NOWHERE), "--serve takes no --fixture, --out, --stdout or --post"),
                              (("--suite", "suite.yaml", "--stdout", "--post", NOWHERE), "not allowed with argument")):
            with self.subTest(args=args):
                r = cli(*args)
                self.assertEqual(r.returncode, 2)
                self.assertEqual(r.stdout, b"")
                self.assertIn(message, r.stderr.decode())


def _node_ok():
    try:
        return subprocess.run(["node", "-e", "require(process.argv[1])", os.path.join(HERE, "fixtures.js")],
                              capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class RecurrentWiringTest(unittest.TestCase):
    """The real-Flax recurrent fixtures are wired as the jax-js ones: module types, names and
    inputs, model inputs and outputs (the dialect's value names), for every rnn / lstm / gru
    fixture of the suite. Needs no JAX; compares with the jax-js capture where Node has it."""

    def recurrent_fixtures(self):
        return [f for f in pbstream.suite_fixtures(SUITE, "jax") if f["layer"] in capture_flax.RECURRENT_LAYERS]

    def test_spec_errors_and_not_applicable_need_no_engine(self):
        with self.assertRaises(pbstream.NotApplicable):
            capture_flax.recurrent_fixture("gru", {"input": 3, "hidden": 4, "seq": 5, "reset_after": False}, 2)
        for layer, spec, field in (("lstm", {"input": 3, "hidden": 4, "seq": 5, "activation": "relu"}, r"spec\.activation"),
                                   ("rnn", {"input": 3, "hidden": 4, "seq": 5, "merge": "sum"}, r"spec\.merge"),
                                   ("lstm", {"input": 3, "hidden": 4, "seq": 5, "head": 2}, r"spec\.head"),
                                   ("lstm", {"input": 3, "hidden": 4, "seq": 5, "bidirectional": True, "output": "last"},
                                    r"spec\.output"),
                                   ("gru", {"arch": "text_classifier"}, r"spec\.arch"),
                                   ("gru", {"input": 3, "hidden": 4, "seq": 5, "dropout": 0.1}, r"spec\.dropout")):
            with self.subTest(spec=spec), self.assertRaisesRegex(ValueError, field):
                capture_flax.recurrent_fixture(layer, spec, 2)

    @unittest.skipUnless(_node_ok(), "needs Node with the npm packages (the jax-js capture)")
    def test_wired_as_the_jax_js_fixtures(self):
        fixtures = self.recurrent_fixtures()
        self.assertGreaterEqual(len(fixtures), 16)
        script = ("const fx = require(process.argv[1]); const out = {};"
                  "for (const f of JSON.parse(process.argv[2])) { try { const { model, inputs } = fx.recurrentModel(f.layer, f.spec, 3);"
                  " out[f.id] = { modules: model.describe().map((m) => [m.type, m.name, m.inputs ?? null]),"
                  " inputs: model.inputNames, outputs: model.outputNames, shapes: inputs.map((i) => i.shape) };"
                  " } catch (e) { out[f.id] = { error: e.name }; } } console.log(JSON.stringify(out));")
        r = subprocess.run(["node", "-e", script, os.path.join(HERE, "fixtures.js"), json.dumps(fixtures)],
                           capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        js = json.loads(r.stdout)
        for f in fixtures:
            with self.subTest(fixture=f["id"]):
                try:
                    py = capture_flax.recurrent_fixture(f["layer"], f["spec"], 3)
                except pbstream.NotApplicable:
                    self.assertEqual(js[f["id"]], {"error": "NotApplicable"})
                    continue
                want = js[f["id"]]
                # jax-js lists every module (an Embed too) with its inputs where they are not Sequential order
                mods = [[m["type"], m["name"], m.get("inputs")] for m in py["modules"]]
                self.assertEqual(mods, want["modules"])
                self.assertEqual(py["input_names"], want["inputs"])
                self.assertEqual(py["output_names"], want["outputs"])
                self.assertEqual([list(shape) for shape, _ in py["inputs"]], want["shapes"])


class TransformerWiringTest(unittest.TestCase):
    """The real-Flax transformer fixtures are wired as the jax-js ones (module types, names and
    inputs, model inputs and outputs, input shapes) for every transformer fixture of the suite.
    Needs no JAX; compares with the jax-js capture where Node has it."""

    def transformer_fixtures(self):
        return [f for f in pbstream.suite_fixtures(SUITE, "jax") if f["layer"] == "transformer"]

    def test_spec_errors_need_no_engine(self):
        base = {"d_model": 8, "heads": 2, "ff": 16, "seq": 4}
        for spec, field in (({**base, "kind": "decoder"}, r"spec\.kind"), ({**base, "vocab": 9}, r"spec\.vocab"),
                            ({**base, "heads": 3}, r"spec\.heads"), ({**base, "activation": "tanh"}, r"spec\.activation"),
                            ({**base, "mask": "causal_padding"}, r"spec\.mask"), ({**base, "batch_first": False}, r"spec\.batch_first")):
            with self.subTest(spec=spec), self.assertRaisesRegex(ValueError, field):
                capture_flax.transformer_fixture(spec, 2)

    @unittest.skipUnless(_node_ok(), "needs Node with the npm packages (the jax-js capture)")
    def test_wired_as_the_jax_js_fixtures(self):
        fixtures = self.transformer_fixtures()
        self.assertGreaterEqual(len(fixtures), 4)
        script = ("const fx = require(process.argv[1]); const out = {};"
                  "for (const f of JSON.parse(process.argv[2])) { const { model, inputs } = fx.transformerModel(f.layer, f.spec, 3);"
                  " out[f.id] = { modules: model.describe().map((m) => [m.type, m.name, m.inputs ?? null]),"
                  " inputs: model.inputNames, outputs: model.outputNames, shapes: inputs.map((i) => i.shape) }; }"
                  " console.log(JSON.stringify(out));")
        r = subprocess.run(["node", "-e", script, os.path.join(HERE, "fixtures.js"), json.dumps(fixtures)],
                           capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        js = json.loads(r.stdout)
        for f in fixtures:
            with self.subTest(fixture=f["id"]):
                py = capture_flax.transformer_fixture(f["spec"], 3)
                want = js[f["id"]]
                self.assertEqual([[m["type"], m["name"], m.get("inputs")] for m in py["modules"]], want["modules"])
                self.assertEqual(py["input_names"], want["inputs"])
                self.assertEqual(py["output_names"], want["outputs"])
                self.assertEqual([list(shape) for shape, _ in py["inputs"]], want["shapes"])


@unittest.skipUnless(HAVE_FLAX, WHY)
class CaptureFlaxTest(unittest.TestCase):
    def test_sequential_dialect_layouts_and_taps(self):
        model = nn.Sequential([nn.Dense(4), nn.relu, nn.Dense(3, use_bias=False),
                               functools.partial(nn.gelu, approximate=False), nn.Dense(2)])
        x = jax.random.normal(jax.random.PRNGKey(0), (5, 6))
        variables = model.init(jax.random.PRNGKey(1), x)
        doc, t = read_frames(capture_flax.capture(model, variables, (x,), "seq").to_bytes())[0]
        self.assertEqual((doc["planet"], doc["engine"], doc["planet_version"]), ("jax", "jax", jax.__version__))
        self.assertNotIn("composed", doc)  # stock Flax modules
        m = doc["model"]
        self.assertEqual(m["format"], "flax.linen")
        self.assertEqual((m["inputs"], m["outputs"]), (["x"], ["layers_4"]))
        self.assertEqual([e["name"] for e in m["modules"]], ["layers_0", "relu_0", "layers_2", "gelu_0", "layers_4"])
        self.assertEqual(m["modules"][0], {"type": "Dense", "name": "layers_0", "features": 4, "use_bias": True,
                                           "dtype": None, "param_dtype": "float32", "precision": None})
        self.assertEqual(m["modules"][1], {"type": "fn", "name": "relu_0", "fn": "nn.relu"})
        self.assertEqual(m["modules"][3], {"type": "fn", "name": "gelu_0", "fn": "nn.gelu", "approximate": False})
        self.assertFalse(m["modules"][2]["use_bias"])
        self.assertNotIn("params/layers_2/bias", t)
        self.assertEqual(t["params/layers_0/kernel"].shape, (6, 4))  # Flax's [in, out]
        # Recompute from the stream's own tensors.
        h = np.maximum(t["input.0"] @ t["params/layers_0/kernel"] + t["params/layers_0/bias"], 0)
        h = jax.nn.gelu(h @ t["params/layers_2/kernel"], approximate=False)
        y = np.asarray(h) @ t["params/layers_4/kernel"] + t["params/layers_4/bias"]
        np.testing.assert_allclose(y, t["output.0"], rtol=1e-5, atol=1e-5)
        self.assertEqual(set(doc["taps"]), {"layers_0", "relu_0", "layers_2", "gelu_0", "layers_4"})
        np.testing.assert_allclose(t["tap.layers_4"], t["output.0"], rtol=1e-5, atol=1e-5)

    def test_recurrent_modules_in_a_sequential(self):
        model = nn.Sequential([nn.RNN(nn.LSTMCell(4)), nn.Bidirectional(nn.RNN(nn.GRUCell(3)), nn.RNN(nn.GRUCell(3))),
                               nn.Dense(2)])
        x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 3))
        doc, t = read_frames(capture_flax.capture(model, model.init(jax.random.PRNGKey(1), x), (x,), "rnn").to_bytes())[0]
        mods = doc["model"]["modules"]
        self.assertEqual([m["name"] for m in mods], ["layers_0", "layers_1", "layers_2"])
        self.assertEqual(mods[0], {"type": "RNN", "name": "layers_0",
                                   "cell": {"type": "LSTMCell", "name": "layers_0/cell", "features": 4, "gate_fn": "nn.sigmoid",
                                            "activation_fn": "nn.tanh", "carry_init": "zeros", "dtype": None,
                                            "param_dtype": "float32"},
                                   "time_major": False, "return_carry": False, "reverse": False, "keep_order": False, "unroll": 1})
        self.assertEqual(mods[1]["forward_rnn"]["cell"]["name"], "layers_1/forward_rnn/cell")  # adopted cells
        self.assertEqual(mods[1]["merge_fn"], "concatenate")
        self.assertEqual(t["params/layers_0/cell/ii/kernel"].shape, (3, 4))
        self.assertNotIn("params/layers_0/cell/ii/bias", t)  # LSTMCell's input denses have no bias
        self.assertIn("params/layers_1/backward_rnn/cell/hn/bias", t)
        self.assertNotIn("params/layers_1/backward_rnn/cell/hr/bias", t)
        self.assertEqual(set(doc["taps"]), {"layers_0", "layers_1", "layers_1/forward_rnn", "layers_1/backward_rnn", "layers_2"})
        self.assertEqual(t["tap.layers_1/backward_rnn"].shape, (2, 5, 3))
        bad = nn.Sequential([nn.RNN(nn.LSTMCell(4), return_carry=True)])
        with self.assertRaisesRegex(ValueError, r"model\.layers\[0\]: RNN with return_carry"):
            capture_flax.capture(bad, bad.init(jax.random.PRNGKey(1), x), (x,), "bad")

    def test_recurrent_fixtures_cells_named_by_their_compact_parent(self):
        fx = {"layer": "lstm", "samples": 3, "seed": 1}
        doc, t = read_frames(capture_flax.build({**fx, "id": "states", "spec": {"input": 4, "hidden": 5, "seq": 6,
                                                                             "initial_state": True, "output": "states"}}).to_bytes())[0]
        m = doc["model"]
        self.assertEqual((m["inputs"], m["outputs"]), (["x", "c0_0", "h0_0"], ["RNN_0", "RNN_0:carry/h", "RNN_0:carry/c"]))
        self.assertEqual(m["modules"][0]["inputs"], ["x", "c0_0", "h0_0"])
        self.assertEqual(m["modules"][0]["cell"]["name"], "LSTMCell_0")  # made inline in a compact method
        self.assertIn("params/LSTMCell_0/hi/bias", t)
        self.assertTrue(np.all(t["params/LSTMCell_0/hi/bias"] != 0))
        self.assertEqual(t["output.1"].shape, (3, 5))
        doc, t = read_frames(capture_flax.build({**fx, "layer": "gru", "id": "bi", "spec": {
            "input": 4, "hidden": 5, "seq": 6, "layers": 2, "bidirectional": True}}).to_bytes())[0]
        mods = doc["model"]["modules"]
        self.assertEqual([e["name"] for e in mods], ["Bidirectional_0", "Bidirectional_1"])
        self.assertEqual(mods[1]["backward_rnn"]["cell"]["name"], "GRUCell_3")
        self.assertIn("Bidirectional_1/backward_rnn", doc["taps"])
        self.assertEqual(t["output.0"].shape, (3, 6, 10))
        doc, t = read_frames(capture_flax.build({**fx, "id": "tc", "samples": 4, "spec": {
            "arch": "text_classifier", "vocab": 20, "embed": 4, "hidden": 5, "seq": 6, "classes": 3}}).to_bytes())[0]
        self.assertEqual([e["type"] for e in doc["model"]["modules"]], ["Embed", "RNN", "Dense"])
        self.assertEqual(doc["model"]["modules"][1]["cell"]["type"], "OptimizedLSTMCell")
        self.assertEqual(doc["model"]["modules"][2]["inputs"], ["RNN_0:carry/h"])
        self.assertEqual(t["output.0"].shape, (4, 3))

    def test_nested_sequential_paths(self):
        model = nn.Sequential([nn.Sequential([nn.Dense(3), nn.tanh]), nn.Dense(2)])
        x = jnp.ones((2, 4))
        doc, t = read_frames(capture_flax.capture(model, model.init(jax.random.PRNGKey(0), x), (x,), "nest").to_bytes())[0]
        names = [e["name"] for e in doc["model"]["modules"]]
        self.assertEqual(names, ["layers_0/layers_0", "layers_0/tanh_0", "layers_1"])
        self.assertIn("params/layers_0/layers_0/kernel", t)

    def test_unsupported_layers_name_their_place(self):
        x = jnp.ones((2, 4))
        for layers, msg in (([nn.Dense(3), lambda v: v * 2], r"model\.layers\[1\]: unsupported callable"),
                            ([nn.Dense(3), nn.GroupNorm(num_groups=1)], r"model\.layers\[1\]: module type GroupNorm"),
                            ([nn.Dense(3), nn.BatchNorm()], r"model\.layers\[1\]: BatchNorm needs use_running_average=True"),
                            ([nn.Dense(3), functools.partial(nn.leaky_relu, slope=0.2)], "no attribute 'slope'")):
            model = nn.Sequential(layers)
            with self.assertRaisesRegex(ValueError, msg):
                capture_flax.capture(model, model.init(jax.random.PRNGKey(0), x), (x,), "bad")

    def test_conv_pool_norm_layers_in_flax_layouts(self):
        model = nn.Sequential([nn.Conv(4, (2, 3), padding="SAME"), nn.BatchNorm(use_running_average=True), nn.relu,
                               functools.partial(nn.max_pool, window_shape=(2, 2), strides=(2, 2), padding="SAME"),
                               functools.partial(jnp.mean, axis=(1, 2)), nn.LayerNorm(), nn.Dense(2)])
        x = jax.random.normal(jax.random.PRNGKey(0), (3, 5, 4, 2))
        variables = model.init(jax.random.PRNGKey(1), x)
        doc, t = read_frames(capture_flax.capture(model, variables, (x,), "conv").to_bytes())[0]
        m = doc["model"]["modules"]
        self.assertEqual([e["name"] for e in m], ["layers_0", "layers_1", "relu_0", "max_pool_0", "mean_0", "layers_5", "layers_6"])
        self.assertEqual(m[0], {"type": "Conv", "name": "layers_0", "features": 4, "kernel_size": [2, 3], "strides": [1, 1],
                                "padding": "SAME", "input_dilation": [1, 1], "kernel_dilation": [1, 1],
                                "feature_group_count": 1, "use_bias": True, "dtype": None, "param_dtype": "float32",
                                "precision": None})
        self.assertEqual((m[1]["type"], m[1]["epsilon"], m[1]["momentum"]), ("BatchNorm", 1e-5, 0.99))
        self.assertEqual(m[3], {"type": "fn", "name": "max_pool_0", "fn": "nn.max_pool", "window_shape": [2, 2],
                                "strides": [2, 2], "padding": "SAME"})
        self.assertEqual(m[4], {"type": "mean", "name": "mean_0", "axis": [1, 2], "keepdims": False})
        self.assertEqual(m[5]["epsilon"], 1e-6)
        self.assertEqual(t["params/layers_0/kernel"].shape, (2, 3, 2, 4))  # Flax's [k..., in, out]
        self.assertEqual(t["batch_stats/layers_1/var"].shape, (4,))
        self.assertEqual(t["tap.layers_0"].shape, (3, 5, 4, 4))  # channels-last, as Flax computes it

    def test_conv_fixture_and_batch_stats_move(self):
        fx = {"id": "bn", "layer": "batchnorm", "samples": 4, "seed": 42, "spec": {"dims": 2, "in_channels": 2, "size": 6, "filters": 3}}
        doc, t = read_frames(capture_flax.build(fx).to_bytes())[0]
        self.assertEqual([e["type"] for e in doc["model"]["modules"]], ["Conv", "BatchNorm", "fn"])
        self.assertTrue(np.all(t["batch_stats/layers_1/mean"] != 0))
        self.assertEqual(t["input.0"].shape, (4, 6, 6, 2))
        emb = {"id": "e", "layer": "embedding", "samples": 3, "seed": 42, "spec": {"vocab": 10, "dim": 4, "seq": 5}}
        doc, t = read_frames(capture_flax.build(emb).to_bytes())[0]
        self.assertEqual(t["input.0"].dtype, np.int32)
        with self.assertRaisesRegex(ValueError, "need the jax-js capture"):
            capture_flax.build({**fx, "layer": "model", "spec": {"arch": "small_cnn"}})

    def test_fixture_is_trained_and_deterministic(self):
        fx = {"id": "mlp", "layer": "dense", "samples": 10, "seed": 42,
              "spec": {"input": 8, "units": [6, 3], "activation": "tanh"}}
        a = capture_flax.build(fx).to_bytes()
        self.assertEqual(a, capture_flax.build(fx).to_bytes())
        doc, t = read_frames(a)[0]
        self.assertTrue(np.any(t["params/layers_0/bias"] != 0))
        self.assertEqual(t["input.0"].shape, (10, 8))
        with self.assertRaises(pbstream.NotApplicable):
            capture_flax.build({**fx, "spec": {"input": 8, "units": [4, 2], "activation": "mish"}})
        with self.assertRaisesRegex(ValueError, "spec.units"):
            capture_flax.build({**fx, "spec": {"input": 8, "units": []}})

    def test_serve_two_fixtures_in_order(self):
        fx = {"layer": "dense", "samples": 7, "seed": 1, "spec": {"input": 4, "units": [3, 2]}}
        r = serve({"format": "planetbridge.capture-request", "version": 1,
                   "fixtures": [{**fx, "id": "b_second"}, {**fx, "id": "a_first"}]})
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        frames = read_frames(r.stdout)
        self.assertEqual(frames[0][0]["event"], "hello")
        self.assertEqual(frames[0][0]["engine_version"], jax.__version__)
        self.assertEqual([f[0]["model_id"] for f in frames[1:]], ["b_second", "a_first"])

    def test_not_applicable_is_reported_not_failed(self):
        mish = {"id": "mish", "layer": "dense", "samples": 3, "seed": 1,
                "spec": {"input": 4, "units": [3, 2], "activation": "mish"}}
        r = serve({"format": "planetbridge.capture-request", "version": 1, "fixtures": [mish]})
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        frames = read_frames(r.stdout)
        self.assertEqual([f[0]["event"] for f in frames], ["hello", "not_applicable"])
        self.assertEqual(frames[1][0]["reason"], 'flax.linen has no "mish" activation')
        with tempfile.TemporaryDirectory() as d:
            r = cli("--suite", write_suite(d), "--out", os.path.join(d, "out"))
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            self.assertEqual(os.listdir(os.path.join(d, "out")), ["a_relu.pbstream"])
            self.assertIn('b_mish: not applicable: flax.linen has no "mish" activation', r.stderr.decode())


@unittest.skipIf(HAVE_FLAX, "jax and flax are installed")
class WithoutFlaxTest(unittest.TestCase):
    def test_serve_reports_unavailable(self):
        r = serve({"format": "planetbridge.capture-request", "version": 1, "fixtures": [{"id": "x"}]})
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        frames = read_frames(r.stdout)
        self.assertEqual(len(frames), 1)
        self.assertEqual(frames[0][0]["event"], "unavailable")
        self.assertRegex(frames[0][0]["reason"], "No module named '(jax|flax)'")

    def test_suite_names_the_missing_engine(self):
        with tempfile.TemporaryDirectory() as d:
            suite, out = write_suite(d), os.path.join(d, "out")
            for dest in (("--out", out), ("--stdout",), ("--post", NOWHERE)):
                with self.subTest(dest=dest[0]):
                    r = cli("--suite", suite, *dest)
                    self.assertEqual(r.returncode, 2)
                    self.assertEqual(r.stdout, b"")
                    self.assertRegex(r.stderr.decode(), r"\Acapture: No module named '(jax|flax)'\n\Z")
            self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main()
