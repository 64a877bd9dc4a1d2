/* Claims tables: sortable, searchable and filterable in the page, offline.
 *
 * Every table inside .claims-table or .summary-claims (escaped HTML written by
 * leukcore.book.tables) becomes a DataTable.  DataTables comes from the installed itables, written
 * into the build's _static/datatables by leukcore.book.assets as a classic script (a book opened
 * from disk, file://, may not load module scripts), loaded relative to this script only on pages
 * with a claims table: no request leaves the book.  Without JavaScript the plain table stays readable.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script ? new URL(".", script.src).href : null;
  var FILTERS = ["verdict", "paper", "profile · dataset"];

  function regexEscape(s) {
    return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }

  function addFilters(dt, table) {
    var bar = document.createElement("div");
    bar.className = "leukcore-filters";
    var headers = Array.from(table.tHead.rows[0].cells).map(function (th) { return th.textContent.trim(); });
    FILTERS.forEach(function (name) {
      var idx = headers.indexOf(name);
      if (idx < 0) return;
      var values = Array.from(new Set(dt.column(idx).data().toArray().map(function (v) {
        var d = document.createElement("div");
        d.innerHTML = v;
        return d.textContent.trim();
      }))).filter(function (v) { return v; }).sort();
      if (values.length < 2) return;
      var label = document.createElement("label");
      label.textContent = name + " ";
      var select = document.createElement("select");
      select.setAttribute("data-column", name);
      select.setAttribute("aria-label", "filter by " + name);
      var all = document.createElement("option");
      all.value = "";
      all.textContent = "all";
      select.appendChild(all);
      values.forEach(function (v) {
        var o = document.createElement("option");
        o.value = v;
        o.textContent = v;
        select.appendChild(o);
      });
      select.addEventListener("change", function () {
        var v = select.value;
        dt.column(idx).search(v ? "^" + regexEscape(v) + "$" : "", true, false).draw();
      });
      label.appendChild(select);
      bar.appendChild(label);
    });
    var wrapper = table.closest(".dt-container") || table.parentNode;
    wrapper.parentNode.insertBefore(bar, wrapper);
  }

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var el = document.createElement("script");
      el.src = src;
      el.onload = resolve;
      el.onerror = function () { reject(new Error("could not load " + src)); };
      document.head.appendChild(el);
    });
  }

  function init() {
    var tables = document.querySelectorAll(".claims-table table, .summary-claims table");
    if (!tables.length || !base) return;
    var css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = base + "datatables/dt_bundle.css";
    document.head.appendChild(css);
    loadScript(base + "datatables/dt_bundle.js").then(function () {
      return window.leukcoreDataTables;
    }).then(function (mod) {
      var DataTable = mod.default;
      tables.forEach(function (table) {
        if (table.classList.contains("dataTable")) return;
        var dt = new DataTable(table, {
          order: [],            // keep the book's order (firm verdicts first) until a reader sorts
          paging: false,        // every row stays in the page; search and filters narrow it
          autoWidth: false,
          language: {search: "Search:", info: "_TOTAL_ claims", infoFiltered: "(of _MAX_)"},
        });
        addFilters(dt, table);
        table.setAttribute("data-leukcore-ready", "1");
      });
      document.documentElement.setAttribute("data-leukcore-tables", "ready");
    }).catch(function (err) {
      document.documentElement.setAttribute("data-leukcore-tables", "failed");
      console.error("leukcore tables: DataTables did not load: " + err);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
