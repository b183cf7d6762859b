// The instance serving a page dies and comes back: the page shows that it is
// reconnecting, then catches up with what changed meanwhile on the other
// instance, and ends equal to a fresh render.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const env = require('./lib/env');
const todo = require('./lib/todo');

let browser;
before(async () => { browser = await env.launch(); });
after(async () => { await browser?.close(); });

test('a page whose instance is killed shows reconnecting, then catches up', async () => {
  const alice = await env.user(browser, 'Alice');
  const bob = await env.user(browser, 'Bob');
  const list = env.uid('list');
  const pa = await todo.open(alice, env.A, list);
  const pb = await todo.open(bob, env.B, list);
  await todo.add(pb, list, 'before');
  await env.untilEqual(() => todo.texts(pa, list), ['before'], 'a in step');

  const root = `[spark-component="${todo.cid(list)}"]`;
  try {
    env.instance('kill', 'a');
    await pa.waitForSelector(`${root}.spark-reconnecting`, { timeout: 5000 });
    await env.screenshot(pa, 'todo-reconnecting');
    await todo.add(pb, list, 'while a was away');
    await todo.toggle(pb, list, 'before');
  } finally {
    env.instance('start', 'a', env.PORT_A);
  }
  await pa.waitForSelector(`${root}.spark-connected`, { timeout: 15000 });
  await env.untilEqual(() => todo.texts(pa, list), ['before', 'while a was away'], 'a caught up');
  assert.equal(await todo.isDone(pa, list, 'before'), true);
  await env.matchesFreshRender(pa, todo.cid(list));
  // And it is live again.
  await todo.add(pa, list, 'after');
  await env.untilEqual(() => todo.texts(pb, list), ['before', 'while a was away', 'after'], 'b sees a again', 1000);
  await alice.close();
  await bob.close();
});
