'use strict';
/**
 * Tests for the jax-js capture's recurrent modules (flax.js: SimpleCell, LSTMCell,
 * OptimizedLSTMCell, GRUCell scanned by RNN, Bidirectional) and the rnn / lstm / gru fixtures.
 * The cells are checked against float64 references written here from Flax's own equations
 * (flax/linen/recurrent.py), independent of jax-js. Run: node --test plugins/jax/capture/
 */

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');

const pbstream = require(path.join(__dirname, '..', '..', '..', 'capture', 'js', 'pbstream.js'));
const flax = require('./flax.js');
const fixtures = require('./fixtures.js');

const { jax } = flax;
const { numpy: np, random, tree } = jax;

test.before(async () => {
  await flax.ready();
});

// ---- float64 references of Flax's cells over the stream's own tensors

const sigmoid = (v) => 1 / (1 + Math.exp(-v));
// flax.linen.Dense on a row: x [in] . kernel [in, h] (+ bias).
function dense(t, prefix, x, h, useBias) {
  const k = t[`${prefix}/kernel`].data;
  const out = new Float64Array(h);
  for (let j = 0; j < h; j++) {
    let acc = useBias ? t[`${prefix}/bias`].data[j] : 0;
    for (let i = 0; i < x.length; i++) acc += x[i] * k[i * h + j];
    out[j] = acc;
  }
  return out;
}
const add = (a, b) => a.map((v, i) => v + b[i]);

// One step of a cell over one batch row: [new carry leaves, output]. p = "params/<module>/cell".
const STEPS = {
  LSTMCell: (t, p, h, [c, hp], x) => {
    const gate = (k, f) => add(dense(t, `${p}/i${k}`, x, h, false), dense(t, `${p}/h${k}`, hp, h, true)).map(f);
    const i = gate('i', sigmoid), f = gate('f', sigmoid), g = gate('g', Math.tanh), o = gate('o', sigmoid);
    const c2 = c.map((cv, j) => f[j] * cv + i[j] * g[j]);
    const h2 = c2.map((cv, j) => o[j] * Math.tanh(cv));
    return [[c2, h2], h2];
  },
  GRUCell: (t, p, h, [hp], x) => {
    const r = add(dense(t, `${p}/ir`, x, h, true), dense(t, `${p}/hr`, hp, h, false)).map(sigmoid);
    const z = add(dense(t, `${p}/iz`, x, h, true), dense(t, `${p}/hz`, hp, h, false)).map(sigmoid);
    const hn = dense(t, `${p}/hn`, hp, h, true); // its bias inside the reset product
    const n = dense(t, `${p}/in`, x, h, true).map((v, j) => Math.tanh(v + r[j] * hn[j]));
    const h2 = n.map((nv, j) => (1 - z[j]) * nv + z[j] * hp[j]);
    return [[h2], h2];
  },
  SimpleCell: (t, p, h, [hp], x, cell) => {
    const act = cell.activation_fn === 'nn.relu' ? (v) => Math.max(v, 0) : Math.tanh;
    let y = add(dense(t, `${p}/i`, x, h, true), dense(t, `${p}/h`, hp, h, false));
    if (cell.residual) y = add(y, hp);
    y = y.map(act);
    return [[y], y];
  },
};
STEPS.OptimizedLSTMCell = STEPS.LSTMCell;

// nn.RNN over x [N, T, F] (stream tensor data): outputs [N][T][H] and final carries [N][leaves].
function refRnn(t, prefix, cell, x, [n, T, F], { reverse = false, keepOrder = false, carry0 = null } = {}) {
  const h = cell.features;
  const leaves = cell.type.includes('LSTM') ? 2 : 1;
  const ys = [], carries = [];
  for (let b = 0; b < n; b++) {
    let carry = carry0 ? carry0(b) : Array.from({ length: leaves }, () => new Float64Array(h));
    const out = [];
    for (let s = 0; s < T; s++) {
      const step = reverse ? T - 1 - s : s;
      const xt = Array.from({ length: F }, (_, i) => x[(b * T + step) * F + i]);
      const [c2, y] = STEPS[cell.type](t, prefix, h, carry, xt, cell);
      carry = c2;
      out.push(y);
    }
    if (reverse && keepOrder) out.reverse();
    ys.push(out);
    carries.push(carry);
  }
  return [ys, carries];
}

// [N][T][H] (typed rows) -> flat [N, T, H].
const flat = (ys) => ys.flatMap((r) => r.flatMap((y) => [...y]));

