// Duty-room page: overview, risk map, tickets, trends, devices, rules, duty. Plain ES2020,
// no dependencies, nothing from the internet; data goes in via textContent only.
"use strict";

const I18N = {
  zh: {
    overview: "总览", map: "一张图", tickets: "工单", trends: "趋势", devices: "设备",
    rules: "规则", duty: "值班", connecting: "连接中", live: "实时", reconnecting: "重连中",
    enableSound: "启用声音", soundOn: "声音已启用", logout: "退出", login: "登录",
    brokerDown: "消息服务器断开，设备数据暂未接收（broker down）",
    user: "用户名", password: "密码",
    setupHint: "尚无用户：请输入网关控制台上显示的一次性设置令牌，创建第一个管理员。", setupToken: "设置令牌", ok: "确定", cancel: "取消",
    wrongLogin: "用户名或密码错误", locked: "尝试过多，请 {s} 秒后再试",
    latestByPoint: "各监测点最新数据", deviceHealth: "设备状态", openTickets: "未关闭工单",
    pickPoint: "点击监测点查看详情", showClosed: "含已关闭", ledgerCsv: "导出台账 CSV",
    ledgerXlsx: "导出台账 Excel", series: "序列", editRules: "编辑规则文件", check: "校验",
    save: "保存并加载", replay: "回放", runReplay: "运行回放", onDuty: "当前值班",
    countyAbove: "上级：{county}", countyDeadlines: "未应答时县级介入：", countyNone: "留在乡镇",
    handover: "交接班", handTo: "接班人", note: "备注", submitHandover: "提交交接",
    history: "交接记录", monthlyReport: "月度安全形势分析报告", month: "月份", record: "记录", warnings: "预警", levelWarnings: "{lv}预警", levelWarning: "{lv}预警", hazards: "隐患", faults: "设备故障",
    online: "在线", offline: "离线", faulty: "故障", level: "级别", title: "标题",
    state: "状态", age: "持续", deadline: "期限", overdue: "超期", kind: "类别",
    point: "监测点", device: "设备", value: "数值", time: "时间", lastSeen: "最后上报",
    battery: "电量", signal: "信号", errors: "错误计数", firmware: "固件", latest: "最新数据",
    dtus: "4G DTU", link: "连接", since: "注册时间", silent: "静默", dtuCounts: "计数",
    registered: "注册", taken_over: "重连接管", refused_duplicate: "重复注册被拒",
    closed_idle: "超时关闭", garbage: "乱码", refused_unknown: "未知注册被拒",
    never_registered: "未注册关闭", dtuPort: "端口 {port}（未识别的连接）",
    none: "无", ack: "签收", mute: "静音", muteReason: "静音原因（必填）",
    muteTitle: "静音此预警", reasonNeeded: "请填写原因", actionNote: "备注", timeline: "时间线",
    acknowledged: "已确认", by: "由 {by}", noOpen: "暂无未关闭工单", alarmNew: "新预警",
    confirm: "确认", control: "管控", rectify: "整改", close: "核销", dismiss: "撤销",
    lift: "解除预警", lower: "降级", blue: "蓝色", yellow: "黄色", orange: "橙色", red: "红色",
    discovered: "发现", confirmed: "已确认", controlled: "管控中", rectified: "已整改",
    closed: "已核销", dismissed: "已撤销", issued: "预警中", lifted: "已解除",
    hazard: "隐患", device_fault: "设备故障", warning: "预警", calls: "呼叫",
    chRobot: "群机器人", chThrottled: "限流中，消息排队合并发送", chFailing: "发送失败",
    deliveries: "推送", failed: "失败：{msg}", saved: "已保存", valid: "校验通过：{n} 条规则",
    rule: "规则", ruleState: "当前状态（未关闭）", metric: "指标", levels: "阈值", fileErrors: "文件错误", transitions: "变化",
    noTransitions: "该时段内无预警变化", nobody: "无人值班", open: "未关闭事项", from: "交班",
    to: "接班", at: "时间", readOnly: "只读", accumulated: "累计", noData: "无数据",
    role_viewer: "只读", role_duty_officer: "值班员", role_technician: "技术员",
    role_leader: "领导", role_admin: "管理员", suggestion: "建议", reason: "原因",
    mutedBy: "{by} 已静音：{reason}", h1: "1小时", h6: "6小时", d1: "24小时", d7: "7天",
    d30: "30天", opened: "发生", raised: "升级", level_changed: "级别变化",
    condition_cleared: "条件已解除", fault_cleared: "故障恢复", fault_again: "故障复现",
    step: "处置", reported: "上报", warning_issued: "发布预警", warning_raised: "预警升级",
    warning_lowered: "预警降级", suggest_lower: "建议降级", called: "呼叫", escalated: "督导升级",
    acknowledged_ev: "已签收", lowerTo: "降至哪一级（blue/yellow/orange）", online_n: "在线 {n}",
    board: "叫应", boardTitle: "叫应情况", noWarnings: "暂无生效预警", answerIn: "应答剩余",
    escalateIn: "升级倒计时", countyIn: "县级介入倒计时", countyLate: "已超过县级时限 {d}，县里已介入", exhaustedNote: "已无可升级人员，请值班室处置", round: "第{n}轮",
    call_pending: "呼叫中", call_acknowledged: "已应答", call_not_reached: "未接通",
    call_escalated: "已升级", call_superseded: "已由新一轮取代", call_answered: "已接听",
    call_lifted: "预警已解除", deputyFor: "代岗",
    out_sent: "已发送", out_failed: "发送失败", out_pending: "待发送", out_confirmed: "按1确认",
    out_answered: "接听未确认", out_busy: "占线/拒接", out_no_answer: "无人接听",
    out_stopped: "已停止", out_throttled: "限流", out_sirens: "已鸣警报", out_queued: "排队中",
    out_sending: "发送中", out_dead: "放弃发送", out_delivered: "已送达",
    ch_sms: "短信", ch_voice: "电话", ch_robot: "群机器人", ch_broadcast: "广播", ch_mqtt: "手持终端",
    ch_siren: "警报器", ch_dashboard: "值班室", ch_webhook: "接口推送",
    grid_point: "监测点", grid_group: "村民小组", grid_village: "村", grid_township: "乡镇",
    grid_county: "县", grid_duty: "值班室", role_grid_member: "网格员",
    since2: "自", stale: "数据已过时（{age}前）", streamLost: "与网关的连接已断开，画面数据已停止更新（{age}）",
    overdueBy: "已超时 {d}", lift_s: "解除", cond_cleared: "条件已解除",
    err_400: "请求无效", err_401: "请重新登录", err_403: "无权限执行此操作", err_404: "对象不存在",
    err_409: "当前状态不允许此操作", err_422: "填写内容有误", err_429: "操作过于频繁，请稍后",
    err_500: "网关内部错误", err_503: "服务暂不可用", err_net: "无法连接网关",
    batt: "电池 {v}", sig: "信号 {v}", sig_good: "好", sig_fair: "一般", sig_poor: "差",
    err_counts: "校验错误 {c} 次，超时 {o} 次，格式错误 {m} 次", no_errors: "无错误",
    variants: "非标准帧", conformant: "符合标准", variantCount: "{n} 帧", pictures: "图片",
    showPictures: "查看 {n} 张", picturesOf: "{name}的图片", observedAt: "观测时间 {t}",
    picSize: "{kb} 千字节", closePictures: "关闭", noPictures: "暂无图片",
    pickHandTo: "选择接班人", kind_threshold: "阈值", kind_accumulation: "累计", kind_rate: "变化速率", kind_no_data: "无数据", kind_compound: "组合", kind_fault: "设备故障", atLine: "第 {n} 行：", trigger: "（触发值）", rainRank: "雨量排行（毫米）", h3: "3小时", mapBackground: "底图", pointsDevices: "监测点与设备", normal: "正常", responsible: "责任人", perReport: "每次上报", perBucket: "时段合计", accum: "{w}累计",
  },
  en: {
    overview: "Overview", map: "Risk map", tickets: "Tickets", trends: "Trends",
    devices: "Devices", rules: "Rules", duty: "Duty", connecting: "Connecting", live: "Live",
    reconnecting: "Reconnecting", enableSound: "Enable sound", soundOn: "Sound on",
    brokerDown: "Broker down: device data is not arriving",
    logout: "Log out", login: "Log in", user: "User", password: "Password",
    setupHint: "No users yet: enter the one-time setup token the gateway printed on its console to create the first admin.",
    setupToken: "Setup token", ok: "OK", cancel: "Cancel",
    wrongLogin: "Wrong name or password", locked: "Too many tries; wait {s} s",
    latestByPoint: "Latest by monitoring point", deviceHealth: "Device health",
    openTickets: "Open tickets", pickPoint: "Pick a point for its detail",
    showClosed: "Include closed", ledgerCsv: "Ledger CSV", ledgerXlsx: "Ledger Excel",
    series: "Series", editRules: "Edit a rules file", check: "Check", save: "Save and load",
    replay: "Replay", runReplay: "Run replay", onDuty: "On duty now",
    countyAbove: "Above: {county}", countyDeadlines: "The county steps in when unanswered after: ", countyNone: "stays with the township", handover: "Handover",
    handTo: "Hand over to", note: "Note", submitHandover: "Hand over", history: "History", monthlyReport: "Monthly safety situation report", month: "Month", record: "Record",
    warnings: "Warnings", levelWarnings: "{lv} warnings", levelWarning: "{lv} warning", hazards: "Hazards", faults: "Device faults", online: "Online",
    offline: "Offline", faulty: "Faulty", level: "Level", title: "Title", state: "State",
    age: "Age", deadline: "Deadline", overdue: "Overdue", kind: "Kind", point: "Point",
    device: "Device", value: "Value", time: "Time", lastSeen: "Last seen",
    battery: "Battery", signal: "Signal", errors: "Errors", firmware: "Firmware",
    dtus: "4G DTUs", link: "Link", since: "Registered", silent: "Silent", dtuCounts: "Counts",
    registered: "registered", taken_over: "taken over", refused_duplicate: "refused (duplicate)",
    closed_idle: "closed idle", garbage: "garbage", refused_unknown: "refused (unknown)",
    never_registered: "never registered", dtuPort: "Port {port} (unidentified connections)",
    latest: "Latest", none: "None", ack: "Sign for it", mute: "Mute",
    muteReason: "Why mute (required)", muteTitle: "Mute this warning",
    reasonNeeded: "A reason is needed", actionNote: "Note", timeline: "Timeline",
    acknowledged: "Acknowledged", by: "by {by}", noOpen: "No open tickets",
    alarmNew: "New warning", confirm: "Confirm", control: "Control", rectify: "Rectify",
    close: "Write off", dismiss: "Dismiss", lift: "Lift", lower: "Lower", blue: "Blue",
    yellow: "Yellow", orange: "Orange", red: "Red", discovered: "Discovered",
    confirmed: "Confirmed", controlled: "Controlled", rectified: "Rectified",
    closed: "Closed", dismissed: "Dismissed", issued: "In force", lifted: "Lifted",
    hazard: "Hazard", device_fault: "Device fault", warning: "Warning", calls: "Calls",
    chRobot: "Group robot", chThrottled: "rate-limited, messages queued and merged", chFailing: "failing",
    deliveries: "Deliveries", failed: "Failed: {msg}", saved: "Saved",
    valid: "Valid: {n} rules", rule: "Rule", ruleState: "Now (open)", metric: "Metric", levels: "Thresholds",
    fileErrors: "File errors", transitions: "Transitions",
    noTransitions: "No warning changes in this period", nobody: "Nobody on duty",
    open: "Open items", from: "From", to: "To", at: "At", readOnly: "read-only",
    accumulated: "accumulated", noData: "No data", role_viewer: "viewer",
    role_duty_officer: "duty officer", role_technician: "technician", role_leader: "leader",
    role_admin: "admin", suggestion: "Suggestion", reason: "Reason",
    mutedBy: "muted by {by}: {reason}", h1: "1 h", h6: "6 h", d1: "24 h", d7: "7 days",
    d30: "30 days", opened: "opened", raised: "raised", level_changed: "level changed",
    condition_cleared: "condition cleared", fault_cleared: "fault cleared",
    fault_again: "fault again", step: "step", reported: "reported",
    warning_issued: "warning issued", warning_raised: "warning raised",
    warning_lowered: "warning lowered", suggest_lower: "lowering suggested", called: "called",
    escalated: "escalated", acknowledged_ev: "signed for", lowerTo: "Lower to (blue/yellow/orange)", online_n: "online {n}",
    board: "Call board", boardTitle: "Call and answer", noWarnings: "No warnings in force",
    answerIn: "Answer due in", escalateIn: "Escalates in", countyIn: "County steps in in", countyLate: "{d} past the county's deadline: the county has stepped in", exhaustedNote: "Nobody left to escalate to: the duty room must act",
    round: "round {n}", call_pending: "calling", call_acknowledged: "answered",
    call_not_reached: "not reached", call_escalated: "escalated", call_superseded: "superseded by a new round",
    call_answered: "picked up", call_lifted: "warning lifted", deputyFor: "deputy",
    out_sent: "sent", out_failed: "failed", out_pending: "waiting", out_confirmed: "confirmed (key 1)",
    out_answered: "picked up, not confirmed", out_busy: "busy/refused", out_no_answer: "no answer",
    out_stopped: "stopped", out_throttled: "rate-limited", out_sirens: "siren sounded", out_queued: "queued",
    out_sending: "sending", out_dead: "given up", out_delivered: "delivered",
    ch_sms: "SMS", ch_voice: "Voice", ch_robot: "Group robot", ch_broadcast: "Broadcast", ch_mqtt: "Handheld",
    ch_siren: "Siren", ch_dashboard: "Duty room", ch_webhook: "Webhook",
    grid_point: "Point", grid_group: "Group", grid_village: "Village", grid_township: "Township",
    grid_county: "County", grid_duty: "Duty room", role_grid_member: "grid member",
    since2: "since", stale: "stale ({age} old)", streamLost: "Connection to the gateway lost: nothing on this screen is updating ({age})",
    overdueBy: "overdue by {d}", lift_s: "lift", cond_cleared: "condition cleared",
    err_400: "Bad request", err_401: "Please log in again", err_403: "You may not do this", err_404: "Not found",
    err_409: "Not allowed in the present state", err_422: "Something in the form is wrong", err_429: "Too many requests; wait a little",
    err_500: "Gateway error", err_503: "Service unavailable", err_net: "Cannot reach the gateway",
    batt: "battery {v}", sig: "signal {v}", sig_good: "good", sig_fair: "fair", sig_poor: "poor",
    err_counts: "{c} checksum errors, {o} timeouts, {m} malformed", no_errors: "no errors",
    variants: "Non-standard frames", conformant: "conformant", variantCount: "{n} frame(s)", pictures: "Pictures",
    showPictures: "Show {n}", picturesOf: "Pictures of {name}", observedAt: "observed {t}",
    picSize: "{kb} KB", closePictures: "Close", noPictures: "No pictures yet",
    pickHandTo: "Choose who takes over", kind_threshold: "threshold", kind_accumulation: "accumulation", kind_rate: "rate", kind_no_data: "no data", kind_compound: "compound", kind_fault: "device fault", atLine: "line {n}: ", trigger: "(value that triggered it)", rainRank: "Rainfall ranking (mm)", h3: "3 h", mapBackground: "Base map", pointsDevices: "Points and devices", normal: "normal", responsible: "Responsible people", perReport: "per report", perBucket: "per period", accum: "{w} total",
  },
};
const LEVELS = ["red", "orange", "yellow", "blue"];
const FINAL = new Set(["closed", "dismissed", "lifted"]);
const FLOW = { // the step that follows a state (gateway/lifecycle.py FLOWS)
  hazard: { discovered: "confirm", confirmed: "control", controlled: "rectify", rectified: "close" },
  device_fault: { discovered: "confirm", confirmed: "rectify", rectified: "close" },
};
const RANGES = [["h1", 3600e3], ["h6", 6 * 3600e3], ["d1", 864e5], ["d7", 7 * 864e5], ["d30", 30 * 864e5]];

