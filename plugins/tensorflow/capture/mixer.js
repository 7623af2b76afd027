'use strict';
/**
 * layer mixer (the MIXER SPEC, the same two models on every planet; docs/planets/tensorflow.md):
 * many layer types in one functional model, every numbered layer named `lNN_<type>` and tapped.
 *
 * arch all_v1: x [N, 8, 16] -> l01_dense (32) -> l02_conv1d (32, kernel 3, same; on [N, T, C] as
 * Keras convolves) -> l03_layernorm -> l04_mha (4 heads, key_dim 8, self-attention, biases) ->
 * l05_rmsnorm -> l06_lstm (32, sequence) -> l07_dense (32, tanh) -> l08_swiglu (ff 64, biases:
 * l08_swiglu_gate_proj, _up_proj, _silu, _mul, then l08_swiglu, the down_proj) -> l09_layernorm ->
 * l10_dense (8): y [N, 8, 8].
 *
 * arch all_v2: ids int32 [N, 8] in [0, 50) -> l01_embedding (50, 32), then pre-norm residual
 * blocks h = h + f(norm(h)), the add named lNN_add after layer NN: l02_layernorm -> l03_mha
 * (causal) -> l03_add; l04_rmsnorm -> l05_swiglu -> l05_add; l06_layernorm -> l07_conv1d -> l07_add;
 * l08_rmsnorm -> l09_gru -> l09_add; l10_layernorm -> l11_simple_rnn (tanh) -> l11_add;
 * l12_rmsnorm -> l13_lstm -> l13_add; then l14_layernorm -> l15_dense (10) -> l16_softmax (an
 * Activation layer, softmax over the last axis): y [N, 8, 10].
 *
 * Stock tfjs layers except RMSNorm (fixtures.RMSNorm), MultiHeadAttention (attention.js) and
 * SwiGLU (stock layers wired as a block), which the stream labels composed. The recurrent layers
 * are tfjs's stock simpleRNN / lstm / gru (gru: tfjs's only form, reset_after false) with
 * recurrentActivation 'sigmoid', as the recurrent fixtures. Seeded like the mha and recurrent
 * fixtures and not trained: kernels glorotNormal, recurrent kernels orthogonal, every bias and
 * LayerNormalization beta N(0, 0.5²), LayerNormalization gamma and RMSNorm scale N(1, 0.25²),
 * Embedding uniform(±0.05) (tfjs's default).
 */
const { Spec } = require('../../../capture/js/pbstream.js');
const attention = require('./attention.js');
const recurrent = require('./recurrent.js');

const SEQ = 8, D = 32, HEADS = 4, FF = 64;

function mixer(tf, { RMSNorm }) {
  return (spec, init) => {
    const s = new Spec(spec, ['arch']);
    const arch = s.choice('arch', ['all_v1', 'all_v2']);
    const dense = (units, name, activation = 'linear') =>
      tf.layers.dense({ units, activation, name, kernelInitializer: init.kernel(), biasInitializer: init.bias() });
    const conv = (name) => tf.layers.conv1d({ filters: D, kernelSize: 3, padding: 'same', name, kernelInitializer: init.kernel(), biasInitializer: init.bias() });
    const layerNorm = (name) => tf.layers.layerNormalization({ name, gammaInitializer: init.gamma(), betaInitializer: init.bias() });
    const rmsNorm = (name) => new RMSNorm({ name, scaleInitializer: init.gamma() });
    const mha = (name, causal) => (t) => new attention.MultiHeadAttention({ name, numHeads: HEADS, keyDim: D / HEADS, kernelInitializer: init.kernel,
      biasInitializer: init.bias }).apply([t, t], causal ? { useCausalMask: true } : {});
    const swiglu = (p) => (t) => {
      const gate = tf.layers.activation({ activation: 'swish', name: `${p}_silu` }).apply(dense(FF, `${p}_gate_proj`).apply(t));
      const gated = tf.layers.multiply({ name: `${p}_mul` }).apply([gate, dense(FF, `${p}_up_proj`).apply(t)]);
      return dense(D, `${p}_down_proj`).apply(gated);
    };
    const rnn = (cell, name) => recurrent.recurrentLayer(cell, { units: D, returnSequences: true, name }, init);
    const apply = (layer) => (t) => layer.apply(t);
    const composed = [attention.COMPOSED_MHA, attention.COMPOSED_SWIGLU];

    if (arch === 'all_v1') {
      const x = tf.input({ shape: [SEQ, 16], name: 'x' });
      const y = [
        apply(dense(D, 'l01_dense')), apply(conv('l02_conv1d')), apply(layerNorm('l03_layernorm')), mha('l04_mha', false),
        apply(rmsNorm('l05_rmsnorm')), apply(rnn('lstm', 'l06_lstm')), apply(dense(D, 'l07_dense', 'tanh')), swiglu('l08_swiglu'),
        apply(layerNorm('l09_layernorm')), apply(dense(8, 'l10_dense')),
      ].reduce((t, f) => f(t), x);
      return { model: tf.model({ inputs: x, outputs: y, name: init.name }), inputShape: [SEQ, 16], fit: false, composed };
    }
    const ids = tf.input({ shape: [SEQ], dtype: 'int32', name: 'ids' });
    let h = tf.layers.embedding({ inputDim: 50, outputDim: D, name: 'l01_embedding', embeddingsInitializer: init.uniform() }).apply(ids);
    const residual = (n, norm, f) => {
      h = tf.layers.add({ name: `l${n}_add` }).apply([h, f(norm.apply(h))]);
    };
    residual('03', layerNorm('l02_layernorm'), mha('l03_mha', true));
    residual('05', rmsNorm('l04_rmsnorm'), swiglu('l05_swiglu'));
    residual('07', layerNorm('l06_layernorm'), apply(conv('l07_conv1d')));
    residual('09', rmsNorm('l08_rmsnorm'), apply(rnn('gru', 'l09_gru')));
    residual('11', layerNorm('l10_layernorm'), apply(rnn('rnn', 'l11_simple_rnn')));
    residual('13', rmsNorm('l12_rmsnorm'), apply(rnn('lstm', 'l13_lstm')));
    const y = [layerNorm('l14_layernorm'), dense(10, 'l15_dense'), tf.layers.activation({ activation: 'softmax', name: 'l16_softmax' })]
      .reduce((t, l) => l.apply(t), h);
    return { model: tf.model({ inputs: ids, outputs: y, name: init.name }), inputShape: [SEQ], vocab: 50, fit: false, composed };
  };
}

module.exports = { mixer };
