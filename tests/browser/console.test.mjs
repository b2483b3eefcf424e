// The console in a real browser (issue 20): playwright-core drives Debian's chromium through a
// walkthrough on a fresh `ibsim up` (sign-up, activation, a payment with the code read from the
// phone, a refusal, a dropped reply settled by reconciliation, a cutover, T+1 with a case closed)
// and asserts what the page shows. Screenshots go to docs/ (README, "Watching the conversation").
//
// Run: cargo build -p cli && (cd tests/browser && npm ci && node --test)
// IBSIM_BIN names another ibsim binary; CHROMIUM another browser.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const bin = process.env.IBSIM_BIN || join(root, "target", "debug", "ibsim");
const docs = join(root, "docs");

let up, dataDir, profile, browser, page, consoleUrl;

// Starts `ibsim up` on free ports and resolves with the console's address from what it prints.
function startUp() {
  dataDir = mkdtempSync(join(tmpdir(), "ibsim-console-"));
  up = spawn(bin, ["up", "--data-dir", dataDir,
    "--bank-listen", "127.0.0.1:0", "--platform-listen", "127.0.0.1:0",
    "--bank-metrics-listen", "127.0.0.1:0", "--platform-metrics-listen", "127.0.0.1:0",
    "--console-listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    up.on("exit", (code) => reject(new Error(`ibsim up exited with ${code}:\n${out}`)));
    up.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/console\s+(http:\/\/[0-9.:]+\/)/);
      if (m && out.includes("Ctrl-C stops both nodes")) resolve(m[1]);
    });
  });
}

before(async () => {
  consoleUrl = await startUp();
  profile = mkdtempSync(join(tmpdir(), "ibsim-chromium-"));
  // A fresh profile each run (the persistent context's --user-data-dir).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1600, height: 1000 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage();
  page.on("dialog", (d) => d.accept());
  await page.goto(consoleUrl);
  await page.waitForFunction(() => /\d{4}-\d\d-\d\d/.test(document.getElementById("clock-bank").textContent));
});

// Ctrl-C stops both nodes and the console, a watching page or not: the hook waits for the exit
// (the hook's timeout bounds a hang and fails the run).
after(async () => {
  if (browser) await browser.close();
  rmSync(profile, { recursive: true, force: true });
  if (!up) return;
  const exited = new Promise((resolve) => up.once("exit", (code, signal) => resolve({ code, signal })));
  up.kill("SIGINT");
  const stopped = await exited;
  rmSync(dataDir, { recursive: true, force: true });
  assert.deepEqual(stopped, { code: 0, signal: null }, "ibsim up stops on Ctrl-C");
}, { timeout: 20000 });

// Does one action from the forms as `role` and answers what the result box shows.
async function act(role, title, fields = {}) {
  await page.selectOption("#role", role);
  await page.selectOption("#action", { label: title });
  for (const [name, value] of Object.entries(fields)) {
    await page.fill(`#form [name="${name}"]`, value);
  }
  await page.evaluate(() => { document.getElementById("result").textContent = ""; });
  await page.click("#go");
  await page.waitForFunction(() => document.getElementById("result").textContent !== "");
  return page.textContent("#result");
}

// The arrows drawn so far: [from, to, label] in the order shown.
async function arrows() {
  return page.$$eval(".rows .row:not(.note)", (rows) =>
    rows.map((r) => [r.dataset.from, r.dataset.to, r.querySelector(".label").textContent]));
}

// Waits until the diagram holds `want` (each [from, to, label]) in this order, maybe among others.
async function waitForArrows(want) {
  const holds = (want) => {
    const rows = [...document.querySelectorAll(".rows .row:not(.note)")]
      .map((r) => [r.dataset.from, r.dataset.to, r.querySelector(".label").textContent].join("|"));
    let i = 0;
    for (const r of rows) if (i < want.length && r === want[i].join("|")) i++;
    return i === want.length;
  };
  try {
    await page.waitForFunction(holds, want, { timeout: 20000 });
  } catch (e) {
    assert.fail(`arrows ${JSON.stringify(want)} not in ${JSON.stringify(await arrows())}`);
  }
}

