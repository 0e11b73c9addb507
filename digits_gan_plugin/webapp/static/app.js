// Live parts of the job pages: status/progress/log polling and the loss chart.
// Plain JS, no libraries: the UI must work offline.
"use strict";

const CHART_COLORS = ["#337ab7", "#d9534f", "#5cb85c", "#f0ad4e", "#9b59b6", "#1abc9c", "#34495e", "#e67e22"];

function pollStatus(panel) {
  const url = panel.dataset.statusUrl;
  const bar = document.getElementById("progress-bar");
  const text = document.getElementById("progress-text");
  const log = document.getElementById("job-log");
  let wasRunning = panel.dataset.running === "true";
  async function tick() {
    let state;
    try {
      state = await (await fetch(url, {cache: "no-store"})).json();
    } catch (error) {
      setTimeout(tick, 3000);
      return;
    }
    if (state.progress && state.progress.total) {
      const percent = state.status === "done" ? 100 : 100 * state.progress.done / state.progress.total;
      bar.style.width = percent.toFixed(1) + "%";
      text.textContent = state.progress.text;
    } else if (state.status === "done") {
      bar.style.width = "100%";
    }
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent = state.log;
    if (atBottom) log.scrollTop = log.scrollHeight;
    if (wasRunning && state.ended) {
      window.location.reload();  // the finished page shows the result
      return;
    }
    wasRunning = !state.ended;
    if (!state.ended) setTimeout(tick, 1000);
  }
  tick();
}

function svg(tag, attributes, parent) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (parent) parent.appendChild(node);
  return node;
}

function niceTicks(low, high, count) {
  const span = high - low || 1;
  const step = Math.pow(10, Math.floor(Math.log10(span / count)));
  const factor = [1, 2, 5, 10].find(f => span / (step * f) <= count) || 10;
  const size = step * factor;
  const ticks = [];
  for (let v = Math.ceil(low / size) * size; v <= high + 1e-12; v += size) ticks.push(+v.toPrecision(6));
  return ticks;
}

function drawLossChart(chart, rows, losses) {
  const width = 640, height = 300, left = 52, right = 130, top = 12, bottom = 36;
  chart.replaceChildren();
  const xs = rows.map(r => r.epoch);
  const values = rows.flatMap(r => losses.map(name => r[name])).filter(v => v !== null && isFinite(v));
  if (!values.length) return false;
  let [xMin, xMax] = [Math.min(...xs), Math.max(...xs)];
  if (xMin === xMax) { xMin -= 1; xMax += 1; }
  let [yMin, yMax] = [Math.min(...values), Math.max(...values)];
  if (yMin === yMax) { yMin -= 0.5; yMax += 0.5; }
  const px = x => left + (x - xMin) / (xMax - xMin) * (width - left - right);
  const py = y => top + (1 - (y - yMin) / (yMax - yMin)) * (height - top - bottom);
  for (const tick of niceTicks(yMin, yMax, 6)) {
    svg("line", {class: "grid", x1: left, x2: width - right, y1: py(tick), y2: py(tick)}, chart);
    svg("text", {x: left - 6, y: py(tick) + 4, "text-anchor": "end"}, chart).textContent = tick;
  }
  for (const tick of niceTicks(xMin, xMax, 8).filter(t => Number.isInteger(t))) {
    svg("text", {x: px(tick), y: height - bottom + 16, "text-anchor": "middle"}, chart).textContent = tick;
  }
  svg("line", {class: "axis", x1: left, x2: width - right, y1: height - bottom, y2: height - bottom}, chart);
  svg("line", {class: "axis", x1: left, x2: left, y1: top, y2: height - bottom}, chart);
  svg("text", {x: (left + width - right) / 2, y: height - 4, "text-anchor": "middle"}, chart).textContent = "epoch";
  losses.forEach((name, index) => {
    const color = CHART_COLORS[index % CHART_COLORS.length];
    const dashed = name.startsWith("val_") ? {"stroke-dasharray": "5 3"} : {};
    const points = rows.filter(r => r[name] !== null && isFinite(r[name])).map(r => `${px(r.epoch)},${py(r[name])}`);
    svg("polyline", {class: "line", stroke: color, points: points.join(" "), ...dashed}, chart);
    if (points.length === 1) {
      const [cx, cy] = points[0].split(",");
      svg("circle", {cx, cy, r: 3, fill: color}, chart);
    }
    const y = top + 14 + index * 16;
    svg("line", {x1: width - right + 10, x2: width - right + 28, y1: y - 4, y2: y - 4, stroke: color, "stroke-width": 2, ...dashed}, chart);
    svg("text", {x: width - right + 32, y}, chart).textContent = name;
  });
  return true;
}

function pollMetrics(panel) {
  const chart = document.getElementById("loss-chart");
  const note = document.getElementById("chart-note");
  const sample = document.getElementById("latest-sample");
  const sampleName = document.getElementById("sample-name");
  async function tick() {
    let state;
    try {
      state = await (await fetch(panel.dataset.metricsUrl, {cache: "no-store"})).json();
    } catch (error) {
      setTimeout(tick, 4000);
      return;
    }
    if (drawLossChart(chart, state.rows, state.losses)) {
      const last = state.rows[state.rows.length - 1];
      note.textContent = `epoch ${last.epoch}, step ${last.step}` + (last.images_per_sec ? `, ${last.images_per_sec} img/s` : "");
    }
    if (state.sample && sample.getAttribute("src") !== state.sample) {
      sample.src = state.sample;
      sample.hidden = false;
      sampleName.textContent = state.sample_name;
    }
    if (state.status === "running") setTimeout(tick, 2000);
  }
  tick();
}

// The GAN inference form holds every task's fields: show only the chosen task's.
function followTask(fields) {
  const byTask = JSON.parse(fields.dataset.taskFields);
  const known = new Set(Object.values(byTask).flat());
  const select = fields.querySelector("select[name=task]");
  function update() {
    const wanted = new Set(byTask[select.value] || known);
    for (const group of fields.querySelectorAll(".form-group")) {
      const input = group.querySelector("[name]");
      if (input && known.has(input.name)) group.hidden = !wanted.has(input.name);
    }
  }
  select.addEventListener("change", update);
  update();
}

document.addEventListener("DOMContentLoaded", () => {
  const fields = document.getElementById("inference-fields");
  if (fields) followTask(fields);
  const status = document.getElementById("job-status");
  if (status) pollStatus(status);
  const training = document.getElementById("training");
  if (training) pollMetrics(training);
});
