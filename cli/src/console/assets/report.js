// The scenario report page (`ibsim scenario run --html`): each scenario's outcome, steps, failure
// diff and conversation, drawn from the JSON embedded in the page by the console's Diagram.
"use strict";

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function stepsTable(s) {
  const t = el("table", { class: "steps" });
  t.createTHead().append(el("tr", {}, el("th", {}, "step"), el("th", {}, "name"), el("th", {}, "outcome"),
    el("th", {}, "ms"), el("th", {}, "tries")));
  const body = t.createTBody();
  for (const st of s.steps) {
    body.append(el("tr", { class: st.passed ? "pass" : "fail", "data-step": String(st.index) },
      el("td", {}, String(st.index)), el("td", {}, st.name), el("td", {}, st.passed ? "ok" : "FAILED"),
      el("td", {}, String(st.ms)), el("td", {}, String(st.tries))));
  }
  return t;
}

function failureBlock(f) {
  const where = f.step === 0 ? "before the first step" : `step ${f.step} "${f.step_name}"`;
  const box = el("div", { class: "failure" }, el("p", {}, `${where}: ${f.message}`));
  if (f.diff.length) {
    const t = el("table", { class: "diff" });
    t.createTHead().append(el("tr", {}, el("th", {}, "where"), el("th", {}, "expected"), el("th", {}, "actual")));
    const body = t.createTBody();
    for (const m of f.diff) {
      body.append(el("tr", {}, el("td", {}, m.path), el("td", { class: "expected" }, m.expected),
        el("td", { class: "actual" }, m.actual === null || m.actual === undefined ? "(nothing there)" : m.actual)));
    }
    box.append(t);
  }
  if (f.actual !== null && f.actual !== undefined) {
    box.append(el("p", {}, "the answer as it came:"), el("pre", {}, JSON.stringify(f.actual, null, 2)));
  }
  return box;
}

function scenarioSection(s, events, i) {
  const mark = s.passed ? "ok" : "FAIL";
  const section = el("section", { class: `scenario ${s.passed ? "pass" : "fail"}`, id: `scenario-${i + 1}` });
  section.append(el("h2", {}, el("span", { class: "mark" }, mark), ` ${s.name}`),
    el("p", { class: "meta" }, `${s.file} · ${s.steps.length} steps · ${s.ms} ms · again: ibsim scenario run ${s.file} --seed ${s.seed}`));
  if (s.failure) section.append(failureBlock(s.failure));
  section.append(stepsTable(s));
  const talk = el("details", { class: "conversation" });
  talk.open = !s.passed;
  // The runner's reads are steps of the scenario: shown unless unticked.
  const reads = el("input", { type: "checkbox" });
  reads.checked = true;
  talk.append(el("summary", {}, `the conversation (${events.filter((e) => e.call).length} calls)`),
    el("label", {}, reads, " the simulator's reads"));
  const box = el("div", { class: "diagram-box" });
  const detail = el("pre", { class: "call-detail" }, "Click an arrow.");
  talk.append(box, detail);
  const diagram = new Diagram(box, (entry) => { detail.textContent = JSON.stringify(describeCall(entry), null, 2); });
  diagram.setShowReads(true);
  for (const e of events) diagram.add(e);
  reads.onchange = () => diagram.setShowReads(reads.checked);
  section.append(talk);
  return section;
}

function draw() {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const r = data.report;
  const root = document.getElementById("report");
  const failed = r.scenarios.filter((s) => !s.passed).length;
  root.append(el("p", { class: "totals" },
    `${r.scenarios.length} scenarios: ${r.scenarios.length - failed} passed, ${failed} failed in ${r.ms} ms ` +
    `(${r.jobs} at once on ${r.cores} cores); seed ${r.seed}`));
  const index = el("ol", { class: "index" });
  r.scenarios.forEach((s, i) => index.append(el("li", { class: s.passed ? "pass" : "fail" },
    el("a", { href: `#scenario-${i + 1}` }, `${s.passed ? "ok" : "FAIL"} ${s.name}`))));
  root.append(index);
  r.scenarios.forEach((s, i) => root.append(scenarioSection(s, data.conversations[i] || [], i)));
}

draw();
