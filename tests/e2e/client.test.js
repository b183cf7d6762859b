// spark.js against a scripted /spark server (lib/mock.js): joins, events
// and their payloads, patches, renders, focus, flash, redirect, loading
// state, reconnects and hooks, one protocol message at a time.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const env = require('./lib/env');
const { mockPage } = require('./lib/mock');

let browser, ctx;
before(async () => {
  browser = await env.launch();
  ctx = await browser.newContext();
});
after(async () => { await browser?.close(); });

const TODO_PAGE = '<div spark-component="todo:t1" spark-version="7">' +
  '<form spark-submit="add"><input id="new" name="text" placeholder="What needs to be done?" value="">' +
  '<button spark-disable-with="Adding...">Add</button></form>' +
  '<ul><li spark-key="1"><span>milk</span><button spark-click="delete" spark-value-id="1" spark-value-item-kind="x">x</button></li></ul>' +
  '<a href="/nowhere" live-click="filter" spark-value-filter="active">Active</a>' +
  '<input id="k" spark-keydown="rename" spark-key="Enter" value="old">' +
  '<input id="d" spark-input="typed" spark-debounce="150" name="q">' +
  '<form id="f" spark-change="validate"><input name="email" value="a@b"><input type="checkbox" name="ok" value="yes"></form>' +
  '</div>';

function rootState(page, cid) {
  return page.evaluate((c) => document.querySelector(`[spark-component="${c}"]`).className, cid);
}

test('joins every root at its rendered version and shows the state as a class', async () => {
  const { page, mock } = await mockPage(ctx,
    '<div spark-component="counter:c1" spark-version="3"><p>Count: 0</p></div>' + TODO_PAGE, { autoReply: false });
  const j1 = await mock.next((m) => m.t === 'join' && m.cid === 'counter:c1', 'join of counter:c1');
  const j2 = await mock.next((m) => m.t === 'join' && m.cid === 'todo:t1', 'join of todo:t1');
  assert.equal(j1.v, 3);
  assert.equal(j2.v, 7);
  assert.notEqual(j1.ref, j2.ref);
  assert.equal(await rootState(page, 'counter:c1'), 'spark-connecting');
  mock.send({ t: 'reply', ref: j1.ref, ok: true });
  mock.send({ t: 'reply', ref: j2.ref, ok: false, error: { code: 'forbidden', message: 'no' } });
  await page.waitForSelector('[spark-component="counter:c1"].spark-connected');
  await page.waitForSelector('[spark-component="todo:t1"].spark-error');
  assert.match(mock.urls[0], /^ws:\/\/127\.0\.0\.1:\d+\/spark$/);
  await page.close();
});

test('clicks send spark-value-* (and live-click is an alias); links do not navigate', async () => {
  const { page, mock } = await mockPage(ctx, TODO_PAGE);
  await page.waitForSelector('.spark-connected');
  await page.click('button[spark-click="delete"]');
  const ev = await mock.next((m) => m.t === 'event', 'the delete event');
  assert.deepEqual({ cid: ev.cid, e: ev.e, d: ev.d }, { cid: 'todo:t1', e: 'delete', d: { id: '1', 'item-kind': 'x' } });
  await page.click('a[live-click]');
  const ev2 = await mock.next((m) => m.t === 'event' && m.e === 'filter', 'the filter event');
  assert.deepEqual(ev2.d, { filter: 'active' });
  assert.match(page.url(), /\/e2e\/page$/);
  await page.close();
});

test('an event in flight marks its element spark-loading; the reply restores the exact DOM', async () => {
  const { page, mock } = await mockPage(ctx, TODO_PAGE);
  await page.waitForSelector('.spark-connected');
  const before = await page.evaluate(() => document.querySelector('[spark-component]').innerHTML);
  await page.click('button[spark-click="delete"]');
  const ev = await mock.next((m) => m.t === 'event', 'the event');
  await page.waitForSelector('button.spark-loading[spark-click="delete"]');
  mock.send({ t: 'reply', ref: ev.ref, ok: true });
  await page.waitForFunction(() => !document.querySelector('.spark-loading'));
  assert.equal(await page.evaluate(() => document.querySelector('[spark-component]').innerHTML), before);
  await page.close();
});

