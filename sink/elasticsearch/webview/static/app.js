// flowdex web view: reads /api/traffic and /api/top for the chosen range and
// draws them. Every number drawn is also in a table, with its exact value in
// data attributes. body[data-rendered] is set once everything is drawn.
"use strict";

function scaled(n, units) {
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 2 : 1)) + " " + units[i];
}
function human(n) { return scaled(n, ["B", "kB", "MB", "GB", "TB", "PB"]); }
function bits(n) { return scaled(n, ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"]); }
function count(n) { return n.toLocaleString("en-US"); }

const charts = {};
function draw(canvas, config) {
  if (charts[canvas.id || canvas.parentElement.dataset.by]) {
    charts[canvas.id || canvas.parentElement.dataset.by].destroy();
  }
  config.options = Object.assign({ animation: false, responsive: true, plugins: { legend: { display: false } } }, config.options || {});
  const chart = new Chart(canvas, config);
  charts[canvas.id || canvas.parentElement.dataset.by] = chart;
  // what the chart plots, read back from it, for tests and scrapers
  canvas.dataset.labels = JSON.stringify(chart.data.labels);
  canvas.dataset.values = JSON.stringify(chart.data.datasets[0].data);
  const x = chart.options.scales.x;
  canvas.dataset.xTitle = x && x.title && x.title.display ? x.title.text : "";
}

async function get(path, params) {
  const res = await fetch(path + "?" + new URLSearchParams(params));
  const body = await res.json();
  if (!res.ok) throw new Error(path + ": " + (body.error || res.status));
  return body;
}

function range() {
  const q = new URLSearchParams(location.search);
  return { from: q.get("from") || "now-1h", to: q.get("to") || "now" };
}

async function showTraffic(r) {
  const t = await get("api/traffic", r);
  // edge buckets cover part of the range: their rate is over that part
  const perSecond = t.buckets.map(b => b.seconds > 0 ? b.bytes * 8 / b.seconds : 0);
  document.getElementById("traffic-unit").textContent =
    "bits per second, averaged over " + t.interval_seconds + " s buckets";
  draw(document.getElementById("traffic-chart"), {
    type: "line",
    data: {
      labels: t.buckets.map(b => new Date(b.t).toISOString().slice(5, 19).replace("T", " ")),
      datasets: [{ data: perSecond, borderColor: "#1d6fb8", backgroundColor: "rgba(29,111,184,0.15)", fill: true, pointRadius: 0 }],
    },
    // the labels are UTC, as Elasticsearch's buckets and the range's RFC 3339 times
    options: { scales: { x: { title: { display: true, text: "time (UTC)" } }, y: { beginAtZero: true, ticks: { callback: v => bits(v) } } } },
  });
  const total = document.getElementById("traffic-total");
  total.dataset.bytes = t.total.bytes;
  total.dataset.packets = t.total.packets;
  total.dataset.buckets = t.buckets.length;
  total.textContent = "total " + human(t.total.bytes) + ", " + count(t.total.packets) + " packets in " +
    count(t.documents) + " documents, " + t.from + " to " + t.to;
}

async function showTop(section, r) {
  const by = section.dataset.by;
  const optional = "optional" in section.dataset;
  let t;
  try {
    t = await get("api/top", Object.assign({ by: by, size: 10 }, r));
  } catch (e) {
    // an optional field the indices cannot group by (labels written as maps)
    if (optional) { section.hidden = true; return; }
    throw e;
  }
  if (optional) {
    // shown only when some document has a value other than pmacct's "none"
    section.hidden = !t.rows.some(x => !["", "0", "0.0.0.0", "::"].includes(String(x.key)));
    if (section.hidden) return;
  }
  draw(section.querySelector("canvas"), {
    type: "bar",
    data: { labels: t.rows.map(x => x.key), datasets: [{ data: t.rows.map(x => x.bytes), backgroundColor: "#457b9d" }] },
    options: { indexAxis: "y", scales: { x: { ticks: { callback: v => human(v) } } } },
  });
  const table = section.querySelector("table");
  table.replaceChildren();
  const head = table.insertRow();
  for (const h of [by, "bytes", "packets", "share"]) {
    const th = document.createElement("th");
    th.textContent = h;
    head.appendChild(th);
  }
  const rows = t.rows.concat(t.other.bytes > 0 || t.other.packets > 0 ? [{ key: "other", bytes: t.other.bytes, packets: t.other.packets, other: true }] : []);
  for (const x of rows) {
    const tr = table.insertRow();
    tr.dataset.key = x.key;
    tr.dataset.bytes = x.bytes;
    tr.dataset.packets = x.packets;
    if (x.other) tr.dataset.other = "true";
    for (const v of [x.key === "" ? "(none)" : x.key, human(x.bytes), count(x.packets), t.total.bytes ? (100 * x.bytes / t.total.bytes).toFixed(1) + " %" : ""]) {
      tr.insertCell().textContent = v;
    }
  }
}

async function load() {
  const r = range();
  document.getElementById("from").value = r.from;
  document.getElementById("to").value = r.to;
  const preset = document.getElementById("preset");
  preset.value = r.to === "now" && [...preset.options].some(o => o.value === r.from) ? r.from : "custom";
  document.body.removeAttribute("data-rendered");
  try {
    const info = await get("api/info", {});
    document.getElementById("indices").textContent = info.indices;
    await Promise.all([showTraffic(r), ...[...document.querySelectorAll("section[data-by]")].map(s => showTop(s, r))]);
    document.getElementById("error").hidden = true;
    document.body.dataset.rendered = "true";
  } catch (e) {
    const p = document.getElementById("error");
    p.textContent = String(e.message || e);
    p.hidden = false;
    document.body.dataset.rendered = "error";
  }
}

document.getElementById("preset").addEventListener("change", e => {
  if (e.target.value !== "custom") {
    history.pushState(null, "", "?" + new URLSearchParams({ from: e.target.value, to: "now" }));
    load();
  }
});
document.getElementById("range").addEventListener("submit", e => {
  e.preventDefault();
  history.pushState(null, "", "?" + new URLSearchParams({ from: document.getElementById("from").value, to: document.getElementById("to").value }));
  load();
});
window.addEventListener("popstate", load);
load();
