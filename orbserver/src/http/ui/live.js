// orb live view: station health, scrolling traces and a 24-hour helicorder, drawn on
// plain canvases from this server's public HTTP resources (docs/HTTP.md). No library
// and no build step: the file is served as written, from the orbserver binary.
//
// Structure: a packet *source* (PacketPoller: polls /api/v1/packets with an `after`
// cursor) calls `sink.packet(p)` / `sink.gap(g)` / `sink.status(text)`; anything else
// that can call those (a WebSocket DataLink reader, later) can replace it. The Network
// keeps per-station and per-channel state; the drawing loop reads it on every
// animation frame. Page state for tests and scripts is on <body>: data-packets,
// data-stations, data-fps, data-drawn (samples drawn in the last frame), data-draw-ms (milliseconds
// of script a trace frame takes, smoothed), data-heli-bins.
"use strict";

const WINDOW_S = 60;          // seconds of trace kept and drawn, and the RMS window
const POLL_MS = 1000;         // packet poll period
const SOURCES_MS = 5000;      // station list refresh period
const HELI_MS = 60000;        // helicorder refresh period
const HELI_ROWS = 24;         // one row per hour
const HELI_BINS_PER_ROW = 600; // 6 s bins
const POLL_LIMIT = 5000;      // packets per poll at most (the server caps at 100000)
const LATE_S = 10;            // latency or age above this: late
const DEAD_S = 60;            // age above this (or never heard): dead
const DEFAULT_SELECTED = 4;   // stations whose traces show at first

// Units per segtype (docs/FORMATS.md "Channels, units and segtypes"): value = counts * calib.
const UNITS = { A: "nm/s²", D: "nm", V: "nm/s", P: "hPa", I: "Pa", K: "kPa", c: "counts", t: "°C" };

/** Epoch seconds of an ISO 8601 time as the server writes it (microseconds, `Z`). */
function epoch(s) {
  if (s == null) return NaN;
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(s);
  if (!m) return Number(s);
  return Date.parse(m[1] + "Z") / 1000 + (m[2] ? Number(m[2]) : 0);
}

/** The station key (NET_STA) of a srcname: `XX_STA01/MGENC/M40`, `XX_STA01_BHZ/SEED`. */
function stationOf(srcname) {
  const parts = srcname.split("/")[0].split("_");
  return parts.length >= 2 ? parts[0] + "_" + parts[1] : parts[0];
}

/** A number in three significant digits, plain where that reads well. */
function fmt(x) {
  if (!isFinite(x)) return "–";
  const a = Math.abs(x);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return x.toExponential(2);
  return a >= 100 ? x.toFixed(0) : x.toPrecision(3);
}

/** Seconds, to a tenth. */
function secs(x) { return isFinite(x) ? x.toFixed(1) : "–"; }

/** One channel: a ring of the last WINDOW_S seconds of samples, in physical units. */
class Channel {
  constructor(name, samprate, calib, segtype) {
    this.name = name;
    this.samprate = samprate > 0 ? samprate : 1;
    this.calib = calib || 1;
    this.unit = UNITS[segtype] || "counts";
    if (!UNITS[segtype]) this.calib = 1;
    this.cap = Math.max(16, Math.ceil(this.samprate * WINDOW_S * 1.5));
    this.t = new Float64Array(this.cap);
    this.v = new Float32Array(this.cap);
    this.head = 0; // next write position
    this.n = 0;    // samples held
    this.expected = NaN; // time the next packet should start
    this.gaps = [];      // arrival times of gaps seen (epoch s)
  }
  push(t0, samples) {
    const dt = 1 / this.samprate;
    if (isFinite(this.expected) && Math.abs(t0 - this.expected) > 0.5 * dt && t0 > this.expected) {
      this.gaps.push(Date.now() / 1000);
    }
    const end = t0 + samples.length * dt;
    if (!(end <= this.expected)) this.expected = end;
    for (let i = 0; i < samples.length; i++) {
      this.t[this.head] = t0 + i * dt;
      this.v[this.head] = samples[i] * this.calib;
      this.head = (this.head + 1) % this.cap;
      if (this.n < this.cap) this.n++;
    }
  }
  /** Calls f(t, v) for the held samples from oldest to newest. */
  each(f) {
    let i = (this.head - this.n + this.cap) % this.cap;
    for (let k = 0; k < this.n; k++) {
      f(this.t[i], this.v[i]);
      i = i + 1 === this.cap ? 0 : i + 1;
    }
  }
  rms(since) {
    let n = 0, s = 0, s2 = 0;
    this.each((t, v) => { if (t >= since) { n++; s += v; s2 += v * v; } });
    if (n === 0) return NaN;
    const mean = s / n;
    return Math.sqrt(Math.max(0, s2 / n - mean * mean));
  }
  gapsSince(since) {
    while (this.gaps.length && this.gaps[0] < since) this.gaps.shift();
    return this.gaps.length;
  }
}

