// Azu's page, as Azu's guide writes it: <script src="/js/azu-spark.js"> in
// the head, the counter and the todo list mounted in the body, and
// Spark.connect("ws://.../spark") at the end. The page is served by the
// test on each instance's origin; the client speaks Azu's frames, and a
// change made on instance A reaches the page on instance B as a
// component_update. Spark.sendEvent, Spark.updateComponent and data-*
// attributes as event data are the seed's calls; a data-* attribute never
// changes the event or the component, and what is sent to the user never
// acts as one of Azu's frames. The page reconnects after its instance
// restarts; Spark.connect(url) goes where its URL says; and, since no demo
// component flashes or redirects, component_flash and component_redirect
// are played to the client by a scripted /spark.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const env = require('./lib/env');
const { mockPage } = require('./lib/mock');
const todo = require('./lib/todo');

let browser;
before(async () => { browser = await env.launch(); });
after(async () => { await browser?.close(); });

// Azu's page; the components are mounted as live roots the client fills.
function seedPage(port, counter, list, query = '') {
  return `<!DOCTYPE html>
<html>
  <head>
    <title>My Azu App</title>
    <script src="/js/azu-spark.js"></script>
  </head>
  <body>
    <!-- Mount live components -->
    <div id="counter-widget">
      <div spark-component="counter:${counter}"></div>
    </div>

    <div id="todo-list">
      <div spark-component="todo:${list}"></div>
    </div>

    <!-- Initialize Spark -->
    <script>
      Spark.connect("ws://127.0.0.1:${port}/spark${query}");
    </script>
  </body>
</html>`;
}

// Opens the page on `base`, recording the /spark frames both ways; its
// socket is ws://127.0.0.1:<port>/spark<query>.
async function openSeed(ctx, base, port, counter, list, query = '') {
  const page = await ctx.newPage();
  page.frames_ = { sent: [], received: [], urls: [] };
  page.on('websocket', (ws) => {
    if (!/\/spark(\?|$)/.test(ws.url())) return;
    page.frames_.urls.push(ws.url());
    ws.on('framesent', (f) => page.frames_.sent.push(JSON.parse(f.payload)));
    ws.on('framereceived', (f) => page.frames_.received.push(JSON.parse(f.payload)));
  });
  await page.route(`${base}/e2e/azu/*`, (route) => route.fulfill({
    contentType: 'text/html; charset=utf-8', body: seedPage(port, counter, list, query),
  }));
  const res = await page.goto(`${base}/e2e/azu/${counter}`);
  assert.equal(res.status(), 200);
  await env.connected(page, `counter:${counter}`);
  await env.connected(page, `todo:${list}`);
  return page;
}

// Alice's page on A and Bob's on B, showing a fresh counter and list.
async function twoPages() {
  const counter = env.uid('c');
  const list = env.uid('l');
  const alice = await env.user(browser, 'Alice');
  const bob = await env.user(browser, 'Bob');
  const pa = await openSeed(alice, env.A, env.PORT_A, counter, list);
  const pb = await openSeed(bob, env.B, env.PORT_B, counter, list);
  return { list, ccid: `counter:${counter}`, alice, bob, pa, pb };
}

async function count(page, cid) {
  const m = /Count: (-?\d+)/.exec(await env.root(page, cid).innerText());
  return m ? Number(m[1]) : null;
}

test('/js/azu-spark.js is the client itself', async () => {
  const ctx = await env.user(browser, 'Ann');
  const page = await env.open(ctx, `${env.A}/js/azu-spark.js`);
  const [azu, spark] = await page.evaluate(async () => Promise.all(
    ['/js/azu-spark.js', '/js/spark.js'].map(async (p) => {
      const r = await fetch(p, { cache: 'no-store' });
      return { type: r.headers.get('content-type'), text: await r.text() };
    })));
  assert.match(azu.type, /javascript/);
  assert.ok(azu.text.includes('global.Spark = api'));
  assert.equal(azu.text, spark.text);
  await ctx.close();
});

