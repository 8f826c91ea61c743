// The otpy observer page: plain JS, no build step. Snapshots arrive as server-sent
// events (GET /api/events); a process's details come from GET /api/process?pid=...;
// a kill is two POSTs (prepare, then kill with the confirmation the server issued),
// with the user asked in between.
"use strict";

const state = { selected: null, knownPids: new Set(), first: true };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function text(value) {
  if (value === null || value === undefined) return "—";
  return typeof value === "string" ? value : JSON.stringify(value);
}

// ------------------------------------------------------------------ tree

function treeItem(entry, pids) {
  const li = el("li", { class: `kind-${entry.kind}` });
  if (entry.pid) {
    li.setAttribute("data-pid", entry.pid);
    pids.add(entry.pid);
    if (!state.first && !state.knownPids.has(entry.pid)) li.classList.add("flash");
    if (entry.pid === state.selected) li.classList.add("selected");
  }
  const label = el("span", { class: "label" }, el("span", { class: "kind" }, entry.kind),
    el("span", { class: "name" }, entry.name), " ",
    entry.pid ? el("code", { class: "pid" }, entry.pid) : null);
  if (entry.pid) label.addEventListener("click", () => select(entry.pid));
  li.append(label);
  if (entry.children && entry.children.length) {
    li.append(el("ul", {}, ...entry.children.map((c) => treeItem(c, pids))));
  }
  return li;
}

function renderTree(root) {
  const pids = new Set();
  const top = el("ul", {}, treeItem(root, pids));
  if (root.truncated) top.append(el("li", { class: "hint" }, `… ${root.truncated} more processes`));
  document.getElementById("tree").replaceChildren(top);
  state.knownPids = pids;
  state.first = false;
}

// ------------------------------------------------------------------ details

async function select(pid) {
  state.selected = pid;
  for (const li of document.querySelectorAll("#tree li.selected")) li.classList.remove("selected");
  const li = document.querySelector(`#tree li[data-pid="${CSS.escape(pid)}"]`);
  if (li) li.classList.add("selected");
  await showProcess();
}

async function showProcess() {
  const box = document.getElementById("process");
  const pid = state.selected;
  if (!pid) return;
  const response = await fetch(`/api/process?pid=${encodeURIComponent(pid)}`);
  if (state.selected !== pid) return;
  if (response.status === 404) {
    box.replaceChildren(el("p", { class: "hint gone" }, `${pid} is gone.`));
    return;
  }
  const info = await response.json();
  const rows = [["pid", info.pid], ["name", info.name], ["kind", info.kind], ["class", info.class],
    ["parent", info.parent], ["mailbox", info.mailbox], ["waiting tasks", info.waiting],
    ["links", (info.links || []).join(" ")], ["monitors", (info.monitors || []).join(" ")],
    ["monitored by", (info.monitored_by || []).join(" ")], ["trap exit", info.trap_exit]];
  const dl = el("dl", { id: "process-fields" });
  for (const [k, v] of rows) {
    dl.append(el("dt", {}, k), el("dd", { "data-field": k }, text(v)));
  }
  const parts = [dl];
  if (info.state !== null) parts.push(el("h3", {}, "state"), el("pre", { id: "process-state" },
    JSON.stringify(info.state, null, 2)));
  if (!info.system) {
    const button = el("button", { class: "kill", id: "kill" }, `Kill ${info.pid}`);
    button.addEventListener("click", () => kill(info.pid));
    parts.push(button);
  }
  parts.push(el("p", { id: "kill-result", class: "hint" }));
  box.replaceChildren(...parts);
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  let data = {};
  try { data = await response.json(); } catch (e) { data = { error: await response.text() }; }
  return { ok: response.ok, data };
}

async function kill(pid) {
  const out = () => document.getElementById("kill-result");
  const prepared = await post("/api/kill/prepare", { pid });
  if (!prepared.ok) { out().textContent = prepared.data.error; return; }
  const p = prepared.data.process;
  if (!window.confirm(`Kill ${p.pid} (${p.name || p.class || p.kind})? Its supervisor may restart it.`)) {
    out().textContent = "Not killed.";
    return;
  }
  const done = await post("/api/kill", { pid, confirm: prepared.data.confirm });
  out().textContent = done.ok ? `Killed ${done.data.killed}.` : done.data.error;
}

