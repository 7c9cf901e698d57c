// The admin console. It holds no data of its own: after login it subscribes to the node's
// views and draws each `console.update` notification the node pushes over its websocket.
"use strict";

const $ = (id) => document.getElementById(id);
const TOPICS = ["node", "peers", "identities", "envelopes", "hsm", "audit", "dta", "mfa"];
const SESSION_KEY = "milagro-console-session"; // sessionStorage: gone when the tab closes
const CHART_SECONDS = 60;

let socket = null;
let nextId = 1;
let loggedIn = false;
let reconnectDelay = 500;
const pending = new Map();
const accepted = []; // [seconds, total accepted] samples, for the traffic chart

// ---- JSON-RPC over the websocket ---------------------------------------------------------

function call(method, params = {}) {
  return new Promise((resolve, reject) => {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      reject(new Error("not connected to the node"));
      return;
    }
    const id = nextId++;
    pending.set(id, { resolve, reject });
    socket.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
  });
}

function openSocket() {
  return new Promise((resolve, reject) => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/`);
    socket.onopen = () => {
      reconnectDelay = 500;
      $("connection").textContent = "connected";
      resolve();
    };
    socket.onerror = () => reject(new Error("the node's websocket did not answer"));
    socket.onclose = () => {
      $("connection").textContent = "not connected";
      for (const waiter of pending.values()) waiter.reject(new Error("the connection to the node closed"));
      pending.clear();
      if (loggedIn) setTimeout(resume, reconnectDelay);
      reconnectDelay = Math.min(reconnectDelay * 2, 10000);
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.method === "console.update") {
        onUpdate(message.params);
        return;
      }
      const waiter = pending.get(message.id);
      if (!waiter) return;
      pending.delete(message.id);
      if (message.error) waiter.reject(new Error(message.error.message));
      else waiter.resolve(message.result);
    };
  });
}

// ---- login, session, logout ---------------------------------------------------------------

async function start() {
  const ticket = new URLSearchParams(location.hash.slice(1)).get("ticket");
  if (ticket) history.replaceState(null, "", location.pathname); // out of the address bar at once
  try {
    await openSocket();
  } catch (error) {
    showLogin(error.message);
    return;
  }
  if (ticket) {
    await useTicket(ticket);
  } else if (sessionStorage.getItem(SESSION_KEY)) {
    await resume();
  } else {
    showLogin("");
  }
}

async function useTicket(ticket) {
  try {
    const reply = await call("auth.ticket", { ticket });
    sessionStorage.setItem(SESSION_KEY, reply.session);
    await enter();
  } catch (error) {
    showLogin(error.message);
  }
}

async function resume() {
  const session = sessionStorage.getItem(SESSION_KEY);
  if (!session) return showLogin("");
  try {
    if (!socket || socket.readyState !== WebSocket.OPEN) await openSocket();
    await call("auth.session", { session });
    await enter();
  } catch (error) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      sessionStorage.removeItem(SESSION_KEY); // the node refused it: expired or unknown
      showLogin(error.message);
    } else if (loggedIn) {
      setTimeout(resume, reconnectDelay); // the node is away; keep trying
    } else {
      showLogin(error.message);
    }
  }
}

async function enter() {
  loggedIn = true;
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("logout").hidden = false;
  const reply = await call("subscribe", { topics: TOPICS });
  for (const topic of reply.unavailable) $(`${topic}-view`).hidden = true;
}

function showLogin(message) {
  loggedIn = false;
  $("dashboard").hidden = true;
  $("logout").hidden = true;
  for (const body of document.querySelectorAll("#dashboard tbody, #dashboard dl")) body.replaceChildren();
  $("traffic-chart").replaceChildren();
  accepted.length = 0;
  $("login").hidden = false;
  $("login-error").textContent = message;
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    if (!socket || socket.readyState !== WebSocket.OPEN) await openSocket();
    await call("auth.login", { token: $("token").value });
    $("token").value = "";
    const ticket = await call("console.ticket"); // the token logs in once; the page keeps a session
    await useTicket(ticket.ticket);
  } catch (error) {
    showLogin(error.message);
  }
});

$("logout").addEventListener("click", async () => {
  sessionStorage.removeItem(SESSION_KEY);
  try {
    await call("auth.logout");
  } finally {
    showLogin("Logged out.");
    socket.close(); // ends this connection's subscriptions
  }
});

// ---- views ----------------------------------------------------------------------------------

function el(tag, value, className) {
  const element = document.createElement(tag);
  element.textContent = value === null || value === undefined ? "" : String(value);
  if (className) element.className = className;
  return element;
}

function row(...cells) {
  const tr = document.createElement("tr");
  tr.append(...cells.map((cell) => (cell instanceof Node ? cell : el("td", cell))));
  return tr;
}

function idCell(value) {
  const td = el("td", value, "id");
  td.title = value || "";
  return td;
}

function facts(id, pairs) {
  $(id).replaceChildren(...pairs.flatMap(([name, value]) => [el("dt", name), el("dd", value)]));
}

function ago(seconds) {
  if (!seconds) return "never";
  const delta = Math.max(0, Date.now() / 1000 - seconds);
  return delta < 90 ? `${Math.round(delta)} s ago` : `${Math.round(delta / 60)} min ago`;
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleString();
}

const VIEWS = {
  node(status) {
    $("node-name").textContent = status.name;
    facts("facts", [["name", status.name], ["version", status.version], ["roles", status.roles.join(", ")],
                    ["uptime", `${Math.round(status.uptime_s)} s`], ["pid", status.pid]]);
    $("actors").replaceChildren(...status.actors.map((actor) => row(
      actor.name, el("td", actor.state, `state-${actor.state}`), actor.restarts, actor.last_error || "")));
  },
  peers(peers) {
    $("peers").replaceChildren(...peers.map((peer) => row(
      peer.name || "", idCell(peer.identity), idCell(peer.peer_id),
      el("td", peer.connected ? "yes" : "no", peer.connected ? "ok" : "bad"),
      Number(peer.score).toFixed(1), ago(peer.last_seen))));
  },
  identities(identities) {
    const dup = identities.filter((identity) => identity.duplicity);
    $("duplicity").textContent = dup.length
      ? `Duplicity: ${dup.map((identity) => identity.name || identity.identity).join(", ")} signed two different events at one sequence number.`
      : "";
    $("identities").replaceChildren(...identities.map((identity) => row(
      identity.name || "", idCell(identity.identity), identity.known ? `#${identity.seq}` : "not yet known",
      el("td", identity.revoked ? "revoked" : identity.duplicity ? "duplicity" : "ok",
         identity.revoked || identity.duplicity ? "bad" : "ok"),
      (identity.roles || []).join(", "))));
  },
  envelopes(counters) {
    const total = Object.values(counters.accepted).reduce((sum, n) => sum + n, 0);
    accepted.push([Date.now() / 1000, total]);
    facts("envelope-totals", [["accepted", total], ["sent", counters.sent], ["delivered", counters.delivered],
                              ["received", counters.received], ["awaiting acknowledgement", counters.pending],
                              ["expired unacknowledged", counters.expired]]);
    const rejected = Object.entries(counters.rejected);
    $("rejected").replaceChildren(...(rejected.length ? rejected.map(([reason, n]) => row(reason, n)) : [row("none", "")]));
    drawChart();
  },
  hsm(health) {
    facts("hsm", [["state", health.state], ["token", health.token], ["serial", health.serial],
                  ["model", `${health.manufacturer || ""} ${health.model || ""}`.trim()],
                  ["missing mechanisms", [...health.missing_required, ...health.missing_optional].join(", ") || "none"]]);
  },
  audit(entries) {
    $("audit").replaceChildren(...entries.slice().reverse().map((entry) => row(
      entry.seq, clock(entry.time), entry.actor, entry.action, JSON.stringify(entry.detail).slice(0, 200))));
  },
  dta(status) {
    $("dta-view").hidden = false;
    facts("dta", [["enrolled identities", status.enrolled], ["client shares issued", status.issued["client-share"]],
                  ["time permits issued", status.issued["time-permit"]],
                  ["server shares sent", status.issued["server-share"]],
                  ["revoked identities", status.revoked.length], ["MFA nodes served", status.mfa_served.length]]);
  },
  mfa(status) {
    $("mfa-view").hidden = false;
    facts("mfa", [["ready", status.ready ? "yes" : `no (server shares from ${status.have.length} of ${status.dtas.length} D-TAs)`],
                  ["successful logins", status.logins.ok], ["failed logins", status.logins.failed],
                  ["open sessions", status.sessions], ["revoked identities", status.revoked.length],
                  ["device keys registered", status.devices]]);
    $("locked").replaceChildren(...status.locked.map((lock) => {
      const button = el("button", "Unlock");
      button.type = "button";
      button.dataset.user = lock.user_id;
      button.addEventListener("click", () => unlock(lock.user_id));
      const action = document.createElement("td");
      action.append(button);
      return row(lock.user_id, lock.failures, lock.until ? clock(lock.until) : "until unlocked", action);
    }));
  },
};

