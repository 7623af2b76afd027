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
 * them as Flax's compact modules do (Dense_0, Conv_0, ...; functions relu_0, max_pool_0, ...)
 * and follows Sequential order unless a layer names its `inputs` (residual adds, concatenations).
 * Spatial values are channels-last (N, spatial..., C) and conv kernels [k..., in/groups, out],
 * as in Flax; jax-js's convolutions and windows are channels-first only, so the modules
 * transpose around them internally (the stream carries Flax's layouts only).
 *
 * Variables are Flax's collections: {params: {...}, batch_stats: {...}} (BatchNorm's running
 * statistics). apply() is inference (BatchNorm uses its running statistics); applyTrain() is
 * Flax's apply(..., mutable=['batch_stats']) in training mode.
 *
 * jax-js arrays are reference-counted and ops consume their arguments: init/apply consume the
 * arrays they are given (pass x.ref to keep x); capture() consumes nothing.
 */

const fs = require('fs');
const path = require('path');
const pbstream = require(path.join(__dirname, '..', '..', '..', 'capture', 'js', 'pbstream.js'));

// jax-js's np.einsum uses ES2025 iterator helpers (Iterator.prototype.map, filter, toArray)
// that Node 20 lacks; the same generators, only where missing.
{
  const P = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()));
  if (!P.map) {
    P.map = function* map(f) { let i = 0; for (const v of this) yield f(v, i++); };
    P.filter = function* filter(f) { let i = 0; for (const v of this) if (f(v, i++)) yield v; };
    P.toArray = function toArray() { return [...this]; };
  }
}

const jax = require('@jax-js/jax');

const { numpy: np, nn, lax, random, tree } = jax;

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
  // flax.linen.max_pool / avg_pool (count_include_pad: divide by the whole window).
  'nn.max_pool': [(x, a) => pool(x, (w) => np.max(w), -Infinity, a.window_shape, a.strides, a.padding),
    { window_shape: undefined, strides: undefined, padding: 'VALID' }],
  'nn.avg_pool': [(x, a) => avgPool_(x, a), { window_shape: undefined, strides: undefined, padding: 'VALID', count_include_pad: true }],
};

function avgPool_(x, a) {
  const sum = (w) => np.sum(w);
  if (a.count_include_pad) return pool(x, sum, 0, a.window_shape, a.strides, a.padding).div(a.window_shape.reduce((p, q) => p * q, 1));
  // Flax divides by the same pool over ones: the count of real (unpadded) elements per window.
  const ones = np.onesLike(x.ref);
  return pool(x, sum, 0, a.window_shape, a.strides, a.padding).div(pool(ones, sum, 0, a.window_shape, a.strides, a.padding));
}

// ------------------------------------------------------------------ layer constructors

function Dense(features, { useBias = true, name, inputs } = {}) {
  if (!Number.isInteger(features) || features <= 0) throw new Error(`Dense: features must be a positive integer, got ${features}`);
  return layer({ type: 'Dense', features, use_bias: !!useBias }, name, inputs);
}

// flax.linen.DenseGeneral(features: int or list, axis: int or list = -1): contracts x's `axis`
// with the kernel [x.shape[axis]..., features...]; bias [features...]. batch_dims is not offered.
function DenseGeneral(features, { axis = -1, useBias = true, name, inputs } = {}) {
  const fs = Number.isInteger(features) ? features : [...features];
  const ok = (v) => Number.isInteger(v) && v > 0;
  if (!(Number.isInteger(fs) ? ok(fs) : fs.length && fs.every(ok))) throw new Error(`DenseGeneral: features must be a positive int or a list of them, got ${JSON.stringify(features)}`);
  return layer({ type: 'DenseGeneral', features: fs, axis: Number.isInteger(axis) ? axis : [...axis], batch_dims: [], use_bias: !!useBias }, name, inputs);
}

// flax.linen.Einsum(shape, einsum_str, use_bias): jnp.einsum(einsum_str, x, kernel) + bias, the
// bias one dim per output index of the kernel (Flax's _get_bias_shape).
function Einsum(shape, einsumStr, { useBias = true, name, inputs } = {}) {
  if (!Array.isArray(shape) || !shape.length || !shape.every((v) => Number.isInteger(v) && v > 0))
    throw new Error(`Einsum: shape must be a non-empty list of positive ints, got ${JSON.stringify(shape)}`);
  if (typeof einsumStr !== 'string' || !einsumStr.includes('->')) throw new Error(`Einsum: einsum_str must be explicit ("ab,bc->ac"), got ${JSON.stringify(einsumStr)}`);
  return layer({ type: 'Einsum', shape: [...shape], einsum_str: einsumStr, use_bias: !!useBias }, name, inputs);
}

// jnp.einsum(subscripts, a, b) and jnp.matmul(a, b) (a @ b) between two values.
const einsum = (subscripts, inputs, { name } = {}) => layer({ type: 'einsum', subscripts }, name, inputs);
const matmul = (inputs, { name } = {}) => layer({ type: 'matmul' }, name, inputs);

// flax.linen.MultiHeadDotProductAttention(num_heads, qkv_features, out_features, use_bias) and
// SelfAttention, deterministic (inference). `inputs` are the call's arrays, `args` their Flax
// keywords (inputs_q, inputs_k, inputs_v, inputs_kv, mask; default positional q, k, v).
function attentionLayer(type, numHeads, { qkvFeatures = null, outFeatures = null, useBias = true, args, name, inputs } = {}) {
  if (!Number.isInteger(numHeads) || numHeads <= 0) throw new Error(`${type}: num_heads must be a positive integer, got ${numHeads}`);
  const names = args ?? ['inputs_q', 'inputs_k', 'inputs_v'].slice(0, inputs ? inputs.length : 1);
  if (inputs && names.length !== inputs.length) throw new Error(`${type}: ${names.length} argument names for ${inputs.length} inputs`);
  return layer({
    type, num_heads: numHeads, qkv_features: qkvFeatures, out_features: outFeatures, use_bias: !!useBias, dropout_rate: 0.0,
    deterministic: true, broadcast_dropout: true, decode: false, normalize_qk: false, arguments: [...names],
  }, name, inputs);
}
const MultiHeadDotProductAttention = (numHeads, opts) => attentionLayer('MultiHeadDotProductAttention', numHeads, opts);
const SelfAttention = (numHeads, opts) => attentionLayer('SelfAttention', numHeads, opts);

// flax.linen.make_causal_mask(x) and make_attention_mask(query_input, key_input, pairwise_fn),
// float32 masks [batch, 1, L, S].
const makeCausalMask = (inputs, { name } = {}) => layer({ type: 'make_causal_mask', extra_batch_dims: 0, dtype: 'float32' }, name, inputs);
function makeAttentionMask(inputs, { pairwiseFn = 'multiply', name } = {}) {
  if (!PAIRWISE[pairwiseFn]) throw new Error(`make_attention_mask: unknown pairwise_fn ${JSON.stringify(pairwiseFn)} (known: ${Object.keys(PAIRWISE).join(', ')})`);
  return layer({ type: 'make_attention_mask', pairwise_fn: pairwiseFn, extra_batch_dims: 0, dtype: 'float32' }, name, inputs);
}

// A SwiGLU MLP as LLaMA writes it in Flax: down_proj(silu(gate_proj(x)) * up_proj(x)), three
// nn.Dense submodules of a user module `name` (their paths "<name>/gate_proj", ...), reading
// value `input`. Flax has no SwiGLU module: these are the calls Flax records.
function SwiGLU(hidden, features, { input, useBias = false, name = 'SwiGLU_0' } = {}) {
  if (typeof input !== 'string') throw new Error('SwiGLU: give the value it reads ({input: "x"})');
  const n = (s) => `${name}/${s}`;
  return [
    Dense(hidden, { useBias, name: n('gate_proj'), inputs: [input] }),
    fn('nn.silu', {}, { name: n('silu_0') }),
    Dense(hidden, { useBias, name: n('up_proj'), inputs: [input] }),
    multiply([n('silu_0'), n('up_proj')], { name: n('multiply_0') }),
    Dense(features, { useBias, name: n('down_proj') }),
  ];
}

