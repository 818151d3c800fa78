// The console's only script (no build step): keeps the live calls table current from the
// server-sent events of /admin/calls/events, and asks before a hang-up. Values are put on
// the page as text (textContent), never as markup.
"use strict";

function mmss(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

function cell(row, text, numeric) {
  const td = document.createElement("td");
  if (numeric) td.className = "num";
  td.textContent = text === null || text === undefined ? "" : String(text);
  row.appendChild(td);
  return td;
}

function hangUpForm(table, sid) {
  const form = document.createElement("form");
  form.method = "post";
  form.action = "/admin/calls/hangup";
  form.className = "inline hangup";
  for (const [name, value] of [["csrf", table.dataset.csrf], ["sid", sid]]) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.appendChild(input);
  }
  const button = document.createElement("button");
  button.type = "submit";
  button.className = "danger";
  button.textContent = table.dataset.hangUp;
  form.appendChild(button);
  return form;
}

// Each live call's MOS as the stream reported it, newest last: drawn as a small chart per row.
const MOS_POINTS = 60;
const mosHistory = new Map();

function rememberMos(calls) {
  const live = new Set();
  for (const call of calls) {
    live.add(call.sid);
    const points = mosHistory.get(call.sid) || [];
    if (call.mos !== null && call.mos !== undefined) points.push(call.mos);
    if (points.length > MOS_POINTS) points.shift();
    mosHistory.set(call.sid, points);
  }
  for (const sid of mosHistory.keys()) if (!live.has(sid)) mosHistory.delete(sid);
}

function mosChart(points) {
  // MOS 1 (bottom) to 4.5 (top), one point a second, in a 60 x 20 box
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "mos-chart");
  svg.setAttribute("viewBox", `0 0 ${MOS_POINTS} 20`);
  svg.setAttribute("width", "80");
  svg.setAttribute("height", "20");
  const frame = document.createElementNS(ns, "rect");
  frame.setAttribute("width", String(MOS_POINTS));
  frame.setAttribute("height", "20");
  frame.setAttribute("fill", "#e8edf3");
  svg.appendChild(frame);
  // the newest point at the right edge, older ones to its left
  const x = (i) => MOS_POINTS - points.length + i;
  const y = (mos) => (20 - ((Math.min(Math.max(mos, 1), 4.5) - 1) / 3.5) * 20).toFixed(1);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.map((mos, i) => `${x(i)},${y(mos)}`).join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#1f6feb");
  line.setAttribute("stroke-width", "1.5");
  svg.appendChild(line);
  return svg;
}

function showCalls(table, calls) {
  const body = document.createElement("tbody");
  rememberMos(calls);
  for (const call of calls) {
    const row = document.createElement("tr");
    row.dataset.sid = call.sid;
    cell(row, call.kind);
    cell(row, call.state);
    cell(row, call.caller);
    cell(row, call.callee);
    cell(row, call.account);
    cell(row, mmss(call.duration_s), true);
    cell(row, call.loss_pct === null ? "" : call.loss_pct.toFixed(1) + "%", true);
    cell(row, call.jitter_ms, true);
    cell(row, call.rtt_ms, true);
    cell(row, call.mos, true);
    cell(row, call.node).className = "node";
    cell(row, "").appendChild(mosChart(mosHistory.get(call.sid)));
    const actions = cell(row, "");
    if (table.dataset.mayChange === "yes") actions.appendChild(hangUpForm(table, call.sid));
    body.appendChild(row);
  }
  if (!calls.length) {
    const row = document.createElement("tr");
    row.className = "none";
    cell(row, table.dataset.none).colSpan = 13;
    body.appendChild(row);
  }
  table.replaceChild(body, table.tBodies[0]);
}

function watchCalls(table) {
  const state = document.getElementById("live-state");
  const updated = document.getElementById("updated");
  const events = new EventSource("/admin/calls/events");
  events.addEventListener("calls", (event) => {
    const snapshot = JSON.parse(event.data);
    showCalls(table, snapshot.calls);
    document.getElementById("total").textContent = String(snapshot.total);
    // Redis failed: only this node's calls are listed until it answers again.
    document.getElementById("partial").hidden = !snapshot.partial;
    // The server's clock in billing.timezone, as the page first showed it (not the browser's).
    updated.textContent = snapshot.updated;
    state.textContent = "";
  });
  events.addEventListener("signed_out", () => {
    events.close();
    window.location.assign("/admin/sign-in");
  });
  events.onerror = () => { state.textContent = state.dataset.paused; };
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  const table = document.getElementById("calls");
  if (form.classList.contains("hangup") && table && !window.confirm(table.dataset.confirm)) {
    event.preventDefault();
  } else if (form.classList.contains("confirm") && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

const callsTable = document.getElementById("calls");
if (callsTable) watchCalls(callsTable);
