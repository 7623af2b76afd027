#!/usr/bin/python3
"""Assembles the seed corpora of the fuzz targets (docs/fuzzing.md) into OUT/<target>/.

  make_seeds.py OUT [--planetbridge BIN --plugin-dir DIR]   seeds for every target
  make_seeds.py --dict                                      rewrites tests/fuzz/stream.dict

stream  every recorded stream (plugins/*/tests/streams/*.json), as it is and in the binary framing
entity  checkpoints written by `planetbridge check --entity` from a few small recorded streams
        (needs --planetbridge), each twice: mode byte 0 (as is) and 1 (CRC mode, fuzz_entity.cpp)
suite   config/suites/*.yaml and the suites written inside tests/*.cpp
http    requests: GET of every endpoint, POST of small streams (JSON and framed, plain and chunked)
Only the standard library: runs on a fresh machine with Debian's python3.
"""
import argparse
import base64
import glob
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STREAMS = sorted(glob.glob(os.path.join(ROOT, "plugins", "*", "tests", "streams", "*.json")))
MAGIC = b"PBSTRM\x00\x01"
# Small streams that cover the op families, checkpointed for the entity seeds and posted for http.
ENTITY_STREAMS = ["template/two_layers", "pytorch/linear_no_bias", "pytorch/conv1d_pools", "pytorch/norms",
                  "pytorch/embedding", "pytorch/gru_last", "sklearn/scaler_linreg_1d", "jax/residual",
                  "tensorflow/functional_add", "pytorch/flatten"]
POST_STREAMS = ["template/two_layers", "pytorch/linear_no_bias", "sklearn/logreg_binary"]


def stream_path(short):
    planet, name = short.split("/")
    return os.path.join(ROOT, "plugins", planet, "tests", "streams", name + ".json")


def align(n, a=64):
    return (n + a - 1) // a * a


def framed(doc):
    """The stream in the binary framing: every b64 tensor moved to the data section."""
    doc = json.loads(json.dumps(doc))
    data = b""
    for spec in doc.get("tensors", {}).values():
        if isinstance(spec, dict) and "b64" in spec:
            raw = base64.b64decode(spec.pop("b64"))
            data += b"\x00" * (align(len(data)) - len(data))
            spec["offset"] = len(data)
            spec["nbytes"] = len(raw)
            data += raw
    data += b"\x00" * (align(len(data)) - len(data))
    text = json.dumps(doc, separators=(",", ":")).encode()
    head = MAGIC + struct.pack("<QQ", len(text), len(data)) + text
    return head + b"\x00" * (align(len(head)) - len(head)) + data


