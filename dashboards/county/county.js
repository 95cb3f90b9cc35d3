// County duty room: every township's warnings and their 叫应, the county's own tickets,
// the fleet, the map, one station, the monthly report. Plain ES2020, nothing from the
// internet; data goes in via textContent only. Any county instance answers: the page
// polls /api/overview (the state is in PostgreSQL, not in one process).
"use strict";

const I18N = {
  zh: {
    overview: "总览", map: "一张图", fleet: "各乡镇站点", report: "月度报告",
    connecting: "连接中", live: "实时", enableSound: "启用声音", soundOn: "声音已启用", reconnecting: "重连中", logout: "退出", login: "登录",
    user: "用户名", password: "密码", wrongLogin: "用户名或密码错误", locked: "尝试过多，请 {s} 秒后再试",
    warningsTitle: "各乡镇生效预警与叫应情况", countyTickets: "县级督导工单", fleetTitle: "站点运行状态",
    onDuty: "当前值班", nobody: "无人值班", pickStation: "点击站点或监测点查看详情",
    series: "序列", ledger: "工单与隐患台账", month: "月份", print: "打印",
    levelWarnings: "{lv}预警", blue: "蓝色", yellow: "黄色", orange: "橙色", red: "红色",
    unansweredN: "未应答", offlineN: "站点离线", countyOpenN: "待县级签收",
    noWarnings: "各乡镇暂无生效预警", noCountyTickets: "暂无县级督导工单",
    st_answered: "已应答", st_calling: "呼叫中，未应答", st_waiting: "待呼叫", st_not_reached: "未接通",
    answeredBy: "：{by}，{at}", via: "（{ch}）", since: "自 {at}（{ago}）",
    countyIn: "县级督导倒计时", countyOverdue: "已超过县级时限 {d}",
    escalatedCounty: "已督导到县", countyAcked: "县级已签收：{by}", called: "已呼叫：",
    nobodyCalled: "尚未呼叫任何人", trigger: "{dev} {metric} {value}",
    countyReason: "乡镇 {m} 分钟内未应答", ack: "签收", acked: "已签收", open: "待签收", closed: "已结束",
    ackedBy: "{by} {at} 签收", callsTo: "县级呼叫", out_pending: "待发送", out_sending: "发送中",
    out_sent: "已发送", out_failed: "发送失败", out_answered: "已接听确认", out_stopped: "已停止",
    role_duty: "值班员", role_leader: "领导",
    ch_sms: "短信", ch_voice: "电话", ch_robot: "群机器人", ch_mqtt: "手持终端", ch_api: "值班室",
    ch_dashboard: "值班室", ch_broadcast: "广播", ch_webhook: "接口推送",
    grid_point: "监测点", grid_group: "村民小组", grid_village: "村", grid_township: "乡镇",
    grid_county: "县", grid_duty: "值班室",
    station: "乡镇站点", online: "在线", offline: "离线", lastSeen: "最后上报", backlog: "待上传",
    disk: "磁盘剩余", version: "网关版本", clock: "时钟偏差", plan: "规则方案", warnings: "生效预警",
    devices: "设备在线", planErrors: "新方案被拒收", noPlan: "未报告", clockBad: "时钟异常",
    neverSeen: "从未上报", unknownStation: "未登记站点",
    kind: "类别", level: "级别", state: "状态", point: "监测点", device: "设备", value: "数值",
    time: "时间", opened: "发生", hazard: "隐患", device_fault: "设备故障", warning: "预警",
    discovered: "发现", confirmed: "已确认", controlled: "管控中", rectified: "已整改",
    dismissed: "已撤销", issued: "预警中", lifted: "已解除", closed_t: "已核销",
    timeline: "时间线", ev_opened: "发生", ev_raised: "升级", ev_level_changed: "级别变化",
    ev_condition_cleared: "条件已解除", ev_fault_cleared: "故障恢复", ev_fault_again: "故障复现",
    ev_acknowledged: "已签收", ev_step: "处置", ev_reported: "上报", ev_warning_issued: "发布预警",
    ev_warning_raised: "预警升级", ev_warning_lowered: "预警降级", ev_suggest_lower: "建议降级",
    ev_called: "呼叫", ev_escalated: "督导升级", ev_not_reached: "未接通", ev_calls_stopped: "停止呼叫",
    ev_broadcast: "广播", noData: "无数据", data: "数据", noTickets: "暂无工单",
    h1: "1小时", h6: "6小时", d1: "24小时", d7: "7天", d30: "30天",
    township: "乡镇", rWarnings: "预警（红/橙/黄/蓝）", rAnswered: "已应答预警", rMedian: "应答用时中位数",
    rEscalated: "督导到县", rHazards: "隐患发现", rClosed: "隐患核销", rFaults: "设备故障", rReadings: "接收数据条数",
    total: "合计", reportTitle: "{county} {month} 月度安全形势分析报告（各乡镇）",
    err_401: "请重新登录", err_403: "无权限执行此操作", err_404: "对象不存在", err_409: "该工单已被签收或已结束",
    err_422: "填写内容有误", err_429: "操作过于频繁，请稍后", err_500: "县级服务内部错误", err_503: "服务暂不可用",
    err_net: "无法连接县级服务", lost: "与县级服务的连接已断开，画面数据已停止更新（{age}）",
    failed: "失败：{msg}", saved: "已签收", role_viewer: "只读", role_duty_officer: "值班员",
    role_technician: "技术员", role_admin: "管理员", ms: "{n} 毫秒", sec: "{n} 秒", minutes: "{n} 分钟",
    legendStation: "乡镇站点", legendPoint: "监测点", moreWarnings: "另有 {n} 条预警（级别较低或已应答）未显示，见总览",
    reportHead: "本月各乡镇共发布预警 {n} 次（红色 {red} 次、橙色 {orange} 次），乡镇应答 {answered} 次，督导到县 {escalated} 次；发现隐患 {hazards} 处、核销 {closed} 处；设备故障 {faults} 次。",
    reportPrev: "上月预警 {n} 次、督导到县 {escalated} 次。", reportWorst: "有预警督导到县的乡镇：{names}。",
    plansTitle: "县级规则方案下发情况", refusedTitle: "拒收的消息（24小时）", allStations: "全部站点",
    planVersion: "方案版本", planTarget: "下发范围", planAt: "下发时间", planRunning: "运行站点",
    pushTitle: "下发新方案", pushFile: "规则文件", pushPick: "选择文件…", pushVersionHint: "留空则按当前时间编号", pushSubmit: "检查并下发",
    pushDone: "方案 {v} 已下发至{target}，随附县级联系人 {n} 人及县级介入时限；各站检查通过后即运行", pushRefused: "方案未下发，请先改正：",
    pushBus: "县级消息总线或数据库暂不可达，方案未下发", noPlans: "尚未下发规则方案", refusedCount: "条数", refusedLast: "最近一次", noRefused: "无拒收消息",
    mb: "{n} MB", items: "{n} 条", clockHint: "站点时钟减县级时钟：正数为站点时钟偏快", normal: "正常", stationLevel: "站点最高预警", unanswered: "有未应答预警",
  },
  en: {
    overview: "Overview", map: "Map", fleet: "Stations", report: "Monthly report",
    connecting: "Connecting", live: "Live", enableSound: "Enable sound", soundOn: "Sound on", reconnecting: "Reconnecting", logout: "Log out", login: "Log in",
    user: "User", password: "Password", wrongLogin: "Wrong name or password", locked: "Too many tries; wait {s} s",
    warningsTitle: "Warnings in force and their call state", countyTickets: "County escalations",
    fleetTitle: "Station health", onDuty: "On duty now", nobody: "Nobody on duty",
    pickStation: "Pick a station or point for its detail", series: "Series", ledger: "Tickets and hazard ledger",
    month: "Month", print: "Print", levelWarnings: "{lv} warnings", blue: "Blue", yellow: "Yellow",
    orange: "Orange", red: "Red", unansweredN: "Unanswered", offlineN: "Stations offline",
    countyOpenN: "Waiting for the county", noWarnings: "No warnings in force anywhere",
    noCountyTickets: "No county escalations", st_answered: "Answered", st_calling: "Calling, no answer yet",
    st_waiting: "Not called yet", st_not_reached: "Not reached", answeredBy: ": {by}, {at}",
    via: " ({ch})", since: "since {at} ({ago})", countyIn: "County deadline in",
    countyOverdue: "County deadline passed {d} ago", escalatedCounty: "Escalated to the county",
    countyAcked: "Taken by the county: {by}", called: "Called: ", nobodyCalled: "Nobody called yet",
    trigger: "{dev} {metric} {value}", countyReason: "not answered by the township within {m} min",
    ack: "Take it", acked: "Taken", open: "Waiting", closed: "Ended", ackedBy: "taken by {by} at {at}",
    callsTo: "County calls", out_pending: "waiting", out_sending: "sending", out_sent: "sent",
    out_failed: "failed", out_answered: "answered", out_stopped: "stopped", role_duty: "duty officer",
    role_leader: "leader", ch_sms: "SMS", ch_voice: "Voice", ch_robot: "Group robot", ch_mqtt: "Handheld",
    ch_api: "Duty room", ch_dashboard: "Duty room", ch_broadcast: "Broadcast", ch_webhook: "Webhook",
    grid_point: "point", grid_group: "group", grid_village: "village", grid_township: "township",
    grid_county: "county", grid_duty: "duty room", station: "Station", online: "Online",
    offline: "Offline", lastSeen: "Last seen", backlog: "Backlog", disk: "Disk free",
    version: "Gateway version", clock: "Clock offset", plan: "Rules plan", warnings: "Warnings",
    devices: "Devices online", planErrors: "new plan refused", noPlan: "not reported", clockBad: "clock wrong",
    neverSeen: "never seen", unknownStation: "not registered", kind: "Kind", level: "Level",
    state: "State", point: "Point", device: "Device", value: "Value", time: "Time", opened: "Opened",
    hazard: "Hazard", device_fault: "Device fault", warning: "Warning", discovered: "Discovered",
    confirmed: "Confirmed", controlled: "Controlled", rectified: "Rectified", dismissed: "Dismissed",
    issued: "In force", lifted: "Lifted", closed_t: "Closed", timeline: "Timeline", ev_opened: "opened",
    ev_raised: "raised", ev_level_changed: "level changed", ev_condition_cleared: "condition cleared",
    ev_fault_cleared: "fault cleared", ev_fault_again: "fault again", ev_acknowledged: "signed for",
    ev_step: "step", ev_reported: "reported", ev_warning_issued: "warning issued",
    ev_warning_raised: "warning raised", ev_warning_lowered: "warning lowered",
    ev_suggest_lower: "lowering suggested", ev_called: "called", ev_escalated: "escalated",
    ev_not_reached: "not reached", ev_calls_stopped: "calls stopped", ev_broadcast: "broadcast",
    noData: "No data", data: "data", noTickets: "No tickets", h1: "1 h", h6: "6 h", d1: "24 h",
    d7: "7 days", d30: "30 days", township: "Township", rWarnings: "Warnings (red/orange/yellow/blue)",
    rAnswered: "Warnings answered", rMedian: "Median time to answer", rEscalated: "Escalated to the county",
    rHazards: "Hazards found", rClosed: "Hazards written off", rFaults: "Device faults",
    rReadings: "Readings received", total: "Total", reportTitle: "{county}: monthly safety report {month} (townships)",
    err_401: "Please log in again", err_403: "You may not do this", err_404: "Not found",
    err_409: "Already taken or ended", err_422: "Something in the form is wrong",
    err_429: "Too many requests; wait a little", err_500: "County service error", err_503: "Service unavailable",
    err_net: "Cannot reach the county service", lost: "Connection to the county service lost: nothing on this screen is updating ({age})",
    failed: "Failed: {msg}", saved: "Taken", role_viewer: "viewer", role_duty_officer: "duty officer",
    role_technician: "technician", role_admin: "admin", ms: "{n} ms", sec: "{n} s", minutes: "{n} min",
    legendStation: "station", legendPoint: "monitoring point", moreWarnings: "{n} more warnings (lower or answered) not shown: see the overview",
    reportHead: "This month the townships issued {n} warnings ({red} red, {orange} orange); {answered} were answered by the township and {escalated} escalated to the county; {hazards} hazards found, {closed} written off; {faults} device faults. ",
    reportPrev: "Last month: {n} warnings, {escalated} escalated. ", reportWorst: "Townships with warnings escalated to the county: {names}.",
    plansTitle: "Rule plans pushed by the county", refusedTitle: "Messages refused (24 h)", allStations: "all stations",
    planVersion: "Version", planTarget: "Sent to", planAt: "Pushed", planRunning: "Stations running it",
    pushTitle: "Push a new plan", pushFile: "Rules file", pushPick: "Choose a file…", pushVersionHint: "empty: numbered by the time now", pushSubmit: "Check and push",
    pushDone: "Plan {v} pushed to {target}, with {n} county contacts and the county's deadlines; each station runs it once it checks", pushRefused: "Plan not pushed; correct first:",
    pushBus: "The county bus or store cannot be reached: plan not pushed", noPlans: "No plan pushed yet", refusedCount: "Count", refusedLast: "Last", noRefused: "Nothing refused",
    mb: "{n} MB", items: "{n}", clockHint: "station clock minus county clock: positive when the station is ahead", normal: "normal", stationLevel: "highest warning at the station", unanswered: "unanswered warning",
  },
};
I18N.zh.role_leader = "领导"; I18N.en.role_leader = "leader";
const LEVELS = ["red", "orange", "yellow", "blue"];
const RANGES = [["h1", 3600e3], ["h6", 6 * 3600e3], ["d1", 864e5], ["d7", 7 * 864e5], ["d30", 30 * 864e5]];
window.countyAlarm = { plays: 0, playing: false }; // read by the browser tests
const S = { lang: "zh", me: null, ov: null, page: "overview", skew: 0, range: 864e5, station: null, ticket: null };
const $ = (s, r = document) => r.querySelector(s);
const $$ = (s, r = document) => [...r.querySelectorAll(s)];
const t = (k, v = {}) => (I18N[S.lang][k] ?? I18N.zh[k] ?? String(k)).replace(/\{(\w+)\}/g, (_, x) => String(v[x] ?? ""));
function el(tag, attrs = {}, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
    else n.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of kids.flat()) if (c != null && c !== false) n.append(c instanceof Node ? c : String(c));
  return n;
}
const put = (node, ...kids) => node && node.replaceChildren(...kids.flat().filter((k) => k != null && k !== false));
const table = (heads, rows, cls) => el("table", { class: cls }, el("thead", {}, el("tr", {}, heads.map((h) => (h instanceof Node ? h : el("th", {}, t(h)))))), el("tbody", {}, rows));
const serverNow = () => Date.now() + S.skew;

