'use strict';
// Records the recurrent streams of tests/test_tensorflow_decoder.cpp from real tfjs (wasm backend),
// small (3 rows, 5 steps, 4 features, 3 units) and seeded:
//   tfjs_recurrent.json      one input, parallel layers: LSTM (sequence), GRU reset_after false with
//                            go_backwards (sequence), SimpleRNN relu (last step), SimpleRNN without
//                            bias, go_backwards (last step), GRU reset_after true (composed: tfjs
//                            lacks it, capture/recurrent.js) (sequence)
//   tfjs_bidirectional.json  Bidirectional merge concat (LSTM), sum (GRU), ave (SimpleRNN), mul
//                            (LSTM, last step), null (GRU reset_after, two outputs), ave (GRU, last step)
//   tfjs_rnn_states.json     return_state and initial states as inputs: an LSTM with [h0, c0], an LSTM
//                            returning its last step and states, a Bidirectional GRU with [fwd h0, bwd h0]
//   keras2_rnn.json,         the Python Keras 2 (tf.keras 2.15) and Keras 3 (3.3.3) model.to_json()
//   keras3_rnn.json          configs of an LSTM and a GRU (reset_after, Keras's default), typed out
//                            below as those versions write them; Python Keras cannot run here, so
//                            their native outputs come from the same layers in tfjs with the same
//                            weights (the GRU from capture/recurrent.js's composed cell)
// Every bias is non-zero; recurrentActivation is 'sigmoid' (tfjs's default hardSigmoid is refused).
//   node plugins/tensorflow/tests/streams/record_rnn.js
const fs = require('fs');
const path = require('path');
const pb = require('../../../../capture/js/pbstream.js');
const pbtf = require('../../capture/pb_tfjs.js');
const recurrent = require('../../capture/recurrent.js');

const { tf } = pbtf;

let seed = 31;
const init = {
  kernel: () => tf.initializers.glorotNormal({ seed: seed++ }),
  orthogonal: () => tf.initializers.orthogonal({ seed: seed++ }),
  bias: () => tf.initializers.randomNormal({ stddev: 0.5, seed: seed++ }),
};
const normal = (shape) => tf.randomNormal(shape, 0, 1, 'float32', seed++);
const layer = (cell, config) => recurrent.recurrentLayer(cell, { units: 3, ...config }, init);
const N = 3, T = 5, I = 4, H = 3;

const STREAMS = {
  recurrent: () => {
    const x = tf.input({ shape: [T, I], name: 'x' });
    const ys = [
      layer('lstm', { name: 'lstm', returnSequences: true }),
      layer('gru', { name: 'gru_back', returnSequences: true, goBackwards: true }),
      layer('rnn', { name: 'rnn_relu', activation: 'relu' }),
      layer('rnn', { name: 'rnn_nobias', useBias: false, goBackwards: true }),
      layer('gru', { name: 'gru_ra', returnSequences: true, resetAfter: true }),
    ].map((l) => l.apply(x));
    return [tf.model({ inputs: x, outputs: ys }), [normal([N, T, I])], [recurrent.COMPOSED_GRU]];
  },
  bidirectional: () => {
    const x = tf.input({ shape: [T, I], name: 'x' });
    const bi = (merge, name, cell, config) => recurrent.bidirectional(layer(cell, { name, ...config }), merge, `bi_${name}`).apply(x);
    const ys = [
      bi('concat', 'lstm', 'lstm', { returnSequences: true }),
      bi('sum', 'gru', 'gru', { returnSequences: true }),
      bi('ave', 'rnn', 'rnn', { returnSequences: true }),
      bi('mul', 'lstm_last', 'lstm', {}),
      ...bi(null, 'gru_ra', 'gru', { returnSequences: true, resetAfter: true }),
      bi('ave', 'gru_last', 'gru', {}),
    ];
    return [recurrent.redrawBackward(tf.model({ inputs: x, outputs: ys }), init), [normal([N, T, I])], [recurrent.COMPOSED_GRU]];
  },
  rnn_states: () => {
    const x = tf.input({ shape: [T, I], name: 'x' });
    const states = ['h0', 'c0', 'fwd_h0', 'bwd_h0'].map((name) => tf.input({ shape: [H], name }));
    const a = layer('lstm', { name: 'lstm', returnSequences: true, returnState: true }).apply(x, { initialState: states.slice(0, 2) });
    const b = layer('lstm', { name: 'lstm_last', returnState: true }).apply(x);
    const c = recurrent.bidirectional(layer('gru', { name: 'gru', returnState: true }), 'concat', 'bi_gru').apply(x, { initialState: states.slice(2) });
    const model = recurrent.redrawBackward(tf.model({ inputs: [x, ...states], outputs: [...a, ...b, ...c] }), init);
    return [model, [normal([N, T, I]), ...states.map(() => normal([N, H]))], []];
  },
};

