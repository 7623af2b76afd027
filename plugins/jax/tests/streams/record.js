#!/usr/bin/env node
'use strict';
/**
 * Records the jax test streams that need jax-js's own numbers (native outputs), as JSON with
 * `data` arrays (small, diffable, not caught by the *.pbstream ignore rule):
 *
 *   functions.json   every function of the decoder's table applied to one input x [4, 6]
 *                    spanning [-5.75, 5.75]; pins jax-js's defaults (nn.gelu is the tanh
 *                    approximation) against the IR activations.
 *   conv.json        channels-last x [2, 5, 4, 3] read by four modules (a DAG with a shared
 *                    input): Conv_0 (kernel [2, 3], I 3 != O 2, "SAME": the even kernel pads
 *                    (0, 1)), Conv_1 (explicit asymmetric pairs, strides, kernel_dilation, no
 *                    bias), Conv_2 (depthwise: feature_group_count 3, int padding), Conv_0
 *                    flattened x.reshape((N, -1)) into Dense_0 (channels-last order); and a
 *                    3-D Conv_3 on a second input v [2, 3, 4, 3, 2]. Taps included.
 *   norms_pools.json Conv -> BatchNorm (no epsilon: Flax's 1e-5 applies; running variances
 *                    set to ~1e-5 so eps matters) -> relu -> max_pool (SAME), avg_pool (pairs,
 *                    count_include_pad false and true), jnp.mean / jnp.max global pools,
 *                    LayerNorm and RMSNorm (no epsilon: 1e-6). Taps included.
 *   embed_conv1d.json ids [2, 6] (i32) -> Embed -> Conv([3], SAME) over [N, T, D] -> relu ->
 *                    jnp.max(axis=1) -> Dense.
 *   rnn_lstm.json    x [2, 5, 3] and an initial carry (c0, h0) [2, 4] (Flax's order) into
 *                    RNN_0 = nn.RNN(LSTMCell(4), return_carry) (I 3 != H 4), RNN_1 =
 *                    nn.RNN(OptimizedLSTMCell(2), reverse, keep_order false: outputs in
 *                    processing order), Dense_0 on RNN_0's final h. Outputs RNN_1, the final
 *                    carry (c, h) of RNN_0, Dense_0. Taps included.
 *   rnn_gru.json     time-major x [5, 2, 3]: RNN_0 = nn.RNN(GRUCell(4), time_major, reverse,
 *                    keep_order) and Bidirectional_0 (GRUCell(3) both ways, return_carry,
 *                    time_major, concatenated). Taps included.
 *   rnn_simple.json  x [2, 5, 3]: RNN_0 = SimpleCell(4) (tanh), RNN_1 = SimpleCell(4, relu,
 *                    residual), Bidirectional_0 of SimpleCell(3) forward and LSTMCell(2)
 *                    backward (concatenated: 5 features), Bidirectional_1 of GRUCell(3) both
 *                    ways merged by jnp.add. Taps included.
 *   conv_transpose.json channels-last x [2, 4, 5, 3] read by three ConvTransposes:
 *                    ConvTranspose_0 (kernel [2, 3], strides [3, 1], "SAME": dim 0's padding
 *                    ends past the kernel, the IR's output_padding 1), ConvTranspose_1
 *                    (explicit pairs [[1, 2], [0, 1]], strides 2, kernel_dilation [1, 2], no
 *                    bias), ConvTranspose_2 (transpose_kernel: kernel [k..., O, I], "VALID",
 *                    strides [1, 3]); and a 1-D ConvTranspose_3 (int kernel_size 3, strides 2,
 *                    "VALID") on u [2, 6, 3]. Taps included.
 *   group_norm.json  channels-last x [2, 4, 5, 6] -> GroupNorm_0 (num_groups 3, no epsilon:
 *                    Flax's 1e-6; scale set to 0.5 + 0.25 j) -> relu; and v [3, 8] ->
 *                    GroupNorm_1 (group_size 2, use_scale false). x and v shifted and scaled per
 *                    channel so each group's statistics differ. Taps included.
 *   dense_general.json x [2, 3, 4, 5] -> DenseGeneral_0 (features [2, 3], axis -1: a head
 *                    split), DenseGeneral_1 on x (features 6, axis [-2, -1]: heads merged),
 *                    DenseGeneral_2 on x (features [4], axis [1], no bias: a middle axis, moved
 *                    last). Taps included.
 *   einsum.json      x [2, 3, 4] and y [2, 4, 5]: flax.linen.Einsum_0 (kernel [4, 3, 2],
 *                    'abc,cde->abde', bias [3, 2] broadcast [1, 1, 3, 2]), Einsum_1 ('abc,bd->adc':
 *                    free axes reordered, bias [5]), Einsum_2 ('abc,cbd->ad': two axes
 *                    contracted, no bias); jnp.einsum 'abc,acd->abd' (a batch axis),
 *                    'abc,acd->dba' (batch, transposed output), 'abc,acd' (implicit: 'bd', the
 *                    batch contracted); jnp.matmul x @ y. Taps included.
 *   attention.json   x [2, 5, 6], kv [2, 7, 4], valid [2, 5] (row 1 padded after 3 steps):
 *                    MultiHeadDotProductAttention_0 (2 heads, self), make_causal_mask_0 of valid,
 *                    SelfAttention_0 (3 heads, qkv 6, out 4, no bias, the causal mask),
 *                    MultiHeadDotProductAttention_1 (cross: inputs_kv kv, qkv 4),
 *                    make_attention_mask_0 (valid x valid) into MultiHeadDotProductAttention_2
 *                    (inputs_q, inputs_k, inputs_v all x: padded queries see no key, uniform
 *                    weights), make_attention_mask_1 (greater_equal). Taps included.
 *   swiglu.json      x [2, 3, 4] -> SwiGLU_0/gate_proj, silu, up_proj, multiply, down_proj
 *                    (hidden 6, with biases): LLaMA's MLP as Flax records its calls.
 * Every bias is set non-zero (a bias in the wrong place, or one missing, shows).
 *
 * Run from anywhere: node plugins/jax/tests/streams/record.js [conv_transpose | group_norm | dense_general | einsum | attention | swiglu (only that one)]
 */

