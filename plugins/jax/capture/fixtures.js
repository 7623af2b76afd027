'use strict';
/**
 * Suite fixtures for the jax planet: a fixture (as in the capture request) -> Stream.
 *
 * Layer "dense", spec {input: int, units: [int, ...], activation: str, bias: bool}: the Flax
 * module list [Dense(units[0]), fn(activation), ..., Dense(units[-1])], the last layer linear;
 * activation defaults to "relu", bias to true.
 * Layer "residual", spec {features: f}: x + Dense_1(relu(Dense_0(x))), both Dense f -> f. Initialised as Flax does (lecun_normal kernels,
 * zero biases), then trained for a few Adam steps (written in jax-js, the step jit-compiled) on
 * a fixed synthetic regression task, so that biases are non-zero. Every random draw comes from
 * one jax-js PRNG key derived from (fixture seed, fixture id).
 */

const zlib = require('zlib');
const path = require('path');
const { NotApplicable } = require(path.join(__dirname, '..', '..', 'sdk', 'js', 'pbstream.js'));
const flax = require('./flax.js');

const { jax } = flax;
const { numpy: np, random, tree } = jax;

// Suite activation names (shared by every planet) -> the Flax function and its attributes.
// "gelu" is the exact erf form in every planet (torch's default), "gelu_tanh" the approximation.
const ACTIVATIONS = {
  relu: ['nn.relu'],
  tanh: ['nn.tanh'],
  sigmoid: ['nn.sigmoid'],
  gelu: ['nn.gelu', { approximate: false }],
  gelu_tanh: ['nn.gelu', { approximate: true }],
  silu: ['nn.silu'],
  elu: ['nn.elu'],
  selu: ['nn.selu'],
  leaky_relu: ['nn.leaky_relu'],
  relu6: ['nn.relu6'],
  hardswish: ['nn.hard_swish'],
  softplus: ['nn.softplus'],
  softmax: ['nn.softmax'],
  log_softmax: ['nn.log_softmax'],
};
const NOT_IN_FLAX = new Set(['mish']); // jax.nn has mish, flax.linen does not re-export it

const DENSE_KEYS = new Set(['input', 'units', 'activation', 'bias']);
const TRAIN_ROWS = 256;
const TRAIN_STEPS = 20;
const LEARNING_RATE = 1e-2;
const ADAM = { b1: 0.9, b2: 0.999, eps: 1e-8 };

const isPosInt = (v) => Number.isInteger(v) && v > 0;

function intField(fixture, key) {
  if (!isPosInt(fixture[key])) throw new Error(`${key}: expected a positive integer, got ${JSON.stringify(fixture[key])}`);
  return fixture[key];
}

// Mixing in the id gives every fixture its own weights even with the suite-wide seed.
function fixtureSeed(fixture) {
  const seed = fixture.seed;
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`seed: expected a non-negative integer, got ${JSON.stringify(seed)}`);
  return zlib.crc32(`${seed}:${fixture.id}`); // uint32, jax-js's key width
}

/** The flax.Model for a "dense" spec; errors name the spec field. */
function denseModel(spec) {
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new Error(`spec: expected a mapping, got ${JSON.stringify(spec)}`);
  const unknown = Object.keys(spec).filter((k) => !DENSE_KEYS.has(k)).sort();
  if (unknown.length) throw new Error(`spec.${unknown[0]}: unknown field for layer 'dense' (known: ${[...DENSE_KEYS].sort().join(', ')})`);
  if (!isPosInt(spec.input)) throw new Error(`spec.input: expected a positive integer, got ${JSON.stringify(spec.input)}`);
  const units = spec.units;
  if (!Array.isArray(units) || !units.length || !units.every(isPosInt))
    throw new Error(`spec.units: expected a non-empty list of positive integers, got ${JSON.stringify(units)}`);
  const activation = spec.activation ?? 'relu';
  if (NOT_IN_FLAX.has(activation)) throw new NotApplicable(`flax.linen has no "${activation}" activation`);
  if (!(activation in ACTIVATIONS))
    throw new Error(`spec.activation: unknown activation ${JSON.stringify(activation)} (known: ${Object.keys(ACTIVATIONS).join(', ')})`);
  const bias = spec.bias ?? true;
  if (typeof bias !== 'boolean') throw new Error(`spec.bias: expected true or false, got ${JSON.stringify(bias)}`);

  const layers = [];
  units.forEach((u, i) => {
    if (i) layers.push(flax.fn(...ACTIVATIONS[activation]));
    layers.push(flax.Dense(u, { useBias: bias }));
  });
  return new flax.Model(layers);
}

