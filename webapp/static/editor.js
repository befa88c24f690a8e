/* Pixelmerge's visual editor for layered templates. No framework, no build step.

   The working copy is the template's JSON. Every change goes through `change()`, which keeps an
   undo step, stores the copy in localStorage (a session that ends mid-edit loses nothing) and
   asks for a new picture. The canvas is the server's render of the working copy; the layer
   boxes drawn over it are the only thing drawn here. Previews are debounced, a newer request
   cancels an older one, and pictures are kept by their request body so undo and redo answer
   at once. */
(function () {
  "use strict";
  const root = document.getElementById("editor");
  if (!root) return;
  const config = JSON.parse(document.getElementById("editor-config").textContent);
  const $ = (sel, el) => (el || root).querySelector(sel);
  const $$ = (sel, el) => Array.from((el || root).querySelectorAll(sel));
  const make = (tag, props, ...children) => {
    const {dataset, ...rest} = props || {};
    const el = Object.assign(document.createElement(tag), rest);
    Object.assign(el.dataset, dataset || {});
    children.flat().forEach((c) => c !== null && c !== undefined && el.append(c));
    return el;
  };
  const clone = (value) => JSON.parse(JSON.stringify(value));
  const STORE = `pixelmerge-editor:${config.userId}:${config.templateId}`;
  const PER_SIZE = new Set(["x", "y", "width", "height", "rotation", "size"]);
  const GEOMETRY = ["x", "y", "width", "height"];
  const EXPR = /\{\{|\{%/;
  const PLACEHOLDER = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAAFElEQVR42mM8ffUhAwwwMSABFA4AXSsCh6gcrK4AAAAASUVORK5CYII=";
  const GLYPHS = {text: "T", image: "▨", rect: "■", ellipse: "●", qr: "▦"};
  const TYPE_LABELS = {text: "Text", image: "Image", rect: "Rectangle", ellipse: "Ellipse", qr: "QR code"};
  const GROUPS = {  // the order and grouping of the properties panel; others follow in model order
    text: [["Text", ["text"]],
           ["Font", ["font", "weight", "size", "min_size", "fit", "max_lines", "line_height",
                     "letter_spacing", "transform"]],
           ["Colour and alignment", ["color", "align", "valign", "stroke", "stroke_width", "shadow"]]],
  };
  const WIDE = new Set(["text", "src", "data", "fallback", "shadow", "font", "fill"]);
  const FILTERS = ["upper", "currency", "number(0)", "percent", "date(\"d MMM yyyy\")",
                   "default(\"…\")", "truncate(40)"];

  const el = {
    app: $("[data-ed-app]"), fallback: $("[data-ed-fallback]"), list: $("[data-ed-layer-list]"),
    canvas: $("[data-ed-canvas]"), image: $("[data-ed-image]"), overlay: $("[data-ed-overlay]"),
    props: $("[data-ed-props]"), propsTitle: $("[data-ed-props-title]"), samples: $("[data-ed-samples]"),
    size: $("[data-ed-size]"), renderState: $("[data-ed-render-state]"), source: $("[data-ed-source]"),
    error: $("[data-ed-error]"), errorText: $("[data-ed-error-text]"), errorShow: $("[data-ed-error-show]"),
    status: $("[data-ed-status]"), signedOut: $("[data-ed-signed-out]"), restore: $("[data-ed-restore]"),
    undo: document.querySelector("[data-ed-undo]"), redo: document.querySelector("[data-ed-redo]"),
    save: document.querySelector("[data-ed-save]"), actions: document.querySelector("[data-ed-actions]"),
    version: document.querySelector("[data-ed-version]"),
  };

  let doc = clone(config.template);
  let savedJSON = JSON.stringify(doc);  // what the server holds as the current version
  let version = config.version;
  let selected = null;  // a layer's name
  let sizeName = "";
  let samples = initialSamples();
  let problem = null;  // the last error: {message, path}
  let columns = null;  // the bound sheets' columns, fetched when first asked for
  const history = {past: [], future: [], tag: null, at: 0};

  /* ------------------------------------------------------------ the working copy */

  function layers() {
    if (!Array.isArray(doc.layers)) doc.layers = [];
    return doc.layers;
  }
  const layerByName = (name) => layers().find((l) => l.name === name) || null;
  const variant = () => (sizeName && doc.sizes && doc.sizes[sizeName]) || null;

  function override(name, create) {
    const v = variant();
    if (!v) return null;
    if (!v.layers && create) v.layers = {};
    if (v.layers && !v.layers[name] && create) v.layers[name] = {};
    return v.layers ? v.layers[name] || null : null;
  }

  function effective(layer) {
    return Object.assign({}, layer, override(layer.name, false) || {});
  }

  function canvasSize() {
    const v = variant();
    return {w: Number((v && v.width) || doc.width) || 1, h: Number((v && v.height) || doc.height) || 1};
  }

  /* a property of a layer: in a size variant, position, size and font size belong to the size */
  function setProp(layer, prop, value) {
    let target = layer;
    if (variant() && PER_SIZE.has(prop)) target = override(layer.name, true);
    if (value === undefined) delete target[prop]; else target[prop] = value;
    if (target !== layer && !Object.keys(target).length) delete variant().layers[layer.name];
  }

  /* an undo step before a change; steps with the same tag in quick succession are one step
     (typing a word, nudging with the arrows) */
  function record(tag) {
    const now = Date.now();
    if (!(tag && tag === history.tag && now - history.at < 1200)) {
      history.past.push(JSON.stringify(doc));
      if (history.past.length > 300) history.past.shift();
    }
    history.tag = tag || null;
    history.at = now;
    history.future = [];
  }

  function change(tag, mutate, opts) {
    record(tag);
    mutate();
    afterChange(opts || {});
  }

  function afterChange(opts) {
    if (selected && !layerByName(selected)) selected = null;
    persist();
    renderList();
    renderOverlay();
    if (opts.props === false) syncProps(); else renderProps();
    if (opts.samples !== false) renderSamples();
    renderSource();
    updateButtons();
    schedulePreview();
  }

  function undo() {
    if (!history.past.length) return;
    history.future.push(JSON.stringify(doc));
    doc = JSON.parse(history.past.pop());
    history.tag = null;
    afterChange({});
  }

  function redo() {
    if (!history.future.length) return;
    history.past.push(JSON.stringify(doc));
    doc = JSON.parse(history.future.pop());
    history.tag = null;
    afterChange({});
  }

  function updateButtons() {
    el.undo.disabled = !history.past.length;
    el.redo.disabled = !history.future.length;
    const dirty = JSON.stringify(doc) !== savedJSON;
    el.save.textContent = dirty ? `Save as version ${version + 1}` : "Save as a new version";
    root.dataset.dirty = String(dirty);
  }

  /* ------------------------------------------------------------ kept in this browser */

  function persist() {
    try {
      if (JSON.stringify(doc) === savedJSON) localStorage.removeItem(STORE);
      else localStorage.setItem(STORE, JSON.stringify({version, at: Date.now(), template: doc}));
    } catch (err) { /* private mode or full: the session keeps working, unprotected */ }
    if (!el.restore.hidden && history.past.length) el.restore.hidden = true;
  }

  function offerRestore() {
    let kept;
    try { kept = JSON.parse(localStorage.getItem(STORE) || "null"); } catch (err) { kept = null; }
    if (!kept || !kept.template || JSON.stringify(kept.template) === savedJSON) return;
    const when = new Date(kept.at).toLocaleString();
    const later = kept.version !== version ? ` (the template has been saved since: it is now at version ${version})` : "";
    $("[data-ed-restore-text]").textContent =
      `This browser kept unsaved changes from ${when}, made on version ${kept.version}${later}.`;
    el.restore.hidden = false;
    $("[data-ed-restore-yes]").onclick = () => {
      el.restore.hidden = true;
      change(null, () => { doc = kept.template; });
    };
    $("[data-ed-restore-no]").onclick = () => {
      el.restore.hidden = true;
      try { localStorage.removeItem(STORE); } catch (err) { /* nothing kept */ }
    };
  }

  /* ------------------------------------------------------------ sample data */

  function initialSamples() {
    const values = {};
    Object.entries(doc.variables || {}).forEach(([name, spec]) => {
      const value = spec && (spec.sample !== undefined && spec.sample !== null ? spec.sample : spec.default);
      values[name] = value === undefined || value === null ? "" : (typeof value === "string" ? value : JSON.stringify(value));
    });
    return values;
  }

  const KEYWORDS = new Set(["if", "else", "elif", "endif", "for", "endfor", "in", "and", "or", "not",
    "is", "true", "false", "none", "True", "False", "None", "loop", "range", "set", "endset"]);

  /* the variables the working copy names: declared ones, then those its expressions read */
  function variableNames() {
    const names = new Set(Object.keys(doc.variables || {}));
    const walk = (value) => {
      if (typeof value === "string") {
        for (const m of value.matchAll(/\{\{([\s\S]*?)\}\}|\{%([\s\S]*?)%\}/g)) {
          const code = (m[1] || m[2] || "").replace(/"[^"]*"|'[^']*'/g, "").split("|")[0];
          for (const id of code.matchAll(/(?<![.\w])([A-Za-z_]\w*)/g)) {
            if (!KEYWORDS.has(id[1])) names.add(id[1]);
          }
        }
      } else if (Array.isArray(value)) value.forEach(walk);
      else if (value && typeof value === "object") Object.values(value).forEach(walk);
    };
    walk(doc.layers);
    walk(doc.sizes);
    walk(doc.background);
    config.variables.forEach((n) => names.add(n));
    return Array.from(names);
  }

  function renderSamples() {
    const names = variableNames();
    const focused = document.activeElement && el.samples.contains(document.activeElement) ? document.activeElement.name : null;
    const fields = names.map((name) => {
      const spec = (doc.variables || {})[name] || {};
      const input = make("input", {type: "text", id: `ed-var-${name}`, name, value: samples[name] !== undefined ? samples[name] : ""});
      input.addEventListener("input", () => { samples[name] = input.value; schedulePreview(); });
      return make("div", {className: "field ed-field", dataset: {variable: name}},
        make("label", {htmlFor: input.id}, name, make("span", {className: "meta", textContent: spec.type || "text"})),
        input, make("p", {className: "error", hidden: true}));
    });
    if (!fields.length) fields.push(make("p", {className: "help", textContent: "The template has no variables yet: bind a property with { } to add one."}));
    el.samples.replaceChildren(...fields);
    if (focused && el.samples.elements[focused]) el.samples.elements[focused].focus();
    showProblem();
  }

  function keepSamples() {
    change(null, () => {
      doc.variables = doc.variables || {};
      Object.entries(samples).forEach(([name, value]) => {
        if (value === "") return;
        const spec = doc.variables[name] = doc.variables[name] || {type: "text"};
        spec.sample = spec.type === "number" && value.trim() !== "" && isFinite(Number(value)) ? Number(value) : value;
      });
    });
    flashStatus("The sample values are now the template's samples (saved with the next version).");
  }

  /* ------------------------------------------------------------ the layer list */

  function renderList() {
    const items = layers().map((layer, index) => listItem(layer, index)).reverse();
    el.list.replaceChildren(...items);
  }

  function listItem(layer, index) {
    const count = layers().length;
    const kind = TYPE_LABELS[layer.type] || layer.type;
    const label = make("button", {type: "button", className: "ed-layer-name", title: `${layer.name} (${kind})`},
      make("span", {className: "ed-glyph", textContent: GLYPHS[layer.type] || "?", title: kind}), layer.name);
    label.setAttribute("aria-pressed", String(layer.name === selected));
    label.addEventListener("click", () => select(layer.name));
    const eye = make("input", {type: "checkbox", checked: layer.visible !== false, title: "Shown"});
    eye.setAttribute("aria-label", `Show ${layer.name}`);
    if (typeof layer.visible === "string") { eye.indeterminate = true; eye.title = `Shown when ${layer.visible}`; }
    eye.addEventListener("change", () => change(null, () => {
      if (eye.checked) delete layer.visible; else layer.visible = false;
    }));
    const button = (text, title, disabled, fn) => {
      const b = make("button", {type: "button", className: "ed-mini", textContent: text, title, disabled});
      b.setAttribute("aria-label", `${title}: ${layer.name}`);
      b.addEventListener("click", fn);
      return b;
    };
    const item = make("li", {className: "ed-layer"}, label, eye,
      button("▲", "Bring forward", index === count - 1, () => moveLayer(index, 1)),
      button("▼", "Send backward", index === 0, () => moveLayer(index, -1)),
      button("✕", "Delete", false, () => removeLayer(layer.name)));
    item.dataset.layer = layer.name;
    item.classList.toggle("selected", layer.name === selected);
    item.classList.toggle("is-hidden", layer.visible === false);
    item.classList.toggle("has-error", Boolean(problem && problemTarget(problem).layer === layer.name));
    return item;
  }

  function moveLayer(index, by) {
    const to = index + by;
    if (to < 0 || to >= layers().length) return;
    change(null, () => { const list = layers(); list.splice(to, 0, list.splice(index, 1)[0]); });
  }

  function removeLayer(name) {
    change(null, () => {
      doc.layers = layers().filter((l) => l.name !== name);
      Object.values(doc.sizes || {}).forEach((v) => { if (v && v.layers) delete v.layers[name]; });
      if (selected === name) selected = null;
    });
  }

  function uniqueName(base) {
    const taken = new Set(layers().map((l) => l.name));
    for (let n = 1; ; n++) if (!taken.has(`${base} ${n}`)) return `${base} ${n}`;
  }

  function addLayer(type) {
    const {w, h} = canvasSize();
    const side = Math.round(Math.min(w, h) * 0.3);
    const box = type === "text" ? {width: Math.round(w * 0.5), height: Math.round(h * 0.2)} :
      type === "qr" || type === "ellipse" ? {width: side, height: side} : {width: Math.round(w * 0.35), height: Math.round(h * 0.35)};
    const layer = {name: uniqueName(type === "qr" ? "qr" : type), type,
                   x: Math.round((w - box.width) / 2), y: Math.round((h - box.height) / 2), ...box};
    if (type === "text") Object.assign(layer, {text: "Your text", size: Math.max(8, Math.round(box.height / 2.5)), color: contrast()});
    if (type === "image") Object.assign(layer, {src: PLACEHOLDER, fit: "cover"});
    if (type === "rect") Object.assign(layer, {fill: "#4f46e5"});
    if (type === "ellipse") Object.assign(layer, {fill: "#db2777"});
    if (type === "qr") layer.data = "https://example.com";
    change(null, () => { layers().push(layer); selected = layer.name; });
  }

  /* a text colour that shows on the background: white on dark ones */
  function contrast() {
    const m = /^#([0-9a-f]{6})$/i.exec(String(doc.background || "").trim());
    if (!m) return "#111827";
    const n = parseInt(m[1], 16);
    const lum = 0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255);
    return lum < 128 ? "#ffffff" : "#111827";
  }

  function select(name) {
    if (name === selected) return;
    selected = name;
    renderList();
    renderOverlay();
    renderProps();
  }

  /* ------------------------------------------------------------ the canvas overlay */

  function renderOverlay() {
    const {w, h} = canvasSize();
    el.canvas.style.aspectRatio = `${w} / ${h}`;
    el.canvas.style.maxWidth = `min(100%, calc(70vh * ${w / h}))`;
    el.overlay.replaceChildren(...layers().map((layer) => layerBox(layer, w, h)));
  }

  const isNum = (v) => typeof v === "number" && isFinite(v);

  function layerBox(layer, w, h) {
    const e = effective(layer);
    const fixed = GEOMETRY.every((p) => isNum(e[p]) || (p === "x" || p === "y") && e[p] === undefined);
    const [x, y] = [isNum(e.x) ? e.x : 0, isNum(e.y) ? e.y : 0];
    const [bw, bh] = [isNum(e.width) ? e.width : w, isNum(e.height) ? e.height : h];
    const box = make("div", {className: "ed-box", title: fixed ? layer.name : `${layer.name}: its position is bound to data`});
    box.dataset.layer = layer.name;
    Object.assign(box.style, {left: `${x / w * 100}%`, top: `${y / h * 100}%`,
                              width: `${bw / w * 100}%`, height: `${bh / h * 100}%`});
    if (isNum(e.rotation) && e.rotation) box.style.transform = `rotate(${e.rotation}deg)`;
    box.classList.toggle("bound", !fixed);
    box.classList.toggle("is-hidden", e.visible === false);
    if (layer.name === selected) {
      box.classList.add("selected");
      box.append(make("span", {className: "ed-box-label", textContent: layer.name}));
      if (fixed) ["nw", "n", "ne", "e", "se", "s", "sw", "w"].forEach((handle) => {
        box.append(make("span", {className: "ed-handle", dataset: {handle}}));
      });
    }
    return box;
  }

  let drag = null;

  el.overlay.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    el.overlay.focus({preventScroll: true});
    const target = event.target.closest(".ed-box");
    if (!target) { select(null); return; }
    const name = target.dataset.layer;
    const handle = event.target.dataset.handle || null;
    select(name);
    const e = effective(layerByName(name));
    if (!GEOMETRY.every((p) => isNum(e[p]) || (p === "x" || p === "y") && e[p] === undefined)) return;
    event.preventDefault();
    drag = {name, handle, x0: event.clientX, y0: event.clientY, moved: false, touched: new Set(),
            scale: canvasSize().w / el.overlay.getBoundingClientRect().width,
            start: {x: e.x || 0, y: e.y || 0, width: e.width, height: e.height}};
    el.overlay.setPointerCapture(event.pointerId);
  });

  el.overlay.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = (event.clientX - drag.x0) * drag.scale, dy = (event.clientY - drag.y0) * drag.scale;
    if (!drag.moved) {
      if (Math.abs(dx) < 2 / drag.scale && Math.abs(dy) < 2 / drag.scale) return;
      record(null);  // one undo step per drag
      drag.moved = true;
    }
    const s = drag.start, h = drag.handle, next = {x: s.x, y: s.y, width: s.width, height: s.height};
    if (!h) { next.x = s.x + dx; next.y = s.y + dy; }
    if (h && h.includes("e")) next.width = Math.max(1, s.width + dx);
    if (h && h.includes("s")) next.height = Math.max(1, s.height + dy);
    if (h && h.includes("w")) { next.width = Math.max(1, s.width - dx); next.x = s.x + s.width - next.width; }
    if (h && h.includes("n")) { next.height = Math.max(1, s.height - dy); next.y = s.y + s.height - next.height; }
    const layer = layerByName(drag.name);
    Object.entries(next).forEach(([prop, value]) => {  // a move leaves the size alone
      if (!drag.touched.has(prop) && Math.round(value) === s[prop]) return;
      drag.touched.add(prop);
      setProp(layer, prop, Math.round(value));
    });
    afterChange({props: false, samples: false});
  });

  const endDrag = () => { drag = null; };
  el.overlay.addEventListener("pointerup", endDrag);
  el.overlay.addEventListener("pointercancel", endDrag);

  function nudge(dx, dy) {
    const layer = layerByName(selected);
    const e = effective(layer);
    if (!isNum(e.x === undefined ? 0 : e.x) || !isNum(e.y === undefined ? 0 : e.y)) return;
    change("nudge", () => {
      setProp(layer, "x", (e.x || 0) + dx);
      setProp(layer, "y", (e.y || 0) + dy);
    }, {props: false, samples: false});
  }

  /* ------------------------------------------------------------ the properties panel */

  const title = (prop) => (prop.charAt(0).toUpperCase() + prop.slice(1)).replace(/_/g, " ");
  const asText = (v) => v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);

  function renderProps() {
    closeMenu();
    const layer = selected && layerByName(selected);
    el.propsTitle.textContent = layer ? `${TYPE_LABELS[layer.type] || layer.type}: ${layer.name}` : "Canvas";
    el.props.replaceChildren(...(layer ? layerFieldsets(layer) : canvasFieldsets()));
    showProblem();
  }

  function layerFieldsets(layer) {
    const schema = config.props;
    const own = Object.fromEntries(schema.types[layer.type] || []);
    const e = effective(layer);
    const sets = [fieldset("Layer", [nameField(layer)]),
                  fieldset(variant() ? `Position and size (for the ${sizeName} size)` : "Position and size",
                           schema.common.map(([p, spec]) => propField(layer, e, p, spec)))];
    const groups = GROUPS[layer.type] || [[TYPE_LABELS[layer.type] || layer.type, []]];
    const placed = new Set(groups.flatMap((g) => g[1]));
    const rest = (schema.types[layer.type] || []).map(([p]) => p).filter((p) => !placed.has(p));
    groups.forEach(([label, props], i) => {
      const list = props.concat(i === groups.length - 1 ? rest : []).filter((p) => own[p]);
      sets.push(fieldset(label, list.map((p) => propField(layer, e, p, own[p]))));
    });
    return sets;
  }

  function fieldset(label, fields) {
    return make("fieldset", null, make("legend", {textContent: label}), make("div", {className: "ed-fields"}, fields));
  }

  function nameField(layer) {
    const input = make("input", {type: "text", id: "ed-prop-name", value: layer.name});
    const note = make("p", {className: "error", hidden: true});
    input.addEventListener("change", () => {
      const name = input.value.trim();
      if (name === layer.name) return;
      if (!name || layerByName(name)) {
        note.textContent = name ? `There is a layer named “${name}” already.` : "A layer needs a name.";
        note.hidden = false;
        input.value = layer.name;
        return;
      }
      note.hidden = true;
      change(null, () => {
        Object.values(doc.sizes || {}).forEach((v) => {
          if (v && v.layers && v.layers[layer.name]) { v.layers[name] = v.layers[layer.name]; delete v.layers[layer.name]; }
        });
        layer.name = name;
        selected = name;
      });
    });
    return make("div", {className: "ed-field wide", dataset: {prop: "name"}},
      make("label", {htmlFor: input.id, textContent: "Name"}), make("div", {className: "ed-control"}, input), note);
  }

  /* one property: its control (text, number, list, colour), a { } button to bind it to data,
     and a place for the renderer's message about it */
  function propField(layer, e, prop, spec) {
    const value = e[prop];
    const id = `ed-prop-${prop}`;
    const bound = typeof value === "string" && EXPR.test(value);
    const control = makeControl(prop, spec, value, bound, id);
    const overridden = variant() && PER_SIZE.has(prop) && (override(layer.name, false) || {})[prop] !== undefined;
    const label = make("label", {htmlFor: id}, title(prop), overridden ? make("small", {textContent: "this size"}) : null);
    const bind = make("button", {type: "button", className: "ed-mini ed-bind", textContent: "{ }", title: "Insert a variable"});
    bind.setAttribute("aria-label", `Bind ${title(prop).toLowerCase()} to data`);
    bind.addEventListener("click", () => openMenu(bind, (text, declare) => insertExpression(layer, prop, spec, text, declare)));
    const wrap = make("div", {className: "ed-field" + (WIDE.has(prop) ? " wide" : ""), dataset: {prop}},
      label, make("div", {className: "ed-control"}, control.nodes, bind), make("p", {className: "error", hidden: true}));
    control.onValue((raw) => change(`prop:${layer.name}:${prop}`, () => setProp(layer, prop, parse(spec, raw)),
                                    {props: false}));
    return wrap;
  }

  function makeControl(prop, spec, value, bound, id) {
    const def = spec.default === null || spec.default === undefined ? "" : String(spec.default);
    let input;
    if (!bound && (spec.kind === "enum" || spec.kind === "bool")) {
      const choices = spec.kind === "bool" ? ["true", "false"] : spec.choices;
      input = make("select", {id}, make("option", {value: "", textContent: def ? `Default (${def})` : "—"}),
        choices.map((c) => make("option", {value: c, textContent: spec.kind === "bool" ? (c === "true" ? "Yes" : "No") : c})));
      input.value = value === undefined || value === null ? "" : String(value);
    } else if (prop === "text") {
      input = make("textarea", {id, rows: 3, value: asText(value), className: bound ? "expr" : ""});
    } else {
      input = make("input", {type: "text", id, value: asText(value), placeholder: def, className: bound ? "expr" : ""});
      if (!bound && (spec.kind === "number" || spec.kind === "int")) input.inputMode = "decimal";
    }
    const nodes = [input];
    let swatch = null;
    if (!bound && (spec.kind === "color" || spec.kind === "paint")) {
      swatch = make("input", {type: "color", title: "Pick a colour", value: hex6(value) || hex6(def) || "#000000"});
      swatch.setAttribute("aria-label", `${title(prop)} picker`);
      swatch.addEventListener("input", () => { input.value = swatch.value; input.dispatchEvent(new Event("input", {bubbles: true})); });
      nodes.push(swatch);
    }
    return {nodes, onValue(fn) {
      input.addEventListener(input.tagName === "SELECT" ? "change" : "input", () => {
        if (swatch && hex6(input.value)) swatch.value = hex6(input.value);
        fn(input.value);
      });
    }};
  }

  function hex6(value) {
    const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(String(value || "").trim());
    if (!m) return null;
    const h = m[1].length === 3 ? m[1].split("").map((c) => c + c).join("") : m[1];
    return "#" + h.toLowerCase();
  }

  function parse(spec, raw) {
    if (raw === "") return spec.required ? "" : undefined;
    if (EXPR.test(raw)) return raw;
    if (spec.kind === "number" || spec.kind === "int") {
      const n = Number(raw.trim());
      return raw.trim() !== "" && isFinite(n) ? n : raw;  // the renderer says what is wrong
    }
    if (spec.kind === "bool") return raw === "true";
    if (spec.kind === "any" && /^\s*[{[]/.test(raw)) { try { return JSON.parse(raw); } catch (err) { return raw; } }
    return raw;
  }

  /* keep the panel's geometry fields in step with drags and nudges without redrawing it */
  function syncProps() {
    const layer = selected && layerByName(selected);
    if (!layer) return;
    const e = effective(layer);
    config.props.common.forEach(([prop]) => {
      const input = el.props.querySelector(`#ed-prop-${prop}`);
      if (input && input !== document.activeElement && input.tagName === "INPUT") input.value = asText(e[prop]);
    });
  }

  /* the canvas: name, size, background and the declared variables */
  function canvasFieldsets() {
    const v = variant();
    const target = v || doc;
    const top = (prop, kind, label, holder) => {
      const spec = {kind, default: null, required: prop !== "background"};
      const value = (holder || target)[prop];
      const bound = typeof value === "string" && EXPR.test(value);
      const control = makeControl(prop, spec, value, bound, `ed-prop-${prop}`);
      control.onValue((raw) => change(`doc:${prop}`, () => {
        const parsed = parse(spec, raw);
        if (parsed === undefined) delete (holder || target)[prop]; else (holder || target)[prop] = parsed;
      }, {props: false}));
      return make("div", {className: "ed-field" + (prop === "name" || prop === "background" ? " wide" : ""), dataset: {prop}},
        make("label", {htmlFor: `ed-prop-${prop}`, textContent: label}), make("div", {className: "ed-control"}, control.nodes),
        make("p", {className: "error", hidden: true}));
    };
    const canvas = [top("name", "string", "Template name", doc), top("width", "int", "Width"), top("height", "int", "Height"),
                    top("background", "paint", v ? `Background (${sizeName})` : "Background")];
    return [fieldset(v ? `Canvas (the ${sizeName} size)` : "Canvas", canvas), variablesFieldset(),
            make("p", {className: "help", textContent: "Select a layer on the canvas or in the list to change it."})];
  }

  function variablesFieldset() {
    const vars = doc.variables || {};
    const rows = Object.entries(vars).flatMap(([name, spec]) => {
      const type = make("select", {}, ["text", "number", "bool", "date", "image", "color"].map((t) => make("option", {value: t, textContent: t})));
      type.value = (spec && spec.type) || "text";
      type.setAttribute("aria-label", `Type of ${name}`);
      type.addEventListener("change", () => change(null, () => { vars[name] = {...(vars[name] || {}), type: type.value}; }));
      const sample = make("input", {type: "text", value: asText(spec && spec.sample), placeholder: "sample"});
      sample.setAttribute("aria-label", `Sample of ${name}`);
      sample.addEventListener("input", () => change(`var:${name}`, () => {
        const t = (vars[name] && vars[name].type) || "text";
        const n = Number(sample.value);
        vars[name] = {...(vars[name] || {}), sample: t === "number" && sample.value.trim() !== "" && isFinite(n) ? n : sample.value};
        if (sample.value === "") delete vars[name].sample;
        samples[name] = sample.value;
      }, {props: false}));
      const drop = make("button", {type: "button", className: "ed-mini", textContent: "✕", title: `Remove ${name}`});
      drop.addEventListener("click", () => change(null, () => { delete vars[name]; }));
      return [make("code", {textContent: name}), type, sample, drop];
    });
    const name = make("input", {type: "text", placeholder: "new variable"});
    name.setAttribute("aria-label", "New variable's name");
    const add = make("button", {type: "button", className: "button small", textContent: "Add"});
    add.addEventListener("click", () => {
      const n = name.value.trim();
      if (!/^[A-Za-z_]\w*$/.test(n)) { name.setCustomValidity("Letters, digits and _"); name.reportValidity(); return; }
      change(null, () => { doc.variables = {...(doc.variables || {}), [n]: {type: "text", sample: ""}}; });
    });
    return make("fieldset", null, make("legend", {textContent: "Variables"}),
      make("div", {className: "ed-vars"}, rows, name, make("span"), make("span"), add));
  }

  /* ------------------------------------------------------------ binding to data */

  let menu = null;

  function closeMenu() {
    if (menu) { menu.remove(); menu = null; }
  }

  async function openMenu(anchor, insert) {
    closeMenu();
    const box = menu = make("div", {className: "ed-menu", role: "menu"});
    const item = (text, code, value) => {
      const b = make("button", {type: "button", role: "menuitem"}, text, code ? make("code", {textContent: code}) : null);
      b.addEventListener("click", () => { closeMenu(); insert(value); });
      return b;
    };
    const names = variableNames();
    box.append(make("h3", {textContent: "Variables"}),
      ...(names.length ? names.map((n) => item(n, `{{ ${n} }}`, `{{ ${n} }}`)) : [make("p", {textContent: "None yet."})]));
    box.append(newVariableForm(insert), make("h3", {textContent: "Filters"}),
      ...FILTERS.map((f) => item(`| ${f.split("(")[0]}`, null, `| ${f}`)));
    const sheet = make("div");
    if (config.bound) box.append(make("h3", {textContent: "Sheet columns"}), sheet);
    document.body.append(box);
    const r = anchor.getBoundingClientRect();
    box.style.top = `${window.scrollY + r.bottom + 4}px`;
    box.style.left = `${Math.max(8, window.scrollX + r.right - box.offsetWidth)}px`;
    box.querySelector("button").focus();
    if (!config.bound) return;
    sheet.replaceChildren(make("p", {textContent: "Reading the sheet…"}));
    const found = await loadColumns();
    if (menu !== box) return;
    sheet.replaceChildren(...(found.columns.length
      ? found.columns.map((c) => item(c.column, `{{ ${c.variable} }}`, `{{ ${c.variable} }}`))
      : [make("p", {textContent: found.problems.join(" ") || "No columns found."})]));
  }

  /* a variable that does not exist yet: named here, declared (text, with a sample) and bound
     in one step, so the picture shows it at once and a sheet's column of that name maps to it */
  function newVariableForm(insert) {
    const input = make("input", {type: "text", id: "ed-new-variable", placeholder: "e.g. price", autocomplete: "off", spellcheck: false});
    const note = make("p", {className: "error", id: "ed-new-variable-error", hidden: true});
    const form = make("form", {className: "ed-menu-new", noValidate: true},
      make("label", {htmlFor: input.id, textContent: "New variable"}),
      make("div", {className: "ed-control"}, input, make("button", {type: "submit", className: "button small", textContent: "Add"})), note);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const n = input.value.trim();
      if (!/^[A-Za-z_]\w*$/.test(n) || KEYWORDS.has(n)) {
        note.textContent = n ? "Letters, digits and _, not starting with a digit." : "Name the variable (e.g. price).";
        note.hidden = false;
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", note.id);
        input.focus();
        return;
      }
      closeMenu();
      insert(`{{ ${n} }}`, n);
    });
    return form;
  }

  function declareVariable(name) {
    doc.variables = doc.variables || {};
    if (doc.variables[name]) return;
    const sample = name.replace(/_/g, " ").replace(/^\w/, (c) => c.toUpperCase());
    doc.variables[name] = {type: "text", sample};
    if (!samples[name]) samples[name] = sample;
  }

  async function loadColumns() {
    if (columns) return columns;
    try {
      const answer = await fetch(config.urls.columns, {credentials: "same-origin", headers: {Accept: "application/json"}});
      if (answer.status === 401) { el.signedOut.hidden = false; return {columns: [], problems: ["Sign in again."]}; }
      columns = await answer.json();
    } catch (err) {
      return {columns: [], problems: ["The sheet could not be read."]};
    }
    return columns;
  }

  /* a variable goes in at the caret of text properties; a filter goes inside the expression;
     other properties become the expression */
  function insertExpression(layer, prop, spec, text, declare) {
    const input = el.props.querySelector(`#ed-prop-${prop}`);
    const current = asText(effective(layer)[prop]);
    let next;
    if (text.startsWith("|")) {
      const at = current.lastIndexOf("}}");
      next = at >= 0 ? `${current.slice(0, at).trimEnd()} ${text} }}` : `{{ ${current ? JSON.stringify(current) : "value"} ${text} }}`;
    } else if (spec.kind === "string" && input && "selectionStart" in input && input.tagName !== "SELECT") {
      const start = input.selectionStart !== null ? input.selectionStart : current.length;
      const end = input.selectionEnd !== null ? input.selectionEnd : current.length;
      next = current.slice(0, start) + text + current.slice(end);
    } else {
      next = text;
    }
    change(null, () => {
      if (declare) declareVariable(declare);
      setProp(layer, prop, next);
    });
    const again = el.props.querySelector(`#ed-prop-${prop}`);
    if (again) again.focus();
  }

  /* ------------------------------------------------------------ errors beside their fields */

  function problemTarget(p) {
    const path = p.path || "";
    let m = /^layers\[(\d+)\](?:\.(\w+))?/.exec(path);
    if (m) { const layer = layers()[Number(m[1])]; return {layer: layer ? layer.name : null, prop: m[2] || null}; }
    m = /^sizes\.([^.]+)\.layers\.([^.]+)(?:\.(\w+))?/.exec(path);
    if (m) return {layer: m[2], prop: m[3] || null, size: m[1]};
    m = /^variables\.(\w+)/.exec(path);
    if (m) return {variable: m[1]};
    m = /^sizes\.([^.]+)\.(\w+)/.exec(path);
    if (m) return {prop: m[2], size: m[1]};
    m = /^(\w+)/.exec(path);
    return m ? {prop: m[1]} : {};
  }

  function setProblem(p) {
    problem = p;
    el.error.hidden = !p;
    el.canvas.classList.toggle("failed", Boolean(p));
    if (p) {
      el.errorText.textContent = p.message;
      const t = problemTarget(p);
      el.errorShow.hidden = !(t.layer && t.layer !== selected && layerByName(t.layer));
      el.errorShow.onclick = () => select(t.layer);
    }
    renderList();
    showProblem();
  }

  function showProblem() {
    $$(".ed-field.has-error").forEach((f) => {
      f.classList.remove("has-error");
      const note = $(".error", f);
      if (note) note.hidden = true;
    });
    if (!problem) return;
    const t = problemTarget(problem);
    let field = null;
    if (t.variable) field = el.samples.querySelector(`[data-variable="${CSS.escape(t.variable)}"]`);
    else if (t.layer ? t.layer === selected : !selected) {
      field = t.prop && el.props.querySelector(`[data-prop="${CSS.escape(t.prop)}"]`);
    }
    if (!field) return;
    field.classList.add("has-error");
    const note = $(".error", field);
    note.textContent = problem.message;
    note.hidden = false;
  }

  function flashStatus(text) {
    el.status.textContent = text;
    el.status.hidden = false;
    clearTimeout(flashStatus.timer);
    flashStatus.timer = setTimeout(() => { el.status.hidden = true; }, 6000);
  }

  /* ------------------------------------------------------------ previews */

  const pictures = new Map();  // request body -> {url, warnings}
  let timer = null, inflight = null, shown = null;

  function schedulePreview(delay) {
    clearTimeout(timer);
    timer = setTimeout(runPreview, delay === undefined ? 250 : delay);
  }

  function previewBody() {
    const variables = {};
    Object.entries(samples).forEach(([k, v]) => { if (v !== "") variables[k] = v; });
    return JSON.stringify({template: doc, variables, size: sizeName || null});
  }

  async function runPreview() {
    const body = previewBody();
    if (body === shown && !problem) return;
    const kept = pictures.get(body);
    if (kept) {
      pictures.delete(body);
      pictures.set(body, kept);  // most recently used last
      if (inflight) inflight.abort();
      showPicture(body, kept, "from this page's cache");
      return;
    }
    if (inflight) inflight.abort();
    const mine = inflight = new AbortController();
    const started = performance.now();
    el.canvas.setAttribute("aria-busy", "true");
    root.dataset.preview = "loading";
    try {
      const answer = await post(config.urls.preview, body, mine.signal);
      if (answer === null) return;
      if (!answer.ok) {
        const data = await answer.json().catch(() => ({}));
        const err = data.error || {message: `The preview failed (${answer.status}).`};
        setProblem({message: err.message, path: (err.details || {}).path || null});
        root.dataset.preview = "error";
        return;
      }
      const picture = {url: URL.createObjectURL(await answer.blob()),
                       warnings: JSON.parse(answer.headers.get("Pixelmerge-Warnings") || "[]")};
      pictures.set(body, picture);
      while (pictures.size > 40) {
        const [oldest, old] = pictures.entries().next().value;
        pictures.delete(oldest);
        if (old.url !== el.image.src) URL.revokeObjectURL(old.url);
      }
      const ms = Math.round(performance.now() - started);
      showPicture(body, picture, answer.headers.get("Pixelmerge-Preview-Cache") === "hit" ? `${ms} ms, server cache` : `${ms} ms`);
    } catch (err) {
      if (err.name !== "AbortError") {
        setProblem({message: `The preview could not be loaded (${err.message}).`, path: null});
        root.dataset.preview = "error";
      }
    } finally {
      if (inflight === mine) { inflight = null; el.canvas.removeAttribute("aria-busy"); }
    }
  }

  function showPicture(body, picture, how) {
    shown = body;
    el.image.src = picture.url;
    const warned = picture.warnings.length ? ` · ${picture.warnings.join("; ")}` : "";
    el.renderState.textContent = `Rendered (${how})${warned}`;
    setProblem(null);
    root.dataset.preview = "ready";
  }

  /* POST JSON with the page's CSRF token. A signed-out session (a redirect to the sign-in page,
     401, or a token the session no longer knows) answers null: the working copy stays in
     localStorage and the page says how to get back. */
  async function post(url, body, signal) {
    const answer = await fetch(url, {method: "POST", body, signal, credentials: "same-origin", redirect: "manual",
      headers: {"Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken()}});
    let signedOut = answer.type === "opaqueredirect" || answer.status === 401;
    if (answer.status === 400) {
      const data = await answer.clone().json().catch(() => ({}));
      signedOut = (data.error || {}).code === "csrf_failed";
    }
    if (!signedOut) { el.signedOut.hidden = true; return answer; }
    persist();
    el.signedOut.hidden = false;
    root.dataset.preview = "signed-out";
    return null;
  }

  const csrfToken = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  /* ------------------------------------------------------------ saving */

  async function saveVersion() {
    el.save.setAttribute("aria-busy", "true");
    const sent = JSON.stringify(doc);
    try {
      const answer = await post(config.urls.save, JSON.stringify({template: doc, base_version: version}));
      if (answer === null) return;
      const data = await answer.json().catch(() => ({}));
      if (!answer.ok) {
        const err = data.error || {message: `Saving failed (${answer.status}).`};
        setProblem({message: `Not saved: ${err.message}`, path: (err.details || {}).path || null});
        return;
      }
      version = data.version;
      savedJSON = sent;
      el.version.textContent = `version ${version}`;
      persist();
      updateButtons();
      flashStatus(data.message);
      root.dataset.saved = String(version);
    } catch (err) {
      persist();
      setProblem({message: `Not saved: the server could not be reached (${err.message}). Your changes are kept in this browser.`, path: null});
    } finally {
      el.save.removeAttribute("aria-busy");
    }
  }

  /* ------------------------------------------------------------ sizes, source, keys */

  function renderSizes() {
    const options = [make("option", {value: "", textContent: `Default (${doc.width}×${doc.height})`})];
    Object.entries(doc.sizes || {}).forEach(([name, v]) => {
      options.push(make("option", {value: name, textContent: `${name} (${v.width}×${v.height})`}));
    });
    el.size.replaceChildren(...options);
    el.size.value = sizeName;
    el.size.disabled = options.length < 2;
  }

  el.size.addEventListener("change", () => {
    sizeName = el.size.value;
    renderOverlay();
    renderProps();
    schedulePreview(0);
  });

  function renderSource() {
    if (el.source.closest("details").open) el.source.textContent = JSON.stringify(doc, null, 2);
    renderSizes();
  }
  el.source.closest("details").addEventListener("toggle", renderSource);

  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest && event.target.closest("input, textarea, select, [contenteditable]");
    const mod = event.ctrlKey || event.metaKey;
    const key = event.key.toLowerCase();
    if (mod && key === "s") { event.preventDefault(); saveVersion(); return; }
    if (typing) return;
    if (mod && key === "z") { event.preventDefault(); if (event.shiftKey) redo(); else undo(); return; }
    if (mod && key === "y") { event.preventDefault(); redo(); return; }
    if (event.key === "Escape") { closeMenu(); select(null); return; }
    if (!selected || mod || event.altKey) return;
    const step = event.shiftKey ? 10 : 1;
    const moves = {ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step]};
    if (moves[event.key]) { event.preventDefault(); nudge(...moves[event.key]); return; }
    if (event.key === "Delete" || event.key === "Backspace") { event.preventDefault(); removeLayer(selected); }
  });

  document.addEventListener("pointerdown", (event) => {
    if (menu && !menu.contains(event.target) && !event.target.closest(".ed-bind")) closeMenu();
  });

  window.addEventListener("beforeunload", (event) => {
    if (JSON.stringify(doc) !== savedJSON) { persist(); event.preventDefault(); event.returnValue = ""; }
  });

  el.undo.addEventListener("click", undo);
  el.redo.addEventListener("click", redo);
  el.save.addEventListener("click", saveVersion);
  $$("[data-ed-add]").forEach((b) => b.addEventListener("click", () => addLayer(b.dataset.edAdd)));
  $("[data-ed-keep-samples]").addEventListener("click", keepSamples);

  el.app.hidden = false;
  el.fallback.hidden = true;
  el.actions.hidden = false;
  renderSizes();
  renderList();
  renderOverlay();
  renderProps();
  renderSamples();
  updateButtons();
  offerRestore();
  schedulePreview(0);
  window.pixelmergeEditor = {get template() { return clone(doc); }, undo, redo, save: saveVersion};
})();
