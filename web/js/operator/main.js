// The operator console: boot, the live socket, keyboard shortcuts, and wiring the parts together.
import {api, errorText, getWebConfig, logout, requireRole} from "../api.js";
import {$, guard, oneAtATime} from "../dom.js";
import {mountLanguageSwitch, onLanguageChange, t, translate} from "../i18n.js";
import {LiveSocket} from "../live.js";
import {beep, unlockAudio} from "../ringer.js";
import {createMap, fitTo} from "../map.js";
import {MapLayer, renderIncidentBoard, renderUnitBoard, showAlert, tick} from "./boards.js";
import {Intake} from "./intake.js";
import {IncidentPanel} from "./panel.js";
import {NoticeLine} from "./prearrival.js";
import {drawMetrics, fillIntervals, showMetrics, showTimeline} from "./reports.js";
import {Store, unitLatLng} from "./store.js";

const user = requireRole("operator", "admin");
if (user) guard(boot(), fatal);

function fatal(err) {
  const line = $("#intake-error");
  if (line) line.textContent = errorText(err);
}

async function boot() {
  mountLanguageSwitch();
  translate();
  $("#who").textContent = `${user.display_name || user.username} (${user.role})`;
  $("#logout").addEventListener("click", () => guard(logout()));
  window.addEventListener("unhandledrejection", (e) => { fatal(e.reason); });
  // Browsers allow sound only after a gesture: the first key press or click (the login's came before) prepares it.
  document.addEventListener("pointerdown", unlockAudio, {once: true});
  document.addEventListener("keydown", unlockAudio, {once: true});

  const store = new Store();
  const config = await getWebConfig();
  const map = createMap($("#map"), config.tile_url, {notice: $("#map-notice")});
  const layer = new MapLayer(map, store);
  let selected = null;
  const panel = new IncidentPanel({store, onSelect: select});
  const intake = new Intake({store, map, panel, onSelect: select});
  const noticeLine = new NoticeLine({onError: fatal});

  function select(incidentId, {fromIntake = false} = {}) {
    selected = incidentId;
    redrawIncidents();
    if (incidentId && !fromIntake) guard(panel.open(incidentId), fatal);
    if (incidentId !== noticeLine.incidentId) guard(noticeLine.show(incidentId), fatal);
    redrawUnits();  // its send buttons go to the incident now open
  }

  function redrawIncidents() {
    const count = renderIncidentBoard(store, $("#incident-board"), {selected, onSelect: select});
    $("#no-incidents").hidden = count > 0;
    layer.renderIncidents(select);
  }

  function redrawUnits() {
    renderUnitBoard(store, $("#unit-board"), $("#unit-counts"), panel.incidentId ? (unit) => panel.sendUnit(unit) : null);
    layer.renderUnits();
  }

  // Events that arrive while the first snapshot loads wait for it, then apply on top.
  let pending = [];
  let loaded = false;
  let loading = false;
  // In call order, so an answer about older figures never draws over a newer one.
  const reloadHospitals = oneAtATime(() => panel.loadHospitals(panel.incidentId));
  function onEvent(event) {
    if (!loaded) { pending.push(event); return; }
    const changed = store.apply(event);
    noticeLine.event(event);
    if (changed.units) redrawUnits();
    if (changed.incidents) {
      redrawIncidents();
    }
    if ((changed.incidents || changed.units) && panel.concerns(event)) panel.changed(event);
    // A hospital's beds or services changed: the incident on show ranks its hospitals again.
    if (event.event === "hospital.availability" && panel.incidentId) guard(reloadHospitals());
    if (changed.alert) {
      showAlert($("#alerts"), changed.alert, store, select);
      beep();
      if (panel.concerns(event)) panel.alerted(event);
    }
  }

  const live = new LiveSocket("/ws/operator", {
    // The snapshot loads once; a failed load is tried again on the next connection.
    onHello: () => { if (!loaded && !loading) guard(loadSnapshot(), fatal); },
    onEvent,
    onMessage: (message) => {
      if (message.type !== "positions" || !loaded) return;
      for (const unit of store.positions(message.units)) layer.updateUnit(unit);
    },
  }).start();

  async function loadSnapshot() {
    loading = true;
    try {
      await readSnapshot();
    } finally {
      loading = false;
    }
  }

  async function readSnapshot() {
    const [region, triage, units, incidents] = await Promise.all([
      api("GET", "/api/region"), api("GET", "/api/triage"), api("GET", "/api/units"), api("GET", "/api/incidents?status=open"),
    ]);
    store.region = region;
    store.callTypes = new Map(triage.call_types.map((c) => [c.code, c]));
    store.loadUnits(units.units);
    store.loadIncidents(incidents.incidents);
    for (const i of incidents.incidents) store.setAssignments(i.id, i.assignments);
    intake.populate();
    panel.populate();
    fitTo(map, store.unitList().map(unitLatLng));
    loaded = true;
    redrawUnits();
    redrawIncidents();
    const queued = pending;
    pending = [];
    queued.forEach(onEvent);
    document.body.dataset.ready = "true";
  }

  setInterval(() => tick($("#incident-board")), 1000);
  onLanguageChange(() => {
    if (!loaded) return;
    intake.populate();
    panel.populate();
    redrawUnits();
    redrawIncidents();
    fillIntervals();
    drawMetrics(store);
  });

  $("#open-metrics").addEventListener("click", () => guard(showMetrics(store), fatal));
  $("#show-timeline").addEventListener("click", () => { if (panel.incidentId) guard(showTimeline(panel.incidentId), fatal); });
  document.addEventListener("keydown", (e) => {
    if (!e.altKey || e.ctrlKey || e.metaKey) return;
    const digit = /^Digit([1-9])$/.exec(e.code);
    const key = e.code.replace(/^Key/, "").toLowerCase();
    if (digit) { e.preventDefault(); panel.dispatch(Number(digit[1]) - 1); }
    else if (key === "n") { e.preventDefault(); intake.reset(); }
    else if (key === "m") { e.preventDefault(); guard(showMetrics(store), fatal); }
    else if (key === "t") { e.preventDefault(); if (panel.incidentId) guard(showTimeline(panel.incidentId), fatal); }
    else if (key === "i") { e.preventDefault(); $("#incident-board tr")?.focus(); }
  });

  window.__psc119 = {live, store, map, t};
}