function onUpdate(update) {
  if (update.ended) {
    sessionStorage.removeItem(SESSION_KEY);
    if (loggedIn) showLogin("Your session has ended; log in again.");
    return;
  }
  const section = $(`${update.topic}-view`) || $(update.topic);
  if (update.error) {
    section.dataset.error = update.error;
    return;
  }
  delete section.dataset.error;
  VIEWS[update.topic](update.data);
}

function drawChart() {
  const now = Date.now() / 1000;
  while (accepted.length > 1 && accepted[1][0] < now - CHART_SECONDS - 1) accepted.shift();
  const perSecond = new Array(CHART_SECONDS).fill(0);
  for (let i = 1; i < accepted.length; i++) {
    const slot = CHART_SECONDS - 1 - Math.floor(now - accepted[i][0]);
    if (slot >= 0) perSecond[slot] += accepted[i][1] - accepted[i - 1][1];
  }
  const peak = Math.max(1, ...perSecond);
  const points = perSecond.map((n, i) => `${(i * 300) / (CHART_SECONDS - 1)},${58 - (n * 56) / peak}`).join(" ");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points);
  $("traffic-chart").replaceChildren(line);
  $("rate").textContent = String(perSecond[CHART_SECONDS - 1]);
}

setInterval(() => { if (loggedIn) drawChart(); }, 1000); // scrolls the chart; no request to the node

// ---- admin actions (each confirmed here, audited by the node) -------------------------------

async function unlock(userId) {
  if (!confirm(`Unlock ${userId}? Its failure count is cleared and logins are allowed again.`)) return;
  try {
    await call("mfa.unlock", { id: userId });
  } catch (error) {
    alert(`Unlock failed: ${error.message}`);
  }
}

$("verify").addEventListener("click", async () => {
  $("verdict").textContent = "checking…";
  try {
    const verdict = await call("audit.verify");
    $("verdict").textContent = verdict.ok
      ? `intact: ${verdict.checked} entries checked`
      : `BROKEN at entry ${verdict.first_bad_seq}: ${verdict.reason}`;
    $("verdict").className = verdict.ok ? "ok" : "bad";
  } catch (error) {
    $("verdict").textContent = error.message;
    $("verdict").className = "bad";
  }
});

start();
