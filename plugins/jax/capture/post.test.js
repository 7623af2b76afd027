'use strict';
/**
 * Tests for pbstream.post / verdictLine (posting to `planetbridge serve`) against a stub server.
 * The real server is tested end to end in tests/test_server.cpp. Run: node --test plugins/jax/capture/
 */

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('http');
const net = require('net');
const path = require('path');

const pbstream = require(path.join(__dirname, '..', '..', '..', 'capture', 'js', 'pbstream.js'));

let reply = { status: 200, type: 'application/json', body: '{}' };
const seen = [];
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    seen.push({ url: req.url, type: req.headers['content-type'], body: Buffer.concat(chunks) });
    res.writeHead(reply.status, { 'Content-Type': reply.type });
    res.end(reply.body);
  });
});
let url;
test.before(() => new Promise((res) => server.listen(0, '127.0.0.1', () => {
  url = `http://127.0.0.1:${server.address().port}`;
  res();
})));
test.after(() => new Promise((res) => {
  server.closeAllConnections();
  server.close(res);
}));

test('post sends the frame to the planet endpoint and returns the result', async () => {
  const result = { fixture: 'm', verdict: 'PASS', max_abs: 1e-7, max_rel: 2e-6, reload_identical: true, id: 'r1' };
  reply = { status: 200, type: 'application/json', body: JSON.stringify(result) };
  const frame = Buffer.from('PBSTRM\x00\x01frame', 'latin1');
  assert.deepEqual(await pbstream.post(`${url}/`, frame, 'jax', { atol: 1e-4, rtol: 0 }), result);
  const got = seen.at(-1);
  assert.equal(got.url, '/api/v1/loom/stream/jax?atol=0.0001&rtol=0');
  assert.equal(got.type, 'application/x-planetbridge-stream');
  assert.deepEqual(got.body, frame);
  assert.equal(pbstream.verdictLine(result), 'm: PASS max|diff| 1.00e-7 max rel 2.00e-6 · run r1');
});

test('a refusal rejects with the server path and message', async () => {
  reply = { status: 404, type: 'application/json', body: '{"error": {"path": "planet", "message": "no plugin"}}' };
  await assert.rejects(pbstream.post(url, Buffer.from('x'), 'keras'), (e) => {
    assert.ok(e instanceof pbstream.PostError);
    assert.equal(e.status, 404);
    assert.equal(e.path, 'planet');
    assert.equal(e.message, 'planet: HTTP 404: no plugin');
    return true;
  });
});

test('an error that is not JSON keeps its text; a 200 that is not JSON is an error', async () => {
  reply = { status: 502, type: 'text/plain', body: 'bad gateway\n' };
  await assert.rejects(pbstream.post(url, Buffer.from('x'), 'jax'), { name: 'PostError', status: 502, message: 'HTTP 502: bad gateway' });
  reply = { status: 200, type: 'text/html', body: '<html>' };
  await assert.rejects(pbstream.post(url, Buffer.from('x'), 'jax'), /the server's reply is not JSON: <html>/);
});

test('no server is status null', async () => {
  const probe = net.createServer();
  await new Promise((res) => probe.listen(0, '127.0.0.1', res));
  const port = probe.address().port;
  await new Promise((res) => probe.close(res));
  await assert.rejects(pbstream.post(`http://127.0.0.1:${port}`, Buffer.from('x'), 'jax'), (e) => {
    assert.equal(e.status, null);
    assert.match(e.message, new RegExp(`^cannot reach http://127.0.0.1:${port}: `));
    return true;
  });
});

test('verdictLine of an error and a failure', () => {
  assert.equal(pbstream.verdictLine({ fixture: 'm', verdict: 'ERROR', id: 'i', message: 'no Conv9d' }), 'm: ERROR · run i · no Conv9d');
  assert.equal(
    pbstream.verdictLine({ fixture: 'm', verdict: 'FAIL', id: 'i', max_abs: 0.5, max_rel: 0.1, reload_identical: false, first_divergence: 'node "_0"' }),
    'm: FAIL max|diff| 5.00e-1 max rel 1.00e-1 (reload DIFFERS) · run i · first diverging node: node "_0"');
});