const fs = require('fs');
const path = require('path');

const flax = require(path.join(__dirname, '..', '..', 'capture', 'flax.js'));

// [function, attributes]; each node reads x, every node is an output.
const FUNCTIONS = [
  ['nn.relu'], ['nn.relu6'], ['nn.tanh'], ['nn.sigmoid'], ['nn.silu'], ['nn.swish'], ['nn.selu'],
  ['nn.softplus'], ['nn.hard_swish'], ['nn.hard_silu'], ['nn.hard_sigmoid'],
  ['nn.gelu'], ['nn.gelu', { approximate: false }],
  ['nn.leaky_relu'], ['nn.leaky_relu', { negative_slope: 0.2 }],
  ['nn.elu'], ['nn.elu', { alpha: 0.5 }],
  ['nn.softmax'], ['nn.softmax', { axis: 0 }], ['nn.log_softmax'],
];

// A frame's tensors as JSON `data` arrays (f32 values print exactly as JS numbers).
function asJson(stream) {
  const doc = JSON.parse(JSON.stringify(stream.doc));
  doc.planet_version = `${doc.planet_version} (recorded by plugins/jax/tests/streams/record.js)`;
  doc.tensors = {};
  for (const name of Object.keys(stream.tensors).sort()) {
    const t = stream.tensors[name];
    doc.tensors[name] = { dtype: t.data instanceof Int32Array ? 'i32' : 'f32', shape: t.shape, data: Array.from(t.data) };
  }
  return `${JSON.stringify(doc)}\n`;
}

