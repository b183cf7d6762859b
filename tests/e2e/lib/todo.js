// The todo page as the tests see it (README: /todo/:list shows the
// component todo:<list>, "N items left", and "Clear completed" when
// something is done). What the tests assume of its markup is all here:
//   - the new-todo field has the placeholder "What needs to be done?" and
//     adds on Enter (a spark-submit form or a spark-keydown Enter);
//   - each item is an <li> with a checkbox that toggles it (spark-click or
//     spark-change) and one <button> that deletes it, and shows its text;
//   - the filters are links or buttons named All, Active and Completed (any case).
'use strict';

const env = require('./env');

const cid = (list) => `todo:${list}`;

async function open(ctx, base, list) {
  const page = await env.open(ctx, `${base}/todo/${list}`);
  await env.connected(page, cid(list));
  return page;
}

function root(page, list) {
  return env.root(page, cid(list));
}

function input(page, list) {
  return root(page, list).getByPlaceholder('What needs to be done?');
}

function items(page, list) {
  return root(page, list).locator('li:has(input[type="checkbox"])');
}

function item(page, list, text) {
  return items(page, list).filter({ hasText: text });
}

// The texts of the items shown, in order (an item's text without its
// buttons').
async function texts(page, list) {
  return items(page, list).evaluateAll((lis) => lis.map((li) => {
    const copy = li.cloneNode(true);
    copy.querySelectorAll('button').forEach((b) => b.remove());
    return copy.textContent.replace(/\s+/g, ' ').trim();
  }));
}

async function add(page, list, text) {
  const field = input(page, list);
  await field.fill(text);
  await field.press('Enter');
  await env.settled(page);
}

async function toggle(page, list, text) {
  await item(page, list, text).locator('input[type="checkbox"]').click();
  await env.settled(page);
}

async function remove(page, list, text) {
  await item(page, list, text).locator('button').first().click();
  await env.settled(page);
}

async function clearCompleted(page, list) {
  await root(page, list).getByRole('button', { name: 'Clear completed' }).click();
  await env.settled(page);
}

async function filter(page, list, name) {
  await root(page, list).locator('a, button').filter({ hasText: new RegExp(`^\\s*${name}\\s*$`, 'i') }).first().click();
  await env.settled(page);
}

async function itemsLeft(page, list) {
  const text = await root(page, list).innerText();
  const m = /(\d+) items? left/.exec(text);
  return m ? Number(m[1]) : null;
}

async function isDone(page, list, text) {
  return item(page, list, text).locator('input[type="checkbox"]').isChecked();
}

module.exports = { cid, open, root, input, items, item, texts, add, toggle, remove, clearCompleted,
  filter, itemsLeft, isDone };
