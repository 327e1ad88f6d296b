/* Draws every chart of the page from its JSON data block (reports.charts.to_html), so no inline script is needed:
   <div id="chart-…"></div><script type="application/json" data-plotly-figure="chart-…">{figure, config}</script>.
   Loaded once from base.html; pages with charts include plotly itself. Charts that arrive by htmx are drawn too. */
(function () {
  "use strict";
  function draw(root) {
    if (typeof window.Plotly === "undefined") { return; }
    root.querySelectorAll('script[type="application/json"][data-plotly-figure]').forEach(function (block) {
      var target = document.getElementById(block.dataset.plotlyFigure);
      if (!target || target.dataset.drawn) { return; }
      var spec = JSON.parse(block.textContent);
      target.dataset.drawn = "1";
      window.Plotly.newPlot(target, spec.figure.data || [], spec.figure.layout || {}, spec.config || {});
    });
  }
  // Scripts at the end of the body (plotly among them) have all run by DOMContentLoaded.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { draw(document); });
  } else {
    draw(document);
  }
  document.addEventListener("htmx:afterSettle", function (e) { draw(e.target || document); });
})();
