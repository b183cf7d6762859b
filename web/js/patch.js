/*
 * patch.js - the patch applier, now part of spark.js.
 *
 * The semantics of the ops of a /spark `patch` message are docs/patch.md;
 * their one browser implementation is in web/js/spark.js, which exports it as
 * window.SparkPatch.applyPatch (and Spark.applyPatch). This file stays so
 * that existing references keep working:
 *   - under Node, require("web/js/patch.js") gives { applyPatch };
 *   - in a page, it loads spark.js without connecting (data-spark-manual);
 *     window.SparkPatch is there once that script has run (its load event).
 * New pages should load /js/spark.js instead.
 */
(function (global) {
  "use strict";
  if (typeof module === "object" && module.exports) {
    module.exports = require("./spark.js");
    return;
  }
  if (!global || global.SparkPatch || typeof document === "undefined") return;
  var me = document.currentScript;
  var s = document.createElement("script");
  s.src = me && me.src ? me.src.replace(/patch\.js([?#].*)?$/, "spark.js") : "/js/spark.js";
  s.setAttribute("data-spark-manual", "");
  (document.head || document.documentElement).appendChild(s);
})(typeof window !== "undefined" ? window : typeof globalThis !== "undefined" ? globalThis : this);
