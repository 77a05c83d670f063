// The audit log in words: who did what to which object, when, and what changed, in the chosen language.
import {h} from "./dom.js";
import {label, language, t} from "./i18n.js";

// Detail keys whose values are codes with a label of their own.
const VALUE_LABELS = {status: "status", previous: "status", reason: "reason", role: "role", outcome: "outcome",
                      capabilities: "capability", kind: "kind", changed: "input"};

/** One audit entry as a table row; ``units`` (id -> unit) names units by callsign. */
export function auditRow(entry, units) {
  return h("tr", {dataset: {action: entry.action}},
    h("td", {}, when(entry.at)),
    h("td", {}, entry.username || t("audit.system")),
    h("td", {}, label("audit", entry.action)),
    h("td", {}, objectName(entry.object, units)),
    h("td", {class: "audit-detail"}, detailText(entry.detail, units)));
}

function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "–" : d.toLocaleString(language() === "en" ? "en-GB" : "id-ID",
    {year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit"});
}

function objectName(object, units) {
  if (!object) return "–";
  const at = object.indexOf(":");
  const [kind, id] = at < 0 ? [object, ""] : [object.slice(0, at), object.slice(at + 1)];
  const name = kind === "unit" ? units.get(id)?.callsign || id
    : kind === "incident" || kind === "consult" ? `#${id.slice(0, 8)}`
    : kind === "call_type" ? label("call_type", id) : id;
  return `${label("audit_object", kind)} ${name}`.trim();
}

function valueText(key, value, units) {
  if (key === "unit_id") return units.get(String(value))?.callsign || String(value);
  return VALUE_LABELS[key] ? label(VALUE_LABELS[key], value) : String(value);
}

/** The entry's payload, one "what: value" per key; nested records by their name, long lists by their length. */
function detailText(detail, units) {
  return Object.entries(detail || {}).flatMap(([key, value]) => {
    if (value === null || value === undefined || value === "") return [];
    let text;
    if (Array.isArray(value)) {
      text = value.every((v) => typeof v !== "object") ? value.map((v) => valueText(key, v, units)).join(", ") : String(value.length);
    } else if (typeof value === "object") {
      text = value.callsign || value.code || value.username || (value.id ? `#${String(value.id).slice(0, 8)}` : "");
    } else {
      text = valueText(key, value, units);
    }
    return text ? [`${label("audit_key", key)}: ${text}`] : [];
  }).join(" · ");
}
