'use strict';
/**
 * Suite fixtures for the tensorflow planet: a fixture (as in the capture request) -> Stream.
 *
 * Layer "dense", spec {input: int, units: [int, ...], activation: str, bias: bool}:
 * tf.sequential of tf.layers.dense(units[i]) named dense_1, dense_2, ..., the hidden ones with
 * the activation, the last one linear. activation defaults to "relu"; bias defaults to true.
 * Kernels use tfjs's default initializer (glorotNormal) with a seed, so a fixture is the same
 * bytes every time. The model is trained for a few full-batch Adam steps on a fixed synthetic
 * regression task, so that biases are non-zero and weights are not just their initialisation.
 *
 * The other layer keys (cnn1/2/3, pool, batchnorm, layernorm, rmsnorm, embedding, residual,
 * model) and their specs are defined in docs/suites.md; each model is built from stock tfjs
 * layers, channels-last (inputs [N, size..., channels]), and moved off its initialisation by a
 * few Adam steps towards a fixed random target. RMSNorm, which tfjs lacks, is a custom layer
 * built from tfjs ops and labelled "composed" in the stream. Layer names are explicit: tfjs's
 * automatic names carry a process-wide counter, which would change a fixture's bytes.
 *
 * The recurrent keys (rnn, lstm, gru) are built in recurrent.js: stock simpleRNN / lstm / gru /
 * bidirectional with seeded non-zero biases (not trained, except the text_classifier and seq2seq
 * archs), and a composed GRU for reset_after, which tfjs 4.22 lacks.
 *
 * The attention keys (mha, swiglu, transformer) are built in attention.js: a composed
 * MultiHeadAttention (tfjs 4.22 has none) serialised as Keras's, SwiGLU from stock layers, and
 * Keras-style transformer blocks of both. The mixer key's two models are built in mixer.js.
 */

const pbtf = require('./pb_tfjs.js');
const recurrent = require('./recurrent.js');
const { NotApplicable, Spec, denseSpec } = require('../../../capture/js/pbstream.js'); // Spec: typed, strict access to a fixture spec

const { tf } = pbtf;

// Suite activation names (as in the pytorch planet) -> what tfjs calls them. A function builds
// a separate layer after a linear Dense (tfjs has no such activation string).
const ACTIVATIONS = {
  relu: 'relu',
  tanh: 'tanh',
  sigmoid: 'sigmoid',
  gelu: 'gelu', // tfjs 'gelu' is the exact erf form
  gelu_tanh: 'gelu_new', // the tanh approximation
  silu: 'swish',
  elu: 'elu',
  selu: 'selu',
  relu6: 'relu6',
  mish: 'mish',
  softplus: 'softplus',
  softmax: 'softmax',
  log_softmax: 'logSoftmax',
  hard_sigmoid: 'hardSigmoid',
  leaky_relu: (name) => tf.layers.leakyReLU({ alpha: 0.01, name }), // torch's default slope
};
// Suite activations tfjs has no stock layer or activation for.
const NOT_IN_TFJS = new Set(['hardswish']);

const TRAIN_ROWS = 256;
const TRAIN_STEPS = 20;
const LEARNING_RATE = 1e-2;

const isPosInt = (v) => Number.isInteger(v) && v > 0;

