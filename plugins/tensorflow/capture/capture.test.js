'use strict';
// Tests for the tfjs capture and the shared JS stream writer. Run: node --test plugins/tensorflow/capture/capture.test.js
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { spawnSync } = require('child_process');

const pb = require('../../../capture/js/pbstream.js');

const CAPTURE = path.join(__dirname, 'capture.js');
const PBSTREAM = require.resolve('../../../capture/js/pbstream.js');

let tfjs = null; // the capture library, when the npm packages are installed
try {
  tfjs = require('./pb_tfjs.js');
} catch (e) {
  if (e.code !== 'MODULE_NOT_FOUND') throw e;
}
const needsTfjs = { skip: tfjs ? false : 'npm packages not installed (npm ci at the repository root)' };

const node = (args, input) =>
  spawnSync(process.execPath, args, { input: input === undefined ? '' : input, cwd: '/', timeout: 120000, maxBuffer: 1 << 26 });
const request = (fixtures) => JSON.stringify({ format: 'planetbridge.capture-request', version: 1, fixtures });

// ------------------------------------------------------------------ the frame layout

test('encodeFrame: header, 64-byte alignment, sorted tensors, zero padding', () => {
  const doc = { format: 'planetbridge.stream', hello: 'wörld' };
  const frame = pb.encodeFrame(doc, {
    b: { data: new Float32Array([1, 2, 3]), shape: [3] },
    a: { data: new BigInt64Array([5n, -6n]), shape: [2, 1] },
    s: { data: new Float64Array([0.5]), shape: [] },
  });
  assert.equal(frame.subarray(0, 8).toString('latin1'), 'PBSTRM\x00\x01');
  const j = Number(frame.readBigUInt64LE(8));
  const d = Number(frame.readBigUInt64LE(16));
  const dataStart = Math.ceil((24 + j) / 64) * 64;
  assert.equal(frame.length, dataStart + d);
  assert.ok(frame.subarray(24 + j, dataStart).every((byte) => byte === 0));
  const parsed = JSON.parse(frame.subarray(24, 24 + j).toString('utf8'));
  assert.equal(parsed.hello, 'wörld');
  assert.deepEqual(Object.keys(parsed.tensors), ['a', 'b', 's']);
  assert.deepEqual(parsed.tensors.a, { dtype: 'i64', shape: [2, 1], offset: 0, nbytes: 16 });
  assert.deepEqual(parsed.tensors.b, { dtype: 'f32', shape: [3], offset: 64, nbytes: 12 });
  assert.deepEqual(parsed.tensors.s, { dtype: 'f64', shape: [], offset: 128, nbytes: 8 });
  assert.equal(frame.readFloatLE(dataStart + 64 + 4), 2);
  assert.equal(doc.tensors, undefined); // the caller's doc is not modified

  const [back, hello] = pb.readFrames(Buffer.concat([frame, pb.eventFrame('hello', { planet: 'p' })]));
  assert.equal(hello.doc.event, 'hello');
  assert.deepEqual([...back.tensors.a.data], [5n, -6n]);
  assert.deepEqual([...back.tensors.b.data], [1, 2, 3]);
});

test('encodeFrame: errors name the tensor; NaN never reaches the JSON', () => {
  assert.throws(() => pb.encodeFrame({}, { w: { data: new Float32Array(5), shape: [2, 3] } }), /tensor "w": 5 elements, shape \[2, 3\] needs 6/);
  assert.throws(() => pb.encodeFrame({}, { w: { data: new Uint8Array(2), shape: [2] } }), /tensor "w": unsupported dtype Uint8Array/);
  assert.throws(() => pb.encodeFrame({ x: NaN }), /non-finite number NaN/);
  assert.deepEqual(pb.finiteOrRepr(Infinity), { repr: 'Infinity' });
  const [ev] = pb.readFrames(pb.eventFrame('error', { model_id: 'm', message: 'boom' }));
  assert.deepEqual(ev.doc, { format: 'planetbridge.capture', version: 1, event: 'error', model_id: 'm', message: 'boom' });
});

test('encodeJson: the same stream as plain JSON with base64 tensors', () => {
  const text = pb.encodeJson({ format: 'planetbridge.stream' }, { w: { data: new Float32Array([1.5, -2]), shape: [2] } });
  const doc = JSON.parse(text);
  assert.deepEqual(doc.tensors.w, { dtype: 'f32', shape: [2], b64: Buffer.from(new Float32Array([1.5, -2]).buffer).toString('base64') });
});

// ------------------------------------------------------------------ the library

test('capture(): Keras config, weight table by layer, inputs, native outputs, taps', needsTfjs, () => {
  const { tf } = tfjs;
  const build = () => {
    const m = tf.sequential({ name: 'lib' });
    m.add(tf.layers.dense({ units: 3, inputShape: [4], activation: 'relu', name: 'dense' }));
    m.add(tf.layers.dense({ units: 2, useBias: false, name: 'out' }));
    return m;
  };
  build(); // a first model with the same layer names: tfjs renames this one's variables "dense/kernel_1"
  const model = build();
  assert.equal(model.layers[0].weights[0].name, 'dense/kernel_1');
  const x = tf.randomNormal([5, 4], 0, 1, 'float32', 1);
  const s = tfjs.capture(model, x, 'lib', { taps: true });
  const [{ doc, tensors }] = pb.readFrames(s.toBytes());
  assert.equal(doc.planet, 'tensorflow');
  assert.equal(doc.engine, 'tfjs');
  assert.equal(doc.planet_version, tf.version.tfjs);
  assert.equal(doc.model.format, 'keras');
  assert.equal(doc.model.topology.class_name, 'Sequential');
  assert.equal(doc.model.topology.config.layers[0].config.activation, 'relu');
  // Stream names are "<layer>/<weight>", whatever suffix tfjs gave the variable.
  assert.deepEqual(doc.model.weights, { dense: { kernel: 'dense/kernel', bias: 'dense/bias' }, out: { kernel: 'out/kernel' } });
  assert.deepEqual(doc.tensors['dense/kernel'].shape, [4, 3]); // Keras layout [in, out]
  assert.deepEqual(doc.inputs, ['input.0']);
  assert.deepEqual(doc.expected, ['output.0']);
  assert.deepEqual(doc.taps, { dense: 'tap.dense', out: 'tap.out' });
  assert.deepEqual([...tensors['output.0'].data], [...model.predict(x).dataSync()]);
  assert.deepEqual([...tensors['tap.out'].data], [...tensors['output.0'].data]);
  assert.ok(tensors['tap.dense'].data.every((v) => v >= 0));
  assert.throws(() => tfjs.capture(model, [x, x], 'two'), /takes 1 inputs, got 2/);
});

