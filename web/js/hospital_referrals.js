// Referral requests from puskesmas consults, addressed to this hospital: what the IGD needs to decide (urgency,
// diagnosis, the patient, the specialist's notes and the attachments), then accept, or decline with a reason the
// doctors read. Accepting one that needs transport puts an inter-facility transfer in PSC 119's queue.
import {api, errorText} from "./api.js";
import {$, fill, guard, h, localTime, oneAtATime} from "./dom.js";
import {label, onLanguageChange, t} from "./i18n.js";
import {attachmentList, rows, urgencyChip, vitalsText} from "./consult_view.js";

/** @param {import("./hospital.js").HospitalPage} page */
export function mount(page) {
  const message = h("p", {id: "referrals-message", class: "error", role: "alert"});
  const empty = h("p", {id: "referrals-empty", class: "hint"});
  const list = h("ol", {id: "referral-list", class: "referral-list"});
  $("#referrals").append(message, empty, list);
  /** @type {any[]} */
  let referrals = [];
  const say = (err) => { message.textContent = errorText(err); };
  const refresh = oneAtATime(async () => {
    referrals = (await api("GET", "/api/referrals")).referrals;
    render();
  });
  page.onHello(() => guard(refresh(), say));
  page.onEvent((m) => { if (m.event.startsWith("referral.")) guard(refresh(), say); });
  onLanguageChange(render);

  async function answer(r, action, body) {
    message.textContent = "";
    await api("POST", `/api/referrals/${encodeURIComponent(r.id)}/${action}`, body);
    await refresh();
  }

  function decideButtons(r) {
    const reason = h("input", {id: `decline-reason-${r.id}`, class: "decline-reason", maxlength: 500, "aria-label": t("rs.referrals.reason")});
    const form = h("form", {class: "decline-form", hidden: true, onsubmit: (event) => {
      event.preventDefault();
      if (!reason.value.trim()) { reason.setAttribute("aria-invalid", "true"); reason.focus(); return; }
      guard(answer(r, "decline", {reason: reason.value.trim()}), say);
    }},
    h("label", {for: reason.id}, t("rs.referrals.reason")), reason,
    h("button", {type: "submit", class: "confirm-decline"}, t("rs.referrals.decline_send")));
    return h("div", {class: "buttons"},
      h("button", {type: "button", class: "accept primary", onclick: () => guard(answer(r, "accept"), say)}, t("rs.referrals.accept")),
      h("button", {type: "button", class: "decline", onclick: () => { form.hidden = false; reason.focus(); }}, t("rs.referrals.decline")),
      form);
  }

  function outcome(r) {
    if (r.state === "requested") return decideButtons(r);
    // Accepted, but the process that took the answer stopped before the transfer was made: accepting again makes it.
    if (r.state === "accepted" && r.transport && !r.incident_id) {
      return h("p", {class: "answered"}, t("rs.referrals.transfer_pending"), " ",
        h("button", {type: "button", class: "accept", onclick: () => guard(answer(r, "accept"), say)}, t("rs.referrals.accept")));
    }
    const text = r.state === "declined" ? t("rs.referrals.declined_because", {reason: r.decline_reason})
      : r.incident_id ? t("rs.referrals.transfer_created") : t("rs.referrals.accepted");
    return h("p", {class: "answered", dataset: {incidentId: r.incident_id || ""}}, text);
  }

  function item(r) {
    const p = r.patient || {};
    const soap = r.soap || {};
    return h("li", {class: `referral-item ur-${r.urgency}`, dataset: {referralId: r.id, state: r.state}},
      h("p", {class: "referral-head"}, urgencyChip(r.urgency), " ",
        h("span", {class: `status-chip rf-${r.state}`}, label("referral_state", r.state)), " ",
        h("strong", {class: "diagnosis"}, r.icd10), " · ", [r.from.facility_name, r.from.specialist_name].filter(Boolean).join(" · "),
        " · ", h("span", {class: "hint"}, localTime(r.requested_at))),
      h("dl", {class: "case-details"}, rows([
        ["rs.referrals.reason_for", r.reason],
        ["rs.referrals.service", r.service ? label("service", r.service) : null],
        ["rs.referrals.transport", r.transport ? t("rs.referrals.transport_yes") : t("rs.referrals.transport_no")],
        ["consult.patient", t("consult.age_sex", {age: p.age, sex: label("sex", p.sex)})],
        ["consult.complaint", p.chief_complaint],
        ["consult.vitals", vitalsText(p)],
        ["consult.question", p.question],
      ])),
      h("details", {class: "soap"}, h("summary", {}, t("rs.referrals.notes")),
        h("dl", {class: "case-details"}, rows([
          ["soap.subjective", soap.subjective], ["soap.objective", soap.objective],
          ["soap.assessment", soap.assessment], ["soap.plan", soap.plan],
        ]))),
      r.state === "declined" ? null : attachmentList({id: r.consult_id, attachments: r.attachments}, (text) => { message.textContent = text; }),
      outcome(r));
  }

  function render() {
    empty.textContent = t("rs.referrals.empty");
    empty.hidden = referrals.length > 0;
    fill(list, referrals.map(item));
  }
}
