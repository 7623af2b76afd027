'use strict';
/**
 * Tests for the jax-js capture's transformer and mixer fixtures (fixtures.js: transformerModel,
 * mixerModel): their Flax module lists, names and inputs, the errors naming the spec field, and
 * live captures whose native outputs are checked against a float64 reference of Flax's
 * equations computed here from the stream's own tensors (independent of jax-js).
 * Run: node --test plugins/jax/capture/
 */

const test = require('node:test');
const assert = require('node:assert/strict');
const flax = require('./flax.js');
const fixtures = require('./fixtures.js');

const { jax } = flax;
const { numpy: np, random } = jax;

test.before(async () => {
  await flax.ready();
});

// ---- float64 references over one batch row, Flax's layouts (kernels [in, out])

// x [rows, d] . kernel [d, f] + bias
function dense(x, rows, d, kernel, bias, f) {
  const out = new Float64Array(rows * f);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < f; j++) {
      let acc = bias ? bias[j] : 0;
      for (let i = 0; i < d; i++) acc += x[r * d + i] * kernel[i * f + j];
      out[r * f + j] = acc;
    }
  return out;
}
// flax.linen.LayerNorm over the last axis, epsilon 1e-6.
function layerNorm(x, rows, d, scale, bias) {
  const out = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    const row = x.slice(r * d, (r + 1) * d);
    const mu = row.reduce((a, b) => a + b, 0) / d;
    const v = row.reduce((a, b) => a + (b - mu) ** 2, 0) / d;
    for (let i = 0; i < d; i++) out[r * d + i] = ((row[i] - mu) / Math.sqrt(v + 1e-6)) * scale[i] + bias[i];
  }
  return out;
}
// Flax's self-attention of x [L, d] (query/key/value kernels [d, H, hd], out [H, hd, d]); mask(i, j).
function attention(x, L, d, H, p, mask) {
  const hd = d / H;
  const [Q, K, V] = ['query', 'key', 'value'].map((n) => dense(x, L, d, p[n].kernel, p[n].bias, d));
  const ctx = new Float64Array(L * d);
  for (let h = 0; h < H; h++)
    for (let i = 0; i < L; i++) {
      const w = Array.from({ length: L }, (_, j) => {
        let acc = 0;
        for (let t = 0; t < hd; t++) acc += (Q[i * d + h * hd + t] / Math.sqrt(hd)) * K[j * d + h * hd + t];
        return mask && !mask(i, j) ? -3.4028234663852886e38 : acc;
      });
      const m = Math.max(...w);
      const e = w.map((v) => Math.exp(v - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let t = 0; t < hd; t++) ctx[i * d + h * hd + t] = e.reduce((a, ej, j) => a + (ej / z) * V[j * d + h * hd + t], 0);
    }
  return dense(ctx, L, d, p.out.kernel, p.out.bias, d);
}
// erf (Abramowitz-Stegun 7.1.26 is 1.5e-7 off: enough against float32 at 1e-5).
function erf(v) {
  const s = Math.sign(v), a = Math.abs(v), t = 1 / (1 + 0.3275911 * a);
  return s * (1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a));
}
const ACT = { relu: (v) => Math.max(v, 0), gelu: (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)) };
const addv = (a, b) => a.map((v, i) => v + b[i]);

// The stream's params under a prefix, as plain arrays: {query: {kernel, bias}, ...}.
function paramsAt(stream, prefix) {
  const out = {};
  for (const [name, t] of Object.entries(stream.tensors)) {
    if (!name.startsWith(`params/${prefix}/`)) continue;
    const parts = name.slice(`params/${prefix}/`.length).split('/');
    let o = out;
    for (const q of parts.slice(0, -1)) o = o[q] ??= {};
    o[parts[parts.length - 1]] = Array.from(t.data);
  }
  return out;
}

