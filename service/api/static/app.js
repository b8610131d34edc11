"use strict";
// Served by paperscope, the page reads the JSON API; exported by `paperscope export-map`, it reads
// the data embedded in window.PAPERSCOPE_EMBEDDED and works offline.
const EMBEDDED = window.PAPERSCOPE_EMBEDDED || null;
const { createScatterplot, scaleLinear } = window.paperscopeVendor;
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
// Topics next to each other on the map get colours far apart, from a large generated palette
// (static/colours.js, which also makes the "colour by" schemes).
const { NOISE: NOISE_COLOUR, PALETTE: palette, spread: colourTopics, scheme: colourScheme } = window.paperscopeColours;
const colour = (t) => t < 0 ? NOISE_COLOUR : state.colourOf.get(t) ?? palette[t % palette.length];
const COLOUR_BY = ["topic", "group", "category", "year"];
const nameOf = (t) => t ? (t.name || t.label) : "unclustered";
// A paper HDBSCAN called noise, or one its neighbours place less surely, is drawn faded.
const FADED_BELOW = 0.5;
const faded = (d, i) => d.topic[i] >= 0 && ((d.outlier && d.outlier[i]) || (d.confidence && d.confidence[i] < FADED_BELOW));
const fade = (hex, keep = 0.4) => "#" + [1, 3, 5].map((k) => Math.round(parseInt(hex.slice(k, k + 2), 16) * keep + 251 * (1 - keep)).toString(16).padStart(2, "0")).join("");
// Map coordinates are in [0, 1]; WebGL space is [-1, 1]. PAD leaves a margin around the points.
const PAD = 0.9, toGl = (v) => (v - 0.5) * 2 * PAD, GL_DOMAIN = [0.5 - 0.5 / PAD, 0.5 + 0.5 / PAD];

// Writes send the key the user typed in the left panel (kept in this browser's localStorage).
const KEY_STORE = "paperscope.apiKey";
const savedKey = () => { try { return localStorage.getItem(KEY_STORE) || ""; } catch (_) { return ""; } };
const api = async (path, { method = "GET", body } = {}) => {
  const init = { method, headers: {} };
  if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  if (method !== "GET" && savedKey()) init.headers["X-API-Key"] = savedKey();
  const r = await fetch("api/v1" + path, init);
  let answer = null;
  try { answer = await r.json(); } catch (_) { /* not JSON: a proxy or server error page */ }
  if (!r.ok || answer === null) throw new Error(answer && answer.error ? answer.error.message : `${r.status} ${r.statusText}`);
  return answer;
};

const state = { data: null, rowOf: new Map(), topicOf: new Map(), colourOf: new Map(), paper: null, q: "", topic: null,
                from: "", to: "", cat: "", selection: [], hits: [], trendMonths: 6, colourBy: "topic" };
let scatterplot, xScale, yScale;

// ---------- data access (API or embedded) ----------
const source = {
  async paper(id) {
    if (!EMBEDDED) return api(`/papers/${encodeURIComponent(id)}`);
    const i = state.rowOf.get(id), d = state.data, t = state.topicOf.get(d.topic[i]);
    return { id, title: d.title[i], abstract: EMBEDDED.abstracts ? EMBEDDED.abstracts[i] : "",
             date: d.date[i], topic_id: d.topic[i], topic_label: nameOf(t) };
  },
  async similar(id) {
    if (!EMBEDDED) return (await api(`/papers/${encodeURIComponent(id)}/similar?k=8`)).results;
    return EMBEDDED.neighbors[state.rowOf.get(id)].map(([row, score]) => hitFor(row, score));
  },
  async timeline(id) {
    if (!EMBEDDED) return api(`/topics/${id}/timeline`);
    const d = state.data, counts = new Map();
    let undated = 0;
    for (let i = 0; i < d.ids.length; i++) {
      if (d.topic[i] !== id) continue;
      if (d.date[i]) counts.set(d.date[i].slice(0, 7), (counts.get(d.date[i].slice(0, 7)) || 0) + 1); else undated++;
    }
    return { id, months: everyMonth(counts), undated };
  },
  async topicPapers(id) {
    if (!EMBEDDED) return (await api(`/topics/${id}?limit=50`)).papers;
    const d = state.data, rows = [];
    for (let i = 0; i < d.ids.length && rows.length < 50; i++) if (d.topic[i] === id) rows.push({ id: d.ids[i], title: d.title[i] });
    return rows;
  },
  async search(q) {
    if (!EMBEDDED) return (await api(`/search?k=50&q=${encodeURIComponent(q)}`)).results;
    const words = q.toLowerCase().split(/\s+/).filter(Boolean), d = state.data, found = [];
    for (let i = 0; i < d.ids.length && found.length < 50; i++) {
      const title = d.title[i].toLowerCase();
      if (words.every((w) => title.includes(w))) found.push(hitFor(i, 1));
    }
    return found;
  },
};
// Every month from the first to the last counted, as GET /topics/{id}/timeline lists them.
function everyMonth(counts) {
  const keys = [...counts.keys()].sort(), out = [];
  if (!keys.length) return out;
  let [year, month] = keys[0].split("-").map(Number);
  for (let m = keys[0]; m <= keys[keys.length - 1];) {
    out.push({ month: m, papers: counts.get(m) || 0 });
    [year, month] = month === 12 ? [year + 1, 1] : [year, month + 1];
    m = `${String(year).padStart(4, "0")}-${String(month).padStart(2, "0")}`;
  }
  return out;
}
function hitFor(row, score) {
  const d = state.data, t = state.topicOf.get(d.topic[row]);
  return { id: d.ids[row], title: d.title[row], score, topic_id: d.topic[row], topic_label: nameOf(t) };
}