function fn(name, attrs = {}, { inputs, name: nodeName } = {}) {
  const f = FUNCTIONS[name];
  if (!f) throw new Error(`unknown function ${JSON.stringify(name)} (known: ${Object.keys(FUNCTIONS).join(', ')})`);
  for (const k of Object.keys(attrs))
    if (!(k in f[1])) throw new Error(`${name}: unknown attribute ${JSON.stringify(k)} (known: ${Object.keys(f[1]).join(', ') || 'none'})`);
  return layer({ type: 'fn', fn: name, ...f[1], ...attrs }, nodeName, inputs);
}

const seq = (v, n, what) => {
  const out = Number.isInteger(v) ? Array(n).fill(v) : [...v];
  if (out.length !== n || !out.every((e) => Number.isInteger(e) && e > 0))
    throw new Error(`${what}: expected a positive int or ${n} of them, got ${JSON.stringify(v)}`);
  return out;
};

// flax.linen.Conv(features, kernel_size, strides=1, padding='SAME', input_dilation=1,
// kernel_dilation=1, feature_group_count=1, use_bias=True). padding: 'SAME' | 'VALID' |
// 'SAME_LOWER' | int | [int or [low, high], ...] (one per spatial dim), as Flax takes it.
function Conv(features, kernelSize, { strides = 1, padding = 'SAME', kernelDilation = 1, featureGroupCount = 1, useBias = true, name, inputs } = {}) {
  if (!Number.isInteger(features) || features <= 0) throw new Error(`Conv: features must be a positive integer, got ${features}`);
  const n = Array.isArray(kernelSize) ? kernelSize.length : 0;
  if (n < 1 || n > 3) throw new Error(`Conv: kernel_size must be a list of 1 to 3 ints (Flax rejects an int), got ${JSON.stringify(kernelSize)}`);
  return layer({
    type: 'Conv', features, kernel_size: seq(kernelSize, n, 'Conv kernel_size'), strides: seq(strides, n, 'Conv strides'),
    padding: clonePadding(padding), input_dilation: Array(n).fill(1), kernel_dilation: seq(kernelDilation, n, 'Conv kernel_dilation'),
    feature_group_count: featureGroupCount, use_bias: !!useBias,
  }, name, inputs);
}

// flax.linen.ConvTranspose(features, kernel_size, strides=1, padding='SAME', kernel_dilation=1,
// use_bias=True, transpose_kernel=False): lax.conv_transpose. kernel_size may be an int (1-D),
// as Flax takes it; padding 'SAME' | 'VALID' | int | [int or [low, high], ...].
function ConvTranspose(features, kernelSize, { strides = 1, padding = 'SAME', kernelDilation = 1, useBias = true, transposeKernel = false, name, inputs } = {}) {
  if (!Number.isInteger(features) || features <= 0) throw new Error(`ConvTranspose: features must be a positive integer, got ${features}`);
  const ks = Number.isInteger(kernelSize) ? [kernelSize] : kernelSize;
  const n = Array.isArray(ks) ? ks.length : 0;
  if (n < 1 || n > 3) throw new Error(`ConvTranspose: kernel_size must be an int or a list of 1 to 3 ints, got ${JSON.stringify(kernelSize)}`);
  return layer({
    type: 'ConvTranspose', features, kernel_size: seq(ks, n, 'ConvTranspose kernel_size'), strides: seq(strides, n, 'ConvTranspose strides'),
    padding: clonePadding(padding), kernel_dilation: seq(kernelDilation, n, 'ConvTranspose kernel_dilation'),
    use_bias: !!useBias, transpose_kernel: !!transposeKernel,
  }, name, inputs);
}

const clonePadding = (p) => (Array.isArray(p) ? p.map((e) => (Array.isArray(e) ? [...e] : e)) : p);

// flax.linen.BatchNorm over the last axis. Streams are inference captures: use_running_average
// is true (apply() normalises with batch_stats); applyTrain() is Flax's training mode.
function BatchNorm({ momentum = 0.99, epsilon = 1e-5, useBias = true, useScale = true, name, inputs } = {}) {
  return layer({ type: 'BatchNorm', use_running_average: true, axis: -1, momentum, epsilon, use_bias: useBias, use_scale: useScale }, name, inputs);
}

// flax.linen.LayerNorm / RMSNorm over the last axis (Flax's defaults: epsilon 1e-6).
const LayerNorm = ({ epsilon = 1e-6, useBias = true, useScale = true, name, inputs } = {}) =>
  layer({ type: 'LayerNorm', epsilon, use_bias: useBias, use_scale: useScale }, name, inputs);
const RMSNorm = ({ epsilon = 1e-6, useScale = true, name, inputs } = {}) => layer({ type: 'RMSNorm', epsilon, use_scale: useScale }, name, inputs);

// flax.linen.GroupNorm(num_groups=32, group_size=None, epsilon=1e-6, use_bias, use_scale): the
// channels (last axis) split into num_groups groups (or groups of group_size), each normalised
// over every non-batch axis; scale and bias per channel. Exactly one of the two is given.
function GroupNorm({ numGroups = 32, groupSize = null, epsilon = 1e-6, useBias = true, useScale = true, name, inputs } = {}) {
  if (groupSize !== null) numGroups = null;
  const g = numGroups ?? groupSize;
  if (!Number.isInteger(g) || g <= 0) throw new Error(`GroupNorm: num_groups / group_size must be a positive integer, got ${g}`);
  return layer({ type: 'GroupNorm', num_groups: numGroups, group_size: groupSize, epsilon, use_bias: useBias, use_scale: useScale }, name, inputs);
}

// flax.linen.Embed(num_embeddings, features): integer ids -> rows of embedding [V, D].
const Embed = (numEmbeddings, features, { name, inputs } = {}) =>
  layer({ type: 'Embed', num_embeddings: numEmbeddings, features }, name, inputs);

// flax.linen.Dropout(rate, deterministic): only the deterministic (inference) identity.
function Dropout(rate, { deterministic = true, name, inputs } = {}) {
  if (!deterministic) throw new Error('Dropout: only deterministic (inference) dropout can be captured');
  return layer({ type: 'Dropout', rate, deterministic: true }, name, inputs);
}

// flax.linen.max_pool / avg_pool(inputs, window_shape, strides=None (ones), padding='VALID'):
// functions, named max_pool_0, ...; padding 'SAME' | 'VALID' | [[low, high], ...].
function maxPool(windowShape, { strides, padding = 'VALID', name, inputs } = {}) {
  const n = windowShape.length;
  return layer({ type: 'fn', fn: 'nn.max_pool', window_shape: seq(windowShape, n, 'max_pool window_shape'),
    strides: seq(strides ?? 1, n, 'max_pool strides'), padding: clonePadding(padding) }, name, inputs);
}
function avgPool(windowShape, { strides, padding = 'VALID', countIncludePad = true, name, inputs } = {}) {
  const n = windowShape.length;
  return layer({ type: 'fn', fn: 'nn.avg_pool', window_shape: seq(windowShape, n, 'avg_pool window_shape'),
    strides: seq(strides ?? 1, n, 'avg_pool strides'), padding: clonePadding(padding), count_include_pad: countIncludePad }, name, inputs);
}

// jnp.mean / jnp.max over axes (global pooling over the spatial axes), x.reshape(shape).
const mean = (axis, { name, inputs } = {}) => layer({ type: 'mean', axis: [...axis], keepdims: false }, name, inputs);
const max = (axis, { name, inputs } = {}) => layer({ type: 'max', axis: [...axis], keepdims: false }, name, inputs);
const reshape = (shape, { name, inputs } = {}) => layer({ type: 'reshape', shape: [...shape] }, name, inputs);

const add = (inputs, { name } = {}) => layer({ type: 'add' }, name, inputs);
const subtract = (inputs, { name } = {}) => layer({ type: 'subtract' }, name, inputs);
const multiply = (inputs, { name } = {}) => layer({ type: 'multiply' }, name, inputs);
const concatenate = (inputs, axis, { name } = {}) => layer({ type: 'concatenate', axis }, name, inputs);

// ------------------------------------------------------------------ recurrent cells and their scans

