'use strict';
/**
 * Fixtures of the layer families of issue 10 (docs/suites.md): conv_transpose, upsample,
 * separable, prelu, time_distributed. Stock tfjs layers with explicit names, channels-last
 * inputs; not trained (tfjs's cpu backend is slow at these gradients and adds nothing here):
 * seeded glorotNormal kernels and N(0, 0.5²) biases (PReLU's alpha too), so nothing is zero.
 */
const { NotApplicable, Spec } = require('../../../capture/js/pbstream.js');

function families(tf, { ACTIVATIONS, NOT_IN_TFJS }) {
  const spatial = (dims, size, channels) => [...Array(dims).fill(size), channels];
  const act = (s) => {
    const a = s.choice('activation', ['linear', ...Object.keys(ACTIVATIONS), ...NOT_IN_TFJS], 'linear');
    if (NOT_IN_TFJS.has(a) || typeof ACTIVATIONS[a] !== 'string' && a !== 'linear')
      throw new NotApplicable(`tfjs has no "${a}" activation string for a convolution`);
    return a === 'linear' ? 'linear' : ACTIVATIONS[a];
  };

  /** conv_transpose: conv2dTranspose / conv3dTranspose per filter count. */
  function convTranspose(spec, init) {
    const s = new Spec(spec, ['dims', 'in_channels', 'size', 'filters', 'kernel', 'stride', 'padding', 'activation', 'bias']);
    const dims = s.choice('dims', [2, 3], 2);
    const inputShape = spatial(dims, s.int('size'), s.int('in_channels'));
    const model = tf.sequential({ name: init.name });
    const useBias = s.bool('bias', true), activation = act(s);
    s.ints('filters').forEach((filters, i) => {
      model.add(tf.layers[dims === 2 ? 'conv2dTranspose' : 'conv3dTranspose']({
        filters, kernelSize: s.int('kernel'), strides: s.int('stride', 1), padding: s.choice('padding', ['valid', 'same'], 'valid'),
        activation, useBias, name: `conv_t_${i + 1}`, kernelInitializer: init.kernel(), ...(useBias ? { biasInitializer: init.bias() } : {}),
        ...(i === 0 ? { inputShape } : {}),
      }));
    });
    return { model, inputShape, fit: false };
  }

  /** upsample: conv2d(filters, 3, same) then upSampling2d(scale, mode). */
  function upsample(spec, init) {
    const s = new Spec(spec, ['in_channels', 'size', 'filters', 'scale', 'mode']);
    const inputShape = spatial(2, s.int('size'), s.int('in_channels'));
    // tfjs's upSampling2d needs a list (a number gives size[0] undefined: NaN sizes).
    const scale = Array.isArray(spec.scale) ? s.ints('scale') : Array(2).fill(s.int('scale', 2));
    const model = tf.sequential({ name: init.name, layers: [
      tf.layers.conv2d({ filters: s.int('filters'), kernelSize: 3, padding: 'same', name: 'conv', inputShape,
        kernelInitializer: init.kernel(), biasInitializer: init.bias() }),
      tf.layers.upSampling2d({ size: scale, interpolation: s.choice('mode', ['nearest', 'bilinear'], 'nearest'), name: 'up' }),
    ] });
    return { model, inputShape, fit: false };
  }

  /** separable: separableConv2d per filter count. */
  function separable(spec, init) {
    const s = new Spec(spec, ['in_channels', 'size', 'filters', 'kernel', 'depth_multiplier', 'stride', 'padding', 'activation']);
    const inputShape = spatial(2, s.int('size'), s.int('in_channels'));
    const model = tf.sequential({ name: init.name });
    const activation = act(s);
    s.ints('filters').forEach((filters, i) => {
      model.add(tf.layers.separableConv2d({
        filters, kernelSize: s.int('kernel'), depthMultiplier: s.int('depth_multiplier', 1), strides: s.int('stride', 1),
        padding: s.choice('padding', ['valid', 'same'], 'valid'), activation, name: `sep_${i + 1}`,
        depthwiseInitializer: init.kernel(), pointwiseInitializer: init.kernel(), biasInitializer: init.bias(),
        ...(i === 0 ? { inputShape } : {}),
      }));
    });
    return { model, inputShape, fit: false };
  }

  /** prelu: dense(features) or conv2d(filters, 3, same) then prelu (alpha per channel). */
  function prelu(spec, init) {
    const s = new Spec(spec, ['dims', 'in_channels', 'size', 'filters']);
    const dims = s.choice('dims', [0, 2]);
    const inputShape = dims === 0 ? [s.int('in_channels')] : spatial(2, s.int('size'), s.int('in_channels'));
    const first = dims === 0
      ? tf.layers.dense({ units: s.int('filters'), name: 'dense', inputShape, kernelInitializer: init.kernel(), biasInitializer: init.bias() })
      : tf.layers.conv2d({ filters: s.int('filters'), kernelSize: 3, padding: 'same', name: 'conv', inputShape,
        kernelInitializer: init.kernel(), biasInitializer: init.bias() });
    const p = tf.layers.prelu({ name: 'prelu', alphaInitializer: init.bias(), ...(dims === 0 ? {} : { sharedAxes: [1, 2] }) });
    return { model: tf.sequential({ name: init.name, layers: [first, p] }), inputShape, fit: false };
  }

  /** time_distributed: timeDistributed(dense(units)) on [N, seq, input], or (inner conv2d) timeDistributed(conv2d) on [N, seq, size, size, in]. */
  function timeDistributed(spec, init) {
    const s = new Spec(spec, ['inner', 'seq', 'input', 'units', 'size', 'in_channels', 'filters']);
    const inner = s.choice('inner', ['dense', 'conv2d']);
    const inputShape = inner === 'dense' ? [s.int('seq'), s.int('input')] : [s.int('seq'), s.int('size'), s.int('size'), s.int('in_channels')];
    const layer = inner === 'dense'
      ? tf.layers.dense({ units: s.int('units'), activation: 'relu', name: 'dense', kernelInitializer: init.kernel(), biasInitializer: init.bias() })
      : tf.layers.conv2d({ filters: s.int('filters'), kernelSize: 3, activation: 'relu', name: 'conv', kernelInitializer: init.kernel(), biasInitializer: init.bias() });
    const model = tf.sequential({ name: init.name, layers: [tf.layers.timeDistributed({ layer, name: 'td', inputShape })] });
    return { model, inputShape, fit: false };
  }

  return { conv_transpose: convTranspose, upsample, separable, prelu, time_distributed: timeDistributed };
}

module.exports = { families };
