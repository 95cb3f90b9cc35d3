// Duty-room live page: open tickets and devices, kept current over server-sent events.
// Plain ES2020, no dependencies, nothing from the internet. Data goes in via textContent only.
"use strict";

const I18N = {
  zh: {
    station: "应急管理站", connecting: "连接中", live: "实时", reconnecting: "重连中",
    openTickets: "未关闭工单", devices: "设备", level: "级别", title: "标题", device: "设备",
    metric: "指标", value: "数值", state: "状态", opened: "发生时间", acknowledged: "叫应确认",
    point: "监测点", online: "在线状态", lastSeen: "最后上报", latest: "最新数据",
    ack: "确认收到", ackBy: "{by} 于 {at} 确认", askName: "请输入您的姓名：",
    askNote: "备注（可不填）：", ackFailed: "确认失败：{msg}", loadFailed: "加载失败：{msg}",
    noTickets: "暂无未关闭工单", noDevices: "暂无设备", isOnline: "在线", isOffline: "离线",
    blue: "蓝", yellow: "黄", orange: "橙", red: "红", discovered: "发现", confirmed: "确认",
    controlled: "管控", rectified: "整改", closed: "核销", dismissed: "撤销",
    hazard: "隐患", device_fault: "设备故障", warning: "预警", issued: "预警中", lifted: "已解除",
    overdue: "超期", suggestLift: "建议解除", suggestLower: "建议降级",
    brokerDown: "消息服务器断开，设备数据暂未接收（broker down）",
  },
  en: {
    station: "Emergency station", connecting: "Connecting", live: "Live",
    reconnecting: "Reconnecting", openTickets: "Open tickets", devices: "Devices",
    level: "Level", title: "Title", device: "Device", metric: "Metric", value: "Value",
    state: "State", opened: "Opened", acknowledged: "Acknowledged", point: "Point",
    online: "Status", lastSeen: "Last seen", latest: "Latest values", ack: "Acknowledge",
    ackBy: "{by} at {at}", askName: "Your name:", askNote: "Note (optional):",
    ackFailed: "Acknowledge failed: {msg}", loadFailed: "Loading failed: {msg}",
    noTickets: "No open tickets", noDevices: "No devices", isOnline: "Online",
    isOffline: "Offline", blue: "Blue", yellow: "Yellow", orange: "Orange", red: "Red",
    discovered: "Discovered", confirmed: "Confirmed", controlled: "Controlled",
    rectified: "Rectified", closed: "Closed", dismissed: "Dismissed", hazard: "Hazard",
    device_fault: "Device fault", warning: "Warning", issued: "In force", lifted: "Lifted",
    overdue: "Overdue", suggestLift: "Lift suggested", suggestLower: "Lower suggested",
    brokerDown: "Broker down: device data is not arriving",
  },
};

const LEVEL_RANK = { blue: 1, yellow: 2, orange: 3, red: 4 };
const GONE_STATES = new Set(["closed", "dismissed", "lifted"]);
const DEFAULT_TZ = "Asia/Shanghai";

const state = {
  lang: "zh", station: null, tz: null, fmt: null,
  tickets: new Map(), // id -> ticket object as the API gives it
  devices: new Map(), // id -> device object as the API gives it
  flash: new Set(),   // ticket ids to flash at the next render
  loaded: false,      // a first snapshot arrived (nothing flashes before)
  loading: false,     // a snapshot is in flight: events are buffered meanwhile
  again: false,       // a snapshot was asked for while one was in flight
  buffer: [], es: null, reloadTimer: null, noticeTimer: null,
};

const $ = (sel, root = document) => root.querySelector(sel);
const byData = (sel, key, val, root = document) =>
  [...root.querySelectorAll(sel)].find((n) => n.dataset[key] === String(val));

// localStorage may be unavailable (private mode, policy): then nothing is remembered.
const load = (key) => { try { return localStorage.getItem(key); } catch (_) { return null; } };
const save = (key, v) => { try { localStorage.setItem(key, v); } catch (_) { /* ignore */ } };

function t(key, vars = {}) {
  const s = I18N[state.lang][key] ?? I18N.zh[key] ?? String(key);
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) node.setAttribute(k, String(v));
  if (text != null) node.textContent = String(text);
  return node;
}

// ---- time and values ------------------------------------------------------

function setTimezone(tz) {
  const opts = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
    minute: "2-digit", second: "2-digit", hourCycle: "h23" };
  const make = (zone) => new Intl.DateTimeFormat("en-GB", { ...opts, timeZone: zone });
  state.tz = tz; // as asked for; an unknown zone falls back to the default
  try { state.fmt = make(tz); } catch (_) { state.fmt = make(DEFAULT_TZ); }
}

