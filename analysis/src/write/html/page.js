(function () {
  'use strict';
  // Tables: click (or Enter on) a header to sort by its column, again to
  // reverse; figures first by the most, text from A. A figure sorts by
  // its raw value (`data-v`), a cell without one below every figure; a
  // text cell by its `data-v` where it has one, else its text. Equal rows
  // keep the report's order.
  var collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });
  function key(cell, numeric) {
    var v = cell ? cell.getAttribute('data-v') : null;
    if (numeric) {
      var n = v === null || v === '' ? NaN : Number(v);
      return isNaN(n) ? -Infinity : n;
    }
    return v !== null ? v : (cell ? cell.textContent : '');
  }
  function sort(table, col) {
    var heads = table.tHead.rows[0].cells, th = heads[col];
    var numeric = th.classList.contains('n') || th.classList.contains('k');
    var now = th.getAttribute('aria-sort');
    var descending = now === null ? numeric : now === 'ascending';
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col], numeric), y = key(b.cells[col], numeric);
      var c = numeric ? (x < y ? -1 : x > y ? 1 : 0) : collator.compare(x, y);
      if (descending) { c = -c; }
      return c !== 0 ? c : a.order - b.order;
    });
    var sorted = document.createDocumentFragment();
    rows.forEach(function (r) { sorted.appendChild(r); });
    body.appendChild(sorted);
    Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', descending ? 'descending' : 'ascending');
  }
  // The filter box keeps the rows whose text holds what is typed, whatever
  // its case.
  function filter(table, box, empty) {
    var q = box.value.toLowerCase(), kept = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
      var keep = q === '' || r.textContent.toLowerCase().indexOf(q) >= 0;
      r.hidden = !keep;
      if (keep) { kept += 1; }
    });
    empty.hidden = kept > 0 || table.tBodies[0].rows.length === 0;
  }
  document.querySelectorAll('div.tbl').forEach(function (div) {
    var table = div.querySelector('table'), box = div.querySelector('input.filter');
    var empty = div.querySelector('p.empty');
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r, i) { r.order = i; });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener('click', function () { sort(table, col); });
      th.addEventListener('keydown', function (e) {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sort(table, col); }
      });
    });
    box.addEventListener('input', function () { filter(table, box, empty); });
    box.hidden = false;
  });
  document.querySelectorAll('svg.flamegraph').forEach(function (svg) {
    pulseFlamegraph(svg, false);
  });
})();
