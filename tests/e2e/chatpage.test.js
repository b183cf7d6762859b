// The chat page (/chat/:room, the component chat:<room>) and the chat
// channel of the same room are one conversation (docs/channels.md): a message
// sent on the channel appears in the pages on both instances, and one
// written on a page reaches the channel and the other page.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const env = require('./lib/env');

let browser;
before(async () => { browser = await env.launch(); });
after(async () => { await browser?.close(); });

test('chat pages on two instances and the chat channel share the room', async () => {
  const room = env.uid('room');
  const cid = `chat:${room}`;
  const alice = await env.user(browser, 'Alice');
  const bob = await env.user(browser, 'Bob');
  const carol = await env.user(browser, 'Carol');
  const pa = await env.open(alice, `${env.A}/chat/${room}`);
  const pb = await env.open(bob, `${env.B}/chat/${room}`);
  await env.connected(pa, cid);
  await env.connected(pb, cid);

  // Carol talks through the channel, from a page of her own.
  const pc = await carol.newPage();
  await pc.goto(`${env.A}/`);
  await pc.evaluate((r) => new Promise((resolve) => {
    const s = document.createElement('script');
    s.src = '/js/spark.js';
    s.onload = () => {
      window.got = [];
      window.room = window.Spark.chat(r, { onMessage: (m) => window.got.push(m) });
      resolve();
    };
    document.head.appendChild(s);
  }), room);
  await pc.waitForFunction(() => window.room.state === 'open');
  await pc.evaluate(() => window.room.send('hello from the channel'));
  for (const page of [pa, pb]) {
    await env.root(page, cid).getByText('hello from the channel').waitFor({ timeout: 2000 });
  }
  // Both pages show who is online: Alice and Bob see each other.
  await env.root(pa, cid).getByText('Bob').first().waitFor({ timeout: 2000 });
  await env.root(pb, cid).getByText('Alice').first().waitFor({ timeout: 2000 });

  // Alice writes on the page (its message field, Enter).
  const field = env.root(pa, cid).locator('input[type="text"], input:not([type]), textarea').first();
  await field.fill('hello from the page');
  await field.press('Enter');
  await env.root(pb, cid).getByText('hello from the page').waitFor({ timeout: 1000 });
  await pc.waitForFunction(() => window.got.some((m) => m.type === 'chat' && m.message === 'hello from the page' &&
    m.user === 'Alice'), null, { timeout: 2000 });
  assert.equal(await field.inputValue(), '', 'the field is cleared after sending');
  await env.screenshot(pa, 'chat-page');
  await alice.close();
  await bob.close();
  await carol.close();
});
