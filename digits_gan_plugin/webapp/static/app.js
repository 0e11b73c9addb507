// Live parts of the pages: job status/progress/log polling, the training charts
// (uPlot, vendored in static/vendor: the UI works offline), the snapshot scrubber,
// the inference form following its task, the network fit list, zoom, confirmations.
"use strict";

function pollStatus(panel) {
  const url = panel.dataset.statusUrl;
  const bar = document.getElementById("progress-bar");
  const text = document.getElementById("progress-text");
  const log = document.getElementById("job-log");
  const error = document.getElementById("job-error");
  let wasRunning = panel.dataset.running === "true";
  async function tick() {
    let state;
    try {
      state = await (await fetch(url, {cache: "no-store"})).json();
    } catch (failure) {
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
    if (log) {
      const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.textContent = state.log;
      if (atBottom) log.scrollTop = log.scrollHeight;
    }
    if (error) {
      error.textContent = state.error || "";
      error.hidden = !state.error;
    }
    if (wasRunning && state.ended) {
      window.location.reload();  // the finished page shows the result
      return;
    }
    wasRunning = !state.ended;
    if (!state.ended) setTimeout(tick, 1000);
  }
  tick();
}

// ------------------------------------------------------------------ charts
function tooltipPlugin() {
  let tip;
  return {
    hooks: {
      init: u => {
        tip = document.createElement("div");
        tip.className = "chart-tooltip";
        tip.hidden = true;
        u.over.appendChild(tip);
        u.over.addEventListener("mouseleave", () => { tip.hidden = true; });
      },
      setCursor: u => {
        const index = u.cursor.idx;
        if (index == null) { tip.hidden = true; return; }
        const lines = [`step ${u.data[0][index]}`];
        u.series.forEach((series, k) => {
          const value = k ? u.data[k][index] : null;
          if (k && series.show && value != null) lines.push(`${series.label}: ${+value.toPrecision(4)}`);
        });
        if (lines.length === 1) { tip.hidden = true; return; }
        tip.textContent = lines.join("\n");
        tip.hidden = false;
        const left = u.cursor.left, top = u.cursor.top;
        tip.style.left = Math.min(left + 12, u.over.clientWidth - tip.offsetWidth) + "px";
        tip.style.top = Math.max(0, top - tip.offsetHeight - 8) + "px";
      },
    },
  };
}

const STEP_INCREMENTS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000,
  100000, 200000, 500000, 1000000];  // steps are whole numbers

// y tick labels with as many decimals as the tick spacing needs (0.0002, 1.885, 60)
function tickLabels(u, ticks, axis, space, increment) {
  const decimals = Math.min(8, Math.max(0, -Math.floor(Math.log10(increment || 1))));
  return ticks.map(v => v.toFixed(decimals));
}

function chartOptions(panel, width) {
  return {
    title: panel.title, width, height: 220,
    scales: {x: {time: false}},
    axes: [{label: "step", incrs: STEP_INCREMENTS}, {size: 64, values: tickLabels}],
    cursor: {drag: {x: true, y: false}},  // drag to zoom, double-click to reset
    series: [{label: "step"}, ...panel.series.map(s => ({
      label: s.label, stroke: s.color, width: 2, spanGaps: true, dash: s.dash ? [6, 4] : undefined,
      points: {show: s.dash || s.points ? true : undefined, size: 5},
    }))],
    plugins: [tooltipPlugin()],
  };
}

function updateCharts(holder, charts, panels) {
  const columns = holder.clientWidth > 900 ? 2 : 1;
  const width = Math.max(300, Math.floor(holder.clientWidth / columns) - 16);
  for (const panel of panels) {
    const key = panel.series.map(s => s.label).join("|");
    let entry = charts.get(panel.id);
    if (entry && entry.key !== key) {
      entry.plot.destroy();
      entry.node.remove();
      entry = null;
    }
    if (!entry) {
      const node = document.createElement("div");
      node.className = "chart-panel";
      node.id = "chart-" + panel.id;
      holder.appendChild(node);
      entry = {key, node, plot: new uPlot(chartOptions(panel, width), panel.data, node)};
      charts.set(panel.id, entry);
    } else {
      entry.plot.setData(panel.data);
    }
  }
}

