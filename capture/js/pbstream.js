'use strict';
/**
 * Stream writer and capture-protocol loop shared by the Node planets (CommonJS, no dependencies).
 * The JS twin of capture/python/pbstream.py: binary framing of docs/stream-format.md and the
 * capture protocol of docs/capture-protocol.md.
 *
 *   const pb = require('<repo>/capture/js/pbstream.js');
 *
 *   pb.encodeFrame(doc, tensors?) -> Buffer
 *       One binary frame. `tensors` maps name -> {data: TypedArray, shape: [int...]}; the dtype
 *       follows the array (Float32Array f32, Float64Array f64, Int32Array i32, BigInt64Array
 *       i64), or give {dtype, shape, data} with data any array-like of that dtype. A copy of
 *       `doc` gets doc.tensors[name] = {dtype, shape, offset, nbytes}, in sorted-name order
 *       (deterministic bytes, same layout as the Python and C++ writers). Without `tensors`
 *       the document is framed as is (events).
 *   pb.encodeJson(doc, tensors) -> string
 *       The same stream as one plain JSON document, tensors inline as base64 ("b64"): for small
 *       recorded test streams kept as text. Not for real sizes.
 *   pb.eventFrame(event, fields?) -> Buffer
 *       A capture event ("hello", "unavailable", "error", "not_applicable") with no data.
 *   pb.streamDoc({planet, planetVersion, engine, modelId, model, inputs, expected, taps?})
 *       The top-level stream document; encodeFrame fills in "tensors".
 *   pb.serve({planet, engine, engineVersion, build}) -> Promise<exit status>
 *       The capture protocol loop on stdin/stdout. `engineVersion` is a string or an (async)
 *       function returning one; if the function throws (e.g. require() of a missing package)
 *       the "unavailable" event carries the reason. `build(fixture)` (may be async) returns
 *       {doc, tensors} or throws NotApplicable(reason) (-> SKIP); any other error becomes the
 *       fixture's "error" event. While serving, anything written to process.stdout (console.log
 *       included) goes to stderr, so stray prints cannot corrupt the frame sequence. Resolves
 *       to 0, or 2 for a malformed request (reason on stderr, nothing on stdout).
 *   pb.post(url, frameBytes, planet, {atol, rtol, timeoutMs}?) -> Promise<result>
 *       POSTs one frame to `planetbridge serve` at url ("http://127.0.0.1:9876") as
 *       /api/v1/loom/stream/<planet> (Node's global fetch) and resolves to the JSON result
 *       (verdict, errors, run id; docs/http-api.md). Rejects with PostError: `status` (null when
 *       the server cannot be reached), `path` and `message` from the server's error reply.
 *   pb.verdictLine(result) -> "<model>: <VERDICT> max|diff| ... · run <id>"
 *   pb.NotApplicable    Error class: the planet cannot express this fixture.
 *   pb.readFrames(buf) -> [{doc, tensors}]
 *       Splits concatenated frames and decodes offset/nbytes tensors into typed arrays (tests).
 *   pb.finiteOrRepr(x)  A number as JSON can carry it ({repr: "NaN"} otherwise).
 *   new pb.Stream(doc, tensors)
 *       A captured model, what every planet's capture() returns: .toBytes() (the frame) and
 *       .write(file).
 *   new pb.Spec(spec, known, {nullIsAbsent}?)
 *       Typed, strict access to a fixture spec (int, ints, choice, bool, number); every error
 *       names the field ("spec.kernel: ..."). A key that is absent (or null, with nullIsAbsent)
 *       takes the default.
 *   pb.denseSpec(spec, activations, {lacks, nullIsAbsent}?) -> {input, units, activation, bias}
 *       The suite's "dense" spec, checked field by field in that order (activation defaults to
 *       "relu", bias to true). `activations` maps the names the planet builds; lacks(name)
 *       returns why the planet's framework has no such activation (thrown as NotApplicable).
 */

const os = require('os');

const MAGIC = Buffer.from('PBSTRM\x00\x01', 'latin1');
const ALIGN = 64;
const HEADER_BYTES = 24; // magic, u64 JSON length, u64 data length

const DTYPES = {
  f32: Float32Array,
  f64: Float64Array,
  i32: Int32Array,
  i64: BigInt64Array,
};

class NotApplicable extends Error {
  constructor(reason) {
    super(reason);
    this.name = 'NotApplicable';
  }
}

class RequestError extends Error {
  constructor(message) {
    super(message);
    this.name = 'RequestError';
  }
}

class PostError extends Error {
  constructor(status, path, message) {
    super(path ? `${path}: ${message}` : message);
    this.name = 'PostError';
    Object.assign(this, { status, path });
  }
}

if (os.endianness() !== 'LE') throw new Error('pbstream.js writes typed arrays as is and needs a little-endian host');

