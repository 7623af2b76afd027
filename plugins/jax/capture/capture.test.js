'use strict';
/**
 * Tests for the jax-js capture: the Flax-style library (flax.js), the fixtures and the --serve
 * protocol. Run: node --test plugins/jax/capture/
 */

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const fs = require('fs');
const os = require('os');
const { spawnSync } = require('child_process');

const pbstream = require(path.join(__dirname, '..', '..', '..', 'capture', 'js', 'pbstream.js'));
const flax = require('./flax.js');
const fixtures = require('./fixtures.js');

const { jax } = flax;
const { numpy: np, random, tree } = jax;
const CAPTURE = path.join(__dirname, 'capture.js');

const request = (fixtures_) => JSON.stringify({ format: 'planetbridge.capture-request', version: 1, fixtures: fixtures_ });

function serve(input, nodeArgs = []) {
  return spawnSync(process.execPath, [...nodeArgs, CAPTURE, '--serve'], { input, cwd: os.tmpdir(), timeout: 120000, maxBuffer: 1 << 26 });
}

// Row-major [r, k] x [k, c] in float64, for references computed outside jax-js.
function matmul(a, b, r, k, c) {
  const out = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) for (let t = 0; t < k; t++) out[i * c + j] += a[i * k + t] * b[t * c + j];
  return out;
}

// ---- float64 references for channels-last windows (independent of jax-js)

const prod = (a) => a.reduce((p, q) => p * q, 1);
const stridesOf = (shape) => shape.map((_, i) => prod(shape.slice(i + 1)));
function unravel(i, shape) {
  return shape.map((_, d) => Math.floor(i / prod(shape.slice(d + 1))) % shape[d]);
}
const dot = (idx, st) => idx.reduce((a, v, d) => a + v * st[d], 0);

// Flax's Conv: x [N, S..., C], kernel [K..., C/groups, O]; pads [[low, high], ...].
function refConv(x, xShape, k, kShape, { strides, pads, dilation, groups = 1 }) {
  const n = xShape.length - 2;
  const O = kShape[n + 1], Ig = kShape[n], Og = O / groups;
  const outS = xShape.slice(1, -1).map((s, i) => Math.floor((s + pads[i][0] + pads[i][1] - dilation[i] * (kShape[i] - 1) - 1) / strides[i]) + 1);
  const outShape = [xShape[0], ...outS, O];
  const xSt = stridesOf(xShape), kSt = stridesOf(kShape), kSp = kShape.slice(0, n);
  const out = new Float64Array(prod(outShape));
  for (let f = 0; f < out.length; f++) {
    const [b, ...rest] = unravel(f, outShape);
    const o = rest.pop();
    let acc = 0;
    for (let t = 0; t < prod(kSp); t++) {
      const kk = unravel(t, kSp);
      const pos = kk.map((kv, d) => rest[d] * strides[d] - pads[d][0] + kv * dilation[d]);
      if (pos.some((p, d) => p < 0 || p >= xShape[d + 1])) continue;
      for (let i = 0; i < Ig; i++)
        acc += x[dot([b, ...pos, Math.floor(o / Og) * Ig + i], xSt)] * k[dot([...kk, i, o], kSt)];
    }
    out[f] = acc;
  }
  return [out, outShape];
}

// flax.linen.max_pool / avg_pool over x [N, S..., C]: max ignores padding (-inf), avg divides
// by the whole window (count_include_pad) or by the real elements.
function refPool(x, xShape, { window, strides, pads, mode, countIncludePad = true }) {
  const n = xShape.length - 2;
  const outS = xShape.slice(1, -1).map((s, i) => Math.floor((s + pads[i][0] + pads[i][1] - window[i]) / strides[i]) + 1);
  const outShape = [xShape[0], ...outS, xShape[n + 1]];
  const xSt = stridesOf(xShape);
  const out = new Float64Array(prod(outShape));
  for (let f = 0; f < out.length; f++) {
    const [b, ...rest] = unravel(f, outShape);
    const c = rest.pop();
    let acc = mode === 'max' ? -Infinity : 0, count = 0;
    for (let t = 0; t < prod(window); t++) {
      const pos = unravel(t, window).map((kv, d) => rest[d] * strides[d] - pads[d][0] + kv);
      if (pos.some((p, d) => p < 0 || p >= xShape[d + 1])) continue;
      const v = x[dot([b, ...pos, c], xSt)];
      acc = mode === 'max' ? Math.max(acc, v) : acc + v;
      count++;
    }
    out[f] = mode === 'max' ? acc : acc / (countIncludePad ? prod(window) : count);
  }
  return [out, outShape];
}

