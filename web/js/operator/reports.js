// The incident timeline and the response-time metrics (SVG bar charts drawn here, no library).
import {api} from "../api.js";
import {$, clock, fill, h, localTime} from "../dom.js";
import {label, t} from "../i18n.js";

const INTERVALS = ["call_to_dispatch_s", "dispatch_to_ack_s", "dispatch_to_on_scene_s", "call_to_close_s"];
const SVG = "http://www.w3.org/2000/svg";

export async function showTimeline(incidentId) {
  const dialog = $("#timeline-dialog");
  const list = $("#timeline");
  fill(list, h("li", {class: "hint"}, t("app.loading")));
  if (!dialog.open) dialog.showModal();
  const {timeline} = await api("GET", `/api/incidents/${encodeURIComponent(incidentId)}/timeline`);
  fill(list, timeline.map((e) => h("li", {dataset: {event: e.type}},
    h("time", {datetime: e.at}, localTime(e.at)), " ",
    h("strong", {}, label("event", e.type)),
    e.status ? [" → ", label("status", e.status)] : null,
    e.data?.callsign ? ` (${e.data.callsign})` : null,
    e.data?.hospital_name ? ` · ${e.data.hospital_name}` : null,
    e.data?.reason ? ` · ${label("reason", e.data.reason)}` : null,
    e.data?.alert ? ` · ${label("alertkind", e.data.alert)}` : null,
    e.data?.outcome ? ` · ${label("outcome", e.data.outcome)}` : null,
    e.data?.override ? h("span", {class: "override"}, ` · ${t("op.override_timeline", {
      missing: e.data.override.missing_capabilities.map((c) => label("capability", c)).join(", "), reason: e.data.override.reason})}`) : null,
    e.by ? h("span", {class: "hint"}, ` — ${e.by}`) : null)));
}

let lastMetrics = null;

export async function showMetrics(store) {
  const dialog = $("#metrics-dialog");
  const select = $("#metrics-interval");
  if (!select.options.length) select.addEventListener("change", () => drawMetrics(store));
  fillIntervals();
  if (!dialog.open) dialog.showModal();
  lastMetrics = await api("GET", "/api/metrics");
  drawMetrics(store);
}

export function fillIntervals() {
  const select = $("#metrics-interval");
  const keep = select.value || INTERVALS[0];
  fill(select, INTERVALS.map((i) => h("option", {value: i}, label("interval", i))));
  select.value = keep;
}

export function drawMetrics(store) {
  if (!lastMetrics) return;
  const interval = $("#metrics-interval").value || INTERVALS[0];
  const nfpa = lastMetrics.all.nfpa1225;
  $("#nfpa").textContent = nfpa.share === null ? t("metrics.nfpa_none")
    : t("metrics.nfpa", {share: Math.round(nfpa.share * 100), limit: nfpa.limit_s, target: Math.round(nfpa.target_share * 100), count: nfpa.count});
  const byPriority = Object.entries(lastMetrics.by_priority).map(([k, v]) => [label("priority", k), v.intervals[interval]]);
  const byKecamatan = Object.entries(lastMetrics.by_kecamatan).map(([k, v]) =>
    [store.region?.kecamatan.find((x) => x.code === k)?.name || k, v.intervals[interval]]);
  const offload = Object.values(lastMetrics.offload_by_hospital || {}).map((v) => [v.name, v.offload_s]);
  fill($("#metrics-charts"),
    chart(t("metrics.by_priority"), byPriority, "chart-priority"),
    chart(t("metrics.by_kecamatan"), byKecamatan, "chart-kecamatan"),
    offload.length ? chart(t("metrics.offload"), offload, "chart-offload") : null);
}

/** A grouped bar chart: p50 and p90 per group, in seconds. */
function chart(title, groups, id) {
  const width = 560, rowH = 26, left = 150, top = 24;
  const max = Math.max(60, ...groups.flatMap(([, s]) => [s?.p50_s ?? 0, s?.p90_s ?? 0]));
  const height = top + Math.max(1, groups.length) * rowH + 10;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-labelledby", `${id}-title`);
  svg.setAttribute("class", "bar-chart");
  const el = (tag, attrs, text) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    svg.appendChild(node);
    return node;
  };
  el("rect", {x: left, y: 5, width: 10, height: 10, class: "bar p50"});
  el("text", {x: left + 14, y: 14, class: "legend"}, "p50");
  el("rect", {x: left + 60, y: 5, width: 10, height: 10, class: "bar p90"});
  el("text", {x: left + 74, y: 14, class: "legend"}, "p90");
  const scale = (v) => ((width - left - 70) * v) / max;
  groups.forEach(([name, s], i) => {
    const y = top + i * rowH;
    el("text", {x: left - 6, y: y + 15, "text-anchor": "end", class: "axis"}, name);
    if (!s || !s.count) {
      el("text", {x: left + 4, y: y + 15, class: "axis"}, t("metrics.no_data"));
      return;
    }
    el("rect", {x: left, y: y + 2, width: Math.max(1, scale(s.p50_s)), height: 10, class: "bar p50"});
    el("rect", {x: left, y: y + 13, width: Math.max(1, scale(s.p90_s)), height: 10, class: "bar p90"});
    el("text", {x: left + scale(s.p90_s) + 4, y: y + 20, class: "value"}, `${clock(s.p50_s)} / ${clock(s.p90_s)} (n=${s.count})`);
  });
  return h("figure", {class: "chart", id},
    h("figcaption", {id: `${id}-title`}, title), svg);
}