function close(got, want, what, tol = 1e-5) {
  assert.equal(got.length, want.length, `${what}: length`);
  want.forEach((w, i) => assert.ok(Math.abs(got[i] - w) <= tol + tol * Math.abs(w), `${what}[${i}]: ${got[i]} vs ${w}`));
}

// initWithBiases: Flax's init, then every bias set non-zero so a misplaced one shows.
function withBiases(model, key, ...inputs) {
  const v = model.init(key, ...inputs);
  let i = 0;
  for (const [name, a] of flax.flattenVariables(v.params))
    if (name.endsWith('/bias')) {
      const parts = name.split('/');
      let o = v.params;
      for (const q of parts.slice(0, -1)) o = o[q];
      o.bias = a.add(0.1 * ((i++ % 7) - 3));
    }
  return v;
}

test('cells describe themselves with Flax\'s names and defaults; RNN and Bidirectional name their values', () => {
  assert.deepEqual(flax.LSTMCell(4), { type: 'LSTMCell', features: 4, gate_fn: 'nn.sigmoid', activation_fn: 'nn.tanh', carry_init: 'zeros' });
  assert.deepEqual(flax.SimpleCell(3), { type: 'SimpleCell', features: 3, activation_fn: 'nn.tanh', residual: false, carry_init: 'zeros' });
  assert.deepEqual(flax.GRUCell(2, { gateFn: 'nn.hard_sigmoid' }).gate_fn, 'nn.hard_sigmoid'); // capturable; the decoder refuses it
  assert.throws(() => flax.LSTMCell(4, { gateFn: 'nn.nope' }), /LSTMCell gate_fn: unknown function "nn.nope"/);
  assert.throws(() => flax.RNN({ type: 'MGUCell', features: 2 }), /RNN cell: expected a cell/);
  assert.throws(() => flax.Bidirectional(flax.RNN(flax.GRUCell(2)), flax.RNN(flax.GRUCell(2)), { mergeFn: 'mul' }), /merge_fn/);
  const m = new flax.Model([
    flax.RNN(flax.LSTMCell(4), { returnCarry: true }),
    flax.Bidirectional(flax.RNN(flax.GRUCell(3)), flax.RNN(flax.GRUCell(3)), { returnCarry: true }),
    flax.Dense(2, { inputs: ['RNN_0:carry/h'] }),
  ]);
  // The cells' names are their Flax paths, where their params live (adopted as "cell").
  const at = (cell, name) => ({ type: cell.type, name, ...cell });
  assert.deepEqual(m.describe()[0], {
    type: 'RNN', name: 'RNN_0', cell: at(flax.LSTMCell(4), 'RNN_0/cell'), time_major: false, return_carry: true, reverse: false, keep_order: false, unroll: 1,
  });
  assert.deepEqual(m.describe()[1], {
    type: 'Bidirectional', name: 'Bidirectional_0', forward_rnn: { type: 'RNN', cell: at(flax.GRUCell(3), 'Bidirectional_0/forward_rnn/cell'), unroll: 1 },
    backward_rnn: { type: 'RNN', cell: at(flax.GRUCell(3), 'Bidirectional_0/backward_rnn/cell'), unroll: 1 },
    merge_fn: 'concatenate', time_major: false, return_carry: true,
  });
  assert.deepEqual(Object.keys(m.describe()[0].cell).slice(0, 2), ['type', 'name']);
  assert.throws(() => new flax.Model([flax.RNN({ ...flax.LSTMCell(4), name: 'LSTMCell_0' })]), /adopted path RNN_0\/cell/);
  // A carry only exists with return_carry.
  assert.throws(() => new flax.Model([flax.RNN(flax.LSTMCell(4)), flax.Dense(2, { inputs: ['RNN_0:carry/h'] })]), /"RNN_0:carry\/h" is not defined/);
});

