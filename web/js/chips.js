// The coloured chips every page shows the same way: a unit's status, an incident's priority.
import {h} from "./dom.js";
import {label} from "./i18n.js";

/** The triage colours, most urgent first. */
export const PRIORITIES = ["merah", "kuning", "hijau"];

export function statusChip(status) {
  return h("span", {class: `status-chip st-${status}`, dataset: {status}}, label("status", status));
}

export function priorityBadge(priority) {
  return h("span", {class: `priority pr-${priority}`}, label("priority", priority));
}