test('capture(): a functional model with a shared layer gets taps only where they are well defined', needsTfjs, () => {
  const { tf } = tfjs;
  const x = tf.input({ shape: [3], name: 'x' });
  const shared = tf.layers.dense({ units: 3, name: 'shared' });
  const y = tf.layers.add({ name: 'sum' }).apply([shared.apply(x), shared.apply(shared.apply(x))]);
  const model = tf.model({ inputs: x, outputs: y });
  const { doc } = tfjs.capture(model, tf.ones([2, 3]), 'f', { taps: true });
  assert.equal(doc.model.topology.class_name, 'Model');
  assert.deepEqual(Object.keys(doc.taps), ['sum']);
  assert.deepEqual(doc.model.weights, { shared: { kernel: 'shared/kernel', bias: 'shared/bias' } });
});

test('fixtures: dense specs, trained biases, deterministic bytes, errors naming the field', needsTfjs, async () => {
  const fixtures = require('./fixtures.js');
  const fx = { id: 'mlp', layer: 'dense', samples: 6, seed: 42, spec: { input: 5, units: [4, 3], activation: 'tanh' } };
  await tfjs.useWasm();
  const a = (await fixtures.build(fx)).toBytes();
  assert.deepEqual(a, (await fixtures.build(fx)).toBytes());
  const [{ doc, tensors }] = pb.readFrames(a);
  assert.deepEqual(doc.model.topology.config.layers.map((l) => [l.config.name, l.config.activation]), [['dense_1', 'tanh'], ['dense_2', 'linear']]);
  assert.deepEqual(doc.tensors['input.0'].shape, [6, 5]);
  assert.ok(tensors['dense_1/bias'].data.some((v) => v !== 0));
  // Recompute from the stream's own weights (Keras layout), as the host would.
  const dense = (x, rows, k, b, inF, outF, act) => {
    const y = new Float64Array(rows * outF);
    for (let r = 0; r < rows; r++)
      for (let o = 0; o < outF; o++) {
        let acc = b[o];
        for (let i = 0; i < inF; i++) acc += x[r * inF + i] * k[i * outF + o];
        y[r * outF + o] = act(acc);
      }
    return y;
  };
  const h = dense(tensors['input.0'].data, 6, tensors['dense_1/kernel'].data, tensors['dense_1/bias'].data, 5, 4, Math.tanh);
  const y = dense(h, 6, tensors['dense_2/kernel'].data, tensors['dense_2/bias'].data, 4, 3, (v) => v);
  y.forEach((v, i) => assert.ok(Math.abs(v - tensors['output.0'].data[i]) <= 1e-5 + 1e-5 * Math.abs(v), `element ${i}`));

  for (const [spec, field] of [
    [{ input: 8, units: [4, 2], activation: 'swish2' }, 'spec.activation'],
    [{ input: 8, units: [] }, 'spec.units'],
    [{ input: 8, units: [2], bias: 'no' }, 'spec.bias'],
    [{ input: 8, units: [2], dropout: 0.1 }, 'spec.dropout'],
  ])
    await assert.rejects(fixtures.build({ ...fx, spec }), new RegExp(field.replace('.', '\\.')));
  await assert.rejects(fixtures.build({ ...fx, spec: { input: 4, units: [3, 2], activation: 'hardswish' } }), pb.NotApplicable);
});

