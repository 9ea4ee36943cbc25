// Appends log lines to a console element without freezing the page: lines are queued and
// rendered a frame at a time (at most LINES_PER_FRAME per frame, in one DocumentFragment),
// so a 100,000-line build log streams in over a second or two instead of one huge append.
import { AnsiUp } from "../vendor/ansi_up/ansi_up.js";

const LINES_PER_FRAME = 1500;

export class LogViewer {
  constructor(element, { numbered = true } = {}) {
    this.element = element;
    this.numbered = numbered;
    this.lastSeq = 0;
    this.queue = [];
    this.scheduled = false;
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

  renderFrame() {
    this.scheduled = false;
    const stickToBottom = this.element.scrollHeight - this.element.scrollTop - this.element.clientHeight < 40;
    const fragment = document.createDocumentFragment();
    for (const line of this.queue.splice(0, LINES_PER_FRAME)) fragment.appendChild(this.lineElement(line));
    this.element.appendChild(fragment);
    if (stickToBottom) this.element.scrollTop = this.element.scrollHeight;
    this.schedule();
  }

  lineElement(line) {
    const row = document.createElement("div");
    row.className = "line";
    if (line.seq !== undefined) row.dataset.seq = line.seq;
    if (this.numbered && line.seq !== undefined) {
      const seq = document.createElement("span");
      seq.className = "seq";
      seq.textContent = line.seq;
      row.appendChild(seq);
    }
    const text = document.createElement("span");
    if (line.text.startsWith("==> ")) text.className = "phase-line";
    text.innerHTML = this.ansi.ansi_to_html(line.text);  // ansi_up escapes HTML
    row.appendChild(text);
    return row;
  }
}
