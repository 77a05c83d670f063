// The field team's phone: a dispatch rings, the crew accepts, reports each status, and sends GPS.
import {api, describeError, errorText, logout, requireRole, session, toLogin} from "./api.js";
import {$, clock, fill, guard, h, newKey} from "./dom.js";
import {label, mountLanguageSwitch, nameOf, onLanguageChange, t, translate} from "./i18n.js";
import {LiveSocket} from "./live.js";
import {Ringer, unlockAudio} from "./ringer.js";

const GPS_EVERY_MS = 5000;
const TOWARD_HOSPITAL = new Set(["transporting", "at_hospital"]);
// What the outbox holds besides status reports: reports about the patient (vitals), the destination, the handover.
const PATIENT_REPORTS = new Set(["vitals", "destination", "handover"]);
// Reports that carry their own time (vitals: when measured) or none; the others count at the press.
const UNTIMED = new Set(["vitals", "destination"]);
const SIGNS = ["systolic", "diastolic", "pulse", "spo2", "gcs", "resp_rate"];
// Statuses of a unit on no incident: a dispatch still held (a report ending it is pending) is not shown.
const FREE = new Set(["available", "unavailable", "off_duty"]);

// Which unit this phone was last signed in for (its key, not a credential): an installed app started afresh
// without signal has no session, and shows that unit's kept snapshot and outbox until it can sign in again.
const PHONE_KEY = "psc119.field.phone";
const signedOutOwner = session.token ? null : localStorage.getItem(PHONE_KEY);
const user = signedOutOwner ? null : requireRole("field_team");
const owner = user ? String(user.unit_id || user.username) : signedOutOwner;
// Signed out: how often the server is asked whether it answers again, and how long an answer may take.
const PROBE_EVERY_MS = 3000;
const PROBE_WITHIN_MS = 4000;
// ``confirmed`` is the unit as the server last said; ``unit`` is what the page shows: that, moved on by the pending reports.
const state = {confirmed: null, unit: null, dispatch: null, missed: [], fix: null, sentFixAt: 0, watch: null, kelurahan: new Map(), facilities: new Map(),
               callTypes: new Map(), crewTable: {}, flushing: false, named: false, resumeFrom: null, handedOver: new Set()};
// Reports made without signal wait here (and in localStorage, across a reload) until the server has them.
const OUTBOX_KEY = `psc119.outbox.${owner}`;
const outbox = loadOutbox();
// The last picture of the unit, so a page reloaded without signal still shows the dispatch and its buttons.
const SNAPSHOT_KEY = `psc119.phone.${owner}`;
// Place and call type names (public reference data), so a page reloaded without signal still names them.
const NAMES_KEY = "psc119.field.names";
let live = null;
const ringer = new Ringer();

if (user) guard(boot(), (err) => say(errorText(err), true));
else if (owner) guard(bootSignedOut(), (err) => say(errorText(err), true));

async function boot() {
  localStorage.setItem(PHONE_KEY, owner);
  setUp();
  // Logging out forgets the incident details kept for offline use; reports still waiting stay for the next login.
  $("#logout").addEventListener("click", () => {
    stopGps(); live?.stop(); localStorage.removeItem(SNAPSHOT_KEY); localStorage.removeItem(PHONE_KEY); guard(logout());
  });
  restoreSnapshot();
  render();
  registerWorker();
  live = new LiveSocket("/ws/unit", {onHello: hello, onEvent: event, onMessage: () => {}}, {resumeFrom: state.resumeFrom}).start();
  window.__psc119 = {live, state, dropSocket: () => live.drop()};
  setInterval(sendFix, GPS_EVERY_MS);
}

/** No session (an installed app started afresh) and this phone's unit known: its last picture and outbox, and
 * buttons that queue presses as ever, until the server answers; then off to sign in, and the outbox goes
 * once that unit's account is signed in again. Without signal there is no socket and nothing is sent. */