// Waits until the panel `title` of "Both institutions" shows the record `key` with these
// statuses on each side (null: no record there) and, if given, this disagreement ("" for none).
async function waitForRecord(title, key, { bank, platform, disagreement }) {
  const holds = ([title, key, bank, platform, disagreement]) => {
    const row = [...document.querySelectorAll(`#panels details[data-panel="${title}"] tbody tr`)]
      .find((r) => r.dataset.key === key);
    if (!row) return false;
    const why = row.querySelector("td.why");
    return (bank === undefined || (row.dataset.bankStatus ?? null) === bank) &&
      (platform === undefined || (row.dataset.platformStatus ?? null) === platform) &&
      (disagreement === undefined || (why ? why.textContent : "") === disagreement) &&
      row.classList.contains("disagree") === Boolean(disagreement);
  };
  try {
    await page.waitForFunction(holds, [title, key, bank, platform, disagreement], { timeout: 20000 });
  } catch (e) {
    const shown = await page.$$eval(`#panels details[data-panel="${title}"] tbody tr`, (rows) =>
      rows.map((r) => [r.dataset.key, r.dataset.bankStatus, r.dataset.platformStatus, r.className]));
    assert.fail(`${title} ${key}: want bank ${bank}, platform ${platform}, ${JSON.stringify(disagreement)}; shown ${JSON.stringify(shown)}`);
  }
}

function businessDate(text) {
  return text.match(/\d{4}-\d\d-\d\d/)[0];
}

