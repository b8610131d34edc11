"use strict";
// Where the browser has no WebGL, the map's points are drawn on a plain 2-D canvas by this
// stand-in for the regl-scatterplot calls app.js makes: no zoom or lasso, but the points in their
// colours, hover cards, clicks, filters and selections. app.js says why above the map.
window.paperscopeCanvas2d = function createCanvasPlot(options) {
  const { canvas, xScale, yScale } = options, ctx = canvas.getContext("2d");
  const background = "rgb(" + options.backgroundColor.slice(0, 3).map((v) => Math.round(v * 255)).join(",") + ")";
  const handlers = new Map(), fire = (name, arg) => (handlers.get(name) || []).forEach((f) => f(arg));
  let width = options.width, height = options.height, points = null, colours = [], shown = null, selected = [];
  let side = 0, left = 0, top = 0, over = null;

  function layout() {
    const ratio = window.devicePixelRatio || 1;
    canvas.width = width * ratio; canvas.height = height * ratio; ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    side = Math.min(width, height); left = (width - side) / 2; top = (height - side) / 2;
    xScale.range([left, left + side]); yScale.range([top + side, top]);  // as the WebGL camera maps them
  }
  // Points come in WebGL space ([-1, 1], y up).
  const position = (i) => [left + (points.x[i] + 1) / 2 * side, top + (1 - points.y[i]) / 2 * side];
  const rows = () => shown || Array.from({ length: points ? points.x.length : 0 }, (_, i) => i);
  function render() {
    ctx.fillStyle = background; ctx.fillRect(0, 0, width, height);
    if (!points) return;
    const r = Math.max(1, (options.pointSize || 4) / 2), byColour = new Map();
    for (const i of rows()) {
      const c = colours[points.valueA[i]] || colours[0];
      if (!byColour.has(c)) byColour.set(c, []);
      byColour.get(c).push(i);
    }
    ctx.globalAlpha = options.opacity || 1;
    for (const [c, list] of byColour) {
      ctx.fillStyle = c; ctx.beginPath();
      for (const i of list) { const [x, y] = position(i); ctx.moveTo(x + r, y); ctx.arc(x, y, r, 0, 2 * Math.PI); }
      ctx.fill();
    }
    ctx.globalAlpha = 1; ctx.strokeStyle = "#111"; ctx.lineWidth = 1.5;
    for (const i of selected) { const [x, y] = position(i); ctx.beginPath(); ctx.arc(x, y, r + 2, 0, 2 * Math.PI); ctx.stroke(); }
  }
  function nearestAt(event) {
    const box = canvas.getBoundingClientRect(), mx = event.clientX - box.left, my = event.clientY - box.top;
    const reach = Math.max(4, (options.pointSize || 4) / 2 + 3) ** 2;
    let best = null, bestD = reach;
    for (const i of rows()) {
      const [x, y] = position(i), d = (x - mx) ** 2 + (y - my) ** 2;
      if (d <= bestD) { best = i; bestD = d; }
    }
    return best;
  }
  canvas.addEventListener("mousemove", (event) => {
    const i = points ? nearestAt(event) : null;
    if (i === over) return;
    if (over !== null) fire("pointOut", over);
    over = i;
    if (i !== null) fire("pointOver", i);
  });
  canvas.addEventListener("click", (event) => {
    const i = points ? nearestAt(event) : null;
    if (i !== null) plot.select([i]);
  });
  layout();
  const plot = {
    webgl: false,
    subscribe(name, handler) { if (!handlers.has(name)) handlers.set(name, []); handlers.get(name).push(handler); },
    set(changes) {
      if (changes.pointColor) colours = changes.pointColor;
      if (changes.width) { width = changes.width; height = changes.height || height; layout(); }
      render();
    },
    get(key) { return key === "pointColor" ? colours : undefined; },
    draw(next) { points = next; shown = null; selected = []; render(); return Promise.resolve(); },
    filter(list) { shown = list.slice(); selected = selected.filter((i) => shown.includes(i)); render(); },
    unfilter() { shown = null; render(); },
    select(list, { preventEvent = false } = {}) { selected = list.slice(); render(); if (!preventEvent) fire("select", { points: selected }); },
    deselect() { selected = []; render(); },
    getScreenPosition: (i) => position(i),
    zoomToPoints() { /* no zoom without WebGL */ },
    zoomToLocation() { /* no zoom without WebGL */ },
  };
  return plot;
};
