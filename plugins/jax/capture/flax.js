'use strict';
/**
 * Flax-linen-style models for jax-js, and their capture as planetbridge streams
 * (docs/planets/jax.md). jax-js has no Flax: modules here are pure functions over a params
 * pytree with Flax's names and layouts, built from jax-js's own ops (the stream's "composed"
 * notes say so).
 *
 *   const flax = require('<repo>/plugins/jax/capture/flax.js');
 *   await flax.ready();                                   // init('wasm')
 *   const model = new flax.Model([flax.Dense(16), flax.fn('nn.relu'), flax.Dense(4)]);
 *   const variables = model.init(random.key(0), x.ref);   // {params: {Dense_0: {kernel, bias}, ...}}
 *   const y = model.apply(variables, x);                  // or jit((v, x) => model.apply(v, x))
 *   (await flax.capture({model, variables, inputs: [x], modelId: 'my_model'})).write('my_model.pbstream');
 *
 * Layers are stream module descriptions ({type, name?, inputs?, ...attributes}); Model names
 * them as Flax's compact modules do (Dense_0, Dense_1, ...; functions relu_0, ...) and follows
 * Sequential order unless a layer names its `inputs` (residual adds, concatenations).
 *
 * jax-js arrays are reference-counted and ops consume their arguments: init/apply consume the
 * arrays they are given (pass x.ref to keep x); capture() consumes nothing.
 */

const fs = require('fs');
const path = require('path');
const pbstream = require(path.join(__dirname, '..', '..', 'sdk', 'js', 'pbstream.js'));

const jax = require('@jax-js/jax');

const { numpy: np, nn, random, tree } = jax;

const PLANET = 'jax';
const ENGINE = 'jax-js';
// The package's "exports" hide its package.json; it sits one level above dist/.
const PLANET_VERSION = JSON.parse(
  fs.readFileSync(path.join(path.dirname(require.resolve('@jax-js/jax')), '..', 'package.json'), 'utf8')
).version;

// jax-js's cpu device is unusably slow; plain init() probes WebGPU and crashes under Node.
async function ready() {
  const devices = await jax.init('wasm');
  if (!devices.includes('wasm')) throw new Error(`jax-js: the wasm device failed to initialise (got ${devices.join(', ')})`);
  jax.defaultDevice('wasm');
  return PLANET_VERSION;
}

// ------------------------------------------------------------------ functions, as Flax spells them

// name -> [jax-js implementation (x, attrs), attribute defaults as in jax.nn]. The stream always
// carries every attribute explicitly.
const FUNCTIONS = {
  'nn.relu': [(x) => nn.relu(x), {}],
  'nn.relu6': [(x) => nn.relu6(x), {}],
  'nn.tanh': [(x) => np.tanh(x), {}],
  'nn.sigmoid': [(x) => nn.sigmoid(x), {}],
  'nn.silu': [(x) => nn.silu(x), {}],
  'nn.swish': [(x) => nn.silu(x), {}],
  'nn.selu': [(x) => nn.selu(x), {}],
  'nn.softplus': [(x) => nn.softplus(x), {}],
  'nn.hard_swish': [(x) => nn.hardSilu(x), {}],
  'nn.hard_silu': [(x) => nn.hardSilu(x), {}],
  'nn.hard_sigmoid': [(x) => nn.hardSigmoid(x), {}],
  // jax-js, like JAX, defaults to the tanh approximation.
  'nn.gelu': [(x, a) => nn.gelu(x, { approximate: a.approximate }), { approximate: true }],
  'nn.leaky_relu': [(x, a) => nn.leakyRelu(x, a.negative_slope), { negative_slope: 0.01 }],
  'nn.elu': [(x, a) => nn.elu(x, a.alpha), { alpha: 1.0 }],
  'nn.softmax': [(x, a) => nn.softmax(x, a.axis), { axis: -1 }],
  'nn.log_softmax': [(x, a) => nn.logSoftmax(x, a.axis), { axis: -1 }],
};

// ------------------------------------------------------------------ layer constructors

function Dense(features, { useBias = true, name, inputs } = {}) {
  if (!Number.isInteger(features) || features <= 0) throw new Error(`Dense: features must be a positive integer, got ${features}`);
  return layer({ type: 'Dense', features, use_bias: !!useBias }, name, inputs);
}