// ---------- URL state ----------
function writeUrl() {
  const p = new URLSearchParams();
  if (state.paper) p.set("paper", state.paper);
  if (state.q) p.set("q", state.q);
  if (state.topic !== null) p.set("topic", state.topic);
  for (const k of ["from", "to", "cat"]) if (state[k]) p.set(k, state[k]);
  if (state.colourBy !== "topic") p.set("colour", state.colourBy);
  if (xScale) {
    const [x0, x1] = xScale.domain(), [y0, y1] = yScale.domain();
    p.set("view", [(x0 + x1) / 2, (y0 + y1) / 2, 1 / (x1 - x0)].map((v) => v.toFixed(4)).join(","));
  }
  history.replaceState(null, "", "#" + p.toString());
}
function readUrl() {
  const p = new URLSearchParams(location.hash.slice(1));
  const topic = p.get("topic") ? Number(p.get("topic")) : NaN;
  return { paper: p.get("paper"), q: p.get("q") || "", topic: state.topicOf.has(topic) ? topic : null,
           from: p.get("from") || "", to: p.get("to") || "", cat: p.get("cat") || "",
           colourBy: COLOUR_BY.includes(p.get("colour")) ? p.get("colour") : "topic",
           view: p.get("view") ? p.get("view").split(",").map(Number) : null };
}

// ---------- filters ----------
function visibleRows() {
  const d = state.data, cat = state.cat === "" ? null : Number(state.cat), rows = [];
  for (let i = 0; i < d.ids.length; i++) {
    if (state.topic !== null && d.topic[i] !== state.topic) continue;
    if (cat !== null && d.category[i] !== cat) continue;
    if (state.from && (!d.date[i] || d.date[i] < state.from)) continue;
    if (state.to && (!d.date[i] || d.date[i] > state.to)) continue;
    rows.push(i);
  }
  return rows;
}
function applyFilters() {
  const rows = visibleRows();
  if (rows.length === state.data.ids.length) scatterplot.unfilter({ preventEvent: true });
  else scatterplot.filter(rows, { preventEvent: true });
  state.visible = new Set(rows);
  renderTopics(); drawLabels(); writeUrl();
}

// ---------- panels ----------
// Panels fill in after a fetch: only the latest one claimed may write, so a slow answer never
// replaces a panel opened after it.
let panelTurn = 0;
function claimPanel() {
  const turn = ++panelTurn;
  return (html) => { if (turn === panelTurn) setHtml($("panel"), html); };
}
// The page's Content-Security-Policy refuses inline style attributes: a swatch names its topic
// (data-swatch) and gets its colour here, through the DOM.
function setHtml(element, html) {
  element.innerHTML = html;
  for (const swatch of element.querySelectorAll("[data-swatch]")) swatch.style.background = colour(Number(swatch.dataset.swatch));
  renderTex(element);
}
// TeX between $…$, $$…$$ or \(…\) in titles and abstracts, typeset by the bundled KaTeX. It reads
// only the text nodes of HTML already escaped, and trusts no command (no links, classes, styles).
const TEX = { delimiters: [{ left: "$$", right: "$$", display: false }, { left: "\\(", right: "\\)", display: false }],
  throwOnError: false, trust: false, strict: "ignore", ignoredClasses: ["no-tex"] };
