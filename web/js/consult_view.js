// How a consult reads on screen, for both doctors: its chip, the patient summary, attachments and the written answer.
import {api, apiBlob, errorText, logout, session} from "./api.js";
import {$, fill, guard, h} from "./dom.js";
import {label, mountLanguageSwitch, t, translate} from "./i18n.js";
import {closeRoom, currentRoom, openRoom} from "./room_view.js";

export const SPECIALTIES = ["penyakit_dalam", "anak", "obgyn", "jantung", "radiologi", "saraf", "bedah", "paru", "mata", "tht",
  "kulit_kelamin", "jiwa", "ortopedi"];
export const SERVICES = ["teleconsultation", "tele_radiology", "tele_ekg", "tele_usg"];
export const URGENCIES = ["emergency", "urgent", "routine"];
/** The states in which a consult has a video room. */
export const ROOM_STATES = ["accepted", "in_session"];
const VITALS = [["systolic_bp", "mmHg"], ["diastolic_bp", "mmHg"], ["heart_rate", "/mnt"], ["respiratory_rate", "/mnt"],
  ["temperature_c", "°C"], ["spo2", "%"]];
export const VITAL_NAMES = VITALS.map(([name]) => name);

export function stateChip(consult) {
  return h("span", {class: `status-chip cs-${consult.state}`, dataset: {state: consult.state}}, label("cstate", consult.state));
}

export function urgencyChip(urgency) {
  return h("span", {class: `urgency ur-${urgency}`, dataset: {urgency}}, label("urgency", urgency));
}

export function overdueFlag(consult) {
  return consult.overdue ? h("span", {class: "overdue", dataset: {overdue: "true"}}, t("consult.overdue")) : null;
}

/** Definition-list rows for the non-empty values. */
export function rows(pairs) {
  return pairs.filter(([, value]) => value !== null && value !== undefined && value !== "")
    .flatMap(([key, value]) => [h("dt", {}, t(key)), h("dd", {}, value)]);
}

/** A patient's vitals on one line, with their units. */
export function vitalsText(patient) {
  const vitals = patient?.vitals || {};
  return VITALS.filter(([name]) => vitals[name] !== undefined)
    .map(([name, unit]) => `${t(`vital.${name}`)} ${vitals[name]} ${unit}`).join(" · ");
}

export function patientDetails(consult) {
  const p = consult.patient || {};
  const vitalText = vitalsText(p);
  return h("dl", {class: "case-details"}, rows([
    ["consult.requested_by", [consult.requester_name, consult.facility_name].filter(Boolean).join(" · ")],
    ["consult.specialist_name", consult.specialist_name],
    ["consult.service", label("service", consult.service)],
    ["consult.specialty", label("specialty", consult.specialty)],
    ["consult.urgency", urgencyChip(consult.urgency)],
    ["consult.patient", t("consult.age_sex", {age: p.age, sex: label("sex", p.sex)})],
    ["consult.complaint", p.chief_complaint],
    ["consult.vitals", vitalText],
    ["consult.question", p.question],
  ]));
}

/** The attachments as buttons that download with the session token (a plain link cannot carry it). */
export function attachmentList(consult, onError) {
  const items = (consult.attachments || []).map((a) => h("li", {},
    h("a", {href: `/api/consults/${consult.id}/attachments/${a.id}`, class: "attachment", dataset: {attachmentId: a.id},
            download: a.filename, onclick: (event) => { event.preventDefault(); download(consult.id, a).catch((err) => onError?.(errorText(err))); }},
      a.filename), " ", h("span", {class: "hint"}, `${a.content_type}, ${Math.max(1, Math.round(a.size / 1024))} KB`)));
  return items.length ? h("ul", {class: "attachments"}, items) : h("p", {class: "hint"}, t("consult.no_attachments"));
}