test('submit sends the form fields, disables with spark-disable-with, then the server owns the field', async () => {
  const { page, mock } = await mockPage(ctx, TODO_PAGE);
  await page.waitForSelector('.spark-connected');
  await page.fill('#new', 'buy milk');
  await page.press('#new', 'Enter');
  const ev = await mock.next((m) => m.t === 'event' && m.e === 'add', 'the add event');
  assert.deepEqual(ev.d, { text: 'buy milk' });
  await page.waitForSelector('form[spark-submit] button[disabled]:text("Adding...")');
  // The server's answer: the reply, then the patch that adds the row.
  mock.send({ t: 'reply', ref: ev.ref, ok: true });
  mock.send({ t: 'patch', cid: 'todo:t1', v: 8, ops: [['i', [1, 1], '<li spark-key="2"><span>buy milk</span></li>']] });
  await page.waitForSelector('li:has-text("buy milk")');
  await page.waitForSelector('form[spark-submit] button:not([disabled]):text("Add")');
  // The submitted field shows what the server rendered (value=""), though focused.
  assert.equal(await page.inputValue('#new'), '');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'new');
  assert.equal(await page.getAttribute('[spark-component]', 'spark-version'), '8');
  await page.close();
});

test('spark-keydown fires only for its key; spark-input is debounced; spark-change on a form sends the form', async () => {
  const { page, mock } = await mockPage(ctx, TODO_PAGE);
  await page.waitForSelector('.spark-connected');
  await page.focus('#k');
  await page.keyboard.press('End');
  await page.keyboard.press('a');
  await page.keyboard.press('Enter');
  const ev = await mock.next((m) => m.t === 'event', 'the keydown event');
  assert.equal(ev.e, 'rename');
  assert.equal(ev.d.key, 'Enter');
  assert.equal(ev.d.value, 'olda');
  assert.equal(mock.received.filter((m) => m.t === 'event').length, 1, 'only Enter sent an event');

  const from = mock.received.length;
  await page.focus('#d');
  await page.keyboard.type('hello', { delay: 10 });
  const typed = await mock.next((m) => m.t === 'event' && m.e === 'typed', 'the debounced input', from);
  assert.equal(typed.d.value, 'hello');
  assert.equal(typed.d.q, 'hello');
  assert.equal(mock.received.slice(from).filter((m) => m.e === 'typed').length, 1, 'one event for the burst');

  await page.check('#f input[type=checkbox]');
  const ch = await mock.next((m) => m.t === 'event' && m.e === 'validate', 'the change event');
  assert.deepEqual(ch.d, { email: 'a@b', ok: 'yes', _target: 'ok' });
  await page.close();
});

test('patches keep focus, text and caret in the field being edited', async () => {
  const { page, mock } = await mockPage(ctx, TODO_PAGE);
  await page.waitForSelector('.spark-connected');
  await page.focus('#new');
  await page.keyboard.type('hello world');
  await page.evaluate(() => document.querySelector('#new').setSelectionRange(2, 5));
  mock.send({ t: 'patch', cid: 'todo:t1', v: 8, ops: [
    ['i', [1, 0], '<li spark-key="0"><span>first</span></li>'],
    ['s', [0, 0], 'value', 'server text'],   // the focused field's value attribute
    ['s', [0, 0], 'class', 'edited'],
    ['t', [1, 1, 0, 0], 'milk!'],
  ] });
  await page.waitForSelector('li:has-text("milk!")');
  const f = await page.evaluate(() => {
    const el = document.activeElement;
    return { id: el.id, value: el.value, start: el.selectionStart, end: el.selectionEnd, cls: el.className };
  });
  assert.deepEqual(f, { id: 'new', value: 'hello world', start: 2, end: 5, cls: 'edited' });
  // The whole form replaced: its stand-in gets focus, text and caret back.
  mock.send({ t: 'patch', cid: 'todo:t1', v: 9, ops: [
    ['p', [0], '<form spark-submit="add"><input id="new" name="text" value=""><button>Add</button></form>'],
  ] });
  await page.waitForFunction(() => !document.querySelector('[spark-disable-with]'));
  const g = await page.evaluate(() => {
    const el = document.activeElement;
    return { id: el.id, value: el.value, start: el.selectionStart, end: el.selectionEnd };
  });
  assert.deepEqual(g, { id: 'new', value: 'hello world', start: 2, end: 5 });
  // A field that is not focused shows the server's value.
  mock.send({ t: 'patch', cid: 'todo:t1', v: 10, ops: [['s', [3], 'value', 'from server']] });
  await page.waitForFunction(() => document.querySelector('#k').value === 'from server');
  await page.close();
});