function write(name, stream) {
  const file = path.join(__dirname, `${name}.json`);
  fs.writeFileSync(file, asJson(stream));
  process.stderr.write(`${file}: ${fs.statSync(file).size} bytes\n`);
}

// Variables initialised as Flax does, biases set non-zero (a bias in the wrong place shows).
function initWithBiases(model, key, ...inputs) {
  const { numpy: np } = flax.jax;
  const v = model.init(key, ...inputs);
  let i = 0;
  const walk = (o) => {
    for (const k of Object.keys(o))
      if (o[k] instanceof flax.jax.Array) {
        if (k === 'bias') {
          const shape = [...o[k].shape]; // [features], or DenseGeneral's [features...]
          const n = shape.reduce((a, b) => a * b, 1);
          o[k].dispose();
          o[k] = np.array(Array.from({ length: n }, (_, j) => 0.25 * (((i + j) % 5) - 2)), { shape });
          i += n;
        }
      } else walk(o[k]);
  };
  walk(v.params);
  return v;
}

async function recordConv() {
  const { random } = flax.jax;
  const model = new flax.Model([
    flax.Conv(2, [2, 3], { padding: 'SAME', inputs: ['x'] }),
    flax.Conv(4, [3, 2], { strides: [2, 1], padding: [[2, 0], [0, 1]], kernelDilation: [1, 2], useBias: false, inputs: ['x'] }),
    flax.Conv(6, [3, 3], { padding: 1, featureGroupCount: 3, inputs: ['x'] }),
    flax.reshape([2, -1], { inputs: ['Conv_0'] }),
    flax.Dense(3),
    flax.Conv(2, [2, 3, 2], { strides: [1, 2, 1], padding: 'SAME', inputs: ['v'] }),
  ], { inputs: ['x', 'v'], outputs: ['Conv_0', 'Conv_1', 'Conv_2', 'Dense_0', 'Conv_3'] });
  const x = random.normal(random.key(11), [2, 5, 4, 3]);
  const v = random.normal(random.key(12), [2, 3, 4, 3, 2]);
  const variables = initWithBiases(model, random.key(13), x.ref, v.ref);
  write('conv', await flax.capture({ model, variables, inputs: [x, v], modelId: 'conv', taps: true }));
}

async function recordConvTranspose() {
  const { random } = flax.jax;
  const model = new flax.Model([
    flax.ConvTranspose(4, [2, 3], { strides: [3, 1], padding: 'SAME', inputs: ['x'] }),
    flax.ConvTranspose(2, [3, 3], { strides: 2, padding: [[1, 2], [0, 1]], kernelDilation: [1, 2], useBias: false, inputs: ['x'] }),
    flax.ConvTranspose(3, [3, 2], { strides: [1, 3], padding: 'VALID', transposeKernel: true, inputs: ['x'] }),
    flax.ConvTranspose(2, 3, { strides: 2, padding: 'VALID', inputs: ['u'] }),
  ], { inputs: ['x', 'u'], outputs: ['ConvTranspose_0', 'ConvTranspose_1', 'ConvTranspose_2', 'ConvTranspose_3'] });
  const x = random.normal(random.key(21), [2, 4, 5, 3]);
  const u = random.normal(random.key(22), [2, 6, 3]);
  const variables = initWithBiases(model, random.key(23), x.ref, u.ref);
  write('conv_transpose', await flax.capture({ model, variables, inputs: [x, u], modelId: 'conv_transpose', taps: true }));
}

