// A scripted /spark server inside the test: playwright answers the page's
// WebSocket itself, so spark.js can be tested message by message without
// the component runtime.
'use strict';

const env = require('./env');

// Opens `html` (a page body) at instance a's origin, with the served
// spark.js, and a mocked /spark. Joins are answered ok unless
// opts.autoReply is false. Returns the page and the mock:
//   mock.received     every client message, parsed, in order
//   mock.next(pred)   resolves with the first message (from `from` on) that matches
//   mock.send(obj)    sends to the current socket
//   mock.drop(code)   closes the current socket
async function mockPage(ctx, body, opts = {}) {
  const page = await ctx.newPage();
  const mock = { received: [], sockets: [], waiters: [] };
  mock.socket = () => mock.sockets[mock.sockets.length - 1];
  mock.send = (obj) => mock.socket().send(JSON.stringify(obj));
  mock.drop = (code = 1001) => mock.socket().close({ code, reason: 'test' });
  mock.next = (pred, what = 'a client message', from = 0, timeout = 5000) => {
    const hit = mock.received.slice(from).find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve, from };
      w.timer = setTimeout(() => {
        mock.waiters.splice(mock.waiters.indexOf(w), 1);
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(mock.received.slice(from))}`));
      }, timeout);
      mock.waiters.push(w);
    });
  };
  await page.routeWebSocket(/\/spark(\?|$)/, (ws) => {
    mock.sockets.push(ws);
    mock.urls = (mock.urls || []).concat(ws.url());
    ws.onMessage((text) => {
      const msg = JSON.parse(text);
      mock.received.push(msg);
      const at = mock.received.length - 1;
      for (const w of [...mock.waiters]) {
        if (at >= w.from && w.pred(msg)) {
          clearTimeout(w.timer);
          mock.waiters.splice(mock.waiters.indexOf(w), 1);
          w.resolve(msg);
        }
      }
      if (msg.t === 'join' && opts.autoReply !== false) ws.send(JSON.stringify({ t: 'reply', ref: msg.ref, ok: true }));
    });
  });
  await page.route(`${env.A}/e2e/page*`, (route) => route.fulfill({
    contentType: 'text/html; charset=utf-8',
    body: '<!doctype html><html><head><meta charset="utf-8"><title>spark.js</title>' +
      '<link rel="stylesheet" href="/css/spark.css"></head><body>' + body +
      `<script src="/js/spark.js"${opts.scriptAttrs || ''}></script></body></html>`,
  }));
  await page.route(`${env.A}/e2e/elsewhere`, (route) => route.fulfill({
    contentType: 'text/html; charset=utf-8', body: '<!doctype html><title>elsewhere</title><p>elsewhere</p>',
  }));
  await page.goto(`${env.A}/e2e/page`);
  return { page, mock };
}

module.exports = { mockPage };