/** Stations, their channels and health, fed by a packet source. */
class Network {
  constructor() {
    this.stations = new Map(); // key -> {key, srcnames:Set, channels:Map, lastArrival, latency, pktTimes:[]}
    this.packets = 0;
    this.lostPackets = 0;
    this.lag = NaN;            // smoothed seconds from data end to arrival, for scrolling
  }
  station(key) {
    let s = this.stations.get(key);
    if (!s) {
      s = { key, srcnames: new Set(), channels: new Map(), lastArrival: NaN, latency: NaN, pktTimes: [] };
      this.stations.set(key, s);
    }
    return s;
  }
  // The sink interface a source calls.
  packet(p) {
    this.packets++;
    const now = Date.now() / 1000;
    const st = this.station(stationOf(p.srcname));
    st.srcnames.add(p.srcname);
    st.lastArrival = now;
    st.pktTimes.push(epoch(p.time));
    let end = -Infinity;
    for (const c of p.channels || []) {
      let ch = st.channels.get(c.chan);
      if (!ch) {
        ch = new Channel(c.chan, c.samprate, c.calib, c.segtype);
        st.channels.set(c.chan, ch);
        heli.offer(st.key, c.chan, p.srcname);
      }
      const t0 = epoch(c.start_time);
      ch.push(t0, c.samples);
      end = Math.max(end, t0 + c.nsamp / ch.samprate);
    }
    if (isFinite(end)) {
      st.latency = now - end;
      // Only live packets steer the scrolling: a backfill's old data would drag it.
      if (st.latency < 3 * WINDOW_S) {
        this.lag = isFinite(this.lag) ? 0.9 * this.lag + 0.1 * st.latency : st.latency;
      }
    }
  }
  gap(g) {
    this.lostPackets += Math.max(0, g.last - g.first + 1);
  }
}

/**
 * Polls /api/v1/packets: first the last WINDOW_S seconds, then everything after the
 * newest pktid seen, once a second (at once again while a poll comes back full).
 */
class PacketPoller {
  constructor(sink) { this.sink = sink; this.cursor = null; this.stopped = false; }
  start() { this.loop(); }
  stop() { this.stopped = true; }
  async loop() {
    while (!this.stopped) {
      let full = false;
      try {
        const q = this.cursor === null
          ? `start=-${WINDOW_S + 5}s&limit=${POLL_LIMIT * 4}`
          : `after=${this.cursor}&limit=${POLL_LIMIT}`;
        const r = await fetch(`/api/v1/packets?${q}`, { cache: "no-store" });
        if (!r.ok) throw new Error(`${r.status} ${(await r.text()).trim()}`);
        const text = await r.text();
        let n = 0;
        for (const line of text.split("\n")) {
          if (!line) continue;
          const o = JSON.parse(line);
          if (o.gap) { this.sink.gap(o.gap); continue; }
          n++;
          if (this.cursor === null || o.pktid > this.cursor) this.cursor = o.pktid;
          this.sink.packet(o);
        }
        if (this.cursor === null) this.cursor = 0;
        full = n >= POLL_LIMIT;
        this.sink.status(`polling /api/v1/packets: ${n} new`);
      } catch (e) {
        this.sink.status(`poll failed: ${e.message}`);
      }
      if (!full) await new Promise(res => setTimeout(res, POLL_MS));
    }
  }
}

const net = new Network();
const selected = new Set();
const body = document.body;
const rows = new Map(); // station key -> <tr>

// --- station list ---------------------------------------------------------------

async function refreshSources() {
  try {
    const r = await fetch("/api/v1/sources", { cache: "no-store" });
    if (r.ok) {
      const doc = await r.json();
      for (const s of doc.sources) net.station(stationOf(s.srcname)).srcnames.add(s.srcname);
    }
  } catch (e) { /* the packet poller reports connection trouble */ }
}