test('init is Flax\'s: per-gate Dense params with Flax\'s bias placement, lecun_normal input and orthogonal recurrent kernels', async () => {
  const m = new flax.Model([flax.RNN(flax.LSTMCell(6)), flax.RNN(flax.GRUCell(5)), flax.RNN(flax.SimpleCell(4)), flax.RNN(flax.OptimizedLSTMCell(3))]);
  const v = m.init(random.key(3), np.zeros([2, 7, 8]));
  const shapes = tree.map((a) => a.shape, tree.ref(v.params));
  const lstm = (i, h) => ({
    ii: { kernel: [i, h] }, if: { kernel: [i, h] }, ig: { kernel: [i, h] }, io: { kernel: [i, h] },
    hi: { kernel: [h, h], bias: [h] }, hf: { kernel: [h, h], bias: [h] }, hg: { kernel: [h, h], bias: [h] }, ho: { kernel: [h, h], bias: [h] },
  });
  assert.deepEqual(shapes, {
    RNN_0: { cell: lstm(8, 6) },
    RNN_1: { cell: { ir: { kernel: [6, 5], bias: [5] }, iz: { kernel: [6, 5], bias: [5] }, in: { kernel: [6, 5], bias: [5] },
      hr: { kernel: [5, 5] }, hz: { kernel: [5, 5] }, hn: { kernel: [5, 5], bias: [5] } } },
    RNN_2: { cell: { i: { kernel: [5, 4], bias: [4] }, h: { kernel: [4, 4] } } },
    RNN_3: { cell: lstm(4, 3) }, // OptimizedLSTMCell: LSTMCell's parameters
  });
  // Recurrent kernels orthogonal (KᵀK = I), biases zeros.
  const k = await v.params.RNN_0.cell.hf.kernel.ref.data();
  for (let a = 0; a < 6; a++)
    for (let b = 0; b < 6; b++) {
      let d = 0;
      for (let i = 0; i < 6; i++) d += k[i * 6 + a] * k[i * 6 + b];
      assert.ok(Math.abs(d - (a === b ? 1 : 0)) < 1e-5, `KᵀK[${a}, ${b}] = ${d}`);
    }
  assert.ok((await v.params.RNN_1.cell.hn.bias.ref.data()).every((e) => e === 0));
  tree.dispose(v);
});

test('LSTMCell and OptimizedLSTMCell match Flax\'s equations; carry (c, h) in and out; reverse without keep_order', async () => {
  const m = new flax.Model([
    flax.RNN(flax.LSTMCell(4), { returnCarry: true, inputs: ['x', 'c0', 'h0'] }),
    flax.RNN(flax.OptimizedLSTMCell(3), { reverse: true }),
  ], { inputs: ['x', 'c0', 'h0'], outputs: ['RNN_0', 'RNN_0:carry/c', 'RNN_0:carry/h', 'RNN_1'] });
  const x = random.normal(random.key(1), [2, 5, 3]);
  const c0 = random.normal(random.key(2), [2, 4]);
  const h0 = random.normal(random.key(3), [2, 4]);
  const v = withBiases(m, random.key(4), x.ref, c0.ref, h0.ref);
  const s = await flax.capture({ model: m, variables: v, inputs: [x, c0, h0], modelId: 'lstm' });
  const t = s.tensors;
  const row = (name, b, h) => Array.from(t[name].data.slice(b * h, (b + 1) * h));
  const [y0, carry] = refRnn(t, 'params/RNN_0/cell', flax.LSTMCell(4), t['input.0'].data, [2, 5, 3],
    { carry0: (b) => [row('input.1', b, 4), row('input.2', b, 4)] });
  close(t['output.0'].data, flat(y0), 'RNN_0');
  close(t['output.1'].data, carry.map(([c]) => [...c]).flat(), 'carry c');
  close(t['output.2'].data, carry.map(([, h]) => [...h]).flat(), 'carry h');
  const [y1] = refRnn(t, 'params/RNN_1/cell', flax.OptimizedLSTMCell(3), t['output.0'].data, [2, 5, 4], { reverse: true });
  close(t['output.3'].data, flat(y1), 'RNN_1 (processing order)');
  assert.deepEqual(Object.keys(s.doc.taps).sort(), ['RNN_0', 'RNN_0:carry/c', 'RNN_0:carry/h', 'RNN_1']);
  assert.ok(s.doc.composed.includes(flax.COMPOSED.LSTMCell) && s.doc.composed.includes(flax.COMPOSED.OptimizedLSTMCell));
  tree.dispose([v, x, c0, h0]);
});

