#!/usr/bin/env node
'use strict';
/**
 * Records the jax test streams that need jax-js's own numbers (native outputs), as JSON with
 * `data` arrays (small, diffable, not caught by the *.pbstream ignore rule):
 *
 *   functions.json   every function of the decoder's table applied to one input x [4, 6]
 *                    spanning [-5.75, 5.75]; pins jax-js's defaults (nn.gelu is the tanh
 *                    approximation) against the IR activations.
 *
 * Run from anywhere: node tests/streams/jax/record.js
 */

const fs = require('fs');
const path = require('path');

const flax = require(path.join(__dirname, '..', '..', '..', 'plugins', 'jax', 'capture', 'flax.js'));

// [function, attributes]; each node reads x, every node is an output.
const FUNCTIONS = [
  ['nn.relu'], ['nn.relu6'], ['nn.tanh'], ['nn.sigmoid'], ['nn.silu'], ['nn.swish'], ['nn.selu'],
  ['nn.softplus'], ['nn.hard_swish'], ['nn.hard_silu'], ['nn.hard_sigmoid'],
  ['nn.gelu'], ['nn.gelu', { approximate: false }],
  ['nn.leaky_relu'], ['nn.leaky_relu', { negative_slope: 0.2 }],
  ['nn.elu'], ['nn.elu', { alpha: 0.5 }],
  ['nn.softmax'], ['nn.softmax', { axis: 0 }], ['nn.log_softmax'],
];

// A frame's tensors as JSON `data` arrays (f32 values print exactly as JS numbers).
function asJson(stream) {
  const doc = JSON.parse(JSON.stringify(stream.doc));
  doc.planet_version = `${doc.planet_version} (recorded by tests/streams/jax/record.js)`;
  doc.tensors = {};
  for (const name of Object.keys(stream.tensors).sort()) {
    const t = stream.tensors[name];
    doc.tensors[name] = { dtype: 'f32', shape: t.shape, data: Array.from(t.data) };
  }
  return `${JSON.stringify(doc)}\n`;
}

async function main() {
  await flax.ready();
  const { numpy: np } = flax.jax;
  const layers = FUNCTIONS.map(([f, a]) => flax.fn(f, a, { inputs: ['x'] }));
  const names = new flax.Model(layers).modules.map((m) => m.name); // relu_0, ..., gelu_0, gelu_1, ...
  const all = new flax.Model(layers, { outputs: names });
  const x = np.array(Array.from({ length: 24 }, (_, i) => -5.75 + 0.5 * i), { shape: [4, 6] });
  const s = await flax.capture({ model: all, variables: { params: {} }, inputs: [x], modelId: 'functions', taps: false });
  const file = path.join(__dirname, 'functions.json');
  fs.writeFileSync(file, asJson(s));
  process.stderr.write(`${file}: ${fs.statSync(file).size} bytes\n`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  }
);
