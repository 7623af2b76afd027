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
 */

const pbtf = require('./pb_tfjs.js');
const { NotApplicable } = require('../../sdk/js/pbstream.js');

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

const DENSE_KEYS = new Set(['input', 'units', 'activation', 'bias']);
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
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new Error(`spec: expected a mapping, got ${JSON.stringify(spec)}`);
  const unknown = Object.keys(spec).filter((k) => !DENSE_KEYS.has(k)).sort();
  if (unknown.length)
    throw new Error(`spec.${unknown[0]}: unknown field for layer 'dense' (known: ${[...DENSE_KEYS].sort().join(', ')})`);
  if (!isPosInt(spec.input)) throw new Error(`spec.input: expected a positive integer, got ${JSON.stringify(spec.input)}`);
  const units = spec.units;
  if (!Array.isArray(units) || !units.length || !units.every(isPosInt))
    throw new Error(`spec.units: expected a non-empty list of positive integers, got ${JSON.stringify(units)}`);
  const activation = spec.activation === undefined ? 'relu' : spec.activation;
  if (NOT_IN_TFJS.has(activation)) throw new NotApplicable(`tfjs has no "${activation}" activation or layer`);
  if (!(activation in ACTIVATIONS))
    throw new Error(`spec.activation: unknown activation ${JSON.stringify(activation)} (known: ${Object.keys(ACTIVATIONS).join(', ')})`);
  const bias = spec.bias === undefined ? true : spec.bias;
  if (typeof bias !== 'boolean') throw new Error(`spec.bias: expected true or false, got ${JSON.stringify(bias)}`);

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

/** The Stream for one fixture {id, layer, samples, seed, spec}. */
async function build(fixture) {
  if (fixture.layer !== 'dense') throw new Error(`layer ${JSON.stringify(fixture.layer)} is not supported by the tensorflow capture yet`);
  const samples = intField(fixture, 'samples');
  const seed = fixtureSeed(fixture);
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

module.exports = { ACTIVATIONS, denseModel, build, fixtureSeed };
