// The tether dashboard: plain JavaScript, served by the API itself, nothing fetched from
// anywhere else. Every call carries `Authorization: Bearer <key>` when a key was given
// (kept in sessionStorage: gone when the tab closes; no cookies, so no CSRF). Live
// updates come from GET /v1/events read with fetch() streaming, because EventSource
// cannot send that header.
"use strict";

const KEY = "tether.key";
const TERMINAL = new Set(["completed", "failed", "cancelled", "dead", "expired"]);
const RUN_STATUSES = ["queued", "running", "waiting", "completed", "failed", "cancelled"];
const JOB_STATUSES = ["queued", "delayed", "running", "completed", "failed", "cancelled", "dead", "expired"];
const main = document.getElementById("main");
let view = null; // {refresh(), onEvent(kind, data)} of the page shown
let refreshTimer = null;
let inboxTimer = null;
let me = null; // GET /v1/whoami: the signed-in key's name, role and permissions

// -- HTTP -----------------------------------------------------------------------------

function apiKey() { return sessionStorage.getItem(KEY) || ""; }

function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: "Bearer " + key } : {};
}

async function api(path, options = {}) {
  const init = { method: options.method || "GET", headers: authHeaders() };
  if (options.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (response.status === 401) {
    signOut("Your key was refused: sign in again.");
    throw new Error("unauthorized");
  }
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new Error(error.message || ("HTTP " + response.status));
  }
  return body;
}

// -- DOM helpers (text only: data never becomes markup) ---------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function status(value) { return el("span", { class: "status " + value, "data-status": value }, value); }

function when(value) {
  if (!value) return "";
  const date = new Date(value);
  return date.toLocaleString();
}

function ago(value) {
  if (!value) return "";
  const s = Math.max(0, (Date.now() - new Date(value).getTime()) / 1000);
  if (s < 60) return Math.round(s) + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

function json(value) { return el("pre", {}, value === undefined ? "" : JSON.stringify(value, null, 2)); }

function toast(message) {
  const box = document.getElementById("toast");
  box.textContent = message;
  setTimeout(() => { if (box.textContent === message) box.textContent = ""; }, 4000);
}

function table(headers, rows) {
  return el("div", { class: "table-wrap" }, el("table", {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: headers.length, class: "muted" }, "Nothing here.")))));
}

// replaceChildren, skipping what a condition left out (it would print "null").
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function show(title, ...content) {
  main.replaceChildren(el("h1", {}, title), ...content);
}

function params() {
  const query = location.hash.split("?")[1] || "";
  return new URLSearchParams(query);
}

function go(path, query) {
  const q = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v)).toString() : "";
  location.hash = path + (q ? "?" + q : "");
}

// -- who is signed in ---------------------------------------------------------------------

async function loadMe() {
  try { me = await api("/v1/whoami"); } catch (error) { me = null; }
}

// Whether the signed-in key may do `permission` (read, submit, decide, admin): the page
// offers only what the API would allow (it refuses the rest with 403 in any case).
function may(permission) { return !me || me.permissions.includes(permission); }

function readOnlyNote(permission, what) {
  if (may(permission)) return null;
  return el("p", { class: "muted note", "data-read-only": permission },
    "Your key (" + me.name + ", role " + me.role + ") may not " + what + ".");
}

// -- sign in --------------------------------------------------------------------------

function signOut(message) {
  me = null;
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(KEY + ".set");
  stopEvents();
  renderSignIn(message);
}

function renderSignIn(message) {
  view = null;
  const input = el("input", { id: "api-key", type: "password", autocomplete: "off", placeholder: "tk_…", "aria-describedby": "key-help" });
  const form = el("form", { class: "card signin", onsubmit: async (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, input.value.trim());
    sessionStorage.setItem(KEY + ".set", "1");
    try {
      await api("/v1/functions");
    } catch (error) {
      if (error.message !== "unauthorized") toast(error.message);
      return;
    }
    await loadMe();
    startEvents();
    if (!location.hash || location.hash === "#/signin") go("#/runs"); else route();
  } },
    el("h1", {}, "Sign in"),
    el("label", { for: "api-key" }, "API key"),
    input,
    el("p", { id: "key-help", class: "muted" },
      "Paste an API key (tether keys create). It stays in this tab only. Leave it empty if this API runs without keys."),
    message ? el("p", { role: "alert" }, message) : null,
    el("button", { class: "primary", type: "submit" }, "Sign in"));
  main.replaceChildren(form);
  input.focus();
}

