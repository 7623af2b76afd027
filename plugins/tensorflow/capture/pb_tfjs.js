'use strict';
/**
 * Captures a live tfjs LayersModel as a planetbridge stream (docs/planets/tensorflow.md).
 *
 *   const pbtf = require('<repo>/plugins/tensorflow/capture/pb_tfjs.js');
 *   await pbtf.useWasm();                       // optional: the fast backend (what the CLI uses)
 *   pbtf.capture(model, x, 'my_model', {taps: true}).write('my_model.pbstream');
 *
 * The stream's `model` is {format: "keras", topology: model.toJSON(null, false), weights}, where
 * `weights` maps each layer name to {short weight name: stream tensor name}, e.g.
 * {"dense_1": {"kernel": "dense_1/kernel", "bias": "dense_1/bias"}}.
 *
 * Tensor names in the stream:
 * - weights: "<layer name>/<short name>" (Keras layouts: Dense kernel [in, out]). Not tfjs's
 *   variable name, which gets a process-wide "_<n>" suffix when another model already used the
 *   same layer name (`dense/kernel_1`); layer names are unique within a model, so these are too;
 * - inputs:  "input.0", "input.1", ... in model.inputs order;
 * - outputs: "output.0", ... in model.outputs order, from model.predict();
 * - taps:    "tap.<layer name>" for every non-input layer called exactly once (its output is
 *   then well defined), listed in doc.taps as {layer name: tensor name}; a layer with several
 *   outputs (an RNN's returnState) gets "<layer name>:<i>" for its output i > 0; a composed layer
 *   with a tap() method (the MultiHeadAttention of attention.js) adds its inner steps as
 *   "<layer name>/<step>" (q, k, v, scores, weights, context), the tensors its call() computes.
 *
 * Weights and inputs are sent as f32 (int32 stays i32). `tf` is this package's
 * require('@tensorflow/tfjs'); pass {tf} to capture() when the model was built with another copy.
 */

const path = require('path');
const pbstream = require(path.join(__dirname, '..', '..', '..', 'capture', 'js', 'pbstream.js'));

const tf = require('@tensorflow/tfjs');

const PLANET = 'tensorflow';
const ENGINE = 'tfjs';
const PLANET_VERSION = tf.version.tfjs;

// The wasm backend is ~20x faster than tfjs's pure-JS cpu backend under Node.
async function useWasm() {
  require('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs: the wasm backend failed to initialise');
  await tf.ready();
  return tf.getBackend();
}

const { Stream } = pbstream; // a captured model: toBytes(), write(file)

// An owned copy of a tensor's values in the stream's tensor form.
function toStream(t) {
  const v = t.dataSync();
  let data;
  if (t.dtype === 'float32') data = Float32Array.from(v);
  else if (t.dtype === 'int32' || t.dtype === 'bool') data = Int32Array.from(v);
  else throw new Error(`unsupported tensor dtype ${t.dtype} (expected float32, int32 or bool)`);
  return { data, shape: t.shape.slice() };
}

const asList = (x) => (Array.isArray(x) ? x : [x]);

// {layer name: {short name: stream tensor name}} and the tensors themselves.
function layerWeights(model, tensors) {
  const table = {};
  for (const layer of model.layers) {
    if (!layer.weights.length) continue;
    const entry = {};
    for (const w of layer.weights) {
      // originalName is "<layer>/kernel" before tfjs's uniquifying suffix.
      const prefix = layer.name + '/';
      const short = w.originalName.startsWith(prefix) ? w.originalName.slice(prefix.length) : w.originalName;
      const name = prefix + short;
      if (name in tensors) throw new Error(`two weights would both be named "${name}"`);
      entry[short] = name;
      tensors[name] = toStream(w.read());
    }
    table[layer.name] = entry;
  }
  return table;
}

// The outputs of every layer called exactly once (its outputs are then well defined): "<layer>"
// for its output 0 and "<layer>:<i>" for output i of a layer with several (an RNN's returnState,
// the decoder's names for them).
function tapLayers(model) {
  const out = [];
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer' || layer.inboundNodes.length !== 1) continue;
    const o = layer.output;
    if (Array.isArray(o)) o.forEach((t, i) => out.push([i ? `${layer.name}:${i}` : layer.name, t]));
    else out.push([layer.name, o]);
  }
  return out;
}

function predict(m, xs) {
  const rows = xs[0].shape[0];
  return asList(m.predict(xs.length === 1 ? xs[0] : xs, { batchSize: Math.max(rows, 1) }));
}

/**
 * Runs `model` (any tfjs LayersModel: Sequential or functional) on `inputs` (a tensor or an array
 * in model.inputs order) and returns the Stream with the native outputs (and taps) inside.
 * `composed`: notes naming layers tfjs has no stock layer for, built by the caller from tfjs ops
 * (e.g. "RMSNorm: ..."); they go in doc.composed and reports label the case "composed".
 */
function capture(model, inputs, modelId, { taps = false, composed = [], tf: tfx = tf } = {}) {
  if (!model || typeof model.toJSON !== 'function' || !Array.isArray(model.layers))
    throw new Error(`${modelId}: expected a tfjs LayersModel (tf.sequential() or tf.model())`);
  const xs = asList(inputs);
  xs.forEach((x, i) => {
    if (!(x instanceof tfx.Tensor)) throw new Error(`${modelId}: input ${i} is not a tf.Tensor`);
  });
  if (xs.length !== model.inputs.length)
    throw new Error(`${modelId}: the model takes ${model.inputs.length} inputs, got ${xs.length}`);

  const tensors = {};
  const model_ = { format: 'keras', topology: model.toJSON(null, false), weights: layerWeights(model, tensors) };
  const inputNames = xs.map((x, i) => {
    tensors[`input.${i}`] = toStream(x);
    return `input.${i}`;
  });
  const expected = tfx.tidy(() => predict(model, xs).map((y, i) => {
    tensors[`output.${i}`] = toStream(y);
    return `output.${i}`;
  }));

  const tapTable = {};
  if (taps) {
    const layers = tapLayers(model);
    if (layers.length) {
      const tapModel = tfx.model({ inputs: model.inputs, outputs: layers.map(([, o]) => o) });
      // A composed layer with a tap() method (capture/attention.js) records its inner steps.
      const inner = model.layers.filter((l) => typeof l.tap === 'function' && l.inboundNodes.length === 1);
      inner.forEach((l) => { l.recording = {}; });
      let recorded;
      try {
        tfx.tidy(() => predict(tapModel, xs).forEach((y, i) => {
          const name = layers[i][0];
          tensors[`tap.${name}`] = toStream(y);
          tapTable[name] = `tap.${name}`;
        }));
      } finally {
        recorded = inner.map((l) => [l.name, l.recording || {}]);
        inner.forEach((l) => { l.recording = null; });
      }
      for (const [layer, steps] of recorded)
        for (const [step, t] of Object.entries(steps)) {
          const name = `${layer}/${step}`;
          tensors[`tap.${name}`] = toStream(t);
          tapTable[name] = `tap.${name}`;
          t.dispose();
        }
    }
  }
  const doc = pbstream.streamDoc({
    planet: PLANET, planetVersion: PLANET_VERSION, engine: ENGINE, modelId,
    model: model_, inputs: inputNames, expected, taps: tapTable,
  });
  if (composed.length) doc.composed = [...composed];
  return new Stream(doc, tensors);
}

module.exports = { PLANET, ENGINE, PLANET_VERSION, Stream, capture, useWasm, tf };
