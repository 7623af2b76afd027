'use strict';
/**
 * Tests for the jax-js capture's attention family (flax.js): Einsum, jnp.einsum / matmul,
 * MultiHeadDotProductAttention, SelfAttention, make_causal_mask, make_attention_mask and the
 * SwiGLU block, each against a float64 reference written here from Flax's definitions
 * (independent of jax-js), and the mha / swiglu / einsum fixtures. Run: node --test plugins/jax/capture/
 */

const test = require('node:test');
const assert = require('node:assert/strict');

const flax = require('./flax.js');
const fixtures = require('./fixtures.js');

const { jax } = flax;
const { numpy: np, random } = jax;

const prod = (a) => a.reduce((p, q) => p * q, 1);
const data = async (a) => Array.from(await a.ref.data());
function close(got, want, tol, what) {
  assert.equal(got.length, want.length, `${what}: length`);
  const worst = got.reduce((w, g, i) => Math.max(w, Math.abs(g - want[i]) - tol * (1 + Math.abs(want[i]))), -Infinity);
  assert.ok(worst <= 0, `${what}: off by ${worst + tol} beyond ${tol}`);
}

// Flax's attention in float64, one batch row at a time: q [L, Dq], kv [S, Dk] / [S, Dv], params
// as flat arrays in Flax's layouts (query kernel [D, H, hd], out [H, hd, F]); mask [L, S] or null.
function refAttention(q, k, v, L, S, p, H, hd, F, mask) {
  const proj = (x, rows, d, kernel, bias) => {
    const out = new Float64Array(rows * H * hd);
    for (let r = 0; r < rows; r++)
      for (let f = 0; f < H * hd; f++) {
        let acc = 0;
        for (let i = 0; i < d; i++) acc += x[r * d + i] * kernel[i * H * hd + f];
        out[r * H * hd + f] = acc + (bias ? bias[f] : 0);
      }
    return out;
  };
  const dq = q.length / L, dk = k.length / S, dv = v.length / S;
  const Q = proj(q, L, dq, p.query.kernel, p.query.bias), K = proj(k, S, dk, p.key.kernel, p.key.bias), V = proj(v, S, dv, p.value.kernel, p.value.bias);
  const ctx = new Float64Array(L * H * hd);
  for (let h = 0; h < H; h++)
    for (let i = 0; i < L; i++) {
      const w = new Float64Array(S);
      for (let j = 0; j < S; j++) {
        let acc = 0;
        for (let t = 0; t < hd; t++) acc += (Q[i * H * hd + h * hd + t] / Math.sqrt(hd)) * K[j * H * hd + h * hd + t];
        w[j] = mask && !mask[i * S + j] ? -3.4028234663852886e38 : acc; // jnp.where(mask, w, finfo(float32).min)
      }
      const m = Math.max(...w);
      const e = w.map((x) => Math.exp(x - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let t = 0; t < hd; t++) {
        let acc = 0;
        for (let j = 0; j < S; j++) acc += (e[j] / z) * V[j * H * hd + h * hd + t];
        ctx[i * H * hd + h * hd + t] = acc;
      }
    }
  const out = new Float64Array(L * F);
  for (let i = 0; i < L; i++)
    for (let f = 0; f < F; f++) {
      let acc = 0;
      for (let c = 0; c < H * hd; c++) acc += ctx[i * H * hd + c] * p.out.kernel[c * F + f];
      out[i * F + f] = acc + (p.out.bias ? p.out.bias[f] : 0);
    }
  return out;
}

async function paramsOf(v, name) {
  const p = v.params[name];
  const out = {};
  for (const d of ['query', 'key', 'value', 'out']) out[d] = { kernel: await data(p[d].kernel), bias: p[d].bias ? await data(p[d].bias) : null };
  return out;
}

test('MultiHeadDotProductAttention: Flax layouts, query / sqrt(head_dim), masks with finfo.min, cross-attention', async () => {
  await flax.ready();
  const model = new flax.Model([
    flax.makeAttentionMask(['valid', 'valid']),
    flax.MultiHeadDotProductAttention(2, { qkvFeatures: 6, outFeatures: 5, inputs: ['x', 'make_attention_mask_0'], args: ['inputs_q', 'mask'] }),
    flax.MultiHeadDotProductAttention(3, { inputs: ['x', 'kv'], args: ['inputs_q', 'inputs_kv'], useBias: false }),
    flax.makeCausalMask(['valid']),
  ], { inputs: ['x', 'kv', 'valid'], outputs: ['MultiHeadDotProductAttention_0', 'MultiHeadDotProductAttention_1', 'make_causal_mask_0', 'make_attention_mask_0'] });
  assert.deepEqual(model.describe()[1], {
    type: 'MultiHeadDotProductAttention', name: 'MultiHeadDotProductAttention_0', num_heads: 2, qkv_features: 6, out_features: 5, use_bias: true,
    dropout_rate: 0, deterministic: true, broadcast_dropout: true, decode: false, normalize_qk: false, arguments: ['inputs_q', 'mask'],
    inputs: ['x', 'make_attention_mask_0'],
  });
  const L = 4, S = 5;
  const x = random.normal(random.key(1), [2, L, 3]);
  const kv = random.normal(random.key(2), [2, S, 2]);
  const valid = np.array([1, 1, 1, 1, 1, 1, 0, 0], { shape: [2, L] }); // row 1: the last two queries see no key
  const v = fixtures.perturbBiases(model.init(random.key(3), x.ref, kv.ref, valid.ref), random.key(4));
  const p0 = await paramsOf(v, 'MultiHeadDotProductAttention_0'), p1 = await paramsOf(v, 'MultiHeadDotProductAttention_1');
  assert.deepEqual(v.params.MultiHeadDotProductAttention_0.query.kernel.shape, [3, 2, 3]);
  assert.deepEqual(v.params.MultiHeadDotProductAttention_0.out.kernel.shape, [2, 3, 5]);
  assert.deepEqual(v.params.MultiHeadDotProductAttention_1.key.kernel.shape, [2, 3, 1]);
  assert.equal(v.params.MultiHeadDotProductAttention_1.query.bias, undefined);
  const [xs, kvs, vs] = [await data(x), await data(kv), await data(valid)];
  const [y0, y1, causal, pad] = model.apply(v, x, kv, valid);
  const [g0, g1] = [await data(y0), await data(y1)];
  const want0 = [], want1 = [];
  for (let b = 0; b < 2; b++) {
    const xb = xs.slice(b * L * 3, (b + 1) * L * 3), kvb = kvs.slice(b * S * 2, (b + 1) * S * 2);
    const mask = Array.from({ length: L * L }, (_, t) => vs[b * L + Math.floor(t / L)] * vs[b * L + (t % L)]);
    want0.push(...refAttention(xb, xb, xb, L, L, p0, 2, 3, 5, mask));
    want1.push(...refAttention(xb, kvb, kvb, L, S, p1, 3, 1, 3, null));
  }
  close(g0, want0, 1e-5, 'masked self-attention');
  close(g1, want1, 1e-5, 'cross-attention');
  // make_causal_mask: [batch, 1, L, L], 1 where key <= query; make_attention_mask: q * k, float32.
  assert.deepEqual(causal.shape, [2, 1, L, L]);
  assert.deepEqual((await data(causal)).slice(0, 16), [1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1]);
  assert.deepEqual((await data(pad)).slice(16), [1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  [y0, y1, causal, pad].forEach((a) => a.dispose());
});

test('SelfAttention is MultiHeadDotProductAttention with inputs_k = inputs_v = inputs_q', async () => {
  await flax.ready();
  const self_ = new flax.Model([flax.SelfAttention(2)]);
  const mha = new flax.Model([flax.MultiHeadDotProductAttention(2, { inputs: ['x', 'x', 'x'] })]);
  const x = random.normal(random.key(5), [2, 3, 4]);
  const v = self_.init(random.key(6), x.ref);
  const vm = { params: { MultiHeadDotProductAttention_0: jax.tree.ref(v.params.SelfAttention_0) } };
  const a = await data(self_.apply(v, x.ref));
  const b = await data(mha.apply(vm, x));
  assert.deepEqual(a, b);
  assert.match(flax.COMPOSED.SelfAttention, /jax-js has no Flax/);
});

test('capture: taps inside the attention module "<name>/<step>", the arrays its apply computes', async () => {
  await flax.ready();
  const model = new flax.Model([flax.makeCausalMask(['valid']), flax.SelfAttention(2, { inputs: ['x', 'make_causal_mask_0'], args: ['inputs_q', 'mask'] })],
    { inputs: ['x', 'valid'], outputs: ['SelfAttention_0'] });
  const x = random.normal(random.key(7), [2, 3, 4]);
  const valid = np.ones([2, 3]);
  const v = model.init(random.key(8), x.ref, valid.ref);
  const s = await flax.capture({ model, variables: v, inputs: [x, valid], modelId: 'taps' });
  const steps = ['q', 'k', 'v', 'scores', 'weights', 'context'];
  for (const step of steps) assert.equal(s.doc.taps[`SelfAttention_0/${step}`], `tap.SelfAttention_0/${step}`);
  const shape = (step) => s.tensors[s.doc.taps[`SelfAttention_0/${step}`]].shape;
  for (const step of ['q', 'k', 'v', 'context']) assert.deepEqual(shape(step), [2, 3, 2, 2]); // Flax's [N, L, heads, head_dim]
  assert.deepEqual(shape('scores'), [2, 2, 3, 3]);
  // scores after the mask (finfo(float32).min above the diagonal); weights its softmax.
  const sc = s.tensors[s.doc.taps['SelfAttention_0/scores']].data, w = s.tensors[s.doc.taps['SelfAttention_0/weights']].data;
  assert.equal(sc[1], -3.4028234663852886e38);
  assert.deepEqual([w[0], w[1], w[2]], [1, 0, 0]);
  [x, valid].forEach((a) => a.dispose());
  jax.tree.dispose(v);
});

test('Einsum: kernel of `shape`, Flax\'s bias over the kernel\'s output indices; jnp.einsum and matmul', async () => {
  await flax.ready();
  const model = new flax.Model([
    flax.Einsum([4, 3, 2], 'abc,cde->abde', { inputs: ['x'] }),
    flax.einsum('abc,acd->dba', ['x', 'y']),
    flax.matmul(['x', 'y']),
  ], { inputs: ['x', 'y'], outputs: ['Einsum_0', 'einsum_0', 'matmul_0'] });
  const x = random.normal(random.key(7), [2, 3, 4]);
  const y = random.normal(random.key(8), [2, 4, 5]);
  const v = fixtures.perturbBiases(model.init(random.key(9), x.ref, y.ref), random.key(10));
  assert.deepEqual(v.params.Einsum_0.bias.shape, [3, 2]);
  const [k, bias, xs, ys] = [await data(v.params.Einsum_0.kernel), await data(v.params.Einsum_0.bias), await data(x), await data(y)];
  const [e, f, m] = model.apply(v, x, y);
  const want = [];
  for (let a = 0; a < 2; a++) for (let b = 0; b < 3; b++) for (let d = 0; d < 3; d++) for (let g = 0; g < 2; g++) {
    let acc = 0;
    for (let c = 0; c < 4; c++) acc += xs[(a * 3 + b) * 4 + c] * k[(c * 3 + d) * 2 + g];
    want.push(acc + bias[d * 2 + g]);
  }
  close(await data(e), want, 1e-5, 'Einsum abc,cde->abde');
  const mm = [], perm = [];
  for (let a = 0; a < 2; a++) for (let b = 0; b < 3; b++) for (let d = 0; d < 5; d++) {
    let acc = 0;
    for (let c = 0; c < 4; c++) acc += xs[(a * 3 + b) * 4 + c] * ys[(a * 4 + c) * 5 + d];
    mm.push(acc);
  }
  for (let d = 0; d < 5; d++) for (let b = 0; b < 3; b++) for (let a = 0; a < 2; a++) perm.push(mm[(a * 3 + b) * 5 + d]);
  close(await data(m), mm, 1e-5, 'matmul');
  close(await data(f), perm, 1e-5, 'einsum abc,acd->dba');
  [e, f, m].forEach((a) => a.dispose());
  assert.throws(() => flax.Einsum([2, 2], 'ab,bc'), /must be explicit/);
});

test('SwiGLU: down_proj(silu(gate_proj(x)) * up_proj(x)) under the module\'s path', async () => {
  await flax.ready();
  const model = new flax.Model(flax.SwiGLU(5, 3, { input: 'x', useBias: true }));
  assert.deepEqual(model.describe().map((l) => [l.type, l.name]), [
    ['Dense', 'SwiGLU_0/gate_proj'], ['fn', 'SwiGLU_0/silu_0'], ['Dense', 'SwiGLU_0/up_proj'], ['multiply', 'SwiGLU_0/multiply_0'], ['Dense', 'SwiGLU_0/down_proj'],
  ]);
  const x = random.normal(random.key(11), [4, 3]);
  const v = fixtures.perturbBiases(model.init(random.key(12), x.ref), random.key(13));
  const P = {};
  for (const n of ['gate_proj', 'up_proj', 'down_proj']) P[n] = { k: await data(v.params.SwiGLU_0[n].kernel), b: await data(v.params.SwiGLU_0[n].bias) };
  const xs = await data(x);
  const dense = (inp, rows, d, { k, b }, f) => Array.from({ length: rows * f }, (_, t) => {
    const r = Math.floor(t / f), o = t % f;
    let acc = b[o];
    for (let i = 0; i < d; i++) acc += inp[r * d + i] * k[i * f + o];
    return acc;
  });
  const g = dense(xs, 4, 3, P.gate_proj, 5), u = dense(xs, 4, 3, P.up_proj, 5);
  const h = g.map((z, i) => (z / (1 + Math.exp(-z))) * u[i]);
  close(await data(model.apply(v, x)), dense(h, 4, 5, P.down_proj, 3), 1e-5, 'SwiGLU');
  assert.throws(() => flax.SwiGLU(4, 2), /give the value it reads/);
});

test('mha, swiglu and einsum fixtures: modules, inputs, composed notes; errors name the spec field', async () => {
  await flax.ready();
  const causal = fixtures.attentionModel('mha', { d_model: 8, heads: 2, seq: 4, mask: 'causal', self_attention: true }, 3);
  assert.deepEqual(causal.model.describe().map((l) => l.type), ['Embed', 'make_causal_mask', 'SelfAttention']);
  assert.deepEqual(causal.inputs, [{ shape: [3, 4], vocab: 50 }]);
  const cross = fixtures.attentionModel('mha', { d_model: 8, heads: 2, seq: 4, kv_seq: 6, kv_features: 5 }, 3);
  assert.deepEqual(cross.model.describe()[0].arguments, ['inputs_q', 'inputs_kv']);
  assert.deepEqual(cross.inputs.map((i) => i.shape), [[3, 4, 8], [3, 6, 5]]);
  const padding = fixtures.attentionModel('mha', { d_model: 8, heads: 2, seq: 4, mask: 'padding' }, 3);
  assert.deepEqual(padding.model.inputNames, ['x', 'valid']);
  assert.throws(() => fixtures.attentionModel('mha', { d_model: 8, heads: 2, seq: 4, kv_seq: 6, mask: 'causal' }, 3), /spec.kv_seq/);
  assert.throws(() => fixtures.attentionModel('mha', { d_model: 8, heads: 2, seq: 4, vocab: 9 }, 3), /spec.vocab/);
  assert.throws(() => fixtures.attentionModel('mha', { d_model: 8, heads: 2, seq: 4, mask: 'lower' }, 3), /spec.mask/);
  assert.throws(() => fixtures.einsumModel({ d_model: 8, heads: 3, seq: 4 }, 3), /spec.heads/);
  assert.throws(() => fixtures.swigluModel({ d_model: 8, seq: 4 }, 3), /spec.ff/);

  const stream = await fixtures.build({ id: 'flax_mha_8_2_causal', layer: 'mha', samples: 3, seed: 42, spec: { d_model: 8, heads: 2, seq: 4, mask: 'causal' } });
  assert.deepEqual(stream.doc.model.inputs, ['ids']);
  assert.ok(stream.doc.composed.some((c) => c.startsWith('MultiHeadDotProductAttention:')));
  assert.ok(stream.doc.composed.some((c) => c.startsWith('make_causal_mask:')));
  assert.ok(stream.tensors['params/MultiHeadDotProductAttention_0/query/bias'].data.some((b) => b !== 0)); // biases perturbed
  const sw = await fixtures.build({ id: 'swiglu_8_16', layer: 'swiglu', samples: 3, seed: 42, spec: { d_model: 8, ff: 16, seq: 4, bias: false } });
  assert.deepEqual(sw.doc.model.outputs, ['SwiGLU_0/down_proj']);
  assert.equal(sw.tensors['params/SwiGLU_0/gate_proj/bias'], undefined); // LLaMA's: no bias
  const es = await fixtures.build({ id: 'einsum_8_2', layer: 'einsum', samples: 3, seed: 42, spec: { d_model: 8, heads: 2, seq: 4, layout: 'bhlk' } });
  assert.deepEqual(es.doc.model.modules.map((l) => l.einsum_str).filter(Boolean), ['bld,hdk->bhlk', 'bhlk,khd->bld']);
  assert.equal(prod(es.tensors['output.0'].shape), 3 * 4 * 8);
});
