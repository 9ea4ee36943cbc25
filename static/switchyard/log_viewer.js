// Appends log lines to a console element without freezing the page:
// - lines are queued and rendered a frame at a time. How many go into one frame is measured,
//   not guessed: the browser's style and layout of the new lines cost more than the script that
//   adds them (measured: 12 ms of script, then 40-150 ms of style and layout), and that cost
//   depends on the machine and its load. So the count halves whenever a frame took longer than
//   FRAME_TARGET_MS from one animation frame to the next, and grows slowly while frames are fast;
// - lines are plain blocks: a flex row per line made style and layout about twice as costly;
// - lines live in chunks of LINES_PER_CHUNK with `content-visibility: auto`, so the browser
//   skips layout of every chunk off screen. Appending to one long list of 100,000 lines made
//   each frame re-lay out all of them (measured: 117 ms growing to 2.1 s per frame). A chunk has
//   `content-visibility` from its birth: turning it on for a chunk already laid out cost style
//   work that grew with the whole log (measured: 3 ms at the start, 77 ms at 90,000 lines);
// - while a backlog loads, the view does not chase the end: new chunks land off screen and
//   cost no layout. It jumps to the end once the queue is empty, if the reader was following.
import { AnsiUp } from "../vendor/ansi_up/ansi_up.js";

const FRAME_BUDGET_MS = 12;  // script time per frame at most; layout and paint of the new lines follow
const FRAME_TARGET_MS = 40;  // one whole frame (script, style, layout, paint), under the 50 ms of a "long task"
const SLICE = 50;            // lines rendered between checks
const MIN_LINES_PER_FRAME = SLICE;
const MAX_LINES_PER_FRAME = 2000;
const LINES_PER_CHUNK = 250;
const LINE_HEIGHT_PX = 19.375;  // panel.css: .console font-size 12.5px × line-height 1.55
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export class LogViewer {
  constructor(element, { numbered = true } = {}) {
    this.element = element;
    this.numbered = numbered;
    if (numbered) element.classList.add("numbered");
    this.lastSeq = 0;
    this.queue = [];
    this.scheduled = false;
    this.linesPerFrame = 500;
    this.lastFrameAt = null;  // when the previous frame started, if it rendered and left lines queued
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
    requestAnimationFrame((now) => this.renderFrame(now));
  }

  atBottom() {
    return this.element.scrollHeight - this.element.scrollTop - this.element.clientHeight < 40;
  }

  renderFrame(now) {
    this.scheduled = false;
    this.adaptLinesPerFrame(now);
    const deadline = performance.now() + FRAME_BUDGET_MS;
    let rendered = 0;
    let last;
    while (this.queue.length && rendered < this.linesPerFrame && performance.now() < deadline) {
      const slice = this.queue.splice(0, SLICE);
      this.render(slice);
      rendered += slice.length;
      last = slice[slice.length - 1];
    }
    if (last && last.seq !== undefined) this.element.dataset.renderedSeq = last.seq;  // progress, readable by tests
    if (this.following && this.queue.length === 0) this.element.scrollTop = this.element.scrollHeight;
    this.lastFrameAt = this.queue.length ? now : null;
    this.schedule();
  }

  // Frames that follow each other back to back are as far apart as the previous one's work took.
  adaptLinesPerFrame(now) {
    if (this.lastFrameAt === null) return;
    if (now - this.lastFrameAt > FRAME_TARGET_MS) {
      this.linesPerFrame = Math.max(MIN_LINES_PER_FRAME, Math.floor(this.linesPerFrame / 2));
    } else {
      this.linesPerFrame = Math.min(MAX_LINES_PER_FRAME, this.linesPerFrame + SLICE);
    }
  }

  // One HTML string per chunk and one insertion: far cheaper than a node per line.
  render(lines) {
    let html = "";
    for (const line of lines) {
      if (!this.chunk || this.chunkLines >= LINES_PER_CHUNK) {
        this.flush(html);
        html = "";
        this.chunk = document.createElement("div");
        this.chunk.className = "chunk";
        this.chunkLines = 0;
        this.element.appendChild(this.chunk);
      }
      html += this.lineHtml(line);
      this.chunkLines += 1;
    }
    this.flush(html);
    // The height a chunk off screen stands in with, until it has been laid out once.
    this.chunk.style.containIntrinsicSize = `auto ${this.chunkLines * LINE_HEIGHT_PX}px`;
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
