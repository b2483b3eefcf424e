// The console page: the conversation drawn as it happens (diagram.js), the phone, the clocks,
// fault rules and every flow of the README's walkthroughs as forms. Every action is one call of
// a node's own gRPC service through POST /api/call: nothing here bypasses a node's checks.
"use strict";

const state = { session: null, email: null };

// Each action: who does it, what it is called, which node and RPC, its fields
// ([name, label, default]), fixed request fields, and what to do with the answer.
const ACTIONS = [
  { who: "teller", title: "open a card", node: "bank", rpc: "BranchService.OpenCard",
    fields: [["holder_name", "holder name", "张三"], ["id_number", "resident ID number", ""],
      ["card_password", "card password", "123456"], ["opening_deposit", "opening deposit", "1000.00"]],
    fixed: { account_kind: "ACCOUNT_KIND_CARD_ONLY", id_type: "ID_TYPE_RESIDENT_ID" } },
  { who: "teller", title: "deposit", node: "bank", rpc: "BranchService.Deposit",
    fields: [["card_number", "card number", ""], ["amount", "amount", "100.00"]] },
  { who: "teller", title: "read a card", node: "bank", rpc: "BranchService.GetCard",
    fields: [["card_number", "card number", ""]] },
  { who: "teller", title: "sign up the card-link", node: "bank", rpc: "BranchService.SignUp",
    fields: [["platform_account", "platform account (e-mail)", "zhangsan@example.com"], ["real_name", "real name", "张三"],
      ["id_number", "resident ID number", "110105199003071239"], ["mobile", "mobile", "13800138000"],
      ["card_number", "card number", "6221880000000000019"], ["card_password", "card password", "123456"],
      ["daily_limit", "daily limit", "2000.00"]],
    fixed: { id_type: "ID_TYPE_RESIDENT_ID" }, auto: { request_id: () => `console-${Date.now()}-${Math.floor(Math.random() * 1e6)}` } },
  { who: "teller", title: "query the sign-up", node: "bank", rpc: "BranchService.GetSignUp",
    fields: [["card_number", "card number", "6221880000000000019"]] },
  { who: "teller", title: "change the daily limit", node: "bank", rpc: "BranchService.ChangeLimit",
    fields: [["card_number", "card number", "6221880000000000019"], ["daily_limit", "daily limit", "3000.00"]] },
  { who: "teller", title: "change the mobile", node: "bank", rpc: "BranchService.ChangeMobile",
    fields: [["card_number", "card number", "6221880000000000019"], ["mobile", "mobile", "13900139000"]] },
  { who: "teller", title: "cancel the sign-up", node: "bank", rpc: "BranchService.CancelSignUp",
    fields: [["card_number", "card number", "6221880000000000019"]] },
  { who: "customer", title: "register", node: "platform", rpc: "AccountService.Register",
    fields: [["email", "e-mail", ""], ["real_name", "real name", ""], ["login_password", "login password", ""],
      ["pay_password", "pay password (6 digits)", ""]] },
  { who: "customer", title: "log in", node: "platform", rpc: "AccountService.Login",
    fields: [["email", "e-mail", "zhangsan@example.com"], ["login_password", "login password", "demo-login-1"]],
    then: (req, answer) => { state.session = answer.session_token; state.email = req.email; showSession(); } },
  { who: "customer", title: "activate the card-link", node: "platform", rpc: "AccountService.Activate",
    session: true, fields: [["card_number", "card number", "6221880000000000019"]] },
  { who: "customer", title: "my account", node: "platform", rpc: "AccountService.GetMyAccount", session: true, fields: [] },
  { who: "customer", title: "pay: start", node: "platform", rpc: "PayService.StartPayment", session: true,
    fields: [["order_no", "order number", ""], ["amount", "amount", "12.34"], ["pay_password", "pay password", "111111"],
      ["description", "description", ""]],
    then: () => readPhone() },
  { who: "customer", title: "pay: confirm with the code", node: "platform", rpc: "PayService.ConfirmPayment", session: true,
    fields: [["order_no", "order number", ""], ["otp_code", "one-time code (from the phone)", ""]] },
  { who: "customer", title: "balance", node: "platform", rpc: "PayService.GetBalance", session: true,
    fields: [["pay_password", "pay password", "111111"]] },
  { who: "customer", title: "remaining limit", node: "platform", rpc: "PayService.GetRemainingLimit", session: true, fields: [] },
  { who: "staff", title: "an order", node: "platform", rpc: "PlatformOpsService.GetOrderByNo",
    fields: [["order_no", "order number", ""]] },
  { who: "staff", title: "a refund batch", node: "platform", rpc: "RefundOpsService.CreateRefundBatch",
    fields: [["batch_no", "batch number", ""], ["refunds", "lines: order number and amount, one a line", ""]],
    shape: (req) => ({ ...req, refunds: lines(req.refunds) }) },
  { who: "staff", title: "fetch a batch's result", node: "platform", rpc: "RefundOpsService.FetchRefundResult",
    fields: [["batch_no", "batch number", ""]] },
  { who: "staff", title: "a batch's refunds", node: "platform", rpc: "RefundOpsService.ListRefunds",
    fields: [["batch_no", "batch number", ""]] },
  { who: "staff", title: "real-time reconciliation", node: "platform", rpc: "ReconOpsService.RunRealtimeRecon", fields: [] },
  { who: "staff", title: "T+1 reconciliation of a day", node: "platform", rpc: "ReconOpsService.RunDayRecon",
    fields: [["business_date", "business date (YYYY-MM-DD)", ""]] },
  { who: "staff", title: "error cases", node: "platform", rpc: "ReconOpsService.ListCases", fields: [] },
  { who: "staff", title: "close a case", node: "platform", rpc: "ReconOpsService.CloseCase",
    fields: [["case_id", "case id", ""], ["note", "note", "checked with the bank"]] },
  { who: "staff", title: "write an order by hand (a test break)", node: "platform", rpc: "ReconOpsService.WriteManualOrder",
    fields: [["order_no", "order number", ""], ["email", "account", "zhangsan@example.com"], ["signup_id", "sign-up id", ""],
      ["amount", "amount", "4.00"], ["business_date", "business date", ""]] },
  { who: "operator", title: "run the bank's refund job", node: "bank", rpc: "BatchJobService.RunRefundJob", fields: [] },
];