// ---------------------------------------------------------------- Python Keras configs

const KERAS2_INIT = {
  kernel_initializer: { module: 'keras.initializers', class_name: 'GlorotUniform', config: { seed: null }, registered_name: null },
  recurrent_initializer: { module: 'keras.initializers', class_name: 'Orthogonal', config: { gain: 1.0, seed: null }, registered_name: null },
  bias_initializer: { module: 'keras.initializers', class_name: 'Zeros', config: {}, registered_name: null },
};
const REGULARIZED = {
  kernel_regularizer: null, recurrent_regularizer: null, bias_regularizer: null, activity_regularizer: null,
  kernel_constraint: null, recurrent_constraint: null, bias_constraint: null,
};

// tf.keras 2.15: RNN keys (with time_major), then the cell's; implementation 2; the GRU's reset_after.
function keras2Cell(cls, name, extra) {
  return {
    name, trainable: true, dtype: 'float32', return_sequences: false, return_state: false, go_backwards: false, stateful: false,
    unroll: false, time_major: false, units: H, activation: 'tanh', recurrent_activation: 'sigmoid', use_bias: true, ...KERAS2_INIT,
    ...(cls === 'LSTM' ? { unit_forget_bias: true } : {}), ...REGULARIZED, dropout: 0.0, recurrent_dropout: 0.0, implementation: 2,
    ...(cls === 'GRU' ? { reset_after: true } : {}), ...extra,
  };
}

const keras3Policy = { module: 'keras', class_name: 'DTypePolicy', config: { name: 'float32' }, registered_name: null };
const keras3Init = (cls, config) => ({ module: 'keras.initializers', class_name: cls, config, registered_name: null });

// Keras 3.3: RNN keys (zero_output_for_mask, no time_major), the cell's, its dropout seed; no implementation.
function keras3Cell(cls, name, extra) {
  return {
    name, trainable: true, dtype: keras3Policy, return_sequences: false, return_state: false, go_backwards: false, stateful: false,
    unroll: false, zero_output_for_mask: false, units: H, activation: 'tanh', recurrent_activation: 'sigmoid', use_bias: true,
    kernel_initializer: keras3Init('GlorotUniform', { seed: null }), recurrent_initializer: keras3Init('Orthogonal', { seed: null, gain: 1.0 }),
    bias_initializer: keras3Init('Zeros', {}), ...(cls === 'LSTM' ? { unit_forget_bias: true } : {}), ...REGULARIZED,
    dropout: 0.0, recurrent_dropout: 0.0, ...(cls === 'GRU' ? { reset_after: true } : {}), seed: null, ...extra,
  };
}

const weightTable = (layers) => Object.fromEntries(layers.map(([layer, shorts]) => [layer, Object.fromEntries(shorts.map((s) => [s, `${layer}/${s}`]))]));
const RNN_WEIGHTS = ['kernel', 'recurrent_kernel', 'bias'];

// x -> LSTM (return_sequences) -> GRU (reset_after, last step), as tf.keras 2.15 writes it.
function keras2() {
  const x = tf.input({ shape: [T, I], name: 'input_1' });
  const y = [layer('lstm', { name: 'lstm', returnSequences: true }), layer('gru', { name: 'gru', resetAfter: true })].reduce((t, l) => l.apply(t), x);
  const node = (inbound) => [inbound.map((n) => [n, 0, 0, {}])];
  const topology = {
    class_name: 'Functional',
    config: {
      name: 'model', trainable: true,
      layers: [
        { class_name: 'InputLayer', config: { batch_input_shape: [null, T, I], dtype: 'float32', sparse: false, ragged: false, name: 'input_1' },
          name: 'input_1', inbound_nodes: [] },
        { class_name: 'LSTM', config: keras2Cell('LSTM', 'lstm', { return_sequences: true }), name: 'lstm', inbound_nodes: node(['input_1']) },
        { class_name: 'GRU', config: keras2Cell('GRU', 'gru', {}), name: 'gru', inbound_nodes: node(['lstm']) },
      ],
      input_layers: [['input_1', 0, 0]], output_layers: [['gru', 0, 0]],
    },
    keras_version: '2.15.0', backend: 'tensorflow',
  };
  return [tf.model({ inputs: x, outputs: y }), [normal([N, T, I])], topology, weightTable([['lstm', RNN_WEIGHTS], ['gru', RNN_WEIGHTS]])];
}

