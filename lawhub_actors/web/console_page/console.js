/*
 * LawHub operator console. Plain JS, no build step, nothing loaded from outside.
 *
 * The admin token is asked for once and kept in this tab's sessionStorage. REST
 * calls carry it as a bearer token; the websocket (/admin/ws) as ?token=, since a
 * browser's websocket cannot set headers. The websocket sends the whole tree
 * once, then only what changed ("tree.delta"), the DLQ and quarantine counts
 * when they change (the lists are fetched again then), and every tenant's feed.
 *
 * Everything from the server is written with textContent, never as HTML. The
 * feed and the DLQ show ids, types and states, not message text or full phone
 * numbers: this screen stays open all day. The server sends the feed already
 * stripped to FEED_KEYS and NUMBER_KEYS (masked), the lists of web/console.py.
 */
(() => {
  "use strict";

  const TOKEN_KEY = "lawhub.adminToken";
  const FEED_MAX = 200;
  const FEED_BATCH_MS = 100;
  const CLUSTER_EVERY_MS = 2000;
  const RELOAD_DELAY_MS = 300;
  const RECONNECT_FIRST_MS = 500;
  const RECONNECT_MAX_MS = 10000;
  const NOTICE_MS = 10000;
  const FEED_KEYS = ["id", "status", "verdict", "reason", "intent", "urgency", "phone_number_id"];
  const NUMBER_KEYS = ["customer", "to"]; // last four digits only
  const BAD_STATES = new Set(["stopped", "exited", "failed"]);

  const $ = (id) => document.getElementById(id);

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    nodes: new Map(), // path -> {data, li, row, kids}
    ws: null,
    retryMs: RECONNECT_FIRST_MS,
    counts: { dlq: null, quarantine: null },
  };

  class Unauthorized extends Error {}

  // -- small helpers -----------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "className") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), guard(value));
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof window.Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function report(error) {
    if (!(error instanceof Unauthorized)) notice("tree-notice", `Console: ${error.message}`, "bad");
  }

  /** Runs an (async) handler now (so it may still preventDefault), reporting its
   * failure instead of leaving it uncaught. */
  function guard(fn) {
    return (...args) => {
      try {
        return Promise.resolve(fn(...args)).catch(report);
      } catch (error) {
        report(error);
        return Promise.resolve();
      }
    };
  }

  const timeFormat = new Intl.DateTimeFormat(undefined,
    { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

  function when(ms) {
    const date = new Date(ms);
    const today = date.toDateString() === new Date().toDateString();
    return today ? timeFormat.format(date) : `${dayFormat.format(date)} ${timeFormat.format(date)}`;
  }

  const masked = (number) => (number ? `…${String(number).slice(-4)}` : "");
  const short = (id) => String(id).slice(0, 8);

  const timers = new Map();
  function notice(id, text, level) {
    const box = $(id);
    box.textContent = text;
    box.dataset.level = level || "";
    box.hidden = false;
    clearTimeout(timers.get(id));
    timers.set(id, setTimeout(() => { box.hidden = true; }, NOTICE_MS));
  }

  // -- REST ------------------------------------------------------------------------

  async function api(method, path, { body, type } = {}) {
    const headers = { Authorization: `Bearer ${state.token}` };
    if (type) headers["Content-Type"] = type;
    const response = await fetch(path, { method, headers, body, cache: "no-store" });
    if (response.status === 401) {
      signOut("The admin token was refused.");
      throw new Unauthorized();
    }
    return response;
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (_) { /* not JSON: fall back to the status line */ }
    return `${response.status} ${response.statusText}`;
  }

  // -- signing in and out ------------------------------------------------------------

  function showLogin(message) {
    $("panels").hidden = true;
    $("sign-out").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    setLevel($("status"), "unknown", "…");
    setLevel($("link"), "unknown", "offline");
    $("token").focus();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    const ws = state.ws;
    state.ws = null;
    if (ws) ws.close();
    showLogin(message);
  }

  async function start() {
    $("login").hidden = true;
    $("panels").hidden = false;
    $("sign-out").hidden = false;
    state.counts = { dlq: null, quarantine: null };
    try {
      await loadConfig(); // also proves the token: a refusal signs out
    } finally {
      if (state.token && !state.ws) connect();
    }
    if (!state.clusterTimer) {
      state.clusterTimer = setInterval(guard(loadCluster), CLUSTER_EVERY_MS);
      guard(loadCluster)();
    }
  }

  // -- the cluster: nodes, and each partition's owner, epoch and lag --------------------

  async function loadCluster() {
    if (!state.token || $("panels").hidden) return;
    const response = await api("GET", "/admin/cluster");
    if (!response.ok) return;
    const view = await response.json();
    $("cluster-self").textContent = `(answered by ${view.this_node})`;
    $("cluster-nodes").tBodies[0].replaceChildren(...view.nodes.map((node) =>
      el("tr", { dataset: { node: node.id } },
        el("td", {}, node.id),
        el("td", { title: node.heartbeat_at }, when(Date.parse(node.heartbeat_at))),
        el("td", { className: "partitions", title: node.partitions.join(", ") },
          String(node.partitions.length)))));
    $("cluster-partitions").tBodies[0].replaceChildren(...view.partitions.map((part) =>
      el("tr", { dataset: { partition: String(part.id), level: part.owner ? "ok" : "bad" } },
        el("td", {}, String(part.id)),
        el("td", { className: "owner" }, part.owner || "none (lease ran out)"),
        el("td", {}, String(part.epoch)),
        el("td", { className: "lag" }, String(part.lag)))));
  }

  // -- the websocket -------------------------------------------------------------------

  function setLevel(element, level, text) {
    element.dataset.level = level;
    element.textContent = text;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(
      `${scheme}//${location.host}/admin/ws?token=${encodeURIComponent(state.token)}`);
    state.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      state.retryMs = RECONNECT_FIRST_MS;
      setLevel($("link"), "ok", "live");
    };
    ws.onmessage = (message) => guard(onFrame)(JSON.parse(message.data));
    ws.onclose = () => {
      if (state.ws !== ws) return; // signed out, or replaced
      state.ws = null;
      setLevel($("link"), "bad", "reconnecting");
      const wait = state.retryMs;
      state.retryMs = Math.min(state.retryMs * 2, RECONNECT_MAX_MS);
      setTimeout(guard(async () => {
        if (!state.token || state.ws) return;
        if (!opened) {
          // Refused before opening: a token no longer valid (a 401 here signs out),
          // or the gateway is away (the fetch fails too: just try again).
          try {
            await api("GET", "/admin/dlq");
          } catch (error) {
            if (error instanceof Unauthorized) return;
          }
        }
        if (state.token && !state.ws) connect();
      }), wait);
    };
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "tree": renderTree(frame.tree); break;
      case "tree.delta": applyDelta(frame); break;
      case "counts": onCounts(frame); break;
      case "feed": onFeed(frame.tenant, frame.event); break;
      default: break; // a newer server's frame: ignore it
    }
  }

  // -- the tree ------------------------------------------------------------------------

  function renderTree(tree) {
    const before = state.nodes;
    state.nodes = new Map();
    const top = el("ul");
    const add = (node, list, parent, position) => {
      const { children, ...data } = node;
      const entry = makeNode({ ...data, parent, position });
      list.append(entry.li);
      const previous = before.get(data.path);
      if (previous && data.restarts.total > previous.data.restarts.total) flash(entry.li);
      children.forEach((child, index) => add(child, entry.kids, data.path, index));
    };
    add(tree, top, null, 0);
    $("tree").replaceChildren(top);
    refreshDerived();
  }

  function applyDelta({ changed, removed }) {
    for (const path of removed) {
      const entry = state.nodes.get(path);
      if (!entry) continue;
      entry.li.remove();
      state.nodes.delete(path);
    }
    for (const node of changed) {
      let entry = state.nodes.get(node.path);
      if (entry) {
        const before = entry.data;
        entry.data = node;
        fillRow(entry);
        if (node.restarts.total > before.restarts.total) flash(entry.li);
      } else {
        entry = makeNode(node);
      }
      place(entry);
    }
    refreshDerived();
  }

  function makeNode(data) {
    const entry = { data, li: el("li", { className: "node" }), row: el("div", { className: "node-row" }), kids: el("ul") };
    entry.li.append(entry.row, entry.kids);
    state.nodes.set(data.path, entry);
    fillRow(entry);
    return entry;
  }

  /** Puts a node where the server says it is among its siblings. */
  function place(entry) {
    const { parent, position } = entry.data;
    const owner = parent === null || parent === undefined ? null : state.nodes.get(parent);
    if (!owner) return; // the root, or an orphan the next full tree puts right
    const siblings = owner.kids.children;
    if (siblings[position] !== entry.li) owner.kids.insertBefore(entry.li, siblings[position] || null);
  }

  function fillRow(entry) {
    const data = entry.data;
    entry.li.dataset.path = data.path;
    entry.li.dataset.state = data.state;
    const restarts = data.restarts || { total: 0, in_period: 0 };
    const info = describe(data.info);
    entry.row.replaceChildren(...[
      el("span", { className: "dot" }),
      el("span", { className: "name", title: data.path || "root" }, data.id),
      el("span", { className: "kind" }, data.kind),
      el("span", { className: "state" }, data.state),
      el("span", { className: "info", title: info }, info),
      el("span", { className: "figures", title: "restarts: total (within the intensity period) · mailbox depth" },
        `↻ ${restarts.total} (${restarts.in_period}) · ✉ ${data.mailbox_depth}`),
      data.path === "" ? null : el("button", {
        type: "button", className: "small danger crash",
        title: `make ${data.path} crash on its next message (a rehearsal)`,
        onclick: () => crash(data.path),
      }, "crash"),
    ].filter(Boolean));
  }

  function describe(info) {
    return Object.entries(info || {})
      .filter(([, value]) => value !== null && typeof value !== "object")
      .map(([key, value]) => `${key}=${value}`)
      .join(" · ");
  }

  function flash(li) {
    li.classList.remove("restarted");
    void li.offsetWidth; // restart the animation
    li.classList.add("restarted");
    li.addEventListener("animationend", () => li.classList.remove("restarted"), { once: true });
  }

  async function crash(path) {
    const response = await api("POST", "/admin/faults",
      { body: JSON.stringify({ path, kind: "crash" }), type: "application/json" });
    if (response.status === 202) notice("tree-notice", `${path} will crash on its next message.`, "ok");
    else notice("tree-notice", `Crash refused: ${await errorText(response)}`, "bad");
  }

  // -- what the tree says: breakers, limiters, the overall status ------------------------

  /** The direct children of ``prefix``, each with its info ({} until it shows some). */
  function nodesUnder(prefix) {
    return [...state.nodes.values()]
      .map((entry) => entry.data)
      .filter((data) => data.path.startsWith(prefix) && !data.path.slice(prefix.length).includes("/"))
      .map((data) => ({ ...data, info: data.info || {} }));
  }

  function refreshDerived() {
    const breakers = nodesUnder("outbound/breakers/").filter((data) => data.info.circuit);
    $("breakers").tBodies[0].replaceChildren(...breakers.map((data) => el("tr", { dataset: { path: data.path } },
      el("td", {}, data.id),
      el("td", {}, el("span", { className: "circuit", dataset: { circuit: data.info.circuit } }, data.info.circuit)),
      el("td", { className: "next-probe", title: data.info.next_probe_at || "" }, nextProbe(data)),
    )));
    const limiters = nodesUnder("outbound/limiters/");
    $("limiters").tBodies[0].replaceChildren(...limiters.map((data) => el("tr", { dataset: { path: data.path } },
      el("td", {}, data.id),
      el("td", {}, data.info.rate_per_s ?? "–"),
      el("td", {}, data.info.permits ?? 0),
      el("td", {}, data.info.waited_s === undefined ? "–" : `${data.info.waited_s} s`),
      el("td", { className: "tier" }, tierUse(data.info)),
    )));
    refreshStatus(breakers);
  }

  // Unique users reached in the moving 24 hours, against the number's tier.
  function tierUse(info) {
    if (info.tier === undefined) return "–";
    const limit = info.tier_limit === null ? "∞" : info.tier_limit;
    return `${info.tier_users ?? 0} / ${limit} (${info.tier})`;
  }

  function nextProbe(data) {
    const at = data.info.next_probe_at;
    return data.info.circuit === "closed" || !at ? "–" : when(Date.parse(at));
  }

  function refreshStatus(breakers) {
    const all = [...state.nodes.values()].map((entry) => entry.data);
    const root = state.nodes.get("");
    if (!root || root.data.state !== "running") {
      setLevel($("status"), "bad", `Tree ${root ? root.data.state : "missing"}`);
      return;
    }
    const down = all.filter((data) => BAD_STATES.has(data.state)).length;
    const moving = all.filter((data) => data.state === "starting" || data.state === "restarting").length;
    const open = breakers.filter((data) => data.info.circuit === "open").length;
    const halfOpen = breakers.filter((data) => data.info.circuit === "half_open").length;
    const parts = [];
    if (down) parts.push(`${down} stopped`);
    if (moving) parts.push(`${moving} restarting`);
    if (open) parts.push(`${open} breaker${open > 1 ? "s" : ""} open`);
    if (halfOpen) parts.push(`${halfOpen} half-open`);
    const level = down || open ? "bad" : moving || halfOpen ? "warn" : "ok";
    setLevel($("status"), level, parts.length ? parts.join(" · ") : `All running (${all.length} actors)`);
  }

  // -- counts, the DLQ, quarantine -----------------------------------------------------

  function onCounts({ dlq, quarantine, lag, lag_s, in_flight, stalled }) {
    $("count-dlq").textContent = dlq;
    $("count-quarantine").textContent = quarantine;
    $("count-lag").textContent = lag ? `${lag} (${Math.round(lag_s)} s)` : "0";
    $("count-in-flight").textContent = in_flight;
    $("backlog").dataset.level = stalled ? "bad" : lag ? "warn" : "ok";
    $("backlog").title = stalled || "journal entries not yet processed (age of the oldest) · updates in flight to the shards";
    const before = state.counts;
    state.counts = { dlq, quarantine };
    if (dlq !== before.dlq) guard(loadDlq)();
    if (quarantine !== before.quarantine) guard(loadQuarantine)();
  }

  const reloading = new Set();
  /** Runs ``loader`` once shortly, however many events asked for it meanwhile. */
  function reloadSoon(loader) {
    if (reloading.has(loader)) return;
    reloading.add(loader);
    setTimeout(() => { reloading.delete(loader); guard(loader)(); }, RELOAD_DELAY_MS);
  }

  async function loadDlq() {
    const response = await api("GET", "/admin/dlq");
    if (!response.ok) {
      notice("dlq-notice", `Could not list: ${await errorText(response)}`, "bad");
      return;
    }
    const { entries } = await response.json();
    $("dlq").tBodies[0].replaceChildren(...entries.map(dlqRow));
    $("dlq-empty").hidden = entries.length > 0;
  }

  function dlqRow(entry) {
    const error = entry.error
      ? [entry.error.code, entry.error.title || entry.error.message].filter((x) => x !== null && x !== undefined).join(" ")
      : "";
    return el("tr", { dataset: { id: entry.id } },
      el("td", { title: new Date(entry.at * 1000).toISOString() }, when(entry.at * 1000)),
      el("td", {}, entry.tenant),
      el("td", { className: "nowrap", title: `message ${entry.id}, attempts ${entry.attempts}` }, masked(entry.to)),
      el("td", {}, el("b", {}, entry.reason), error ? ` · ${error}` : ""),
      el("td", { className: "actions" },
        el("button", { type: "button", className: "small replay", onclick: () => replay(entry.id) }, "Replay"),
        " ",
        el("button", { type: "button", className: "small danger delete", onclick: (event) => drop(entry.id, event.currentTarget) }, "Delete"),
      ),
    );
  }

  async function replay(id) {
    const response = await api("POST", `/admin/dlq/${encodeURIComponent(id)}/replay`);
    if (response.status === 202) notice("dlq-notice", `Replayed ${short(id)}: back to pending.`, "ok");
    else notice("dlq-notice", `Replay refused: ${await errorText(response)}`, "bad");
    await loadDlq();
  }

  /** Deletes on a second click (no modal dialog: operators keep their flow). */
  async function drop(id, button) {
    if (button.dataset.armed !== "yes") {
      button.dataset.armed = "yes";
      button.textContent = "Confirm delete";
      setTimeout(() => { button.dataset.armed = ""; button.textContent = "Delete"; }, 4000);
      return;
    }
    const response = await api("DELETE", `/admin/dlq/${encodeURIComponent(id)}`);
    if (response.status === 204) notice("dlq-notice", `Deleted ${short(id)} for good.`, "ok");
    else notice("dlq-notice", `Delete refused: ${await errorText(response)}`, "bad");
    await loadDlq();
  }

  async function loadQuarantine() {
    const response = await api("GET", "/admin/quarantine");
    if (!response.ok) return;
    const { entries, media } = await response.json();
    const rows = [
      ...entries.map((entry) => [entry.at, el("tr", {},
        el("td", {}, when(entry.at * 1000)),
        el("td", {}, `webhook · number ${entry.phone_number_id ?? "?"}`),
        el("td", {}, entry.reason),
        el("td", {}, el("details", {}, el("summary", {}, "data"),
          el("pre", {}, JSON.stringify(entry.data, null, 2)))),
      )]),
      ...media.map((item) => [item.at, el("tr", {},
        el("td", {}, when(item.at * 1000)),
        el("td", {}, `media · ${item.tenant} · ${item.mime_type ?? "?"}`),
        el("td", {}, item.reason ? `${item.verdict}: ${item.reason}` : item.verdict),
        el("td", {}, `${item.size ?? "?"} bytes · scanner ${item.scanner ?? "–"}`),
      )]),
    ].sort((a, b) => b[0] - a[0]).map(([, row]) => row);
    $("quarantine").tBodies[0].replaceChildren(...rows);
    $("quarantine-empty").hidden = rows.length > 0;
  }

  // -- the feed ------------------------------------------------------------------------

  /** Feed frames are drawn in batches (busy gateways send thousands a second),
   * and only the newest FEED_MAX are ever kept. */
  const pendingFeed = [];
  let feedTimer = null;

  function onFeed(tenant, event) {
    // Counts are samples: a dead letter replayed and another one made between two
    // of them leave the count as it was. The events say so at once.
    if (event.type === "outbound.failed") reloadSoon(loadDlq);
    if (event.type === "media.scanned" && event.data && event.data.verdict !== "clean") reloadSoon(loadQuarantine);
    pendingFeed.push([tenant, event]);
    if (pendingFeed.length > FEED_MAX) pendingFeed.splice(0, pendingFeed.length - FEED_MAX);
    if (feedTimer === null) feedTimer = setTimeout(guard(drawFeed), FEED_BATCH_MS);
  }

  function drawFeed() {
    feedTimer = null;
    const rows = pendingFeed.splice(0).reverse().map(([tenant, event]) => {
      const kind = event.type.endsWith(".failed") ? "failed" : event.type.startsWith("circuit.") ? "circuit" : "";
      return el("li", { dataset: { kind, tenant, type: event.type } },
        el("span", { className: "at" }, when(Date.parse(event.at))),
        el("span", { className: "tenant" }, tenant),
        el("span", { className: "type" }, event.type),
        el("span", { className: "summary" }, summarize(event)));
    });
    const list = $("feed");
    list.prepend(...rows);
    while (list.children.length > FEED_MAX) list.lastElementChild.remove();
  }

  function summarize(event) {
    const data = event.data || {};
    if (event.type === "circuit.changed") return `${data.from} → ${data.to} · ${data.phone_number_id}`;
    const facts = FEED_KEYS
      .filter((key) => data[key] !== null && data[key] !== undefined && typeof data[key] !== "object")
      .map((key) => `${key}=${data[key]}`);
    const numbers = NUMBER_KEYS
      .filter((key) => typeof data[key] === "string" && data[key])
      .map((key) => `${key}=${masked(data[key])}`);
    return [`#${event.seq}`, ...facts, ...numbers].join(" · ");
  }

  // -- the config editor ------------------------------------------------------------------

  function configStatus(text, level) {
    const status = $("config-status");
    status.textContent = text;
    status.classList.toggle("pill", Boolean(level));
    status.dataset.level = level || "";
  }

  async function loadConfig() {
    const response = await api("GET", "/admin/config?format=toml");
    if (!response.ok) {
      configStatus(`Could not load: ${await errorText(response)}`, "bad");
      return;
    }
    $("config-text").value = await response.text();
    $("config-errors").replaceChildren();
    $("config-changes").replaceChildren();
    configStatus("The running configuration.", "");
  }

  const shown = (value) => (typeof value === "string" ? value : JSON.stringify(value));

  async function saveConfig() {
    const save = $("config-save");
    save.disabled = true;
    $("config-errors").replaceChildren();
    $("config-changes").replaceChildren();
    configStatus("Saving…", "");
    try {
      const response = await api("PUT", "/admin/config",
        { body: $("config-text").value, type: "application/toml" });
      if (response.status === 200) {
        const { changes, not_adopted: notAdopted = [] } = await response.json();
        configStatus(changes.length ? `Applied ${changes.length} change(s).` : "Saved: nothing changed.",
          notAdopted.length ? "warn" : "ok");
        $("config-changes").replaceChildren(
          ...changes.map((change) => el("li", { className: "config-change" },
            el("code", {}, change.key), `: ${shown(change.from)} → ${shown(change.to)}`)),
          ...notAdopted.map((path) => el("li", { className: "config-not-adopted" },
            el("code", {}, path), " could not adopt the change: see the log")));
      } else if (response.status === 422) {
        const { errors } = await response.json();
        configStatus(`Not applied (${errors.length} error${errors.length > 1 ? "s" : ""}); the running config is unchanged.`, "bad");
        $("config-errors").replaceChildren(...errors.map((error) => el("li", { className: "config-error" },
          el("code", {}, error.key || "(whole file)"), " ",
          el("span", { className: "reason" }, error.reason),
          error.file ? el("span", { className: "file" }, ` — ${error.file}`) : null)));
      } else {
        configStatus(`Not applied: ${await errorText(response)}`, "bad");
      }
    } finally {
      save.disabled = false;
    }
  }

  // -- wiring ---------------------------------------------------------------------------

  $("login-form").addEventListener("submit", guard((event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) return undefined;
    $("token").value = "";
    sessionStorage.setItem(TOKEN_KEY, token);
    state.token = token;
    return start();
  }));
  $("sign-out").addEventListener("click", () => signOut(""));
  $("config-reload").addEventListener("click", guard(loadConfig));
  $("config-save").addEventListener("click", guard(saveConfig));

  if (state.token) guard(start)();
  else showLogin("");
})();