function lines(text) {
  return String(text || "").split("\n").map((l) => l.trim()).filter(Boolean).map((l) => {
    const [order_no, amount] = l.split(/\s+/);
    return { order_no, amount };
  });
}

async function call(node, rpc, request) {
  const r = await fetch("/api/call", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ node, rpc, request }),
  });
  return r.json();
}

function showResult(out) {
  const box = document.getElementById("result");
  if (out.refused) {
    const r = out.refused;
    const who = r.domain ? r.domain.split(".")[0] : "";
    box.className = "refused";
    box.textContent = `refused: ${r.code} ${r.reason}${who ? ` (${who})` : ""}${r.field ? `, field ${r.field}` : ""}\n${r.message}`;
  } else if (out.error) {
    box.className = "refused";
    box.textContent = `not sent: ${out.error}`;
  } else {
    box.className = "ok";
    box.textContent = JSON.stringify(out.answer, null, 2);
  }
}

function showSession() {
  document.getElementById("session").textContent = state.session ? `logged in as ${state.email}` : "";
}

function fillActions() {
  const roles = [...new Set(ACTIONS.map((a) => a.who))];
  const role = document.getElementById("role");
  role.innerHTML = "";
  for (const r of roles) role.add(new Option(r, r));
  role.onchange = () => fillRole(role.value);
  fillRole(roles[0]);
}

function fillRole(who) {
  const sel = document.getElementById("action");
  sel.innerHTML = "";
  ACTIONS.forEach((a, i) => { if (a.who === who) sel.add(new Option(a.title, String(i))); });
  sel.onchange = () => fillForm(ACTIONS[Number(sel.value)]);
  fillForm(ACTIONS[Number(sel.value)]);
}

function fillForm(a) {
  const form = document.getElementById("form");
  form.innerHTML = "";
  for (const [name, label, value] of a.fields) {
    const l = document.createElement("label");
    l.textContent = label;
    const input = name === "refunds" ? document.createElement("textarea") : document.createElement("input");
    input.name = name;
    input.value = value;
    l.appendChild(input);
    form.appendChild(l);
  }
  const go = document.createElement("button");
  go.textContent = a.title;
  go.id = "go";
  form.appendChild(go);
  form.onsubmit = async (e) => {
    e.preventDefault();
    let req = { ...(a.fixed || {}) };
    for (const [name] of a.fields) req[name] = form.elements[name].value;
    for (const [name, f] of Object.entries(a.auto || {})) req[name] = f();
    if (a.session) req.session_token = state.session || "";
    if (a.shape) req = a.shape(req);
    const out = await call(a.node, a.rpc, req);
    showResult(out);
    if (out.answer && a.then) a.then(req, out.answer);
  };
}

