// The govtrack dashboard: totals, a chart of events by type, top users and workbooks, recent sessions,
// a latest-events feed, an events explorer with paging and a cell-history view, all from the public API.
// Every value from the API reaches the page through textContent or setAttribute, never as HTML:
// cell values, formulas and names come from untrusted add-ins.

import { ApiError, AuthError, forgetKey, getJson, storeKey, storedKey } from "./api.js";
import { startTail } from "./tail.js";

const PALETTE = ["#1d4ed8", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4d7c0f", "#64748b"];
const MAX_SERIES = 8; // more event types than this: the largest 7 and "other"
const WINDOWS = {
  hour: { ms: 3_600_000, span: 7 * 86_400_000, text: "per hour" },
  day: { ms: 86_400_000, span: 90 * 86_400_000, text: "per day" },
};
const ACTIVE_MS = 10 * 60_000; // a session whose last event is this recent is shown as active
const SHOWN_CHARS = 60;
const numbers = new Intl.NumberFormat("en-US");

const $ = (id) => document.getElementById(id);
const state = { stats: null, chart: null, stopTail: null, cursors: [null], page: 0, filters: {} };

// ---------------------------------------------------------------- rendering helpers (text only)

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (name === "text") node.textContent = String(value);
    else if (name === "className") node.className = value;
    else if (name === "onclick") node.addEventListener("click", value);
    else node.setAttribute(name, String(value));
  }
  node.append(...children); // strings become text nodes
  return node;
}

function fillBody(table, rows) {
  table.tBodies[0].replaceChildren(...rows);
}

function emptyRow(columns, text) {
  return el("tr", { className: "empty-row" }, [el("td", { colspan: columns, text })]);
}

function fmtInt(value) {
  return numbers.format(value);
}

function parseTs(text) {
  // The API sends microseconds; Date wants at most milliseconds.
  return Date.parse(text.length > 24 ? `${text.slice(0, 23)}Z` : text);
}

function fmtTime(text) {
  return text ? text.slice(0, 19).replace("T", " ") : "–";
}

function isoOf(ms) {
  return new Date(ms).toISOString();
}

function baseName(path) {
  if (!path) return "";
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1] || path;
}

/** A cell showing a possibly long, possibly null value; the whole value in the tooltip. */
function valueCell(value) {
  if (value === null || value === undefined) return el("td", { className: "null", title: "null", text: "null" });
  const text = String(value);
  if (text === "") return el("td", { className: "null", title: "empty text", text: "(empty)" });
  const shown = text.length > SHOWN_CHARS ? `${text.slice(0, SHOWN_CHARS)}…` : text;
  return el("td", { className: "value", title: text.slice(0, 2000), "data-value": text, text: shown });
}

function linkButton(text, title, onclick, testid) {
  return el("button", { type: "button", className: "link", title, onclick, "data-testid": testid, text });
}

// ---------------------------------------------------------------- status, errors, key

function setStatus(text) {
  $("status").textContent = text;
}

function showError(error) {
  const banner = $("error-banner");
  if (!error) {
    banner.hidden = true;
    banner.textContent = "";
    return;
  }
  banner.textContent =
    error instanceof ApiError
      ? `The API answered ${error.status}${error.code ? ` (${error.code})` : ""}: ${error.message}`
      : `The server did not answer: ${error.message}`;
  banner.hidden = false;
}

function showAuth(error) {
  stopTail();
  const hadKey = Boolean(storedKey());
  let text = "This server needs an API key with the read scope to show its data. Enter one below.";
  if (error.status === 403) text = `The key was accepted but may not read: ${error.message}. Enter a key with the read scope.`;
  else if (hadKey) text = `The key was not accepted: ${error.message}. Enter another key.`;
  $("auth-message").textContent = text;
  $("auth-panel").hidden = false;
  document.body.classList.add("needs-key");
  setStatus("API key required");
  $("api-key-input").focus();
}

function hideAuth() {
  $("auth-panel").hidden = true;
  document.body.classList.remove("needs-key");
  $("forget-key").hidden = !storedKey();
}

/** Route a failed call: a key problem opens the key form, anything else shows in `target` or the banner. */
function handle(error, target) {
  if (error instanceof AuthError) {
    showAuth(error);
  } else if (target) {
    target.textContent = error.message;
    target.classList.add("error");
  } else {
    showError(error);
  }
}

// ---------------------------------------------------------------- overview: totals, top lists, chart, sessions

