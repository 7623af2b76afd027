#!/usr/bin/python3
"""`planetbridge serve` under many, bad and slow clients at once (issue 14's load target).

  /usr/bin/python3 bench/load.py [--duration 120] [--clients 64] [--bad 0.1] [--slow 200]
                                 [--stream FILE] [--build build] [--jobs N]

Starts `build/bin/planetbridge serve` on a free loopback port with a fresh run store, then for
--duration seconds runs at once:
  - --clients threads posting the stream (--stream, default a recorded PyTorch stream) in a
    loop; a fraction --bad of their requests are bad on purpose, in turn: malformed JSON (400),
    a declared size over --max-body (413), a wrong Content-Type (415), a body cut off halfway
    (the client hangs up: no answer expected);
  - --slow connections, from another address (127.0.0.2; the server caps connections per
    address), that each send one byte a second, of an endless request head or of a body; when
    the server cuts one off (its deadline), another opens in its place;
  - a prober asking GET /health ten times a second, each on a new connection.
Then every valid post's run is fetched back from /api/v1/runs/{id}, and the server is stopped
with SIGTERM. Prints the figures: requests by kind and answer, unexpected answers, runs lost,
/health p50/p99/max, slow connections cut, the server's exit. Numbers, not assertions; the
exit status is 1 when the server crashed, lost a run, answered unexpectedly or /health p99 >= 1 s.
"""