// flax.linen.SimpleCell / LSTMCell / OptimizedLSTMCell / GRUCell (flax/linen/recurrent.py):
// descriptions of the cell an RNN scans, with Flax's attribute names and defaults (gate_fn
// sigmoid, activation_fn tanh, carry_init zeros_init(); SimpleCell residual false). Functions
// are named as the function table spells them ("nn.tanh"); carry_init "zeros" is Flax's
// default, the only one the captures write.
function cellFn(what, name) {
  if (!FUNCTIONS[name]) throw new Error(`${what}: unknown function ${JSON.stringify(name)} (known: ${Object.keys(FUNCTIONS).join(', ')})`);
  return name;
}
function cell(type, features, attrs) {
  if (!Number.isInteger(features) || features <= 0) throw new Error(`${type}: features must be a positive integer, got ${features}`);
  return { type, features, ...attrs, carry_init: 'zeros' };
}
const SimpleCell = (features, { activationFn = 'nn.tanh', residual = false } = {}) =>
  cell('SimpleCell', features, { activation_fn: cellFn('SimpleCell activation_fn', activationFn), residual: !!residual });
const LSTMCell = (features, { gateFn = 'nn.sigmoid', activationFn = 'nn.tanh' } = {}) =>
  cell('LSTMCell', features, { gate_fn: cellFn('LSTMCell gate_fn', gateFn), activation_fn: cellFn('LSTMCell activation_fn', activationFn) });
const OptimizedLSTMCell = (features, { gateFn = 'nn.sigmoid', activationFn = 'nn.tanh' } = {}) =>
  cell('OptimizedLSTMCell', features, { gate_fn: cellFn('OptimizedLSTMCell gate_fn', gateFn), activation_fn: cellFn('OptimizedLSTMCell activation_fn', activationFn) });
const GRUCell = (features, { gateFn = 'nn.sigmoid', activationFn = 'nn.tanh' } = {}) =>
  cell('GRUCell', features, { gate_fn: cellFn('GRUCell gate_fn', gateFn), activation_fn: cellFn('GRUCell activation_fn', activationFn) });

const CELLS = ['SimpleCell', 'LSTMCell', 'OptimizedLSTMCell', 'GRUCell'];
const checkCell = (c, what) => {
  if (!c || !CELLS.includes(c.type)) throw new Error(`${what}: expected a cell (${CELLS.join(', ')}), got ${JSON.stringify(c)}`);
  return JSON.parse(JSON.stringify(c));
};

// flax.linen.RNN(cell, time_major=False, return_carry=False, reverse=False, keep_order=False):
// scans the cell over the time axis. Its module inputs are the sequence, then (optionally) the
// initial carry's leaves in Flax's order (LSTM cells (c, h), the others h); without them the
// carry starts as the cell's carry_init (zeros). With return_carry the final carry's leaves are
// values too: "<name>:carry/c", "<name>:carry/h" (LSTM cells) or "<name>:carry".
function RNN(cell_, { timeMajor = false, returnCarry = false, reverse = false, keepOrder = false, name, inputs } = {}) {
  return layer({ type: 'RNN', cell: checkCell(cell_, 'RNN cell'), time_major: !!timeMajor, return_carry: !!returnCarry,
    reverse: !!reverse, keep_order: !!keepOrder, unroll: 1 }, name, inputs);
}

// flax.linen.Bidirectional(forward_rnn, backward_rnn, merge_fn=_concatenate, time_major=False,
// return_carry=False): forward_rnn with reverse=False, backward_rnn with reverse=True and
// keep_order=True (Bidirectional sets them, and time_major, at call time), merged by merge_fn:
// "concatenate" (Flax's default, [forward, backward] on the last axis) or "add" (jnp.add). The
// directions' outputs are values "<name>/forward_rnn" and "<name>/backward_rnn"; inputs: the
// sequence, then the initial carries' leaves (forward's, then backward's); with return_carry
// the final carries "<name>:carry/forward_rnn[/c|/h]", "<name>:carry/backward_rnn[/c|/h]".
const MERGE_FNS = { concatenate: (a, b) => np.concatenate([a, b], -1), add: (a, b) => np.add(a, b) };
function Bidirectional(forwardRnn, backwardRnn, { mergeFn = 'concatenate', timeMajor = false, returnCarry = false, name, inputs } = {}) {
  if (!MERGE_FNS[mergeFn]) throw new Error(`Bidirectional merge_fn: expected ${Object.keys(MERGE_FNS).join(' or ')}, got ${JSON.stringify(mergeFn)}`);
  const nested = (r, what) => {
    if (!r || r.type !== 'RNN') throw new Error(`Bidirectional ${what}: expected an RNN(...), got ${JSON.stringify(r)}`);
    return { type: 'RNN', cell: checkCell(r.cell, `Bidirectional ${what}.cell`), unroll: r.unroll ?? 1 };
  };
  return layer({ type: 'Bidirectional', forward_rnn: nested(forwardRnn, 'forward_rnn'), backward_rnn: nested(backwardRnn, 'backward_rnn'),
    merge_fn: mergeFn, time_major: !!timeMajor, return_carry: !!returnCarry }, name, inputs);
}

// A recurrent module's cells get their Flax path as "name": a cell passed to nn.RNN (or made in
// setup) is adopted as the RNN's attribute "cell" ("RNN_0/cell", "Bidirectional_0/forward_rnn/
// cell"), where its params live. (Real Flax names a cell made inline in a compact method after
// that method's module, "LSTMCell_0"; jax-js keeps the adopted layout.)
function nameCells(l) {
  const named = (c, path) => {
    if (c.name !== undefined && c.name !== path) throw new Error(`${l.name}: jax-js keeps a cell's params at its adopted path ${path}, not ${c.name}`);
    const { type, name: _n, ...rest } = c;
    return { type, name: path, ...rest };
  };
  if (l.type === 'RNN') l.cell = named(l.cell, `${l.name}/cell`);
  if (l.type === 'Bidirectional')
    for (const d of ['forward_rnn', 'backward_rnn']) l[d] = { ...l[d], cell: named(l[d].cell, `${l.name}/${d}/cell`) };
  return l;
}

// The carry's leaves of a cell, in Flax's pytree order: LSTM cells carry (c, h).
const carryLeaves = (c) => (c.type === 'LSTMCell' || c.type === 'OptimizedLSTMCell' ? ['c', 'h'] : ['']);
const leafName = (prefix, leaf) => (leaf ? `${prefix}/${leaf}` : prefix);

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
// for the truncation to [-2, 2], as Flax does. fan_in = shape[-2] x the receptive field (the
// leading dims of a conv kernel [k..., in, out]).
function lecunNormal(key, shape) {
  const fanIn = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const stddev = Math.sqrt(1 / fanIn) / 0.87962566103423978;
  return truncatedNormal(key, shape).mul(stddev);
}

// Embed's default: variance_scaling(1.0, "fan_in", "normal", out_axis=0) on [V, D]: N(0, 1/D).
const embedInit = (key, [v, d]) => random.normal(key, [v, d]).mul(Math.sqrt(1 / d));

// initializers.orthogonal() (the recurrent kernels' default): Q of the QR decomposition of a
// normal draw, signs fixed so diag(R) > 0 (the unique such Q: Flax's Q * sign(diag(R))). jax-js
// has no QR: modified Gram-Schmidt in float64 over the draw's columns gives that Q. Shape
// [rows, cols] with the draw [max, min] as Flax's, transposed back when rows < cols.
function orthogonal(key, [rows, cols]) {
  const [m, n] = rows < cols ? [cols, rows] : [rows, cols];
  const draw = random.normal(key, [m, n]);
  const a = Float64Array.from(draw.dataSync()); // row-major [m, n]
  for (let j = 0; j < n; j++) {
    for (let k = 0; k < j; k++) {
      let d = 0;
      for (let i = 0; i < m; i++) d += a[i * n + k] * a[i * n + j];
      for (let i = 0; i < m; i++) a[i * n + j] -= d * a[i * n + k];
    }
    let norm = 0;
    for (let i = 0; i < m; i++) norm += a[i * n + j] ** 2;
    norm = Math.sqrt(norm);
    for (let i = 0; i < m; i++) a[i * n + j] /= norm;
  }
  const q = rows < cols ? Array.from({ length: rows * cols }, (_, t) => a[(t % cols) * n + Math.floor(t / cols)]) : Array.from(a);
  return np.array(q, { shape: [rows, cols] });
}

// ------------------------------------------------------------------ layout helpers

const range = (a, b) => Array.from({ length: b - a }, (_, i) => a + i);
// [N, spatial..., C] <-> [N, C, spatial...] (jax-js convolutions and windows are channels-first).
const toFirst = (x) => np.transpose(x, [0, x.ndim - 1, ...range(1, x.ndim - 1)]);
const toLast = (x) => np.transpose(x, [0, ...range(2, x.ndim), 1]);