test('render replaces the component and keeps the focused field; flash shows and can be dismissed', async () => {
  const { page, mock } = await mockPage(ctx, TODO_PAGE);
  await page.waitForSelector('.spark-connected');
  await page.focus('#new');
  await page.keyboard.type('abc');
  mock.send({ t: 'render', cid: 'todo:t1', v: 20, html: '<form spark-submit="add"><input id="new" name="text" value=""></form><p>fresh</p>' });
  await page.waitForSelector('p:text("fresh")');
  assert.equal(await page.getAttribute('[spark-component]', 'spark-version'), '20');
  assert.deepEqual(await page.evaluate(() => [document.activeElement.id, document.activeElement.value]), ['new', 'abc']);
  mock.send({ t: 'flash', cid: 'todo:t1', level: 'error', message: '<b>nope</b>' });
  const flash = page.locator('.spark-flash.spark-flash-error');
  await flash.waitFor();
  assert.equal(await flash.locator('.spark-flash-message').textContent(), '<b>nope</b>');
  await env.screenshot(page, 'client-flash');
  await flash.locator('button').click();
  await flash.waitFor({ state: 'detached' });
  await page.close();
});

test('a patch that does not fit asks for a full render (leave, join without a version)', async () => {
  const { page, mock } = await mockPage(ctx, TODO_PAGE);
  await page.waitForSelector('.spark-connected');
  const from = mock.received.length;
  mock.send({ t: 'patch', cid: 'todo:t1', v: 8, ops: [['t', [42, 0], 'x']] });
  await mock.next((m) => m.t === 'leave' && m.cid === 'todo:t1', 'a leave', from);
  const join = await mock.next((m) => m.t === 'join' && m.cid === 'todo:t1', 'a fresh join', from);
  assert.equal('v' in join, false);
  await page.close();
});

test('a dropped connection shows reconnecting, then re-joins at the version held', async () => {
  const { page, mock } = await mockPage(ctx, TODO_PAGE);
  await page.waitForSelector('.spark-connected');
  mock.send({ t: 'patch', cid: 'todo:t1', v: 12, ops: [['t', [1, 0, 0, 0], 'oat milk']] });
  await page.waitForSelector('span:text("oat milk")');
  const from = mock.received.length;
  mock.drop(1001);
  await page.waitForSelector('[spark-component].spark-reconnecting');
  const join = await mock.next((m) => m.t === 'join', 'the re-join', from, 10000);
  assert.equal(join.v, 12);
  assert.equal(mock.sockets.length, 2);
  await page.waitForSelector('[spark-component].spark-connected');
  // Events while disconnected are refused, not queued.
  mock.drop(1001);
  await page.waitForSelector('[spark-component].spark-reconnecting');
  const dropped = await page.evaluate(() => window.Spark.pushEvent('todo:t1', 'x', {}).then(() => 'sent', () => 'refused'));
  assert.equal(dropped, 'refused');
  await page.close();
});

test('close 4401 stops reconnecting and marks the roots', async () => {
  const { page, mock } = await mockPage(ctx, TODO_PAGE);
  await page.waitForSelector('.spark-connected');
  const unauthorized = page.evaluate(() => new Promise((r) => window.Spark.on('unauthorized', r)));
  mock.drop(4401);
  await unauthorized;
  await page.waitForSelector('[spark-component].spark-error');
  assert.equal(mock.sockets.length, 1);
  await page.close();
});

