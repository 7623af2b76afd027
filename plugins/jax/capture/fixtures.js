'use strict';
/**
 * Suite fixtures for the jax planet: a fixture (as in the capture request) -> Stream. Layer keys
 * and specs: docs/suites.md; the module lists: docs/planets/jax.md.
 *
 * Layer "dense", spec {input: int, units: [int, ...], activation: str, bias: bool}: the Flax
 * module list [Dense(units[0]), fn(activation), ..., Dense(units[-1])], the last layer linear;
 * activation defaults to "relu", bias to true. Layer "residual", spec {features: f}:
 * x + Dense_1(relu(Dense_0(x))), both Dense f -> f. Both are trained for 20 Adam steps on a
 * fixed synthetic regression task.
 *
 * Layers cnn1/2/3, conv_transpose, dense_general, pool, batchnorm, groupnorm, layernorm, rmsnorm, embedding, model: Flax modules over
 * channels-last inputs [N, size..., in_channels] (integer ids [N, seq] for embeddings), moved
 * off their initialisation by 5 Adam steps towards a fixed random target (BatchNorm in training
 * mode, so its batch_stats move as Flax moves them, momentum 0.99), then 45 more training-mode
 * forward passes so the running statistics are 39% of the way to the batch's (not the initial
 * (0, 1)); evaluated on fresh inputs.
 *
 * Layers einsum (Einsum head split / merge), swiglu (LLaMA's MLP) and mixer (the two all-layer
 * stacks) are fitted as those; layer mha (MultiHeadDotProductAttention / SelfAttention, self,
 * cross, causal over Embed ids, padding) is built as the recurrent layers: several inputs, biases
 * perturbed by N(0, 0.2²); layer transformer (Flax tutorial blocks) too, its LayerNorm scales
 * perturbed as well.
 *
 * Layers rnn / lstm / gru: nn.RNN (or nn.Bidirectional) of SimpleCell / LSTMCell / GRUCell per
 * layer, every bias perturbed by N(0, 0.2²); arch text_classifier and seq2seq trained 10 Adam steps.
 *
 * Everything is initialised as Flax does (lecun_normal kernels, zero biases, Embed N(0, 1/D))
 * and every random draw comes from one jax-js PRNG key derived from (fixture seed, fixture id).
 */

const zlib = require('zlib');
const path = require('path');
const { NotApplicable, Spec, denseSpec } = require(path.join(__dirname, '..', '..', '..', 'capture', 'js', 'pbstream.js'));
const flax = require('./flax.js');

const { jax } = flax;
const { numpy: np, nn, random, tree } = jax;

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
// [function, attrs] for a suite activation name (callers handle "linear": no function).
function activationFn(name, field = 'spec.activation') {
  if (NOT_IN_FLAX.has(name)) throw new NotApplicable(`flax.linen has no "${name}" activation`);
  if (!(name in ACTIVATIONS)) throw new Error(`${field}: unknown activation ${JSON.stringify(name)} (known: linear, ${Object.keys(ACTIVATIONS).join(', ')})`);
  return ACTIVATIONS[name];
}

const TRAIN_ROWS = 256;
const TRAIN_STEPS = 20;
const FIT_STEPS = 5; // towards a random target (layers beyond dense/residual, as the pytorch planet)
const BN_PASSES = 45; // extra training-mode passes: running stats 1 - 0.99^50 = 39% of the way
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
  const lacks = (name) => (NOT_IN_FLAX.has(name) ? `flax.linen has no "${name}" activation` : null);
  const { units, activation, bias } = denseSpec(spec, ACTIVATIONS, { lacks, nullIsAbsent: true });
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

// layer -> (spec -> [model, input width, output width]): trained on a regression task.
const LAYERS = {
  dense: (spec) => {
    const m = denseModel(spec);
    return [m, spec.input, spec.units[spec.units.length - 1]];
  },
  residual: (spec) => [residualModel(spec), spec.features, spec.features],
};

// ------------------------------------------------------------------ layers of issue #4

// Typed, strict access to a fixture spec (pbstream.Spec); here a null field takes its default,
// as an absent one does.
const specOf = (spec, known) => new Spec(spec, known, { nullIsAbsent: true });

const rep = (v, n) => Array(n).fill(v);
const spatialAxes = (dims) => Array.from({ length: dims }, (_, i) => i + 1); // of [N, spatial..., C]
const image = (n, size, dims, channels) => ({ shape: [n, ...rep(size, dims), channels] });

/** Layers cnn1/2/3: Conv layers (the activation after each) over [N, size..., in_channels]. */
function convModel(dims, spec, n) {
  const s = specOf(spec, ['in_channels', 'size', 'filters', 'kernel', 'stride', 'padding', 'dilation', 'activation', 'bias']);
  const kernel = s.int('kernel'), stride = s.int('stride', 1), dilation = s.int('dilation', 1);
  const padding = s.choice('padding', ['valid', 'same'], 'valid').toUpperCase(); // Flax/lax spell them "VALID", "SAME"
  const activation = s.spec.activation ?? 'linear';
  const act = activation === 'linear' ? null : activationFn(activation);
  const useBias = s.bool('bias', true);
  const layers = [];
  for (const f of s.ints('filters')) {
    layers.push(flax.Conv(f, rep(kernel, dims), { strides: stride, padding, kernelDilation: dilation, useBias }));
    if (act) layers.push(flax.fn(...act));
  }
  return { model: new flax.Model(layers), input: image(n, s.int('size'), dims, s.int('in_channels')) };
}

/** Layer conv_transpose: ConvTranspose per filter count (the activation after each) over [N, size..., in_channels]. */
function convTransposeModel(spec, n) {
  const s = specOf(spec, ['dims', 'in_channels', 'size', 'filters', 'kernel', 'stride', 'padding', 'activation', 'bias']);
  const dims = s.choice('dims', [1, 2, 3]);
  const kernel = s.int('kernel'), stride = s.int('stride', 1);
  const padding = s.choice('padding', ['valid', 'same'], 'valid').toUpperCase(); // lax spells them "VALID", "SAME"
  const activation = s.spec.activation ?? 'linear';
  const act = activation === 'linear' ? null : activationFn(activation);
  const useBias = s.bool('bias', true);
  const layers = [];
  for (const f of s.ints('filters')) {
    layers.push(flax.ConvTranspose(f, rep(kernel, dims), { strides: stride, padding, useBias }));
    if (act) layers.push(flax.fn(...act));
  }
  return { model: new flax.Model(layers), input: image(n, s.int('size'), dims, s.int('in_channels')) };
}

