"""Test helpers shared by the Python planets' capture tests: an independent frame reader and a
way to run a capture's --serve. Not used by the captures themselves.

    sys.path[:0] = [HERE, "<repo>/capture/python"]
    from pbstream_testing import read_frames, read_one, run_serve
"""

import json
import struct
import subprocess
import sys

import numpy as np

_NP = {"f32": "<f4", "f64": "<f8", "i32": "<i4", "i64": "<i8", "f16": "<f2", "bool": "?", "i8": "i1", "u8": "u1"}


def read_frames(buf):
    """A minimal reader independent of pbstream: [(doc, {name: array})] for consecutive frames,
    checking the layout (magic, zero padding, 64-byte aligned offsets, sizes)."""
    frames, pos = [], 0
    while pos < len(buf):
        assert buf[pos:pos + 8] == b"PBSTRM\x00\x01", "bad magic"
        jlen, dlen = struct.unpack_from("<QQ", buf, pos + 8)
        doc = json.loads(buf[pos + 24:pos + 24 + jlen].decode("utf-8"))
        start = pos + (24 + jlen + 63) // 64 * 64
        assert all(b == 0 for b in buf[pos + 24 + jlen:start]), "JSON padding is not zero"
        data = buf[start:start + dlen]
        assert len(data) == dlen, "truncated data section"
        tensors = {}
        for name, t in doc.get("tensors", {}).items():
            assert t["offset"] % 64 == 0 and t["offset"] + t["nbytes"] <= dlen, name
            arr = np.frombuffer(data, dtype=_NP[t["dtype"]], count=int(np.prod(t["shape"], dtype=np.int64)),
                                offset=t["offset"])
            assert arr.nbytes == t["nbytes"], name
            tensors[name] = arr.reshape(t["shape"])
        frames.append((doc, tensors))
        pos = start + dlen
    return frames


def read_one(frame):
    """The one (doc, tensors) of a single frame: bytes, or a Stream (anything with to_bytes())."""
    frames = read_frames(frame.to_bytes() if hasattr(frame, "to_bytes") else frame)
    assert len(frames) == 1
    return frames[0]


def run_serve(script, request, *args, timeout=120):
    """Runs `script --serve` (or, with args, `python -c *args`) from / with the request on stdin."""
    cmd = [sys.executable, script, "--serve"] if not args else [sys.executable, "-c", *args]
    return subprocess.run(cmd, input=json.dumps(request).encode(), capture_output=True, timeout=timeout, cwd="/")
