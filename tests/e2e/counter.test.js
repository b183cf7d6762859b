// The counter (/counter/:id) on two instances: a click on one page shows on
// the other within a second. And the counter mounted in a page of the app's
// own (/my-app, apps/embed.c): rendered on the server with its props, it
// goes live and counts together across two instances.
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

test('a counter mounted in a page of the app\'s own goes live on two instances', async () => {
  const alice = await env.user(browser, 'Alice');
  const bob = await env.user(browser, 'Bob');
  const cid = 'counter:widget';
  const pa = await env.open(alice, `${env.A}/my-app`);
  const pb = await env.open(bob, `${env.B}/my-app`);
  // The app's own markup is around the roots, as it wrote it.
  assert.equal(await pa.locator('#counter-widget > [spark-component="counter:widget"]').count(), 1);
  assert.equal(await pa.locator('#todo-list > [spark-component="todo:widget"]').count(), 1);
  // The server rendered the props before any script ran.
  const served = await (await alice.request.get(`${env.A}/my-app`)).text();
  assert.match(served, /<div spark-component="counter:widget" spark-version="1"><div class="counter-widget"><h2>Count: 10<\/h2>/);
  await env.connected(pa, cid);
  await env.connected(pb, cid);
  await env.connected(pa, 'todo:widget');
  // run.sh starts on a fresh database: the counter was never written, so
  // it starts from its props (and both instances agree).
  const start = await count(pa, cid);
  assert.equal(start, 10);
  assert.equal(await count(pb, cid), start);
  const plus = (p) => env.root(p, cid).getByRole('button', { name: '+', exact: true });
  await plus(pa).click();
  await env.until(async () => (await count(pb, cid)) === start + 1, `Count: ${start + 1} on b`, 5000);
  await plus(pb).click();
  await env.until(async () => (await count(pa, cid)) === start + 2, `Count: ${start + 2} on a`, 5000);
  await env.screenshot(pa, 'embed');
  await alice.close();
  await bob.close();
});
