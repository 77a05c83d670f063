// The availability board on the hospital's page: this hospital's free beds by class and its services available
// now, each changed in one tap (−/+ save at once; a service toggles) with its age shown; and the other hospitals'
// figures below, live. Every figure the server sends carries its time: older than the configured age it is marked
// stale, and a figure never reported is "?", never 0.
import {api, errorText} from "./api.js";
import {$, fill, guard, h} from "./dom.js";
import {label, onLanguageChange, t} from "./i18n.js";

/** @typedef {import("./hospital.js").HospitalPage} HospitalPage */

const AGES_EVERY_MS = 30000;

/** @param {HospitalPage} page */
export function mount(page) {
  const section = $("#board");
  const own = h("div", {id: "board-own"});
  const message = h("p", {id: "board-message", class: "error", role: "alert"});
  const others = h("div", {id: "board-others"});
  section.append(message, own, h("h3", {"data-i18n": "rs.board.others"}, t("rs.board.others")), others);
  const code = page.hospital.code;
  /** @type {{now: string, stale_after_s: number, bed_classes: string[], hospitals: any[]} | null} */
  let board = null;
  let offsetMs = 0;  // the server's clock minus this one: ages are the server's
  // Figures tapped but not yet saved, by kind then name: what the page shows and what the next request sends.
  const pending = {beds: {}, services: {}};
  let saving = false;

  async function load() {
    const fetched = await api("GET", "/api/hospitals/availability");
    offsetMs = Date.parse(fetched.now) - Date.now();
    board = fetched;
    render();
  }

  function mine() {
    return board?.hospitals.find((x) => x.code === code) || null;
  }

  function ageText(figure) {
    if (!figure) return t("rs.board.unknown");
    const seconds = Math.max(0, (Date.now() + offsetMs - Date.parse(figure.at)) / 1000);
    const minutes = Math.floor(seconds / 60);
    const age = minutes < 1 ? t("rs.board.just_now") : minutes < 120 ? t("rs.board.minutes_ago", {n: minutes})
      : t("rs.board.hours_ago", {n: Math.floor(minutes / 60)});
    return isStale(figure) ? `${age} · ${t("rs.board.stale")}` : age;
  }

  function isStale(figure) {
    return Boolean(figure) && (Date.now() + offsetMs - Date.parse(figure.at)) / 1000 > board.stale_after_s;
  }

  /** The value the page shows: a tapped one not yet saved, else the server's; null when never reported. */
  function shown(kind, name, figure) {
    if (name in pending[kind]) return pending[kind][name];
    if (!figure) return null;
    return kind === "beds" ? figure.free : figure.available;
  }

  function render() {
    const entry = mine();
    if (!board || !entry) return;
    const bedRows = board.bed_classes.map((bedClass) => {
      const figure = entry.beds[bedClass];
      const value = shown("beds", bedClass, figure);
      const state = figure ? (isStale(figure) ? "stale" : "fresh") : "unknown";
      return h("li", {class: `board-figure is-${state}`, dataset: {bedClass, state}},
        h("span", {class: "board-label"}, label("rs.board.bed", bedClass)),
        h("button", {type: "button", class: "board-step", "aria-label": t("rs.board.less", {bed: label("rs.board.bed", bedClass)}),
                     disabled: value === null || value <= 0, onclick: () => setBeds(bedClass, (value ?? 0) - 1)}, "−"),
        h("output", {class: "board-count"}, value === null ? "?" : String(value)),
        h("button", {type: "button", class: "board-step", "aria-label": t("rs.board.more", {bed: label("rs.board.bed", bedClass)}),
                     disabled: value !== null && value >= 9999, onclick: () => setBeds(bedClass, (value ?? 0) + 1)}, "+"),
        h("span", {class: "board-age"}, ageText(figure)));
    });
    const serviceRows = entry.services.map((service) => {
      const figure = entry.services_now[service];
      const value = shown("services", service, figure);
      const state = figure ? (isStale(figure) ? "stale" : "fresh") : "unknown";
      const now = value === null ? "unknown" : value ? "available" : "unavailable";
      return h("li", {class: `board-figure is-${state}`, dataset: {service, state}},
        h("button", {type: "button", class: `board-service now-${now}`, "aria-pressed": String(value === true),
                     onclick: () => setService(service, value !== true)},
          `${label("service", service)}: ${t(`rs.board.${now}`)}`),
        h("span", {class: "board-age"}, ageText(figure)));
    });
    fill(own, h("h3", {}, t("rs.board.beds")), h("ul", {class: "board-list"}, bedRows),
      h("h3", {}, t("rs.board.services")), h("ul", {class: "board-list"}, serviceRows));
    fill(others, h("table", {class: "board-table"},
      h("thead", {}, h("tr", {}, h("th", {}, t("rs.board.hospital")), board.bed_classes.map((c) => h("th", {}, label("rs.board.bed", c))))),
      h("tbody", {}, board.hospitals.filter((x) => x.code !== code).map((x) => h("tr", {dataset: {code: x.code}},
        h("td", {}, x.name),
        board.bed_classes.map((c) => {
          const figure = x.beds[c];
          return h("td", {class: figure ? (isStale(figure) ? "is-stale" : "") : "is-unknown", title: ageText(figure)},
            figure ? String(figure.free) : "?", figure && isStale(figure) ? " ⚠" : "");
        }))))));
  }

  function setBeds(bedClass, count) {
    pending.beds[bedClass] = Math.max(0, Math.min(9999, count));
    render();
    guard(save());
  }

  function setService(service, available) {
    pending.services[service] = available;
    render();
    guard(save());
  }

  // One request at a time, each carrying every figure tapped meanwhile (absolute values): quick taps coalesce,
  // and a later tap never reaches the server before an earlier one.
  async function save() {
    if (saving) return;
    saving = true;
    try {
      while (Object.keys(pending.beds).length || Object.keys(pending.services).length) {
        const beds = {...pending.beds}, services = {...pending.services};
        try {
          const result = await api("PATCH", `/api/hospitals/${encodeURIComponent(code)}/availability`, {beds, services});
          message.textContent = "";
          for (const [k, v] of Object.entries(beds)) if (pending.beds[k] === v) delete pending.beds[k];
          for (const [k, v] of Object.entries(services)) if (pending.services[k] === v) delete pending.services[k];
          take(result.hospital);
        } catch (err) {
          pending.beds = {};
          pending.services = {};
          message.textContent = errorText(err);
          await load();
        }
      }
    } finally {
      saving = false;
    }
  }

  // A hospital's figures from an answer or an event: each figure kept only if it is not older than the one shown
  // (an event can arrive after the answer to a later update).
  function take(entry) {
    if (!board) return;
    const newer = (seen, got) => (seen && got && Date.parse(seen.at) > Date.parse(got.at) ? seen : got);
    board.hospitals = board.hospitals.map((x) => (x.code !== entry.code ? x : {
      ...entry,
      beds: Object.fromEntries(Object.entries(entry.beds).map(([k, v]) => [k, newer(x.beds[k], v)])),
      services_now: Object.fromEntries(Object.entries(entry.services_now).map(([k, v]) => [k, newer(x.services_now[k], v)])),
    }));
    render();
  }

  page.onHello(() => guard(load(), (err) => { message.textContent = errorText(err); }));
  page.onEvent((event) => { if (event.event === "hospital.availability") take(event.data.hospital); });
  onLanguageChange(render);
  setInterval(render, AGES_EVERY_MS);
}
