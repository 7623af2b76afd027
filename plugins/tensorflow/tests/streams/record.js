'use strict';
// Records tfjs_functional.json here from real tfjs (wasm backend): a small functional
// model that exercises every layer class and activation spelling tfjs writes, a shared layer
// called twice and a DAG of merges. Deterministic: seeded initialisers, inputs and biases.
//   node plugins/tensorflow/tests/streams/record.js
const fs = require('fs');
const path = require('path');
const pb = require('../../../../capture/js/pbstream.js');
const pbtf = require('../../capture/pb_tfjs.js');

const { tf } = pbtf;

async function main() {
  await pbtf.useWasm();
  let seed = 7;
  const dense = (units, activation, name) => tf.layers.dense({
    units, activation, name,
    kernelInitializer: tf.initializers.glorotNormal({ seed: seed++ }),
    biasInitializer: tf.initializers.randomNormal({ stddev: 0.5, seed: seed++ }),
  });
  const x = tf.input({ shape: [4], name: 'x' });
  const shared = dense(4, 'tanh', 'shared');
  const a = shared.apply(x);
  const b = shared.apply(dense(4, 'relu', 'pre').apply(x)); // the shared layer's second call
  const acts = ['gelu', 'gelu_new', 'swish', 'hardSigmoid', 'selu', 'elu', 'softplus', 'mish', 'relu6', 'sigmoid',
    'softmax', 'logSoftmax', 'linear'].map((act) => dense(4, act, `d_${act}`).apply(a));
  const layers = [
    tf.layers.leakyReLU({ alpha: 0.2, name: 'leaky' }).apply(b),
    tf.layers.elu({ name: 'elu_layer' }).apply(b),
    tf.layers.reLU({ maxValue: 6, name: 'relu6_layer' }).apply(b),
    tf.layers.reLU({ name: 'relu_layer' }).apply(b),
    tf.layers.softmax({ name: 'softmax_layer' }).apply(b),
    tf.layers.activation({ activation: 'gelu', name: 'act_layer' }).apply(b),
    tf.layers.dropout({ rate: 0.5, name: 'drop' }).apply(b),
  ];
  const added = tf.layers.add({ name: 'sum' }).apply([...acts, ...layers]);
  const prod = tf.layers.multiply({ name: 'prod' }).apply([a, b, added]);
  const cat = tf.layers.concatenate({ name: 'cat' }).apply([prod, a]);
  const reshaped = tf.layers.reshape({ targetShape: [2, 4], name: 'reshape' }).apply(cat);
  const head = dense(3, 'linear', 'head').apply(reshaped); // Dense on a 3-D input: the last axis
  const y = tf.layers.flatten({ name: 'flat' }).apply(head);
  const model = tf.model({ inputs: x, outputs: [y, prod], name: 'tfjs_functional' });
  const input = tf.randomNormal([6, 4], 0, 1, 'float32', 99);
  const stream = pbtf.capture(model, input, 'tfjs_functional', { taps: true });
  // Plain JSON with base64 tensors: text in git, one tensor per line.
  const file = path.join(__dirname, 'tfjs_functional.json');
  fs.writeFileSync(file, JSON.stringify(JSON.parse(pb.encodeJson(stream.doc, stream.tensors)), null, 1) + '\n');
  process.stderr.write(`${file}: ${fs.statSync(file).size} bytes\n`);
}

main().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
