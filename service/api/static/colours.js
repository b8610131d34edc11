"use strict";
// The map's colours: a large palette of mutually distinct colours (generated, the same on every
// load), spread so that topics next to each other on the map get colours far apart, and the
// schemes behind "colour by": topic, group, category, year. Used by app.js.
(function () {
  const NOISE = "#c3c8d1", OTHER = "#8d94a0";
  const BACKGROUND = [251, 251, 253];

  // sRGB <-> CIELAB (D65), enough to measure how different two colours look (CIE76 distance).
  const lin = (c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
  const gam = (c) => (c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055);
  function rgbToLab([r, g, b]) {
    const [R, G, B] = [r, g, b].map((v) => lin(v / 255));
    const xyz = [(0.4124 * R + 0.3576 * G + 0.1805 * B) / 0.95047, 0.2126 * R + 0.7152 * G + 0.0722 * B,
      (0.0193 * R + 0.1192 * G + 0.9505 * B) / 1.08883];
    const f = xyz.map((t) => (t > 216 / 24389 ? Math.cbrt(t) : (24389 / 27 * t + 16) / 116));
    return [116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])];
  }
  function lchToRgb(l, c, hDeg) {
    const h = hDeg * Math.PI / 180, a = c * Math.cos(h), b = c * Math.sin(h);
    const fy = (l + 16) / 116, fx = fy + a / 500, fz = fy - b / 200;
    const inv = (t) => (t ** 3 > 216 / 24389 ? t ** 3 : (116 * t - 16) / (24389 / 27));
    const [X, Y, Z] = [inv(fx) * 0.95047, inv(fy), inv(fz) * 1.08883];
    const rgb = [3.2406 * X - 1.5372 * Y - 0.4986 * Z, -0.9689 * X + 1.8758 * Y + 0.0415 * Z,
      0.0557 * X - 0.2040 * Y + 1.0570 * Z];
    if (rgb.some((v) => v < -0.001 || v > 1.001)) return null;  // outside sRGB
    return rgb.map((v) => Math.round(gam(Math.min(Math.max(v, 0), 1)) * 255));
  }
  const hex = (rgb) => "#" + rgb.map((v) => v.toString(16).padStart(2, "0")).join("");
  const rgbOf = (h) => [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16));
  const distance = (p, q) => Math.hypot(p[0] - q[0], p[1] - q[1], p[2] - q[2]);

  // Glasbey's method: from a grid of mid-light, saturated candidates, each next colour is the one
  // farthest from all chosen so far (and from the background and the unclustered grey).
  function makePalette(size) {
    const candidates = [];
    for (const l of [42, 52, 62, 72]) for (const c of [38, 55, 72]) for (let h = 0; h < 360; h += 8) {
      const rgb = lchToRgb(l, c, h);
      if (rgb) candidates.push({ rgb, lab: rgbToLab(rgb) });
    }
    const avoid = [rgbToLab(BACKGROUND), rgbToLab(rgbOf(NOISE))];
    const nearest = candidates.map((cand) => Math.min(...avoid.map((a) => distance(cand.lab, a))));
    const chosen = [];
    while (chosen.length < size) {
      let best = 0;
      for (let i = 1; i < candidates.length; i++) if (nearest[i] > nearest[best]) best = i;
      chosen.push(candidates[best]);
      candidates.forEach((cand, i) => { nearest[i] = Math.min(nearest[i], distance(cand.lab, candidates[best].lab)); });
    }
    return chosen.map((c) => ({ hex: hex(c.rgb), lab: c.lab }));
  }
  const PALETTE = makePalette(48);

  // Items (with x, y, size) next to each other on the map get colours far apart: each joined to
  // its `near` closest centres, coloured largest first with the palette colour farthest from its
  // coloured neighbours' (beyond FAR_ENOUGH all count as far, and the least used wins, so a
  // small map uses every colour once).
  const FAR_ENOUGH = 35;
  function spread(items, near = 6) {
    const links = new Map(items.map((t) => [t.id, new Set()]));
    for (const t of items) {
      const closest = items.filter((o) => o.id !== t.id)
        .map((o) => [o.id, (o.x - t.x) ** 2 + (o.y - t.y) ** 2]).sort((a, b) => a[1] - b[1]).slice(0, near);
      for (const [o] of closest) { links.get(t.id).add(o); links.get(o).add(t.id); }
    }
    const index = new Map(), used = PALETTE.map(() => 0);
    for (const t of items.slice().sort((a, b) => b.size - a.size || a.id - b.id)) {
      const taken = [...links.get(t.id)].filter((o) => index.has(o)).map((o) => PALETTE[index.get(o)].lab);
      let best = 0, bestScore = -1;
      PALETTE.forEach((p, k) => {
        const score = Math.min(FAR_ENOUGH, ...taken.map((lab) => distance(lab, p.lab)));
        if (score > bestScore + 1e-9 || (Math.abs(score - bestScore) < 1e-9 && used[k] < used[best])) { best = k; bestScore = score; }
      });
      index.set(t.id, best); used[best]++;
    }
    return { colourOf: new Map([...index].map(([id, k]) => [id, PALETTE[k].hex])), near: links };
  }

  // A sequential ramp (viridis' stops, darkened at the light end to stay visible on white).
  const RAMP = ["#440154", "#3b528b", "#21918c", "#3aa65c", "#b8a205"];
  function ramp(t) {
    const x = Math.min(Math.max(t, 0), 1) * (RAMP.length - 1), k = Math.min(Math.floor(x), RAMP.length - 2);
    const a = rgbOf(RAMP[k]), b = rgbOf(RAMP[k + 1]);
    return hex(a.map((v, j) => Math.round(v + (b[j] - v) * (x - k))));
  }

  const CATEGORIES_SHOWN = 12;
  // A scheme: `colours` (index 0 first), `value(i)`: paper i's colour index, `legend`: [name, colour].
  function scheme(mode, data, topicColour) {
    const n = data.ids.length;
    if (mode === "group") {
      const groupOf = new Map(data.topics.map((t) => [t.id, t.group]));
      const groups = data.groups.map((g) => ({ ...g })), { colourOf } = spread(groups);
      const slot = new Map(groups.map((g, k) => [g.id, k + 1]));
      return { colours: [NOISE, ...groups.map((g) => colourOf.get(g.id))],
               value: (i) => slot.get(groupOf.get(data.topic[i])) ?? 0,
               legend: [...groups.sort((a, b) => b.size - a.size).map((g) => [g.name || g.label, colourOf.get(g.id)]), ["no group", NOISE]] };
    }
    if (mode === "category") {
      const counts = new Map();
      for (let i = 0; i < n; i++) if (data.category[i] >= 0) counts.set(data.category[i], (counts.get(data.category[i]) || 0) + 1);
      const top = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, CATEGORIES_SHOWN).map(([c]) => c);
      const slot = new Map(top.map((c, k) => [c, k + 2]));
      const legend = top.map((c, k) => [data.categories[c], PALETTE[k].hex]);
      if (counts.size > top.length) legend.push([`${counts.size - top.length} other categories`, OTHER]);
      return { colours: [NOISE, OTHER, ...top.map((_, k) => PALETTE[k].hex)],
               value: (i) => (data.category[i] < 0 ? 0 : slot.get(data.category[i]) ?? 1),
               legend: [...legend, ["no category", NOISE]] };
    }
    if (mode === "year") {
      const years = data.date.filter(Boolean).map((d) => Number(d.slice(0, 4)));
      const first = Math.min(...years), last = Math.max(...years), span = years.length ? last - first + 1 : 0;
      const colours = [NOISE, ...Array.from({ length: span }, (_, k) => ramp(span > 1 ? k / (span - 1) : 0.5))];
      const step = Math.max(1, Math.ceil(span / 6)), legend = [];
      for (let k = 0; k < span; k += step) legend.push([String(first + k), colours[k + 1]]);
      if (span > 1 && (span - 1) % step) legend.push([String(last), colours[span]]);
      return { colours, value: (i) => (data.date[i] ? Number(data.date[i].slice(0, 4)) - first + 1 : 0),
               legend: [...legend, ["undated", NOISE]] };
    }
    const maxTopic = data.topic.reduce((a, b) => Math.max(a, b), 0);
    return { colours: [NOISE, ...Array.from({ length: maxTopic + 1 }, (_, t) => topicColour(t))],
             value: (i) => data.topic[i] + 1, legend: null, fades: true };
  }

  window.paperscopeColours = { NOISE, PALETTE: PALETTE.map((p) => p.hex), spread, scheme, distance, rgbToLab, rgbOf };
})();
