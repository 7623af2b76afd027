#!/usr/bin/python3
"""Times the same model and input in planetbridge, ONNX Runtime and PyTorch, in one run.

  /usr/bin/python3 bench/compare.py [--engines pb,ort,torch] [--fixture GLOB[,GLOB...]]
                                    [--threads T] [--iters N] [--suite bench/bench.yaml]
                                    [--build build] [--markdown] [--json FILE]
                                    [--rounds R] [--no-peak] [--no-check] [--keep DIR]

Set-up, once: scripts/setup.sh (build/bin/pb_bench, Debian's python3-torch with
libopenblas0-openmp -- never time torch on the reference BLAS), python3-torchvision for the
ResNet rows, and ONNX Runtime: `ONNXRUNTIME_NODE_INSTALL=skip npm ci --prefix bench/ort`
(onnxruntime-node 1.30.0 from bench/ort/package-lock.json; its CPU binaries ship in the package).
A missing engine becomes "n/a" cells and a note, not a crash.

For each fixture of the suite (bench/bench.yaml):
  1. the torch model and input: layers known to plugins/pytorch/capture/fixtures.py come from its
     model_and_input() (built and trained there); layer "anchor" (ResNet-18, LSTM, GRU,
     TransformerEncoderLayer: stock torch/torchvision models fixtures.py does not build) is built
     here, seeded the same way (see ANCHORS);
  2. exported with torch.onnx.export (opset 17, static shapes; a conv's padding="same" is given
     to the exporter as the equivalent numbers) and captured as a planetbridge stream
     (plugins/pytorch/capture/pb_torch.py) holding the same input;
  3. timed in two passes with the engine order alternated -- pass 1: pb, ort, torch; pass 2:
     torch, ort, pb -- each pass in R rounds (--rounds, default 3): in every round each engine, in
     the pass's order, is started, warmed up and times N/R runs one by one; a pass reports the
     median of all its rounds' runs. Rounds put every engine under the same drift of a shared
     VM, whose speed can change by 1.5x within a minute:
       pb     build/bin/pb_bench STREAM with OMP_NUM_THREADS=T (planetbridge's compiled Network);
       ort    node bench/ort/time_ort.js MODEL.onnx INPUT.npy, T intra-op threads, 1 inter-op,
              sequential, all graph optimisations (onnxruntime-node 1.30.0, CPU provider);
       torch  eager, under torch.no_grad(), torch.set_num_threads(T), in this process;
  4. checked: ONNX Runtime's outputs against torch's (max |diff|, "max abs(ort-torch)"), and
     `build/bin/planetbridge check` on the stream (planetbridge against the torch outputs the
     capture recorded: EXACT / PASS at 1e-5 with its max |diff| / FAIL), so the times compare
     engines computing the same function on the same input.
A model planetbridge cannot capture or ingest yet gets a "planetbridge: cannot ingest (...)"
line under its row, and torch and ORT are still timed; no engine failure stops the table.

The machine is measured in the same run, before and after the fixtures (processors differ
between machines): a T-thread f32 FMA loop and memcpy bandwidth (bench/peak.c, compiled here with
cc -O2 -march=native -fopenmp), torch.mm 2048^3, and oneDNN's 2048^3 matmul through pb_bench on
a captured Linear(2048, 2048). The last column, "others %", is the share of the machine's CPU
time that other processes used during the row (/proc/stat less this process tree): on a 2-core
machine anything above a few % distorts that row's times. Compare ratios within one run.

ANCHORS (layer "anchor", spec.arch):
  resnet18     torchvision.models.resnet18(weights=None), input [samples, 3, size, size]; the
               BatchNorm running statistics are calibrated on 3 random batches of >= 8 (train-mode
               forwards without gradients, cumulative averages), then eval().
  lstm         nn.LSTM(input, hidden, num_layers=layers, batch_first=True), the sequence output
               (`lstm(x)[0]`, as a user's module keeps it), input [samples, seq, input].
  gru          nn.GRU(input, hidden, num_layers=layers, batch_first=True), as lstm.
  transformer_encoder_layer  nn.TransformerEncoderLayer(d_model, heads, ff, batch_first=True),
               input [samples, seq, d_model].
The recurrent and attention models are moved off their initialisation by fixtures.py's few Adam
steps towards a fixed random target (biases non-zero), then eval().

Per-fixture `iters` in the suite sets the timed runs (default 50); an explicit --iters applies to
every fixture. Warm-up: max(2, min(10, iters // 5)) runs. Numbers, not assertions; --json FILE
keeps every measurement (p10/p90, compile times, kernels, check results).
"""

