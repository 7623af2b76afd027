'use strict';
// Records the tfjs_<name>.json streams of the issue-10 layer families for
// tests/test_tensorflow_decoder.cpp from real tfjs (wasm backend), each small and built to fail
// visibly when a layout or a coordinate mapping is wrong: Conv2DTranspose with a 2×3 kernel,
// 2 -> 3 channels, "same" crops and a kernel below the stride (output_padding); UpSampling2D
// nearest and bilinear (asymmetric coordinates) with unequal factors; SeparableConv2D with a
// multiplier of 2; PReLU per channel on a conv and on a dense; TimeDistributed over a Conv2D.
//   node plugins/tensorflow/tests/streams/record_families.js
const fs = require('fs');
const path = require('path');
const pb = require('../../../../capture/js/pbstream.js');
const pbtf = require('../../capture/pb_tfjs.js');

const { tf } = pbtf;

let seed = 31;
const kernel = () => tf.initializers.glorotNormal({ seed: seed++ });
const bias = () => tf.initializers.randomNormal({ stddev: 0.5, seed: seed++ });
const normal = (shape) => tf.randomNormal(shape, 0, 1, 'float32', seed++);
const chain = (x, layers) => layers.reduce((t, l) => l.apply(t), x);

const STREAMS = {
  conv_transpose: () => {
    const x = tf.input({ shape: [3, 4, 2], name: 'x' });
    const y = chain(x, [
      tf.layers.conv2dTranspose({ filters: 3, kernelSize: [2, 3], strides: 2, padding: 'same', activation: 'relu', name: 'ct_same', kernelInitializer: kernel(), biasInitializer: bias() }),
      tf.layers.conv2dTranspose({ filters: 2, kernelSize: 1, strides: [2, 3], padding: 'valid', name: 'ct_k1', kernelInitializer: kernel(), biasInitializer: bias() }),
    ]);
    return [tf.model({ inputs: x, outputs: y }), normal([2, 3, 4, 2])];
  },
  upsample: () => {
    const x = tf.input({ shape: [3, 4, 2], name: 'x' });
    const near = tf.layers.upSampling2d({ size: [2, 3], name: 'up_nearest' }).apply(x);
    const lin = tf.layers.upSampling2d({ size: [3, 2], interpolation: 'bilinear', name: 'up_bilinear' }).apply(x);
    return [tf.model({ inputs: x, outputs: [near, lin] }), normal([2, 3, 4, 2])];
  },
  separable: () => {
    const x = tf.input({ shape: [5, 5, 2], name: 'x' });
    const y = tf.layers.separableConv2d({ filters: 3, kernelSize: [3, 2], depthMultiplier: 2, padding: 'same', activation: 'tanh', name: 'sep',
      depthwiseInitializer: kernel(), pointwiseInitializer: kernel(), biasInitializer: bias() }).apply(x);
    return [tf.model({ inputs: x, outputs: y }), normal([2, 5, 5, 2])];
  },
  prelu: () => {
    const x = tf.input({ shape: [4, 4, 2], name: 'x' });
    const y = chain(x, [
      tf.layers.conv2d({ filters: 3, kernelSize: 3, name: 'conv', kernelInitializer: kernel(), biasInitializer: bias() }),
      tf.layers.prelu({ sharedAxes: [1, 2], name: 'prelu', alphaInitializer: bias() }),
      tf.layers.flatten({ name: 'flat' }),
      tf.layers.prelu({ name: 'prelu_flat', alphaInitializer: bias() }),
    ]);
    return [tf.model({ inputs: x, outputs: y }), normal([2, 4, 4, 2])];
  },
  time_distributed: () => {
    const x = tf.input({ shape: [3, 4, 4, 2], name: 'x' });
    const y = tf.layers.timeDistributed({ layer: tf.layers.conv2d({ filters: 3, kernelSize: 3, name: 'conv', kernelInitializer: kernel(), biasInitializer: bias() }), name: 'td' }).apply(x);
    return [tf.model({ inputs: x, outputs: y }), normal([2, 3, 4, 4, 2])];
  },
};

async function main() {
  await pbtf.useWasm();
  for (const [name, make] of Object.entries(STREAMS)) {
    const [model, input] = make();
    const stream = pbtf.capture(model, input, `tfjs_${name}`, { taps: true });
    const file = path.join(__dirname, `tfjs_${name}.json`);
    fs.writeFileSync(file, JSON.stringify(JSON.parse(pb.encodeJson(stream.doc, stream.tensors)), null, 1) + '\n');
    process.stderr.write(`${file}: ${fs.statSync(file).size} bytes\n`);
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
