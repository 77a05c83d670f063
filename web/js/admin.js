// The district office's administrator: the fleet (register, edit, on and off duty), the triage table,
// who is on call and which consult requests wait, the last backup, and the audit log. Unit statuses follow live.
import {api, errorText, logout, requireRole} from "./api.js";
import {PRIORITIES, statusChip} from "./chips.js";
import {$, fill, guard, h, localTime} from "./dom.js";
import {label, language, mountLanguageSwitch, onLanguageChange, t, translate} from "./i18n.js";
import {auditRow} from "./audit_view.js";
import {LiveSocket} from "./live.js";

const KINDS = ["ambulance", "motorbike"];
const CAPABILITIES = ["bls", "als", "transport", "aed", "obstetric", "neonatal", "rescue"];
// What a destination hospital can treat (dispatch/hospitals.py): a call type may need one of them.
const SERVICES = ["cath_lab", "ct", "icu", "nicu", "picu", "obstetrics", "trauma_surgery", "burns"];
const TRANSPORT = "transport";
// A unit can be put on duty from these statuses, and off duty from the first two; busy units are left to their crew.
const DUTY_OFF = new Set(["available", "unavailable"]);
const DUTY_ON = new Set(["off_duty", "unavailable"]);

const user = requireRole("admin");
const state = {units: new Map(), callTypes: [], facilities: [], kelurahan: new Map(), editing: null, loaded: false};

if (user) guard(boot(), (err) => { $("#unit-error").textContent = errorText(err); });

async function boot() {
  mountLanguageSwitch();
  translate();
  $("#who").textContent = user.display_name || user.username;
  $("#logout").addEventListener("click", () => { live.stop(); guard(logout()); });
  $("#unit-form").addEventListener("submit", (e) => { e.preventDefault(); guard(saveUnit(), unitError); });
  $("#unit-new").addEventListener("click", () => editUnit(null));
  $("#audit-form").addEventListener("submit", (e) => { e.preventDefault(); guard(loadAudit(), unitError); });
  const live = new LiveSocket("/ws/operator", {
    onHello: () => { if (!state.loaded) guard(load(), unitError); },
    onEvent: (event) => {
      if (!state.loaded) return;
      const d = event.data || {};
      if (d.unit?.id) {
        state.units.set(d.unit.id, {...state.units.get(d.unit.id), ...d.unit});
        renderUnits();
      }
      if (event.event === "triage.updated") guard(loadTriage(), triageError);
      if (event.event === "alert" && d.alert === "login_failures") showLoginAlert(d, event.at);
      if (event.event === "alert" && d.alert === "backup_failed") showBackupAlert(d, event.at);
      if (event.event.startsWith("consult.") || event.event === "oncall.changed") guard(loadConsults(), unitError);
    },
    onMessage: () => {},
  }).start();
  onLanguageChange(() => { if (state.loaded) renderAll(); });
}

async function load() {
  const [region, units] = await Promise.all([api("GET", "/api/region"), api("GET", "/api/units")]);
  state.facilities = region.facilities;
  state.kelurahan = new Map(region.kelurahan.map((k) => [k.code, k.name]));
  state.units = new Map(units.units.map((u) => [u.id, u]));
  await Promise.all([loadTriage(), loadConsults(), loadAudit(), loadBackup()]);
  setInterval(() => guard(loadBackup()), 60_000);
  state.loaded = true;
  renderAll();
  editUnit(null);
  document.body.dataset.ready = "true";
}

function renderAll() {
  renderUnits();
  renderUnitForm();
  renderTriage();
  renderBackup();
}

function unitError(err) { $("#unit-error").textContent = errorText(err); }
function triageError(err) { $("#triage-error").textContent = errorText(err); }

/** Where a unit is based: its facility, else its kelurahan (the motorbike teams). */
function baseName(unit) {
  const facility = state.facilities.find((f) => f.code === unit.base_facility);
  return facility?.name || state.kelurahan.get(unit.kelurahan) || unit.base_facility || "–";
}

// --- the fleet ------------------------------------------------------------------------