// x, h0, c0 -> LSTM(initial_state=[h0, c0], return_sequences, return_state) -> Bidirectional(GRU
// (reset_after), merge_mode "sum"), outputs [bidirectional, lstm h, lstm c], as Keras 3.3 writes it.
function keras3() {
  const x = tf.input({ shape: [T, I], name: 'x' });
  const h0 = tf.input({ shape: [H], name: 'h0' }), c0 = tf.input({ shape: [H], name: 'c0' });
  const [seq, h, c] = layer('lstm', { name: 'lstm', returnSequences: true, returnState: true }).apply(x, { initialState: [h0, c0] });
  const y = recurrent.bidirectional(layer('gru', { name: 'gru', resetAfter: true }), 'sum', 'bidirectional').apply(seq);
  const kt = (layerName, shape, index = 0) => ({
    class_name: '__keras_tensor__', config: { shape, dtype: 'float32', keras_history: [layerName, 0, index] },
  });
  const input = (name, shape) => ({
    module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, ...shape], dtype: 'float32', sparse: false, name },
    registered_name: null, name, inbound_nodes: [],
  });
  const gru = (name, goBackwards) => ({
    module: 'keras.layers', class_name: 'GRU', config: keras3Cell('GRU', name, { go_backwards: goBackwards }), registered_name: null,
    build_config: { input_shape: [null, T, H] },
  });
  const topology = {
    module: 'keras.src.models.functional', class_name: 'Functional',
    config: {
      name: 'functional', trainable: true,
      layers: [
        input('x', [T, I]), input('h0', [H]), input('c0', [H]),
        { module: 'keras.layers', class_name: 'LSTM', config: keras3Cell('LSTM', 'lstm', { return_sequences: true, return_state: true }),
          registered_name: null, build_config: { input_shape: [null, T, I] }, name: 'lstm',
          inbound_nodes: [{ args: [kt('x', [null, T, I])], kwargs: { initial_state: [kt('h0', [null, H]), kt('c0', [null, H])] } }] },
        { module: 'keras.layers', class_name: 'Bidirectional',
          config: { name: 'bidirectional', trainable: true, dtype: keras3Policy, merge_mode: 'sum', layer: gru('forward_gru', false),
                    backward_layer: gru('backward_gru', true) },
          registered_name: null, build_config: { input_shape: [null, T, H] }, name: 'bidirectional',
          inbound_nodes: [{ args: [kt('lstm', [null, T, H])], kwargs: {} }] },
      ],
      input_layers: [['x', 0, 0], ['h0', 0, 0], ['c0', 0, 0]],
      output_layers: [['bidirectional', 0, 0], ['lstm', 0, 1], ['lstm', 0, 2]],
    },
    registered_name: 'Functional', build_config: { input_shape: null }, keras_version: '3.3.3', backend: 'tensorflow',
  };
  const bw = ['forward_gru', 'backward_gru'].flatMap((d) => RNN_WEIGHTS.map((w) => `${d}/${w}`));
  return [recurrent.redrawBackward(tf.model({ inputs: [x, h0, c0], outputs: [y, h, c] }), init), [normal([N, T, I]), normal([N, H]), normal([N, H])], topology,
    weightTable([['lstm', RNN_WEIGHTS], ['bidirectional', bw]])];
}

function write(name, stream) {
  const file = path.join(__dirname, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(JSON.parse(pb.encodeJson(stream.doc, stream.tensors)), null, 1) + '\n');
  process.stderr.write(`${file}: ${fs.statSync(file).size} bytes\n`);
}

async function main() {
  await pbtf.useWasm();
  for (const [name, build] of Object.entries(STREAMS)) {
    const [model, inputs, composed] = build();
    write(`tfjs_${name}`, pbtf.capture(model, inputs.length === 1 ? inputs[0] : inputs, `tfjs_${name}`, { taps: true, composed }));
  }
  for (const [name, build] of [['keras2_rnn', keras2], ['keras3_rnn', keras3]]) {
    const [model, inputs, topology, weights] = build();
    const s = pbtf.capture(model, inputs.length === 1 ? inputs[0] : inputs, name, { composed: [recurrent.COMPOSED_GRU] });
    // The Keras config and its weight table; the tensors (tfjs's weights, inputs, outputs) as captured.
    s.doc.model = { format: 'keras', topology, weights };
    for (const table of Object.values(weights))
      for (const tensorName of Object.values(table)) if (!(tensorName in s.tensors)) throw new Error(`${name}: no tensor ${tensorName}`);
    write(name, s);
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
