"""Tests for pbstream and the pytorch capture.

Run: /usr/bin/python3 -m unittest discover -s plugins/pytorch/capture -p 'test_*.py'
"""

import io
import json
import os
import struct
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.normpath(os.path.join(HERE, "..", "..", "..", "capture", "python"))]

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

import fixtures  # noqa: E402
import pb_torch  # noqa: E402
import pbstream  # noqa: E402
from pbstream_testing import read_frames, read_one, run_serve  # noqa: E402

CAPTURE = os.path.join(HERE, "capture.py")


class FrameTest(unittest.TestCase):
    def test_layout_and_roundtrip(self):
        tensors = {
            "b": np.arange(3, dtype=np.float32),
            "a": np.arange(6, dtype=">f8").reshape(2, 3),  # big-endian input is written LE
            "empty": np.zeros((0, 4), np.float32),
            "s": np.array(7, np.int64),
            "i": np.arange(20, dtype=np.int32).reshape(4, 5)[:, ::2],  # non-contiguous
        }
        doc = {"format": "x", "tensors": {}}
        buf = pbstream.encode_frame(doc, tensors)
        self.assertEqual(doc, {"format": "x", "tensors": {}}, "encode_frame must not modify its input")
        self.assertEqual(buf[:8], b"PBSTRM\x00\x01")
        jlen, dlen = struct.unpack("<QQ", buf[8:24])
        start = (24 + jlen + 63) // 64 * 64
        self.assertEqual(len(buf), start + dlen)
        self.assertEqual(dlen % 64, 0)
        out, got = read_one(buf)
        self.assertEqual(list(out["tensors"]), sorted(tensors))
        self.assertEqual([out["tensors"][n]["offset"] for n in sorted(tensors)], [0, 64, 128, 128, 192])
        self.assertEqual(dlen, 256)
        self.assertEqual(out["tensors"]["s"], {"dtype": "i64", "shape": [], "offset": 192, "nbytes": 8})
        for name, arr in tensors.items():
            np.testing.assert_array_equal(got[name], arr)
            self.assertEqual(got[name].shape, arr.shape)

    def test_bad_dtype_names_tensor(self):
        with self.assertRaisesRegex(ValueError, '"z".*complex64'):
            pbstream.encode_frame({}, {"z": np.zeros(3, np.complex64)})

    def test_event_frame_has_no_data(self):
        buf = pbstream.event_frame("error", model_id="m", message="boom")
        self.assertEqual(struct.unpack("<Q", buf[16:24])[0], 0)
        doc, _ = read_one(buf)
        self.assertEqual(doc, {"format": "planetbridge.capture", "version": 1, "event": "error",
                               "model_id": "m", "message": "boom"})

    def test_read_request_errors(self):
        def req(obj):
            return pbstream.read_request(io.BytesIO(json.dumps(obj).encode()))
        ok = {"format": "planetbridge.capture-request", "version": 1, "fixtures": [{"id": "a"}]}
        self.assertEqual(req(ok), [{"id": "a"}])
        for bad, msg in (({**ok, "version": 2}, "version"), ({**ok, "format": "x"}, "format"),
                         ({**ok, "fixtures": {}}, "fixtures"), ({**ok, "fixtures": [{"id": 3}]}, r"fixtures\[0\]\.id")):
            with self.assertRaisesRegex(pbstream.RequestError, msg):
                req(bad)
        with self.assertRaisesRegex(pbstream.RequestError, "invalid JSON"):
            pbstream.read_request(io.BytesIO(b"{"))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 6)
        self.fc2 = nn.Linear(6, 6)
        self.scale = nn.Parameter(torch.full((6,), 0.5))

    def forward(self, x):
        h = F.relu(self.fc1(x))
        return self.fc2(h) + x, h[:, 1:3] * self.scale[1:3]


class CaptureTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)

    def node(self, doc, name):
        return next(n for n in doc["model"]["graph"] if n["name"] == name)

    def test_residual_module(self):
        m = Residual()
        x = torch.randn(5, 6)
        doc, tensors = read_one(pb_torch.capture(m, (x,), "res").to_bytes())
        graph = doc["model"]["graph"]
        self.assertEqual(graph[0], {"name": "x", "op": "placeholder", "target": "x", "args": [], "kwargs": {}})
        add = next(n for n in graph if n["op"] == "call_function" and n["target"] == "_operator.add")
        self.assertEqual(add["args"], [{"node": "fc2"}, {"node": "x"}])
        relu = next(n for n in graph if n["target"] == "torch.nn.functional.relu")
        self.assertEqual(relu["args"], [{"node": "fc1"}])
        self.assertEqual(relu["kwargs"], {"inplace": False})
        getitem = next(n for n in graph if n["target"] == "_operator.getitem" and n["args"][0] == {"node": "relu"})
        self.assertEqual(getitem["args"][1], [{"slice": [None, None, None]}, {"slice": [1, 3, None]}])
        self.assertEqual(graph[-1]["args"], [[{"node": "add"}, {"node": "mul"}]])
        self.assertEqual(set(doc["model"]["modules"]), {"fc1", "fc2"})
        fc1 = doc["model"]["modules"]["fc1"]
        self.assertEqual(fc1["params"], {"weight": "fc1.weight", "bias": "fc1.bias"})
        self.assertEqual(fc1["attrs"], {"in_features": 6, "out_features": 6})
        self.assertIs(fc1["training"], False)
        # get_attr tensor under its target name
        self.assertTrue(any(n["op"] == "get_attr" and n["target"] == "scale" for n in graph))
        np.testing.assert_array_equal(tensors["scale"], np.full(6, 0.5, np.float32))
        self.assertEqual((doc["inputs"], doc["expected"]), (["input.0"], ["output.0", "output.1"]))
        np.testing.assert_array_equal(tensors["input.0"], x.numpy())
        y0, y1 = m(x)
        np.testing.assert_allclose(tensors["output.0"], y0.detach().numpy())
        np.testing.assert_allclose(tensors["output.1"], y1.detach().numpy())
        np.testing.assert_array_equal(tensors["fc2.weight"], m.fc2.weight.detach().numpy())
        self.assertNotIn("taps", doc)
        self.assertEqual((doc["planet"], doc["engine"]), ("pytorch", "torch"))
        self.assertNotIn("+", doc["planet_version"])

    def test_linear_without_bias(self):
        m = nn.Sequential(nn.Linear(4, 3, bias=False))
        doc, tensors = read_one(pb_torch.capture(m, (torch.randn(2, 4),), "nobias").to_bytes())
        self.assertEqual(doc["model"]["modules"]["0"]["params"], {"weight": "0.weight"})
        self.assertNotIn("0.bias", tensors)
        self.assertEqual(doc["tensors"]["0.weight"]["shape"], [3, 4])

    def test_taps(self):
        m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(inplace=True), nn.Linear(8, 2))
        x = torch.randn(3, 4)
        doc, tensors = read_one(pb_torch.capture(m, (x,), "tapped", taps=True).to_bytes())
        self.assertEqual(doc["taps"], {"_0": "tap._0", "_1": "tap._1", "_2": "tap._2"})
        with torch.no_grad():
            h = m[0](x)
        # The Linear's tap is its output before the in-place ReLU ran.
        np.testing.assert_allclose(tensors["tap._0"], h.numpy(), rtol=1e-6)
        self.assertLess(tensors["tap._0"].min(), 0)
        np.testing.assert_allclose(tensors["tap._2"], tensors["output.0"], rtol=1e-6)

    def test_float64_and_int_inputs(self):
        class Pick(nn.Module):
            def forward(self, x, idx):
                return x[idx].relu()
        doc, tensors = read_one(pb_torch.capture(
            Pick(), (torch.randn(4, 2, dtype=torch.float64), torch.tensor([2, 0])), "pick").to_bytes())
        self.assertEqual([doc["tensors"][n]["dtype"] for n in ("input.0", "input.1", "output.0")], ["f64", "i64", "f64"])
        self.assertEqual(self.node(doc, "relu")["op"], "call_method")