// ---- time: the county's zone on screen, UTC ms in the data ---------------------------
function setZone(tz) {
  const o = { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  try { S.fmt = new Intl.DateTimeFormat("zh-CN", { ...o, timeZone: tz }); } catch (_) { S.fmt = new Intl.DateTimeFormat("zh-CN", { ...o, timeZone: "Asia/Shanghai" }); }
  S.clockFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: S.fmt.resolvedOptions().timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  S.monthFmt = new Intl.DateTimeFormat("en-CA", { timeZone: S.fmt.resolvedOptions().timeZone, year: "numeric", month: "2-digit" });
}
const when = (ms) => (ms ? S.fmt.format(new Date(ms)) : "—");
function ago(ms) {
  const s = Math.max(0, (serverNow() - ms) / 1000);
  if (s < 90) return t("sec", { n: Math.round(s) });
  if (s < 5400) return t("minutes", { n: Math.round(s / 60) });
  if (s < 172800) return S.lang === "zh" ? `${(s / 3600).toFixed(1)} 小时` : `${(s / 3600).toFixed(1)} h`;
  return S.lang === "zh" ? `${Math.round(s / 86400)} 天` : `${Math.round(s / 86400)} days`;
}
function dur(ms) {
  const s = Math.max(0, Math.round(ms / 1000)), m = Math.floor(s / 60), h = Math.floor(m / 60);
  return h ? `${h}:${String(m % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}` : `${m}:${String(s % 60).padStart(2, "0")}`;
}
const num = (v) => (v == null || Number.isNaN(v) ? "—" : Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) < 10 ? 2 : 1));
const levelTag = (lv) => el("span", { class: "lv", "data-level": lv }, t(lv));

