// The specialist: go on call per specialty, take requests from the queue (most urgent first), read the case
// and its attachments, meet the puskesmas doctor in the video room, and complete with SOAP notes and a decision.
import {ApiError, api, errorText, requireRole} from "./api.js";
import {$, clock, fill, guard, h, localTime, oneAtATime} from "./dom.js";
import {label, onLanguageChange, t} from "./i18n.js";
import {LiveSocket} from "./live.js";
import {ROOM_STATES, fillCase, loadCase, mountDoctorPage, overdueFlag, stateChip, urgencyChip} from "./consult_view.js";
import {closeRoom, currentRoom} from "./room_view.js";
import {loadReferralOptions, missingReferral, referralBody, resetReferral} from "./referral_form.js";

const user = requireRole("specialist");
const state = {consults: [], onCall: new Set(), selected: null, detail: null, facilities: new Map(), busy: false};
let live = null;
// Every change to the consults re-reads them; one read at a time, so the newest always renders last.
const refresh = oneAtATime(reload);

if (user) guard(boot(), (err) => { $("#queue-message").textContent = errorText(err); });

async function boot() {
  mountDoctorPage(user, () => live?.stop());
  onLanguageChange(render);
  $("#outcome-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guard(complete(), (err) => { $("#outcome-error").textContent = errorText(err); });
  });
  for (const radio of document.querySelectorAll("input[name=decision]")) radio.addEventListener("change", showDecisionFields);
  $("#refer-service").addEventListener("change", rankHospitals);
  live = new LiveSocket("/ws/events", {
    onHello: () => guard(refresh()),
    onEvent: (message) => { if (message.event.startsWith("consult.") || message.event.startsWith("referral.") || message.event === "oncall.changed") guard(refresh()); },
  }).start();
  window.__psc119 = {live, state, settled: refresh.settled};
  setInterval(tick, 1000);
  const region = await api("GET", "/api/region");
  state.facilities = new Map(region.facilities.map((f) => [f.code, f]));
  render();
  document.body.dataset.ready = "true";
}

function caseError(err) {
  $("#case-error").textContent = errorText(err);
}

async function reload() {
  const [{consults}, {on_call: onCall}] = await Promise.all([api("GET", "/api/consults"), api("GET", "/api/oncall")]);
  state.consults = consults;
  state.onCall = new Set(onCall.map((o) => o.specialty));
  if (state.selected) state.detail = await loadCase(state.selected);
  render();
}

function render() {
  renderOnCall();
  const queue = state.consults.filter((c) => c.state === "requested");
  fill($("#queue"), queue.map((c) => h("tr", {class: `queue-row ur-${c.urgency}${c.overdue ? " is-overdue" : ""}`, dataset: {consultId: c.id}},
    h("td", {}, urgencyChip(c.urgency), " ", overdueFlag(c)),
    h("td", {}, label("specialty", c.specialty), h("br"), h("span", {class: "hint"}, label("service", c.service))),
    h("td", {class: "elapsed", dataset: {since: c.requested_at}}, clock((Date.now() - Date.parse(c.requested_at)) / 1000)),
    h("td", {}, state.facilities.get(c.facility)?.name || c.facility),
    h("td", {}, c.declined_by_me ? h("span", {class: "hint"}, t("sp.declined")) : null,
      h("button", {type: "button", class: "accept primary", dataset: {consultId: c.id}, onclick: () => guard(accept(c.id), queueError)}, t("sp.accept")),
      c.declined_by_me ? null : h("button", {type: "button", class: "decline", dataset: {consultId: c.id}, onclick: () => guard(decline(c.id), queueError)}, t("sp.decline"))))));
  $("#queue-empty").hidden = queue.length > 0;
  $("#queue-empty").textContent = state.onCall.size ? t("sp.queue_empty") : t("sp.off_call_hint");
  const mine = state.consults.filter((c) => c.state !== "requested");
  fill($("#my-consults"), mine.map((c) => h("li", {},
    h("button", {type: "button", class: `consult-item${c.id === state.selected ? " selected" : ""}`, dataset: {consultId: c.id, state: c.state},
                 onclick: () => select(c.id)},
      stateChip(c), " ", urgencyChip(c.urgency), " ", h("strong", {}, label("specialty", c.specialty)), " · ",
      state.facilities.get(c.facility)?.name || c.facility, " · ", h("span", {class: "hint"}, localTime(c.requested_at))))));
  renderCase();
}