function fn(name, attrs = {}, { inputs, name: nodeName } = {}) {
  const f = FUNCTIONS[name];
  if (!f) throw new Error(`unknown function ${JSON.stringify(name)} (known: ${Object.keys(FUNCTIONS).join(', ')})`);
  for (const k of Object.keys(attrs))
    if (!(k in f[1])) throw new Error(`${name}: unknown attribute ${JSON.stringify(k)} (known: ${Object.keys(f[1]).join(', ') || 'none'})`);
  return layer({ type: 'fn', fn: name, ...f[1], ...attrs }, nodeName, inputs);
}

const add = (inputs, { name } = {}) => layer({ type: 'add' }, name, inputs);
const subtract = (inputs, { name } = {}) => layer({ type: 'subtract' }, name, inputs);
const multiply = (inputs, { name } = {}) => layer({ type: 'multiply' }, name, inputs);
const concatenate = (inputs, axis, { name } = {}) => layer({ type: 'concatenate', axis }, name, inputs);

function layer(attrs, name, inputs) {
  const l = { ...attrs };
  if (name !== undefined) l.name = name;
  if (inputs !== undefined) l.inputs = [...inputs];
  return l;
}

// ------------------------------------------------------------------ initialisers (flax.linen.initializers)

// jax.random.truncated_normal(-2, 2): jax-js has none (nor erfinv), so out-of-range draws are
// redrawn from fresh keys, three times, then clipped (a 4e-6 chance per element).
function truncatedNormal(key, shape) {
  const keys = random.split(key, 4);
  let z = random.normal(keys.ref.slice(0), shape);
  for (let i = 1; i < 4; i++) z = np.where(np.abs(z.ref).lessEqual(2), z, random.normal(keys.ref.slice(i), shape));
  keys.dispose();
  return np.clip(z, -2, 2);
}

// lecun_normal = variance_scaling(1.0, "fan_in", "truncated_normal"): the stddev is corrected
// for the truncation to [-2, 2], as Flax does.
function lecunNormal(key, [fanIn, fanOut]) {
  const stddev = Math.sqrt(1 / fanIn) / 0.87962566103423978;
  return truncatedNormal(key, [fanIn, fanOut]).mul(stddev);
}

// ------------------------------------------------------------------ modules

// type -> {init?(key, layer, input arrays) -> params, apply(layer, params, input arrays) -> array}.
// apply consumes its inputs and params; init only reads shapes.
const MODULES = {
  Dense: {
    init: (key, l, [x]) => {
      const p = { kernel: lecunNormal(key, [x.shape[x.shape.length - 1], l.features]) };
      if (l.use_bias) p.bias = np.zeros([l.features]); // Flax's zeros init
      return p;
    },
    // flax.linen.Dense: dot_general over the last axis of x with kernel [in, out], + bias.
    apply: (l, p, [x]) => {
      const y = np.matmul(x, p.kernel);
      return l.use_bias ? y.add(p.bias) : y;
    },
  },
  fn: { apply: (l, p, [x]) => FUNCTIONS[l.fn][0](x, l) },
  add: { apply: (l, p, [a, b]) => np.add(a, b) },
  subtract: { apply: (l, p, [a, b]) => np.subtract(a, b) },
  multiply: { apply: (l, p, [a, b]) => np.multiply(a, b) },
  concatenate: { apply: (l, p, xs) => np.concatenate(xs, l.axis) },
};

// Flax module types jax-js has no stock equivalent of: the stream's "composed" notes. The
// functions are jax-js's own nn.* and the operators its own numpy: stock.
const COMPOSED = {
  Dense: 'Dense: jax-js has no Flax; flax.linen.Dense is composed as jnp.matmul(x, kernel) + bias',
};

// "nn.relu" -> "relu", "Dense" -> "Dense": the stem of Flax-style auto names.
const stem = (l) => (l.type === 'fn' ? l.fn.replace(/^.*\./, '') : l.type);

