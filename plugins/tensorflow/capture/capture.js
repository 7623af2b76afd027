#!/usr/bin/env node
'use strict';
/**
 * tensorflow (tfjs) capture CLI.
 *
 *   node capture.js --serve                  the host's capture protocol (docs/capture-protocol.md)
 *   node capture.js --suite FILE [--fixture GLOB] (--out DIR | --stdout | --post URL)
 *                                            capture a suite's tensorflow fixtures standalone;
 *                                            --post streams each to `planetbridge serve` at URL
 *                                            and prints its verdict (docs/http-api.md)
 *   node capture.js --request FILE|- [--fixture GLOB] (--out DIR | --stdout | --post URL)
 *                                            the same from a capture-request JSON document
 *
 * The CLI itself is capture/js/capture_cli.js. There is no YAML parser among the npm
 * packages; --suite reads a JSON suite directly and a YAML one through js-yaml when installed,
 * else through /usr/bin/python3's PyYAML.
 * Packages resolve from the repository's node_modules (npm ci at the root); works from any cwd.
 */

const path = require('path');
const cli = require(path.join(__dirname, '..', '..', '..', 'capture', 'js', 'capture_cli.js'));

const PLANET = 'tensorflow';
const ENGINE = 'tfjs';

// Loads tfjs and the wasm backend; throws (MODULE_NOT_FOUND) when the packages are missing.
async function loadEngine() {
  const pbtf = require('./pb_tfjs.js');
  await pbtf.useWasm();
  return pbtf.PLANET_VERSION;
}

const build = (fixture) => require('./fixtures.js').build(fixture);

const TENSORFLOW = { planet: PLANET, engine: ENGINE, loadEngine, build };

const main = (argv) => cli.main(TENSORFLOW, argv);
const suiteFixtures = (file) => cli.suiteFixtures(file, PLANET);

if (require.main === module) cli.run(TENSORFLOW);

module.exports = { main, globRegExp: cli.globRegExp, suiteFixtures };
