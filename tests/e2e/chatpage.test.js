// The chat page (/chat/:room, the component chat:<room>) and the chat
// channel of the same room are one conversation (docs/channels.md): a message
// sent on the channel appears in the pages on both instances, and one
// written on a page reaches the channel and the other page. "Load earlier
// messages" pages back for the page that clicked it only
// (docs/components.md#rooms).
'use strict';

const { execFileSync } = require('node:child_process');
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

// Stores messages "m-<from>".."m-<to>" in the room, as the chat channel
// writes them.
function store(room, from, to) {
  execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', `room=${room}`,
    process.env.SPARK_E2E_DB], { input: "SELECT count(spark.broadcast(:'room', jsonb_build_object(" +
      "'type', 'chat', 'user', 'bot', 'user_id', 'bot', 'message', 'm-' || lpad(i::text, 4, '0'))))" +
      ` FROM generate_series(${from}, ${to}) i;\n` });
}

// The messages a page shows, in order (their text after "user: ").
async function shown(page, cid) {
  const texts = await env.root(page, cid).locator('li.message').allTextContents();
  return texts.map((t) => t.replace(/^[^:]*: /, ''));
}

function range(from, to) {
  return Array.from({ length: to - from + 1 }, (_, i) => `m-${String(from + i).padStart(4, '0')}`);
}

test('Load earlier messages pages back on the page that clicked it only', async () => {
  const room = env.uid('paged');
  const cid = `chat:${room}`;
  store(`chat:${room}`, 1, 70);
  const alice = await env.user(browser, 'Alice');
  const bob = await env.user(browser, 'Bob');
  const pa = await env.open(alice, `${env.A}/chat/${room}`);
  const pb = await env.open(bob, `${env.B}/chat/${room}`);
  await env.connected(pa, cid);
  await env.connected(pb, cid);
  // Each page shows the 50 recent messages, and the button.
  for (const page of [pa, pb]) {
    assert.deepEqual(await shown(page, cid), range(21, 70));
    assert.equal(await env.root(page, cid).getByRole('button', { name: 'Load earlier messages' }).count(), 1);
  }

  // Alice pages back: the 20 older ones come before the others, and there
  // is nothing earlier, so the button goes.
  await env.root(pa, cid).getByRole('button', { name: 'Load earlier messages' }).click();
  await env.untilEqual(() => shown(pa, cid), range(1, 70), 'the older messages on Alice\'s page');
  await env.root(pa, cid).locator('button.load-history').waitFor({ state: 'detached', timeout: 2000 });

  // A new message from Alice's page: Alice keeps every message, Bob, on the
  // other instance, still sees the recent 50 and the button.
  const field = env.root(pa, cid).locator('input[name="message"]');
  await field.fill('m-0071');
  await field.press('Enter');
  await env.untilEqual(() => shown(pb, cid), range(22, 71), 'the recent messages on Bob\'s page');
  await env.untilEqual(() => shown(pa, cid), range(1, 71), 'every message on Alice\'s page');
  assert.equal(await env.root(pb, cid).locator('button.load-history').count(), 1);
  await env.screenshot(pa, 'chat-page-earlier');
  assert.deepEqual(alice.problems, []);
  assert.deepEqual(bob.problems, []);
  await alice.close();
  await bob.close();
});