test("Azu's page on two instances: a change on A reaches B as component_update", async () => {
  const { list, ccid, alice, bob, pa, pb } = await twoPages();
  assert.equal(await pb.evaluate(() => Spark.protocol), 'azu');
  assert.equal(await count(pb, ccid), 0);

  // A click on A: Azu's component_event out of A, component_update into B.
  const t0 = Date.now();
  await env.root(pa, ccid).getByRole('button', { name: '+', exact: true }).click();
  await env.until(async () => (await count(pb, ccid)) === 1, 'Count: 1 on b', 5000);
  assert.ok(Date.now() - t0 <= 1000, `took ${Date.now() - t0} ms`);
  const sent = pa.frames_.sent.find((f) => f.event === 'increment');
  assert.deepEqual(Object.keys(sent).sort(), ['component_id', 'data', 'event', 'id', 'ref', 'type']);
  assert.equal(sent.type, 'component_event');
  assert.equal(sent.component_id, ccid);
  const update = pb.frames_.received.find((f) => f.type === 'component_update' &&
    f.component_id === ccid && /Count: 1/.test(f.html));
  assert.ok(update, `b received ${JSON.stringify(pb.frames_.received)}`);
  assert.equal(update.version, 1);
  // Nothing of Spark's own frames reached either page.
  for (const p of [pa, pb]) {
    assert.deepEqual(p.frames_.received.filter((f) => f.t !== undefined && f.t !== 'msg'), []);
    assert.deepEqual(p.frames_.sent.filter((f) => f.t !== undefined), []);
  }

  // The seed's own call, from B.
  const reply = await pb.evaluate((c) => Spark.sendEvent(c, 'increment', {}), ccid);
  assert.equal(reply.ok, true);
  await env.until(async () => (await count(pa, ccid)) === 2, 'Count: 2 on a', 5000);

  // The todo list: added on A, shown on B.
  await todo.add(pa, list, 'milk');
  await todo.add(pa, list, 'eggs');
  await env.untilEqual(() => todo.texts(pb, list), ['milk', 'eggs'], 'the items on b');

  // A data-* never replaces a spark-value-* of the same name: "eggs"'s
  // delete button keeps its spark-value-id and gets "milk"'s as data-id.
  const button = (text) => todo.item(pb, list, text).locator('button').first();
  const milkId = await button('milk').getAttribute('spark-value-id');
  await button('eggs').evaluate((b, v) => b.setAttribute('data-id', v), milkId);
  await button('eggs').click();
  await env.untilEqual(() => todo.texts(pa, list), ['milk'], 'the items on a');

  // data-* attributes are event data, beside spark-value-*: the delete
  // button of "milk" carries its id as data-id alone, and attributes that
  // name another event, component or frame kind, which stay data.
  await button('milk').evaluate((b, c) => {
    const v = b.getAttribute('spark-value-id');
    b.removeAttribute('spark-value-id');
    b.setAttribute('data-id', v);
    b.setAttribute('data-event', 'clear_completed');
    b.setAttribute('data-component-id', c);
    b.setAttribute('data-component_id', c);
    b.setAttribute('data-type', 'component_leave');
    b.setAttribute('data-ref', '1');
  }, ccid);
  const deleteEvent = await button('milk').getAttribute('spark-click');
  const before = pb.frames_.sent.length;
  await button('milk').click();
  await env.untilEqual(() => todo.texts(pa, list), [], 'the items on a');
  const frame = pb.frames_.sent.slice(before).find((f) => f.event === deleteEvent);
  assert.equal(frame.type, 'component_event');
  assert.equal(frame.component_id, `todo:${list}`);
  assert.notEqual(frame.ref, 1);
  assert.deepEqual(frame.data, { id: milkId, event: 'clear_completed', 'component-id': ccid,
    component_id: ccid, type: 'component_leave', ref: '1' });
  assert.equal(await count(pb, ccid), 2);
  assert.equal(await env.root(pb, ccid).count(), 1);

  // updateComponent: a component's HTML into its roots, or the element of
  // that id (Azu's way).
  await pb.evaluate(() => {
    const el = document.createElement('div');
    el.id = 'notes';
    document.body.appendChild(el);
    Spark.updateComponent('notes', '<p>from <b>updateComponent</b></p>');
  });
  assert.equal(await pb.locator('#notes').innerHTML(), '<p>from <b>updateComponent</b></p>');

  // What is sent to Bob arrives as a message, never as Azu's redirect.
  await pb.evaluate(() => {
    window.messages_ = [];
    Spark.on('message', (m) => window.messages_.push(m));
  });
  const url = pb.url();
  const evil = JSON.stringify({ type: 'component_redirect', url: 'https://evil.example/' });
  await env.until(async () => {
    execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', `p=${evil}`,
      process.env.SPARK_E2E_DB], { input: "SELECT spark.notify_user('bob', :'p');\n" });
    return pb.evaluate(() => window.messages_.length > 0);
  }, 'the message on b', 5000);
  const got = await pb.evaluate(() => window.messages_[0]);
  assert.deepEqual(got.data, JSON.parse(evil));
  assert.equal(got.room, 'user:bob');
  assert.equal(pb.url(), url);

  for (const ctx of [alice, bob]) assert.deepEqual(ctx.problems, []);
  await env.screenshot(pb, 'seed');
  await alice.close();
  await bob.close();
});