// One block of the transformer fixture over x [L, d], as the docstring of transformerModel.
function block(stream, name, x, L, d, H, ff, { normFirst, activation, selfAttention, mask }) {
  const p = paramsAt(stream, name);
  const attn = (h) => attention(h, L, d, H, p[selfAttention ? 'SelfAttention_0' : 'MultiHeadDotProductAttention_0'], mask);
  const mlp = (h) => {
    const m = p.MlpBlock_0;
    const a = dense(h, L, d, m.Dense_0.kernel, m.Dense_0.bias, ff).map(ACT[activation]);
    return dense(a, L, ff, m.Dense_1.kernel, m.Dense_1.bias, d);
  };
  const ln = (h, k) => layerNorm(h, L, d, p[`LayerNorm_${k}`].scale, p[`LayerNorm_${k}`].bias);
  if (normFirst) {
    const a = addv(x, attn(ln(x, 0)));
    return addv(a, mlp(ln(a, 1)));
  }
  const a = ln(addv(x, attn(x)), 0);
  return ln(addv(a, mlp(a)), 1);
}

function close(got, want, tol, what) {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = 0, at = -1;
  got.forEach((g, i) => {
    const e = Math.abs(g - want[i]) - tol * (1 + Math.abs(want[i]));
    if (e > worst) [worst, at] = [e, i];
  });
  assert.ok(at < 0, `${what}: element ${at} is ${got[at]}, want ${want[at]}`);
}

const fx = (id, spec, samples = 3) => ({ id, layer: 'transformer', samples, seed: 42, spec });

test('transformer: Flax tutorial blocks - post-norm, pre-norm, padding mask, causal decoder-only; names by Flax path', () => {
  const post = fixtures.transformerModel('transformer', { d_model: 8, heads: 2, ff: 16, seq: 4 }, 3);
  assert.deepEqual(post.model.describe().map((l) => [l.type, l.name, l.inputs ?? null]), [
    ['MultiHeadDotProductAttention', 'EncoderBlock_0/MultiHeadDotProductAttention_0', ['x']],
    ['add', 'EncoderBlock_0/add_0', ['x', 'EncoderBlock_0/MultiHeadDotProductAttention_0']],
    ['LayerNorm', 'EncoderBlock_0/LayerNorm_0', ['EncoderBlock_0/add_0']],
    ['Dense', 'EncoderBlock_0/MlpBlock_0/Dense_0', ['EncoderBlock_0/LayerNorm_0']],
    ['fn', 'EncoderBlock_0/MlpBlock_0/relu_0', null],
    ['Dense', 'EncoderBlock_0/MlpBlock_0/Dense_1', null],
    ['add', 'EncoderBlock_0/add_1', ['EncoderBlock_0/LayerNorm_0', 'EncoderBlock_0/MlpBlock_0/Dense_1']],
    ['LayerNorm', 'EncoderBlock_0/LayerNorm_1', ['EncoderBlock_0/add_1']],
  ]);
  assert.deepEqual(post.model.outputNames, ['EncoderBlock_0/LayerNorm_1']);
  assert.deepEqual(post.inputs, [{ shape: [3, 4, 8] }]);

  const pre = fixtures.transformerModel('transformer', { d_model: 8, heads: 2, ff: 16, seq: 4, norm_first: true, activation: 'gelu', self_attention: true }, 3);
  const d = pre.model.describe();
  assert.deepEqual(d.map((l) => l.name), ['EncoderBlock_0/LayerNorm_0', 'EncoderBlock_0/SelfAttention_0', 'EncoderBlock_0/add_0', 'EncoderBlock_0/LayerNorm_1',
    'EncoderBlock_0/MlpBlock_0/Dense_0', 'EncoderBlock_0/MlpBlock_0/gelu_0', 'EncoderBlock_0/MlpBlock_0/Dense_1', 'EncoderBlock_0/add_1']);
  assert.equal(d[5].approximate, false); // the suite's gelu is the erf form
  assert.deepEqual(d[7].inputs, ['EncoderBlock_0/add_0', 'EncoderBlock_0/MlpBlock_0/Dense_1']);

  const pad = fixtures.transformerModel('transformer', { d_model: 8, heads: 2, ff: 16, seq: 4, layers: 2, final_norm: true, mask: 'padding' }, 3);
  assert.deepEqual(pad.model.inputNames, ['x', 'valid']);
  assert.deepEqual(pad.inputs, [{ shape: [3, 4, 8] }, { shape: [3, 4], valid: true }]);
  const pd = pad.model.describe();
  assert.equal(pd[0].type, 'make_attention_mask');
  assert.deepEqual(pd.find((l) => l.name === 'EncoderBlock_1/MultiHeadDotProductAttention_0').inputs, ['EncoderBlock_0/LayerNorm_1', 'make_attention_mask_0']);
  assert.deepEqual(pd.find((l) => l.name === 'EncoderBlock_1/MultiHeadDotProductAttention_0').arguments, ['inputs_q', 'mask']);
  assert.deepEqual(pad.model.outputNames, ['encoder_norm']);

  const causal = fixtures.transformerModel('transformer', { d_model: 8, heads: 2, ff: 16, seq: 4, mask: 'causal', norm_first: true, vocab: 11 }, 3);
  assert.deepEqual(causal.model.describe().slice(0, 3).map((l) => [l.type, l.name]),
    [['Embed', 'Embed_0'], ['make_causal_mask', 'make_causal_mask_0'], ['LayerNorm', 'DecoderBlock_0/LayerNorm_0']]);
  assert.deepEqual(causal.inputs, [{ shape: [3, 4], vocab: 11 }]);
});

