'use strict';
/**
 * Attention and gated feed-forward fixtures of the tensorflow planet (layer keys mha and swiglu;
 * specs in docs/planets/tensorflow.md), and the attention layer tfjs lacks.
 *
 * tfjs 4.22 has no public MultiHeadAttention: tf.layers has none and its class registry has none
 * (an unexported port sits in @tensorflow/tfjs-layers/dist/layers/nlp/, which the package's entry
 * point never loads). MultiHeadAttention below builds Keras's layer from tfjs ops the way a tfjs
 * user writes attention: per-head projections as matMuls, reshape, transpose, matMul of queries
 * and keys, an optional causal mask, softmax, matMul with the values, the heads merged by the
 * output projection. It serialises as Keras 2/3 do (class "MultiHeadAttention", num_heads,
 * key_dim, value_dim, use_bias, output_shape, attention_axes; weights query/kernel [features,
 * heads, key_dim], query/bias [heads, key_dim], key/..., value/... [.., value_dim],
 * attention_output/kernel [heads, value_dim, output], attention_output/bias [output]), is called
 * as Keras's is, layer.apply([query, value(, key)], {useCausalMask}), and the stream says
 * "composed".
 *
 * SwiGLU (no tfjs layer either) is stock layers wired as a tfjs user would: Dense gate and up
 * without activation, the swish Activation on the gate, Multiply, Dense down.
 */

const pbtf = require('./pb_tfjs.js');
const { NotApplicable, Spec } = require('../../../capture/js/pbstream.js');

const { tf } = pbtf;

const ROLES = ['query', 'key', 'value', 'attention_output'];

class MultiHeadAttention extends tf.layers.Layer {
  constructor(config) {
    super(config);
    this.numHeads = config.numHeads;
    this.keyDim = config.keyDim;
    this.valueDim = config.valueDim == null ? config.keyDim : config.valueDim;
    this.useBias = config.useBias === undefined ? true : config.useBias;
    this.outputShape_ = config.outputShape == null ? null : config.outputShape;
    for (const [k, v] of [['numHeads', this.numHeads], ['keyDim', this.keyDim], ['valueDim', this.valueDim]])
      if (!Number.isInteger(v) || v < 1) throw new Error(`MultiHeadAttention: ${k} must be a positive integer, got ${JSON.stringify(v)}`);
    this.kernelInitializer = config.kernelInitializer || (() => tf.initializers.glorotUniform({}));
    this.biasInitializer = config.biasInitializer || (() => tf.initializers.zeros());
    this.useCausalMask = null; // from the call (Keras's call argument); tfjs's predict() does not pass call kwargs on
    this.masked = null; // whether the call passed an attentionMask (its fourth input)
  }

  // Keras's call arguments use_causal_mask and attention_mask. tfjs records a call's keywords in
  // the inbound node (what the stream carries) but its model executor calls call() without them,
  // so the layer keeps them from apply(). A tensor keyword cannot be serialised by tfjs (it drops
  // every keyword of such a call), so the attention mask travels as the call's fourth input
  // [query, value, key, attention_mask] (key made explicit) and the keyword as
  // attention_mask: true, which says so (docs/planets/tensorflow.md).
  apply(inputs, kwargs = {}) {
    const { attentionMask, ...rest } = kwargs || {};
    const symbolic = [inputs].flat().every((t) => t instanceof tf.SymbolicTensor);
    if (attentionMask != null) {
      if (!symbolic || !(attentionMask instanceof tf.SymbolicTensor))
        throw new Error(`MultiHeadAttention "${this.name}": attentionMask must be a symbolic tensor (a model input or a layer's output)`);
      if (!Array.isArray(inputs) || inputs.length < 2 || inputs.length > 3)
        throw new Error(`MultiHeadAttention "${this.name}": call it on [query, value] or [query, value, key]`);
      const [query, value, key = value] = inputs;
      inputs = [query, value, key, attentionMask];
      rest.attentionMask = true;
    }
    if (symbolic) {
      const causal = Boolean(rest.useCausalMask), masked = attentionMask != null;
      if ((this.useCausalMask !== null && this.useCausalMask !== causal) || (this.masked != null && this.masked !== masked))
        throw new Error(`MultiHeadAttention "${this.name}": called with and without useCausalMask or attentionMask (one setting per layer here)`);
      this.useCausalMask = causal;
      this.masked = masked;
    }
    if (!symbolic) return super.apply(inputs, rest);
    // tfjs 4.22's model executor counts a tensor's consumers once per layer but decrements the
    // count once per input slot, so a layer given the same intermediate tensor twice (mha(h, h))
    // frees it while a later layer (the residual Add) still needs it ("Tensor is disposed"). The
    // output's executor inputs are therefore the distinct tensors; call() maps them back to the
    // call's slots. The inbound node (what the config says) keeps every slot.
    const list = [inputs].flat();
    const distinct = [...new Set(list)];
    const out = super.apply(inputs, rest);
    this.slots = list.map((t) => distinct.indexOf(t));
    for (const o of [out].flat()) o.inputs = distinct;
    return out;
  }