test("a walkthrough through the page: sign-up to a closed case", async () => {
  const signed = await act("teller", "sign up the card-link");
  assert.match(signed, /SIGN_UP_STATUS_SIGNED/);
  const signupId = JSON.parse(signed).signup.signup_id;
  await waitForArrows([
    ["teller", "bank", "SignUp"],
    ["bank", "platform", "ConfirmSignUp"],
    ["platform", "bank", "OK"],
    ["bank", "teller", "OK"],
  ]);

  assert.match(await act("customer", "log in"), /session_token/);
  assert.match(await page.textContent("#session"), /zhangsan@example.com/);
  assert.match(await act("customer", "activate the card-link"), /LINK_STATUS_ACTIVE/);
  await waitForArrows([["customer", "platform", "Activate"], ["platform", "bank", "ConfirmActivation"]]);
  await waitForRecord("Sign-ups and card-links", signupId, { bank: "SIGNED", platform: "ACTIVE", disagreement: "" });

  // A payment: start, the code read off the phone panel, confirm.
  await page.fill("#mobile", "13800138000");
  assert.match(await act("customer", "pay: start", { order_no: "WEB-1", amount: "12.34" }), /ORDER_STATUS_AWAITING_CODE/);
  await page.waitForSelector('#sms li[data-order="WEB-1"] .otp');
  const code = (await page.textContent('#sms li[data-order="WEB-1"] .otp')).trim();
  assert.match(code, /^\d{6}$/);
  assert.match(await act("customer", "pay: confirm with the code", { order_no: "WEB-1", otp_code: code }), /ORDER_STATUS_SUCCESS/);
  await waitForArrows([
    ["customer", "platform", "StartPayment"],
    ["platform", "bank", "RequestPaymentCode"],
    ["bank", "phone", "SMS to 138****8000 for WEB-1"],
    ["customer", "platform", "ConfirmPayment"],
    ["platform", "bank", "Pay"],
    ["bank", "platform", "OK"],
    ["platform", "customer", "OK"],
  ]);
  // The code is on the phone and nowhere in the conversation or the records.
  const diagramText = await page.textContent("#diagram");
  assert.ok(!diagramText.includes(code));
  await waitForRecord("Orders", "WEB-1", { bank: "SUCCESS", platform: "SUCCESS", disagreement: "" });
  assert.ok(!(await page.textContent("#panels")).includes(code));

  // A dropped reply: the bank debits, the platform never hears, and its status queries fail
  // too (a rule on every GetPayment, kept for T+1 below); reconciliation settles it.
  async function addFault(method, action, firstN) {
    await page.selectOption('#fault-form [name="node"]', "platform");
    await page.selectOption('#fault-form [name="side"]', "FAULT_SIDE_CALLER");
    await page.fill('#fault-form [name="method"]', method);
    await page.selectOption('#fault-form [name="action"]', action);
    await page.fill('#fault-form [name="first_n"]', String(firstN));
    await page.click("#fault-form button");
    await page.waitForFunction((want) => new RegExp(want).test(document.getElementById("fault-list").textContent),
      `platform #\\d+: caller ${method} ${action}`);
  }
  await addFault("Pay", "drop_reply", 1);
  await addFault("GetPayment", "fail", 0);
  await act("customer", "pay: start", { order_no: "WEB-2", amount: "5.00" });
  await page.waitForSelector('#sms li[data-order="WEB-2"] .otp');
  const code2 = (await page.textContent('#sms li[data-order="WEB-2"] .otp')).trim();
  const lost = await act("customer", "pay: confirm with the code", { order_no: "WEB-2", otp_code: code2 });
  assert.doesNotMatch(lost, /ORDER_STATUS_SUCCESS/, "the platform did not hear the bank's yes");
  await page.waitForSelector("text=fault: CALLER Pay REPLY DROPPED (WEB-2)");
  // Both sides as they stand: the bank debited, the platform does not know.
  await waitForRecord("Orders", "WEB-2", { bank: "SUCCESS", platform: "UNKNOWN",
    disagreement: "paid at the bank, not at the platform" });
  await page.$eval('#panels details[data-panel="Orders"]', (d) => d.scrollIntoView());
  await page.screenshot({ path: join(docs, "console-records.png") });
  await act("staff", "real-time reconciliation");
  assert.match(await act("staff", "an order", { order_no: "WEB-2" }), /ORDER_STATUS_SUCCESS/);
  await waitForRecord("Orders", "WEB-2", { bank: "SUCCESS", platform: "SUCCESS", disagreement: "" });

  // A refusal, with its code, reason and institution.
  const refused = await act("customer", "pay: start", { order_no: "WEB-3", amount: "0.001" });
  assert.match(refused, /^refused: INVALID_ARGUMENT MONEY_INVALID \(platform\), field amount/);
  await waitForArrows([["platform", "customer", "INVALID_ARGUMENT MONEY_INVALID"]]);
  const red = await page.$eval(".rows .row.refused .label", (l) => getComputedStyle(l).color);
  assert.equal(red, "rgb(180, 35, 24)");
  await page.fill("#filter", "WEB-3");
  await page.screenshot({ path: join(docs, "console-refusal.png") });
  await page.fill("#filter", "");

  // A break on purpose, the cutover, and T+1 with the case closed by staff.
  const day = businessDate(await page.textContent("#clock-bank"));
  assert.match(await act("staff", "write an order by hand (a test break)",
    { order_no: "WEB-HAND", signup_id: signupId, business_date: day }), /WEB-HAND/);
  await waitForRecord("Orders", "WEB-HAND", { bank: null, platform: "SUCCESS",
    disagreement: "paid at the platform, no payment at the bank" });
  // The bank's payment query is still down during T+1: the order file's case is left for staff.
  await page.click("#clock-cutover");
  await page.waitForFunction((d) => !document.getElementById("clock-bank").textContent.includes(`bank: ${d}`), day);
  const run = await act("staff", "T+1 reconciliation of a day", { business_date: day });
  assert.match(run, /needs_staff/);
  const cases = JSON.parse(await act("staff", "error cases")).cases;
  const open = cases.find((c) => c.record_key === "WEB-HAND");
  assert.ok(open, JSON.stringify(cases));
  assert.equal(open.status, "CASE_STATUS_NEEDS_STAFF");
  assert.equal(open.category, "CASE_CATEGORY_PLATFORM_ONLY");
  await waitForRecord("Error cases", open.case_id, { platform: "NEEDS_STAFF" });
  assert.match(await act("staff", "close a case", { case_id: open.case_id }), /CASE_STATUS_CLOSED/);
  await waitForRecord("Error cases", open.case_id, { platform: "CLOSED" });
  const after = JSON.parse(await act("staff", "error cases")).cases.find((c) => c.case_id === open.case_id);
  assert.equal(after.status, "CASE_STATUS_CLOSED");

  // The filter keeps one order's conversation.
  await page.fill("#filter", "WEB-1");
  const shown = await page.$$eval(".rows .row:not([hidden]) .label", (ls) => ls.map((l) => l.textContent));
  assert.ok(shown.includes("StartPayment") && shown.includes("Pay"), JSON.stringify(shown));
  assert.ok(!shown.includes("SignUp"), JSON.stringify(shown));
  await page.click('.rows .row.call[data-from="platform"][data-to="bank"]:not([hidden]) >> text="Pay"');
  const detail = JSON.parse(await page.textContent("#call-detail"));
  assert.equal(detail.caller, "platform");
  assert.equal(detail.request.otp_code, "(hidden)", "the code is never shown in a call");
  assert.equal(detail.answer.code, "OK");
  await page.screenshot({ path: join(docs, "console-walkthrough.png") });
  await page.fill("#filter", "");
});
