// spark.js against a real instance over a connection that breaks in the
// middle of an event. The page's WebSocket goes through a relay in the
// browser (routeWebSocket) that loses one frame and then closes both ends:
// spark.js reconnects, joins again and sends the unanswered event again
// with the same id, and the instance applies it exactly once. Checked in
// PostgreSQL: the counter, its version and its history.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const env = require('./lib/env');

let browser;
before(async () => { browser = await env.launch(); });
after(async () => { await browser?.close(); });

function sql(query) {
  return execFileSync('psql', ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1',
    process.env.SPARK_E2E_DB, '-c', query], { encoding: 'utf8' }).trim();
}

// The counter's count, version, history rows and ids of events, as stored.
function stored(cid) {
  const row = sql(`SELECT c.state->>'count', c.version,
      (SELECT count(*) FROM spark.events e WHERE e.component_id = c.id),
      (SELECT count(*) FROM spark.event_ids x WHERE x.component_id = c.id)
    FROM spark.components c WHERE c.id = '${cid}'`);
  const [count, version, events, ids] = row.split('|').map(Number);
  return { count, version, events, ids };
}

async function count(page, cid) {
  const m = /Count: (-?\d+)/.exec(await env.root(page, cid).innerText());
  return m ? Number(m[1]) : null;
}

// Relays the page's /spark sockets to the instance. On the first socket,
// `lose` picks the frame to lose ('request': the page's event never reaches
// the instance; 'reply': the instance's reply to it never reaches the page)
// and then both ends are closed. Every event frame is recorded with the
// number of its socket.
async function relay(ctx, lose) {
  const events = [];
  let sockets = 0;
  let broke;
  const broken = new Promise((resolve) => { broke = resolve; });
  await ctx.routeWebSocket(/\/spark$/, (ws) => {
    const socket = ++sockets;
    const server = ws.connectToServer();
    let lostRef = null;
    const breakBoth = () => { ws.close({ code: 1011, reason: 'relay broke' }); server.close(); broke(); };
    ws.onMessage((text) => {
      const frame = JSON.parse(text);
      if (frame.t === 'event') {
        events.push({ socket, id: frame.id, ref: frame.ref });
        if (socket === 1 && lose === 'request') return breakBoth();
        if (socket === 1 && lose === 'reply') lostRef = frame.ref;
      }
      server.send(text);
    });
    server.onMessage((text) => {
      const frame = JSON.parse(text);
      if (socket === 1 && frame.t === 'reply' && frame.ref === lostRef) return breakBoth();
      ws.send(text);
    });
  });
  return { events, broken, sockets: () => sockets };
}

for (const lose of ['request', 'reply']) {
  test(`an event whose ${lose} was lost is sent again after reconnecting, and applied once`, async () => {
    const alice = await env.user(browser, 'Alice');
    const r = await relay(alice, lose);
    const id = env.uid('resend');
    const cid = `counter:${id}`;
    const page = await env.open(alice, `${env.A}/counter/${id}`);
    await env.connected(page, cid);
    assert.equal(await count(page, cid), 0);

    await env.root(page, cid).getByRole('button', { name: '+', exact: true }).click();
    await r.broken;
    // spark.js rejoins on a second socket and sends the event again there,
    // with the id it had on the first.
    await env.until(() => r.events.some((e) => e.socket === 2), 'the event sent again', 10000);
    assert.equal(r.events.length, 2, JSON.stringify(r.events));
    assert.equal(r.events[0].socket, 1);
    assert.equal(r.events[1].id, r.events[0].id);
    assert.ok(r.events[0].id.length > 0 && r.events[0].id.length <= 64);
    await env.connected(page, cid);
    await env.until(async () => (await count(page, cid)) === 1, 'Count: 1 on the page', 5000);
    await env.until(() => stored(cid).version === 1, 'version 1 stored', 5000);
    // Applied once: one version, one history row, one id; the resend of an
    // event already stored was answered from its id.
    assert.deepEqual(stored(cid), { count: 1, version: 1, events: 1, ids: 1 });
    // The rejoin shows Count: 1 before the resent event's answer is back:
    // wait for that answer, which leaves nothing pending.
    await env.until(async () => (await page.evaluate(() => window.Spark.pending)) === 0,
      'the resent event answered', 5000);
    assert.deepEqual(stored(cid), { count: 1, version: 1, events: 1, ids: 1 });

    // And the page goes on: the next click is applied, once.
    await env.root(page, cid).getByRole('button', { name: '+', exact: true }).click();
    await env.until(async () => (await count(page, cid)) === 2, 'Count: 2 on the page', 5000);
    await env.until(() => stored(cid).version === 2, 'version 2 stored', 5000);
    assert.deepEqual(stored(cid), { count: 2, version: 2, events: 2, ids: 2 });
    assert.equal(r.sockets(), 2);
    assert.deepEqual(alice.problems, []);
    await alice.close();
  });
}