async function bootSignedOut() {
  setUp();
  restoreSnapshot();
  if (!state.unit) {
    toLogin();
    return;
  }
  $("#logout").hidden = true;
  $("#signed-out").hidden = false;
  render();
  registerWorker();
  window.__psc119 = {live, state, dropSocket: () => {}};
  while (!(await serverAnswers())) await new Promise((resolve) => { setTimeout(resolve, PROBE_EVERY_MS); });
  toLogin();
}

/** Whether the server gives any answer at all within PROBE_WITHIN_MS. */
async function serverAnswers() {
  try {
    await fetch("/healthz", {cache: "no-store", signal: AbortSignal.timeout(PROBE_WITHIN_MS)});
    return true;
  } catch {
    return false;
  }
}

function registerWorker() {
  // The page's files come from a service worker's cache when there is no signal: a reload still shows the phone.
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/field-sw.js", {scope: "/field"}).catch(() => {});
}

function setUp() {
  mountLanguageSwitch();
  translate();
  $("#accept").addEventListener("click", accept);
  $("#vitals-form").addEventListener("submit", (e) => { e.preventDefault(); saveVitals(); });
  $("#destination-form").addEventListener("submit", (e) => { e.preventDefault(); chooseDestination(); });
  $("#handover").addEventListener("click", handOver);
  $("#missed-ok").addEventListener("click", () => { state.missed = []; render(); });
  window.addEventListener("unhandledrejection", (e) => say(errorText(e.reason), true));
  // Browsers allow sound only after a gesture: any tap prepares the ringer.
  document.addEventListener("pointerdown", unlockAudio, {once: true});
  document.addEventListener("keydown", unlockAudio, {once: true});
  onLanguageChange(render);
}

/** Kelurahan and hospital names for the incident card (the dispatch carries codes); read once online. */
async function loadNames() {
  const [region, triage] = await Promise.all([api("GET", "/api/region"), api("GET", "/api/triage")]);
  const names = {kelurahan: region.kelurahan.map((k) => [k.code, k.name]), facilities: region.facilities.map((f) => [f.code, f]),
                 callTypes: triage.call_types.map((c) => [c.code, c])};
  localStorage.setItem(NAMES_KEY, JSON.stringify(names));
  useNames(names);
  state.named = true;
  render();
}

function useNames(names) {
  state.kelurahan = new Map(names.kelurahan);
  state.facilities = new Map(names.facilities);
  state.callTypes = new Map(names.callTypes);
}

function hello(message) {
  state.confirmed = message.unit;
  state.dispatch = message.dispatch;
  state.crewTable = message.crew_table || {};
  if (message.missed?.length) state.missed = message.missed;
  applyPending();
  render();
  gpsForStatus();
  sendFix(true);
  if (!state.named) guard(loadNames(), (err) => say(errorText(err), true));
  guard(flush(), (err) => say(errorText(err), true));
}