function renderTotals(stats) {
  $("total-events").textContent = fmtInt(stats.total_events);
  $("unique-users").textContent = fmtInt(stats.unique_users);
  $("unique-workbooks").textContent = fmtInt(stats.unique_workbooks);
  $("unique-sessions").textContent = fmtInt(stats.unique_sessions);
  $("first-event").textContent = fmtTime(stats.first_event_at);
  $("last-event").textContent = fmtTime(stats.last_event_at);
}

function renderTop(table, rows, key, onPick) {
  const body = rows.map((row) =>
    el("tr", { "data-name": row[key] ?? "", "data-count": row.count }, [
      el("td", { className: "name" }, [linkButton(row[key] ?? "(none)", `Show the events of ${row[key]}`, () => onPick(row[key]), "pick")]),
      el("td", { className: "num", text: fmtInt(row.count) }),
    ]),
  );
  fillBody(table, body.length ? body : [emptyRow(2, "No events yet")]);
}

function renderTypeOptions(stats) {
  const select = $("filter-event-type");
  const current = select.value;
  const options = stats.by_event_type.map((row) => el("option", { value: row.event_type, text: row.event_type }));
  select.replaceChildren(el("option", { value: "", text: "any" }), ...options);
  select.value = current;
}

function renderSessions(sessions) {
  const now = Date.now();
  const rows = sessions.map((s) => {
    const active = s.end_time && now - parseTs(s.end_time) < ACTIVE_MS;
    const minutes = s.duration_s === null ? "–" : (s.duration_s / 60).toFixed(1);
    const books = s.workbooks.map(baseName).join(", ");
    return el("tr", { "data-session-id": s.session_id, className: active ? "active" : "" }, [
      el("td", {}, [
        linkButton(s.user_name, `Show the events of session ${s.session_id}`, () => searchFor({ session_id: s.session_id }), "session"),
        active ? el("span", { className: "badge", text: "active" }) : "",
      ]),
      el("td", { className: "time", text: fmtTime(s.start_time) }),
      el("td", { className: "num", text: minutes }),
      el("td", { className: "num", text: fmtInt(s.event_count) }),
      el("td", { className: "books", title: s.workbooks.join("\n"), text: books }),
    ]);
  });
  fillBody($("sessions-table"), rows.length ? rows : [emptyRow(5, "No sessions yet")]);
}

/** The chart's window: the data's last `span`, whole buckets, ending after the last event's bucket. */
function chartWindow(bucket, stats) {
  const w = WINDOWS[bucket];
  const end = Math.floor(parseTs(stats.last_event_at) / w.ms) * w.ms + w.ms;
  const start = Math.max(Math.floor(parseTs(stats.first_event_at) / w.ms) * w.ms, end - w.span);
  return { from: isoOf(start), to: isoOf(end) };
}

/** Pivot the API's long series into uPlot's columns: x (seconds) and one array per drawn group. */
function pivot(series) {
  const xs = [...new Set(series.map((p) => p.ts))].sort();
  const index = new Map(xs.map((ts, i) => [ts, i]));
  const totals = new Map();
  const columns = new Map();
  for (const point of series) {
    const group = point.group ?? "(none)";
    if (!columns.has(group)) columns.set(group, new Array(xs.length).fill(0));
    columns.get(group)[index.get(point.ts)] += point.count;
    totals.set(group, (totals.get(group) ?? 0) + point.count);
  }
  const ranked = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a) || (a < b ? -1 : 1));
  let drawn = ranked;
  if (ranked.length > MAX_SERIES) {
    drawn = ranked.slice(0, MAX_SERIES - 1);
    const other = new Array(xs.length).fill(0);
    for (const group of ranked.slice(MAX_SERIES - 1)) columns.get(group).forEach((n, i) => (other[i] += n));
    columns.set("other", other);
    drawn.push("other");
  }
  return { xs: xs.map((ts) => parseTs(ts) / 1000), ranked, totals, drawn, columns };
}

