// The sequence diagram of the conversation between the two institutions, grown one row per feed
// event (never redrawn whole). Used by the console page; the events are FeedEvents as protobuf
// JSON (proto/interbank/sim/v1/feed.proto), each with `node` set.
"use strict";

const LIFELINES = ["customer", "staff", "platform", "bank", "teller", "phone", "operator"];
const LIFELINE_NAMES = {
  customer: "customer (website)",
  staff: "settlement staff",
  platform: "platform",
  bank: "bank",
  teller: "branch teller",
  phone: "customer's phone",
  operator: "simulator operator",
};

// The simulator's own reads (the page reading clocks, rules, the phone and both institutions'
// records): drawn, but hidden unless asked for, so that the conversation is the institutions'.
const READS = new Set(["GetClock", "ListFaults", "ListRecords", "ListSms", "ListAuditLines"]);

function centre(name) {
  const i = LIFELINES.indexOf(name);
  return ((i < 0 ? LIFELINES.length - 1 : i) + 0.5) * (100 / LIFELINES.length);
}

class Diagram {
  // `root`: the element to draw in; `onPick(call)`: a call's row was clicked.
  constructor(root, onPick) {
    this.root = root;
    this.onPick = onPick;
    this.calls = new Map(); // "node:call_id" -> { call, answer, rows: [] }
    this.filter = "";
    this.showReads = false;
    this.rows = [];
    this.seen = new Set();
    root.classList.add("diagram");
    const head = document.createElement("div");
    head.className = "lifelines";
    for (const l of LIFELINES) {
      const h = document.createElement("div");
      h.className = "lifeline-head";
      h.dataset.lifeline = l;
      h.textContent = LIFELINE_NAMES[l];
      head.appendChild(h);
    }
    root.appendChild(head);
    this.body = document.createElement("div");
    this.body.className = "rows";
    root.appendChild(this.body);
  }

  add(ev) {
    // The page may be sent an event twice (kept and live at the moment it opened).
    if (ev.seq !== undefined) {
      const id = `${ev.node}:${ev.seq}`;
      if (this.seen.has(id)) return null;
      this.seen.add(id);
    }
    if (ev.call) return this.addCall(ev);
    if (ev.answer) return this.addAnswer(ev);
    if (ev.fault) {
      const f = ev.fault;
      const order = f.order_no ? ` (${f.order_no})` : "";
      return this.note(ev, ev.node, `fault: ${f.side} ${f.method} ${f.action}${order}`, "fault",
        f.order_no ? [f.order_no] : []);
    }
    if (ev.sms) {
      const row = this.arrow(ev, "bank", "phone", `SMS to ${ev.sms.mobile_masked}` +
        (ev.sms.order_no ? ` for ${ev.sms.order_no}` : ""), "sms");
      row.dataset.keys = ev.sms.order_no || "";
      return row;
    }
    if (ev.lagged) return this.note(ev, ev.node, `${ev.lagged.missed} events lost (fell behind)`, "info", []);
    if (ev.console) return this.note(ev, ev.node || "operator", `console: ${ev.node || ""} ${ev.console}`, "info", []);
    return null;
  }

  addCall(ev) {
    const c = ev.call;
    const keys = [...(c.order_nos || []), ...(c.signup_ids || []), ...(c.batch_nos || []), c.trace_id || ""];
    const row = this.arrow(ev, c.caller, ev.node, c.method, "call");
    row.dataset.keys = keys.join(" ");
    if (c.caller === "operator" || c.caller === "phone") {
      if (READS.has(c.method)) row.dataset.read = "1";
    }
    const entry = { node: ev.node, call: c, answer: null, rows: [row], keys };
    this.calls.set(`${ev.node}:${c.call_id}`, entry);
    row.addEventListener("click", () => this.onPick(entry));
    this.applyFilter(row);
    return row;
  }