async function recordGroupNorm() {
  const { numpy: np, random } = flax.jax;
  const model = new flax.Model([
    flax.GroupNorm({ numGroups: 3, inputs: ['x'] }),
    flax.fn('nn.relu'),
    flax.GroupNorm({ groupSize: 2, useScale: false, inputs: ['v'] }),
  ], { inputs: ['x', 'v'], outputs: ['relu_0', 'GroupNorm_1'] });
  const offsets = (c) => np.array(Array.from({ length: c }, (_, j) => j - 2));
  const scales = (c) => np.array(Array.from({ length: c }, (_, j) => 1 + 0.5 * j));
  const x = random.normal(random.key(31), [2, 4, 5, 6]).mul(scales(6)).add(offsets(6));
  const v = random.normal(random.key(32), [3, 8]).mul(scales(8)).add(offsets(8));
  const variables = initWithBiases(model, random.key(33), x.ref, v.ref);
  variables.params.GroupNorm_0.scale.dispose();
  variables.params.GroupNorm_0.scale = np.array(Array.from({ length: 6 }, (_, j) => 0.5 + 0.25 * j));
  write('group_norm', await flax.capture({ model, variables, inputs: [x, v], modelId: 'group_norm', taps: true }));
}

async function recordDenseGeneral() {
  const { random } = flax.jax;
  const model = new flax.Model([
    flax.DenseGeneral([2, 3], { inputs: ['x'] }),
    flax.DenseGeneral(6, { axis: [-2, -1], inputs: ['x'] }),
    flax.DenseGeneral([4], { axis: [1], useBias: false, inputs: ['x'] }),
  ], { inputs: ['x'], outputs: ['DenseGeneral_0', 'DenseGeneral_1', 'DenseGeneral_2'] });
  const x = random.normal(random.key(41), [2, 3, 4, 5]);
  const variables = initWithBiases(model, random.key(43), x.ref);
  write('dense_general', await flax.capture({ model, variables, inputs: [x], modelId: 'dense_general', taps: true }));
}

async function recordEinsum() {
  const { random } = flax.jax;
  const model = new flax.Model([
    flax.Einsum([4, 3, 2], 'abc,cde->abde', { inputs: ['x'] }),
    flax.Einsum([3, 5], 'abc,bd->adc', { inputs: ['x'] }),
    flax.Einsum([4, 3, 6], 'abc,cbd->ad', { useBias: false, inputs: ['x'] }),
    flax.einsum('abc,acd->abd', ['x', 'y']),
    flax.einsum('abc,acd->dba', ['x', 'y']),
    flax.einsum('abc,acd', ['x', 'y']),
    flax.matmul(['x', 'y']),
  ], { inputs: ['x', 'y'], outputs: ['Einsum_0', 'Einsum_1', 'Einsum_2', 'einsum_0', 'einsum_1', 'einsum_2', 'matmul_0'] });
  const x = random.normal(random.key(71), [2, 3, 4]);
  const y = random.normal(random.key(72), [2, 4, 5]);
  const variables = initWithBiases(model, random.key(73), x.ref, y.ref);
  write('einsum', await flax.capture({ model, variables, inputs: [x, y], modelId: 'einsum', taps: true }));
}

async function recordAttention() {
  const { numpy: np, random } = flax.jax;
  const model = new flax.Model([
    flax.MultiHeadDotProductAttention(2, { inputs: ['x'] }),
    flax.makeCausalMask(['valid']),
    flax.SelfAttention(3, { qkvFeatures: 6, outFeatures: 4, useBias: false, inputs: ['x', 'make_causal_mask_0'], args: ['inputs_q', 'mask'] }),
    flax.MultiHeadDotProductAttention(2, { qkvFeatures: 4, inputs: ['x', 'kv'], args: ['inputs_q', 'inputs_kv'] }),
    flax.makeAttentionMask(['valid', 'valid']),
    flax.MultiHeadDotProductAttention(2, { inputs: ['x', 'x', 'x', 'make_attention_mask_0'], args: ['inputs_q', 'inputs_k', 'inputs_v', 'mask'] }),
    flax.makeAttentionMask(['valid', 'valid'], { pairwiseFn: 'greater_equal' }),
  ], {
    inputs: ['x', 'kv', 'valid'],
    outputs: ['MultiHeadDotProductAttention_0', 'SelfAttention_0', 'MultiHeadDotProductAttention_1', 'MultiHeadDotProductAttention_2', 'make_attention_mask_1'],
  });
  const x = random.normal(random.key(81), [2, 5, 6]);
  const kv = random.normal(random.key(82), [2, 7, 4]);
  const valid = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], { shape: [2, 5] });
  const variables = initWithBiases(model, random.key(83), x.ref, kv.ref, valid.ref);
  write('attention', await flax.capture({ model, variables, inputs: [x, kv, valid], modelId: 'attention', taps: true }));
}