// A single $ is TeX only by Pandoc's rule: it opens before a non-space, closes after a non-space
// and not before a digit, and \$ is a dollar; so "$5 and $10" stays text. Such spans become \(…\).
const INLINE_TEX = /(^|[^\\$])\$(?=[^\s$])((?:\\.|[^$\\])*?[^\s\\])\$(?!\d)/g;
function markInlineTex(element) {
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.nodeValue.includes("$") || node.parentElement.closest(".no-tex")) continue;
    node.nodeValue = node.nodeValue.replace(INLINE_TEX, (_, before, tex) => `${before}\\(${tex}\\)`);
  }
}
function renderTex(element) {
  if (!window.paperscopeKatex) return;
  markInlineTex(element);
  window.paperscopeKatex.renderMathInElement(element, TEX);
}
function renderTopics() {
  setHtml($("topic-list"), state.data.topics.slice().sort((a, b) => (a.id < 0) - (b.id < 0) || b.size - a.size).map((t) => `
    <div class="topic${state.topic === t.id ? " active" : ""}${state.topic !== null && state.topic !== t.id ? " dim" : ""}" data-topic="${t.id}">
      <span class="swatch" data-swatch="${t.id}"></span>
      <span title="${esc(t.keywords.join(", "))}">${esc(nameOf(t))}</span><span class="size">${t.size}</span>
    </div>`).join(""));
}
function hitList(hits) {
  return hits.map((h) => `<div class="hit" data-id="${esc(h.id)}"><span class="score">${Number(h.score).toFixed(3)}</span>${esc(h.title)}<br><small>topic ${h.topic_id}: ${esc(h.topic_label)}</small></div>`).join("");
}
// A paper added since the page loaded is not on the map, but the server can still show it.
async function showPaper(id, { zoom = false } = {}) {
  const row = state.rowOf.get(id);
  if (row === undefined && EMBEDDED) return;
  state.paper = id; writeUrl();
  if (zoom && row !== undefined) scatterplot.zoomToPoints([row], { transition: true, padding: 1.2 });
  const show = claimPanel();
  try {
    const [paper, like] = await Promise.all([source.paper(id), source.similar(id)]);
    show(`<h2 id="paper-title">${esc(paper.title)}</h2>
      <p class="muted">topic ${paper.topic_id}: ${esc(paper.topic_label)}${paper.date ? " · " + esc(paper.date) : ""}</p>
      <p class="abstract">${esc(paper.abstract)}</p>${EMBEDDED ? "" : collectionControl()}
      <h3>Papers like this</h3><div id="similar">${hitList(like)}</div>`);
  } catch (err) { show(`<p>${esc(err.message)}</p>`); }
  if (row !== undefined) scatterplot.select([row], { preventEvent: true });
}
function showSelection(rows) {
  state.selection = rows;
  const d = state.data, shown = rows.slice(0, 200);
  claimPanel()(`<h2>${rows.length} papers selected</h2>
    <div class="row"><button id="export-csv">Export CSV</button><button id="export-json">Export JSON</button></div>
    <div id="selection">${shown.map((i) => `<div class="hit" data-id="${esc(d.ids[i])}">${esc(d.title[i])}<br><small>${esc(d.date[i] || "")}</small></div>`).join("")}</div>
    ${rows.length > shown.length ? `<p class="muted">… and ${rows.length - shown.length} more (all are in the export)</p>` : ""}`);
}