function intField(fixture, key) {
  const v = fixture[key];
  if (!isPosInt(v)) throw new Error(`${key}: expected a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function crc32(text) {
  let c = ~0;
  for (const byte of Buffer.from(text, 'utf8')) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

// Mixing in the id gives every fixture its own weights even with the suite-wide seed.
function fixtureSeed(fixture) {
  const seed = fixture.seed;
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`seed: expected a non-negative integer, got ${JSON.stringify(seed)}`);
  return (Math.imul((seed ^ 0x9e3779b9) >>> 0, 0x85ebca6b) ^ crc32(fixture.id)) >>> 1;
}

/** The tf.sequential for a "dense" spec; errors name the spec field. `seed` seeds the kernels. */
function denseModel(spec, seed, name = 'dense_model') {
  const lacks = (a) => (NOT_IN_TFJS.has(a) ? `tfjs has no "${a}" activation or layer` : null);
  const { units, activation, bias } = denseSpec(spec, ACTIVATIONS, { lacks });
  const act = ACTIVATIONS[activation];
  const model = tf.sequential({ name });
  units.forEach((u, i) => {
    const hidden = i < units.length - 1;
    model.add(tf.layers.dense({
      units: u,
      name: `dense_${i + 1}`,
      activation: hidden && typeof act === 'string' ? act : 'linear',
      useBias: bias,
      kernelInitializer: tf.initializers.glorotNormal({ seed: seed + i }),
      ...(i === 0 ? { inputShape: [spec.input] } : {}),
    }));
    if (hidden && typeof act === 'function') model.add(act(`${activation}_${i + 1}`));
  });
  return model;
}

/** A few full-batch Adam steps on target = tanh(X @ A) @ B (no shuffling: deterministic). */
async function train(model, inputs, outputs, seed) {
  const hidden = Math.max(outputs, 8);
  const [x, y] = tf.tidy(() => {
    const xs = tf.randomNormal([TRAIN_ROWS, inputs], 0, 1, 'float32', seed + 101);
    const a = tf.randomNormal([inputs, hidden], 0, 1, 'float32', seed + 102).div(Math.sqrt(inputs)); // tanh not saturated
    const b = tf.randomNormal([hidden, outputs], 0, 1, 'float32', seed + 103).div(Math.sqrt(hidden));
    return [xs, tf.tanh(xs.matMul(a)).matMul(b)];
  });
  model.compile({ optimizer: tf.train.adam(LEARNING_RATE), loss: 'meanSquaredError' });
  await model.fit(x, y, { epochs: TRAIN_STEPS, batchSize: TRAIN_ROWS, shuffle: false, verbose: 0 });
  tf.dispose([x, y]);
}

// ---------------------------------------------------------------- layers of issue #4

// A few full-batch steps on at most FIT_ROWS rows move every weight off its initialisation; more
// would only cost time (tfjs's cpu backend, which training needs, is slow).
const FIT_STEPS = 5;
const FIT_ROWS = 32;
const BN_MOMENTUM = 0.9; // Keras's 0.99 would move the moving statistics only ~5% in FIT_STEPS steps

/**
 * RMSNorm from tfjs ops (tfjs has no RMSNorm layer): x · rsqrt(mean(x², last axis) + epsilon) · scale.
 * Serialised as class "RMSNorm" with {epsilon, axis: -1} and one weight "scale", the names of
 * Keras 3's RMSNormalization, so the decoder maps it onto the IR's RMSNorm.
 */
class RMSNorm extends tf.layers.Layer {
  constructor(config = {}) {
    super(config);
    this.epsilon = config.epsilon === undefined ? 1e-6 : config.epsilon;
    this.axis = config.axis === undefined ? -1 : config.axis;
    this.scaleInitializer = config.scaleInitializer || tf.initializers.ones(); // training only: not in the config
    if (this.axis !== -1) throw new Error(`RMSNorm: only axis -1 is implemented, got ${JSON.stringify(this.axis)}`);
  }

  build(inputShape) {
    this.scale = this.addWeight('scale', [inputShape[inputShape.length - 1]], 'float32', this.scaleInitializer);
    this.built = true;
  }

  call(inputs) {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      return x.mul(tf.rsqrt(tf.mean(tf.square(x), -1, true).add(this.epsilon))).mul(this.scale.read());
    });
  }

  computeOutputShape(inputShape) {
    return inputShape;
  }

  getConfig() {
    return { ...super.getConfig(), epsilon: this.epsilon, axis: this.axis };
  }
}
RMSNorm.className = 'RMSNorm';
tf.serialization.registerClass(RMSNorm);

const COMPOSED_NOTES = new Map([[RMSNorm, 'RMSNorm: x * rsqrt(mean(x^2) + epsilon) * scale from tfjs ops (tfjs has no RMSNorm layer)']]);

// Seeded initialisers, one seed per weight, drawn in build order, and the model's name (tfjs's
// default names count models per process): a fixture is the same bytes every run.
function seeds(seed, name) {
  let next = seed;
  return {
    name,
    kernel: () => tf.initializers.glorotNormal({ seed: next++ }),
    uniform: () => tf.initializers.randomUniform({ minval: -0.05, maxval: 0.05, seed: next++ }), // tfjs's Embedding default, seeded
    orthogonal: () => tf.initializers.orthogonal({ seed: next++ }), // tfjs's recurrent kernel default, seeded
    bias: () => tf.initializers.randomNormal({ stddev: 0.5, seed: next++ }),
    gamma: () => tf.initializers.randomNormal({ mean: 1, stddev: 0.25, seed: next++ }), // a norm's scale, off 1
  };
}

const CONV = { 1: 'conv1d', 2: 'conv2d', 3: 'conv3d' };
const POOL = { max: { 1: 'maxPooling1d', 2: 'maxPooling2d', 3: 'maxPooling3d' }, avg: { 1: 'averagePooling1d', 2: 'averagePooling2d', 3: 'averagePooling3d' } };
const GLOBAL_POOL = { global_avg: { 1: 'globalAveragePooling1d', 2: 'globalAveragePooling2d' }, global_max: { 1: 'globalMaxPooling1d', 2: 'globalMaxPooling2d' } };

const spatialShape = (dims, size, channels) => [...Array(dims).fill(size), channels];

// The activation after a conv: a string for the conv's own `activation`, or a layer to add after it.
function convActivation(activation) {
  if (activation === 'linear') return 'linear';
  if (NOT_IN_TFJS.has(activation)) throw new NotApplicable(`tfjs has no "${activation}" activation or layer`);
  return ACTIVATIONS[activation];
}

const CONV_KEYS = ['in_channels', 'size', 'filters', 'kernel', 'stride', 'padding', 'dilation', 'activation', 'bias'];

/** layer cnn1/cnn2/cnn3: conv layers, the activation after each. */
function convModel(dims, spec, init) {
  const s = new Spec(spec, CONV_KEYS);
  const kernel = s.int('kernel'), stride = s.int('stride', 1), dilation = s.int('dilation', 1);
  const padding = s.choice('padding', ['valid', 'same'], 'valid'); // Keras's "same": an odd pad goes at the end
  const activation = s.choice('activation', ['linear', ...Object.keys(ACTIVATIONS), ...NOT_IN_TFJS], 'linear');
  const useBias = s.bool('bias', true);
  const act = convActivation(activation);
  // tfjs cannot differentiate a dilated convolution ("dilation rates greater than 1 are not yet
  // supported in gradients"): such a model is not trained; seeded random biases stand in.
  const fit = dilation === 1;
  const model = tf.sequential({ name: init.name });
  s.ints('filters').forEach((filters, i) => {
    model.add(tf.layers[CONV[dims]]({
      filters, kernelSize: kernel, strides: stride, padding, dilationRate: dilation, useBias, name: `conv_${i + 1}`,
      activation: typeof act === 'string' ? act : 'linear', kernelInitializer: init.kernel(),
      ...(fit ? {} : { biasInitializer: init.bias() }),
      ...(i === 0 ? { inputShape: spatialShape(dims, s.int('size'), s.int('in_channels')) } : {}),
    }));
    if (typeof act === 'function') model.add(act(`${activation}_${i + 1}`));
  });
  return { model, inputShape: spatialShape(dims, s.int('size'), s.int('in_channels')), fit };
}

/** layer pool: conv (3, same) -> relu -> pool. */
function poolModel(spec, init) {
  const s = new Spec(spec, ['dims', 'in_channels', 'size', 'filters', 'pool', 'kernel', 'stride', 'padding']);
  const dims = s.choice('dims', [1, 2, 3]);
  const pool = s.choice('pool', ['max', 'avg', 'global_avg', 'global_max']);
  const inputShape = spatialShape(dims, s.int('size'), s.int('in_channels'));
  const model = tf.sequential({ name: init.name });
  model.add(tf.layers[CONV[dims]]({
    filters: s.int('filters'), kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv', inputShape, kernelInitializer: init.kernel(),
  }));
  if (pool === 'max' || pool === 'avg') {
    const kernel = s.int('kernel');
    const stride = s.int('stride', kernel);
    const padding = s.int('padding', 0, 0);
    if (padding > 0) {
      // Keras pools pad only "valid"/"same"; the spec's symmetric padding is ZeroPadding then a
      // valid pool. Zeros are what an average with padding counts; and after the relu every
      // value is >= 0, so a zero never wins a max that a real element could: the spec's pool.
      if (dims !== 2) throw new NotApplicable(`tfjs has no ZeroPadding${dims}D layer for the spec's padding ${padding} (only zeroPadding2d)`);
      model.add(tf.layers.zeroPadding2d({ padding, name: 'pad' }));
    }
    model.add(tf.layers[POOL[pool][dims]]({ poolSize: kernel, strides: stride, padding: 'valid', name: 'pool' }));
  } else if (dims === 3) {
    // tfjs 4.22 has no GlobalAveragePooling3D / GlobalMaxPooling3D: the stock 3-D pool over the
    // whole extent, then Flatten ([N, 1, 1, 1, C] -> [N, C]), computes the same values.
    const mode = pool === 'global_avg' ? 'avg' : 'max';
    model.add(tf.layers[POOL[mode][3]]({ poolSize: s.int('size'), padding: 'valid', name: 'pool' }));
    model.add(tf.layers.flatten({ name: 'flatten' }));
  } else {
    model.add(tf.layers[GLOBAL_POOL[pool][dims]]({ name: 'pool' }));
  }
  return { model, inputShape };
}

