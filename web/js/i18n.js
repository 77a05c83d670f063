// Every UI string lives in one catalogue per language (web/i18n/*.js); Bahasa Indonesia is the default.
import id from "../i18n/id.js";
import en from "../i18n/en.js";
import {h} from "./dom.js";

const CATALOGUES = {id, en};
const STORAGE_KEY = "psc119.lang";
const listeners = new Set();
let current = CATALOGUES[localStorage.getItem(STORAGE_KEY)] ? localStorage.getItem(STORAGE_KEY) : "id";

export const language = () => current;

/** A name the server gives in both languages (triage types, diagnoses: ``label_id``, ``label_en``), in the current one. */
export const nameOf = (item) => (current === "en" ? item.label_en : item.label_id);

/** The string for ``key`` in the current language, with {name} placeholders filled. */
export function t(key, params = {}) {
  const text = CATALOGUES[current][key] ?? CATALOGUES.id[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

/** Whether the catalogue has ``key`` (in the current language or the default). */
export const known = (key) => key in CATALOGUES[current] || key in CATALOGUES.id;

/** A label from the catalogue when it has one (statuses, kinds...), else the raw value. */
export function label(prefix, value) {
  if (value === null || value === undefined || value === "") return "–";
  const key = `${prefix}.${value}`;
  return known(key) ? t(key) : String(value);
}

export function setLanguage(lang) {
  if (!CATALOGUES[lang] || lang === current) return;
  current = lang;
  localStorage.setItem(STORAGE_KEY, lang);
  translate();
  for (const fn of listeners) fn(lang);
}

export function onLanguageChange(fn) {
  listeners.add(fn);
}

/**
 * Fill static markup: data-i18n="key" sets the text, data-i18n-attr="placeholder:key;aria-label:key" attributes.
 */
export function translate(root = document) {
  document.documentElement.lang = current;
  for (const el of /** @type {NodeListOf<HTMLElement>} */ (root.querySelectorAll("[data-i18n]"))) el.textContent = t(el.dataset.i18n);
  for (const el of /** @type {NodeListOf<HTMLElement>} */ (root.querySelectorAll("[data-i18n-attr]"))) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":");
      if (attr && key) el.setAttribute(attr.trim(), t(key.trim()));
    }
  }
  for (const button of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll(".lang-switch button"))) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === current));
  }
}

/** Two buttons, ID and EN, placed into every element with class lang-switch. */
export function mountLanguageSwitch() {
  for (const holder of document.querySelectorAll(".lang-switch")) {
    holder.replaceChildren(
      ...Object.keys(CATALOGUES).map((lang) =>
        h("button", {type: "button", dataset: {lang}, id: `lang-${lang}`, lang, "aria-pressed": String(lang === current),
                     title: CATALOGUES[lang]["lang.name"], onclick: () => setLanguage(lang)}, lang.toUpperCase())),
    );
  }
}