async function recordSwiglu() {
  const { random } = flax.jax;
  const model = new flax.Model(flax.SwiGLU(6, 4, { input: 'x', useBias: true }), { outputs: ['SwiGLU_0/down_proj'] });
  const x = random.normal(random.key(91), [2, 3, 4]);
  const variables = initWithBiases(model, random.key(92), x.ref);
  write('swiglu', await flax.capture({ model, variables, inputs: [x], modelId: 'swiglu', taps: true }));
}

async function recordNormsPools() {
  const { numpy: np, random } = flax.jax;
  const bn = flax.BatchNorm();
  delete bn.epsilon; // absent: Flax's default, 1e-5
  const ln = flax.LayerNorm();
  delete ln.epsilon; // 1e-6
  const rms = flax.RMSNorm();
  delete rms.epsilon;
  const model = new flax.Model([
    flax.Conv(2, [3, 3]), bn, flax.fn('nn.relu'),
    flax.maxPool([3, 3], { strides: [2, 2], padding: 'SAME' }),
    flax.avgPool([2, 2], { strides: [1, 1], padding: [[1, 0], [0, 1]], countIncludePad: false, inputs: ['relu_0'] }),
    flax.avgPool([2, 2], { strides: [2, 2], padding: [[1, 0], [0, 1]], inputs: ['relu_0'] }),
    flax.mean([1, 2], { inputs: ['relu_0'] }), ln, rms,
    flax.max([1, 2], { inputs: ['relu_0'] }),
  ], { outputs: ['max_pool_0', 'avg_pool_0', 'avg_pool_1', 'RMSNorm_0', 'max_0'] });
  const x = random.normal(random.key(21), [2, 5, 5, 2]);
  const variables = initWithBiases(model, random.key(22), x.ref);
  // Running statistics as a few training steps would leave them, with variances near eps.
  variables.batch_stats.BatchNorm_0.mean.dispose();
  variables.batch_stats.BatchNorm_0.var.dispose();
  variables.batch_stats.BatchNorm_0.mean = np.array([0.1, -0.2]);
  variables.batch_stats.BatchNorm_0.var = np.array([2e-5, 1e-4]);
  variables.params.BatchNorm_0.scale.dispose();
  variables.params.BatchNorm_0.scale = np.array([0.01, -0.02]);
  write('norms_pools', await flax.capture({ model, variables, inputs: [x], modelId: 'norms_pools', taps: true }));
}

async function recordEmbedConv1d() {
  const { numpy: np, random } = flax.jax;
  const model = new flax.Model([flax.Embed(7, 3), flax.Conv(4, [3], { padding: 'SAME' }), flax.fn('nn.relu'), flax.max([1]), flax.Dense(2)]);
  const ids = np.array([[0, 6, 2, 2, 5, 1], [3, 4, 6, 0, 0, 1]], { dtype: np.int32 });
  const variables = initWithBiases(model, random.key(31), ids.ref);
  write('embed_conv1d', await flax.capture({ model, variables, inputs: [ids], modelId: 'embed_conv1d', taps: false }));
}

