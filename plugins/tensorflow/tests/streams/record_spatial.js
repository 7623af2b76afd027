'use strict';
// Records the tfjs_<name>.json streams of tests/test_tensorflow_decoder.cpp's spatial section
// from real tfjs (wasm backend): convolutions, pooling, normalisation and embeddings, each small
// (< 50 KB) and built to fail visibly when the decoder gets a layout wrong (non-square kernels,
// in != out channels, even kernels under "same", a depthwise multiplier > 1, a flatten after a
// conv, moving variances near epsilon). Deterministic: seeded initialisers and inputs; taps on.
//   node plugins/tensorflow/tests/streams/record_spatial.js
const fs = require('fs');
const path = require('path');
const pb = require('../../../../capture/js/pbstream.js');
const pbtf = require('../../capture/pb_tfjs.js');
const { RMSNorm } = require('../../capture/fixtures.js');

const { tf } = pbtf;

let seed = 11;
const kernel = () => tf.initializers.glorotNormal({ seed: seed++ });
const bias = () => tf.initializers.randomNormal({ stddev: 0.5, seed: seed++ });
const normal = (shape) => tf.randomNormal(shape, 0, 1, 'float32', seed++);
const chain = (x, layers) => layers.reduce((t, l) => l.apply(t), x);

const STREAMS = {
  // Conv2D: kernel 2x3 (not square), 2 -> 3 channels, valid: an HWIO kernel read in any other order fails.
  conv2d: () => {
    const x = tf.input({ shape: [5, 6, 2], name: 'x' });
    const y = tf.layers.conv2d({ filters: 3, kernelSize: [2, 3], name: 'conv', kernelInitializer: kernel(), biasInitializer: bias() }).apply(x);
    return [tf.model({ inputs: x, outputs: y }), normal([2, 5, 6, 2])];
  },
  // "same" with an even kernel (the odd pad at the end), with stride 2, and an even average pool.
  same_even: () => {
    const x = tf.input({ shape: [5, 5, 2], name: 'x' });
    const y = chain(x, [
      tf.layers.conv2d({ filters: 3, kernelSize: 4, padding: 'same', name: 'conv_k4', kernelInitializer: kernel(), biasInitializer: bias() }),
      tf.layers.conv2d({ filters: 2, kernelSize: 3, strides: 2, padding: 'same', name: 'conv_s2', kernelInitializer: kernel(), biasInitializer: bias() }),
      tf.layers.averagePooling2d({ poolSize: 2, strides: 1, padding: 'same', name: 'avg_same' }),
    ]);
    return [tf.model({ inputs: x, outputs: y }), normal([2, 5, 5, 2])];
  },
  // DepthwiseConv2D, 2 channels x multiplier 3: output channel c·3 + m.
  depthwise: () => {
    const x = tf.input({ shape: [4, 4, 2], name: 'x' });
    const y = tf.layers.depthwiseConv2d({
      kernelSize: [3, 2], depthMultiplier: 3, padding: 'same', name: 'dw', depthwiseInitializer: kernel(), biasInitializer: bias(),
    }).apply(x);
    return [tf.model({ inputs: x, outputs: y }), normal([2, 4, 4, 2])];
  },
  // Conv -> Flatten -> Dense: Keras flattens (H, W, C); a channels-first flatten reorders the Dense input.
  flatten: () => {
    const x = tf.input({ shape: [4, 4, 2], name: 'x' });
    const y = chain(x, [
      tf.layers.conv2d({ filters: 3, kernelSize: 3, activation: 'relu', name: 'conv', kernelInitializer: kernel(), biasInitializer: bias() }),
      tf.layers.flatten({ name: 'flat' }),
      tf.layers.dense({ units: 2, name: 'head', kernelInitializer: kernel(), biasInitializer: bias() }),
    ]);
    return [tf.model({ inputs: x, outputs: y }), normal([2, 4, 4, 2])];
  },
  // BatchNormalization (epsilon 1e-3, Keras's default) with moving variances near epsilon.
  batchnorm: () => {
    const x = tf.input({ shape: [3, 3, 4], name: 'x' });
    const bn = tf.layers.batchNormalization({ name: 'bn' });
    const y = bn.apply(x);
    const model = tf.model({ inputs: x, outputs: y });
    bn.setWeights([tf.tensor1d([1.5, 0.5, -1, 2]), tf.tensor1d([0.1, -0.2, 0.3, 0]),
      tf.tensor1d([0.2, -0.1, 0, 0.5]), tf.tensor1d([0.001, 0.002, 0.0005, 0.004])]);
    return [model, normal([2, 3, 3, 4]).mul(0.05)];
  },
  // int32 ids -> Embedding -> Conv1D (even kernel, same) -> GlobalAveragePooling1D. (tfjs 4.22 accepts
  // padding 'causal' for Conv1D but cannot run it: "not implemented yet".)
  embedding: () => {
    const ids = tf.input({ shape: [5], dtype: 'int32', name: 'ids' });
    const y = chain(ids, [
      tf.layers.embedding({ inputDim: 7, outputDim: 3, name: 'embedding', embeddingsInitializer: kernel() }),
      tf.layers.conv1d({ filters: 2, kernelSize: 2, padding: 'same', name: 'conv', kernelInitializer: kernel(), biasInitializer: bias() }),
      tf.layers.globalAveragePooling1d({ name: 'pool' }),
    ]);
    return [tf.model({ inputs: ids, outputs: y }), tf.tensor2d([[0, 1, 2, 6, 3], [5, 5, 4, 0, 1], [6, 2, 2, 1, 0]], [3, 5], 'int32')];
  },
  // One input feeds two conv branches that are added (a DAG), then relu, max pool, flatten, dense.
  shared_input: () => {
    const x = tf.input({ shape: [4, 4, 2], name: 'x' });
    const a = tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'branch_a', kernelInitializer: kernel(), biasInitializer: bias() }).apply(x);
    const b = tf.layers.conv2d({ filters: 3, kernelSize: 1, name: 'branch_b', kernelInitializer: kernel(), biasInitializer: bias() }).apply(x);
    const y = chain(tf.layers.add({ name: 'sum' }).apply([a, b]), [
      tf.layers.activation({ activation: 'relu', name: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }),
      tf.layers.flatten({ name: 'flat' }),
      tf.layers.dense({ units: 2, name: 'head', kernelInitializer: kernel(), biasInitializer: bias() }),
    ]);
    return [tf.model({ inputs: x, outputs: y }), normal([2, 4, 4, 2])];
  },
  // ZeroPadding2D (asymmetric) before a max pool over negative values: zeros, not -inf, win there.
  zero_padding: () => {
    const x = tf.input({ shape: [3, 3, 2], name: 'x' });
    const y = chain(x, [
      tf.layers.zeroPadding2d({ padding: [[1, 0], [0, 2]], name: 'pad' }),
      tf.layers.maxPooling2d({ poolSize: 2, strides: 1, name: 'pool' }),
    ]);
    return [tf.model({ inputs: x, outputs: y }), normal([2, 3, 3, 2]).abs().neg()];
  },
  // Dense -> LayerNormalization (tfjs default epsilon 1e-3) -> the capture's composed RMSNorm.
  norms: () => {
    const x = tf.input({ shape: [6], name: 'x' });
    const y = chain(x, [
      tf.layers.dense({ units: 6, name: 'dense', kernelInitializer: kernel(), biasInitializer: bias() }),
      tf.layers.layerNormalization({ name: 'ln', gammaInitializer: bias(), betaInitializer: bias() }),
      new RMSNorm({ epsilon: 1e-6, name: 'rms' }),
    ]);
    const model = tf.model({ inputs: x, outputs: y });
    model.getLayer('rms').setWeights([tf.tensor1d([0.5, 1, 1.5, -1, 2, 0.25])]);
    return [model, normal([3, 6])];
  },
};

async function main() {
  await pbtf.useWasm();
  for (const [name, make] of Object.entries(STREAMS)) {
    const [model, input] = make();
    const composed = model.layers.some((l) => l instanceof RMSNorm) ? ['RMSNorm: built from tfjs ops (tfjs has no RMSNorm layer)'] : [];
    const stream = pbtf.capture(model, input, `tfjs_${name}`, { taps: true, composed });
    const file = path.join(__dirname, `tfjs_${name}.json`);
    fs.writeFileSync(file, JSON.stringify(JSON.parse(pb.encodeJson(stream.doc, stream.tensors)), null, 1) + '\n');
    process.stderr.write(`${file}: ${fs.statSync(file).size} bytes\n`);
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