  addAnswer(ev) {
    const a = ev.answer;
    const entry = this.calls.get(`${ev.node}:${a.call_id}`);
    const caller = entry ? entry.call.caller : "operator";
    const code = a.code || "OK";
    const label = code === "OK" ? "OK" : `${code} ${a.reason || ""}`.trim();
    const row = this.arrow(ev, ev.node, caller, label, code === "OK" ? "answer" : "answer refused");
    row.dataset.code = code;
    if (entry && entry.rows[0].dataset.read) row.dataset.read = "1";
    if (entry) {
      entry.answer = a;
      entry.rows.push(row);
      const more = [...(a.order_nos || []), ...(a.signup_ids || []), ...(a.batch_nos || [])];
      entry.keys.push(...more);
      for (const r of entry.rows) r.dataset.keys = entry.keys.join(" ");
      row.addEventListener("click", () => this.onPick(entry));
    }
    this.applyFilter(row);
    return row;
  }

  // A row, placed by the event's time among the rows already drawn.
  place(ev, row) {
    const at = Date.parse(ev.at || "") || Date.now();
    row.dataset.at = String(at);
    let i = this.rows.length;
    while (i > 0 && Number(this.rows[i - 1].dataset.at) > at) i--;
    if (i === this.rows.length) this.body.appendChild(row);
    else this.body.insertBefore(row, this.rows[i]);
    this.rows.splice(i, 0, row);
  }

  arrow(ev, from, to, label, kind) {
    const row = document.createElement("div");
    row.className = `row ${kind}`;
    row.dataset.from = from;
    row.dataset.to = to;
    const a = centre(from), b = centre(to);
    const line = document.createElement("div");
    line.className = `arrow ${b >= a ? "right" : "left"}`;
    line.style.left = `${Math.min(a, b)}%`;
    line.style.width = `${Math.max(Math.abs(b - a), 1)}%`;
    const text = document.createElement("span");
    text.className = "label";
    text.textContent = label;
    line.appendChild(text);
    row.appendChild(line);
    this.place(ev, row);
    return row;
  }

  note(ev, on, text, kind, keys) {
    const row = document.createElement("div");
    row.className = `row note ${kind}`;
    row.dataset.keys = keys.join(" ");
    row.dataset.on = on;
    const box = document.createElement("div");
    box.className = "note-box";
    box.style.left = `${Math.max(centre(on) - 12, 0)}%`;
    box.textContent = text;
    row.appendChild(box);
    this.place(ev, row);
    this.applyFilter(row);
    return row;
  }

  setFilter(text) {
    this.filter = text.trim();
    for (const r of this.rows) this.applyFilter(r);
  }

  setShowReads(on) {
    this.showReads = on;
    for (const r of this.rows) this.applyFilter(r);
  }

  // Whether call `callId` of `node` is one of the simulator's reads.
  isRead(node, callId) {
    const entry = this.calls.get(`${node}:${callId}`);
    return Boolean(entry && entry.rows[0].dataset.read);
  }

  applyFilter(row) {
    const f = this.filter;
    row.hidden = (row.dataset.read && !this.showReads) ||
      (f !== "" && !(row.dataset.keys || "").split(" ").some((k) => k && k.includes(f)));
  }
}

// A call as the detail panes show it: node, call, caller, trace id, request and answer.
function describeCall(entry) {
  const parse = (text) => {
    if (!text) return null;
    try { return JSON.parse(text); } catch (_) { return text; }
  };
  return {
    node: entry.node,
    call: `${entry.call.service}/${entry.call.method}`,
    caller: entry.call.caller,
    trace_id: entry.call.trace_id,
    request: parse(entry.call.request_json),
    answer: entry.answer ? {
      code: entry.answer.code || "OK",
      reason: entry.answer.reason,
      institution: entry.answer.domain,
      message: entry.answer.message,
      body: parse(entry.answer.answer_json),
      micros: entry.answer.micros,
    } : "(not answered yet)",
  };
}

if (typeof module !== "undefined") module.exports = { Diagram, LIFELINES, READS, describeCall };
