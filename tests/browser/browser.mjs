// What the browser drivers share: Debian's chromium launched headless through playwright-core,
// and writing a run through the API as an agent runtime would (Node's fetch).
import { chromium } from "playwright-core";

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

/** Stores `run` (a RunInput) on the server of `pageUrl` with `key`; throws on any error. */
export async function ingestRun(pageUrl, key, run) {
  const written = await fetch(new URL("/graphql", pageUrl), {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({
      query: "mutation($runs: [RunInput!]!) { ingestRuns(runs: $runs) { storedCount } }",
      variables: { runs: [run] },
    }),
  }).then((r) => r.json());
  if (written.errors) throw new Error(`ingest failed: ${JSON.stringify(written.errors)}`);
}
