// CineData's pages: draws each chart from the JSON beside it (ECharts, SVG renderer, no
// animation), sorts tables whose headers are sort buttons and keeps the movie form's sort
// controls in step with the table (its headers sort it too). When every chart has finished
// drawing, <html data-charts-ready="true"> tells tests and screenshots the page is complete.
(function () {
  "use strict";
  var palette = ["#3a6ea5", "#c2682b", "#2a9d8f", "#b23a48", "#6a4c93", "#d4a017", "#4a7c59", "#5c4d7d"];

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) { return "&#" + c.charCodeAt(0) + ";"; });
  }

  // A line chart over time: points at their moment (Unix ms, UTC), tooltips titled by label.
  function timeOption(spec) {
    return {
      animation: false,
      useUTC: true,
      color: palette,
      tooltip: {
        trigger: "axis",
        formatter: function (points) {
          var lines = [escapeHtml(spec.labels[points[0].dataIndex])];
          points.forEach(function (p) {
            var value = p.value[1];
            lines.push(p.marker + escapeHtml(p.seriesName) + ": " + (value === null ? "–" : escapeHtml(value)));
          });
          return lines.join("<br>");
        },
      },
      legend: spec.series.length > 1 ? { type: "scroll", top: 0 } : undefined,
      grid: { left: 56, right: 24, top: spec.series.length > 1 ? 36 : 28, bottom: 28 },
      xAxis: { type: "time", axisLabel: { hideOverlap: true } },
      yAxis: { type: "value", name: spec.yName, scale: true, nameTextStyle: { align: "left" } },
      series: spec.series.map(function (s) {
        return {
          name: s.name,
          type: "line",
          data: s.data.map(function (v, i) { return [spec.times[i], v]; }),
          connectNulls: true,
          showSymbol: spec.times.length < 40,
        };
      }),
    };
  }

  function option(spec) {
    if (spec.kind === "time") return timeOption(spec);
    var horizontal = spec.kind === "hbar";
    var category = { type: "category", data: spec.x, axisLabel: { hideOverlap: true } };
    var values = { type: "value", name: spec.yName, nameTextStyle: { align: horizontal ? "center" : "left" } };
    return {
      animation: false,
      color: palette,
      tooltip: { trigger: "axis" },
      legend: spec.series.length > 1 ? { type: "scroll", top: 0 } : undefined,
      grid: { left: horizontal ? 100 : 56, right: 16, top: spec.series.length > 1 ? 36 : 28, bottom: 28 },
      xAxis: horizontal ? values : category,
      yAxis: horizontal ? Object.assign({}, category, { inverse: true }) : values,
      series: spec.series.map(function (s) {
        return {
          name: s.name,
          type: spec.kind === "line" ? "line" : "bar",
          data: s.data,
          connectNulls: true,
          showSymbol: spec.kind === "line" && spec.x.length < 40,
        };
      }),
    };
  }

  function drawCharts() {
    var boxes = Array.prototype.slice.call(document.querySelectorAll(".chart[data-chart]"));
    var pending = boxes.length;
    var root = document.documentElement;
    if (pending === 0 || typeof echarts === "undefined") {
      root.dataset.chartsReady = String(pending === 0);
      return;
    }
    boxes.forEach(function (box) {
      var source = document.getElementById("data-" + box.dataset.chart);
      var chart = echarts.init(box, null, { renderer: "svg" });
      var done = false;
      chart.on("finished", function () {
        if (done) return;
        done = true;
        pending -= 1;
        if (pending === 0) root.dataset.chartsReady = "true";
      });
      chart.setOption(option(JSON.parse(source.textContent)));
      if (typeof ResizeObserver !== "undefined") {
        new ResizeObserver(function () { chart.resize(); }).observe(box);
      }
    });
  }

  function sortable(table) {
    var body = table.tBodies[0];
    table.querySelectorAll("button.sort").forEach(function (button) {
      button.addEventListener("click", function () {
        var column = Number(button.dataset.column);
        var th = button.parentElement;
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("th").forEach(function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[column].dataset.key, y = b.cells[column].dataset.key;
          if (x === "" || y === "") return x === y ? 0 : x === "" ? 1 : -1;
          var nx = Number(x), ny = Number(y);
          var order = !isNaN(nx) && !isNaN(ny) ? nx - ny : x.localeCompare(y);
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  }

  // After htmx replaced the movie table (its headers sort it), the form shows its order.
  function followTableOrder() {
    var results = document.getElementById("movie-results");
    var sort = document.getElementById("f-sort");
    var dir = document.getElementById("f-dir");
    if (!results || !sort || !dir || !results.dataset.sort) return;
    if (sort.value !== results.dataset.sort) sort.value = results.dataset.sort;
    if (dir.value !== results.dataset.dir) dir.value = results.dataset.dir;
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    document.querySelectorAll("table.sortable").forEach(sortable);
    document.body.addEventListener("htmx:afterSwap", followTableOrder);
  });
})();
