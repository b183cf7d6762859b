// Chat between two users on two instances through the chat channel
// (/chat/:room_id, apps/chat_channel.c), with spark.js's chat box
// (<div spark-chat-room>): messages both ways, who is online (a closed page
// leaves), who is typing, message text that stays text, and a crowded room
// that shows a count instead of names.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const env = require('./lib/env');

let browser;
before(async () => { browser = await env.launch(); });
after(async () => { await browser?.close(); });

// A page of `base`'s origin holding only the chat box of `room`.
async function chatPage(ctx, base, room) {
  const page = await ctx.newPage();
  await page.route(`${base}/e2e/chat/*`, (route) => route.fulfill({
    contentType: 'text/html; charset=utf-8',
    body: '<!doctype html><html><head><meta charset="utf-8"><title>chat</title>' +
      '<meta name="viewport" content="width=device-width, initial-scale=1">' +
      '<link rel="stylesheet" href="/css/spark.css"></head><body><main>' +
      `<h1>Chat: ${room}</h1><div spark-chat-room="${room}"></div>` +
      '</main><script src="/js/spark.js"></script></body></html>',
  }));
  await page.goto(`${base}/e2e/chat/${room}`);
  return page;
}

function online(page) {
  return page.locator('.spark-chat-online li').allTextContents();
}

test('two users on two instances: messages, online list, typing, leaving', async () => {
  const room = env.uid('room');
  const alice = await env.user(browser, 'Alice');
  const bob = await env.user(browser, 'Bob');
  const pa = await chatPage(alice, env.A, room);
  const pb = await chatPage(bob, env.B, room);

  await env.untilEqual(() => online(pa), ['Alice', 'Bob'], "Alice's online list");
  await env.untilEqual(() => online(pb), ['Alice', 'Bob'], "Bob's online list");

  // Typing shows on the other side only.
  await pa.locator('.spark-chat-form input').pressSequentially('hel');
  await pb.locator('.spark-chat-typing', { hasText: 'Alice is typing' }).waitFor({ timeout: 3000 });
  assert.equal(await pa.locator('.spark-chat-typing').textContent(), '');

  const text = 'hello <b>Bob</b> & <script>window.__x=1</script>';
  await pa.locator('.spark-chat-form input').fill(text);
  const sentAt = Date.now();
  await pa.locator('.spark-chat-form input').press('Enter');
  const lastB = pb.locator('.spark-chat-chat').last();
  await lastB.locator('.spark-chat-text', { hasText: 'hello' }).waitFor({ timeout: 3000 });
  assert.ok(Date.now() - sentAt < 1000, `the message took ${Date.now() - sentAt} ms`);
  assert.equal(await lastB.locator('.spark-chat-text').textContent(), text);
  assert.equal(await lastB.locator('.spark-chat-user').textContent(), 'Alice');
  assert.equal(await pb.locator('.spark-chat-messages b, .spark-chat-messages script').count(), 0);
  assert.equal(await pb.evaluate(() => window.__x), undefined);
  // A message ends the sender's typing indicator.
  await env.untilEqual(() => pb.locator('.spark-chat-typing').textContent(), '', "Bob's typing line", 3000);

  await pb.locator('.spark-chat-form input').fill('hi Alice');
  await pb.locator('.spark-chat-form input').press('Enter');
  await pa.locator('.spark-chat-chat .spark-chat-text', { hasText: 'hi Alice' }).waitFor({ timeout: 1000 });
  // Both see the same conversation, in the same order.
  const convo = (p) => p.locator('.spark-chat-chat').allTextContents();
  await env.untilEqual(() => convo(pa), ['Alice' + text, 'Bobhi Alice'], "Alice's conversation");
  await env.untilEqual(() => convo(pb), ['Alice' + text, 'Bobhi Alice'], "Bob's conversation");
  await env.screenshot(pb, 'chat-channel-bob');

  // Alice leaves: Bob's list drops her and says so.
  await pa.close();
  await env.untilEqual(() => online(pb), ['Bob'], "Bob's online list after Alice left");
  await pb.locator('.spark-chat-user_left', { hasText: 'Alice left' }).waitFor({ timeout: 3000 });
  assert.deepEqual([...alice.problems, ...bob.problems], []);
  await alice.close();
  await bob.close();
});