function renderChart(bucket, window, series) {
  const box = $("timeseries-chart");
  const { xs, ranked, totals, drawn, columns } = pivot(series);
  const total = [...totals.values()].reduce((a, b) => a + b, 0);
  Object.assign(box.dataset, {
    bucket,
    points: xs.length,
    groups: ranked.length,
    seriesCount: drawn.length,
    total,
    series: JSON.stringify(Object.fromEntries(ranked.map((g) => [g, totals.get(g)]))),
  });
  $("chart-caption").textContent = `${fmtInt(total)} events ${WINDOWS[bucket].text}, ${fmtTime(window.from)} to ${fmtTime(window.to)} UTC`;
  const rows = ranked.map((g) => el("tr", { "data-group": g, "data-count": totals.get(g) }, [el("td", { text: g }), el("td", { className: "num", text: fmtInt(totals.get(g)) })]));
  fillBody($("timeseries-table"), rows.length ? rows : [emptyRow(2, "No events in the window")]);
  if (state.chart) state.chart.destroy();
  state.chart = null;
  box.replaceChildren();
  if (!xs.length || typeof uPlot === "undefined") return;
  const opts = {
    width: Math.max(box.clientWidth, 300),
    height: 280,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    scales: { x: { time: true } },
    series: [{ label: "UTC" }, ...drawn.map((g, i) => ({ label: g, stroke: PALETTE[i % PALETTE.length], width: 1.5, points: { show: xs.length < 60 } }))],
    axes: [{}, { label: "events", size: 60 }],
  };
  state.chart = new uPlot(opts, [xs, ...drawn.map((g) => columns.get(g))], box);
}

async function loadChart() {
  const stats = state.stats;
  const bucket = $("bucket-select").value;
  $("timeseries-chart").dataset.state = "loading";
  if (!stats || !stats.last_event_at) {
    renderChart(bucket, { from: "", to: "" }, []);
    $("chart-caption").textContent = "No events yet.";
    $("timeseries-chart").dataset.state = "ready";
    return;
  }
  const window = chartWindow(bucket, stats);
  const { body } = await getJson("api/stats/timeseries", { bucket, group_by: "event_type", ...window });
  renderChart(bucket, window, body.series);
  $("timeseries-chart").dataset.state = "ready";
}

async function loadOverview() {
  const [{ body: stats }, { body: sessions }] = await Promise.all([getJson("api/stats"), getJson("api/sessions", { limit: 10 })]);
  state.stats = stats;
  renderTotals(stats);
  renderTop($("top-users-table"), stats.top_users, "user_name", (name) => searchFor({ user_name: name }));
  renderTop($("top-workbooks-table"), stats.top_workbooks, "workbook_name", (name) => searchFor({ workbook_name: name }));
  renderTypeOptions(stats);
  renderSessions(sessions);
  await loadChart();
}

// ---------------------------------------------------------------- latest events (live from the event stream, see tail.js)

function renderTail(events, { mode } = {}) {
  const table = $("tail-table");
  table.dataset.mode = mode ?? "";
  const seen = new Set([...table.tBodies[0].rows].map((r) => r.dataset.eventId));
  const first = seen.size === 0;
  const rows = events.map((e) =>
    el("tr", { "data-event-id": e.event_id, className: !first && !seen.has(e.event_id) ? "fresh" : "" }, [
      el("td", { className: "time", text: fmtTime(e.timestamp) }),
      el("td", { text: e.event_type }),
      el("td", { text: e.user_name }),
      el("td", { title: e.workbook_name ?? "", text: [baseName(e.workbook_name), e.sheet_name, e.cell_address].filter(Boolean).join(" › ") }),
      valueCell(e.new_value),
    ]),
  );
  fillBody(table, rows.length ? rows : [emptyRow(5, "No events yet")]);
  const status = $("tail-status");
  status.classList.remove("error");
  status.textContent = `${mode === "live" ? "live, " : ""}updated ${new Date().toISOString().slice(11, 19)} UTC`;
}

function stopTail() {
  if (state.stopTail) state.stopTail();
  state.stopTail = null;
}

function restartTail() {
  stopTail();
  state.stopTail = startTail({ onEvents: renderTail, onError: (error) => handle(error, $("tail-status")) });
}

// ---------------------------------------------------------------- events explorer

function formFilters() {
  const filters = {};
  for (const [name, value] of new FormData($("events-form"))) {
    const text = String(value).trim();
    if (text) filters[name] = text;
  }
  return filters;
}

function eventRow(e) {
  const cell = e.workbook_name && e.sheet_name && e.cell_address;
  const where = { workbook_name: e.workbook_name, sheet_name: e.sheet_name, cell_address: e.cell_address };
  return el("tr", { "data-event-id": e.event_id }, [
    el("td", { className: "time", title: e.timestamp, text: fmtTime(e.timestamp) }),
    el("td", { text: e.event_type }),
    el("td", { text: e.user_name }),
    el("td", { title: e.workbook_name ?? "", text: baseName(e.workbook_name) }),
    el("td", { text: e.sheet_name ?? "" }),
    el("td", {}, [cell ? linkButton(e.cell_address, "Show this cell's history", () => showCell(where), "cell-link") : e.cell_address ?? ""]),
    valueCell(e.old_value),
    valueCell(e.new_value),
    valueCell(e.formula),
  ]);
}

