// The selected incident: warnings, the recommendation with one-key dispatch (first responders) and the
// units that can carry the patient, the units serving it (withdraw), its priority, the destination
// hospital, and closing it.
import {api, ApiError, errorText, session} from "../api.js";
import {$, clock, fill, guard, h} from "../dom.js";
import {label, nameOf, t} from "../i18n.js";
import {PRIORITIES, priorityBadge, statusChip} from "../chips.js";
import {alertText, fixFlag, kelurahanName, phoneFlag} from "./boards.js";
import {showTimeline} from "./reports.js";

const OUTCOMES = ["emergency", "information", "silent", "prank", "duplicate", "transfer"];
// An incident in one of these with no unit left on it has been handled: only closing remains.
const HANDLED = new Set(["on_scene", "transporting", "at_hospital"]);
// Events that change which units can be recommended for the incident on show.
const RERANK = new Set(["unit.dispatched", "dispatch.withdrawn"]);

export class IncidentPanel {
  constructor({store, onSelect}) {
    this.store = store;
    this.onSelect = onSelect;
    this.incidentId = null;
    this.warnings = [];
    this.recommendations = [];  // first responders: Alt+1..9
    this.transport = [];  // units that can carry, when the call needs transport
    // The incident's assignment version when this list was fetched: what the operator saw, sent with a dispatch.
    this.version = null;
    // A dispatch in flight (or a second-unit question open): dispatch keys do nothing until it is answered.
    this.sending = false;
    this.inFlight = null;  // the unit of the dispatch request under way
    this.hospitals = [];
    this.neededService = null;  // what the destination must be able to treat (the call type's, from the triage table)
    this.hospitalWarnings = [];
    const failed = (err) => this.say(errorText(err), true);
    $("#close-incident").addEventListener("click", () => guard(this.close(), failed));
    $("#set-destination").addEventListener("click", () => guard(this.setDestination(), failed));
    $("#result-priority").addEventListener("change", () => guard(this.setPriority(), failed));
  }

  /** Fill the selects (again after a language switch). */
  populate() {
    const outcome = $("#close-outcome").value;
    fill($("#close-outcome"), OUTCOMES.map((o) => h("option", {value: o}, label("outcome", o))));
    $("#close-outcome").value = outcome || "emergency";
    fill($("#result-priority"), PRIORITIES.map((p) => h("option", {value: p}, label("priority", p))));
    if (this.incidentId) this.render();
  }

  /** Show an incident: its warnings and both tiers of the recommendation (when the caller has them), then its hospitals. */
  show(incidentId, warnings, tiers, version) {
    const changed = incidentId !== this.incidentId;
    this.incidentId = incidentId;
    this.warnings = warnings || this.store.incidents.get(incidentId)?.warnings || [];
    this.take(tiers);
    this.version = version ?? this.store.incidents.get(incidentId)?.assignment_version ?? null;
    if (changed) {
      this.hospitals = [];
      this.neededService = null;
      this.hospitalWarnings = [];
      $("#dispatch-message").textContent = "";
    }
    this.render();
    if (changed && incidentId) guard(this.loadHospitals(incidentId), (err) => this.say(errorText(err), true));
  }

  /** The board selected an incident: fetch its current recommendation. */
  async open(incidentId) {
    this.show(incidentId, null, null);
    await this.rerank(incidentId);
  }

  /** Fetch the incident's current recommendation (a unit was sent, withdrawn or re-offered meanwhile). */
  async rerank(incidentId) {
    if (this.handled()) {  // nothing more is sent to a handled incident
      this.take(null);
      this.render();
      return;
    }
    const result = await api("GET", `/api/incidents/${encodeURIComponent(incidentId)}/recommendations`);
    if (this.incidentId === incidentId) {
      this.take(result);
      this.version = result.assignment_version;
      this.render();
    }
  }