// ---------- a topic: its papers per month ----------
async function showTopic(id) {
  const t = state.topicOf.get(id);
  if (!t) return;
  if (state.topic !== id) { state.topic = id; applyFilters(); }
  const show = claimPanel();
  const head = `<h2 id="topic-title">${esc(nameOf(t))}</h2>
    <p class="muted">topic ${id} · ${t.size} papers${t.keywords.length ? " · " + esc(t.keywords.slice(0, 6).join(", ")) : ""}</p>`;
  show(head + `<p class="muted">loading…</p>`);
  try {
    const [line, papers] = await Promise.all([source.timeline(id), source.topicPapers(id)]);
    show(`${head}<h3>Papers per month</h3><div id="timeline">${timelineChart(line, colour(id))}</div>
      <h3>Papers</h3><div id="topic-papers">${papers.map((p) => `<div class="hit" data-id="${esc(p.id)}">${esc(p.title)}</div>`).join("")}</div>`);
  } catch (err) { show(`${head}<p>${esc(err.message)}</p>`); }
}
// A bar per month (months without papers included), scaled to the busiest month; plain SVG.
const CHART = { w: 340, h: 110, top: 14, bottom: 16 };
function timelineChart(line, fill) {
  const undated = line.undated ? `<p class="muted">${line.undated} papers without a date</p>` : "";
  if (!line.months.length) return `<p class="muted" id="timeline-empty">no dated papers</p>${undated}`;
  const most = Math.max(...line.months.map((m) => m.papers)), step = CHART.w / line.months.length;
  const plot = CHART.h - CHART.top - CHART.bottom, base = CHART.top + plot;
  const bars = line.months.map((m, i) => {
    const h = plot * m.papers / most;
    return `<rect class="bar" data-month="${esc(m.month)}" data-papers="${m.papers}" fill="${fill}" x="${(i * step + step * 0.1).toFixed(2)}"
      y="${(base - h).toFixed(2)}" width="${(step * 0.8).toFixed(2)}" height="${h.toFixed(2)}"><title>${esc(m.month)}: ${m.papers}</title></rect>`;
  }).join("");
  const first = line.months[0].month, last = line.months[line.months.length - 1].month;
  return `<svg id="timeline-chart" viewBox="0 0 ${CHART.w} ${CHART.h}" width="100%" role="img" aria-label="papers per month">
    <text x="0" y="10">${most} papers</text>${bars}<line x1="0" x2="${CHART.w}" y1="${base}" y2="${base}"></line>
    <text x="0" y="${CHART.h - 3}">${esc(first)}</text><text x="${CHART.w}" y="${CHART.h - 3}" text-anchor="end">${esc(last)}</text>
  </svg>${undated}`;
}

// ---------- views: emerging papers, trending topics, collections (served pages only) ----------
async function showEmerging() {
  const show = claimPanel();
  try {
    const e = await api("/topics/emerging");
    const papers = e.papers.slice().reverse();  // newest first
    show(`<h2>Emerging</h2><p class="muted">${e.unassigned} of ${e.added_since_build} papers added since build ${esc(e.build_id)} fit no topic${e.rebuild_suggested ? ": enough for a new one, a rebuild is suggested" : ""}.</p>
      <div id="emerging">${papers.map((p) => `<div class="hit" data-id="${esc(p.id)}">${esc(p.title)}</div>`).join("") || `<p class="muted">None yet.</p>`}</div>`);
  } catch (err) { show(`<p>${esc(err.message)}</p>`); }
}
async function showTrending(months = state.trendMonths) {
  state.trendMonths = months;
  const show = claimPanel();
  try {
    const trends = await api(`/topics/trending?months=${months}`);
    show(`<h2>Trending topics</h2>
      <p class="muted">Papers per month in the last <input id="trend-months" type="number" min="1" max="120" value="${months}"> months against before; “new”: none before.</p>
      <div id="trending">${trends.map(trendRow).join("") || `<p class="muted">No dated papers: nothing to rank.</p>`}</div>`);
  } catch (err) { show(`<p>${esc(err.message)}</p>`); }
}
function trendRow(t) {
  return `<div class="trend" data-open-topic="${t.id}" data-growth="${t.growth ?? ""}"><span class="swatch" data-swatch="${t.id}"></span>
    <span>${esc(t.name)}<br><small class="muted">${t.recent} recent (${t.recent_rate.toFixed(2)}/month) · ${t.earlier} before (${t.earlier_rate.toFixed(2)}/month)</small></span>
    <span class="size">${t.growth === null ? "new" : "×" + t.growth.toFixed(2)}</span></div>`;
}
async function showCollections() {
  const show = claimPanel();
  try {
    const list = await api("/collections");
    show(`<h2>Collections</h2><div id="collections">${list.map((c) => `<div class="collection" data-collection="${esc(c.name)}">
      <b>${esc(c.name)}</b> <small class="muted">${c.positive.length} papers</small>${c.note ? `<br><small class="muted">${esc(c.note)}</small>` : ""}</div>`).join("")
      || `<p class="muted">No collections yet: open a paper and add it to one.</p>`}</div>`);
  } catch (err) { show(`<p>${esc(err.message)}</p>`); }
}
async function showFeed(name) {
  const show = claimPanel();
  try {
    const feed = await api(`/collections/${encodeURIComponent(name)}/feed?limit=20`);
    show(`<h2 id="feed-title">Feed: ${esc(name)}</h2><p class="muted">Papers like the collection, and why.
      ${feed.missing.length ? `${feed.missing.length} of its papers were deleted since.` : ""}</p>
      <div id="feed">${feed.results.map(feedRow).join("") || `<p class="muted">Nothing new.</p>`}</div>
      <p><button data-view="collections">All collections</button></p>`);
  } catch (err) { show(`<p>${esc(err.message)}</p>`); }
}
function feedRow(r) {
  const why = r.reason, row = state.rowOf.get(why.closest_seed);
  const seed = row === undefined ? why.closest_seed : state.data.title[row];
  return `<div class="hit" data-id="${esc(r.id)}"><span class="score">${Number(r.score).toFixed(3)}</span>${esc(r.title)}
    <br><small class="reason">like “${esc(seed)}” (${why.seed_similarity.toFixed(2)})${why.shared_topic_label ? " · topic: " + esc(why.shared_topic_label) : ""}${why.terms.length ? " · shared terms: " + esc(why.terms.join(", ")) : ""}</small></div>`;
}
const showView = (name) => ({ emerging: showEmerging, trending: () => showTrending(), collections: showCollections })[name]();