function healthOf(st, now) {
  const age = now - st.lastArrival;
  if (!isFinite(age) || age > DEAD_S) return "dead";
  if (age > LATE_S || st.latency > LATE_S) return "late";
  return "ok";
}

function row(st) {
  let tr = rows.get(st.key);
  if (tr) return tr;
  tr = document.createElement("tr");
  tr.dataset.station = st.key;
  tr.innerHTML = `<td class="name"></td><td class="age"></td><td class="lat"></td>` +
    `<td class="gaps"></td><td class="ppm"></td><td class="rms"></td>`;
  tr.cells[0].textContent = st.key;
  tr.addEventListener("click", () => {
    if (selected.has(st.key)) selected.delete(st.key); else selected.add(st.key);
    tr.classList.toggle("selected", selected.has(st.key));
  });
  if (selected.size < DEFAULT_SELECTED) { selected.add(st.key); tr.classList.add("selected"); }
  // Keep the rows in station order.
  const tbody = document.getElementById("stations");
  const after = [...rows.keys()].filter(k => k > st.key).sort()[0];
  tbody.insertBefore(tr, after ? rows.get(after) : null);
  rows.set(st.key, tr);
  return tr;
}

function updateTable() {
  const now = Date.now() / 1000;
  const keys = [...net.stations.keys()].sort();
  for (const key of keys) {
    const st = net.stations.get(key);
    const tr = row(st);
    while (st.pktTimes.length && st.pktTimes[0] < now - WINDOW_S) st.pktTimes.shift();
    // One outage shows once, not once per channel: the most any channel had.
    let gaps = 0;
    const byUnit = new Map();
    for (const ch of st.channels.values()) {
      gaps = Math.max(gaps, ch.gapsSince(now - 3600));
      if (!byUnit.has(ch.unit)) byUnit.set(ch.unit, []);
      // Seismic components by their last letter (Z N E); other channels by name.
      const name = /^[BHSE][HLN][ZNE12]$/.test(ch.name) ? ch.name[2] : ch.name;
      byUnit.get(ch.unit).push(`${name} ${fmt(ch.rms(now - WINDOW_S))}`);
    }
    const rms = [...byUnit].map(([unit, parts]) => `${parts.join(" ")} ${unit}`);
    tr.dataset.health = healthOf(st, now);
    tr.cells[1].textContent = secs(now - st.lastArrival);
    tr.cells[2].textContent = secs(st.latency);
    tr.cells[3].textContent = String(gaps);
    tr.cells[3].classList.toggle("some", gaps > 0);
    tr.cells[4].textContent = String(st.pktTimes.length);
    tr.cells[5].textContent = rms.join(" · ");
  }
  body.dataset.stations = String(rows.size);
  body.dataset.packets = String(net.packets);
  document.getElementById("status").textContent = statusText +
    (net.lostPackets ? ` · ${net.lostPackets} packets overwritten before they were read` : "");
}

let statusText = "connecting…";
net.status = (t) => { statusText = `${net.packets} packets · ${t}`; };

// --- traces ---------------------------------------------------------------------

const COLORS = ["#1f5fa8", "#b5462a", "#2e8540", "#7a3e9d", "#8a6d00"];
const traces = document.getElementById("traces");
const tctx = traces.getContext("2d");
let frames = [];

function fitCanvas(c, height) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(200, Math.floor(c.clientWidth * dpr));
  const h = Math.floor(height * dpr);
  if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
  return dpr;
}

