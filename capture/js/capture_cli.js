'use strict';
/**
 * The capture.js CLI shared by the Node planets (CommonJS, Node built-ins only). A planet's
 * capture.js names its engine loader and fixture builder and hands over:
 *
 *   const cli = require('<repo>/capture/js/capture_cli.js');
 *   const planet = { planet: 'jax', engine: 'jax-js', loadEngine, build };
 *   if (require.main === module) cli.run(planet);
 *
 *   node capture.js --serve                  the host's capture protocol (docs/capture-protocol.md)
 *   node capture.js --suite FILE [--fixture GLOB] (--out DIR | --stdout | --post URL)
 *                                            capture a suite's fixtures of the planet standalone;
 *                                            --post streams each to `planetbridge serve` at URL
 *                                            and prints its verdict (docs/http-api.md)
 *   node capture.js --request FILE|- [--fixture GLOB] (--out DIR | --stdout | --post URL)
 *                                            the same from a capture-request JSON document
 *
 * `loadEngine()` (may be async) loads the engine and returns its version; a missing package
 * throws MODULE_NOT_FOUND, which --serve reports as "unavailable". `build(fixture)` (may be
 * async) returns a Stream ({doc, tensors, toBytes()}) or throws pbstream.NotApplicable.
 * `timings: true` adds each fixture's capture time to the progress lines on stderr.
 *
 * There is no YAML parser among the npm packages; --suite reads a JSON suite directly and a YAML
 * one through js-yaml when installed, else through /usr/bin/python3's PyYAML.
 */

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const pbstream = require(path.join(__dirname, 'pbstream.js'));

const USAGE = 'usage: capture.js --serve | (--suite FILE | --request FILE|-) [--fixture GLOB] (--out DIR | --stdout | --post URL)';

function parseArgs(argv) {
  const a = { fixture: '*' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    if (k === '--serve' || k === '--stdout') a[k.slice(2)] = true;
    else if (['--suite', '--request', '--fixture', '--out', '--post'].includes(k)) a[k.slice(2)] = value();
    else if (k === '-h' || k === '--help') a.help = true;
    else throw new Error(`unknown argument ${JSON.stringify(k)}`);
  }
  if (a.help) return a;
  const modes = ['serve', 'suite', 'request'].filter((m) => a[m] !== undefined);
  if (modes.length !== 1) throw new Error('give exactly one of --serve, --suite, --request');
  if (a.serve && (a.out || a.stdout || a.post || a.fixture !== '*')) throw new Error('--serve takes no --fixture, --out, --stdout or --post');
  if (!a.serve && [a.out, a.stdout, a.post].filter(Boolean).length !== 1)
    throw new Error(`--${modes[0]} needs one of --out DIR, --stdout or --post URL`);
  return a;
}

// fnmatch-style glob (*, ?, [...]) -> RegExp.
function globRegExp(glob) {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[' && glob.indexOf(']', i + 2) > 0) {
      const j = glob.indexOf(']', i + 2);
      let set = glob.slice(i + 1, j).replace(/\\/g, '\\\\');
      if (set[0] === '!') set = '^' + set.slice(1);
      re += `[${set}]`;
      i = j;
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function loadSuite(file) {
  const text = fs.readFileSync(file, 'utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    // not JSON: YAML below
  }
  try {
    return require('js-yaml').load(text);
  } catch (e) {
    if (e.code !== 'MODULE_NOT_FOUND') throw new Error(`${file}: ${e.message}`);
  }
  const py = 'import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1], encoding="utf-8")), sys.stdout)';
  try {
    return JSON.parse(execFileSync('/usr/bin/python3', ['-c', py, file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
  } catch (e) {
    throw new Error(`${file}: cannot read YAML without js-yaml or /usr/bin/python3 with PyYAML ` +
      `(${String(e.stderr || e.message).trim().split('\n').pop()}); pass a JSON suite or --request`);
  }
}

/** The suite's fixtures for `planet`, in the capture request's form. */
function suiteFixtures(file, planet) {
  const suite = loadSuite(file);
  if (!suite || typeof suite !== 'object' || !Array.isArray(suite.fixtures))
    throw new Error(`${file}: expected a mapping with a 'fixtures' list`);
  const defaults = suite.defaults || {};
  const out = [];
  suite.fixtures.forEach((fx, i) => {
    if (!fx || typeof fx !== 'object' || typeof fx.id !== 'string') throw new Error(`${file}: fixtures[${i}]: expected a mapping with a string 'id'`);
    if (!(fx.planets || []).includes(planet)) return;
    out.push({ id: fx.id, layer: fx.layer, samples: fx.samples ?? defaults.samples, seed: fx.seed ?? defaults.seed, spec: fx.spec });
  });
  return out;
}

async function runStandalone({ planet, loadEngine, build, timings = false }, a) {
  // With --stdout, frames alone go to stdout; any other print goes to stderr (as in --serve).
  const realWrite = process.stdout.write.bind(process.stdout);
  if (a.stdout) process.stdout.write = (chunk, encoding, cb) => process.stderr.write(chunk, encoding, cb);
  let fixtures;
  try {
    if (a.suite) fixtures = suiteFixtures(a.suite, planet);
    else fixtures = pbstream.parseRequest(fs.readFileSync(a.request === '-' ? 0 : a.request, 'utf8'));
    await loadEngine();
  } catch (e) {
    process.stderr.write(`capture: ${String(e.message).split('\n')[0]}\n`);
    return 2;
  }
  const re = globRegExp(a.fixture);
  fixtures = fixtures.filter((fx) => re.test(fx.id));
  if (!fixtures.length) {
    process.stderr.write(`capture: no ${planet} fixtures in ${a.suite || a.request} match ${JSON.stringify(a.fixture)}\n`);
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
    const took = timings ? `, ${(performance.now() - t0).toFixed(0)} ms` : '';
    if (a.post) {
      let result;
      try {
        result = await pbstream.post(a.post, frame, planet);
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
      pbstream.writeWhole(file, frame);
      process.stderr.write(`${fx.id}: ${file} (${frame.length} bytes${took})\n`);
    } else {
      await new Promise((res, rej) => realWrite(frame, (err) => (err ? rej(err) : res())));
      process.stderr.write(`${fx.id}: ${frame.length} bytes${took}\n`);
    }
  }
  return failed ? 1 : 0;
}

/** The whole CLI for `planet` ({planet, engine, loadEngine, build, timings?}); resolves to the exit status. */
async function main(planet, argv) {
  let a;
  try {
    a = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`capture: ${e.message}\n${USAGE}\n`);
    return 2;
  }
  if (a.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (a.serve) {
    return pbstream.serve({
      planet: planet.planet, engine: planet.engine, engineVersion: planet.loadEngine,
      build: async (fx) => {
        const s = await planet.build(fx);
        return { doc: s.doc, tensors: s.tensors };
      },
    });
  }
  return runStandalone(planet, a);
}

/** main() on process.argv, then exit with its status. */
function run(planet) {
  // Exit explicitly: the engine may keep handles open; stdout/stderr writes to pipes and files
  // are synchronous on Linux, so nothing is lost.
  main(planet, process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`capture: ${e && e.stack ? e.stack : e}\n`);
      process.exit(1);
    }
  );
}

module.exports = { USAGE, parseArgs, globRegExp, loadSuite, suiteFixtures, main, run };