// -- live events ----------------------------------------------------------------------

let events = null; // AbortController of the open stream

function stopEvents() {
  if (events) events.abort();
  events = null;
  setLive(false);
}

function setLive(on) {
  const badge = document.getElementById("live");
  badge.className = "live " + (on ? "on" : "off");
  badge.textContent = on ? "live" : "offline";
}

async function startEvents() {
  stopEvents();
  const controller = new AbortController();
  events = controller;
  let delay = 500;
  while (!controller.signal.aborted) {
    try {
      const response = await fetch("/v1/events", { headers: authHeaders(), signal: controller.signal });
      if (!response.ok) throw new Error("HTTP " + response.status);
      setLive(true);
      delay = 500;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          handleFrame(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    setLive(false);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 10000);
    // What happened while we were away: read it again.
    if (view) view.refresh();
  }
}

function handleFrame(frame) {
  let kind = "message";
  let data = "";
  for (const line of frame.split("\n")) {
    if (line.startsWith("event:")) kind = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trim();
  }
  if (!data) return;
  const body = JSON.parse(data);
  if (kind === "run.status" || kind === "dropped") {
    clearTimeout(inboxTimer);
    inboxTimer = setTimeout(updateInboxCount, 300);
  }
  // `dropped`: this tab fell behind and missed events; read the page again.
  if (view && (kind === "dropped" || view.onEvent(kind, body))) {
    // Coalesce bursts: one refresh for many events.
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => view && view.refresh(), 150);
  }
}

async function updateInboxCount() {
  try {
    const body = await api("/v1/runs?status=waiting&limit=1000");
    const n = body.runs.filter((r) => (r.waiting_on || {}).kind === "approval").length;
    document.getElementById("inbox-count").textContent = n ? String(n) : "";
  } catch (error) { /* the page shows errors; the badge stays as it was */ }
}

// -- pages ----------------------------------------------------------------------------

// Cursor paging: `cursor` in the page's hash is the API's next_cursor of the page before
// (the listings are newest first); "First page" drops it, the browser's Back goes back.
function pager(path, q, keep, nextCursor) {
  const base = {};
  for (const name of keep) base[name] = q.get(name);
  return el("nav", { class: "pager", "aria-label": "Pages" },
    q.get("cursor") ? el("button", { type: "button", class: "first-page", onclick: () => go(path, base) }, "First page") : null,
    nextCursor ? el("button", { type: "button", class: "more next-page", onclick: () => go(path, { ...base, cursor: nextCursor }) }, "Next page") : null);
}

async function runsPage() {
  const q = params();
  const limit = Math.min(Math.max(Number(q.get("limit")) || 50, 1), 200);
  const statusSelect = el("select", { id: "run-status", name: "status" },
    el("option", { value: "" }, "any status"),
    RUN_STATUSES.map((s) => el("option", { value: s, selected: q.get("status") === s }, s)));
  const workflow = el("input", { id: "run-workflow", name: "workflow", value: q.get("workflow") || "", placeholder: "workflow" });
  const search = el("input", { id: "run-search", name: "id", placeholder: "run id", "aria-label": "Find a run by id" });
  const filters = el("form", { class: "filters", role: "search", onsubmit: (event) => {
    event.preventDefault();
    if (search.value.trim()) go("#/runs/" + encodeURIComponent(search.value.trim()));
    else go("#/runs", { status: statusSelect.value, workflow: workflow.value.trim() });
  } },
    el("label", {}, "Status", statusSelect),
    el("label", {}, "Workflow", workflow),
    el("label", {}, "Go to run", search),
    el("button", { type: "submit", class: "primary" }, "Apply"));
  const holder = el("div");
  show("Runs", filters, holder);
  async function refresh() {
    const query = new URLSearchParams({ limit: String(limit) });
    if (q.get("status")) query.set("status", q.get("status"));
    if (q.get("workflow")) query.set("workflow", q.get("workflow"));
    if (q.get("cursor")) query.set("cursor", q.get("cursor"));
    const body = await api("/v1/runs?" + query);
    const counts = {};
    for (const run of body.runs) counts[run.status] = (counts[run.status] || 0) + 1;
    fill(holder, 
      el("div", { class: "counts", "aria-label": "Runs shown by status" },
        Object.entries(counts).map(([s, n]) => el("span", {}, status(s), " ", n))),
      table(["Run", "Workflow", "Status", "Waiting on", "Created", "Updated"], body.runs.map((run) => el("tr", {},
        el("td", {}, el("a", { href: "#/runs/" + encodeURIComponent(run.id) }, run.id)),
        el("td", {}, run.workflow + (run.version ? " v" + run.version : "")),
        el("td", {}, status(run.status)),
        el("td", {}, run.waiting_on ? run.waiting_on.kind + (run.waiting_on.key ? ": " + run.waiting_on.key : "") : ""),
        el("td", {}, when(run.created_at)),
        el("td", {}, ago(run.updated_at))))),
      pager("#/runs", q, ["status", "workflow", "limit"], body.next_cursor));
  }
  return { refresh, onEvent: (kind) => kind === "run.status" };
}