const batchNorm = (name) => tf.layers.batchNormalization({ momentum: BN_MOMENTUM, name });
const relu = (name) => tf.layers.activation({ activation: 'relu', name });

/** layer batchnorm: conv (3, same) -> BatchNormalization -> relu, or Dense -> BatchNormalization -> relu (dims 0). */
function batchnormModel(spec, init) {
  const s = new Spec(spec, ['dims', 'in_channels', 'size', 'filters']);
  const dims = s.choice('dims', [0, 1, 2, 3]);
  const filters = s.int('filters');
  const inputShape = dims === 0 ? [s.int('in_channels')] : spatialShape(dims, s.int('size'), s.int('in_channels'));
  const first = dims === 0
    ? tf.layers.dense({ units: filters, name: 'dense', inputShape, kernelInitializer: init.kernel() })
    : tf.layers[CONV[dims]]({ filters, kernelSize: 3, padding: 'same', name: 'conv', inputShape, kernelInitializer: init.kernel() });
  return { model: tf.sequential({ name: init.name, layers: [first, batchNorm('bn'), relu('relu')] }), inputShape };
}

/** layer layernorm / rmsnorm: Dense(f, f) -> norm(f), the planet's default epsilon unless spec.eps. */
function normModel(norm) {
  return (spec, init) => {
    const s = new Spec(spec, ['features', 'eps']);
    const f = s.int('features');
    // tfjs's LayerNormalization default is 1e-3; RMSNorm has no tfjs default: Keras 3's RMSNormalization's 1e-6.
    const epsilon = s.number('eps', norm === 'layernorm' ? 1e-3 : 1e-6);
    const layer = norm === 'layernorm' ? tf.layers.layerNormalization({ epsilon, name: 'norm' }) : new RMSNorm({ epsilon, name: 'norm' });
    const dense = tf.layers.dense({ units: f, name: 'dense', inputShape: [f], kernelInitializer: init.kernel() });
    return { model: tf.sequential({ name: init.name, layers: [dense, layer] }), inputShape: [f] };
  };
}

