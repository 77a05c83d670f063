// The specialist's referral: a hospital from the list ranked from the puskesmas for the service the patient needs,
// the diagnosis as an ICD-10 code with the reason, the urgency, and whether PSC 119 carries the patient.
import {api} from "./api.js";
import {$, clock, fill, h} from "./dom.js";
import {label, nameOf, t} from "./i18n.js";
import {URGENCIES, options} from "./consult_view.js";

// The consult whose options are shown, so a late answer for another consult is dropped.
let shownFor = null;

/** Rank the hospitals for the consult (again when the service changes); keeps the hospital chosen if it is still listed. */
export async function loadReferralOptions(consultId, urgency) {
  const service = $("#refer-service").value;
  const first = shownFor !== consultId;
  shownFor = consultId;
  const query = service ? `?service=${encodeURIComponent(service)}` : "";
  const ranked = await api("GET", `/api/consults/${encodeURIComponent(consultId)}/referral-options${query}`);
  if (shownFor !== consultId) return;
  if (first) {
    fill($("#refer-service"), h("option", {value: ""}, t("sp.refer_any_service")),
      ranked.services.map((s) => h("option", {value: s, selected: s === service}, label("service", s))));
    options($("#refer-urgency"), URGENCIES, "urgency", urgency);
    fill($("#diagnoses"), ranked.diagnoses.map((d) => h("option", {value: d.code}, t("sp.diagnosis", {code: d.code, name: nameOf(d)}))));
  }
  const chosen = $("#refer-hospital").value;
  const option = (x) => h("option", {value: x.code, dataset: {capable: String(x.capable)}, selected: x.code === chosen},
    `${x.name} · ${t("op.km", {km: (x.distance_m / 1000).toFixed(1)})} · ${clock(x.eta_s)}${x.capable ? "" : ` · ${t("sp.refer_lacks")}`}`);
  fill($("#refer-hospital"), h("option", {value: ""}, t("op.choose")), ranked.hospitals.map(option));
  const names = new Map(ranked.hospitals.map((x) => [x.code, x.name]));
  fill($("#refer-warnings"), ranked.warnings.map((w) => h("span", {class: "warning", dataset: {kind: w.kind}},
    t(`op.warn_${w.kind}`, {hospital: w.hospital_name || names.get(w.hospital) || "", service: label("service", w.service),
                            capable: names.get(w.nearest_capable) || ""}))));
}

/** Forget the consult shown, so the next one starts from an empty form. */
export function resetReferral() {
  shownFor = null;
  fill($("#refer-hospital"));
  fill($("#refer-warnings"));
}

/** The fields a referral still lacks (their element ids). */
export function missingReferral() {
  const missing = ["#refer-hospital", "#refer-icd10", "#refer-reason"].filter((id) => !$(id).value.trim());
  for (const id of ["#refer-hospital", "#refer-icd10", "#refer-reason"]) $(id).setAttribute("aria-invalid", String(missing.includes(id)));
  return missing;
}

/** The referral as the consult's completion sends it; the server checks the code's form and the hospital. */
export function referralBody() {
  return {
    hospital: $("#refer-hospital").value, icd10: $("#refer-icd10").value.trim(), reason: $("#refer-reason").value.trim(),
    urgency: $("#refer-urgency").value, service: $("#refer-service").value || null, transport: $("#refer-transport").checked,
  };
}