/** Layer dense_general: attention-style projections over [N, seq, d_model]: DenseGeneral([heads, d_model / heads]) (a head split), relu, DenseGeneral(d_model, axis [-2, -1]) (heads merged). */
function denseGeneralModel(spec, n) {
  const s = specOf(spec, ['seq', 'd_model', 'heads', 'bias']);
  const d = s.int('d_model'), h = s.int('heads');
  if (d % h) throw new Error(`spec.heads: ${h} heads do not divide d_model ${d}`);
  const useBias = s.bool('bias', true);
  return {
    model: new flax.Model([flax.DenseGeneral([h, d / h], { useBias }), flax.fn('nn.relu'), flax.DenseGeneral(d, { axis: [-2, -1], useBias })]),
    input: { shape: [n, s.int('seq'), d] },
  };
}

/**
 * Layer einsum: attention-style projections over [N, seq, d_model] as flax.linen.Einsum.
 * layout blhk: Einsum([d, h, d/h], 'bld,dhk->blhk') (a head split), relu, Einsum([h, d/h, d],
 * 'blhk,hkd->bld') (two axes contracted); layout bhlk: Einsum([h, d, d/h], 'bld,hdk->bhlk')
 * (heads moved before the sequence), relu, Einsum([d/h, h, d], 'bhlk,khd->bld').
 */
function einsumModel(spec, n) {
  const s = specOf(spec, ['seq', 'd_model', 'heads', 'layout', 'bias']);
  const d = s.int('d_model'), h = s.int('heads');
  if (d % h) throw new Error(`spec.heads: ${h} heads do not divide d_model ${d}`);
  const k = d / h, useBias = s.bool('bias', true);
  const layout = s.choice('layout', ['blhk', 'bhlk'], 'blhk');
  const layers = layout === 'blhk'
    ? [flax.Einsum([d, h, k], 'bld,dhk->blhk', { useBias }), flax.fn('nn.relu'), flax.Einsum([h, k, d], 'blhk,hkd->bld', { useBias })]
    : [flax.Einsum([h, d, k], 'bld,hdk->bhlk', { useBias }), flax.fn('nn.relu'), flax.Einsum([k, h, d], 'bhlk,khd->bld', { useBias })];
  return { model: new flax.Model(layers), input: { shape: [n, s.int('seq'), d] } };
}

/** Layer swiglu: LLaMA's MLP, SwiGLU_0/down_proj(silu(SwiGLU_0/gate_proj(x)) * SwiGLU_0/up_proj(x)), over [N, seq, d_model]. */
function swigluModel(spec, n) {
  const s = specOf(spec, ['d_model', 'ff', 'seq', 'bias']);
  const d = s.int('d_model');
  return {
    model: new flax.Model(flax.SwiGLU(s.int('ff'), d, { input: 'x', useBias: s.bool('bias', true) }), { outputs: ['SwiGLU_0/down_proj'] }),
    input: { shape: [n, s.int('seq'), d] },
  };
}

/**
 * Layer mha: flax.linen.MultiHeadDotProductAttention (or, with self_attention, SelfAttention)
 * over x [N, seq, d_model], deterministic. kv_seq: cross-attention, inputs_kv kv [N, kv_seq,
 * kv_features (d_model)] a second input. mask causal: the LM pattern, ids [N, seq] (i32, vocab)
 * -> Embed(vocab, d_model) -> attention with mask = make_causal_mask(ids); mask padding: a
 * second input valid [N, seq] (1.0 / 0.0, row i valid for its first seq - i mod ceil(seq/2)
 * steps) and mask = make_attention_mask(valid, valid): padded queries see no key (Flax's
 * finfo.min gives them uniform weights).
 */
function attentionModel(layer, spec, n) {
  const s = specOf(spec, ['d_model', 'heads', 'seq', 'kv_seq', 'kv_features', 'qkv_features', 'out_features', 'bias', 'mask', 'vocab', 'self_attention']);
  const d = s.int('d_model'), heads = s.int('heads'), seq = s.int('seq');
  const mask = s.choice('mask', ['none', 'causal', 'padding'], 'none');
  const cross = spec.kv_seq != null;
  const selfAttention = s.bool('self_attention', false);
  if (cross && (selfAttention || mask !== 'none')) throw new Error('spec.kv_seq: cross-attention takes no self_attention and no mask here');
  if (spec.vocab != null && mask !== 'causal') throw new Error('spec.vocab: only with mask causal (the ids the causal mask is made of)');
  const opts = { qkvFeatures: spec.qkv_features != null ? s.int('qkv_features') : null,
    outFeatures: spec.out_features != null ? s.int('out_features') : null, useBias: s.bool('bias', true) };
  const attn = (inputs, args) => (selfAttention ? flax.SelfAttention(heads, { ...opts, inputs, args }) : flax.MultiHeadDotProductAttention(heads, { ...opts, inputs, args }));
  const name = selfAttention ? 'SelfAttention_0' : 'MultiHeadDotProductAttention_0';
  if (cross) {
    const model = new flax.Model([attn(['x', 'kv'], ['inputs_q', 'inputs_kv'])], { inputs: ['x', 'kv'] });
    return { model, inputs: [{ shape: [n, seq, d] }, { shape: [n, s.int('kv_seq'), s.int('kv_features', d)] }] };
  }
  if (mask === 'causal') {
    const vocab = s.int('vocab', 50);
    const model = new flax.Model([flax.Embed(vocab, d, { inputs: ['ids'] }), flax.makeCausalMask(['ids']),
      attn(['Embed_0', 'make_causal_mask_0'], ['inputs_q', 'mask'])], { inputs: ['ids'], outputs: [name] });
    return { model, inputs: [{ shape: [n, seq], vocab }] };
  }
  if (mask === 'padding') {
    const model = new flax.Model([flax.makeAttentionMask(['valid', 'valid']), attn(['x', 'make_attention_mask_0'], ['inputs_q', 'mask'])],
      { inputs: ['x', 'valid'], outputs: [name] });
    return { model, inputs: [{ shape: [n, seq, d] }, { shape: [n, seq], valid: true }] };
  }
  return { model: new flax.Model([attn(['x'], ['inputs_q'])]), inputs: [{ shape: [n, seq, d] }] };
}