async function download(consultId, attachment) {
  const blob = await apiBlob(`/api/consults/${consultId}/attachments/${attachment.id}`);
  const url = URL.createObjectURL(blob);
  const a = h("a", {href: url, download: attachment.filename});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

/** The specialist's written answer: SOAP notes and the decision. */
export function outcomeView(consult) {
  const o = consult.outcome;
  if (!o) return null;
  let decision = label("decision", o.decision);
  // Consults completed before referrals were requests name the hospital as text (refer_to).
  if (o.decision === "refer") decision = t("decision.refer_to", {hospital: o.referral ? consult.referral?.hospital_name || o.referral.hospital : o.refer_to});
  else if (o.follow_up_on) decision = t("decision.follow_up_on", {date: o.follow_up_on});
  else if (o.follow_up_in_hours) decision = t("decision.follow_up_in", {hours: o.follow_up_in_hours});
  const soap = o.soap || {};
  return h("section", {class: "answer", id: "answer", "aria-labelledby": "answer-h"},
    h("h3", {id: "answer-h"}, t("consult.answer")),
    h("dl", {class: "case-details"}, rows([
      ["soap.subjective", soap.subjective], ["soap.objective", soap.objective],
      ["soap.assessment", soap.assessment], ["soap.plan", soap.plan],
      ["consult.decision", h("strong", {class: "decision", dataset: {decision: o.decision}}, decision)],
      ["consult.diagnosis", o.referral ? `${o.referral.icd10} — ${o.referral.reason}` : null],
      ["consult.referral", referralStatus(consult)],
    ])));
}

/** The referral's answer as both doctors follow it live: waiting, accepted (with the transfer), or declined with the reason. */
function referralStatus(consult) {
  const request = consult.outcome?.referral;
  if (!request) return null;
  const r = consult.referral;
  const state = r?.state || "requested";
  return h("span", {id: "referral-status", class: "referral-status", dataset: {state}},
    h("span", {class: `status-chip rf-${state}`}, label("referral_state", state)),
    " ", label("urgency", request.urgency), request.service ? ` · ${label("service", request.service)}` : "",
    r?.decline_reason ? h("span", {class: "decline-reason"}, ` · ${t("consult.referral_reason", {reason: r.decline_reason})}`) : null,
    r?.incident_id ? h("span", {class: "transfer", dataset: {incidentId: r.incident_id}}, ` · ${t("consult.referral_transfer")}`)
      : request.transport && state === "accepted" ? ` · ${t("consult.referral_transfer_pending")}` : null);
}

export function options(select, values, prefix, selected) {
  select.replaceChildren(...values.map((v) => h("option", {value: v, selected: v === selected}, label(prefix, v))));
}

/** What both doctors' pages start with: the language switch, the user's name, and log out (``stop`` ends the live socket). */
export function mountDoctorPage(user, stop) {
  mountLanguageSwitch();
  translate();
  $("#who").textContent = user.display_name || user.username;
  $("#logout").addEventListener("click", () => { closeRoom(); stop(); guard(logout()); });
  $("#join-room").addEventListener("click", () => {
    const id = $("#case").dataset.consultId;
    $("#case-error").textContent = "";
    if (id) {
      guard(openRoom($("#room"), id, {audioOnly: $("#join-audio-only").checked, peerName: $("#case").dataset.peerName}),
        (err) => { $("#case-error").textContent = errorText(err); });
    }
  });
}

/** One consult with its attachments; the room closes once the consult has none any more. */
export async function loadCase(id) {
  const {consult} = await api("GET", `/api/consults/${id}`);
  if (!ROOM_STATES.includes(consult.state) && currentRoom()?.consultId === consult.id) closeRoom();
  return consult;
}

/** Fill the case panel (#case) the two pages share; false when there is no case to show. */
export function fillCase(c) {
  $("#case").hidden = !c;
  if (!c) return false;
  $("#case").dataset.consultId = c.id;
  $("#case").dataset.state = c.state;
  // Who is on the other end of the video room.
  $("#case").dataset.peerName = (session.user?.role === "puskesmas" ? c.specialist_name
    : [c.requester_name, c.facility_name].filter(Boolean).join(" · ")) || "";
  fill($("#case-body"), patientDetails(c));
  fill($("#case-attachments"), h("h3", {}, t("consult.attachments")), attachmentList(c, (text) => { $("#case-error").textContent = text; }));
  // Colleagues at the puskesmas read the case for the handover; only its two doctors meet in the room.
  const open = ROOM_STATES.includes(c.state) && [c.requester, c.specialist].includes(session.user?.id);
  $("#join-room").hidden = !open;
  $("#join-audio-only").parentElement.hidden = !open;
  fill($("#case-answer"), outcomeView(c));
  return true;
}
