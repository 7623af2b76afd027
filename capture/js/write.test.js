'use strict';
// The JS capture SDK's writer: a file is replaced whole, never truncated under a reader.
// Run: node --test capture/js/

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');

const pbstream = require('./pbstream.js');

test('writeWhole replaces a file by rename and leaves no temporary', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pbjs-'));
  try {
    const file = path.join(dir, 'm.pbstream');
    pbstream.writeWhole(file, Buffer.from('first version'));
    const before = fs.statSync(file).ino;
    const held = fs.openSync(file, 'r');  // a reader holding the old file keeps it whole
    pbstream.writeWhole(file, Buffer.from('second'));
    assert.notEqual(fs.statSync(file).ino, before);
    const old = Buffer.alloc(13);
    fs.readSync(held, old, 0, 13, 0);
    fs.closeSync(held);
    assert.equal(old.toString(), 'first version');
    assert.equal(fs.readFileSync(file, 'utf8'), 'second');
    assert.deepEqual(fs.readdirSync(dir), ['m.pbstream']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('writeWhole names the file when its folder is missing, and leaves nothing behind', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pbjs-'));
  try {
    const file = path.join(dir, 'missing', 'm.pbstream');
    assert.throws(() => pbstream.writeWhole(file, Buffer.from('x')), (e) => e.code === 'ENOENT' && e.message.includes('missing'));
    assert.deepEqual(fs.readdirSync(dir), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
