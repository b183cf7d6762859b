/*
 * history.js - the slider of a history page (/history/:type/:key): moving
 * it shows the chosen version's server render in place, without leaving
 * the page.
 *
 * Without this script the page works the same, one step slower: the
 * slider is a form whose "Show" button loads the page with ?v=N. With it,
 * each move asks for the preview of that version alone
 * (/history/:type/:key/at/N, markup rendered and escaped by the server)
 * and puts it in place of the current one; an answer that arrives after a
 * later move is dropped. Reverting stays a plain form post.
 */
(function () {
  "use strict";

  function start() {
    var pane = document.getElementById("history-preview");
    var form = document.querySelector("form.history-slider");
    if (!pane || !form) return;
    var slider = form.querySelector("input[type=range]");
    var shown = form.querySelector("output");
    var asked = 0;

    function show(v) {
      var mine = ++asked;
      shown.textContent = v;
      pane.setAttribute("aria-busy", "true");
      fetch(pane.getAttribute("data-at") + encodeURIComponent(v), { credentials: "same-origin" })
        .then(function (res) {
          if (!res.ok) throw new Error("HTTP " + res.status);
          return res.text();
        })
        .then(function (html) {
          if (mine !== asked) return;
          pane.innerHTML = html;
          pane.removeAttribute("aria-busy");
          var url = new URL(window.location.href);
          url.searchParams.set("v", v);
          window.history.replaceState(null, "", url);
        })
        .catch(function (err) {
          if (mine !== asked) return;
          pane.removeAttribute("aria-busy");
          pane.textContent = "Version " + v + " could not be loaded (" + err.message + ").";
        });
    }

    slider.addEventListener("input", function () { show(slider.value); });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      show(slider.value);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