// ---------- adding the open paper to a collection ----------
const COLLECTION_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
function collectionControl() {
  return `<h3>Collections</h3><div class="row"><input id="collection-name" list="collection-names" placeholder="collection name" maxlength="100">
    <datalist id="collection-names"></datalist><button id="add-to-collection">Add to collection</button></div>
    <p class="muted" id="collection-status"></p>`;
}
async function fillCollectionNames() {
  try {
    $("collection-names").innerHTML = (await api("/collections")).map((c) => `<option value="${esc(c.name)}">`).join("");
  } catch (_) { /* typing a name still works */ }
}
// PUT replaces the whole collection: its papers, negatives, seen papers and note are sent back
// with this paper appended (moved from the negatives if it was one). Seeds deleted since are
// left out: the server refuses seeds it does not serve.
async function addToCollection(paperId) {
  const name = $("collection-name").value.trim(), status = $("collection-status");
  if (!COLLECTION_NAME.test(name)) { status.textContent = "A name: letters, digits, '.', '_', '-' (up to 100)."; return; }
  status.textContent = "saving…";
  try {
    const old = (await api("/collections")).find((c) => c.name === name);
    const missing = new Set(old ? old.missing : []);
    const positive = (old ? old.positive : []).filter((i) => !missing.has(i));
    if (!positive.includes(paperId)) positive.push(paperId);
    const negative = (old ? old.negative : []).filter((i) => !missing.has(i) && i !== paperId);
    const body = { positive, negative, seen: old ? old.seen : [], note: old ? old.note : "" };
    await api(`/collections/${encodeURIComponent(name)}`, { method: "PUT", body });
    status.textContent = `Added to ${name}${missing.size ? ` (${missing.size} deleted papers dropped from it)` : ""}.`;
  } catch (err) { status.textContent = err.message; }
}
function download(name, text, type) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type })); a.download = name; a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}
function selectionRecords() {
  const d = state.data;
  return state.selection.map((i) => ({ id: d.ids[i], title: d.title[i], date: d.date[i], topic: d.topic[i],
    category: d.category[i] >= 0 ? d.categories[d.category[i]] : null, x: d.x[i], y: d.y[i] }));
}
// Text starting with = + - @ tab or CR gets a leading ' so spreadsheets do not run it as a formula
// (OWASP "CSV injection"); numbers (negative x, y) stay numbers.
const csvCell = (v) => {
  let s = String(v ?? "");
  if (typeof v === "string" && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

async function runSearch(q) {
  state.q = q; writeUrl();
  if (!q) { state.hits = []; scatterplot.deselect({ preventEvent: true }); $("query-marker").style.display = "none"; return; }
  const show = claimPanel();
  try {
    const hits = await source.search(q);
    state.hits = hits;
    const rows = hits.map((h) => state.rowOf.get(h.id)).filter((r) => r !== undefined);
    scatterplot.select(rows, { preventEvent: true });
    // The query's own position: score-weighted centre of its closest papers.
    const top = rows.slice(0, 5), weights = hits.slice(0, 5).map((h) => Math.max(h.score, 1e-3));
    const total = weights.reduce((a, b) => a + b, 0);
    state.queryAt = top.length ? [top.reduce((s, r, k) => s + state.data.x[r] * weights[k], 0) / total,
                                  top.reduce((s, r, k) => s + state.data.y[r] * weights[k], 0) / total] : null;
    placeQueryMarker();
    show(`<h2>Results for “${esc(q)}”</h2><p class="muted">${hits.length} papers highlighted on the map; the yellow ring marks the query.</p><div id="results">${hitList(hits)}</div>`);
  } catch (err) { show(`<p>${esc(err.message)}</p>`); }
}
function placeQueryMarker() {
  const m = $("query-marker");
  if (!state.q || !state.queryAt) { m.style.display = "none"; return; }
  m.style.left = xScale(state.queryAt[0]) + "px"; m.style.top = yScale(state.queryAt[1]) + "px"; m.style.display = "block";
}

// ---------- labels: group names when zoomed out, topic names where they fit; no overlaps ----------
// Zoomed out, the coarse groups' names are placed first (largest group first), then the names of
// as many topics as fit between them; zoomed in, topic names only. A label is skipped when its
// box would overlap one already placed (state.labelBoxes and state.labelsCrowded keep what was
// shown and what was not, for tests). A topic whose centre is off screen is named at the middle
// of its papers that are on screen, so a view zoomed in between topic centres still says what
// it shows.
const MIN_VISIBLE_PAPERS = 3;
function visibleCentres() {
  const d = state.data, sums = new Map();
  const [x0, x1] = xScale.domain().slice().sort((a, b) => a - b), [y0, y1] = yScale.domain().slice().sort((a, b) => a - b);
  for (let i = 0; i < d.ids.length; i++) {
    const t = d.topic[i], x = d.x[i], y = d.y[i];
    if (t < 0 || x < x0 || x > x1 || y < y0 || y > y1) continue;
    const s = sums.get(t) || [0, 0, 0];
    s[0] += x; s[1] += y; s[2] += 1; sums.set(t, s);
  }
  const centres = new Map();
  for (const [t, [sx, sy, n]] of sums) if (n >= MIN_VISIBLE_PAPERS) centres.set(t, [sx / n, sy / n]);
  return centres;
}
function labelAnchor(item, kind, w, h, onScreen) {
  const at = [xScale(item.x), yScale(item.y)];
  if (at[0] >= 0 && at[0] <= w && at[1] >= 0 && at[1] <= h) return at;
  if (kind !== "topic") return null;
  const centre = onScreen().get(item.id);
  return centre ? [xScale(centre[0]), yScale(centre[1])] : null;
}
function drawLabels() {
  const canvas = $("labels"), ctx = canvas.getContext("2d"), ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * ratio; canvas.height = h * ratio; ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const zoom = (GL_DOMAIN[1] - GL_DOMAIN[0]) / (xScale.domain()[1] - xScale.domain()[0]);
  const coarse = state.data.groups.length > 1 && zoom < 1.8 && state.topic === null;
  const bySize = (a, b) => b.size - a.size;
  const topics = state.data.topics.filter((t) => t.id >= 0 && (state.topic === null || t.id === state.topic)).sort(bySize);
  const items = [...(coarse ? state.data.groups.slice().sort(bySize).map((g) => [g, "group"]) : []),
                 ...topics.map((t) => [t, "topic"])];
  const placed = [], shown = [], crowded = [];
  let centres = null;
  const onScreen = () => centres || (centres = visibleCentres());  // one pass, only when needed
  ctx.textAlign = "center"; ctx.textBaseline = "middle";
  for (const [item, kind] of items) {
    const text = item.name || item.label, group = kind === "group";
    ctx.font = group ? "700 15px system-ui" : "600 12px system-ui";
    const tw = ctx.measureText(text).width + 8, th = group ? 22 : 16;
    const anchor = labelAnchor(item, kind, w, h, onScreen);
    if (!anchor) continue;  // nothing of it on screen: no label
    const [cx, y] = anchor;
    const x = Math.min(Math.max(cx, tw / 2), w - tw / 2), top = Math.min(Math.max(y - th / 2, 0), h - th);
    const box = [x - tw / 2, top, x + tw / 2, top + th];
    if (placed.some((b) => box[0] < b[2] && box[2] > b[0] && box[1] < b[3] && box[3] > b[1])) { crowded.push({ kind, id: item.id }); continue; }
    placed.push(box); shown.push({ kind, id: item.id, text, box });
    const cy = top + th / 2;
    ctx.lineWidth = 4; ctx.strokeStyle = "rgba(255,255,255,.9)"; ctx.strokeText(text, x, cy);
    ctx.fillStyle = group ? "#111" : "#1d2330"; ctx.fillText(text, x, cy);
  }
  state.placedLabels = placed.length; state.labelLevel = coarse ? "coarse" : "fine"; state.labelBoxes = shown; state.labelsCrowded = crowded;
}

// ---------- the plot: WebGL, else a 2-D canvas; colours by topic, group, category or year ----------
function hasWebgl() {
  try { const c = document.createElement("canvas"); return Boolean(c.getContext("webgl2") || c.getContext("webgl")); } catch (_) { return false; }
}
function makePlot(options) {
  if (hasWebgl()) {
    try { return createScatterplot(options); } catch (err) { console.warn("WebGL map failed:", err); }
  }
  $("map-wrap").insertAdjacentHTML("beforeend", `<div id="no-webgl">This browser cannot draw the map: WebGL is off.
    Topics, search and papers still work; the points are drawn below without zoom.</div>`);
  return window.paperscopeCanvas2d(options);
}
// Draws the points in the colours of state.colourBy (redrawing resets the plot's filter and
// selection: the caller applies them again) and fills the legend.
async function paint() {
  const d = state.data, scheme = colourScheme(state.colourBy, d, colour), k = scheme.colours.length;
  // Outliers and low-confidence papers: their topic's colour, faded (a second set of colours).
  scatterplot.set({ colorBy: "valueA", pointColor: scheme.fades ? [...scheme.colours, ...scheme.colours.map((c) => fade(c))] : scheme.colours });
  for (let i = 0; i < d.ids.length; i++) state.points.valueA[i] = scheme.value(i) + (scheme.fades && faded(d, i) ? k : 0);
  // by topic, the topic list is the legend
  $("legend").innerHTML = (scheme.legend || []).map(([name, c]) => `<div><span class="swatch" data-colour="${esc(c)}"></span>${esc(name)}</div>`).join("");
  for (const swatch of $("legend").querySelectorAll("[data-colour]")) swatch.style.background = swatch.dataset.colour;
  await scatterplot.draw(state.points, { zDataType: "categorical" });
}
async function recolour(mode) {
  state.colourBy = mode; await paint(); applyFilters();
  const rows = state.hits.map((h) => state.rowOf.get(h.id)).filter((r) => r !== undefined);
  if (state.paper && state.rowOf.has(state.paper)) rows.splice(0, rows.length, state.rowOf.get(state.paper));
  if (rows.length) scatterplot.select(rows, { preventEvent: true });
}

// ---------- set-up ----------
async function load() {
  const data = EMBEDDED ? EMBEDDED.map : await api("/map");
  const meta = EMBEDDED ? EMBEDDED.meta : await api("/ready");
  state.data = data;
  data.ids.forEach((id, i) => state.rowOf.set(id, i));
  data.topics.forEach((t) => state.topicOf.set(t.id, t));
  const coloured = colourTopics(data.topics.filter((t) => t.id >= 0));
  state.colourOf = coloured.colourOf; state.nearTopics = coloured.near;
  $("meta").textContent = `${meta.papers} papers · ${meta.topics} topics · build ${meta.build_id} · ${meta.model}`
    + (meta.last_synced ? ` · synced ${meta.last_synced.slice(0, 16).replace("T", " ")} UTC` : "");
  $("cat").innerHTML += data.categories.map((c, i) => `<option value="${i}">${esc(c)}</option>`).join("");

  const canvas = $("map"), n = data.ids.length;
  xScale = scaleLinear().domain(GL_DOMAIN); yScale = scaleLinear().domain(GL_DOMAIN);
  scatterplot = makePlot({
    canvas, width: canvas.clientWidth, height: canvas.clientHeight, xScale, yScale,
    pointSize: n > 20000 ? 2.5 : n > 2000 ? 4 : 7, pointSizeSelected: 2, pointOutlineWidth: 2,
    backgroundColor: [0.984, 0.984, 0.992, 1], lassoColor: [0.2, 0.35, 0.88, 1],
    pointColorActive: [0.1, 0.1, 0.1, 1], opacity: n > 20000 ? 0.7 : 0.9, deselectOnEscape: true,
  });
  state.points = { x: new Float32Array(n), y: new Float32Array(n), valueA: new Float32Array(n) };
  for (let i = 0; i < n; i++) { state.points.x[i] = toGl(data.x[i]); state.points.y[i] = toGl(data.y[i]); }
  state.colourBy = readUrl().colourBy; $("colour-by").value = state.colourBy;
  await paint();
  state.firstRenderMs = performance.now();

  const card = $("card");
  scatterplot.subscribe("pointOver", (i) => {
    const t = state.topicOf.get(data.topic[i]), [sx, sy] = scatterplot.getScreenPosition(i);
    card.innerHTML = `<b>${esc(data.title[i])}</b><br>${esc(nameOf(t))}${data.date[i] ? " · " + esc(data.date[i]) : ""}`;
    renderTex(card);
    card.style.left = Math.min(sx + 12, canvas.clientWidth - 390) + "px"; card.style.top = (sy + 12) + "px"; card.style.display = "block";
    state.hovered = data.ids[i];
  });
  scatterplot.subscribe("pointOut", () => { card.style.display = "none"; state.hovered = null; });
  scatterplot.subscribe("select", ({ points: rows }) => {
    if (rows.length === 1) showPaper(data.ids[rows[0]]); else showSelection(rows);
  });
  scatterplot.subscribe("view", () => { drawLabels(); placeQueryMarker(); clearTimeout(state.urlTimer); state.urlTimer = setTimeout(writeUrl, 300); });

  $("topic-list").addEventListener("click", (e) => {
    const row = e.target.closest("[data-topic]"); if (!row) return;
    const id = Number(row.dataset.topic);
    if (state.topic === id) { state.topic = null; applyFilters(); } else showTopic(id);
  });
  if (EMBEDDED) { $("views").style.display = "none"; $("key-box").style.display = "none"; }
  $("views").addEventListener("click", (e) => { const b = e.target.closest("[data-view]"); if (b) showView(b.dataset.view); });
  $("api-key").value = savedKey();
  $("api-key").addEventListener("input", () => { try { localStorage.setItem(KEY_STORE, $("api-key").value.trim()); } catch (_) { /* not kept */ } });
  $("panel").addEventListener("click", (e) => {
    if (e.target.id === "export-csv") {
      const recs = selectionRecords(), cols = ["id", "title", "date", "topic", "category", "x", "y"];
      download("paperscope-selection.csv", [cols.join(","), ...recs.map((r) => cols.map((c) => csvCell(r[c])).join(","))].join("\r\n"), "text/csv");
    } else if (e.target.id === "export-json") {
      download("paperscope-selection.json", JSON.stringify(selectionRecords(), null, 1), "application/json");
    } else if (e.target.id === "add-to-collection") {
      addToCollection(state.paper);
    } else if (e.target.closest("[data-view]")) {
      showView(e.target.closest("[data-view]").dataset.view);
    } else if (e.target.closest("[data-open-topic]")) {
      showTopic(Number(e.target.closest("[data-open-topic]").dataset.openTopic));
    } else if (e.target.closest("[data-collection]")) {
      showFeed(e.target.closest("[data-collection]").dataset.collection);
    } else { const row = e.target.closest("[data-id]"); if (row) showPaper(row.dataset.id, { zoom: true }); }
  });
  $("panel").addEventListener("focusin", (e) => { if (e.target.id === "collection-name") fillCollectionNames(); });
  $("panel").addEventListener("change", (e) => {
    const months = Number(e.target.value);
    if (e.target.id === "trend-months" && Number.isInteger(months) && months >= 1 && months <= 120) showTrending(months);
  });
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); runSearch($("q").value.trim()); });
  for (const k of ["from", "to", "cat"]) $(k).addEventListener("change", () => { state[k] = $(k).value; applyFilters(); });
  $("colour-by").addEventListener("change", () => recolour($("colour-by").value));
  $("clear").addEventListener("click", () => { Object.assign(state, { topic: null, from: "", to: "", cat: "" });
    for (const k of ["from", "to", "cat"]) $(k).value = ""; applyFilters(); });
  window.addEventListener("resize", () => { scatterplot.set({ width: canvas.clientWidth, height: canvas.clientHeight }); drawLabels(); });

  // restore shared state from the URL
  const saved = readUrl();
  const knownCat = saved.cat !== "" && Number(saved.cat) >= 0 && Number(saved.cat) < data.categories.length;
  Object.assign(state, { topic: saved.topic, from: saved.from, to: saved.to, cat: knownCat ? saved.cat : "" });
  for (const k of ["from", "to", "cat"]) $(k).value = state[k];
  applyFilters();
  if (saved.view) scatterplot.zoomToLocation([toGl(saved.view[0]), toGl(saved.view[1])], 1 / (saved.view[2] * (GL_DOMAIN[1] - GL_DOMAIN[0])));
  if (state.topic !== null && !saved.q && !saved.paper) await showTopic(state.topic);
  if (saved.q) { $("q").value = saved.q; await runSearch(saved.q); }
  if (saved.paper) await showPaper(saved.paper);
  drawLabels();
  window.paperscope = { state, scatterplot, webgl: scatterplot.webgl !== false, ready: true };
}
load().catch((err) => { $("meta").textContent = err.message; window.paperscope = { error: err.message, ready: true }; });