test('fixtures: issue-4 layers are channels-last, trained, deterministic; ids are int32', needsTfjs, async () => {
  const fixtures = require('./fixtures.js');
  await tfjs.useWasm();
  const fx = (layer, spec, id = layer) => ({ id, layer, samples: 3, seed: 42, spec });
  const conv = fx('cnn2', { in_channels: 2, size: 5, filters: [3], kernel: 2, padding: 'same', activation: 'relu' });
  const bytes = (await fixtures.build(conv)).toBytes();
  assert.deepEqual(bytes, (await fixtures.build(conv)).toBytes());
  let [{ doc, tensors }] = pb.readFrames(bytes);
  assert.deepEqual(doc.tensors['input.0'].shape, [3, 5, 5, 2]); // [N, size..., C]
  assert.deepEqual(doc.tensors['conv_1/kernel'].shape, [2, 2, 2, 3]); // Keras [kh, kw, in, out]
  assert.equal(doc.model.topology.config.layers[0].config.activation, 'relu');
  assert.ok(tensors['conv_1/bias'].data.some((v) => v !== 0)); // trained
  assert.equal(doc.composed, undefined);

  ({ doc, tensors } = pb.readFrames((await fixtures.build(fx('batchnorm', { dims: 2, in_channels: 2, size: 4, filters: 3 }))).toBytes())[0]);
  assert.deepEqual(doc.model.topology.config.layers.map((l) => l.class_name), ['Conv2D', 'BatchNormalization', 'Activation']);
  assert.ok(tensors['bn/moving_mean'].data.every((v) => v !== 0)); // the moving statistics moved in fit
  assert.ok(tensors['bn/moving_variance'].data.every((v) => v !== 1));

  ({ doc, tensors } = pb.readFrames((await fixtures.build(fx('embedding', { vocab: 8, dim: 2, seq: 4 }))).toBytes())[0]);
  assert.equal(doc.tensors['input.0'].dtype, 'i32');
  assert.ok(tensors['input.0'].data.every((v) => v >= 0 && v < 8));

  // RMSNorm: composed from tfjs ops, labelled so; its output is x·rsqrt(mean(x²) + eps)·scale.
  ({ doc, tensors } = pb.readFrames((await fixtures.build(fx('rmsnorm', { features: 4 }))).toBytes())[0]);
  assert.equal(doc.composed.length, 1);
  assert.match(doc.composed[0], /^RMSNorm: /);
  const norm = doc.model.topology.config.layers[1];
  assert.equal(norm.class_name, 'RMSNorm');
  assert.deepEqual([norm.config.epsilon, norm.config.axis], [1e-6, -1]);
  const h = tensors['tap.dense'].data, y = tensors['output.0'].data, g = tensors['norm/scale'].data;
  for (let r = 0; r < 3; r++) {
    const row = h.slice(r * 4, r * 4 + 4);
    const inv = 1 / Math.sqrt(row.reduce((a, v) => a + v * v, 0) / 4 + 1e-6);
    row.forEach((v, i) => assert.ok(Math.abs(v * inv * g[i] - y[r * 4 + i]) <= 1e-5, `row ${r} element ${i}`));
  }

  for (const [layer, spec, field] of [
    ['cnn1', { in_channels: 2, size: 8, filters: [2], kernel: 3, padding: 'full' }, 'spec.padding'],
    ['cnn2', { in_channels: 2, size: 8, filters: [2], kernel: 3, groups: 2 }, 'spec.groups'],
    ['pool', { dims: 2, in_channels: 2, size: 8, filters: 2, pool: 'min', kernel: 2 }, 'spec.pool'],
    ['batchnorm', { dims: 4, in_channels: 2, size: 8, filters: 2 }, 'spec.dims'],
    ['layernorm', { features: 4, eps: -1 }, 'spec.eps'],
    ['model', { arch: 'resnet' }, 'spec.arch'],
  ])
    await assert.rejects(fixtures.build(fx(layer, spec)), new RegExp(field.replace('.', '\\.')));
  // Keras pools pad only "valid"/"same"; tfjs has ZeroPadding2D only.
  await assert.rejects(fixtures.build(fx('pool', { dims: 1, in_channels: 2, size: 8, filters: 2, pool: 'max', kernel: 3, stride: 2, padding: 1 })),
    (e) => e instanceof pb.NotApplicable && /ZeroPadding1D/.test(e.message));
});

