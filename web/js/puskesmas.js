// The puskesmas doctor: request a consult with the case and attachments, follow it live, meet the specialist
// in the video room, and read the written answer.
import {api, apiUpload, errorText, requireRole} from "./api.js";
import {$, fill, guard, h, localTime, newKey, oneAtATime} from "./dom.js";
import {label, onLanguageChange, t} from "./i18n.js";
import {LiveSocket} from "./live.js";
import {SERVICES, SPECIALTIES, URGENCIES, VITAL_NAMES, fillCase, loadCase, mountDoctorPage, options, stateChip,
  urgencyChip} from "./consult_view.js";

const OPEN_STATES = ["requested", "accepted"];
const user = requireRole("puskesmas");
// key: the idempotency key of the request being made, kept across retries until it is stored.
const state = {consults: [], selected: null, detail: null, key: null, busy: false};
let live = null;
// Every change to the consults re-reads them; one read at a time, so the newest always renders last.
const refresh = oneAtATime(reload);

if (user) guard(boot(), (err) => { $("#request-error").textContent = errorText(err); });

async function boot() {
  mountDoctorPage(user, () => live?.stop());
  fillForm();
  onLanguageChange(() => { fillForm(); render(); });
  $("#request-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guard(submit(), (err) => { $("#request-error").textContent = errorText(err); });
  });
  $("#request-new").addEventListener("click", resetForm);
  $("#cancel-consult").addEventListener("click", () => guard(cancel(), caseError));
  $("#case-upload").addEventListener("click", () => guard(addFiles(), caseError));
  live = new LiveSocket("/ws/events", {
    onHello: () => guard(refresh()),
    onEvent: (message) => { if (message.event.startsWith("consult.") || message.event.startsWith("referral.")) guard(refresh()); },
  }).start();
  window.__psc119 = {live, state, settled: refresh.settled};
  document.body.dataset.ready = "true";
}

function fillForm() {
  const keep = (id) => $(id).value || undefined;
  options($("#r-service"), SERVICES, "service", keep("#r-service"));
  options($("#r-specialty"), SPECIALTIES, "specialty", keep("#r-specialty"));
  options($("#r-urgency"), URGENCIES, "urgency", keep("#r-urgency") || "urgent");
  options($("#r-sex"), ["female", "male"], "sex", keep("#r-sex"));
  const vitals = $("#r-vitals");
  const values = Object.fromEntries(VITAL_NAMES.map((name) => [name, $(`#v-${name}`)?.value || ""]));
  fill(vitals, VITAL_NAMES.map((name) => h("div", {},
    h("label", {for: `v-${name}`}, t(`vital.${name}`)),
    h("input", {id: `v-${name}`, name, type: "number", step: name === "temperature_c" ? "0.1" : "1", inputmode: "decimal", value: values[name]}))));
}

function caseError(err) {
  $("#case-error").textContent = errorText(err);
}

/** The request body from the form, or null after marking what is missing. */
function requestBody() {
  const form = $("#request-form");
  let first = null;
  for (const el of form.querySelectorAll("[required]")) {
    const missing = !el.value.trim();
    el.setAttribute("aria-invalid", String(missing));
    if (missing && !first) first = el;
  }
  if (first) {
    $("#request-error").textContent = t("pkm.missing");
    first.focus();
    return null;
  }
  const vitals = {};
  for (const name of VITAL_NAMES) {
    const raw = $(`#v-${name}`).value.trim();
    if (raw) vitals[name] = name === "temperature_c" ? Number(raw) : Math.round(Number(raw));
  }
  const patient = {age: Math.round(Number($("#r-age").value)), sex: $("#r-sex").value,
                   chief_complaint: $("#r-complaint").value.trim(), question: $("#r-question").value.trim()};
  if (Object.keys(vitals).length) patient.vitals = vitals;
  return {service: $("#r-service").value, specialty: $("#r-specialty").value, urgency: $("#r-urgency").value, patient};
}

async function submit() {
  if (state.busy) return;
  $("#request-error").textContent = "";
  $("#request-message").textContent = "";
  const body = requestBody();
  if (!body) return;
  state.key ??= newKey("consult");
  state.busy = true;
  $("#request-submit").disabled = true;
  try {
    const {consult} = await api("POST", "/api/consults", {idempotency_key: state.key, ...body});
    state.selected = consult.id;
    const files = Array.from($("#r-files").files || []);
    const failed = await upload(consult.id, files);
    resetForm();
    $("#request-message").textContent = t("pkm.sent", {count: files.length - failed.length});
    if (failed.length) $("#request-error").textContent = failed.join(" · ");
    await refresh();
  } finally {
    state.busy = false;
    $("#request-submit").disabled = false;
  }
}

/** Upload each file; returns the messages of those that failed. */
async function upload(consultId, files) {
  const failed = [];
  for (const file of files) {
    try {
      await apiUpload(`/api/consults/${consultId}/attachments?filename=${encodeURIComponent(file.name)}`, file);
    } catch (err) {
      failed.push(`${file.name}: ${errorText(err)}`);
    }
  }
  return failed;
}

function resetForm() {
  $("#request-form").reset();
  state.key = null;
  for (const el of $("#request-form").querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  $("#request-error").textContent = "";
}

async function reload() {
  const {consults} = await api("GET", "/api/consults");
  state.consults = consults;
  if (state.selected) state.detail = await loadCase(state.selected);
  render();
}

function select(id) {
  state.selected = id;
  $("#case-error").textContent = "";
  guard(refresh(), caseError);
}

function render() {
  fill($("#consult-list"), state.consults.map((c) => h("li", {},
    h("button", {type: "button", class: `consult-item${c.id === state.selected ? " selected" : ""}`, dataset: {consultId: c.id, state: c.state},
                 onclick: () => select(c.id)},
      stateChip(c), " ", urgencyChip(c.urgency), " ", h("strong", {}, label("specialty", c.specialty)), " · ",
      label("service", c.service), " · ", h("span", {class: "hint"}, localTime(c.requested_at)),
      c.overdue ? [" ", h("span", {class: "overdue"}, t("consult.overdue"))] : null))));
  $("#no-consults").hidden = state.consults.length > 0;
  renderCase();
}

function renderCase() {
  const c = state.detail;
  if (!fillCase(c)) return;
  fill($("#case-h"), t("pkm.case_title", {specialty: label("specialty", c.specialty)}));
  const waiting = c.state === "requested" ? t("pkm.waiting_until", {time: localTime(c.respond_by)}) : null;
  fill($("#case-status"), stateChip(c), " ", waiting, c.overdue ? [" ", h("span", {class: "overdue"}, t("consult.overdue"))] : null);
  // A colleague's request is read here, not changed: only the requesting doctor cancels it or adds files.
  const mine = c.requester === user.id;
  $("#cancel-consult").hidden = !mine || !OPEN_STATES.includes(c.state);
  $("#add-files").hidden = !mine || !OPEN_STATES.concat("in_session").includes(c.state);
}

/** More attachments for the selected consult (while it is open). */
async function addFiles() {
  const c = state.detail;
  const files = Array.from($("#case-files").files || []);
  if (!c || !files.length) return;
  $("#case-error").textContent = "";
  const failed = await upload(c.id, files);
  $("#case-files").value = "";
  if (failed.length) $("#case-error").textContent = failed.join(" · ");
  await refresh();
}

async function cancel() {
  const c = state.detail;
  if (!c || !window.confirm(t("pkm.cancel_confirm"))) return;
  await api("POST", `/api/consults/${c.id}/cancel`, {});
  await refresh();
}
