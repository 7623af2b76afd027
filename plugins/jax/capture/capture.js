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
 * --suite reads JSON directly and YAML through /usr/bin/python3's PyYAML (no YAML parser among
 * the npm packages). Packages resolve from the repository's node_modules; works from any cwd.
 */

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const pbstream = require(path.join(__dirname, '..', '..', 'sdk', 'js', 'pbstream.js'));

const PLANET = 'jax';
const ENGINE = 'jax-js';

// Loads jax-js and its wasm device; a missing package surfaces as MODULE_NOT_FOUND, which
// serve() turns into the "unavailable" event.
async function loadEngine() {
  return require('./flax.js').ready();
}

const build = (fixture) => require('./fixtures.js').build(fixture);

const USAGE = 'usage: capture.js --serve | (--suite FILE | --request FILE|-) [--fixture GLOB] (--out DIR | --stdout | --post URL)';

function parseArgs(argv) {
  const a = { fixture: '*' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--serve' || k === '--stdout') a[k.slice(2)] = true;
    else if (['--suite', '--request', '--fixture', '--out', '--post'].includes(k)) {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      a[k.slice(2)] = argv[++i];
    } else throw new Error(`unknown argument ${JSON.stringify(k)}`);
  }
  const modes = ['serve', 'suite', 'request'].filter((m) => a[m] !== undefined);
  if (modes.length !== 1) throw new Error('give exactly one of --serve, --suite, --request');
  if (a.serve && (a.out || a.stdout || a.post || a.fixture !== '*')) throw new Error('--serve takes no --fixture, --out, --stdout or --post');
  if (!a.serve && [a.out, a.stdout, a.post].filter(Boolean).length !== 1)
    throw new Error(`--${modes[0]} needs one of --out DIR, --stdout or --post URL`);
  return a;
}

// fnmatch's * and ? only.
const globRegExp = (glob) =>
  new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);

function suiteFixtures(file) {
  const text = fs.readFileSync(file, 'utf8');
  let suite;
  try {
    suite = JSON.parse(text);
  } catch {
    const py = 'import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1], encoding="utf-8")), sys.stdout)';
    suite = JSON.parse(execFileSync('/usr/bin/python3', ['-c', py, file], { encoding: 'utf8' }));
  }
  if (!suite || !Array.isArray(suite.fixtures)) throw new Error(`${file}: expected a mapping with a 'fixtures' list`);
  const d = suite.defaults || {};
  return suite.fixtures
    .filter((fx) => (fx.planets || []).includes(PLANET))
    .map((fx) => ({ id: fx.id, layer: fx.layer, samples: fx.samples ?? d.samples, seed: fx.seed ?? d.seed, spec: fx.spec }));
}

async function runStandalone(a) {
  let fixtures;
  try {
    fixtures = a.suite ? suiteFixtures(a.suite) : pbstream.parseRequest(fs.readFileSync(a.request === '-' ? 0 : a.request, 'utf8'));
    await loadEngine();
  } catch (e) {
    process.stderr.write(`capture: ${String(e.message).split('\n')[0]}\n`);
    return 2;
  }
  const re = globRegExp(a.fixture);
  fixtures = fixtures.filter((fx) => re.test(fx.id));
  if (!fixtures.length) {
    process.stderr.write(`capture: no ${PLANET} fixtures in ${a.suite || a.request} match ${JSON.stringify(a.fixture)}\n`);
    return 2;
  }
  if (a.out) fs.mkdirSync(a.out, { recursive: true });
  let failed = 0;
  for (const fx of fixtures) {
    const t0 = performance.now();
    let frame;
    try {
      frame = (await build(fx)).toBytes();
    } catch (e) {
      failed++;
      process.stderr.write(`${fx.id}: ${e instanceof pbstream.NotApplicable ? 'NOT APPLICABLE' : 'ERROR'} ${e.message}\n`);
      continue;
    }
    const ms = (performance.now() - t0).toFixed(0);
    if (a.post) {
      let result;
      try {
        result = await pbstream.post(a.post, frame, PLANET);
      } catch (e) {
        if (!(e instanceof pbstream.PostError)) throw e;
        if (e.status === null) { // no server there: the other fixtures would fail the same way
          process.stderr.write(`capture: ${e.message}\n`);
          return 2;
        }
        failed++;
        process.stdout.write(`${fx.id}: REFUSED ${e.message}\n`);
        continue;
      }
      process.stdout.write(`${pbstream.verdictLine(result)}\n`);
      if (['FAIL', 'ERROR'].includes(result.verdict)) failed++;
    } else if (a.out) {
      const file = path.join(a.out, `${fx.id}.pbstream`);
      fs.writeFileSync(file, frame);
      process.stderr.write(`${fx.id}: ${file} (${frame.length} bytes, ${ms} ms)\n`);
    } else {
      await new Promise((res, rej) => process.stdout.write(frame, (err) => (err ? rej(err) : res())));
      process.stderr.write(`${fx.id}: ${frame.length} bytes, ${ms} ms\n`);
    }
  }
  return failed ? 1 : 0;
}

async function main(argv) {
  let a;
  try {
    a = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`capture: ${e.message}\n${USAGE}\n`);
    return 2;
  }
  if (a.serve) {
    return pbstream.serve({
      planet: PLANET, engine: ENGINE, engineVersion: loadEngine,
      build: async (fx) => {
        const s = await build(fx);
        return { doc: s.doc, tensors: s.tensors };
      },
    });
  }
  return runStandalone(a);
}

if (require.main === module) {
  // Exit explicitly: the engine may keep handles open.
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`capture: ${e && e.stack ? e.stack : e}\n`);
      process.exit(1);
    }
  );
}

module.exports = { main, globRegExp, suiteFixtures };