function renderUnits() {
  const units = [...state.units.values()].sort((a, b) => a.callsign.localeCompare(b.callsign, undefined, {numeric: true}));
  const onDuty = units.filter((u) => u.status !== "off_duty").length;
  $("#fleet-counts").textContent = t("adm.fleet_counts", {on: onDuty, total: units.length});
  fill($("#units"), units.map((u) => h("tr", {dataset: {unitId: u.id, status: u.status}},
    h("td", {class: "callsign"}, u.callsign),
    h("td", {}, label("kind", u.kind)),
    h("td", {}, statusChip(u.status)),
    h("td", {}, baseName(u)),
    h("td", {}, (u.crew || []).join(", ")),
    h("td", {}, (u.capabilities || []).map((c) => label("capability", c)).join(", ")),
    h("td", {class: "actions"},
      DUTY_ON.has(u.status) ? h("button", {type: "button", class: "duty-on", onclick: () => guard(setDuty(u, true), unitError)}, t("adm.on_duty")) : null,
      DUTY_OFF.has(u.status) ? h("button", {type: "button", class: "duty-off", onclick: () => guard(setDuty(u, false), unitError)}, t("adm.off_duty")) : null,
      h("button", {type: "button", class: "edit", onclick: () => editUnit(u.id)}, t("adm.edit"))))));
}

async function setDuty(unit, onDuty) {
  $("#unit-error").textContent = "";
  const result = await api("POST", `/api/units/${encodeURIComponent(unit.id)}/duty`, {on_duty: onDuty});
  if (result.unit) state.units.set(unit.id, {...state.units.get(unit.id), ...result.unit});
  renderUnits();
}

function renderUnitForm() {
  const keep = {kind: $("#u-kind").value, base: $("#u-base").value};
  fill($("#u-kind"), KINDS.map((k) => h("option", {value: k}, label("kind", k))));
  const bases = [...state.facilities].sort((a, b) => a.name.localeCompare(b.name));
  fill($("#u-base"), h("option", {value: ""}, t("op.choose")), bases.map((f) => h("option", {value: f.code}, f.name)));
  const checked = new Set(CAPABILITIES.filter((c) => $(`#u-cap-${c}`)?.checked));
  fill($("#u-capabilities"), h("legend", {}, t("adm.capabilities")), CAPABILITIES.map((c) =>
    h("label", {class: "check"}, h("input", {type: "checkbox", id: `u-cap-${c}`, value: c, checked: checked.has(c)}), ` ${label("capability", c)}`)));
  $("#u-kind").value = keep.kind || "ambulance";
  $("#u-base").value = keep.base;
  $("#unit-form-h").textContent = state.editing ? t("adm.edit_unit", {unit: state.units.get(state.editing)?.callsign || ""}) : t("adm.new_unit");
}

/** Fill the form with a unit to change, or empty it for a new one. */
function editUnit(unitId) {
  state.editing = unitId;
  const u = unitId ? state.units.get(unitId) : null;
  $("#unit-error").textContent = "";
  $("#unit-message").textContent = "";
  $("#u-id").value = u?.id || "";
  $("#u-id").disabled = Boolean(u);
  $("#u-callsign").value = u?.callsign || "";
  $("#u-kind").value = u?.kind || "ambulance";
  $("#u-base").value = u?.base_facility || "";
  $("#u-crew").value = (u?.crew || []).join(", ");
  for (const c of CAPABILITIES) $(`#u-cap-${c}`).checked = Boolean(u?.capabilities?.includes(c));
  renderUnitForm();
  (u ? $("#u-callsign") : $("#u-id")).focus();
}

async function saveUnit() {
  $("#unit-error").textContent = "";
  $("#unit-message").textContent = "";
  const base = state.facilities.find((f) => f.code === $("#u-base").value);
  // A new unit needs a base; an edited one without a facility (a kelurahan's motorbike team) keeps its own.
  if (!base && !state.editing) { $("#unit-error").textContent = t("adm.need_base"); $("#u-base").focus(); return; }
  const body = {
    callsign: $("#u-callsign").value.trim(),
    kind: $("#u-kind").value,
    capabilities: CAPABILITIES.filter((c) => $(`#u-cap-${c}`).checked),
    crew: $("#u-crew").value.split(",").map((s) => s.trim()).filter(Boolean),
    ...(base ? {base_facility: base.code, base_lat: base.lat, base_lon: base.lon, kelurahan: base.kelurahan || null} : {}),
  };
  let result;
  if (state.editing) {
    result = await api("PATCH", `/api/units/${encodeURIComponent(state.editing)}`, body);
  } else {
    result = await api("POST", "/api/units", {id: $("#u-id").value.trim(), ...body});
  }
  state.units.set(result.unit.id, {...state.units.get(result.unit.id), ...result.unit});
  renderUnits();
  editUnit(result.unit.id);
  $("#unit-message").textContent = t("adm.unit_saved", {unit: result.unit.callsign});
}