/**
 * Layer transformer: transformer blocks as Flax tutorials write them (flax/examples/wmt and
 * lm1b: compact modules, nn.SelfAttention / nn.MultiHeadDotProductAttention, nn.LayerNorm, an
 * MlpBlock of nn.Dense(ff) -> activation -> nn.Dense(d_model), residual adds, deterministic).
 * spec {d_model, heads, ff, seq, norm_first (false: post-norm), activation (relu | gelu),
 * layers (1), final_norm (false), mask (none | causal | padding), vocab (50, mask causal only),
 * self_attention (false: MultiHeadDotProductAttention), kind (encoder)}. Block k is
 * EncoderBlock_k (DecoderBlock_k with mask causal) holding
 *   post-norm: attn(x) -> add_0 (x + attn) -> LayerNorm_0 -> MlpBlock_0 -> add_1 -> LayerNorm_1
 *   pre-norm:  LayerNorm_0 -> attn -> add_0 (x + attn) -> LayerNorm_1 -> MlpBlock_0 -> add_1
 * where attn is <block>/SelfAttention_0 or <block>/MultiHeadDotProductAttention_0, and
 * MlpBlock_0 = Dense_0, relu_0 / gelu_0, Dense_1. mask causal: a decoder-only LM block (lm1b):
 * ids [N, seq] -> Embed(vocab, d_model) -> blocks with mask = make_causal_mask(ids); mask
 * padding: a second input valid [N, seq] (as for mha) and mask = make_attention_mask(valid,
 * valid); final_norm: LayerNorm encoder_norm (decoder_norm) after the stack.
 */
function transformerModel(layer, spec, n) {
  const s = specOf(spec, ['d_model', 'heads', 'ff', 'seq', 'norm_first', 'activation', 'layers', 'final_norm', 'mask', 'vocab', 'self_attention', 'kind']);
  const d = s.int('d_model'), heads = s.int('heads'), ff = s.int('ff'), seq = s.int('seq'), layers = s.int('layers', 1);
  if (d % heads) throw new Error(`spec.heads: ${heads} heads do not divide d_model ${d}`);
  s.choice('kind', ['encoder'], 'encoder'); // PyTorch's kind decoder has cross-attention to a memory; a decoder-only block is mask: causal
  const normFirst = s.bool('norm_first', false), finalNorm = s.bool('final_norm', false), selfAttention = s.bool('self_attention', false);
  const act = activationFn(s.choice('activation', ['relu', 'gelu'], 'relu'));
  const mask = s.choice('mask', ['none', 'causal', 'padding'], 'none');
  if (spec.vocab != null && mask !== 'causal') throw new Error('spec.vocab: only with mask causal (the ids the causal mask is made of)');
  const modules = [];
  let x = 'x', maskValue = null, inputNames = ['x'], inputs = [{ shape: [n, seq, d] }];
  if (mask === 'causal') {
    const vocab = s.int('vocab', 50);
    modules.push(flax.Embed(vocab, d, { inputs: ['ids'] }), flax.makeCausalMask(['ids']));
    [x, maskValue, inputNames, inputs] = ['Embed_0', 'make_causal_mask_0', ['ids'], [{ shape: [n, seq], vocab }]];
  } else if (mask === 'padding') {
    modules.push(flax.makeAttentionMask(['valid', 'valid']));
    [maskValue, inputNames] = ['make_attention_mask_0', ['x', 'valid']];
    inputs.push({ shape: [n, seq], valid: true });
  }
  const block = mask === 'causal' ? 'DecoderBlock' : 'EncoderBlock';
  for (let k = 0; k < layers; k++) {
    const p = (m) => `${block}_${k}/${m}`;
    const attention = (q) => {
      const opts = { inputs: maskValue ? [q, maskValue] : [q], args: maskValue ? ['inputs_q', 'mask'] : ['inputs_q'] };
      return selfAttention ? flax.SelfAttention(heads, { ...opts, name: p('SelfAttention_0') })
        : flax.MultiHeadDotProductAttention(heads, { ...opts, name: p('MultiHeadDotProductAttention_0') });
    };
    const attnName = p(selfAttention ? 'SelfAttention_0' : 'MultiHeadDotProductAttention_0');
    const mlp = (from) => [
      flax.Dense(ff, { name: p('MlpBlock_0/Dense_0'), inputs: [from] }),
      flax.fn(act[0], act[1] ?? {}, { name: p(`MlpBlock_0/${act[0].slice(3)}_0`) }),
      flax.Dense(d, { name: p('MlpBlock_0/Dense_1') }),
    ];
    if (normFirst) {
      modules.push(flax.LayerNorm({ name: p('LayerNorm_0'), inputs: [x] }), attention(p('LayerNorm_0')),
        flax.add([x, attnName], { name: p('add_0') }), flax.LayerNorm({ name: p('LayerNorm_1'), inputs: [p('add_0')] }),
        ...mlp(p('LayerNorm_1')), flax.add([p('add_0'), p('MlpBlock_0/Dense_1')], { name: p('add_1') }));
      x = p('add_1');
    } else {
      modules.push(attention(x), flax.add([x, attnName], { name: p('add_0') }), flax.LayerNorm({ name: p('LayerNorm_0'), inputs: [p('add_0')] }),
        ...mlp(p('LayerNorm_0')), flax.add([p('LayerNorm_0'), p('MlpBlock_0/Dense_1')], { name: p('add_1') }),
        flax.LayerNorm({ name: p('LayerNorm_1'), inputs: [p('add_1')] }));
      x = p('LayerNorm_1');
    }
  }
  if (finalNorm) {
    const name = mask === 'causal' ? 'decoder_norm' : 'encoder_norm';
    modules.push(flax.LayerNorm({ name, inputs: [x] }));
    x = name;
  }
  return { model: new flax.Model(modules, { inputs: inputNames, outputs: [x] }), inputs, scales: true };
}

