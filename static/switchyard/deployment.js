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

function showState(message) {
  final = message.final;
  const badge = document.getElementById("state-badge");
  badge.className = `badge ${message.state}`;
  badge.textContent = message.state.replace("_", " ").replace(/^./, (c) => c.toUpperCase());
  message.steps.forEach((step, index) => {
    const item = document.querySelector(`#stepper li[data-phase="${step.name}"]`);
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
  if (promoteForm) promoteForm.hidden = !message.watch_until;
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