async function recordRnnLstm() {
  const { random } = flax.jax;
  const model = new flax.Model([
    flax.RNN(flax.LSTMCell(4), { returnCarry: true, inputs: ['x', 'c0', 'h0'] }),
    flax.RNN(flax.OptimizedLSTMCell(2), { reverse: true, keepOrder: false }),
    flax.Dense(3, { inputs: ['RNN_0:carry/h'] }),
  ], { inputs: ['x', 'c0', 'h0'], outputs: ['RNN_1', 'RNN_0:carry/c', 'RNN_0:carry/h', 'Dense_0'] });
  const x = random.normal(random.key(41), [2, 5, 3]);
  const c0 = random.normal(random.key(42), [2, 4]);
  const h0 = random.normal(random.key(43), [2, 4]).mul(0.5);
  const variables = initWithBiases(model, random.key(44), x.ref, c0.ref, h0.ref);
  write('rnn_lstm', await flax.capture({ model, variables, inputs: [x, c0, h0], modelId: 'rnn_lstm', taps: true }));
}

async function recordRnnGru() {
  const { random } = flax.jax;
  const model = new flax.Model([
    flax.RNN(flax.GRUCell(4), { timeMajor: true, reverse: true, keepOrder: true }),
    flax.Bidirectional(flax.RNN(flax.GRUCell(3)), flax.RNN(flax.GRUCell(3)), { timeMajor: true, returnCarry: true }),
  ], { outputs: ['Bidirectional_0', 'Bidirectional_0:carry/forward_rnn', 'Bidirectional_0:carry/backward_rnn'] });
  const x = random.normal(random.key(51), [5, 2, 3]);
  const variables = initWithBiases(model, random.key(52), x.ref);
  write('rnn_gru', await flax.capture({ model, variables, inputs: [x], modelId: 'rnn_gru', taps: true }));
}

async function recordRnnSimple() {
  const { random } = flax.jax;
  const model = new flax.Model([
    flax.RNN(flax.SimpleCell(4)),
    flax.RNN(flax.SimpleCell(4, { activationFn: 'nn.relu', residual: true })),
    flax.Bidirectional(flax.RNN(flax.SimpleCell(3)), flax.RNN(flax.LSTMCell(2))),
    flax.Bidirectional(flax.RNN(flax.GRUCell(3)), flax.RNN(flax.GRUCell(3)), { mergeFn: 'add' }),
  ]);
  const x = random.normal(random.key(61), [2, 5, 3]);
  const variables = initWithBiases(model, random.key(62), x.ref);
  write('rnn_simple', await flax.capture({ model, variables, inputs: [x], modelId: 'rnn_simple', taps: true }));
}

async function main() {
  await flax.ready();
  if (process.argv[2] === 'conv_transpose') return recordConvTranspose();
  if (process.argv[2] === 'group_norm') return recordGroupNorm();
  if (process.argv[2] === 'dense_general') return recordDenseGeneral();
  if (process.argv[2] === 'einsum') return recordEinsum();
  if (process.argv[2] === 'attention') return recordAttention();
  if (process.argv[2] === 'swiglu') return recordSwiglu();
  const { numpy: np } = flax.jax;
  const layers = FUNCTIONS.map(([f, a]) => flax.fn(f, a, { inputs: ['x'] }));
  const names = new flax.Model(layers).modules.map((m) => m.name); // relu_0, ..., gelu_0, gelu_1, ...
  const all = new flax.Model(layers, { outputs: names });
  const x = np.array(Array.from({ length: 24 }, (_, i) => -5.75 + 0.5 * i), { shape: [4, 6] });
  write('functions', await flax.capture({ model: all, variables: { params: {} }, inputs: [x], modelId: 'functions', taps: false }));
  await recordConv();
  await recordConvTranspose();
  await recordGroupNorm();
  await recordDenseGeneral();
  await recordEinsum();
  await recordAttention();
  await recordSwiglu();
  await recordNormsPools();
  await recordEmbedConv1d();
  await recordRnnLstm();
  await recordRnnGru();
  await recordRnnSimple();
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  }
);