function assertClose(got, want, what, tol = 1e-5) {
  assert.equal(got.length, want.length, `${what}: length`);
  want.forEach((w, i) => assert.ok(Math.abs(got[i] - w) <= tol * (1 + Math.abs(w)), `${what}[${i}]: ${got[i]} vs ${w}`));
}

test.before(async () => {
  await flax.ready();
});

test('Model names modules as Flax does and describes them in the stream dialect', () => {
  const m = new flax.Model([
    flax.Dense(8), flax.fn('nn.gelu'), flax.Dense(8, { useBias: false }), flax.add(['Dense_1', 'Dense_0']),
    flax.fn('nn.leaky_relu', { negative_slope: 0.2 }), flax.Dense(2, { name: 'head' }), flax.Dense(2),
  ]);
  assert.deepEqual(m.describe(), [
    { type: 'Dense', name: 'Dense_0', features: 8, use_bias: true },
    { type: 'fn', name: 'gelu_0', fn: 'nn.gelu', approximate: true },
    { type: 'Dense', name: 'Dense_1', features: 8, use_bias: false },
    { type: 'add', name: 'add_0', inputs: ['Dense_1', 'Dense_0'] },
    { type: 'fn', name: 'leaky_relu_0', fn: 'nn.leaky_relu', negative_slope: 0.2 },
    { type: 'Dense', name: 'head', features: 2, use_bias: true },
    { type: 'Dense', name: 'Dense_2', features: 2, use_bias: true }, // a named module takes no number
  ]);
  assert.deepEqual(m.inputNames, ['x']);
  assert.deepEqual(m.outputNames, ['Dense_2']);
  assert.throws(() => flax.fn('nn.foo'), /unknown function "nn.foo"/);
  assert.throws(() => flax.fn('nn.relu', { alpha: 1 }), /nn.relu: unknown attribute "alpha"/);
  assert.throws(() => new flax.Model([flax.Dense(2), flax.add(['Dense_0', 'nope'])]), /input "nope" is not defined/);
});

test('init is Flax-like: kernels [in, out] lecun_normal, zero biases, no bias without use_bias', async () => {
  const m = new flax.Model([flax.Dense(64), flax.fn('nn.relu'), flax.Dense(3, { useBias: false })]);
  const v = m.init(random.key(7), np.zeros([1, 256]));
  assert.deepEqual(Object.keys(v), ['params']);
  assert.deepEqual(Object.keys(v.params), ['Dense_0', 'Dense_1']);
  assert.deepEqual(v.params.Dense_0.kernel.shape, [256, 64]);
  assert.deepEqual(Object.keys(v.params.Dense_1), ['kernel']);
  const k = await v.params.Dense_0.kernel.ref.data();
  const std = Math.sqrt(k.reduce((s, e) => s + e * e, 0) / k.length);
  assert.ok(Math.abs(std * Math.sqrt(256) - 1) < 0.05, `lecun_normal stddev * sqrt(fan_in) = ${std * 16}`);
  const bound = 2 / 0.87962566103423978 / 16; // truncation at 2 stddevs of the untruncated normal
  assert.ok(k.every((e) => Math.abs(e) <= bound + 1e-7));
  assert.ok((await v.params.Dense_0.bias.ref.data()).every((e) => e === 0));
  tree.dispose(v);
});