// ---- API, login ----------------------------------------------------------------------
class ApiError extends Error { constructor(status, body) { super(`HTTP ${status}`); this.status = status; this.body = body; } }
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && S.me) headers["X-CSRF-Token"] = S.me.csrf;
  const r = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (r.status === 401 && path !== "/api/login") showLogin();
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}
const errText = (e) => (e instanceof ApiError ? (I18N[S.lang][`err_${e.status}`] ? t(`err_${e.status}`) : t("err_500")) : t("err_net"));
function notice(msg, bad = true) {
  const n = $("#notice");
  n.textContent = msg instanceof Error ? errText(msg) : msg; n.hidden = false; n.dataset.bad = bad ? "1" : "0";
  clearTimeout(S.noticeTimer); S.noticeTimer = setTimeout(() => { n.hidden = true; }, 6000);
}
function showLogin() {
  S.me = null;
  const d = $("#login");
  if (!d.open) d.showModal();
  $("input[name=name]", d).focus();
}
async function submitLogin(ev) {
  ev.preventDefault();
  const f = ev.target;
  try {
    S.me = await api("POST", "/api/login", { name: f.name.value.trim(), password: f.password.value });
    f.password.value = ""; $("#login-error").textContent = ""; $("#login").close();
    await start();
  } catch (e) {
    $("#login-error").textContent = e.status === 429 ? t("locked", { s: e.body?.detail?.retry_after_s ?? "" }) : e.status === 401 ? t("wrongLogin") : errText(e);
  }
}
async function start() {
  if (!S.me) {
    const s = await api("GET", "/api/session");
    if (!s.user) return showLogin();
    S.me = s;
  }
  whoText(); $("#logout").hidden = false;
  await poll();
  if (!S.pollTimer) S.pollTimer = setInterval(poll, 5000);
  route();
}
const whoText = () => { if (S.me) $("#who").textContent = `${S.me.user.name} · ${t("role_" + S.me.user.role)}`; };

// ---- the snapshot, every 5 s -----------------------------------------------------------
async function poll() {
  if (!S.me) return;
  const conn = $("#conn-state");
  try {
    const ov = await api("GET", "/api/overview");
    S.skew = ov.now - Date.now();
    if (!S.ov) { setZone(ov.county.timezone); }
    S.ov = ov; S.lostAt = null; S.okAt = Date.now();
    conn.dataset.state = "live"; conn.textContent = t("live");
    $("#county-name").textContent = ov.county.name; document.title = ov.county.name;
    if (S.page === "map" || S.page === "screen") loadMap();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    conn.dataset.state = "reconnecting"; conn.textContent = t("reconnecting");
    if (!S.lostAt) S.lostAt = S.okAt ?? Date.now(); // what is on screen is as old as the last answer
  }
  lostBanner();
  render();
}
function lostBanner() {
  const b = $("#stream-lost"), lost = S.lostAt != null;
  document.body.dataset.lost = lost ? "1" : "0";
  b.hidden = !lost;
  if (lost) b.textContent = t("lost", { age: ago(S.lostAt - S.skew) });
}