import argparse
import http.client
import json
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_server(args, data):
    cmd = [os.path.join(args.build, "bin", "planetbridge"), "serve", "--port", "0", "--data", data, "--max-body", "64M"]
    if args.jobs:
        cmd += ["--jobs", str(args.jobs)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    banner = proc.stdout.readline()
    if "127.0.0.1:" not in banner:
        sys.exit(f"load: the server did not start: {banner!r}")
    port = int(banner.split("127.0.0.1:")[1].split("/")[0])
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # never let its output block it
    return proc, port


def request(port, method, path, body=b"", headers=None, timeout=120):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def bad_request(port, kind, body):
    """Sends one bad request; returns the status, or None where no answer is expected."""
    post = "/api/v1/loom/stream/pytorch"
    if kind == "malformed":
        return request(port, "POST", post, b'{"version": 1, "tensors": [', {"Content-Type": "application/json"})[0]
    if kind == "wrong_type":
        return request(port, "POST", post, body, {"Content-Type": "text/plain"})[0]
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        if kind == "oversized":
            s.sendall(f"POST {post} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {1 << 40}\r\n\r\n".encode())
            return int(s.recv(4096).split(b" ")[1])
        # cut_off: half the body, then gone
        s.sendall(f"POST {post} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                  + body[: len(body) // 2])
        return None
    finally:
        s.close()


EXPECTED = {"valid": 200, "malformed": 400, "oversized": 413, "wrong_type": 415, "cut_off": None}


def client(port, body, args, stop, results, run_ids, lock, seed):
    rng = random.Random(seed)
    bad_kinds = ["malformed", "oversized", "wrong_type", "cut_off"]
    n = 0
    while not stop.is_set():
        kind = bad_kinds[n % 4] if rng.random() < args.bad else "valid"
        n += 1
        try:
            if kind == "valid":
                status, reply = request(port, "POST", "/api/v1/loom/stream/pytorch", body, {"Content-Type": "application/json"})
                if status == 200:
                    with lock:
                        run_ids.append(json.loads(reply)["id"])
            else:
                status = bad_request(port, kind, body)
        except (OSError, http.client.HTTPException, ValueError, IndexError) as e:
            status = f"error: {type(e).__name__}"
        with lock:
            results[(kind, status)] += 1


def slow_connections(port, count, stop, stats):
    """`count` connections sending one byte a second each; one closed by the server is replaced."""
    sel = selectors.DefaultSelector()
    heads = [b"GET /health HTTP/1.1\r\nX-Pad: " + b"a" * 100000,
             b"POST /api/v1/loom/stream/pytorch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"]

    def open_one(i):
        s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.2", 0))
        s.setblocking(False)
        payload = heads[i % 2] + (b" " * 100000 if i % 2 else b"")
        if i % 2:  # a body: its head goes at once, then the body a byte at a time
            s.sendall(payload[: len(heads[1])])
            payload = payload[len(heads[1]):]
        sel.register(s, selectors.EVENT_READ, [i, payload, 0])
        stats["opened"] += 1

    for i in range(count):
        open_one(i)
    while not stop.is_set():
        t = time.monotonic()
        for key in list(sel.get_map().values()):
            i, payload, sent = key.data
            try:
                key.fileobj.send(payload[sent:sent + 1])
                key.data[2] += 1
            except OSError:
                pass
        for key, _ in sel.select(timeout=0):  # readable: a reply or the server's close
            sel.unregister(key.fileobj)
            key.fileobj.close()
            stats["cut by the server"] += 1
            open_one(key.data[0])
        stop.wait(max(0.0, 1.0 - (time.monotonic() - t)))
    for key in list(sel.get_map().values()):
        key.fileobj.close()


def prober(port, stop, latencies, failures):
    while not stop.is_set():
        t = time.monotonic()
        try:
            status, _ = request(port, "GET", "/health", timeout=10)
            if status != 200:
                failures.append(status)
        except (OSError, http.client.HTTPException) as e:
            failures.append(type(e).__name__)
        latencies.append(time.monotonic() - t)
        stop.wait(0.1)


def percentile(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100 * len(v)))] if v else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=120)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--bad", type=float, default=0.1)
    ap.add_argument("--slow", type=int, default=200)
    ap.add_argument("--stream", default=os.path.join(ROOT, "plugins/pytorch/tests/streams/linear_square.json"))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--jobs", type=int, default=0)
    args = ap.parse_args()
    body = open(args.stream, "rb").read()

    with tempfile.TemporaryDirectory(prefix="pb-load-") as data:
        proc, port = start_server(args, data)
        stop = threading.Event()
        lock = threading.Lock()
        results, run_ids, slow_stats = Counter(), [], Counter()
        latencies, failures = [], []
        threads = [threading.Thread(target=slow_connections, args=(port, args.slow, stop, slow_stats)),
                   threading.Thread(target=prober, args=(port, stop, latencies, failures))]
        threads += [threading.Thread(target=client, args=(port, body, args, stop, results, run_ids, lock, i)) for i in range(args.clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        stop.wait(args.duration)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        crashed = proc.poll() is not None

        lost = []
        if not crashed:
            for rid in run_ids:
                try:
                    if request(port, "GET", f"/api/v1/runs/{rid}")[0] != 200:
                        lost.append(rid)
                except (OSError, http.client.HTTPException):
                    lost.append(rid)
            proc.send_signal(signal.SIGTERM)
        exit_code = proc.wait(timeout=120)

    unexpected = {k: n for k, n in results.items() if EXPECTED[k[0]] != k[1]}
    print(f"serve under load: {args.clients} clients ({args.bad:.0%} bad), {args.slow} slow connections, {elapsed:.0f} s")
    print(f"{'request':<12} {'answer':<24} {'count':>8}")
    for (kind, status), n in sorted(results.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        mark = "" if EXPECTED[kind] == status else "   <- unexpected"
        print(f"{kind:<12} {str(status if status is not None else 'none expected'):<24} {n:>8}{mark}")
    total = sum(results.values())
    print(f"requests: {total} ({total / elapsed:.1f}/s); valid runs recorded: {len(run_ids)}, lost: {len(lost)}")
    print(f"/health: {len(latencies)} probes, p50 {percentile(latencies, 50) * 1e3:.1f} ms, "
          f"p99 {percentile(latencies, 99) * 1e3:.1f} ms, max {max(latencies, default=0) * 1e3:.1f} ms, failures {len(failures)}")
    print(f"slow connections: {slow_stats['opened']} opened, {slow_stats['cut by the server']} cut by the server's deadlines")
    print(f"server: {'CRASHED' if crashed else 'alive'} during the run, exit {exit_code} on SIGTERM")
    bad = crashed or lost or unexpected or failures or percentile(latencies, 99) >= 1.0 or exit_code != 0
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
