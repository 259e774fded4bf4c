// Runs a subscription in GraphiQL as a user would, in Debian's chromium (headless) through
// Playwright: types the operation and an `Authorization` header into GraphiQL's editors, presses
// run, writes a run through the API (Node's fetch) and waits for GraphiQL's result pane to show
// the event. Prints {result, consoleErrors} as JSON on stdout for tests/api/dashboard.rs.
//
// Environment: GRAPHIQL_URL, RUNLEDGER_KEY, INGEST_KEY, QUERY (the subscription), LIVE_RUN (a
// RunInput as JSON), CHROMIUM (default /usr/bin/chromium).
import { ingestRun, launch } from "./browser.mjs";

const url = new URL(process.env.GRAPHIQL_URL);
const browser = await launch();
const consoleErrors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("console", (msg) => {
    if (msg.type() === "error") consoleErrors.push(msg.text());
  });
  page.on("pageerror", (err) => consoleErrors.push(String(err)));
  await page.goto(url.href);
  const replace = async (editor, text) => {
    await editor.click();
    await page.keyboard.press("Control+A");
    await page.keyboard.press("Delete");
    await page.keyboard.insertText(text);
  };
  await page.waitForSelector(".graphiql-query-editor .CodeMirror", { timeout: 30000 });
  await replace(page.locator(".graphiql-query-editor .CodeMirror"), process.env.QUERY);
  await page.getByRole("button", { name: "Headers" }).click();
  await replace(page.locator(".graphiql-editor-tool .CodeMirror:visible"),
    JSON.stringify({ Authorization: `Bearer ${process.env.RUNLEDGER_KEY}` }));
  await page.click(".graphiql-execute-button");
  const run = JSON.parse(process.env.LIVE_RUN);
  await ingestRun(url, process.env.INGEST_KEY, run);
  const pane = ".graphiql-response .CodeMirror-code";
  await page.waitForFunction(([sel, id]) => {
    const el = document.querySelector(sel);
    return el && el.textContent.includes(id);
  }, [pane, run.runId], { timeout: 30000 });
  const text = await page.evaluate((sel) => document.querySelector(sel).innerText, pane);
  // CodeMirror renders one line per element; the JSON is the lines joined.
  console.log(JSON.stringify({ result: JSON.parse(text.replace(/\u00a0/g, " ")), consoleErrors }));
} catch (err) {
  console.log(JSON.stringify({ failure: String(err), consoleErrors }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
