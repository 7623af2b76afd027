#!/usr/bin/python3
"""Times the same models in PyTorch and on planetbridge, in one run, on this machine.

  /usr/bin/python3 bench/compare_torch.py [--suite bench/bench.yaml] [--fixture GLOB]
                                          [--iters N] [--threads T] [--build build]

For each fixture: builds and trains the torch model (plugins/pytorch/capture/fixtures.py),
times torch eager under no_grad, captures the stream, and times build/bin/pb_bench on it with
the same input and thread count. Prints medians and the speed-up; numbers, not assertions.
"""

import argparse
import fnmatch
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "plugins", "pytorch", "capture"), os.path.join(ROOT, "capture", "python")]

import torch  # noqa: E402
import yaml  # noqa: E402

import fixtures  # noqa: E402


def time_torch(model, x, iters, warmup):
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        times = []
        for _ in range(iters):
            t = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default=os.path.join(ROOT, "bench", "bench.yaml"))
    ap.add_argument("--fixture", default="*")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    with open(args.suite, encoding="utf-8") as f:
        suite = yaml.safe_load(f)
    defaults = suite.get("defaults") or {}
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads) vs planetbridge (oneDNN, "
          f"OMP_NUM_THREADS={args.threads}); median of {args.iters} runs")
    print(f"{'model':32} {'input':>20} {'torch ms':>10} {'pb ms':>10} {'speed-up':>9} {'pb compile ms':>14}")
    for fx in suite["fixtures"]:
        if not fnmatch.fnmatchcase(fx["id"], args.fixture):
            continue
        fixture = {"id": fx["id"], "layer": fx["layer"], "spec": fx["spec"],
                   "samples": fx.get("samples", defaults.get("samples")), "seed": fx.get("seed", defaults.get("seed"))}
        model, x = fixtures.model_and_input(fixture)
        torch_ms = time_torch(model, x, args.iters, warmup=5)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.pbstream")
            fixtures.build(fixture, taps=False).write(path)
            out = subprocess.run([os.path.join(args.build, "bin", "pb_bench"), path, "--iters", str(args.iters)],
                                 capture_output=True, text=True, env=env)
        if out.returncode != 0:
            print(f"{fx['id']:32} pb_bench failed: {out.stderr.strip()}")
            continue
        pb = json.loads(out.stdout)
        shape = "x".join(map(str, x.shape))
        print(f"{fx['id']:32} {shape:>20} {torch_ms:10.3f} {pb['median_ms']:10.3f} "
              f"{torch_ms / pb['median_ms']:8.2f}x {pb['compile_ms']:14.1f}")


if __name__ == "__main__":
    main()