/**
 * Layer mixer (docs/suites.md, the same on every planet; every dimension fixed by the arch).
 * arch all_v1: a plain stack over x [N, 8, 16]: l01_dense (16 -> 32), l02_conv1d (Conv(32, [3],
 * SAME) over [N, T, C]), l03_layernorm, l04_mha (MultiHeadDotProductAttention(4), self, no
 * mask), l05_rmsnorm, l06_lstm (nn.RNN(LSTMCell(32)), the sequence), l07_dense + l07_tanh,
 * l08_swiglu (gate_proj / up_proj / down_proj, ff 64, biases), l09_layernorm, l10_dense (-> 8).
 * arch all_v2: a pre-norm stack over ids [N, 8] (vocab 50): l01_embed (Embed(50, 32)), then
 * norm -> layer -> residual add (lNN_residual) for l02_layernorm / l03_mha (SelfAttention(4)
 * with mask causal_mask = make_causal_mask(ids)), l04_rmsnorm / l05_swiglu, l06_layernorm /
 * l07_conv1d, l08_rmsnorm / l09_gru (GRUCell(32)), l10_layernorm / l11_simple_rnn
 * (SimpleCell(32), tanh), l12_rmsnorm / l13_lstm (LSTMCell(32)); l14_layernorm, l15_dense
 * (-> 10), l16_softmax (last axis). Trained as the other BUILDERS fixtures (5 Adam steps).
 */
function mixerModel(spec, n) {
  const arch = specOf(spec, ['arch']).choice('arch', ['all_v1', 'all_v2']);
  const D = 32, FF = 64, HEADS = 4, T = 8;
  if (arch === 'all_v1') {
    const model = new flax.Model([
      flax.Dense(D, { name: 'l01_dense' }),
      flax.Conv(D, [3], { padding: 'SAME', name: 'l02_conv1d' }),
      flax.LayerNorm({ name: 'l03_layernorm' }),
      flax.MultiHeadDotProductAttention(HEADS, { name: 'l04_mha', inputs: ['l03_layernorm'], args: ['inputs_q'] }),
      flax.RMSNorm({ name: 'l05_rmsnorm' }),
      flax.RNN(flax.LSTMCell(D), { name: 'l06_lstm' }),
      flax.Dense(D, { name: 'l07_dense' }),
      flax.fn('nn.tanh', {}, { name: 'l07_tanh' }),
      ...flax.SwiGLU(FF, D, { input: 'l07_tanh', useBias: true, name: 'l08_swiglu' }),
      flax.LayerNorm({ name: 'l09_layernorm' }),
      flax.Dense(8, { name: 'l10_dense' }),
    ]);
    return { model, input: { shape: [n, T, 16] } };
  }
  const modules = [flax.Embed(50, D, { name: 'l01_embed', inputs: ['ids'] }), flax.makeCausalMask(['ids'], { name: 'causal_mask' })];
  let x = 'l01_embed';
  // A pre-norm sublayer: norm (LayerNorm / RMSNorm) -> the layer's modules (the last one its output) -> x + it.
  const sub = (normName, norm, layerModules, residual) => {
    modules.push(norm({ name: normName, inputs: [x] }), ...layerModules(normName));
    modules.push(flax.add([x, modules[modules.length - 1].name], { name: residual }));
    x = residual;
  };
  const ln = (o) => flax.LayerNorm(o), rms = (o) => flax.RMSNorm(o);
  sub('l02_layernorm', ln, (h) => [flax.SelfAttention(HEADS, { name: 'l03_mha', inputs: [h, 'causal_mask'], args: ['inputs_q', 'mask'] })], 'l03_residual');
  sub('l04_rmsnorm', rms, (h) => flax.SwiGLU(FF, D, { input: h, useBias: true, name: 'l05_swiglu' }), 'l05_residual');
  sub('l06_layernorm', ln, (h) => [flax.Conv(D, [3], { padding: 'SAME', name: 'l07_conv1d', inputs: [h] })], 'l07_residual');
  sub('l08_rmsnorm', rms, (h) => [flax.RNN(flax.GRUCell(D), { name: 'l09_gru', inputs: [h] })], 'l09_residual');
  sub('l10_layernorm', ln, (h) => [flax.RNN(flax.SimpleCell(D, { activationFn: 'nn.tanh' }), { name: 'l11_simple_rnn', inputs: [h] })], 'l11_residual');
  sub('l12_rmsnorm', rms, (h) => [flax.RNN(flax.LSTMCell(D), { name: 'l13_lstm', inputs: [h] })], 'l13_residual');
  modules.push(flax.LayerNorm({ name: 'l14_layernorm', inputs: [x] }), flax.Dense(10, { name: 'l15_dense' }), flax.fn('nn.softmax', { axis: -1 }, { name: 'l16_softmax' }));
  return { model: new flax.Model(modules, { inputs: ['ids'] }), input: { shape: [n, T], vocab: 50 } };
}

/** Layer pool: Conv(3, SAME) -> relu -> pool; global pools are jnp.mean / jnp.max over the spatial axes. */
function poolModel(spec, n) {
  const s = specOf(spec, ['dims', 'in_channels', 'size', 'filters', 'pool', 'kernel', 'stride', 'padding']);
  const dims = s.choice('dims', [1, 2, 3]);
  const pool = s.choice('pool', ['max', 'avg', 'global_avg', 'global_max']);
  const layers = [flax.Conv(s.int('filters'), rep(3, dims), { padding: 'SAME' }), flax.fn('nn.relu')];
  if (pool === 'max' || pool === 'avg') {
    const kernel = s.int('kernel'), stride = s.int('stride', kernel), pad = s.int('padding', 0, 0);
    // Flax's pools take "VALID" / "SAME" or [low, high] pairs (no ints); strides default to ones.
    const opts = { strides: rep(stride, dims), padding: pad ? rep([pad, pad], dims) : 'VALID' };
    layers.push(pool === 'max' ? flax.maxPool(rep(kernel, dims), opts) : flax.avgPool(rep(kernel, dims), opts));
  } else {
    layers.push(pool === 'global_avg' ? flax.mean(spatialAxes(dims)) : flax.max(spatialAxes(dims)));
  }
  return { model: new flax.Model(layers), input: image(n, s.int('size'), dims, s.int('in_channels')) };
}