test('fixtures: recurrent layers - sigmoid gates, non-zero biases, distinct directions, Keras states, reset_after composed', needsTfjs, async () => {
  const fixtures = require('./fixtures.js');
  await tfjs.useWasm();
  const fx = (layer, spec, id = layer) => ({ id, layer, samples: 3, seed: 42, spec });
  const read = async (f) => pb.readFrames((await fixtures.build(f)).toBytes())[0];
  const lstm = fx('lstm', { input: 4, hidden: 3, seq: 5, bidirectional: true });
  const bytes = (await fixtures.build(lstm)).toBytes();
  assert.deepEqual(bytes, (await fixtures.build(lstm)).toBytes());
  let { doc, tensors } = pb.readFrames(bytes)[0];
  const bi = doc.model.topology.config.layers[1];
  assert.deepEqual([bi.class_name, bi.config.merge_mode, bi.config.layer.class_name], ['Bidirectional', 'concat', 'LSTM']);
  assert.equal(bi.config.layer.config.recurrent_activation, 'sigmoid'); // tfjs's default would be hardSigmoid
  assert.deepEqual(doc.tensors['bi_lstm/forward_lstm/kernel'].shape, [4, 12]); // Keras [input, 4·units]
  assert.ok(tensors['bi_lstm/forward_lstm/bias'].data.every((v) => v !== 0));
  // Both directions drawn apart (tfjs would clone the forward layer's seeded initialisers).
  const fk = tensors['bi_lstm/forward_lstm/kernel'].data, bk = tensors['bi_lstm/backward_lstm/kernel'].data;
  assert.ok(fk.some((v, i) => v !== bk[i]));
  assert.deepEqual(doc.tensors['output.0'].shape, [3, 5, 6]);
  assert.equal(doc.composed, undefined);

  // States: Keras's own [N, hidden] per state, as inputs after x and as outputs after the sequence.
  ({ doc, tensors } = await read(fx('lstm', { input: 4, hidden: 3, seq: 5, initial_state: true, output: 'states' })));
  assert.deepEqual(doc.inputs.map((n) => doc.tensors[n].shape), [[3, 5, 4], [3, 3], [3, 3]]);
  assert.deepEqual(doc.expected.map((n) => doc.tensors[n].shape), [[3, 5, 3], [3, 3], [3, 3]]);
  assert.deepEqual(Object.keys(doc.taps), ['lstm', 'lstm:1', 'lstm:2']);
  assert.deepEqual(doc.model.topology.config.output_layers, [['lstm', 0, 0], ['lstm', 0, 1], ['lstm', 0, 2]]);

  // GRU reset_after (Keras's default): tfjs's GRUCell refuses it; composed, bias [2, 3H], both rows non-zero.
  ({ doc, tensors } = await read(fx('gru', { input: 4, hidden: 3, seq: 5 })));
  assert.equal(doc.model.topology.config.layers[1].config.reset_after, true);
  assert.match(doc.composed[0], /^GRU\(reset_after=True\)/);
  const b = tensors['gru/bias'];
  assert.deepEqual(doc.tensors['gru/bias'].shape, [2, 9]);
  assert.ok(b.data.slice(0, 9).some((v) => v !== 0) && b.data.slice(9).some((v) => v !== 0));
  // Its output is Keras's reset_after cell (h' = z·h + (1 − z)·tanh(x_h + r·(h·U_h + b_rh))), checked on step 1.
  const x = tensors['input.0'].data, k = tensors['gru/kernel'].data, y = tensors['output.0'].data;
  const sig = (v) => 1 / (1 + Math.exp(-v));
  for (let r = 0; r < 3; r++)
    for (let j = 0; j < 3; j++) {
      const gate = (g) => b.data[g * 3 + j] + [0, 1, 2, 3].reduce((a, i) => a + x[r * 20 + i] * k[i * 9 + g * 3 + j], 0);
      const z = sig(gate(0) + b.data[9 + j]), rr = sig(gate(1) + b.data[12 + j]);
      const h = (1 - z) * Math.tanh(gate(2) + rr * b.data[15 + j]);
      assert.ok(Math.abs(h - y[r * 15 + j]) <= 1e-5, `row ${r} unit ${j}: ${h} vs ${y[r * 15 + j]}`);
    }
  ({ doc } = await read(fx('gru', { input: 4, hidden: 3, seq: 5, reset_after: false })));
  assert.equal(doc.model.topology.config.layers[1].config.reset_after, false);
  assert.equal(doc.composed, undefined);

  // Trained whole models: a text classifier on int32 ids, a GRU regressor on every step.
  ({ doc, tensors } = await read(fx('lstm', { arch: 'text_classifier', vocab: 10, embed: 4, hidden: 3, seq: 5, classes: 2 })));
  assert.deepEqual(doc.model.topology.config.layers.map((l) => l.class_name), ['InputLayer', 'Embedding', 'LSTM', 'Dense']);
  assert.equal(doc.tensors['input.0'].dtype, 'i32');
  assert.ok(tensors['head/bias'].data.every((v) => v !== 0)); // trained from zeros

  for (const [layer, spec, field] of [
    ['lstm', { input: 4, hidden: 3, seq: 5, activation: 'relu' }, 'spec.activation'],
    ['rnn', { input: 4, hidden: 3, seq: 5, activation: 'sigmoid' }, 'spec.activation'],
    ['lstm', { input: 4, hidden: 3, seq: 5, reset_after: false }, 'spec.reset_after'],
    ['lstm', { input: 4, hidden: 3, seq: 5, merge: 'sum' }, 'spec.merge'],
    ['lstm', { input: 4, hidden: 3, seq: 5, bidirectional: true, merge: 'max' }, 'spec.merge'],
    ['lstm', { input: 4, hidden: 3, seq: 5, output: 'all' }, 'spec.output'],
    ['lstm', { input: 4, hidden: 3, seq: 5, head: 2 }, 'spec.head'],
    ['gru', { arch: 'text_classifier', vocab: 10, embed: 4, hidden: 3, seq: 5, classes: 2 }, 'spec.arch'],
    ['rnn', { input: 4, hidden: 3, seq: 5, dropout: 0.1 }, 'spec.dropout'],
  ])
    await assert.rejects(fixtures.build(fx(layer, spec)), new RegExp(field.replace('.', '\\.')));
});