// Positioned through the CSSOM: the page's Content-Security-Policy allows no inline styles.
function bar(kind, left, width) {
  const node = el("div", { class: "bar " + kind });
  node.style.left = left + "%";
  node.style.width = width + "%";
  return node;
}

function waterfall(events) {
  if (!events.length) return el("p", { class: "muted" }, "No timeline.");
  const t = (e) => new Date(e.at).getTime();
  const t0 = t(events[0]);
  const tEnd = Math.max(t(events[events.length - 1]), t0 + 1);
  const spans = [];
  const open = {};
  for (const e of events) {
    const f = e.fields || {};
    // The run's timeline also holds its jobs' events (those carry `job`).
    if (e.event === "activation_started") open["job:" + f.job] = { label: "activation " + (f.job || ""), start: t(e), kind: "" };
    if (e.event === "waiting") open.wait = { label: "wait: " + (f.kind || "") + (f.name ? " " + f.name : ""), start: t(e), kind: "wait" };
    if (e.event === "activation_queued") close("wait", t(e));
    if (e.event === "child_started") open["child:" + f.job] = { label: "child " + (f.function || f.job), start: t(e), kind: "child" };
    if (e.event === "child_finished") close("child:" + f.job, t(e), f.status);
    if (e.event === "step") spans.push({ label: "step " + (f.name || f.position || ""), start: t(e), end: t(e), kind: "point" });
    if (e.event === "log") spans.push({ log: f.line || "", start: t(e) });
    if (TERMINAL.has(e.event)) {
      if (f.job) close("job:" + f.job, t(e), e.event === "completed" ? null : e.event);
      else spans.push({ label: "run " + e.event, start: t(e), end: t(e), kind: "point" });
    }
  }
  for (const key of Object.keys(open)) close(key, null);
  function close(key, end, note) {
    const span = open[key];
    if (!span) return;
    delete open[key];
    span.end = end;
    if (note) span.label += " (" + note + ")";
    spans.push(span);
  }
  spans.sort((a, b) => a.start - b.start);
  const total = tEnd - t0;
  const rows = [];
  for (const span of spans) {
    if (span.log !== undefined) { rows.push(el("div", { class: "log" }, "log " + span.log)); continue; }
    const end = span.end === null ? tEnd : span.end;
    const left = ((span.start - t0) / total) * 100;
    const width = Math.max(((end - span.start) / total) * 100, 0.5);
    const ms = end - span.start;
    rows.push(el("div", { class: "wfrow" },
      el("div", { class: "label" }, span.label),
      el("div", { class: "track", role: "img", "aria-label": span.label + " from +" + (span.start - t0) + " ms for " + ms + " ms" },
        bar(span.kind, left, width)),
      el("div", { class: "dur muted" }, span.end === null ? "open" : ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : ms + " ms")));
  }
  return el("div", { class: "wf card" }, rows);
}

