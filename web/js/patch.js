/*
 * patch.js - applies the ops of a /spark `patch` message to the DOM.
 *
 * The semantics are those of docs/patch.md, which the server's reference
 * applier (service/diff.c) implements too: ops apply in order, and every
 * path is read against the DOM as the earlier ops left it. Inserted HTML is
 * parsed in a <template>, so that table rows and options parse as they do in
 * the server's serialization, and scripts in it do not run.
 *
 * Usable as a plain script (window.SparkPatch.applyPatch) or bundled; it has
 * no dependencies. A thrown Error means the DOM is not what the server
 * thinks it is: the caller should ask for a full render.
 */
(function (global) {
  "use strict";

  function fail(op, why) {
    throw new Error("spark patch: " + why + " in " + JSON.stringify(op).slice(0, 200));
  }

  function parse(html) {
    var t = document.createElement("template");
    t.innerHTML = html;
    return t.content;
  }

  function isIndex(v) {
    return typeof v === "number" && v >= 0 && Math.floor(v) === v;
  }

  /* The node at `path` (its first `n` indices) below the component root. */
  function resolve(root, path, n, op) {
    var node = root;
    for (var i = 0; i < n; i++) {
      var k = path[i];
      if (!isIndex(k) || k >= node.childNodes.length) fail(op, "no node at path");
      node = node.childNodes[k];
    }
    return node;
  }

  function isParent(node) {
    return node.nodeType === 1 || node.nodeType === 11;
  }

  function applyOp(root, op) {
    if (!Array.isArray(op) || typeof op[0] !== "string" || !Array.isArray(op[1]))
      fail(op, "malformed op");
    var code = op[0], path = op[1], node, parent, at;

    if (code === "i" || code === "r" || code === "p") {
      if (path.length === 0) fail(op, "no child index");
      parent = resolve(root, path, path.length - 1, op);
      at = path[path.length - 1];
      if (!isParent(parent) || !isIndex(at)) fail(op, "no such parent");
      var kids = parent.childNodes;
      if (code === "i") {
        if (typeof op[2] !== "string" || at > kids.length) fail(op, "bad index or html");
        parent.insertBefore(parse(op[2]), kids[at] || null);
      } else if (code === "r") {
        var count = op.length > 2 ? op[2] : 1;
        if (!isIndex(count) || count < 1 || at + count > kids.length) fail(op, "bad range");
        for (var k = 0; k < count; k++) parent.removeChild(kids[at]);
      } else {
        if (typeof op[2] !== "string" || at >= kids.length) fail(op, "bad index or html");
        parent.replaceChild(parse(op[2]), kids[at]);
      }
      return;
    }

    node = resolve(root, path, path.length, op);
    switch (code) {
      case "t":
        if (node.nodeType !== 3 || typeof op[2] !== "string") fail(op, "not a text node");
        node.data = op[2];
        return;
      case "s":
        if (node.nodeType !== 1 || typeof op[2] !== "string" || typeof op[3] !== "string")
          fail(op, "bad target");
        node.setAttribute(op[2], op[3]);
        return;
      case "u":
        if (node.nodeType !== 1 || typeof op[2] !== "string") fail(op, "bad target");
        node.removeAttribute(op[2]);
        return;
      case "m":
        var n = node.childNodes.length, from = op[2], to = op[3];
        if (!isParent(node) || !isIndex(from) || !isIndex(to) || from >= n || to >= n)
          fail(op, "bad index");
        var moved = node.childNodes[from];
        node.removeChild(moved);
        node.insertBefore(moved, node.childNodes[to] || null);
        return;
      case "h":
        if (!isParent(node) || typeof op[2] !== "string") fail(op, "bad target");
        while (node.firstChild) node.removeChild(node.firstChild);
        node.appendChild(parse(op[2]));
        return;
      default:
        fail(op, "unknown op");
    }
  }

  /* Applies `ops` (the array of a patch message) to the children of `root`,
   * the element the component was rendered into. */
  function applyPatch(root, ops) {
    if (!Array.isArray(ops)) throw new Error("spark patch: ops are not an array");
    for (var i = 0; i < ops.length; i++) applyOp(root, ops[i]);
  }

  var api = { applyPatch: applyPatch };
  if (typeof module === "object" && module.exports) module.exports = api;
  if (global) global.SparkPatch = api;
})(typeof window !== "undefined" ? window : typeof globalThis !== "undefined" ? globalThis : this);