class Model {
  /**
   * layers: module descriptions in call order (Dense(...), fn(...), add([...]), ...).
   * inputs: names of the model's inputs (default ["x"]); outputs: names of the values it
   * returns (default: the last layer).
   */
  constructor(layers, { inputs = ['x'], outputs } = {}) {
    const counts = {};
    const defined = new Set(inputs);
    let previous = inputs.length === 1 ? inputs[0] : null;
    this.modules = layers.map((l, i) => {
      if (!MODULES[l.type]) throw new Error(`layers[${i}]: unknown module type ${JSON.stringify(l.type)} (known: ${Object.keys(MODULES).join(', ')})`);
      const s = stem(l);
      // As Flax's autonaming: only unnamed modules advance their type's counter.
      const name = l.name ?? `${s}_${counts[s] ?? 0}`;
      if (l.name === undefined) counts[s] = (counts[s] ?? 0) + 1;
      if (defined.has(name)) throw new Error(`layers[${i}]: name ${JSON.stringify(name)} is already defined`);
      const ins = l.inputs ?? (previous !== null ? [previous] : null);
      if (!ins) throw new Error(`layers[${i}] (${name}): give its inputs (the model has ${inputs.length} inputs)`);
      for (const n of ins) if (!defined.has(n)) throw new Error(`layers[${i}] (${name}): input ${JSON.stringify(n)} is not defined before it`);
      defined.add(name);
      previous = name;
      const { type, name: _name, inputs: _ins, ...attrs } = l;
      return { type, name, ...attrs, ...(l.inputs ? { inputs: [...l.inputs] } : {}), _inputs: ins };
    });
    this.inputNames = [...inputs];
    this.outputNames = outputs ? [...outputs] : [this.modules[this.modules.length - 1].name];
    for (const n of this.outputNames) if (!defined.has(n)) throw new Error(`outputs: ${JSON.stringify(n)} is not defined`);
  }

  /** The stream's `model.modules`: descriptions without internal fields. */
  describe() {
    return this.modules.map(({ _inputs, ...l }) => l);
  }

  /** Flax's model.init: runs the model once on example inputs and returns {params: {...}}. */
  init(key, ...inputs) {
    const withParams = this.modules.filter((l) => MODULES[l.type].init);
    const keys = random.split(key, Math.max(withParams.length, 1));
    const params = {};
    let k = 0;
    this._run(
      null,
      inputs,
      (l, xs) => {
        if (!MODULES[l.type].init) return undefined;
        const p = MODULES[l.type].init(keys.ref.slice(k++), l, xs);
        setPath(params, l.name, p);
        return tree.ref(p);
      },
      false
    ).forEach((y) => y.dispose());
    keys.dispose();
    return { params };
  }

  /** Flax's model.apply(variables, ...inputs): the output, or an array of them. */
  apply(variables, ...inputs) {
    const outs = this._run(variables, inputs, null, false);
    return outs.length === 1 ? outs[0] : outs;
  }

  /** As apply with capture_intermediates: [output(s), {module name: its output}]. */
  applyWithIntermediates(variables, ...inputs) {
    const [outs, inter] = this._run(variables, inputs, null, true);
    return [outs.length === 1 ? outs[0] : outs, inter];
  }

  // Evaluates the module list, keeping jax-js's move semantics: every value is consumed by its
  // last use, earlier uses take a .ref.
  _run(variables, inputs, initFn, keepIntermediates) {
    if (inputs.length !== this.inputNames.length)
      throw new Error(`the model takes ${this.inputNames.length} inputs, got ${inputs.length}`);
    const uses = new Map();
    const use = (n) => uses.set(n, (uses.get(n) ?? 0) + 1);
    for (const l of this.modules) l._inputs.forEach(use);
    this.outputNames.forEach(use);
    if (keepIntermediates) this.modules.forEach((l) => use(l.name));

    const values = new Map();
    const put = (n, v) => {
      if (uses.get(n)) values.set(n, v);
      else v.dispose(); // never read
    };
    const take = (n) => {
      const left = uses.get(n) - 1;
      uses.set(n, left);
      return left > 0 ? values.get(n).ref : values.get(n);
    };
    this.inputNames.forEach((n, i) => put(n, inputs[i]));
    const params = variables ? variables.params : null;
    for (const l of this.modules) {
      const xs = l._inputs.map(take);
      const p = initFn ? initFn(l, xs) : MODULES[l.type].init ? getPath(params, l.name) : undefined;
      put(l.name, MODULES[l.type].apply(l, p, xs));
    }
    const outs = this.outputNames.map(take);
    if (!keepIntermediates) return outs;
    const inter = {};
    for (const l of this.modules) inter[l.name] = take(l.name);
    return [outs, inter];
  }
}