  build(inputShape) {
    if (!Array.isArray(inputShape[0]) || inputShape.length < 2 || inputShape.length > (this.masked ? 4 : 3))
      throw new Error(`MultiHeadAttention "${this.name}": call it on [query, value] or [query, value, key]`);
    const [q, v, k = v] = inputShape;
    const last = (s) => s[s.length - 1];
    const out = this.outputShape_ == null ? last(q) : this.outputShape_;
    const h = this.numHeads;
    const shapes = {
      query: [[last(q), h, this.keyDim], [h, this.keyDim]],
      key: [[last(k), h, this.keyDim], [h, this.keyDim]],
      value: [[last(v), h, this.valueDim], [h, this.valueDim]],
      attention_output: [[h, this.valueDim, out], [out]],
    };
    this.w = {};
    for (const role of ROLES) {
      const [kernel, bias] = shapes[role];
      this.w[role] = {
        kernel: this.addWeight(`${role}/kernel`, kernel, 'float32', this.kernelInitializer()),
        bias: this.useBias ? this.addWeight(`${role}/bias`, bias, 'float32', this.biasInitializer()) : null,
      };
    }
    this.built = true;
  }

  // x [N, T, F] -> [N, heads, T, dim]: x · kernel [F, heads·dim] (+ bias), split into heads.
  project(x, role) {
    const [n, t, f] = x.shape;
    const { kernel, bias } = this.w[role];
    const [, h, dim] = kernel.shape;
    let y = tf.matMul(x.reshape([n * t, f]), kernel.read().reshape([f, h * dim]));
    if (bias) y = y.add(bias.read().reshape([h * dim]));
    return y.reshape([n, t, h, dim]).transpose([0, 2, 1, 3]);
  }

  // The taps inside the layer (pb_tfjs.js capture with taps: it sets this.recording to {} around
  // one run of the model and stores the tensors as "<layer>/<step>"): the very tensors call()
  // computes, kept past its tidy. q, k, v: the projections split into heads [N, heads, T, dim],
  // before the query's scaling; scores: the scaled product q·kᵀ [N, heads, Tq, Tk] before any
  // mask (tfjs masks with -1e9, the decoder a causal mask with -inf, which a comparison cannot
  // match; the weights show the mask); weights: the softmax; context: the heads merged [N, Tq,
  // heads·value_dim]. The output projection is the layer's own tap "<layer>".
  tap(steps) {
    if (!this.recording) return;
    for (const [step, t] of Object.entries(steps)) this.recording[step] = tf.keep(t.clone());
  }

