/*
 * history.js - the slider and the list of a history page
 * (/history/:type/:key, docs/history.md).
 *
 * Without this script the page works the same, one step slower: the
 * slider is a form whose "Show" button loads the page with ?v=N, and
 * reverting is a plain form post either way. With it:
 *
 * - each move of the slider asks for the preview of that version alone
 *   (/history/:type/:key/at/N, markup rendered and escaped by the server)
 *   and puts it in place of the current one; an answer that arrives after
 *   a later move is dropped;
 * - when the live "Now" pane reaches a version the page does not list yet
 *   (spark.js sets its spark-version), the first page of versions is
 *   fetched again and its table, paging and slider bounds replace the
 *   page's; a slider at the latest version follows it.
 *
 * Only markup the server rendered is inserted; nothing from a state is
 * read here.
 */
(function () {
  "use strict";

  function start() {
    var pane = document.getElementById("history-preview");
    var form = document.querySelector("form.history-slider");
    if (!pane || !form) return;
    var slider = form.querySelector("input[type=range]");
    var shown = form.querySelector("output");
    var asked = 0, listed = 0;

    function get(url) {
      return fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (res) {
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.text();
      });
    }

    function show(v) {
      var mine = ++asked;
      shown.textContent = v;
      pane.setAttribute("aria-busy", "true");
      get(pane.getAttribute("data-at") + encodeURIComponent(v)).then(function (html) {
        if (mine !== asked) return;
        pane.innerHTML = html;
        pane.removeAttribute("aria-busy");
        var url = new URL(window.location.href);
        url.searchParams.set("v", v);
        window.history.replaceState(null, "", url);
      }).catch(function (err) {
        if (mine !== asked) return;
        pane.removeAttribute("aria-busy");
        pane.textContent = "Version " + v + " could not be loaded (" + err.message + ").";
      });
    }

    /* The first page of versions again, after a change. */
    function relist() {
      var mine = ++listed;
      var url = new URL(window.location.href);
      url.searchParams.delete("v");
      get(url).then(function (html) {
        if (mine !== listed) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        ["h2.history-range", "table.history-versions", "nav.history-pages"].forEach(function (sel) {
          var mineEl = document.querySelector(sel), fresh = doc.querySelector(sel);
          if (mineEl && fresh) mineEl.replaceWith(document.adoptNode(fresh));
        });
        var range = doc.querySelector("form.history-slider input[type=range]");
        if (!range) return;
        var atLatest = slider.value === slider.max;
        slider.min = range.min;
        slider.max = range.max;
        /* The preview says "of N" and offers a revert unless it is the latest. */
        show(atLatest ? slider.max : slider.value);
      }).catch(function () { /* the next change tries again */ });
    }

    slider.addEventListener("input", function () { show(slider.value); });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      show(slider.value);
    });

    var now = document.querySelector(".history-now");
    if (now && !new URL(window.location.href).searchParams.has("upto") && window.MutationObserver) {
      new MutationObserver(function () {
        var v = parseInt(now.getAttribute("spark-version"), 10);
        if (v > Number(slider.max)) relist();
      }).observe(now, { attributes: true, attributeFilter: ["spark-version"] });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
