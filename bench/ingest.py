#!/usr/bin/python3
"""Large models end to end, per stage, with the machine's memory bandwidth as the ceiling.

  /usr/bin/python3 bench/ingest.py [--sizes 100M,1G,resnet50] [--build build] [--keep DIR]

For each size: an MLP of large Linear layers built in torch (or torchvision's ResNet-50 for
"resnet50", when torchvision is installed), captured with the PyTorch capture
and written (Stream.write), then `planetbridge check` on the file (decode, compile, run, save,
reload, from its JSON), `inspect` with and without checksum verification, and a POST of the
file to `planetbridge serve` on loopback. Each host command runs in its own process, so its
peak RSS (getrusage of the child) is its own. Prints time, throughput and peak RSS per stage;
numbers, not assertions (issue 9's targets are in the closing note beside them).

Two ceilings come first, measured in the same run: memcpy between warm buffers, and a write()
of fresh bytes into a file (the page cache), which bounds every stage that writes a file
(stream write, save, the run store's copy, a POST body).
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "plugins", "pytorch", "capture"), os.path.join(ROOT, "capture", "python")]

import numpy as np  # noqa: E402
import torch  # noqa: E402

import pb_torch  # noqa: E402
import pbstream  # noqa: E402

GB = 1e9


def model_of(size):
    """(model, input, title): square Linear layers, as many as make `size` bytes of f32
    weights, or torchvision's ResNet-50."""
    if size == "resnet50":
        import torchvision  # noqa: PLC0415 (optional: python3-torchvision)
        return torchvision.models.resnet50().eval(), torch.randn(1, 3, 224, 224), "torchvision ResNet-50"
    width = 8192 if size >= 1e9 else 4096
    layers = max(1, round(size / (4 * width * width)))
    model = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(layers)]).eval()
    return model, torch.randn(8, width), f"{layers} x Linear({width}, {width})"


def memcpy_gbps():
    a = np.ones(256 << 20, dtype=np.uint8)
    b = np.empty_like(a)
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        np.copyto(b, a)
        best = max(best, a.nbytes / (time.perf_counter() - t) / GB)
    return best


def file_write_gbps(folder):
    """write() of 1 GB of fresh bytes into a new file, no fsync: the page cache's speed."""
    data = np.ones(1 << 30, dtype=np.uint8)
    path = os.path.join(folder, "ceiling.bin")
    t = time.perf_counter()
    with open(path, "wb") as f:
        f.write(memoryview(data))
    seconds = time.perf_counter() - t
    os.remove(path)
    return data.nbytes / seconds / GB


def child_run(cmd):
    """Runs a command; returns (seconds, its peak RSS in GB, stdout). The peak comes from GNU
    time (getrusage would count the pre-exec fork of this Python, torch and all)."""
    timed = ["/usr/bin/time", "-f", "PEAK_KB %M"] + cmd if os.path.exists("/usr/bin/time") else cmd
    t = time.perf_counter()
    out = subprocess.run(timed, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {out.returncode}: {out.stderr.strip()[-400:]}")
    peaks = [line.split()[1] for line in out.stderr.splitlines() if line.startswith("PEAK_KB ")]
    return seconds, (int(peaks[-1]) * 1024 / GB if peaks else None), out.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def row(stage, seconds, nbytes=None, rss=None):
    rate = f"{nbytes / seconds / GB:8.2f}" if nbytes and seconds > 0 else " " * 8
    mem = f"{rss:8.2f}" if rss is not None else " " * 8
    print(f"  {stage:28} {seconds * 1000:10.1f} {rate} {mem}", flush=True)


def bench(size, build, tmp):
    pb = os.path.join(build, "bin", "planetbridge")
    torch.manual_seed(0)
    model, x, title = model_of(size)
    params = sum(p.numel() for p in model.parameters())
    print(f"\n{title}: {params / 1e6:.0f} M parameters, {params * 4 / GB:.2f} GB of f32 weights")
    print(f"  {'stage':28} {'ms':>10} {'GB/s':>8} {'RSS GB':>8}")

    t = time.perf_counter()
    stream = pb_torch.capture(model, (x,), "ingest")
    row("capture (trace, run, copy)", time.perf_counter() - t, params * 4)
    path = os.path.join(tmp, "model.pbstream")
    t = time.perf_counter()
    stream.write(path)
    nbytes = os.path.getsize(path)
    row("write the stream", time.perf_counter() - t, nbytes)
    del stream

    data = os.path.join(tmp, "data")
    entity = os.path.join(tmp, "model.entity")
    seconds, rss, _ = child_run([pb, "check", path, "--data", data, "--entity", entity, "--json", os.path.join(tmp, "check.json")])
    with open(os.path.join(tmp, "check.json"), encoding="utf-8") as f:
        result = json.load(f)
    for stage, ms in result.get("ms", {}).items():
        row(f"  check: {stage}", ms / 1000, nbytes if stage in ("decode", "save", "reload") else None)
    row(f"check, end to end ({result.get('verdict')})", seconds, nbytes, rss)

    seconds, rss, _ = child_run([pb, "inspect", "--no-verify", entity])
    row("inspect --no-verify (open)", seconds, None, rss)
    seconds, rss, _ = child_run([pb, "inspect", entity])
    row("inspect (every CRC)", seconds, os.path.getsize(entity), rss)

    port = free_port()
    server = subprocess.Popen([pb, "serve", "--port", str(port), "--data", os.path.join(tmp, "served"), "--max-body", "64G"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        with open(path, "rb") as f:
            body = f.read()
        t = time.perf_counter()
        posted = pbstream.post(f"http://127.0.0.1:{port}", body, "pytorch")
        row(f"HTTP post to serve ({posted.get('verdict')})", time.perf_counter() - t, nbytes)
    finally:
        server.terminate()
        server.wait()
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(os.path.join(tmp, "served"), ignore_errors=True)
    for p in (path, entity):
        if os.path.exists(p):
            os.remove(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100M,1G", help="comma-separated sizes of f32 weights (100M, 1G, 8G) or resnet50")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--keep", help="work in this folder (default: a temporary one)")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count())
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    print(f"memcpy (numpy, one thread): {memcpy_gbps():.1f} GB/s — the ceiling for any copy below")
    print(f"write() into a new file (page cache, no fsync): {file_write_gbps(args.keep or os.environ.get('TMPDIR', '/tmp')):.2f} GB/s"
          " — the ceiling for any stage that writes a file")
    units = {"M": 1e6, "G": 1e9}
    for s in args.sizes.split(","):
        size = s if s == "resnet50" else float(s[:-1]) * units[s[-1].upper()]
        if args.keep:
            bench(size, args.build, args.keep)
        else:
            with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", "/tmp")) as tmp:
                bench(size, args.build, tmp)


if __name__ == "__main__":
    main()
