// Call intake, built for speed: the form, warnings, the recommendation and one-key dispatch.
import {api, ApiError, errorText} from "../api.js";
import {$, clock, fill, guard, h, newKey} from "../dom.js";
import {label, t} from "../i18n.js";
import {pickMarker} from "../map.js";
import {kelurahanName, priorityBadge} from "./boards.js";

const OUTCOMES = ["emergency", "information", "silent", "prank", "duplicate", "transfer"];
const FIELD_INPUTS = {phone: "#f-phone", call_type: "#f-call-type", kelurahan: "#f-kelurahan", location: "#f-kelurahan",
                      "location.lat": "#f-kelurahan", "location.lon": "#f-kelurahan", address: "#f-address",
                      complaint: "#f-complaint", caller_name: "#f-caller", priority: "#f-priority", notes: "#f-notes"};

export class Intake {
  constructor({store, map, onSelect}) {
    this.store = store;
    this.map = map;
    this.onSelect = onSelect;
    this.form = $("#intake");
    this.location = null;  // {lat, lon, from: "map" | "kelurahan"}
    this.marker = null;
    this.incidentId = null;
    this.recommendations = [];
    this.key = newKey("call");
    this.busy = false;
    this.form.addEventListener("submit", (e) => { e.preventDefault(); guard(this.submit(), (err) => this.fail(err)); });
    $("#f-notes").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); this.form.requestSubmit(); }
    });
    $("#f-kelurahan").addEventListener("change", () => this.kelurahanPicked());
    $("#intake-new").addEventListener("click", () => this.reset());
    $("#close-incident").addEventListener("click", () => guard(this.close(), (err) => this.say(errorText(err), true)));
    map.on("click", (e) => this.setLocation(e.latlng.lat, e.latlng.lng, "map"));
  }

  /** Fill the selects from the triage table and the region (again after a language switch). */
  populate() {
    const keep = (sel) => $(sel).value;
    const [callType, priority, kelurahan, outcome] = [keep("#f-call-type"), keep("#f-priority"), keep("#f-kelurahan"), keep("#close-outcome")];
    const en = document.documentElement.lang === "en";
    fill($("#f-call-type"), h("option", {value: ""}, t("op.choose")),
      ["merah", "kuning", "hijau"].map((p) => h("optgroup", {label: label("priority", p)},
        [...this.store.callTypes.values()].filter((c) => c.priority === p && c.active !== false)
          .map((c) => h("option", {value: c.code}, en ? c.label_en : c.label_id)))));
    fill($("#f-priority"), h("option", {value: ""}, t("op.priority_auto")),
      ["merah", "kuning", "hijau"].map((p) => h("option", {value: p}, label("priority", p))));
    const region = this.store.region;
    fill($("#f-kelurahan"), h("option", {value: ""}, t("op.choose")),
      region.kecamatan.map((k) => h("optgroup", {label: k.name},
        region.kelurahan.filter((kel) => kel.kecamatan === k.code).map((kel) => h("option", {value: kel.code}, kel.name)))));
    fill($("#close-outcome"), OUTCOMES.map((o) => h("option", {value: o}, label("outcome", o))));
    $("#f-call-type").value = callType;
    $("#f-priority").value = priority;
    $("#f-kelurahan").value = kelurahan;
    $("#close-outcome").value = outcome || "emergency";
    this.showLocation();
    if (this.incidentId) this.renderResult();
  }

  kelurahanPicked() {
    const kel = this.store.region.kelurahan.find((k) => k.code === $("#f-kelurahan").value);
    if (kel && (!this.location || this.location.from !== "map")) this.setLocation(kel.lat, kel.lon, "kelurahan");
    else this.showLocation();
  }

  setLocation(lat, lon, from) {
    this.location = {lat: Number(lat.toFixed(6)), lon: Number(lon.toFixed(6)), from};
    if (this.marker) this.marker.setLatLng([lat, lon]);
    else this.marker = pickMarker([lat, lon]).addTo(this.map);
    this.showLocation();
  }

  showLocation() {
    const line = $("#f-location");
    if (!this.location) line.textContent = t("op.location_none");
    else line.textContent = t(this.location.from === "map" ? "op.location_map" : "op.location_kelurahan",
                              {lat: this.location.lat.toFixed(5), lon: this.location.lon.toFixed(5)});
  }

  reset() {
    this.form.reset();
    this.key = newKey("call");
    this.location = null;
    this.marker?.remove();
    this.marker = null;
    this.showLocation();
    $("#intake-error").textContent = "";
    for (const el of this.form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    $("#f-phone").focus();
  }

  invalid(selector, message) {
    const el = $(selector);
    el.setAttribute("aria-invalid", "true");
    el.focus();
    $("#intake-error").textContent = message;
  }

  async submit() {
    if (this.busy) return;
    for (const el of this.form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    $("#intake-error").textContent = "";
    const value = (sel) => $(sel).value.trim();
    if (!value("#f-phone")) return this.invalid("#f-phone", t("op.need_phone"));
    if (!value("#f-call-type")) return this.invalid("#f-call-type", t("op.need_call_type"));
    if (!this.location && !value("#f-kelurahan")) return this.invalid("#f-kelurahan", t("op.need_location"));
    const body = {idempotency_key: this.key, phone: value("#f-phone"), call_type: value("#f-call-type"),
                  address: value("#f-address"), complaint: value("#f-complaint"), notes: $("#f-notes").value.trim()};
    if (value("#f-caller")) body.caller_name = value("#f-caller");
    if (value("#f-priority")) body.priority = value("#f-priority");
    if (value("#f-kelurahan")) body.kelurahan = value("#f-kelurahan");
    if (this.location) body.location = {lat: this.location.lat, lon: this.location.lon};
    this.busy = true;
    $("#intake-submit").disabled = true;
    try {
      const result = await api("POST", "/api/calls", body);
      this.store.incidents.set(result.incident.id, result.incident);
      this.reset();
      this.show(result.incident.id, result.warnings, result.recommendations);
      this.onSelect(result.incident.id, {fromIntake: true});
      $("#recommendations button")?.focus();
    } finally {
      this.busy = false;
      $("#intake-submit").disabled = false;
    }
  }

  fail(err) {
    $("#intake-error").textContent = errorText(err);
    const selector = err instanceof ApiError && FIELD_INPUTS[err.field];
    if (selector) $(selector).setAttribute("aria-invalid", "true");
  }

  /** Show an incident in the result panel: warnings, recommendation, dispatch buttons. */
  show(incidentId, warnings, recommendations) {
    this.incidentId = incidentId;
    this.warnings = warnings || this.store.incidents.get(incidentId)?.warnings || [];
    this.recommendations = recommendations || [];
    $("#dispatch-message").textContent = "";
    this.renderResult();
  }

  /** The board selected an incident: fetch its current recommendation. */
  async open(incidentId) {
    this.show(incidentId, null, []);
    const result = await api("GET", `/api/incidents/${encodeURIComponent(incidentId)}/recommendations`);
    if (this.incidentId === incidentId) {
      this.recommendations = result.recommendations;
      this.renderResult();
    }
  }

  renderResult() {
    const incident = this.store.incidents.get(this.incidentId);
    const panel = $("#call-result");
    panel.hidden = !incident;
    if (!incident) return;
    const type = this.store.callTypes.get(incident.call_type);
    const typeName = type ? (document.documentElement.lang === "en" ? type.label_en : type.label_id) : incident.call_type;
    fill($("#result-h"), priorityBadge(incident.priority), " ", typeName || "–", " · ",
      kelurahanName(this.store, incident.kelurahan), h("span", {class: "hint"}, ` #${incident.id.slice(0, 8)}`));
    fill($("#result-details"), [incident.address, incident.complaint, incident.caller_name, incident.caller_phone].filter(Boolean).join(" · "));
    fill($("#warnings"), this.warnings.map((w) => this.warningItem(w)));
    const rows = this.recommendations.map((r, i) => h("tr", {dataset: {unitId: r.unit_id}},
      h("td", {}, String(i + 1)),
      h("td", {class: "callsign"}, r.callsign, r.stale ? h("span", {class: "stale", title: t("op.stale_title")}, ` ${t("op.stale")}`) : null),
      h("td", {}, label("kind", r.kind)),
      h("td", {}, t("op.km", {km: (r.distance_m / 1000).toFixed(1)})),
      h("td", {}, clock(r.road_eta_s ?? r.eta_s)),
      h("td", {}, h("button", {type: "button", class: "dispatch", "aria-keyshortcuts": i < 9 ? `Alt+${i + 1}` : null,
                               onclick: () => this.dispatch(i)},
        t("op.dispatch"), i < 9 ? h("kbd", {}, `Alt+${i + 1}`) : null))));
    fill($("#recommendations"), rows.length ? rows : h("tr", {}, h("td", {colspan: "6", class: "hint"}, t("op.no_recommendation"))));
  }

  warningItem(w) {
    if (w.kind === "repeat_prank") return h("p", {class: "warning warn-prank"}, t("op.warn_prank", {count: w.prank_count}));
    const other = this.store.incidents.get(w.incident_id);
    const text = w.reason === "same_caller" ? t("op.warn_same_caller") : t("op.warn_nearby", {m: Math.round(w.distance_m ?? 0)});
    return h("p", {class: "warning warn-duplicate"}, text, " ",
      other ? h("button", {type: "button", class: "link", onclick: () => this.onSelect(w.incident_id)}, t("op.show_other")) : null,
      h("button", {type: "button", onclick: () => guard(this.link(w.incident_id), (err) => this.say(errorText(err), true))}, t("op.link_duplicate")));
  }

  say(text, error = false) {
    const line = $("#dispatch-message");
    line.textContent = text;
    line.className = error ? "error" : "ok";
  }

  /** Dispatch recommendation ``index`` (0-based): one click or Alt+digit. */
  dispatch(index) {
    const pick = this.recommendations[index];
    if (!pick || !this.incidentId) return;
    guard(this.send(pick), (err) => this.say(errorText(err), true));
  }

  async send(pick) {
    const incidentId = this.incidentId;
    try {
      await api("POST", `/api/incidents/${encodeURIComponent(incidentId)}/dispatch`, {unit_id: pick.unit_id});
      this.say(t("op.dispatched", {unit: pick.callsign}));
      this.recommendations = this.recommendations.filter((r) => r.unit_id !== pick.unit_id);
      this.renderResult();
    } catch (err) {
      if (err instanceof ApiError && err.status === 409 && Array.isArray(err.body.recommendations)) {
        this.recommendations = err.body.recommendations;
        this.renderResult();
        this.say(t("op.taken", {message: err.message}), true);
        return;
      }
      throw err;
    }
  }

  async link(otherId) {
    await api("POST", `/api/incidents/${encodeURIComponent(this.incidentId)}/link`, {duplicate_of: otherId});
    this.say(t("op.linked"));
  }

  async close() {
    if (!this.incidentId) return;
    const outcome = $("#close-outcome").value;
    if (outcome === "duplicate") {
      const other = this.warnings.find((w) => w.kind === "duplicate");
      if (!other) { this.say(t("op.duplicate_needs_warning"), true); return; }
      await this.link(other.incident_id);
    } else {
      await api("POST", `/api/incidents/${encodeURIComponent(this.incidentId)}/close`, {outcome});
    }
    this.store.incidents.delete(this.incidentId);
    this.incidentId = null;
    this.renderResult();
    this.onSelect(null);
    $("#f-phone").focus();
  }
}