const S = {
  lang: "zh", me: null, dash: null, tickets: new Map(), devices: new Map(), muted: new Map(),
  latest: new Map(), page: "overview", detail: null, point: null, range: 864e5, fmt: null,
  es: null, audio: null, alarmTimer: null, renderQueued: false, files: [],
};
window.stationAlarm = { plays: 0, playing: false, lastAt: 0 }; // read by the browser tests

const $ = (s, r = document) => r.querySelector(s);
const $$ = (s, r = document) => [...r.querySelectorAll(s)];
const t = (k, v = {}) => (I18N[S.lang][k] ?? I18N.zh[k] ?? String(k))
  .replace(/\{(\w+)\}/g, (_, x) => String(v[x] ?? ""));

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
// replaceChildren without the nulls of conditional parts
const put = (node, ...kids) => node.replaceChildren(...kids.flat().filter((k) => k != null && k !== false));
function table(heads, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, heads.map((h) => el("th", {}, t(h))))),
    el("tbody", {}, rows));
}

// ---- time -------------------------------------------------------------------------

function setZone(tz) {
  const o = { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  try { S.fmt = new Intl.DateTimeFormat("zh-CN", { ...o, timeZone: tz }); }
  catch (_) { S.fmt = new Intl.DateTimeFormat("zh-CN", { ...o, timeZone: "Asia/Shanghai" }); }
  S.clock = new Intl.DateTimeFormat("zh-CN", { timeZone: S.fmt.resolvedOptions().timeZone,
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", hourCycle: "h23" });
}
const when = (ms) => (ms ? S.fmt.format(new Date(ms)) : "—");
function ago(ms) {
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 90) return `${Math.round(s)}s`;
  if (s < 5400) return `${Math.round(s / 60)}min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)}h`;
  return `${Math.round(s / 86400)}d`;
}
const num = (v) => (v == null ? "—" : Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) < 10 ? 2 : 1));

// ---- API --------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const d = body && body.detail;
    const msg = typeof d === "string" ? d : d && (d.message || (d.errors || []).join("; "))
      || (Array.isArray(d) ? d.map((e) => `${(e.loc || []).join(".")}: ${e.msg}`).join("; ") : "");
    super(msg || `HTTP ${status}`);
    this.status = status; this.body = body; this.raw = msg;
  }
}
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && S.me) headers["X-CSRF-Token"] = S.me.csrf;
  const r = await fetch(path, { method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body) });
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (r.status === 401 && !path.startsWith("/api/login") && !path.startsWith("/api/setup")) {
    showLogin(false);
  }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}
// an API error in the page's language: the status says what happened; the gateway's own
// (English) detail is kept for the technician in the element's title only
function errText(e) {
  if (!(e instanceof ApiError)) return t("err_net");
  const k = `err_${e.status}`;
  return I18N[S.lang][k] ? t(k) : t("err_500");
}
function notice(msg, bad = true) {
  if (msg instanceof Error) { $("#notice").title = msg.message; msg = errText(msg); }
  const n = $("#notice");
  n.textContent = msg; n.hidden = false; n.dataset.bad = bad ? "1" : "0";
  clearTimeout(S.noticeTimer);
  S.noticeTimer = setTimeout(() => { n.hidden = true; }, 6000);
}

// ---- login ------------------------------------------------------------------------

function showLogin(setup) {
  S.me = null;
  if (S.es) { S.es.close(); S.es = null; }
  $("#setup-hint").hidden = !setup; $("#token-row").hidden = !setup;
  $("#token-row input").required = setup;
  const d = $("#login");
  if (!d.open) d.showModal();
  $("input[name=" + (setup ? "token" : "name") + "]", d).focus();
}
async function submitLogin(ev) {
  ev.preventDefault();
  const f = ev.target, setup = !$("#token-row").hidden;
  const body = { name: f.name.value.trim(), password: f.password.value };
  if (setup) body.token = f.token.value.trim();
  try {
    S.me = await api("POST", setup ? "/api/setup" : "/api/login", body);
    f.password.value = ""; $("#login-error").textContent = "";
    $("#login").close();
    await start();
  } catch (e) {
    $("#login-error").textContent = e.status === 429
      ? t("locked", { s: e.body?.detail?.retry_after_s ?? "?" })
      : e.status === 401 ? t("wrongLogin") : e.message;
  }
}

// ---- the snapshot and live events -------------------------------------------------