test('GRUCell (hn\'s bias inside the reset product), SimpleCell (relu, residual), time-major, Bidirectional concat and add', async () => {
  const m = new flax.Model([
    flax.RNN(flax.GRUCell(4), { timeMajor: true, reverse: true, keepOrder: true }),
    flax.Bidirectional(flax.RNN(flax.SimpleCell(3, { activationFn: 'nn.relu', residual: true })), flax.RNN(flax.GRUCell(2)),
      { timeMajor: true, returnCarry: true }),
    flax.Bidirectional(flax.RNN(flax.GRUCell(2)), flax.RNN(flax.GRUCell(2)), { timeMajor: true, mergeFn: 'add' }),
  ], { outputs: ['RNN_0', 'Bidirectional_0', 'Bidirectional_0:carry/backward_rnn', 'Bidirectional_1'] });
  const x = random.normal(random.key(5), [6, 2, 3]); // [T, N, F]
  const v = withBiases(m, random.key(6), x.ref);
  const s = await flax.capture({ model: m, variables: v, inputs: [x], modelId: 'gru' });
  const t = s.tensors;
  // time-major [T, N, F] -> [N, T, F] for the reference, and back.
  const toBatch = (d, T, n, f) => Float64Array.from({ length: T * n * f }, (_, q) => {
    const b = Math.floor(q / (T * f)), st = Math.floor(q / f) % T, i = q % f;
    return d[(st * n + b) * f + i];
  });
  const toTime = (ys) => { // [N][T][H] -> flat [T, N, H]
    const out = [];
    for (let st = 0; st < ys[0].length; st++) for (let b = 0; b < ys.length; b++) out.push(...ys[b][st]);
    return out;
  };
  const xb = toBatch(t['input.0'].data, 6, 2, 3);
  const [y0] = refRnn(t, 'params/RNN_0/cell', flax.GRUCell(4), xb, [2, 6, 3], { reverse: true, keepOrder: true });
  close(t['output.0'].data, toTime(y0), 'RNN_0');
  const x1 = toBatch(t['output.0'].data, 6, 2, 4);
  const [yf] = refRnn(t, 'params/Bidirectional_0/forward_rnn/cell', flax.SimpleCell(3, { activationFn: 'nn.relu', residual: true }), x1, [2, 6, 4]);
  const [yb, cb] = refRnn(t, 'params/Bidirectional_0/backward_rnn/cell', flax.GRUCell(2), x1, [2, 6, 4], { reverse: true, keepOrder: true });
  close(t['output.1'].data, toTime(yf.map((r, b) => r.map((y, st) => [...y, ...yb[b][st]]))), 'Bidirectional_0 [forward, backward]');
  close(t['output.2'].data, cb.map(([h]) => [...h]).flat(), 'backward carry (after the first step)');
  const x2 = toBatch(t['output.1'].data, 6, 2, 5);
  const [zf] = refRnn(t, 'params/Bidirectional_1/forward_rnn/cell', flax.GRUCell(2), x2, [2, 6, 5]);
  const [zb] = refRnn(t, 'params/Bidirectional_1/backward_rnn/cell', flax.GRUCell(2), x2, [2, 6, 5], { reverse: true, keepOrder: true });
  close(t['output.3'].data, toTime(zf.map((r, b) => r.map((y, st) => y.map((e, j) => e + zb[b][st][j])))), 'Bidirectional_1 (add)');
  assert.ok('tap.Bidirectional_0/forward_rnn' in t && 'tap.Bidirectional_1/backward_rnn' in t, 'a tap per direction');
  tree.dispose([v, x]);
});