/** layer embedding: int32 ids [N, seq] -> Embedding(vocab, dim). */
function embeddingModel(spec, init) {
  const s = new Spec(spec, ['vocab', 'dim', 'seq']);
  const vocab = s.int('vocab');
  // An int32 InputLayer: a layer's own `dtype` would also make its weights int32 (untrainable).
  const ids = tf.input({ shape: [s.int('seq')], dtype: 'int32', name: 'ids' });
  const rows = tf.layers.embedding({ inputDim: vocab, outputDim: s.int('dim'), name: 'embedding', embeddingsInitializer: init.uniform() }).apply(ids);
  return { model: tf.model({ inputs: ids, outputs: rows, name: init.name }), inputShape: [s.int('seq')], vocab };
}

/** layer residual: x + Dense(relu(Dense(x))), a functional model with an Add layer. */
function residualModel(spec, init) {
  const s = new Spec(spec, ['features']);
  const f = s.int('features');
  const x = tf.input({ shape: [f], name: 'x' });
  const h = tf.layers.dense({ units: f, activation: 'relu', name: 'dense_1', kernelInitializer: init.kernel() }).apply(x);
  const y = tf.layers.dense({ units: f, name: 'dense_2', kernelInitializer: init.kernel() }).apply(h);
  const sum = tf.layers.add({ name: 'add' }).apply([x, y]);
  return { model: tf.model({ inputs: x, outputs: sum, name: init.name }), inputShape: [f] };
}