// A job's or run's log lines, followed live with long polls (GET .../logs?wait=) while
// its page is the one shown, until the job or run has ended. Lines are text, never HTML.
function logLine(line) {
  const where = [];
  if (line.step !== null && line.step !== undefined) where.push("step " + line.step + (line.step_name ? " " + line.step_name : ""));
  if (line.attempt && line.attempt > 1) where.push("attempt " + line.attempt);
  const fields = Object.entries(line.fields || {}).map(([k, v]) => k + "=" + JSON.stringify(v)).join(" ");
  return el("div", { class: "log-line level-" + String(line.level).toLowerCase(), "data-cursor": line.cursor },
    el("span", { class: "log-time" }, new Date(line.ts || line.at).toLocaleTimeString()), " ",
    el("span", { class: "log-level" }, line.level), " ",
    where.length ? el("span", { class: "log-where" }, "[" + where.join(", ") + "] ") : null,
    line.logger ? el("span", { class: "log-logger" }, line.logger + ": ") : null,
    el("span", { class: "log-message" }, line.message),
    fields ? el("span", { class: "muted" }, " " + fields) : null,
    line.exc ? el("pre", { class: "log-exc" }, line.exc) : null);
}

function logPanel(kind, id) {
  const lines = el("div", { class: "log-lines", id: "log-lines", role: "log", "aria-label": "Log lines" });
  const note = el("p", { class: "muted", id: "log-note" }, "Loading log lines…");
  const panel = el("section", { class: "logs" }, el("h2", {}, "Logs"), note, lines);
  const base = "/v1/" + kind + "/" + encodeURIComponent(id) + "/logs";
  let started = false;
  let after = null;
  let count = 0;
  async function follow(mine) {
    while (view === mine) {
      const query = new URLSearchParams({ limit: "1000", wait: "20" });
      if (after) query.set("after", after);
      let page;
      try { page = await api(base + "?" + query); }
      catch (error) {
        note.textContent = "Log lines unavailable: " + error.message;
        await new Promise((resolve) => setTimeout(resolve, 2000));
        continue;
      }
      if (view !== mine) return;
      for (const line of page.lines) lines.append(logLine(line));
      count += page.lines.length;
      after = page.cursor || after;
      const lost = [];
      if (page.dropped) lost.push(page.dropped + " dropped by a full worker buffer");
      if (page.trimmed) lost.push(page.trimmed + " cut by the stream's bound");
      note.textContent = (count ? count + " lines" : "No log lines") +
        (lost.length ? " · lost: " + lost.join(", ") : "") + (page.finished ? "" : " · following");
      if (page.finished && !page.lines.length) return;
    }
  }
  panel.start = () => { if (!started) { started = true; follow(view); } };
  return panel;
}