test('fixtures: attention - composed Keras MultiHeadAttention (self, causal, cross), SwiGLU from stock layers', needsTfjs, async () => {
  const fixtures = require('./fixtures.js');
  const attention = require('./attention.js');
  const { tf } = tfjs;
  await tfjs.useWasm();
  const fx = (layer, spec, id = layer) => ({ id, layer, samples: 3, seed: 42, spec });
  const read = async (f) => pb.readFrames((await fixtures.build(f)).toBytes())[0];
  const causal = fx('mha', { d_model: 8, heads: 2, seq: 4, mask: 'causal' });
  const bytes = (await fixtures.build(causal)).toBytes();
  assert.deepEqual(bytes, (await fixtures.build(causal)).toBytes());
  let { doc, tensors } = pb.readFrames(bytes)[0];
  const mha = doc.model.topology.config.layers.find((l) => l.name === 'mha');
  assert.equal(mha.class_name, 'MultiHeadAttention'); // Keras's class and config keys
  assert.deepEqual([mha.config.num_heads, mha.config.key_dim, mha.config.value_dim, mha.config.use_bias], [2, 4, 4, true]);
  // Keras's self-attention call mha(x, x, use_causal_mask=True), as tfjs writes a call.
  assert.deepEqual(mha.inbound_nodes, [[['x', 0, 0, { use_causal_mask: true }], ['x', 0, 0, { use_causal_mask: true }]]]);
  assert.deepEqual(doc.tensors['mha/query/kernel'].shape, [8, 2, 4]); // einsum kernel [features, heads, key_dim]
  assert.deepEqual(doc.tensors['mha/attention_output/kernel'].shape, [2, 4, 8]);
  assert.ok(tensors['mha/attention_output/bias'].data.every((v) => v !== 0));
  assert.match(doc.composed[0], /^MultiHeadAttention: tfjs 4\.22 has none/);
  assert.deepEqual(doc.tensors['output.0'].shape, [3, 4, 8]);
  // Taps inside the composed layer "mha/<step>" (the tensors its call() computes), besides its output.
  assert.deepEqual(Object.keys(doc.taps), ['mha', 'mha/q', 'mha/k', 'mha/v', 'mha/scores', 'mha/weights', 'mha/context']);
  const tapShape = (step) => doc.tensors[doc.taps[`mha/${step}`]].shape;
  for (const step of ['q', 'k', 'v']) assert.deepEqual(tapShape(step), [3, 2, 4, 4]); // [N, heads, T, key_dim]
  assert.deepEqual(tapShape('scores'), [3, 2, 4, 4]); // [N, heads, Tq, Tk]
  assert.deepEqual(tapShape('context'), [3, 4, 8]); // the heads merged
  const w = tensors[doc.taps['mha/weights']].data; // softmax rows, causal: nothing above the diagonal
  for (let r = 0; r < w.length / 4; r++) {
    assert.ok(Math.abs(w.slice(r * 4, r * 4 + 4).reduce((a, b) => a + b, 0) - 1) < 1e-5);
    for (let j = (r % 4) + 1; j < 4; j++) assert.equal(w[r * 4 + j], 0);
  }

  // Cross-attention: value and key are inputs of their own sizes.
  ({ doc } = await read(fx('mha', { d_model: 8, heads: 2, seq: 3, kv_seq: 5, kdim: 6, vdim: 4, bias: false })));
  assert.deepEqual(doc.inputs.map((n) => doc.tensors[n].shape), [[3, 3, 8], [3, 5, 4], [3, 5, 6]]);
  assert.deepEqual(doc.tensors[doc.taps['mha/k']].shape, [3, 2, 5, 4]);
  assert.deepEqual(doc.tensors[doc.taps['mha/scores']].shape, [3, 2, 3, 5]);
  assert.deepEqual(doc.tensors['mha/key/kernel'].shape, [6, 2, 4]);
  assert.deepEqual(doc.tensors['mha/value/kernel'].shape, [4, 2, 4]);
  assert.equal(doc.tensors['mha/query/bias'], undefined);

  // The composed layer is causal: a later step of the input never changes an earlier output.
  const built = attention.mhaModel({ d_model: 8, heads: 2, seq: 4, mask: 'causal' }, { name: 'c', kernel: () => tf.initializers.glorotNormal({ seed: 1 }), bias: () => tf.initializers.randomNormal({ stddev: 0.5, seed: 2 }) });
  const x = tf.randomNormal([2, 4, 8], 0, 1, 'float32', 3);
  const later = tf.concat([x.slice([0, 0, 0], [2, 2, 8]), tf.randomNormal([2, 2, 8], 0, 1, 'float32', 4)], 1);
  const [a, b] = [built.model.predict(x), built.model.predict(later)].map((t) => t.slice([0, 0, 0], [2, 2, 8]).dataSync());
  assert.deepEqual(a, b);
  assert.ok(built.model.predict(later).slice([0, 2, 0], [2, 2, 8]).dataSync().some((v, i) => v !== built.model.predict(x).slice([0, 2, 0], [2, 2, 8]).dataSync()[i]));

  // SwiGLU: stock Dense gate / up without activation, swish, Multiply, Dense down; composed as a block.
  ({ doc, tensors } = await read(fx('swiglu', { d_model: 6, ff: 8, seq: 3 })));
  const layers = Object.fromEntries(doc.model.topology.config.layers.map((l) => [l.name, l]));
  assert.deepEqual(['gate', 'up', 'silu', 'gated', 'down'].map((n) => layers[n].class_name), ['Dense', 'Dense', 'Activation', 'Multiply', 'Dense']);
  assert.deepEqual([layers.gate.config.activation, layers.up.config.activation, layers.silu.config.activation], ['linear', 'linear', 'swish']);
  assert.ok(tensors['gate/bias'].data.every((v) => v !== 0));
  assert.match(doc.composed[0], /^SwiGLU/);
  ({ doc } = await read(fx('swiglu', { d_model: 6, ff: 8, bias: false })));
  assert.deepEqual(doc.tensors['input.0'].shape, [3, 6]);
  assert.equal(doc.tensors['gate/bias'], undefined);

  for (const [layer, spec, field] of [
    ['mha', { d_model: 8, heads: 3, seq: 4 }, 'spec.heads'],
    ['mha', { d_model: 8, heads: 2, seq: 4, mask: 'padding' }, 'spec.mask'],
    ['mha', { d_model: 8, heads: 2, seq: 4, batch_first: false }, 'spec.batch_first'],
    ['swiglu', { d_model: 6 }, 'spec.ff'],
    ['swiglu', { d_model: 6, ff: 8, activation: 'gelu' }, 'spec.activation'],
  ])
    await assert.rejects(fixtures.build(fx(layer, spec)), new RegExp(field.replace('.', '\\.')));
  // The composed layer's own refusals.
  assert.throws(() => new attention.MultiHeadAttention({ name: 'm0', numHeads: 0, keyDim: 4 }), /numHeads must be a positive integer/);
  const q = tf.input({ shape: [4, 8] });
  assert.throws(() => new attention.MultiHeadAttention({ name: 'm1', numHeads: 2, keyDim: 4 }).apply(q), /call it on \[query, value\]/);
  const twice = new attention.MultiHeadAttention({ name: 'm2', numHeads: 2, keyDim: 4 });
  twice.apply([q, q], { useCausalMask: true });
  assert.throws(() => twice.apply([q, q]), /called with and without useCausalMask/);
});

