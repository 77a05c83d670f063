// What the console shows of the store: the incident board, the unit board, the live map and alerts.
import {clock, fill, h} from "../dom.js";
import {label, nameOf, t} from "../i18n.js";
import {priorityBadge, statusChip} from "../chips.js";
import {elementMarker, setMarkerElement, showPlace} from "../map.js";
import {unitLatLng} from "./store.js";

function callTypeLabel(store, code) {
  const type = store.callTypes.get(code);
  if (!type) return code || "–";
  return nameOf(type);
}

export function kelurahanName(store, code) {
  return store.region?.kelurahan.find((k) => k.code === code)?.name || code || "–";
}

/** The incident board: highest priority first, with the time since the call ticking. */
export function renderIncidentBoard(store, body, {selected, onSelect}) {
  const rows = store.openIncidents().map((incident) => {
    const units = [...store.servingOf(incident.id).entries()].map(([unitId, s]) =>
      h("span", {class: `unit-tag st-${s.status}`, dataset: {unitId, status: s.status}}, s.callsign || unitId));
    const select = () => onSelect(incident.id);
    return h("tr", {class: `incident-row pr-${incident.priority}${incident.id === selected ? " selected" : ""}`, tabindex: "0",
                    dataset: {incidentId: incident.id, status: incident.status}, "aria-selected": String(incident.id === selected),
                    onclick: select, onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(); } }},
      h("td", {}, priorityBadge(incident.priority)),
      h("td", {class: "elapsed", dataset: {since: incident.received_at}}, elapsedSince(incident.received_at)),
      h("td", {}, callTypeLabel(store, incident.call_type)),
      h("td", {}, [incident.address, kelurahanName(store, incident.kelurahan)].filter(Boolean).join(" · ")),
      h("td", {class: "unit-tags"}, units.length ? units : "–"),
      h("td", {class: "incident-status"}, label("incident", incident.status)));
  });
  fill(body, rows);
  return rows.length;
}

export function elapsedSince(iso) {
  return clock((Date.now() - Date.parse(iso)) / 1000);
}

/** A small label when a unit is ranked from its base: it never sent a fix, or its fix is old; null otherwise. */
export function fixFlag(unit) {
  if (unit.no_fix) return h("span", {class: "stale no-fix", title: t("op.no_fix_title")}, ` ${t("op.no_fix")}`);
  if (unit.stale) return h("span", {class: "stale", title: t("op.stale_title")}, ` ${t("op.stale")}`);
  return null;
}

/** A small badge: whether the unit's phone is connected now (an offline phone is reached by radio); null if unknown. */
export function phoneFlag(unit) {
  const phone = unit.phone;
  if (!phone) return null;
  // One glyph, so a board of offline phones stays as compact as it was; the words are its label and tooltip.
  if (phone.connected) {
    return h("span", {class: "phone phone-on", role: "img", dataset: {phone: "on"}, "aria-label": t("op.phone_on"), title: t("op.phone_on_title")}, "✆");
  }
  const seen = phone.last_seen ? t("op.phone_seen_ago", {ago: clock((Date.now() - Date.parse(phone.last_seen)) / 1000)}) : t("op.phone_never");
  return h("span", {class: "phone phone-off", role: "img", dataset: {phone: "off"}, "aria-label": t("op.phone_off"),
                    title: t("op.phone_off_title", {seen})}, "✆");
}

/** Tick every "time since the call" cell. */
export function tick(root) {
  for (const cell of root.querySelectorAll(".elapsed[data-since]")) cell.textContent = elapsedSince(cell.dataset.since);
}

/** The unit board; with ``onSend`` (an incident is open), each available unit can be sent to it, listed or not. */
export function renderUnitBoard(store, list, counts, onSend = null) {
  const units = store.unitList();
  fill(list, units.map((u) =>
    h("li", {class: `unit-row st-${u.status}`, dataset: {unitId: u.id, status: u.status}},
      h("span", {class: "callsign"}, u.callsign),
      h("span", {class: "kind"}, label("kind", u.kind)),
      statusChip(u.status),
      fixFlag(u),
      phoneFlag(u),
      onSend && u.status === "available"
        ? h("button", {type: "button", class: "send-unit", "aria-label": t("op.send_unit_label", {unit: u.callsign}), onclick: () => onSend(u)},
          t("op.send_unit"))
        : null)));
  const available = units.filter((u) => u.status === "available").length;
  counts.textContent = t("op.unit_counts", {available, total: units.length});
}

