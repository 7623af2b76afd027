'use strict';
// Records the attention streams of tests/test_tensorflow_attention.cpp from real tfjs (wasm
// backend), small (2 rows) and seeded, every bias non-zero:
//   tfjs_mha.json     inputs x [2, 4, 6], ctx [2, 5, 3], kin [2, 5, 7]; MultiHeadAttention (composed:
//                     tfjs 4.22 has none, capture/attention.js) "mha_self" (2 heads, key_dim 3,
//                     use_causal_mask) on [x, x], then "mha_cross" (2 heads, key_dim 4, value_dim 3,
//                     output_shape 5, no bias) on [mha_self, ctx, kin]: query, value and key of three
//                     feature sizes and two lengths, so a swapped role or a head split on the wrong
//                     axis fails; outputs [mha_self, mha_cross]
//   keras2_mha.json,  the same model as tf.keras 2.15 and Keras 3.3 model.to_json() write it
//   keras3_mha.json   (Keras 2: value, key and use_causal_mask as call keywords of the query's
//                     ref; Keras 3: args [query, value], kwargs key / use_causal_mask), typed out
//                     below; Python Keras cannot run here, so the native outputs come from the
//                     composed layers with the same weights
//   tfjs_swiglu.json  SwiGLU from stock layers on x [2, 3, 6]: gate / up Dense(8), swish, Multiply,
//                     down Dense(6)
//   tfjs_mha_mask.json  Keras's attention_mask: inputs x [2, 4, 6], valid int32 [2, 4] (row 1
//                     padded after 2 steps), allowed int32 [2, 4, 4]; "mha_pad" (2 heads, key_dim
//                     3) on [x, x] with attentionMask = Reshape(valid) [2, 1, 4] (a key padding
//                     mask), then "mha_both" (2 heads, key_dim 3) on [mha_pad, mha_pad] with
//                     attentionMask allowed and useCausalMask (combined; allowed masks every key
//                     j <= 1 of query 1 in row 0, so that row is fully masked: uniform weights);
//                     the composed layer writes the call as [query, value, key, mask] with
//                     attention_mask: true (tfjs cannot serialise a tensor keyword)
//   node plugins/tensorflow/tests/streams/record_attention.js
const fs = require('fs');
const path = require('path');
const pb = require('../../../../capture/js/pbstream.js');
const pbtf = require('../../capture/pb_tfjs.js');
const attention = require('../../capture/attention.js');

const { tf } = pbtf;

let seed = 71;
const init = {
  name: 'model',
  kernel: () => tf.initializers.glorotNormal({ seed: seed++ }),
  bias: () => tf.initializers.randomNormal({ stddev: 0.5, seed: seed++ }),
};
const normal = (shape) => tf.randomNormal(shape, 0, 1, 'float32', seed++);
const N = 2, T = 4, S = 5, D = 6, DV = 3, DK = 7;

function mhaModel() {
  const x = tf.input({ shape: [T, D], name: 'x' });
  const ctx = tf.input({ shape: [S, DV], name: 'ctx' });
  const kin = tf.input({ shape: [S, DK], name: 'kin' });
  const mha = (name, config) => new attention.MultiHeadAttention({ name, kernelInitializer: init.kernel, biasInitializer: init.bias, ...config });
  const self = mha('mha_self', { numHeads: 2, keyDim: 3 }).apply([x, x], { useCausalMask: true });
  const cross = mha('mha_cross', { numHeads: 2, keyDim: 4, valueDim: 3, outputShape: 5, useBias: false }).apply([self, ctx, kin]);
  return [tf.model({ inputs: [x, ctx, kin], outputs: [self, cross] }), [normal([N, T, D]), normal([N, S, DV]), normal([N, S, DK])]];
}

const REGULARIZED = { kernel_regularizer: null, bias_regularizer: null, activity_regularizer: null, kernel_constraint: null, bias_constraint: null };
const keras2Init = (cls, config) => ({ class_name: cls, config });
const keras3Init = (cls, config) => ({ module: 'keras.initializers', class_name: cls, config, registered_name: null });
const keras3Policy = { module: 'keras', class_name: 'DTypePolicy', config: { name: 'float32' }, registered_name: null };

const MHA = {
  mha_self: { num_heads: 2, key_dim: 3, value_dim: 3, output_shape: null, use_bias: true },
  mha_cross: { num_heads: 2, key_dim: 4, value_dim: 3, output_shape: 5, use_bias: false },
};
const SHAPES = {
  mha_self: { query_shape: [null, T, D], value_shape: [null, T, D], key_shape: [null, T, D] },
  mha_cross: { query_shape: [null, T, D], value_shape: [null, S, DV], key_shape: [null, S, DK] },
};