// ---- pages ---------------------------------------------------------------------------
const PAGES = ["screen", "overview", "map", "fleet", "station", "report"];
function route() {
  const wall = location.pathname === "/screen";
  document.body.dataset.wall = wall ? "1" : "0";
  const [page, arg] = (location.hash.slice(1) || (wall ? "screen" : "overview")).split("/");
  S.page = PAGES.includes(page) ? page : "overview";
  document.body.dataset.page = S.page;
  for (const p of PAGES) $("#page-" + p).hidden = p !== S.page;
  $$("#nav a").forEach((a) => a.setAttribute("aria-current", a.hash === "#" + S.page ? "page" : "false"));
  const mb = $("#map-box"), home = S.page === "screen" ? $("#scr-map") : $("#page-map .cols");
  if (mb.parentElement !== home && (S.page === "screen" || S.page === "map")) { home.prepend(mb); S.map?.invalidateSize(); }
  if (S.page === "map" || S.page === "screen") loadMap();
  if (S.page === "station" && arg) loadStation(decodeURIComponent(arg));
  if (S.page === "report") loadReport();
  if (S.page === "fleet") loadPlans();
  render();
}
function render() {
  if (!S.ov) return;
  renderBanner();
  if (S.page === "overview") renderOverview();
  if (S.page === "screen") renderScreen();
  if (S.page === "fleet") put($("#fleet-table"), fleetTable(S.ov.fleet, false));
  tickCountdowns();
}

function counts() {
  const ws = S.ov.warnings, fl = S.ov.fleet;
  return [
    ...LEVELS.map((lv) => el("div", { class: "tile", "data-level": lv }, el("b", {}, ws.filter((w) => w.level === lv).length), el("span", {}, t("levelWarnings", { lv: t(lv) })))),
    el("div", { class: "tile", "data-ok": "0" }, el("b", {}, ws.filter((w) => w.state !== "answered").length), el("span", {}, t("unansweredN"))),
    el("div", { class: "tile", "data-ok": "0" }, el("b", {}, S.ov.county_tickets.filter((c) => c.state === "open").length), el("span", {}, t("countyOpenN"))),
    el("div", { class: "tile", "data-ok": fl.some((s) => !s.online) ? "0" : "1" }, el("b", {}, `${fl.filter((s) => !s.online).length}/${fl.length}`), el("span", {}, t("offlineN"))),
  ];
}
function renderOverview() {
  put($("#counts"), counts());
  renderWarnings($("#warnings"), false);
  const box = $("#county-tickets"), sig = JSON.stringify([S.lang, S.ov.county_tickets]);
  if (box.dataset.sig !== sig) { box.dataset.sig = sig; put(box, countyTable(S.ov.county_tickets)); }
  const bad = S.ov.fleet.filter((s) => !s.online || s.plan.errors.length || s.clock_sane === false || Math.abs(s.clock_offset_ms ?? 0) > 60000 || (s.backlog ?? 0) > 1000);
  put($("#fleet-brief"), fleetTable(bad.length ? bad : S.ov.fleet.slice(0, 12), true));
}
function renderScreen() {
  put($("#scr-levels"), counts());
  renderWarnings($("#scr-warnings"), true);
  $("#scr-duty").textContent = S.ov.on_duty ?? t("nobody");
  put($("#scr-tickets"), countyTable(S.ov.county_tickets.filter((c) => c.state === "open"), true));
  put($("#scr-fleet"), fleetTable(S.ov.fleet.filter((s) => !s.online || s.plan.errors.length), true));
}

// the warnings of every township, most urgent first: who was called, answered or not, since when
const place = (w) => [w.village, w.point].filter(Boolean).join(" · ");
function calleeText(c) {
  const where = c.grid ? `${t("grid_" + c.grid)}${c.grid_name ? " " + c.grid_name : ""}` : null;
  return el("span", { class: "callee-name" }, el("b", {}, c.name), where ? `（${where}）` : "");
}
function renderWarnings(box, compact) {
  const ws = S.ov.warnings;
  if (!ws.length) return put(box, el("p", { class: "muted big" }, t("noWarnings")));
  const more = compact ? el("p", { class: "more", hidden: true }) : null;
  put(box, more, ws.map((w) => {
    const ct = w.county;
    const called = [...new Map(w.called.map((c) => [c.name, c])).values()];
    return el("article", { class: "warn-card", "data-level": w.level, "data-station": w.station, "data-ticket": w.ticket, "data-state": w.state, "data-county": ct ? "1" : "0" },
      el("h3", {}, levelTag(w.level), el("a", { href: `#station/${encodeURIComponent(w.station)}` }, w.station_name), w.point ? el("span", {}, w.point) : null,
        w.village ? el("span", { class: "where" }, w.village) : null),
      el("div", { class: "warn-line" },
        el("span", { class: "answer", "data-state": w.state }, t("st_" + w.state),
          w.answered ? `${t("answeredBy", { by: w.answered.by ?? "—", at: when(w.answered.at) })}${w.answered.channel ? t("via", { ch: t("ch_" + w.answered.channel) }) : ""}` : ""),
        el("span", { class: "muted" }, t("since", { at: when(w.since), ago: ago(w.since) })),
        ct ? el("span", { class: "county-flag", "data-state": ct.state }, ct.state === "acked" ? t("countyAcked", { by: ct.acked_by ?? "" }) : t("escalatedCounty"))
          : w.county_due_at ? el("span", { class: "countdown", "data-due": w.county_due_at, "data-label": "countyIn" }, "") : null,
        w.device && !compact ? el("span", { class: "muted" }, t("trigger", { dev: w.device, metric: w.metric_name ?? t("data"), value: `${num(w.value)}${w.unit ? " " + w.unit : ""}` })) : null),
      // answered before anyone was called (on the station's page): no "nobody called" under it
      called.length ? el("div", { class: "called" }, t("called"), called.flatMap((c, i) => (i ? ["、", calleeText(c)] : [calleeText(c)])))
        : w.answered ? null : el("div", { class: "called" }, t("nobodyCalled")));
  }));
  if (compact) fitWall(box, more);
}
// the wall screen does not scroll: the cards that do not fit whole are hidden and counted
function fitWall(box, more) {
  const cards = $$(".warn-card", box);
  const fits = () => { const bottom = box.getBoundingClientRect().bottom;
    return cards.filter((c) => !c.hidden).every((c) => c.getBoundingClientRect().bottom <= bottom + 1); };
  let hidden = 0;
  for (let i = cards.length - 1; i > 0 && !fits(); i--) {
    cards[i].hidden = true; hidden++;
    more.hidden = false; more.textContent = t("moreWarnings", { n: hidden });
  }
}
function tickCountdowns() {
  for (const n of $$("[data-due]")) {
    const left = Number(n.dataset.due) - serverNow();
    n.textContent = left >= 0 ? `${t(n.dataset.label)} ${dur(left)}` : t("countyOverdue", { d: dur(-left) });
    n.dataset.late = left < 0 ? "1" : "0";
  }
}