// lax.padtype_to_pads: "SAME" puts the odd element at the end, "SAME_LOWER" at the beginning.
function explicitPads(padding, inSpatial, window, strides, dilations) {
  const n = window.length;
  if (padding === 'VALID') return Array.from({ length: n }, () => [0, 0]);
  if (padding === 'SAME' || padding === 'SAME_LOWER')
    return inSpatial.map((size, i) => {
      const out = Math.ceil(size / strides[i]);
      const total = Math.max((out - 1) * strides[i] + (window[i] - 1) * dilations[i] + 1 - size, 0);
      const small = Math.floor(total / 2);
      return padding === 'SAME' ? [small, total - small] : [total - small, small];
    });
  if (Number.isInteger(padding)) return Array.from({ length: n }, () => [padding, padding]);
  if (Array.isArray(padding) && padding.length === n) return padding.map((p) => (Number.isInteger(p) ? [p, p] : [p[0], p[1]]));
  throw new Error(`padding: expected "SAME", "VALID", "SAME_LOWER", an int or ${n} pairs, got ${JSON.stringify(padding)}`);
}

// flax.linen.pooling.pool over channels-last x: lax.reduce_window with padding `init` (-inf for
// max, 0 for sums). jax-js's reduceWindow pools the trailing dims without padding: pad
// explicitly (np.pad pads zeros; -inf goes in through a mask) over the channels-first view.
function pool(x, reduce, init, window, strides, padding) {
  const inSpatial = x.shape.slice(1, -1);
  const pads = explicitPads(padding, inSpatial, window, strides, window.map(() => 1));
  let xf = toFirst(x);
  if (pads.some(([a, b]) => a || b)) {
    const width = [[0, 0], [0, 0], ...pads];
    if (init === 0) xf = np.pad(xf, width);
    else xf = np.where(np.pad(np.onesLike(xf.ref), width).greater(0), np.pad(xf, width), init);
  }
  return toLast(lax.reduceWindow(xf, reduce, window, strides));
}

// Flax's _normalize: y = (x - mean) * (rsqrt(var + eps) * scale) + bias, scale and bias optional.
// An absent epsilon is the module's Flax default (BatchNorm 1e-5, LayerNorm / RMSNorm 1e-6).
function normalize(l, p, x, mean, variance) {
  const eps = l.epsilon ?? (l.type === 'BatchNorm' ? 1e-5 : 1e-6);
  let mul = np.reciprocal(np.sqrt(variance.add(eps)));
  if (l.use_scale) mul = mul.mul(p.scale);
  const y = mean === null ? x.mul(mul) : x.sub(mean).mul(mul);
  return l.use_bias ? y.add(p.bias) : y;
}

// Flax's _compute_stats with use_fast_variance: mean and max(mean(x²) - mean², 0) over `axes`.
function stats(x, axes, keepdims) {
  const mu = np.mean(x.ref, axes, { keepdims });
  const mu2 = np.mean(np.square(x), axes, { keepdims });
  return [mu.ref, np.maximum(mu2.sub(np.square(mu)), 0)];
}

// ------------------------------------------------------------------ modules

// type -> {init?(key, layer, input arrays) -> {params?, batch_stats?},
//          apply(layer, variables, input arrays) -> array,
//          train?(layer, variables, input arrays) -> [array, new batch_stats]}.
// apply/train consume their inputs and variables (the module's own {params, batch_stats}); init
// only reads shapes. Without train, training mode is apply.
const MODULES = {
  Dense: {
    init: (key, l, [x]) => {
      const p = { kernel: lecunNormal(key, [x.shape[x.shape.length - 1], l.features]) };
      if (l.use_bias) p.bias = np.zeros([l.features]); // Flax's zeros init
      return { params: p };
    },
    // flax.linen.Dense: dot_general over the last axis of x with kernel [in, out], + bias.
    apply: (l, { params: p }, [x]) => {
      const y = np.matmul(x, p.kernel);
      return l.use_bias ? y.add(p.bias) : y;
    },
  },
  DenseGeneral: {
    // Flax's kernel_init_wrap: lecun_normal over the flat [prod(in), prod(features)], reshaped.
    init: (key, l, [x]) => {
      const { axes, features } = denseGeneralDims(l, x.ndim);
      const inShape = axes.map((a) => x.shape[a]);
      const prod = (v) => v.reduce((p, q) => p * q, 1);
      const p = { kernel: np.reshape(lecunNormal(key, [prod(inShape), prod(features)]), [...inShape, ...features]) };
      if (l.use_bias) p.bias = np.zeros(features);
      return { params: p };
    },
    // lax.dot_general(x, kernel, ((axis, leading kernel dims), ((), ()))): the contracted axes
    // moved last, flattened, one matmul, then x's other dims followed by the features.
    apply: (l, { params: p }, [x]) => {
      const { axes, features } = denseGeneralDims(l, x.ndim);
      const rest = range(0, x.ndim).filter((d) => !axes.includes(d));
      const keep = rest.map((d) => x.shape[d]);
      const inSize = axes.reduce((q, a) => q * x.shape[a], 1);
      const outSize = features.reduce((q, f) => q * f, 1);
      const xm = np.reshape(np.transpose(x, [...rest, ...axes]), [...keep, inSize]);
      const y = np.reshape(np.matmul(xm, np.reshape(p.kernel, [inSize, outSize])), [...keep, ...features]);
      return l.use_bias ? y.add(p.bias) : y;
    },
  },
  Conv: {
    init: (key, l, [x]) => {
      const p = { kernel: lecunNormal(key, [...l.kernel_size, x.shape[x.ndim - 1] / l.feature_group_count, l.features]) };
      if (l.use_bias) p.bias = np.zeros([l.features]);
      return { params: p };
    },
    // lax.conv_general_dilated with Flax's dimension numbers (NHWC, HWIO), written as jax-js
    // takes it: NCHW input, OIHW kernel, output transposed back to NHWC.
    apply: (l, { params: p }, [x]) => {
      const n = l.kernel_size.length;
      const w = np.transpose(p.kernel, [n + 1, n, ...range(0, n)]);
      const y = toLast(lax.convGeneralDilated(toFirst(x), w, l.strides, explicitPadsFor(l, x), {
        rhsDilation: l.kernel_dilation, featureGroupCount: l.feature_group_count,
      }));
      return l.use_bias ? y.add(p.bias) : y;
    },
  },
  ConvTranspose: {
    init: (key, l, [x]) => {
      const cin = x.shape[x.ndim - 1];
      // Flax: kernel_size + (in, features), or (features, in) with transpose_kernel; lecun_normal's
      // fan_in is the receptive field times shape[-2].
      const p = { kernel: lecunNormal(key, [...l.kernel_size, ...(l.transpose_kernel ? [l.features, cin] : [cin, l.features])]) };
      if (l.use_bias) p.bias = np.zeros([l.features]);
      return { params: p };
    },
    // lax.conv_transpose = lax.conv_general_dilated(x, kernel, window_strides 1, pads,
    // lhs_dilation = strides, rhs_dilation = kernel_dilation) with Flax's NHWC / HWIO, written
    // as jax-js takes it (NCHW, OIHW). transpose_kernel flips the spatial axes and swaps I / O.
    apply: (l, { params: p }, [x]) => {
      const n = l.kernel_size.length;
      let k = p.kernel;
      if (l.transpose_kernel) k = np.flip(np.transpose(k, [...range(0, n), n + 1, n]), range(0, n));
      const w = np.transpose(k, [n + 1, n, ...range(0, n)]);
      const y = toLast(lax.convGeneralDilated(toFirst(x), w, Array(n).fill(1), convTransposePads(l), {
        lhsDilation: l.strides, rhsDilation: l.kernel_dilation,
      }));
      return l.use_bias ? y.add(p.bias) : y;
    },
  },
  BatchNorm: {
    init: (key, l, [x]) => {
      const c = x.shape[x.ndim - 1];
      const params = {};
      if (l.use_scale) params.scale = np.ones([c]);
      if (l.use_bias) params.bias = np.zeros([c]);
      return { params, batch_stats: { mean: np.zeros([c]), var: np.ones([c]) } };
    },
    apply: (l, { params = {}, batch_stats: s }, [x]) => normalize(l, params, x, s.mean, s.var),
    // Training mode: the batch's statistics over every axis but the features, and the running
    // ones moved by momentum: ra = momentum * ra + (1 - momentum) * batch.
    train: (l, { params = {}, batch_stats: s }, [x]) => {
      const [mu, variance] = stats(x.ref, range(0, x.ndim - 1), false);
      const y = normalize(l, params, x, mu.ref, variance.ref);
      const m = l.momentum;
      return [y, { mean: s.mean.mul(m).add(mu.mul(1 - m)), var: s.var.mul(m).add(variance.mul(1 - m)) }];
    },
  },
  LayerNorm: {
    init: (key, l, [x]) => {
      const f = x.shape[x.ndim - 1];
      const params = {};
      if (l.use_scale) params.scale = np.ones([f]);
      if (l.use_bias) params.bias = np.zeros([f]);
      return { params };
    },
    apply: (l, { params = {} }, [x]) => {
      const [mu, variance] = stats(x.ref, [x.ndim - 1], true);
      return normalize(l, params, x, mu, variance);
    },
  },
  GroupNorm: {
    init: (key, l, [x]) => {
      const c = x.shape[x.ndim - 1];
      const params = {};
      if (l.use_scale) params.scale = np.ones([c]);
      if (l.use_bias) params.bias = np.zeros([c]);
      return { params };
    },
    // Flax: x reshaped to [..., groups, group_size], _compute_stats (fast variance) over every axis
    // but the batch and the groups, normalised, back to x's shape, then * scale + bias per channel.
    apply: (l, { params = {} }, [x]) => {
      const c = x.shape[x.ndim - 1];
      const g = l.num_groups ?? c / l.group_size;
      if (!Number.isInteger(g) || c % g) throw new Error(`GroupNorm: ${c} channels do not split into ${g} groups`);
      const shape = [...x.shape];
      const xg = np.reshape(x, [...shape.slice(0, -1), g, c / g]);
      const axes = [...range(1, xg.ndim - 2), xg.ndim - 1];
      const [mu, variance] = stats(xg.ref, axes, true);
      const y = np.reshape(normalize({ ...l, use_scale: false, use_bias: false }, {}, xg, mu, variance), shape);
      const scaled = l.use_scale ? y.mul(params.scale) : y;
      return l.use_bias ? scaled.add(params.bias) : scaled;
    },
  },
  RMSNorm: {
    init: (key, l, [x]) => (l.use_scale ? { params: { scale: np.ones([x.shape[x.ndim - 1]]) } } : { params: {} }),
    // Flax: _compute_stats(use_mean=False) gives var = mean(x²); _normalize without the mean.
    apply: (l, { params = {} }, [x]) =>
      normalize({ ...l, use_bias: false }, params, x.ref, null, np.mean(np.square(x), [x.ndim - 1], { keepdims: true })),
  },
  Embed: {
    init: (key, l) => ({ params: { embedding: embedInit(key, [l.num_embeddings, l.features]) } }),
    apply: (l, { params: p }, [ids]) => np.take(p.embedding, ids, 0),
  },
  Einsum: {
    // Flax's default kernel_init, lecun_normal (fan_in = shape[-2] x the leading dims); bias zeros.
    init: (key, l, [x]) => {
      const p = { kernel: lecunNormal(key, l.shape) };
      if (l.use_bias) p.bias = np.zeros(einsumBias(l).shape);
      return { params: p };
    },
    apply: (l, { params: p }, [x]) => {
      const y = np.einsum(l.einsum_str, x, p.kernel);
      return l.use_bias ? y.add(np.reshape(p.bias, einsumBias(l).broadcast)) : y;
    },
  },
  einsum: { apply: (l, v, [a, b]) => np.einsum(l.subscripts, a, b) },
  matmul: { apply: (l, v, [a, b]) => np.matmul(a, b) },
  MultiHeadDotProductAttention: { values: attentionSteps, init: attentionInit, apply: attentionApply },
  SelfAttention: { values: attentionSteps, init: attentionInit, apply: attentionApply },
  make_causal_mask: {
    // idxs = broadcast_to(arange(L, int32), x.shape); make_attention_mask(idxs, idxs, greater_equal)
    apply: (l, v, [x]) => {
      const shape = [...x.shape];
      x.dispose();
      const idxs = np.broadcastTo(np.arange(shape[shape.length - 1]).astype(np.int32), shape);
      return pairwiseMask(idxs.ref, idxs, 'greater_equal');
    },
  },
  make_attention_mask: { apply: (l, v, [q, k]) => pairwiseMask(q, k, l.pairwise_fn) },
  Dropout: { apply: (l, v, [x]) => x },
  fn: { apply: (l, v, [x]) => FUNCTIONS[l.fn][0](x, l) },
  add: { apply: (l, v, [a, b]) => np.add(a, b) },
  subtract: { apply: (l, v, [a, b]) => np.subtract(a, b) },
  multiply: { apply: (l, v, [a, b]) => np.multiply(a, b) },
  concatenate: { apply: (l, v, xs) => np.concatenate(xs, l.axis) },
  mean: { apply: (l, v, [x]) => np.mean(x, l.axis) },
  max: { apply: (l, v, [x]) => np.max(x, l.axis) },
  reshape: { apply: (l, v, [x]) => np.reshape(x, l.shape) },
};