test('transformer: errors name the spec field', () => {
  const base = { d_model: 8, heads: 2, ff: 16, seq: 4 };
  for (const [spec, field] of [
    [{ ...base, kind: 'decoder' }, /spec\.kind/],
    [{ ...base, vocab: 9 }, /spec\.vocab/],
    [{ ...base, heads: 3 }, /spec\.heads/],
    [{ ...base, activation: 'tanh' }, /spec\.activation/],
    [{ ...base, mask: 'causal_padding' }, /spec\.mask/],
    [{ ...base, batch_first: false }, /spec\.batch_first/],
    [{ ...base, ff: 0 }, /spec\.ff/],
    [{ d_model: 8, heads: 2, seq: 4 }, /spec\.ff/],
  ]) assert.throws(() => fixtures.transformerModel('transformer', spec, 3), field, JSON.stringify(spec));
});

test('transformer fixtures (live): jax-js output equals Flax\'s equations in float64; biases and LayerNorm scales perturbed; deterministic', async () => {
  const H = 2, d = 8, ff = 12, L = 5, N = 3;
  const spec = { d_model: d, heads: H, ff, seq: L, layers: 2, final_norm: true, mask: 'padding' };
  const s = await fixtures.build(fx('flax_transformer_pad', spec, N));
  assert.ok(s.toBytes().equals((await fixtures.build(fx('flax_transformer_pad', spec, N))).toBytes()), 'same fixture, same bytes');
  assert.ok(s.doc.composed.some((c) => c.startsWith('LayerNorm:')) && s.doc.composed.some((c) => c.startsWith('make_attention_mask:')));
  const scale = Array.from(s.tensors['params/EncoderBlock_1/LayerNorm_0/scale'].data);
  assert.ok(scale.every((v) => v !== 1), 'LayerNorm scales moved off 1');
  assert.ok(Array.from(s.tensors['params/EncoderBlock_0/MlpBlock_0/Dense_0/bias'].data).every((v) => v !== 0), 'biases moved off 0');
  for (const n of ['EncoderBlock_0/add_0', 'EncoderBlock_1/MultiHeadDotProductAttention_0', 'encoder_norm']) assert.equal(s.doc.taps[n], `tap.${n}`);
  const x = Array.from(s.tensors['input.0'].data), valid = Array.from(s.tensors['input.1'].data);
  const want = [];
  for (let b = 0; b < N; b++) {
    const mask = (i, j) => valid[b * L + i] * valid[b * L + j] > 0;
    let h = Float64Array.from(x.slice(b * L * d, (b + 1) * L * d));
    for (const k of [0, 1]) h = block(s, `EncoderBlock_${k}`, h, L, d, H, ff, { normFirst: false, activation: 'relu', selfAttention: false, mask });
    const p = paramsAt(s, 'encoder_norm');
    want.push(...layerNorm(h, L, d, p.scale, p.bias));
  }
  close(Array.from(s.tensors['output.0'].data), want, 1e-5, 'post-norm encoder x2, padding mask');

  const cspec = { d_model: d, heads: H, ff, seq: L, norm_first: true, activation: 'gelu', mask: 'causal', self_attention: true, vocab: 13 };
  const c = await fixtures.build(fx('flax_transformer_causal', cspec, N));
  const ids = Array.from(c.tensors['input.0'].data), emb = Array.from(c.tensors['params/Embed_0/embedding'].data);
  const cwant = [];
  for (let b = 0; b < N; b++) {
    const h = Float64Array.from({ length: L * d }, (_, t) => emb[ids[b * L + Math.floor(t / d)] * d + (t % d)]);
    cwant.push(...block(c, 'DecoderBlock_0', h, L, d, H, ff, { normFirst: true, activation: 'gelu', selfAttention: true, mask: (i, j) => j <= i }));
  }
  close(Array.from(c.tensors['output.0'].data), cwant, 1e-5, 'pre-norm causal decoder-only block');
});

