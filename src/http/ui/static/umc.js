// umc web console: small progressive enhancements. Every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // "Go back" links on error pages.
  for (const a of document.querySelectorAll("a[data-back]")) {
    a.addEventListener("click", (e) => {
      if (history.length > 1) { e.preventDefault(); history.back(); }
    });
  }
  // Forms that ask before they change much: <form data-confirm="…">.
  for (const f of document.querySelectorAll("form[data-confirm]")) {
    f.addEventListener("submit", (e) => {
      if (!window.confirm(f.dataset.confirm)) e.preventDefault();
    });
  }
  // Package-name autocomplete: <input data-suggest="/ui/catalog/suggest" list="…">.
  for (const input of document.querySelectorAll("input[data-suggest]")) {
    const list = document.getElementById(input.getAttribute("list"));
    if (!list) continue;
    let timer = null;
    let last = "";
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const q = input.value.trim();
        if (q.length < 2 || q === last) return;
        last = q;
        try {
          const r = await fetch(input.dataset.suggest + "?q=" + encodeURIComponent(q), { credentials: "same-origin" });
          if (!r.ok) return;
          const names = await r.json();
          list.replaceChildren(...names.map((n) => { const o = document.createElement("option"); o.value = n; return o; }));
        } catch (_) { /* offline: typing still works */ }
      }, 150);
    });
  }
});