async function readPhone() {
  const mobile = document.getElementById("mobile").value.trim();
  if (!mobile) return;
  const out = await call("bank", "SmsOutboxService.ListSms", { mobile, limit: 20 });
  const list = document.getElementById("sms");
  list.innerHTML = "";
  if (!out.answer) { showResult(out); return; }
  for (const m of out.answer.messages) {
    const li = document.createElement("li");
    li.dataset.order = m.order_no;
    const code = document.createElement("span");
    code.className = "otp";
    code.textContent = m.otp_code;
    li.append(code, ` ${m.order_no} · ${m.text}`);
    list.appendChild(li);
  }
}

async function readClocks() {
  for (const node of ["bank", "platform"]) {
    const out = await call(node, "SimulatorService.GetClock", {});
    const el = document.getElementById(`clock-${node}`);
    if (out.answer) {
      const c = out.answer.clock;
      const now = c.now.replace("T", " ").replace(/(\.\d+)?Z$/, "");
      el.textContent = `${node}: ${c.business_date} (now ${now} UTC${c.frozen ? ", frozen" : ""})`;
    } else {
      el.textContent = `${node}: unreachable`;
    }
  }
}

async function moveClocks(move) {
  // The platform first, as `ibsim clock` does: the bank's cutover then finds the platform there.
  for (const node of ["platform", "bank"]) {
    const out = await call(node, "SimulatorService.SetClock", move);
    if (!out.answer) { showResult(out); break; }
  }
  readClocks();
}

async function readFaults() {
  const list = document.getElementById("fault-list");
  list.innerHTML = "";
  for (const node of ["bank", "platform"]) {
    const out = await call(node, "SimulatorService.ListFaults", {});
    for (const r of (out.answer && out.answer.rules) || []) {
      const li = document.createElement("li");
      const action = Object.keys(r).find((k) => ["delay_ms", "fail", "drop_reply", "deliver_twice", "lose_write"].includes(k) && r[k]);
      li.textContent = `${node} #${r.id}: ${r.side.replace("FAULT_SIDE_", "").toLowerCase()} ${r.method} ${action}, fired ${r.fired}`;
      list.appendChild(li);
    }
  }
}

function wire() {
  document.getElementById("clock-freeze").onclick = () => moveClocks({ freeze: true });
  document.getElementById("clock-resume").onclick = () => moveClocks({ resume: true });
  document.getElementById("clock-advance").onclick = () => {
    const minutes = Number(document.getElementById("clock-minutes").value) || 1;
    moveClocks({ advance_ms: String(minutes * 60000) });
  };
  document.getElementById("clock-cutover").onclick = () => moveClocks({ advance_to_cutover: true });
  document.getElementById("reset").onclick = async () => {
    if (!window.confirm("Wipe both nodes?")) return;
    for (const node of ["platform", "bank"]) showResult(await call(node, "SimulatorService.Reset", { confirm: "RESET" }));
    readClocks();
    readFaults();
  };
  document.getElementById("phone-read").onclick = readPhone;
  document.getElementById("fault-form").onsubmit = async (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const rule = { side: f.side.value, method: f.method.value, first_n: Number(f.first_n.value) };
    const action = f.action.value;
    if (action === "delay_ms") rule.delay_ms = 6000;
    else if (action === "fail") rule.fail = { code: 14 };
    else rule[action] = true;
    showResult(await call(f.node.value, "SimulatorService.AddFault", { rule }));
    readFaults();
  };
  document.getElementById("faults-clear").onclick = async () => {
    for (const node of ["bank", "platform"]) await call(node, "SimulatorService.ClearFaults", {});
    readFaults();
  };
}

// Both institutions side by side (GET /api/world): each panel a table, the bank's columns then
// the platform's, a disagreement highlighted and named.
async function readWorld() {
  const r = await fetch("/api/world");
  const world = await r.json();
  const root = document.getElementById("panels");
  root.innerHTML = "";
  const down = Object.entries(world.unanswered || {});
  if (down.length) {
    const p = document.createElement("p");
    p.className = "refused";
    p.textContent = down.map(([node, why]) => `${node} did not answer: ${why}`).join("; ");
    root.appendChild(p);
  }
  for (const panel of world.panels) root.appendChild(drawPanel(panel));
}

// Panels the user opened or closed; the others are open while they hold records.
const panelOpen = new Map();