// ---- attention (flax/linen/attention.py)

// make_attention_mask: pairwise_fn(q[..., :, None], k[..., None, :]), a head axis at -3, as float32.
const PAIRWISE = {
  multiply: (a, b) => np.multiply(a, b), greater_equal: (a, b) => np.greaterEqual(a, b), greater: (a, b) => np.greater(a, b),
  less_equal: (a, b) => np.lessEqual(a, b), less: (a, b) => np.less(a, b), equal: (a, b) => np.equal(a, b), not_equal: (a, b) => np.notEqual(a, b),
};
const pairwiseMask = (q, k, fn_) => np.expandDims(PAIRWISE[fn_](np.expandDims(q, -1), np.expandDims(k, -2)), -3).astype(np.float32);

// Einsum's bias: the kernel's dims of the output indices in the output's order, and its
// broadcast shape (1 where the kernel has no such index).
function einsumBias(l) {
  const eq = l.einsum_str.replace(/ /g, '');
  const [ins, out] = eq.split('->');
  const rhs = ins.split(',')[1];
  const shape = [], broadcast = [];
  for (const c of out) {
    const i = rhs.indexOf(c);
    broadcast.push(i < 0 ? 1 : l.shape[i]);
    if (i >= 0) shape.push(l.shape[i]);
  }
  return { shape, broadcast };
}

// The call's arrays by keyword (as Flax's __call__ resolves them: k defaults to q, v to k).
function attentionArgs(l, xs) {
  const by = {};
  l.arguments.forEach((n, i) => { by[n] = xs[i]; });
  const q = by.inputs_q, k = by.inputs_kv ?? by.inputs_k ?? q, v = by.inputs_kv ?? by.inputs_v ?? k;
  return { q, k, v, mask: by.mask ?? null, by };
}

const attentionDims = (l, q) => {
  const qkv = l.qkv_features ?? q.shape[q.ndim - 1];
  if (qkv % l.num_heads) throw new Error(`${l.type}: qkv_features ${qkv} is not divisible by num_heads ${l.num_heads}`);
  return { heads: l.num_heads, headDim: qkv / l.num_heads, features: l.out_features ?? q.shape[q.ndim - 1] };
};

// DenseGeneral query/key/value (features (heads, head_dim), axis -1) and out (features, axis
// (-2, -1)), initialised as DenseGeneral is: lecun_normal over the flat kernel, bias zeros.
function attentionInit(key, l, xs) {
  const { q, k, v } = attentionArgs(l, xs);
  const { heads, headDim, features } = attentionDims(l, q);
  const keys = random.split(key, 4);
  const dg = (i, x, feats, axis) => MODULES.DenseGeneral.init(keys.ref.slice(i), { features: feats, axis, use_bias: l.use_bias }, [x]).params;
  const p = {
    query: dg(0, q, [heads, headDim], -1), key: dg(1, k, [heads, headDim], -1), value: dg(2, v, [heads, headDim], -1),
    out: dg(3, { ndim: 4, shape: [q.shape[0], q.shape[1], heads, headDim] }, features, [-2, -1]),
  };
  keys.dispose();
  return { params: p };
}