test('fixtures: transformer - Keras blocks of stock layers and the composed attention, padding and causal masks', needsTfjs, async () => {
  const fixtures = require('./fixtures.js');
  const attention = require('./attention.js');
  const { tf } = tfjs;
  await tfjs.useWasm();
  const fx = (spec, id = 'transformer') => ({ id, layer: 'transformer', samples: 4, seed: 42, spec });
  const read = async (f) => pb.readFrames((await fixtures.build(f)).toBytes())[0];
  const names = (doc) => doc.model.topology.config.layers.map((l) => `${l.name}:${l.class_name}`);

  // Post-norm: ln_1(x + mha(x, x)), ln_2(h + ff_2(ff_1(h))); every norm's gamma and beta off 1 and 0.
  const post = fx({ d_model: 8, heads: 2, ff: 16, seq: 5 });
  const bytes = (await fixtures.build(post)).toBytes();
  assert.deepEqual(bytes, (await fixtures.build(post)).toBytes());
  let { doc, tensors } = pb.readFrames(bytes)[0];
  assert.deepEqual(names(doc), ['x:InputLayer', 'mha:MultiHeadAttention', 'add_1:Add', 'ln_1:LayerNormalization', 'ff_1:Dense', 'ff_2:Dense',
    'add_2:Add', 'ln_2:LayerNormalization']);
  const layers = Object.fromEntries(doc.model.topology.config.layers.map((l) => [l.name, l]));
  assert.deepEqual(layers.add_1.inbound_nodes, [[['x', 0, 0, {}], ['mha', 0, 0, {}]]]);
  assert.deepEqual(layers.mha.inbound_nodes, [[['x', 0, 0, {}], ['x', 0, 0, {}]]]);
  assert.equal(layers.ff_1.config.activation, 'relu');
  assert.ok(tensors['ln_1/gamma'].data.every((v) => v !== 1) && tensors['ln_2/beta'].data.every((v) => v !== 0));
  assert.ok(tensors['ff_2/bias'].data.every((v) => v !== 0));
  assert.match(doc.composed[0], /^MultiHeadAttention: /);

  // Pre-norm gelu, causal (decoder_only): x + mha(ln_1(x), ln_1(x)) with use_causal_mask.
  ({ doc } = await read(fx({ kind: 'decoder_only', d_model: 8, heads: 2, ff: 16, seq: 5, norm_first: true, activation: 'gelu' })));
  assert.deepEqual(names(doc), ['x:InputLayer', 'ln_1:LayerNormalization', 'mha:MultiHeadAttention', 'add_1:Add', 'ln_2:LayerNormalization',
    'ff_1:Dense', 'ff_2:Dense', 'add_2:Add']);
  const pre = Object.fromEntries(doc.model.topology.config.layers.map((l) => [l.name, l]));
  assert.deepEqual(pre.mha.inbound_nodes[0][0], ['ln_1', 0, 0, { use_causal_mask: true }]);
  assert.equal(pre.ff_1.config.activation, 'gelu');

  // Two blocks with a key padding mask: int32 padding_mask [N, seq] (first row whole, every row at
  // least one token) -> Reshape [N, 1, seq] -> each block's attention_mask, its fourth input.
  const padded = fx({ d_model: 8, heads: 2, ff: 16, seq: 5, layers: 2, final_norm: true, mask: 'padding' });
  ({ doc, tensors } = await read(padded));
  assert.deepEqual(doc.inputs.map((n) => [doc.tensors[n].dtype, doc.tensors[n].shape]), [['f32', [4, 5, 8]], ['i32', [4, 5]]]);
  const valid = tensors['input.1'].data;
  const lengths = [0, 1, 2, 3].map((r) => valid.slice(r * 5, r * 5 + 5).reduce((a, v) => a + v, 0));
  assert.equal(lengths[0], 5);
  assert.ok(lengths.every((n, r) => n >= 1 && valid.slice(r * 5, r * 5 + 5).every((v, t) => v === (t < n ? 1 : 0))));
  assert.ok(lengths.some((n) => n < 5));
  const block2 = doc.model.topology.config.layers.find((l) => l.name === 'block_2_mha');
  assert.deepEqual(block2.inbound_nodes[0].map((r) => [r[0], r[3]]),
    [['block_1_ln_2', { attention_mask: true }], ['block_1_ln_2', { attention_mask: true }], ['block_1_ln_2', { attention_mask: true }],
      ['attention_mask', { attention_mask: true }]]);
  assert.equal(doc.model.topology.config.layers.at(-1).name, 'final_ln');

  // The mask works: the padded steps of x never change a token's output.
  const built = attention.transformerModel(padded.spec, { name: 'p', kernel: () => tf.initializers.glorotNormal({ seed: 1 }),
    bias: () => tf.initializers.randomNormal({ stddev: 0.5, seed: 2 }), gamma: () => tf.initializers.randomNormal({ mean: 1, stddev: 0.25, seed: 3 }) });
  const [x, mask] = built.draw(4, 9);
  const m = mask.dataSync();
  const noise = tf.tensor3d(Array.from({ length: 4 * 5 * 8 }, (_, i) => (m[Math.floor(i / 8)] ? 0 : 3 * Math.sin(i))), [4, 5, 8]);
  const [a, b] = [built.model.predict([x, mask]).dataSync(), built.model.predict([x.add(noise), mask]).dataSync()];
  assert.ok(noise.dataSync().some((v) => v !== 0));
  a.forEach((v, i) => { if (m[Math.floor(i / 8)]) assert.equal(v, b[i], `element ${i}`); });
  assert.ok(a.some((v, i) => !m[Math.floor(i / 8)] && v !== b[i]));

  for (const [spec, field] of [
    [{ d_model: 8, heads: 3, ff: 16, seq: 5 }, 'spec.heads'],
    [{ d_model: 8, heads: 2, ff: 16, seq: 5, mask: 'causal_padding' }, 'spec.mask'],
    [{ kind: 'decoder_only', d_model: 8, heads: 2, ff: 16, seq: 5, mask: 'padding' }, 'spec.mask'],
    [{ d_model: 8, heads: 2, ff: 16, seq: 5, activation: 'tanh' }, 'spec.activation'],
    [{ d_model: 8, heads: 2, ff: 16, seq: 5, batch_first: false }, 'spec.batch_first'],
    [{ d_model: 8, heads: 2, seq: 5 }, 'spec.ff'],
  ])
    await assert.rejects(fixtures.build(fx(spec)), new RegExp(field.replace('.', '\\.')));
  await assert.rejects(fixtures.build(fx({ kind: 'decoder', d_model: 8, heads: 2, ff: 16, seq: 5 })),
    (e) => e instanceof pb.NotApplicable && /cross-attention on a memory/.test(e.message));
  // The composed layer's attentionMask: a symbolic tensor only, on [query, value(, key)].
  const q = tf.input({ shape: [4, 8] }), km = tf.input({ shape: [1, 4], dtype: 'int32' });
  const mk = (name) => new attention.MultiHeadAttention({ name, numHeads: 2, keyDim: 4 });
  assert.throws(() => mk('m3').apply([q, q], { attentionMask: tf.ones([1, 1, 4]) }), /attentionMask must be a symbolic tensor/);
  assert.throws(() => mk('m4').apply(q, { attentionMask: km }), /call it on \[query, value\]/);
  const once = mk('m5');
  once.apply([q, q], { attentionMask: km });
  assert.throws(() => once.apply([q, q]), /called with and without useCausalMask or attentionMask/);
});

