/*
 * spark.js - the browser client of Spark's live components and channels.
 *
 * One dependency-free file, served at /js/spark.js and, as the same file,
 * at /js/azu-spark.js: loaded by that name it speaks Azu's frames
 * (component_event, component_update, ...; docs/protocol.md) and offers
 * Azu's calls (Spark.connect(url), sendEvent, updateComponent). Load it at
 * the end of the page (or with `defer`); it connects by itself when the
 * page has component roots:
 *
 *     <div spark-component="todo:groceries" spark-version="12">...</div>
 *     <script src="/js/spark.js" defer></script>
 *
 * What it does:
 *   - opens one WebSocket to /spark (ws: or wss: after the page) and joins
 *     every component root at the version it was rendered at (docs/protocol.md);
 *   - binds events by delegation on the document: spark-click, spark-change,
 *     spark-input, spark-submit, spark-keydown / spark-keyup (with a
 *     spark-key filter such as "Enter"), and Azu's live-click, live-change,
 *     live-input as aliases; payloads come from spark-value-* and data-*
 *     attributes and form fields; spark-debounce / spark-throttle (ms) limit the rate;
 *   - applies `patch` ops exactly and in order (docs/patch.md), `render` as a
 *     whole, shows `flash` messages (dismissible) and follows `redirect`;
 *   - never disturbs the element being edited: the focused field keeps its
 *     value, caret and selection when a patch or render arrives;
 *   - puts the class spark-loading on an element while its event is in
 *     flight, and honours spark-disable-with on buttons;
 *   - reconnects with exponential backoff and jitter, re-joins at the
 *     versions it holds, and marks every root with spark-connecting,
 *     spark-connected, spark-reconnecting or spark-error;
 *   - runs per-element hooks (spark-hook="Name": mounted, updated,
 *     destroyed) and dispatches `spark:*` events on window.
 *
 * The API is window.Spark (see the bottom of this file). The patch applier
 * is also exported as window.SparkPatch.applyPatch (and module.exports under
 * Node) for tests and other bundles.
 */