import argparse
import copy
import fnmatch
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINES = ("pb", "ort", "torch")
PASS_ORDERS = (("pb", "ort", "torch"), ("torch", "ort", "pb"))
OPSET = 17  # the newest opset torch 1.13's exporter writes
SUBPROCESS_TIMEOUT_S = 600


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default=os.path.join(ROOT, "bench", "bench.yaml"))
    ap.add_argument("--fixture", default="*", help="fixture ids to run: glob(s), comma-separated")
    ap.add_argument("--engines", default="pb,ort,torch", help="comma-separated subset of pb,ort,torch")
    ap.add_argument("--threads", type=int, default=2, help="threads per engine (default 2)")
    ap.add_argument("--iters", type=int, default=None,
                    help="timed runs per engine and pass (default: the fixture's `iters`, else 50)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="build dir holding bin/pb_bench")
    ap.add_argument("--node", default="node")
    ap.add_argument("--no-peak", action="store_true", help="skip the machine peak measurements")
    ap.add_argument("--no-check", action="store_true",
                    help="skip `planetbridge check` (planetbridge's outputs against torch's, after the timings)")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--json", metavar="FILE", help="also write every measurement to FILE")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds per pass: each engine started, warmed up and timed N/R runs per round (default 3)")
    ap.add_argument("--keep", metavar="DIR",
                    help="keep each fixture's .onnx, .input.0.npy and .pbstream in DIR (to profile them)")
    args = ap.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = [e for e in engines if e not in ENGINES]
    if bad or not engines:
        ap.error(f"--engines: unknown {', '.join(bad) or '(none)'}; pick from {','.join(ENGINES)}")
    args.engines = engines
    if args.threads < 1:
        ap.error("--threads: expected a positive integer")
    if args.iters is not None and args.iters < 1:
        ap.error("--iters: expected a positive integer")
    if args.rounds < 1:
        ap.error("--rounds: expected a positive integer")
    return args


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    # Before torch loads: its OpenMP runtime and OpenBLAS read these once.
    os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)

sys.path[:0] = [os.path.join(ROOT, "plugins", "pytorch", "capture"), os.path.join(ROOT, "capture", "python")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from torch import nn  # noqa: E402

import fixtures  # noqa: E402
import pb_torch  # noqa: E402


# ---------------------------------------------------------------- models

def _seed(fixture):
    """As fixtures.py seeds its fixtures: the suite seed mixed with the fixture id."""
    state = np.random.SeedSequence([fixture["seed"], zlib.crc32(fixture["id"].encode())]).generate_state(1, np.uint64)
    return int(state[0]) >> 1


class SequenceOutput(nn.Module):
    """`rnn(x)[0]`: the full output sequence of an nn.LSTM / nn.GRU (what a user's model keeps)."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        return self.rnn(x)[0]


class Wrapped(nn.Module):
    """One stock module as a child (fx keeps torch.nn modules whole as call_module nodes)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)