async function start() {
  if (!S.me) {
    const s = await api("GET", "/api/session");
    if (!s.user) return showLogin(s.setup);
    S.me = s;
  }
  const may = S.me.may;
  $("#who").textContent = `${S.me.user.name} · ${t("role_" + S.me.user.role)}`;
  $("#logout").hidden = false;
  $$("[data-need]").forEach((n) => { n.hidden = !may[n.dataset.need]; });
  S.dash = await api("GET", "/api/dashboard");
  setZone(S.dash.station.timezone);
  $("#station-name").textContent = S.dash.station.name;
  document.title = S.dash.station.name;
  fillSeries();
  await reload();
  connect();
  setInterval(() => showChannels(true), 15000);  // a robot waiting on its limit sends nothing
  route();
}
function showBroker(up) { $("#broker-down").hidden = up !== false; S.brokerDown = up === false; lostBanner(); }
// the gateway's event stream lost: one full-width banner, everything greyed until it is back
function lostBanner() {
  const lost = S.lostAt != null;
  document.body.dataset.lost = lost || S.brokerDown ? "1" : "0";
  const b = $("#stream-lost");
  b.hidden = !lost;
  if (lost) b.textContent = t("streamLost", { age: ago(S.lostAt) });
}
// channels in trouble (a throttled or failing group robot, a modem that does not answer):
// from /api/deliveries, refreshed at most every 5 s while deliveries are recorded
const CH_ZH = { sms: "短信", voice: "电话", robot: "群机器人", broadcast: "广播", mqtt: "手持终端", siren: "警报器", webhook: "webhook" };
let channelsAt = 0;
function showChannels(force) {
  if (!force && Date.now() - channelsAt < 5000) return;
  channelsAt = Date.now();
  api("GET", "/api/deliveries?limit=1").then((d) => {
    const out = [], raw = [];
    for (const [name, c] of Object.entries(d.channels || {})) {
      for (const r of Object.values(c.robots || {})) {
        if (r.throttled) out.push(`${t("chRobot")} ${r.name}：${t("chThrottled")}（${r.queued}）`);
        else if (r.last_error) { out.push(`${t("chRobot")} ${r.name}：${t("chFailing")}`); raw.push(`${r.name}: ${r.last_error}`); }
      }
      // a call no longer needed (answered meanwhile) is not a failure
      if (name !== "robot" && c.last_error && !/not needed any more|cancelled/.test(c.last_error)) {
        out.push(`${t("ch_" + name)}：${t("chFailing")}`); raw.push(`${name}: ${c.last_error}`);
      }
    }
    const el = $("#channels-down");
    el.title = raw.join("\n"); // the gateway's own words, for the technician
    el.textContent = out.join("；");
    el.hidden = out.length === 0;
  }).catch(() => {});
}
async function reload() {
  api("GET", "/api/health").then((h) => showBroker(h.broker?.connected)).catch(() => {});
  showChannels(true);
  const [tk, dv, mu] = await Promise.all([
    api("GET", "/api/tickets?limit=500"), api("GET", "/api/devices"), api("GET", "/api/alarms/muted"),
  ]);
  S.tickets = new Map(tk.map((x) => [x.id, x]));
  S.devices = new Map(dv.map((d) => [d.id, d]));
  for (const d of dv) for (const [m, v] of Object.entries(d.metrics)) {
    if (v.ts != null) S.latest.set(`${d.id}/${m}`, { ts: v.ts, value: v.value });
  }
  S.muted = new Map(mu.muted.map((m) => [m.ticket, m]));
  await loadBoard(true);
  schedule();
}
// the 叫应 board: fetched on load and after ticket/delivery events (at most every 1 s)
let boardAt = 0, boardTimer = null;
async function loadBoard(force) {
  if (!force && Date.now() - boardAt < 1000) {
    if (!boardTimer) boardTimer = setTimeout(() => { boardTimer = null; loadBoard(true); }, 1000);
    return;
  }
  boardAt = Date.now();
  try {
    const b = await api("GET", "/api/board");
    S.skew = b.now - Date.now();
    S.board = new Map(b.warnings.map((w) => [w.ticket, w]));
    schedule();
  } catch (_) { /* the stream banner says when the gateway is gone */ }
}
function connect() {
  if (S.es) S.es.close();
  const es = new EventSource("/api/events");
  S.es = es;
  const conn = $("#conn-state");
  es.onopen = () => {
    conn.dataset.state = "live"; conn.textContent = t("live"); S.lostAt = null; lostBanner();
    reload().catch(() => {});
  };
  es.onerror = () => {
    conn.dataset.state = "reconnecting"; conn.textContent = t("reconnecting");
    if (!S.lostAt) S.lostAt = Date.now();
    lostBanner();
    if (es.readyState === EventSource.CLOSED) {
      setTimeout(() => api("GET", "/api/session").then((s) => (s.user ? connect() : showLogin(s.setup))), 3000);
    }
  };
  const on = (name, fn) => es.addEventListener(name, (e) => { fn(JSON.parse(e.data)); schedule(); });
  on("readings", (list) => {
    for (const r of list) {
      S.latest.set(`${r.device}/${r.metric}`, { ts: r.ts, value: r.value, fresh: true });
      const dv = S.devices.get(r.device);
      if (dv && (dv.last_seen ?? 0) < r.ts) dv.last_seen = r.ts;
      if (r.value) (S.lastActive ??= {})[`${r.device}/${r.metric}`] = r.ts;
    }
    trendLive(list);
    if (S.page === "screen" && S.rainRank) for (const r of list) {
      const row = S.rainRank.find((x) => x.device === r.device && x.metric === r.metric);
      if (row && r.value && !row.counter) row.sums = row.sums.map((v) => v + r.value);
    }
  });
  on("ticket", (tk) => {
    const old = S.tickets.get(tk.id);
    S.tickets.set(tk.id, { ...old, ...tk });
    if (S.detail === tk.id) openTicket(tk.id);
  });
  on("device", (d) => {
    const old = S.devices.get(d.id);
    if (old) S.devices.set(d.id, { ...old, ...d, metrics: old.metrics, health: d.health ?? old.health });
  });
  on("picture", (p) => {  // a station's new picture: its count, and the open list
    const dv = S.devices.get(p.device);
    if (dv) dv.pictures = (dv.pictures ?? 0) + 1;
    if (S.pictures?.id === p.device) showPictures(S.pictures);
  });
  on("mute", (m) => S.muted.set(m.ticket, m));
  on("alarm", () => {});
  on("broker", (b) => { S.brokerDown = b.connected === false; showBroker(b.connected); lostBanner(); });
  on("delivery", () => { showChannels(false); loadBoard(false); });
  es.addEventListener("ticket", () => loadBoard(false));
}
function schedule() {
  if (S.renderQueued) return;
  S.renderQueued = true;
  requestAnimationFrame(() => { S.renderQueued = false; render(); });
}

// ---- pages ------------------------------------------------------------------------

const PAGES = ["screen", "overview", "calls", "map", "tickets", "trends", "devices", "rules", "duty"];
function route() {
  const wall = location.pathname === "/screen";
  document.body.dataset.wall = wall ? "1" : "0";
  const [page, arg] = (location.hash.slice(1) || (wall ? "screen" : "overview")).split("/");
  S.page = PAGES.includes(page) ? page : "overview";
  document.body.dataset.page = S.page;
  for (const p of PAGES) $("#page-" + p).hidden = p !== S.page;
  $$("#nav a").forEach((a) => a.setAttribute("aria-current", a.hash === "#" + S.page ? "page" : "false"));
  if (S.page === "tickets" && arg) openTicket(Number(arg));
  if (S.page === "trends") drawTrend();
  if (S.page === "rules") loadRules();
  if (S.page === "duty") loadDuty();
  if (S.page === "devices") loadDtus();
  // one map: its box moves between the map page and the wall screen's centre
  const mb = $("#map-box"), home = S.page === "screen" ? $("#scr-map") : $("#page-map .cols");
  if (mb.parentElement !== home && (S.page === "screen" || S.page === "map")) { home.prepend(mb); S.map?.invalidateSize(); }
  if (S.page === "screen") loadScreen();
  schedule();
}
function render() {
  if (!S.dash) return;
  renderBanner();
  if (S.page === "overview") { renderOverview(); renderBoard($("#ov-board"), true); }
  if (S.page === "calls") renderBoard($("#board"), false);
  if (S.page === "map") renderMap();
  if (S.page === "screen") renderScreen();
  if (S.page === "tickets") renderQueue();
  if (S.page === "devices") renderDevices();
}
const openTickets = () => [...S.tickets.values()].filter((x) => !FINAL.has(x.state));
const rank = (lv) => (lv ? 4 - LEVELS.indexOf(lv) : 0);
const byLevel = (a, b) => rank(b.level) - rank(a.level) || b.opened_at - a.opened_at;
const pointName = (id) => S.dash.points.find((p) => p.id === id)?.name ?? id ?? "—";
const alarming = () => openTickets()
  .filter((x) => x.kind === "warning" && !x.acknowledged_at && S.muted.get(x.id)?.level !== x.level).sort(byLevel);
const devOf = (id) => S.dash.devices.find((d) => d.id === id);
const devName = (id) => devOf(id)?.name ?? id ?? "—";
// a metric in the station's words: its display name, else a word for its kind
const GUESS = { rain: "雨量", level: "水位", water: "水位", crack: "裂缝位移", disp: "位移", batt: "电池电压", temp: "温度" };
function mname(device, metric) {
  const n = devOf(device)?.metrics[metric]?.name;
  if (n) return n;
  const g = Object.entries(GUESS).find(([k]) => metric?.includes(k));
  return g ? (S.lang === "zh" ? g[1] : metric) : (metric ?? "—");
}
// "1" is the station file's unit of a count or a state: nothing to print beside the number
const shownUnit = (unit) => (unit && unit !== "1" ? unit : "");
const munit = (device, metric) => shownUnit(devOf(device)?.metrics[metric]?.unit);
const ruleName = (id) => S.dash.rules.find((r) => r.id === id)?.name ?? id ?? "—";
// a reason in the page's language: the gateway writes "中文 / English" or two lines
function reasonText(r, device) {
  if (!r) return "";
  if (/^(lower:\w+|lift|condition_cleared)$/.test(r)) return suggestionText(r);
  const parts = String(r).split(/\s*(?:\n| \/ | \| )\s*/);
  const zh = parts.filter((x) => /[\u4e00-\u9fff]/.test(x)), en = parts.filter((x) => !/[\u4e00-\u9fff]/.test(x));
  let out = (S.lang === "zh" ? zh : en).join(" ") || parts.join(" ");
  const ms = device ? Object.keys(devOf(device)?.metrics ?? {}) : [];
  for (const m of ms) out = out.replaceAll(m, mname(device, m)); // the station's words
  return deId(out);
}
function suggestionText(sg) {
  if (!sg) return "";
  const [k, lv] = sg.split(":");
  if (k === "lower" && lv) return `${t("lower")} ${t(lv)}`;
  if (k === "lift") return t("lift");
  return t(k === "condition_cleared" ? "cond_cleared" : k);
}
// the level the series holds now: its open rule-opened ticket's
// the series behind a point's warning: its highest open hazard
function warningSeries(w) {
  return openTickets().filter((x) => x.kind === "hazard" && x.point === w.point && x.device)
    .sort(byLevel)[0] ?? w;
}
// a ticket's title in the page's words: the gateway's titles carry device ids
function ticketTitle(x) {
  const lv = x.level ? t(x.level) : "";
  if (x.kind === "warning" && x.point) return `${pointName(x.point)} ${t("levelWarning", { lv })}`;
  if (x.kind === "hazard" && x.device) return `${x.rule ? ruleName(x.rule) : mname(x.device, x.metric)} ${lv} · ${devName(x.device)}`;
  if (x.kind === "device_fault" && x.device) return `${devName(x.device)} ${t("device_fault")}${x.metric ? " · " + mname(x.device, x.metric) : ""}`;
  return x.title ?? "—";
}
// grid ids in a text (point:p1, village:v1) by their names
const deId = (s) => String(s).replace(/\b(point|village|group|rule|device):([\w.-]+)/g, (_, k, id) => actorText(`${k}:${id}`));
// an actor in words: a rule by its name, a person as named
function actorText(a) {
  if (!a) return "";
  if (a === "desk") return t("grid_duty");
  const [k, id] = a.split(":");
  if (id && k === "rule") return ruleName(id);
  if (id && k === "point") return pointName(id);
  if (id && k === "village") return S.dash.villages[id] ?? id;
  if (id && k === "device") return devName(id);
  return a;
}
function seriesLevel(device, metric) {
  let top = null;
  for (const x of openTickets()) {
    if (x.kind === "device_fault" || !x.level || x.device !== device || x.metric !== metric) continue;
    if (!top || rank(x.level) > rank(top)) top = x.level;
  }
  return top;
}
// a value is stale once older than its device's interval × stale factor (from the health)
function staleAfter(device) {
  const d = S.devices.get(device);
  return d?.stale_after_ms ?? ((d?.interval_s ?? 60) * 3 * 1000);
}
// online: the gateway's judgement, or heard from within its stale time (the health sweep
// runs every [health] check_s, a report is news at once)
const isOnline = (d) => !!d && (d.online || (d.last_seen != null && serverNow() - d.last_seen < staleAfter(d.id)));
const levelTag = (lv) => el("span", { class: "lv", "data-level": lv || "none" }, lv ? t(lv) : "—");

function renderBanner() {
  const list = alarming(), b = $("#banner"), ul = $("ul", b);
  b.hidden = list.length === 0;
  b.dataset.level = list[0]?.level ?? "";
  put(ul, ...list.map((x) => el("li", { "data-ticket": x.id },
    levelTag(x.level), el("strong", {}, ticketTitle(x)), el("span", {}, `${when(x.opened_at)} · ${ago(x.opened_at)}`),
    S.me.may.ack && el("button", { type: "button", class: "ack", onclick: () => ack(x.id) }, t("ack")),
    S.me.may.ack && el("button", { type: "button", class: "mute", onclick: () => mute(x.id) }, t("mute")),
  )));
  alarmLoop(list.length > 0);
}