// Flax module paths ("Block_0/Dense_0") are nested dicts in the params pytree.
function setPath(obj, name, value) {
  const parts = name.split('/');
  for (const p of parts.slice(0, -1)) obj = obj[p] ??= {};
  obj[parts[parts.length - 1]] = value;
}

function getPath(obj, name) {
  for (const p of name.split('/')) {
    if (!obj || !(p in obj)) throw new Error(`params: no entry for module "${name}"`);
    obj = obj[p];
  }
  return obj; // apply consumes its variables: handed over, not referenced
}

// ------------------------------------------------------------------ capture

class Stream {
  constructor(doc, tensors) {
    this.doc = doc;
    this.tensors = tensors;
  }
  toBytes() {
    return pbstream.encodeFrame(this.doc, this.tensors);
  }
  write(file) {
    fs.writeFileSync(file, this.toBytes());
  }
}

// An owned copy of an array's values in the stream's tensor form (leaves `a` alive).
async function toStream(a) {
  return { data: await a.ref.data(), shape: [...a.shape] };
}

// {params: {Dense_0: {kernel}}} -> [["params/Dense_0/kernel", array]], as
// flax.traverse_util.flatten_dict(variables, sep="/").
function flattenVariables(variables, prefix = '') {
  if (variables instanceof jax.Array) return [[prefix, variables]];
  return Object.keys(variables).flatMap((k) => flattenVariables(variables[k], prefix ? `${prefix}/${k}` : k));
}

/**
 * Captures a model as a stream: runs the forward pass jit-compiled on `inputs` (the native
 * outputs) and, with taps, once more with intermediates. Consumes nothing.
 *
 * model: a Model, or any {modules (stream descriptions), inputNames, outputNames,
 *   apply(variables, ...inputs), applyWithIntermediates?(variables, ...inputs)} written by hand
 *   in the same dialect (`modules` must then describe exactly what `apply` computes).
 */
async function capture({ model, variables, inputs, modelId, taps = true }) {
  if (!Array.isArray(inputs) || !inputs.length) throw new Error(`${modelId}: inputs must be a non-empty array of jax-js arrays`);
  const modules = typeof model.describe === 'function' ? model.describe() : model.modules;
  const tensors = {};
  const put = (name, t) => {
    if (name in tensors) throw new Error(`${modelId}: tensor name "${name}" is used twice`);
    tensors[name] = t;
  };
  for (const [name, a] of flattenVariables(variables)) put(name, await toStream(a));
  const inputNames = inputs.map((_, i) => `input.${i}`);
  for (let i = 0; i < inputs.length; i++) put(inputNames[i], await toStream(inputs[i]));

  const forward = jax.jit((v, ...xs) => model.apply(v, ...xs));
  let outs = forward(tree.ref(variables), ...inputs.map((x) => x.ref));
  outs = Array.isArray(outs) ? outs : [outs];
  const outputNames = outs.map((_, i) => `output.${i}`);
  for (let i = 0; i < outs.length; i++) put(outputNames[i], { data: await outs[i].data(), shape: [...outs[i].shape] });
  forward.dispose();

  const tapMap = {};
  if (taps && model.applyWithIntermediates) {
    const withInter = jax.jit((v, ...xs) => model.applyWithIntermediates(v, ...xs)[1]);
    const inter = withInter(tree.ref(variables), ...inputs.map((x) => x.ref));
    for (const [name, a] of Object.entries(inter)) {
      tapMap[name] = `tap.${name}`;
      put(tapMap[name], { data: await a.data(), shape: [...a.shape] });
    }
    withInter.dispose();
  }

  const doc = pbstream.streamDoc({
    planet: PLANET, planetVersion: PLANET_VERSION, engine: ENGINE, modelId,
    model: { format: 'flax.linen', modules, inputs: [...model.inputNames], outputs: [...model.outputNames] },
    inputs: inputNames, expected: outputNames, taps: tapMap,
  });
  const composed = [...new Set(modules.map((l) => COMPOSED[l.type]).filter(Boolean))];
  if (composed.length) doc.composed = composed;
  return new Stream(doc, tensors);
}

module.exports = {
  PLANET, ENGINE, PLANET_VERSION, FUNCTIONS, MODULES, COMPOSED,
  ready, Dense, fn, add, subtract, multiply, concatenate, Model, lecunNormal, truncatedNormal,
  capture, Stream, flattenVariables, jax,
};