  /** Keep an answer's two tiers: ``recommendations`` (first responders) and ``transport``. */
  take(tiers) {
    this.recommendations = tiers?.recommendations || [];
    this.transport = tiers?.transport || [];
  }

  /** Whether a live event concerns the incident on show. */
  concerns(event) {
    const d = event.data || {};
    return Boolean(this.incidentId) && (d.incident_id === this.incidentId || d.incident?.id === this.incidentId);
  }

  /** A live event about this incident: redraw, and fetch the hospitals again when its place changed. */
  changed(event) {
    this.render();
    const d = event.data || {};
    if (this.handled()) this.say(t("op.completed"));
    // A status this operator recorded by radio is said by radioStatus itself.
    else if (event.event === "unit.status" && d.status !== "available" && d.by !== session.user?.username) {
      this.say(t("op.unit_now", {unit: d.callsign || this.store.units.get(d.unit_id)?.callsign || d.unit_id, status: label("status", d.status)}));
    }
    // The unit this console just sent keeps its row, marked sent, so a repeated key never reaches the next one.
    const own = event.event === "unit.dispatched" && this.sentHere(d.unit_id);
    if ((RERANK.has(event.event) && !own) || this.handled()) guard(this.rerank(this.incidentId), (err) => this.say(errorText(err), true));
    if (event.event === "incident.updated") guard(this.loadHospitals(this.incidentId), (err) => this.say(errorText(err), true));
  }

  /** An alert about the incident on show: the status line says it too. */
  alerted(event) {
    this.say(alertText(event), true);
  }

  /** Whether every unit has cleared an incident that was served. */
  handled() {
    const incident = this.store.incidents.get(this.incidentId);
    return Boolean(incident) && HANDLED.has(incident.status) && this.store.servingOf(this.incidentId).size === 0;
  }

  async loadHospitals(incidentId) {
    const incident = this.store.incidents.get(incidentId);
    if (!incident?.location) return;
    const result = await api("GET", `/api/incidents/${encodeURIComponent(incidentId)}/hospitals`);
    if (this.incidentId !== incidentId) return;
    this.hospitals = result.hospitals;
    this.neededService = result.needed_service ?? null;
    this.hospitalWarnings = result.warnings || [];
    this.renderDestination(incident);
  }

  render() {
    const incident = this.store.incidents.get(this.incidentId);
    const panel = $("#call-result");
    panel.hidden = !incident;
    if (!incident) return;
    // The lists are drawn anew (an event may come just after the intake focused the first Dispatch button):
    // the button that had the focus keeps it.
    const focused = focusedDispatch();
    panel.dataset.state = this.handled() ? "handled" : "";
    const type = this.store.callTypes.get(incident.call_type);
    const typeName = type ? nameOf(type) : incident.call_type;
    fill($("#result-h"), priorityBadge(incident.priority), " ", typeName || "–", " · ",
      kelurahanName(this.store, incident.kelurahan), h("span", {class: "hint"}, ` #${incident.id.slice(0, 8)}`));
    fill($("#result-details"), [incident.address, incident.complaint, incident.caller_name, incident.caller_phone].filter(Boolean).join(" · "),
      // A transfer made from a consult's referral: its notes name the consult and the referral.
      incident.referral_id ? h("span", {class: "referral-link", dataset: {referralId: incident.referral_id}}, ` · ${t("op.referral")}: ${incident.notes}`) : null);
    fill($("#warnings"), this.warnings.map((w) => this.warningItem(w)));
    const rows = this.recommendations.map((r, i) => this.recommendationRow(r, String(i + 1),
      h("button", {type: "button", class: "dispatch", disabled: this.sending,
                   "aria-keyshortcuts": i < 9 ? `Alt+${i + 1}` : null, onclick: () => this.dispatch(i)},
        t("op.dispatch"), i < 9 ? h("kbd", {}, `Alt+${i + 1}`) : null)));
    fill($("#recommendations"), rows.length ? rows : h("tr", {}, h("td", {colspan: "6", class: "hint"}, t("op.no_recommendation"))));
    this.renderTransport(incident);
    this.renderServing();
    $("#result-priority").value = incident.priority;
    this.renderDestination(incident);
    if (focused && document.activeElement !== focused.button) {
      /** @type {HTMLElement | null} */ (document.querySelector(`#${focused.list} tr[data-unit-id="${CSS.escape(focused.unitId)}"] button.dispatch`))?.focus();
    }
  }