// The steps inside the module, values "<name>/<step>" besides its output (taps with
// intermediates, as Flax's sow would record them; the decoder names its IR values alike): q, k,
// v the DenseGeneral outputs [N, L, heads, head_dim] (the query before its scaling), scores the
// scaled products after the mask [N, heads, Lq, Lk], weights the softmax, context the einsum
// with the values [N, Lq, heads, head_dim] (the out DenseGeneral's input). The out projection is
// the module's own output "<name>".
const ATTENTION_STEPS = ['q', 'k', 'v', 'scores', 'weights', 'context'];
function attentionSteps(l) { return ATTENTION_STEPS.map((s) => `${l.name}/${s}`); }

// Flax's __call__ with dot_product_attention, deterministic: the three DenseGenerals, query /
// sqrt(head_dim), einsum('...qhd,...khd->...hqk'), where(mask, w, finfo(float32).min),
// softmax over the keys, einsum('...hqk,...khd->...qhd'), the out DenseGeneral. Returns [output,
// ...the arrays of attentionSteps] (the very arrays computed, a .ref each).
const F32_MIN = -3.4028234663852886e38;
function attentionApply(l, { params: p }, xs) {
  const { q, by } = attentionArgs(l, xs);
  const { heads, headDim, features } = attentionDims(l, q);
  const dense = (x, params, feats, axis) => MODULES.DenseGeneral.apply({ features: feats, axis, use_bias: l.use_bias }, { params }, [x]);
  // Each array passed is consumed once; k and v default to q (a .ref per extra use).
  const arg = (name) => by[name];
  const kIn = arg('inputs_kv') ?? arg('inputs_k') ?? q.ref;
  const vIn = arg('inputs_kv') ? kIn.ref : arg('inputs_v') ?? (arg('inputs_k') ? kIn.ref : q.ref);
  const query = dense(q, p.query, [heads, headDim], -1);
  const key = dense(kIn, p.key, [heads, headDim], -1);
  const value = dense(vIn, p.value, [heads, headDim], -1);
  const steps = [query.ref, key.ref, value.ref];
  let w = np.einsum('bqhd,bkhd->bhqk', query.div(Math.sqrt(headDim)), key);
  if (by.mask) w = np.where(by.mask.notEqual(0), w, F32_MIN);
  steps.push(w.ref);
  w = nn.softmax(w, -1);
  steps.push(w.ref);
  const x = np.einsum('bhqk,bkhd->bqhd', w, value);
  steps.push(x.ref);
  return [dense(x, p.out, features, [-2, -1]), ...steps];
}

// ---- recurrent cells (flax/linen/recurrent.py): one time step, Flax's arithmetic in Flax's order.
// A cell's params are {<dense name>: {kernel [in, features], bias? [features]}}; the carry is
// the list of its leaves (LSTM cells [c, h], the others [h]). step(cell, p, carry, x) consumes
// carry and x, references p, and returns [new carry, output].

// flax.linen.Dense(features, use_bias) applied to x: dot(x, kernel) then + bias.
const denseOf = (x, d, useBias) => {
  const y = np.matmul(x, d.kernel.ref);
  return useBias ? y.add(d.bias.ref) : y;
};
const fnOf = (name) => (x) => FUNCTIONS[name][0](x, FUNCTIONS[name][1]);

const CELL_STEPS = {
  // new = act(i(x) + h(carry) [+ carry]); i has the bias, h none.
  SimpleCell: (c, p, [h], x) => {
    let y = denseOf(x, p.i, true).add(denseOf(h.ref, p.h, false));
    if (c.residual) y = y.add(h.ref);
    h.dispose();
    y = fnOf(c.activation_fn)(y);
    return [[y.ref], y];
  },
  // gate k = fn(i<k>(x) + h<k>(h)): input denses without bias, hidden ones with it.
  LSTMCell: (c, p, [cPrev, h], x) => {
    const gate = (k, fn) => fnOf(fn)(denseOf(x.ref, p[`i${k}`], false).add(denseOf(h.ref, p[`h${k}`], true)));
    const i = gate('i', c.gate_fn), f = gate('f', c.gate_fn), g = gate('g', c.activation_fn), o = gate('o', c.gate_fn);
    tree.dispose([x, h]);
    const newC = f.mul(cPrev).add(i.mul(g));
    const newH = o.mul(fnOf(c.activation_fn)(newC.ref));
    return [[newC, newH.ref], newH];
  },
  // The same parameters, the four kernels concatenated into one matmul per side, split back:
  // gate k = fn(dense_h[k] + dense_i[k]).
  OptimizedLSTMCell: (c, p, [cPrev, h], x) => {
    const ks = ['i', 'f', 'g', 'o'];
    const dh = np.matmul(h.ref, np.concatenate(ks.map((k) => p[`h${k}`].kernel.ref), -1)).add(np.concatenate(ks.map((k) => p[`h${k}`].bias.ref), -1));
    const di = np.matmul(x, np.concatenate(ks.map((k) => p[`i${k}`].kernel.ref), -1));
    h.dispose();
    const [hi, hf, hg, ho] = np.split(dh, 4, -1);
    const [ii, if_, ig, io] = np.split(di, 4, -1);
    const gf = fnOf(c.gate_fn), af = fnOf(c.activation_fn);
    const i = gf(hi.add(ii)), f = gf(hf.add(if_)), g = af(hg.add(ig)), o = gf(ho.add(io));
    const newC = f.mul(cPrev).add(i.mul(g));
    const newH = o.mul(af(newC.ref));
    return [[newC, newH.ref], newH];
  },
  // r, z = gate(i<k>(x) + h<k>(h)) (ir, iz with bias, hr, hz without);
  // n = act(in(x) + r * hn(h)) (hn with its bias: inside the reset product); h' = (1 - z) n + z h.
  GRUCell: (c, p, [h], x) => {
    const gf = fnOf(c.gate_fn);
    const r = gf(denseOf(x.ref, p.ir, true).add(denseOf(h.ref, p.hr, false)));
    const z = gf(denseOf(x.ref, p.iz, true).add(denseOf(h.ref, p.hz, false)));
    const n = fnOf(c.activation_fn)(denseOf(x, p.in, true).add(r.mul(denseOf(h.ref, p.hn, true))));
    const newH = np.subtract(1.0, z.ref).mul(n).add(z.mul(h));
    return [[newH.ref], newH];
  },
};

// A cell's params as Flax initialises them: input kernels lecun_normal [in, features],
// recurrent kernels orthogonal [features, features], biases zeros.
function cellInit(key, c, inFeatures) {
  const H = c.features;
  const specs = { // dense name -> [recurrent?, use_bias]
    SimpleCell: { i: [false, true], h: [true, false] },
    LSTMCell: { ii: [false, false], if: [false, false], ig: [false, false], io: [false, false], hi: [true, true], hf: [true, true], hg: [true, true], ho: [true, true] },
    GRUCell: { ir: [false, true], iz: [false, true], in: [false, true], hr: [true, false], hz: [true, false], hn: [true, true] },
  };
  const spec = specs[c.type === 'OptimizedLSTMCell' ? 'LSTMCell' : c.type];
  const names = Object.keys(spec);
  const keys = random.split(key, names.length);
  const p = {};
  names.forEach((n, i) => {
    const [recurrent, useBias] = spec[n];
    const k = keys.ref.slice(i);
    p[n] = { kernel: recurrent ? orthogonal(k, [H, H]) : lecunNormal(k, [inFeatures, H]) };
    if (useBias) p[n].bias = np.zeros([H]);
  });
  keys.dispose();
  return p;
}

// flax.linen.RNN's scan over x [N, T, F] ([T, N, F] time-major): the cell stepped over the
// time steps (reversed when `reverse`), outputs stacked in processing order (flipped back with
// keep_order). Consumes x, the carry leaves and the params; returns [outputs, final carry].
function scan(c, params, x, carry, { timeMajor, reverse, keepOrder }) {
  if (x.ndim !== 3) throw new Error(`RNN: expected a sequence [batch, time, features] (time-major [time, batch, features]), got shape [${x.shape}]`);
  const axis = timeMajor ? 0 : 1;
  const batch = x.shape[1 - axis];
  const leaves = carryLeaves(c);
  if (carry && carry.length !== leaves.length) throw new Error(`RNN: ${c.type} carries ${leaves.length} arrays, got ${carry.length}`);
  // carry_init zeros_init(), as the cell's initialize_carry.
  let state = carry ?? leaves.map(() => np.zeros([batch, c.features]));
  const xs = np.unstack(x, axis);
  if (reverse) xs.reverse(); // flip_sequences without seq_lengths: jnp.flip on the time axis
  const ys = [];
  for (const xt of xs) {
    const [next, y] = CELL_STEPS[c.type](c, params, state, xt);
    state = next;
    ys.push(y);
  }
  tree.dispose(params);
  if (reverse && keepOrder) ys.reverse();
  return [np.stack(ys, axis), state];
}

