// The field team's phone: a dispatch rings, the crew accepts, reports each status, and sends GPS.
import {api, errorText, logout, requireRole} from "./api.js";
import {$, clock, fill, guard, h} from "./dom.js";
import {label, mountLanguageSwitch, onLanguageChange, t, translate} from "./i18n.js";
import {LiveSocket} from "./live.js";
import {Ringer, unlockAudio} from "./ringer.js";

const GPS_EVERY_MS = 5000;
const TOWARD_HOSPITAL = new Set(["transporting", "at_hospital"]);

const user = requireRole("field_team");
const state = {unit: null, dispatch: null, busy: false, fix: null, sentFixAt: 0, watch: null, kelurahan: new Map(), facilities: new Map(),
               callTypes: new Map()};
let live = null;
const ringer = new Ringer();

if (user) guard(boot(), (err) => say(errorText(err), true));

async function boot() {
  mountLanguageSwitch();
  translate();
  $("#logout").addEventListener("click", () => { stopGps(); live?.stop(); guard(logout()); });
  $("#accept").addEventListener("click", () => guard(accept(), (err) => say(errorText(err), true)));
  window.addEventListener("unhandledrejection", (e) => say(errorText(e.reason), true));
  // Browsers allow sound only after a gesture: any tap prepares the ringer.
  document.addEventListener("pointerdown", unlockAudio, {once: true});
  document.addEventListener("keydown", unlockAudio, {once: true});
  onLanguageChange(render);
  live = new LiveSocket("/ws/unit", {onHello: hello, onEvent: event, onMessage: () => {}}).start();
  window.__psc119 = {live, state, dropSocket: () => live.drop()};
  setInterval(sendFix, GPS_EVERY_MS);
  // Kelurahan and hospital names for the incident card (the dispatch carries codes).
  const [region, triage] = await Promise.all([api("GET", "/api/region"), api("GET", "/api/triage")]);
  state.kelurahan = new Map(region.kelurahan.map((k) => [k.code, k.name]));
  state.facilities = new Map(region.facilities.map((f) => [f.code, f]));
  state.callTypes = new Map(triage.call_types.map((c) => [c.code, c]));
  render();
}

function hello(message) {
  state.unit = message.unit;
  state.dispatch = message.dispatch;
  render();
  gpsForStatus();
  sendFix(true);
}

function event(message, {replayed}) {
  // The hello already reflects everything up to its last_event_id.
  if (replayed) return;
  const d = message.data || {};
  if (d.unit && state.unit && d.unit.id === state.unit.id) state.unit = d.unit;
  switch (message.event) {
    case "unit.dispatched":
      state.dispatch = {assignment: {id: d.assignment_id, incident_id: d.incident_id, ack_deadline: d.ack_deadline, acknowledged_at: null},
                        incident: d.incident};
      break;
    case "dispatch.withdrawn":
      if (state.dispatch?.assignment.id === d.assignment_id) {
        state.dispatch = null;
        say(t("field.withdrawn", {reason: label("reason", d.reason)}), true);
      }
      break;
    case "unit.status":
      if (d.status === "available") state.dispatch = null;
      else if (d.status === "en_route" && state.dispatch) state.dispatch.assignment.acknowledged_at ??= message.at;
      break;
    case "incident.updated":
      if (state.dispatch && state.dispatch.incident.incident_id === d.incident_id) {
        const i = d.incident;
        Object.assign(state.dispatch.incident, {priority: i.priority, call_type: i.call_type, complaint: i.complaint, address: i.address,
          kelurahan: i.kelurahan, caller_name: i.caller_name, notes: i.notes, location: i.location, destination: i.destination});
      }
      break;
    case "incident.destination":
      if (state.dispatch && state.dispatch.incident.incident_id === d.incident_id) state.dispatch.incident.destination = d.destination;
      break;
    default:
      break;
  }
  render();
  gpsForStatus();
}

function render() {
  if (!state.unit) return;
  $("#callsign").textContent = state.unit.callsign;
  const chip = $("#unit-status");
  chip.className = `status-chip st-${state.unit.status}`;
  chip.dataset.status = state.unit.status;
  chip.textContent = label("status", state.unit.status);
  const pending = state.unit.status === "dispatched" && state.dispatch;
  $("#offer").hidden = !pending;
  if (pending) {
    const deadline = state.dispatch.assignment.ack_deadline;
    $("#offer-deadline").textContent = deadline ? t("field.ack_by", {left: clock((Date.parse(deadline) - Date.now()) / 1000)}) : "";
    ring();
  } else {
    stopRing();
  }
  renderIncident();
  renderButtons();
}