/** The flax.Model for a "residual" spec: x + Dense(relu(Dense(x))). */
function residualModel(spec) {
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new Error(`spec: expected a mapping, got ${JSON.stringify(spec)}`);
  const unknown = Object.keys(spec).filter((k) => k !== 'features').sort();
  if (unknown.length) throw new Error(`spec.${unknown[0]}: unknown field for layer 'residual' (known: features)`);
  if (!isPosInt(spec.features)) throw new Error(`spec.features: expected a positive integer, got ${JSON.stringify(spec.features)}`);
  const f = spec.features;
  return new flax.Model([flax.Dense(f), flax.fn('nn.relu'), flax.Dense(f), flax.add(['x', 'Dense_1'])]);
}

// layer -> (spec -> [model, input width, output width]).
const LAYERS = {
  dense: (spec) => {
    const m = denseModel(spec);
    return [m, spec.input, spec.units[spec.units.length - 1]];
  },
  residual: (spec) => [residualModel(spec), spec.features, spec.features],
};

/**
 * Full-batch Adam on target = tanh(X @ A) @ B, the step jit-compiled (as optax would be under
 * jax.jit). Consumes `variables`, returns the trained ones.
 */
async function train(model, variables, key, inputs, outputs) {
  const hidden = Math.max(outputs, 8);
  const keys = random.split(key, 3);
  const [kx, ka, kb] = [0, 1, 2].map((i) => keys.ref.slice(i));
  keys.dispose();
  const x = random.normal(kx, [TRAIN_ROWS, inputs]);
  const a = random.normal(ka, [inputs, hidden]).div(Math.sqrt(inputs)); // scaled so tanh is not saturated
  const b = random.normal(kb, [hidden, outputs]).div(Math.sqrt(hidden));
  const y = np.matmul(np.tanh(np.matmul(x.ref, a)), b);
  // jax-js is lazy: realise the data once, and each step before the next, or every step
  // re-dispatches a growing chain of pending work (measured: ~10x slower).
  await jax.blockUntilReady([x, y]);

  const loss = (v, xs, ys) => np.mean(np.square(model.apply(v, xs).sub(ys)));
  // c1 = 1/(1 - b1^t), c2 = 1/(1 - b2^t): Adam's bias corrections for step t.
  const step = jax.jit((v, m, s, xs, ys, c1, c2) => {
    const [l, g] = jax.valueAndGrad(loss)(tree.ref(v), xs, ys);
    l.dispose();
    const m2 = tree.map((mi, gi) => mi.mul(ADAM.b1).add(gi.mul(1 - ADAM.b1)), m, tree.ref(g));
    const s2 = tree.map((si, gi) => si.mul(ADAM.b2).add(np.square(gi).mul(1 - ADAM.b2)), s, g);
    const v2 = tree.map(
      (p, mi, si) => p.sub(mi.mul(c1.ref).mul(LEARNING_RATE).div(np.sqrt(si.mul(c2.ref)).add(ADAM.eps))),
      v, tree.ref(m2), tree.ref(s2)
    );
    c1.dispose();
    c2.dispose();
    return [v2, m2, s2];
  });
  let m = tree.map((p) => np.zerosLike(p.ref), variables);
  let s = tree.map((p) => np.zerosLike(p.ref), variables);
  for (let t = 1; t <= TRAIN_STEPS; t++) {
    const c1 = np.array(1 / (1 - ADAM.b1 ** t));
    const c2 = np.array(1 / (1 - ADAM.b2 ** t));
    [variables, m, s] = await jax.blockUntilReady(step(variables, m, s, x.ref, y.ref, c1, c2));
  }
  step.dispose();
  tree.dispose([m, s, x, y]);
  return variables;
}

/** The Stream for one fixture {id, layer, samples, seed, spec}. */
async function build(fixture) {
  const layer = LAYERS[fixture.layer];
  if (!layer) throw new Error(`layer ${JSON.stringify(fixture.layer)} is not supported by the jax capture yet`);
  const samples = intField(fixture, 'samples');
  const [model, inputs, outputs] = layer(fixture.spec);
  const keys = random.split(random.key(fixtureSeed(fixture)), 3);
  const [kInit, kTrain, kx] = [0, 1, 2].map((i) => keys.ref.slice(i));
  keys.dispose();
  let variables = await jax.blockUntilReady(model.init(kInit, np.zeros([1, inputs])));
  variables = await train(model, variables, kTrain, inputs, outputs);
  const x = random.normal(kx, [samples, inputs]);
  try {
    return await flax.capture({ model, variables, inputs: [x], modelId: fixture.id, taps: true });
  } finally {
    tree.dispose([variables, x]);
  }
}

module.exports = { ACTIVATIONS, LAYERS, denseModel, residualModel, train, build, fixtureSeed };