/** Layer batchnorm: Conv(3, SAME) -> BatchNorm -> relu (dims 1-3), Dense -> BatchNorm -> relu (dims 0). */
function batchnormModel(spec, n) {
  const s = specOf(spec, ['dims', 'in_channels', 'size', 'filters']);
  const dims = s.choice('dims', [0, 1, 2, 3]);
  const cin = s.int('in_channels'), f = s.int('filters');
  if (dims === 0) return { model: new flax.Model([flax.Dense(f), flax.BatchNorm(), flax.fn('nn.relu')]), input: { shape: [n, cin] } };
  return {
    model: new flax.Model([flax.Conv(f, rep(3, dims), { padding: 'SAME' }), flax.BatchNorm(), flax.fn('nn.relu')]),
    input: image(n, s.int('size'), dims, cin),
  };
}

/** Layer groupnorm: Conv(filters, 3, SAME) -> GroupNorm(groups) -> relu (dims 1-3), Dense -> GroupNorm -> relu (dims 0). */
function groupnormModel(spec, n) {
  const s = specOf(spec, ['dims', 'in_channels', 'size', 'filters', 'groups', 'eps']);
  const dims = s.choice('dims', [0, 1, 2, 3]);
  const cin = s.int('in_channels'), f = s.int('filters');
  const norm = flax.GroupNorm({ numGroups: s.int('groups'), epsilon: s.number('eps', 1e-6) });
  if (dims === 0) return { model: new flax.Model([flax.Dense(f), norm, flax.fn('nn.relu')]), input: { shape: [n, cin] } };
  return {
    model: new flax.Model([flax.Conv(f, rep(3, dims), { padding: 'SAME' }), norm, flax.fn('nn.relu')]),
    input: image(n, s.int('size'), dims, cin),
  };
}

/** Layers layernorm / rmsnorm: Dense(f) -> norm, Flax's default epsilon 1e-6 (or spec eps). */
const normModel = (norm) => (spec, n) => {
  const s = specOf(spec, ['features', 'eps']);
  const f = s.int('features');
  const epsilon = s.number('eps', 1e-6);
  const layer = norm === 'layernorm' ? flax.LayerNorm({ epsilon }) : flax.RMSNorm({ epsilon });
  return { model: new flax.Model([flax.Dense(f), layer]), input: { shape: [n, f] } };
};

/** Layer embedding: ids [N, seq] (i32) -> Embed(vocab, dim). */
function embeddingModel(spec, n) {
  const s = specOf(spec, ['vocab', 'dim', 'seq']);
  const vocab = s.int('vocab');
  return { model: new flax.Model([flax.Embed(vocab, s.int('dim'))]), input: { shape: [n, s.int('seq')], vocab } };
}

// The residual conv block of small_cnn, a submodule: its modules are named by Flax path.
function residualConvBlock(scope, input, c) {
  const n = (x) => `${scope}/${x}`;
  return [
    flax.Conv(c, [3, 3], { name: n('Conv_0') }), flax.BatchNorm({ name: n('BatchNorm_0') }), flax.fn('nn.relu', {}, { name: n('relu_0') }),
    flax.Conv(c, [3, 3], { name: n('Conv_1') }), flax.BatchNorm({ name: n('BatchNorm_1') }),
    flax.add([input, n('BatchNorm_1')], { name: n('add_0') }), flax.fn('nn.relu', {}, { name: n('relu_1') }),
  ];
}

/** Layer model: small whole models (docs/suites.md), channels-last. */
function wholeModel(spec, n) {
  const s = specOf(spec, ['arch']);
  const arch = s.choice('arch', ['small_cnn', 'dw_separable', 'text_conv1d']);
  if (arch === 'small_cnn')
    return {
      model: new flax.Model([
        flax.Conv(16, [3, 3], { padding: 'SAME' }), flax.BatchNorm(), flax.fn('nn.relu'),
        flax.Conv(32, [3, 3], { strides: 2, padding: [[1, 1], [1, 1]] }), flax.BatchNorm(), flax.fn('nn.relu'),
        flax.maxPool([2, 2], { strides: [2, 2] }),
        ...residualConvBlock('ResidualConvBlock_0', 'max_pool_0', 32),
        flax.mean([1, 2]), flax.Dense(10),
      ]),
      input: image(n, 32, 2, 3),
    };
  if (arch === 'dw_separable')
    return {
      model: new flax.Model([
        flax.Conv(8, [3, 3], { padding: 1, featureGroupCount: 8 }), flax.BatchNorm(), flax.fn('nn.relu'), // depthwise
        flax.Conv(16, [1, 1]), flax.BatchNorm(), flax.fn('nn.relu'), // pointwise
      ]),
      input: image(n, 16, 2, 8),
    };
  // embedding -> conv1d -> relu -> global max pool -> dense
  return {
    model: new flax.Model([flax.Embed(100, 16), flax.Conv(32, [3], { padding: 'SAME' }), flax.fn('nn.relu'), flax.max([1]), flax.Dense(4)]),
    input: { shape: [n, 20], vocab: 100 },
  };
}

// ------------------------------------------------------------------ recurrent layers (issue #11)

const RECURRENT_KEYS = ['input', 'hidden', 'seq', 'layers', 'bidirectional', 'merge', 'activation', 'reset_after', 'initial_state', 'output', 'head'];
const ARCH_KEYS = {
  text_classifier: ['arch', 'vocab', 'embed', 'hidden', 'seq', 'classes'],
  seq2seq: ['arch', 'input', 'hidden', 'seq', 'targets'],
};
const BIAS_SCALE = 0.2; // perturbed biases ~ N(0, 0.2²): torch's own init spans ±1/sqrt(H) (0.25 at H 16)
const RNN_TRAIN_ROWS = 128;
const RNN_TRAIN_STEPS = 10;

// The carry leaves of a cell in Flax's order (LSTM cells (c, h), the others h) and the value
// of the final carry's leaf `leaf` of a module that returns its carry.
const carryOf = (cell) => (cell.type === 'LSTMCell' || cell.type === 'OptimizedLSTMCell' ? ['c', 'h'] : ['h']);
const carryValue = (module, dir, cell, leaf) =>
  `${module}:carry${dir ? `/${dir}` : ''}${carryOf(cell).length > 1 ? `/${leaf}` : ''}`;