/** Unit and incident markers on the map, kept in step with the store. */
export class MapLayer {
  constructor(map, store) {
    this.map = map;
    this.store = store;
    this.unitMarkers = new Map();
    this.incidentMarkers = new Map();
    this.seen = null;  // the incidents on the map at the last drawing; null before the first
  }

  unitElement(unit) {
    const [lat, lon] = unitLatLng(unit);
    return h("span", {class: `unit-marker st-${unit.status} kind-${unit.kind}`, title: `${unit.callsign} · ${label("status", unit.status)}`,
                      dataset: {unitId: unit.id, status: unit.status, lat: String(lat), lon: String(lon)}},
      h("span", {class: "marker-label"}, unit.callsign));
  }

  updateUnit(unit) {
    const latlng = unitLatLng(unit);
    const marker = this.unitMarkers.get(unit.id);
    // A busy unit shows its callsign: drawn above incident markers so that label stays readable.
    const z = unit.status === "available" ? 0 : 1000;
    if (!marker) {
      this.unitMarkers.set(unit.id, elementMarker(latlng, this.unitElement(unit)).setZIndexOffset(z).addTo(this.map));
      return;
    }
    marker.setLatLng(latlng);
    marker.setZIndexOffset(z);
    setMarkerElement(marker, this.unitElement(unit));
  }

  renderUnits() {
    for (const unit of this.store.units.values()) this.updateUnit(unit);
    for (const [id, marker] of this.unitMarkers) {
      if (!this.store.units.has(id)) { marker.remove(); this.unitMarkers.delete(id); }
    }
  }

  renderIncidents(onSelect) {
    const open = new Map(this.store.openIncidents().filter((i) => i.location).map((i) => [i.id, i]));
    for (const [id, marker] of this.incidentMarkers) {
      if (!open.has(id)) { marker.remove(); this.incidentMarkers.delete(id); }
    }
    for (const incident of open.values()) {
      const element = h("span", {class: `incident-marker pr-${incident.priority} ist-${incident.status}`,
                                 title: `${label("priority", incident.priority)} · ${incident.address || ""}`,
                                 dataset: {incidentId: incident.id, status: incident.status}}, "!");
      element.addEventListener("click", () => onSelect(incident.id));
      const latlng = [incident.location.lat, incident.location.lon];
      const marker = this.incidentMarkers.get(incident.id);
      if (marker) {
        marker.setLatLng(latlng);
        setMarkerElement(marker, element);
      } else {
        this.incidentMarkers.set(incident.id, elementMarker(latlng, element).setZIndexOffset(500).addTo(this.map));
        if (this.seen && !this.seen.has(incident.id)) showPlace(this.map, latlng);  // a new call, not the first load
      }
    }
    this.seen = new Set(open.keys());
  }
}

/** Alerts: ack timeouts, no unit available, overdue consults; each stays until dismissed. */
/** The words of an alert event; an ack timeout names the unit offered in its place. */
export function alertText(event) {
  const d = event.data || {};
  if (event.event === "consult.overdue") return t("alert.consult_overdue", {consult: d.consult_id || "?"});
  if (d.alert === "ack_timeout") {
    const unit = d.callsign || d.unit_id || "?";
    const next = d.offered_callsign || d.offered_unit_id;
    return next ? t("alert.ack_timeout", {unit, next}) : t("alert.ack_timeout_none", {unit});
  }
  if (d.alert === "no_unit_available") return t("alert.no_unit_available");
  if (d.alert === "notice_declined") return t("alert.notice_declined", {hospital: d.hospital_name || d.facility, reason: d.reason});
  return t("alert.other", {kind: d.alert || event.event});
}

export function showAlert(holder, event, store, onSelect) {
  const d = event.data || {};
  const text = alertText(event);
  const incident = d.incident_id ? store.incidents.get(d.incident_id) : null;
  const item = h("div", {class: `alert alert-${d.alert || event.event.replace(".", "-")}`, role: "alert", dataset: {eventId: String(event.id)}},
    h("strong", {}, text),
    incident ? h("button", {type: "button", class: "link", onclick: () => onSelect(incident.id)},
      t("alert.open_incident", {place: incident.address || kelurahanName(store, incident.kelurahan)})) : null,
    h("button", {type: "button", class: "dismiss", "aria-label": t("alert.dismiss"), onclick: () => item.remove()}, "×"));
  holder.prepend(item);
}