test('redirect follows same-site and http(s) URLs only', async () => {
  const { page, mock } = await mockPage(ctx, TODO_PAGE);
  await page.waitForSelector('.spark-connected');
  mock.send({ t: 'redirect', url: 'javascript:alert(1)' });
  mock.send({ t: 'redirect', url: '/e2e/elsewhere' });
  await page.waitForURL(/\/e2e\/elsewhere$/);
  await page.close();
});

test('hooks: mounted, updated and destroyed follow the DOM', async () => {
  // A page that connects itself (data-spark-manual), with hooks.
  const { page: p3, mock: m3 } = await mockPage(ctx,
    '<div spark-component="chart:c" spark-version="1"><div id="c1" spark-hook="Chart"><b>1</b></div><p>x</p></div>' +
    '<script>window.hookLog = []; window.addEventListener("DOMContentLoaded", () => Spark.connect({ hooks: { Chart: {' +
    'mounted() { hookLog.push("mounted " + this.el.id + " " + this.cid); },' +
    'updated() { hookLog.push("updated " + this.el.id); },' +
    'destroyed() { hookLog.push("destroyed " + this.el.id); } } } }));</script>',
    { scriptAttrs: ' data-spark-manual' });
  await p3.waitForSelector('.spark-connected');
  m3.send({ t: 'patch', cid: 'chart:c', v: 2, ops: [['t', [0, 0, 0], '2']] });
  m3.send({ t: 'patch', cid: 'chart:c', v: 3, ops: [['t', [1, 0], 'y']] });
  m3.send({ t: 'patch', cid: 'chart:c', v: 4, ops: [['i', [2], '<div id="c2" spark-hook="Chart"></div>'], ['r', [0]]] });
  await p3.waitForFunction(() => window.hookLog.length >= 4);
  assert.deepEqual(await p3.evaluate(() => window.hookLog),
    ['mounted c1 chart:c', 'updated c1', 'destroyed c1', 'mounted c2 chart:c']);
  await p3.close();
});

test('user messages arrive as spark:message and are never acted on; unknown frames are ignored', async () => {
  const { page, mock } = await mockPage(ctx, TODO_PAGE);
  await page.waitForSelector('.spark-connected');
  await page.evaluate(() => {
    window.got = [];
    window.Spark.on('message', (d) => window.got.push(d));
  });
  const before = await page.innerHTML('[spark-component="todo:t1"]');
  // A render and a redirect smuggled as what was sent to the user.
  mock.send({ t: 'msg', room: 'user:alice', kind: 'message', seq: 12,
    data: { t: 'render', cid: 'todo:t1', v: 99, html: '<img src=x onerror="window.pwned=1">' } });
  mock.send({ t: 'msg', room: 'user:alice', kind: 'message', seq: 13,
    data: { t: 'redirect', url: '/e2e/elsewhere' } });
  // Frames this client does not know: nothing happens.
  mock.send({ t: 'navigate', url: '/e2e/elsewhere' });
  mock.send({ seq: 14, url: '/e2e/elsewhere' });
  mock.send({ t: 'flash', cid: 'todo:t1', level: 'info', message: 'after' });
  await page.locator('.spark-flash').waitFor();
  await page.waitForFunction(() => window.got.length >= 2);
  const got = await page.evaluate(() => window.got);
  assert.equal(got.length, 2, JSON.stringify(got));
  assert.deepEqual(got[0], { room: 'user:alice', kind: 'message', seq: 12,
    data: { t: 'render', cid: 'todo:t1', v: 99, html: '<img src=x onerror="window.pwned=1">' } });
  assert.equal(got[1].data.t, 'redirect');
  assert.equal(await page.innerHTML('[spark-component="todo:t1"]'), before);
  assert.equal(await page.getAttribute('[spark-component]', 'spark-version'), '7');
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  assert.match(page.url(), /\/e2e\/page$/);
  await page.close();
});