  call(inputs) {
    return tf.tidy(() => {
      if (this.slots && inputs.length !== this.slots.length) inputs = this.slots.map((i) => inputs[i]);
      const [query, value, key = value] = inputs;
      const mask = this.masked ? inputs[3] : null;
      // Keras scales the queries by 1/sqrt(key_dim) before the product.
      const q = this.project(query, 'query');
      const k = this.project(key, 'key');
      const v = this.project(value, 'value');
      let scores = tf.matMul(q.mul(1 / Math.sqrt(this.keyDim)), k, false, true); // [N, heads, Tq, Tk]
      this.tap({ q, k, v, scores });
      const [tq, tk] = scores.shape.slice(2);
      // Keras: query i sees keys j <= i (use_causal_mask), and those the attention mask [N, Tq or 1,
      // Tk] allows (non-zero); the two are combined (logical and), then its softmax adds -1e9 where
      // masked: scores + (1 - mask)·(-1e9).
      const causal = this.useCausalMask ? tf.linalg.bandPart(tf.ones([tq, tk]), -1, 0) : null;
      if (mask) {
        if (mask.rank !== 3 || mask.shape[0] !== scores.shape[0] || (mask.shape[1] !== tq && mask.shape[1] !== 1) || mask.shape[2] !== tk)
          throw new Error(`MultiHeadAttention "${this.name}": attentionMask must be [batch, ${tq} or 1, ${tk}], got [${mask.shape}]`);
        let allowed = tf.notEqual(mask, 0).cast('float32').expandDims(1); // [N, 1, Tq or 1, Tk]
        if (causal) allowed = allowed.mul(causal);
        scores = scores.add(tf.sub(1, allowed).mul(-1e9));
      } else if (causal) {
        scores = scores.add(tf.sub(1, causal).mul(-1e9));
      }
      const weights = tf.softmax(scores, -1);
      const context = tf.matMul(weights, v); // [N, heads, Tq, value_dim]
      const [n, h, , dv] = context.shape;
      const merged = context.transpose([0, 2, 1, 3]).reshape([n, tq, h * dv]); // the heads merged
      this.tap({ weights, context: merged });
      const { kernel, bias } = this.w.attention_output;
      const out = kernel.shape[2];
      let y = tf.matMul(merged.reshape([n * tq, h * dv]), kernel.read().reshape([h * dv, out]));
      if (bias) y = y.add(bias.read());
      return y.reshape([n, tq, out]);
    });
  }

  computeOutputShape(inputShape) {
    const q = inputShape[0];
    return [...q.slice(0, -1), this.outputShape_ == null ? q[q.length - 1] : this.outputShape_];
  }

  getConfig() {
    return {
      ...super.getConfig(), numHeads: this.numHeads, keyDim: this.keyDim, valueDim: this.valueDim, dropout: 0, useBias: this.useBias,
      outputShape: this.outputShape_, attentionAxes: null,
    };
  }
}
MultiHeadAttention.className = 'MultiHeadAttention';
tf.serialization.registerClass(MultiHeadAttention);

const COMPOSED_MHA = 'MultiHeadAttention: tfjs 4.22 has none; composed from tfjs ops (matMul projections, reshape, transpose, '
  + 'scaled matMul, causal mask, softmax, matMul, output projection) as Keras defines it, serialised with Keras\'s config and weights';
const COMPOSED_SWIGLU = 'SwiGLU: tfjs has no SwiGLU layer; composed from stock layers: Dense gate and up (no activation), '
  + 'swish Activation on the gate, Multiply, Dense down';

/**
 * layer mha: inputs query x [N, seq, d_model] and, for cross-attention (kv_seq, kdim or vdim
 * given), value [N, kv_seq, vdim] and key [N, kv_seq, kdim] (key only when kdim is given, else
 * the value is the key, as in Keras); key_dim = value_dim = d_model / heads; mask causal: Keras's
 * use_causal_mask.
 */