const alignUp = (n) => Math.ceil(n / ALIGN) * ALIGN;

// JSON cannot carry NaN/Infinity (JSON.stringify would silently write null): refuse them here
// rather than let the host fail on the document.
function dumps(doc) {
  return Buffer.from(
    JSON.stringify(doc, (key, v) => {
      if (typeof v === 'number' && !Number.isFinite(v)) throw new Error(`non-finite number ${v} at key "${key}"; use finiteOrRepr()`);
      return v;
    }),
    'utf8'
  );
}

function finiteOrRepr(x) {
  return Number.isFinite(x) ? x : { repr: String(x) };
}

function dtypeOf(data) {
  for (const [code, Ctor] of Object.entries(DTYPES)) if (data instanceof Ctor) return code;
  return null;
}

function tensorBytes(name, t) {
  if (!t || typeof t !== 'object' || t.data == null) throw new Error(`tensor "${name}": expected {data, shape}`);
  const shape = t.shape;
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0))
    throw new Error(`tensor "${name}": shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  const code = t.dtype || dtypeOf(t.data);
  const Ctor = DTYPES[code];
  if (!Ctor) throw new Error(`tensor "${name}": unsupported dtype ${t.dtype || t.data.constructor.name} (expected f32, f64, i32 or i64)`);
  let data = t.data instanceof Ctor ? t.data : Ctor.from(t.data, code === 'i64' ? BigInt : undefined);
  const numel = shape.reduce((a, b) => a * b, 1);
  if (data.length !== numel) throw new Error(`tensor "${name}": ${data.length} elements, shape [${shape.join(', ')}] needs ${numel}`);
  return { code, shape: shape.slice(), raw: Buffer.from(data.buffer, data.byteOffset, data.byteLength) };
}

function encodeFrame(doc, tensors) {
  doc = { ...doc };
  const blobs = [];
  let offset = 0;
  if (tensors != null) {
    const table = { ...(doc.tensors || {}) };
    for (const name of Object.keys(tensors).sort()) {
      const { code, shape, raw } = tensorBytes(name, tensors[name]);
      table[name] = { dtype: code, shape, offset, nbytes: raw.length };
      blobs.push([offset, raw]);
      offset = alignUp(offset + raw.length);
    }
    doc.tensors = table;
  }
  const text = dumps(doc);
  const dataStart = alignUp(HEADER_BYTES + text.length);
  const out = Buffer.alloc(dataStart + offset); // zero-filled: the padding is zeros
  MAGIC.copy(out, 0);
  out.writeBigUInt64LE(BigInt(text.length), 8);
  out.writeBigUInt64LE(BigInt(offset), 16);
  text.copy(out, HEADER_BYTES);
  for (const [off, raw] of blobs) raw.copy(out, dataStart + off);
  return out;
}

function encodeJson(doc, tensors) {
  const table = { ...(doc.tensors || {}) };
  for (const name of Object.keys(tensors).sort()) {
    const { code, shape, raw } = tensorBytes(name, tensors[name]);
    table[name] = { dtype: code, shape, b64: raw.toString('base64') };
  }
  return dumps({ ...doc, tensors: table }).toString('utf8');
}

function eventFrame(event, fields = {}) {
  return encodeFrame({ format: 'planetbridge.capture', version: 1, event, ...fields });
}

function streamDoc({ planet, planetVersion, engine, modelId, model, inputs, expected, taps }) {
  const doc = {
    format: 'planetbridge.stream', version: 1,
    planet, planet_version: planetVersion, engine,
    model_id: modelId, model, tensors: {},
    inputs: [...inputs], expected: [...expected],
  };
  if (taps && Object.keys(taps).length) doc.taps = { ...taps };
  return doc;
}

function readFrames(buf) {
  const frames = [];
  let pos = 0;
  while (pos < buf.length) {
    if (buf.length - pos < HEADER_BYTES || !buf.subarray(pos, pos + 8).equals(MAGIC)) throw new Error(`no frame magic at byte ${pos}`);
    const j = Number(buf.readBigUInt64LE(pos + 8));
    const d = Number(buf.readBigUInt64LE(pos + 16));
    const dataStart = pos + alignUp(HEADER_BYTES + j);
    if (dataStart + d > buf.length) throw new Error(`truncated frame at byte ${pos}`);
    const doc = JSON.parse(buf.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + j).toString('utf8'));
    const tensors = {};
    for (const [name, t] of Object.entries(doc.tensors || {})) {
      if (t.offset == null) continue;
      const Ctor = DTYPES[t.dtype];
      const bytes = Buffer.from(buf.subarray(dataStart + t.offset, dataStart + t.offset + t.nbytes)); // aligned copy
      tensors[name] = { dtype: t.dtype, shape: t.shape, data: new Ctor(bytes.buffer, bytes.byteOffset, t.nbytes / Ctor.BYTES_PER_ELEMENT) };
    }
    frames.push({ doc, tensors });
    pos = dataStart + d;
  }
  return frames;
}

function parseRequest(raw) {
  let req;
  try {
    req = JSON.parse(raw);
  } catch (e) {
    throw new RequestError(`request: invalid JSON: ${e.message}`);
  }
  if (!req || typeof req !== 'object' || Array.isArray(req)) throw new RequestError('request: expected a JSON object');
  if (req.format !== 'planetbridge.capture-request')
    throw new RequestError(`request.format: expected "planetbridge.capture-request", got ${JSON.stringify(req.format)}`);
  if (req.version !== 1) throw new RequestError(`request.version: unsupported request version ${JSON.stringify(req.version)} (this capture reads 1)`);
  if (!Array.isArray(req.fixtures)) throw new RequestError('request.fixtures: expected an array of fixtures');
  req.fixtures.forEach((fx, i) => {
    if (!fx || typeof fx !== 'object' || Array.isArray(fx)) throw new RequestError(`request.fixtures[${i}]: expected an object`);
    if (typeof fx.id !== 'string' || !fx.id) throw new RequestError(`request.fixtures[${i}].id: expected a non-empty string`);
  });
  return req.fixtures;
}

async function readAll(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

// "Cannot find module 'x'\nRequire stack: ..." -> its first line; other errors keep their type.
function reason(e) {
  if (e && e.code === 'MODULE_NOT_FOUND') return String(e.message).split('\n')[0];
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

async function serve({ planet, engine, engineVersion, build, stdin = process.stdin, stdout = null }) {
  let send;
  if (stdout) {
    send = (frame) => new Promise((res, rej) => stdout.write(frame, (err) => (err ? rej(err) : res())));
  } else {
    // Frames go through the real stdout; every other write to it is rerouted to stderr.
    const realWrite = process.stdout.write.bind(process.stdout);
    process.stdout.write = (chunk, encoding, cb) => process.stderr.write(chunk, encoding, cb);
    send = (frame) => new Promise((res, rej) => realWrite(frame, (err) => (err ? rej(err) : res())));
  }

  let fixtures;
  try {
    fixtures = parseRequest(await readAll(stdin));
  } catch (e) {
    if (!(e instanceof RequestError)) throw e;
    process.stderr.write(`${planet} capture: ${e.message}\n`);
    return 2;
  }

  let version;
  try {
    version = typeof engineVersion === 'function' ? await engineVersion() : engineVersion;
  } catch (e) {
    if (!(e && e.code === 'MODULE_NOT_FOUND')) process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
    await send(eventFrame('unavailable', { reason: reason(e) }));
    return 0;
  }
  await send(eventFrame('hello', { planet, engine, engine_version: version }));

  for (const fx of fixtures) {
    let frame;
    try {
      const { doc, tensors } = await build(fx);
      frame = encodeFrame(doc, tensors);
    } catch (e) {
      if (e instanceof NotApplicable) {
        process.stderr.write(`${planet} capture: ${fx.id}: not applicable: ${e.message}\n`);
        frame = eventFrame('not_applicable', { model_id: fx.id, reason: e.message });
      } else {
        process.stderr.write(`${planet} capture: ${fx.id}: error\n${e && e.stack ? e.stack : e}\n`);
        frame = eventFrame('error', { model_id: fx.id, message: reason(e) });
      }
    }
    await send(frame);
  }
  return 0;
}

class Stream {
  constructor(doc, tensors) {
    this.doc = doc;
    this.tensors = tensors;
  }
  toBytes() {
    return encodeFrame(this.doc, this.tensors);
  }
  write(file) {
    writeWhole(file, this.toBytes());
  }
}

// A file is replaced whole (a temporary beside it, then renamed): a reader that has the old
// one mapped (planetbridge maps streams) keeps it intact. A fifo or device is written through.
function writeWhole(file, bytes) {
  const fs = require('fs');
  let st = null;
  try {
    st = fs.statSync(file);
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
  }
  if (st && !st.isFile()) return fs.writeFileSync(file, bytes);
  const tmp = `${file}.tmp.${process.pid}`;
  try {
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

const isPosInt = (v) => Number.isInteger(v) && v > 0;
const orDefault = (v, fallback, nullIsAbsent) => (v === undefined || (v === null && nullIsAbsent) ? fallback : v);

class Spec {
  constructor(spec, known, { nullIsAbsent = false } = {}) {
    if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new Error(`spec: expected a mapping, got ${JSON.stringify(spec)}`);
    const unknown = Object.keys(spec).filter((k) => !known.includes(k)).sort();
    if (unknown.length) throw new Error(`spec.${unknown[0]}: unknown field (known: ${[...known].sort().join(', ')})`);
    this.spec = spec;
    this.nullIsAbsent = nullIsAbsent;
  }

  get(key, fallback) {
    return orDefault(this.spec[key], fallback, this.nullIsAbsent);
  }

  int(key, fallback, minimum = 1) {
    const v = this.get(key, fallback);
    if (!Number.isInteger(v) || v < minimum) throw new Error(`spec.${key}: expected an integer >= ${minimum}, got ${JSON.stringify(v)}`);
    return v;
  }

  ints(key) {
    const v = this.spec[key];
    if (!Array.isArray(v) || !v.length || !v.every(isPosInt)) throw new Error(`spec.${key}: expected a non-empty list of positive integers, got ${JSON.stringify(v)}`);
    return v;
  }

  choice(key, options, fallback) {
    const v = this.get(key, fallback);
    if (!options.includes(v)) throw new Error(`spec.${key}: expected one of ${options.join(', ')}, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(key, fallback) {
    const v = this.get(key, fallback);
    if (typeof v !== 'boolean') throw new Error(`spec.${key}: expected true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  number(key, fallback) {
    const v = this.get(key, fallback);
    if (typeof v !== 'number' || !(v > 0)) throw new Error(`spec.${key}: expected a positive number, got ${JSON.stringify(v)}`);
    return v;
  }
}

const DENSE_KEYS = ['input', 'units', 'activation', 'bias'];

function denseSpec(spec, activations, { lacks = () => null, nullIsAbsent = false } = {}) {
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new Error(`spec: expected a mapping, got ${JSON.stringify(spec)}`);
  const unknown = Object.keys(spec).filter((k) => !DENSE_KEYS.includes(k)).sort();
  if (unknown.length) throw new Error(`spec.${unknown[0]}: unknown field for layer 'dense' (known: ${[...DENSE_KEYS].sort().join(', ')})`);
  if (!isPosInt(spec.input)) throw new Error(`spec.input: expected a positive integer, got ${JSON.stringify(spec.input)}`);
  const units = spec.units;
  if (!Array.isArray(units) || !units.length || !units.every(isPosInt))
    throw new Error(`spec.units: expected a non-empty list of positive integers, got ${JSON.stringify(units)}`);
  const activation = orDefault(spec.activation, 'relu', nullIsAbsent);
  const why = lacks(activation);
  if (why) throw new NotApplicable(why);
  if (!(activation in activations))
    throw new Error(`spec.activation: unknown activation ${JSON.stringify(activation)} (known: ${Object.keys(activations).join(', ')})`);
  const bias = orDefault(spec.bias, true, nullIsAbsent);
  if (typeof bias !== 'boolean') throw new Error(`spec.bias: expected true or false, got ${JSON.stringify(bias)}`);
  return { input: spec.input, units, activation, bias };
}

const STREAM_CONTENT_TYPE = 'application/x-planetbridge-stream';

async function post(url, frameBytes, planet, { atol, rtol, timeoutMs = 600000 } = {}) {
  const endpoint = new URL(`${url.replace(/\/+$/, '')}/api/v1/loom/stream/${encodeURIComponent(planet)}`);
  if (atol !== undefined) endpoint.searchParams.set('atol', String(atol));
  if (rtol !== undefined) endpoint.searchParams.set('rtol', String(rtol));
  let res;
  try {
    res = await fetch(endpoint, {
      method: 'POST', body: frameBytes, headers: { 'Content-Type': STREAM_CONTENT_TYPE },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    throw new PostError(null, '', `cannot reach ${url}: ${e.cause ? e.cause.message || e.cause.code : e.message}`);
  }
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  if (!res.ok) {
    const err = body && body.error ? body.error : { path: '', message: text.trim() || res.statusText };
    throw new PostError(res.status, err.path || '', `HTTP ${res.status}: ${err.message}`);
  }
  if (!body) throw new PostError(res.status, '', `the server's reply is not JSON: ${text.slice(0, 200)}`);
  return body;
}

function verdictLine(r) {
  let line = `${r.fixture}: ${r.verdict}`;
  if (['EXACT', 'PASS', 'FAIL'].includes(r.verdict)) {
    line += ` max|diff| ${Number(r.max_abs).toExponential(2)} max rel ${Number(r.max_rel).toExponential(2)}`;
    if (!r.reload_identical) line += ' (reload DIFFERS)';
  }
  line += ` · run ${r.id}`;
  if (r.message) line += ` · ${r.message}`;
  if (r.first_divergence) line += ` · first diverging node: ${r.first_divergence}`;
  return line;
}

module.exports = {
  MAGIC, ALIGN, HEADER_BYTES, STREAM_CONTENT_TYPE,
  NotApplicable, RequestError, PostError, Stream, Spec, denseSpec,
  encodeFrame, encodeJson, eventFrame, streamDoc, serve, readFrames, finiteOrRepr, parseRequest,
  post, verdictLine, writeWhole,
};