  /** The units on this incident: each with a withdraw button while the operator may still withdraw it, and
   * the statuses its crew may report next, for a crew that reports by radio. */
  /** Whether this console sent (or is sending: its event may come before the answer) ``unitId``. */
  sentHere(unitId) {
    return unitId === this.inFlight || [...this.recommendations, ...this.transport].some((r) => r.sent && r.unit_id === unitId);
  }

  /** A recommended unit's row; a unit just sent keeps its row, marked sent, in place of its button. */
  recommendationRow(r, rank, button) {
    return h("tr", {dataset: {unitId: r.unit_id}, class: r.sent ? "sent" : null},
      h("td", {}, rank),
      h("td", {class: "callsign"}, r.callsign, fixFlag(r)),
      h("td", {}, label("kind", r.kind), phoneFlag(r)),
      h("td", {}, t("op.km", {km: (r.distance_m / 1000).toFixed(1)})),
      h("td", {}, clock(r.road_eta_s ?? r.eta_s)),
      h("td", {}, r.sent ? t("op.sent") : button));
  }

  /** The units that can carry the patient, in their own table under the first responders (shown when the call needs transport). */
  renderTransport(incident) {
    let table = $("#transport-recommendations")?.closest("table");
    if (!table) {
      table = h("table", {class: "recommendations transport"}, h("caption", {}), h("thead", {}), h("tbody", {id: "transport-recommendations"}));
      $("#recommendations").closest("table").after(table);
    }
    table.hidden = !(incident.needs || []).includes("transport");
    fill(table.querySelector("caption"), t("op.transport_recommendations"));
    fill(table.querySelector("thead"), h("tr", {}, h("th", {scope: "col"}, "#"),
      ["op.unit", "op.kind", "op.distance", "op.eta"].map((key) => h("th", {scope: "col"}, t(key))),
      h("th", {scope: "col"}, h("span", {class: "sr-only"}, t("op.dispatch")))));
    const rows = this.transport.map((r, i) => this.recommendationRow(r, `T${i + 1}`,
      h("button", {type: "button", class: "dispatch", disabled: this.sending, onclick: () => this.dispatch(i, this.transport)},
        t("op.dispatch"))));
    fill($("#transport-recommendations"), rows.length ? rows : h("tr", {}, h("td", {colspan: "6", class: "hint"}, t("op.no_transport"))));
  }

  renderServing() {
    const items = [...this.store.servingOf(this.incidentId).entries()].map(([unitId, s]) => {
      const unit = this.store.units.get(unitId);
      const status = unit?.status || s.status;
      return h("li", {class: "serving-unit", dataset: {unitId, status}},
        h("span", {class: "callsign"}, s.callsign || unit?.callsign || unitId), " ", statusChip(status),
        unit ? this.radioSelect(unit) : null,
        unit?.withdrawable ? h("button", {type: "button", class: "withdraw",
                                          onclick: () => guard(this.withdraw(unitId, s), (err) => this.say(errorText(err), true))},
          t("op.withdraw")) : null);
    });
    fill($("#serving"), items.length ? items : h("li", {class: "hint"}, t(this.handled() ? "op.completed" : "op.no_serving")));
  }