test('fixtures: mixer - the two mixer archs, every numbered layer tapped, every layer\'s weights reaching the output', needsTfjs, async () => {
  const fixtures = require('./fixtures.js');
  const { tf } = tfjs;
  await tfjs.useWasm();
  const fx = (arch) => ({ id: `mixer_${arch}`, layer: 'mixer', samples: 4, seed: 42, spec: { arch } });
  const classes = {
    all_v1: ['Dense', 'Conv1D', 'LayerNormalization', 'MultiHeadAttention', 'RMSNorm', 'LSTM', 'Dense', 'Dense', 'LayerNormalization', 'Dense'],
    all_v2: ['Embedding', 'LayerNormalization', 'MultiHeadAttention', 'RMSNorm', 'Dense', 'LayerNormalization', 'Conv1D', 'RMSNorm', 'GRU',
      'LayerNormalization', 'SimpleRNN', 'RMSNorm', 'LSTM', 'LayerNormalization', 'Dense', 'Activation'],
  };
  for (const arch of ['all_v1', 'all_v2']) {
    const bytes = (await fixtures.build(fx(arch))).toBytes();
    assert.deepEqual(bytes, (await fixtures.build(fx(arch))).toBytes());
    const [{ doc, tensors }] = pb.readFrames(bytes);
    const layers = doc.model.topology.config.layers;
    // Layer k is the first layer named lNN_... (SwiGLU: its gate_proj opens the block, down_proj ends it).
    const numbered = classes[arch].map((_, k) => layers.find((l) => l.name.startsWith(`l${String(k + 1).padStart(2, '0')}_`)));
    assert.deepEqual(numbered.map((l) => l.class_name), classes[arch], arch);
    const taps = Object.keys(doc.taps);
    classes[arch].forEach((_, k) => assert.ok(taps.some((t) => t.startsWith(`l${String(k + 1).padStart(2, '0')}_`)), `${arch} tap ${k + 1}`));
    assert.deepEqual(doc.composed.map((c) => c.split(':')[0]).sort(), ['MultiHeadAttention', 'RMSNorm', 'SwiGLU']);
    for (const l of layers.filter((l) => ['LSTM', 'GRU'].includes(l.class_name))) assert.equal(l.config.recurrent_activation, 'sigmoid');
    for (const name of Object.keys(doc.model.weights))
      for (const [short, t] of Object.entries(doc.model.weights[name]))
        if (/bias|beta/.test(short)) assert.ok(tensors[t].data.every((v) => v !== 0), `${name}/${short}`);
        else if (/gamma|scale/.test(short)) assert.ok(tensors[t].data.every((v) => v !== 1), `${name}/${short}`);
    if (arch === 'all_v1') {
      assert.deepEqual([doc.tensors['input.0'].dtype, doc.tensors['input.0'].shape, doc.tensors['output.0'].shape], ['f32', [4, 8, 16], [4, 8, 8]]);
      assert.equal(layers.find((l) => l.name === 'l02_conv1d').config.padding, 'same');
    } else {
      assert.deepEqual([doc.tensors['input.0'].dtype, doc.tensors['output.0'].shape], ['i32', [4, 8, 10]]);
      assert.ok(tensors['input.0'].data.every((v) => v >= 0 && v < 50));
      const y = tensors['output.0'].data;
      for (let r = 0; r < 32; r++) assert.ok(Math.abs(y.slice(r * 10, r * 10 + 10).reduce((a, v) => a + v, 0) - 1) < 1e-5);
      assert.deepEqual(layers.find((l) => l.name === 'l03_mha').inbound_nodes[0][0], ['l02_layernorm', 0, 0, { use_causal_mask: true }]);
      assert.deepEqual(layers.find((l) => l.name === 'l09_add').inbound_nodes[0].map((r) => r[0]), ['l07_add', 'l09_gru']);
    }
  }

  // Every weight of every layer reaches the output: nudging any one of them changes it. Except the
  // attention's key bias, which no attention output depends on: it adds q·b_k to every score of a
  // query alike, and the softmax over the keys cancels it.
  let seed = 5;
  const init = { name: 'm', kernel: () => tf.initializers.glorotNormal({ seed: seed++ }), bias: () => tf.initializers.randomNormal({ stddev: 0.5, seed: seed++ }),
    gamma: () => tf.initializers.randomNormal({ mean: 1, stddev: 0.25, seed: seed++ }), orthogonal: () => tf.initializers.orthogonal({ seed: seed++ }),
    uniform: () => tf.initializers.randomUniform({ minval: -0.05, maxval: 0.05, seed: seed++ }) };
  for (const arch of ['all_v1', 'all_v2']) {
    const { model, vocab } = fixtures.BUILDERS.mixer({ arch }, init);
    const x = vocab ? tf.randomUniform([2, 8], 0, vocab, 'int32', 1) : tf.randomNormal([2, 8, 16], 0, 1, 'float32', 1);
    const base = model.predict(x).dataSync();
    for (const layer of model.layers)
      for (const w of layer.weights.filter((v) => !v.originalName.endsWith('/key/bias'))) {
        const before = w.read().clone();
        w.write(before.add(tf.randomNormal(before.shape, 0, 0.05, 'float32', 2)));
        const moved = model.predict(x).dataSync();
        assert.ok(moved.some((v, i) => Math.abs(v - base[i]) > 1e-6), `${arch}: ${w.originalName} does not reach the output`);
        w.write(before);
      }
  }
  await assert.rejects(fixtures.build({ ...fx('all_v1'), spec: { arch: 'all_v3' } }), /spec\.arch/);
  await assert.rejects(fixtures.build({ ...fx('all_v1'), spec: { arch: 'all_v1', seq: 4 } }), /spec\.seq/);
});

