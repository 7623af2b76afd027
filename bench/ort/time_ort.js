#!/usr/bin/env node
// time_ort.js: times one ONNX model on ONNX Runtime (onnxruntime-node, CPU execution provider).
//
//   node bench/ort/time_ort.js MODEL.onnx INPUT.npy [INPUT.npy ...]
//        [--threads T] [--inter-threads I] [--iters N] [--warmup W] [--out PREFIX]
//
// Inputs are NumPy .npy files (format 1.0-3.0, C order, little-endian float32/float64/int64/
// int32/int8/uint8/bool), bound to the session's inputs in order. The session runs with T intra-op
// threads (default 1), I inter-op threads (default 1), sequential execution and all graph
// optimisations (ORT's defaults otherwise: arena on, intra-op threads spin). After W warm-up runs
// (default 10), N runs (default 50) are timed one by one, each `await session.run(feeds)` from
// call to resolved outputs. Prints one JSON line:
//   {"median_ms", "p10_ms", "p90_ms", "times_ms" (every run, sorted), "iters", "threads",
//    "inter_threads", "load_ms", "ort",
//    "outputs": [{"name", "dims", "type", "file"}]}
// With --out PREFIX, the last run's outputs are written as PREFIX.0.npy, PREFIX.1.npy, ... (in
// session.outputNames order) so the caller can compare them with another engine's.
// Install once: ONNXRUNTIME_NODE_INSTALL=skip npm ci --prefix bench/ort
'use strict';

const fs = require('fs');
const ort = require('onnxruntime-node');

const NPY_TYPES = {  // descr (without byte order) -> [ORT tensor type, typed array]
  f4: ['float32', Float32Array], f8: ['float64', Float64Array],
  i8: ['int64', BigInt64Array], i4: ['int32', Int32Array], i2: ['int16', Int16Array],
  i1: ['int8', Int8Array], u1: ['uint8', Uint8Array], b1: ['bool', Uint8Array],
};

function die(msg) {
  process.stderr.write(`time_ort: ${msg}\n`);
  process.exit(1);
}

function readNpy(path) {
  const buf = fs.readFileSync(path);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') die(`${path}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([<>|=])(\w\d)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) die(`${path}: cannot parse the header ${header.trim()}`);
  if (fortran[1] === 'True') die(`${path}: Fortran order is not supported (save a C-contiguous array)`);
  if (descr[1] === '>') die(`${path}: big-endian data is not supported`);
  const kind = NPY_TYPES[descr[2]];
  if (!kind) die(`${path}: dtype ${descr[1]}${descr[2]} is not supported (known: ${Object.keys(NPY_TYPES).join(', ')})`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  // Copy into a fresh, aligned ArrayBuffer (the file buffer's offset need not be aligned).
  const bytes = new Uint8Array(count * kind[1].BYTES_PER_ELEMENT);
  bytes.set(buf.subarray(offset, offset + bytes.length));
  if (bytes.length !== buf.length - offset) die(`${path}: ${buf.length - offset} data bytes, expected ${bytes.length}`);
  let data = new kind[1](bytes.buffer);
  if (kind[0] === 'bool') data = Uint8Array.from(data, (v) => (v ? 1 : 0));
  return new ort.Tensor(kind[0], data, dims);
}

function writeNpy(path, tensor) {
  const descr = { float32: '<f4', float64: '<f8', int64: '<i8', int32: '<i4', int16: '<i2', int8: '|i1',
                  uint8: '|u1', bool: '|b1' }[tensor.type];
  if (!descr) die(`output type ${tensor.type} cannot be written as .npy`);
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';  // total header a multiple of 64
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const data = tensor.data;
  fs.writeFileSync(path, Buffer.concat([pre, Buffer.from(header, 'latin1'),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

function parseArgs(argv) {
  const opts = { threads: 1, inter: 1, iters: 50, warmup: 10, out: null, files: [] };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const value = () => { if (i + 1 >= argv.length) die(`${a} needs a value`); return argv[++i]; };
    if (a === '--threads') opts.threads = Number(value());
    else if (a === '--inter-threads') opts.inter = Number(value());
    else if (a === '--iters') opts.iters = Number(value());
    else if (a === '--warmup') opts.warmup = Number(value());
    else if (a === '--out') opts.out = value();
    else if (a.startsWith('--')) die(`unknown option ${a}`);
    else opts.files.push(a);
  }
  for (const k of ['threads', 'inter', 'iters']) {
    if (!Number.isInteger(opts[k]) || opts[k] < 1) die(`--${k}: expected a positive integer`);
  }
  if (!Number.isInteger(opts.warmup) || opts.warmup < 0) die('--warmup: expected a non-negative integer');
  if (opts.files.length < 2) {
    die('usage: time_ort.js MODEL.onnx INPUT.npy [INPUT.npy ...] [--threads T] [--inter-threads I] '
        + '[--iters N] [--warmup W] [--out PREFIX]');
  }
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const [model, ...inputFiles] = opts.files;
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: opts.threads,
    interOpNumThreads: opts.inter,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (inputFiles.length !== session.inputNames.length) {
    die(`${model} takes ${session.inputNames.length} inputs (${session.inputNames.join(', ')}), `
        + `got ${inputFiles.length} .npy files`);
  }
  const feeds = {};
  session.inputNames.forEach((name, i) => { feeds[name] = readNpy(inputFiles[i]); });

  let results;
  for (let i = 0; i < opts.warmup; ++i) results = await session.run(feeds);
  const times = [];
  for (let i = 0; i < opts.iters; ++i) {
    const t = process.hrtime.bigint();
    results = await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  const pct = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];

  const outputs = session.outputNames.map((name, i) => {
    const t = results[name];
    const entry = { name, dims: Array.from(t.dims), type: t.type };
    if (opts.out) {
      entry.file = `${opts.out}.${i}.npy`;
      writeNpy(entry.file, t);
    }
    return entry;
  });
  process.stdout.write(JSON.stringify({
    median_ms: pct(0.5), p10_ms: pct(0.1), p90_ms: pct(0.9), times_ms: times, iters: opts.iters,
    threads: opts.threads, inter_threads: opts.inter, load_ms: loadMs, ort: ort.env.versions.node, outputs,
  }) + '\n');
  await session.release();
}

main().catch((e) => die(e && e.stack ? e.stack : String(e)));