// ---- 叫应 board ---------------------------------------------------------------------

const serverNow = () => Date.now() + (S.skew ?? 0);
function dur(ms) {
  const s = Math.max(0, Math.round(ms / 1000)), m = Math.floor(s / 60), h = Math.floor(m / 60);
  return h ? `${h}:${String(m % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}` : `${m}:${String(s % 60).padStart(2, "0")}`;
}
// a countdown element: its text is set every second by tickCountdowns
const countdown = (at, label, lateLabel) => el("span", { class: "countdown", "data-due": at, "data-label": label,
  "data-late-label": lateLabel }, `${t(label)} ${dur(at - serverNow())}`);
function tickCountdowns() {
  for (const n of $$("[data-due]")) {
    const left = Number(n.dataset.due) - serverNow();
    n.textContent = left >= 0 ? `${t(n.dataset.label)} ${dur(left)}` : t(n.dataset.lateLabel ?? "overdueBy", { d: dur(-left) });
    n.dataset.late = left < 0 ? "1" : "0";
  }
}
function gridWord(p) { return t(`grid_${p.grid}`); }
function personLine(p) {
  const roles = p.roles.map((r) => t("role_" + r)).join("、");
  return el("li", { class: "callee", "data-person": p.person, "data-state": p.state },
    el("span", { class: "who" }, el("b", {}, p.name), " ",
      el("small", {}, [gridWord(p), roles, p.deputy ? t("deputyFor") : null].filter(Boolean).join(" · ")),
      p.phone ? el("small", { class: "phone" }, ` ${p.phone}`) : null),
    el("span", { class: "chans" }, p.channels.map((c) => el("span", { class: "chan", "data-channel": c.channel, "data-outcome": c.outcome },
      `${t("ch_" + c.channel)} ${t("out_" + c.outcome)}`))),
    el("span", { class: "call-state", "data-state": p.state }, t("call_" + p.state),
      el("small", {}, ` ${when(p.at)}`)));
}
function renderBoard(box, compact) {
  if (!box) return;
  const ws = [...(S.board?.values() ?? [])].sort((a, b) => rank(b.level) - rank(a.level) || a.since - b.since);
  if (!ws.length) return put(box, el("p", { class: "muted" }, t("noWarnings")));
  const byPoint = new Map();
  for (const w of ws) { const k = w.point ?? ""; if (!byPoint.has(k)) byPoint.set(k, []); byPoint.get(k).push(w); }
  put(box, [...byPoint.entries()].map(([pid, list]) => el("section", { class: "board-point", "data-level": list[0].level, "data-point": pid },
    el("h3", {}, levelTag(list[0].level), " ", pointName(pid)),
    list.map((w) => {
      const rounds = new Map();
      for (const p of w.people) { if (!rounds.has(p.round)) rounds.set(p.round, []); rounds.get(p.round).push(p); }
      const lastRound = Math.max(...rounds.keys(), 0), sr = warningSeries(w);
      return el("article", { class: "board-warning", "data-ticket": w.ticket, "data-level": w.level },
        el("div", { class: "board-head" },
          list.length > 1 ? levelTag(w.level) : null, sr.device ? el("b", {}, `${devName(sr.device)} ${mname(sr.device, sr.metric)} ${num(sr.value)} ${munit(sr.device, sr.metric)}`,
            el("small", { class: "muted" }, ` ${t("trigger")}`)) : null,
          el("span", { class: "muted" }, `${sr.rule ? ruleName(sr.rule) + " · " : ""}${t("since2")} ${when(w.since)} ${S.lang === "zh" ? `（${ago(w.since)}）` : `(${ago(w.since)})`}`),
          w.acknowledged_at ? el("span", { class: "call-state", "data-state": "acknowledged" }, `${t("call_acknowledged")} ${w.acknowledged_by ?? ""} ${when(w.acknowledged_at)}`) : null,
          w.answer_due ? countdown(w.answer_due, "answerIn") : null,
          w.escalate_at ? countdown(w.escalate_at, "escalateIn") : null,
          w.county_due ? countdown(w.county_due, "countyIn", "countyLate") : null,
          w.exhausted && !w.acknowledged_at ? el("span", { class: "flag" }, t("exhaustedNote")) : null),
        [...rounds.entries()].filter(([r]) => !compact || r === lastRound).map(([r, ps]) => el("div", { class: "round" },
          rounds.size > 1 ? el("small", { class: "muted" }, t("round", { n: r + 1 })) : null,
          el("ul", { class: "callees" }, ps.map(personLine)))),
        w.people.length ? null : el("p", { class: "muted" }, "—"));
    }))));
  tickCountdowns();
}

function renderOverview() {
  const open = openTickets(), warn = open.filter((x) => x.kind === "warning");
  put($("#counts"), 
    ...LEVELS.map((lv) => el("div", { class: "tile", "data-level": lv },
      el("b", {}, warn.filter((x) => x.level === lv).length), el("span", {}, t("levelWarnings", { lv: t(lv) })))),
    el("div", { class: "tile" }, el("b", {}, open.filter((x) => x.kind === "hazard").length), el("span", {}, t("hazards"))),
    el("div", { class: "tile" }, el("b", {}, open.filter((x) => x.kind === "device_fault").length), el("span", {}, t("faults"))));
  const blocks = S.dash.points.map((p) => el("div", { class: "point" }, el("h3", {}, p.name),
    el("dl", {}, S.dash.devices.filter((d) => d.point === p.id).flatMap((d) =>
      Object.entries(d.metrics).map(([m, spec]) => {
        const r = S.latest.get(`${d.id}/${m}`), lv = seriesLevel(d.id, m);
        const stale = r && serverNow() - r.ts > staleAfter(d.id);
        return el("div", { class: r?.fresh ? "fresh" : "", "data-series": `${d.id}/${m}`,
          "data-level": lv ?? "none", "data-stale": stale ? "1" : "0" },
          el("dt", {}, `${mname(d.id, m)} · ${d.name}`),
          el("dd", {}, el("b", {}, r ? num(r.value) : "—"), r ? ` ${shownUnit(spec.unit)}` : "",
            el("small", {}, r ? (stale ? t("stale", { age: ago(r.ts) }) : when(r.ts)) : "")));
      })))));
  put($("#latest"), ...blocks);
  const devs = [...S.devices.values()];
  const faulty = new Set(open.filter((x) => x.kind === "device_fault").map((x) => x.device));
  put($("#health"), 
    el("div", { class: "tile", "data-ok": "1" }, el("b", {}, devs.filter(isOnline).length), el("span", {}, t("online"))),
    el("div", { class: "tile", "data-ok": "0" }, el("b", {}, devs.filter((d) => !isOnline(d)).length), el("span", {}, t("offline"))),
    el("div", { class: "tile", "data-ok": "0" }, el("b", {}, faulty.size), el("span", {}, t("faulty"))));
  put($("#ov-tickets"), ticketTable(open.sort(byLevel).slice(0, 8)));
}

function ticketTable(list) {
  if (!list.length) return el("p", { class: "muted" }, t("noOpen"));
  const now = Date.now();
  return table(["level", "kind", "title", "state", "age", "deadline"], list.map((x) => {
    const late = x.due_at && x.due_at < now && !FINAL.has(x.state);
    return el("tr", { "data-ticket": x.id, class: late ? "late" : "", tabindex: 0, "aria-selected": String(S.detail === x.id),
      onclick: () => { location.hash = `#tickets/${x.id}`; },
      onkeydown: (e) => { if (e.key === "Enter") location.hash = `#tickets/${x.id}`; } },
    el("td", {}, levelTag(x.level)), el("td", {}, t(x.kind)),
    el("td", {}, ticketTitle(x), !x.acknowledged_at && x.kind === "warning" ? el("span", { class: "flag" }, " ●") : null),
    el("td", {}, t(x.state)), el("td", {}, ago(x.opened_at)),
    el("td", {}, deadlineCell(x, late)));
  }));
}

// 期限: a warning's answer deadline / next escalation (live), else the lifecycle deadline
function deadlineCell(x, late) {
  const b = S.board?.get(x.id);
  if (b?.answer_due) return countdown(b.answer_due, "answerIn");
  if (b?.escalate_at) return countdown(b.escalate_at, "escalateIn");
  if (b?.acknowledged_at) return t("call_acknowledged");
  return [x.due_at ? when(x.due_at) : "—", late ? el("span", { class: "flag" }, ` ${t("overdue")}`) : null];
}
function pointState(pid) {
  const open = openTickets().filter((x) => x.point === pid && x.kind !== "device_fault").sort(byLevel);
  const top = open[0];
  return { level: top?.level ?? "", blink: open.some((x) => x.kind === "warning" && !x.acknowledged_at), open };
}
// ---- the wall screen (/screen): 1920×1080, no scrolling, readable across the room ----

const RAIN_WINDOWS = [["h1", 36e5], ["h3", 3 * 36e5], ["d1", 864e5]];
let screenAt = 0;
async function loadScreen() {
  if (Date.now() - screenAt < 30000 && S.rainRank) return;
  screenAt = Date.now();
  try {
    const people = await api("GET", "/api/people");
    S.onDuty = people.on_duty;
    S.people = people.people;
  } catch (_) { /* viewer without people: shown as nobody */ }
  const gauges = S.dash.devices.flatMap((d) => Object.keys(d.metrics).filter((m) => /rain/.test(m)).map((m) => [d.id, m]));
  const now = Date.now();
  S.rainRank = await Promise.all(gauges.map(async ([device, metric]) => {
    const q = new URLSearchParams({ device, metric, from: now - 864e5, to: now + 1, limit: 100000 });
    try {
      const r = await api("GET", `/api/readings?${q}`);
      // a cumulative counter (rain_total_mm) rises: the window's rain is its rise
      const counter = /total|cum/.test(metric);
      return { device, metric, counter, sums: RAIN_WINDOWS.map(([, ms]) => {
        const w = r.points.filter((p) => p.ts > now - ms && p.value != null);
        if (!counter) return w.reduce((a, p) => a + p.value, 0);
        let rise = 0;
        for (let i = 1; i < w.length; i++) rise += Math.max(0, w[i].value - w[i - 1].value);
        return rise;
      }) };
    } catch (_) { return { device, metric, sums: [0, 0, 0] }; }
  }));
  schedule();
}
function renderScreen() {
  const open = openTickets(), warn = open.filter((x) => x.kind === "warning");
  put($("#scr-levels"), LEVELS.map((lv) => el("div", { class: "tile", "data-level": lv },
    el("b", {}, warn.filter((x) => x.level === lv).length), el("span", {}, t("levelWarnings", { lv: t(lv) })))));
  renderBoard($("#scr-board"), true);
  $("#scr-duty").textContent = S.onDuty ? S.onDuty.name : t("nobody");
  const devs = [...S.devices.values()];
  put($("#scr-devices"),
    el("div", { class: "tile", "data-ok": "1" }, el("b", {}, devs.filter(isOnline).length), el("span", {}, t("online"))),
    el("div", { class: "tile", "data-ok": "0" }, el("b", {}, devs.filter((d) => !isOnline(d)).length), el("span", {}, t("offline"))));
  const rows = [...(S.rainRank ?? [])].sort((a, b) => b.sums[0] - a.sums[0] || b.sums[2] - a.sums[2]).slice(0, 10);
  // a station with two rain series (SL651's PT total and PJ current rain): each row says which
  const several = (d) => (S.rainRank ?? []).filter((x) => x.device === d).length > 1;
  put($("#scr-rain"), rows.length ? table(["device", "h1", "h3", "d1"], rows.map((r) => el("tr", { "data-device": r.device },
    el("td", {}, several(r.device) ? `${devName(r.device)} · ${mname(r.device, r.metric)}` : devName(r.device)), r.sums.map((v) => el("td", { class: "num" }, num(+v.toFixed(1))))))) : el("p", { class: "muted" }, t("noData")));
  renderMap();
}