function renderIncident() {
  const incident = state.dispatch?.incident;
  $("#incident").hidden = !incident;
  $("#idle").hidden = Boolean(incident);
  if (!incident) return;
  fill($("#incident-h"), h("span", {class: `priority pr-${incident.priority}`}, label("priority", incident.priority)), " ",
    callTypeName(incident));
  const row = (key, value) => (value ? [h("dt", {}, t(key)), h("dd", {}, value)] : null);
  const phone = incident.caller_phone ? h("a", {href: `tel:${incident.caller_phone.replace(/[^0-9+]/g, "")}`}, incident.caller_phone) : null;
  fill($("#incident-details"),
    row("field.complaint", incident.complaint), row("field.address", incident.address), row("field.kelurahan", state.kelurahan.get(incident.kelurahan) || incident.kelurahan),
    row("field.caller", [incident.caller_name, phone].filter(Boolean).flatMap((x, i) => (i ? [" · ", x] : [x]))),
    row("field.notes", incident.notes), row("field.destination", state.facilities.get(incident.destination)?.name || incident.destination));
  // With a patient on board the way is to the destination hospital; before that, to the scene.
  const hospital = state.facilities.get(incident.destination);
  const toHospital = Boolean(hospital) && TOWARD_HOSPITAL.has(state.unit.status);
  const where = toHospital ? {lat: hospital.lat, lon: hospital.lon} : incident.location;
  $("#nav-to").textContent = where ? t(toHospital ? "field.nav_to_hospital" : "field.nav_to_scene", {place: toHospital ? hospital.name : ""}) : "";
  $("#nav-to").dataset.target = toHospital ? "hospital" : "scene";
  for (const id of ["#nav-geo", "#nav-osm", "#nav-google"]) $(id).hidden = !where;
  if (where) {
    const {lat, lon} = where;
    $("#nav-geo").href = `geo:${lat},${lon}?q=${lat},${lon}`;
    $("#nav-osm").href = `https://www.openstreetmap.org/directions?route=%3B${lat}%2C${lon}#map=16/${lat}/${lon}`;
    $("#nav-google").href = `https://www.google.com/maps/dir/?api=1&destination=${lat},${lon}&travelmode=driving`;
  }
}

function callTypeName(incident) {
  const type = state.callTypes.get(incident.call_type);
  if (type) return document.documentElement.lang === "en" ? type.label_en : type.label_id;
  return incident.call_type_label || incident.call_type || "";
}

function renderButtons() {
  const status = state.unit.status;
  const buttons = [];
  // The server says which statuses the crew may report next and which reasons each needs.
  for (const {status: next, reasons} of state.unit.crew_moves || []) {
    if (status === "dispatched" && next === "en_route") continue;  // the big accept button does this
    if (reasons.length) {
      for (const reason of reasons) {
        buttons.push(h("button", {type: "button", class: `status-button to-${next} reason-${reason}`, dataset: {status: next, reason},
                                  onclick: () => report(next, reason)}, t("field.release", {reason: label("reason", reason)})));
      }
      continue;
    }
    buttons.push(h("button", {type: "button", class: `status-button to-${next}`, dataset: {status: next}, onclick: () => report(next)},
      label("action", next)));
  }
  fill($("#status-buttons"), buttons);
  $("#actions").hidden = buttons.length === 0;
  for (const b of $("#status-buttons").querySelectorAll("button")) b.disabled = state.busy;
}

async function accept() {
  const assignment = state.dispatch?.assignment;
  if (!assignment) return;
  await send({type: "ack", assignment_id: assignment.id});
}

function report(status, reason) {
  const message = {type: "status", status};
  if (reason) message.reason = reason;
  if (state.dispatch) message.assignment_id = state.dispatch.assignment.id;
  guard(send(message), (err) => say(errorText(err), true));
}

async function send(message) {
  if (state.busy) return;
  state.busy = true;
  renderButtons();
  $("#accept").disabled = true;
  try {
    const reply = await live.request(message);
    if (reply.type === "error") {
      say(reply.error.field ? t("error.field", {field: reply.error.field, message: reply.error.message}) : reply.error.message, true);
      return;
    }
    state.unit = {...state.unit, status: reply.status, crew_moves: reply.crew_moves};
    if (reply.status === "available") state.dispatch = null;
    if (message.type === "ack") stopRing();
    say(t("field.now", {status: label("status", reply.status)}));
  } finally {
    state.busy = false;
    $("#accept").disabled = false;
    render();
    gpsForStatus();
  }
}

function say(text, error = false) {
  const line = $("#action-message");
  line.textContent = text;
  line.className = error ? "error" : "ok";
}

function ring() {
  if (ringer.ringing) return;
  ringer.start(() => {
    const deadline = state.dispatch?.assignment.ack_deadline;
    if (deadline) $("#offer-deadline").textContent = t("field.ack_by", {left: clock((Date.parse(deadline) - Date.now()) / 1000)});
  });
  $("#accept").focus();
}

function stopRing() {
  ringer.stop();
}

// --- GPS while on duty ---

function gpsForStatus() {
  const onDuty = state.unit && state.unit.status !== "off_duty";
  if (onDuty && state.watch === null && navigator.geolocation) {
    state.watch = navigator.geolocation.watchPosition(
      (p) => {
        state.fix = {lat: p.coords.latitude, lon: p.coords.longitude, accuracy: p.coords.accuracy, at: new Date(p.timestamp).toISOString()};
        $("#gps-state").textContent = t("field.gps_on", {accuracy: Math.round(p.coords.accuracy)});
        if (!state.sentFixAt) sendFix();
      },
      (err) => { $("#gps-state").textContent = t("field.gps_error", {message: err.message}); },
      {enableHighAccuracy: true, maximumAge: 5000, timeout: 20000});
  } else if (!onDuty) {
    stopGps();
    $("#gps-state").textContent = t("field.gps_off");
  }
}

function stopGps() {
  if (state.watch !== null) navigator.geolocation.clearWatch(state.watch);
  state.watch = null;
}

/** Send the latest fix; at most one every GPS_EVERY_MS unless forced (a new connection). */
function sendFix(force = false) {
  if (!state.fix || !live || state.watch === null) return;
  if (!force && Date.now() - state.sentFixAt < GPS_EVERY_MS - 100) return;
  const {lat, lon, accuracy} = state.fix;
  if (live.send({type: "position", lat, lon, accuracy: Math.min(accuracy ?? 0, 100000)})) state.sentFixAt = Date.now();
}