/**
 * Layers rnn / lstm / gru (docs/suites.md): the cell (SimpleCell / LSTMCell / GRUCell) scanned
 * by nn.RNN, per layer RNN_k or Bidirectional_k (merge_fn concatenate or add). initial_state:
 * the initial carries are model inputs, per layer (and direction) in Flax's order, named
 * c0_i / h0_i with i = layer·directions + direction (PyTorch's index). output last: the last
 * layer's final carry h (= its last step; return_carry=True), then Dense(head); output states:
 * the sequence, then every layer's final h, then (LSTM) every final c, in Flax's [N, hidden].
 */
function recurrentModel(layer, spec, n) {
  const arch = spec && typeof spec === 'object' && !Array.isArray(spec) ? spec.arch : undefined;
  if (arch !== undefined && arch !== null) return archModel(layer, spec, n);
  const s = specOf(spec, RECURRENT_KEYS);
  const input = s.int('input'), hidden = s.int('hidden'), seq = s.int('seq'), layers = s.int('layers', 1);
  const bidirectional = s.bool('bidirectional', false);
  const merge = s.choice('merge', ['concat', 'sum'], 'concat');
  if (!bidirectional && spec.merge != null) throw new Error('spec.merge: only for bidirectional layers');
  if (layer !== 'rnn' && spec.activation != null) throw new Error(`spec.activation: only for layer rnn, not ${layer}`);
  if (layer !== 'gru' && spec.reset_after != null) throw new Error(`spec.reset_after: only for layer gru, not ${layer}`);
  const activation = s.choice('activation', ['tanh', 'relu'], 'tanh');
  if (layer === 'gru' && !s.bool('reset_after', true))
    throw new NotApplicable("Flax's GRUCell applies the reset gate after the recurrent product (reset_after) only");
  const initialState = s.bool('initial_state', false);
  const output = s.choice('output', ['sequence', 'last', 'states'], 'sequence');
  if (spec.head != null && output !== 'last') throw new Error('spec.head: only with output last');
  const head = spec.head != null ? s.int('head') : null;
  if (output === 'last' && bidirectional)
    throw new Error("spec.output: last reads the last layer's final carry, which is its last step only for a unidirectional layer");

  const cell = () => (layer === 'rnn' ? flax.SimpleCell(hidden, { activationFn: `nn.${activation}` })
    : layer === 'lstm' ? flax.LSTMCell(hidden) : flax.GRUCell(hidden));
  const leaves = carryOf(cell());
  const dirs = bidirectional ? ['forward_rnn', 'backward_rnn'] : [''];
  const inputNames = ['x'];
  const inputs = [{ shape: [n, seq, input] }];
  const modules = [];
  const carries = []; // [{layer index i, module, dir}] of every final carry, in PyTorch's order
  const returnCarry = output === 'states' || output === 'last';
  let previous = 'x';
  for (let k = 0; k < layers; k++) {
    const name = bidirectional ? `Bidirectional_${k}` : `RNN_${k}`;
    const carryInputs = [];
    if (initialState)
      dirs.forEach((_, d) => leaves.forEach((leaf) => {
        const v = `${leaf}0_${k * dirs.length + d}`;
        inputNames.push(v);
        inputs.push({ shape: [n, hidden] });
        carryInputs.push(v);
      }));
    const opts = { inputs: [previous, ...carryInputs], returnCarry: returnCarry && (output === 'states' || k === layers - 1) };
    modules.push(bidirectional
      ? flax.Bidirectional(flax.RNN(cell()), flax.RNN(cell()), { ...opts, mergeFn: merge === 'sum' ? 'add' : 'concatenate' })
      : flax.RNN(cell(), opts));
    dirs.forEach((dir) => carries.push({ module: name, dir }));
    previous = name;
  }
  const outputs = [];
  if (output === 'last') {
    const h = carryValue(previous, '', cell(), 'h');
    if (head) modules.push(flax.Dense(head, { inputs: [h] }));
    outputs.push(head ? 'Dense_0' : h);
  } else {
    outputs.push(previous);
    if (output === 'states')
      for (const leaf of ['h', 'c'].filter((l) => leaves.includes(l))) carries.forEach(({ module, dir }) => outputs.push(carryValue(module, dir, cell(), leaf)));
  }
  return { model: new flax.Model(modules, { inputs: inputNames, outputs }), inputs };
}

/**
 * arch text_classifier: Embed(vocab, embed) -> nn.RNN(OptimizedLSTMCell(hidden),
 * return_carry=True) -> Dense(classes) on the final h, trained on ids -> the vocabulary third
 * most of them fall in (softmax cross-entropy). arch seq2seq: nn.RNN(GRUCell(hidden)) ->
 * Dense(targets) on every step, trained on tanh(cumsum(x) A / sqrt(t)) (MSE).
 */
function archModel(layer, spec, n) {
  const arch = specOf({ arch: spec.arch }, ['arch']).choice('arch', Object.keys(ARCH_KEYS));
  const s = specOf(spec, ARCH_KEYS[arch]);
  if (arch === 'text_classifier') {
    if (layer !== 'lstm') throw new Error(`spec.arch: text_classifier is an lstm fixture, not ${layer}`);
    const vocab = s.int('vocab'), classes = s.int('classes'), seq = s.int('seq');
    const model = new flax.Model([
      flax.Embed(vocab, s.int('embed')),
      flax.RNN(flax.OptimizedLSTMCell(s.int('hidden')), { returnCarry: true }),
      flax.Dense(classes, { inputs: ['RNN_0:carry/h'] }),
    ]);
    return {
      model, inputs: [{ shape: [n, seq], vocab }],
      task: (key) => {
        const ids = random.randint(key, { minval: 0, maxval: vocab, shape: [RNN_TRAIN_ROWS, seq], dtype: np.int32 });
        // label: the vocabulary third (of `classes` equal parts) holding most of the ids
        const part = np.floor(ids.ref.astype(np.float32).mul(classes / vocab)).astype(np.int32);
        const counts = np.sum(nn.oneHot(part, classes), 1);
        return { x: ids, y: nn.oneHot(np.argmax(counts, 1).astype(np.int32), classes), loss: 'softmax_cross_entropy' };
      },
    };
  }
  if (layer !== 'gru') throw new Error(`spec.arch: seq2seq is a gru fixture, not ${layer}`);
  const input = s.int('input'), seq = s.int('seq'), targets = s.int('targets');
  return {
    model: new flax.Model([flax.RNN(flax.GRUCell(s.int('hidden'))), flax.Dense(targets)]),
    inputs: [{ shape: [n, seq, input] }],
    task: (key) => {
      const keys = random.split(key, 2);
      const [kx, ka] = [0, 1].map((i) => keys.ref.slice(i));
      keys.dispose();
      const x = random.normal(kx, [RNN_TRAIN_ROWS, seq, input]);
      const a = random.normal(ka, [input, targets]).div(Math.sqrt(input));
      const steps = np.arange(1, seq + 1).astype(np.float32).reshape([1, seq, 1]);
      const y = np.tanh(np.matmul(np.cumsum(x.ref, 1).div(np.sqrt(steps)), a));
      return { x, y, loss: 'mse' };
    },
  };
}

