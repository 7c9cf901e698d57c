// The admin console: talks JSON-RPC 2.0 over the node's own websocket, holds no data of its own.
"use strict";

const $ = (id) => document.getElementById(id);
let socket = null;
let nextId = 1;
const pending = new Map();

function call(method, params = {}) {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    socket.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
  });
}

function connect() {
  return new Promise((resolve, reject) => {
    socket = new WebSocket(`ws://${location.host}/`);
    socket.onopen = () => { $("connection").textContent = "connected"; resolve(); };
    socket.onerror = () => reject(new Error("the node's websocket did not answer"));
    socket.onclose = () => { $("connection").textContent = "not connected"; };
    socket.onmessage = (event) => {
      const reply = JSON.parse(event.data);
      const waiter = pending.get(reply.id);
      if (!waiter) return;
      pending.delete(reply.id);
      if (reply.error) waiter.reject(new Error(reply.error.message));
      else waiter.resolve(reply.result);
    };
  });
}

function text(tag, value, className) {
  const element = document.createElement(tag);
  element.textContent = value;
  if (className) element.className = className;
  return element;
}

function showStatus(status) {
  const facts = $("facts");
  facts.replaceChildren();
  for (const [name, value] of [["name", status.name], ["version", status.version],
                               ["roles", status.roles.join(", ")], ["uptime", `${Math.round(status.uptime_s)} s`]]) {
    facts.append(text("dt", name), text("dd", value));
  }
  const rows = status.actors.map((actor) => {
    const row = document.createElement("tr");
    row.append(text("td", actor.name), text("td", actor.state, `state-${actor.state}`),
               text("td", String(actor.restarts)), text("td", actor.last_error || ""));
    return row;
  });
  $("actors").replaceChildren(...rows);
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  try {
    if (!socket || socket.readyState !== WebSocket.OPEN) await connect();
    await call("auth.login", { token: $("token").value });
    $("token").value = "";
    $("login").hidden = true;
    $("node").hidden = false;
    showStatus(await call("node.status"));
    // Polled for now; issue 8 turns this into pushed notifications (subscriptions).
    setInterval(async () => showStatus(await call("node.status")), 5000);
  } catch (error) {
    $("login-error").textContent = error.message;
  }
});