// the alarm: a county ticket not yet taken sounds until someone takes it (Web Audio,
// unlocked by one click, as on the station's page)
function enableSound() {
  const AC = window.AudioContext || window.webkitAudioContext;
  if (!AC) return;
  S.audio = S.audio || new AC();
  S.audio.resume().then(() => {
    try { sessionStorage.setItem("sound", "1"); } catch (_) { /* no storage */ }
    document.body.dataset.audio = "ready";
    $("#sound").textContent = t("soundOn"); $("#sound").setAttribute("aria-pressed", "true");
    render();
  });
}
function beep() {
  const a = S.audio, now = a.currentTime;
  for (const [i, f] of [[0, 988], [1, 740], [2, 988], [3, 740]]) {
    const o = a.createOscillator(), g = a.createGain();
    o.type = "square"; o.frequency.value = f;
    g.gain.setValueAtTime(0.0001, now + i * 0.25);
    g.gain.exponentialRampToValueAtTime(0.25, now + i * 0.25 + 0.02);
    g.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.25 + 0.23);
    o.connect(g).connect(a.destination); o.start(now + i * 0.25); o.stop(now + i * 0.25 + 0.25);
  }
  Object.assign(window.countyAlarm, { plays: window.countyAlarm.plays + 1, playing: true });
  document.body.dataset.audio = "playing";
}
function alarmLoop(on) {
  const ready = S.audio && S.audio.state === "running";
  if (on && ready && !S.alarmTimer) { beep(); S.alarmTimer = setInterval(beep, 4000); }
  else if ((!on || !ready) && S.alarmTimer) { clearInterval(S.alarmTimer); S.alarmTimer = null; }
  if (!on) {
    window.countyAlarm.playing = false;
    if (S.audio) document.body.dataset.audio = S.audio.state === "running" ? "ready" : "locked";
  }
}

// the county's own tickets: who the county called, and the duty officer's 签收
function countyTable(list, compact) {
  if (!list.length) return el("p", { class: "muted" }, t("noCountyTickets"));
  const may = S.me?.may?.ack;
  return table(["level", "station", "state", ...(compact ? [] : ["callsTo"])], list.map((c) => el("tr", { "data-county-ticket": c.id, "data-state": c.state },
    el("td", {}, levelTag(c.level)),
    el("td", {}, el("b", {}, c.station_name), c.point ? ` · ${c.point}` : "", el("br"), el("small", {}, `${when(c.opened_at)} ${c.unanswered_min ? t("countyReason", { m: c.unanswered_min }) : ""}`)),
    el("td", {}, c.state === "open" ? (may ? el("button", { type: "button", class: "ack", onclick: () => ackCounty(c.id) }, t("ack")) : el("span", { class: "bad" }, t("open")))
      : c.state === "acked" ? el("span", { class: "ok" }, t("ackedBy", { by: c.acked_by ?? "", at: when(c.acked_at) })) : t("closed")),
    compact ? null : el("td", {}, el("ul", { class: "calls-list" }, c.calls.map((x) => el("li", { "data-channel": x.channel, "data-outcome": x.outcome }, `${x.name}（${t("role_" + x.role)}）${t("ch_" + x.channel)} ${t("out_" + x.outcome)}`)))))));
}
async function ackCounty(id) {
  try { await api("POST", `/api/county-tickets/${id}/ack`, {}); notice(t("saved"), false); await poll(); } catch (e) { notice(e); }
}
function renderBanner() {
  const open = S.ov.county_tickets.filter((c) => c.state === "open");
  alarmLoop(open.length > 0);
  const b = $("#banner");
  b.hidden = !open.length;
  b.dataset.level = open.some((c) => c.level === "red") ? "red" : "";
  const may = S.me?.may?.ack;
  // the same tickets: leave the buttons alone (a click must not land on a replaced node)
  const sig = JSON.stringify([S.lang, may, open.map((c) => [c.id, c.level, c.station_name, c.point, c.unanswered_min])]);
  if (b.dataset.sig === sig) return;
  b.dataset.sig = sig;
  put($("ul", b), open.map((c) => el("li", { "data-county-ticket": c.id }, levelTag(c.level),
    el("b", {}, `${c.station_name}${c.point ? " · " + c.point : ""}`),
    el("span", {}, c.unanswered_min ? t("countyReason", { m: c.unanswered_min }) : ""),
    el("span", {}, when(c.opened_at)),
    may ? el("button", { type: "button", class: "ack", onclick: () => ackCounty(c.id) }, t("ack")) : null)));
}