// tf.keras 2.15: every call argument after the query is a keyword of the query's ref.
function keras2() {
  const layer = (name, kwargs) => ({
    class_name: 'MultiHeadAttention',
    config: { name, trainable: true, dtype: 'float32', ...MHA[name], dropout: 0.0, attention_axes: null,
              kernel_initializer: keras2Init('GlorotUniform', { seed: null }), bias_initializer: keras2Init('Zeros', {}), ...REGULARIZED, ...SHAPES[name] },
    name, inbound_nodes: [[[name === 'mha_self' ? 'x' : 'mha_self', 0, 0, kwargs]]],
  });
  const input = (name, shape) => ({ class_name: 'InputLayer', config: { batch_input_shape: [null, ...shape], dtype: 'float32', sparse: false, ragged: false, name },
    name, inbound_nodes: [] });
  return {
    class_name: 'Functional',
    config: {
      name: 'model', trainable: true,
      layers: [input('x', [T, D]), input('ctx', [S, DV]), input('kin', [S, DK]),
        layer('mha_self', { value: ['x', 0, 0], use_causal_mask: true }), layer('mha_cross', { value: ['ctx', 0, 0], key: ['kin', 0, 0] })],
      input_layers: [['x', 0, 0], ['ctx', 0, 0], ['kin', 0, 0]], output_layers: [['mha_self', 0, 0], ['mha_cross', 0, 0]],
    },
    keras_version: '2.15.0', backend: 'tensorflow',
  };
}

// Keras 3.3: the call as made, mha(query, value, key=..., use_causal_mask=...).
function keras3() {
  const kt = (layer, shape) => ({ class_name: '__keras_tensor__', config: { shape: [null, ...shape], dtype: 'float32', keras_history: [layer, 0, 0] } });
  const layer = (name, node) => ({
    module: 'keras.layers', class_name: 'MultiHeadAttention',
    config: { name, trainable: true, dtype: keras3Policy, ...MHA[name], dropout: 0.0, attention_axes: null,
              kernel_initializer: keras3Init('GlorotUniform', { seed: null }), bias_initializer: keras3Init('Zeros', {}), ...REGULARIZED, seed: null },
    registered_name: null, build_config: { shapes_dict: SHAPES[name] }, name, inbound_nodes: [node],
  });
  const input = (name, shape) => ({ module: 'keras.layers', class_name: 'InputLayer',
    config: { batch_shape: [null, ...shape], dtype: 'float32', sparse: false, name }, registered_name: null, name, inbound_nodes: [] });
  return {
    module: 'keras.src.models.functional', class_name: 'Functional',
    config: {
      name: 'functional', trainable: true,
      layers: [input('x', [T, D]), input('ctx', [S, DV]), input('kin', [S, DK]),
        layer('mha_self', { args: [kt('x', [T, D]), kt('x', [T, D])], kwargs: { use_causal_mask: true } }),
        layer('mha_cross', { args: [kt('mha_self', [T, D]), kt('ctx', [S, DV])], kwargs: { key: kt('kin', [S, DK]) } })],
      input_layers: [['x', 0, 0], ['ctx', 0, 0], ['kin', 0, 0]], output_layers: [['mha_self', 0, 0], ['mha_cross', 0, 0]],
    },
    registered_name: 'Functional', build_config: { input_shape: null }, keras_version: '3.3.3', backend: 'tensorflow',
  };
}

function write(name, stream) {
  const file = path.join(__dirname, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(JSON.parse(pb.encodeJson(stream.doc, stream.tensors)), null, 1) + '\n');
  process.stderr.write(`${file}: ${fs.statSync(file).size} bytes\n`);
}

async function main() {
  await pbtf.useWasm();
  const [model, inputs] = mhaModel();
  const composed = [attention.COMPOSED_MHA];
  write('tfjs_mha', pbtf.capture(model, inputs, 'tfjs_mha', { taps: true, composed }));
  for (const [name, topology] of [['keras2_mha', keras2()], ['keras3_mha', keras3()]]) {
    const s = pbtf.capture(model, inputs, name, { composed });
    s.doc.model.topology = topology; // the Keras config; the weight table and tensors as captured
    write(name, s);
  }

  const swiglu = attention.swigluModel({ d_model: D, ff: 8, seq: 3 }, init);
  write('tfjs_swiglu', pbtf.capture(swiglu.model, normal([N, 3, D]), 'tfjs_swiglu', { taps: true, composed: swiglu.composed }));

  {
    const x = tf.input({ shape: [T, D], name: 'x' });
    const valid = tf.input({ shape: [T], dtype: 'int32', name: 'valid' });
    const allowed = tf.input({ shape: [T, T], dtype: 'int32', name: 'allowed' });
    const keyMask = tf.layers.reshape({ targetShape: [1, T], name: 'key_mask' }).apply(valid);
    const mha = (name) => new attention.MultiHeadAttention({ name, numHeads: 2, keyDim: 3, kernelInitializer: init.kernel, biasInitializer: init.bias });
    const pad = mha('mha_pad').apply([x, x], { attentionMask: keyMask });
    const both = mha('mha_both').apply([pad, pad], { attentionMask: allowed, useCausalMask: true });
    const model = tf.model({ inputs: [x, valid, allowed], outputs: [pad, both] });
    const allowedValues = Array.from({ length: N * T * T }, (_, i) => (i * 7 + 3) % 5 !== 0 ? 1 : 0);
    allowedValues[1 * T + 0] = 0; // row 0, query 1: keys 0 and 1 (all it may see causally) masked
    allowedValues[1 * T + 1] = 0;
    const inputs = [normal([N, T, D]), tf.tensor2d([1, 1, 1, 1, 1, 1, 0, 0], [N, T], 'int32'), tf.tensor3d(allowedValues, [N, T, T], 'int32')];
    write('tfjs_mha_mask', pbtf.capture(model, inputs, 'tfjs_mha_mask', { taps: true, composed: [attention.COMPOSED_MHA] }));
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