function drawTraces() {
  const strips = [];
  for (const key of [...selected].sort()) {
    const st = net.stations.get(key);
    if (!st) continue;
    for (const ch of st.channels.values()) strips.push([key, ch]);
  }
  // Strips shrink as more are shown, so the canvas (whose pixels every frame pays for)
  // stays about one screen high.
  const stripH = Math.max(14, Math.min(46, Math.floor(720 / Math.max(1, strips.length))));
  const dpr = fitCanvas(traces, Math.max(120, strips.length * stripH + 18));
  const W = traces.width, H = traces.height;
  tctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const w = W / dpr;
  tctx.clearRect(0, 0, w, H / dpr);
  const right = Date.now() / 1000 - (isFinite(net.lag) ? Math.max(0, net.lag) : 0);
  const left = right - WINDOW_S;
  const label = 150;
  const pw = w - label - 8;
  // Time grid every 10 s.
  tctx.strokeStyle = "#e6ebf0"; tctx.fillStyle = "#6b7580"; tctx.font = "11px system-ui";
  tctx.beginPath();
  for (let t = Math.ceil(left / 10) * 10; t <= right; t += 10) {
    const x = label + (t - left) / WINDOW_S * pw;
    tctx.moveTo(x, 0); tctx.lineTo(x, strips.length * stripH);
    tctx.fillText(new Date(t * 1000).toISOString().slice(11, 19), x - 22, strips.length * stripH + 13);
  }
  tctx.stroke();
  let drawn = 0;
  strips.forEach(([key, ch], i) => {
    const y0 = i * stripH;
    // Per-column min and max: one vertical segment per pixel column, however many
    // samples fall in it, so the cost per frame is bounded by the canvas width.
    const cols = Math.ceil(pw);
    const lo = new Float32Array(cols).fill(Infinity), hi = new Float32Array(cols).fill(-Infinity);
    const brk = new Uint8Array(cols); // a data gap ends at this column: do not join it
    const gapS = 1.5 / ch.samprate;
    let vmin = Infinity, vmax = -Infinity, n = 0, prev = -Infinity;
    // A plain loop over the ring's arrays (no callback): this runs for every sample
    // shown, every frame.
    const T = ch.t, V = ch.v, cap = ch.cap, k = pw / WINDOW_S;
    let j = (ch.head - ch.n + cap) % cap;
    for (let m = 0; m < ch.n; m++, j = j + 1 === cap ? 0 : j + 1) {
      const t = T[j];
      if (t < left || t > right) { prev = t; continue; }
      const v = V[j];
      let c = ((t - left) * k) | 0;
      if (c >= cols) c = cols - 1;
      if (t - prev > gapS) brk[c] = 1;
      prev = t;
      if (v < lo[c]) lo[c] = v;
      if (v > hi[c]) hi[c] = v;
      if (v < vmin) vmin = v;
      if (v > vmax) vmax = v;
      n++;
    }
    drawn += n;
    const half = Math.max((vmax - vmin) / 2, 1e-9);
    tctx.fillStyle = "#1d232a";
    if (stripH >= 32) {
      tctx.fillText(`${key} ${ch.name}`, 4, y0 + 16);
      tctx.fillStyle = "#6b7580";
      tctx.fillText(`±${fmt(half)} ${ch.unit}`, 4, y0 + 30);
    } else {
      tctx.fillText(`${key} ${ch.name} ±${fmt(half)} ${ch.unit}`, 4, y0 + stripH / 2 + 4);
    }
    if (n === 0) return;
    const mid = (vmax + vmin) / 2, scale = (stripH / 2 - 3) / half, yc = y0 + stripH / 2;
    tctx.strokeStyle = COLORS[i % COLORS.length];
    tctx.lineWidth = 1;
    tctx.beginPath();
    let started = false;
    for (let c = 0; c < cols; c++) {
      if (lo[c] === Infinity) continue;
      if (brk[c]) started = false;
      const x = label + c + 0.5;
      const ya = yc - (hi[c] - mid) * scale, yb = yc - (lo[c] - mid) * scale;
      if (!started) { tctx.moveTo(x, ya); started = true; } else tctx.lineTo(x, ya);
      tctx.lineTo(x, yb);
    }
    tctx.stroke();
  });
  body.dataset.drawn = String(drawn);
}

let drawMs = 0;
function frame(ts) {
  const t0 = performance.now();
  drawTraces();
  drawMs = 0.9 * drawMs + 0.1 * (performance.now() - t0);
  body.dataset.drawMs = drawMs.toFixed(1);
  frames.push(ts);
  while (frames.length && frames[0] < ts - 1000) frames.shift();
  body.dataset.fps = String(frames.length);
  document.getElementById("fps").textContent = `${frames.length} fps`;
  requestAnimationFrame(frame);
}

// --- helicorder -----------------------------------------------------------------