const rnnCarryNames = (l) => (l.return_carry ? carryLeaves(l.cell).map((leaf) => leafName(`${l.name}:carry`, leaf)) : []);
const biCarryNames = (l) => (l.return_carry
  ? ['forward_rnn', 'backward_rnn'].flatMap((d) => carryLeaves(l[d].cell).map((leaf) => leafName(`${l.name}:carry/${d}`, leaf)))
  : []);
const inFeatures = (x) => x.shape[x.ndim - 1];

// Recurrent modules: apply returns [output, ...the values named by values(l)].
Object.assign(MODULES, {
  RNN: {
    values: rnnCarryNames,
    init: (key, l, [x]) => ({ params: { cell: cellInit(key, l.cell, inFeatures(x)) } }),
    apply: (l, { params: p }, [x, ...carry]) => {
      const [y, state] = scan(l.cell, p.cell, x, carry.length ? carry : null,
        { timeMajor: l.time_major, reverse: l.reverse, keepOrder: l.keep_order });
      if (l.return_carry) return [y, ...state];
      tree.dispose(state);
      return [y];
    },
  },
  Bidirectional: {
    values: (l) => [`${l.name}/forward_rnn`, `${l.name}/backward_rnn`, ...biCarryNames(l)],
    init: (key, l, [x]) => {
      const keys = random.split(key, 2);
      const v = { params: {
        forward_rnn: { cell: cellInit(keys.ref.slice(0), l.forward_rnn.cell, inFeatures(x)) },
        backward_rnn: { cell: cellInit(keys.ref.slice(1), l.backward_rnn.cell, inFeatures(x)) },
      } };
      keys.dispose();
      return v;
    },
    apply: (l, { params: p }, [x, ...carry]) => {
      const nf = carryLeaves(l.forward_rnn.cell).length;
      if (carry.length && carry.length !== nf + carryLeaves(l.backward_rnn.cell).length)
        throw new Error(`Bidirectional ${l.name}: expected the initial carries of both directions, got ${carry.length} arrays`);
      const [yf, cf] = scan(l.forward_rnn.cell, p.forward_rnn.cell, x.ref, carry.length ? carry.slice(0, nf) : null,
        { timeMajor: l.time_major, reverse: false, keepOrder: false });
      const [yb, cb] = scan(l.backward_rnn.cell, p.backward_rnn.cell, x, carry.length ? carry.slice(nf) : null,
        { timeMajor: l.time_major, reverse: true, keepOrder: true });
      const merged = MERGE_FNS[l.merge_fn](yf.ref, yb.ref);
      if (l.return_carry) return [merged, yf, yb, ...cf, ...cb];
      tree.dispose([cf, cb]);
      return [merged, yf, yb];
    },
  },
});

// Conv passes Flax's padding to lax as is; jax-js takes "SAME"/"VALID"/"SAME_LOWER" or pairs.
function explicitPadsFor(l, x) {
  if (typeof l.padding === 'string') {
    if (!['SAME', 'VALID', 'SAME_LOWER'].includes(l.padding)) throw new Error(`Conv padding ${JSON.stringify(l.padding)} is not supported`);
    return l.padding;
  }
  return explicitPads(l.padding, x.shape.slice(1, -1), l.kernel_size, l.strides, l.kernel_dilation);
}

// DenseGeneral's axes normalised and sorted (Flax's _normalize_axes) and features as a list.
function denseGeneralDims(l, ndim) {
  const axes = (Number.isInteger(l.axis) ? [l.axis] : l.axis).map((a) => (a < 0 ? a + ndim : a)).sort((a, b) => a - b);
  return { axes, features: Number.isInteger(l.features) ? [l.features] : l.features };
}

// lax.conv_transpose's padding: "SAME" / "VALID" by _conv_transpose_padding over the dilated
// kernel size k = (kernel_size - 1) * kernel_dilation + 1 (out = in * s, in * s + max(k - s, 0));
// explicit pads go to the lhs-dilated conv as they are.
function convTransposePads(l) {
  if (typeof l.padding === 'string') {
    if (!['SAME', 'VALID'].includes(l.padding)) throw new Error(`ConvTranspose padding ${JSON.stringify(l.padding)} is not supported`);
    return l.kernel_size.map((ks, i) => {
      const k = (ks - 1) * l.kernel_dilation[i] + 1, s = l.strides[i];
      const len = l.padding === 'SAME' ? k + s - 2 : k + s - 2 + Math.max(k - s, 0);
      const a = l.padding === 'VALID' || s > k - 1 ? k - 1 : Math.ceil(len / 2);
      return [a, len - a];
    });
  }
  const n = l.kernel_size.length;
  if (Number.isInteger(l.padding)) return Array.from({ length: n }, () => [l.padding, l.padding]);
  return l.padding.map((p) => (Number.isInteger(p) ? [p, p] : [p[0], p[1]]));
}

// Flax module types and functions jax-js has no stock equivalent of: the stream's "composed"
// notes. The activations are jax-js's own nn.* and the operators its own numpy: stock.
const COMPOSED = {
  Dense: 'Dense: jax-js has no Flax; flax.linen.Dense is composed as jnp.matmul(x, kernel) + bias',
  DenseGeneral: 'DenseGeneral: jax-js has no Flax; flax.linen.DenseGeneral is composed as the contracted axes moved last and flattened, jnp.matmul with the kernel flattened to [prod(in), prod(features)], reshaped to the features, + bias',
  Conv: 'Conv: jax-js has no Flax; flax.linen.Conv is composed as lax.conv_general_dilated over transposes (NHWC/HWIO to jax-js\'s NCHW/OIHW and back)',
  ConvTranspose: 'ConvTranspose: jax-js has no Flax; flax.linen.ConvTranspose is composed as lax.conv_transpose written as lax.conv_general_dilated with lhs_dilation = strides over transposes (NHWC/HWIO to jax-js\'s NCHW/OIHW and back)',
  BatchNorm: 'BatchNorm: jax-js has no Flax; flax.linen.BatchNorm is composed as (x - mean) * rsqrt(var + epsilon) * scale + bias over batch_stats',
  LayerNorm: 'LayerNorm: jax-js has no Flax; flax.linen.LayerNorm is composed from jnp.mean (fast variance mean(x²) - mean²), rsqrt, scale and bias',
  GroupNorm: 'GroupNorm: jax-js has no Flax; flax.linen.GroupNorm is composed as jnp.reshape to [..., groups, group_size], jnp.mean (fast variance mean(x²) - mean²) over every axis but the batch and the groups, rsqrt, reshaped back, scale and bias',
  RMSNorm: 'RMSNorm: jax-js has no Flax; flax.linen.RMSNorm is composed as x * rsqrt(mean(x²) + epsilon) * scale',
  Embed: 'Embed: jax-js has no Flax; flax.linen.Embed is composed as jnp.take(embedding, ids, axis=0)',
  Dropout: 'Dropout: jax-js has no Flax; deterministic flax.linen.Dropout is the identity',
  Einsum: 'Einsum: jax-js has no Flax; flax.linen.Einsum is composed as jnp.einsum(einsum_str, x, kernel) + bias reshaped to its broadcast shape',
  MultiHeadDotProductAttention: 'MultiHeadDotProductAttention: jax-js has no Flax; flax.linen.MultiHeadDotProductAttention is composed as DenseGeneral query/key/value, query / sqrt(head_dim), jnp.einsum scores, jnp.where(mask, scores, finfo.min), jax.nn.softmax, jnp.einsum with the values and the out DenseGeneral (deterministic)',
  SelfAttention: 'SelfAttention: jax-js has no Flax; flax.linen.SelfAttention is MultiHeadDotProductAttention with inputs_k = inputs_v = inputs_q, composed the same way',
  make_causal_mask: 'make_causal_mask: jax-js has no Flax; flax.linen.make_causal_mask is composed as make_attention_mask(arange, arange, jnp.greater_equal)',
  make_attention_mask: 'make_attention_mask: jax-js has no Flax; flax.linen.make_attention_mask is composed as pairwise_fn(q[..., :, None], k[..., None, :]) with a head axis, as float32',
  'nn.max_pool': 'max_pool: jax-js has no Flax; flax.linen.max_pool is composed as lax.reduce_window(max) over an explicitly -inf-padded channels-first view',
  'nn.avg_pool': 'avg_pool: jax-js has no Flax; flax.linen.avg_pool is composed as lax.reduce_window(sum) / window size over a zero-padded channels-first view',
  RNN: 'RNN: jax-js has no Flax and no lax.scan; flax.linen.RNN is composed as a JavaScript loop stepping the cell over the time axis (unrolled when jit-traced)',
  Bidirectional: 'Bidirectional: jax-js has no Flax; flax.linen.Bidirectional is composed as a forward and a reversed (keep_order) RNN merged by merge_fn',
  SimpleCell: 'SimpleCell: jax-js has no Flax; flax.linen.SimpleCell is composed as act(Dense i(x) + Dense h(carry)) with Flax\'s parameters',
  LSTMCell: 'LSTMCell: jax-js has no Flax; flax.linen.LSTMCell is composed from its eight Dense (ii..io without bias, hi..ho with) and jax-js\'s sigmoid/tanh',
  OptimizedLSTMCell: 'OptimizedLSTMCell: jax-js has no Flax; flax.linen.OptimizedLSTMCell is composed as one matmul per side over the concatenated LSTMCell kernels, split into gates',
  GRUCell: 'GRUCell: jax-js has no Flax; flax.linen.GRUCell is composed from its six Dense (ir, iz, in, hn with bias; hr, hz without), n = tanh(in(x) + r * hn(h))',
};