  radioSelect(unit) {
    const moves = (unit.crew_moves || []).flatMap(({status, reasons}) => (reasons.length ? reasons : [null]).map((reason) =>
      h("option", {value: JSON.stringify({status, reason})},
        reason ? t("op.radio_release", {reason: label("reason", reason)}) : label("action", status))));
    if (!moves.length) return null;
    const select = h("select", {class: "radio-status", "aria-label": t("op.radio_label", {unit: unit.callsign})},
      h("option", {value: ""}, t("op.radio")), moves);
    select.addEventListener("change", () => {
      if (!select.value) return;
      const {status, reason} = JSON.parse(select.value);
      guard(this.radioStatus(unit, status, reason), (err) => { select.value = ""; this.say(errorText(err), true); });
    });
    return select;
  }

  /** Record a status the crew reported by radio (the server applies the same rules as to the phone). */
  async radioStatus(unit, status, reason) {
    const result = await api("POST", `/api/units/${encodeURIComponent(unit.id)}/status`, reason ? {status, reason} : {status});
    this.store.units.set(unit.id, {...this.store.units.get(unit.id), ...result.unit});
    this.say(t("op.radio_recorded", {unit: unit.callsign, status: label("status", result.status)}));
    this.render();
  }

  renderDestination(incident) {
    const select = $("#destination");
    const known = new Set(this.hospitals.map((x) => x.code));
    const current = incident.destination;
    const option = (x) => h("option", {value: x.code, dataset: {capable: String(x.capable !== false), readiness: x.readiness}},
      `${x.name} · ${t("op.km", {km: (x.distance_m / 1000).toFixed(1)})} · ${clock(x.eta_s)}${this.availabilityText(x)}`);
    // When the call needs a service, the hospitals that have it come first, in their own group, and the others apart.
    const service = this.neededService ? label("service", this.neededService) : "";
    const group = (key, list) => list.length ? h("optgroup", {label: t(key, {service})}, list.map(option)) : null;
    /** @type {(HTMLElement | null)[]} */
    const options = this.neededService
      ? [group("op.hospitals_capable", this.hospitals.filter((x) => x.capable)),
         group("op.hospitals_lacking", this.hospitals.filter((x) => !x.capable))]
      : this.hospitals.map(option);
    // A destination chosen elsewhere shows even before the list arrives.
    if (current && !known.has(current)) options.unshift(h("option", {value: current}, hospitalName(this.store, current)));
    fill(select, h("option", {value: ""}, t("op.choose")), options);
    select.value = current || "";
    $("#destination-now").textContent = current ? t("op.destination_now", {hospital: hospitalName(this.store, current)}) : "";
    fill($("#hospital-warnings"), this.hospitalWarnings.map((w) => h("p", {class: "warning warn-hospital", dataset: {kind: w.kind}},
      t(`op.warn_${w.kind}`, {hospital: w.hospital_name || hospitalName(this.store, w.hospital), service: label("service", w.service),
                              capable: w.nearest_capable ? hospitalName(this.store, w.nearest_capable) : ""}),
      // A bed or service warning names the nearest hospital ready now, when there is one.
      w.kind !== "nearest_lacks_service" && w.nearest_capable ? ` ${t("op.warn_ready_alt", {capable: hospitalName(this.store, w.nearest_capable)})}` : "")));
  }

  /** What a hospital reports now, for its line in the list: free IGD beds and the needed service, stale figures marked. */
  availabilityText(x) {
    const mark = (figure) => (figure?.stale ? ` (${t("op.hosp_stale")})` : "");
    const igd = x.beds?.igd;
    let text = ` · ${t("op.hosp_igd", {n: igd ? igd.free : "?"})}${mark(igd)}`;
    const now = this.neededService && x.capable ? x.services_now?.[this.neededService] : undefined;
    if (now !== undefined) {
      const state = now === null ? "unknown" : now.available ? "available" : "unavailable";
      text += ` · ${t(`op.hosp_service_${state}`, {service: label("service", this.neededService)})}${mark(now)}`;
    }
    return text;
  }