/** layer model: small whole models (docs/suites.md). */
function wholeModel(spec, init) {
  const s = new Spec(spec, ['arch']);
  const arch = s.choice('arch', ['small_cnn', 'dw_separable', 'text_conv1d']);
  const conv = (filters, kernelSize, name, extra = {}) =>
    tf.layers.conv2d({ filters, kernelSize, padding: 'same', name, kernelInitializer: init.kernel(), ...extra });
  if (arch === 'small_cnn') {
    const chain = (x, layers) => layers.reduce((t, l) => l.apply(t), x);
    const image = tf.input({ shape: [32, 32, 3], name: 'image' });
    const stem = chain(image, [conv(16, 3, 'conv_1'), batchNorm('bn_1'), relu('relu_1'),
      conv(32, 3, 'conv_2', { strides: 2 }), batchNorm('bn_2'), relu('relu_2'), tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' })]);
    const branch = chain(stem, [conv(32, 3, 'conv_3'), batchNorm('bn_3'), relu('relu_3'), conv(32, 3, 'conv_4'), batchNorm('bn_4')]);
    const block = relu('relu_4').apply(tf.layers.add({ name: 'add' }).apply([stem, branch]));
    const head = chain(block, [tf.layers.globalAveragePooling2d({ name: 'gap' }), tf.layers.dense({ units: 10, name: 'head', kernelInitializer: init.kernel() })]);
    return { model: tf.model({ inputs: image, outputs: head, name: init.name }), inputShape: [32, 32, 3] };
  }
  if (arch === 'dw_separable') {
    const model = tf.sequential({ name: init.name, layers: [
      tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', name: 'depthwise', inputShape: [16, 16, 8], depthwiseInitializer: init.kernel() }),
      batchNorm('bn_1'), relu('relu_1'),
      conv(16, 1, 'pointwise'), batchNorm('bn_2'), relu('relu_2'),
    ] });
    return { model, inputShape: [16, 16, 8] };
  }
  const ids = tf.input({ shape: [20], dtype: 'int32', name: 'ids' });
  const logits = [
    tf.layers.embedding({ inputDim: 100, outputDim: 16, name: 'embedding', embeddingsInitializer: init.uniform() }),
    tf.layers.conv1d({ filters: 32, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv', kernelInitializer: init.kernel() }),
    tf.layers.globalMaxPooling1d({ name: 'pool' }),
    tf.layers.dense({ units: 4, name: 'head', kernelInitializer: init.kernel() }),
  ].reduce((t, l) => l.apply(t), ids);
  return { model: tf.model({ inputs: ids, outputs: logits, name: init.name }), inputShape: [20], vocab: 100 };
}

const BUILDERS = {
  cnn1: (spec, init) => convModel(1, spec, init),
  cnn2: (spec, init) => convModel(2, spec, init),
  cnn3: (spec, init) => convModel(3, spec, init),
  pool: poolModel,
  batchnorm: batchnormModel,
  layernorm: normModel('layernorm'),
  rmsnorm: normModel('rmsnorm'),
  embedding: embeddingModel,
  residual: residualModel,
  model: wholeModel,
  rnn: recurrent.recurrentModel('rnn'),
  lstm: recurrent.recurrentModel('lstm'),
  gru: recurrent.recurrentModel('gru'),
  ...require('./families.js').families(tf, { ACTIVATIONS, NOT_IN_TFJS }),
  mha: require('./attention.js').mhaModel,
  swiglu: require('./attention.js').swigluModel,
  transformer: require('./attention.js').transformerModel,
  mixer: (spec, init) => require('./mixer.js').mixer(tf, { RMSNorm })(spec, init),
};

// Inputs: N(0, 1) floats, or uniform int32 ids in [0, vocab).
function draw(rows, inputShape, vocab, seed) {
  const shape = [rows, ...inputShape];
  return vocab ? tf.randomUniform(shape, 0, vocab, 'int32', seed) : tf.randomNormal(shape, 0, 1, 'float32', seed);
}

/**
 * dL/dkernel of a channels-last Conv2D (tfjs's Conv2DBackpropFilter) with direct indexing: the cpu
 * backend's own reads every element through TensorBuffer.get and takes ~12 s for what this does in
 * ~0.1 s (75M multiply-adds). Only training uses it; the captured outputs come from tfjs's forward
 * kernels on the wasm backend. Sums in f64 like the original.
 */
function conv2DBackpropFilterNHWC(original) {
  return (args) => {
    const { inputs: { x, dy }, backend, attrs } = args;
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
    if (dataFormat !== 'NHWC') return original(args);
    const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
    const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, outChannels: O } = info;
    const { filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW } = info;
    const { top, left } = info.padInfo;
    const xv = backend.data.get(x.dataId).values;
    const gv = backend.data.get(dy.dataId).values;
    const acc = new Float64Array(KH * KW * C * O);
    for (let n = 0; n < N; n++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          const g = ((n * OH + oh) * OW + ow) * O;
          for (let kh = 0; kh < KH; kh++) {
            const ih = oh * SH + kh - top;
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < KW; kw++) {
              const iw = ow * SW + kw - left;
              if (iw < 0 || iw >= W) continue;
              const xo = ((n * H + ih) * W + iw) * C;
              const wo = (kh * KW + kw) * C * O;
              for (let c = 0; c < C; c++) {
                const xval = xv[xo + c];
                const base = wo + c * O;
                for (let o = 0; o < O; o++) acc[base + o] += xval * gv[g + o];
              }
            }
          }
        }
    return backend.makeTensorInfo(filterShape, 'float32', Float32Array.from(acc));
  };
}

// Runs fn with the cpu backend's Conv2DBackpropFilter replaced by the direct-indexing one.
async function withFastConvGrad(fn) {
  const original = tf.getKernel('Conv2DBackpropFilter', 'cpu');
  tf.unregisterKernel('Conv2DBackpropFilter', 'cpu');
  tf.registerKernel({ ...original, kernelFunc: conv2DBackpropFilterNHWC(original.kernelFunc) });
  try {
    return await fn();
  } finally {
    tf.unregisterKernel('Conv2DBackpropFilter', 'cpu');
    tf.registerKernel(original);
  }
}

/**
 * FIT_STEPS full-batch Adam steps towards a fixed N(0, 1) target, in training mode (BatchNormalization
 * moves its moving statistics). On tfjs's cpu backend: the wasm backend has no gradient kernels for
 * Conv2D's kernel, depthwise convolutions or Embedding (Conv2DBackpropFilter,
 * DepthwiseConv2dNativeBackpropInput/Filter, UnsortedSegmentSum).
 */
async function fitRandomTarget(model, x, seed) {
  const backend = tf.getBackend();
  await tf.setBackend('cpu');
  try {
    const xs = Array.isArray(x) ? x : [x];
    const ys = tf.tidy(() => [model.predict(xs.length === 1 ? xs[0] : xs)].flat().map((o, i) => tf.randomNormal(o.shape, 0, 1, 'float32', seed + i)));
    model.compile({ optimizer: tf.train.adam(LEARNING_RATE), loss: 'meanSquaredError' });
    await withFastConvGrad(() => model.fit(x, ys.length === 1 ? ys[0] : ys, { epochs: FIT_STEPS, batchSize: xs[0].shape[0], shuffle: false, verbose: 0 }));
    tf.dispose(ys);
  } finally {
    await tf.setBackend(backend);
  }
}

/** The Stream for one fixture {id, layer, samples, seed, spec}. */
async function build(fixture) {
  const layer = fixture.layer;
  if (layer !== 'dense' && !(layer in BUILDERS))
    throw new Error(`layer ${JSON.stringify(layer)} is not supported by the tensorflow capture (known: dense, ${Object.keys(BUILDERS).join(', ')})`);
  const samples = intField(fixture, 'samples');
  const seed = fixtureSeed(fixture);
  if (layer === 'dense') return buildDense(fixture, samples, seed);
  const built = BUILDERS[layer](fixture.spec, seeds(seed, fixture.id));
  const { model, vocab, fit = true } = built;
  // One input shape, or (recurrent states) one per model input: the first may be ids, the rest are floats.
  const inputShapes = built.inputShapes || [built.inputShape];
  const tensors = [];
  // A builder's own draw(rows, seed) gives inputs that are not N(0, 1) floats (a padding mask).
  const drawAll = built.draw || ((rows, s) => inputShapes.map((shape, i) => draw(rows, shape, i === 0 ? vocab : undefined, s + 1000 * i)));
  try {
    if (fit) {
      const xTrain = drawAll(Math.min(samples, FIT_ROWS), seed + 101);
      tensors.push(...xTrain);
      await fitRandomTarget(model, xTrain.length === 1 ? xTrain[0] : xTrain, seed + 102);
    }
    const x = drawAll(samples, seed + 201); // inputs the training never saw
    tensors.push(...x);
    const composed = [...COMPOSED_NOTES].filter(([cls]) => model.layers.some((l) => l instanceof cls)).map(([, note]) => note);
    composed.push(...(built.composed || []));
    return pbtf.capture(model, x.length === 1 ? x[0] : x, fixture.id, { taps: true, composed });
  } finally {
    tf.dispose(tensors);
    model.dispose();
  }
}

async function buildDense(fixture, samples, seed) {
  const model = denseModel(fixture.spec, seed, fixture.id);
  try {
    const spec = fixture.spec;
    await train(model, spec.input, spec.units[spec.units.length - 1], seed);
    const x = tf.randomNormal([samples, spec.input], 0, 1, 'float32', seed + 201);
    try {
      return pbtf.capture(model, x, fixture.id, { taps: true });
    } finally {
      x.dispose();
    }
  } finally {
    model.dispose();
  }
}

module.exports = { ACTIVATIONS, BUILDERS, RMSNorm, conv2DBackpropFilterNHWC, denseModel, build, fixtureSeed };
