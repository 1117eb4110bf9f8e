// The deployment page: rendered from the server's view, then kept live by server-sent
// events ("state" replaces the view, "logs" appends hook output as the agent sends it).
"use strict";

(function deploymentPage() {
  const initial = document.getElementById("initial-view");
  if (!initial) return;
  const actions = document.getElementById("actions");
  const csrf = actions.dataset.csrf;
  const deploymentId = actions.dataset.id;
  const hosts = new Map(); // target id -> {section, badge, list, events: Map}
  const chart = document.getElementById("traffic-chart");
  const chartTraffic = chart &&
    window.shipyardTrafficChart(chart, document.getElementById("traffic-split"));

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function seconds(start, end) {
    if (!start) return "";
    const s = Math.max(0, (end || Date.now() / 1000) - start);
    return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  }

  function setStatus(node, status) {
    node.textContent = status;
    node.className = `status s-${status}`;
  }

  function renderActions(view) {
    actions.replaceChildren();
    for (const action of view.actions) {
      const form = el("form", {
        method: "post",
        action: `/console/deployments/${encodeURIComponent(deploymentId)}/${action.name}`,
        "data-confirm": action.confirm,
        class: "inline",
      });
      form.append(el("input", { type: "hidden", name: "csrf", value: csrf }));
      const button = el("button", {
        type: "submit",
        id: `action-${action.name}`,
        disabled: !action.allowed,
        title: action.allowed ? action.confirm : `needs the ${action.needs} role`,
        text: action.label,
      });
      form.append(button);
      actions.append(form);
    }
  }

  function eventRow(host, event) {
    let row = host.events.get(event.lifecycleEventName);
    if (!row) {
      const badge = el("span", { class: "status" });
      const time = el("span", { class: "muted" });
      const bar = el("span", { class: "bar" });
      const diagnostics = el("p", { class: "notice", hidden: true });
      const log = el("pre", { class: "log", tabindex: "0" });
      const details = el("details", { hidden: true }, el("summary", { text: "Output" }), log);
      const item = el(
        "li",
        { "data-event": event.lifecycleEventName },
        el("span", { class: "event", text: event.lifecycleEventName }),
        badge, bar, time, diagnostics, details,
      );
      host.list.append(item);
      row = { item, badge, time, bar, diagnostics, log, details };
      host.events.set(event.lifecycleEventName, row);
    }
    return row;
  }

  function renderTargets(view) {
    const container = document.getElementById("targets");
    let longest = 1;
    for (const target of view.targets)
      for (const e of target.lifecycleEvents || target.events)
        if (e.startTime) longest = Math.max(longest, (e.endTime || Date.now() / 1000) - e.startTime);
    for (const target of view.targets) {
      let host = hosts.get(target.id);
      if (!host) {
        const badge = el("span", { class: "status" });
        const list = el("ol", { class: "timeline" });
        const section = el("section", { class: "host", "data-target": target.id },
          el("h3", {}, el("span", { text: target.id + " " }), badge), list);
        container.append(section);
        host = { section, badge, list, events: new Map() };
        hosts.set(target.id, host);
      }
      setStatus(host.badge, target.status);
      for (const event of target.events) {
        const row = eventRow(host, event);
        setStatus(row.badge, event.status);
        row.item.dataset.status = event.status;
        row.time.textContent = seconds(event.startTime, event.endTime);
        const share = event.startTime ? ((event.endTime || Date.now() / 1000) - event.startTime) / longest : 0;
        row.bar.style.width = `${Math.max(1, Math.round(share * 100))}%`;
        const diag = event.diagnostics;
        row.diagnostics.hidden = !diag || event.status !== "Failed";
        if (diag) row.diagnostics.textContent =
          `${diag.errorCode || "Failed"}: ${diag.message || ""}${diag.scriptName ? ` (${diag.scriptName})` : ""}`;
        if (event.status === "Failed") row.details.open = true;
      }
    }
  }

  function render(view) {
    setStatus(document.getElementById("status"), view.status);
    const health = view.health;
    const rule = health.rule || {};
    document.getElementById("health").textContent =
      `${health.healthy} of ${health.total} hosts healthy (minimum: ${rule.value} ${rule.type === "FLEET_PERCENT" ? "%" : "hosts"})`;
    const error = document.getElementById("error");
    error.hidden = !view.error;
    if (view.error) error.textContent = `${view.error.code}: ${view.error.message}`;
    document.getElementById("messages").replaceChildren(
      ...view.messages.map((m) => el("li", { text: m })));
    const rollback = document.getElementById("rollback");
    rollback.replaceChildren();
    const link = view.rollback.rollbackDeploymentId || view.rollback.rollbackTriggeringDeploymentId;
    if (link) {
      const text = view.rollback.rollbackDeploymentId ? "Rolled back by " : "Rolls back ";
      rollback.append(text, el("a", { href: `/console/deployments/${link}`, text: link }));
    } else if (view.rollback.rollbackMessage) {
      rollback.textContent = view.rollback.rollbackMessage;
    }
    renderActions(view);
    renderTargets(view);
    if (chartTraffic && view.traffic) chartTraffic(view.traffic);
  }

  function appendLogs(chunks) {
    for (const chunk of chunks) {
      const host = hosts.get(chunk.target);
      if (!host) continue;
      const row = eventRow(host, { lifecycleEventName: chunk.event });
      row.log.append(chunk.text);
      row.details.hidden = false;
    }
  }

  render(JSON.parse(initial.textContent));
  const note = document.getElementById("live-note");
  if (!window.EventSource) return;
  const source = new EventSource(`/console/deployments/${encodeURIComponent(deploymentId)}/stream`);
  source.addEventListener("open", () => { note.textContent = "live"; });
  source.addEventListener("error", () => { note.textContent = "reconnecting…"; });
  source.addEventListener("state", (e) => render(JSON.parse(e.data)));
  source.addEventListener("logs", (e) => appendLogs(JSON.parse(e.data)));
  source.addEventListener("signed-out", () => {
    source.close();
    window.location.assign("/console/login?expired=1");
  });
})();
