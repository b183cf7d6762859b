// The history page (/history/:type/:key) across two instances: changes made
// on a, the page opened on b, the slider showing an old version's server
// render in place, a revert on b reaching the live page on a, and a change
// on a reaching the page on b.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const env = require('./lib/env');

let browser;
before(async () => { browser = await env.launch(); });
after(async () => { await browser?.close(); });

async function count(locator) {
  const m = /Count: (-?\d+)/.exec(await locator.innerText());
  return m ? Number(m[1]) : null;
}

test('time travel on b, seen live on a', async () => {
  const alice = await env.user(browser, 'Alice');
  const bob = await env.user(browser, 'Bob', ['revert:*']);
  const id = env.uid('h');
  const cid = `counter:${id}`;

  // Three changes on a: versions 1, 2, 3.
  const pa = await env.open(alice, `${env.A}/counter/${id}`);
  await env.connected(pa, cid);
  const plus = env.root(pa, cid).getByRole('button', { name: '+', exact: true });
  for (let i = 1; i <= 3; i++) {
    await plus.click();
    await env.until(async () => (await count(env.root(pa, cid))) === i, `Count: ${i} on a`);
  }
  await env.settled(pa);

  // The history on b: three versions by alice, the slider at the latest.
  const ph = await env.open(bob, `${env.B}/history/counter/${id}`);
  const rows = ph.locator('table.history-versions tbody tr');
  assert.deepEqual(await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.version)), ['3', '2', '1']);
  assert.match(await rows.first().innerText(), /alice\s.*increment.*"replace", "path": "\/count", "value": 3/s);
  const slider = ph.getByRole('slider', { name: 'Version' });
  assert.equal(await slider.inputValue(), '3');
  const preview = ph.locator('#history-preview');
  assert.equal(await count(preview), 3);

  // The current state is live on the history page too.
  await env.connected(ph, cid);

  // Two steps back with the keyboard: version 1, rendered by the server,
  // replaces the preview without leaving the page.
  await ph.evaluate(() => { window.sameDocument = true; });
  await slider.focus();
  await ph.keyboard.press('ArrowLeft');
  await ph.keyboard.press('ArrowLeft');
  await ph.locator('.history-preview[data-version="1"]').waitFor({ timeout: 5000 });
  assert.equal(await count(preview.locator('.history-render')), 1);
  assert.match(await preview.locator('.history-meta').innerText(), /Version 1 of 3: increment by alice/);
  assert.equal(await ph.locator('.history-slider output').innerText(), '1');
  assert.equal(new URL(ph.url()).searchParams.get('v'), '1');
  assert.equal(await ph.evaluate(() => window.sameDocument), true, 'the slider reloaded the page');
  // The preview is inert: its buttons change nothing.
  assert.equal(await preview.locator('.history-render').evaluate((el) => el.inert), true);
  await env.screenshot(ph, 'history-preview');

  // Revert to version 1 on b: the page on a shows it live.
  const t0 = Date.now();
  await Promise.all([
    ph.waitForURL((u) => u.pathname === `/history/counter/${id}` && !u.search, { timeout: 5000 }),
    preview.getByRole('button', { name: 'Revert to version 1' }).click(),
  ]);
  await env.until(async () => (await count(env.root(pa, cid))) === 1, 'Count: 1 on a after the revert', 5000);
  assert.ok(Date.now() - t0 <= 2000, `took ${Date.now() - t0} ms`);
  await env.matchesFreshRender(pa, cid);

  // Version 4 is the revert, by bob, and the page on b says so.
  const top = ph.locator('table.history-versions tbody tr').first();
  assert.equal(await top.getAttribute('data-version'), '4');
  assert.match(await top.innerText(), /bob\s.*revert\s+\{"to_version": 1\}/s);
  await env.connected(ph, cid);
  assert.equal(await count(ph.locator('.history-now')), 1);

  // A change on a reaches the history page on b: its live pane, the list
  // of versions, and the slider, which was at the latest and follows it.
  await ph.evaluate(() => { window.sameDocument = true; });
  await plus.click();
  await env.until(async () => (await count(ph.locator('.history-now'))) === 2, 'Count: 2 on the history page');
  await env.until(async () => (await ph.locator('table.history-versions tbody tr').first()
    .getAttribute('data-version')) === '5', 'version 5 listed on b');
  assert.match(await ph.locator('table.history-versions tbody tr').first().innerText(), /alice\s.*increment/s);
  assert.equal(await slider.getAttribute('max'), '5');
  await ph.locator('.history-preview[data-version="5"]').waitFor({ timeout: 5000 });
  assert.equal(await count(preview.locator('.history-render')), 2);
  assert.equal(await ph.evaluate(() => window.sameDocument), true, 'the page was reloaded');
  await env.screenshot(ph, 'history-after-revert');

  assert.deepEqual(alice.problems, []);
  assert.deepEqual(bob.problems, []);
  await alice.close();
  await bob.close();
});

test('without the revert scope there is no button, and a forged post is refused', async () => {
  const carol = await env.user(browser, 'Carol');
  const id = env.uid('h');
  const cid = `counter:${id}`;
  const pa = await env.open(carol, `${env.A}/counter/${id}`);
  await env.connected(pa, cid);
  for (let i = 1; i <= 2; i++) {
    await env.root(pa, cid).getByRole('button', { name: '+', exact: true }).click();
    await env.until(async () => (await count(env.root(pa, cid))) === i, `Count: ${i}`);
  }
  await env.settled(pa);

  const ph = await env.open(carol, `${env.B}/history/counter/${id}?v=1`);
  assert.equal(await count(ph.locator('#history-preview')), 1);
  assert.equal(await ph.getByRole('button', { name: /Revert/ }).count(), 0);
  const status = await ph.evaluate(async (path) => {
    const res = await fetch(path, { method: 'POST', body: new URLSearchParams({ version: '1' }) });
    return res.status;
  }, `/history/counter/${id}/revert`);
  assert.equal(status, 403);
  carol.problems = carol.problems.filter((p) => !/HTTP 403 .*\/revert$/.test(p));
  assert.deepEqual(carol.problems, []);
  await carol.close();
});