def write(out, target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def stream_seeds(out):
    for path in STREAMS:
        planet = path.split(os.sep)[-4]
        name = planet + "_" + os.path.splitext(os.path.basename(path))[0]
        raw = open(path, "rb").read()
        write(out, "stream", name + ".json", raw)
        write(out, "stream", name + ".pbstream", framed(json.loads(raw)))
    return len(STREAMS) * 2


def entity_seeds(out, planetbridge, plugin_dir):
    n = 0
    with tempfile.TemporaryDirectory(prefix="pb_fuzz_seeds_") as tmp:
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0", OMP_NUM_THREADS="1")
        for short in ENTITY_STREAMS:
            entity = os.path.join(tmp, short.replace("/", "_") + ".entity")
            subprocess.run([planetbridge, "--plugin-dir", plugin_dir, "check", stream_path(short), "--entity", entity,
                            "--data", os.path.join(tmp, "runs")],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            if not os.path.exists(entity):
                print("make_seeds: no checkpoint from %s (skipped)" % short, file=sys.stderr)
                continue
            data = open(entity, "rb").read()
            base = os.path.basename(entity)
            write(out, "entity", "plain_" + base, b"\x00" + data)
            write(out, "entity", "crc_" + base, b"\x01" + data)
            n += 2
    return n


def suites_in_sources():
    """YAML suites written in the tests: raw strings and plain literals that hold a suite."""
    found = []
    for src in sorted(glob.glob(os.path.join(ROOT, "tests", "*.cpp")) + glob.glob(os.path.join(ROOT, "plugins", "*", "tests", "*.cpp"))):
        text = open(src, encoding="utf-8", errors="replace").read()
        for m in re.finditer(r'R"([^(\s]*)\((.*?)\)\1"', text, re.S):
            if "fixtures" in m.group(2) or "suite:" in m.group(2):
                found.append(m.group(2))
        for m in re.finditer(r'"((?:[^"\\\n]|\\.)*)"', text):
            s = m.group(1)
            if "suite:" in s and "\\n" in s:
                try:
                    found.append(s.encode("latin-1", "backslashreplace").decode("unicode_escape"))
                except UnicodeDecodeError:
                    pass
    return found


def suite_seeds(out):
    n = 0
    for path in sorted(glob.glob(os.path.join(ROOT, "config", "suites", "*.yaml"))):
        write(out, "suite", os.path.basename(path), open(path, "rb").read())
        n += 1
    for text in suites_in_sources():
        data = text.encode("utf-8", "replace")
        write(out, "suite", "test_" + hashlib.sha1(data).hexdigest()[:12] + ".yaml", data)
        n += 1
    return n


def http_seeds(out):
    gets = ["/health", "/api/v1/plugins", "/api/v1/runs", "/api/v1/runs?limit=2", "/", "/?limit=3",
            "/runs/20240101T000000Z-000001", "/api/v1/runs/20240101T000000Z-000001",
            "/api/v1/entities/20240101T000000Z-000001", "/api/v1/streams/20240101T000000Z-000001", "/nowhere"]
    n = 0
    for i, path in enumerate(gets):
        write(out, "http", "get_%02d" % i, ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
        n += 1
    # Two requests on one connection (keep-alive).
    write(out, "http", "get_pipelined", b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /api/v1/runs?limit=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    n += 1
    for short in POST_STREAMS:
        planet = short.split("/")[0]
        doc = json.load(open(stream_path(short)))
        bodies = [("json", "application/json", json.dumps(doc, separators=(",", ":")).encode()),
                  ("framed", "application/x-planetbridge-stream", framed(doc))]
        for kind, ctype, body in bodies:
            url = "/api/v1/loom/stream/%s?atol=1e-4&rtol=1e-4" % planet
            head = "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n" % (url, ctype)
            write(out, "http", "post_%s_%s" % (short.replace("/", "_"), kind),
                  (head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body)
            chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 512]), body[i:i + 512]) for i in range(0, len(body), 512))
            write(out, "http", "post_%s_%s_chunked" % (short.replace("/", "_"), kind),
                  (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunked + b"0\r\n\r\n")
            n += 2
    return n


def make_dict():
    keys, vals = set(), set()

    def walk(o, parent=None):
        if isinstance(o, dict):
            for k, v in o.items():
                keys.add(k)
                if k != "b64":
                    walk(v, k)
        elif isinstance(o, list):
            for v in o:
                walk(v, parent)
        elif isinstance(o, str):
            vals.add(o)

    for path in STREAMS:
        d = json.load(open(path))
        walk({k: v for k, v in d.items() if k != "tensors"})
        for spec in d.get("tensors", {}).values():
            keys.update(spec)
    word = re.compile(r"^[a-z][a-z_]*[a-z]$")        # schema keys, not instance names
    cls = re.compile(r"^[A-Z][A-Za-z0-9]*[A-Za-z]$")  # module / layer / estimator class names
    dotted = re.compile(r"^(nn|_operator|torch|F|jnp|jax)\.[a-z_0-9]+$")
    entries = {k for k in keys if word.match(k)}
    entries |= {v for v in vals if cls.match(v) or dotted.match(v) or (word.match(v) and len(v) <= 24)}
    core = ["format", "planetbridge.stream", "version", "planet", "planet_version", "engine", "model_id", "model",
            "tensors", "dtype", "shape", "b64", "data", "offset", "nbytes", "inputs", "expected", "taps", "composed",
            "allow_nonfinite", "f32", "f64", "i32", "i64", "pytorch", "tensorflow", "jax", "sklearn", "template"]
    lines = ["# libFuzzer dictionary for fuzz_stream (docs/fuzzing.md): the stream's own keys and values,",
             "# then the keys, class names and op names of the planets' recorded streams",
             "# (plugins/*/tests/streams/*.json; regenerate with tests/fuzz/make_seeds.py --dict).",
             'magic="PBSTRM\\x00\\x01"', 'json_len="\\x00\\x00\\x00\\x00\\x00\\x00\\x00"',
             '"true"', '"false"', '"null"', '"1e400"', '"-1"', '"4294967296"', '"9223372036854775807"', '"[]"', '"{}"',
             '"NaN"', '"Infinity"']
    lines += ['"\\"%s\\""' % e for e in core]
    lines += ['"\\"%s\\""' % e for e in sorted(entries - set(core))]
    with open(os.path.join(ROOT, "tests", "fuzz", "stream.dict"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("make_seeds: %d entries in tests/fuzz/stream.dict" % len(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?")
    ap.add_argument("--planetbridge", help="the CLI that writes the entity seeds")
    ap.add_argument("--plugin-dir")
    ap.add_argument("--dict", action="store_true", help="rewrite tests/fuzz/stream.dict and stop")
    a = ap.parse_args()
    if a.dict:
        make_dict()
        return
    if not a.out:
        ap.error("OUT is required")
    counts = {"stream": stream_seeds(a.out), "suite": suite_seeds(a.out), "http": http_seeds(a.out)}
    if a.planetbridge:
        counts["entity"] = entity_seeds(a.out, a.planetbridge, a.plugin_dir or "")
    print("make_seeds: " + ", ".join("%s %d" % kv for kv in sorted(counts.items())) + " in " + a.out)


if __name__ == "__main__":
    main()
