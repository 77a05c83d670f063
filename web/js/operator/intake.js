// Call intake, built for speed: the keyboard-first form and the location, from the map or a kelurahan.
import {api, ApiError, errorText} from "../api.js";
import {$, fill, guard, h, newKey} from "../dom.js";
import {label, nameOf, t} from "../i18n.js";
import {PRIORITIES} from "../chips.js";
import {pickMarker} from "../map.js";

const FIELD_INPUTS = {phone: "#f-phone", call_type: "#f-call-type", kelurahan: "#f-kelurahan", location: "#f-kelurahan",
                      "location.lat": "#f-kelurahan", "location.lon": "#f-kelurahan", address: "#f-address",
                      complaint: "#f-complaint", caller_name: "#f-caller", priority: "#f-priority", notes: "#f-notes"};

export class Intake {
  constructor({store, map, panel, onSelect}) {
    this.store = store;
    this.map = map;
    this.panel = panel;
    this.onSelect = onSelect;
    this.form = $("#intake");
    this.location = null;  // {lat, lon, from: "map" | "kelurahan"}
    this.marker = null;
    this.key = newKey("call");
    this.busy = false;
    this.form.addEventListener("submit", (e) => { e.preventDefault(); guard(this.submit(), (err) => this.fail(err)); });
    $("#f-notes").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); this.form.requestSubmit(); }
    });
    $("#f-kelurahan").addEventListener("change", () => this.kelurahanPicked());
    $("#intake-new").addEventListener("click", () => this.reset());
    map.on("click", (e) => this.setLocation(e.latlng.lat, e.latlng.lng, "map"));
  }

  /** Fill the selects from the triage table and the region (again after a language switch). */
  populate() {
    const keep = (sel) => $(sel).value;
    const [callType, priority, kelurahan] = [keep("#f-call-type"), keep("#f-priority"), keep("#f-kelurahan")];
    fill($("#f-call-type"), h("option", {value: ""}, t("op.choose")),
      PRIORITIES.map((p) => h("optgroup", {label: label("priority", p)},
        [...this.store.callTypes.values()].filter((c) => c.priority === p && c.active !== false)
          .map((c) => h("option", {value: c.code}, nameOf(c))))));
    fill($("#f-priority"), h("option", {value: ""}, t("op.priority_auto")),
      PRIORITIES.map((p) => h("option", {value: p}, label("priority", p))));
    const region = this.store.region;
    fill($("#f-kelurahan"), h("option", {value: ""}, t("op.choose")),
      region.kecamatan.map((k) => h("optgroup", {label: k.name},
        region.kelurahan.filter((kel) => kel.kecamatan === k.code).map((kel) => h("option", {value: kel.code}, kel.name)))));
    $("#f-call-type").value = callType;
    $("#f-priority").value = priority;
    $("#f-kelurahan").value = kelurahan;
    this.showLocation();
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
      this.panel.show(result.incident.id, result.warnings, result, result.incident.assignment_version);
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
}