// fleet health: online, last seen, backlog, disk, version, clock offset, rules plan
function fleetTable(list, brief) {
  const heads = brief ? ["station", "lastSeen", "backlog", "plan"] : ["station", "lastSeen", "warnings", "devices", "backlog", "disk", "version", "clock", "plan"];
  return table(heads.map((h) => el("th", { class: ["backlog", "disk", "clock", "devices"].includes(h) ? "num" : null }, t(h))), list.map((s) => {
    const off = s.clock_offset_ms, offBad = s.clock_sane === false || (off != null && Math.abs(off) > 60000);
    const planCell = el("span", {}, s.plan.version ? s.plan.version : el("span", { class: "muted" }, t("noPlan")),
      s.plan.errors.length ? el("span", { class: "bad", title: s.plan.errors.join("\n") }, ` · ${t("planErrors")}`) : null);
    const cells = {
      station: el("td", {}, el("span", { class: "dot", "data-ok": s.online ? "1" : "0" }), s.name, " ", el("small", {}, s.online ? t("online") : t("offline")), s.known ? null : el("small", { class: "bad" }, ` ${t("unknownStation")}`)),
      lastSeen: el("td", {}, s.last_seen ? `${when(s.last_seen)}（${ago(s.last_seen)}）` : el("span", { class: "muted" }, t("neverSeen"))),
      warnings: el("td", {}, LEVELS.filter((lv) => s.warnings[lv]).map((lv) => el("span", { class: "lv", "data-level": lv }, s.warnings[lv]))),
      devices: el("td", { class: "num" }, s.devices.total ? `${s.devices.online}/${s.devices.total}` : "—"),
      backlog: el("td", { class: "num" + ((s.backlog ?? 0) > 1000 ? " warnish" : "") }, s.backlog == null ? "—" : t("items", { n: s.backlog })),
      disk: el("td", { class: "num" + (s.disk_free_mb != null && s.disk_free_mb < 500 ? " bad" : "") }, s.disk_free_mb == null ? "—" : t("mb", { n: Math.round(s.disk_free_mb) })),
      version: el("td", {}, s.version ?? "—"),
      clock: el("td", { class: "num" + (offBad ? " bad" : ""), title: t("clockHint") }, off == null ? "—" : (off > 0 ? "+" : "") + (Math.abs(off) >= 1000 ? t("sec", { n: (off / 1000).toFixed(1) }) : t("ms", { n: off })), s.clock_sane === false ? ` ${t("clockBad")}` : ""),
      plan: el("td", {}, planCell),
    };
    return el("tr", { "data-station": s.id, "data-online": s.online ? "1" : "0", onclick: () => { location.hash = `#station/${encodeURIComponent(s.id)}`; } }, heads.map((h) => cells[h]));
  }), "fleet");
}

// the rule plans pushed and who runs them; what the county refused lately
function targetText(target) {
  if (target === "all") return t("allStations");
  const [kind, id] = [target.split(".")[0], target.slice(target.indexOf(".") + 1)];
  if (kind === "group" && S.ov.groups?.[id]) return S.ov.groups[id]; // the group's own name
  const names = S.ov.fleet.filter((s) => (kind === "group" ? s.group === id : s.id === id)).map((s) => s.name);
  return names.join("、") || "—";
}
// a technician pushes a plan from here as `stationgw county plan push` does
function planTargets() {
  const f = $("#plan-push"), keep = f.target.value, fleet = S.ov?.fleet ?? [];
  const groups = [...new Set(fleet.map((s) => s.group).filter(Boolean))].sort();
  put(f.target, el("option", { value: "all" }, t("allStations")),
    groups.map((g) => el("option", { value: `group.${g}` }, targetText(`group.${g}`))),
    fleet.map((s) => el("option", { value: `station.${s.id}` }, s.name)));
  if (keep) f.target.value = keep;
}
async function pushPlan(ev) {
  ev.preventDefault();
  const f = ev.target, out = $("#plan-push-out");
  const body = { rules: f.rules.value, target: f.target.value, version: f.version.value.trim() || null };
  put(out, el("p", { class: "muted" }, "…"));
  try {
    const r = await api("POST", "/api/plans", body);
    put(out, el("p", { class: "good", "data-state": "pushed" }, t("pushDone", { v: r.version, target: targetText(r.target), n: r.people })));
    f.version.value = "";
    loadPlans();
  } catch (e) {
    if (e instanceof ApiError && e.status === 422 && e.body?.detail?.problems) {
      put(out, el("p", { class: "bad", "data-state": "refused" }, t("pushRefused")),
        el("ul", { class: "problems" }, e.body.detail.problems.map((p) => el("li", {}, p))));
    } else if (e instanceof ApiError && e.status === 503) {
      put(out, el("p", { class: "bad", "data-state": "bus" }, t("pushBus")));
    } else put(out, el("p", { class: "bad" }, errText(e)));
  }
}
async function loadPlans() {
  $("#plan-push").hidden = !S.me?.may?.plan;
  if (S.me?.may?.plan) planTargets();
  try {
    const d = await api("GET", "/api/plans");
    // how many stations a plan was sent to: all, a group's, or one
    const fleet = S.ov?.fleet ?? [], sentTo = (target) => (target === "all" ? fleet.length
      : target.startsWith("group.") ? fleet.filter((s) => `group.${s.group}` === target).length : 1);
    put($("#plans"), d.plans.length ? table(["planVersion", "planTarget", "planAt", "planRunning"], d.plans.map((p) => el("tr", { "data-plan": p.version, title: p.hash },
      el("td", {}, p.version), el("td", {}, targetText(p.target)), el("td", {}, when(p.at)), el("td", { class: "num" }, `${p.stations}/${sentTo(p.target)}`))))
      : el("p", { class: "muted" }, t("noPlans")));
    put($("#refused"), d.refused.length ? table(["station", "refusedCount", "refusedLast"], d.refused.map((r) => el("tr", { title: r.reason },
      el("td", {}, r.name ?? t("unknownStation")), el("td", { class: "num" }, r.count), el("td", {}, when(r.last)))))
      : el("p", { class: "muted" }, t("noRefused")));
  } catch (e) { notice(e); }
}