function fmtTime(ms) {
  if (ms == null) return "—";
  const p = {};
  for (const part of state.fmt.formatToParts(new Date(ms))) p[part.type] = part.value;
  const hour = p.hour === "24" ? "00" : p.hour;
  return `${p.year}-${p.month}-${p.day} ${hour}:${p.minute}:${p.second}`;
}

const fmtValue = (v) =>
  v == null ? "—" : typeof v === "number" ? String(Math.round(v * 1000) / 1000) : String(v);

const tickClock = () => { $("#clock").textContent = fmtTime(Date.now()); };

// ---- messages, API, flashing ---------------------------------------------

function notify(msg) {
  const box = $("#notice");
  box.textContent = msg;
  box.hidden = false;
  clearTimeout(state.noticeTimer);
  state.noticeTimer = setTimeout(() => { box.hidden = true; }, 8000);
}

const detailText = (detail) => Array.isArray(detail) // pydantic 422: a list of {msg, loc}
  ? detail.map((d) => d?.msg ?? JSON.stringify(d)).join("; ")
  : typeof detail === "object" ? JSON.stringify(detail) : String(detail);

async function api(path, options = {}) {
  const resp = await fetch(path, { headers: { Accept: "application/json" }, ...options });
  let body = null;
  try { body = await resp.json(); } catch (_) { /* empty or not JSON */ }
  if (!resp.ok) {
    const msg = body?.detail !== undefined ? detailText(body.detail) : resp.statusText;
    throw Object.assign(new Error(`${resp.status} ${msg}`), { status: resp.status });
  }
  return body;
}

function flash(node) { // (re)start the highlight animation; animationend removes the class
  node.classList.remove("flash");
  void node.offsetWidth;
  node.classList.add("flash");
}

// ---- tickets --------------------------------------------------------------

function upsertTicket(tk, fromEvent) {
  const old = state.tickets.get(tk.id);
  if (old && (old.updated_at ?? 0) > (tk.updated_at ?? 0)) return; // stale
  if (GONE_STATES.has(tk.state)) { state.tickets.delete(tk.id); return; }
  const raised = old && (LEVEL_RANK[tk.level] ?? 0) > (LEVEL_RANK[old.level] ?? 0);
  if (state.loaded && fromEvent && (!old || raised)) state.flash.add(tk.id);
  state.tickets.set(tk.id, tk);
}

function ticketOrder(a, b) { // unacknowledged first, then level descending, then newest
  const ack = (a.acknowledged_at == null ? 0 : 1) - (b.acknowledged_at == null ? 0 : 1);
  const level = (LEVEL_RANK[b.level] ?? 0) - (LEVEL_RANK[a.level] ?? 0);
  return ack || level || (b.opened_at ?? 0) - (a.opened_at ?? 0);
}

function ticketRow(tk) {
  const acked = tk.acknowledged_at != null;
  const tr = el("tr", { "data-ticket-id": tk.id, "data-level": tk.level, "data-state": tk.state,
    "data-acknowledged": String(acked) });
  const level = el("td", { class: "col-level" });
  const badge = tk.level ?? "fault"; // device faults carry no warning colour
  level.append(el("span", { class: `badge level-${badge}` }, t(tk.level ?? "device_fault")));
  const title = el("td", { class: "col-title" });
  if (tk.kind && tk.kind !== "hazard") title.append(el("span", { class: "kind" }, t(tk.kind)), " ");
  title.append(document.createTextNode(tk.title ?? ""));
  if (tk.overdue) title.append(" ", el("span", { class: "kind overdue" }, t("overdue")));
  if (tk.suggestion === "lift" || tk.suggestion?.startsWith("lower:")) {
    title.append(" ", el("span", { class: "kind suggestion" },
      t(tk.suggestion === "lift" ? "suggestLift" : "suggestLower")));
  }
  const dev = state.devices.get(tk.device);
  const unit = dev?.metrics?.[tk.metric]?.unit;
  const value = tk.value == null ? "—" : fmtValue(tk.value) + (unit ? ` ${unit}` : "");
  const ack = el("td", { class: "col-ack" });
  if (acked) {
    ack.textContent = t("ackBy", { by: tk.acknowledged_by ?? "?", at: fmtTime(tk.acknowledged_at) });
  } else {
    ack.append(el("button", { type: "button", class: "ack-button", "data-ack": tk.id }, t("ack")));
  }
  tr.append(level, title,
    el("td", { class: "col-device", title: tk.device }, dev?.name ?? tk.device ?? "—"),
    el("td", { class: "col-metric" }, tk.metric ?? "—"),
    el("td", { class: "col-value num" }, value),
    el("td", { class: "col-state", "data-ticket-state": tk.state }, t(tk.state)),
    el("td", { class: "col-opened time" }, fmtTime(tk.opened_at)),
    ack);
  return tr;
}