test('capture: Flax paths as tensor names, jit native outputs, taps per module, nothing consumed', async () => {
  const m = new flax.Model([flax.Dense(4), flax.fn('nn.tanh'), flax.Dense(4), flax.add(['Dense_1', 'tanh_0'])]);
  const x = random.normal(random.key(3), [5, 3]);
  const v = m.init(random.key(1), x.ref);
  const s = await flax.capture({ model: m, variables: v, inputs: [x], modelId: 'res' });
  assert.equal(x.refCount, 1);
  assert.equal(v.params.Dense_0.kernel.refCount, 1);
  const { doc, tensors } = pbstream.readFrames(s.toBytes())[0];
  assert.equal(doc.planet, 'jax');
  assert.equal(doc.engine, 'jax-js');
  assert.equal(doc.planet_version, flax.PLANET_VERSION);
  assert.equal(flax.PLANET_VERSION, '0.1.25');
  assert.deepEqual(doc.composed, [flax.COMPOSED.Dense]);
  assert.equal(doc.model.format, 'flax.linen');
  assert.deepEqual(doc.model.inputs, ['x']);
  assert.deepEqual(doc.model.outputs, ['add_0']);
  assert.deepEqual(doc.inputs, ['input.0']);
  assert.deepEqual(doc.expected, ['output.0']);
  assert.deepEqual(doc.taps, { Dense_0: 'tap.Dense_0', tanh_0: 'tap.tanh_0', Dense_1: 'tap.Dense_1', add_0: 'tap.add_0' });
  assert.deepEqual(Object.keys(doc.tensors).filter((n) => n.startsWith('params/')).sort(),
    ['params/Dense_0/bias', 'params/Dense_0/kernel', 'params/Dense_1/bias', 'params/Dense_1/kernel']);
  assert.deepEqual(tensors['params/Dense_0/kernel'].shape, [3, 4]);

  // Recompute from the stream's own tensors: h = tanh(x K0 + b0); y = h K1 + b1 + h.
  const t = (n) => tensors[n].data;
  const h = matmul(t('input.0'), t('params/Dense_0/kernel'), 5, 3, 4).map((e, i) => Math.tanh(e + t('params/Dense_0/bias')[i % 4]));
  const y = matmul(h, t('params/Dense_1/kernel'), 5, 4, 4).map((e, i) => e + t('params/Dense_1/bias')[i % 4] + h[i]);
  y.forEach((e, i) => assert.ok(Math.abs(e - t('output.0')[i]) < 1e-5, `output.0[${i}]`));
  h.forEach((e, i) => assert.ok(Math.abs(e - t('tap.tanh_0')[i]) < 1e-5, `tap.tanh_0[${i}]`));
  tree.dispose([v, x]);
});

test('capture of a hand-described model: its own apply, the modules it declares, no taps', async () => {
  const model = {
    modules: [{ type: 'Dense', name: 'Dense_0', features: 2, use_bias: true }, { type: 'fn', name: 'relu_0', fn: 'nn.relu' }],
    inputNames: ['x'],
    outputNames: ['relu_0'],
    apply: (v, x) => jax.nn.relu(np.matmul(x, v.params.Dense_0.kernel).add(v.params.Dense_0.bias)),
  };
  const variables = { params: { Dense_0: { kernel: np.array([[1, -1], [2, 0.5]]), bias: np.array([0.5, -0.25]) } } };
  const x = np.array([[1, 2], [-1, 1]]);
  const s = await flax.capture({ model, variables, inputs: [x], modelId: 'hand' });
  assert.equal(s.doc.taps, undefined);
  assert.deepEqual(s.doc.model.modules, model.modules);
  assert.deepEqual(Array.from(s.tensors['output.0'].data), [5.5, 0, 1.5, 1.25]);
  tree.dispose([variables, x]);
});

test('dense fixtures: trained (non-zero biases), deterministic, errors name the spec field', async () => {
  const fx = { id: 'mlp', layer: 'dense', samples: 10, seed: 42, spec: { input: 8, units: [6, 3], activation: 'tanh' } };
  const a = await fixtures.build(fx);
  const b = await fixtures.build(fx);
  assert.ok(a.toBytes().equals(b.toBytes()), 'same fixture, same bytes');
  const other = await fixtures.build({ ...fx, id: 'mlp2' });
  assert.ok(!other.toBytes().equals(a.toBytes()), 'the id seeds the weights');
  assert.deepEqual(a.doc.model.modules.map((l) => l.name), ['Dense_0', 'tanh_0', 'Dense_1']);
  assert.deepEqual(a.tensors['input.0'].shape, [10, 8]);
  assert.ok(a.tensors['params/Dense_0/bias'].data.some((e) => e !== 0));
  assert.ok(a.tensors['params/Dense_1/bias'].data.some((e) => e !== 0));

  const noBias = await fixtures.build({ ...fx, spec: { input: 4, units: [3, 2], bias: false } });
  assert.deepEqual(noBias.doc.model.modules[0], { type: 'Dense', name: 'Dense_0', features: 3, use_bias: false });
  assert.ok(!('params/Dense_0/bias' in noBias.tensors));

  const gelu = fixtures.denseModel({ input: 4, units: [3, 2], activation: 'gelu' }).describe()[1];
  assert.equal(gelu.approximate, false, 'suite "gelu" is the erf form in every planet');

  for (const [spec, field] of [
    [{ input: 8, units: [4, 2], activation: 'swish2' }, /spec\.activation/],
    [{ input: 8, units: [] }, /spec\.units/],
    [{ input: 8, units: [2], bias: 'no' }, /spec\.bias/],
    [{ input: 8, units: [2], dropout: 0.1 }, /spec\.dropout/],
  ])
    await assert.rejects(fixtures.build({ ...fx, spec }), field);
  await assert.rejects(fixtures.build({ ...fx, spec: { input: 8, units: [4, 2], activation: 'mish' } }), pbstream.NotApplicable);
});