// ---- the one map (一张图): vendored Leaflet over the station's offline GeoJSON layers ----

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
const KIND_STYLE = {
  boundary: { color: "#c8d6a0", weight: 2, dashArray: "6 4", fillOpacity: 0.06 },
  river: { color: "#4aa8ff", weight: 4 },
  road: { color: "#d9c8a0", weight: 3 },
  route: { color: "#3ccf7a", weight: 4, dashArray: "10 6" },
  hazard: { color: "#ff6b5f" }, shelter: { color: "#3ccf7a" }, other: { color: "#9fb0c0", weight: 2 },
};
const KIND_WORD = { zh: { boundary: "村界", river: "河流", road: "道路", route: "转移路线", hazard: "隐患点", shelter: "避险点", other: "其他" },
  en: { boundary: "boundary", river: "river", road: "road", route: "evacuation route", hazard: "hazard point", shelter: "shelter", other: "other" } };
// a device's level: the highest open (non-fault) level over its series
function deviceLevel(id) {
  return openTickets().filter((x) => x.device === id && x.kind !== "device_fault" && x.level).sort(byLevel)[0]?.level ?? null;
}
async function buildMap() {
  const L = await loadLeaflet(), box = $("#map-box");
  if (S.map) return S.map;
  const m = L.map(box, { zoomSnap: 0.25, attributionControl: false, preferCanvas: false });
  S.map = m; box.leaflet = m; window.stationMap = m; // read by the browser tests
  // village names lie under the markers: a warning's marker is never hidden by a label
  m.createPane("labels").style.zIndex = 450;
  const over = {}, b = S.dash.map.bounds;
  if (S.dash.map.background && b) {
    over[t("mapBackground")] = L.imageOverlay(S.dash.map.background, [[b[1], b[0]], [b[3], b[2]]], { className: "map-bg", opacity: 0.85 }).addTo(m);
  }
  for (const ly of S.dash.map.layers || []) {
    try {
      const gj = await api("GET", ly.url), st = { ...(KIND_STYLE[ly.kind] || KIND_STYLE.other) };
      if (ly.color) st.color = ly.color;
      const layer = L.geoJSON(gj, { style: () => st,
        pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 7, color: "#000", weight: 1, fillColor: st.color, fillOpacity: 0.9 }),
        onEachFeature: (f, l) => { if (f.properties?.name) l.bindTooltip(f.properties.name, ly.kind === "boundary"
          ? { permanent: true, direction: "center", className: "map-label", pane: "labels" } : { direction: "top" }); } });
      layer.options.kind = ly.kind;
      over[`${ly.name}`] = layer;
      if (ly.visible) layer.addTo(m);
    } catch (e) { notice(e); }
  }
  S.markerLayer = L.layerGroup().addTo(m);
  over[t("pointsDevices")] = S.markerLayer;
  L.control.layers(null, over, { collapsed: false, position: "topright" }).addTo(m);
  L.control.scale({ imperial: false }).addTo(m);
  const legend = L.control({ position: "bottomleft" });
  legend.onAdd = () => el("div", { class: "map-legend" },
    LEVELS.map((lv) => el("div", {}, el("i", { class: "sw", "data-level": lv }), t(lv))),
    el("div", {}, el("i", { class: "sw", "data-level": "none" }), t("normal")),
    (S.dash.map.layers || []).map((ly) => el("div", {}, el("i", { class: `sw kind-${ly.kind}`, style: `background:${ly.color || (KIND_STYLE[ly.kind] || KIND_STYLE.other).color}` }), ly.name)));
  legend.addTo(m);
  const pts = S.dash.points.filter((p) => p.lon != null && p.lat != null);
  if (b) m.fitBounds([[b[1], b[0]], [b[3], b[2]]]);
  else if (pts.length) m.fitBounds(pts.map((p) => [p.lat, p.lon]), { padding: [60, 60], maxZoom: 15 });
  else m.setView([30, 114], 5);
  S.mapMarkers = new Map();
  for (const p of pts) {
    const devs = S.dash.devices.filter((d) => d.point === p.id);
    const pm = L.marker([p.lat, p.lon], { icon: L.divIcon({ className: "", iconSize: null,
      html: `<button type="button" class="marker" data-point="${p.id}" aria-label=""><span></span></button>` }), keyboard: false })
      .on("click", () => { S.point = p.id; renderMapDetail(); }).addTo(S.markerLayer);
    S.mapMarkers.set(`p:${p.id}`, pm);
    devs.forEach((d, i) => { // devices in a ring around their point, on screen pixels
      const ang = (i / Math.max(1, devs.length)) * 2 * Math.PI - Math.PI / 2, r = 26;
      const dm = L.marker([p.lat, p.lon], { icon: L.divIcon({ className: "", iconSize: null,
        html: `<span class="dev-marker" data-device="${d.id}" style="transform:translate(${(Math.cos(ang) * r).toFixed(1)}px,${(Math.sin(ang) * r).toFixed(1)}px) translate(-50%,-50%)"></span>` }), keyboard: false })
        .on("click", () => { S.point = p.id; renderMapDetail(); }).addTo(S.markerLayer);
      S.mapMarkers.set(`d:${d.id}`, dm);
    });
  }
  return m;
}
async function renderMap() {
  if (!S.map) {
    if (S.mapBuilding) return;
    S.mapBuilding = true;
    try { await buildMap(); } finally { S.mapBuilding = false; }
  }
  S.map.invalidateSize();
  for (const p of S.dash.points) {
    const n = $(`.marker[data-point="${p.id}"]`, $("#map-box"));
    if (!n) continue;
    const st = pointState(p.id);
    n.dataset.level = st.level || "none"; n.dataset.blink = st.blink ? "1" : "0";
    n.setAttribute("aria-label", p.name); n.firstChild.textContent = p.name;
  }
  for (const d of S.dash.devices) {
    const n = $(`.dev-marker[data-device="${d.id}"]`, $("#map-box"));
    if (!n) continue;
    const lv = deviceLevel(d.id), dv = S.devices.get(d.id);
    n.dataset.level = lv ?? "none"; n.dataset.online = isOnline(dv) ? "1" : "0";
    n.dataset.blink = lv && openTickets().some((x) => x.kind === "warning" && x.point === d.point && !x.acknowledged_at) ? "1" : "0";
    n.title = `${d.name}${dv && !isOnline(dv) ? " · " + t("offline") : ""}`;
  }
  renderMapDetail();
}
async function renderMapDetail() {
  if (!S.point) return;
  const p = S.dash.points.find((q) => q.id === S.point), st = pointState(S.point);
  if (!S.people) { try { S.people = (await api("GET", "/api/people")).people; } catch (_) { S.people = []; } }
  const resp = S.people.filter((x) => x.grid === `point:${p.id}` || x.grid === `village:${p.village}`);
  put($("#map-detail"), el("h2", {}, p.name), el("p", {}, S.dash.villages[p.village] ?? ""),
    el("h3", {}, t("latest")),
    el("dl", {}, S.dash.devices.filter((d) => d.point === p.id).flatMap((d) =>
      Object.keys(d.metrics).map((m) => {
        const r = S.latest.get(`${d.id}/${m}`), lv = seriesLevel(d.id, m);
        return el("div", { "data-level": lv ?? "none" }, el("dt", {}, `${mname(d.id, m)} · ${d.name}`),
          el("dd", {}, r ? `${num(r.value)} ${munit(d.id, m)} · ${when(r.ts)}` : "—"));
      }))),
    el("h3", {}, t("responsible")),
    resp.length ? el("ul", { class: "resp" }, resp.map((x) => el("li", {}, el("b", {}, x.name), " ",
      el("small", {}, [t(`grid_${x.grid.split(":")[0]}`), ...x.roles.map((r) => t("role_" + r))].join(" · "))))) : el("p", { class: "muted" }, t("none")),
    el("h3", {}, t("openTickets")), ticketTable(st.open));
}

