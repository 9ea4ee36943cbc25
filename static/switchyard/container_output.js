// The app page's live view of the running container's output.
import { LogViewer } from "./log_viewer.js";
import { liveSocket } from "./live_socket.js";

const element = document.getElementById("output");
const viewer = new LogViewer(element, { numbered: false });
const status = document.getElementById("output-status");

liveSocket(() => element.dataset.url, {
  onMessage(message) {
    if (message.type === "output") viewer.append(message.lines.map((text) => ({ text })));
  },
  onStatus(state) {
    status.textContent = { live: "live", reconnecting: "reconnecting…", closed: "closed" }[state];
    status.className = `status ${state}`;
  },
});