async function runPage(runId) {
  const holder = el("div");
  const logs = logPanel("runs", runId);
  show(el("span", {}, "Run ", el("code", {}, runId)), holder);
  async function act(path, body, done) {
    try {
      await api("/v1/runs/" + encodeURIComponent(runId) + path, { method: "POST", body });
      toast(done);
      await refresh();
    } catch (error) { if (error.message !== "unauthorized") toast(error.message); }
  }
  async function refresh() {
    const [run, timeline] = await Promise.all([
      api("/v1/runs/" + encodeURIComponent(runId)),
      api("/v1/runs/" + encodeURIComponent(runId) + "/timeline").catch(() => ({ events: [] })),
    ]);
    document.querySelector("h1").replaceChildren("Run ", el("code", {}, run.id), status(run.status));
    const actions = el("div", { class: "actions" });
    const waiting = run.waiting_on || {};
    if (run.status === "waiting" && waiting.kind === "approval" && !may("decide")) {
      actions.append(el("div", { class: "card wide" },
        el("h2", {}, "Waiting for approval: " + waiting.key),
        waiting.prompt ? el("p", {}, waiting.prompt) : null,
        waiting.data !== undefined ? json(waiting.data) : null,
        readOnlyNote("decide", "approve or deny")));
    } else if (run.status === "waiting" && waiting.kind === "approval") {
      const comment = el("textarea", { id: "decision-comment", "aria-label": "Comment" });
      actions.append(el("div", { class: "card wide" },
        el("h2", {}, "Waiting for approval: " + waiting.key),
        waiting.prompt ? el("p", {}, waiting.prompt) : null,
        waiting.data !== undefined ? json(waiting.data) : null,
        el("label", { for: "decision-comment" }, "Comment"), comment,
        el("div", { class: "actions" },
          el("button", { class: "ok", type: "button", onclick: () => act("/approvals/" + encodeURIComponent(waiting.key), { approved: true, comment: comment.value || null }, "Approved") }, "Approve"),
          el("button", { class: "bad", type: "button", onclick: () => act("/approvals/" + encodeURIComponent(waiting.key), { approved: false, comment: comment.value || null }, "Denied") }, "Deny"))));
    }
    if (!TERMINAL.has(run.status) && may("submit")) actions.append(el("button", { type: "button", class: "bad", onclick: () => act("/cancel", {}, "Cancel requested") }, "Cancel run"));
    if (run.status === "failed" && may("submit")) actions.append(el("button", { type: "button", class: "primary", onclick: () => act("/retry", {}, "Retried") }, "Retry run"));
    fill(holder, 
      actions,
      el("div", { class: "card" }, el("dl", {},
        el("dt", {}, "Workflow"), el("dd", {}, run.workflow + (run.version ? " v" + run.version : "")),
        el("dt", {}, "Status"), el("dd", { id: "run-status-value" }, run.status),
        el("dt", {}, "Created"), el("dd", {}, when(run.created_at)),
        el("dt", {}, "Updated"), el("dd", {}, when(run.updated_at)),
        el("dt", {}, "Finished"), el("dd", {}, when(run.finished_at)),
        // The W3C trace id of the run's spans (docs/observability.md, "Traces"): search a
        // tracing backend for it to see the same structure as the timeline below.
        el("dt", {}, "Trace"), el("dd", {}, el("code", { id: "run-trace-id" }, run.trace_id || "")),
        run.waiting_on ? [el("dt", {}, "Waiting on"), el("dd", {}, JSON.stringify(run.waiting_on))] : null)),
      el("div", { class: "grid2" },
        el("section", {}, el("h2", {}, "Input"), json(run.input)),
        el("section", {}, el("h2", {}, "Result"), json(run.result))),
      run.error ? el("section", {}, el("h2", {}, "Error"), el("div", { class: "card" },
        el("p", {}, el("strong", {}, run.error.type), ": ", run.error.message),
        run.error.traceback ? el("pre", {}, run.error.traceback) : null)) : null,
      el("h2", {}, "Timeline"), waterfall(timeline.events), logs);
    logs.start();
  }
  return { refresh, onEvent: (kind, data) => kind === "run.status" && data.run === runId };
}

async function approvalsPage() {
  const holder = el("div");
  show("Approvals", holder);
  async function decide(run, approved, comment) {
    try {
      await api("/v1/runs/" + encodeURIComponent(run.id) + "/approvals/" + encodeURIComponent(run.waiting_on.key),
        { method: "POST", body: { approved, comment: comment || null } });
      toast((approved ? "Approved " : "Denied ") + run.id);
      await refresh();
    } catch (error) { if (error.message !== "unauthorized") toast(error.message); }
  }
  async function refresh() {
    const body = await api("/v1/runs?status=waiting&limit=1000");
    const waiting = body.runs.filter((r) => (r.waiting_on || {}).kind === "approval");
    document.getElementById("inbox-count").textContent = waiting.length ? String(waiting.length) : "";
    fill(holder, waiting.length ? el("div", {}, waiting.map((run) => {
      const w = run.waiting_on;
      const comment = el("textarea", { id: "comment-" + run.id, "aria-label": "Comment for " + run.id });
      return el("article", { class: "card inbox-item", "data-run": run.id },
        el("h2", {}, el("a", { href: "#/runs/" + encodeURIComponent(run.id) }, run.id), " · ", run.workflow, " · ", w.key),
        w.prompt ? el("p", {}, w.prompt) : null,
        el("p", { class: "muted" }, "waiting since " + ago(run.updated_at)),
        w.data !== undefined ? json(w.data) : null,
        el("h3", { class: "muted" }, "Input"), json(run.input),
        may("decide") ? [
          el("label", { for: "comment-" + run.id }, "Comment"), comment,
          el("div", { class: "actions" },
            el("button", { class: "ok", type: "button", onclick: () => decide(run, true, comment.value) }, "Approve"),
            el("button", { class: "bad", type: "button", onclick: () => decide(run, false, comment.value) }, "Deny"))]
          : readOnlyNote("decide", "approve or deny"));
    })) : el("p", { class: "muted card" }, "Nothing waits for a decision."));
  }
  return { refresh, onEvent: (kind) => kind === "run.status" };
}