function event(message, {replayed}) {
  // The hello already reflects everything up to its last_event_id.
  if (replayed) return;
  const d = message.data || {};
  if (d.unit && state.confirmed && d.unit.id === state.confirmed.id) state.confirmed = d.unit;
  switch (message.event) {
    case "unit.dispatched":
      // Resuming replays a dispatch the hello already said was withdrawn: it must not ring.
      if (state.missed.some((m) => m.assignment_id === d.assignment_id)) break;
      state.dispatch = {assignment: {id: d.assignment_id, incident_id: d.incident_id, ack_deadline: d.ack_deadline, acknowledged_at: null},
                        incident: d.incident};
      break;
    case "dispatch.withdrawn":
      if (state.dispatch?.assignment.id === d.assignment_id) {
        if (d.reason === "not_responding") {
          state.missed = [{assignment_id: d.assignment_id, incident: state.dispatch.incident, reason: d.reason, went_to: null,
                           offered_at: null, withdrawn_at: message.at}];
        }
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
    case "notice.acknowledged":
    case "notice.declined":
      if (state.dispatch && state.dispatch.incident.incident_id === d.incident_id) {
        say(t(`field.notice_${d.notice_status}`, {hospital: d.hospital_name, reason: d.reason || ""}), d.notice_status === "declined");
      }
      break;
    default:
      break;
  }
  applyPending();
  render();
  gpsForStatus();
}

function render() {
  showOutbox();
  if (!state.unit) return;
  saveSnapshot();
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
  chip.classList.toggle("pending", outbox.length > 0);
  renderIncident();
  renderMissed();
  renderButtons();
}

/** A dispatch withdrawn because nobody answered in time (the phone was away): which call, when, and who went instead. */
function renderMissed() {
  const missed = state.missed.at(-1);
  $("#missed").hidden = !missed;
  if (!missed) return;
  const incident = missed.incident;
  const place = [incident.address, state.kelurahan.get(incident.kelurahan) || incident.kelurahan].filter(Boolean).join(", ");
  const went = missed.went_to ? t("field.missed_went_to", {unit: missed.went_to})
    : missed.offered_at ? t("field.missed_no_unit") : null;
  fill($("#missed-details"),
    h("p", {}, h("span", {class: `priority pr-${incident.priority}`}, label("priority", incident.priority)), " ", callTypeName(incident),
      place ? ` · ${place}` : ""),
    h("p", {}, missed.offered_at ? t("field.missed_when", {offered: timeOf(missed.offered_at), withdrawn: timeOf(missed.withdrawn_at)})
      : t("field.missed_late", {withdrawn: timeOf(missed.withdrawn_at)})),
    went ? h("p", {class: "went-to"}, went) : null,
    incident.closed ? h("p", {}, t("field.missed_closed")) : null);
}

function timeOf(iso) {
  return iso ? new Date(iso).toLocaleTimeString(document.documentElement.lang, {hour: "2-digit", minute: "2-digit"}) : "–";
}

function renderIncident() {
  const incident = dispatchOnShow()?.incident;
  $("#incident").hidden = !incident;
  $("#vitals").hidden = !incident;
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
  renderDestinationChoice(incident);
  $("#handover").hidden = !(state.unit.status === "at_hospital" && incident.destination) || state.handedOver.has(incident.incident_id);
  if (where) {
    const {lat, lon} = where;
    $("#nav-geo").href = `geo:${lat},${lon}?q=${lat},${lon}`;
    $("#nav-osm").href = `https://www.openstreetmap.org/directions?route=%3B${lat}%2C${lon}#map=16/${lat}/${lon}`;
    $("#nav-google").href = `https://www.google.com/maps/dir/?api=1&destination=${lat},${lon}&travelmode=driving`;
  }
}

/** The hospitals to choose from, nearest to the phone's fix when the list was made first (by name without one);
 * the crew's pick stays until the incident's destination changes. */
function renderDestinationChoice(incident) {
  const select = /** @type {HTMLSelectElement} */ ($("#destination-choice"));
  const here = state.fix;
  const away = (f) => (here ? (f.lat - here.lat) ** 2 + ((f.lon - here.lon) * Math.cos((here.lat * Math.PI) / 180)) ** 2 : 0);
  const hospitals = [...state.facilities.values()].filter((f) => f.kind === "hospital");
  if (select.options.length !== hospitals.length + 1) {
    hospitals.sort((a, b) => away(a) - away(b) || a.name.localeCompare(b.name));
    fill(select, h("option", {value: ""}, "–"), hospitals.map((f) => h("option", {value: f.code}, f.name)));
    select.dataset.shown = "";
  }
  const chosen = incident.destination || "";
  if (select.dataset.shown !== chosen) {
    select.value = chosen;
    select.dataset.shown = chosen;
  }
}

/** The patient is handed over at the hospital: it counts at this press, however late the phone can send it. */
function handOver() {
  const incident = dispatchOnShow()?.incident;
  if (!incident) return;
  state.handedOver.add(incident.incident_id);
  queue({type: "handover", incident_id: incident.incident_id});
}

function chooseDestination() {
  const incident = dispatchOnShow()?.incident;
  const facility = /** @type {HTMLSelectElement} */ ($("#destination-choice")).value;
  if (!incident || !facility) return;
  incident.destination = facility;  // shown at once; the server's event confirms it
  queue({type: "destination", incident_id: incident.incident_id, facility});
}

/** The form's signs as numbers (empty fields left out), the time measured (empty: now), and age and sex if given. */
function saveVitals() {
  const incident = dispatchOnShow()?.incident;
  if (!incident) return;
  const value = (name) => /** @type {HTMLInputElement} */ ($(`#v-${name}`)).value.trim();
  const vitals = {};
  for (const name of SIGNS) if (value(name) !== "") vitals[name] = Number(value(name));
  if (!Object.keys(vitals).length) { say(t("field.vitals_empty"), true); return; }
  vitals.measured_at = value("measured_at") ? new Date(value("measured_at")).toISOString() : new Date().toISOString();
  const message = {type: "vitals", incident_id: incident.incident_id, vitals};
  const patient = {};
  if (value("age") !== "") patient.age = Number(value("age"));
  if (value("sex")) patient.sex = value("sex");
  if (Object.keys(patient).length) message.patient = patient;
  /** @type {HTMLFormElement} */ ($("#vitals-form")).reset();
  $("#vitals-last").textContent = t("field.vitals_saved_at", {time: timeOf(vitals.measured_at)});
  queue(message);
}

function callTypeName(incident) {
  const type = state.callTypes.get(incident.call_type);
  if (type) return nameOf(type);
  return incident.call_type_label || incident.call_type || "";
}

function renderButtons() {
  const status = state.unit.status;
  const buttons = [];
  const endings = [];
  // The server says which statuses the crew may report next and which reasons each needs. The usual next
  // step comes first; a release with a reason ends the case early, so it comes after and asks first.
  for (const {status: next, reasons} of state.unit.crew_moves || []) {
    if (status === "dispatched" && next === "en_route") continue;  // the big accept button does this
    if (reasons.length) {
      for (const reason of reasons) {
        const text = t("field.release", {reason: label("reason", reason)});
        endings.push(h("button", {type: "button", class: `status-button to-${next} reason-${reason}`, dataset: {status: next, reason},
                                  onclick: () => confirmEnding(text, () => report(next, reason))}, text));
      }
      continue;
    }
    buttons.push(h("button", {type: "button", class: `status-button to-${next}`, dataset: {status: next}, onclick: () => report(next)},
      label("action", next)));
  }
  buttons.push(...endings);
  fill($("#status-buttons"), buttons);
  $("#actions").hidden = buttons.length === 0;
}

/** Ask before a step that cannot be undone; ``then`` runs only on "yes". */
function confirmEnding(text, then) {
  const dialog = /** @type {HTMLDialogElement} */ ($("#confirm-end"));
  $("#confirm-end-text").textContent = t("field.confirm_end", {action: text});
  dialog.onclose = () => { if (dialog.returnValue === "yes") then(); };
  dialog.returnValue = "";
  dialog.showModal();
}

function accept() {
  const assignment = state.dispatch?.assignment;
  if (assignment) queue({type: "ack", assignment_id: assignment.id});
}

function report(status, reason) {
  const message = {type: "status", status};
  if (reason) message.reason = reason;
  const dispatch = dispatchOnShow();
  if (dispatch) message.assignment_id = dispatch.assignment.id;
  queue(message);
}

/** Every press goes to the outbox at once, stamped with the time of the press and an id, and the outbox is
 * sent in order: however late and however often a report arrives, it counts once, at that time. The buttons
 * never wait for the server; they show where the kept reports lead. */
function queue(message) {
  // A patient report carries its own time (vitals: when measured); a status report the time of the press.
  const stamped = {...message, report_id: newKey("r"), ...(UNTIMED.has(message.type) ? {} : {reported_at: new Date().toISOString()})};
  outbox.push(stamped);
  saveOutbox();
  applyPending();
  if (stamped.type === "ack") {
    stopRing();
    if (state.dispatch) state.dispatch.assignment.acknowledged_at ??= stamped.reported_at;
  }
  const status = PATIENT_REPORTS.has(stamped.type) ? t(`field.report_${stamped.type}`) : label("status", targetOf(stamped));
  const connected = Boolean(live?.connected);
  say(connected ? t("field.sending", {status}) : t(user ? "field.queued" : "field.queued_signed_out", {status}), !connected);
  render();
  gpsForStatus();
  guard(flush(), (err) => say(errorText(err), true));
}

function targetOf(message) {
  return message.type === "ack" ? "en_route" : message.status;
}

/** Until the server has them, the phone shows the unit as its kept reports leave it: at the last one's status. */
function applyPending() {
  if (!state.confirmed) return;
  const last = outbox.findLast((m) => !PATIENT_REPORTS.has(m.type));
  const target = last ? targetOf(last) : null;
  state.unit = target ? {...state.confirmed, status: target, crew_moves: state.crewTable[target] || []} : state.confirmed;
}

/** The dispatch the crew is on, as the page shows the unit. */
function dispatchOnShow() {
  return state.unit && FREE.has(state.unit.status) ? null : state.dispatch;
}

function applyReply(message, reply) {
  if (reply.type === "error") {
    applyPending();  // refused: the page goes back to what the server has
    if (message.type === "handover") state.handedOver.delete(message.incident_id);  // the crew may press it again
    say(describeError(reply.error), true);
    return;
  }
  if (PATIENT_REPORTS.has(message.type)) {
    say(t(`field.report_${message.type}_done`));
    return;
  }
  state.confirmed = {...state.confirmed, ...(reply.unit || {}), status: reply.status, crew_moves: reply.crew_moves};
  if (reply.status === "available") state.dispatch = null;
  applyPending();
  say(t("field.now", {status: label("status", reply.status)}));
}

/** Send what was kept, oldest first, one at a time; a report with no answer is sent again while connected
 * (its id makes that safe), and waits for the next connection otherwise. Presses made meanwhile join the queue. */
async function flush() {
  if (state.flushing) return;
  state.flushing = true;
  try {
    while (outbox.length && live?.connected) {
      let reply;
      try {
        reply = await live.request(outbox[0]);
      } catch {
        continue;
      }
      const [message] = outbox.splice(0, 1);
      saveOutbox();
      applyReply(message, reply);
    }
  } finally {
    state.flushing = false;
    render();
    gpsForStatus();
  }
}

function loadOutbox() {
  try { return JSON.parse(localStorage.getItem(OUTBOX_KEY) || "[]"); } catch { return []; }
}

function saveSnapshot() {
  localStorage.setItem(SNAPSHOT_KEY, JSON.stringify({unit: state.confirmed, dispatch: state.dispatch, crewTable: state.crewTable, missed: state.missed,
                                                     lastEventId: live?.lastId ?? state.resumeFrom}));
}

/** Until the server says hello: the unit as this phone last knew it. */
function restoreSnapshot() {
  try {
    const saved = JSON.parse(localStorage.getItem(SNAPSHOT_KEY) || "null");
    const names = JSON.parse(localStorage.getItem(NAMES_KEY) || "null");
    if (names) useNames(names);
    if (saved?.unit && !state.confirmed) {
      Object.assign(state, {confirmed: saved.unit, dispatch: saved.dispatch, crewTable: saved.crewTable || {}, missed: saved.missed || [],
                            resumeFrom: saved.lastEventId ?? null});
      applyPending();
    }
  } catch { /* a damaged snapshot: wait for the server */ }
}

function saveOutbox() {
  localStorage.setItem(OUTBOX_KEY, JSON.stringify(outbox));
}

function showOutbox() {
  const pending = $("#outbox");
  pending.hidden = outbox.length === 0;
  pending.dataset.count = String(outbox.length);
  pending.textContent = t("field.outbox", {count: outbox.length});
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
