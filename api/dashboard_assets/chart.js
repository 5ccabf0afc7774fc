// The views/visitors chart (uPlot), its keyboard cursor, its readout and its data table.
import { bucketLabel } from "./time.js";

const VIEWS_COLOUR = "#1d4f91";   // 8.4:1 on white
const VISITORS_COLOUR = "#9a3c00"; // 6.5:1 on white
const numbers = new Intl.NumberFormat();

export function formatCount(value) {
  return value === null || value === undefined ? "–" : numbers.format(value);
}

// A bucket of the report: {start: ms, views, visitors, incomplete}.
export class Chart {
  constructor(container, readout, tableBody) {
    this.container = container;
    this.readout = readout;
    this.tableBody = tableBody;
    this.plot = null;
    this.shape = "";
    this.buckets = [];
    this.end = 0;
    container.addEventListener("keydown", (event) => this.onKey(event));
    container.addEventListener("focus", () => this.onFocus());
    new ResizeObserver(() => this.plot && this.plot.setSize(this.size())).observe(container);
  }

  // buckets in time order; end = the instant the last bucket ends (the window's `to`).
  show(buckets, end, tz, granularity, title) {
    this.buckets = buckets;
    this.end = end;
    this.tz = tz;
    this.granularity = granularity;
    this.container.setAttribute("aria-label", `Chart of views and visitors per ${granularity} for ${title}`);
    const data = [buckets.map((b) => b.start / 1000), buckets.map((b) => b.views), buckets.map((b) => b.visitors)];
    const shape = `${tz}|${granularity}`;
    if (this.plot && this.shape === shape) {
      this.plot.setData(data);
    } else {
      if (this.plot) this.plot.destroy();
      this.plot = new window.uPlot(this.options(tz, granularity), data, this.container);
      this.shape = shape;
    }
    this.fillTable();
    this.describe(this.plot.cursor.idx);
  }

  size() {
    const width = Math.max(this.container.clientWidth, 200);
    return { width, height: width < 600 ? 220 : 300 };
  }

  options(tz, granularity) {
    const label = (value) => formatCount(value);
    return {
      ...this.size(),
      tzDate: (seconds) => window.uPlot.tzDate(new Date(seconds * 1000), tz),
      scales: { x: { time: true, range: (u, min) => [min, this.end / 1000] } },
      series: [
        { label: granularity === "hour" ? "Hour" : "Day", value: (u, seconds) => (seconds == null ? "–" : bucketLabel(seconds * 1000, tz, granularity)) },
        { label: "Views", stroke: VIEWS_COLOUR, width: 2, fill: "rgba(29, 79, 145, 0.08)", points: { size: 6 }, value: (u, v) => label(v) },
        { label: "Visitors", stroke: VISITORS_COLOUR, width: 2, dash: [6, 4], points: { size: 6 }, value: (u, v) => label(v) },
      ],
      axes: [
        { stroke: "#333" },
        { stroke: "#333", size: 56, values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? numbers.format(t) : "")) },
      ],
      legend: { live: true },
      hooks: {
        draw: [(u) => this.shadeIncomplete(u)],
        setCursor: [(u) => this.describe(u.cursor.idx)],
      },
    };
  }

  // The bucket that holds `now` is still counting: shade it and say so.
  shadeIncomplete(u) {
    const index = this.buckets.findIndex((b) => b.incomplete);
    if (index < 0) return;
    const left = u.valToPos(this.buckets[index].start / 1000, "x", true);
    const right = u.bbox.left + u.bbox.width;
    const { ctx } = u;
    const ratio = window.devicePixelRatio || 1;
    ctx.save();
    ctx.fillStyle = "rgba(0, 0, 0, 0.07)";
    ctx.fillRect(left, u.bbox.top, Math.max(right - left, 2 * ratio), u.bbox.height);
    ctx.fillStyle = "#444";
    ctx.font = `${12 * ratio}px system-ui, sans-serif`;
    ctx.textAlign = "right";
    ctx.fillText("so far", right - 4 * ratio, u.bbox.top + 14 * ratio);
    ctx.restore();
  }

  onFocus() {
    if (this.plot && this.plot.cursor.idx == null && this.buckets.length) this.moveTo(this.buckets.length - 1);
  }

  onKey(event) {
    if (!this.plot || !this.buckets.length) return;
    const last = this.buckets.length - 1;
    const current = this.plot.cursor.idx ?? last;
    const moves = { ArrowLeft: current - 1, ArrowRight: current + 1, Home: 0, End: last, PageUp: current - 10, PageDown: current + 10 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    this.moveTo(Math.min(last, Math.max(0, moves[event.key])));
  }

  moveTo(index) {
    const bucket = this.buckets[index];
    this.plot.setCursor({ left: this.plot.valToPos(bucket.start / 1000, "x"), top: this.plot.valToPos(bucket.views, "y") });
  }

  describe(index) {
    const bucket = index == null ? null : this.buckets[index];
    this.readout.textContent = bucket ? `${this.describeBucket(bucket)}: ${formatCount(bucket.views)} views, ${formatCount(bucket.visitors)} visitors` : "";
  }

  describeBucket(bucket) {
    const label = bucketLabel(bucket.start, this.tz, this.granularity);
    return bucket.incomplete ? `${label} (so far)` : label;
  }

  fillTable() {
    const rows = this.buckets.map((bucket) => {
      const row = document.createElement("tr");
      row.dataset.t = bucket.t;
      if (bucket.incomplete) row.className = "incomplete";
      const period = document.createElement("th");
      period.scope = "row";
      period.textContent = this.describeBucket(bucket);
      row.append(period, cell(bucket.views), cell(bucket.visitors));
      return row;
    });
    this.tableBody.replaceChildren(...rows);
  }
}

export function cell(value) {
  const td = document.createElement("td");
  td.className = "num";
  td.textContent = formatCount(value);
  return td;
}