// ---- mixer

const MIXER_V1 = [
  ['Dense', 'l01_dense'], ['Conv', 'l02_conv1d'], ['LayerNorm', 'l03_layernorm'], ['MultiHeadDotProductAttention', 'l04_mha'], ['RMSNorm', 'l05_rmsnorm'],
  ['RNN', 'l06_lstm'], ['Dense', 'l07_dense'], ['fn', 'l07_tanh'], ['Dense', 'l08_swiglu/gate_proj'], ['fn', 'l08_swiglu/silu_0'], ['Dense', 'l08_swiglu/up_proj'],
  ['multiply', 'l08_swiglu/multiply_0'], ['Dense', 'l08_swiglu/down_proj'], ['LayerNorm', 'l09_layernorm'], ['Dense', 'l10_dense'],
];

test('mixer: the two archs\' Flax modules, names and inputs; errors name the spec field', () => {
  const v1 = fixtures.mixerModel({ arch: 'all_v1' }, 4);
  assert.deepEqual(v1.model.describe().map((l) => [l.type, l.name]), MIXER_V1);
  assert.deepEqual(v1.input, { shape: [4, 8, 16] });
  const d1 = v1.model.describe();
  assert.equal(d1[5].cell.type, 'LSTMCell');
  assert.deepEqual(d1[1].kernel_size, [3]);
  assert.equal(d1[1].padding, 'SAME');
  assert.deepEqual(d1[8].inputs, ['l07_tanh']);

  const v2 = fixtures.mixerModel({ arch: 'all_v2' }, 4);
  const d2 = v2.model.describe();
  assert.deepEqual(v2.input, { shape: [4, 8], vocab: 50 });
  assert.deepEqual(v2.model.inputNames, ['ids']);
  assert.deepEqual(v2.model.outputNames, ['l16_softmax']);
  const by = Object.fromEntries(d2.map((l) => [l.name, l]));
  assert.deepEqual(by.l03_mha.inputs, ['l02_layernorm', 'causal_mask']);
  assert.equal(by.l03_mha.type, 'SelfAttention');
  assert.deepEqual(by.l03_residual.inputs, ['l01_embed', 'l03_mha']);
  assert.deepEqual(by.l05_residual.inputs, ['l03_residual', 'l05_swiglu/down_proj']);
  assert.deepEqual(by.l07_residual.inputs, ['l05_residual', 'l07_conv1d']);
  assert.deepEqual(by.l09_residual.inputs, ['l07_residual', 'l09_gru']);
  assert.deepEqual(by.l11_residual.inputs, ['l09_residual', 'l11_simple_rnn']);
  assert.deepEqual(by.l13_residual.inputs, ['l11_residual', 'l13_lstm']);
  assert.deepEqual([by.l09_gru.cell.type, by.l11_simple_rnn.cell.type, by.l11_simple_rnn.cell.activation_fn, by.l13_lstm.cell.type], ['GRUCell', 'SimpleCell', 'nn.tanh', 'LSTMCell']);
  assert.deepEqual(['l02_layernorm', 'l04_rmsnorm', 'l06_layernorm', 'l08_rmsnorm', 'l10_layernorm', 'l12_rmsnorm', 'l14_layernorm'].map((n) => by[n].type),
    ['LayerNorm', 'RMSNorm', 'LayerNorm', 'RMSNorm', 'LayerNorm', 'RMSNorm', 'LayerNorm']);
  assert.equal(by.l16_softmax.fn, 'nn.softmax');
  assert.equal(by.l16_softmax.axis, -1);
  // 12 layer types: Embed, LayerNorm, attention, RMSNorm, SwiGLU, Conv, GRU, SimpleRNN, LSTM, Dense, softmax, residual add
  const kinds = new Set(d2.map((l) => (l.type === 'RNN' ? l.cell.type : l.name.includes('swiglu') ? 'SwiGLU' : l.type === 'fn' ? l.fn : l.type)));
  kinds.delete('make_causal_mask');
  assert.equal(kinds.size, 12, [...kinds].join(' '));

  assert.throws(() => fixtures.mixerModel({ arch: 'all_v3' }, 4), /spec\.arch/);
  assert.throws(() => fixtures.mixerModel({ arch: 'all_v1', seq: 9 }, 4), /spec\.seq/);
  assert.throws(() => fixtures.mixerModel({}, 4), /spec\.arch/);
});