async function jobsPage() {
  const q = params();
  const limit = Math.min(Math.max(Number(q.get("limit")) || 50, 1), 200);
  const statusSelect = el("select", { id: "job-status" }, el("option", { value: "" }, "any status"),
    JOB_STATUSES.map((s) => el("option", { value: s, selected: q.get("status") === s }, s)));
  const fn = el("input", { id: "job-function", value: q.get("function") || "", placeholder: "function" });
  const search = el("input", { id: "job-search", placeholder: "job id", "aria-label": "Find a job by id" });
  const holder = el("div");
  show("Jobs", el("form", { class: "filters", role: "search", onsubmit: (event) => {
    event.preventDefault();
    if (search.value.trim()) go("#/jobs/" + encodeURIComponent(search.value.trim()));
    else go("#/jobs", { status: statusSelect.value, function: fn.value.trim() });
  } }, el("label", {}, "Status", statusSelect), el("label", {}, "Function", fn),
    el("label", {}, "Go to job", search), el("button", { type: "submit", class: "primary" }, "Apply")), holder);
  async function refresh() {
    const query = new URLSearchParams({ limit: String(limit) });
    if (q.get("status")) query.set("status", q.get("status"));
    if (q.get("function")) query.set("function", q.get("function"));
    if (q.get("cursor")) query.set("cursor", q.get("cursor"));
    const body = await api("/v1/jobs?" + query);
    fill(holder, table(["Job", "Function", "Status", "Attempt", "Machine", "Enqueued", "Finished"],
      body.jobs.map((job) => el("tr", {},
        el("td", {}, el("a", { href: "#/jobs/" + encodeURIComponent(job.id) }, job.id)),
        el("td", {}, job.function), el("td", {}, status(job.status)),
        el("td", {}, job.attempt + " / " + job.max_attempts), el("td", {}, job.machine || ""),
        el("td", {}, when(job.enqueued_at)), el("td", {}, when(job.finished_at))))),
      pager("#/jobs", q, ["status", "function", "limit"], body.next_cursor));
  }
  return { refresh, onEvent: (kind) => kind === "job.finished" || kind === "job.ready" };
}

async function jobPage(jobId) {
  const holder = el("div");
  const logs = logPanel("jobs", jobId);
  show(el("span", {}, "Job ", el("code", {}, jobId)), holder);
  async function refresh() {
    const [job, timeline] = await Promise.all([
      api("/v1/jobs/" + encodeURIComponent(jobId)),
      api("/v1/jobs/" + encodeURIComponent(jobId) + "/timeline").catch(() => ({ events: [] })),
    ]);
    document.querySelector("h1").replaceChildren("Job ", el("code", {}, job.id), status(job.status));
    fill(holder, 
      TERMINAL.has(job.status) || !may("submit") ? null : el("div", { class: "actions" }, el("button", { class: "bad", type: "button", onclick: async () => {
        try { await api("/v1/jobs/" + encodeURIComponent(jobId) + "/cancel", { method: "POST", body: {} }); toast("Cancel requested"); await refresh(); }
        catch (error) { if (error.message !== "unauthorized") toast(error.message); }
      } }, "Cancel job")),
      el("div", { class: "card" }, el("dl", {},
        el("dt", {}, "Function"), el("dd", {}, job.function),
        el("dt", {}, "Attempt"), el("dd", {}, job.attempt + " of " + job.max_attempts),
        el("dt", {}, "Machine"), el("dd", {}, job.machine || ""),
        el("dt", {}, "Trace"), el("dd", {}, el("code", {}, job.trace_id || "")),
        el("dt", {}, "Parent"), el("dd", {}, job.parent ? el("a", { href: "#/runs/" + encodeURIComponent(job.parent) }, job.parent) : ""),
        el("dt", {}, "Enqueued"), el("dd", {}, when(job.enqueued_at)),
        el("dt", {}, "Started"), el("dd", {}, when(job.started_at)),
        el("dt", {}, "Finished"), el("dd", {}, when(job.finished_at)))),
      el("div", { class: "grid2" },
        el("section", {}, el("h2", {}, "Input"), json(job.input)),
        el("section", {}, el("h2", {}, "Result"), json(job.result))),
      job.error ? el("section", {}, el("h2", {}, "Error"), el("div", { class: "card" },
        el("p", {}, el("strong", {}, job.error.type), ": ", job.error.message),
        job.error.traceback ? el("pre", {}, job.error.traceback) : null)) : null,
      el("h2", {}, "Attempts"), attemptsTable(job, timeline.events),
      logs);
    logs.start();
  }
  return { refresh, onEvent: (kind, data) => kind === "job.finished" && data.job === jobId };
}