// ------------------------------------------------------------------ the protocol

test('--serve: hello, then one frame per fixture in request order, errors as events', needsTfjs, () => {
  const fx = { layer: 'dense', samples: 7, seed: 1, spec: { input: 4, units: [3, 2] } };
  const r = node([CAPTURE, '--serve'], request([{ ...fx, id: 'b_second' }, { ...fx, id: 'a_first' }, { ...fx, id: 'conv', layer: 'conv2' }]));
  assert.equal(r.status, 0, r.stderr.toString());
  const frames = pb.readFrames(r.stdout);
  assert.equal(frames.length, 4);
  const hello = frames[0].doc;
  assert.deepEqual([hello.event, hello.planet, hello.engine, hello.engine_version], ['hello', 'tensorflow', 'tfjs', tfjs.PLANET_VERSION]);
  assert.deepEqual(frames.slice(1).map((f) => f.doc.model_id), ['b_second', 'a_first', 'conv']);
  assert.equal(frames[1].doc.format, 'planetbridge.stream');
  assert.deepEqual(frames[1].doc.tensors['input.0'].shape, [7, 4]);
  assert.deepEqual(frames[3].doc, {
    format: 'planetbridge.capture', version: 1, event: 'error', model_id: 'conv',
    message: 'Error: layer "conv2" is not supported by the tensorflow capture (known: dense, cnn1, cnn2, cnn3, pool, batchnorm, layernorm, rmsnorm, embedding, residual, model, rnn, lstm, gru, conv_transpose, upsample, separable, prelu, time_distributed, mha, swiglu, transformer, mixer)',
  });
});

// A stand-in planet (node -e): argv[1] === "missing" makes its engine fail to load.
const FAKE_PLANET = `
  const pb = require(${JSON.stringify(PBSTREAM)});
  pb.serve({
    planet: 'p', engine: 'e',
    engineVersion: process.argv[1] === 'missing' ? () => require('no_such_engine_module') : '1.0',
    build: async () => { console.log('noise'); throw new pb.NotApplicable('no such thing'); },
  }).then((code) => process.exit(code));`;

test('serve(): not_applicable, and stray prints land on stderr', () => {
  const r = node(['-e', FAKE_PLANET, 'present'], request([{ id: 'x' }]));
  assert.equal(r.status, 0, r.stderr.toString());
  const frames = pb.readFrames(r.stdout);
  assert.deepEqual(frames.map((f) => f.doc.event), ['hello', 'not_applicable']);
  assert.deepEqual([frames[1].doc.model_id, frames[1].doc.reason], ['x', 'no such thing']);
  assert.match(r.stderr.toString(), /noise/);
});

test('serve(): a missing engine is "unavailable" with the reason', () => {
  const r = node(['-e', FAKE_PLANET, 'missing'], request([{ id: 'x' }]));
  assert.equal(r.status, 0, r.stderr.toString());
  const frames = pb.readFrames(r.stdout);
  assert.equal(frames.length, 1);
  assert.equal(frames[0].doc.event, 'unavailable');
  assert.equal(frames[0].doc.reason, "Cannot find module 'no_such_engine_module'");
});

test('serve(): a malformed request exits 2 with nothing on stdout', () => {
  const r = node([CAPTURE, '--serve'], JSON.stringify({ format: 'planetbridge.capture-request', version: 2, fixtures: [] }));
  assert.equal(r.status, 2);
  assert.equal(r.stdout.length, 0);
  assert.match(r.stderr.toString(), /request\.version/);
});

test('CLI: argument errors, glob matching', () => {
  const r = node([CAPTURE, '--suite', 'x.yaml']);
  assert.equal(r.status, 2);
  assert.match(r.stderr.toString(), /needs one of --out DIR, --stdout or --post URL/);
  const { globRegExp } = require('./capture.js');
  assert.ok(globRegExp('mlp_*_relu').test('mlp_32_16_4_relu'));
  assert.ok(!globRegExp('mlp_*_relu').test('linear_16_4'));
  assert.ok(globRegExp('linear_[13]?_4').test('linear_16_4'));
  assert.ok(!globRegExp('a.c').test('abc'));
});

test('CLI: --request captures standalone to stdout', needsTfjs, () => {
  const fx = { id: 'one', layer: 'dense', samples: 3, seed: 5, spec: { input: 2, units: [2] } };
  const r = node([CAPTURE, '--request', '-', '--stdout'], request([fx, { ...fx, id: 'two' }]).toString());
  assert.equal(r.status, 0, r.stderr.toString());
  assert.deepEqual(pb.readFrames(r.stdout).map((f) => f.doc.model_id), ['one', 'two']);
});
