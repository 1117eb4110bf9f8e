// A function deployment's traffic on a chart: the target version's weight over time as
// an inline SVG step line (no chart library), drawn from the readings the page receives
// (the initial view, then every "state" event) on the server's clock, with the split
// as text beside it.
"use strict";

window.shipyardTrafficChart = function trafficChart(svg, split) {
  const NS = "http://www.w3.org/2000/svg";
  const [W, H, LEFT, RIGHT, TOP, BOTTOM] = [600, 200, 44, 12, 10, 26];
  const readings = []; // {at, weight}: one where the weight changed
  let latest = 0;

  function node(tag, attrs, text) {
    const n = document.createElementNS(NS, tag);
    for (const [name, value] of Object.entries(attrs)) n.setAttribute(name, value);
    if (text !== undefined) n.textContent = text;
    return n;
  }

  const y = (weight) => TOP + (1 - weight / 100) * (H - TOP - BOTTOM);
  const clock = (at) => new Date(at * 1000).toLocaleTimeString();

  function draw() {
    svg.replaceChildren();
    for (const w of [0, 50, 100]) {
      svg.append(node("line", { x1: LEFT, x2: W - RIGHT, y1: y(w), y2: y(w), class: "grid" }));
      svg.append(node("text", { x: LEFT - 6, y: y(w) + 4, class: "axis", "text-anchor": "end" }, `${w}%`));
    }
    if (!readings.length) return;
    const start = readings[0].at;
    const span = Math.max(latest - start, 1);
    const x = (at) => LEFT + ((at - start) / span) * (W - LEFT - RIGHT);
    const points = [];
    readings.forEach((r, i) => {
      if (i > 0) points.push([x(r.at), y(readings[i - 1].weight)]); // held until it moved
      points.push([x(r.at), y(r.weight)]);
    });
    points.push([x(latest), y(readings[readings.length - 1].weight)]);
    const line = points.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(" ");
    svg.append(node("polyline", { points: line, class: "weight" }));
    for (const r of readings) {
      const dot = node("circle", { cx: x(r.at).toFixed(1), cy: y(r.weight).toFixed(1), r: 4,
        class: "step", "data-weight": r.weight });
      dot.append(node("title", {}, `${r.weight}% at ${clock(r.at)}`));
      svg.append(dot);
    }
    svg.append(node("text", { x: LEFT, y: H - 6, class: "axis" }, clock(start)));
    svg.append(node("text", { x: W - RIGHT, y: H - 6, class: "axis", "text-anchor": "end" }, clock(latest)));
  }

  return function update(traffic) {
    const weight = Math.round(Number(traffic.targetVersionWeight));
    const last = readings[readings.length - 1];
    if (!last || last.weight !== weight) readings.push({ at: traffic.at, weight });
    latest = Math.max(latest, traffic.at);
    split.textContent =
      `${traffic.functionName}:${traffic.functionAlias}: version ${traffic.targetVersion} ` +
      `${weight}%, version ${traffic.currentVersion} ${100 - weight}%`;
    svg.dataset.weight = String(weight);
    draw();
  };
};