// --- the triage table -----------------------------------------------------------------

async function loadTriage() {
  state.callTypes = (await api("GET", "/api/triage")).call_types;
  renderTriage();
}

// What each row shows (its call type, in the page's language), while it shows it untouched.
const shownAs = new WeakMap();
const shown = (c) => JSON.stringify([language(), c]);

// A row the admin has typed into is an edit under way: a re-render (a change saved elsewhere, or another
// row saved here) keeps it as it is, focus included, until it is saved. A row whose call type has not changed is
// kept too, so that a re-render never takes away the field the admin has just entered.
function renderTriage() {
  const table = $("#triage");
  const current = new Map([...table.children].map((tr) => [tr.dataset.code, tr]));
  const kept = (c, isNew) => {
    const tr = current.get(c.code);
    return tr && (tr.dataset.editing || shownAs.get(tr) === shown(c)) ? tr : triageRow(c, isNew);
  };
  const rows = state.callTypes.map((c) => kept(c, false));
  rows.push(kept({code: "", label_id: "", label_en: "", priority: "kuning", capabilities: ["bls"], active: true}, true));
  for (const tr of [...table.children]) if (!rows.includes(tr)) tr.remove();
  let at = table.firstElementChild;
  for (const row of rows) {
    if (row === at) at = at.nextElementSibling;
    else table.insertBefore(row, at);
  }
}

function triageRow(c, isNew) {
  const input = (name, value, attrs = {}) => h("input", {name, value, "aria-label": t(`adm.${name}`), ...attrs});
  const row = h("tr", {class: isNew ? "new-call-type" : `pr-${c.priority}`, dataset: {code: c.code}},
    h("td", {}, isNew ? input("code", "", {placeholder: t("adm.new_code"), pattern: "[a-z][a-z0-9_]*"}) : h("code", {}, c.code)),
    h("td", {}, input("label_id", c.label_id)),
    h("td", {}, input("label_en", c.label_en)),
    h("td", {}, h("select", {name: "priority", "aria-label": t("op.priority")},
      PRIORITIES.map((p) => h("option", {value: p, selected: p === c.priority}, label("priority", p))))),
    // Transport is whether the patient must be carried, not care a first responder gives: its own control.
    h("td", {}, input("capabilities", (c.capabilities || []).filter((x) => x !== TRANSPORT).join(", "), {"aria-label": t("adm.care")})),
    h("td", {}, h("input", {type: "checkbox", name: "transport", checked: (c.capabilities || []).includes(TRANSPORT),
                            "aria-label": t("adm.needs_transport")})),
    h("td", {}, h("select", {name: "service", "aria-label": t("adm.service")}, h("option", {value: ""}, t("adm.no_service")),
      SERVICES.map((s) => h("option", {value: s, selected: s === c.service}, label("service", s))))),
    h("td", {}, h("input", {type: "checkbox", name: "active", checked: c.active !== false, "aria-label": t("adm.active")})),
    h("td", {}, h("button", {type: "button", class: "save", onclick: () => guard(saveCallType(row, c.code), triageError)},
      isNew ? t("adm.add") : t("adm.save"))));
  const editing = () => { row.dataset.editing = "true"; shownAs.delete(row); };
  row.addEventListener("input", editing);
  row.addEventListener("change", editing);
  shownAs.set(row, shown(c));
  return row;
}

