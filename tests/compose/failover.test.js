// The compose deployment through its balancer (run by scripts/compose-test.sh):
// two users sign in with the demo login, chat and share a todo list in
// Chromium; the instance that serves Alice's chat socket is killed; the pages
// that were on it reconnect through the balancer to the other instance, and
// nothing is lost: what was sent before the kill is still there, and what is
// sent after it reaches both users. The names used and what the users saw go
// to $SPARK_COMPOSE_STATE, for the script to find in PostgreSQL.
//
// Needs: SPARK_COMPOSE_URL (the balancer), docker-compose on PATH with
// DOCKER_HOST, COMPOSE_PROJECT_NAME and COMPOSE_FILE set (to kill an instance
// and to run psql in the postgres container).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const LB = process.env.SPARK_COMPOSE_URL;
if (!LB) throw new Error('SPARK_COMPOSE_URL is not set: run this test with scripts/compose-test.sh');
const STATE = process.env.SPARK_COMPOSE_STATE || path.join(__dirname, 'artifacts', 'state.json');
// The browser helpers of tests/e2e serve here too, with both of their
// instances being the balancer. Users sign in with the demo login, so
// sparkd's token command (SPARKD) is never used.
process.env.SPARK_E2E_A ??= LB;
process.env.SPARK_E2E_B ??= LB;
process.env.SPARK_E2E_ARTIFACTS ??= path.join(__dirname, 'artifacts');
process.env.SPARKD ??= 'sparkd';
const env = require('../e2e/lib/env');
const todo = require('../e2e/lib/todo');

const INSTANCES = ['sparkd1', 'sparkd2'];
const t0 = Date.now();
const step = (what) => console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`);

function compose(...args) {
  return execFileSync('docker-compose', ['--ansi', 'never', ...args],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

// One value (first column of the first row) from psql in the postgres container.
function sql(query) {
  return compose('exec', '-T', 'postgres', 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1',
    '-U', 'spark', '-d', 'spark', '-c', query).trim();
}

// The instances that serve `name`'s connections to the chat room.
function chatInstances(room, name) {
  const text = sql(`SELECT array_to_string(instances, ',') FROM spark.room_presence
    WHERE room IN ('chat:${room}', '${room}') AND name = '${name}'`);
  return text ? text.split(',').sort() : [];
}

// Signs `name` in with the demo login, on the way to `next`: the page
// redirects to /login, the form posts the name, and the answer sets the
// session cookie and sends the browser back to `next`.
async function signIn(browser, name, next) {
  const ctx = await browser.newContext({ viewport: { width: 900, height: 800 } });
  const page = await ctx.newPage();
  await page.goto(`${LB}${next}`);
  assert.equal(new URL(page.url()).pathname, '/login', `${next} asks ${name} to sign in`);
  await page.locator('#name').fill(name);
  await Promise.all([
    page.waitForURL(`${LB}${next}`),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  const cookie = (await ctx.cookies(LB)).find((c) => c.name === 'spark_session');
  assert.ok(cookie, `${name} has a session cookie`);
  assert.equal(cookie.httpOnly, true, 'the session cookie is HttpOnly');
  ctx.userName = name;
  return { ctx, page };
}

// Records, from now on, whether the page lost its connection (any component
// root shown as not connected).
async function watchConnection(page) {
  await page.evaluate(() => {
    window.sparkLost = false;
    new MutationObserver((records) => {
      for (const r of records) {
        const el = r.target;
        if (el.hasAttribute && el.hasAttribute('spark-component') &&
            !el.classList.contains('spark-connected')) window.sparkLost = true;
      }
    }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['class'] });
  });
}

const lost = (page) => page.evaluate(() => window.sparkLost);

function chat(room) {
  const cid = `chat:${room}`;
  return {
    cid,
    async open(page) { await env.connected(page, cid, 15000); },
    async send(page, text) {
      const field = env.root(page, cid).locator('input[type="text"], input:not([type]), textarea').first();
      await field.fill(text);
      await field.press('Enter');
      await env.untilEqual(() => field.inputValue(), '', `the chat field to clear after "${text}"`);
    },
    async sees(page, text, timeout = 10000) {
      await env.root(page, cid).getByText(text).first().waitFor({ timeout });
    },
  };
}

// Whether the service's container runs (podman: the script's runtime).
function running(service) {
  const id = compose('ps', '-q', service).trim();
  return id !== '' && execFileSync('podman', ['inspect', '--format', '{{.State.Running}}', id],
    { encoding: 'utf8' }).trim() === 'true';
}

// /healthz through the balancer, `n` times: the instances that answered.
async function answering(n) {
  const seen = new Set();
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${LB}/healthz`);
    if (res.status === 200) seen.add((await res.json()).instance);
  }
  return [...seen].sort();
}

let browser;
before(async () => { browser = await env.launch(); });
after(async () => { await browser?.close(); });

