// The patch applier of spark.js, in Chromium, on the diff vectors of the
// unit suite (test_diff writes them: old HTML, ops, new HTML): applying the
// ops to a div holding `old` must give exactly `new` as its innerHTML.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const env = require('./lib/env');

let browser, page;

before(async () => {
  browser = await env.launch();
  const ctx = await browser.newContext();
  page = await ctx.newPage();
  // A blank page of instance a's origin that loads the served client.
  await page.route(`${env.A}/e2e/blank`, (route) => route.fulfill({
    contentType: 'text/html; charset=utf-8',
    body: '<!doctype html><meta charset="utf-8"><title>blank</title>' +
      '<script src="/js/spark.js" data-spark-manual></script>',
  }));
  await page.goto(`${env.A}/e2e/blank`);
  await page.waitForFunction(() => window.SparkPatch && window.Spark);
});

after(async () => { await browser?.close(); });

test('sparkd serves /js/spark.js as the file in web/js', async () => {
  const res = await page.request.get(`${env.A}/js/spark.js`);
  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-type'], /javascript/);
  const disk = fs.readFileSync(path.join(__dirname, '../../web/js/spark.js'), 'utf8');
  assert.equal(await res.text(), disk);
});

test('every diff vector applied in the browser gives the new HTML exactly', async () => {
  const file = process.env.SPARK_E2E_DIFF_VECTORS;
  assert.ok(file, 'SPARK_E2E_DIFF_VECTORS names the vectors (run.sh writes them)');
  const { container, vectors } = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.ok(vectors.length >= 100, `only ${vectors.length} vectors`);
  const failures = await page.evaluate(({ container, vectors }) => {
    const bad = [];
    vectors.forEach((v, i) => {
      const el = document.createElement(container);
      document.body.appendChild(el); // in the document, as a component root is
      el.innerHTML = v.old;
      try {
        window.Spark.applyPatch(el, v.ops);
        if (el.innerHTML !== v.new) bad.push({ i, got: el.innerHTML, want: v.new });
      } catch (e) {
        bad.push({ i, error: String(e.message) });
      }
      el.remove();
    });
    return bad;
  }, { container, vectors });
  assert.deepEqual(failures.slice(0, 3), [], `${failures.length} of ${vectors.length} vectors differ`);
});

test('the applier refuses ops that do not fit the DOM', async () => {
  const errors = await page.evaluate(() => {
    const cases = [
      ['<p>a</p>', [['t', [0], 'x']]],            // t on an element
      ['<p>a</p>', [['s', [0, 0], 'id', 'x']]],   // s on text
      ['<p>a</p>', [['r', [3]]]],                 // out of range
      ['<p>a</p>', [['i', [0, 5], '<b></b>']]],   // insert past the end
      ['<p>a</p>', [['m', [0], 0, 1]]],           // move past the end
      ['<p>a</p>', [['z', [0]]]],                 // unknown op
      ['<p>a</p>', [['r', []]]],                  // no child index
    ];
    return cases.map(([html, ops]) => {
      const el = document.createElement('div');
      el.innerHTML = html;
      try { window.Spark.applyPatch(el, ops); return null; } catch (e) { return e.message; }
    });
  });
  errors.forEach((e, i) => assert.match(String(e), /^spark patch:/, `case ${i} did not throw`));
});

test('inserted HTML runs no script and table rows parse as rows', async () => {
  const out = await page.evaluate(() => {
    window.__ran = 0;
    const el = document.createElement('div');
    document.body.appendChild(el);
    el.innerHTML = '<table><tbody></tbody></table><ul></ul>';
    window.Spark.applyPatch(el, [
      ['i', [0, 0, 0], '<tr><td>1</td></tr>'],
      ['i', [1, 0], '<li><script>window.__ran = 1<\/script></li>'],
      ['h', [1, 0], '<img src="data:," onerror="window.__ran = 2">x'],
    ]);
    const html = el.innerHTML;
    el.remove();
    return { html, ran: window.__ran };
  });
  assert.equal(out.html, '<table><tbody><tr><td>1</td></tr></tbody></table>' +
    '<ul><li><img src="data:," onerror="window.__ran = 2">x</li></ul>');
  // The img is trusted server markup here; what matters is that the script
  // element did not run.
  assert.notEqual(out.ran, 1);
});
