// The demo pages load and work before their socket connects (they are
// rendered on the server), link to each other, and fit a phone's width.
// A screenshot of each is saved as an artifact.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const env = require('./lib/env');

let browser;
before(async () => { browser = await env.launch(); });
after(async () => { await browser?.close(); });

test('the index links every demo and loads the stylesheet', async () => {
  const ctx = await browser.newContext({ viewport: { width: 375, height: 700 } });
  const page = await env.open(ctx, `${env.A}/`);
  for (const href of ['/counter/', '/todo/', '/chat/']) {
    assert.ok(await page.locator(`a[href^="${href}"]`).count() > 0, `a link to ${href}`);
  }
  assert.notEqual(await page.evaluate(() => getComputedStyle(document.body).fontFamily), '');
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true,
    'no sideways scrolling at 375 px');
  await env.screenshot(page, 'index');
  await ctx.close();
});

test('each demo page is rendered on the server, with its component at a version', async () => {
  const alice = await env.user(browser, 'Alice');
  const phone = await browser.newContext({ viewport: { width: 375, height: 700 } });
  await phone.addCookies([{ name: 'spark_session', value: alice.token, domain: '127.0.0.1', path: '/' }]);
  const demos = [
    ['counter', 'counter', /Count: \d+/],
    ['todo', 'todo', /\d+ items? left/],
    ['chat', 'chat', null],
  ];
  for (const [path, type, text] of demos) {
    const key = env.uid('demo');
    // With JavaScript off: what the server sent.
    const raw = await (await alice.request.get(`${env.A}/${path}/${key}`)).text();
    assert.match(raw, new RegExp(`spark-component="${type}:${key}"`), `/${path}/${key} has its root`);
    assert.match(raw, /spark-version="\d+"/, `/${path}/${key} says its version`);
    assert.match(raw, /<script[^>]+src="\/js\/spark\.js"/, `/${path}/${key} loads spark.js`);
    if (text) assert.match(raw, text);
    const page = await env.open(phone, `${env.A}/${path}/${key}`);
    await env.connected(page, `${type}:${key}`);
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true,
      `/${path} has no sideways scrolling at 375 px`);
    await env.screenshot(page, `demo-${path}`);
    await page.close();
  }
  await alice.close();
  await phone.close();
});

test('the login page, when demo login is on, signs a person in', async () => {
  const ctx = await browser.newContext();
  const page = await env.open(ctx, `${env.A}/login`);
  await env.screenshot(page, 'login');
  await page.locator('input[name="name"]').fill('Dora');
  await Promise.all([page.waitForNavigation(), page.locator('input[name="name"]').press('Enter')]);
  const cookies = await ctx.cookies(env.A);
  const session = cookies.find((c) => c.name === 'spark_session');
  assert.ok(session, 'the session cookie is set');
  assert.equal(session.httpOnly, true);
  await ctx.close();
});