def _calibrate_batchnorm(model, shape, batches=4):
    """Running statistics from random batches (weights=None models have mean 0 / var 1 otherwise)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(*shape))
    return model.eval()


def _fit_random_target(model, x, steps=5):
    """A few full-batch Adam steps towards a fixed random target, as fixtures.py moves its models
    off their initialisation (its helper is used when it has one)."""
    helper = getattr(fixtures, "_fit_random_target", None)
    if helper is not None:
        return helper(model, x)
    with torch.no_grad():
        y = torch.randn_like(model.eval()(x))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return model.eval()


def anchor_model_and_input(fixture):
    spec = dict(fixture.get("spec") or {})
    arch = spec.pop("arch", None)
    n = fixture["samples"]
    torch.manual_seed(_seed(fixture))
    if arch == "resnet18":
        try:
            import torchvision
        except ImportError as e:
            raise RuntimeError("torchvision is not installed (apt-get install -y python3-torchvision)") from e
        size = spec.pop("size", 224)
        model = torchvision.models.resnet18(weights=None)
        x_shape = (n, 3, size, size)
        model = _calibrate_batchnorm(model, (max(n, 8), 3, size, size), batches=3)
        x = torch.randn(*x_shape)
    elif arch in ("lstm", "gru"):
        cls = nn.LSTM if arch == "lstm" else nn.GRU
        inputs, seq = spec.pop("input"), spec.pop("seq")
        model = SequenceOutput(cls(inputs, spec.pop("hidden"), num_layers=spec.pop("layers", 1), batch_first=True))
        x = torch.randn(n, seq, inputs)
        _fit_random_target(model, x)
        x = torch.randn_like(x)
    elif arch == "transformer_encoder_layer":
        d, seq = spec.pop("d_model"), spec.pop("seq")
        model = Wrapped(nn.TransformerEncoderLayer(d, spec.pop("heads"), spec.pop("ff"), batch_first=True))
        x = torch.randn(n, seq, d)
        _fit_random_target(model, x)
        x = torch.randn_like(x)
    else:
        raise ValueError(f"spec.arch: expected resnet18, lstm, gru or transformer_encoder_layer, got {arch!r}")
    if spec:
        raise ValueError(f"spec: unknown keys {sorted(spec)} for arch {arch}")
    return model.eval(), x


def model_and_input(fixture):
    if fixture["layer"] == "anchor":
        return anchor_model_and_input(fixture)
    return fixtures.model_and_input(fixture)


def capture(model, x, fixture_id):
    """The planetbridge stream of (model, x), as fixtures.build() captures its fixtures."""
    notes = getattr(fixtures, "COMPOSED_NOTES", {})
    composed = sorted({note for cls, note in notes.items() if any(isinstance(m, cls) for m in model.modules())})
    return pb_torch.capture(model, (x,), fixture_id, taps=False, leaf_modules=tuple(notes), composed=composed)


def exportable(model):
    """A copy of model that torch 1.13's ONNX exporter accepts, computing the same function.

    Convolutions with padding="same"/"valid" (a string) export as aten::_convolution_mode, which
    the exporter rejects: the copy carries the equivalent numeric, symmetric padding instead."""
    clone = None
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.conv._ConvNd) and isinstance(m.padding, str):
            if clone is None:
                clone = copy.deepcopy(model)
            target = clone.get_submodule(name) if name else clone
            if m.padding == "valid":
                pads = (0,) * len(m.kernel_size)
            else:
                totals = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
                if any(t % 2 for t in totals):
                    continue  # asymmetric: leave it, the exporter will say so
                pads = tuple(t // 2 for t in totals)
            target.padding = pads
    return clone if clone is not None else model


def _flatten(value):
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in _flatten(v)]
    return [value]


# ---------------------------------------------------------------- engines

def _short_error(text):
    """First line of an error, without a long "(known: ...)" list."""
    line = next((ln.strip() for ln in str(text).strip().splitlines() if ln.strip()), "unknown error")
    line = line.removeprefix("error: ")
    cut = line.find(" (known: ")
    if cut >= 0:
        line = line[:cut]
    return line if len(line) <= 200 else line[:197] + "..."


def time_torch(model, x, iters, warmup):
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        times = []
        for _ in range(iters):
            t = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t) * 1000)
    return percentiles(times)


def percentiles(times):
    """median_ms, p10_ms, p90_ms (as pb_bench and time_ort.js pick them) and times_ms, sorted."""
    times = sorted(times)
    pct = lambda p: times[min(len(times) - 1, int(p * len(times)))]  # noqa: E731
    return {"median_ms": pct(0.5), "p10_ms": pct(0.1), "p90_ms": pct(0.9), "times_ms": times}


def pooled(rounds):
    """One engine's pass from its rounds: the timed runs of every round pooled (median, p10, p90
    of all of them); the other fields (compile time, kernels, memory, outputs) from the first."""
    times = [t for r in rounds for t in r["times_ms"]]
    return dict(rounds[0], **percentiles(times), iters=len(times), rounds=len(rounds),
                round_medians_ms=[r["median_ms"] for r in rounds])


def _run_json(cmd, env):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=SUBPROCESS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {SUBPROCESS_TIMEOUT_S} s"
    except OSError as e:
        return None, str(e)
    if out.returncode != 0:
        return None, _short_error(out.stderr or out.stdout or f"exit status {out.returncode}")
    try:
        return json.loads(out.stdout.strip().splitlines()[-1]), None
    except (ValueError, IndexError):
        return None, "unreadable output: " + _short_error(out.stdout)


def engine_env(threads):
    return dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))


def time_pb(pb_bench, stream_path, threads, iters, warmup):
    return _run_json([pb_bench, stream_path, "--iters", str(iters), "--warmup", str(warmup)], engine_env(threads))


def time_ort(node, onnx_path, input_paths, threads, iters, warmup, out_prefix=None):
    cmd = [node, os.path.join(ROOT, "bench", "ort", "time_ort.js"), onnx_path, *input_paths,
           "--threads", str(threads), "--inter-threads", "1", "--iters", str(iters), "--warmup", str(warmup)]
    if out_prefix:
        cmd += ["--out", out_prefix]
    return _run_json(cmd, engine_env(threads))


def check_pb(planetbridge, stream_path, tmp):
    """`planetbridge check` on the stream: planetbridge's outputs against the torch outputs the
    capture recorded (verdict EXACT/PASS/FAIL at the default 1e-5, max abs diff)."""
    report = stream_path + ".check.json"
    cmd = [planetbridge, "check", stream_path, "--json", report, "--data", os.path.join(tmp, "runs"),
           "--entity", stream_path + ".entity"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=engine_env(ARGS.threads if ARGS else 2),
                             timeout=SUBPROCESS_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"verdict": "ERROR", "message": _short_error(e)}
    try:
        with open(report, encoding="utf-8") as f:
            result = json.load(f)
    except (OSError, ValueError):
        return {"verdict": "ERROR", "message": _short_error(out.stderr or out.stdout)}
    return {"verdict": result.get("verdict", "?"), "max_abs": result.get("max_abs"),
            "message": result.get("message", "")}


def ort_available(node):
    if not os.path.isdir(os.path.join(ROOT, "bench", "ort", "node_modules", "onnxruntime-node")):
        return "onnxruntime-node is not installed: ONNXRUNTIME_NODE_INSTALL=skip npm ci --prefix bench/ort"
    if shutil.which(node) is None:
        return f"{node} not found"
    return None


# ---------------------------------------------------------------- the machine

def cpu_model():
    info = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if ":" in line:
                    k, v = (s.strip() for s in line.split(":", 1))
                    info.setdefault(k, v)
    except OSError:
        return platform.processor() or "unknown", ""
    flags = set(info.get("flags", "").split())
    isa = "avx512f" if "avx512f" in flags else "avx2+fma" if {"avx2", "fma"} <= flags else "no avx2"
    name = info.get("model name", "unknown")
    return f"{name} (family {info.get('cpu family', '?')}, model {info.get('model', '?')})", isa


def measure_peak(threads, pb_bench, tmp, run_pb):
    """FMA loop, memcpy, torch.mm and oneDNN matmul GFLOP/s on `threads` threads."""
    peak = {}
    contention = Contention()
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc:
        exe = os.path.join(tmp, "peak")
        if not os.path.exists(exe):
            build = subprocess.run([cc, "-O2", "-march=native", "-fopenmp", os.path.join(ROOT, "bench", "peak.c"),
                                    "-o", exe], capture_output=True, text=True)
            if build.returncode != 0:
                peak["fma_error"] = _short_error(build.stderr)
        if os.path.exists(exe):
            result, err = _run_json([exe, str(threads)], engine_env(threads))
            if result:
                peak.update(fma_gflops=result["fma_gflops"], memcpy_gbs=result["memcpy_gbs"], fma_isa=result["isa"])
            else:
                peak["fma_error"] = err
    else:
        peak["fma_error"] = "no C compiler"

    n = 2048
    flops = 2.0 * n ** 3
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        torch.mm(a, b)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t)
    peak["torch_mm_gflops"] = flops / min(times) / 1e9

    if run_pb:
        path = os.path.join(tmp, "peak_dense.pbstream")
        if not os.path.exists(path):
            torch.manual_seed(0)
            pb_torch.capture(nn.Sequential(nn.Linear(n, n, bias=False)), (torch.randn(n, n),), "peak_dense_2048").write(path)
        result, err = time_pb(pb_bench, path, threads, iters=5, warmup=2)
        if result:
            peak["onednn_mm_gflops"] = flops / (result["p10_ms"] / 1000) / 1e9  # best-ish of 5, like min above
            peak["onednn_kernel"] = result.get("kernels", "").split(":", 1)[-1].strip()
        else:
            peak["onednn_error"] = err
    peak["others_cpu_share"] = contention.share()
    return peak


def describe_peak(label, peak, threads):
    parts = []
    if "fma_gflops" in peak:
        parts.append(f"FMA loop ({peak['fma_isa']}) {peak['fma_gflops']:.0f} GFLOP/s")
    else:
        parts.append(f"FMA loop: n/a ({peak.get('fma_error')})")
    if "memcpy_gbs" in peak:
        parts.append(f"memcpy {peak['memcpy_gbs']:.1f} GB/s")
    parts.append(f"torch.mm 2048³ {peak['torch_mm_gflops']:.0f} GFLOP/s")
    if "onednn_mm_gflops" in peak:
        parts.append(f"oneDNN 2048³ ({peak['onednn_kernel']}) {peak['onednn_mm_gflops']:.0f} GFLOP/s")
    elif "onednn_error" in peak:
        parts.append(f"oneDNN: n/a ({peak['onednn_error']})")
    others = peak.get("others_cpu_share")
    parts.append("other processes used " + ("?" if others is None else f"{100 * others:.0f}%") + " of the CPUs")
    return f"peak {label}, {threads} threads: " + "; ".join(parts)


class Contention:
    """The share of the machine's CPU time that other processes used since construction:
    (all CPUs' busy time from /proc/stat - this process's and its children's CPU time) /
    (wall time x CPUs). On a 2-core machine anything above a few % distorts the timings."""

    def __init__(self):
        self.start = self._snapshot()

    @staticmethod
    def _snapshot():
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        busy = sum(fields[:8]) - fields[3] - fields[4]  # user..steal, less idle and iowait
        t = os.times()
        ours = t.user + t.system + t.children_user + t.children_system
        return busy / os.sysconf("SC_CLK_TCK"), ours, time.monotonic()

    def share(self):
        end = self._snapshot()
        if self.start is None or end is None or end[2] <= self.start[2]:
            return None
        others = (end[0] - self.start[0]) - (end[1] - self.start[1])
        return max(0.0, others / ((end[2] - self.start[2]) * (os.cpu_count() or 1)))


# ---------------------------------------------------------------- the table

def load_fixtures(path, patterns):
    with open(path, encoding="utf-8") as f:
        suite = yaml.safe_load(f)
    defaults = suite.get("defaults") or {}
    out = []
    for fx in suite["fixtures"]:
        if not any(fnmatch.fnmatchcase(fx["id"], p) for p in patterns):
            continue
        out.append({"id": fx["id"], "layer": fx["layer"], "spec": fx.get("spec"),
                    "samples": fx.get("samples", defaults.get("samples")),
                    "seed": fx.get("seed", defaults.get("seed")), "iters": fx.get("iters")})
    return out


def fmt_ms(result):
    if result is None:
        return "—"
    if "median_ms" not in result:
        return result.get("short", "failed")
    v = result["median_ms"]
    return f"{v:.3f}" if v < 10 else f"{v:.2f}" if v < 100 else f"{v:.1f}"


def fmt_ratio(pb, ort):
    if pb and ort and "median_ms" in pb and "median_ms" in ort:
        r = pb["median_ms"] / ort["median_ms"]
        return f"{r:.2f}"
    return "—"


class Table:
    def __init__(self, engines, markdown, check):
        self.engines = engines
        self.markdown = markdown
        cols = ["model", "input"]
        for p in (1, 2):
            cols += [f"{e} p{p} ms" for e in engines]
        if "pb" in engines and "ort" in engines:
            cols += ["pb/ort p1", "pb/ort p2"]
        if "ort" in engines and "torch" in engines:
            cols += ["max abs(ort-torch)"]
        self.check = "pb" in engines and check
        if self.check:
            cols += ["pb check"]
        if "pb" in engines:
            cols += ["pb act MiB"]  # activation arena, and the same buffers without reuse
        cols += ["others %"]  # CPU share other processes used during the row (they distort the times)
        self.cols = cols
        self.widths = [38, 14] + [13 if c in ("pb check", "pb act MiB") else max(6, len(c)) for c in cols[2:]]
        self.notes = []

    def header(self):
        if self.markdown:
            print("| " + " | ".join(self.cols) + " |")
            print("|" + "|".join("---" for _ in self.cols) + "|")
        else:
            print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(self.cols, self.widths))))

    def row(self, fixture_id, shape, passes, diff, check, notes, others):
        cells = [fixture_id, shape]
        for p in (0, 1):
            cells += [fmt_ms(passes[p].get(e)) for e in self.engines]
        if "pb" in self.engines and "ort" in self.engines:
            cells += [fmt_ratio(passes[p].get("pb"), passes[p].get("ort")) for p in (0, 1)]
        if "ort" in self.engines and "torch" in self.engines:
            cells.append(diff)
        if self.check:
            cells.append(check)
        if "pb" in self.engines:
            mem = (passes[0].get("pb") or {}).get("memory")
            cells.append(f"{mem['arena_mib']:.1f} of {mem['unshared_mib']:.1f}" if mem else "—")
        cells.append("?" if others is None else f"{100 * others:.0f}")
        if self.markdown:
            print("| " + " | ".join(cells) + " |")
            self.notes += [f"{fixture_id}: {n}" for n in notes]
        else:
            print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, self.widths))))
            for n in notes:
                print(f"    {n}")
        sys.stdout.flush()

    def footer(self):
        if self.markdown and self.notes:
            print()
            for n in self.notes:
                print(f"- {n}")


def bench_fixture(fx, args, tmp, pb_bench, ort_missing):
    """Both passes and the checks for one fixture.

    Returns (input shape text, [pass 1, pass 2] results by engine, ORT-vs-torch diff text,
    planetbridge check text, notes for the lines under the row, the JSON record)."""
    iters = args.iters or fx.get("iters") or 50
    warmup = max(2, min(10, iters // 5))
    engines = args.engines
    notes = []
    record = {"id": fx["id"], "iters": iters, "warmup": warmup, "rounds": args.rounds, "passes": [{}, {}]}
    failed = {}  # engines that cannot run this fixture (their cells show "n/a"; notes say why)

    model, x = model_and_input(fx)
    shape = "×".join(map(str, x.shape))
    record["input"] = list(x.shape)
    with torch.no_grad():
        reference = [t.numpy().copy() for t in _flatten(model(x))]
        # A constant output (dead ReLUs) would make the output checks say nothing: say so.
        constant = x.is_floating_point() and all(
            np.array_equal(a, b.numpy()) for a, b in zip(reference, _flatten(model(torch.randn_like(x)))))
    record["output_depends_on_input"] = not constant
    stem = os.path.join(tmp, fx["id"])

    onnx_path, input_path = stem + ".onnx", stem + ".input.0.npy"
    if "ort" in engines:
        if ort_missing:
            failed["ort"] = "n/a"
            notes.append(f"ONNX Runtime: {ort_missing}")
        else:
            np.save(input_path, np.ascontiguousarray(x.numpy()))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(exportable(model), (x,), onnx_path, opset_version=OPSET, input_names=["input.0"],
                                      output_names=[f"output.{i}" for i in range(len(reference))],
                                      do_constant_folding=True)
            except Exception as e:  # noqa: BLE001  (any exporter failure becomes a row note)
                failed["ort"] = "n/a"
                notes.append(f"ONNX Runtime: cannot export ({_short_error(e)})")

    stream_path = stem + ".pbstream"
    if "pb" in engines:
        try:
            capture(model, x, fx["id"]).write(stream_path)
        except Exception as e:  # noqa: BLE001
            failed["pb"] = "n/a"
            notes.append(f"planetbridge: cannot ingest (capture: {_short_error(e)})")

    diff = "—"
    per_round = -(-iters // args.rounds)
    for p, order in enumerate(PASS_ORDERS):
        timed, errors = {}, {}
        for r in range(args.rounds):
            first = p == 0 and r == 0
            for engine in (e for e in order if e in engines and e not in failed):
                if engine == "torch":
                    result, err = time_torch(model, x, per_round, warmup), None
                elif engine == "pb":
                    result, err = time_pb(pb_bench, stream_path, args.threads, per_round, warmup)
                    if err:
                        failed["pb"] = "n/a"
                        notes.append(f"planetbridge: cannot ingest ({err})" if first else f"planetbridge pass {p + 1}: {err}")
                else:
                    result, err = time_ort(args.node, onnx_path, [input_path], args.threads, per_round, warmup,
                                           out_prefix=stem + ".ort" if first else None)
                    if err:
                        failed["ort"] = "n/a"
                        notes.append(f"ONNX Runtime: {err}")
                    elif first:
                        diff = ort_torch_diff(result, reference, record)
                        if constant:
                            notes.append("torch's output does not depend on the input (dead ReLUs after the fixture's "
                                         "training?): the output checks compare a constant")
                if err:
                    errors[engine] = err
                else:
                    timed.setdefault(engine, []).append(result)
        for engine in (e for e in order if e in engines):
            record["passes"][p][engine] = (pooled(timed[engine]) if engine not in failed
                                           else {"short": failed[engine], "error": errors.get(engine)})
    check = "—"
    if "pb" in engines and "pb" not in failed and not args.no_check:
        result = check_pb(os.path.join(args.build, "bin", "planetbridge"), stream_path, tmp)
        record["pb_check"] = result
        check = result["verdict"]
        if result.get("max_abs") is not None and result["verdict"] != "EXACT":
            check += f" {result['max_abs']:.1e}"
        if result["verdict"] not in ("EXACT", "PASS"):
            notes.append(f"planetbridge check: {result['verdict']} {result.get('message') or ''}".rstrip())
    return shape, record["passes"], diff, check, notes, record


def ort_torch_diff(result, reference, record):
    outs = result.get("outputs", [])
    if len(outs) != len(reference):
        return f"{len(outs)} vs {len(reference)} outputs"
    worst, scale = 0.0, 0.0
    for o, ref in zip(outs, reference):
        got = np.load(o["file"])
        if got.shape != ref.shape:
            return f"shape {got.shape} vs {ref.shape}"
        if got.size:
            worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64)))))
            scale = max(scale, float(np.max(np.abs(ref))))
    record["ort_torch_max_abs_diff"] = worst
    record["torch_max_abs_output"] = scale
    return f"{worst:.1e}"


def main():
    args = ARGS
    torch.set_num_threads(args.threads)
    pb_bench = os.path.join(args.build, "bin", "pb_bench")
    patterns = [p.strip() for p in args.fixture.split(",") if p.strip()] or ["*"]
    fixtures_to_run = load_fixtures(args.suite, patterns)
    if not fixtures_to_run:
        sys.exit(f"compare: no fixture of {args.suite} matches {args.fixture!r}")
    if "pb" in args.engines and not os.access(pb_bench, os.X_OK):
        sys.exit(f"compare: {pb_bench} not found: build it (scripts/setup.sh) or pass --build DIR")
    ort_missing = ort_available(args.node) if "ort" in args.engines else None

    cpu, isa = cpu_model()
    print(f"machine: {cpu}, {isa}, {os.cpu_count()} logical CPUs; load average {os.getloadavg()[0]:.2f}")
    described = {"pb": f"planetbridge ({os.path.relpath(pb_bench, ROOT)}, oneDNN, OMP_NUM_THREADS={args.threads})",
                 "ort": f"ONNX Runtime 1.30.0 (onnxruntime-node, CPU, intra-op {args.threads}, opset {OPSET})",
                 "torch": f"torch {torch.__version__} eager no_grad (torch.get_num_threads() = {torch.get_num_threads()})"}
    print(f"engines, {args.threads} threads each: " + "; ".join(described[e] for e in args.engines))
    if ort_missing and "ort" in args.engines:
        print(f"ONNX Runtime: {ort_missing}")
    report = {"machine": {"cpu": cpu, "isa": isa, "threads": args.threads}, "fixtures": []}

    with tempfile.TemporaryDirectory(prefix="pb-compare-") as tmp:
        if not args.no_peak:
            report["peak_before"] = measure_peak(args.threads, pb_bench, tmp, "pb" in args.engines)
            print(describe_peak("before", report["peak_before"], args.threads))
        orders = [", ".join(e for e in order if e in args.engines) for order in PASS_ORDERS]
        print(f"medians of the timed runs in ms; pass 1 order {orders[0]}; pass 2 {orders[1]}\n")
        table = Table(args.engines, args.markdown, not args.no_check)
        table.header()
        for fx in fixtures_to_run:
            contention = Contention()
            try:
                shape, passes, diff, check, notes, record = bench_fixture(fx, args, tmp, pb_bench, ort_missing)
            except Exception as e:  # noqa: BLE001  (a fixture that cannot be built is a row, not a crash)
                table.row(fx["id"], "?", [{}, {}], "—", "—", [f"cannot build the model: {_short_error(e)}"], None)
                report["fixtures"].append({"id": fx["id"], "error": str(e)})
                continue
            record["others_cpu_share"] = others = contention.share()
            table.row(fx["id"], shape, passes, diff, check, notes, others)
            report["fixtures"].append(record)
            for f in os.listdir(tmp):  # keep the temp dir small (ResNet exports are ~45 MB)
                if f.startswith(fx["id"] + "."):
                    if args.keep:
                        os.makedirs(args.keep, exist_ok=True)
                        shutil.move(os.path.join(tmp, f), os.path.join(args.keep, f))
                    else:
                        os.remove(os.path.join(tmp, f))
        table.footer()
        if not args.no_peak:
            report["peak_after"] = measure_peak(args.threads, pb_bench, tmp, "pb" in args.engines)
            print("\n" + describe_peak("after", report["peak_after"], args.threads))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
