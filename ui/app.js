// tokentally's own script: the theme toggle, and the charts drawn with
// uPlot from the JSON data block beside each chart's table. Every page works
// without it; this only adds to what the server rendered.
"use strict";

// Whether the first chart drawing has been marked for the benchmark.
var drawnMarked = false;

// Okabe–Ito: told apart with the common colour-vision deficiencies.
var PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9",
               "#D55E00", "#F0E442", "#8C6D31", "#999999"];

function effectiveTheme() {
  var chosen = document.documentElement.getAttribute("data-theme");
  if (chosen) return chosen;
  return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function setUpThemeToggle() {
  var button = document.getElementById("theme-toggle");
  if (!button) return;
  var show = function () {
    button.setAttribute("aria-pressed", effectiveTheme() === "dark" ? "true" : "false");
  };
  button.hidden = false;
  show();
  button.addEventListener("click", function () {
    var next = effectiveTheme() === "dark" ? "light" : "dark";
    document.documentElement.setAttribute("data-theme", next);
    try { localStorage.setItem("tokentally-theme", next); } catch (e) { /* ignore */ }
    show();
    document.dispatchEvent(new Event("tokentally:theme"));
  });
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// Series are stacked: the bar of group k spans the sum of groups 0..k-1 to
// the sum of 0..k. uPlot fills from zero, so the cumulative sums are drawn
// top group first and each lower one over it.
function cumulative(series) {
  var sums = [];
  var running = null;
  series.forEach(function (s) {
    running = s.values.map(function (v, i) { return (running ? running[i] : 0) + v; });
    sums.push(running);
  });
  return sums;
}

function eventsLink(data, index, seriesIndex) {
  var url = new URL(data.events_href, window.location.origin);
  url.searchParams.set("from", new Date(data.starts[index]).toISOString());
  url.searchParams.set("to", new Date(data.ends[index]).toISOString());
  if (seriesIndex !== null && data.series[seriesIndex].filterable) {
    url.searchParams.set(data.filter, data.series[seriesIndex].name);
  }
  return url.pathname + url.search;
}

function describe(data, index, marked) {
  var total = data.series.reduce(function (sum, s) { return sum + s.values[index]; }, 0);
  var parts = data.series
    .map(function (s, k) { return { name: s.name, value: s.values[index], text: data.texts[k][index], k: k }; })
    .filter(function (p) { return p.value !== 0; });
  var text = data.labels[index] + ": " + (parts.length ? parts.map(function (p) {
    return (p.k === marked ? "selected " : "") + p.name + " " + p.text;
  }).join(", ") : "nothing");
  return { total: total, parts: parts, text: text };
}

function tooltipHtml(data, index, marked) {
  var info = describe(data, index, marked);
  var escape = function (s) {
    return String(s).replace(/[&<>"]/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c];
    });
  };
  var html = "<strong>" + escape(data.labels[index]) + "</strong><ul>";
  info.parts.forEach(function (p) {
    var mark = p.k === marked ? " class=\"marked\"" : "";
    // Classes, not style attributes: the CSP allows no inline styles.
    html += "<li" + mark + "><span class=\"swatch s" + (p.k % PALETTE.length) + "\"></span>" +
      (p.k === marked ? "▶ " : "") + escape(p.name) + ": " + escape(p.text) + "</li>";
  });
  html += "</ul>";
  var more = data.breakdown[index];
  if (more && more.length) {
    html += "<strong>" + escape(data.breakdown_title) + "</strong><ul>";
    more.forEach(function (pair) { html += "<li>" + escape(pair[0]) + ": " + escape(pair[1]) + "</li>"; });
    html += "</ul>";
  }
  return html;
}

function drawChart(holder) {
  var id = holder.getAttribute("data-chart");
  var source = document.getElementById(id + "-data");
  if (!source || typeof uPlot === "undefined") return;
  var data = JSON.parse(source.textContent);
  if (!data.labels || !data.labels.length) return;
  var live = document.getElementById(id + "-live");
  var figure = holder.closest("figure");
  var help = figure.querySelector(".chart-help");
  var caption = figure.querySelector("figcaption");
  var table = figure.querySelector("table");
  holder.hidden = false;
  if (help) help.hidden = false;
  holder.tabIndex = 0;
  holder.setAttribute("role", "group");
  holder.setAttribute("aria-roledescription", "chart");
  if (caption) holder.setAttribute("aria-label", caption.textContent);
  if (table) holder.setAttribute("aria-describedby", table.id);

  var sums = cumulative(data.series);
  var xs = data.labels.map(function (_, i) { return i; });
  var order = sums.map(function (_, k) { return k; }).reverse();
  var format = function (v) {
    // Cost bars are micro-units of the instance's unit (web::chart).
    if (data.metric === "cost") {
      var money = data.money || { prefix: "$", suffix: "" };
      return money.prefix + (v / 1e6).toFixed(v >= 1e8 ? 0 : 2) + money.suffix;
    }
    if (v >= 1e9) return (v / 1e9).toFixed(1) + "B";
    if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (v >= 1e3) return (v / 1e3).toFixed(1) + "k";
    return String(v);
  };
  var tooltip = document.createElement("div");
  tooltip.className = "chart-tooltip";
  tooltip.hidden = true;
  holder.appendChild(tooltip);
  var hovered = { index: null, series: null };

  var seriesUnderCursor = function (u, index, top) {
    if (top == null || top < 0) return null;
    var value = u.posToVal(top, "y");
    for (var k = 0; k < sums.length; k++) {
      if (value <= sums[k][index]) return k;
    }
    return null;
  };

  var makeOpts = function () {
    var text = cssVar("--text"), grid = cssVar("--border");
    return {
      width: Math.max(holder.clientWidth, 280),
      height: 300,
      legend: { show: false },
      scales: { x: { time: false, range: function (u, min, max) { return [min - 0.5, max + 0.5]; } } },
      axes: [
        { stroke: text, grid: { stroke: grid }, ticks: { stroke: grid },
          values: function (u, splits) { return splits.map(function (i) { return data.labels[i] || ""; }); } },
        { stroke: text, grid: { stroke: grid }, ticks: { stroke: grid }, size: 60,
          values: function (u, vals) { return vals.map(format); } }
      ],
      series: [{}].concat(order.map(function (k) {
        var colour = PALETTE[k % PALETTE.length];
        return { label: data.series[k].name, fill: colour, stroke: colour, width: 0,
                 paths: uPlot.paths.bars({ size: [0.8, 64] }), points: { show: false } };
      })),
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      hooks: {
        // Marks the first drawing for `cargo bench --bench dashboard`
        // (navigation start to chart drawn); costs nothing otherwise.
        draw: [function () {
          if (!drawnMarked && window.performance && performance.mark) {
            drawnMarked = true;
            performance.mark("tokentally:chart-drawn");
          }
        }],
        setCursor: [function (u) {
          var index = u.cursor.idx;
          if (index == null) { tooltip.hidden = true; hovered.index = null; return; }
          hovered.index = index;
          hovered.series = seriesUnderCursor(u, index, u.cursor.top);
          tooltip.innerHTML = tooltipHtml(data, index, hovered.series);
          tooltip.hidden = false;
          var left = u.valToPos(index, "x") + 12;
          tooltip.style.left = Math.min(left, holder.clientWidth - 220) + "px";
          tooltip.style.top = "8px";
        }]
      }
    };
  };
  var plotData = [xs].concat(order.map(function (k) { return sums[k]; }));
  var plot;
  var build = function () {
    plot = new uPlot(makeOpts(), plotData, holder);
    holder.appendChild(tooltip);
    plot.over.addEventListener("click", function () {
      if (hovered.index == null) return;
      window.location.href = eventsLink(data, hovered.index, hovered.series);
    });
  };
  build();

  // Keyboard: arrows move bucket by bucket, announced politely; Enter
  // opens the events of the bucket.
  var keyIndex = null;
  var moveTo = function (index) {
    keyIndex = Math.max(0, Math.min(xs.length - 1, index));
    var top = sums.length ? plot.valToPos(sums[sums.length - 1][keyIndex] / 2, "y") : 0;
    plot.setCursor({ left: plot.valToPos(keyIndex, "x"), top: top });
    if (live) live.textContent = describe(data, keyIndex, null).text;
  };
  holder.addEventListener("keydown", function (event) {
    if (event.key === "ArrowRight") { moveTo(keyIndex == null ? 0 : keyIndex + 1); event.preventDefault(); }
    else if (event.key === "ArrowLeft") { moveTo(keyIndex == null ? xs.length - 1 : keyIndex - 1); event.preventDefault(); }
    else if (event.key === "Home") { moveTo(0); event.preventDefault(); }
    else if (event.key === "End") { moveTo(xs.length - 1); event.preventDefault(); }
    else if (event.key === "Enter" && keyIndex != null) { window.location.href = eventsLink(data, keyIndex, null); }
    else if (event.key === "Escape") { tooltip.hidden = true; keyIndex = null; }
  });
  holder.addEventListener("blur", function () { tooltip.hidden = true; });

  if (window.ResizeObserver) {
    new ResizeObserver(function () {
      plot.setSize({ width: Math.max(holder.clientWidth, 280), height: 300 });
    }).observe(holder);
  }
  document.addEventListener("tokentally:theme", function () {
    // The axes take their colours from the theme: draw again.
    var kept = keyIndex;
    plot.destroy();
    build();
    if (kept != null) moveTo(kept);
  });
}

// A budget's chart: used so far (solid), the forecast to the period's end
// (dashed), the amount (thin, flat). The table beside it has the numbers.
function drawBurn(holder) {
  var id = holder.getAttribute("data-burn");
  var source = document.getElementById(id + "-data");
  if (!source || typeof uPlot === "undefined") return;
  var data = JSON.parse(source.textContent);
  if (!data.labels || !data.labels.length) return;
  holder.hidden = false;
  var format = function (v) {
    if (v == null) return "";
    if (data.metric === "cost") {
      return data.money[0] + (v / 1e6).toFixed(v >= 1e8 ? 0 : 2) + data.money[1];
    }
    if (v >= 1e9) return (v / 1e9).toFixed(1) + "B";
    if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (v >= 1e3) return (v / 1e3).toFixed(1) + "k";
    return String(v);
  };
  var xs = data.labels.map(function (_, i) { return i; });
  var flat = data.labels.map(function () { return data.amount; });
  var build = function () {
    var text = cssVar("--text"), grid = cssVar("--border");
    var opts = {
      width: Math.max(holder.clientWidth, 260),
      height: 200,
      legend: { show: false },
      scales: { x: { time: false } },
      axes: [
        { stroke: text, grid: { stroke: grid }, ticks: { stroke: grid },
          values: function (u, splits) { return splits.map(function (i) { return (data.labels[i] || "").slice(5); }); } },
        { stroke: text, grid: { stroke: grid }, ticks: { stroke: grid }, size: 60,
          values: function (u, vals) { return vals.map(format); } }
      ],
      series: [
        {},
        { label: "Used", stroke: PALETTE[0], width: 2, points: { show: false } },
        { label: "Forecast", stroke: PALETTE[0], width: 2, dash: [6, 4], points: { show: false } },
        { label: "Budget", stroke: text, width: 1, points: { show: false } }
      ],
      cursor: { show: false }
    };
    return new uPlot(opts, [xs, data.used, data.projected, flat], holder);
  };
  var plot = build();
  if (window.ResizeObserver) {
    new ResizeObserver(function () {
      plot.setSize({ width: Math.max(holder.clientWidth, 260), height: 200 });
    }).observe(holder);
  }
  document.addEventListener("tokentally:theme", function () { plot.destroy(); plot = build(); });
}

document.addEventListener("DOMContentLoaded", function () {
  document.documentElement.classList.add("js");
  setUpThemeToggle();
  Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), drawChart);
  Array.prototype.forEach.call(document.querySelectorAll("[data-burn]"), drawBurn);
});