  warningItem(w) {
    if (w.kind === "repeat_prank") return h("p", {class: "warning warn-prank"}, t("op.warn_prank", {count: w.prank_count}));
    const other = this.store.incidents.get(w.incident_id);
    const text = w.reason === "nearby" ? t("op.warn_nearby", {m: Math.round(w.distance_m ?? 0)}) : t(`op.warn_${w.reason}`);
    const failed = (err) => this.say(errorText(err), true);
    // A closed incident is not on the board: its timeline shows what happened.
    const show = w.reason === "same_caller_closed"
      ? h("button", {type: "button", class: "link", onclick: () => guard(showTimeline(w.incident_id), failed)}, t("op.show_closed"))
      : other ? h("button", {type: "button", class: "link", onclick: () => this.onSelect(w.incident_id)}, t("op.show_other")) : null;
    return h("p", {class: "warning warn-duplicate", "data-reason": w.reason}, text, " ", show,
      h("button", {type: "button", onclick: () => guard(this.link(w.incident_id), (err) => this.say(errorText(err), true))}, t("op.link_duplicate")));
  }

  say(text, error = false) {
    const line = $("#dispatch-message");
    line.textContent = text;
    line.className = error ? "error" : "ok";
  }

  /** Dispatch entry ``index`` (0-based) of ``list`` (the first responders, or the carriers): one click or Alt+digit.
   * Ignored while a dispatch is in flight; a unit just sent keeps its row (and its key), so a repeated key
   * never reaches the next unit. */
  dispatch(index, list = this.recommendations) {
    const pick = list[index];
    if (!pick) return;
    if (pick.sent) { this.say(t("op.already_sent", {unit: pick.callsign})); return; }
    this.start(pick);
  }

  /** Send any available unit, listed or not (from the unit board); one lacking what the call needs asks for a reason. */
  sendUnit(unit) {
    this.start({unit_id: unit.id, callsign: unit.callsign});
  }

  start(pick) {
    if (this.sending || !this.incidentId) return;
    this.sending = true;
    this.render();
    guard(this.send(this.incidentId, pick, false), (err) => this.say(errorText(err), true))
      .finally(() => { this.sending = false; this.render(); });
  }

  async send(incidentId, pick, additional, overrideReason = null) {
    const body = {unit_id: pick.unit_id, expected_version: this.version};
    if (additional) body.additional = true;
    if (overrideReason) body.override_reason = overrideReason;
    this.inFlight = pick.unit_id;
    try {
      const result = await api("POST", `/api/incidents/${encodeURIComponent(incidentId)}/dispatch`, body);
      if (this.incidentId !== incidentId) return;
      // The same unit may be in both tiers: it is sent in both.
      for (const r of [...this.recommendations, ...this.transport]) if (r.unit_id === pick.unit_id) r.sent = true;
      this.version = result.assignment_version;
      // Sent either way; an offline phone will not ring, so the line says to use the radio, marked.
      const offline = (result.warnings || []).some((w) => w.code === "phone_offline");
      this.say(t(offline ? "op.phone_offline_dispatch" : "op.dispatched", {unit: pick.callsign}));
      $("#dispatch-message").classList.toggle("warning", offline);
    } catch (err) {
      if (err instanceof ApiError && err.status === 422 && Array.isArray(err.body.missing_capabilities) && this.incidentId === incidentId) {
        const reason = await this.askReason(pick, err.body.missing_capabilities);
        if (reason) await this.send(incidentId, pick, additional, reason);
        return;
      }
      if (!(err instanceof ApiError && err.status === 409) || this.incidentId !== incidentId) throw err;
      if (typeof err.body.assignment_version === "number") this.version = err.body.assignment_version;
      if (err.code === "already_assigned" && await this.confirmSecond(pick, err.body.unit_id)) {
        await this.send(incidentId, pick, true, overrideReason);
        return;
      }
      if (err.code === "already_assigned") return;
      if (!Array.isArray(err.body.recommendations)) throw err;
      this.take(err.body);
      this.say(err.code === "stale" ? t("op.list_changed") : t("op.taken", {message: err.message}), true);
    } finally {
      this.inFlight = null;
    }
  }

