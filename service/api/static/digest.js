"use strict";
// Email digests: a "subscribe" form under a collection's feed. It watches the side panel for the
// feed view (app.js draws it) and adds the form there; the subscription is a write, so it sends
// the API key typed in the left panel (app.js keeps it in this browser's localStorage).
(() => {
  if (window.PAPERSCOPE_EMBEDDED) return;  // an exported page has no server to subscribe with
  const KEY_STORE = "paperscope.apiKey";
  const key = () => { try { return localStorage.getItem(KEY_STORE) || ""; } catch (_) { return ""; } };
  const panel = document.getElementById("panel");
  if (!panel) return;

  function addForm() {
    const title = document.getElementById("feed-title");
    if (!title || document.getElementById("digest-form")) return;
    const name = title.textContent.replace(/^Feed: /, "");
    const form = document.createElement("form");
    form.id = "digest-form";
    form.className = "row";
    const email = Object.assign(document.createElement("input"), {
      id: "digest-email", type: "email", required: true, maxLength: 254,
      placeholder: "you@example.org", autocomplete: "email",
    });
    const button = Object.assign(document.createElement("button"), { type: "submit", textContent: "Email me new papers" });
    const status = Object.assign(document.createElement("p"), { id: "digest-status", className: "muted" });
    form.append(email, button);
    form.addEventListener("submit", (e) => { e.preventDefault(); subscribe(name, email.value.trim(), status); });
    title.after(form, status);
  }

  async function subscribe(name, email, status) {
    status.textContent = "subscribing…";
    const headers = { "Content-Type": "application/json" };
    if (key()) headers["X-API-Key"] = key();
    try {
      const r = await fetch(`api/v1/collections/${encodeURIComponent(name)}/subscribers`,
        { method: "POST", headers, body: JSON.stringify({ email }) });
      let answer = null;
      try { answer = await r.json(); } catch (_) { /* not JSON */ }
      if (!r.ok) throw new Error(answer && answer.error ? answer.error.message : `${r.status} ${r.statusText}`);
      status.textContent = r.status === 201 ? `${answer.email} will get the new papers of ${name} by email.`
                                            : `${answer.email} was subscribed already.`;
    } catch (err) { status.textContent = err.message; }
  }

  new MutationObserver(addForm).observe(panel, { childList: true, subtree: true });
})();
