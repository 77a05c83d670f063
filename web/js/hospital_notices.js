// Incoming ambulances for the emergency department: each pre-arrival notice with the patient, the crew's latest
// vitals, the units and their ETA counting down; acknowledge, decline with a reason, record the handover.
// Events only say that something changed: the panel reads its notices again (the ETA is computed on that read),
// and again every few seconds the server names while an ambulance is on its way, never on each GPS fix.
import {api, errorText} from "./api.js";
import {$, clock, fill, guard, h, localTime, oneAtATime} from "./dom.js";
import {label, nameOf, onLanguageChange, t} from "./i18n.js";
import {Ringer, unlockAudio} from "./ringer.js";

const CHANGES = new Set(["notice.sent", "notice.acknowledged", "notice.declined", "notice.withdrawn", "notice.handover", "notice.unit",
                         "incident.vitals", "incident.patient"]);
const OPEN = new Set(["sent", "acknowledged"]);
const VITALS = [["systolic", "diastolic"], ["pulse"], ["spo2"], ["gcs"], ["resp_rate"]];

/** @param {import("./hospital.js").HospitalPage} page */
export function mount(page) {
  const section = $("#notices");
  const list = h("div", {id: "notice-list", class: "notice-list", "aria-live": "polite"});
  const message = h("p", {id: "notice-message", role: "status"});
  section.append(message, list);
  const ringer = new Ringer();
  const state = {notices: [], readAt: 0, refreshS: 20, callTypes: new Map(), declining: null, seen: new Set(), first: true};
  let timer = null;

  const read = oneAtATime(async () => {
    const body = await api("GET", "/api/notices");
    state.notices = body.notices;
    state.readAt = Date.now();
    state.refreshS = body.refresh_s;
    const fresh = state.notices.filter((n) => n.status === "sent" && !state.seen.has(n.id));
    for (const n of state.notices) state.seen.add(n.id);
    if (fresh.length && !state.first) say(t("rs.notice.incoming", {count: fresh.length}));
    state.first = false;
    render();
    schedule();
  });
  const refresh = () => guard(read(), (err) => say(errorText(err), true));

  /** While an ambulance carries a patient here, read again every refresh_s: its ETA moves with it. */
  function schedule() {
    clearTimeout(timer);
    if (state.notices.some((n) => OPEN.has(n.status) && n.units.some((u) => u.status === "transporting"))) {
      timer = setTimeout(refresh, state.refreshS * 1000);
    }
  }

  function say(text, error = false) {
    message.textContent = text;
    message.className = error ? "error" : "ok";
  }

  async function act(notice, action, body) {
    await api("POST", `/api/notices/${notice.id}/${action}`, body);
    state.declining = null;
    say(t(`rs.notice.done_${action}`));
    await read();
  }

  function render() {
    const unanswered = state.notices.some((n) => n.status === "sent");
    if (unanswered) ringer.start(); else ringer.stop();
    section.classList.toggle("incoming", unanswered);
    if (!state.notices.length) {
      fill(list, h("p", {class: "hint empty"}, t("rs.notice.none")));
      return;
    }
    fill(list, state.notices.map(card));
    tick();
  }

  function card(n) {
    const open = OPEN.has(n.status);
    const patient = n.patient && [n.patient.age !== null ? t("rs.notice.age", {age: n.patient.age}) : null,
                                  n.patient.sex ? label("rs.notice.sex", n.patient.sex) : null].filter(Boolean).join(", ");
    const type = state.callTypes.get(n.call_type);
    const typeName = type ? nameOf(type) : n.call_type || "";
    const decline = state.declining === n.id;
    return h("article", {class: `notice-card pr-${n.priority} ns-${n.status}`, dataset: {noticeId: String(n.id), status: n.status}},
      h("header", {},
        h("span", {class: `priority pr-${n.priority}`}, label("priority", n.priority)), " ",
        h("strong", {}, typeName), " ",
        h("span", {class: "notice-status"}, label("rs.notice.status", n.status))),
      h("dl", {},
        row("rs.notice.complaint", n.complaint),
        n.patient ? row("rs.notice.patient", patient || t("rs.notice.unknown")) : null,
        n.patient ? row("rs.notice.vitals", vitalsText(n.vitals)) : null,
        n.units.length ? row("rs.notice.units", n.units.map((u) => `${u.callsign} (${label("status", u.status)})`).join(", ")) : null,
        open ? [h("dt", {}, t("rs.notice.eta")), h("dd", {class: "eta", dataset: {eta: n.eta_s === null ? "" : String(n.eta_s)}})] : null,
        row("rs.notice.sent_at", localTime(n.sent_at)),
        n.decline_reason ? row("rs.notice.reason", n.decline_reason) : null,
        n.handed_over_at ? row("rs.notice.handed_over_at", localTime(n.handed_over_at)) : null),
      open ? h("div", {class: "buttons"},
        n.status === "sent" ? h("button", {type: "button", class: "primary acknowledge", onclick: () => guard(act(n, "acknowledge"), failed)},
          t("rs.notice.acknowledge")) : null,
        h("button", {type: "button", class: "decline", onclick: () => { state.declining = decline ? null : n.id; render(); }},
          t("rs.notice.decline")),
        h("button", {type: "button", class: "handover", onclick: () => guard(act(n, "handover"), failed)}, t("rs.notice.handover"))) : null,
      decline ? declineForm(n) : null);
  }

  function declineForm(n) {
    const input = h("input", {type: "text", class: "decline-reason", maxlength: "500", required: true,
                              "aria-label": t("rs.notice.reason_label"), placeholder: t("rs.notice.reason_label")});
    const form = h("form", {class: "decline-form"}, input,
      h("button", {type: "submit", class: "danger"}, t("rs.notice.decline_send")));
    form.addEventListener("submit", (e) => { e.preventDefault(); guard(act(n, "decline", {reason: input.value}), failed); });
    queueMicrotask(() => input.focus());
    return form;
  }

  function row(key, value) {
    return value ? [h("dt", {}, t(key)), h("dd", {}, value)] : null;
  }

  function vitalsText(v) {
    if (!v) return t("rs.notice.no_vitals");
    const parts = VITALS.filter(([k]) => v[k] !== null && v[k] !== undefined)
      .map(([k, k2]) => t(`rs.notice.v_${k}`, {value: k2 ? `${v[k]}/${v[k2]}` : v[k]}));
    return `${parts.join(" · ")} (${localTime(v.measured_at)})`;
  }

  function failed(err) {
    say(errorText(err), true);
    guard(read());
  }

  /** The ETA counts down between reads. */
  function tick() {
    const gone = (Date.now() - state.readAt) / 1000;
    for (const el of list.querySelectorAll(".eta")) {
      const eta = /** @type {HTMLElement} */ (el).dataset.eta;
      el.textContent = eta === "" ? t("rs.notice.eta_unknown")
        : Number(eta) - gone <= 0 ? t("rs.notice.eta_arrived") : clock(Number(eta) - gone);
    }
  }

  setInterval(tick, 1000);
  document.addEventListener("pointerdown", unlockAudio, {once: true});
  document.addEventListener("keydown", unlockAudio, {once: true});
  onLanguageChange(render);
  guard(api("GET", "/api/triage").then((triage) => {
    state.callTypes = new Map(triage.call_types.map((c) => [c.code, c]));
    render();
  }));
  page.onHello(refresh);
  page.onEvent((event) => { if (CHANGES.has(event.event)) refresh(); });
}
