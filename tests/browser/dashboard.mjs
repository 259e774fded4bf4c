// Opens the dashboard in Debian's chromium (headless) through Playwright, as a user would: enters
// the key, waits for every panel, writes a new failed run through the API (as an agent runtime
// would, with Node's fetch) and waits for the page to show it live, opens the replay of the first
// failed run, and prints what the page shows as JSON on stdout, with every console error and
// every request that did not go to the server. tests/api/dashboard.rs runs it and compares the
// figures with GraphQL answers.
//
// Environment: DASHBOARD_URL (the page, with ?from=&to=&tz=), RUNLEDGER_KEY, INGEST_KEY and
// LIVE_RUN (a RunInput as JSON), SCREENSHOT (a PNG path), CHROMIUM (default /usr/bin/chromium).
import { ingestRun, launch } from "./browser.mjs";

const url = new URL(process.env.DASHBOARD_URL);
const browser = await launch();
const consoleErrors = [];
const foreignRequests = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1800 } });
  page.on("console", (msg) => {
    if (msg.type() === "error") consoleErrors.push(msg.text());
  });
  page.on("pageerror", (err) => consoleErrors.push(String(err)));
  await page.route("**/*", (route) => {
    const target = new URL(route.request().url());
    if (target.origin !== url.origin) {
      foreignRequests.push(route.request().url());
      return route.abort();
    }
    return route.continue();
  });

  await page.goto(url.href);
  await page.waitForSelector("body[data-state=login]");
  await page.fill("#key", process.env.RUNLEDGER_KEY);
  await page.click("#key-form button[type=submit]");
  await page.waitForSelector("body[data-state=ready]", { timeout: 30000 });
  const panels = ["#chart-cost", "#chart-tokens", "#chart-errors", "#chart-status", "#chart-denied", "#failed", "#ledger"];
  for (const p of panels) {
    await page.waitForSelector(`${p}:not([data-state=loading])`, { timeout: 30000 });
  }
  // Live: a run written now reaches the open page without a reload.
  await page.waitForSelector("#live[data-state=live]", { timeout: 30000 });
  const runsBefore = await page.evaluate(() => Number(document.getElementById("kpi-runs").dataset.value));
  const run = JSON.parse(process.env.LIVE_RUN);
  await ingestRun(url, process.env.INGEST_KEY, run);
  await page.waitForSelector(`#failed-rows tr[data-run-id="${run.runId}"]`, { timeout: 30000 });
  await page.waitForFunction((n) => Number(document.getElementById("kpi-runs").dataset.value) === n, runsBefore + 1, { timeout: 30000 });
  for (const p of panels) {
    await page.waitForSelector(`${p}:not([data-state=loading])`, { timeout: 30000 });
  }
  const live = await page.evaluate((before) => ({
    runsBefore: before,
    runsAfter: Number(document.getElementById("kpi-runs").dataset.value),
    arrived: Number(document.getElementById("live").dataset.arrived),
    state: document.getElementById("live").dataset.state,
  }), runsBefore);
  const shown = await page.evaluate(() => {
    const el = (id) => document.getElementById(id);
    const tile = (id) => ({ value: el(id).dataset.value, text: el(id).textContent });
    const chart = (id) => ({
      state: el(id).dataset.state,
      total: el(id).dataset.total === undefined ? null : Number(el(id).dataset.total),
      series: (el(id).dataset.series || "").split("|").filter((s) => s),
      canvases: el(id).querySelectorAll("canvas").length,
      text: el(id).dataset.state === "error" ? el(id).textContent : "",
    });
    return {
      tiles: {
        runs: tile("kpi-runs"), cost: tile("kpi-cost"), tokens: tile("kpi-tokens"),
        errorRate: tile("kpi-error-rate"), p90: tile("kpi-p90"),
      },
      charts: {
        cost: chart("chart-cost"), tokens: chart("chart-tokens"), errors: chart("chart-errors"),
        status: chart("chart-status"), denied: chart("chart-denied"),
      },
      failedRuns: [...document.querySelectorAll("#failed-rows tr.run")].map((tr) => tr.dataset.runId),
      ledger: { state: el("ledger").dataset.state, status: el("ledger-status") ? el("ledger-status").textContent : null, text: el("ledger-body").textContent },
      asOfTreeSize: el("as-of").dataset.treeSize ? Number(el("as-of").dataset.treeSize) : null,
      keyInSession: sessionStorage.getItem("runledger.key") !== null,
      keyInLocal: localStorage.length,
    };
  });
  let replayEvents = null;
  if (shown.failedRuns.length > 0) {
    await page.click(`#failed-rows tr[data-run-id="${shown.failedRuns[0]}"]`);
    await page.waitForSelector("#replay[data-state=ready]", { timeout: 30000 });
    replayEvents = await page.evaluate(() => document.querySelectorAll("#replay-events li").length);
  }
  await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  console.log(JSON.stringify({ shown, live, replayEvents, consoleErrors, foreignRequests }));
} catch (err) {
  console.log(JSON.stringify({ failure: String(err), consoleErrors, foreignRequests }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
