// The lunch poll of docs/tutorial.md in Chromium, run by
// tests/tutorial_test.sh while the tutorial's two instances serve (ports
// 4000 and 4001).
//
//   node tutorial.check.js vote     two people sign in through the
//                                   tutorial's own form, one on each
//                                   instance; each vote shows on the other
//   node tutorial.check.js revert   a page open on each instance, connected
//                                   (then $SPARK_TUTORIAL_READY is created),
//                                   until both show the poll as it was at
//                                   version 1, as the tutorial's
//                                   spark.revert makes it
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { untilEqual } = require('./lib/until');

const ONE = 'http://localhost:4000';
const TWO = 'http://localhost:4001';
const CID = 'poll:friday';

// Signs in as `name` through the tutorial's /login, starting from the poll.
async function signIn(browser, base, name) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(`${base}/poll/friday`);
  assert.match(page.url(), /\/login\?next=%2Fpoll%2Ffriday$|\/login\?next=\/poll\/friday$/);
  await page.fill('input[name="name"]', name);
  await Promise.all([page.waitForURL(`${base}/poll/friday`), page.click('button')]);
  await page.waitForSelector(`[spark-component="${CID}"].spark-connected`);
  page.problems = problems;
  return page;
}

// What the poll shows: {Pizza: n, ...} and the "Name: Dish" lines.
async function shown(page) {
  return page.evaluate((cid) => {
    const root = document.querySelector(`[spark-component="${cid}"]`);
    const counts = {};
    for (const li of root.querySelectorAll('ul.poll li')) {
      const m = /^(\w+) (\d+)$/.exec(li.textContent.trim());
      if (m) counts[m[1]] = Number(m[2]);
    }
    return { counts, votes: [...root.querySelectorAll('p.vote')].map((p) => p.textContent) };
  }, CID);
}

async function showsVotes(page, counts, votes, what, timeout = 5000) {
  await untilEqual(() => shown(page), { counts, votes }, what, timeout);
}

async function vote(browser) {
  const alice = await signIn(browser, ONE, 'Alice');
  const bob = await signIn(browser, TWO, 'Bob');
  await showsVotes(alice, { Pizza: 0, Sushi: 0, Salad: 0 }, [], 'an empty poll');

  await alice.click('button:has-text("Pizza")');
  await showsVotes(bob, { Pizza: 1, Sushi: 0, Salad: 0 }, ['Alice: Pizza'], "Alice's vote on two");
  await bob.click('button:has-text("Sushi")');
  await showsVotes(alice, { Pizza: 1, Sushi: 1, Salad: 0 }, ['Alice: Pizza', 'Bob: Sushi'], "Bob's vote on one");
  // Voting again changes one's vote.
  await alice.click('button:has-text("Sushi")');
  await showsVotes(bob, { Pizza: 0, Sushi: 2, Salad: 0 }, ['Alice: Sushi', 'Bob: Sushi'], "Alice's new vote on two");
  await screenshot(bob, 'tutorial-poll');
  assert.deepEqual([...alice.problems, ...bob.problems], []);
  console.log('tutorial.check: two people voted on two instances, each vote shown on the other');
}

async function revert(browser) {
  const carol = await signIn(browser, ONE, 'Carol');
  const dave = await signIn(browser, TWO, 'Dave');
  for (const page of [carol, dave]) {
    await showsVotes(page, { Pizza: 0, Sushi: 2, Salad: 0 }, ['Alice: Sushi', 'Bob: Sushi'], 'the poll before the revert');
  }
  fs.writeFileSync(process.env.SPARK_TUTORIAL_READY, '');
  for (const page of [carol, dave]) {
    await showsVotes(page, { Pizza: 1, Sushi: 0, Salad: 0 }, ['Alice: Pizza'], 'the reverted poll', 15000);
  }
  await screenshot(dave, 'tutorial-poll-reverted');
  assert.deepEqual([...carol.problems, ...dave.problems], []);
  console.log('tutorial.check: the revert from psql showed on both instances');
}

async function screenshot(page, name) {
  const dir = process.env.SPARK_E2E_ARTIFACTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

(async () => {
  const mode = process.argv[2];
  const run = { vote, revert }[mode];
  if (!run) throw new Error(`unknown mode ${mode}: vote or revert`);
  const browser = await chromium.launch({
    executablePath: process.env.SPARK_E2E_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  try {
    await run(browser);
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(`tutorial.check: ${e.stack || e}`);
  process.exit(1);
});
