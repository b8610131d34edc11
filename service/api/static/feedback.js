"use strict";
// Thumbs up and down on a collection's feed and on "papers like this", and the "help me decide"
// list (POST /collections/{name}/feedback, GET /collections/{name}/uncertain). Loaded after
// app.js, whose helpers (api, $, esc, feedRow, showFeed) it uses; it adds its controls to the
// panel whenever app.js fills it, and takes its own clicks before app.js's (capture phase).
(() => {
  if (window.PAPERSCOPE_EMBEDDED) return;  // an exported map has no server to rate on
  const panel = $("panel");
  const thumbs = (name) => `<span class="thumbs" data-thumbs-for="${esc(name)}">
    <button data-rate="up" title="more like this (needs the key)">👍</button><button data-rate="down" title="not for me (needs the key)">👎</button></span>`;
  const feedName = () => ($("feed-title") ? $("feed-title").textContent.replace(/^Feed: /, "") : null);

  function decorate(list, name) {
    for (const row of list.querySelectorAll(".hit[data-id]")) {
      if (!row.querySelector(".thumbs")) row.insertAdjacentHTML("beforeend", thumbs(name));
    }
  }

  async function feedHeader(name) {
    const feed = $("feed");
    if (!feed || $("feed-ranking")) return;
    feed.insertAdjacentHTML("beforebegin", `<p class="muted" id="feed-ranking"></p>
      <p><button id="help-decide">Help me decide</button> <small class="muted" id="rate-status"></small></p><div id="uncertain"></div>`);
    try {
      const [head, collection] = await Promise.all([
        api(`/collections/${encodeURIComponent(name)}/feed?limit=1`), api(`/collections/${encodeURIComponent(name)}`)]);
      $("feed-ranking").textContent = `Ranked by ${head.ranking === "classifier" ? "its classifier" : "seed similarity"}: ${head.ranking_note}.`;
      if (!feed.querySelector(".hit")) feed.innerHTML = `<p class="muted" id="feed-empty">${esc(emptyWhy(collection))}</p>`;
    } catch (err) { $("feed-ranking").textContent = err.message; }
  }

  // Why a feed lists nothing: its seeds are gone, or every paper is already in it or seen.
  function emptyWhy(c) {
    if (c.positive.every((id) => c.missing.includes(id))) return "Nothing to rank by: every paper of this collection was deleted since. Add a paper to it.";
    return `Nothing new: every served paper is one of its ${c.positive.length + c.negative.length} papers or already seen (${c.seen.length} rated or seen). New papers appear here when they are added or synced.`;
  }

  async function helpMeDecide(name) {
    const box = $("uncertain");
    box.innerHTML = `<p class="muted">asking…</p>`;
    try {
      const list = await api(`/collections/${encodeURIComponent(name)}/uncertain?k=10`);
      box.innerHTML = `<h3>Help me decide</h3><p class="muted">${esc(list.ranking_note)}.</p>
        <div id="uncertain-list">${list.results.map(feedRow).join("") || `<p class="muted">Nothing left to rate.</p>`}</div>`;
      decorate($("uncertain-list"), name);
    } catch (err) { box.innerHTML = `<p>${esc(err.message)}</p>`; }
  }

  async function rate(button) {
    const row = button.closest(".hit[data-id]"), name = button.closest("[data-thumbs-for]").dataset.thumbsFor
      || ($("collection-name") ? $("collection-name").value.trim() : "");
    const status = $("rate-status") || $("collection-status");
    if (!name) { if (status) status.textContent = "Type a collection name above to rate papers for it."; return; }
    try {
      await api(`/collections/${encodeURIComponent(name)}/feedback`, { method: "POST", body: { paper_id: row.dataset.id, rating: button.dataset.rate } });
      row.classList.add(button.dataset.rate === "up" ? "rated-up" : "rated-down");
      for (const b of row.querySelectorAll("[data-rate]")) b.disabled = true;
      if (status) status.textContent = `Saved: ${button.dataset.rate === "up" ? "👍" : "👎"} for ${name}. Open the feed again to see it re-ranked.`;
      if ($("feed-ranking")) {
        const head = await api(`/collections/${encodeURIComponent(name)}/feed?limit=1`);
        $("feed-ranking").textContent = `Ranked by ${head.ranking === "classifier" ? "its classifier" : "seed similarity"}: ${head.ranking_note}.`;
      }
    } catch (err) { if (status) status.textContent = err.message; }
  }

  panel.addEventListener("click", (e) => {
    const button = e.target.closest("[data-rate]");
    if (button) { e.stopPropagation(); rate(button); return; }
    if (e.target.id === "help-decide") { e.stopPropagation(); helpMeDecide(feedName()); }
  }, true);

  new MutationObserver(() => {
    const name = feedName();
    if (name !== null && $("feed")) { decorate($("feed"), name); feedHeader(name); }
    if ($("similar")) decorate($("similar"), "");
  }).observe(panel, { childList: true });
})();