// Every attempt of a job from its timeline: each `claimed` starts one (machine, attempt
// number), the next event that ends it says how. The timeline keeps no per-attempt error:
// the record's error is the last attempt's.
const ATTEMPT_ENDS = { completed: "completed", retry_scheduled: "failed, retry scheduled",
  retried: "failed, retried", failed: "failed", dead: "failed, attempts used up",
  released: "released (machine stopping)", cancelled: "cancelled" };

function attemptsTable(job, events) {
  const attempts = [];
  for (const e of events) {
    const f = e.fields || {};
    if (e.event === "claimed") attempts.push({ n: f.attempt, machine: f.machine, start: e.at, end: null, how: "running" });
    else if (ATTEMPT_ENDS[e.event] && attempts.length && attempts[attempts.length - 1].end === null) {
      const last = attempts[attempts.length - 1];
      last.end = e.at;
      last.how = ATTEMPT_ENDS[e.event] + (f.delay_ms ? " (in " + seconds(Number(f.delay_ms) / 1000) + ")" : "");
    }
  }
  if (!attempts.length) {
    return el("p", { class: "muted", "data-attempts": "0" }, job.attempt
      ? "Attempt " + job.attempt + " of " + job.max_attempts + " (machine " + (job.machine || "?") + "). Earlier attempts are kept for jobs of runs, and for other jobs when the API runs with TETHER_JOB_TIMELINES=1."
      : "Not attempted yet.");
  }
  return table(["Attempt", "Machine", "Started", "Took", "Ended"], attempts.map((a) => {
    const ms = a.end ? new Date(a.end).getTime() - new Date(a.start).getTime() : null;
    return el("tr", { "data-attempt": a.n },
      el("td", {}, a.n), el("td", {}, a.machine || ""), el("td", {}, when(a.start)),
      el("td", {}, ms === null ? "" : seconds(ms / 1000)), el("td", {}, a.how));
  }));
}

// p50/p99 of queue wait and run time, and finished attempts per second, from this API
// process's /metrics (its histograms count since it started; other replicas have theirs).
function parseMetrics(text) {
  const series = [];
  for (const line of text.split("\n")) {
    const m = /^(\w+)(?:\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    series.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return series;
}

function quantile(q, buckets) {
  // Prometheus' histogram_quantile: linear within the bucket holding the rank.
  const sorted = buckets.slice().sort((a, b) => a.le - b.le);
  const total = sorted.length ? sorted[sorted.length - 1].count : 0;
  if (!total) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const b of sorted) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lower;
      return lower + (b.le - lower) * ((rank - below) / Math.max(b.count - below, 1));
    }
    lower = b.le;
    below = b.count;
  }
  return lower;
}

function seconds(value) {
  if (value === null || value === undefined) return "—";
  return value < 1 ? Math.round(value * 1000) + " ms" : value.toFixed(2) + " s";
}

let lastFinished = null; // {at, totals: {function: count}} for rates between reads

async function functionStats() {
  const response = await fetch("/metrics", { headers: authHeaders() });
  if (!response.ok) return {};
  const stats = {};
  const totals = {};
  const of = (fn) => (stats[fn] = stats[fn] || { wait: [], run: [] });
  for (const s of parseMetrics(await response.text())) {
    const fn = s.labels.function;
    if (fn === undefined) continue;
    const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
    if (s.name === "tether_job_queue_wait_seconds_bucket") of(fn).wait.push({ le, count: s.value });
    if (s.name === "tether_job_run_seconds_bucket") of(fn).run.push({ le, count: s.value });
    if (s.name === "tether_jobs_finished_total") totals[fn] = (totals[fn] || 0) + s.value;
  }
  const now = Date.now();
  for (const [fn, total] of Object.entries(totals)) {
    const entry = of(fn);
    entry.finished = total;
    if (lastFinished && now > lastFinished.at) {
      entry.rate = (total - (lastFinished.totals[fn] || 0)) / ((now - lastFinished.at) / 1000);
    }
  }
  lastFinished = { at: now, totals };
  return stats;
}