// ------------------------------------------------------------------ sessions, timeline

function renderSessions(sessions) {
  const rows = sessions.map((s) => el("tr", { "data-pid": s.pid, "data-name": text(s.name) },
    el("td", {}, text(s.name)), el("td", {}, el("code", {}, s.pid)),
    el("td", { class: "cli" }, text(s.cli)), el("td", {}, text(s.os_pid)),
    el("td", {}, text(s.model)), el("td", {}, el("code", {}, text(s.session_id))),
    el("td", { class: "num turns" }, text(s.turns)),
    el("td", { class: "num input-tokens" }, text(s.input_tokens)),
    el("td", { class: "num output-tokens" }, text(s.output_tokens)),
    el("td", { class: "num cost" }, typeof s.cost_usd === "number" ? s.cost_usd.toFixed(6) : "—")));
  const body = document.querySelector("#sessions tbody");
  body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colSpan: 10, class: "hint" },
    "No session on this node."))]));
}

function describe(item) {
  const md = item.metadata || {};
  const m = item.measurements || {};
  switch (item.event) {
    case "otpy.supervisor.restart":
      return md.retry ? `retrying child ${text(md.id)} of ${md.supervisor}`
        : `restart of child ${text(md.id)} (${md.pid}) of ${md.supervisor}: ${text(md.reason)}`;
    case "otpy.supervisor.give_up":
      return `supervisor ${md.supervisor} gave up (child ${text(md.id)})`;
    case "otpy.supervisor.start_error":
      return `child ${text(md.id)} of ${md.supervisor} failed to start: ${text(md.reason)}`;
    case "claudecode.turn.stop":
      return `turn of ${text(md.name || md.session)}: ${m.input_tokens} in, ${m.output_tokens} out, `
        + `$${Number(m.cost_usd || 0).toFixed(6)}, ${Number(m.duration || 0).toFixed(2)} s`;
    case "claudecode.turn.exception":
      return `turn of ${text(md.name || md.session)} failed: ${text(md.reason)}`;
    case "claudecode.cli.start": return `CLI of ${text(md.name || md.session)} started (OS pid ${md.os_pid})`;
    case "claudecode.cli.exit": return `CLI of ${text(md.name || md.session)} exited: ${text(md.reason)}`;
    case "claudecode.cli.hibernate": return `session ${text(md.name || md.session)} hibernated`;
    case "otpy.dist.node_up": return `node ${md.node} up`;
    case "otpy.dist.node_down": return `node ${md.node} down: ${md.reason}`;
    default: return item.event;
  }
}

function renderTimeline(items) {
  const list = items.slice().reverse().map((item) => {
    const kind = item.event.split(".").pop();
    const when = new Date(item.time * 1000).toLocaleTimeString();
    return el("li", { class: kind, "data-event": item.event },
      el("span", { class: "when" }, when), describe(item));
  });
  document.getElementById("timeline").replaceChildren(...list);
}

// ------------------------------------------------------------------ the stream

function render(snapshot) {
  const status = document.getElementById("status");
  status.textContent = snapshot.connected ? "live" : "not subscribed";
  status.className = `status ${snapshot.connected ? "up" : "down"}`;
  const node = snapshot.node;
  document.getElementById("node").textContent =
    `${node.name} — ${node.processes} processes` +
    (node.connected.length ? `, connected to ${node.connected.join(", ")}` : "") +
    (node.hidden && node.hidden.length ? ` (hidden: ${node.hidden.join(", ")})` : "");
  renderTree(snapshot.tree);
  renderSessions(snapshot.sessions);
  renderTimeline(snapshot.timeline);
  if (state.selected) showProcess();
}

function connect() {
  if (new URLSearchParams(location.search).has("token")) {
    history.replaceState(null, "", location.pathname);  // the cookie holds it now
  }
  const events = new EventSource("/api/events");
  events.addEventListener("snapshot", (e) => render(JSON.parse(e.data)));
  events.addEventListener("error", () => {
    const status = document.getElementById("status");
    status.textContent = "reconnecting…";
    status.className = "status down";
  });
}

connect();