function emptyRow(cols, key) {
  const tr = el("tr", { class: "empty" });
  tr.append(el("td", { colspan: cols }, t(key)));
  return tr;
}

function renderTickets() {
  const list = [...state.tickets.values()].sort(ticketOrder);
  const rows = list.map((tk) => {
    const tr = ticketRow(tk);
    if (state.flash.has(tk.id)) flash(tr);
    return tr;
  });
  state.flash.clear();
  $("#tickets tbody").replaceChildren(...(rows.length ? rows : [emptyRow(8, "noTickets")]));
  $("#ticket-count").textContent = `(${list.length})`;
}

async function acknowledge(id, button) {
  const name = window.prompt(t("askName"), load("duty.name") ?? "")?.trim();
  if (!name) return;
  save("duty.name", name);
  const note = window.prompt(t("askNote"), "");
  if (note === null) return; // cancelled
  const body = note.trim() ? { by: name, note: note.trim() } : { by: name };
  button.disabled = true;
  try {
    const tk = await api(`/api/tickets/${encodeURIComponent(id)}/ack`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    upsertTicket(tk, false);
    renderTickets();
  } catch (err) {
    notify(t("ackFailed", { msg: err.message }));
    button.disabled = false;
    if (err.status === 404 || err.status === 409) loadSnapshot(); // someone else was faster
  }
}

// ---- devices --------------------------------------------------------------

function metricNode(key, m) {
  const span = el("span", { class: "metric", "data-metric": key, title: fmtTime(m.ts) });
  span.append(el("span", { class: "m-name" }, key), " ",
    el("span", { class: "m-value num" }, fmtValue(m.value)));
  if (m.unit) span.append(" ", el("span", { class: "m-unit" }, m.unit));
  return span;
}

function deviceStatus(tr, dev) {
  tr.dataset.online = String(Boolean(dev.online));
  const cell = $(".col-online", tr);
  cell.textContent = dev.online ? t("isOnline") : t("isOffline");
  cell.className = `col-online ${dev.online ? "is-online" : "is-offline"}`;
  $(".col-last-seen", tr).textContent = fmtTime(dev.last_seen);
}

function deviceRow(dev) {
  const tr = el("tr", { "data-device-id": dev.id, "data-kind": dev.kind });
  const name = el("td", { class: "col-name" });
  name.append(el("div", { class: "dev-name" }, dev.name ?? dev.id),
    el("div", { class: "dev-id" }, dev.kind ? `${dev.id} · ${dev.kind}` : dev.id));
  const metrics = el("td", { class: "col-metrics" });
  for (const [key, m] of Object.entries(dev.metrics ?? {})) metrics.append(metricNode(key, m));
  tr.append(name, el("td", { class: "col-point" }, dev.point ?? "—"),
    el("td", { class: "col-online" }), el("td", { class: "col-last-seen time" }), metrics);
  deviceStatus(tr, dev);
  return tr;
}

function renderDevices() {
  const list = [...state.devices.values()].sort((a, b) => String(a.id).localeCompare(String(b.id)));
  const rows = list.map(deviceRow);
  $("#devices tbody").replaceChildren(...(rows.length ? rows : [emptyRow(5, "noDevices")]));
  $("#device-count").textContent = `(${list.length})`;
}

const deviceTr = (id) => byData("#devices tbody tr[data-device-id]", "deviceId", id);

function applyReadings(readings) {
  for (const r of readings) {
    const dev = state.devices.get(r.device);
    if (!dev) { reloadSoon(); continue; } // a device we have not heard of yet
    dev.metrics = dev.metrics ?? {};
    const m = dev.metrics[r.metric] ?? (dev.metrics[r.metric] = { unit: null, value: null, ts: null });
    if (m.ts != null && r.ts < m.ts) continue; // older than what we show
    const changed = m.value !== r.value;
    Object.assign(m, { value: r.value, ts: r.ts });
    if (dev.last_seen == null || r.ts > dev.last_seen) dev.last_seen = r.ts;
    const tr = deviceTr(dev.id);
    if (!tr) continue;
    let cell = byData("[data-metric]", "metric", r.metric, tr);
    if (cell) {
      $(".m-value", cell).textContent = fmtValue(m.value);
      cell.title = fmtTime(m.ts);
    } else {
      cell = $(".col-metrics", tr).appendChild(metricNode(r.metric, m));
    }
    $(".col-last-seen", tr).textContent = fmtTime(dev.last_seen);
    if (changed) flash(cell);
  }
}

function applyDevice(upd) {
  const dev = state.devices.get(upd.id);
  if (!dev) { reloadSoon(); return; }
  const wasOnline = dev.online;
  Object.assign(dev, upd);
  const tr = deviceTr(dev.id);
  if (tr) deviceStatus(tr, dev);
  if (tr && wasOnline !== dev.online) flash($(".col-online", tr));
}

// ---- loading and the event stream -----------------------------------------

async function loadHealth() {
  try {
    const h = await api("/api/health");
    state.station = h.station ?? null;
    applyHeader();
    showBroker(h.broker?.connected !== false);
    const tz = h.station?.timezone || DEFAULT_TZ;
    if (tz !== state.tz) { setTimezone(tz); tickClock(); renderDevices(); renderTickets(); }
  } catch (err) {
    notify(t("loadFailed", { msg: err.message }));
  }
}

async function loadSnapshot() {
  if (state.loading) { state.again = true; return; }
  Object.assign(state, { loading: true, again: false });
  try {
    const [devices, tickets] = await Promise.all([api("/api/devices"), api("/api/tickets?open=true")]);
    state.devices = new Map(devices.map((d) => [d.id, d]));
    const fresh = new Map();
    for (const tk of tickets.filter((x) => !GONE_STATES.has(x.state))) {
      if (state.loaded && !state.tickets.has(tk.id)) state.flash.add(tk.id);
      fresh.set(tk.id, tk);
    }
    Object.assign(state, { tickets: fresh, loaded: true });
  } catch (err) {
    notify(t("loadFailed", { msg: err.message }));
  }
  state.loading = false;
  renderDevices();
  renderTickets();
  for (const [type, data] of state.buffer.splice(0)) handleEvent(type, data);
  if (state.again) loadSnapshot(); // asked again while in flight: don't miss anything
}

function reloadSoon() { // at most one reload every few seconds
  if (!state.reloadTimer) {
    state.reloadTimer = setTimeout(() => { state.reloadTimer = null; loadSnapshot(); }, 3000);
  }
}

function handleEvent(type, data) {
  if (state.loading) { state.buffer.push([type, data]); return; }
  if (type === "readings") applyReadings(Array.isArray(data) ? data : [data]);
  else if (type === "device") applyDevice(data);
  else if (type === "ticket") { upsertTicket(data, true); renderTickets(); }
  else if (type === "broker") showBroker(data.connected);
  else if (type === "alarm" && state.tickets.has(data.ticket)) { // a warning called: flash it
    state.flash.add(data.ticket); renderTickets();
  }
}

function showBroker(up) { $("#broker-down").hidden = up; }

function setConn(s) {
  const node = $("#conn-state");
  Object.assign(node.dataset, { state: s, i18n: s });
  node.textContent = t(s);
}

function connect() {
  state.es?.close();
  const es = (state.es = new EventSource("/api/events"));
  es.addEventListener("open", () => { setConn("live"); loadHealth(); loadSnapshot(); });
  es.addEventListener("error", () => {
    setConn("reconnecting");
    if (es.readyState === EventSource.CLOSED) setTimeout(connect, 5000); // browser gave up
  });
  for (const type of ["readings", "ticket", "device", "alarm", "broker"]) {
    es.addEventListener(type, (e) => {
      try { handleEvent(type, JSON.parse(e.data)); } catch (err) { console.error(type, err); }
    });
  }
}

// ---- language and start ---------------------------------------------------

function applyHeader() {
  const name = state.station?.name || t("station");
  $("#station-name").textContent = name;
  document.title = name;
  for (const b of document.querySelectorAll("#lang-switch [data-lang]")) {
    b.setAttribute("aria-pressed", String(b.dataset.lang === state.lang));
  }
}

function setLang(lang) {
  state.lang = I18N[lang] ? lang : "zh";
  save("duty.lang", state.lang);
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  applyHeader();
  renderDevices();
  renderTickets();
}

function start() {
  setTimezone(DEFAULT_TZ);
  setLang(load("duty.lang") ?? "zh");
  tickClock();
  setInterval(tickClock, 1000);
  setInterval(loadHealth, 30000);
  document.addEventListener("animationend", (e) => {
    if (e.animationName === "flash") e.target.classList.remove("flash");
  });
  $("#lang-switch").addEventListener("click", (e) => {
    const b = e.target.closest("[data-lang]");
    if (b) setLang(b.dataset.lang);
  });
  $("#tickets tbody").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-ack]");
    if (b) acknowledge(b.dataset.ack, b);
  });
  loadHealth();
  loadSnapshot();
  connect();
}

document.addEventListener("DOMContentLoaded", start);