async function functionsPage() {
  const holder = el("div");
  show("Functions and queues", holder);
  async function refresh() {
    const [body, stats] = await Promise.all([api("/v1/functions"), functionStats().catch(() => ({}))]);
    fill(holder, table(["Function", "Kind", "Queued", "Machines serving", "Finished", "Per second", "Wait p50", "Wait p99", "Run p50", "Run p99"],
      body.functions.map((f) => {
        const s = stats[f.name] || { wait: [], run: [] };
        return el("tr", {},
          el("td", {}, el("a", { href: "#/jobs?function=" + encodeURIComponent(f.name) }, f.name)),
          el("td", {}, f.kind), el("td", { "data-queued": f.name }, f.queued),
          el("td", {}, f.machines.length ? f.machines.join(", ") : el("span", { class: "muted" }, "none")),
          el("td", { "data-finished": f.name }, s.finished === undefined ? "—" : s.finished),
          el("td", {}, s.rate === undefined ? "—" : s.rate.toFixed(1)),
          el("td", {}, seconds(quantile(0.5, s.wait))), el("td", {}, seconds(quantile(0.99, s.wait))),
          el("td", {}, seconds(quantile(0.5, s.run))), el("td", {}, seconds(quantile(0.99, s.run))));
      })),
      el("p", { class: "muted" }, "Finished, rates and percentiles: attempts committed through this API process since it started (its /metrics); other replicas count their own."));
  }
  return { refresh, onEvent: (kind) => kind === "job.ready" || kind === "job.finished" };
}

async function machinesPage() {
  const holder = el("div");
  show("Machines", holder);
  async function refresh() {
    const body = await api("/v1/machines");
    fill(holder, table(["Machine", "Last heartbeat", "First seen", "Jobs held", "Functions", "Meta"],
      body.machines.map((m) => el("tr", {},
        el("td", {}, m.id), el("td", {}, ago(m.last_heartbeat)), el("td", {}, when(m.first_seen)),
        el("td", {}, m.jobs), el("td", {}, m.functions.join(", ")),
        el("td", {}, Object.keys(m.meta || {}).length ? JSON.stringify(m.meta) : "")))));
  }
  return { refresh, onEvent: () => false };
}

// -- routing --------------------------------------------------------------------------

async function route() {
  if (!sessionStorage.getItem(KEY + ".set")) { renderSignIn(); return; }
  const path = (location.hash || "#/runs").split("?")[0];
  const parts = path.replace(/^#\//, "").split("/").map(decodeURIComponent);
  const page = parts[0] || "runs";
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const pages = {
    runs: () => (parts[1] ? runPage(parts[1]) : runsPage()),
    approvals: approvalsPage,
    jobs: () => (parts[1] ? jobPage(parts[1]) : jobsPage()),
    functions: functionsPage,
    machines: machinesPage,
  };
  const make = pages[page] || pages.runs;
  const current = await make();
  view = current;
  try {
    await current.refresh();
  } catch (error) {
    if (error.message !== "unauthorized") main.append(el("p", { role: "alert", class: "card" }, error.message));
  }
  main.focus();
}

document.getElementById("signout").addEventListener("click", () => signOut("Signed out."));
window.addEventListener("hashchange", route);
document.addEventListener("keydown", (event) => {
  // "/" jumps to the page's search box, as on most sites.
  if (event.key === "/" && !/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName)) {
    const box = document.querySelector("[role=search] input[placeholder$='id']");
    if (box) { event.preventDefault(); box.focus(); }
  }
});
if (sessionStorage.getItem(KEY + ".set")) { startEvents(); updateInboxCount(); }
(sessionStorage.getItem(KEY + ".set") ? loadMe() : Promise.resolve()).then(route);