function pollMetrics(panel) {
  const holder = document.getElementById("charts");
  const empty = document.getElementById("chart-empty");
  const note = document.getElementById("chart-note");
  const snapshots = document.getElementById("snapshots");
  const charts = new Map();
  async function tick() {
    let state;
    try {
      state = await (await fetch(panel.dataset.metricsUrl, {cache: "no-store"})).json();
    } catch (failure) {
      setTimeout(tick, 4000);
      return;
    }
    if (state.panels.length && typeof uPlot !== "undefined") {
      empty.hidden = true;
      updateCharts(holder, charts, state.panels);
      const steps = state.panels[0].data[0];
      note.textContent = `up to step ${steps[steps.length - 1]}` +
        (state.epochs.length ? `, epoch ${state.epochs[0].epoch} done` : "");
    }
    if (state.sample_name && snapshots) snapshots.addSnapshot(state.sample_name);
    if (state.status === "running") setTimeout(tick, 2000);
  }
  tick();
}

// ------------------------------------------------------------------ snapshots
function snapshotBrowser(panel) {
  const names = JSON.parse(panel.dataset.names);
  const image = document.getElementById("latest-sample");
  const label = document.getElementById("sample-name");
  const range = document.getElementById("snapshot-range");
  function show(index) {
    image.src = panel.dataset.base + names[index];
    image.hidden = false;
    image.parentElement.href = image.src;
    label.textContent = names[index];
    const empty = document.getElementById("no-samples");
    if (empty) empty.hidden = true;
  }
  range.addEventListener("input", () => show(+range.value));
  panel.addSnapshot = name => {
    if (names.includes(name)) return;
    const following = +range.value === names.length - 1 || !names.length;
    names.push(name);
    range.max = names.length - 1;
    range.parentElement.hidden = names.length < 2;
    if (following) {
      range.value = names.length - 1;
      show(names.length - 1);
    }
  };
}

// ------------------------------------------------------------------ inference form
// The GAN inference form holds every task's fields: show only the chosen task's, and
// preselect the view that shows that task best.
function followTask(fields) {
  const byTask = JSON.parse(fields.dataset.taskFields);
  const viewFor = JSON.parse(fields.dataset.viewForTask);
  const select = fields.querySelector("select[name=task]");
  const viewTask = document.querySelector("#view-fields select[name='view-task']");
  const images = document.querySelector("[data-field=images]");
  // the run fixes the inference dataset of the view
  for (const input of document.querySelectorAll("#view-fields [name='view-inference_dataset']")) {
    input.closest(".form-group").hidden = true;
  }
  function update(changed) {
    const wanted = new Set(byTask[select.value] || []);
    for (const group of fields.querySelectorAll(".form-group")) {
      const input = group.querySelector("[name]");
      if (input) group.hidden = !wanted.has(input.name);
    }
    if (images) images.hidden = !wanted.has("images");
    if (changed && viewTask) {
      const view = viewFor[select.value] || viewTask.options[0].value;
      if ([...viewTask.options].some(option => option.value === view)) viewTask.value = view;
    }
  }
  select.addEventListener("change", () => update(true));
  update(false);
}

