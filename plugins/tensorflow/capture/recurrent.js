'use strict';
/**
 * Recurrent fixtures of the tensorflow planet (layer keys rnn, lstm, gru; specs in docs/suites.md)
 * and the one recurrent layer tfjs lacks.
 *
 * Stock layers: tf.layers.simpleRNN, lstm, gru (resetAfter false) and bidirectional, always with
 * recurrentActivation 'sigmoid' (tfjs's default is 'hardSigmoid', which the IR's recurrent ops
 * cannot compute; the decoder refuses it). Kernels glorotNormal, recurrent kernels orthogonal,
 * biases N(0, 0.5²), each seeded: every bias is non-zero and a fixture is the same bytes in
 * every run.
 *
 * tfjs 4.22's GRUCell throws on resetAfter: true ("GRUCell does not support reset_after
 * parameter set to true"), yet reset_after is Keras 2/3's default and the suite's. ResetAfterGRU
 * builds that cell from tfjs ops exactly as Keras's GRUCell defines it (kernel [I, 3H],
 * recurrent_kernel [H, 3H], bias [2, 3H]: row 0 added to x·kernel, row 1 to h·recurrent_kernel,
 * the reset gate applied after the recurrent product) and runs it in tfjs's stock RNN loop (and
 * Bidirectional wrapper). It serialises as Keras does, class "GRU" with reset_after: true, and
 * the stream says "composed".
 */

const pbtf = require('./pb_tfjs.js');
const { Spec } = require('../../../capture/js/pbstream.js');

const { tf } = pbtf;

// tfjs's own classes (not exported by name); looked up once, lazily.
let stock = null;
function stockClasses() {
  if (!stock) stock = { GRUCell: tf.layers.gruCell({ units: 1 }).constructor, GRU: tf.layers.gru({ units: 1 }).constructor };
  return stock;
}

let ResetAfterGRU = null;

/** The composed reset_after GRU layer class (see above). */
function resetAfterGRU() {
  if (ResetAfterGRU) return ResetAfterGRU;
  const { GRUCell } = stockClasses();

  class ResetAfterGRUCell extends GRUCell {
    constructor(args) {
      super({ ...args, resetAfter: false }); // the stock constructor refuses true; everything else is its own
      if (this.dropout > 0 || this.recurrentDropout > 0) throw new Error('ResetAfterGRU: dropout is not implemented');
      this.resetAfter = true;
    }

    build(inputShape) {
      const shape = Array.isArray(inputShape[0]) ? inputShape[0] : inputShape;
      const units = this.units;
      this.kernel = this.addWeight('kernel', [shape[shape.length - 1], 3 * units], null, this.kernelInitializer, this.kernelRegularizer, true,
        this.kernelConstraint);
      this.recurrentKernel = this.addWeight('recurrent_kernel', [units, 3 * units], null, this.recurrentInitializer, this.recurrentRegularizer,
        true, this.recurrentConstraint);
      // Keras: bias [2, 3H], the input bias then the recurrent bias.
      this.bias = this.useBias
        ? this.addWeight('bias', [2, 3 * units], null, this.biasInitializer, this.biasRegularizer, true, this.biasConstraint)
        : null;
      this.built = true;
    }

    // Keras's GRUCell with reset_after=True: z, r = σ(x_z + h_z), σ(x_r + h_r) (x_· = x·kernel + b_in,
    // h_· = h·recurrent_kernel + b_rec, gates z, r, h in that order); hh = tanh(x_h + r·h_h);
    // h' = z·h + (1 − z)·hh.
    call(inputs) {
      return tf.tidy(() => {
        const [x, hPrev] = inputs;
        let mx = tf.matMul(x, this.kernel.read());
        let mh = tf.matMul(hPrev, this.recurrentKernel.read());
        if (this.bias) {
          const [bIn, bRec] = tf.unstack(this.bias.read());
          mx = tf.add(mx, bIn);
          mh = tf.add(mh, bRec);
        }
        const [xz, xr, xh] = tf.split(mx, 3, -1);
        const [hz, hr, hh] = tf.split(mh, 3, -1);
        const z = this.recurrentActivation.apply(tf.add(xz, hz));
        const r = this.recurrentActivation.apply(tf.add(xr, hr));
        const n = this.activation.apply(tf.add(xh, tf.mul(r, hh)));
        const h = tf.add(tf.mul(z, hPrev), tf.mul(tf.sub(1, z), n));
        return [h, h];
      });
    }

    getConfig() {
      return { ...super.getConfig(), resetAfter: true };
    }
  }

  ResetAfterGRU = class extends tf.RNN {
    constructor(args) {
      super({ ...args, cell: new ResetAfterGRUCell(args) });
    }

    static fromConfig(cls, config) {
      return new cls(config);
    }
  };
  ResetAfterGRU.className = 'GRU'; // what Keras calls it; never registered (tfjs's own GRU keeps the name)
  return ResetAfterGRU;
}