// ---- the county map: vendored Leaflet, stations and their points in level colour ------
function loadLeaflet() {
  if (window.L) return Promise.resolve(window.L);
  S.leafletLoad = S.leafletLoad || new Promise((resolve, reject) => {
    document.head.append(el("link", { rel: "stylesheet", href: "/static/vendor/leaflet/leaflet.css" }));
    const sc = el("script", { src: "/static/vendor/leaflet/leaflet.js" });
    sc.onload = () => resolve(window.L); sc.onerror = reject;
    document.head.append(sc);
  });
  return S.leafletLoad;
}
async function loadMap() {
  try {
    const [L, data] = await Promise.all([loadLeaflet(), api("GET", "/api/map")]);
    S.mapData = data;
    if (!S.map) {
      const m = L.map($("#map-box"), { zoomSnap: 0.25, attributionControl: false });
      S.map = m; window.countyMap = m;
      S.layer = L.layerGroup().addTo(m);
      L.control.scale({ imperial: false }).addTo(m);
      const legend = L.control({ position: "bottomleft" });
      legend.onAdd = () => el("div", { class: "map-legend" }, LEVELS.map((lv) => el("div", {}, el("i", { class: "sw", "data-level": lv }), t(lv))),
        el("div", {}, el("i", { class: "sw", "data-level": "none" }), t("normal")), el("div", {}, el("i", { class: "sw", style: "background:#6b7a88" }), t("offline")),
        el("div", {}, el("i", { class: "sw", style: "border-radius:2px" }), t("legendStation")), el("div", {}, el("i", { class: "sw", style: "width:0.6rem;height:0.6rem" }), t("legendPoint")));
      legend.addTo(m);
      const all = [...data.stations, ...data.points].map((p) => [p.lat, p.lon]);
      if (all.length) m.fitBounds(all, { padding: [50, 50], maxZoom: 13 }); else m.setView([30, 114], 8);
    }
    S.layer.clearLayers();
    // a whole county (more than 30 townships) would bury the map under names: then only the
    // stations that need someone (a warning, offline) and the points in warning are named
    // and drawn; the others show their name on hover and their points on the station page
    const crowded = data.stations.length > 30;
    for (const p of data.points) {
      if (crowded && !p.level) continue;
      L.marker([p.lat, p.lon], { keyboard: false, icon: L.divIcon({ className: "", iconSize: null, html: `<span class="pt-marker" data-level="${p.level ?? "none"}"></span>` }) })
        .bindTooltip(p.level ? p.name : `${p.station_name} · ${p.name}`, p.level && !crowded
          ? { permanent: true, direction: "top", className: "map-label", offset: [0, -8] } : { direction: "top" })
        .on("click", () => mapDetail(p.station)).addTo(S.layer);
    }
    for (const s of data.stations) {
      const named = !crowded || s.level || !s.online;
      const mk = L.marker([s.lat, s.lon], { keyboard: false, zIndexOffset: named ? 1000 : 500, icon: L.divIcon({ className: "", iconSize: null,
        html: `<button type="button" class="st-marker" data-station="" data-level="${s.level ?? "none"}" data-online="${s.online ? 1 : 0}" data-blink="${s.unanswered ? 1 : 0}"></button>` }) })
        .bindTooltip(s.name, named ? { permanent: true, direction: "right", className: "map-label", offset: [14, 0] } : { direction: "right", offset: [14, 0] })
        .on("click", () => mapDetail(s.id)).addTo(S.layer);
      const b = mk.getElement()?.querySelector("button");
      if (b) { b.dataset.station = s.id; b.setAttribute("aria-label", s.name); }
    }
    S.map.invalidateSize();
    if (S.page === "map" && !S.mapPicked && S.ov?.warnings.length) mapDetail(S.ov.warnings[0].station, false);
  } catch (e) { if (!(e instanceof ApiError)) notice(e); }
}
function mapDetail(id, picked = true) {
  if (picked) S.mapPicked = id;
  const s = S.ov.fleet.find((x) => x.id === id);
  const ws = S.ov.warnings.filter((w) => w.station === id);
  put($("#map-detail"), el("h2", {}, el("a", { href: `#station/${encodeURIComponent(id)}` }, s?.name ?? "")),
    s ? fleetTable([s], true) : null, ws.length ? ws.map((w) => el("p", {}, levelTag(w.level), ` ${place(w)} · ${t("st_" + w.state)}`)) : el("p", { class: "muted" }, t("noWarnings")));
}

// ---- one station: its health, trends from the county's store, its tickets and ledger -----
async function loadStation(id) {
  try {
    const d = await api("GET", `/api/stations/${encodeURIComponent(id)}`);
    S.station = d;
    $("#st-title").textContent = d.name;
    put($("#st-health"), d.health ? fleetTable([d.health], false) : null);
    const sel = $("#st-series");
    put(sel, d.series.map((x, i) => el("option", { value: String(i) }, `${x.device_name || t("device")} · ${x.metric_name ?? t("data")}${x.unit ? `（${x.unit}）` : ""}`)));
    put($("#st-ranges"), RANGES.map(([k, ms]) => el("button", { type: "button", "aria-pressed": S.range === ms ? "true" : "false", onclick: () => { S.range = ms; loadStation(id); } }, t(k))));
    put($("#st-tickets"), d.tickets.length ? table(["level", "kind", "point", "state", "opened"], d.tickets.map((x) => el("tr", { "data-ticket": x.id, tabindex: "0", onclick: () => showTicket(x) },
      el("td", {}, x.level ? levelTag(x.level) : "—"), el("td", {}, t(x.kind)), el("td", {}, [x.village, x.point].filter(Boolean).join(" · ") || x.device || "—"),
      el("td", {}, t(x.state === "closed" ? "closed_t" : x.state)), el("td", {}, when(x.opened_at)))))
      : el("p", { class: "muted" }, t("noTickets")));
    put($("#st-ticket"));
    await drawTrend();
  } catch (e) { notice(e); }
}
function showTicket(x) {
  put($("#st-ticket"), el("h3", {}, x.level ? levelTag(x.level) : null, ` ${t(x.kind)} · ${[x.village, x.point].filter(Boolean).join(" · ")}`),
    x.device ? el("p", {}, t("trigger", { dev: x.device, metric: x.metric_name ?? t("data"), value: `${num(x.value)}${x.unit ? " " + x.unit : ""}` })) : null,
    el("h3", {}, t("timeline")), el("ol", { class: "timeline" }, x.events.map((e) => el("li", {}, el("time", {}, when(e.at)), " ", t("ev_" + e.kind),
      e.level ? [" ", levelTag(e.level)] : null, e.callee ? [" ", calleeText(e.callee)] : null, e.by ? ` ${e.by}` : "", e.channel ? t("via", { ch: t("ch_" + e.channel) }) : ""))));
}
function loadEcharts() {
  if (window.echarts) return Promise.resolve(window.echarts);
  S.echartsLoad = S.echartsLoad || new Promise((resolve, reject) => {
    const sc = el("script", { src: "/static/vendor/echarts/echarts.min.js" });
    sc.onload = () => resolve(window.echarts); sc.onerror = reject; document.head.append(sc);
  });
  return S.echartsLoad;
}
async function drawTrend() {
  const d = S.station, box = $("#st-chart");
  const x = d?.series[Number($("#st-series").value || 0)];
  if (!x) { if (S.chart) { S.chart.dispose(); S.chart = null; } return put(box, el("p", { class: "muted" }, t("noData"))); }
  const to = serverNow(), from = to - S.range;
  const [ec, r] = await Promise.all([loadEcharts(), api("GET", `/api/stations/${encodeURIComponent(d.id)}/readings?device=${encodeURIComponent(x.device)}&metric=${encodeURIComponent(x.metric)}&from=${Math.round(from)}&to=${Math.round(to)}`)]);
  if (S.page !== "station") return; // left meanwhile: drawn when the page is shown again
  if (!S.chart || S.chart.getDom() !== box) { put(box); S.chart = ec.init(box, null, { renderer: "svg" }); }
  S.chart.resize(); // the box may have been hidden (another page) since the chart was made
  S.chart.setOption({
    animation: false, grid: { left: 60, right: 20, top: 20, bottom: 40 }, textStyle: { color: "#9fb0c0" },
    xAxis: { type: "time", min: from, max: to, axisLabel: { color: "#9fb0c0", formatter: (v) => when(v) } },
    yAxis: { type: "value", name: x.unit ?? "", axisLabel: { color: "#9fb0c0" }, splitLine: { lineStyle: { color: "#2a3a4a" } } },
    tooltip: { trigger: "axis", valueFormatter: (v) => num(v) },
    series: [{ type: "line", showSymbol: false, data: r.points, lineStyle: { color: "#5fb4ff", width: 2 } }],
  }, true);
}