test('every layer of a fixture influences its output (perturbing one Dense changes it)', async () => {
  const model = fixtures.denseModel({ input: 6, units: [5, 4, 3], activation: 'tanh' });
  const v = model.init(random.key(5), np.zeros([1, 6]));
  const x = random.normal(random.key(6), [8, 6]);
  const base = await model.apply(tree.ref(v), x.ref).data();
  for (const name of ['Dense_0', 'Dense_1', 'Dense_2']) {
    const w = tree.map((a) => a.ref, v);
    w.params[name].kernel.dispose();
    w.params[name].kernel = v.params[name].kernel.ref.add(0.1);
    const y = await model.apply(w, x.ref).data();
    assert.ok(y.some((e, i) => e !== base[i]), `${name} has no influence`);
  }
  tree.dispose([v, x]);
});

test('residual fixture: x + Dense_1(relu(Dense_0(x))) with a named add', async () => {
  const s = await fixtures.build({ id: 'residual_4', layer: 'residual', samples: 5, seed: 42, spec: { features: 4 } });
  assert.deepEqual(s.doc.model.modules.map((l) => [l.type, l.name, l.inputs]), [
    ['Dense', 'Dense_0', undefined], ['fn', 'relu_0', undefined], ['Dense', 'Dense_1', undefined], ['add', 'add_0', ['x', 'Dense_1']],
  ]);
  assert.deepEqual(s.doc.model.outputs, ['add_0']);
  await assert.rejects(fixtures.build({ id: 'r', layer: 'residual', samples: 5, seed: 42, spec: { features: 4, depth: 2 } }), /spec\.depth/);
});