function renderQueue() {
  const all = $("#show-all").checked;
  const list = [...S.tickets.values()].filter((x) => all || !FINAL.has(x.state)).sort(byLevel);
  put($("#queue"), ticketTable(list));
}
async function openTicket(id) {
  S.detail = id;
  let d;
  try { d = await api("GET", `/api/tickets/${id}`); } catch (e) { return notice(e); }
  S.tickets.set(id, { ...S.tickets.get(id), ...d });
  const may = S.me.may, steps = new Set(may.steps?.[d.kind] ?? []), acts = [];
  if (!FINAL.has(d.state)) {
    if (may.ack && !d.acknowledged_at) acts.push(["ack", () => ack(id)]);
    const next = FLOW[d.kind]?.[d.state];
    if (next && steps.has(next)) acts.push([next, () => act(id, next)]);
    for (const s of ["dismiss", "lift", "lower"]) if (steps.has(s)) acts.push([s, () => act(id, s)]);
  }
  const lines = [
    ...d.events.filter((e) => e.kind !== "called").map((e) => ({ at: e.at, text: `${t(e.kind === "acknowledged" ? "acknowledged_ev" : e.kind)} ${actorText(e.actor)}${e.role ? ` (${t("role_" + e.role)})` : ""}${e.level ? ` ${t(e.level)}` : ""}${e.note ? ` — ${/^(lower:\w+|lift|condition_cleared)$/.test(e.note) ? suggestionText(e.note) : e.note}` : ""}${e.reason ? ` — ${reasonText(e.reason, d.device ?? warningSeries(d).device)}` : ""}`, kind: e.kind })),
    ...callLines(d),
  ].sort((a, b) => (a.at ?? 0) - (b.at ?? 0));
  const note = el("textarea", { id: "action-note", rows: 2, maxlength: 2000, "aria-label": t("actionNote"), placeholder: t("actionNote") });
  put($("#ticket-detail"), 
    el("h2", {}, levelTag(d.level), " ", d.code ? `#${d.code} ` : "", ticketTitle(d)),
    el("p", {}, `${t(d.kind)} · ${t(d.state)} · ${pointName(d.point)} · ${when(d.opened_at)}`,
      d.due_at ? ` · ${t("deadline")} ${when(d.due_at)}` : "", d.overdue ? el("span", { class: "flag" }, ` ${t("overdue")}`) : null),
    d.reason ? el("p", { class: "muted" }, reasonText(d.reason, d.device ?? warningSeries(d).device)) : null,
    d.suggestion ? el("p", { class: "flag" }, `${t("suggestion")}：${suggestionText(d.suggestion)}`) : null,
    S.muted.has(id) ? el("p", { class: "muted" }, t("mutedBy", S.muted.get(id))) : null,
    acts.length ? el("div", { class: "actions" }, note, acts.map(([k, fn]) =>
      el("button", { type: "button", "data-action": k, onclick: fn }, t(k)))) : el("p", { class: "muted" }, t("readOnly")),
    el("h3", {}, t("timeline")),
    el("ol", { class: "timeline" }, lines.map((l) => el("li", { "data-kind": l.kind }, el("time", {}, when(l.at)), " ", l.text))));
  renderQueue();
}
// the calls of a ticket grouped: one line per person per round, with the channels tried
function callLines(d) {
  const w = S.board?.get(d.id);
  if (w) return w.people.map((p) => ({ at: p.called_at, kind: "call",
    text: `${t("calls")}：${p.name}（${gridWord(p)}）${p.channels.map((c) => `${t("ch_" + c.channel)}${t("out_" + c.outcome)}`).join("、")} → ${t("call_" + p.state)}` }));
  const seen = new Map();
  for (const c of d.calls) seen.set(`${c.round}/${c.person}`, c);
  return [...seen.values()].map((c) => ({ at: c.called_at, kind: "call",
    text: `${t("calls")}：${c.name} → ${t("call_" + c.outcome)}` }));
}
async function ack(id) {
  const note = $("#action-note")?.value.trim() || null;
  try { await api("POST", `/api/tickets/${id}/ack`, { note }); await refreshTicket(id); }
  catch (e) { notice(t("failed", { msg: errText(e) })); }
}
async function act(id, step) {
  const note = $("#action-note")?.value.trim() || null;
  try {
    if (step === "lift") await api("POST", `/api/tickets/${id}/lift`, { reason: note ?? "" });
    else if (step === "lower") {
      const level = await ask(t("lower"), t("lowerTo"));
      if (!level) return;
      await api("POST", `/api/tickets/${id}/lower`, { level: level.trim() });
    } else await api("POST", `/api/tickets/${id}/steps`, { step, note });
    await refreshTicket(id);
  } catch (e) { notice(t("failed", { msg: errText(e) })); }
}
async function refreshTicket(id) {
  const x = await api("GET", `/api/tickets/${id}`);
  S.tickets.set(id, { ...S.tickets.get(id), ...x });
  if (S.detail === id && S.page === "tickets") await openTicket(id);
  schedule();
}
function ask(title, label) {
  const d = $("#ask"), f = $("#ask-form");
  $("#ask-title").textContent = title; $("#ask-label").textContent = label;
  f.text.value = ""; $("#ask-error").textContent = "";
  d.showModal(); f.text.focus();
  return new Promise((resolve) => {
    const done = (v) => { f.onsubmit = null; $("#ask-cancel").onclick = null; d.close(); resolve(v); };
    f.onsubmit = (e) => {
      e.preventDefault();
      if (!f.text.value.trim()) { $("#ask-error").textContent = t("reasonNeeded"); return; }
      done(f.text.value.trim());
    };
    $("#ask-cancel").onclick = () => done(null);
  });
}
async function mute(id) {
  const reason = await ask(t("muteTitle"), t("muteReason"));
  if (!reason) return;
  try { S.muted.set(id, await api("POST", `/api/alarms/${id}/mute`, { reason })); schedule(); }
  catch (e) { notice(t("failed", { msg: errText(e) })); }
}

// ---- the alarm: Web Audio, unlocked by one click ------------------------------------

function enableSound() {
  const AC = window.AudioContext || window.webkitAudioContext;
  if (!AC) return;
  S.audio = S.audio || new AC();
  S.audio.resume().then(() => {
    try { sessionStorage.setItem("sound", "1"); } catch (_) { /* no storage */ }
    $("#sound").classList.remove("big");
    document.body.dataset.audio = "ready";
    $("#sound").textContent = t("soundOn"); $("#sound").setAttribute("aria-pressed", "true");
    render();
  });
}
function beep() {
  const a = S.audio, now = a.currentTime;
  for (const [i, f] of [[0, 880], [1, 660], [2, 880]]) {
    const o = a.createOscillator(), g = a.createGain();
    o.type = "square"; o.frequency.value = f;
    g.gain.setValueAtTime(0.0001, now + i * 0.3);
    g.gain.exponentialRampToValueAtTime(0.25, now + i * 0.3 + 0.02);
    g.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.3 + 0.28);
    o.connect(g).connect(a.destination); o.start(now + i * 0.3); o.stop(now + i * 0.3 + 0.3);
  }
  Object.assign(window.stationAlarm, { plays: window.stationAlarm.plays + 1, playing: true, lastAt: Date.now() });
  document.body.dataset.audio = "playing";
}
function alarmLoop(on) {
  const ready = S.audio && S.audio.state === "running";
  if (on && ready && !S.alarmTimer) {
    beep();
    S.alarmTimer = setInterval(beep, (S.dash.alarm_repeat_s || 4) * 1000);
  } else if ((!on || !ready) && S.alarmTimer) {
    clearInterval(S.alarmTimer); S.alarmTimer = null;
  }
  if (!on) {
    window.stationAlarm.playing = false;
    if (S.audio) document.body.dataset.audio = S.audio.state === "running" ? "ready" : "locked";
  }
}

// ---- trends: own SVG charts ---------------------------------------------------------

function fillSeries() {
  const opts = S.dash.devices.flatMap((d) => Object.entries(d.metrics).map(([m, s]) =>
    el("option", { value: `${d.id}/${m}` }, `${d.name} · ${s.name || m} (${s.unit})`)));
  put($("#series"), ...opts);
  put($("#replay-device"), ...S.dash.devices.map((d) => el("option", { value: d.id }, d.name)));
  put($("#replay-range"), ...RANGES.slice(2).map(([k, ms]) => el("option", { value: ms }, t(k))));
  put($("#ranges"), ...RANGES.map(([k, ms]) => el("button", { type: "button",
    "aria-pressed": String(ms === S.range), onclick: () => { S.range = ms; S.rangeChosen = true; drawTrend(); } }, t(k))));
}
function thresholds(device, metric) {
  const out = [];
  for (const r of S.dash.rules) {
    if (r.metric !== metric || (r.devices && !r.devices.includes(device)) || !r.levels) continue;
    for (const [lv, v] of Object.entries(r.levels)) out.push({ level: lv, value: v, rule: r.name });
  }
  return out;
}
// ECharts (vendored, /static/vendor/echarts) is loaded when a chart is first drawn, so the
// first paint of the other pages does not wait for it
let echartsLoad = null;
function loadEcharts() {
  if (window.echarts) return Promise.resolve(window.echarts);
  echartsLoad = echartsLoad || new Promise((resolve, reject) => {
    const sc = el("script", { src: "/static/vendor/echarts/echarts.min.js" });
    sc.onload = () => resolve(window.echarts); sc.onerror = reject;
    document.head.append(sc);
  });
  return echartsLoad;
}
const LEVEL_COLOR = { blue: "#3d8bfd", yellow: "#ffd23f", orange: "#ff8c1a", red: "#ff3b30" };
const ACC_COLOR = ["#5fb4ff", "#c792ea", "#3ccf7a", "#f78c6c"];
// a rule's window ("1m", "3h", "1d") as people say it: 1分钟 / 1 min
const winName = (w) => {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(w ?? "");
  if (!m) return w;
  const units = S.lang === "zh" ? { s: "秒", m: "分钟", h: "小时", d: "天" } : { s: " s", m: " min", h: " h", d: " d" };
  return m[1] + units[m[2]];
};
const secsName = (s) => winName(s % 3600 === 0 ? `${s / 3600}h` : s % 60 === 0 ? `${s / 60}m` : `${s}s`);
const winMs = (w) => { const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(w); return m ? m[1] * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2]] : 0; };
// the accumulation windows rules use on this series: [{win, ms, levels}]
function windowsOf(device, metric) {
  const out = new Map();
  for (const r of S.dash.rules) {
    if (r.metric !== metric || (r.devices && !r.devices.includes(device)) || !r.windows) continue;
    for (const [win, lv] of Object.entries(r.windows)) out.set(win, { win, ms: winMs(win), levels: lv, rule: r.name });
  }
  return [...out.values()].filter((w) => w.ms).sort((a, b) => a.ms - b.ms);
}
// the sum over (ts − W, ts] at each report: the quantity an accumulation rule judges
function rolling(pts, ms) {
  const out = []; let j = 0, acc = 0;
  for (let i = 0; i < pts.length; i++) {
    acc += pts[i].sum;
    while (pts[j].ts <= pts[i].ts - ms) acc -= pts[j++].sum;
    out.push([pts[i].ts, +acc.toFixed(3)]);
  }
  return out;
}
// the window that shows the latest activity: the smallest whose later part holds it
function autoRange(last) {
  if (!last) return 864e5;
  const age = Date.now() - last;
  return (RANGES.find(([, ms]) => age < ms * 0.75) ?? RANGES[RANGES.length - 1])[1];
}
async function drawTrend() {
  const key = $("#series").value;
  if (!key) return;
  const [device, metric] = key.split("/");
  if (!S.rangeChosen) {
    const r = S.latest.get(key);
    S.range = autoRange(r && (r.value || !/rain/.test(metric)) ? r.ts : S.lastActive?.[key] ?? r?.ts);
  }
  $$("#ranges button").forEach((b, i) => b.setAttribute("aria-pressed", String(RANGES[i][1] === S.range)));
  const box = $("#chart"), to = Date.now(), from = to - S.range;
  try { await plot(box, device, metric, from, to, { lines: true }); } catch (e) { notice(e); }
}
async function plot(box, device, metric, from, to, o = {}) {
  const ec = await loadEcharts();
  const rain = /rain/.test(metric) || devOf(device)?.kind === "rain_gauge" && metric.includes("rain");
  const wins = rain ? windowsOf(device, metric) : [];
  const back = Math.max(0, ...wins.map((w) => w.ms));
  const raw = to - from <= 864e5 + 1; // per-report bars up to a day; rollup sums beyond
  const q = new URLSearchParams({ device, metric, from: from - back, to, limit: 100000 });
  if (!raw) q.set("points", Math.round(box.clientWidth || 1000));
  const r = await api("GET", `/api/readings?${q}`);
  const pts = r.points.map((p) => ({ ts: p.ts, v: p.value ?? (p.count ? p.sum / p.count : null), sum: p.sum ?? p.value ?? 0 }))
    .filter((p) => p.v != null);
  const name = mname(device, metric), unit = munit(device, metric);
  const shown = pts.filter((p) => p.ts >= from);
  const thr = o.lines === false ? [] : thresholds(device, metric);
  // per-report lines labelled on the left, each window's on the right with its window's name
  const markLines = (levels, win) => ({ symbol: "none", silent: true, data: levels.map((l) => ({ yAxis: l.value, name: t(l.level),
    lineStyle: { color: LEVEL_COLOR[l.level], type: win ? "solid" : "dashed", width: win ? 1 : 1.5, opacity: 0.9 },
    label: { formatter: `${win ? winName(win) + " " : ""}${t(l.level)} ${l.value}`, color: LEVEL_COLOR[l.level], position: win ? "insideEndTop" : "insideStartTop" } })) });
  const series = [];
  if (rain) {
    series.push({ name: `${name}（${raw ? t("perReport") : t("perBucket")}）`, type: "bar", barMaxWidth: 14,
      itemStyle: { color: "#5fb4ff" }, data: shown.map((p) => [p.ts, p.sum]), markLine: markLines(thr), yAxisIndex: 0 });
    wins.forEach((w, i) => series.push({ name: `${t("accum", { w: winName(w.win) })}`, type: "line", step: "end", showSymbol: false,
      yAxisIndex: 1, lineStyle: { width: 2.5, color: ACC_COLOR[i % ACC_COLOR.length] }, itemStyle: { color: ACC_COLOR[i % ACC_COLOR.length] },
      data: rolling(pts, w.ms).filter(([ts]) => ts >= from),
      markLine: markLines(Object.entries(w.levels).map(([level, value]) => ({ level, value })), w.win) }));
  } else {
    series.push({ name, type: "line", showSymbol: shown.length < 60, data: shown.map((p) => [p.ts, p.v]),
      lineStyle: { width: 2, color: "#5fb4ff" }, itemStyle: { color: "#5fb4ff" }, markLine: markLines(thr) });
  }
  if (o.marks?.length && series[0]) series[0].markLine.data.push(...o.marks.map((m) => ({ xAxis: m.at,
    lineStyle: { color: LEVEL_COLOR[m.level] ?? "#9fb0c0", width: 2 }, label: { formatter: m.level === "none" ? t("cond_cleared") : t(m.level), color: LEVEL_COLOR[m.level] ?? "#9fb0c0" } })));
  const fmt = (v) => when(v);
  const axis = { axisLine: { lineStyle: { color: "#9fb0c0" } }, splitLine: { lineStyle: { color: "#2a3a4a" } }, axisLabel: { color: "#9fb0c0" } };
  const option = {
    animation: false, backgroundColor: "transparent", textStyle: { color: "#e8eef4", fontFamily: "Noto Sans CJK SC, sans-serif" },
    grid: { left: 60, right: rain && wins.length ? 70 : 30, top: 50, bottom: 70 },
    legend: { top: 8, textStyle: { color: "#e8eef4" } },
    tooltip: { trigger: "axis", valueFormatter: (v) => (v == null ? "—" : `${num(v)} ${unit}`), axisPointer: { label: { formatter: (p) => (p.axisDimension === "x" ? fmt(p.value) : num(p.value)) } } },
    dataZoom: [{ type: "inside" }, { type: "slider", height: 22, bottom: 12, labelFormatter: (v) => fmt(v), textStyle: { color: "#9fb0c0" } }],
    xAxis: { type: "time", min: from, max: to, ...axis, axisLabel: { color: "#9fb0c0", formatter: (v) => fmt(v), hideOverlap: true } },
    // each axis reaches its own highest line, so no threshold falls off the chart
    yAxis: [{ type: "value", name: `${name}（${unit}）`, scale: !rain, ...axis, nameTextStyle: { color: "#9fb0c0" },
      max: (v) => +(Math.max(v.max, ...thr.map((l) => l.value)) * 1.08).toPrecision(3) },
      ...(rain && wins.length ? [{ type: "value", name: `${t("accumulated")}（${unit}）`, ...axis, splitLine: { show: false }, nameTextStyle: { color: "#9fb0c0" },
        max: (v) => +(Math.max(v.max, ...wins.flatMap((w) => Object.values(w.levels))) * 1.08).toPrecision(3) }] : [])],
    series,
  };
  let c = ec.getInstanceByDom(box);
  if (!c) { c = ec.init(box, null, { renderer: "canvas" }); new ResizeObserver(() => c.resize()).observe(box); }
  c.setOption(option, { notMerge: true });
  box.dataset.series = `${device}/${metric}`; box.dataset.drawn = String(Date.now());
  box.chartData = { series: series.map((x) => ({ name: x.name, data: x.data, lines: (x.markLine?.data ?? []).filter((d) => d.yAxis != null).map((d) => d.yAxis) })) };
  if (!shown.length) c.setOption({ title: { text: t("noData"), left: "center", top: "middle", textStyle: { color: "#9fb0c0" } } });
}
// a live reading of the series on screen: redrawn at most every 2 s
let trendTimer = null;
function trendLive(list) {
  if (S.page !== "trends" || !list.some((r) => `${r.device}/${r.metric}` === $("#series").value)) return;
  if (trendTimer) return;
  trendTimer = setTimeout(() => { trendTimer = null; drawTrend(); }, 2000);
}

