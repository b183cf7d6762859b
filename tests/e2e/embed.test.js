// A page of the app's own (/my-app, apps/embed.c) with live components
// mounted in it: the counter root, rendered on the server with its props,
// goes live in the browser and counts together across two instances.
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

test('embedded roots go live and update across two instances', async () => {
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