function renderOnCall() {
  const holder = $("#oncall-switches");
  fill(holder, (user.specialties || []).map((code) => h("label", {class: "inline switch"},
    h("input", {type: "checkbox", role: "switch", id: `oncall-${code}`, dataset: {specialty: code}, checked: state.onCall.has(code),
                onchange: (e) => guard(setOnCall(code, e.target.checked), queueError)}),
    " ", label("specialty", code))));
}

async function setOnCall(specialty, on) {
  await api("PUT", "/api/oncall", {specialty, on_call: on});
  await refresh();
}

function queueError(err) {
  const line = $("#queue-message");
  line.className = "error";
  line.textContent = errorText(err);
}

async function accept(id) {
  $("#queue-message").textContent = "";
  try {
    await api("POST", `/api/consults/${id}/accept`);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 409) throw err;
    const line = $("#queue-message");
    line.className = "error";
    line.textContent = t("sp.taken");
    await refresh();
    return;
  }
  state.selected = id;
  resetOutcome();
  await refresh();
}

async function decline(id) {
  await api("POST", `/api/consults/${id}/decline`);
  await refresh();
}

function select(id) {
  if (state.selected !== id) resetOutcome();
  state.selected = id;
  $("#case-error").textContent = "";
  guard(refresh(), caseError);
}

function renderCase() {
  const c = state.detail;
  if (!fillCase(c)) return;
  fill($("#case-h"), t("sp.case_title", {facility: state.facilities.get(c.facility)?.name || c.facility}));
  fill($("#case-status"), stateChip(c), " ", t("sp.requested_at", {time: localTime(c.requested_at)}), " ", overdueFlag(c));
  $("#outcome-form").hidden = !ROOM_STATES.includes(c.state);
}

function decision() {
  return /** @type {HTMLInputElement} */ (document.querySelector("input[name=decision]:checked")).value;
}

function showDecisionFields() {
  $("#refer-fields").hidden = decision() !== "refer";
  $("#follow-fields").hidden = decision() !== "follow_up";
  if (decision() === "refer") rankHospitals();
}

/** The hospitals ranked from the consult's puskesmas for the service chosen. */
function rankHospitals() {
  const c = state.detail;
  if (c) guard(loadReferralOptions(c.id, c.urgency), (err) => { $("#outcome-error").textContent = errorText(err); });
}

function resetOutcome() {
  $("#outcome-form").reset();
  $("#outcome-error").textContent = "";
  resetReferral();
  showDecisionFields();
}

function outcomeBody() {
  const text = (id) => $(id).value.trim();
  const missing = ["#soap-assessment", "#soap-plan"].filter((id) => !text(id));
  for (const id of ["#soap-assessment", "#soap-plan"]) $(id).setAttribute("aria-invalid", String(missing.includes(id)));
  if (decision() === "refer") missing.push(...missingReferral());
  if (missing.length) {
    $("#outcome-error").textContent = t("sp.missing");
    $(missing[0]).focus();
    return null;
  }
  const outcome = {soap: {subjective: text("#soap-subjective"), objective: text("#soap-objective"),
                          assessment: text("#soap-assessment"), plan: text("#soap-plan")}, decision: decision()};
  if (outcome.decision === "refer") outcome.referral = referralBody();
  if (outcome.decision === "follow_up") {
    if (text("#follow-on")) outcome.follow_up_on = text("#follow-on");
    else if (text("#follow-in")) outcome.follow_up_in_hours = Math.round(Number(text("#follow-in")));
    else {
      $("#outcome-error").textContent = t("sp.follow_missing");
      return null;
    }
  }
  return outcome;
}

async function complete() {
  const c = state.detail;
  if (!c || state.busy) return;
  $("#outcome-error").textContent = "";
  const outcome = outcomeBody();
  if (!outcome) return;
  state.busy = true;
  $("#complete").disabled = true;
  try {
    await api("POST", `/api/consults/${c.id}/complete`, {outcome});
    if (currentRoom()?.consultId === c.id) closeRoom();
    await refresh();
  } finally {
    state.busy = false;
    $("#complete").disabled = false;
  }
}

function tick() {
  for (const cell of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll("#queue .elapsed"))) {
    cell.textContent = clock((Date.now() - Date.parse(cell.dataset.since)) / 1000);
  }
}