// The cells a recurrent module scans (for the composed notes).
const cellsOf = (l) => (l.type === 'RNN' ? [l.cell.type] : l.type === 'Bidirectional' ? [l.forward_rnn.cell.type, l.backward_rnn.cell.type] : []);

// The values a module defines besides its output (an RNN's final carry, a Bidirectional's
// directions).
const extraValues = (l) => (MODULES[l.type].values ? MODULES[l.type].values(l) : []);

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
      for (const v of extraValues({ ...l, name })) {
        if (defined.has(v)) throw new Error(`layers[${i}]: value ${JSON.stringify(v)} is already defined`);
        defined.add(v);
      }
      previous = name;
      const { type, name: _name, inputs: _ins, ...attrs } = l;
      return nameCells({ type, name, ...attrs, ...(l.inputs ? { inputs: [...l.inputs] } : {}), _inputs: ins });
    });
    this.inputNames = [...inputs];
    this.outputNames = outputs ? [...outputs] : [this.modules[this.modules.length - 1].name];
    for (const n of this.outputNames) if (!defined.has(n)) throw new Error(`outputs: ${JSON.stringify(n)} is not defined`);
  }

  /** The stream's `model.modules`: descriptions without internal fields. */
  describe() {
    return this.modules.map(({ _inputs, ...l }) => l);
  }

  /** Flax's model.init: runs the model once on example inputs and returns {params, batch_stats?}. */
  init(key, ...inputs) {
    const withVars = this.modules.filter((l) => MODULES[l.type].init);
    const keys = random.split(key, Math.max(withVars.length, 1));
    const variables = {};
    let k = 0;
    this._run(inputs, {
      vars: (l, xs) => {
        const v = MODULES[l.type].init(keys.ref.slice(k++), l, xs);
        for (const [col, leaves] of Object.entries(v)) setPath((variables[col] ??= {}), l.name, leaves);
        return tree.ref(v);
      },
    }).outs.forEach((y) => y.dispose());
    keys.dispose();
    if (!variables.params) variables.params = {};
    return variables;
  }

  /** Flax's model.apply(variables, ...inputs) at inference: the output, or an array of them. */
  apply(variables, ...inputs) {
    const { outs } = this._run(inputs, { variables });
    return outs.length === 1 ? outs[0] : outs;
  }

  /** As apply with capture_intermediates: [output(s), {module name: its output}]. */
  applyWithIntermediates(variables, ...inputs) {
    const { outs, inter } = this._run(inputs, { variables, intermediates: true });
    return [outs.length === 1 ? outs[0] : outs, inter];
  }

  /**
   * Flax's model.apply(variables, ...inputs, mutable=['batch_stats']) in training mode:
   * [output(s), {batch_stats}] (BatchNorm normalises with the batch and moves its running
   * statistics; an empty batch_stats for models without).
   */
  applyTrain(variables, ...inputs) {
    const { outs, updates } = this._run(inputs, { variables, train: true });
    return [outs.length === 1 ? outs[0] : outs, { batch_stats: updates }];
  }

  // Evaluates the module list, keeping jax-js's move semantics: every value is consumed by its
  // last use, earlier uses take a .ref. opts: variables (consumed), or vars(l, xs) giving a
  // module's variables (init); intermediates; train.
  _run(inputs, { variables = null, vars = null, intermediates = false, train = false }) {
    if (inputs.length !== this.inputNames.length)
      throw new Error(`the model takes ${this.inputNames.length} inputs, got ${inputs.length}`);
    const uses = new Map();
    const use = (n) => uses.set(n, (uses.get(n) ?? 0) + 1);
    for (const l of this.modules) l._inputs.forEach(use);
    this.outputNames.forEach(use);
    if (intermediates) this.modules.forEach((l) => [l.name, ...extraValues(l)].forEach(use));

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
    const updates = {};
    for (const l of this.modules) {
      const xs = l._inputs.map(take);
      const M = MODULES[l.type];
      let v;
      if (M.init) v = vars ? vars(l, xs) : takeVariables(variables, l.name);
      if (train && M.train) {
        const [y, stats] = M.train(l, v, xs);
        setPath(updates, l.name, stats);
        put(l.name, y);
      } else if (M.values) {
        const [y, ...extra] = M.apply(l, v ?? {}, xs);
        put(l.name, y);
        M.values(l).forEach((n, j) => put(n, extra[j]));
      } else {
        put(l.name, M.apply(l, v ?? {}, xs));
      }
    }
    const outs = this.outputNames.map(take);
    if (!intermediates) return { outs, updates };
    const inter = {};
    for (const l of this.modules) for (const n of [l.name, ...extraValues(l)]) inter[n] = take(n);
    return { outs, inter, updates };
  }
}

// Flax module paths ("Block_0/Dense_0") are nested dicts in each collection of the pytree.
function setPath(obj, name, value) {
  const parts = name.split('/');
  for (const p of parts.slice(0, -1)) obj = obj[p] ??= {};
  obj[parts[parts.length - 1]] = value;
}

// A module's own variables {params?, batch_stats?} (handed over, not referenced: apply
// consumes its variables).
function takeVariables(variables, name) {
  const out = {};
  for (const col of Object.keys(variables ?? {})) {
    let obj = variables[col];
    for (const p of name.split('/')) obj = obj && typeof obj === 'object' && p in obj ? obj[p] : undefined;
    if (obj !== undefined) out[col] = obj;
  }
  if (!out.params && !out.batch_stats) throw new Error(`variables: no entry for module "${name}"`);
  return out;
}

// ------------------------------------------------------------------ capture

const { Stream } = pbstream; // a captured model: toBytes(), write(file)

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
  const composed = [...new Set(modules.flatMap((l) => [l.type === 'fn' ? l.fn : l.type, ...cellsOf(l)]).map((t) => COMPOSED[t]).filter(Boolean))];
  if (composed.length) doc.composed = composed;
  return new Stream(doc, tensors);
}

module.exports = {
  PLANET, ENGINE, PLANET_VERSION, FUNCTIONS, MODULES, COMPOSED,
  ready, Dense, DenseGeneral, Einsum, einsum, matmul, MultiHeadDotProductAttention, SelfAttention, makeCausalMask, makeAttentionMask, SwiGLU, Conv, ConvTranspose, SimpleCell, LSTMCell, OptimizedLSTMCell, GRUCell, RNN, Bidirectional, orthogonal, BatchNorm, LayerNorm, GroupNorm, RMSNorm, Embed, Dropout, maxPool, avgPool, mean, max, reshape,
  fn, add, subtract, multiply, concatenate, Model, lecunNormal, truncatedNormal, explicitPads,
  capture, Stream, flattenVariables, jax,
};
