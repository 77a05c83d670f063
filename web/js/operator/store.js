// The console's picture of the world: units, open incidents and who serves them, kept current by events.
import {PRIORITIES} from "../chips.js";

const PRIORITY_ORDER = Object.fromEntries(PRIORITIES.map((p, i) => [p, i]));
const ALERTS = new Set(["alert", "consult.overdue"]);
const BUSY = new Set(["dispatched", "en_route", "on_scene", "transporting", "at_hospital"]);

export class Store {
  constructor() {
    this.units = new Map();
    this.incidents = new Map();
    this.serving = new Map();  // incident id -> Map(unit id -> {assignment_id, status, callsign})
    this.callTypes = new Map();
    this.region = null;
  }

  loadUnits(units) {
    this.units = new Map(units.map((u) => [u.id, u]));
  }

  loadIncidents(incidents) {
    this.incidents = new Map(incidents.map((i) => [i.id, i]));
  }

  setAssignments(incidentId, assignments) {
    const serving = new Map();
    for (const a of assignments) {
      if (a.ended_at) continue;
      serving.set(a.unit_id, {assignment_id: a.id, callsign: a.callsign, status: this.units.get(a.unit_id)?.status || "dispatched"});
    }
    this.serving.set(incidentId, serving);
  }

  servingOf(incidentId) {
    return this.serving.get(incidentId) || new Map();
  }

  /** Open incidents, highest priority first, then the oldest call. */
  openIncidents() {
    return [...this.incidents.values()].filter((i) => !i.closed_at).sort((a, b) =>
      (PRIORITY_ORDER[a.priority] ?? 9) - (PRIORITY_ORDER[b.priority] ?? 9) || a.received_at.localeCompare(b.received_at));
  }

  /** Busy units first (they need watching), then the rest; by callsign within each. */
  unitList() {
    const rank = (u) => (BUSY.has(u.status) ? 0 : u.status === "available" ? 1 : 2);
    return [...this.units.values()].sort((a, b) =>
      rank(a) - rank(b) || a.callsign.localeCompare(b.callsign, undefined, {numeric: true}));
  }

  /** Apply one event; returns {units, incidents, alert} saying what to redraw. */
  apply(event) {
    const d = event.data || {};
    const changed = {units: false, incidents: false, alert: null};
    if (d.unit && d.unit.id) {
      const old = this.units.get(d.unit.id);
      this.units.set(d.unit.id, {...old, ...d.unit, stale: old?.stale ?? false});
      changed.units = true;
    }
    switch (event.event) {
      case "call.received":
      case "incident.updated":
      case "referral.transfer":
        this.incidents.set(d.incident.id, {...this.incidents.get(d.incident.id), ...d.incident});
        changed.incidents = true;
        break;
      case "call.assessed":
        if (this.incidents.has(d.incident_id)) this.incidents.get(d.incident_id).warnings = d.warnings;
        changed.incidents = true;
        break;
      case "incident.destination":
        if (this.incidents.has(d.incident_id)) this.incidents.get(d.incident_id).destination = d.destination;
        this.takeState(d);
        changed.incidents = true;
        break;
      case "incident.closed":
        this.incidents.delete(d.incident_id);
        this.serving.delete(d.incident_id);
        changed.incidents = true;
        break;
      case "unit.dispatched":
        this.serve(d.incident_id).set(d.unit_id, {assignment_id: d.assignment_id, callsign: d.callsign, status: "dispatched"});
        this.takeState(d);
        changed.incidents = true;
        break;
      case "unit.status":
        if (d.incident_id) this.unitMoved(d.incident_id, d.unit_id, d.status, d.assignment_id, d.callsign);
        this.takeState(d);
        changed.incidents = true;
        break;
      case "dispatch.withdrawn":
        this.unitMoved(d.incident_id, d.unit_id, "available");
        this.takeState(d);
        changed.incidents = true;
        break;
      case "triage.updated":
        this.callTypes.set(d.call_type.code, d.call_type);
        break;
      default:
        break;
    }
    if (ALERTS.has(event.event)) changed.alert = event;
    return changed;
  }

  serve(incidentId) {
    if (!this.serving.has(incidentId)) this.serving.set(incidentId, new Map());
    return this.serving.get(incidentId);
  }

  /** Who serves the incident after a unit's move (the incident's own state comes with the event: takeState). */
  unitMoved(incidentId, unitId, status, assignmentId, callsign) {
    const serving = this.serve(incidentId);
    if (status === "available") {
      serving.delete(unitId);
      return;
    }
    const entry = serving.get(unitId) || {assignment_id: assignmentId, callsign};
    serving.set(unitId, {...entry, status});
  }

  /** The incident's state and assignment version as the server decided them, carried by the event. */
  takeState(d) {
    const incident = this.incidents.get(d.incident_id);
    if (!incident || typeof d.incident_status !== "string") return;
    incident.status = d.incident_status;
    incident.assignment_version = d.assignment_version;
  }

  /** A positions batch: [{id, lat, lon, at}]; returns the units that moved. */
  positions(batch) {
    const moved = [];
    for (const fix of batch) {
      const unit = this.units.get(fix.id);
      if (!unit) continue;
      Object.assign(unit, {position_lat: fix.lat, position_lon: fix.lon, position_at: fix.at, stale: false, no_fix: false});
      moved.push(unit);
    }
    return moved;
  }
}

export function unitLatLng(unit) {
  if (unit.position_lat !== null && unit.position_lat !== undefined && !unit.stale) return [unit.position_lat, unit.position_lon];
  return [unit.base_lat, unit.base_lon];
}