class FixtureTest(unittest.TestCase):
    FX = {"id": "mlp", "layer": "dense", "samples": 10, "seed": 42,
          "spec": {"input": 8, "units": [6, 3], "activation": "tanh"}}

    def test_dense_fixture_is_self_consistent(self):
        doc, t = read_one(fixtures.build(self.FX).to_bytes())
        types = [doc["model"]["modules"][k]["type"] for k in ("0", "1", "2")]
        self.assertEqual(types, ["Linear", "Tanh", "Linear"])
        self.assertEqual(t["input.0"].shape, (10, 8))
        self.assertTrue(np.any(t["0.bias"] != 0))
        # Recompute from the stream's own weights, as the host would.
        y = np.tanh(t["input.0"] @ t["0.weight"].T + t["0.bias"]) @ t["2.weight"].T + t["2.bias"]
        np.testing.assert_allclose(y, t["output.0"], rtol=1e-5, atol=1e-5)
        self.assertEqual(set(doc["taps"]), {"_0", "_1", "_2"})

    def test_deterministic(self):
        self.assertEqual(fixtures.build(self.FX).to_bytes(), fixtures.build(self.FX).to_bytes())

    def test_spec_errors_name_the_field(self):
        for spec, field in (({"input": 8, "units": [4, 2], "activation": "swish2"}, "spec.activation"),
                            ({"input": 8, "units": []}, "spec.units"),
                            ({"input": 8, "units": [2], "bias": "no"}, "spec.bias"),
                            ({"input": 8, "units": [2], "dropout": 0.1}, "spec.dropout")):
            with self.assertRaisesRegex(ValueError, field):
                fixtures.build({**self.FX, "spec": spec})

    def test_single_layer_and_no_bias(self):
        m = fixtures.dense_model({"input": 5, "units": [3], "bias": False})
        self.assertEqual(len(m), 1)
        self.assertIsNone(m[0].bias)