/** Every bias of the params pytree plus N(0, BIAS_SCALE²) (Flax initialises them to zeros). */
const perturbBiases = (variables, key) => perturbLeaves(variables, key, 'bias');

/** Every params leaf named `leaf` ("bias", or "scale": norms' scales, 1 at init) plus N(0, BIAS_SCALE²). */
function perturbLeaves(variables, key, leaf) {
  const leaves = flax.flattenVariables(variables.params).filter(([name]) => name.endsWith(`/${leaf}`) || name === leaf);
  const keys = random.split(key, Math.max(leaves.length, 1));
  leaves.forEach(([name], i) => {
    const parts = name.split('/');
    let o = variables.params;
    for (const q of parts.slice(0, -1)) o = o[q];
    const b = o[parts[parts.length - 1]];
    o[parts[parts.length - 1]] = b.add(random.normal(keys.ref.slice(i), b.shape).mul(BIAS_SCALE));
  });
  keys.dispose();
  return variables;
}

// Built as the recurrent layers are: several inputs, biases perturbed (no training).
const RECURRENT = { rnn: recurrentModel, lstm: recurrentModel, gru: recurrentModel, mha: attentionModel, transformer: transformerModel };

// layer -> (spec, samples) -> {model, input: {shape, vocab?}}: moved towards a random target.
const BUILDERS = {
  cnn1: (spec, n) => convModel(1, spec, n),
  cnn2: (spec, n) => convModel(2, spec, n),
  cnn3: (spec, n) => convModel(3, spec, n),
  conv_transpose: convTransposeModel,
  dense_general: denseGeneralModel,
  einsum: einsumModel,
  swiglu: swigluModel,
  pool: poolModel,
  batchnorm: batchnormModel,
  groupnorm: groupnormModel,
  layernorm: normModel('layernorm'),
  rmsnorm: normModel('rmsnorm'),
  embedding: embeddingModel,
  model: wholeModel,
  mixer: mixerModel,
};

// N(0, 1) floats, or ids uniform in [0, vocab) as i32 (Flax's Embed takes integer ids).
// A valid-steps mask [N, T] (1.0 / 0.0): row i valid for its first T - i mod ceil(T/2) steps.
function validMask(key, [rows, t]) {
  key.dispose();
  const keep = (i) => t - (i % Math.ceil(t / 2));
  return np.array(Array.from({ length: rows * t }, (_, j) => (j % t < keep(Math.floor(j / t)) ? 1 : 0)), { shape: [rows, t] });
}
const draw = (key, { shape, vocab, valid }) =>
  valid ? validMask(key, shape) : vocab ? random.randint(key, { minval: 0, maxval: vocab, shape, dtype: np.int32 }) : random.normal(key, shape);

/**
 * Full-batch Adam on target = tanh(X @ A) @ B (layers dense and residual). Consumes
 * `variables`, returns the trained ones.
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
  try {
    return await fit(model, variables, x.ref, y.ref, TRAIN_STEPS);
  } finally {
    tree.dispose([x, y]);
  }
}

/**
 * Moves every variable off its initialisation: FIT_STEPS Adam steps on x towards a fixed random
 * target of the output's shape, then (with BatchNorm) BN_PASSES training-mode forward passes.
 * Consumes `variables` and `x`, returns the trained variables.
 */
async function fitRandomTarget(model, variables, key, x) {
  const out = model.apply(tree.ref(variables), x.ref);
  const y = random.normal(key, out.shape);
  out.dispose();
  try {
    variables = await fit(model, variables, x.ref, y.ref, FIT_STEPS);
    if (!variables.batch_stats) return variables;
    // Flax: _, updates = model.apply(variables, x, mutable=['batch_stats']) (training mode).
    const pass = jax.jit((v, xs) => model.applyTrain(v, xs)[1].batch_stats);
    for (let i = 0; i < BN_PASSES; i++) {
      const stats = await jax.blockUntilReady(pass(tree.ref(variables), x.ref));
      tree.dispose(variables.batch_stats);
      variables = { ...variables, batch_stats: stats };
    }
    pass.dispose();
    return variables;
  } finally {
    tree.dispose([x, y]);
  }
}

/**
 * Full-batch Adam on mse(model(x), y), the step jit-compiled (as optax would be under jax.jit),
 * in Flax's training mode: BatchNorm normalises with the batch and its batch_stats move.
 * Consumes `variables`, `x` and `y`; returns the trained variables.
 */