test('a chat whose instance restarts catches up on what it missed, once each', async () => {
  const room = env.uid('room');
  const alice = await env.user(browser, 'Alice');
  const bob = await env.user(browser, 'Bob');
  const pa = await chatPage(alice, env.A, room);
  const pb = await chatPage(bob, env.B, room);
  await env.untilEqual(() => online(pa), ['Alice', 'Bob'], "Alice's online list");
  await pa.locator('.spark-chat-form input').fill('one');
  await pa.locator('.spark-chat-form input').press('Enter');
  await pb.locator('.spark-chat-text', { hasText: 'one' }).waitFor();
  // Bob's instance dies; Alice writes meanwhile; it comes back.
  try {
    env.instance('kill', 'b');
    await pb.locator('.spark-chat[data-state="reconnecting"]').waitFor({ timeout: 5000 });
    await pa.locator('.spark-chat-form input').fill('two');
    await pa.locator('.spark-chat-form input').press('Enter');
    await pa.locator('.spark-chat-text', { hasText: 'two' }).waitFor();
  } finally {
    env.instance('start', 'b', env.PORT_B);
  }
  await pb.locator('.spark-chat[data-state="open"]').waitFor({ timeout: 15000 });
  await env.untilEqual(() => pb.locator('.spark-chat-chat .spark-chat-text').allTextContents(),
    ['one', 'two'], "Bob's messages after reconnecting", 15000);
  await alice.close();
  await bob.close();
});

// Restarts both instances with SPARK_CROWDED_ROOM set (undefined: the
// default), as a deployment would be configured.
function restartWithCrowdedRoom(value) {
  if (value === undefined) delete process.env.SPARK_CROWDED_ROOM;
  else process.env.SPARK_CROWDED_ROOM = String(value);
  for (const [name, port] of [['a', env.PORT_A], ['b', env.PORT_B]]) {
    env.instance('stop', name);
    env.instance('start', name, port);
  }
}

test('a crowded room shows how many are online, and the list again once it is small', async () => {
  restartWithCrowdedRoom(2);
  try {
    const room = env.uid('crowd');
    const cid = `chat:${room}`;
    const alice = await env.user(browser, 'Alice');
    const bob = await env.user(browser, 'Bob');
    const carol = await env.user(browser, 'Carol');
    const pa = await chatPage(alice, env.A, room);
    const pb = await chatPage(bob, env.B, room);
    await env.untilEqual(() => online(pa), ['Alice', 'Bob'], "Alice's online list");
    await env.untilEqual(() => online(pb), ['Alice', 'Bob'], "Bob's online list");
    const title = (p) => p.locator('.spark-chat-online h3').textContent();
    assert.equal(await title(pa), 'Online');

    // Carol's chat page (the chat component) is a third presence: past 2,
    // every box and the page show a count, no names.
    const pc = await env.open(carol, `${env.B}/chat/${room}`);
    await env.connected(pc, cid);
    for (const [p, who] of [[pa, 'Alice'], [pb, 'Bob']]) {
      await env.untilEqual(() => title(p), '3 online', `${who}'s count`);
      assert.deepEqual(await online(p), [], `${who}'s list while crowded`);
    }
    await env.root(pc, cid).locator('p.online.crowded', { hasText: '3 online' }).waitFor({ timeout: 3000 });
    assert.equal(await env.root(pc, cid).locator('p.online .user').count(), 0);
    await env.screenshot(pb, 'chat-crowded');

    // Carol leaves: the room is small again and the names come back.
    await carol.close();
    await env.untilEqual(() => online(pa), ['Alice', 'Bob'], "Alice's list after the room emptied");
    await env.untilEqual(() => online(pb), ['Alice', 'Bob'], "Bob's list after the room emptied");
    assert.equal(await title(pb), 'Online');
    assert.deepEqual([...alice.problems, ...bob.problems], []);
    await alice.close();
    await bob.close();
  } finally {
    restartWithCrowdedRoom(undefined);
  }
});
