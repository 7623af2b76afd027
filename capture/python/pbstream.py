"""Stream writer, capture-protocol loop, HTTP client and capture CLI shared by the Python planets.

Implements the binary framing of docs/stream-format.md, the capture protocol of
docs/capture-protocol.md and posting to `planetbridge serve` (docs/http-api.md); `Stream` is
what every planet's capture() returns, `Spec` reads a fixture spec, and `main()` is the whole
capture.py CLI (--serve / --suite). Standard library + numpy only (PyYAML for --suite), so
every planet can import it.
"""

import argparse
import fnmatch
import http.client
import json
import math
import os
import struct
import sys
import traceback
import urllib.parse

import numpy as np

MAGIC = b"PBSTRM\x00\x01"
ALIGN = 64
HEADER_BYTES = 24  # magic, u64 JSON length, u64 data length

# Keyed by (kind, itemsize) so byte order does not matter: tensors are always written LE.
# The narrow ones (f16, bool, i8, u8) are widened exactly by the reader (docs/stream-format.md).
_DTYPES = {("f", 4): "f32", ("f", 8): "f64", ("i", 4): "i32", ("i", 8): "i64",
           ("f", 2): "f16", ("b", 1): "bool", ("i", 1): "i8", ("u", 1): "u8"}


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


def _tensor_view(name, array):
    """The tensor's dtype code, shape and its bytes as a C-ordered little-endian view (a copy
    only when the array is not already one)."""
    a = np.asarray(array)
    code = _DTYPES.get((a.dtype.kind, a.dtype.itemsize))
    if code is None:
        raise ValueError(f'tensor "{name}": unsupported dtype {a.dtype} (expected float32, float64, int32, int64, float16, bool, int8 or uint8)')
    # Not np.ascontiguousarray: it turns a scalar (shape []) into shape [1].
    a = a.astype(a.dtype.newbyteorder("<"), order="C", copy=False)
    return code, [int(d) for d in a.shape], memoryview(a.reshape(-1)).cast("B") if a.size else memoryview(b"")


class _Frame:
    """One binary frame, planned before a byte is written (a bad tensor fails here, not halfway
    through the output): the header and JSON, then each tensor's bytes from its own memory."""

    def __init__(self, doc, tensors=None):
        doc = dict(doc)
        self.views = []
        offset = 0
        if tensors is not None:
            table = dict(doc.get("tensors") or {})
            for name in sorted(tensors):
                code, shape, view = _tensor_view(name, tensors[name])
                # Flags the capture set on the entry beforehand (allow_nonfinite) are kept.
                table[name] = {**table.get(name, {}), "dtype": code, "shape": shape, "offset": offset, "nbytes": view.nbytes}
                self.views.append(view)
                offset = align_up(offset + view.nbytes)
            doc["tensors"] = table
        text = dumps(doc)
        self.head = MAGIC + struct.pack("<QQ", len(text), offset) + text
        self.head += bytes(align_up(len(self.head)) - len(self.head))
        self.size = len(self.head) + offset

    def chunks(self):
        """The frame's bytes in order: no copy of the data."""
        yield self.head
        for view in self.views:
            yield view
            if view.nbytes % ALIGN:
                yield bytes(ALIGN - view.nbytes % ALIGN)

    def write(self, fp):
        for chunk in self.chunks():
            fp.write(chunk)


def encode_frame(doc, tensors=None):
    """One binary frame as bytes: `doc` with `tensors` (name -> numpy array) in the data section.

    `doc` is not modified: a copy gets doc["tensors"][name] = {dtype, shape, offset, nbytes}
    for every tensor, in sorted-name order (deterministic output, same layout as the C++
    writer). With tensors=None the document is framed as is (events). For large models use
    Stream.write / Stream.post, which stream the tensors instead of building the frame.
    """
    return b"".join(bytes(c) for c in _Frame(doc, tensors).chunks())


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
        if isinstance(frame, _Frame):
            frame.write(stdout)  # tensors straight from their memory
        else:
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
            frame = _Frame(doc, tensors)
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