(function (global) {
  "use strict";

  /* ====================================================================
   * Patch ops (docs/patch.md). This is the one browser implementation of
   * the op semantics; tests/support/patch_apply.c holds the same applier in C.
   *
   * Ops apply in array order; every path is read against the DOM as the ops
   * before it left it. Inserted HTML is parsed as the content of a
   * <template>, so table rows and options parse as they do in the page and
   * scripts in it do not run. A thrown Error means the DOM is not what the
   * server believes: the caller should ask for a full render.
   * ==================================================================== */

  function patchFail(op, why) {
    throw new Error("spark patch: " + why + " in " + JSON.stringify(op).slice(0, 200));
  }

  function parseHTML(html) {
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
      if (!isIndex(k) || k >= node.childNodes.length) patchFail(op, "no node at path");
      node = node.childNodes[k];
    }
    return node;
  }

  function isParent(node) {
    return node.nodeType === 1 || node.nodeType === 11;
  }

  /* `watch` (optional) hears about what an op touched, for the runtime's
   * bookkeeping (hooks, form properties); it never changes the outcome:
   *   watch.attr(element, name)      after s/u
   *   watch.text(textNode)           after t
   *   watch.added(node)              for each inserted top-level node
   *   watch.removed(node)            for each removed top-level node
   *   watch.changed(parentNode)      after i/r/p/m/h, the parent touched */
  function applyOp(root, op, watch) {
    if (!Array.isArray(op) || typeof op[0] !== "string" || !Array.isArray(op[1]))
      patchFail(op, "malformed op");
    var code = op[0], path = op[1], node, parent, at, frag, k;

    if (code === "i" || code === "r" || code === "p") {
      if (path.length === 0) patchFail(op, "no child index");
      parent = resolve(root, path, path.length - 1, op);
      at = path[path.length - 1];
      if (!isParent(parent) || !isIndex(at)) patchFail(op, "no such parent");
      var kids = parent.childNodes;
      if (code === "i") {
        if (typeof op[2] !== "string" || at > kids.length) patchFail(op, "bad index or html");
        frag = parseHTML(op[2]);
        if (watch) for (k = 0; k < frag.childNodes.length; k++) watch.added(frag.childNodes[k]);
        parent.insertBefore(frag, kids[at] || null);
      } else if (code === "r") {
        var count = op.length > 2 ? op[2] : 1;
        if (!isIndex(count) || count < 1 || at + count > kids.length) patchFail(op, "bad range");
        for (k = 0; k < count; k++) {
          var gone = kids[at];
          parent.removeChild(gone);
          if (watch) watch.removed(gone);
        }
      } else {
        if (typeof op[2] !== "string" || at >= kids.length) patchFail(op, "bad index or html");
        frag = parseHTML(op[2]);
        var old = kids[at];
        if (watch) for (k = 0; k < frag.childNodes.length; k++) watch.added(frag.childNodes[k]);
        parent.replaceChild(frag, old);
        if (watch) watch.removed(old);
      }
      if (watch) watch.changed(parent);
      return;
    }

    node = resolve(root, path, path.length, op);
    switch (code) {
      case "t":
        if (node.nodeType !== 3 || typeof op[2] !== "string") patchFail(op, "not a text node");
        node.data = op[2];
        if (watch) watch.text(node);
        return;
      case "s":
        if (node.nodeType !== 1 || typeof op[2] !== "string" || typeof op[3] !== "string")
          patchFail(op, "bad target");
        node.setAttribute(op[2], op[3]);
        if (watch) watch.attr(node, op[2]);
        return;
      case "u":
        if (node.nodeType !== 1 || typeof op[2] !== "string") patchFail(op, "bad target");
        node.removeAttribute(op[2]);
        if (watch) watch.attr(node, op[2]);
        return;
      case "m":
        var n = node.childNodes.length, from = op[2], to = op[3];
        if (!isParent(node) || !isIndex(from) || !isIndex(to) || from >= n || to >= n)
          patchFail(op, "bad index");
        var moved = node.childNodes[from];
        node.removeChild(moved);
        node.insertBefore(moved, node.childNodes[to] || null);
        if (watch) watch.changed(node);
        return;
      case "h":
        if (!isParent(node) || typeof op[2] !== "string") patchFail(op, "bad target");
        if (watch) for (k = 0; k < node.childNodes.length; k++) watch.removed(node.childNodes[k]);
        while (node.firstChild) node.removeChild(node.firstChild);
        frag = parseHTML(op[2]);
        if (watch) for (k = 0; k < frag.childNodes.length; k++) watch.added(frag.childNodes[k]);
        node.appendChild(frag);
        if (watch) watch.changed(node);
        return;
      default:
        patchFail(op, "unknown op");
    }
  }

  /* Applies `ops` (the array of a patch message) to the children of `root`,
   * the element the component was rendered into. */
  function applyPatch(root, ops, watch) {
    if (!Array.isArray(ops)) throw new Error("spark patch: ops are not an array");
    for (var i = 0; i < ops.length; i++) applyOp(root, ops[i], watch);
  }

  var SparkPatch = { applyPatch: function (root, ops) { applyPatch(root, ops, null); } };

  if (typeof module === "object" && module.exports) module.exports = { applyPatch: SparkPatch.applyPatch };
  if (global) global.SparkPatch = SparkPatch;
  if (typeof document === "undefined" || !global || !global.WebSocket) return;

  /* ====================================================================
   * Small helpers
   * ==================================================================== */

  var ROOT_ATTR = "spark-component";
  var STATE_CLASSES = ["spark-connecting", "spark-connected", "spark-reconnecting", "spark-error",
                       "spark-disconnected"];
  var LOADING = "spark-loading";

  function emit(name, detail) {
    try {
      global.dispatchEvent(new CustomEvent("spark:" + name, { detail: detail }));
    } catch (e) { reportError(e); }
  }

  function reportError(e) {
    if (global.console && console.error) console.error(e);
  }

  function jitterDelay(attempt, min, max) {
    /* Exponential backoff with "equal jitter": half fixed, half random, so
     * that pages which lost the same instance do not come back in step. */
    var d = Math.min(max, min * Math.pow(2, attempt));
    return d / 2 + Math.random() * d / 2;
  }

  function isTextField(el) {
    if (!el || el.nodeType !== 1) return false;
    if (el.tagName === "TEXTAREA") return true;
    if (el.tagName !== "INPUT") return false;
    var t = (el.getAttribute("type") || "text").toLowerCase();
    return ["text", "search", "email", "url", "tel", "password", "number", "date", "time",
            "datetime-local", "month", "week", "color", "range"].indexOf(t) >= 0;
  }

  function hasSelection(el) {
    try { return typeof el.selectionStart === "number"; } catch (e) { return false; }
  }

  function rootOf(el) {
    return el && el.closest ? el.closest("[" + ROOT_ATTR + "]") : null;
  }

  /* The first of `names` that `el` carries, and its value. */
  function attrOf(el, names) {
    for (var i = 0; i < names.length; i++)
      if (el.hasAttribute(names[i])) return el.getAttribute(names[i]);
    return null;
  }

  function closestWith(el, names) {
    var sel = names.map(function (n) { return "[" + n + "]"; }).join(",");
    return el && el.closest ? el.closest(sel) : null;
  }

  /* The element's spark-value-* and data-* attributes added to `into`
   * ("spark-value-item-id" and "data-item-id" are "item-id"). A data-*
   * only fills in: it never replaces a form field or a spark-value-* of
   * the same name. They only ever become the event's data: never its
   * name, its component or anything else of the frame. */
  function valuesOf(el, into) {
    into = into || {};
    var has = Object.prototype.hasOwnProperty;
    var prefixes = ["spark-value-", "live-value-", "data-"];
    for (var p = 0; p < prefixes.length; p++) {
      for (var i = 0; i < el.attributes.length; i++) {
        var a = el.attributes[i];
        if (a.name.indexOf(prefixes[p]) !== 0) continue;
        var key = a.name.slice(prefixes[p].length);
        if (!key || key === "__proto__" || (p === 2 && has.call(into, key))) continue;
        into[key] = a.value;
      }
    }
    return into;
  }

  /* A form's fields as an object: repeated names (and names ending in [])
   * become arrays; unchecked boxes are absent, as in a browser's submit. */
  function formValues(form, submitter) {
    var out = {}, fd;
    try { fd = submitter ? new FormData(form, submitter) : new FormData(form); }
    catch (e) { fd = new FormData(form); }
    fd.forEach(function (value, name) {
      if (typeof value !== "string") value = value && value.name ? value.name : "";
      var list = /\[\]$/.test(name);
      if (list) name = name.slice(0, -2);
      if (Object.prototype.hasOwnProperty.call(out, name)) {
        if (!Array.isArray(out[name])) out[name] = [out[name]];
        out[name].push(value);
      } else {
        out[name] = list ? [value] : value;
      }
    });
    return out;
  }

  /* The value a single field contributes. */
  function fieldValue(el) {
    if (el.tagName === "INPUT") {
      var t = (el.type || "").toLowerCase();
      if (t === "checkbox" || t === "radio") return el.checked ? (el.getAttribute("value") || "on") : "";
    }
    if (el.tagName === "SELECT" && el.multiple) {
      return Array.prototype.filter.call(el.options, function (o) { return o.selected; })
        .map(function (o) { return o.value; });
    }
    return "value" in el ? el.value : el.getAttribute("value");
  }

  /* Adds `cls` to `el`, remembering whether the class attribute was ours. */
  function addClass(el, cls) {
    if (el.classList.contains(cls)) return;
    if (!el.hasAttribute("class")) el.__sparkOwnClass = true;
    el.classList.add(cls);
  }

  /* Removes `cls`, and the class attribute when we created it and it is now
   * empty: the DOM must come back to exactly what the server rendered. */
  function removeClass(el, cls) {
    if (!el.classList.contains(cls)) return;
    el.classList.remove(cls);
    if (el.__sparkOwnClass && el.getAttribute("class") === "") el.removeAttribute("class");
    el.__sparkOwnClass = false;
  }

  function setRootState(el, state) {
    for (var i = 0; i < STATE_CLASSES.length; i++)
      if (STATE_CLASSES[i] !== "spark-" + state) el.classList.remove(STATE_CLASSES[i]);
    el.classList.add("spark-" + state);
  }

  /* ====================================================================
   * Focus: what the person is editing survives patches and renders
   * ==================================================================== */

  function pathFrom(root, node) {
    var path = [];
    while (node && node !== root) {
      var parent = node.parentNode;
      if (!parent) return null;
      path.unshift(Array.prototype.indexOf.call(parent.childNodes, node));
      node = parent;
    }
    return node === root ? path : null;
  }

  function nodeAt(root, path) {
    var node = root;
    for (var i = 0; node && i < path.length; i++) node = node.childNodes[path[i]];
    return node || null;
  }

  /* Records the focused element inside `root`, if any. */
  function saveFocus(root) {
    var el = document.activeElement;
    if (!el || el === root || !root.contains(el)) return null;
    var f = { el: el, id: el.id, tag: el.tagName, name: el.getAttribute("name"),
              path: pathFrom(root, el), value: null, start: null, end: null, dir: null };
    if (isTextField(el)) {
      f.value = el.value;
      if (hasSelection(el)) {
        f.start = el.selectionStart; f.end = el.selectionEnd; f.dir = el.selectionDirection;
      }
    }
    return f;
  }

  /* After a patch or render: the same element, or its stand-in, has the
   * focus, the person's text and the caret back. `serverOwned` elements
   * take the server's value instead (the field of a form just submitted). */
  function restoreFocus(root, f) {
    if (!f) return;
    var el = f.el;
    if (!el.isConnected || !root.contains(el)) {
      el = null;
      if (f.id) {
        var byId = document.getElementById(f.id);
        if (byId && root.contains(byId) && byId.tagName === f.tag) el = byId;
      }
      if (!el && f.path) {
        var at = nodeAt(root, f.path);
        if (at && at.nodeType === 1 && at.tagName === f.tag && at.getAttribute("name") === f.name) el = at;
      }
      if (!el) return;
    }
    var own = el.__sparkServerOwned && el.__sparkServerOwned > Date.now();
    if (f.value !== null && isTextField(el) && !own && el.value !== f.value) el.value = f.value;
    if (document.activeElement !== el) {
      try { el.focus({ preventScroll: true }); } catch (e) { el.focus(); }
    }
    if (f.start !== null && !own && hasSelection(el)) {
      try {
        if (el.selectionStart !== f.start || el.selectionEnd !== f.end)
          el.setSelectionRange(f.start, f.end, f.dir || "none");
      } catch (e) { /* number fields have no selection */ }
    }
  }

  /* After s/u of value/checked/selected on an element: attributes are
   * defaults, so show the server's state through the properties too, unless
   * the person is in that very field. */
  function syncProperty(el, name) {
    var owned = el.__sparkServerOwned && el.__sparkServerOwned > Date.now();
    if (el === document.activeElement && !owned) return;
    if (name === "value" && (el.tagName === "INPUT" || el.tagName === "TEXTAREA")) {
      var t = (el.type || "").toLowerCase();
      if (t !== "checkbox" && t !== "radio" && t !== "file") el.value = el.getAttribute("value") || "";
    } else if (name === "checked" && el.tagName === "INPUT") {
      el.checked = el.hasAttribute("checked");
    } else if (name === "selected" && el.tagName === "OPTION") {
      el.selected = el.hasAttribute("selected");
    }
  }

  /* After a submit (or an Enter key action) the server decides what the
   * form shows: for a moment, value changes from the server apply to these
   * fields even while focused, and with `now` they show their server
   * (attribute) values at once, which typically clears them. */
  function handOverToServer(scope, now) {
    var fields = scope.matches && scope.matches("input,textarea,select") ? [scope]
               : Array.prototype.slice.call(scope.querySelectorAll("input,textarea,select"));
    var until = Date.now() + 1000;
    fields.forEach(function (el) {
      el.__sparkServerOwned = until;
      if (!now) return;
      if (el.tagName === "TEXTAREA") {
        el.value = el.defaultValue;
      } else if (el.tagName === "INPUT") {
        var t = (el.type || "").toLowerCase();
        if (t === "checkbox" || t === "radio") el.checked = el.hasAttribute("checked");
        else if (t !== "file") el.value = el.getAttribute("value") || "";
      }
    });
  }

  /* ====================================================================
   * Hooks: spark-hook="Name" runs Spark.hooks.Name's mounted / updated /
   * destroyed with `this.el`, `this.cid` and `this.pushEvent(e, d)`.
   * ==================================================================== */

  var hooks = {};
  var liveHooks = new Map(); /* element -> hook instance */

  function hookCall(inst, fn) {
    if (typeof inst[fn] !== "function") return;
    try { inst[fn](); } catch (e) { reportError(e); }
  }

  function mountHooks(scope) {
    var els = [];
    if (scope.nodeType === 1 && scope.hasAttribute("spark-hook")) els.push(scope);
    if (scope.querySelectorAll) els.push.apply(els, scope.querySelectorAll("[spark-hook]"));
    els.forEach(function (el) {
      if (liveHooks.has(el)) return;
      var def = hooks[el.getAttribute("spark-hook")];
      if (!def) return;
      var inst = Object.create(def);
      var root = rootOf(el);
      inst.el = el;
      inst.cid = root ? root.getAttribute(ROOT_ATTR) : null;
      inst.pushEvent = function (e, d) { return inst.cid ? api.pushEvent(inst.cid, e, d) : Promise.reject(new Error("no component")); };
      liveHooks.set(el, inst);
      hookCall(inst, "mounted");
    });
  }

  /* After a patch of `root`: destroyed for hooked elements that left,
   * updated for those whose subtree was touched, mounted for new ones. */
  function refreshHooks(root, touched) {
    liveHooks.forEach(function (inst, el) {
      if (!el.isConnected) {
        liveHooks.delete(el);
        hookCall(inst, "destroyed");
      } else if (root.contains(el)) {
        for (var i = 0; i < touched.length; i++) {
          if (el === touched[i] || el.contains(touched[i])) { hookCall(inst, "updated"); break; }
        }
      }
    });
    mountHooks(root);
  }

  /* ====================================================================
   * The /spark connection
   * ==================================================================== */

  var opts = {
    url: null,          /* default: ws(s)://<this host>/spark */
    protocol: null,     /* "spark" or "azu" (Azu's frames); default: "azu" when loaded as azu-spark.js */
    token: null,        /* sent as ?token=; the session cookie works without it */
    params: null,       /* more query arguments */
    minBackoff: 250,    /* ms */
    maxBackoff: 10000,  /* ms */
    replyTimeout: 15000,
    flashTimeout: 0,    /* ms before a flash hides itself; 0: until dismissed */
    flashContainer: null
  };

  var ws = null;
  var state = "idle";       /* idle, connecting, open, closed */
  var wanted = false;       /* connect() called and not disconnect() */
  var everOpened = false;
  var attempt = 0;
  var retryTimer = null;
  var stableTimer = null;
  var nextRef = 1;
  var pending = new Map();  /* ref -> {resolve, reject, done, timer, kind} */
  /* Events not answered yet, by id. One whose connection dropped is sent
   * again, with the same id, once its component is joined again: the server
   * applies an id once, so a resend never applies an event twice. */
  var outbox = new Map();   /* id -> {cid, e, d, id, resolve, reject, inflight} */
  var comps = new Map();    /* cid -> {roots: [el], v: number|null, joined: bool, joinRef, failed} */

  function socketURL() {
    var url = opts.url;
    if (!url) url = (location.protocol === "https:" ? "wss:" : "ws:") + "//" + location.host + "/spark";
    else if (/^\//.test(url)) url = (location.protocol === "https:" ? "wss:" : "ws:") + "//" + location.host + url;
    /* Spark's frames are the server's default; Azu's are asked for. */
    var q = dialect() === "azu" ? ["protocol=azu"] : [];
    if (opts.token) q.push("token=" + encodeURIComponent(opts.token));
    if (opts.params) Object.keys(opts.params).forEach(function (k) {
      q.push(encodeURIComponent(k) + "=" + encodeURIComponent(opts.params[k]));
    });
    return q.length ? url + (url.indexOf("?") >= 0 ? "&" : "?") + q.join("&") : url;
  }

  function send(msg) {
    if (!ws || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  /* The frames this client speaks (docs/protocol.md): Spark's own, or
   * Azu's ({"type":"component_event",...}), as the page chose. */
  var loadedAs = document.currentScript && /\/azu-spark\.js(\?|#|$)/.test(document.currentScript.src || "") ? "azu" : "spark";

  function dialect() {
    return opts.protocol === "azu" || opts.protocol === "spark" ? opts.protocol : loadedAs;
  }

  /* A frame from its parts; the fields are set one by one, so nothing of
   * the data (an object of its own) can be taken for the frame's. */
  function frame(kind, ref, cid, extra) {
    var azu = dialect() === "azu";
    var f = {};
    f[azu ? "type" : "t"] = azu ? "component_" + kind : kind;
    if (ref !== null) f.ref = ref;
    f[azu ? "component_id" : "cid"] = cid;
    if (extra.v !== undefined && extra.v !== null) f[azu ? "version" : "v"] = extra.v;
    if (extra.e !== undefined) f[azu ? "event" : "e"] = extra.e;
    if (extra.id !== undefined) f.id = extra.id;
    if (extra.d !== undefined) f[azu ? "data" : "d"] = extra.d;
    return f;
  }

  function compFor(cid) {
    var c = comps.get(cid);
    if (!c) {
      c = { roots: [], v: null, joined: false, joinRef: 0, failed: false };
      comps.set(cid, c);
    }
    return c;
  }

  function setCompState(c, st) {
    c.roots.forEach(function (el) { setRootState(el, st); });
  }

  /* Finds the component roots of the page (a root inside another root is
   * part of that one's markup and is not joined on its own). */
  function scan() {
    var found = document.querySelectorAll("[" + ROOT_ATTR + "]");
    for (var i = 0; i < found.length; i++) {
      var el = found[i];
      if (el.parentElement && rootOf(el.parentElement)) continue;
      var cid = el.getAttribute(ROOT_ATTR);
      if (!cid) continue;
      var c = compFor(cid);
      if (c.roots.indexOf(el) >= 0) continue;
      c.roots.push(el);
      var v = parseInt(el.getAttribute("spark-version"), 10);
      if (c.v === null && !isNaN(v)) c.v = v;
      setRootState(el, state === "open" && c.joined ? "connected" : everOpened ? "reconnecting" : "connecting");
      mountHooks(el);
      if (state === "open" && !c.joined && c.joinRef === 0) join(cid, c);
    }
  }

  function newEventId() {
    var b = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
  }

  function sendEvent(entry) {
    var ref = nextRef++;
    entry.inflight = true;
    track(ref, "event", null).then(function (reply) {
      outbox.delete(entry.id);
      entry.resolve(reply);
    }, function (err) {
      entry.inflight = false;
      /* Lost with its connection: it waits for the component's next join. */
      if (ws === null && wanted && outbox.has(entry.id)) return;
      outbox.delete(entry.id);
      entry.reject(err);
    });
    send(frame("event", ref, entry.cid, { e: entry.e, id: entry.id, d: entry.d }));
  }

  function resendEvents(cid) {
    outbox.forEach(function (entry) { if (entry.cid === cid && !entry.inflight) sendEvent(entry); });
  }

  function dropEvents(why) {
    outbox.forEach(function (entry) { entry.reject(new Error(why)); });
    outbox.clear();
  }

  function join(cid, c, fresh) {
    var ref = nextRef++;
    c.joinRef = ref;
    c.failed = false;
    var msg = frame("join", ref, cid, { v: fresh ? null : c.v });
    track(ref, "join", null).then(function (reply) {
      if (c.joinRef !== ref) return;
      c.joinRef = 0;
      if (reply.ok) {
        c.joined = true;
        setCompState(c, "connected");
        emit("joined", { cid: cid, v: c.v });
        resendEvents(cid);
      } else {
        c.failed = true;
        setCompState(c, "error");
        emit("error", { cid: cid, error: reply.error || null, during: "join" });
      }
    }, function () { if (c.joinRef === ref) c.joinRef = 0; });
    send(msg);
  }

  /* Asks for a full render: the DOM no longer matches the server's. */
  function rejoinFresh(cid, c) {
    c.joined = false;
    send(frame("leave", null, cid, {}));
    join(cid, c, true);
  }

  function track(ref, kind, source) {
    return new Promise(function (resolve, reject) {
      var p = { resolve: resolve, reject: reject, kind: kind, source: source, timer: null };
      p.timer = setTimeout(function () {
        pending.delete(ref);
        reject(new Error("spark: no reply to " + kind + " " + ref));
      }, opts.replyTimeout);
      pending.set(ref, p);
    });
  }

  function failPending(why) {
    pending.forEach(function (p) {
      clearTimeout(p.timer);
      p.reject(new Error(why));
    });
    pending.clear();
  }

  function open() {
    if (ws) return;
    clearTimeout(retryTimer);
    retryTimer = null;
    state = "connecting";
    var sock;
    try { sock = new WebSocket(socketURL()); }
    catch (e) { reportError(e); scheduleRetry(); return; }
    ws = sock;
    sock.onopen = function () {
      if (ws !== sock) return;
      state = "open";
      everOpened = true;
      /* Reset the backoff only once the connection has lasted a while, so
       * an instance that accepts and drops at once is not hammered. */
      clearTimeout(stableTimer);
      stableTimer = setTimeout(function () { attempt = 0; }, 5000);
      emit("connected", {});
      comps.forEach(function (c, cid) { c.joined = false; c.joinRef = 0; join(cid, c); });
    };
    sock.onmessage = function (ev) {
      if (ws !== sock) return;
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { reportError(e); return; }
      try { handle(msg); } catch (e) { reportError(e); }
    };
    sock.onclose = function (ev) {
      if (ws !== sock) return;
      ws = null;
      state = "closed";
      clearTimeout(stableTimer);
      failPending("spark: connection lost");
      comps.forEach(function (c) {
        c.joined = false;
        c.joinRef = 0;
        if (!c.failed) setCompState(c, wanted ? "reconnecting" : "disconnected");
      });
      emit("disconnected", { code: ev.code, reason: ev.reason });
      if (ev.code === 4401 || ev.code === 4403) {
        /* The token is missing, bad or not allowed here: retrying with the
         * same one cannot help. A page may listen and call connect() again
         * with a fresh token. */
        wanted = false;
        dropEvents("spark: not authorized");
        comps.forEach(function (c) { setCompState(c, "error"); });
        emit("unauthorized", { code: ev.code, reason: ev.reason });
        return;
      }
      if (wanted) scheduleRetry();
    };
    sock.onerror = function () { /* onclose follows */ };
  }

  function scheduleRetry() {
    if (!wanted || retryTimer) return;
    var delay = jitterDelay(attempt++, opts.minBackoff, opts.maxBackoff);
    emit("reconnecting", { in: Math.round(delay), attempt: attempt });
    retryTimer = setTimeout(function () { retryTimer = null; if (wanted) open(); }, delay);
  }

  /* ---- messages from the server ---- */

  function settle(ref, reply) {
    var p = pending.get(ref);
    if (!p) return false;
    pending.delete(ref);
    clearTimeout(p.timer);
    p.resolve(reply);
    return true;
  }

  /* Azu's frames, on a connection that speaks them. Like Spark's, a frame
   * this list does not name is ignored. */
  function handleAzu(msg) {
    switch (msg.type) {
      case "reply":
        settle(msg.ref, { ok: true, v: msg.version });
        return;
      case "error": {
        var error = { code: String(msg.code || "error"), message: String(msg.message || "") };
        if (typeof msg.ref === "number" && settle(msg.ref, { ok: false, error: error })) return;
        emit("error", { cid: typeof msg.component_id === "string" ? msg.component_id : null, error: error });
        return;
      }
      case "component_update":
        return updateComponent(msg.component_id, msg.html, msg.version);
      case "component_flash":
        return showFlash(msg.level || "info", String(msg.message || ""), msg.component_id);
      case "component_redirect":
        return redirect(msg.url);
    }
  }

  function handle(msg) {
    /* An Azu connection gets Azu's frames; what is sent to the user and
     * the token's refresh keep Spark's shape ("t") on both. */
    if (dialect() === "azu" && msg.t !== "msg" && msg.t !== "refreshed" && msg.t !== "refresh_error")
      return msg.t === undefined ? handleAzu(msg) : undefined;
    switch (msg.t) {
      case "reply":
        settle(msg.ref, msg);
        return;
      case "patch": return onPatch(msg);
      case "render": return onRender(msg);
      case "flash": return showFlash(msg.level || "info", String(msg.message || ""), msg.cid);
      case "redirect": return redirect(msg.url);
      case "refreshed":
      case "refresh_error":
        emit(msg.t === "refreshed" ? "refreshed" : "error", msg);
        return;
      case "error":
        emit("error", msg);
        return;
      case "msg":
        /* What was sent to the user (spark_send_user, spark.notify_user):
         * the server nests the payload in "data", and it is only ever
         * passed on, never acted on. */
        if (typeof msg.room === "string") {
          emit("message", { room: msg.room, kind: msg.kind, seq: msg.seq, data: msg.data });
        }
        return;
      default:
        /* The runtime's own error frame (a rate limit) has no "t". Any
         * other frame is not one this client knows: ignored, so that no
         * payload can pose as something to do. */
        if (msg.t === undefined && msg.type === "error") emit("error", msg);
    }
  }

  function noteVersion(c, v) {
    if (typeof v !== "number") return;
    if (c.v === null || v > c.v) c.v = v;
    c.roots.forEach(function (el) { el.setAttribute("spark-version", String(c.v)); });
  }

  function onPatch(msg) {
    var c = comps.get(msg.cid);
    if (!c || !c.roots.length) return;
    for (var i = 0; i < c.roots.length; i++) {
      var root = c.roots[i];
      var focus = saveFocus(root);
      var touched = [];
      var watch = {
        attr: function (el, name) {
          touched.push(el);
          if (name === "value" || name === "checked" || name === "selected") syncProperty(el, name);
        },
        text: function (node) {
          var p = node.parentNode;
          touched.push(p);
          if (p && p.tagName === "TEXTAREA" && (p !== document.activeElement ||
              (p.__sparkServerOwned && p.__sparkServerOwned > Date.now()))) p.value = p.defaultValue;
        },
        added: function () {},
        removed: function () {},
        changed: function (parent) { touched.push(parent); }
      };
      try {
        applyPatch(root, msg.ops, watch);
      } catch (e) {
        reportError(e);
        emit("patch-failed", { cid: msg.cid, v: msg.v, error: String(e && e.message) });
        restoreFocus(root, focus);
        rejoinFresh(msg.cid, c);
        return;
      }
      restoreFocus(root, focus);
      refreshHooks(root, touched);
    }
    noteVersion(c, msg.v);
    emit("patch", { cid: msg.cid, v: msg.v, ops: msg.ops });
  }

  /* A component's whole HTML: its roots, or (Azu's way) the element with
   * that id, take it. */
  function updateComponent(cid, html, v) {
    if (typeof cid !== "string" || typeof html !== "string") return;
    var c = comps.get(cid);
    if (c && c.roots.length) return onRender({ cid: cid, html: html, v: v });
    var el = document.getElementById(cid);
    if (!el) return;
    el.replaceChildren(parseHTML(html));
    emit("render", { cid: cid, v: v });
  }

  function onRender(msg) {
    var c = comps.get(msg.cid);
    if (!c || typeof msg.html !== "string") return;
    c.roots.forEach(function (root) {
      var focus = saveFocus(root);
      var frag = parseHTML(msg.html);
      root.replaceChildren(frag);
      restoreFocus(root, focus);
      refreshHooks(root, [root]);
    });
    if (typeof msg.v === "number") {
      c.v = msg.v;  /* a render is authoritative, even at a lower version */
      c.roots.forEach(function (el) { el.setAttribute("spark-version", String(msg.v)); });
    }
    emit("render", { cid: msg.cid, v: msg.v });
  }

  function redirect(url) {
    var target;
    try { target = new URL(String(url), location.href); } catch (e) { return; }
    if (target.protocol !== "http:" && target.protocol !== "https:") return;
    emit("redirect", { url: target.href });
    location.assign(target.href);
  }

  /* ---- flash ---- */

  function flashBox() {
    var box = opts.flashContainer || document.querySelector("[spark-flash-container]");
    if (!box) {
      box = document.createElement("div");
      box.setAttribute("spark-flash-container", "");
      box.className = "spark-flashes";
      document.body.appendChild(box);
    }
    return box;
  }

  function showFlash(level, message, cid) {
    level = /^[a-z0-9_-]{1,20}$/i.test(level) ? level : "info";
    var el = document.createElement("div");
    el.className = "spark-flash spark-flash-" + level;
    el.setAttribute("role", level === "error" ? "alert" : "status");
    var text = document.createElement("span");
    text.className = "spark-flash-message";
    text.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "spark-flash-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "\u00d7";
    close.addEventListener("click", function () { el.remove(); });
    el.appendChild(text);
    el.appendChild(close);
    flashBox().appendChild(el);
    if (opts.flashTimeout > 0) setTimeout(function () { el.remove(); }, opts.flashTimeout);
    emit("flash", { cid: cid || null, level: level, message: message });
    return el;
  }

  /* ====================================================================
   * Events from the page
   * ==================================================================== */

  var ATTRS = {
    click: ["spark-click", "live-click"],
    change: ["spark-change", "live-change"],
    input: ["spark-input", "live-input"],
    submit: ["spark-submit"],
    keydown: ["spark-keydown"],
    keyup: ["spark-keyup"]
  };

  var limiters = new WeakMap(); /* element -> {kind: limiter} */
  var debounced = new Set();    /* limiters with a send waiting */

  /* Sends everything debounced now (before an event that must follow it). */
  function flushDebounced(cid) {
    Array.from(debounced).forEach(function (l) {
      if (!cid || l.cid === cid) l.flush();
    });
  }

  /* Calls `fire` now or later according to spark-debounce / spark-throttle
   * on `el`. */
  function limit(el, kind, cid, fire) {
    var deb = el.getAttribute("spark-debounce"), thr = el.getAttribute("spark-throttle");
    if (deb === null && thr === null) { fire(); return; }
    var per = limiters.get(el);
    if (!per) { per = {}; limiters.set(el, per); }
    var l = per[kind];
    if (!l) {
      l = per[kind] = { cid: cid, timer: null, last: 0, fire: null,
        flush: function () {
          clearTimeout(l.timer); l.timer = null;
          debounced.delete(l);
          var f = l.fire; l.fire = null;
          if (f) { l.last = Date.now(); f(); }
        } };
    }
    l.cid = cid;
    l.fire = fire;
    if (deb !== null) {
      debounced.add(l);
      clearTimeout(l.timer);
      if (deb === "blur") {
        if (!el.__sparkBlurFlush) {
          el.__sparkBlurFlush = true;
          el.addEventListener("blur", function () { l.flush(); });
        }
        return;
      }
      l.timer = setTimeout(l.flush, Math.max(0, parseInt(deb, 10) || 0));
      return;
    }
    var ms = Math.max(0, parseInt(thr, 10) || 0), since = Date.now() - l.last;
    if (since >= ms && !l.timer) { l.flush(); return; }
    debounced.add(l);
    if (!l.timer) l.timer = setTimeout(l.flush, Math.max(0, ms - since));
  }

  function loadingOn(els) {
    els.forEach(function (el) { addClass(el, LOADING); });
  }

  function loadingOff(els) {
    els.forEach(function (el) { removeClass(el, LOADING); });
  }

  /* spark-disable-with="Saving...": disables the button and shows the text
   * while the event is in flight. Returns a function that undoes it. */
  function disableWith(buttons) {
    var undo = [];
    buttons.forEach(function (b) {
      var text = b.getAttribute("spark-disable-with");
      if (text === null) return;
      var addedDisabled = !b.hasAttribute("disabled");
      if (addedDisabled) b.setAttribute("disabled", "");
      var node = b.childNodes.length === 1 && b.firstChild.nodeType === 3 ? b.firstChild : null;
      var before = node ? node.data : null;
      if (node && text) node.data = text;
      undo.push(function () {
        if (addedDisabled) b.removeAttribute("disabled");
        if (node && node.data === text && node.parentNode === b) node.data = before;
      });
    });
    return function () { undo.forEach(function (f) { f(); }); };
  }

  /* Sends an event and manages its loading state. `from` is the element
   * whose class shows it; `form` the form whose fields the server now owns
   * (after a submit or a key action). */
  function dispatch(root, name, data, from, kind, form, buttons) {
    var cid = root.getAttribute(ROOT_ATTR);
    if (kind !== "input" && kind !== "change") flushDebounced(cid);
    var marked = [from];
    if (form && form !== from) marked.push(form);
    loadingOn(marked);
    var undoDisable = disableWith(buttons || [from]);
    return api.pushEvent(cid, name, data).then(function (reply) {
      loadingOff(marked);
      undoDisable();
      var scope = form || from;
      if (reply.ok && (kind === "submit" || kind === "keydown" || kind === "keyup") && scope.isConnected)
        handOverToServer(scope, kind === "submit" || /^enter$/i.test(data.key || ""));
      return reply;
    }, function (err) {
      loadingOff(marked);
      undoDisable();
      throw err;
    });
  }

  function onClick(ev) {
    var el = closestWith(ev.target, ATTRS.click);
    if (!el) return;
    var root = rootOf(el);
    if (!root) return;
    var name = attrOf(el, ATTRS.click);
    if (el.tagName === "A" || (el.tagName === "BUTTON" && el.form) ||
        (el.tagName === "INPUT" && (el.type === "submit" || el.type === "image")))
      ev.preventDefault();
    var data = valuesOf(el);
    if (el.hasAttribute("value") && !("value" in data) && el.tagName !== "INPUT") data.value = el.getAttribute("value");
    if (el.tagName === "INPUT" && (el.type === "checkbox" || el.type === "radio")) {
      data.value = fieldValue(el);
      data.checked = el.checked;
    }
    limit(el, "click", root.getAttribute(ROOT_ATTR), function () {
      dispatch(root, name, data, el, "click").catch(noop);
    });
  }

  function onField(kind) {
    return function (ev) {
      var target = ev.target;
      if (!target || target.nodeType !== 1) return;
      var names = ATTRS[kind];
      var el = target.closest(names.map(function (n) { return "[" + n + "]"; }).join(","));
      if (!el) return;
      var root = rootOf(el);
      if (!root) return;
      var name = attrOf(el, names), data, limitEl = el;
      if (el.tagName === "FORM") {
        data = valuesOf(el, formValues(el));
        data._target = target.getAttribute("name") || "";
        if (target.hasAttribute("spark-debounce") || target.hasAttribute("spark-throttle")) limitEl = target;
      } else {
        data = valuesOf(el);
        data.value = fieldValue(el);
        if (el.type === "checkbox" || el.type === "radio") data.checked = el.checked;
        var fname = el.getAttribute("name");
        if (fname && !(fname in data)) data[fname] = data.value;
      }
      limit(limitEl, kind, root.getAttribute(ROOT_ATTR), function () {
        dispatch(root, name, data, el, kind).catch(noop);
      });
    };
  }

  function onSubmit(ev) {
    var form = ev.target;
    if (!form || form.tagName !== "FORM" || !form.hasAttribute("spark-submit")) return;
    var root = rootOf(form);
    if (!root) return;
    ev.preventDefault();
    var submitter = ev.submitter || null;
    var data = valuesOf(form, formValues(form, submitter));
    var buttons = Array.prototype.slice.call(form.querySelectorAll("[spark-disable-with]"));
    dispatch(root, form.getAttribute("spark-submit"), data, form, "submit", form, buttons).catch(noop);
  }

  function onKey(kind) {
    return function (ev) {
      if (ev.isComposing) return;
      var el = closestWith(ev.target, ATTRS[kind]);
      if (!el) return;
      var root = rootOf(el);
      if (!root) return;
      var want = el.getAttribute("spark-key");
      if (want !== null && want.toLowerCase() !== String(ev.key).toLowerCase()) return;
      if (want !== null) ev.preventDefault();
      var data = valuesOf(el);
      data.key = ev.key;
      var field = ev.target;
      if (field && "value" in field && field.tagName !== "BUTTON") {
        data.value = field.value;
        var fname = field.getAttribute("name");
        if (fname && !(fname in data)) data[fname] = field.value;
      }
      /* After the reply, the server decides what the field (or the form
       * the key was bound on) shows: typically it clears it. */
      var scope = el.tagName === "FORM" ? el
                : field && field.matches && field.matches("input,textarea,select") ? field : el;
      limit(el, kind, root.getAttribute(ROOT_ATTR), function () {
        dispatch(root, attrOf(el, ATTRS[kind]), data, el, kind, scope !== el ? scope : null).catch(noop);
      });
    };
  }

  function noop() {}

  var bound = false;
  function bindDocument() {
    if (bound) return;
    bound = true;
    document.addEventListener("click", onClick);
    document.addEventListener("input", onField("input"));
    document.addEventListener("change", onField("change"));
    document.addEventListener("submit", onSubmit);
    document.addEventListener("keydown", onKey("keydown"));
    document.addEventListener("keyup", onKey("keyup"));
  }

  /* ====================================================================
   * Channels (the chat room protocol and the like)
   * ==================================================================== */

  /* Opens a resumable channel socket on `path` ("/chat/lobby"). Messages
   * with a "seq" advance the resume point; after a drop it reconnects with
   * backoff and ?since=<last seq>, so nothing stored is missed or doubled.
   * options: token, params, since, onMessage(msg), onOpen(), onClose(ev). */
  function channel(path, o) {
    o = o || {};
    var sock = null, closed = false, tries = 0, timer = null, since = o.since != null ? o.since : null;
    var queue = [];
    var ch = {
      state: "connecting",
      send: function (obj) {
        var text = typeof obj === "string" ? obj : JSON.stringify(obj);
        if (sock && sock.readyState === 1) { sock.send(text); return true; }
        queue.push(text);
        return false;
      },
      close: function () {
        closed = true;
        clearTimeout(timer);
        if (sock) sock.close(1000);
        ch.state = "closed";
      },
      get since() { return since; }
    };
    function url() {
      var u = (location.protocol === "https:" ? "wss:" : "ws:") + "//" + location.host + path;
      var q = [];
      var token = o.token || opts.token;
      if (token) q.push("token=" + encodeURIComponent(token));
      if (since !== null) q.push("since=" + encodeURIComponent(since));
      if (o.params) Object.keys(o.params).forEach(function (k) {
        q.push(encodeURIComponent(k) + "=" + encodeURIComponent(o.params[k]));
      });
      return q.length ? u + "?" + q.join("&") : u;
    }
    function connect() {
      ch.state = "connecting";
      var s = new WebSocket(url());
      sock = s;
      var stable = null;
      s.onopen = function () {
        ch.state = "open";
        stable = setTimeout(function () { tries = 0; }, 5000);
        while (queue.length) s.send(queue.shift());
        if (o.onOpen) o.onOpen();
      };
      s.onmessage = function (ev) {
        var msg;
        try { msg = JSON.parse(ev.data); } catch (e) { return; }
        if (msg && typeof msg.seq === "number" && (since === null || msg.seq > since)) since = msg.seq;
        if (o.onMessage) try { o.onMessage(msg); } catch (e) { reportError(e); }
      };
      s.onclose = function (ev) {
        clearTimeout(stable);
        if (sock !== s) return;
        sock = null;
        if (o.onClose) try { o.onClose(ev); } catch (e) { reportError(e); }
        if (closed || ev.code === 4401 || ev.code === 4403) { ch.state = "closed"; return; }
        ch.state = "reconnecting";
        timer = setTimeout(connect, jitterDelay(tries++, opts.minBackoff, opts.maxBackoff));
      };
    }
    connect();
    return ch;
  }

  /* The chat room protocol of /chat/:room_id (apps/chat_channel.c): keeps
   * the messages, who is online (presence) and who is typing.
   * handlers: onChange(chat), onMessage(msg), onError(msg). */
  function chat(room, o) {
    o = o || {};
    var c = {
      room: room,
      messages: [],       /* {type, user, user_id, message, timestamp, seq} */
      online: {},         /* user id -> {name, metas: [...]}; empty while crowded */
      count: 0,           /* users online, every instance */
      crowded: false,     /* a crowded room: a count, no list (the server's word) */
      typing: {},         /* user id -> {name, until} */
      state: "connecting",
      send: function (text) {
        text = String(text || "");
        if (!text.trim()) return false;
        lastTyping = 0;
        return ch.send({ action: "chat", message: text });
      },
      /* Tells the others this user is typing (at most every 2 s). */
      typed: function () {
        var now = Date.now();
        if (now - lastTyping < 2000) return;
        lastTyping = now;
        ch.send({ action: "typing" });
      },
      names: function () {
        return Object.keys(c.online).map(function (id) { return c.online[id].name || id; }).sort();
      },
      typingNames: function () {
        var now = Date.now();
        return Object.keys(c.typing).filter(function (id) { return c.typing[id].until > now; })
          .map(function (id) { return c.typing[id].name || id; }).sort();
      },
      close: function () { ch.close(); c.state = "closed"; changed(); }
    };
    var lastTyping = 0, seen = Object.create(null), typingTimer = null;
    function changed() {
      if (o.onChange) try { o.onChange(c); } catch (e) { reportError(e); }
    }
    function mergeMetas(into, user, entry, add) {
      var cur = into[user] || { name: entry.name, metas: [] };
      var refs = (entry.metas || []).map(function (m) { return m && m.ref; });
      if (add) {
        cur.metas = cur.metas.filter(function (m) { return refs.indexOf(m && m.ref) < 0; }).concat(entry.metas || []);
        if (entry.name) cur.name = entry.name;
        into[user] = cur;
      } else if (into[user]) {
        cur.metas = cur.metas.filter(function (m) { return refs.indexOf(m && m.ref) < 0; });
        if (cur.metas.length) into[user] = cur; else delete into[user];
      }
    }
    function scheduleTypingExpiry() {
      clearTimeout(typingTimer);
      var now = Date.now(), next = Infinity;
      Object.keys(c.typing).forEach(function (id) {
        if (c.typing[id].until <= now) delete c.typing[id];
        else next = Math.min(next, c.typing[id].until);
      });
      if (next !== Infinity) typingTimer = setTimeout(function () { scheduleTypingExpiry(); changed(); }, next - now + 10);
    }
    var ch = channel("/chat/" + encodeURIComponent(room), {
      token: o.token,
      since: o.since,
      onOpen: function () { c.state = "open"; changed(); },
      onClose: function (ev) {
        c.state = ev.code === 4401 || ev.code === 4403 ? "closed" : "reconnecting";
        c.online = {};
        c.count = 0;
        c.crowded = false;
        changed();
      },
      onMessage: function (msg) {
        if (!msg || typeof msg !== "object") return;
        if (typeof msg.seq === "number") {
          if (seen[msg.seq]) return;
          seen[msg.seq] = true;
        }
        switch (msg.type) {
          /* A crowded room's presence is a count: the list goes, and comes
           * back with the whole state when the room is no longer crowded. */
          case "presence_state":
            c.online = {};
            c.crowded = msg.crowded === true;
            if (!c.crowded)
              Object.keys(msg.state || {}).forEach(function (u) { mergeMetas(c.online, u, msg.state[u], true); });
            c.count = typeof msg.count === "number" ? msg.count : Object.keys(c.online).length;
            break;
          case "presence_diff":
            c.crowded = msg.crowded === true;
            if (c.crowded) c.online = {};
            Object.keys(msg.leaves || {}).forEach(function (u) { mergeMetas(c.online, u, msg.leaves[u], false); });
            Object.keys(msg.joins || {}).forEach(function (u) { mergeMetas(c.online, u, msg.joins[u], true); });
            c.count = typeof msg.count === "number" ? msg.count : Object.keys(c.online).length;
            break;
          case "typing":
            c.typing[msg.user_id || msg.user] = { name: msg.user, until: Date.now() + 3000 };
            scheduleTypingExpiry();
            break;
          case "chat":
            delete c.typing[msg.user_id || msg.user];
            c.messages.push(msg);
            if (o.onMessage) o.onMessage(msg);
            break;
          case "user_joined":
          case "user_left":
            c.messages.push(msg);
            if (o.onMessage) o.onMessage(msg);
            break;
          case "error":
            if (o.onError) o.onError(msg);
            emit("error", { room: room, error: msg });
            break;
          default:
            return;
        }
        changed();
      }
    });
    return c;
  }

  /* A ready-made chat box: <div spark-chat-room="lobby"></div> shows the
   * messages, who is online and who is typing, and a form to write. The
   * attribute spark-chat-show="online typing" limits what it shows (when a
   * chat component on the page already lists the messages). */
  function mountChat(el) {
    if (el.__sparkChat) return el.__sparkChat;
    var room = el.getAttribute("spark-chat-room");
    var show = (el.getAttribute("spark-chat-show") || "messages online typing form").split(/\s+/);
    function make(tag, cls, parent) {
      var n = document.createElement(tag);
      if (cls) n.className = cls;
      if (parent) parent.appendChild(n);
      return n;
    }
    var box = make("div", "spark-chat", el);
    var online = make("aside", "spark-chat-online", show.indexOf("online") >= 0 ? box : null);
    var onlineTitle = make("h3", "", online);
    onlineTitle.textContent = "Online";
    var onlineList = make("ul", "", online);
    var list = make("ol", "spark-chat-messages", show.indexOf("messages") >= 0 ? box : null);
    list.setAttribute("aria-live", "polite");
    var typing = make("p", "spark-chat-typing", show.indexOf("typing") >= 0 ? box : null);
    typing.setAttribute("aria-live", "polite");
    var form = make("form", "spark-chat-form", show.indexOf("form") >= 0 ? box : null);
    var input = make("input", "", form);
    input.name = "message";
    input.autocomplete = "off";
    input.placeholder = "Write a message";
    input.setAttribute("aria-label", "Message");
    var button = make("button", "", form);
    button.type = "submit";
    button.textContent = "Send";

    function line(msg) {
      var li = make("li", "spark-chat-" + msg.type, list);
      if (msg.type === "chat") {
        var who = make("strong", "spark-chat-user", li);
        who.textContent = msg.user || "?";
        var text = make("span", "spark-chat-text", li);
        text.textContent = msg.message;
      } else {
        li.textContent = (msg.user || "someone") + (msg.type === "user_joined" ? " joined" : " left");
      }
      if (msg.timestamp) li.title = msg.timestamp;
      list.scrollTop = list.scrollHeight;
    }
    var c = chat(room, {
      onMessage: line,
      onChange: function () {
        box.setAttribute("data-state", c.state);
        onlineTitle.textContent = c.crowded ? c.count + " online" : "Online";
        online.setAttribute("data-count", String(c.count));
        online.classList.toggle("spark-chat-crowded", c.crowded);
        onlineList.replaceChildren();
        Object.keys(c.online).sort().forEach(function (id) {
          var li = make("li", "", onlineList);
          li.textContent = c.online[id].name || id;
          li.setAttribute("data-user", id);
        });
        var names = c.typingNames();
        typing.textContent = names.length === 0 ? "" :
          names.join(", ") + (names.length === 1 ? " is typing\u2026" : " are typing\u2026");
      },
      onError: function (msg) { showFlash("error", msg.message || "chat error"); }
    });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (c.send(input.value)) input.value = "";
    });
    input.addEventListener("input", function () { if (input.value) c.typed(); });
    el.__sparkChat = c;
    return c;
  }

  /* ====================================================================
   * The API
   * ==================================================================== */

  var api = {
    version: "0.1.0",
    hooks: hooks,
    applyPatch: SparkPatch.applyPatch,

    /* Connects to /spark and joins every component root of the page.
     * options: url, token, params, protocol, minBackoff, maxBackoff,
     * replyTimeout, flashTimeout, flashContainer, hooks. Calling it again
     * with a new token (or protocol) reconnects with it. Azu's call,
     * connect(url), takes the URL first. */
    connect: function (options, more) {
      /* Azu's call: Spark.connect("ws://host/spark"), options after it. */
      if (typeof options === "string") {
        var url = options;
        options = {};
        Object.keys(more || {}).forEach(function (k) { options[k] = more[k]; });
        options.url = url;
      }
      options = options || {};
      var spoke = dialect();
      Object.keys(options).forEach(function (k) {
        if (k === "hooks") Object.keys(options.hooks).forEach(function (h) { hooks[h] = options.hooks[h]; });
        else opts[k] = options[k];
      });
      bindDocument();
      wanted = true;
      scan();
      /* A new token, or other frames (the server fixes them per socket):
       * a new connection. */
      if (ws && (options.token !== undefined || dialect() !== spoke)) { var old = ws; ws = null; old.close(1000); onDropped(old); }
      if (!ws) { attempt = 0; open(); }
      return api;
    },

    /* Closes the connection and stops reconnecting. */
    disconnect: function () {
      wanted = false;
      clearTimeout(retryTimer);
      retryTimer = null;
      if (ws) ws.close(1000);
    },

    /* Sends a new token on the open connection ({"t":"refresh"}); the
     * server answers with spark:refreshed or spark:error. */
    refresh: function (token) {
      opts.token = token;
      return send({ t: "refresh", token: token });
    },

    /* Sends an event to a component; resolves with the server's reply
     * ({ok:true} or {ok:false,error:{code,message}}). */
    pushEvent: function (cid, event, data) {
      var c = comps.get(cid);
      /* Azu's sendEvent may name a component without a root on the page:
       * it is joined first, and its updates go to the element of that id. */
      if (state === "open" && dialect() === "azu" && typeof cid === "string" && cid && (!c || !c.joined)) {
        c = compFor(cid);
        if (c.joinRef === 0 && !c.failed) join(cid, c);
      }
      if (state !== "open" || !c || !(c.joined || (dialect() === "azu" && c.joinRef !== 0))) {
        emit("event-dropped", { cid: cid, e: event, reason: "not connected" });
        return Promise.reject(new Error("spark: not connected"));
      }
      var entry = { cid: cid, e: event, d: data || {}, id: newEventId(), inflight: false };
      var p = new Promise(function (resolve, reject) {
        entry.resolve = resolve;
        entry.reject = reject;
      }).then(function (reply) {
        if (!reply.ok) emit("error", { cid: cid, e: event, error: reply.error || null });
        emit("reply", { cid: cid, e: event, id: entry.id, ok: !!reply.ok, error: reply.error || null });
        return reply;
      });
      outbox.set(entry.id, entry);
      sendEvent(entry);
      return p;
    },

    /* Finds component roots added to the page since and joins them. */
    scan: scan,

    /* Leaves a component and forgets its roots. */
    leave: function (cid) {
      send(frame("leave", null, cid, {}));
      comps.delete(cid);
    },

    /* The version held for a component, or null. */
    versionOf: function (cid) {
      var c = comps.get(cid);
      return c ? c.v : null;
    },

    /* "idle", "connecting", "open" or "closed". */
    get state() { return state; },

    /* Events not answered yet: in flight, or waiting to be sent again
     * (with the same id) once their component is joined again. */
    get pending() { return outbox.size; },

    /* window.addEventListener("spark:" + name, ...) with the detail. */
    on: function (name, fn) {
      var h = function (ev) { fn(ev.detail); };
      global.addEventListener("spark:" + name, h);
      return function () { global.removeEventListener("spark:" + name, h); };
    },

    /* Azu's names: sendEvent(componentId, event, data) is pushEvent;
     * updateComponent(id, html) puts a component's HTML in its roots, or in
     * the element with that id; showFlashMessage(message, level). */
    sendEvent: function (cid, event, data) { return api.pushEvent(cid, event, data); },
    updateComponent: function (cid, html) { updateComponent(cid, html); },
    showFlashMessage: function (message, level) { return showFlash(level || "info", String(message)); },

    /* "spark" or "azu": the frames this client speaks. */
    get protocol() { return dialect(); },

    flash: showFlash,
    channel: channel,
    chat: chat,
    mountChat: mountChat
  };

  /* A socket replaced by connect(): settle what waited on it. */
  function onDropped(old) {
    old.onclose = old.onmessage = old.onopen = null;
    state = "closed";
    failPending("spark: reconnecting");
    comps.forEach(function (c) { c.joined = false; c.joinRef = 0; });
  }

  global.Spark = api;

  /* Connects by itself unless the page says otherwise:
   *   <script src="/js/spark.js" data-spark-manual>     (call Spark.connect)
   *   <script src="/js/spark.js" data-token="..." data-url="..." data-protocol="azu">
   *   <meta name="spark-token" content="...">                           */
  var script = document.currentScript;
  function boot() {
    var manual = script && script.hasAttribute("data-spark-manual");
    var cfg = global.SparkConfig || {};
    if (cfg.autoConnect === false) manual = true;
    var o = {};
    Object.keys(cfg).forEach(function (k) { if (k !== "autoConnect") o[k] = cfg[k]; });
    if (script && script.getAttribute("data-token")) o.token = script.getAttribute("data-token");
    if (script && script.getAttribute("data-url")) o.url = script.getAttribute("data-url");
    if (script && script.getAttribute("data-protocol")) o.protocol = script.getAttribute("data-protocol");
    var meta = document.querySelector('meta[name="spark-token"]');
    if (!o.token && meta && meta.content) o.token = meta.content;
    bindDocument();
    Array.prototype.forEach.call(document.querySelectorAll("[spark-chat-room]"), mountChat);
    if (!manual && document.querySelector("[" + ROOT_ATTR + "]")) api.connect(o);
    else Object.keys(o).forEach(function (k) { opts[k] = o[k]; });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})(typeof window !== "undefined" ? window : typeof globalThis !== "undefined" ? globalThis : this);
