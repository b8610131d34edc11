"use strict";
// Curation on the map page (served pages only): rename a topic and merge other topics into it
// from the topic panel, move a paper to another topic from the paper panel, list and undo edits.
// Writes send the API key typed in the left panel; after one, the page reloads its data (the
// URL keeps the view). Everything a user or a paper wrote is set as text, never as HTML.
(() => {
  if (window.PAPERSCOPE_EMBEDDED) return;  // the exported offline map has no server to write to
  const KEY_STORE = "paperscope.apiKey";
  const key = () => { try { return localStorage.getItem(KEY_STORE) || ""; } catch (_) { return ""; } };
  const el = (tag, props = {}, ...children) => {
    const node = Object.assign(document.createElement(tag), props);
    for (const child of children) node.append(child);
    return node;
  };
  async function call(method, path, body) {
    const init = { method, headers: { "X-API-Key": key() } };
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    const r = await fetch("api/v1" + path, init);
    if (r.status === 204) return null;
    let answer = null;
    try { answer = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) throw new Error(answer && answer.error ? answer.error.message : `${r.status} ${r.statusText}`);
    return answer;
  }
  const state = () => (window.paperscope && window.paperscope.state) || null;
  const topics = () => {
    const s = state();
    return s ? [...s.topicOf.values()].filter((t) => t.id >= 0).sort((a, b) => (a.name || a.label).localeCompare(b.name || b.label)) : [];
  };
  const topicSelect = (id, skip) => {
    const select = el("select", { id });
    for (const t of topics()) if (t.id !== skip) select.append(el("option", { value: String(t.id), text: `${t.name || t.label} (${t.size})` }));
    return select;
  };
  function box(run, ...controls) {
    const note = el("p", { className: "muted curation-note" });
    const form = el("form", { className: "curation" }, ...controls, note);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!key()) { note.textContent = "Type the API key in the left panel first."; return; }
      note.textContent = "saving…";
      try { await run(); note.textContent = "saved; reloading…"; location.reload(); } catch (err) { note.textContent = err.message; }
    });
    return form;
  }
  function topicTools(id) {
    const t = state().topicOf.get(id);
    const name = el("input", { id: "topic-name", type: "text", maxLength: 100, value: t ? (t.name || t.label) : "" });
    const into = topicSelect("merge-topic", id);
    return el("div", { id: "curation-topic" },
      el("h3", { text: "Curate" }),
      box(() => call("PUT", `/topics/${id}/name`, { name: name.value }),
        el("label", {}, "Name ", name), el("button", { type: "submit", id: "rename-topic", text: "Rename" })),
      box(() => call("POST", "/topics/merge", { into: id, topics: [Number(into.value)] }),
        el("label", {}, "Merge into this ", into), el("button", { type: "submit", id: "merge-topics", text: "Merge" })),
      el("button", { type: "button", id: "show-edits", text: "Edits…", onclick: showEdits }));
  }
  function paperTools(paperId) {
    const to = topicSelect("move-topic", null);
    return el("div", { id: "curation-paper" },
      box(() => call("POST", `/topics/${to.value}/papers`, { paper_ids: [paperId] }),
        el("label", {}, "Move to topic ", to), el("button", { type: "submit", id: "move-paper", text: "Move" })));
  }
  async function showEdits() {
    const list = el("div", { id: "topic-edits" }, el("p", { className: "muted", text: "loading…" }));
    document.getElementById("curation-topic").append(list);
    try {
      const edits = await call("GET", "/topics/edits");
      list.replaceChildren(...(edits.length ? edits.map(editRow) : [el("p", { className: "muted", text: "No edits yet." })]));
    } catch (err) { list.replaceChildren(el("p", { text: err.message })); }
  }
  function editRow(e) {
    const what = e.kind === "rename" ? `name “${e.name}”` : e.kind === "merge" ? `merged ${e.topics.join(", ")}` : `${e.paper_ids.length} papers moved`;
    const undo = box(() => call("DELETE", `/topics/edits/${e.id}`), el("button", { type: "submit", className: "undo-edit", text: "Undo" }));
    return el("div", { className: "edit" + (e.status === "orphaned" ? " orphaned" : "") },
      el("span", { text: `#${e.id} ${e.kind} topic ${e.topic}: ${what} (${e.status})` }), undo);
  }
  // The panel is redrawn by app.js; add the tools under a topic's or a paper's title (also to a
  // panel app.js opened from the URL before the page was ready).
  function attach() {
    const s = state();
    if (!s) return;
    const topicTitle = document.getElementById("topic-title"), paperTitle = document.getElementById("paper-title");
    if (topicTitle && s.topic !== null && !document.getElementById("curation-topic")) {
      topicTitle.nextElementSibling.after(topicTools(s.topic));
    }
    if (paperTitle && s.paper && !document.getElementById("curation-paper")) paperTitle.after(paperTools(s.paper));
  }
  new MutationObserver(attach).observe(document.getElementById("panel"), { childList: true, subtree: true });
  const waiting = setInterval(() => { if (window.paperscope) { clearInterval(waiting); attach(); } }, 200);
})();
