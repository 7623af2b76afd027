"""Stream writer, capture-protocol loop and HTTP client shared by the Python planets.

Implements the binary framing of docs/stream-format.md, the capture protocol of
docs/capture-protocol.md and posting to `planetbridge serve` (docs/http-api.md). Standard
library + numpy only, so every planet can import it.
"""

import json
import math
import os
import struct
import sys
import traceback
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

MAGIC = b"PBSTRM\x00\x01"
ALIGN = 64
HEADER_BYTES = 24  # magic, u64 JSON length, u64 data length

# Keyed by (kind, itemsize) so byte order does not matter: tensors are always written LE.
_DTYPES = {("f", 4): "f32", ("f", 8): "f64", ("i", 4): "i32", ("i", 8): "i64"}


class NotApplicable(Exception):
    """Raised by a build function for a fixture the planet cannot express (reported as SKIP)."""


class RequestError(ValueError):
    """The capture request on stdin is malformed."""


class PostError(Exception):
    """`planetbridge serve` refused a stream (status 4xx/5xx) or could not be reached (status None).

    path and message come from the server's {"error": {"path", "message"}} reply."""

    def __init__(self, status, path, message):
        super().__init__(f"{path}: {message}" if path else message)
        self.status, self.path, self.message = status, path, message


def align_up(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


def dumps(doc):
    # Compact UTF-8 like the C++ writer; NaN/Infinity are not JSON, so refuse them here
    # rather than let the host fail on the document.
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def finite_or_repr(x):
    """A float as JSON can carry it: non-finite values become {"repr": ...}."""
    return x if math.isfinite(x) else {"repr": repr(x)}


def _tensor_bytes(name, array):
    a = np.asarray(array)
    code = _DTYPES.get((a.dtype.kind, a.dtype.itemsize))
    if code is None:
        raise ValueError(f'tensor "{name}": unsupported dtype {a.dtype} (expected float32, float64, int32 or int64)')
    # Not np.ascontiguousarray: it turns a scalar (shape []) into shape [1].
    a = a.astype(a.dtype.newbyteorder("<"), order="C", copy=False)
    return code, [int(d) for d in a.shape], a.tobytes(order="C")


def encode_frame(doc, tensors=None):
    """One binary frame: `doc` with `tensors` (name -> numpy array) in the data section.

    `doc` is not modified: a copy gets doc["tensors"][name] = {dtype, shape, offset, nbytes}
    for every tensor, in sorted-name order (deterministic output, same layout as the C++
    writer). With tensors=None the document is framed as is (events).
    """
    doc = dict(doc)
    blobs = []
    offset = 0
    if tensors is not None:
        table = dict(doc.get("tensors") or {})
        for name in sorted(tensors):
            code, shape, raw = _tensor_bytes(name, tensors[name])
            table[name] = {"dtype": code, "shape": shape, "offset": offset, "nbytes": len(raw)}
            blobs.append((offset, raw))
            offset = align_up(offset + len(raw))
        doc["tensors"] = table
    text = dumps(doc)
    data_start = align_up(HEADER_BYTES + len(text))
    out = bytearray(data_start + offset)
    out[0:HEADER_BYTES] = MAGIC + struct.pack("<QQ", len(text), offset)
    out[HEADER_BYTES:HEADER_BYTES + len(text)] = text
    for off, raw in blobs:
        out[data_start + off:data_start + off + len(raw)] = raw
    return bytes(out)


def event_frame(event, **fields):
    """A capture event (hello, unavailable, error, not_applicable) as a frame with no data."""
    doc = {"format": "planetbridge.capture", "version": 1, "event": event}
    doc.update(fields)
    return encode_frame(doc)


def stream_doc(planet, planet_version, engine, model_id, model, inputs, expected, taps=None):
    """The top-level stream document; encode_frame fills in "tensors"."""
    doc = {
        "format": "planetbridge.stream", "version": 1,
        "planet": planet, "planet_version": planet_version, "engine": engine,
        "model_id": model_id, "model": model, "tensors": {},
        "inputs": list(inputs), "expected": list(expected),
    }
    if taps:
        doc["taps"] = dict(taps)
    return doc


def read_request(fp):
    """Parses and checks a capture request; returns its fixtures (dicts with at least "id")."""
    raw = fp.read()
    try:
        req = json.loads(raw)
    except ValueError as e:
        raise RequestError(f"request: invalid JSON: {e}") from None
    if not isinstance(req, dict):
        raise RequestError("request: expected a JSON object")
    if req.get("format") != "planetbridge.capture-request":
        raise RequestError(f'request.format: expected "planetbridge.capture-request", got {req.get("format")!r}')
    version = req.get("version")
    if version != 1 or isinstance(version, bool):
        raise RequestError(f"request.version: unsupported request version {version!r} (this capture reads 1)")
    fixtures = req.get("fixtures")
    if not isinstance(fixtures, list):
        raise RequestError("request.fixtures: expected an array of fixtures")
    for i, fx in enumerate(fixtures):
        if not isinstance(fx, dict):
            raise RequestError(f"request.fixtures[{i}]: expected an object")
        if not isinstance(fx.get("id"), str) or not fx["id"]:
            raise RequestError(f"request.fixtures[{i}].id: expected a non-empty string")
    return fixtures


def serve(planet, engine, engine_version, build_fn, stdin=None, stdout=None):
    """The capture protocol loop; returns the process exit status.

    engine_version is a string or a function returning one; a function that raises (e.g.
    ImportError for a missing engine) turns into the "unavailable" event. build_fn(fixture)
    returns (doc, tensors) or raises NotApplicable(reason); any other exception becomes that
    fixture's error event.
    """
    stdin = stdin if stdin is not None else sys.stdin.buffer
    if stdout is None:
        # Frames go to a private copy of fd 1; fd 1 and sys.stdout then point at stderr, so a
        # stray print (Python or C) in an engine cannot corrupt the frame sequence.
        sys.stdout.flush()
        stdout = os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def send(frame):
        stdout.write(frame)
        stdout.flush()

    try:
        fixtures = read_request(stdin)
    except RequestError as e:
        print(f"{planet} capture: {e}", file=sys.stderr)
        return 2

    try:
        version = engine_version() if callable(engine_version) else engine_version
    except ImportError as e:
        send(event_frame("unavailable", reason=str(e)))
        return 0
    except Exception as e:
        traceback.print_exc()
        send(event_frame("unavailable", reason=f"{type(e).__name__}: {e}"))
        return 0
    send(event_frame("hello", planet=planet, engine=engine, engine_version=version))

    for fx in fixtures:
        fid = fx["id"]
        try:
            doc, tensors = build_fn(fx)
            frame = encode_frame(doc, tensors)
        except NotApplicable as e:
            print(f"{planet} capture: {fid}: not applicable: {e}", file=sys.stderr)
            frame = event_frame("not_applicable", model_id=fid, reason=str(e))
        except Exception as e:
            print(f"{planet} capture: {fid}: error", file=sys.stderr)
            traceback.print_exc()
            frame = event_frame("error", model_id=fid, message=f"{type(e).__name__}: {e}")
        send(frame)
    return 0


STREAM_CONTENT_TYPE = "application/x-planetbridge-stream"


def post(url, frame_bytes, planet, timeout=600, atol=None, rtol=None):
    """POSTs one framed stream to a `planetbridge serve` and returns its JSON result.

    url is the server ("http://127.0.0.1:9876"); the stream goes to
    /api/v1/loom/stream/<planet>. atol/rtol override the server's tolerance. The result has
    "verdict", "id", per-output errors, timings and "links" (docs/http-api.md). Raises PostError
    when the server refuses the stream (with the JSON path it names) or cannot be reached.
    """
    endpoint = url.rstrip("/") + "/api/v1/loom/stream/" + urllib.parse.quote(planet, safe="")
    query = {k: repr(float(v)) for k, v in (("atol", atol), ("rtol", rtol)) if v is not None}
    if query:
        endpoint += "?" + urllib.parse.urlencode(query)
    req = urllib.request.Request(endpoint, data=bytes(frame_bytes), method="POST",
                                 headers={"Content-Type": STREAM_CONTENT_TYPE})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            err = json.loads(body)["error"]
            path, message = str(err.get("path", "")), str(err.get("message", ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            path, message = "", body.decode("utf-8", "replace").strip() or e.reason
        raise PostError(e.code, path, f"HTTP {e.code}: {message}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise PostError(None, "", f"cannot reach {url}: {reason}") from None


def verdict_line(result):
    """One line for a post() result: "<model> <VERDICT> max|diff| 1.2e-07 · run <id>" (+ why)."""
    line = f'{result.get("fixture", "?")}: {result.get("verdict", "?")}'
    if result.get("verdict") in ("EXACT", "PASS", "FAIL"):
        line += f' max|diff| {result.get("max_abs", 0):.2e} max rel {result.get("max_rel", 0):.2e}'
        line += "" if result.get("reload_identical") else " (reload DIFFERS)"
    line += f' · run {result.get("id", "?")}'
    if result.get("message"):
        line += f' · {result["message"]}'
    if result.get("first_divergence"):
        line += f' · first diverging node: {result["first_divergence"]}'
    return line