function mhaModel(spec, init) {
  const s = new Spec(spec, ['d_model', 'heads', 'seq', 'kv_seq', 'kdim', 'vdim', 'mask', 'bias']);
  const d = s.int('d_model'), heads = s.int('heads'), seq = s.int('seq');
  if (d % heads) throw new Error(`spec.heads: d_model ${d} is not divisible by heads ${heads}`);
  const cross = ['kv_seq', 'kdim', 'vdim'].some((k) => k in spec);
  const kvSeq = s.int('kv_seq', seq), vdim = s.int('vdim', d);
  const causal = s.choice('mask', ['none', 'causal'], 'none') === 'causal';
  const useBias = s.bool('bias', true);
  const x = tf.input({ shape: [seq, d], name: 'x' });
  const inputs = [x], inputShapes = [[seq, d]];
  if (cross) {
    inputs.push(tf.input({ shape: [kvSeq, vdim], name: 'value' }));
    inputShapes.push([kvSeq, vdim]);
    if ('kdim' in spec) {
      inputs.push(tf.input({ shape: [kvSeq, s.int('kdim')], name: 'key' }));
      inputShapes.push([kvSeq, s.int('kdim')]);
    }
  }
  const mha = new MultiHeadAttention({ name: 'mha', numHeads: heads, keyDim: d / heads, useBias, kernelInitializer: init.kernel, biasInitializer: init.bias });
  const y = mha.apply(cross ? inputs : [x, x], causal ? { useCausalMask: true } : {});
  return { model: tf.model({ inputs, outputs: y, name: init.name }), inputShapes, fit: false, composed: [COMPOSED_MHA] };
}

/** layer swiglu: down(swish(gate(x)) · up(x)) on x [N, (seq,) d_model]. */
function swigluModel(spec, init) {
  const s = new Spec(spec, ['d_model', 'ff', 'seq', 'bias']);
  const d = s.int('d_model'), ff = s.int('ff'), useBias = s.bool('bias', true);
  const shape = 'seq' in spec ? [s.int('seq'), d] : [d];
  const dense = (units, name) => tf.layers.dense({ units, useBias, name, kernelInitializer: init.kernel(), ...(useBias ? { biasInitializer: init.bias() } : {}) });
  const x = tf.input({ shape, name: 'x' });
  const gate = tf.layers.activation({ activation: 'swish', name: 'silu' }).apply(dense(ff, 'gate').apply(x));
  const h = tf.layers.multiply({ name: 'gated' }).apply([gate, dense(ff, 'up').apply(x)]);
  const y = dense(d, 'down').apply(h);
  return { model: tf.model({ inputs: x, outputs: y, name: init.name }), inputShape: shape, fit: false, composed: [COMPOSED_SWIGLU] };
}

/**
 * layer transformer: Keras-style transformer blocks (as the Keras examples write a TransformerBlock)
 * from stock tfjs layers and the composed MultiHeadAttention, no dropout. Input x [N, seq, d_model].
 * Post-norm (norm_first false): x = ln_1(x + mha(x, x)); x = ln_2(x + ffn(x)). Pre-norm: x = x +
 * mha(ln_1(x), ln_1(x)); x = x + ffn(ln_2(x)). ffn: Dense(ff, activation) then Dense(d_model).
 * layers blocks (block_1, block_2, ... named <block>_mha, _add_1, _ln_1, _ff_1, _ff_2, _add_2,
 * _ln_2; one block: no prefix number), then with final_norm a LayerNormalization "final_ln".
 * mask: none | causal (use_causal_mask: kind decoder_only implies it) | padding (a second input
 * padding_mask int32 [N, seq], 1 at tokens and 0 at the padded end of each row, the first row
 * unpadded, every row at least one token; Reshape to [N, 1, seq] as the attention_mask of every
 * block). kind: encoder (default) | decoder_only (a GPT-style block: causal self-attention, no
 * memory); PyTorch's kind decoder (cross-attention on a memory) is not built here.
 * LayerNormalization: tfjs's epsilon 1e-3 unless spec eps; gamma ~ N(1, 0.25²), beta ~ N(0, 0.5²).
 */
