// The incident on show, as the receiving hospital hears of it: the pre-arrival notice's state (sent, acknowledged,
// declined with its reason, withdrawn, handed over), and the patient's age and sex that the notice carries.
import {api} from "../api.js";
import {$, guard} from "../dom.js";
import {label, t} from "../i18n.js";

const NOTICE_EVENTS = new Set(["notice.sent", "notice.acknowledged", "notice.declined", "notice.withdrawn", "notice.handover"]);
const OPEN = new Set(["sent", "acknowledged"]);

export class NoticeLine {
  constructor({onError}) {
    this.incidentId = null;
    this.notice = null;
    this.onError = onError;
    $("#patient-form").addEventListener("submit", (e) => { e.preventDefault(); guard(this.savePatient(), onError); });
  }

  /** Show the incident's notice (the open one, else the latest) and clear the patient form. */
  async show(incidentId) {
    this.incidentId = incidentId;
    this.notice = null;
    /** @type {HTMLFormElement} */ ($("#patient-form")).reset();
    this.draw();
    if (!incidentId) return;
    const {notices} = await api("GET", `/api/notices?incident=${encodeURIComponent(incidentId)}`);
    if (this.incidentId !== incidentId) return;
    this.notice = notices.find((n) => OPEN.has(n.status)) || notices[0] || null;
    // What is known of the patient so far fills the form (the crew may have entered it).
    /** @type {HTMLInputElement} */ ($("#patient-age")).value = this.notice?.patient?.age ?? "";
    /** @type {HTMLSelectElement} */ ($("#patient-sex")).value = this.notice?.patient?.sex ?? "";
    this.draw();
  }

  /** A live event: a notice of the incident on show changed. */
  event(event) {
    const d = event.data || {};
    if (!NOTICE_EVENTS.has(event.event) || d.incident_id !== this.incidentId) return;
    this.notice = {status: d.notice_status, hospital_name: d.hospital_name, decline_reason: d.reason || null};
    this.draw();
  }

  draw() {
    const line = $("#notice-now");
    const n = this.notice;
    line.dataset.status = n?.status || "";
    line.textContent = n ? [t("op.notice_now", {hospital: n.hospital_name, status: label("notice.status", n.status)}),
      n.decline_reason ? t("op.notice_reason", {reason: n.decline_reason}) : null].filter(Boolean).join(" · ") : "";
  }

  async savePatient() {
    if (!this.incidentId) return;
    const age = /** @type {HTMLInputElement} */ ($("#patient-age")).value.trim();
    const sex = /** @type {HTMLSelectElement} */ ($("#patient-sex")).value;
    const body = {};
    if (age !== "") body.age = Number(age);
    if (sex) body.sex = sex;
    await api("PUT", `/api/incidents/${encodeURIComponent(this.incidentId)}/patient`, body);
    $("#notice-now").title = t("op.patient_saved");
  }
}
