// The deployment page: log lines and the phase stepper, live over one WebSocket.
import { LogViewer } from "./log_viewer.js";
import { liveSocket } from "./live_socket.js";

const logElement = document.getElementById("log");
const viewer = new LogViewer(logElement);
const status = document.getElementById("log-status");
let final = false;
let watchUntil = null;

// The watch step counts down to the end of the window.
setInterval(() => {
  const time = document.querySelector('#stepper li[data-phase="watch"].active .time');
  if (time && watchUntil) time.textContent = `${Math.max(0, Math.ceil((watchUntil - Date.now()) / 1000))}s left`;
}, 250);

const STATUS_TEXT = { live: "live", reconnecting: "reconnecting…", closed: "complete" };

function formatSeconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 10) return `${value.toFixed(2)}s`;
  if (value < 60) return `${Math.round(value)}s`;
  return `${Math.floor(value / 60)}m ${String(Math.floor(value % 60)).padStart(2, "0")}s`;
}

// A step's chart: two rows (5xx ratio, p95), each an old and a new bar on a shared scale.
function stepChart(step) {
  const rows = [
    ["5xx %", (f) => (f && f.requests ? (100 * f["5xx"]) / f.requests : 0), (v) => `${v.toFixed(1)}%`],
    ["p95 ms", (f) => (f && f.p95_ms !== null ? f.p95_ms : 0), (v) => `${Math.round(v)} ms`],
  ];
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 200 64");
  rows.forEach(([label, value, format], row) => {
    const values = [value(step.old), value(step.new)];
    const scale = Math.max(...values, 1e-9);
    values.forEach((v, i) => {
      const y = row * 32 + i * 12;
      const bar = document.createElementNS(svg.namespaceURI, "rect");
      bar.setAttribute("class", i ? "new" : "old");
      bar.setAttribute("x", "44");
      bar.setAttribute("y", String(y));
      bar.setAttribute("height", "10");
      bar.setAttribute("width", String(Math.max(1, (110 * v) / scale)));
      svg.append(bar);
      const text = document.createElementNS(svg.namespaceURI, "text");
      text.setAttribute("x", String(48 + Math.max(1, (110 * v) / scale)));
      text.setAttribute("y", String(y + 9));
      text.textContent = `${i ? "new" : "old"} ${format(v)}`;
      svg.append(text);
    });
    const name = document.createElementNS(svg.namespaceURI, "text");
    name.setAttribute("x", "0");
    name.setAttribute("y", String(row * 32 + 15));
    name.textContent = label;
    svg.append(name);
  });
  return svg;
}

function showCanary(canary, inCanary) {
  const card = document.getElementById("canary-card");
  card.hidden = !canary;
  if (!canary) return;
  const share = inCanary ? canary.percent : canary.verdict === "rolled back" ? 0 : 100;
  document.querySelector("#canary-split .old").style.width = `${100 - share}%`;
  document.querySelector("#canary-split .new").style.width = `${share}%`;
  document.getElementById("canary-split-text").textContent =
    `${share}% of new clients on the new release, ${100 - share}% on the old` +
    (canary.verdict ? ` · canary ${canary.verdict}` : "");
  const steps = document.getElementById("canary-steps");
  steps.replaceChildren(...canary.steps.map((step) => {
    const box = document.createElement("div");
    box.className = `canary-step ${step.verdict.replaceAll(" ", "-")}`;
    const head = document.createElement("div");
    head.className = "head";
    head.append(Object.assign(document.createElement("span"), { textContent: `${step.percent}%` }),
      Object.assign(document.createElement("span"), { textContent: step.verdict }));
    const counts = document.createElement("div");
    counts.className = "small muted";
    const one = (f) => (f ? `${f.requests} req, ${f["5xx"]} 5xx` : "–");
    counts.textContent = `old ${one(step.old)} · new ${one(step.new)}`;
    box.append(head, stepChart(step), counts);
    if (step.reason) box.append(Object.assign(document.createElement("div"), { className: "reason", textContent: step.reason }));
    return box;
  }));
}

function showState(message) {
  final = message.final;
  const badge = document.getElementById("state-badge");
  badge.className = `badge ${message.state}`;
  badge.textContent = message.state.replace("_", " ").replace(/^./, (c) => c.toUpperCase());
  message.steps.forEach((step, index) => {
    const item = document.querySelector(`#stepper li[data-phase="${step.name}"]`);
    if (!item) return;  // a phase the page was rendered without (the app's canary setting changed)
    item.className = step.status;
    item.querySelector(".dot").textContent = { done: "✓", failed: "✕" }[step.status] || String(index + 1);
    item.querySelector(".time").textContent = step.status === "skipped" ? "skipped" : formatSeconds(step.seconds);
  });
  const errorBox = document.getElementById("error-box");
  errorBox.hidden = !message.error;
  errorBox.textContent = message.error;
  document.getElementById("duration").textContent = formatSeconds(message.duration);
  document.getElementById("commit").textContent = message.commit || "–";
  const cancelForm = document.getElementById("cancel-form");
  if (cancelForm) cancelForm.hidden = !message.cancellable;
  const promoteForm = document.getElementById("promote-form");
  if (promoteForm) promoteForm.hidden = !(message.watch_until || message.in_canary);
  const abortForm = document.getElementById("abort-form");
  if (abortForm) abortForm.hidden = !message.in_canary;
  showCanary(message.canary, message.in_canary);
  watchUntil = message.watch_until ? new Date(message.watch_until) : null;
  if (message.traffic) {
    document.getElementById("traffic").textContent = `${message.traffic[0]} requests, ${message.traffic[1]} failed`;
  }
  if (final) {
    status.textContent = "complete";
    status.className = "status";
  }
}

liveSocket(() => `${logElement.dataset.url}?after=${viewer.lastSeq}`, {
  onMessage(message, socket) {
    if (message.type === "lines" && !viewer.append(message.lines)) {
      socket.send(JSON.stringify({ resume_after: viewer.lastSeq }));  // a live message was lost
    } else if (message.type === "state") {
      showState(message);
    }
  },
  onStatus(state) {
    status.textContent = final ? "complete" : STATUS_TEXT[state];
    status.className = `status ${state}`;
  },
  shouldReconnect: () => !final,
});