// ---- devices ----------------------------------------------------------------------

function renderDevices() {
  const faults = openTickets().filter((x) => x.kind === "device_fault");
  const cmds = S.me?.may.rules;  // technicians and admins send commands to devices
  put($("#device-table"), table(
    ["device", "point", "online", "lastSeen", "battery", "signal", "errors", "variants", "firmware", "latest", "pictures", "faults", ...(cmds ? [CMD_HEAD()] : [])],
    [...S.devices.values()].map((d) => {
      const h = d.health || {}, e = h.errors || {};
      return el("tr", { "data-device": d.id },
        el("td", {}, d.name), el("td", {}, pointName(d.point)),
        el("td", {}, el("span", { class: "dot", "data-ok": isOnline(d) ? "1" : "0" }, isOnline(d) ? t("online") : t("offline"))),
        el("td", {}, d.last_seen ? `${when(d.last_seen)} (${ago(d.last_seen)})` : "—"),
        el("td", {}, batteryText(d, h)),
        el("td", {}, h.signal != null ? signalText(h.signal) : "—"),
        el("td", {}, (e.crc || e.timeouts || e.malformed)
          ? t("err_counts", { c: e.crc ?? 0, o: e.timeouts ?? 0, m: e.malformed ?? 0 }) : t("no_errors")),
        // frames accepted with a departure from the protocol's standard (the last one on hover)
        el("td", { class: "variants", "data-variants": h.variants ?? 0, title: h.last_variant ?? null },
          h.variants ? el("span", { class: "flag" }, t("variantCount", { n: h.variants })) : t("conformant")),
        el("td", {}, h.firmware ?? "—"),
        el("td", {}, Object.entries(d.metrics).map(([m, v]) => {
          const r = S.latest.get(`${d.id}/${m}`);
          return el("div", {}, `${mname(d.id, m)}：${r ? `${num(r.value)} ${shownUnit(v.unit)}` : "—"}`);
        })),
        el("td", { class: "pictures" }, d.pictures
          ? el("button", { type: "button", "data-pictures": d.id, onclick: () => showPictures(d) },
            t("showPictures", { n: d.pictures }))
          : "—"),
        el("td", {}, faults.filter((x) => x.device === d.id).map((x) =>
          el("a", { href: `#tickets/${x.id}`, class: "flag" }, ticketTitle(x)))),
        cmds ? el("td", { class: "commands" }, commandButtons(d)) : null);
    })));
}

// a station's pictures (SL651 function 36), newest first, at the station's time
async function showPictures(d) {
  let list;
  try { list = await api("GET", `/api/devices/${encodeURIComponent(d.id)}/pictures`); }
  catch (e) { return notice(e); }
  S.pictures = d;
  put($("#picture-panel"),
    el("h3", {}, t("picturesOf", { name: d.name }),
      el("button", { type: "button", class: "close-pictures", onclick: () => { S.pictures = null; put($("#picture-panel")); } }, t("closePictures"))),
    list.length ? el("div", { class: "pictures" }, list.map((p) => el("figure", { "data-picture": p.id },
      el("a", { href: p.url, target: "_blank", rel: "noopener" },
        el("img", { src: p.url, alt: t("observedAt", { t: S.clock.format(new Date(p.observed_at)) }), loading: "lazy" })),
      el("figcaption", {}, t("observedAt", { t: S.clock.format(new Date(p.observed_at)) }),
        el("br", {}), t("picSize", { kb: num(p.bytes / 1024) })))))
      : el("p", {}, t("noPictures")));
}

// battery in words: the health's percent or supply, else the battery metric's latest value
function batteryText(d, h) {
  if (h.battery != null) return `${num(h.battery)}%`;
  if (h.supply_v != null) return `${num(h.supply_v)} V`;
  const m = Object.keys(d.metrics).find((k) => /batt|supply|volt/.test(k));
  const r = m && S.latest.get(`${d.id}/${m}`);
  return r ? `${num(r.value)} ${munit(d.id, m)}` : "—";
}
// signal in words: CSQ 0–31 or dBm
function signalText(v) {
  const q = v < 0 ? (v >= -85 ? "good" : v >= -100 ? "fair" : "poor") : (v >= 15 ? "good" : v >= 10 ? "fair" : "poor");
  return `${t("sig_" + q)}（${num(v)}${v < 0 ? " dBm" : ""}）`;
}

// ---- commands to devices (issue 16): queued, sent after the device's next report ----
const CMD_LABELS = {
  zh: { head: "命令", "clock.set": "校时", "report.now": "立即上报", version: "软件版本", status: "状态报警", "cigem.status": "查询状态", "clock.read": "查询时钟", reboot: "重启设备", queued: "{device}：{cmd} 已排队，设备下次上报后发送", sure: "确定要{cmd}“{device}”吗？设备重启期间不上报数据。" },
  en: { head: "Commands", "clock.set": "Set clock", "report.now": "Report now", version: "Version", status: "Status", "cigem.status": "Status", "clock.read": "Read clock", reboot: "Reboot", queued: "{device}: {cmd} queued; sent after its next report", sure: "{cmd} “{device}”? It reports nothing while it restarts." },
};
// the commands a page button sends without parameters, per transport; the others (a
// register write, a report interval, a component query) go by `stationgw command` or the API
const PAGE_COMMANDS = {
  sl651: ["clock.set", "report.now", "version", "status"],
  cigem: ["clock.read", "cigem.status", "reboot"],
  gb26875: ["clock.set"],
};
const ASK_FIRST = new Set(["reboot"]);
const cmdT = (k, v = {}) => (CMD_LABELS[S.lang]?.[k] ?? CMD_LABELS.zh[k] ?? k).replace(/\{(\w+)\}/g, (_, x) => v[x] ?? "");
const CMD_HEAD = () => cmdT("head");
function commandButtons(d) {
  const names = PAGE_COMMANDS[d.transport];
  if (!names) return "—";
  return names.map((key) => {
    const name = key.replace(/^[a-z0-9_]+\./, (p) => (PAGE_COMMANDS[p.slice(0, -1)] ? "" : p));
    return el("button", { type: "button", "data-command": name, onclick: async () => {
      if (ASK_FIRST.has(name) && !confirm(cmdT("sure", { device: d.name, cmd: cmdT(key) }))) return;
      try {
        await api("POST", `/api/devices/${encodeURIComponent(d.id)}/commands`, { name, args: {} });
        notice(cmdT("queued", { device: d.name, cmd: cmdT(key) }), false);
      } catch (e) { notice(e.message); }
    } }, cmdT(key));
  });
}

// 4G DTUs: the station's names first, counts of registrations and refusals
async function loadDtus() {
  let rows;
  try { rows = await api("GET", "/api/dtus"); } catch { return; }
  if (!rows.length) return put($("#dtu-table"));
  put($("#dtu-table"), el("h3", {}, t("dtus")), table(
    ["device", "link", "since", "silent", "dtuCounts"],
    rows.map((d) => el("tr", { "data-dtu": d.id ?? d.name },
      el("td", {}, d.id ? d.name : t("dtuPort", { port: d.port })),
      el("td", {}, d.id ? el("span", { class: "dot", "data-ok": d.connected ? "1" : "0" },
        d.connected ? `${t("online")} ${d.peer}` : t("offline")) : "—"),
      el("td", {}, d.since ? `${when(d.since)} (${ago(d.since)})` : "—"),
      el("td", {}, d.silent_s != null ? `${num(d.silent_s)} s` : "—"),
      el("td", {}, Object.entries(d.counts).map(([k, n]) => `${t(k)} ${n}`).join(" · ") || "—")))));
}

// ---- rules (technician) -------------------------------------------------------------