  /** Ask before a second unit goes to an incident; its default button (Enter, Escape) is Cancel. */
  confirmSecond(pick, servingId) {
    const dialog = $("#second-unit-dialog");
    const serving = this.store.units.get(servingId)?.callsign || servingId;
    $("#second-unit-text").textContent = t("op.second_unit", {unit: pick.callsign, serving});
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "send"), {once: true});
      dialog.returnValue = "";
      dialog.showModal();
      $("#second-unit-cancel").focus();
    });
  }

  /** Ask why a unit lacking ``missing`` is sent anyway; the reason, or null when the operator cancels. */
  askReason(pick, missing) {
    const dialog = $("#override-dialog");
    const input = $("#override-reason");
    $("#override-text").textContent = t("op.override_text", {unit: pick.callsign, missing: missing.map((c) => label("capability", c)).join(", ")});
    input.value = "";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "send" && input.value.trim() ? input.value.trim() : null), {once: true});
      dialog.returnValue = "";
      dialog.showModal();
      input.focus();
    });
  }

  /** Withdraw a unit (cancel its dispatch); the recommendation is fetched again, without it. */
  async withdraw(unitId, serving) {
    const incidentId = this.incidentId;
    await api("POST", `/api/incidents/${encodeURIComponent(incidentId)}/assignments/${serving.assignment_id}/cancel`);
    this.say(t("op.withdrawn", {unit: serving.callsign || unitId}));
    await this.open(incidentId);
  }

  async setPriority() {
    const incidentId = this.incidentId;
    const priority = $("#result-priority").value;
    if (!incidentId || this.store.incidents.get(incidentId)?.priority === priority) return;
    const result = await api("PATCH", `/api/incidents/${encodeURIComponent(incidentId)}`, {priority});
    this.store.incidents.set(incidentId, {...this.store.incidents.get(incidentId), ...result.incident});
    if (this.incidentId !== incidentId) return;
    this.take(result);
    this.say(t("op.priority_changed", {priority: label("priority", priority)}));
    this.render();
  }

  async setDestination() {
    const facility = $("#destination").value;
    if (!this.incidentId) return;
    if (!facility) { this.say(t("op.destination_needed"), true); return; }
    const result = await api("POST", `/api/incidents/${encodeURIComponent(this.incidentId)}/destination`, {facility});
    this.store.incidents.set(this.incidentId, {...this.store.incidents.get(this.incidentId), ...result.incident});
    this.say(t("op.destination_set", {hospital: hospitalName(this.store, facility)}));
    this.render();
  }

  async link(otherId) {
    await api("POST", `/api/incidents/${encodeURIComponent(this.incidentId)}/link`, {duplicate_of: otherId});
    this.say(t("op.linked"));
  }

  async close() {
    if (!this.incidentId) return;
    const outcome = $("#close-outcome").value;
    if (outcome === "duplicate") {
      const other = this.warnings.find((w) => w.kind === "duplicate");
      if (!other) { this.say(t("op.duplicate_needs_warning"), true); return; }
      await this.link(other.incident_id);
    } else {
      await api("POST", `/api/incidents/${encodeURIComponent(this.incidentId)}/close`, {outcome});
    }
    this.store.incidents.delete(this.incidentId);
    this.incidentId = null;
    this.render();
    this.onSelect(null);
    $("#f-phone").focus();
  }
}

/** The Dispatch button that has the focus: its list and unit, or null. */
function focusedDispatch() {
  const button = document.activeElement;
  const row = button instanceof HTMLButtonElement && button.matches("button.dispatch") ? button.closest("tr[data-unit-id]") : null;
  if (!row || !(row instanceof HTMLElement) || !row.parentElement) return null;
  return {button, list: row.parentElement.id, unitId: row.dataset.unitId || ""};
}

function hospitalName(store, code) {
  return store.region?.facilities.find((f) => f.code === code)?.name || code;
}