// ---- the county monthly report, per township ------------------------------------------
async function loadReport() {
  const sel = $("#report-month");
  if (!sel.options.length) {
    const now = new Date(serverNow());
    for (let i = 0; i < 12; i++) {
      const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - i, 15));
      const v = S.monthFmt.format(d).slice(0, 7);
      sel.append(el("option", { value: v }, v));
    }
  }
  $("#report-pdf").href = `/api/report?month=${sel.value}&format=pdf`;
  $("#report-html").href = `/api/report?month=${sel.value}&format=html`;
  try {
    const r = await api("GET", `/api/report?month=${sel.value}`);
    const med = (s) => (s == null ? "—" : s < 90 ? t("sec", { n: s }) : t("minutes", { n: Math.round(s / 60) }));
    const row = (name, x) => [el("td", {}, name), el("td", { class: "num" }, LEVELS.map((lv) => x.warnings[lv]).join(" / ")),
      el("td", { class: "num" }, x.answered), el("td", { class: "num" }, med(x.answer_median_s)), el("td", { class: "num" }, x.escalated),
      el("td", { class: "num" }, x.hazards), el("td", { class: "num" }, x.hazards_closed), el("td", { class: "num" }, x.faults), el("td", { class: "num" }, x.readings)];
    const heads = ["township", "rWarnings", "rAnswered", "rMedian", "rEscalated", "rHazards", "rClosed", "rFaults", "rReadings"];
    const tbl = table(heads.map((h, i) => el("th", { class: i ? "num" : null }, t(h))), r.townships.map((x) => el("tr", { "data-station": x.station }, row(x.name, x))), "report");
    tbl.append(el("tfoot", {}, el("tr", {}, row(t("total"), { ...r.total, answer_median_s: null }))));
    const sum = (x) => LEVELS.reduce((a, lv) => a + x.warnings[lv], 0), tot = r.total, prev = r.previous;
    const head = t("reportHead", { n: sum(tot), red: tot.warnings.red, orange: tot.warnings.orange, answered: tot.answered,
      escalated: tot.escalated, hazards: tot.hazards, closed: tot.hazards_closed, faults: tot.faults });
    const cmp = prev ? t("reportPrev", { n: sum(prev), escalated: prev.escalated }) : "";
    const worst = r.townships.filter((x) => x.escalated).map((x) => x.name);
    put($("#report-body"), el("h2", {}, t("reportTitle", { county: r.county, month: r.month })),
      el("p", { class: "report-head" }, head, cmp, worst.length ? t("reportWorst", { names: worst.join("、") }) : ""), tbl);
  } catch (e) { notice(e); }
}

// ---- language, clock, wiring ---------------------------------------------------------
function applyLang() {
  document.documentElement.lang = S.lang === "zh" ? "zh-CN" : "en";
  $$("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
  $$("[data-i18n-placeholder]").forEach((n) => { n.placeholder = t(n.dataset.i18nPlaceholder); });
  $("#conn-state").textContent = t($("#conn-state").dataset.state);
  $("#lang").textContent = S.lang === "zh" ? "English" : "中文";
  $("#lang").lang = S.lang === "zh" ? "en" : "zh-CN";
  if (S.audio?.state === "running") $("#sound").textContent = t("soundOn");
  whoText();
  $("#notice").hidden = true; // a notice in the other language would stay for its 6 s
  if (S.map) { S.map.remove(); S.map = null; }
  if (S.ov) route();
}
function tick() {
  if (S.clockFmt) $("#clock").textContent = S.clockFmt.format(new Date(serverNow()));
  tickCountdowns();
  if (S.lostAt) lostBanner();
}
document.addEventListener("DOMContentLoaded", () => {
  try { S.lang = localStorage.getItem("lang") === "en" ? "en" : "zh"; } catch (_) { /* no storage */ }
  setZone("Asia/Shanghai");
  applyLang();
  $("#login-form").addEventListener("submit", submitLogin);
  $("#login").addEventListener("cancel", (e) => e.preventDefault());
  $("#lang").addEventListener("click", () => {
    S.lang = S.lang === "zh" ? "en" : "zh";
    try { localStorage.setItem("lang", S.lang); } catch (_) { /* no storage */ }
    applyLang();
  });
  $("#sound").addEventListener("click", enableSound);
  $("#logout").addEventListener("click", async () => { try { await api("POST", "/api/logout"); } finally { location.hash = ""; location.reload(); } });
  $("#st-series").addEventListener("change", () => drawTrend().catch((e) => notice(e)));
  $("#report-month").addEventListener("change", loadReport);
  $("#report-print").addEventListener("click", () => window.print());
  $("#plan-push").addEventListener("submit", pushPlan);
  $("#plan-push").file.addEventListener("change", async (ev) => {
    const file = ev.target.files[0];
    $("#plan-file").textContent = file ? file.name : "";
    if (file) $("#plan-push").rules.value = await file.text();
  });
  window.addEventListener("hashchange", route);
  tick(); setInterval(tick, 1000);
  start().catch((e) => notice(e));
  let want = false;
  try { want = sessionStorage.getItem("sound") === "1"; } catch (_) { /* no storage */ }
  if (want) enableSound();
});