test('two users chat and share a todo list; an instance dies; nothing is lost', async () => {
  const list = env.uid('list');
  const room = env.uid('room');
  const c = chat(room);

  // Each user: a chat page and a todo page, through the balancer.
  const alice = await signIn(browser, 'Alice', `/chat/${room}`);
  const bob = await signIn(browser, 'Bob', `/chat/${room}`);
  const ac = alice.page;
  const bc = bob.page;
  await c.open(ac);
  await c.open(bc);
  const at = await todo.open(alice.ctx, LB, list);
  const bt = await todo.open(bob.ctx, LB, list);
  const pages = { 'Alice chat': ac, 'Bob chat': bc, 'Alice todo': at, 'Bob todo': bt };

  step('signed in, pages connected');
  // Before the kill.
  const todos = ['milk (Alice)', 'bread (Bob)'];
  const messages = ['hello from Alice', 'hello from Bob'];
  await todo.add(at, list, todos[0]);
  await env.untilEqual(() => todo.texts(bt, list), todos.slice(0, 1), 'Bob sees Alice\'s todo', 10000);
  await todo.add(bt, list, todos[1]);
  await todo.toggle(bt, list, todos[0]);
  await env.untilEqual(() => todo.texts(at, list), todos, 'Alice sees Bob\'s todo', 10000);
  await env.until(() => todo.isDone(at, list, todos[0]), 'Alice sees milk done', 10000);
  await c.send(ac, messages[0]);
  await c.sees(bc, messages[0]);
  await c.send(bc, messages[1]);
  await c.sees(ac, messages[1]);
  await env.screenshot(at, 'compose-todo-before');
  await env.screenshot(ac, 'compose-chat-before');

  step('chatted and shared todos');
  // Kill the instance that serves Alice's chat socket (PostgreSQL's
  // presence rows say which).
  const aliceOn = await env.until(() => {
    const on = chatInstances(room, 'Alice');
    return on.length === 1 ? on : null;
  }, 'Alice\'s chat presence', 10000);
  const bobOn = await env.until(() => {
    const on = chatInstances(room, 'Bob');
    return on.length === 1 ? on : null;
  }, 'Bob\'s chat presence', 10000);
  const victim = aliceOn[0];
  const survivor = INSTANCES.find((i) => i !== victim);
  assert.ok(INSTANCES.includes(victim), `Alice's chat is served by ${victim}`);
  console.log(`# Alice's chat is on ${victim}, Bob's on ${bobOn[0]}: killing ${victim}`);
  for (const page of Object.values(pages)) await watchConnection(page);
  const killVersion = Number(await env.root(at, todo.cid(list)).getAttribute('spark-version'));
  compose('kill', victim);
  step(`killed ${victim}`);

  // The pages on the victim notice, and every page is connected again.
  await env.until(() => lost(ac), 'Alice\'s chat page to lose its connection', 15000);
  for (const [name, page] of Object.entries(pages)) {
    await page.waitForFunction(() => [...document.querySelectorAll('[spark-component]')]
      .every((el) => el.classList.contains('spark-connected')), null, { timeout: 30000 })
      .catch((e) => { throw new Error(`${name} did not reconnect: ${e.message}`); });
  }
  step('every page reconnected');
  await env.screenshot(ac, 'compose-chat-reconnected');
  const reconnected = [];
  for (const [name, page] of Object.entries(pages)) if (await lost(page)) reconnected.push(name);
  console.log(`# reconnected through the balancer: ${reconnected.join(', ')}`);
  if (bobOn[0] === survivor) assert.equal(await lost(bc), false, 'Bob\'s chat page, on the survivor, kept its socket');
  // Alice's chat socket is on the survivor now, and the balancer sends
  // everything there.
  await env.until(() => chatInstances(room, 'Alice').includes(survivor), `Alice's chat on ${survivor}`, 10000);
  await env.untilEqual(() => answering(6), [survivor], `the balancer to answer from ${survivor} only`, 20000);
  assert.equal(running(victim), false, `${victim} stays dead`);

  step('the balancer answers from the survivor only');
  // Nothing was lost: what came before the kill is on every page.
  await env.untilEqual(() => todo.texts(at, list), todos, 'Alice\'s todos after the kill', 10000);
  await env.untilEqual(() => todo.texts(bt, list), todos, 'Bob\'s todos after the kill', 10000);
  assert.equal(await todo.isDone(bt, list, todos[0]), true);
  for (const page of [ac, bc]) for (const m of messages) await c.sees(page, m);

  // And what comes after it reaches both users.
  const todosAfter = ['eggs (Alice, after the kill)', 'tea (Bob, after the kill)'];
  const messagesAfter = ['Alice, after the kill', 'Bob, after the kill'];
  await todo.add(at, list, todosAfter[0]);
  await env.untilEqual(() => todo.texts(bt, list), [...todos, todosAfter[0]], 'Bob sees Alice\'s new todo', 10000);
  await todo.add(bt, list, todosAfter[1]);
  await env.untilEqual(() => todo.texts(at, list), [...todos, ...todosAfter], 'Alice sees Bob\'s new todo', 10000);
  await c.send(ac, messagesAfter[0]);
  await c.sees(bc, messagesAfter[0]);
  await c.send(bc, messagesAfter[1]);
  await c.sees(ac, messagesAfter[1]);
  await env.matchesFreshRender(at, todo.cid(list), 10000);
  await env.matchesFreshRender(bt, todo.cid(list), 10000);
  await env.screenshot(at, 'compose-todo-after');
  await env.screenshot(bc, 'compose-chat-after');

  step('after the kill: new todos and messages reached both users');
  fs.mkdirSync(path.dirname(STATE), { recursive: true });
  fs.writeFileSync(STATE, JSON.stringify({
    component: todo.cid(list), room: c.cid, victim, survivor, killVersion, reconnected,
    todos: [...todos, ...todosAfter], messages: [...messages, ...messagesAfter],
  }, null, 2));
  await alice.ctx.close();
  await bob.ctx.close();
});