// ------------------------------------------------------------------ network list
function followFitChecks(table) {
  if (table.dataset.checking !== "true" || !table.dataset.fitUrl) return;
  async function tick() {
    let state;
    try {
      state = await (await fetch(table.dataset.fitUrl, {cache: "no-store"})).json();
    } catch (failure) {
      setTimeout(tick, 3000);
      return;
    }
    for (const {name, result} of state.networks) {
      const row = table.querySelector(`tr[data-network="${CSS.escape(name)}"]`);
      if (!row || !result) continue;
      const cell = row.querySelector("[data-fit]");
      cell.replaceChildren(Object.assign(document.createElement("span"), {
        className: result.fits ? "text-success" : "text-danger",
        textContent: result.fits ? "yes" : "no: " + result.reason,
      }));
      const radio = row.querySelector("input[type=radio]");
      radio.disabled = !result.fits;
      if (!result.fits) { row.classList.add("misfit"); radio.checked = false; }
    }
    const custom = table.querySelector('tr[data-network="custom"]');
    for (const {name} of state.networks) {  // best fit first, as the server ranks them
      const row = table.querySelector(`tr[data-network="${CSS.escape(name)}"]`);
      if (row) custom.before(row);
    }
    if (!table.querySelector("input[type=radio]:checked")) {
      const best = state.networks.find(n => n.result && n.result.fits);
      if (best) table.querySelector(`#network-${CSS.escape(best.name)}`).checked = true;
    }
    if (state.pending) setTimeout(tick, 1500);
  }
  tick();
}

// ------------------------------------------------------------------ small things
function zoom(event) {
  // pictures marked data-zoom, and every picture of a rendered result
  const link = event.target.closest("[data-zoom]") ||
    (event.target.matches(".result-body img") && !event.target.closest("a") ? event.target : null);
  if (!link) return;
  event.preventDefault();
  const overlay = document.getElementById("zoom");
  const source = link.tagName === "IMG" ? link : link.querySelector("img") || link;
  overlay.querySelector("img").src = source.currentSrc || source.src || link.href;
  overlay.hidden = false;
}

function once(form) {
  // one click, one request: a second click while the page loads would start a second job
  form.addEventListener("submit", () => {
    for (const button of form.querySelectorAll("button")) button.disabled = true;
  });
}

function reloadForDataset(select) {
  // The page reloads for the chosen dataset (its fitting networks): what was typed travels
  // in the address, except the form token and pasted code.
  const params = new URLSearchParams();
  for (const [name, value] of new FormData(select.form)) {
    if (typeof value === "string" && !["csrf_token", "custom_network", "dataset"].includes(name)) {
      params.append(name, value);
    }
  }
  params.set("dataset", select.value);
  params.set("typed", "1");
  window.location = "?" + params.toString();
}

function confirmDelete(form) {
  form.addEventListener("submit", event => {
    const typed = window.prompt(`Delete "${form.dataset.name}" and its files? Type its name to confirm.`);
    if (typed === null || typed.trim() !== form.dataset.name) {
      event.preventDefault();
      if (typed !== null) window.alert(`Not deleted: "${typed.trim()}" is not the name "${form.dataset.name}".`);
      return;
    }
    form.querySelector("[name=confirm]").value = typed.trim();
  });
}

// A job shown on another job's page (an evaluation on the model page): reload when it ends.
function reloadWhenEnded(node) {
  async function tick() {
    try {
      const state = await (await fetch(node.dataset.reloadWhenEnded, {cache: "no-store"})).json();
      if (state.ended) { window.location.reload(); return; }
    } catch (failure) { /* the server restarts: try again */ }
    setTimeout(tick, 1500);
  }
  tick();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-reload-when-ended]").forEach(reloadWhenEnded);
  const fields = document.getElementById("inference-fields");
  if (fields) followTask(fields);
  const status = document.getElementById("job-status");
  if (status) pollStatus(status);
  const snapshots = document.getElementById("snapshots");
  if (snapshots) snapshotBrowser(snapshots);
  const training = document.getElementById("training");
  if (training) pollMetrics(training);
  const networks = document.getElementById("network-list");
  if (networks) followFitChecks(networks);
  const deleteForm = document.getElementById("delete-form");
  if (deleteForm) confirmDelete(deleteForm);
  document.querySelectorAll("form.once").forEach(once);
  document.addEventListener("click", zoom);
  const overlay = document.getElementById("zoom");
  overlay.addEventListener("click", () => { overlay.hidden = true; });
});