function drawPanel(panel) {
  const d = document.createElement("details");
  d.dataset.panel = panel.title;
  d.open = panelOpen.has(panel.title) ? panelOpen.get(panel.title) : panel.rows.length > 0;
  const sides = [["bank", panel.bank], ["platform", panel.platform]].filter(([, s]) => s);
  const disagreeing = panel.rows.filter((r) => r.disagreement).length;
  const summary = document.createElement("summary");
  summary.textContent = `${panel.title} — ` + sides.map(([n, s]) => `${n} ${s.shown < s.total ? `newest ${s.shown} of ${s.total}` : s.total}`).join(", ") +
    (disagreeing ? ` — ${disagreeing} disagreeing` : "");
  if (disagreeing) summary.className = "disagree";
  summary.onclick = () => panelOpen.set(panel.title, !d.open);
  d.appendChild(summary);
  // Joined panels name the record once, in a first column of its own.
  const joined = sides.length === 2;
  const skip = (s) => (joined && ["order", "sign-up id", "batch"].includes(s.columns[0]) ? 1 : 0);
  const table = document.createElement("table");
  const head = table.createTHead();
  const groups = head.insertRow();
  const names = head.insertRow();
  if (joined) {
    for (const text of [sides[0][1].columns[0], "disagreement"]) {
      const th = document.createElement("th");
      th.rowSpan = 2;
      th.textContent = text;
      groups.appendChild(th);
    }
  }
  for (const [name, s] of sides) {
    const th = document.createElement("th");
    th.colSpan = s.columns.length - skip(s);
    th.textContent = name;
    th.className = `side ${name}`;
    groups.appendChild(th);
    for (const c of s.columns.slice(skip(s))) {
      const h = document.createElement("th");
      h.textContent = c;
      names.appendChild(h);
    }
  }
  const body = table.createTBody();
  for (const row of panel.rows) {
    const tr = body.insertRow();
    tr.dataset.key = row.key;
    if (row.disagreement) tr.className = "disagree";
    if (joined) {
      const key = tr.insertCell();
      key.className = "key";
      key.textContent = row.key;
      const why = tr.insertCell();
      why.className = "why";
      why.textContent = row.disagreement || "";
    }
    for (const [name, s] of sides) {
      const cells = row[name];
      const status = s.columns.indexOf("status");
      if (cells.kept && status >= 0) tr.dataset[`${name}Status`] = cells.kept[status];
      if (cells.kept) {
        for (const c of cells.kept.slice(skip(s))) tr.insertCell().textContent = c;
      } else {
        const td = tr.insertCell();
        td.colSpan = s.columns.length - skip(s);
        td.className = "absent";
        td.textContent = cells === "beyond" ? `older than the newest ${s.shown}` : `no record at the ${name}`;
      }
    }
  }
  d.appendChild(table);
  return d;
}

// Reads the world again after what happened: at most one read in flight, one waiting, and one
// read a second (under load the records are read, not re-read for every call).
const WORLD_EVERY_MS = 1000;
let worldReading = null;
let worldAgain = false;
function refreshWorld() {
  if (worldReading) { worldAgain = true; return; }
  const started = Date.now();
  worldReading = readWorld().catch(() => {}).finally(() => {
    setTimeout(() => {
      worldReading = null;
      if (worldAgain) { worldAgain = false; refreshWorld(); }
    }, Math.max(0, started + WORLD_EVERY_MS - Date.now()));
  });
}

function pick(entry) {
  document.getElementById("call-detail").textContent = JSON.stringify(describeCall(entry), null, 2);
}

async function boot() {
  const info = await (await fetch("/api/info")).json();
  document.getElementById("nodes").textContent = `bank ${info.bank} · platform ${info.platform}`;
  const diagram = new Diagram(document.getElementById("diagram"), pick);
  document.getElementById("filter").oninput = (e) => diagram.setFilter(e.target.value);
  document.getElementById("show-reads").onchange = (e) => diagram.setShowReads(e.target.checked);
  document.getElementById("world-read").onclick = refreshWorld;
  const events = new EventSource("/api/events");
  events.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    diagram.add(ev);
    // Every answer but the simulator's own reads may have changed a record.
    if (ev.answer && !diagram.isRead(ev.node, ev.answer.call_id)) refreshWorld();
    if (ev.sms) readPhone();
    if (ev.fault) readFaults();
    if (ev.answer && ev.answer.code === "OK") {
      const entry = diagram.calls.get(`${ev.node}:${ev.answer.call_id}`);
      const method = entry && entry.call.method;
      if (method === "SetClock" || method === "Reset") readClocks();
    }
  };
  fillActions();
  wire();
  readClocks();
  readFaults();
  refreshWorld();
}

boot();
