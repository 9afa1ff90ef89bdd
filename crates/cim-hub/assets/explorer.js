// The CIM DAG explorer: an aggregate's chain and causal links, drawn with
// cytoscape; a clicked event shown in full; new events added live from the
// hub's feed (Server-Sent Events read with fetch, so the token travels in
// the Authorization header, never in a URL).
"use strict";

const state = { cy: null, aggregate: null, lastSeq: 0, feed: null, ready: false, live: false };
window.explorer = state;

const $ = (id) => document.getElementById(id);

function token() {
  return $("token").value.trim();
}

async function api(path) {
  const response = await fetch(path, { headers: { Authorization: "Bearer " + token() } });
  const body = await response.json();
  if (!response.ok) {
    throw new Error(body.detail || body.title || response.status);
  }
  return body;
}

function short(cid) {
  return cid.slice(0, 6) + "…" + cid.slice(-6);
}

function nodeData(node) {
  return {
    id: node.cid,
    label: (node.own ? "v" + node.version + " " : node.aggregate + " v" + node.version + " ") + node.event_type,
    own: node.own ? "yes" : "no",
    seq: node.seq,
  };
}

function addNode(node) {
  if (state.cy.getElementById(node.cid).nonempty()) {
    return false;
  }
  state.cy.add({ group: "nodes", data: nodeData(node) });
  return true;
}

function addEdge(edge) {
  const id = edge.kind + ":" + edge.from + "->" + edge.to;
  if (state.cy.getElementById(id).nonempty()) {
    return;
  }
  if (state.cy.getElementById(edge.from).empty() || state.cy.getElementById(edge.to).empty()) {
    return;
  }
  state.cy.add({ group: "edges", data: { id, source: edge.to, target: edge.from, kind: edge.kind } });
}

function layout() {
  state.cy.layout({ name: "breadthfirst", directed: true, spacingFactor: 1.1, animate: false }).run();
  state.cy.fit(undefined, 30);
}

function newGraph() {
  if (state.cy) {
    state.cy.destroy();
  }
  state.cy = cytoscape({
    container: $("graph"),
    elements: [],
    style: [
      { selector: "node", style: {
        "label": "data(label)", "font-size": 10, "text-valign": "bottom", "text-margin-y": 4,
        "background-color": "#3f51b5", "width": 22, "height": 22 } },
      { selector: "node[own = 'no']", style: { "background-color": "#9e9e9e" } },
      { selector: "node:selected", style: { "border-width": 3, "border-color": "#ff9800" } },
      { selector: "edge", style: {
        "width": 2, "line-color": "#7986cb", "target-arrow-color": "#7986cb",
        "target-arrow-shape": "triangle", "curve-style": "bezier" } },
      { selector: "edge[kind = 'parent']", style: { "line-style": "dashed", "line-color": "#ff7043", "target-arrow-color": "#ff7043" } },
    ],
  });
  state.cy.on("tap", "node", (event) => show(event.target.id()));
}