def post(url, frame, planet, timeout=600, atol=None, rtol=None):
    """POSTs one framed stream (bytes, or a Stream's planned frame, sent piece by piece from the
    tensors' memory under its Content-Length) to a `planetbridge serve`; returns its JSON result.

    url is the server ("http://127.0.0.1:9876"); the stream goes to
    /api/v1/loom/stream/<planet>. atol/rtol override the server's tolerance. The result has
    "verdict", "id", per-output errors, timings and "links" (docs/http-api.md). Raises PostError
    when the server refuses the stream (with the JSON path it names) or cannot be reached.
    """
    parts = urllib.parse.urlsplit(url)
    path = parts.path.rstrip("/") + "/api/v1/loom/stream/" + urllib.parse.quote(planet, safe="")
    query = {k: repr(float(v)) for k, v in (("atol", atol), ("rtol", rtol)) if v is not None}
    if query:
        path += "?" + urllib.parse.urlencode(query)
    chunks, size = (frame.chunks(), frame.size) if isinstance(frame, _Frame) else ([bytes(frame)], len(frame))
    conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_class(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", STREAM_CONTENT_TYPE)
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        try:
            for chunk in chunks:
                conn.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered before reading it all (a refusal): its answer follows
        resp = conn.getresponse()
        body = resp.read()
    except (OSError, http.client.HTTPException) as e:
        raise PostError(None, "", f"cannot reach {url}: {e}") from None
    finally:
        conn.close()
    if resp.status == 200:
        return json.loads(body)
    try:
        err = json.loads(body)["error"]
        path_, message = str(err.get("path", "")), str(err.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        path_, message = "", body.decode("utf-8", "replace").strip() or resp.reason
    raise PostError(resp.status, path_, f"HTTP {resp.status}: {message}")


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


class Stream:
    """A captured model: the document (without tensor offsets) and its tensors by name."""

    def __init__(self, doc, tensors):
        self.doc = doc
        self.tensors = tensors

    def to_bytes(self):
        return encode_frame(self.doc, self.tensors)

    def write(self, path):
        """Writes the frame to `path`: the header, then each tensor from its own memory.

        A file is replaced whole (a temporary beside it, then renamed): a reader that has the
        old one mapped (planetbridge maps streams) keeps it intact. A fifo or device is written
        through."""
        frame = _Frame(self.doc, self.tensors)
        if os.path.exists(path) and not os.path.isfile(path):
            with open(path, "wb") as f:
                frame.write(f)
            return
        tmp = f"{path}.tmp.{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                frame.write(f)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    def post(self, url, **kwargs):
        """Streams it to a `planetbridge serve` at url; returns the result (verdict, errors, run id).

        kwargs go to pbstream.post (timeout, atol, rtol); raises pbstream.PostError on refusal."""
        return post(url, _Frame(self.doc, self.tensors), self.doc["planet"], **kwargs)


class Spec:
    """Typed, strict access to a fixture spec: errors name the field (spec.kernel: ...)."""

    def __init__(self, spec, known):
        if not isinstance(spec, dict):
            raise ValueError(f"spec: expected a mapping, got {spec!r}")
        unknown = sorted(set(spec) - set(known))
        if unknown:
            raise ValueError(f"spec.{unknown[0]}: unknown field (known: {', '.join(sorted(known))})")
        self.spec = spec

    def int(self, key, default=None, minimum=1):
        v = self.spec.get(key, default)
        if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
            raise ValueError(f"spec.{key}: expected an integer >= {minimum}, got {v!r}")
        return v

    def ints(self, key):
        v = self.spec.get(key)
        if not isinstance(v, list) or not v or any(not isinstance(u, int) or isinstance(u, bool) or u <= 0 for u in v):
            raise ValueError(f"spec.{key}: expected a non-empty list of positive integers, got {v!r}")
        return v

    def choice(self, key, options, default=None):
        v = self.spec.get(key, default)
        if v not in options:
            raise ValueError(f"spec.{key}: expected one of {', '.join(map(str, options))}, got {v!r}")
        return v

    def bool(self, key, default):
        v = self.spec.get(key, default)
        if not isinstance(v, bool):
            raise ValueError(f"spec.{key}: expected true or false, got {v!r}")
        return v

    def float(self, key, default):
        v = self.spec.get(key, default)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"spec.{key}: expected a positive number, got {v!r}")
        return float(v)


DENSE_KEYS = frozenset({"input", "units", "activation", "bias"})


def dense_spec(spec, activations, lacks=None, known=None):
    """The suite's "dense" spec {input, units, activation = "relu", bias = true}, checked field by
    field in that order: returns (input, units, activation, bias); errors name the field.

    activations: the activation names the planet builds. lacks(name): why the planet's framework
    has no such activation (raised as NotApplicable), or None. known: the names the "unknown
    activation" error lists (default: activations)."""
    if not isinstance(spec, dict):
        raise ValueError(f"spec: expected a mapping, got {spec!r}")
    unknown = sorted(set(spec) - DENSE_KEYS)
    if unknown:
        raise ValueError(f"spec.{unknown[0]}: unknown field for layer 'dense' (known: {', '.join(sorted(DENSE_KEYS))})")
    width = spec.get("input")
    if not isinstance(width, int) or isinstance(width, bool) or width <= 0:
        raise ValueError(f"spec.input: expected a positive integer, got {width!r}")
    units = spec.get("units")
    if (not isinstance(units, list) or not units
            or any(not isinstance(u, int) or isinstance(u, bool) or u <= 0 for u in units)):
        raise ValueError(f"spec.units: expected a non-empty list of positive integers, got {units!r}")
    activation = spec.get("activation", "relu")
    reason = lacks(activation) if lacks else None
    if reason:
        raise NotApplicable(reason)
    if activation not in activations:
        raise ValueError(f"spec.activation: unknown activation {activation!r} (known: {', '.join(known or activations)})")
    bias = spec.get("bias", True)
    if not isinstance(bias, bool):
        raise ValueError(f"spec.bias: expected true or false, got {bias!r}")
    return width, units, activation, bias


# ------------------------------------------------------------------ the capture.py CLI

def suite_fixtures(path, planet, pattern="*"):
    """The suite's fixtures for `planet` whose id matches pattern (fnmatch), in the capture request's form."""
    import yaml
    with open(path, encoding="utf-8") as f:
        suite = yaml.safe_load(f)
    if not isinstance(suite, dict) or not isinstance(suite.get("fixtures"), list):
        raise ValueError(f"{path}: expected a mapping with a 'fixtures' list")
    defaults = suite.get("defaults") or {}
    selected = []
    for i, fx in enumerate(suite["fixtures"]):
        if not isinstance(fx, dict) or not isinstance(fx.get("id"), str):
            raise ValueError(f"{path}: fixtures[{i}]: expected a mapping with a string 'id'")
        if planet not in (fx.get("planets") or []) or not fnmatch.fnmatchcase(fx["id"], pattern):
            continue
        selected.append({"id": fx["id"], "layer": fx.get("layer"),
                         "samples": fx.get("samples", defaults.get("samples")),
                         "seed": fx.get("seed", defaults.get("seed")),
                         "spec": fx.get("spec")})
    return selected


def run_suite(planet, load_engine, build_fn, suite, pattern="*", out=None, post_url=None):
    """capture.py --suite: every matching fixture to out/<id>.pbstream, to `planetbridge serve`
    at post_url, or (neither) one frame after another to stdout. Returns the exit status: 0, 1
    when a fixture failed (ERROR, REFUSED, a FAIL or ERROR verdict), 2 when nothing could run."""
    try:
        selected = suite_fixtures(suite, planet, pattern)
        load_engine()
    except (OSError, ValueError, ImportError) as e:
        print(f"capture: {e}", file=sys.stderr)
        return 2
    if not selected:
        print(f"capture: no {planet} fixtures in {suite} match {pattern!r}", file=sys.stderr)
        return 2
    if out:
        os.makedirs(out, exist_ok=True)
    failed = 0
    for fx in selected:
        try:
            frame = _Frame(*build_fn(fx))
        except NotApplicable as e:
            print(f"{fx['id']}: not applicable: {e}", file=sys.stderr)
            continue
        except Exception as e:
            failed += 1
            print(f"{fx['id']}: ERROR {type(e).__name__}: {e}", file=sys.stderr)
            continue
        if post_url:
            try:
                result = post(post_url, frame, planet)
            except PostError as e:
                if e.status is None:  # no server there: the other fixtures would fail the same way
                    print(f"capture: {e}", file=sys.stderr)
                    return 2
                failed += 1
                print(f"{fx['id']}: REFUSED {e}", flush=True)
                continue
            print(verdict_line(result), flush=True)
            failed += result.get("verdict") in ("FAIL", "ERROR")
        elif out:
            path = os.path.join(out, fx["id"] + ".pbstream")
            with open(path, "wb") as f:
                frame.write(f)
            print(f"{fx['id']}: {path} ({frame.size} bytes)", file=sys.stderr)
        else:
            frame.write(sys.stdout.buffer)
            sys.stdout.buffer.flush()
            print(f"{fx['id']}: {frame.size} bytes", file=sys.stderr)
    return 1 if failed else 0


def main(planet, engine, load_engine, build_fn, argv=None, description=None):
    """A planet's whole capture.py CLI; returns the exit status.

      capture.py --serve                      the capture protocol (serve())
      capture.py --suite FILE [--fixture GLOB] (--out DIR | --stdout | --post URL)   run_suite()

    load_engine() imports the engine (ImportError when missing) and returns its version;
    build_fn(fixture) returns (doc, tensors) or raises NotApplicable. description is the --help
    text (the planet's capture.py docstring)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--serve", action="store_true", help="speak the capture protocol on stdin/stdout")
    mode.add_argument("--suite", metavar="FILE", help="suite YAML to capture")
    p.add_argument("--fixture", metavar="GLOB", default="*", help="only fixtures whose id matches (fnmatch)")
    dest = p.add_mutually_exclusive_group()
    dest.add_argument("--out", metavar="DIR", help="write DIR/<id>.pbstream per fixture")
    dest.add_argument("--stdout", action="store_true", help="write the frames one after another to stdout")
    dest.add_argument("--post", metavar="URL", help="post each stream to `planetbridge serve` at URL, print the verdicts")
    args = p.parse_args(argv)
    if args.serve:
        if args.out or args.stdout or args.post or args.fixture != "*":
            p.error("--serve takes no --fixture, --out, --stdout or --post")
        return serve(planet, engine, load_engine, build_fn)
    if not (args.out or args.stdout or args.post):
        p.error("--suite needs --out DIR, --stdout or --post URL")
    return run_suite(planet, load_engine, build_fn, args.suite, args.fixture, out=args.out, post_url=args.post)