async function saveCallType(row, existing) {
  $("#triage-error").textContent = "";
  $("#triage-message").textContent = "";
  const field = (name) => row.querySelector(`[name=${name}]`);
  const code = existing || field("code").value.trim();
  if (!code) { $("#triage-error").textContent = t("adm.need_code"); field("code").focus(); return; }
  const result = await api("PUT", `/api/triage/${encodeURIComponent(code)}`, {
    label_id: field("label_id").value.trim(), label_en: field("label_en").value.trim(), priority: field("priority").value,
    capabilities: [...field("capabilities").value.split(",").map((s) => s.trim()).filter(Boolean),
                   ...(field("transport").checked ? [TRANSPORT] : [])],
    service: field("service").value || null,
    active: field("active").checked,
  });
  $("#triage-message").textContent = t("adm.call_type_saved", {code: result.call_type.code});
  delete row.dataset.editing;  // saved: the row follows the table again
  await loadTriage();
}

// --- consults and the audit log -------------------------------------------------------

async function loadConsults() {
  const [roster, waiting] = await Promise.all([api("GET", "/api/oncall"), api("GET", "/api/consults?state=requested")]);
  fill($("#on-call"), roster.on_call.length ? roster.on_call.map((e) =>
    h("li", {dataset: {specialty: e.specialty}}, `${e.display_name || e.username} · ${label("specialty", e.specialty)}`))
    : h("li", {class: "hint"}, t("adm.nobody_on_call")));
  fill($("#waiting"), waiting.consults.length ? waiting.consults.map((c) =>
    h("li", {class: c.overdue ? "overdue-item" : null, dataset: {consultId: c.id}},
      `${label("specialty", c.specialty)} · ${c.facility_name || c.facility} · ${label("urgency", c.urgency)} · ${localTime(c.requested_at)}`,
      c.overdue ? h("span", {class: "overdue"}, ` ${t("consult.overdue")}`) : null))
    : h("li", {class: "hint"}, t("adm.none_waiting")));
}

/** An account is under attack: its logins are slowed (never locked); the audit log has the detail. */
function showLoginAlert(alert, at) {
  const text = t("adm.login_failures", {failures: alert.failures, username: alert.username, minutes: Math.round(alert.window_s / 60)});
  showAlert({alert: alert.alert, username: alert.username}, text, at);
}

/** A backup failed: the error as the server recorded it (backup_runs); the last good one stays shown. */
function showBackupAlert(alert, at) {
  showAlert({alert: alert.alert}, t("adm.backup_failed", {error: alert.error}), at);
  guard(loadBackup());
}

function showAlert(dataset, text, at) {
  $("#alerts-panel").hidden = false;
  const item = h("li", {class: "alert", dataset}, `${localTime(at)} · ${text}`,
    h("button", {type: "button", class: "dismiss", "aria-label": t("alert.dismiss"), onclick: () => item.remove()}, "×"));
  $("#alerts").prepend(item);
}

// --- backups --------------------------------------------------------------------------

/** When the last good backup finished and how long ago, as /readyz tells it. */
async function loadBackup() {
  const response = await fetch("/readyz", {headers: {Accept: "application/json"}});
  state.backup = response.ok ? (await response.json()).backup : undefined;
  renderBackup();
}

function renderBackup() {
  const backup = state.backup;
  const node = $("#backup-status");
  if (backup === undefined) {
    node.textContent = t("adm.backup_unknown");
  } else if (backup === null) {
    node.textContent = t("adm.backup_none");
  } else {
    const hours = backup.age_s / 3600;
    const age = hours < 1 ? t("adm.age_minutes", {n: Math.round(backup.age_s / 60)})
      : hours < 48 ? t("adm.age_hours", {n: Math.round(hours)}) : t("adm.age_days", {n: Math.round(hours / 24)});
    node.textContent = t("adm.backup_last", {time: new Date(backup.finished_at).toLocaleString(), age});
  }
  node.dataset.state = backup ? "ok" : "none";
}

async function loadAudit() {
  const query = new URLSearchParams({limit: "100"});
  if ($("#a-action").value.trim()) query.set("action", $("#a-action").value.trim());
  if ($("#a-user").value.trim()) query.set("username", $("#a-user").value.trim());
  const {entries} = await api("GET", `/api/audit?${query}`);
  fill($("#audit"), entries.map((e) => auditRow(e, state.units)));
}
