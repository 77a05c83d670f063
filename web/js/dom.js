// Building DOM from data without innerHTML: server text only ever becomes text nodes.

/**
 * h("li", {class: "row", dataset: {unitId: "ns-01"}, onclick: fn}, "text", childNode, [more])
 * Strings and numbers become text nodes; null, undefined and false are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace every child of ``el``. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** "m:ss" or "h:mm:ss" for a number of seconds. */
export function clock(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return hh ? `${hh}:${two(mm)}:${two(ss)}` : `${mm}:${two(ss)}`;
}

export function localTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "–" : d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit"});
}

/** A key that stays the same on every retry of one submission (idempotency). */
export function newKey(prefix) {
  if (globalThis.crypto?.randomUUID) return `${prefix}-${crypto.randomUUID()}`;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Report promise failures visibly instead of leaving them unhandled. */
export function guard(promise, onError) {
  return Promise.resolve(promise).catch((err) => {
    console.error(err);
    if (onError) onError(err);
  });
}

/**
 * ``task`` run one call at a time, in call order, so a slow older read never renders over a newer one.
 * ``run.settled()`` resolves once every call made so far has finished.
 */
export function oneAtATime(task) {
  let last = Promise.resolve();
  const run = () => {
    last = last.catch(() => {}).then(task);
    return last;
  };
  run.settled = () => last.catch(() => {});
  return run;
}
