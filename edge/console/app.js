// Strata SRE console: polls /console/api/state once a second and draws it.
// Requests are signed in the page (WebCrypto HMAC-SHA256) with the admin
// key typed at sign-in, or go unsigned in local mode (strata up).
"use strict";

const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);
let cred = null; // {key, secret}
let lastIDs = null; // {time, totals: {tag: n}}
let timer = null;

function hex(buf) {
  return Array.from(new Uint8Array(buf)).map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256(text) {
  return hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

// sign adds the edge's signature headers (see edge/client.Canonical). The
// console's requests carry no query, so the sorted query is empty.
async function sign(method, path, body, headers) {
  if (!cred) return;
  if (!window.crypto || !crypto.subtle) throw new Error("signing needs a secure context (https or 127.0.0.1)");
  const ts = Math.floor(Date.now() / 1000).toString();
  const nonce = hex(crypto.getRandomValues(new Uint8Array(16)));
  const bodyHash = await sha256(body || "");
  const canonical = ["STRATA-HMAC-SHA256", method, path, "", bodyHash, ts, nonce].join("\n");
  const k = await crypto.subtle.importKey("raw", new TextEncoder().encode(cred.secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = hex(await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(canonical)));
  headers["X-Strata-Key"] = cred.key;
  headers["X-Strata-Timestamp"] = ts;
  headers["X-Strata-Nonce"] = nonce;
  headers["X-Strata-Signature"] = mac;
  if (body) headers["X-Strata-Content-SHA256"] = bodyHash;
}

async function api(method, path, body) {
  const headers = {};
  if (body) headers["Content-Type"] = "application/json";
  await sign(method, path, body, headers);
  const resp = await fetch(path, { method, headers, body: body || undefined });
  const data = await resp.json().catch(() => ({}));
  return { status: resp.status, data };
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function drawTopology(st) {
  const tbody = $("topology").querySelector("tbody");
  tbody.textContent = "";
  const note = $("topologyNote");
  if (!st.topology.available) {
    note.textContent = "Topology not available: " + st.topology.reason;
    note.className = "na";
    return;
  }
  note.textContent = "";
  const shardsWithPrimary = new Set();
  for (const s of st.topology.data) {
    const tr = document.createElement("tr");
    tr.dataset.server = s.server;
    tr.dataset.shard = s.shard;
    cell(tr, s.shard);
    cell(tr, s.server);
    cell(tr, s.addr);
    cell(tr, s.role, "role-" + s.role);
    cell(tr, s.health, "health health-" + s.health);
    cell(tr, s.lag_ms);
    cell(tr, s.position);
    cell(tr, s.reads);
    cell(tr, s.writes);
    cell(tr, s.last_error);
    const td = cell(tr, "");
    if (s.role === "primary" && !shardsWithPrimary.has(s.shard)) {
      shardsWithPrimary.add(s.shard);
      const b = document.createElement("button");
      b.textContent = "Switch over";
      b.className = "switchover";
      b.dataset.shard = s.shard;
      b.onclick = () => switchover(s.shard);
      td.appendChild(b);
    }
    tbody.appendChild(tr);
  }
  const ph = st.proxy_health;
  const badge = $("proxyHealth");
  if (!ph.available) {
    badge.textContent = "proxy: " + ph.reason;
    badge.className = "badge bad";
  } else {
    badge.textContent = ph.data.ok ? "proxy healthy" : "proxy unhealthy";
    badge.className = "badge " + (ph.data.ok ? "ok" : "bad");
    badge.title = ph.data.text;
  }
}

function drawIDs(st) {
  const tbody = $("ids").querySelector("tbody");
  tbody.textContent = "";
  const now = Date.parse(st.time);
  const totals = {};
  for (const t of st.ids) {
    totals[t.tag] = t.total;
    const tr = document.createElement("tr");
    cell(tr, t.tag);
    cell(tr, t.total);
    let rate = "";
    if (lastIDs && lastIDs.totals[t.tag] != null && now > lastIDs.time) {
      rate = ((t.total - lastIDs.totals[t.tag]) / ((now - lastIDs.time) / 1000)).toFixed(1);
    }
    cell(tr, rate);
    tbody.appendChild(tr);
  }
  if (!st.ids.length) {
    const tr = document.createElement("tr");
    cell(tr, "no IDs handed out yet", "na").colSpan = 3;
    tbody.appendChild(tr);
  }
  lastIDs = { time: now, totals };
  $("breakers").textContent = Object.entries(st.breakers).map(([k, v]) => k + " " + v).join(", ");
}

function drawGray(st) {
  const tbody = $("gray").querySelector("tbody");
  tbody.textContent = "";
  for (const g of st.gray || []) {
    const tr = document.createElement("tr");
    cell(tr, g.route);
    cell(tr, g.app || "(every app)");
    cell(tr, g.by);
    cell(tr, (g.share * 100).toFixed(2) + " %");
    cell(tr, g.canary);
    tbody.appendChild(tr);
  }
  if (!(st.gray || []).length) {
    const tr = document.createElement("tr");
    cell(tr, "no gray-release rules", "na").colSpan = 5;
    tbody.appendChild(tr);
  }
}

function drawPanels(st) {
  for (const sec of document.querySelectorAll(".panel")) {
    const p = st.panels[sec.dataset.panel];
    const body = sec.querySelector(".body");
    body.textContent = "";
    if (!p || !p.available) {
      const span = document.createElement("span");
      span.className = "na";
      span.textContent = "not available" + (p && p.reason ? " (" + p.reason + ")" : "");
      body.appendChild(span);
      continue;
    }
    if (sec.dataset.panel === "drills" && Array.isArray(p.data)) {
      for (const f of p.data) body.appendChild(drillReport(f));
      continue;
    }
    const pre = document.createElement("pre");
    pre.textContent = JSON.stringify(p.data, null, 2);
    body.appendChild(pre);
  }
}

const SVG = "http://www.w3.org/2000/svg";

function svgEl(name, attrs) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

// drillReport draws one chaos drill report (package chaos's report.json):
// verdict, checks, and its timeline: operations per second as bars, errors
// in red, the fault windows shaded.
function drillReport(f) {
  const d = f.doc || {};
  const div = document.createElement("div");
  div.className = "drill";
  const h = document.createElement("div");
  const verdict = document.createElement("span");
  verdict.textContent = d.passed ? "PASSED" : "FAILED";
  verdict.className = d.passed ? "health-up" : "health-down";
  h.append((d.drill || f.path) + " ", verdict,
    " " + (d.started || "").replace("T", " ").slice(0, 19) + ", " + (d.seconds || 0).toFixed(1) + " s, " + (d.ops || 0) + " ops, " + (d.errors || 0) + " failed");
  div.appendChild(h);
  const tl = d.timeline || [];
  if (tl.length) {
    const w = 320, hgt = 48;
    const max = Math.max(1, ...tl.map((s) => s.ops + s.errors));
    const bw = w / tl.length;
    const svg = svgEl("svg", { width: w, height: hgt, class: "timeline" });
    tl.forEach((s, i) => {
      const oh = (s.ops / max) * hgt, eh = (s.errors / max) * hgt;
      svg.appendChild(svgEl("rect", { x: i * bw, y: hgt - oh - eh, width: Math.max(1, bw - 1), height: oh, fill: "#4a6fa5" }));
      if (eh) svg.appendChild(svgEl("rect", { x: i * bw, y: hgt - eh, width: Math.max(1, bw - 1), height: eh, fill: "#c5221f" }));
    });
    for (const ft of d.faults || []) {
      if (ft.start_s < 0) continue;
      const x = (ft.start_s / tl.length) * w, x2 = (Math.max(ft.end_s, ft.start_s + 0.2) / tl.length) * w;
      const band = svgEl("rect", { x, y: 0, width: Math.max(1, x2 - x), height: hgt, fill: "rgba(240,160,0,0.35)" });
      band.appendChild(svgEl("title", {})).textContent = ft.name;
      svg.appendChild(band);
    }
    div.appendChild(svg);
  }
  for (const c of d.checks || []) {
    const line = document.createElement("div");
    line.className = "note";
    line.textContent = (c.passed ? "ok  " : "FAIL ") + c.name + ": " + (c.summary || "");
    div.appendChild(line);
  }
  return div;
}

async function switchover(shard) {
  if (!confirm("Switch over shard " + shard + "? Its writes are held while a replica is promoted.")) return;
  const out = $("switchResult");
  out.textContent = "switching over " + shard + "...";
  const r = await api("POST", "/console/api/switchover", JSON.stringify({ shard, to: "" }));
  out.textContent = r.status === 200 ? "switchover done: " + JSON.stringify(r.data) : "switchover failed: " + (r.data.error || r.status);
  poll();
}

async function poll() {
  try {
    const r = await api("GET", "/console/api/state");
    if (r.status === 401 || r.status === 403) {
      showLogin(cred ? "refused: " + (r.data.reason || r.status) : "");
      return;
    }
    if (r.status !== 200) throw new Error(r.data.error || "status " + r.status);
    $("login").hidden = true;
    $("main").hidden = false;
    $("logout").hidden = !cred;
    $("mode").textContent = r.data.local && !cred ? "local mode" : "signed in as " + (cred ? cred.key : "?");
    drawTopology(r.data);
    drawIDs(r.data);
    drawGray(r.data);
    drawPanels(r.data);
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  } catch (e) {
    $("updated").textContent = "update failed: " + e.message;
  }
  clearTimeout(timer);
  timer = setTimeout(poll, POLL_MS);
}

function showLogin(msg) {
  clearTimeout(timer);
  $("main").hidden = true;
  $("login").hidden = false;
  $("loginError").textContent = msg || "";
}

$("loginForm").onsubmit = (ev) => {
  ev.preventDefault();
  cred = { key: $("keyName").value, secret: $("keySecret").value };
  sessionStorage.setItem("strataKey", JSON.stringify(cred));
  poll();
};
$("logout").onclick = () => {
  cred = null;
  sessionStorage.removeItem("strataKey");
  showLogin("");
};
try { cred = JSON.parse(sessionStorage.getItem("strataKey")); } catch (e) { cred = null; }
poll();
