// The collaborative todo list (/todo/:list) in two browsers, one per
// instance: changes reach the other page within a second, filters are each
// page's own, typing survives patches, random edits leave every page equal
// to a fresh server render, and HTML in a todo is text.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const env = require('./lib/env');
const todo = require('./lib/todo');

let browser, alice, bob;
before(async () => {
  browser = await env.launch();
  alice = await env.user(browser, 'Alice');
  bob = await env.user(browser, 'Bob');
});
after(async () => { await browser?.close(); });

// Runs `action` on one page and measures until `check` holds on the other.
async function within(ms, what, action, check) {
  await action();
  const t0 = Date.now();
  await env.until(check, what, 5000);
  const took = Date.now() - t0;
  assert.ok(took <= ms, `${what} took ${took} ms, more than ${ms}`);
}

async function pair(list) {
  const pa = await todo.open(alice, env.A, list);
  const pb = await todo.open(bob, env.B, list);
  return [pa, pb];
}

test('two users on two instances: add, toggle, delete, clear completed, each seen by the other within a second', async () => {
  const list = env.uid('list');
  const [pa, pb] = await pair(list);
  const same = (p, want) => async () => JSON.stringify(await todo.texts(p, list)) === JSON.stringify(want);

  await within(1000, 'the items added on a to show on b', async () => {
    await todo.add(pa, list, 'milk');
    await todo.add(pa, list, 'eggs');
  }, same(pb, ['milk', 'eggs']));
  await within(1000, 'the item added on b to show on a',
    () => todo.add(pb, list, 'bread'), same(pa, ['milk', 'eggs', 'bread']));
  assert.equal(await todo.itemsLeft(pa, list), 3);

  await within(1000, 'a toggle on a to show on b',
    () => todo.toggle(pa, list, 'eggs'), () => todo.isDone(pb, list, 'eggs'));
  await env.until(async () => (await todo.itemsLeft(pb, list)) === 2, '"2 items left" on b', 1000);
  await todo.root(pb, list).getByRole('button', { name: 'Clear completed' }).waitFor({ timeout: 1000 });

  await within(1000, 'a delete on b to show on a',
    () => todo.remove(pb, list, 'milk'), same(pa, ['eggs', 'bread']));

  await env.screenshot(pa, 'todo-a');
  await env.screenshot(pb, 'todo-b');
  await within(1000, 'clear completed on a to show on b',
    () => todo.clearCompleted(pa, list), same(pb, ['bread']));
  assert.equal(await todo.root(pb, list).getByRole('button', { name: 'Clear completed' }).count(), 0);
  assert.equal(await todo.itemsLeft(pb, list), 1);
  assert.deepEqual([...alice.problems, ...bob.problems], []);
  await pa.close();
  await pb.close();
});

test('each page has its own filter', async () => {
  const list = env.uid('list');
  const [pa, pb] = await pair(list);
  await todo.add(pa, list, 'one');
  await todo.add(pa, list, 'two');
  await todo.filter(pa, list, 'Active');
  await todo.toggle(pb, list, 'one');
  await env.untilEqual(() => todo.texts(pa, list), ['two'], 'a (Active) hiding the done item', 1000);
  await env.untilEqual(() => todo.texts(pb, list), ['one', 'two'], 'b (All) showing both');
  await todo.filter(pb, list, 'Completed');
  await env.untilEqual(() => todo.texts(pb, list), ['one'], 'b (Completed)');
  await todo.add(pa, list, 'three');
  await env.untilEqual(() => todo.texts(pa, list), ['two', 'three'], 'a (Active) after an add', 1000);
  await env.untilEqual(() => todo.texts(pb, list), ['one'], 'b (Completed) after an add');
  await pa.close();
  await pb.close();
});

test('typing in the new-todo field survives items added by the other page', async () => {
  const list = env.uid('list');
  const [pa, pb] = await pair(list);
  const field = todo.input(pa, list);
  await field.click();
  await field.pressSequentially('hello world', { delay: 15 });
  await field.evaluate((el) => el.setSelectionRange(2, 5));
  for (const t of ['first', 'second', 'third']) {
    await todo.add(pb, list, t);
    await env.untilEqual(() => todo.texts(pa, list).then((x) => x.includes(t)), true, `"${t}" on a`);
  }
  const state = await field.evaluate((el) => ({
    focused: document.activeElement === el, value: el.value, start: el.selectionStart, end: el.selectionEnd,
  }));
  assert.deepEqual(state, { focused: true, value: 'hello world', start: 2, end: 5 });
  // And typing goes on where the caret is.
  await pa.keyboard.type('X');
  assert.equal(await field.inputValue(), 'heX world');
  await pa.close();
  await pb.close();
});

test('after random edits on both pages, each page equals a fresh server render', async () => {
  const list = env.uid('list');
  const [pa, pb] = await pair(list);
  let seed = 12345;
  const rand = (n) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const words = ['milk', 'eggs', 'a & b', '<i>x</i>', 'tea "green"', 'bread', 'ümlaut', '  spaced  '];
  const log = [];
  try {
    await randomEdits();
  } catch (e) {
    for (const [name, page] of [['a', pa], ['b', pb]]) {
      await env.screenshot(page, `todo-random-failed-${name}`).catch(() => {});
      e.message += `\n  page ${name}: ${JSON.stringify(await env.liveRender(page, todo.cid(list)).catch(() => null))}`;
    }
    e.message += `\n  steps: ${log.join('; ')}`;
    throw e;
  }
  async function randomEdits() {
    for (let i = 0; i < 40; i++) {
      const page = rand(2) ? pa : pb;
      log.push(page === pa ? 'on a:' : 'on b:');
      const shown = await todo.texts(page, list);
      const r = rand(10);
      if (r < 4 || shown.length === 0) {
        const text = `${words[rand(words.length)]} [${i}]`;
        log.push(`add ${text}`);
        await todo.add(page, list, text);
      } else if (r < 7) {
        const t = shown[rand(shown.length)];
        log.push(`toggle ${t}`);
        await todo.toggle(page, list, t);
      } else if (r < 9) {
        const t = shown[rand(shown.length)];
        log.push(`delete ${t}`);
        await todo.remove(page, list, t);
      } else if (await todo.root(page, list).getByRole('button', { name: 'Clear completed' }).count()) {
        log.push('clear completed');
        await todo.clearCompleted(page, list);
      }
      // The other page must show the same list before the next step picks
      // an item from it.
      await env.until(async () => JSON.stringify(await todo.texts(pa, list)) ===
        JSON.stringify(await todo.texts(pb, list)), `both pages in step after: ${log.slice(-3).join('; ')}`);
    }
  }
  for (const page of [pa, pb]) {
    try {
      await env.matchesFreshRender(page, todo.cid(list));
    } catch (e) {
      e.message += `\n  after: ${log.join('; ')}`;
      throw e;
    }
  }
  await pa.close();
  await pb.close();
});

test('a todo with HTML in it shows as text and runs nothing', async () => {
  const list = env.uid('list');
  const [pa, pb] = await pair(list);
  const text = '<img src="x" onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b> & "q"';
  await todo.add(pa, list, text);
  await env.untilEqual(() => todo.texts(pb, list), [text], 'the text on b', 1000);
  // A page loaded afterwards renders it on the server.
  const pc = await todo.open(bob, env.A, list);
  for (const page of [pa, pb, pc]) {
    assert.deepEqual(await todo.texts(page, list), [text]);
    assert.equal(await todo.root(page, list).locator('img, script, b').count(), 0);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
  }
  await pa.close();
  await pb.close();
  await pc.close();
});
