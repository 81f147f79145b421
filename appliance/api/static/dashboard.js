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
  const POLL_MS = 2000;
  let pending = null;

  async function getJSON(path) {
    const r = await fetch(path, { cache: "no-store" });
    return { status: r.status, body: await r.json() };
  }

  // How the station learned the load a phone runs (API load_source); cdp/lldp are the phone's own claim.
  const SOURCES = { step: "installed here", settled: "took its config", web: "its web page",
                    cdp: "CDP announcement", lldp: "LLDP-MED announcement", other: "reported" };

  function sourceLine(p) {
    if (!p.current_load || !p.load_source) return null;
    const line = el("div", "loads source", "runs " + p.current_load + " (" + (SOURCES[p.load_source] || p.load_source) + ")");
    line.dataset.source = p.load_source;
    return line;
  }

  function stepCell(p) {
    const td = el("td");
    const source = sourceLine(p);
    if (!p.steps) {
      if (p.current_load) {                      // nothing left to install: say what it runs
        td.appendChild(el("div", null, "on"));
        td.appendChild(el("div", "loads", p.current_load));
        if (source) td.appendChild(source);
      } else {
        td.appendChild(el("span", "muted", "no plan yet"));
      }
      return td;
    }
    const k = Math.min(p.step + 1, p.steps);
    td.appendChild(el("div", null, "step " + k + "/" + p.steps));
    const loads = el("div", "loads");
    p.plan.forEach((name, i) => {
      if (i) loads.appendChild(document.createTextNode(" → "));
      loads.appendChild(el("span", i === p.step ? "current" : null, name));
    });
    td.appendChild(loads);
    if (source) td.appendChild(source);
    return td;
  }

  function transferCell(p) {
    const td = el("td");
    const t = p.transfer;
    if (!t) { td.appendChild(el("span", "muted", "—")); return td; }
    td.appendChild(el("div", "loads", t.file));
    const bar = el("div", "bar");
    const fill = el("div");
    const pct = t.total ? Math.min(100, Math.round(100 * t.bytes / t.total)) : 0;
    fill.style.width = pct + "%";
    bar.appendChild(fill);
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuenow", String(pct));
    td.appendChild(bar);
    td.appendChild(el("div", "loads", fmtBytes(t.bytes) + (t.total ? " of " + fmtBytes(t.total) + " (" + pct + "%)" : "")));
    return td;
  }

  function renderPhones(phones) {
    const body = document.querySelector("#phones tbody");
    const rows = phones.map((p) => {
      const tr = el("tr");
      tr.dataset.mac = p.mac;
      const model = el("td", null, p.model || "unknown model");
      if (p.hostname) model.appendChild(el("div", "loads", p.hostname));
      if (p.vendor_class) model.appendChild(el("div", "loads", p.vendor_class));
      tr.appendChild(model);
      tr.appendChild(el("td", "mac", p.mac.match(/../g).join(":")));
      tr.appendChild(el("td", null, p.ip || "—"));
      tr.appendChild(stepCell(p));
      tr.appendChild(transferCell(p));
      const st = el("td");
      st.appendChild(el("div", "state-" + String(p.state).replace(/[^a-z]/g, ""), p.state_words));
      if (p.diagnosis) st.appendChild(el("div", "diag", p.diagnosis));
      tr.appendChild(st);
      return tr;
    });
    body.replaceChildren(...rows);
    $("no-phones").hidden = phones.length > 0;
    $("phone-count").textContent = phones.length ? "(" + phones.length + ")" : "";
  }

  function renderHealth(status, h) {
    const pill = $("health");
    pill.textContent = h.ok ? "all services up" : "degraded";
    pill.className = "pill " + (h.ok ? "ok" : "bad");
    const down = h.services.filter((s) => s.expected && s.status !== "up");
    const sb = $("services-banner");
    sb.hidden = down.length === 0;
    sb.textContent = down.map((s) => s.name + " is " + s.status + (s.last_error ? ": " + s.last_error : "")).join(" · ");
    const g = h.guard || {};
    const gb = $("guard-banner");
    if (g.status === "refusing" || g.status === "warning") {
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
      pl.className = p.exhausted ? "banner" : "muted";
      pl.textContent = (p.exhausted ? "No address left for a new phone: unplug other devices or widen the DHCP pool. " : "") +
        "Addresses: " + p.phones + " phones, " + p.others + " other devices (at most " + p.others_share + "), " +
        p.quarantined + " quarantined, " + p.free + " free of " + p.size + ".";
    }
  }

  function renderFirmware(fw) {
    const list = $("fw-incomplete");
    if (!fw.available) {
      $("fw-summary").textContent = "Firmware catalog unavailable: " + (fw.reason || "unknown reason");
      list.replaceChildren();
      return;
    }
    const bad = fw.loads.filter((l) => !l.complete);
    const noTerm = fw.loads.filter((l) => l.complete && (l.terms_missing || []).length);
    $("fw-summary").textContent = fw.loads.length + " load(s) in " + fw.root + "; " +
      (bad.length ? bad.length + " incomplete:" : "all complete") + (noTerm.length && !bad.length ? ":" : "");
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

  function connect() {
    if (!window.EventSource) { $("live").textContent = "polling"; return; }
    const es = new EventSource("/api/v1/events");
    es.onopen = () => { $("live").textContent = "live"; $("live").className = "pill ok"; };
    es.onerror = () => { $("live").textContent = "reconnecting"; $("live").className = "pill muted"; };
    es.onmessage = soon;
    ["dhcp.ack", "dhcp.offer", "dhcp.guard", "file.request", "file.done", "phone.state", "PHONE_STATE", "phone.load",
     "firmware.changed"].forEach((k) => es.addEventListener(k, soon));
  }

  refresh();
  setInterval(refresh, POLL_MS);
  connect();
})();