const COMPOSED_GRU = 'GRU(reset_after=True): tfjs 4.22\'s GRUCell refuses resetAfter, so the cell is built from tfjs ops as Keras\'s '
  + 'GRUCell defines it (bias [2, 3H], the reset gate after the recurrent product), run by tfjs\'s stock RNN loop';

/**
 * tf.layers.bidirectional over `layer`. The wrapper clones its layer through tfjs's class registry
 * by class name, so for a ResetAfterGRU the name "GRU" points at it while the wrapper is built.
 */
function bidirectional(layer, mergeMode, name) {
  if (!(ResetAfterGRU && layer instanceof ResetAfterGRU)) return tf.layers.bidirectional({ layer, mergeMode, name });
  const { SerializationMap } = tf.serialization;
  SerializationMap.register(ResetAfterGRU);
  try {
    return tf.layers.bidirectional({ layer, mergeMode, name });
  } finally {
    SerializationMap.register(stockClasses().GRU);
  }
}

/**
 * tfjs's Bidirectional builds its backward layer from the forward one's config, seeded initialisers
 * included: both directions would start with the same weights, and a decoder that swapped them
 * would go unnoticed. Redraws every backward weight of `model`'s Bidirectional layers from `init`'s
 * (fresh seeds), by its role: kernel, recurrent_kernel, bias.
 */
function redrawBackward(model, init) {
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'Bidirectional') continue;
    const draws = layer.backwardLayer.weights.map((w) => {
      const role = w.originalName.split('/').pop();
      const initializer = role === 'recurrent_kernel' ? init.orthogonal() : role === 'kernel' ? init.kernel() : init.bias();
      return initializer.apply(w.shape, 'float32');
    });
    layer.backwardLayer.setWeights(draws);
    tf.dispose(draws);
  }
  return model;
}

const CELL_LAYERS = { rnn: 'simpleRNN', lstm: 'lstm', gru: 'gru' };
const STATES = { rnn: ['h0'], lstm: ['h0', 'c0'], gru: ['h0'] };
const RNN_KEYS = ['input', 'hidden', 'seq', 'layers', 'bidirectional', 'merge', 'activation', 'reset_after', 'initial_state', 'output', 'head'];

/**
 * One recurrent layer of `cell` (rnn | lstm | gru): the stock tfjs layer, or ResetAfterGRU for a
 * GRU with resetAfter. `init` gives seeded initialisers.
 */
function recurrentLayer(cell, config, init) {
  const { resetAfter = false, ...rest } = config;
  const args = {
    kernelInitializer: init.kernel(),
    recurrentInitializer: init.orthogonal(),
    biasInitializer: init.bias(),
    ...rest,
  };
  if (cell !== 'rnn') args.recurrentActivation = 'sigmoid';
  if (cell === 'gru' && resetAfter) return new (resetAfterGRU())(args);
  return tf.layers[CELL_LAYERS[cell]](args);
}

