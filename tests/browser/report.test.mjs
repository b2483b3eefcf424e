// `ibsim scenario run --html` (issue 20): the page it writes, opened in a real browser from the
// file alone, shows each scenario's outcome, its steps, a failure's expected/actual difference
// and the conversation drawn as the console draws it.
//
// Run: cargo build -p cli && (cd tests/browser && npm ci && node --test)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const bin = process.env.IBSIM_BIN || join(root, "target", "debug", "ibsim");

const PAYING = `
name = "a payment with its code"
fixtures = "demo"

[[step]]
platform = "AccountService.Login"
request = { email = "zhouba@example.com", login_password = "demo-login-1" }
as = "zb"

[[step]]
platform = "PlatformOpsService.GetAccount"
request = { email = "zhouba@example.com" }
as = "zba"

[[step]]
platform = "PayService.StartPayment"
request = { session_token = "{{zb.session_token}}", order_no = "HTML-1", amount = "1.50", pay_password = "111111", signup_id = "{{zba.account.card_links[0].signup_id}}" }

[[step]]
bank = "SmsOutboxService.ListSms"
request = { mobile = "13900139006", limit = 1 }
as = "sms"

[[step]]
platform = "PayService.ConfirmPayment"
request = { session_token = "{{zb.session_token}}", order_no = "HTML-1", otp_code = "{{sms.messages[0].otp_code}}" }
expect.fields = { "order.status" = "ORDER_STATUS_SUCCESS" }
`;

const FAILING = `
name = "a wrong expectation </script>"
fixtures = "demo"

[[step]]
name = "the balance is not 1.00"
bank = "BranchService.GetCard"
request = { card_number = "6221880000000000019" }
expect.fields = { "card.balance" = "1.00" }
`;

let dir, profile, browser, page, html;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "ibsim-report-"));
  writeFileSync(join(dir, "a-paying.toml"), PAYING);
  writeFileSync(join(dir, "b-failing.toml"), FAILING);
  html = join(dir, "report.html");
  const run = spawnSync(bin, ["scenario", "run", dir, "--seed", "7", "--html", html], { encoding: "utf8" });
  assert.equal(run.status, 1, `one scenario fails, so the run does:\n${run.stdout}\n${run.stderr}`);
  profile = mkdtempSync(join(tmpdir(), "ibsim-chromium-"));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage();
  // Self-contained: the page asks for nothing beyond itself.
  page.on("request", (r) => assert.equal(r.url(), pathToFileURL(html).href, `fetched ${r.url()}`));
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  await page.goto(pathToFileURL(html).href);
  assert.deepEqual(errors, []);
});

after(async () => {
  if (browser) await browser.close();
  rmSync(profile, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

test("the report tells each outcome, the failing step's difference and the conversation", async () => {
  assert.equal(await page.textContent(".totals").then((t) => t.split(" in ")[0]), "2 scenarios: 1 passed, 1 failed");
  const marks = await page.$$eval(".scenario h2", (hs) => hs.map((h) => h.textContent));
  assert.deepEqual(marks, ["ok a payment with its code", "FAIL a wrong expectation </script>"]);

  const failing = page.locator(".scenario.fail");
  assert.match(await failing.locator(".failure p").first().textContent(), /^step 1 "the balance is not 1.00": /);
  const diff = await failing.locator("table.diff tbody tr td").allTextContents();
  assert.deepEqual(diff, ["card.balance", "\"1.00\"", "\"10000.00\""]);
  assert.deepEqual(await failing.locator("table.steps tr.fail td").allTextContents().then((c) => c.slice(0, 3)),
    ["1", "the balance is not 1.00", "FAILED"]);

  // The passing scenario's conversation, in order, with the code on no arrow.
  const passing = page.locator(".scenario.pass");
  await passing.locator("summary").click();
  const arrows = await passing.locator(".rows .row:not(.note):not([hidden])").evaluateAll((rows) =>
    rows.map((r) => [r.dataset.from, r.dataset.to, r.querySelector(".label").textContent]));
  const want = [
    ["customer", "platform", "StartPayment"],
    ["platform", "bank", "RequestPaymentCode"],
    ["bank", "phone", "SMS to 139****9006 for HTML-1"],
    ["phone", "bank", "ListSms"],
    ["customer", "platform", "ConfirmPayment"],
    ["platform", "bank", "Pay"],
    ["bank", "platform", "OK"],
    ["platform", "customer", "OK"],
  ];
  let i = 0;
  for (const a of arrows) if (i < want.length && a.join("|") === want[i].join("|")) i++;
  assert.equal(i, want.length, `arrows ${JSON.stringify(want)} not in ${JSON.stringify(arrows)}`);
  await passing.locator('.rows .row.call >> text="Pay"').click();
  const detail = JSON.parse(await passing.locator(".call-detail").textContent());
  assert.equal(detail.request.otp_code, "(hidden)");
  assert.equal(detail.answer.code, "OK");
  // Nothing of a one-time code in the file: the feed hid it before the runner saw it.
  // (The messages sit in the file as JSON strings inside JSON: quotes escaped.)
  const text = readFileSync(html, "utf8");
  assert.match(text, /otp_code\\":\\"\(hidden\)/);
  assert.doesNotMatch(text, /otp_code\\?":\\?"\d{6}/);
});