async function loadEvents() {
  const status = $("events-status");
  const table = $("events-table");
  status.classList.remove("error");
  status.textContent = "loading…";
  table.dataset.state = "loading";
  try {
    const params = { ...state.filters, cursor: state.cursors[state.page] };
    const { body } = await getJson("api/events", params);
    fillBody($("events-table"), body.events.length ? body.events.map(eventRow) : [emptyRow(9, "No event matches these filters")]);
    state.cursors[state.page + 1] = body.next_cursor;
    $("events-next").disabled = !body.next_cursor;
    $("events-prev").disabled = state.page === 0;
    $("events-page").textContent = `page ${state.page + 1}`;
    status.textContent = `${body.events.length} events on this page${body.next_cursor ? ", more on the next" : ""}`;
    table.dataset.state = "ready";
  } catch (error) {
    table.dataset.state = "error";
    handle(error, status);
  }
}

function search() {
  state.filters = formFilters();
  state.cursors = [null];
  state.page = 0;
  return loadEvents();
}

/** Set some explorer filters (others cleared), search, and bring the explorer into view. */
function searchFor(filters) {
  const form = $("events-form");
  form.reset();
  for (const [name, value] of Object.entries(filters)) if (form.elements[name]) form.elements[name].value = value ?? "";
  $("explorer").scrollIntoView({ behavior: "smooth", block: "start" });
  return search();
}

// ---------------------------------------------------------------- cell history

async function showCell(where) {
  const form = $("cell-form");
  for (const [name, value] of Object.entries(where)) form.elements[name].value = value;
  $("cell-history").scrollIntoView({ behavior: "smooth", block: "start" });
  await loadCell(where);
}

async function loadCell(where) {
  const status = $("cell-status");
  const table = $("cell-history-table");
  status.classList.remove("error");
  status.textContent = "loading…";
  table.dataset.state = "loading";
  try {
    const { body } = await getJson("api/cells/history", where);
    const rows = body.changes.map((c) =>
      el("tr", { "data-event-id": c.event_id }, [
        el("td", { className: "time", title: c.timestamp, text: fmtTime(c.timestamp) }),
        el("td", { text: c.user_name }),
        el("td", { text: c.event_type }),
        valueCell(c.old_value),
        valueCell(c.new_value),
        valueCell(c.formula),
        el("td", { text: c.machine_name ?? "" }),
      ]),
    );
    fillBody($("cell-history-table"), rows.length ? rows : [emptyRow(7, "No recorded change of this cell")]);
    const label = `${baseName(body.workbook_name)} › ${body.sheet_name} › ${body.cell_address}`;
    const count = body.changes.length === 1 ? "1 change" : `${body.changes.length} changes`;
    status.textContent = `${count} of ${label}, newest first`;
    table.dataset.state = "ready";
  } catch (error) {
    table.dataset.state = "error";
    handle(error, status);
  }
}

// ---------------------------------------------------------------- wiring

/** Load everything; `body[data-ready]` marks a completed load (the browser tests wait for it). */
async function loadAll() {
  delete document.body.dataset.ready;
  showError(null);
  hideAuth();
  setStatus("loading…");
  try {
    await loadOverview();
  } catch (error) {
    handle(error);
    if (error instanceof AuthError) return;
  }
  await search();
  if (!$("auth-panel").hidden) return;
  restartTail();
  setStatus(`updated ${new Date().toISOString().slice(11, 19)} UTC`);
  document.body.dataset.ready = "true";
}

function wire() {
  $("auth-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("api-key-input");
    const key = input.value.trim();
    if (!key) return;
    storeKey(key);
    input.value = "";
    loadAll();
  });
  $("forget-key").addEventListener("click", () => {
    forgetKey();
    stopTail();
    window.location.reload();
  });
  $("refresh").addEventListener("click", () => loadAll());
  $("bucket-select").addEventListener("change", () => loadChart().catch((error) => handle(error)));
  $("events-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search();
  });
  $("events-reset").addEventListener("click", () => setTimeout(search, 0)); // after the form has reset
  $("events-next").addEventListener("click", () => {
    state.page += 1;
    loadEvents();
  });
  $("events-prev").addEventListener("click", () => {
    state.page = Math.max(0, state.page - 1);
    loadEvents();
  });
  $("cell-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const where = Object.fromEntries([...new FormData($("cell-form"))].map(([k, v]) => [k, String(v).trim()]));
    loadCell(where);
  });
  window.addEventListener("resize", () => {
    const box = $("timeseries-chart");
    if (state.chart) state.chart.setSize({ width: Math.max(box.clientWidth, 300), height: 280 });
  });
}

wire();
loadAll();
