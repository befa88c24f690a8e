/* Pixelmerge web UI: progressive enhancements. Every page works without this file; with it,
   progress bars move on their own, Sync now does not leave the page, previews update as you
   type, and secrets copy with one click. No framework, no build step. */
(function () {
  "use strict";
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const csrf = () => ($('meta[name="csrf-token"]') || {}).content || "";

  function onReady(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  /* the menu on small screens */
  function navToggle() {
    const button = $("[data-toggle-nav]"), sidebar = $("#sidebar");
    if (!button || !sidebar) return;
    button.addEventListener("click", () => {
      const open = sidebar.classList.toggle("open");
      button.setAttribute("aria-expanded", String(open));
    });
  }

  /* copy buttons: copy the input beside them */
  function copyButtons(root) {
    $$("[data-copy]", root).forEach((button) => button.addEventListener("click", async () => {
      const input = button.parentElement.querySelector("input, textarea, code");
      const text = input.value !== undefined ? input.value : input.textContent;
      try {
        await navigator.clipboard.writeText(text);
      } catch (err) {
        input.select && input.select();
        document.execCommand("copy");
      }
      const label = button.querySelector("span") || button;
      const before = label.textContent;
      label.textContent = "Copied";
      button.dataset.copied = "true";
      setTimeout(() => { label.textContent = before; }, 2000);
    }));
  }

  /* forms that ask before they delete */
  function confirmForms(root) {
    $$("form[data-confirm]", root).forEach((form) => form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    }));
  }

  /* live progress: poll a JSON endpoint, move the bar, fill [data-field] elements, and when the
     work ends replace the page's [data-live-region] parts with fresh ones */
  function poller(box) {
    const url = box.dataset.progressUrl;
    let timer = null, wasActive = box.dataset.active === "true";
    async function tick() {
      let data;
      try {
        const answer = await fetch(url, {headers: {Accept: "application/json"}, credentials: "same-origin"});
        if (answer.status === 401) { window.location.reload(); return; }
        data = await answer.json();
      } catch (err) {
        timer = setTimeout(tick, 3000);
        return;
      }
      show(box, data);
      if (data.active) {
        wasActive = true;
        timer = setTimeout(tick, 700);
      } else if (wasActive) {
        wasActive = false;
        refreshRegions();
      }
    }
    box.startPolling = () => { clearTimeout(timer); wasActive = true; tick(); };
    if (wasActive) tick();
  }

  function show(box, data) {
    const progress = $(".progress", box);
    if (progress) {
      const bar = $(".bar", progress);
      progress.classList.toggle("indeterminate", Boolean(data.indeterminate));
      progress.classList.toggle("done", data.state === "completed");
      progress.classList.toggle("failed", data.state === "failed");
      bar.style.width = (data.percent || 0) + "%";
      progress.setAttribute("aria-valuenow", String(data.percent || 0));
      progress.dataset.state = data.state || "";
    }
    Object.entries(data.fields || {}).forEach(([name, value]) => {
      $$(`[data-field="${name}"]`, box).forEach((el) => {
        if (el.classList.contains("badge")) el.className = "badge badge-" + String(value).replace(/ /g, "-");
        el.textContent = value === null || value === undefined ? "—" : value;
      });
    });
    box.dataset.state = data.state || "";
  }

  async function refreshRegions() {
    const answer = await fetch(window.location.href, {credentials: "same-origin"});
    if (!answer.ok) return;
    const doc = new DOMParser().parseFromString(await answer.text(), "text/html");
    $$("[data-live-region]").forEach((region) => {
      const fresh = doc.getElementById(region.id);
      if (fresh) { region.replaceWith(fresh); copyButtons(fresh); confirmForms(fresh); }
    });
  }

  /* forms that start work without leaving the page (Sync now) */
  function asyncForms() {
    $$("form[data-async]").forEach((form) => form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = $("button[type=submit]", form);
      button && button.setAttribute("aria-busy", "true");
      try {
        const answer = await fetch(form.action, {method: "POST", body: new FormData(form),
          headers: {Accept: "application/json", "X-CSRFToken": csrf()}, credentials: "same-origin"});
        const data = await answer.json().catch(() => ({}));
        if (!answer.ok) {
          if (answer.status === 401) { window.location.reload(); return; }
          alertBox(form, (data.error && data.error.message) || "That did not work.");
          return;
        }
        const box = document.getElementById(form.dataset.async);
        if (box && box.startPolling) box.startPolling();
      } finally {
        button && button.removeAttribute("aria-busy");
      }
    }));
  }

  function alertBox(near, message) {
    let box = near.parentElement.querySelector(".flash-error[data-js]");
    if (!box) {
      box = document.createElement("p");
      box.className = "flash flash-error";
      box.dataset.js = "true";
      box.setAttribute("role", "alert");
      near.parentElement.insertBefore(box, near);
    }
    box.textContent = message;
  }

  /* template previews: re-render as the sample values change */
  function previews() {
    $$("form[data-preview]").forEach((form) => {
      const stage = document.getElementById(form.dataset.preview);
      const img = $("img", stage), note = $("[data-preview-error]", stage.parentElement);
      let timer = null, current = null;
      async function update() {
        const url = form.action + "?" + new URLSearchParams(new FormData(form)).toString();
        stage.setAttribute("aria-busy", "true");
        const mine = current = Symbol("preview");
        try {
          const answer = await fetch(url, {credentials: "same-origin"});
          if (mine !== current) return;
          if (!answer.ok) {
            note.textContent = await answer.text();
            note.hidden = false;
            return;
          }
          note.hidden = true;
          const old = img.src;
          img.src = URL.createObjectURL(await answer.blob());
          if (old.startsWith("blob:")) URL.revokeObjectURL(old);
        } finally {
          if (mine === current) stage.removeAttribute("aria-busy");
        }
      }
      form.addEventListener("submit", (event) => { event.preventDefault(); update(); });
      form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, 400); });
      form.addEventListener("change", () => { clearTimeout(timer); timer = setTimeout(update, 50); });
    });
  }

  /* Google Sheets: offer the spreadsheet's tabs for the worksheet field */
  function worksheetPicker() {
    $$("[data-worksheets-url]").forEach((form) => {
      const sheet = $('[name="spreadsheet"]', form), tab = $('[name="worksheet"]', form);
      if (!sheet || !tab) return;
      const list = document.createElement("datalist");
      list.id = "worksheets-" + Math.random().toString(36).slice(2);
      tab.setAttribute("list", list.id);
      tab.after(list);
      const hint = document.createElement("p");
      hint.className = "help";
      tab.parentElement.append(hint);
      async function load() {
        if (!sheet.value.trim()) return;
        const params = new URLSearchParams(new FormData(form));
        params.delete("csrf_token");
        hint.textContent = "Looking for the spreadsheet's tabs…";
        const answer = await fetch(form.dataset.worksheetsUrl + "?" + params, {credentials: "same-origin"});
        const data = await answer.json().catch(() => ({}));
        if (!answer.ok) { hint.textContent = (data.error && data.error.message) || "Could not open the spreadsheet."; return; }
        list.replaceChildren(...data.worksheets.map((name) => Object.assign(document.createElement("option"), {value: name})));
        hint.textContent = `"${data.title}" has ${data.worksheets.length} tab(s): ${data.worksheets.join(", ")}`;
        if (!tab.value && data.worksheets.length) tab.placeholder = data.worksheets[0];
      }
      sheet.addEventListener("change", load);
      if (sheet.value) load();
    });
  }

  /* a form whose page was left because the session ended keeps what was typed: the values are
     kept in this tab's sessionStorage when it is sent, and put back if the same form comes back
     empty after signing in again */
  function drafts() {
    $$("form[data-draft]").forEach((form) => {
      const key = "pixelmerge-draft:" + location.pathname + ":" + form.dataset.draft;
      const saved = sessionStorage.getItem(key);
      if (saved && document.body.dataset.restoreDrafts === "true") {
        const values = JSON.parse(saved);
        $$("input, select, textarea", form).forEach((el) => {
          if (el.name in values && el.type !== "hidden" && el.type !== "password" && el.type !== "file" && !el.value) {
            if (el.type === "checkbox") el.checked = values[el.name] === "y"; else el.value = values[el.name];
          }
        });
      }
      sessionStorage.removeItem(key);
      form.addEventListener("submit", () => {
        const values = {};
        new FormData(form).forEach((value, name) => { if (typeof value === "string" && name !== "csrf_token") values[name] = value; });
        sessionStorage.setItem(key, JSON.stringify(values));
      });
    });
  }

  /* follow(url, seconds, show): ask a JSON endpoint every few seconds and hand the answer to
     show(); a signed-out session reloads the page (to the sign-in), errors wait for the next
     round. Pages with live numbers or pictures call it from their own small scripts. */
  function follow(url, seconds, show) {
    async function tick() {
      try {
        const answer = await fetch(url, {headers: {Accept: "application/json"}, credentials: "same-origin"});
        if (answer.status === 401) { window.location.reload(); return; }
        if (answer.ok) show(await answer.json());
      } catch (err) { /* the next round tries again */ }
      setTimeout(tick, seconds * 1000);
    }
    setTimeout(tick, seconds * 1000);
  }
  window.Pixelmerge = {follow, onReady};

  onReady(() => {
    navToggle();
    copyButtons();
    confirmForms();
    $$("[data-progress-url]").forEach(poller);
    asyncForms();
    previews();
    worksheetPicker();
    drafts();
  });
})();
