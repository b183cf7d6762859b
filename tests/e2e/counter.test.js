// The counter (/counter/:id) on two instances: a click on one page shows on
// the other within a second.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const env = require('./lib/env');

let browser;
before(async () => { browser = await env.launch(); });
after(async () => { await browser?.close(); });

async function count(page, cid) {
  const m = /Count: (-?\d+)/.exec(await env.root(page, cid).innerText());
  return m ? Number(m[1]) : null;
}

test('two pages on two instances count together', async () => {
  const alice = await env.user(browser, 'Alice');
  const bob = await env.user(browser, 'Bob');
  const id = env.uid('c');
  const cid = `counter:${id}`;
  const pa = await env.open(alice, `${env.A}/counter/${id}`);
  const pb = await env.open(bob, `${env.B}/counter/${id}`);
  await env.connected(pa, cid);
  await env.connected(pb, cid);
  assert.equal(await count(pa, cid), 0);
  const plus = (p) => env.root(p, cid).getByRole('button', { name: '+', exact: true });
  const minus = (p) => env.root(p, cid).getByRole('button', { name: '-', exact: true });
  await plus(pa).click();
  await plus(pa).click();
  const t0 = Date.now();
  await env.until(async () => (await count(pb, cid)) === 2, 'Count: 2 on b', 5000);
  assert.ok(Date.now() - t0 <= 1000, `took ${Date.now() - t0} ms`);
  await minus(pb).click();
  await env.until(async () => (await count(pa, cid)) === 1, 'Count: 1 on a', 1000);
  await env.screenshot(pa, 'counter');
  await alice.close();
  await bob.close();
});