test('--serve: hello, then one stream per fixture in request order, errors as events', () => {
  const fx = { layer: 'dense', samples: 7, seed: 1, spec: { input: 4, units: [3, 2] } };
  const r = serve(request([{ ...fx, id: 'b_second' }, { ...fx, id: 'a_first' }, { ...fx, id: 'conv', layer: 'conv2' },
    { ...fx, id: 'mish', spec: { ...fx.spec, activation: 'mish' } }]));
  assert.equal(r.status, 0, r.stderr.toString());
  const frames = pbstream.readFrames(r.stdout);
  assert.equal(frames.length, 5);
  assert.deepEqual(frames[0].doc, { format: 'planetbridge.capture', version: 1, event: 'hello', planet: 'jax', engine: 'jax-js', engine_version: '0.1.25' });
  assert.deepEqual(frames.slice(1).map((f) => f.doc.model_id), ['b_second', 'a_first', 'conv', 'mish']);
  assert.equal(frames[1].doc.format, 'planetbridge.stream');
  assert.deepEqual(frames[1].tensors['input.0'].shape, [7, 4]);
  assert.equal(frames[3].doc.event, 'error');
  assert.match(frames[3].doc.message, /^Error: layer "conv2" is not supported by the jax capture \(known: dense, residual, cnn1, /);
  assert.equal(frames[4].doc.event, 'not_applicable');
  assert.match(frames[4].doc.reason, /flax.linen has no "mish"/);
});

test('--serve without jax-js: the unavailable event with the reason', () => {
  // A preload that makes @jax-js/jax unresolvable, as on a machine without the npm packages.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-jax-'));
  const block = path.join(dir, 'block.js');
  fs.writeFileSync(block, `const M = require('module'); const r = M._resolveFilename;
M._resolveFilename = function (req, ...a) {
  if (req === '@jax-js/jax') { const e = new Error("Cannot find module '@jax-js/jax'"); e.code = 'MODULE_NOT_FOUND'; throw e; }
  return r.call(this, req, ...a);
};`);
  try {
    const r = serve(request([{ id: 'x', layer: 'dense' }]), ['--require', block]);
    assert.equal(r.status, 0, r.stderr.toString());
    const frames = pbstream.readFrames(r.stdout);
    assert.equal(frames.length, 1);
    assert.equal(frames[0].doc.event, 'unavailable');
    assert.equal(frames[0].doc.reason, "Cannot find module '@jax-js/jax'");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('--serve: a malformed request exits 2 with nothing on stdout', () => {
  const r = serve(JSON.stringify({ format: 'planetbridge.capture-request', version: 2, fixtures: [] }));
  assert.equal(r.status, 2);
  assert.equal(r.stdout.length, 0);
  assert.match(r.stderr.toString(), /request\.version/);
});

// ---------------------------------------------------------------- issue #4: conv, pools, norms, embeddings

test('Conv: Flax layouts (NHWC input, kernel [k..., in/groups, out]) match a float64 convolution', async () => {
  const x = random.normal(random.key(40), [2, 5, 4, 3]);
  const xd = await x.ref.data();
  const cases = [
    // "SAME" with an even kernel: lax puts the odd padding element at the end, (0, 1).
    [flax.Conv(2, [2, 3], { padding: 'SAME' }), { strides: [1, 1], pads: [[0, 1], [1, 1]], dilation: [1, 1] }],
    [flax.Conv(4, [3, 2], { strides: [2, 1], padding: [[2, 0], [0, 1]], kernelDilation: [1, 2], useBias: false }),
      { strides: [2, 1], pads: [[2, 0], [0, 1]], dilation: [1, 2] }],
    [flax.Conv(6, [3, 3], { padding: 1, featureGroupCount: 3 }), { strides: [1, 1], pads: [[1, 1], [1, 1]], dilation: [1, 1], groups: 3 }],
  ];
  for (const [layer, ref] of cases) {
    const m = new flax.Model([layer]);
    const v = m.init(random.key(41), x.ref);
    const kernel = v.params.Conv_0.kernel;
    assert.deepEqual(kernel.shape, [...layer.kernel_size, 3 / layer.feature_group_count, layer.features]);
    const [want, shape] = refConv(xd, x.shape, await kernel.ref.data(), kernel.shape, ref);
    const y = m.apply(tree.ref(v), x.ref);
    assert.deepEqual(y.shape, shape);
    assertClose(await y.data(), want, JSON.stringify(layer.padding));
    tree.dispose(v);
  }
  x.dispose();
});

test('pools: max_pool pads -inf, avg_pool counts the padding unless count_include_pad is false', async () => {
  const x = random.normal(random.key(42), [2, 5, 5, 2]);
  const xd = await x.ref.data();
  const cases = [
    [flax.maxPool([2, 2], { strides: [2, 2], padding: 'SAME' }), { window: [2, 2], strides: [2, 2], pads: [[0, 1], [0, 1]], mode: 'max' }],
    [flax.avgPool([2, 3], { strides: [1, 2], padding: [[1, 0], [0, 1]] }), { window: [2, 3], strides: [1, 2], pads: [[1, 0], [0, 1]], mode: 'avg' }],
    [flax.avgPool([2, 2], { strides: [1, 1], padding: [[1, 0], [0, 1]], countIncludePad: false }),
      { window: [2, 2], strides: [1, 1], pads: [[1, 0], [0, 1]], mode: 'avg', countIncludePad: false }],
  ];
  for (const [layer, ref] of cases) {
    const [want, shape] = refPool(xd, x.shape, ref);
    const y = new flax.Model([layer]).apply({ params: {} }, x.ref);
    assert.deepEqual(y.shape, shape);
    assertClose(await y.data(), want, layer.fn);
  }
  const g = new flax.Model([flax.mean([1, 2]), flax.fn('nn.relu')]).apply({ params: {} }, x.ref);
  assert.deepEqual(g.shape, [2, 2]);
  const [want] = refPool(xd, x.shape, { window: [5, 5], strides: [1, 1], pads: [[0, 0], [0, 0]], mode: 'avg' });
  assertClose(await g.data(), want.map((e) => Math.max(e, 0)), 'mean');
  x.dispose();
});

test('BatchNorm: inference uses batch_stats, training moves them with momentum 0.99; norms use Flax epsilons', async () => {
  const m = new flax.Model([flax.BatchNorm(), flax.LayerNorm({ name: 'ln' }), flax.RMSNorm({ name: 'rms' })]);
  assert.deepEqual(m.describe()[0], { type: 'BatchNorm', name: 'BatchNorm_0', use_running_average: true, axis: -1, momentum: 0.99, epsilon: 1e-5, use_bias: true, use_scale: true });
  assert.equal(m.describe()[1].epsilon, 1e-6);
  assert.equal(m.describe()[2].epsilon, 1e-6);
  const x = random.normal(random.key(43), [64, 3, 4]).mul(2).add(3);
  const v = m.init(random.key(44), x.ref);
  assert.deepEqual(Object.keys(v).sort(), ['batch_stats', 'params']);
  const [yTrain, upd] = m.applyTrain(tree.ref(v), x.ref);
  yTrain.dispose();
  const xd = await x.ref.data();
  const mean = [0, 1, 2, 3].map((c) => xd.filter((_, i) => i % 4 === c).reduce((a, b) => a + b, 0) / (xd.length / 4));
  assertClose(await upd.batch_stats.BatchNorm_0.mean.ref.data(), mean.map((e) => 0.01 * e), 'ra_mean', 1e-4);
  tree.dispose(upd);
  // At inference, running statistics (0, 1) and eps 1e-5 make BatchNorm x / sqrt(1 + 1e-5).
  const bn = new flax.Model([flax.BatchNorm()]);
  const y = await bn.apply(bn.init(random.key(45), x.ref), x.ref).data();
  assertClose(y, Array.from(xd, (e) => e / Math.sqrt(1 + 1e-5)), 'bn');
  tree.dispose([v, x]);
});

test('Embed: integer ids pick rows of embedding [V, D], initialised N(0, 1/D)', async () => {
  const m = new flax.Model([flax.Embed(50, 16)]);
  const ids = np.array([[3, 0, 49]], { dtype: np.int32 });
  const v = m.init(random.key(46), ids.ref);
  const table = await v.params.Embed_0.embedding.ref.data();
  const std = Math.sqrt(table.reduce((s, e) => s + e * e, 0) / table.length);
  assert.ok(Math.abs(std * 4 - 1) < 0.1, `embedding stddev * sqrt(D) = ${std * 4}`);
  const y = await m.apply(v, ids).data();
  assert.deepEqual(Array.from(y.slice(0, 16)), Array.from(table.slice(3 * 16, 4 * 16)));
  assert.deepEqual(Array.from(y.slice(32)), Array.from(table.slice(49 * 16)));
});

test('conv fixture: channels-last input, Flax kernels, trained, composed, deterministic; errors name the field', async () => {
  const fx = { id: 'conv2_7_3_relu', layer: 'cnn2', samples: 3, seed: 42,
    spec: { in_channels: 2, size: 7, filters: [3, 2], kernel: 4, stride: 2, padding: 'same', activation: 'relu' } };
  const a = await fixtures.build(fx);
  assert.ok(a.toBytes().equals((await fixtures.build(fx)).toBytes()), 'same fixture, same bytes');
  assert.deepEqual(a.doc.model.modules.map((l) => l.name), ['Conv_0', 'relu_0', 'Conv_1', 'relu_1']);
  assert.deepEqual(a.doc.model.modules[0], { type: 'Conv', name: 'Conv_0', features: 3, kernel_size: [4, 4], strides: [2, 2], padding: 'SAME',
    input_dilation: [1, 1], kernel_dilation: [1, 1], feature_group_count: 1, use_bias: true });
  assert.deepEqual(a.tensors['input.0'].shape, [3, 7, 7, 2]);
  assert.deepEqual(a.tensors['params/Conv_0/kernel'].shape, [4, 4, 2, 3]);
  assert.deepEqual(a.tensors['params/Conv_1/kernel'].shape, [4, 4, 3, 2]);
  assert.deepEqual(a.tensors['output.0'].shape, [3, 2, 2, 2]); // ceil(ceil(7/2)/2)
  assert.ok(a.tensors['params/Conv_0/bias'].data.some((e) => e !== 0));
  assert.deepEqual(a.doc.composed, [flax.COMPOSED.Conv]);
  assert.deepEqual(Object.keys(a.doc.taps), ['Conv_0', 'relu_0', 'Conv_1', 'relu_1']);

  // The native output recomputed from the stream's own tensors in float64.
  const t = (n) => a.tensors[n];
  const conv = (x, xs, layer) => refConv(x, xs, t(`params/${layer}/kernel`).data, t(`params/${layer}/kernel`).shape,
    { strides: [2, 2], pads: [[1, 2], [1, 2]], dilation: [1, 1] });
  const relu = ([y, s], layer) => [y.map((e, i) => Math.max(e + t(`params/${layer}/bias`).data[i % s[s.length - 1]], 0)), s];
  const h = relu(conv(t('input.0').data, t('input.0').shape, 'Conv_0'), 'Conv_0');
  const y = relu(conv(h[0], h[1], 'Conv_1'), 'Conv_1');
  assertClose(t('output.0').data, y[0], 'output.0');

  for (const [spec, field] of [[{ ...fx.spec, padding: 'full' }, /spec\.padding/], [{ ...fx.spec, kernel: 0 }, /spec\.kernel/],
    [{ ...fx.spec, groups: 2 }, /spec\.groups/], [{ ...fx.spec, activation: 'swish2' }, /spec\.activation/]])
    await assert.rejects(fixtures.build({ ...fx, spec }), field);
  await assert.rejects(fixtures.build({ ...fx, spec: { ...fx.spec, activation: 'mish' } }), pbstream.NotApplicable);
});

test('batchnorm and model fixtures: batch_stats moved off (0, 1), Flax paths in blocks, i32 ids', async () => {
  const bn = await fixtures.build({ id: 'bn', layer: 'batchnorm', samples: 4, seed: 42, spec: { dims: 1, in_channels: 2, size: 6, filters: 3 } });
  assert.deepEqual(bn.doc.model.modules.map((l) => l.type), ['Conv', 'BatchNorm', 'fn']);
  const mean = bn.tensors['batch_stats/BatchNorm_0/mean'].data, variance = bn.tensors['batch_stats/BatchNorm_0/var'].data;
  assert.ok(mean.every((e) => e !== 0) && variance.every((e) => e !== 1), `${mean} ${variance}`);
  assert.ok(bn.tensors['params/BatchNorm_0/bias'].data.some((e) => e !== 0));

  const cnn = fixtures.wholeModel({ arch: 'small_cnn' }, 2).model.describe();
  assert.deepEqual(cnn.map((l) => l.name).slice(7), ['ResidualConvBlock_0/Conv_0', 'ResidualConvBlock_0/BatchNorm_0', 'ResidualConvBlock_0/relu_0',
    'ResidualConvBlock_0/Conv_1', 'ResidualConvBlock_0/BatchNorm_1', 'ResidualConvBlock_0/add_0', 'ResidualConvBlock_0/relu_1', 'mean_0', 'Dense_0']);
  assert.deepEqual(cnn.find((l) => l.name === 'ResidualConvBlock_0/add_0').inputs, ['max_pool_0', 'ResidualConvBlock_0/BatchNorm_1']);
  const dw = fixtures.wholeModel({ arch: 'dw_separable' }, 2).model.describe();
  assert.equal(dw[0].feature_group_count, 8);

  const text = await fixtures.build({ id: 'text_conv1d', layer: 'model', samples: 3, seed: 42, spec: { arch: 'text_conv1d' } });
  assert.ok(text.tensors['input.0'].data instanceof Int32Array);
  assert.deepEqual(text.tensors['input.0'].shape, [3, 20]);
  assert.ok(text.tensors['input.0'].data.every((e) => e >= 0 && e < 100));
  assert.deepEqual(text.doc.model.modules.map((l) => l.name), ['Embed_0', 'Conv_0', 'relu_0', 'max_0', 'Dense_0']);
  await assert.rejects(fixtures.build({ id: 'm', layer: 'model', samples: 3, seed: 42, spec: { arch: 'vgg' } }), /spec\.arch/);
});
