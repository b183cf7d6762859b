// Waiting for the page to get somewhere, by polling what it shows: for
// the suites (lib/env.js) and for checks that run outside run.sh.
'use strict';

// Polls `fn` (async) until it returns a truthy value; fails with `what`
// and the last value after `timeout` ms.
async function until(fn, what, timeout = 5000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}` +
        (last !== undefined ? ` (last: ${JSON.stringify(last)})` : ''));
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

// Polls until `fn` returns `expected` (deep equality through JSON).
async function untilEqual(fn, expected, what, timeout = 5000) {
  const want = JSON.stringify(expected);
  let last;
  try {
    await until(async () => {
      last = await fn();
      return JSON.stringify(last) === want;
    }, what, timeout);
  } catch (e) {
    throw new Error(`${e.message.replace(/ \(last.*$/, '')}\n  expected: ${want}\n  actual:   ${JSON.stringify(last)}`);
  }
}

module.exports = { until, untilEqual };