async function loadRules() {
  if (!S.me?.may.rules) return;
  try {
    const [st, files] = await Promise.all([api("GET", "/api/rules"), api("GET", "/api/rules/files")]);
    const errs = Object.entries(st.errors || {});
    put($("#rule-table"), 
      table(["rule", "kind", "metric", "levels", "ruleState"], st.rules.map((r) => el("tr", { "data-rule": r.id },
        el("td", {}, r.name, el("small", {}, ` ${r.id}`)), el("td", {}, I18N[S.lang]["kind_" + r.kind] ? t("kind_" + r.kind) : r.kind), el("td", {}, r.metric ? mname(null, r.metric) : "—"),
        el("td", {}, r.levels ? Object.entries(r.levels).map(([lv, v]) => el("span", { class: "lv", "data-level": lv }, `${v}`))
          : r.windows ? Object.entries(r.windows).map(([win, lv]) => `${winName(win)}: ${Object.values(lv).join("/")}`).join("; ") : "—"),
        // the series this rule holds at a level now: its open tickets
        el("td", {}, openTickets().filter((x) => x.rule === r.id).map((x) =>
          el("a", { href: `#tickets/${x.id}`, class: "state", "data-series": x.device ? `${x.device}/${x.metric}` : null },
            levelTag(x.level), x.device ? `${devName(x.device)} · ${mname(x.device, x.metric)}` : pointName(x.point))))))),
      errs.length ? el("ul", { class: "errors" }, errs.flatMap(([f, ps]) => ps.map((p) => el("li", {}, `${f}: ${p}`)))) : null);
    S.files = files.files;
    const sel = $("#rule-file"), keep = sel.value;
    sel.replaceChildren(...S.files.map((f) => el("option", { value: f.name }, f.name)));
    if (keep) sel.value = keep;
    pickFile();
  } catch (e) { notice(e); }
}
function pickFile() {
  const f = S.files.find((x) => x.name === $("#rule-file").value);
  $("#rule-name").value = f ? f.name : "";
  $("#rule-text").value = f ? f.text : "";
  put($("#rule-errors"), );
}
// a problem at its line: TOML's "line N", or the line of the rule a key path names
function problemLine(p, text) {
  const m = /line (\d+)/.exec(p);
  if (m) return Number(m[1]);
  const r = /rules\[(\d+)\]/.exec(p);
  if (!r) return null;
  let n = -1, i = 0;
  for (const line of text.split("\n")) { i++; if (/^\s*\[\[rules\]\]/.test(line) && ++n === Number(r[1])) return i; }
  return null;
}
function gotoLine(n) {
  const ta = $("#rule-text"), lines = ta.value.split("\n");
  const start = lines.slice(0, n - 1).reduce((a, l) => a + l.length + 1, 0);
  ta.focus(); ta.setSelectionRange(start, start + (lines[n - 1] ?? "").length);
  ta.scrollTop = Math.max(0, (n - 3) * parseFloat(getComputedStyle(ta).lineHeight || "18"));
}
function showRuleErrors(list, okText) {
  $("#rule-errors").dataset.ok = list.length ? "0" : "1";
  const text = $("#rule-text").value;
  put($("#rule-errors"), ...(list.length ? list : [okText]).map((p) => {
    const n = list.length ? problemLine(p, text) : null;
    return el("li", { "data-line": n }, n ? el("a", { href: "#rules", onclick: (e) => { e.preventDefault(); gotoLine(n); } }, t("atLine", { n })) : null, p);
  }));
}
async function checkRules() {
  const r = await api("POST", "/api/rules/check", { text: $("#rule-text").value });
  showRuleErrors(r.errors, t("valid", { n: r.rules.length }));
  return r.ok;
}
async function saveRules() {
  try {
    await api("PUT", `/api/rules/files/${encodeURIComponent($("#rule-name").value.trim())}`, { text: $("#rule-text").value });
    showRuleErrors([], t("saved"));
    await loadRules();
  } catch (e) { showRuleErrors(e.body?.detail?.errors ?? [e.message], ""); }
}
async function runReplay() {
  const device = $("#replay-device").value, span = Number($("#replay-range").value), to = Date.now(), from = to - span;
  try {
    const r = await api("POST", "/api/rules/replay", { text: $("#rule-text").value || null, device, from, to });
    const hz = r.transitions.filter((x) => x.kind === "hazard");
    const metric = hz[0]?.metric ?? Object.keys(S.dash.devices.find((d) => d.id === device).metrics)[0];
    await plot($("#replay-chart"), device, metric, from, to, { marks: hz.map((x) => ({ at: x.at, level: x.level })) });
    put($("#replay-out"), hz.length ? table(["time", "metric", "rule", "level", "value"], hz.map((x) =>
      el("tr", {}, el("td", {}, when(x.at)), el("td", {}, mname(device, x.metric)), el("td", {}, ruleName(x.rule)),
        el("td", {}, levelTag(x.previous === "none" ? null : x.previous), " → ", levelTag(x.level === "none" ? null : x.level)), el("td", {}, num(x.value)))))
      : el("p", {}, t("noTransitions")));
  } catch (e) { notice(e); }
}

// ---- duty -------------------------------------------------------------------------

async function loadDuty() {
  try {
    const [people, hos] = await Promise.all([api("GET", "/api/people"), api("GET", "/api/handovers")]);
    $("#on-duty").textContent = people.on_duty ? people.on_duty.name : t("nobody");
    // the county above (its plan's people and deadlines): whom the ladder reaches last
    const c = people.county, roles = (p) => p.roles.map((r) => t("role_" + r)).join("、") || "—";
    put($("#county-above"), c ? [el("h3", {}, t("countyAbove", { county: c.name })),
      el("ul", {}, people.people.filter((p) => p.grid === "county").map((p) => el("li", { "data-person": p.id }, `${p.name}（${roles(p)}）`))),
      el("p", { class: "muted" }, t("countyDeadlines"), LEVELS.map((lv) =>
        `${t(lv)} ${c.deadlines[lv] ? secsName(c.deadlines[lv]) : t("countyNone")}`).join(S.lang === "zh" ? "，" : ", "))] : []);
    // 接班人 from the roster: the duty officers first, then everyone else on the station's file
    const f = $("#handover"), roster = people.people.filter((p) => p.grid !== "county").sort((a, b) =>
      Number(b.roles.includes("duty_officer")) - Number(a.roles.includes("duty_officer")));
    if (roster.length) {
      const keep = f.to_pick.value;
      put(f.to_pick, el("option", { value: "" }, t("pickHandTo")), roster.filter((p) => p.id !== people.on_duty?.person)
        .map((p) => el("option", { value: p.name }, `${p.name}（${p.roles.map((r) => t("role_" + r)).join("、") || "—"}）`)));
      f.to_pick.value = keep; f.to_pick.hidden = false; f.to_pick.required = true;
      f.to.hidden = true; f.to.required = false;
    }
    $("#handover").hidden = !S.me.may.handover;
    put($("#handover-open"), el("h3", {}, t("open")), ticketTable(openTickets().sort(byLevel)));
    put($("#handovers"), table(["at", "from", "to", "note", "open", "record"], hos.map((h) =>
      el("tr", {}, el("td", {}, when(h.at)), el("td", {}, h.from ?? h.from_person), el("td", {}, h.to ?? h.to_person),
        el("td", {}, h.note ?? ""), el("td", {}, String((h.open ?? h.open_items ?? []).length)),
        el("td", {}, el("a", { href: `/api/reports/handovers/${h.id}?format=pdf`, target: "_blank" }, "PDF"))))));
    const m = $("#monthly").month; // the last 12 months, this one first (no browser-locale picker)
    if (!m.options.length) {
      const d = new Date();
      for (let i = 0; i < 12; i++) {
        const x = new Date(d.getFullYear(), d.getMonth() - i, 1), v = `${x.getFullYear()}-${String(x.getMonth() + 1).padStart(2, "0")}`;
        m.append(el("option", { value: v }, v));
      }
    }
  } catch (e) { notice(e); }
}
function openMonthly(ev) {
  ev.preventDefault();
  const month = ev.target.month.value, format = ev.submitter?.value ?? "pdf";
  window.open(`/api/reports/monthly?month=${encodeURIComponent(month)}&format=${format}`, "_blank");
}
async function submitHandover(ev) {
  ev.preventDefault();
  const f = ev.target;
  try {
    const to = f.to_pick.hidden ? f.to.value.trim() : f.to_pick.value;
    await api("POST", "/api/handovers", { to, note: f.note.value.trim() || null });
    f.reset(); notice(t("saved"), false); loadDuty();
  } catch (e) { notice(t("failed", { msg: errText(e) })); }
}

// ---- language, clock, wiring --------------------------------------------------------

function applyLang() {
  document.documentElement.lang = S.lang === "zh" ? "zh-CN" : "en";
  $("#notice").hidden = true;  // a message in the other language
  $$("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
  $("#conn-state").textContent = t($("#conn-state").dataset.state);
  $("#lang").textContent = S.lang === "zh" ? "English" : "中文";
  $("#lang").lang = S.lang === "zh" ? "en" : "zh-CN";
  if (S.audio?.state === "running") $("#sound").textContent = t("soundOn");
  if (S.map) { S.map.remove(); S.map = null; } // its legend and switches are words too
  if (S.dash) { fillSeries(); if (S.me) $("#who").textContent = `${S.me.user.name} · ${t("role_" + S.me.user.role)}`; route(); }
  if (S.pictures) showPictures(S.pictures);
}
function tick() {
  if (S.clock) $("#clock").textContent = S.clock.format(new Date());
  tickCountdowns();
  if (S.lostAt) lostBanner();
}
document.addEventListener("DOMContentLoaded", () => {
  try { S.lang = localStorage.getItem("lang") === "en" ? "en" : "zh"; } catch (_) { /* no storage */ }
  setZone("Asia/Shanghai");
  applyLang();
  $("#login-form").addEventListener("submit", submitLogin);
  $("#lang").addEventListener("click", () => {
    S.lang = S.lang === "zh" ? "en" : "zh";
    try { localStorage.setItem("lang", S.lang); } catch (_) { /* no storage */ }
    applyLang();
  });
  $("#sound").addEventListener("click", enableSound);
  $("#logout").addEventListener("click", async () => {
    try { await api("POST", "/api/logout"); } finally { location.hash = ""; location.reload(); }
  });
  $("#show-all").addEventListener("change", renderQueue);
  $("#series").addEventListener("change", () => { S.rangeChosen = false; drawTrend(); });
  $("#rule-file").addEventListener("change", pickFile);
  $("#rule-check").addEventListener("click", () => checkRules().catch((e) => notice(e)));
  $("#rule-save").addEventListener("click", saveRules);
  $("#replay-run").addEventListener("click", runReplay);
  $("#handover").addEventListener("submit", submitHandover);
  $("#monthly").addEventListener("submit", openMonthly);
  $("#login").addEventListener("cancel", (e) => e.preventDefault()); // no way around the login
  window.addEventListener("hashchange", route);
  tick();
  setInterval(tick, 1000);
  setInterval(schedule, 30000); // ages and deadlines move on
  start().catch((e) => notice(e));
  // sound chosen earlier in this session: on again, or one big button if the browser
  // wants a gesture first
  let want = false;
  try { want = sessionStorage.getItem("sound") === "1"; } catch (_) { /* no storage */ }
  if (want) {
    enableSound();
    setTimeout(() => { if (S.audio?.state !== "running") $("#sound").classList.add("big"); }, 500);
  }
});