class Unpacking(nn.Module):
    """What torch 1.13's Proxy.__iter__ cannot trace on Python 3.11: unpacking a leaf module's
    tuple output (nested), a size and a chunk."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 6, batch_first=True)

    def forward(self, x):
        y, (h, c) = self.lstm(x)
        n, t, f = y.size()
        a, b = y.chunk(2, dim=-1)
        return (a * b).reshape(n, t * f // 2), h + c


class RecurrentCaptureTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)

    def test_unpacking_traces_and_the_fix_is_scoped_to_tracing(self):
        original = pb_torch.Proxy.__dict__["__iter__"]
        seen = []

        class Spy(Unpacking):
            def forward(self, x):
                seen.append(pb_torch.Proxy.__dict__["__iter__"])
                return super().forward(x)

        m = Spy()
        x = torch.randn(3, 5, 4)
        doc, tensors = read_one(pb_torch.capture(m, (x,), "unpack").to_bytes())
        self.assertIs(pb_torch.Proxy.__dict__["__iter__"], original, "Proxy.__iter__ is restored after tracing")
        self.assertEqual(pb_torch._proxy_iter_needs_fix(), sys.version_info >= (3, 11))
        self.assertIs(seen[0], pb_torch._proxy_iter if pb_torch._proxy_iter_needs_fix() else original)
        getitems = [n["args"] for n in doc["model"]["graph"] if n["target"] == "_operator.getitem"]
        self.assertEqual(getitems[:4], [[{"node": "lstm"}, 0], [{"node": "lstm"}, 1], [{"node": "getitem_1"}, 0],
                                        [{"node": "getitem_1"}, 1]])
        self.assertIn([{"node": "size"}, 2], getitems)
        self.assertIn([{"node": "chunk"}, 1], getitems)
        y0, y1 = m(x)
        np.testing.assert_allclose(tensors["output.0"], y0.detach().numpy(), rtol=1e-6)
        np.testing.assert_allclose(tensors["output.1"], y1.detach().numpy(), rtol=1e-6)

    def test_tracing_is_unchanged_where_the_bug_does_not_bite(self):
        # No unpacking: the same graph as torch.fx's own tracer.
        m = Residual()
        ours = pb_torch._LeafTracer(()).trace(m)
        self.assertEqual(str(ours), str(torch.fx.Tracer().trace(m)))
        # Iterating a proxy other than by unpacking is still fx's error.
        class Loop(nn.Module):
            def forward(self, x):
                return [v for v in x]
        with self.assertRaisesRegex(torch.fx.proxy.TraceError, "Proxy object cannot be iterated"):
            pb_torch._LeafTracer(()).trace(Loop())
        self.assertIs(pb_torch.Proxy.__dict__["__iter__"], torch.fx.proxy.Proxy.__dict__["__iter__"])

    def test_a_recurrent_root_is_one_call_module_node(self):
        gru = nn.GRU(3, 4, num_layers=2, batch_first=True)
        x, h0 = torch.randn(2, 5, 3), torch.randn(2, 2, 4)
        doc, tensors = read_one(pb_torch.capture(gru, (x, h0), "gru").to_bytes())
        graph = doc["model"]["graph"]
        self.assertEqual([(n["name"], n["op"]) for n in graph],
                         [("x", "placeholder"), ("h0", "placeholder"), ("gru", "call_module"), ("output", "output")])
        self.assertEqual(graph[2]["args"], [{"node": "x"}, {"node": "h0"}])
        self.assertEqual(graph[3]["args"], [{"node": "gru"}])  # the tuple (y, h_n) itself
        self.assertEqual(doc["model"]["modules"]["gru"]["type"], "GRU")
        self.assertEqual(doc["expected"], ["output.0", "output.1"])
        y, h = gru(x, h0)
        np.testing.assert_array_equal(tensors["output.1"], h.detach().numpy())
        np.testing.assert_array_equal(tensors["gru.weight_hh_l1"], gru.weight_hh_l1.detach().numpy())

        lstm = nn.LSTM(3, 4)
        x, h0, c0 = torch.randn(5, 2, 3), torch.randn(1, 2, 4), torch.randn(1, 2, 4)
        for inputs in ((x, (h0, c0)), (x, h0, c0)):
            doc, tensors = read_one(pb_torch.capture(lstm, inputs, "lstm").to_bytes())
            self.assertEqual(doc["inputs"], ["input.0", "input.1", "input.2"])
            self.assertEqual(doc["model"]["graph"][3]["args"], [{"node": "x"}, [{"node": "h0"}, {"node": "c0"}]])
            np.testing.assert_array_equal(tensors["output.2"], lstm(x, (h0, c0))[1][1].detach().numpy())
        with self.assertRaisesRegex(ValueError, r"a root LSTM takes the input and \(h0, c0\), got 2 example tensors"):
            pb_torch.capture(lstm, (x, h0), "lstm")

    def test_recurrent_layers_are_tapped_per_layer(self):
        class Stack(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)

            def forward(self, x, h0, c0):
                y, (h, c) = self.lstm(x, (h0, c0))
                return y[:, -1], h, c

        m = Stack()
        x, h0, c0 = torch.randn(2, 5, 3), torch.randn(4, 2, 4), torch.randn(4, 2, 4)
        doc, tensors = read_one(pb_torch.capture(m, (x, h0, c0), "stack", taps=True).to_bytes())
        self.assertEqual(sorted(doc["taps"]), ["getitem_4", "lstm/l0", "lstm/l0:c_n", "lstm/l0:h_n", "lstm/l1", "lstm/l1:c_n",
                                               "lstm/l1:h_n"])  # the getitems selecting from tuples are not tapped
        self.assertEqual(tensors["tap.lstm/l0"].shape, (2, 5, 8))
        self.assertEqual(tensors["tap.lstm/l0:h_n"].shape, (2, 2, 4))
        with torch.no_grad():
            y, (h, c) = m.lstm(x, (h0, c0))
        # The last layer's own run is the module's sequence; the layers' states are its h_n, c_n.
        np.testing.assert_allclose(tensors["tap.lstm/l1"], y.numpy(), atol=1e-6)
        np.testing.assert_allclose(np.concatenate([tensors["tap.lstm/l0:h_n"], tensors["tap.lstm/l1:h_n"]]), h.numpy(), atol=1e-6)
        np.testing.assert_allclose(np.concatenate([tensors["tap.lstm/l0:c_n"], tensors["tap.lstm/l1:c_n"]]), c.numpy(), atol=1e-6)
        # Layer 0's sequence is what layer 1 reads: running layer 1 alone on it gives y.
        layer1 = nn.LSTM(8, 4, bidirectional=True, batch_first=True)
        with torch.no_grad():
            for suffix in ("", "_reverse"):
                for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(layer1, f"{p}_l0{suffix}").copy_(getattr(m.lstm, f"{p}_l1{suffix}"))
            y1, _ = layer1(torch.from_numpy(tensors["tap.lstm/l0"].copy()), (h0[2:], c0[2:]))
        np.testing.assert_allclose(y1.numpy(), y.numpy(), atol=1e-6)

    def test_packed_sequences_are_leaf_functions(self):
        class Packed(nn.Module):
            def __init__(self):
                super().__init__()
                self.gru = nn.GRU(3, 4, batch_first=True)

            def forward(self, x, lengths):
                # A global of this module's code (imported by name): autowrapped.
                y, h = self.gru(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
                out, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True)  # an attribute: patched while tracing
                return out, h

        original = nn.utils.rnn.pad_packed_sequence
        registered = len(torch.fx._symbolic_trace._wrapped_fns_to_patch)
        doc, _ = read_one(pb_torch.capture(Packed(), (torch.randn(2, 5, 3), torch.tensor([5, 3])), "packed").to_bytes())
        # The autowrapped function left nothing registered that would break later traces.
        self.assertEqual(len(torch.fx._symbolic_trace._wrapped_fns_to_patch), registered)
        pb_torch.capture(Residual(), (torch.randn(2, 6),), "after")
        targets = [n["target"] for n in doc["model"]["graph"] if n["op"] == "call_function"]
        self.assertIn("torch.nn.utils.rnn.pack_padded_sequence", targets)
        self.assertIn("torch.nn.utils.rnn.pad_packed_sequence", targets)
        self.assertIs(nn.utils.rnn.pad_packed_sequence, original)


class Positions(nn.Module):
    """torch.arange of a traced size and a buffer sliced by one, as nanoGPT writes them."""

    def __init__(self):
        super().__init__()
        self.wpe = nn.Embedding(8, 3)
        self.register_buffer("bias", torch.tril(torch.ones(8, 8)))

    def forward(self, idx):
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        return self.wpe(pos) + self.bias[:t, :3].sum()


class ShapeCaptureTest(unittest.TestCase):
    def test_arange_of_a_traced_size_and_a_sliced_buffer_trace(self):
        original = torch.arange
        doc, tensors = read_one(pb_torch.capture(Positions(), (torch.zeros(2, 5, dtype=torch.long),), "positions", taps=True).to_bytes())
        self.assertIs(torch.arange, original)
        nodes = {n["name"]: n for n in doc["model"]["graph"]}
        self.assertEqual(nodes["arange"]["target"], "torch.arange")
        self.assertEqual(nodes["arange"]["args"], [0, {"node": "getitem_1"}])
        self.assertEqual(nodes["arange"]["kwargs"]["dtype"], {"repr": "torch.int64"})
        # The buffer is a get_attr node where it is read, then indexed with the traced size.
        self.assertEqual(nodes["bias"]["op"], "get_attr")
        self.assertIn("bias", tensors)
        # The decoder knows an arange's values: nothing to tap.
        self.assertNotIn("arange", doc["taps"])
        self.assertIn("wpe", doc["taps"])


class RecurrentFixtureTest(unittest.TestCase):
    SUITE = os.path.normpath(os.path.join(HERE, "..", "..", "..", "config", "suites", "bedrock.yaml"))

    def fixtures(self):
        return [f for f in pbstream.suite_fixtures(self.SUITE, "pytorch") if f["layer"] in ("rnn", "lstm", "gru")]

    def test_every_recurrent_fixture_builds_with_both_biases_non_zero(self):
        fxs = self.fixtures()
        self.assertEqual(len(fxs), 17)
        for fx in fxs:
            with self.subTest(fx["id"]):
                if fx["id"] in ("lstm_8_16_12_bi_sum", "gru_8_16_12_reset_before"):
                    with self.assertRaises(pbstream.NotApplicable):
                        fixtures.build(fx)
                    continue
                model, inputs = fixtures.model_and_input(fx)
                rnns = [m for m in model.modules() if isinstance(m, nn.RNNBase)]
                self.assertEqual(len(rnns), 1)
                rnn = rnns[0]
                self.assertEqual(type(rnn), {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[fx["layer"]])  # stock
                for name, p in rnn.named_parameters():
                    if name.startswith("bias"):
                        self.assertTrue(torch.all(p != 0), name)
                self.assertEqual(inputs[0].shape[:2], (fx["samples"], fx["spec"]["seq"]))

    def test_every_layer_changes_the_output(self):
        for fx in self.fixtures():
            spec = fx["spec"]
            if spec.get("layers", 1) < 2:
                continue
            with self.subTest(fx["id"]):
                model, inputs = fixtures.model_and_input(fx)
                with torch.no_grad():
                    before = model(*inputs)
                    for suffix in ("", "_reverse") if spec.get("bidirectional") else ("",):
                        getattr(model.rnn, f"weight_hh_l0{suffix}").mul_(1.5)
                    after = model(*inputs)
                self.assertGreater((before - after).abs().max().item(), 1e-3)

    def test_spec_modes(self):
        fx = {"id": "s", "layer": "lstm", "samples": 3, "seed": 1,
              "spec": {"input": 2, "hidden": 3, "seq": 4, "layers": 2, "initial_state": True, "output": "states"}}
        model, inputs = fixtures.model_and_input(fx)
        self.assertEqual([tuple(t.shape) for t in inputs], [(3, 4, 2), (2, 3, 3), (2, 3, 3)])
        self.assertEqual([tuple(t.shape) for t in model(*inputs)], [(3, 4, 3), (2, 3, 3), (2, 3, 3)])
        fx = {**fx, "layer": "gru", "spec": {"input": 2, "hidden": 3, "seq": 4, "output": "last", "head": 5, "bidirectional": True}}
        model, inputs = fixtures.model_and_input(fx)
        self.assertEqual(tuple(model(*inputs).shape), (3, 5))
        for spec, field in (({"input": 2, "hidden": 3, "seq": 4, "activation": "relu"}, "spec.activation"),
                            ({"input": 2, "hidden": 3, "seq": 4, "merge": "sum"}, "spec.merge"),
                            ({"input": 2, "hidden": 3, "seq": 4, "head": 2}, "spec.head"),
                            ({"input": 2, "hidden": 3, "seq": 4, "output": "all"}, "spec.output"),
                            ({"arch": "text_classifier"}, "spec.arch")):
            with self.subTest(field), self.assertRaisesRegex(ValueError, field):
                fixtures.model_and_input({**fx, "layer": "gru", "spec": spec})


class AttentionCaptureTest(unittest.TestCase):
    def test_roots_are_one_call_module_node_with_their_submodules(self):
        cross = nn.MultiheadAttention(8, 2, kdim=6, vdim=6).eval()
        q, kv = torch.randn(4, 2, 8), torch.randn(5, 2, 6)
        for attn, inputs, args in ((nn.MultiheadAttention(8, 2).eval(), (q,), [{"node": "x"}] * 3),
                                   (cross, (q, kv), [{"node": "query"}, {"node": "memory"}, {"node": "memory"}]),
                                   (cross, (q, kv, kv), [{"node": "query"}, {"node": "key"}, {"node": "value"}])):
            doc, tensors = read_one(pb_torch.capture(attn, inputs, "attn").to_bytes())
            graph = doc["model"]["graph"]
            calls = [n for n in graph if n["op"] == "call_module"]
            self.assertEqual(len(calls), 1)
            self.assertEqual((calls[0]["target"], calls[0]["args"]), ("attn", args))
            self.assertEqual(graph[-1]["args"], [{"node": "attn"}])  # the tuple (out, weights) itself
            self.assertEqual(doc["expected"], ["output.0", "output.1"])
            with torch.no_grad():
                out, weights = attn(*(inputs * 3 if len(inputs) == 1 else inputs if len(inputs) == 3 else (q, kv, kv)))
            np.testing.assert_array_equal(tensors["output.1"], weights.numpy())
            # Submodules travel under "children", their tensors under qualified names.
            entry = doc["model"]["modules"]["attn"]
            self.assertEqual(entry["children"]["out_proj"]["params"], {"weight": "attn.out_proj.weight", "bias": "attn.out_proj.bias"})
            np.testing.assert_array_equal(tensors["attn.out_proj.weight"], attn.out_proj.weight.detach().numpy())
        self.assertEqual(set(entry["params"]), {"q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias"})
        with self.assertRaisesRegex(ValueError, r"a root MultiheadAttention takes \(x,\), \(query, key_value\) or \(query, key, value\), "
                                                r"got 4 example tensors"):
            pb_torch.capture(attn, (q, kv, kv, kv), "attn")

        layer = nn.TransformerEncoderLayer(8, 2, 12, activation="gelu", batch_first=True)
        doc, _ = read_one(pb_torch.capture(layer, (torch.randn(2, 3, 8),), "layer").to_bytes())
        entry = doc["model"]["modules"]["layer"]
        self.assertEqual(entry["type"], "TransformerEncoderLayer")
        # The activation function travels by its qualified name (F.gelu is a builtin: fx's name).
        self.assertEqual(entry["attrs"]["activation"], {"function": "torch._C._nn.gelu"})
        self.assertEqual(sorted(entry["children"]), ["dropout", "dropout1", "dropout2", "linear1", "linear2", "norm1", "norm2", "self_attn"])
        self.assertEqual(entry["children"]["self_attn"]["children"]["out_proj"]["params"]["weight"], "layer.self_attn.out_proj.weight")
        encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 12), 2, norm=nn.LayerNorm(8))
        doc, _ = read_one(pb_torch.capture(encoder, (torch.randn(3, 2, 8),), "encoder").to_bytes())
        entry = doc["model"]["modules"]["encoder"]
        self.assertEqual(sorted(entry["children"]), ["layers", "norm"])
        self.assertEqual(entry["children"]["layers"]["children"]["1"]["children"]["linear2"]["params"]["bias"],
                         "encoder.layers.1.linear2.bias")
        with self.assertRaisesRegex(ValueError, r"a root TransformerEncoder takes \(src,\)"):
            pb_torch.capture(encoder, (torch.randn(3, 2, 8), torch.randn(3, 2, 8)), "encoder")

    def test_decoder_roots_take_tgt_and_memory_and_are_tapped_per_layer(self):
        decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 12, batch_first=True), 2).eval()
        tgt, memory = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
        doc, tensors = read_one(pb_torch.capture(decoder, (tgt, memory), "decoder", taps=True).to_bytes())
        calls = [n for n in doc["model"]["graph"] if n["op"] == "call_module"]
        self.assertEqual((calls[0]["target"], calls[0]["args"]), ("decoder", [{"node": "tgt"}, {"node": "memory"}]))
        entry = doc["model"]["modules"]["decoder"]["children"]["layers"]["children"]["0"]
        self.assertEqual(entry["type"], "TransformerDecoderLayer")
        self.assertEqual(entry["attrs"]["activation"], {"function": "torch.nn.functional.relu"})
        with torch.no_grad():
            l0 = decoder.layers[0](tgt, memory)
            np.testing.assert_allclose(tensors["tap.decoder/l0"], l0.numpy(), atol=1e-6)
            np.testing.assert_allclose(tensors["tap.decoder/l1"], decoder(tgt, memory).numpy(), atol=1e-6)
        for step in ("self_attn/out", "multihead_attn/out", "linear2"):
            self.assertIn(f"decoder/l1/{step}", doc["taps"])
        with self.assertRaisesRegex(ValueError, r"a root TransformerDecoder takes \(tgt, memory\), got 1 example tensors"):
            pb_torch.capture(decoder, (tgt,), "decoder")

        transformer = nn.Transformer(8, 2, 1, 1, 12, batch_first=True).eval()
        src = torch.randn(2, 5, 8)
        doc, tensors = read_one(pb_torch.capture(transformer, (src, tgt), "transformer", taps=True).to_bytes())
        self.assertEqual(doc["model"]["modules"]["transformer"]["type"], "Transformer")
        with torch.no_grad():
            np.testing.assert_allclose(tensors["tap.transformer/encoder"], transformer.encoder(src).numpy(), atol=1e-6)
        self.assertIn("transformer/decoder/l0/multihead_attn/out", doc["taps"])
        with self.assertRaisesRegex(ValueError, r"a root Transformer takes \(src, tgt\)"):
            pb_torch.capture(transformer, (src,), "transformer")

    def test_masks_bools_and_minus_infinity(self):
        class Masked(nn.Module):
            def __init__(self):
                super().__init__()
                self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
                self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(4))  # -inf above the diagonal
                self.scale = nn.Parameter(torch.ones(8))

            def forward(self, x, padding):
                out, _ = self.attn(x, x, x, key_padding_mask=padding, attn_mask=self.causal)
                return out * self.scale

        padding = torch.tensor([[False, False, True, True], [False, False, False, False]])
        stream = pb_torch.capture(Masked(), (torch.randn(2, 4, 8), padding), "masked")
        doc, tensors = read_one(stream.to_bytes())
        self.assertEqual(doc["tensors"]["input.1"]["dtype"], "bool")  # one byte each; the host reads i32 0/1
        np.testing.assert_array_equal(tensors["input.1"], padding.numpy())
        self.assertTrue(np.isneginf(tensors["causal"]).any())
        self.assertEqual(doc["tensors"]["causal"]["allow_nonfinite"], True)
        self.assertNotIn("allow_nonfinite", doc["tensors"]["input.0"])
        # Never a parameter: a non-finite weight is still refused by the host.
        m = Masked()
        with torch.no_grad():
            m.scale[0] = float("-inf")
        doc, _ = read_one(pb_torch.capture(m, (torch.randn(2, 4, 8), padding), "masked").to_bytes())
        self.assertNotIn("allow_nonfinite", doc["tensors"]["scale"])

    def test_encoder_layers_are_tapped_per_sub_layer(self):
        encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 12, batch_first=True), 2).eval()
        x = torch.randn(2, 3, 8)
        doc, tensors = read_one(pb_torch.capture(encoder, (x,), "encoder", taps=True).to_bytes())
        self.assertEqual(sorted(doc["taps"]), sorted(["encoder"] + [f"encoder/l{k}{part}" for k in range(2)
                                                                    for part in ("", "/attn/out", "/norm1", "/linear2")]))
        with torch.no_grad():
            y = encoder(x)
            l0 = encoder.layers[0](x)
        np.testing.assert_allclose(tensors["tap.encoder/l1"], y.numpy(), atol=1e-5)  # the fused kernel's own result
        np.testing.assert_allclose(tensors["tap.encoder/l0"], l0.numpy(), atol=1e-5)


class AttentionFixtureTest(unittest.TestCase):
    SUITE = RecurrentFixtureTest.SUITE

    def fixtures(self):
        return [f for f in pbstream.suite_fixtures(self.SUITE, "pytorch") if f["layer"] in ("mha", "transformer")]

    def test_every_fixture_builds_stock_modules_moved_off_their_initialisation(self):
        fxs = self.fixtures()
        self.assertEqual(len(fxs), 22)
        for fx in fxs:
            if "arch" in fx["spec"]:
                continue  # plain torch (test_gqa_rope_fixture)
            with self.subTest(fx["id"]):
                model, inputs = fixtures.model_and_input(fx)
                attns = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
                self.assertTrue(attns)
                for attn in attns:
                    self.assertIs(type(attn), nn.MultiheadAttention)  # stock
                    if attn.in_proj_bias is not None:  # torch initialises both biases to zero
                        self.assertTrue(torch.all(attn.in_proj_bias != 0))
                        self.assertTrue(torch.all(attn.out_proj.bias != 0))
                batch = 0 if fx["spec"].get("batch_first", True) else 1
                self.assertEqual(inputs[0].shape[batch], fx["samples"])
                if fx["spec"].get("mask") in ("padding", "causal_padding"):
                    self.assertEqual(inputs[-1].dtype, torch.bool)
                    self.assertFalse(inputs[-1][0].any())  # one row unpadded

    def test_decoder_fixtures_build_the_stock_decoders(self):
        kinds = {"decoder": (nn.TransformerDecoderLayer, nn.TransformerDecoder), "transformer": (nn.Transformer,)}
        fxs = [f for f in self.fixtures() if f["spec"].get("kind") in kinds]
        self.assertEqual(len(fxs), 4)
        for fx in fxs:
            with self.subTest(fx["id"]):
                model, inputs = fixtures.model_and_input(fx)
                self.assertTrue(any(type(m) in kinds[fx["spec"]["kind"]] for m in model.modules()))
                if fx["spec"].get("mask", "").startswith("causal"):
                    self.assertTrue(torch.equal(model.mask, nn.Transformer.generate_square_subsequent_mask(fx["spec"]["seq"])))
                self.assertEqual(len(inputs), 4 if fx["spec"].get("mask") == "causal_padding" else 2)

    def test_gqa_rope_fixture(self):
        fx = next(f for f in self.fixtures() if f["spec"].get("arch") == "gqa_rope")
        self.assertNotIn("rope", fx["spec"])  # half by default
        model, (x,) = fixtures.model_and_input(fx)
        self.assertEqual((model.heads, model.kv_heads, model.head_dim), (8, 2, 8))
        self.assertEqual(model.k_proj.weight.shape, (16, 64))
        inv_freq = 1.0 / (10000 ** (torch.arange(0, 8, 2).float() / 8))
        torch.testing.assert_close(model.cos_cached[3], torch.cat([3 * inv_freq] * 2).cos())
        # Causal: a later position does not change an earlier one's output.
        with torch.no_grad():
            y = model(x)
            x2 = x.clone()
            x2[:, -1] += 1
            torch.testing.assert_close(model(x2)[:, :-1], y[:, :-1])

    def test_gqa_rope_interleaved_fixture(self):
        fx = next(f for f in self.fixtures() if f["spec"].get("rope") == "interleaved")
        model, (x,) = fixtures.model_and_input(fx)
        self.assertEqual((model.rope, model.heads, model.kv_heads, model.head_dim), ("interleaved", 8, 2, 8))
        inv_freq = 1.0 / (10000 ** (torch.arange(0, 8, 2).float() / 8))
        torch.testing.assert_close(model.cos_cached[3], (3 * inv_freq).repeat_interleave(2).cos())
        # The pairs (q[..., 2i], q[..., 2i + 1]) turn as Meta's LLaMA turns them as complex numbers.
        q = torch.randn(2, 8, 16, 8)
        freqs = torch.outer(torch.arange(16).float(), inv_freq)
        want = torch.view_as_real(torch.view_as_complex(q.reshape(2, 8, 16, 4, 2)) * torch.polar(torch.ones_like(freqs), freqs)).flatten(-2)
        torch.testing.assert_close(q * model.cos_cached + fixtures.rotate_every_two(q) * model.sin_cached, want)
        with torch.no_grad():
            y = model(x)
            x2 = x.clone()
            x2[:, -1] += 1
            torch.testing.assert_close(model(x2)[:, :-1], y[:, :-1])

    def test_complex_rope_buffer_is_refused_naming_its_dtype(self):
        """Meta's LLaMA keeps freqs_cis = torch.polar(ones, freqs) as a complex buffer: writing the
        stream names it (the decoder names torch.polar / torch.view_as_complex where they are traced)."""

        class ComplexRope(nn.Module):
            def __init__(self):
                super().__init__()
                freqs = torch.outer(torch.arange(3).float(), torch.tensor([1.0, 0.01]))
                self.register_buffer("freqs_cis", torch.polar(torch.ones_like(freqs), freqs))

            def forward(self, x):  # [N, 3, 4]
                xc = torch.view_as_complex(x.reshape(x.shape[0], x.shape[1], -1, 2))
                return torch.view_as_real(xc * self.freqs_cis).flatten(2)

        stream = pb_torch.capture(ComplexRope(), (torch.randn(2, 3, 4),), "complex_rope")
        with self.assertRaisesRegex(ValueError, '"freqs_cis": unsupported dtype complex64'):
            stream.to_bytes()

    def test_swiglu_fixtures(self):
        fxs = [f for f in pbstream.suite_fixtures(self.SUITE, "pytorch") if f["layer"] == "swiglu"]
        self.assertEqual(len(fxs), 4)  # two of them on every planet
        for fx in fxs:
            with self.subTest(fx["id"]):
                model, x = fixtures.model_and_input(fx)
                with torch.no_grad():
                    want = model.down_proj(nn.functional.silu(model.gate_proj(x)) * model.up_proj(x))
                torch.testing.assert_close(model(x), want)
                self.assertEqual(model.gate_proj.bias is not None, fx["spec"].get("bias", True))

    def test_every_layer_changes_the_output(self):
        for fx in self.fixtures():
            if fx["spec"].get("layers", 1) < 2:
                continue
            with self.subTest(fx["id"]):
                model, inputs = fixtures.model_and_input(fx)
                stacks = [m for m in model.modules() if isinstance(m, (nn.TransformerEncoder, nn.TransformerDecoder))]
                self.assertTrue(stacks)
                for layer in [layer for stack in stacks for layer in stack.layers]:
                    with torch.no_grad():
                        before = model(*inputs)
                        layer.linear2.weight.mul_(1.5)
                        after = model(*inputs)
                        layer.linear2.weight.div_(1.5)
                    self.assertGreater((before - after).abs().max().item(), 1e-3)

    def test_spec_errors_name_the_field(self):
        fx = {"id": "s", "layer": "mha", "samples": 2, "seed": 1, "spec": {"d_model": 8, "heads": 2, "seq": 3}}
        for layer, spec, field in (("mha", {"d_model": 8, "heads": 2, "seq": 3, "mask": "random"}, "spec.mask"),
                                   ("mha", {"d_model": 8, "heads": 2, "seq": 3, "kv_seq": 4, "mask": "causal"}, "spec.mask"),
                                   ("mha", {"d_model": 8, "heads": 2, "seq": 3, "root": True, "mask": "padding"}, "spec.root"),
                                   ("transformer", {"d_model": 8, "heads": 2, "ff": 4, "seq": 3, "final_norm": True}, "spec.final_norm"),
                                   ("transformer", {"d_model": 8, "heads": 2, "ff": 4, "seq": 3, "activation": "silu"}, "spec.activation"),
                                   ("transformer", {"d_model": 8, "heads": 2, "seq": 3}, "ff"),
                                   ("transformer", {"d_model": 8, "heads": 2, "ff": 4, "seq": 3, "kind": "decoder", "mask": "random"}, "spec.mask"),
                                   ("transformer", {"d_model": 8, "heads": 2, "ff": 4, "seq": 3, "memory_seq": 4}, "spec.memory_seq"),
                                   ("transformer", {"d_model": 8, "heads": 2, "ff": 4, "seq": 3, "kind": "transformer"}, "spec.root"),
                                   ("mha", {"arch": "gqa_rope", "d_model": 8, "heads": 2, "kv_heads": 2, "seq": 3, "bias": True}, "bias"),
                                   ("mha", {"arch": "gqa_rope", "d_model": 8, "heads": 2, "kv_heads": 2, "seq": 3, "rope": "complex"}, "spec.rope"),
                                   ("swiglu", {"d_model": 8, "hidden": 4}, "hidden")):
            with self.subTest(field), self.assertRaisesRegex(ValueError, field):
                fixtures.model_and_input({**fx, "layer": layer, "spec": spec})


class MixerFixtureTest(unittest.TestCase):
    """layer mixer: every layer type in one model (docs/planets/pytorch.md)."""
    SUITE = RecurrentFixtureTest.SUITE
    LAYERS = {"mixer_all_v1": 10, "mixer_all_v2": 15}  # numbered modules l01_ .. (all_v2's 16th is F.softmax)

    def fixtures(self):
        return [f for f in pbstream.suite_fixtures(self.SUITE, "pytorch") if f["layer"] == "mixer"]

    def numbered(self, model):
        return {name: m for name, m in model.named_children() if name[:1] == "l" and name[1:3].isdigit()}

    def test_stock_modules_moved_off_their_initialisation(self):
        fxs = self.fixtures()
        self.assertEqual(sorted(f["id"] for f in fxs), sorted(self.LAYERS))
        for fx in fxs:
            with self.subTest(fx["id"]):
                model, inputs = fixtures.model_and_input(fx)
                layers = self.numbered(model)
                self.assertEqual(sorted({name[:3] for name in layers}), [f"l{k:02d}" for k in range(1, self.LAYERS[fx["id"]] + 1)])
                self.assertTrue(any(type(m) is nn.MultiheadAttention for m in layers.values()))
                self.assertTrue(any(type(m) is nn.LSTM for m in layers.values()))
                for name, m in model.named_modules():
                    if type(m) is nn.MultiheadAttention:  # torch initialises both biases to zero
                        self.assertTrue(torch.all(m.in_proj_bias != 0), name)
                        self.assertTrue(torch.all(m.out_proj.bias != 0), name)
                    if isinstance(m, (nn.LayerNorm, fixtures.RMSNorm)):
                        self.assertTrue(torch.all(m.weight != 1), name)
                    if isinstance(m, nn.LayerNorm):
                        self.assertTrue(torch.all(m.bias != 0), name)
                for name, p in model.named_parameters():
                    if name.endswith("bias") or "bias_" in name:
                        self.assertTrue(torch.all(p != 0), name)
                x = inputs[0]
                self.assertEqual(x.shape, (fx["samples"], 8) + ((16,) if fx["id"] == "mixer_all_v1" else ()))
                with torch.no_grad():
                    y = model(*inputs)
                self.assertEqual(y.shape, (fx["samples"], 8, 8 if fx["id"] == "mixer_all_v1" else 10))

    def test_every_layer_changes_the_output(self):
        for fx in self.fixtures():
            model, inputs = fixtures.model_and_input(fx)
            for name, layer in self.numbered(model).items():
                params = list(layer.parameters())
                if not params:
                    continue  # l07_tanh
                with self.subTest(f"{fx['id']}.{name}"), torch.no_grad():
                    # Noise, not a scale: l02_conv1d's scale would vanish in the LayerNorm after it.
                    before = model(*inputs)
                    saved = [p.clone() for p in params]
                    for p in params:
                        p.add_(0.05 * torch.randn_like(p))
                    after = model(*inputs)
                    for p, q in zip(params, saved):
                        p.copy_(q)
                    self.assertGreater((before - after).abs().max().item(), 1e-4)

    def test_all_v2_is_causal_and_sums_to_one(self):
        fx = next(f for f in self.fixtures() if f["id"] == "mixer_all_v2")
        model, (ids,) = fixtures.model_and_input(fx)
        self.assertTrue(torch.equal(model.causal_mask, torch.triu(torch.ones(8, 8, dtype=torch.bool), diagonal=1)))
        with torch.no_grad():
            y = model(ids)
            later = ids.clone()
            later[:, -1] = (later[:, -1] + 1) % 50
            # The attention is causal; the 'same' conv lets position 6 see position 7, the rest is causal.
            torch.testing.assert_close(model(later)[:, :-2], y[:, :-2])
            torch.testing.assert_close(y.sum(-1), torch.ones(fx["samples"], 8))

    def test_one_tap_per_numbered_layer(self):
        for fx in self.fixtures():
            with self.subTest(fx["id"]):
                taps = fixtures.build(fx).doc["taps"]
                for k in range(1, self.LAYERS[fx["id"]] + 1):
                    self.assertTrue(any(t.startswith(f"l{k:02d}_") for t in taps), f"l{k:02d}")
                if fx["id"] == "mixer_all_v2":
                    self.assertIn("softmax", taps)


class ServeTest(unittest.TestCase):
    def serve(self, request, *args):
        return run_serve(CAPTURE, request, *args)

    def test_protocol_end_to_end(self):
        fx = {"layer": "dense", "samples": 7, "seed": 1, "spec": {"input": 4, "units": [3, 2]}}
        request = {"format": "planetbridge.capture-request", "version": 1,
                   "fixtures": [{**fx, "id": "b_second"}, {**fx, "id": "a_first"},
                                {**fx, "id": "conv", "layer": "conv2"}]}
        r = self.serve(request)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        frames = read_frames(r.stdout)
        self.assertEqual(len(frames), 4)
        hello = frames[0][0]
        self.assertEqual((hello["event"], hello["planet"], hello["engine"]), ("hello", "pytorch", "torch"))
        self.assertEqual(hello["engine_version"], pb_torch.PLANET_VERSION)
        self.assertEqual([f[0]["model_id"] for f in frames[1:]], ["b_second", "a_first", "conv"])
        self.assertEqual(frames[1][0]["format"], "planetbridge.stream")
        self.assertEqual(frames[1][1]["input.0"].shape, (7, 4))
        err = frames[3][0]
        self.assertEqual(err["event"], "error")
        self.assertEqual(err["message"], "ValueError: layer 'conv2' is not supported by the pytorch capture (known: dense, cnn1, cnn2, cnn3, pool, batchnorm, layernorm, rmsnorm, embedding, residual, model, rnn, lstm, gru, mha, transformer, swiglu, mixer, zoo)")

    # A stand-in planet: argv[1] == "missing" makes its engine fail to import.
    FAKE_PLANET = (
        f"import sys; sys.path.insert(0, {os.path.dirname(pbstream.__file__)!r}); import pbstream\n"
        "def build(fx):\n"
        "    print('noise')  # must land on stderr, not between frames\n"
        "    raise pbstream.NotApplicable('no such thing')\n"
        "def version():\n"
        "    import no_such_engine_module\n"
        "sys.exit(pbstream.serve('p', 'e', version if sys.argv[1] == 'missing' else '1.0', build))\n")

    def test_not_applicable_and_stray_prints(self):
        request = {"format": "planetbridge.capture-request", "version": 1, "fixtures": [{"id": "x"}]}
        r = self.serve(request, self.FAKE_PLANET, "present")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        frames = read_frames(r.stdout)
        self.assertEqual([f[0]["event"] for f in frames], ["hello", "not_applicable"])
        self.assertEqual((frames[1][0]["model_id"], frames[1][0]["reason"]), ("x", "no such thing"))
        self.assertIn(b"noise", r.stderr)

    def test_unavailable(self):
        request = {"format": "planetbridge.capture-request", "version": 1, "fixtures": [{"id": "x"}]}
        r = self.serve(request, self.FAKE_PLANET, "missing")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        frames = read_frames(r.stdout)
        self.assertEqual(len(frames), 1)
        self.assertEqual(frames[0][0]["event"], "unavailable")
        self.assertEqual(frames[0][0]["reason"], "No module named 'no_such_engine_module'")

    def test_bad_request_exits_nonzero(self):
        r = self.serve({"format": "planetbridge.capture-request", "version": 2, "fixtures": []})
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, b"")
        self.assertIn(b"request.version", r.stderr)


if __name__ == "__main__":
    unittest.main()