test('mixer_all_v1 (live): trained off init, every layer a tap, output [N, 8, 8]; v2 apply is a softmax over 10', async () => {
  const s = await fixtures.build({ id: 'mixer_all_v1', layer: 'mixer', samples: 4, seed: 42, spec: { arch: 'all_v1' } });
  assert.deepEqual(s.tensors['output.0'].shape, [4, 8, 8]);
  for (const [, name] of MIXER_V1) assert.equal(s.doc.taps[name], `tap.${name}`);
  for (const n of ['l03_layernorm/scale', 'l05_rmsnorm/scale', 'l09_layernorm/scale'])
    assert.ok(Array.from(s.tensors[`params/${n}`].data).every((v) => v !== 1), `${n} moved off 1`);
  for (const n of ['l01_dense/bias', 'l02_conv1d/bias', 'l04_mha/query/bias', 'l06_lstm/cell/hi/bias', 'l08_swiglu/down_proj/bias'])
    assert.ok(Array.from(s.tensors[`params/${n}`].data).some((v) => v !== 0), `${n} moved off 0`);
  for (const t of ['Conv', 'MultiHeadDotProductAttention', 'RMSNorm', 'RNN', 'LSTMCell']) assert.ok(s.doc.composed.some((c) => c.startsWith(`${t}:`)), t);

  // v2 untrained (its training is the slow part): init and apply, rows of probabilities.
  const { model, input } = fixtures.mixerModel({ arch: 'all_v2' }, 2);
  const ids = random.randint(random.key(1), { minval: 0, maxval: input.vocab, shape: [2, 8], dtype: np.int32 });
  const v = model.init(random.key(2), ids.ref);
  assert.deepEqual(v.params.l01_embed.embedding.shape, [50, 32]);
  assert.deepEqual(v.params.l07_conv1d.kernel.shape, [3, 32, 32]);
  const y = model.apply(v, ids);
  assert.deepEqual(y.shape, [2, 8, 10]);
  const rows = np.sum(y, -1);
  close(Array.from(await rows.data()), Array(16).fill(1), 1e-6, 'softmax rows');
});

test('the transformer and mixer layers are known to build; an unknown layer lists them', async () => {
  await assert.rejects(fixtures.build({ id: 'x', layer: 'transformers', samples: 2, seed: 42, spec: {} }), /known: .*mixer.*transformer|known: .*transformer.*mixer/);
  await assert.rejects(fixtures.build(fx('t', { d_model: 8, heads: 2, ff: 16, seq: 4, kind: 'transformer' })), /spec\.kind/);
});
