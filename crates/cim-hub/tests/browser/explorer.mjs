// The DAG explorer in a real headless Chromium (Debian's `chromium`, driven
// by playwright-core): the page loads, the graph has the right nodes and
// edges, a clicked event shows its CID and verification status, and an
// event appended meanwhile appears live. Run by the Rust test
// `explorer::the_explorer_draws_the_dag_and_follows_the_feed` with:
//   HUB_URL, TOKEN (write scope), AGGREGATE (type/id), EXPECT (JSON:
//   {nodes: [cid…], edges: [[from, to, kind]…]}), SCREENSHOTS (a directory),
//   CHROMIUM (the browser binary).
import assert from "node:assert/strict";
import { createRequire } from "node:module";

// playwright-core lives in .tools/node/node_modules (NODE_MODULES).
const require = createRequire(`${process.env.NODE_MODULES}/`);
const { chromium } = require("playwright-core");

const { HUB_URL, TOKEN, AGGREGATE, EXPECT, SCREENSHOTS, CHROMIUM } = process.env;
const expected = JSON.parse(EXPECT);
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(`${HUB_URL}/explorer?aggregate=${encodeURIComponent(AGGREGATE)}#token=${TOKEN}`);
  await page.waitForFunction(() => window.explorer && window.explorer.ready === true, null, { timeout: 30000 });
  await page.waitForFunction(() => window.explorer.live === true, null, { timeout: 30000 });

  const graph = await page.evaluate(() => window.explorer.snapshot());
  assert.deepEqual(graph.nodes.map((n) => n.id).sort(), [...expected.nodes].sort(), "the graph's nodes");
  const edges = graph.edges.map((e) => [e.from, e.to, e.kind].join(" ")).sort();
  assert.deepEqual(edges, expected.edges.map((e) => e.join(" ")).sort(), "the graph's edges");
  assert.ok(!page.url().includes("token"), "the token left the URL");
  await page.screenshot({ path: `${SCREENSHOTS}/explorer-graph.png` });

  // Click the last own event: it is shown in full, verified.
  const target = expected.nodes[expected.own_last];
  const position = await page.evaluate((id) => window.explorer.cy.getElementById(id).renderedPosition(), target);
  const box = await page.locator("#graph").boundingBox();
  await page.mouse.click(box.x + position.x, box.y + position.y);
  await page.waitForSelector("#detail-cid", { timeout: 15000 });
  assert.equal(await page.textContent("#detail-cid"), target);
  assert.equal(await page.textContent("#verified"), "verified");
  assert.equal(await page.textContent("#chain"), "chain intact");
  await page.screenshot({ path: `${SCREENSHOTS}/explorer-event.png` });

  // A live append appears, linked to its predecessor.
  const [type, id] = AGGREGATE.split("/");
  const response = await fetch(`${HUB_URL}/v1/aggregates/${type}/${id}/events`, {
    method: "POST",
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify({ events: [{ event_type: "LiveAppended", payload: { from: "the browser test" } }] }),
  });
  assert.equal(response.status, 201);
  const appended = (await response.json()).events[0].cid;
  await page.waitForFunction((cid) => window.explorer.cy.getElementById(cid).nonempty(), appended, { timeout: 30000 });
  const after = await page.evaluate(() => window.explorer.snapshot());
  assert.equal(after.nodes.length, expected.nodes.length + 1);
  assert.ok(after.edges.some((e) => e.from === appended && e.to === target && e.kind === "prev"), "linked by prev");
  await page.screenshot({ path: `${SCREENSHOTS}/explorer-live.png` });
  assert.deepEqual(errors, [], "no script errors");
  console.log(`explorer: ${after.nodes.length} nodes, ${after.edges.length} edges; live append ${appended} shown`);
} finally {
  await browser.close();
}