function transformerModel(spec, init) {
  const s = new Spec(spec, ['kind', 'd_model', 'heads', 'ff', 'seq', 'norm_first', 'activation', 'layers', 'final_norm', 'mask', 'eps', 'bias']);
  const kind = s.choice('kind', ['encoder', 'decoder_only', 'decoder', 'transformer'], 'encoder');
  if (kind === 'decoder' || kind === 'transformer')
    throw new NotApplicable(`spec.kind: "${kind}" (cross-attention on a memory) is not built on tensorflow; kind decoder_only is a causal self-attention block`);
  const d = s.int('d_model'), heads = s.int('heads'), ff = s.int('ff'), seq = s.int('seq');
  if (d % heads) throw new Error(`spec.heads: d_model ${d} is not divisible by heads ${heads}`);
  const normFirst = s.bool('norm_first', false), finalNorm = s.bool('final_norm', false);
  const activation = { relu: 'relu', gelu: 'gelu' }[s.choice('activation', ['relu', 'gelu'], 'relu')];
  const blocks = s.int('layers', 1);
  const mask = s.choice('mask', ['none', 'causal', 'padding'], kind === 'decoder_only' ? 'causal' : 'none');
  if (kind === 'decoder_only' && mask !== 'causal') throw new Error(`spec.mask: a decoder_only block is causal, got "${mask}"`);
  const epsilon = s.number('eps', 1e-3), useBias = s.bool('bias', true);
  const dense = (units, name, act = 'linear') => tf.layers.dense({ units, activation: act, useBias, name, kernelInitializer: init.kernel(),
    ...(useBias ? { biasInitializer: init.bias() } : {}) });
  const norm = (name) => tf.layers.layerNormalization({ epsilon, name, gammaInitializer: init.gamma(), betaInitializer: init.bias() });
  const add = (name, a, b) => tf.layers.add({ name }).apply([a, b]);

  const x = tf.input({ shape: [seq, d], name: 'x' });
  const inputs = [x], inputShapes = [[seq, d]];
  let attentionMask = null;
  if (mask === 'padding') {
    const valid = tf.input({ shape: [seq], dtype: 'int32', name: 'padding_mask' });
    inputs.push(valid);
    inputShapes.push([seq]);
    attentionMask = tf.layers.reshape({ targetShape: [1, seq], name: 'attention_mask' }).apply(valid);
  }
  const call = { ...(mask === 'causal' ? { useCausalMask: true } : {}), ...(attentionMask ? { attentionMask } : {}) };
  let h = x;
  for (let b = 1; b <= blocks; b++) {
    const p = blocks === 1 ? '' : `block_${b}_`;
    const mha = new MultiHeadAttention({ name: `${p}mha`, numHeads: heads, keyDim: d / heads, useBias, kernelInitializer: init.kernel, biasInitializer: init.bias });
    const ffn = (t) => dense(d, `${p}ff_2`).apply(dense(ff, `${p}ff_1`, activation).apply(t));
    if (normFirst) {
      const n1 = norm(`${p}ln_1`).apply(h);
      h = add(`${p}add_1`, h, mha.apply([n1, n1], call));
      h = add(`${p}add_2`, h, ffn(norm(`${p}ln_2`).apply(h)));
    } else {
      h = norm(`${p}ln_1`).apply(add(`${p}add_1`, h, mha.apply([h, h], call)));
      h = norm(`${p}ln_2`).apply(add(`${p}add_2`, h, ffn(h)));
    }
  }
  if (finalNorm) h = norm('final_ln').apply(h);
  const draw = mask !== 'padding' ? null : (rows, seed) => {
    // Valid lengths in [1, seq], the first row whole; 1 at tokens, 0 at the padded end.
    const lengths = Array.from(tf.randomUniform([rows], 1, seq + 1, 'int32', seed + 7).dataSync());
    lengths[0] = seq;
    const valid = tf.tensor2d(lengths.flatMap((n) => Array.from({ length: seq }, (_, t) => (t < n ? 1 : 0))), [rows, seq], 'int32');
    return [tf.randomNormal([rows, seq, d], 0, 1, 'float32', seed), valid];
  };
  return { model: tf.model({ inputs, outputs: h, name: init.name }), inputShapes, draw, fit: false, composed: [COMPOSED_MHA] };
}

module.exports = { COMPOSED_MHA, COMPOSED_SWIGLU, MultiHeadAttention, mhaModel, swigluModel, transformerModel };
