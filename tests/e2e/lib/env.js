// Shared set-up of the browser tests: the two instances run.sh started, the
// browser, users with tokens, screenshots and waiting helpers.
'use strict';

const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { until, untilEqual } = require('./until');

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the browser tests with tests/e2e/run.sh`);
  return v;
}

const A = need('SPARK_E2E_A');
const B = need('SPARK_E2E_B');
const ARTIFACTS = need('SPARK_E2E_ARTIFACTS');
const SPARKD = need('SPARKD');
const HERE = path.resolve(__dirname, '..');

// A name unique to this run, safe in URLs and component keys.
function uid(prefix) {
  return `${prefix}-${crypto.randomBytes(4).toString('hex')}`;
}

async function launch() {
  return chromium.launch({
    executablePath: process.env.SPARK_E2E_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // The sandbox needs user namespaces, which containers and root lack.
    // Test fixture pages are served by the test (page.route), and Chromium
    // would count them as public pages reaching a local server.
    args: ['--no-sandbox', '--disable-dev-shm-usage',
      '--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests'],
  });
}

// A token for `name` from sparkd itself (SPARK_SIGNING_KEY from run.sh),
// with the scopes room:* and component:* and any `extra` ones.
function token(sub, name, extra = []) {
  const scopes = ['room:*', 'component:*', ...extra].flatMap((s) => ['--scope', s]);
  return execFileSync(SPARKD, ['token', '--sub', sub, '--name', name, '--ttl', '3600', ...scopes],
    { encoding: 'utf8' }).trim();
}

// A browser context signed in as one user: the session cookie holds a
// token, as the /login page would set it. Cookies ignore ports, so each
// user needs a context of their own. Console errors and page errors are
// collected in ctx.problems. `extraScopes` are granted besides room:* and
// component:* (["revert:*"]).
async function user(browser, name, extraScopes = []) {
  const ctx = await browser.newContext({ viewport: { width: 900, height: 800 } });
  const t = token(name.toLowerCase(), name, extraScopes);
  await ctx.addCookies([{ name: 'spark_session', value: t, domain: '127.0.0.1', path: '/',
    httpOnly: true, sameSite: 'Lax' }]);
  ctx.token = t;
  ctx.userName = name;
  ctx.problems = [];
  ctx.on('page', (page) => watchPage(ctx, page));
  return ctx;
}

function watchPage(ctx, page) {
  page.on('pageerror', (e) => ctx.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // Failed loads are reported below, with their URL.
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) ctx.problems.push(`console: ${m.text()}`);
  });
  page.on('response', (r) => {
    // The browser asks for /favicon.ico by itself; the demos have none.
    if (r.status() >= 400 && new URL(r.url()).pathname !== '/favicon.ico') {
      ctx.problems.push(`HTTP ${r.status()} for ${r.url()}`);
    }
  });
}

// Opens `url` and fails with the status when the server does not serve it.
async function open(ctx, url) {
  const page = await ctx.newPage();
  const res = await page.goto(url, { waitUntil: 'load' });
  if (!res || res.status() !== 200) {
    throw new Error(`GET ${url} answered ${res ? res.status() : 'nothing'}, not 200`);
  }
  return page;
}

async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  // caret: 'initial', since hiding the caret leaves style="" on every
  // input, and the page would no longer equal the server's render.
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true, caret: 'initial' });
}

// The root element of component `cid` on the page.
function root(page, cid) {
  return page.locator(`[spark-component="${cid}"]`);
}

// Waits until the page's root of `cid` is joined (class spark-connected).
async function connected(page, cid, timeout = 5000) {
  await page.waitForFunction((c) => {
    const el = document.querySelector(`[spark-component="${c}"]`);
    return el && el.classList.contains('spark-connected');
  }, cid, { timeout });
}

// Waits until no event of the page is waiting for its reply.
async function settled(page, timeout = 5000) {
  await page.waitForFunction(() => window.Spark && window.Spark.pending === 0 &&
    !document.querySelector('.spark-loading'), null, { timeout });
}

// The component's markup as the server renders it now for this user (a
// fresh GET of the page, in the page's own context and cookies).
async function freshRender(page, cid) {
  return page.evaluate(async (c) => {
    const res = await fetch(location.href, { cache: 'no-store' });
    const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
    const el = doc.querySelector(`[spark-component="${c}"]`);
    return el ? { html: el.innerHTML, v: el.getAttribute('spark-version') } : null;
  }, cid);
}

async function liveRender(page, cid) {
  return page.evaluate((c) => {
    const el = document.querySelector(`[spark-component="${c}"]`);
    return el ? { html: el.innerHTML, v: el.getAttribute('spark-version') } : null;
  }, cid);
}

// Waits until the page's component equals a fresh server render of it
// (markup and version); fails showing both.
async function matchesFreshRender(page, cid, timeout = 5000) {
  let last;
  try {
    await until(async () => {
      const live = await liveRender(page, cid);
      const fresh = await freshRender(page, cid);
      last = { live, fresh };
      return live && fresh && live.html === fresh.html && live.v === fresh.v;
    }, `${cid} on ${page.url()} to equal a fresh render`, timeout);
  } catch (e) {
    throw new Error(`${e.message.replace(/ \(last.*$/, '')}\n  page   (v${last?.live?.v}): ${last?.live?.html}` +
      `\n  server (v${last?.fresh?.v}): ${last?.fresh?.html}`);
  }
}

function instance(action, name, port) {
  const args = [path.join(HERE, 'instance.sh'), action, name];
  if (port) args.push(String(port));
  execFileSync('bash', args, { stdio: ['ignore', 'inherit', 'inherit'] });
}

module.exports = {
  A, B, ARTIFACTS, uid, launch, token, user, open, screenshot, until, untilEqual, root,
  connected, settled, freshRender, liveRender, matchesFreshRender, instance,
  PORT_A: Number(process.env.SPARK_E2E_PORT_A), PORT_B: Number(process.env.SPARK_E2E_PORT_B),
};