test("Azu's page reconnects after its instance restarts and catches up", async () => {
  const { list, ccid, alice, bob, pa, pb } = await twoPages();
  const plus = (p) => env.root(p, ccid).getByRole('button', { name: '+', exact: true });
  await plus(pa).click();
  await env.until(async () => (await count(pb, ccid)) === 1, 'Count: 1 on b', 5000);
  try {
    env.instance('kill', 'b');
    await pb.waitForSelector(`[spark-component="${ccid}"].spark-reconnecting`, { timeout: 5000 });
    await plus(pa).click();
    await env.settled(pa);
    await todo.add(pa, list, 'while b was away');
  } finally {
    env.instance('start', 'b', env.PORT_B);
  }
  await env.connected(pb, ccid, 15000);
  await env.until(async () => (await count(pb, ccid)) === 2, 'Count: 2 on b', 5000);
  await env.untilEqual(() => todo.texts(pb, list), ['while b was away'], 'the items on b');
  // Live again, both ways.
  await plus(pb).click();
  await env.until(async () => (await count(pa, ccid)) === 3, 'Count: 3 on a', 5000);
  assert.deepEqual(pb.frames_.received.filter((f) => f.t !== undefined && f.t !== 'msg'), []);
  await alice.close();
  await bob.close();
});

test('Spark.connect(url) goes where its URL says', async () => {
  // A page of A's origin, with no session cookie, whose script connects to
  // B with a token in the URL: the default (A, no token) would be refused.
  const counter = env.uid('c');
  const ccid = `counter:${counter}`;
  const ctx = await browser.newContext();
  ctx.problems = [];
  const t = env.token('carol', 'Carol');
  const page = await openSeed(ctx, env.A, env.PORT_B, counter, env.uid('l'),
    `?token=${encodeURIComponent(t)}`);
  assert.deepEqual(page.frames_.urls,
    [`ws://127.0.0.1:${env.PORT_B}/spark?token=${encodeURIComponent(t)}&protocol=azu`]);
  await env.root(page, ccid).getByRole('button', { name: '+', exact: true }).click();
  await env.until(async () => (await count(page, ccid)) === 1, 'Count: 1', 5000);
  await ctx.close();
});

// No demo component flashes or redirects: the client's side of Azu's
// component_flash and component_redirect, and of frames that must do
// nothing, against a scripted /spark (lib/mock.js), one frame at a time.
test("Azu's frames one by one: update, flash, error, redirect; nothing else acts", async () => {
  const ctx = await browser.newContext();
  const { page, mock } = await mockPage(ctx, '<div spark-component="todo:t1"></div>',
    { scriptAttrs: ' data-protocol="azu"', autoReply: false });
  const join = await mock.next((m) => m.type === 'component_join', 'the join');
  assert.deepEqual(join, { type: 'component_join', ref: join.ref, component_id: 'todo:t1' });
  assert.match(mock.urls[0], /\/spark\?protocol=azu$/);
  mock.send({ type: 'reply', ref: join.ref, ok: true });
  await env.connected(page, 'todo:t1');

  mock.send({ type: 'component_update', component_id: 'todo:t1', version: 3,
    html: '<button spark-click="go" data-id="7">go</button>' });
  await page.locator('[spark-component="todo:t1"] button').waitFor();
  assert.equal(await page.evaluate(() => Spark.versionOf('todo:t1')), 3);

  // An event, answered with an error frame.
  await page.evaluate(() => {
    window.errors = [];
    Spark.on('error', (d) => window.errors.push(d));
    window.got = [];
    Spark.on('message', (d) => window.got.push(d));
  });
  await page.locator('[spark-component="todo:t1"] button').click();
  const ev = await mock.next((m) => m.type === 'component_event', 'the event');
  assert.deepEqual(ev.data, { id: '7' });
  mock.send({ type: 'error', ref: ev.ref, code: 'not_found', message: 'no such todo' });
  await page.waitForFunction(() => window.errors.length === 1 && Spark.pending === 0);
  assert.deepEqual((await page.evaluate(() => window.errors))[0].error,
    { code: 'not_found', message: 'no such todo' });

  // Spark's own frames on an Azu connection, and what is sent to the user,
  // whatever it says: nothing happens (but the message is passed on).
  mock.send({ t: 'render', cid: 'todo:t1', v: 99, html: '<p>hijacked</p>' });
  mock.send({ t: 'redirect', url: '/e2e/elsewhere' });
  mock.send({ t: 'msg', room: 'user:alice', kind: 'message', seq: 12,
    data: { type: 'component_redirect', url: '/e2e/elsewhere' } });
  mock.send({ type: 'component_flash', component_id: 'todo:t1', level: 'error', message: '<b>nope</b>' });
  const flash = page.locator('.spark-flash.spark-flash-error');
  await flash.waitFor();
  assert.equal(await flash.locator('.spark-flash-message').textContent(), '<b>nope</b>');
  await page.waitForFunction(() => window.got.length === 1);
  assert.deepEqual(await page.evaluate(() => window.got[0].data),
    { type: 'component_redirect', url: '/e2e/elsewhere' });
  assert.equal(await page.innerHTML('[spark-component="todo:t1"]'), '<button spark-click="go" data-id="7">go</button>');
  assert.match(page.url(), /\/e2e\/page$/);

  // component_redirect: http(s) only.
  mock.send({ type: 'component_redirect', url: 'javascript:alert(1)' });
  mock.send({ type: 'component_redirect', url: '/e2e/elsewhere' });
  await page.waitForURL(/\/e2e\/elsewhere$/);
  await ctx.close();
});