/** The model of a recurrent spec (docs/suites.md); `cell` is the layer key. */
function recurrentModel(cell) {
  return (spec, init) => {
    if (spec && typeof spec === 'object' && 'arch' in spec) return recurrentArch(cell, spec, init);
    const s = new Spec(spec, RNN_KEYS);
    if (cell !== 'rnn' && 'activation' in spec) throw new Error(`spec.activation: only the rnn layer has an activation (tanh | relu)`);
    if (cell !== 'gru' && 'reset_after' in spec) throw new Error(`spec.reset_after: only the gru layer has reset_after`);
    const input = s.int('input'), hidden = s.int('hidden'), seq = s.int('seq'), layers = s.int('layers', 1);
    const bi = s.bool('bidirectional', false);
    if (!bi && 'merge' in spec) throw new Error('spec.merge: only a bidirectional layer merges its directions');
    const merge = s.choice('merge', ['concat', 'sum'], 'concat');
    const activation = cell === 'rnn' ? s.choice('activation', ['tanh', 'relu'], 'tanh') : null;
    const resetAfter = cell === 'gru' ? s.bool('reset_after', true) : false;
    const initialState = s.bool('initial_state', false);
    const output = s.choice('output', ['sequence', 'last', 'states'], 'sequence');
    if (output !== 'last' && 'head' in spec) throw new Error('spec.head: a Dense head follows output "last" only');
    const head = output === 'last' && 'head' in spec ? s.int('head') : null;

    // Keras takes each state as its own [N, hidden] input, per layer and direction (Keras's layout,
    // not PyTorch's stacked [layers·directions, N, hidden]).
    const x = tf.input({ shape: [seq, input], name: 'x' });
    const inputs = [x], inputShapes = [[seq, input]], outputs = [];
    const directions = bi ? ['forward', 'backward'] : ['forward'];
    const stateName = (state, layer, dir) =>
      layers === 1 && !bi ? state : `${state}_${layer + 1}${bi ? (dir === 'forward' ? '_fwd' : '_bwd') : ''}`;
    let y = x;
    for (let l = 0; l < layers; l++) {
      const name = layers === 1 ? cell : `${cell}_${l + 1}`;
      const config = {
        units: hidden, name, returnSequences: output !== 'last' || l < layers - 1, returnState: output === 'states', resetAfter,
        ...(activation ? { activation } : {}),
      };
      const layer = bi ? bidirectional(recurrentLayer(cell, config, init), merge, `bi_${name}`) : recurrentLayer(cell, config, init);
      const states = [];
      if (initialState) {
        for (const dir of directions)
          for (const state of STATES[cell]) {
            const t = tf.input({ shape: [hidden], name: stateName(state, l, dir) });
            states.push(t);
            inputs.push(t);
            inputShapes.push([hidden]);
          }
      }
      const out = states.length ? layer.apply(y, { initialState: states }) : layer.apply(y);
      if (output === 'states') {
        y = out[0];
        outputs.push(...out.slice(1));
      } else {
        y = out;
      }
    }
    if (head) y = tf.layers.dense({ units: head, name: 'head', kernelInitializer: init.kernel(), biasInitializer: init.bias() }).apply(y);
    const model = redrawBackward(tf.model({ inputs, outputs: [y, ...outputs], name: init.name }), init);
    return { model, inputShapes, fit: false, composed: resetAfter ? [COMPOSED_GRU] : [] };
  };
}

/** arch text_classifier (Embedding → LSTM → last step → Dense) and seq2seq (GRU → Dense on every step), trained. */
function recurrentArch(cell, spec, init) {
  const arch = new Spec({ arch: spec.arch }, ['arch']).choice('arch', ['text_classifier', 'seq2seq']);
  if (arch === 'text_classifier') {
    const s = new Spec(spec, ['arch', 'vocab', 'embed', 'hidden', 'seq', 'classes']);
    if (cell !== 'lstm') throw new Error(`spec.arch: text_classifier is an lstm fixture, not ${cell}`);
    const ids = tf.input({ shape: [s.int('seq')], dtype: 'int32', name: 'ids' });
    const logits = [
      tf.layers.embedding({ inputDim: s.int('vocab'), outputDim: s.int('embed'), name: 'embedding', embeddingsInitializer: init.uniform() }),
      recurrentLayer('lstm', { units: s.int('hidden'), name: 'lstm' }, init),
      tf.layers.dense({ units: s.int('classes'), name: 'head', kernelInitializer: init.kernel() }),
    ].reduce((t, l) => l.apply(t), ids);
    return { model: tf.model({ inputs: ids, outputs: logits, name: init.name }), inputShapes: [[s.int('seq')]], vocab: s.int('vocab') };
  }
  const s = new Spec(spec, ['arch', 'input', 'hidden', 'seq', 'targets']);
  if (cell !== 'gru') throw new Error(`spec.arch: seq2seq is a gru fixture, not ${cell}`);
  const x = tf.input({ shape: [s.int('seq'), s.int('input')], name: 'x' });
  const y = [
    recurrentLayer('gru', { units: s.int('hidden'), name: 'gru', returnSequences: true, resetAfter: true }, init),
    tf.layers.dense({ units: s.int('targets'), name: 'head', kernelInitializer: init.kernel() }),
  ].reduce((t, l) => l.apply(t), x);
  return { model: tf.model({ inputs: x, outputs: y, name: init.name }), inputShapes: [[s.int('seq'), s.int('input')]], composed: [COMPOSED_GRU] };
}

module.exports = { COMPOSED_GRU, bidirectional, recurrentLayer, recurrentModel, redrawBackward, resetAfterGRU, stockClasses };
