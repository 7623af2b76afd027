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

const pbstream = require(path.join(__dirname, '..', '..', 'sdk', 'js', 'pbstream.js'));
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
  assert.equal(frames[3].doc.message, 'Error: layer "conv2" is not supported by the jax capture yet');
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
