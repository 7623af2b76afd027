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
const { Spec } = require('../../../capture/js/pbstream.js');

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
  }

  // Keras's call argument use_causal_mask: tfjs records it in the inbound node (what the stream
  // carries) but its model executor calls call() without it, so the layer keeps it from apply().
  apply(inputs, kwargs = {}) {
    if ([inputs].flat().every((t) => t instanceof tf.SymbolicTensor)) {
      const causal = Boolean(kwargs && kwargs.useCausalMask);
      if (this.useCausalMask !== null && this.useCausalMask !== causal)
        throw new Error(`MultiHeadAttention "${this.name}": called with and without useCausalMask (one setting per layer here)`);
      this.useCausalMask = causal;
    }
    return super.apply(inputs, kwargs);
  }

  build(inputShape) {
    if (!Array.isArray(inputShape[0]) || inputShape.length < 2 || inputShape.length > 3)
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

  call(inputs) {
    return tf.tidy(() => {
      const [query, value, key = value] = inputs;
      // Keras scales the queries by 1/sqrt(key_dim) before the product.
      const q = this.project(query, 'query').mul(1 / Math.sqrt(this.keyDim));
      const k = this.project(key, 'key');
      const v = this.project(value, 'value');
      let scores = tf.matMul(q, k, false, true); // [N, heads, Tq, Tk]
      if (this.useCausalMask) {
        // Keras: query i sees keys j <= i; elsewhere its softmax adds -1e9.
        const [tq, tk] = scores.shape.slice(2);
        const seen = tf.linalg.bandPart(tf.ones([tq, tk]), -1, 0);
        scores = scores.add(tf.sub(1, seen).mul(-1e9));
      }
      const context = tf.matMul(tf.softmax(scores, -1), v); // [N, heads, Tq, value_dim]
      const [n, h, tq, dv] = context.shape;
      const merged = context.transpose([0, 2, 1, 3]).reshape([n * tq, h * dv]);
      const { kernel, bias } = this.w.attention_output;
      const out = kernel.shape[2];
      let y = tf.matMul(merged, kernel.read().reshape([h * dv, out]));
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

module.exports = { COMPOSED_MHA, COMPOSED_SWIGLU, MultiHeadAttention, mhaModel, swigluModel };