async function show(cid) {
  const detail = $("detail");
  detail.innerHTML = "<h2>Event</h2><p>Loading…</p>";
  try {
    const event = await api("/v1/events/" + encodeURIComponent(cid));
    const chain = await api("/v1/aggregates/" + encodeURIComponent(event.aggregate_type) + "/" +
      encodeURIComponent(event.aggregate_id) + "/verify");
    const verified = event.verified
      ? '<span class="ok" id="verified">verified</span> (its bytes hash to its CID)'
      : '<span class="bad" id="verified">not verified</span>';
    const chainOk = chain.ok
      ? '<span class="ok" id="chain">chain intact</span> (' + chain.verified + " events)"
      : '<span class="bad" id="chain">chain broken</span>: ' + chain.problems.join("; ");
    detail.innerHTML = "<h2>" + escapeHtml(event.event_type) + "</h2>" +
      "<dl>" +
      "<dt>CID</dt><dd class=cid id=detail-cid>" + event.cid + "</dd>" +
      "<dt>Aggregate</dt><dd>" + escapeHtml(event.aggregate_type + "/" + event.aggregate_id) + " v" + event.version + "</dd>" +
      "<dt>Sequence</dt><dd>" + event.seq + "</dd>" +
      "<dt>Time</dt><dd>" + escapeHtml(event.timestamp) + "</dd>" +
      "<dt>Status</dt><dd>" + verified + "<br>" + chainOk + "</dd>" +
      (event.caller ? "<dt>Caller</dt><dd>" + escapeHtml(event.caller) + "</dd>" : "") +
      "<dt>prev</dt><dd class=cid>" + (event.prev || "—") + "</dd>" +
      "<dt>parents</dt><dd class=cid>" + (event.parents.join("<br>") || "—") + "</dd>" +
      "</dl><pre>" + escapeHtml(JSON.stringify(event, null, 2)) + "</pre>";
  } catch (error) {
    detail.innerHTML = "<h2>Event</h2><p class=bad>" + escapeHtml(String(error.message || error)) + "</p>";
  }
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

async function load() {
  $("error").textContent = "";
  const text = $("aggregate").value.trim();
  const slash = text.indexOf("/");
  if (slash < 1) {
    $("error").textContent = "aggregate: type/id";
    return;
  }
  sessionStorage.setItem("cim-hub-token", token());
  const [type, id] = [text.slice(0, slash), text.slice(slash + 1)];
  state.aggregate = { type, id };
  state.ready = false;
  if (state.feed) {
    state.feed.abort();
  }
  newGraph();
  try {
    const graph = await api("/v1/aggregates/" + encodeURIComponent(type) + "/" + encodeURIComponent(id) + "/graph");
    graph.nodes.forEach(addNode);
    graph.edges.forEach(addEdge);
    state.lastSeq = graph.nodes.filter((n) => n.own).reduce((max, n) => Math.max(max, n.seq), 0);
    layout();
    history.replaceState(null, "", "?aggregate=" + encodeURIComponent(text));
    follow();
    state.ready = true;
    document.body.dataset.ready = "true";
  } catch (error) {
    $("error").textContent = String(error.message || error);
  }
}

// Follows the feed of the aggregate, resuming after the last event seen.
async function follow() {
  const controller = new AbortController();
  state.feed = controller;
  const { type, id } = state.aggregate;
  while (!controller.signal.aborted) {
    try {
      const headers = { Authorization: "Bearer " + token(), Accept: "text/event-stream" };
      if (state.lastSeq > 0) {
        headers["Last-Event-ID"] = String(state.lastSeq);
      }
      const url = "/v1/feed?aggregate_type=" + encodeURIComponent(type) + "&aggregate_id=" + encodeURIComponent(id) +
        (state.lastSeq > 0 ? "" : "&after=0");
      const response = await fetch(url, { headers, signal: controller.signal });
      if (!response.ok) {
        throw new Error("feed: " + response.status);
      }
      setLive(true);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          break;
        }
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          onMessage(block);
        }
      }
    } catch (error) {
      if (controller.signal.aborted) {
        return;
      }
    }
    setLive(false);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function onMessage(block) {
  let data = "";
  let name = "message";
  for (const line of block.split("\n")) {
    if (line.startsWith("data:")) {
      data += line.slice(5).trimStart();
    } else if (line.startsWith("event:")) {
      name = line.slice(6).trim();
    }
  }
  if (name !== "message" || !data) {
    return;
  }
  const event = JSON.parse(data);
  state.lastSeq = Math.max(state.lastSeq, event.seq);
  const added = addNode({
    cid: event.cid, aggregate: event.aggregate_type + "/" + event.aggregate_id, version: event.version,
    event_type: event.event_type, seq: event.seq, own: true,
  });
  if (event.prev) {
    addEdge({ from: event.cid, to: event.prev, kind: "prev" });
  }
  event.parents.forEach((parent) => addEdge({ from: event.cid, to: parent, kind: "parent" }));
  if (added) {
    layout();
  }
}

function setLive(live) {
  state.live = live;
  $("status").textContent = live ? "live" : "reconnecting";
  $("status").className = live ? "live" : "";
}

window.addEventListener("DOMContentLoaded", () => {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    sessionStorage.setItem("cim-hub-token", fragment.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  $("token").value = sessionStorage.getItem("cim-hub-token") || "";
  const aggregate = new URLSearchParams(location.search).get("aggregate");
  $("load").addEventListener("click", load);
  $("aggregate").addEventListener("keydown", (e) => { if (e.key === "Enter") load(); });
  if (aggregate) {
    $("aggregate").value = aggregate;
    load();
  }
});

// For tests: the graph as plain data.
state.snapshot = () => ({
  nodes: state.cy ? state.cy.nodes().map((n) => ({ id: n.id(), own: n.data("own") === "yes", label: n.data("label") })) : [],
  edges: state.cy ? state.cy.edges().map((e) => ({ from: e.target().id(), to: e.source().id(), kind: e.data("kind") })) : [],
});
