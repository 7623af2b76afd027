#!/usr/bin/env node
'use strict';
/**
 * jax (jax-js) capture CLI.
 *
 *   node capture.js --serve                  the host's capture protocol (docs/capture-protocol.md)
 *   node capture.js --suite FILE [--fixture GLOB] (--out DIR | --stdout | --post URL)
 *                                            capture a suite's jax fixtures standalone; --post
 *                                            streams each to `planetbridge serve` at URL and
 *                                            prints its verdict
 *   node capture.js --request FILE|- [--fixture GLOB] (--out DIR | --stdout | --post URL)
 *                                            the same from a capture-request JSON document
 *
 * The CLI itself is capture/js/capture_cli.js. --suite reads JSON directly and YAML through
 * js-yaml when installed, else /usr/bin/python3's PyYAML (no YAML parser among the npm
 * packages). Packages resolve from the repository's node_modules; works from any cwd.
 */

const path = require('path');
const cli = require(path.join(__dirname, '..', '..', '..', 'capture', 'js', 'capture_cli.js'));

const PLANET = 'jax';
const ENGINE = 'jax-js';

// Loads jax-js and its wasm device; a missing package surfaces as MODULE_NOT_FOUND, which
// serve() turns into the "unavailable" event.
async function loadEngine() {
  return require('./flax.js').ready();
}

const build = (fixture) => require('./fixtures.js').build(fixture);

const JAX = { planet: PLANET, engine: ENGINE, loadEngine, build, timings: true };

const main = (argv) => cli.main(JAX, argv);
const suiteFixtures = (file) => cli.suiteFixtures(file, PLANET);

if (require.main === module) cli.run(JAX);

module.exports = { main, globRegExp: cli.globRegExp, suiteFixtures };
