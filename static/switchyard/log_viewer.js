// Appends log lines to a console element without freezing the page:
// - lines are queued and rendered a frame at a time, within FRAME_BUDGET_MS of script;
// - lines live in chunks of LINES_PER_CHUNK with `content-visibility: auto`, so the browser
//   skips layout of every chunk off screen. Appending to one long list of 100,000 lines made
//   each frame re-lay out all of them (measured: 117 ms growing to 2.1 s per frame);
// - while a backlog loads, the view does not chase the end: new chunks land off screen and
//   cost no layout. It jumps to the end once the queue is empty, if the reader was following.
import { AnsiUp } from "../vendor/ansi_up/ansi_up.js";

const FRAME_BUDGET_MS = 12;  // script time per frame; layout and paint of the new lines follow
const SLICE = 100;           // lines rendered between budget checks
const LINES_PER_CHUNK = 250;
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export class LogViewer {
  constructor(element, { numbered = true } = {}) {
    this.element = element;
    this.numbered = numbered;
    this.lastSeq = 0;
    this.queue = [];
    this.scheduled = false;
    this.chunk = null;
    this.following = true;  // false once the reader scrolls up; true again at the bottom
    element.addEventListener("scroll", () => { this.following = this.atBottom(); });
    this.ansi = new AnsiUp();
    this.ansi.use_classes = false;
  }

  // Lines with a seq at or below the last one shown are duplicates (a replayed backlog).
  // Returns false when lines were skipped, so the caller can ask for the gap.
  append(lines) {
    let contiguous = true;
    for (const line of lines) {
      if (line.seq !== undefined) {
        if (line.seq <= this.lastSeq) continue;
        if (line.seq !== this.lastSeq + 1 && this.lastSeq !== 0) contiguous = false;
        if (!contiguous) break;
        this.lastSeq = line.seq;
      }
      this.queue.push(line);
    }
    this.schedule();
    return contiguous;
  }

  schedule() {
    if (this.scheduled || this.queue.length === 0) return;
    this.scheduled = true;
    requestAnimationFrame(() => this.renderFrame());
  }

  atBottom() {
    return this.element.scrollHeight - this.element.scrollTop - this.element.clientHeight < 40;
  }

  renderFrame() {
    this.scheduled = false;
    const deadline = performance.now() + FRAME_BUDGET_MS;
    let last;
    while (this.queue.length && performance.now() < deadline) {
      const slice = this.queue.splice(0, SLICE);
      this.render(slice);
      last = slice[slice.length - 1];
    }
    if (last && last.seq !== undefined) this.element.dataset.renderedSeq = last.seq;  // progress, readable by tests
    if (this.following && this.queue.length === 0) this.element.scrollTop = this.element.scrollHeight;
    this.schedule();
  }

  // One HTML string per chunk and one insertion: far cheaper than a node per line.
  render(lines) {
    let html = "";
    for (const line of lines) {
      if (!this.chunk || this.chunkLines >= LINES_PER_CHUNK) {
        this.flush(html);
        html = "";
        // Only a full chunk may be skipped off screen: its placeholder height is then right.
        if (this.chunk) this.chunk.classList.add("full");
        this.chunk = document.createElement("div");
        this.chunk.className = "chunk";
        this.chunkLines = 0;
        this.element.appendChild(this.chunk);
      }
      html += this.lineHtml(line);
      this.chunkLines += 1;
    }
    this.flush(html);
  }

  flush(html) {
    if (html) this.chunk.insertAdjacentHTML("beforeend", html);
  }

  lineHtml(line) {
    const seq = this.numbered && line.seq !== undefined ? `<span class="seq">${line.seq}</span>` : "";
    const kind = line.text.startsWith("==> ") ? ' class="phase-line"' : "";
    return `<div class="line">${seq}<span${kind}>${this.toHtml(line.text)}</span></div>`;
  }

  // ansi_up escapes HTML and carries colour across lines as a terminal would; plain text
  // outside any colour only needs escaping, which is a hundred times cheaper.
  toHtml(text) {
    const a = this.ansi;
    if (text.includes("\x1b") || a.fg || a.bg || a.bold || a.faint || a.italic || a.underline) return a.ansi_to_html(text);
    return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
  }
}