async function fit(model, variables, x, y, steps, { loss: lossName = 'mse' } = {}) {
  // jax-js is lazy: realise the data once, and each step before the next, or every step
  // re-dispatches a growing chain of pending work (measured: ~10x slower).
  await jax.blockUntilReady([x, y]);
  const loss = (p, bs, xs, ys) => {
    const [out, updates] = model.applyTrain({ params: p, ...(bs ? { batch_stats: bs } : {}) }, xs);
    // optax.softmax_cross_entropy over one-hot labels, or the mean squared error.
    const l = lossName === 'softmax_cross_entropy' ? np.mean(np.sum(nn.logSoftmax(out, -1).mul(ys), -1)).mul(-1) : np.mean(np.square(out.sub(ys)));
    return [l, updates.batch_stats];
  };
  // c1 = 1/(1 - b1^t), c2 = 1/(1 - b2^t): Adam's bias corrections for step t.
  const stepFn = (p, bs, m, s, xs, ys, c1, c2) => {
    const [[l, bs2], g] = jax.valueAndGrad(loss, { hasAux: true })(tree.ref(p), bs, xs, ys);
    l.dispose();
    const m2 = tree.map((mi, gi) => mi.mul(ADAM.b1).add(gi.mul(1 - ADAM.b1)), m, tree.ref(g));
    const s2 = tree.map((si, gi) => si.mul(ADAM.b2).add(np.square(gi).mul(1 - ADAM.b2)), s, g);
    const p2 = tree.map(
      (pi, mi, si) => pi.sub(mi.mul(c1.ref).mul(LEARNING_RATE).div(np.sqrt(si.mul(c2.ref)).add(ADAM.eps))),
      p, tree.ref(m2), tree.ref(s2)
    );
    c1.dispose();
    c2.dispose();
    return [p2, bs2, m2, s2];
  };
  // jax-js 0.1.25 cannot jit the gradient of jnp.take (a scatter) when the cotangent comes
  // straight from a matmul or conv ("jit: routine primitive scatter input is not imm"): models
  // with an Embed train eagerly (same arithmetic, slower dispatch), unless only recurrent
  // modules read it (their scan unstacks the time steps first: that gradient jit compiles).
  // Likewise behind a norm or a residual add (elementwise first: the mixer's pre-norm stack).
  const SAFE = new Set(['RNN', 'Bidirectional', 'LayerNorm', 'RMSNorm', 'add']);
  const scanned = (e) => {
    const readers = model.modules.filter((l) => l._inputs.includes(e.name));
    return readers.length > 0 && readers.every((l) => SAFE.has(l.type));
  };
  const eager = model.modules.some((l) => l.type === 'Embed' && !scanned(l));
  const step = eager ? Object.assign(stepFn, { dispose() {} }) : jax.jit(stepFn);
  let { params, batch_stats: stats = {} } = variables;
  const hasStats = 'batch_stats' in variables;
  let m = tree.map((p) => np.zerosLike(p.ref), params);
  let s = tree.map((p) => np.zerosLike(p.ref), params);
  for (let t = 1; t <= steps; t++) {
    const c1 = np.array(1 / (1 - ADAM.b1 ** t));
    const c2 = np.array(1 / (1 - ADAM.b2 ** t));
    [params, stats, m, s] = await jax.blockUntilReady(step(params, stats, m, s, x.ref, y.ref, c1, c2));
  }
  step.dispose();
  tree.dispose([m, s, x, y]);
  return hasStats ? { params, batch_stats: stats } : { params };
}

/**
 * A recurrent fixture: initialised as Flax does, then trained (arch fixtures) or its biases
 * perturbed; captured on fresh draws (sequences and initial carries N(0, 1), ids uniform).
 */
async function buildRecurrent(fixture, recurrent) {
  const samples = intField(fixture, 'samples');
  const { model, inputs, task, scales } = recurrent(fixture.layer, fixture.spec, samples);
  const keys = random.split(random.key(fixtureSeed(fixture)), 3 + inputs.length);
  const [kInit, kTrain, ...kx] = Array.from({ length: 3 + inputs.length }, (_, i) => keys.ref.slice(i));
  keys.dispose();
  const kInitX = kx.pop();
  const initKeys = random.split(kInitX, inputs.length);
  let variables = await jax.blockUntilReady(model.init(kInit, ...inputs.map((d, i) => draw(initKeys.ref.slice(i), d))));
  initKeys.dispose();
  if (task) {
    const { x, y, loss } = task(kTrain);
    variables = await fit(model, variables, x, y, RNN_TRAIN_STEPS, { loss });
  } else if (scales) {
    // transformer: the norms' scales perturbed too, so a scale read as a bias (or not at all) shows
    const sub = random.split(kTrain, 2);
    const [kBias, kScale] = [0, 1].map((i) => sub.ref.slice(i));
    sub.dispose();
    variables = await jax.blockUntilReady(perturbLeaves(perturbBiases(variables, kBias), kScale, 'scale'));
  } else {
    variables = await jax.blockUntilReady(perturbBiases(variables, kTrain));
  }
  const xs = inputs.map((d, i) => draw(kx[i], d)); // inputs the training never saw
  try {
    return await flax.capture({ model, variables, inputs: xs, modelId: fixture.id, taps: true });
  } finally {
    tree.dispose([variables, xs]);
  }
}

/** The Stream for one fixture {id, layer, samples, seed, spec}. */
async function build(fixture) {
  const layer = LAYERS[fixture.layer];
  const builder = BUILDERS[fixture.layer];
  const recurrent = RECURRENT[fixture.layer];
  if (!layer && !builder && !recurrent)
    throw new Error(`layer ${JSON.stringify(fixture.layer)} is not supported by the jax capture (known: ${[...Object.keys(LAYERS), ...Object.keys(BUILDERS), ...Object.keys(RECURRENT)].join(', ')})`);
  if (recurrent) return buildRecurrent(fixture, recurrent);
  const samples = intField(fixture, 'samples');
  let model, x, variables;
  const keys = random.split(random.key(fixtureSeed(fixture)), 3);
  const [kInit, kTrain, kx] = [0, 1, 2].map((i) => keys.ref.slice(i));
  keys.dispose();
  if (layer) {
    let inputs, outputs;
    [model, inputs, outputs] = layer(fixture.spec);
    variables = await jax.blockUntilReady(model.init(kInit, np.zeros([1, inputs])));
    variables = await train(model, variables, kTrain, inputs, outputs);
    x = random.normal(kx, [samples, inputs]);
  } else {
    let input;
    ({ model, input } = builder(fixture.spec, samples));
    const sub = random.split(kTrain, 2);
    const [kFit, kTarget] = [0, 1].map((i) => sub.ref.slice(i));
    sub.dispose();
    const xFit = draw(kFit, input);
    variables = await jax.blockUntilReady(model.init(kInit, xFit.ref));
    variables = await fitRandomTarget(model, variables, kTarget, xFit);
    x = draw(kx, input); // evaluate on inputs the training never saw
  }
  try {
    return await flax.capture({ model, variables, inputs: [x], modelId: fixture.id, taps: true });
  } finally {
    tree.dispose([variables, x]);
  }
}

module.exports = {
  ACTIVATIONS, LAYERS, BUILDERS, RECURRENT, recurrentModel, attentionModel, transformerModel, mixerModel, perturbLeaves, einsumModel, swigluModel, perturbBiases, denseModel, residualModel, convModel, convTransposeModel, denseGeneralModel, poolModel, batchnormModel, groupnormModel, wholeModel,
  train, fit, build, fixtureSeed,
};
