// Dashboard: polls the JSON API and refreshes at once when the event stream says something happened.
// Every value from the network goes in through textContent, never innerHTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };
  const fmtBytes = (n) => n >= 1048576 ? (n / 1048576).toFixed(1) + " MB" : n >= 1024 ? Math.round(n / 1024) + " kB" : n + " B";
  const fmtMac = (m) => /^[0-9a-f]{12}$/i.test(m) ? m.match(/../g).join(":") : String(m);
  const LIVE_POLL_MS = 2000;      // health and the pool publish no events: polled even while the stream is live
  const PAUSED_POLL_MS = 5000;    // the stream was refused because many dashboards are open: ask less often
  const TOKEN_KEY = "recovery-station-token";
  let pollMs = LIVE_POLL_MS;
  let timer = null;
  let pending = null;
  let lastPhones = [];
  let shown = "";                 // what the phone table shows now: it is rebuilt only when that changes
  const notes = {};               // mac -> {text, cls}: what became of the last button pressed on that row
  let asked = null;               // the action waiting for the token: {kind, mac}
  let memoryToken = "";           // the token when this browser keeps no sessionStorage (until the page reloads)

  async function getJSON(path) {
    const r = await fetch(path, { cache: "no-store" });
    return { status: r.status, body: await r.json() };
  }

  // ---- phones ----------------------------------------------------------------------------------------------
  // Stuck first (they need the tech), then those on their way, those waiting for a restart, the recovered.
  const GROUPS = ["stuck", "progress", "waiting", "recovered"];
  const group = (p) => p.state === "stuck" ? "stuck" : p.state === "waiting" ? "waiting"
    : p.state === "done" ? "recovered" : "progress";
  const byGroupThenMac = (a, b) => (GROUPS.indexOf(group(a)) - GROUPS.indexOf(group(b))) ||
    (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0);

  // How the station learned the load a phone runs (API load_source); cdp/lldp are the phone's own claim.
  const SOURCES = { step: "installed here", settled: "took its config", web: "its web page",
                    cdp: "CDP announcement", lldp: "LLDP-MED announcement", agent: "its HTTP User-Agent",
                    other: "reported" };
  // The kind of firmware a load is (API firmware/target_firmware) and a conversion's result (API conversion).
  const FIRMWARE = { enterprise: "Enterprise firmware", mpp: "MPP (multiplatform) firmware",
                     transition: "transition load (Enterprise to MPP)" };
  const CONVERSION = { converted: "converted", converting: "converting", refused: "conversion refused" };

  const loadName = (name, cls) => {
    const s = el("span", "load" + (cls ? " " + cls : ""), name);
    s.title = String(name);       // an ID too long for its column ends in an ellipsis, never breaks mid-name
    return s;
  };

  function labelled(label, ...children) {
    const td = el("td");
    td.dataset.label = label;
    const v = el("div", "v");
    children.filter(Boolean).forEach((c) => v.appendChild(c));
    td.appendChild(v);
    return td;
  }

  function nextAction(p) {
    const g = group(p);
    if (g === "stuck") return p.diagnosis || "look at the phone's screen for the message it shows";
    if (g === "waiting") return p.diagnosis || "restart it (unplug power)";
    if (g === "recovered") return "nothing: it runs its target; unplug it when you like";
    return "nothing: it moves on by itself";
  }

  function stateCell(p) {
    const g = group(p);
    const words = el("div", "state state-" + String(p.state).replace(/[^a-z]/g, ""), p.state_words);
    const next = el("div", "next");
    next.appendChild(el("span", "tag", "Next: "));
    next.appendChild(document.createTextNode(nextAction(p)));
    const then = g === "stuck" ? el("div", "then", "When that is done, press Retry.") : null;
    const note = (g === "progress" || g === "recovered") && p.diagnosis ? el("div", "diag", p.diagnosis) : null;
    return labelled("State", words, next, then, note);
  }

  function planCell(p) {
    const how = p.load_source ? " (" + (SOURCES[p.load_source] || p.load_source) + ")" : "";
    if (!p.steps) {
      if (p.current_load) {                    // nothing left to install: say what it runs, and how we know
        const on = el("div", null, "nothing to install; runs ");
        on.appendChild(loadName(p.current_load, "current"));
        on.appendChild(document.createTextNode(how));
        if (p.load_source) on.dataset.source = p.load_source;
        return labelled("Plan", on);
      }
      return labelled("Plan", el("span", "muted", "no plan yet"));
    }
    const source = p.current_load && p.load_source ? el("div", "small", "runs ") : null;
    if (source) {
      source.appendChild(loadName(p.current_load));
      source.appendChild(document.createTextNode(how));
      source.dataset.source = p.load_source;
    }
    const k = Math.min(p.step + 1, p.steps);
    const where = p.step >= p.steps ? (p.steps === 1 ? "its one step done" : "all " + p.steps + " steps done")
      : "step " + k + " of " + p.steps;
    const loads = el("div", "loads");
    p.plan.forEach((name, i) => {
      if (i) loads.appendChild(document.createTextNode(" → "));
      loads.appendChild(loadName(name, i === p.step ? "current" : null));
    });
    return labelled("Plan", el("div", null, where), loads, source);
  }

  function duration(s) {
    s = Math.max(1, Math.round(s));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0") + " s";
    return Math.floor(s / 3600) + " h " + String(Math.floor(s / 60) % 60).padStart(2, "0") + " min";
  }

  function bar(pct) {
    const b = el("div", "bar");
    const fill = el("div");
    fill.style.width = pct + "%";
    b.appendChild(fill);
    b.setAttribute("role", "progressbar");
    b.setAttribute("aria-valuenow", String(pct));
    return b;
  }

  const IDLE = { recovered: "complete", stuck: "stopped", waiting: "nothing to fetch until it restarts" };

  function progressCell(p) {
    const g = p.progress;
    const t = p.transfer;
    if (g && g.total) {
      const pct = Math.min(100, Math.floor(100 * g.bytes / g.total));
      const left = g.bytes >= g.total ? "all files sent"
        : g.eta == null ? "time left not known yet" : "about " + duration(g.eta) + " left";
      const line = el("div", "small", fmtBytes(g.bytes) + " of " + fmtBytes(g.total) + " (" + pct + "%)");
      const when = el("div", "left", left + (g.rate && g.bytes < g.total ? " at " + fmtBytes(g.rate) + "/s" : ""));
      const b = bar(pct);
      b.dataset.whole = "load";
      const file = t ? el("div", "small file", "file " + t.file) : null;
      if (file) file.title = String(t.file);
      const head = el("div", "small", "load ");
      head.appendChild(loadName(g.load));
      head.appendChild(document.createTextNode(", " + g.files_done + " of " + g.files + " files"));
      return labelled("Progress", head, b, line, when, file);
    }
    if (t) {                                   // a file outside any load the catalog knows (a config, a term file)
      const pct = t.total ? Math.min(100, Math.round(100 * t.bytes / t.total)) : 0;
      const file = el("div", "small file", "file " + t.file);
      file.title = String(t.file);
      return labelled("Progress", file, bar(pct),
        el("div", "small", fmtBytes(t.bytes) + (t.total ? " of " + fmtBytes(t.total) + " (" + pct + "%)" : "")));
    }
    const idle = IDLE[group(p)] || (p.state === "rebooting" ? "all files sent; it is installing" : "not downloading now");
    return labelled("Progress", el("span", "muted", idle));
  }

  function actionsCell(p) {
    const td = el("td", "act");
    const retry = el("button", "retry", "Retry");
    retry.type = "button";
    retry.dataset.action = "retry";
    retry.dataset.mac = p.mac;
    retry.title = "start this phone's plan again";
    const forget = el("button", "forget quiet", "Forget lease");
    forget.type = "button";
    forget.dataset.action = "forget";
    forget.dataset.mac = p.mac;
    forget.title = "free its address; it gets a new one when it asks";
    td.appendChild(retry);
    td.appendChild(forget);
    const n = notes[p.mac];
    if (n) td.appendChild(el("div", "note " + n.cls, n.text));
    return td;
  }

  function phoneRow(p) {
    const tr = el("tr", "g-" + group(p));
    tr.dataset.mac = p.mac;
    tr.dataset.group = group(p);
    const who = el("td", "who");
    who.appendChild(el("div", "model", p.model || "unknown model"));
    if (p.vid) {                              // hardware version from its page: the floors depend on it
      const v = el("div", "small vid", "hardware " + p.vid);
      v.title = "hardware version (VID) read from the phone's web page";
      who.appendChild(v);
    }
    // Enterprise or MPP beside the load, where it can be either (an MPP or transition load, an MPP target, a
    // conversion); a conversion is its own result.  A 79xx runs Enterprise firmware only: nothing to say.
    const kinds = [p.firmware, p.target_firmware];
    if (p.conversion || kinds.includes("mpp") || kinds.includes("transition")) {
      const kind = FIRMWARE[p.firmware] || "firmware unknown";
      const to = p.conversion && p.target_firmware && p.target_firmware !== p.firmware
        ? " → " + (FIRMWARE[p.target_firmware] || p.target_firmware) : "";
      const f = el("div", "small firmware", kind + to);
      f.dataset.firmware = p.firmware || "";
      who.appendChild(f);
      if (p.conversion) {
        const c = el("div", "small conversion", CONVERSION[p.conversion] || p.conversion);
        c.dataset.conversion = p.conversion;
        who.appendChild(c);
      }
    }
    who.appendChild(el("div", "mac", fmtMac(p.mac)));
    [p.hostname, p.vendor_class].filter(Boolean).forEach((text) => {
      const d = el("div", "small host", text);
      d.title = String(text);                   // cut to one line here; whole on hover
      who.appendChild(d);
    });
    tr.appendChild(who);
    tr.appendChild(stateCell(p));
    tr.appendChild(planCell(p));
    tr.appendChild(progressCell(p));
    tr.appendChild(labelled("Address", el("span", p.ip ? "ip" : "muted", p.ip || "no address yet")));
    tr.appendChild(actionsCell(p));
    return tr;
  }

  function renderPhones(phones) {
    lastPhones = phones;
    const sorted = phones.slice().sort(byGroupThenMac);
    const counts = { stuck: 0, progress: 0, waiting: 0, recovered: 0 };
    sorted.forEach((p) => { counts[group(p)] += 1; });
    GROUPS.forEach((g) => {
      const li = document.querySelector('#summary [data-group="' + g + '"]');
      li.querySelector(".n").textContent = String(counts[g]);
      li.classList.toggle("zero", counts[g] === 0);
    });
    $("no-phones").hidden = phones.length > 0;
    $("phone-count").textContent = phones.length ? "(" + phones.length + ")" : "";
    const now = JSON.stringify([sorted, notes]);
    if (now === shown) return;                 // nothing changed: keep the rows (and whatever has focus)
    shown = now;
    document.querySelector("#phones tbody").replaceChildren(...sorted.map(phoneRow));
  }

  // ---- writes: retry and forget, with the station token --------------------------------------------------
  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }

  function setToken(t) {
    try {
      if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage off: the token lasts until the page reloads */ }
    memoryToken = t;
    showTokenState();
  }
  const currentToken = () => token() || memoryToken;

  function showTokenState() {
    const has = Boolean(currentToken());
    $("token-state").hidden = !has;
    $("token-words").textContent = has ? "Station token entered (kept in this tab only, until it closes)." : "";
  }

  function note(mac, cls, text) {
    notes[mac] = { cls: cls, text: text };
    shown = "";
    renderPhones(lastPhones);
  }

  const WHAT = { retry: "Retry", forget: "Forget lease" };

  function askToken(kind, mac, why) {
    asked = { kind: kind, mac: mac };
    $("token-why").textContent = why;
    const form = $("token-form");
    form.hidden = false;
    form.scrollIntoView({ block: "nearest" });
    $("token-input").value = "";
    $("token-input").focus();
  }

  async function write(kind, mac) {
    const t = currentToken();
    if (!t) {
      note(mac, "warn", "Not sent: " + WHAT[kind] + " needs the station token. Enter it above.");
      askToken(kind, mac, WHAT[kind] + " for " + fmtMac(mac) + " needs the station token (the [api] token " +
        "in the station's config, or APPLIANCE_API_TOKEN). It is asked once and kept in this tab only.");
      return;
    }
    let headers;
    try {
      headers = new Headers({ Authorization: "Bearer " + t });
    } catch (e) {                              // a character no HTTP header can carry: it cannot be the token
      setToken("");
      note(mac, "bad", "Not sent: the token has characters a station token never has. Enter it again above.");
      askToken(kind, mac, "That token cannot be right (it has characters no token has). Enter the station token.");
      return;
    }
    const path = kind === "retry" ? "/api/v1/phones/" + encodeURIComponent(mac) + "/retry"
      : "/api/v1/leases/" + encodeURIComponent(mac);
    note(mac, "muted", WHAT[kind] + ": sending…");
    let r;
    let body = {};
    try {
      r = await fetch(path, { method: kind === "retry" ? "POST" : "DELETE", headers: headers, cache: "no-store" });
      body = await r.json().catch(() => ({}));
    } catch (e) {
      note(mac, "bad", WHAT[kind] + " not sent: the station did not answer. Check the cable to the station, then press again.");
      return;
    }
    const said = typeof body.error === "string" ? body.error : "";
    if (r.status === 202) {
      note(mac, "ok", kind === "retry" ? "Retry sent: the station starts this phone's plan again within a few seconds."
        : "Lease freed: the address goes back to the pool; the device gets a new one when it next asks.");
    } else if (r.status === 401) {
      setToken("");
      note(mac, "bad", "Refused: the station did not accept that token. Enter the right one above, then press " +
        WHAT[kind] + " again.");
      askToken(kind, mac, "The station refused that token. Enter the [api] token from the station's config.");
    } else if (r.status === 403) {
      note(mac, "bad", "Refused: " + said);
    } else if (r.status === 404 && kind === "forget" && said.startsWith("no lease")) {
      note(mac, "bad", "Nothing to forget: the station holds no address for this device.");
    } else if (r.status === 404 && kind === "retry" && said.startsWith("no phone")) {
      note(mac, "bad", "The station no longer knows this phone: it shows up again when it asks for an address.");
    } else {
      note(mac, "bad", "Refused (" + r.status + "): " + (said || "the station gave no reason"));
    }
    soon();
  }

  function tokenSubmitted(ev) {
    ev.preventDefault();
    const t = $("token-input").value.trim();
    if (!t) {
      $("token-why").textContent = "Enter the station token, or press Cancel.";
      return;
    }
    setToken(t);
    $("token-form").hidden = true;
    const a = asked;
    asked = null;
    if (!a) return;
    write(a.kind, a.mac).then(() => {          // the tech pressed the button already: carry it out now,
      const row = [...document.querySelectorAll("#phones tbody tr")].find((tr) => tr.dataset.mac === a.mac);
      if (row) row.scrollIntoView({ block: "nearest" });   // and bring its row (and what became of it) back
    });
  }

  function tokenCancelled() {
    $("token-form").hidden = true;
    if (asked) note(asked.mac, "warn", WHAT[asked.kind] + " not sent: no token entered.");
    asked = null;
  }

  // ---- health, problems, firmware ------------------------------------------------------------------------
  // At phone width each problem is its `what`, with its `do` one tap away, so the stuck phones stay on screen.
  const narrow = window.matchMedia("(max-width: 640px)");
  let problemsShown = "";
  let lastProblems = [];

  function renderProblems(problems) {
    lastProblems = problems;
    const now = JSON.stringify([problems, narrow.matches]);
    if (now === problemsShown) return;         // a details the tech opened stays open
    problemsShown = now;
    $("problems").replaceChildren(...problems.map((x) => {
      const red = x.severity !== "amber";       // an unknown severity is shown as the graver one
      const line = el(narrow.matches ? "details" : "div", "banner" + (red ? "" : " warn"));
      line.dataset.severity = red ? "red" : "amber";
      if (x.code) line.dataset.code = String(x.code);
      const what = el(narrow.matches ? "summary" : "span", "what", x.what || "a problem the station did not describe");
      line.appendChild(what);
      if (x.do) line.appendChild(el("span", "do", x.do));
      return line;
    }));
  }
  narrow.addEventListener("change", () => { problemsShown = ""; renderProblems(lastProblems); });

  function renderHealth(status, h) {
    // `problems` (what is wrong, what to do) is the one list of what stops the station; a station that does
    // not publish it yet gets the older separate guard, services and pool banners.
    const listed = Array.isArray(h.problems);
    const problems = listed ? h.problems.filter((x) => x && typeof x === "object") : [];
    renderProblems(problems);
    const red = problems.some((x) => x.severity !== "amber");
    const amber = problems.length > 0 && !red;
    const pill = $("health");
    pill.textContent = red ? "not working: see the red lines" : !h.ok ? "degraded" : amber ? "up, with warnings" : "all services up";
    pill.className = "pill " + (red || !h.ok ? "bad" : amber ? "warn" : "ok");
    const down = (h.services || []).filter((s) => s.expected && s.status !== "up");
    const sb = $("services-banner");
    sb.hidden = listed || down.length === 0;
    sb.textContent = down.map((s) => s.name + " is " + s.status + (s.last_error ? ": " + s.last_error : "")).join(" · ");
    const g = h.guard || {};
    const gb = $("guard-banner");
    if (!listed && (g.status === "refusing" || g.status === "warning")) {
      gb.hidden = false;
      gb.className = "banner" + (g.status === "warning" ? " warn" : "");
      gb.textContent = (g.status === "refusing" ? "DHCP is OFF: another DHCP server answers on this network: "
        : "Warning: another DHCP server answers on this network: ") + (g.servers || []).join(", ") +
        ". Unplug it or use a separate switch for the phones.";
    } else {
      gb.hidden = true;
    }
    const p = h.pool || {};
    const pl = $("pool-line");
    pl.hidden = p.size == null;
    if (p.size != null) {
      const alarm = p.exhausted && !listed;
      pl.className = alarm ? "banner" : "muted";
      pl.textContent = (alarm ? "No address left for a new phone: unplug other devices or widen the DHCP pool. " : "") +
        "Addresses: " + p.phones + " phones, " + p.others + " other devices (at most " + p.others_share + "), " +
        p.quarantined + " quarantined, " + p.free + " free of " + p.size + ".";
    }
  }

  function roleRow(r) {
    const tr = el("tr");
    tr.dataset.model = r.model;
    tr.dataset.protocol = r.protocol || "";
    tr.appendChild(el("td", "model", r.model));
    tr.appendChild(labelled("Protocol", el("span", null, String(r.protocol || "").toUpperCase())));
    let stone;
    if ((r.stones || []).length) {
      stone = el("div");
      r.stones.forEach((s, i) => {
        if (i) stone.appendChild(document.createTextNode(" → "));
        stone.appendChild(loadName(s, "stone"));
      });
    } else if (r.target && r.missing) {
      stone = el("div", "need", "missing: " + r.missing + " (needed only by phones on old loads)");
    } else {
      stone = el("span", "muted", r.target ? "none needed" : "—");
    }
    tr.appendChild(labelled("Stepping stone", stone));
    tr.appendChild(labelled("Target", r.target ? loadName(r.target, "target")
      : el("div", "need", "no complete load: " + (r.missing || "add one to the firmware library"))));
    return tr;
  }

  function renderFirmware(fw) {
    const list = $("fw-incomplete");
    const table = $("fw-models");
    if (!fw.available) {
      $("fw-summary").textContent = "Firmware catalog unavailable: " + (fw.reason || "unknown reason");
      list.replaceChildren();
      table.hidden = true;
      return;
    }
    const bad = fw.loads.filter((l) => !l.complete);
    const noTerm = fw.loads.filter((l) => l.complete && (l.terms_missing || []).length);
    $("fw-summary").textContent = fw.loads.length + " load(s) in " + fw.root + "; " +
      (bad.length ? bad.length + " incomplete:" : "all complete") + (noTerm.length && !bad.length ? ":" : "");
    const roles = Array.isArray(fw.models) ? fw.models : [];
    table.hidden = roles.length === 0;
    table.querySelector("tbody").replaceChildren(...roles.map(roleRow));
    list.replaceChildren(...bad.map((l) => {
      const li = el("li", null, l.name + " — missing: ");
      li.appendChild(el("span", "mac", l.missing.join(", ") || "files"));
      return li;
    }), ...noTerm.map((l) => {
      const li = el("li", null, l.name + " — factory-reset phones cannot start from it: no ");
      li.appendChild(el("span", "mac", l.terms_missing.join(", ")));
      return li;
    }));
  }

  async function refresh() {
    pending = null;
    try {
      const [phones, health, fw] = await Promise.all([getJSON("/api/v1/phones"), getJSON("/api/v1/health"),
        getJSON("/api/v1/firmware")]);
      renderPhones(phones.body.phones);
      renderHealth(health.status, health.body);
      renderFirmware(fw.body);
      document.body.dataset.updated = String(Date.now());
    } catch (e) {
      $("health").textContent = "station unreachable";
      $("health").className = "pill bad";
    }
  }

  function soon() { if (!pending) pending = setTimeout(refresh, 150); }

  function poll() {
    clearTimeout(timer);
    timer = setTimeout(() => { refresh(); poll(); }, pollMs);
  }

  // ---- live updates --------------------------------------------------------------------------------------
  function live(text, cls) { $("live").textContent = text; $("live").className = "pill " + cls; }

  function connect() {
    if (!window.EventSource) { live("refreshing every " + pollMs / 1000 + " s", "muted"); return; }
    const es = new EventSource("/api/v1/events");
    es.onopen = () => { pollMs = LIVE_POLL_MS; live("live", "ok"); };
    es.onerror = () => {
      if (es.readyState !== EventSource.CLOSED) { live("reconnecting", "muted"); return; }
      es.close();                              // refused (an HTTP error): EventSource never retries by itself
      refused();
    };
    es.onmessage = soon;
    ["dhcp.ack", "dhcp.offer", "dhcp.guard", "file.request", "file.done", "phone.state", "PHONE_STATE", "phone.load",
     "phone.retry", "lease.forget", "firmware.changed"].forEach((k) => es.addEventListener(k, soon));
  }

  // EventSource hides the status of a refused stream; a zero-length stream request shows it (503: too many
  // open streams, with Retry-After) without holding a slot.
  async function refused() {
    let wait = 10;
    try {
      const r = await fetch("/api/v1/events?duration=0", { cache: "no-store" });
      if (r.status === 503) {
        wait = Math.min(300, Math.max(5, parseInt(r.headers.get("Retry-After") || "30", 10) || 30));
        pollMs = PAUSED_POLL_MS;
        live("live updates paused (too many dashboards open); refreshing every " + PAUSED_POLL_MS / 1000 + " s", "warn");
        poll();
      } else {
        live("reconnecting", "muted");
        wait = 2;
      }
      if (r.body) r.body.cancel().catch(() => {});
    } catch (e) {
      live("station unreachable; trying again", "bad");
    }
    setTimeout(connect, wait * 1000);
  }

  document.querySelector("#phones tbody").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (b) write(b.dataset.action, b.dataset.mac);
  });
  $("token-form").addEventListener("submit", tokenSubmitted);
  $("token-cancel").addEventListener("click", tokenCancelled);
  $("token-drop").addEventListener("click", () => setToken(""));
  showTokenState();
  refresh();
  poll();
  connect();
})();