const heli = {
  canvas: document.getElementById("heli"),
  select: document.getElementById("heli-chan"),
  choices: new Map(), // "STA CHAN" -> {srcname, chan}
  doc: null,
  offer(key, chan, srcname) {
    const label = `${key} ${chan}`;
    if (this.choices.has(label)) return;
    this.choices.set(label, { srcname, chan });
    const o = document.createElement("option");
    o.value = label; o.textContent = label;
    const opts = [...this.select.options];
    const after = opts.find(x => x.value > label);
    this.select.insertBefore(o, after || null);
    if (this.choices.size === 1) { this.select.value = label; this.refresh(); }
  },
  async refresh() {
    const pick = this.choices.get(this.select.value);
    if (!pick) return;
    const hour = 3600;
    const end = Math.ceil(Date.now() / 1000 / hour) * hour;
    const start = end - HELI_ROWS * hour;
    const re = pick.srcname.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const q = `select=${encodeURIComponent(re)}&chan=${encodeURIComponent(pick.chan)}` +
      `&start=${start}.0&end=${end}.0&bins=${HELI_ROWS * HELI_BINS_PER_ROW}`;
    try {
      const r = await fetch(`/api/v1/envelope?${q}`, { cache: "no-store" });
      if (!r.ok) throw new Error(`${r.status} ${(await r.text()).trim()}`);
      this.doc = await r.json();
      this.doc.t0 = start;
      this.draw();
    } catch (e) {
      document.getElementById("heli-note").textContent = `envelope failed: ${e.message}`;
    }
  },
  draw() {
    const d = this.doc;
    if (!d) return;
    const c = this.canvas, ctx = c.getContext("2d");
    const dpr = fitCanvas(c, 480);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const w = c.width / dpr, h = c.height / dpr;
    ctx.clearRect(0, 0, w, h);
    const label = 46, pw = w - label - 6, rowH = (h - 6) / HELI_ROWS;
    const calib = d.calib && UNITS[d.segtype] ? d.calib : 1;
    const unit = UNITS[d.segtype] || "counts";
    // One scale for the whole day: four times the median bin range, so quiet hours
    // show their noise and earthquakes clip at the neighbouring rows.
    const ranges = [];
    let bins = 0;
    for (let i = 0; i < d.bins; i++) {
      if (d.min[i] === null) continue;
      bins++;
      ranges.push(d.max[i] - d.min[i]);
    }
    ranges.sort((a, b) => a - b);
    const typical = Math.max(ranges[Math.floor(ranges.length / 2)] || 1, 1);
    const scale = rowH / (4 * typical);
    ctx.font = "11px system-ui";
    for (let r = 0; r < HELI_ROWS; r++) {
      const y = 3 + r * rowH + rowH / 2;
      ctx.fillStyle = "#6b7580";
      ctx.fillText(new Date((d.t0 + r * 3600) * 1000).toISOString().slice(11, 16), 2, y + 4);
      // The row's own mean is its centre line.
      let s = 0, n = 0;
      for (let k = 0; k < HELI_BINS_PER_ROW; k++) {
        const i = r * HELI_BINS_PER_ROW + k;
        if (d.min[i] !== null) { s += (d.min[i] + d.max[i]) / 2; n++; }
      }
      if (!n) continue;
      const mid = s / n;
      ctx.strokeStyle = COLORS[r % 4];
      ctx.beginPath();
      for (let k = 0; k < HELI_BINS_PER_ROW; k++) {
        const i = r * HELI_BINS_PER_ROW + k;
        if (d.min[i] === null) continue;
        const x = label + (k + 0.5) * pw / HELI_BINS_PER_ROW;
        const clip = (v) => Math.max(-rowH, Math.min(rowH, v));
        ctx.moveTo(x, y - clip((d.max[i] - mid) * scale));
        ctx.lineTo(x, y - clip((d.min[i] - mid) * scale) + 0.5);
      }
      ctx.stroke();
    }
    body.dataset.heliBins = String(bins);
    document.getElementById("heli-note").textContent =
      `${d.srcname || "no data"} · ${d.packets} packets · ${d.step.toFixed(0)} s bins · ` +
      `row height ${fmt(4 * typical * calib)} ${unit}${d.truncated ? " · truncated at the packet limit" : ""}`;
  },
};
heli.select.addEventListener("change", () => heli.refresh());

// --- start ----------------------------------------------------------------------

const sink = {
  packet: (p) => net.packet(p),
  gap: (g) => net.gap(g),
  status: (t) => net.status(t),
};
refreshSources();
setInterval(refreshSources, SOURCES_MS);
new PacketPoller(sink).start();
setInterval(updateTable, 500);
setInterval(() => heli.refresh(), HELI_MS);
window.addEventListener("resize", () => heli.draw());
requestAnimationFrame(frame);