test('recurrent fixtures: the suite\'s shapes and outputs, biases perturbed or trained, deterministic; errors name the spec field', async () => {
  const fx = (id, layer, spec, samples = 4) => ({ id, layer, spec, samples, seed: 42 });
  const a = await fixtures.build(fx('lstm_8_16_12_states', 'lstm', { input: 8, hidden: 16, seq: 12, initial_state: true, output: 'states' }));
  assert.ok(a.toBytes().equals((await fixtures.build(fx('lstm_8_16_12_states', 'lstm', { input: 8, hidden: 16, seq: 12, initial_state: true, output: 'states' }))).toBytes()));
  assert.deepEqual(a.doc.model.inputs, ['x', 'c0_0', 'h0_0']); // Flax's carry order (c, h)
  assert.deepEqual(a.doc.model.outputs, ['RNN_0', 'RNN_0:carry/h', 'RNN_0:carry/c']);
  assert.deepEqual(a.tensors['output.0'].shape, [4, 12, 16]);
  assert.deepEqual(a.tensors['output.1'].shape, [4, 16]);
  for (const [n, tt] of Object.entries(a.tensors)) if (n.endsWith('/bias')) assert.ok(tt.data.every((e) => e !== 0), `${n} non-zero`);

  const bi = await fixtures.build(fx('gru_bi', 'gru', { input: 8, hidden: 6, seq: 5, layers: 2, bidirectional: true }));
  assert.deepEqual(bi.doc.model.modules.map((l) => l.name), ['Bidirectional_0', 'Bidirectional_1']);
  assert.deepEqual(bi.tensors['output.0'].shape, [4, 5, 12]);
  assert.ok(['Bidirectional_0/forward_rnn', 'Bidirectional_0/backward_rnn', 'Bidirectional_1/backward_rnn'].every((k) => k in bi.doc.taps));
  const sum = await fixtures.build(fx('lstm_sum', 'lstm', { input: 3, hidden: 4, seq: 5, bidirectional: true, merge: 'sum' }));
  assert.equal(sum.doc.model.modules[0].merge_fn, 'add');
  assert.deepEqual(sum.tensors['output.0'].shape, [4, 5, 4]);
  const relu = await fixtures.build(fx('rnn_relu', 'rnn', { input: 3, hidden: 4, seq: 5, activation: 'relu' }));
  assert.equal(relu.doc.model.modules[0].cell.activation_fn, 'nn.relu');
  const last = await fixtures.build(fx('lstm_last', 'lstm', { input: 3, hidden: 4, seq: 5, output: 'last', head: 2 }));
  assert.deepEqual(last.doc.model.modules[1].inputs, ['RNN_0:carry/h']);
  assert.deepEqual(last.tensors['output.0'].shape, [4, 2]);

  await assert.rejects(fixtures.build(fx('g', 'gru', { input: 3, hidden: 4, seq: 5, reset_after: false })), pbstream.NotApplicable);
  for (const [layer, spec, field] of [
    ['lstm', { input: 3, hidden: 4, seq: 5, activation: 'relu' }, /spec\.activation: only for layer rnn/],
    ['rnn', { input: 3, hidden: 4, seq: 5, merge: 'sum' }, /spec\.merge: only for bidirectional/],
    ['rnn', { input: 3, hidden: 4, seq: 5, activation: 'gelu' }, /spec\.activation/],
    ['lstm', { input: 3, hidden: 4, seq: 5, head: 2 }, /spec\.head: only with output last/],
    ['lstm', { input: 3, hidden: 4, seq: 5, bidirectional: true, output: 'last' }, /spec\.output/],
    ['gru', { input: 3, hidden: 4, seq: 5, dropout: 0.1 }, /spec\.dropout/],
    ['gru', { arch: 'text_classifier', vocab: 5, embed: 2, hidden: 3, seq: 4, classes: 2 }, /spec\.arch: text_classifier is an lstm fixture/],
    ['lstm', { arch: 'transformer' }, /spec\.arch/],
  ])
    await assert.rejects(fixtures.build(fx('bad', layer, spec)), field);
});

test('arch fixtures: the text classifier and the seq2seq regressor are trained (every bias moved off zero)', async () => {
  const tc = await fixtures.build({ id: 'tc', layer: 'lstm', samples: 6, seed: 42, spec: { arch: 'text_classifier', vocab: 20, embed: 4, hidden: 5, seq: 6, classes: 3 } });
  assert.deepEqual(tc.doc.model.modules.map((l) => [l.type, l.name]), [['Embed', 'Embed_0'], ['RNN', 'RNN_0'], ['Dense', 'Dense_0']]);
  assert.equal(tc.doc.model.modules[1].cell.type, 'OptimizedLSTMCell');
  assert.equal(tc.tensors['input.0'].data.constructor, Int32Array);
  assert.deepEqual(tc.tensors['output.0'].shape, [6, 3]);
  const s2s = await fixtures.build({ id: 's2s', layer: 'gru', samples: 6, seed: 42, spec: { arch: 'seq2seq', input: 4, hidden: 5, seq: 7, targets: 2 } });
  assert.deepEqual(s2s.tensors['output.0'].shape, [6, 7, 2]);
  for (const st of [tc, s2s])
    for (const [n, tt] of Object.entries(st.tensors)) if (n.endsWith('/bias')) assert.ok(tt.data.every((e) => e !== 0), `${n} trained`);
});

test('every layer of a stacked recurrent fixture influences its output', async () => {
  const { model, inputs } = fixtures.recurrentModel('lstm', { input: 3, hidden: 4, seq: 5, layers: 2 }, 3);
  const v = model.init(random.key(8), np.zeros(inputs[0].shape));
  const x = random.normal(random.key(9), inputs[0].shape);
  const base = await model.apply(tree.ref(v), x.ref).data();
  for (const name of ['RNN_0', 'RNN_1']) {
    const w = tree.map((a) => a.ref, v);
    w.params[name].cell.hg.bias.dispose();
    w.params[name].cell.hg.bias = v.params[name].cell.hg.bias.ref.add(0.1);
    const y = await model.apply(w, x.ref).data();
    assert.ok(y.some((e, i) => e !== base[i]), `${name} has no influence`);
  }
  tree.dispose([v, x]);
});
