// Leaflet maps (from the xstatic-leaflet package, served at /vendor/leaflet/). Markers are DOM elements
// that carry their state as classes and data attributes, so they show with or without tiles.
import * as L from "/vendor/leaflet/leaflet-src.esm.js";
import {h} from "./dom.js";

// Kota Tangerang Selatan, for a map opened before any data arrives.
/** @type {[number, number]} */
const REGION_CENTER = [-6.30, 106.70];

/** A map of the region; ``notice`` (an element) is shown while the tile server cannot be reached. */
export function createMap(element, tileUrl, {zoom = 12, notice = null} = {}) {
  const map = L.map(element, {zoomControl: true, keyboard: true}).setView(REGION_CENTER, zoom);
  if (tileUrl) {
    const osm = tileUrl.includes("openstreetmap.org");
    const tiles = L.tileLayer(tileUrl, {maxZoom: 19, attribution: osm ? "&copy; OpenStreetMap contributors" : ""}).addTo(map);
    const showing = (failed) => {
      element.classList.toggle("no-tiles", failed);
      if (notice) notice.hidden = !failed;
    };
    tiles.on("tileerror", () => showing(true));
    tiles.on("tileload", () => showing(false));
  } else {
    element.classList.add("no-tiles");
  }
  return map;
}

/**
 * A marker whose icon is ``element`` (built with h()); update it with setMarkerElement.
 */
export function elementMarker(latlng, element, title) {
  const icon = L.divIcon({html: element, className: "dom-marker", iconSize: null});
  return L.marker(latlng, {icon, title: title || "", keyboard: false});
}

export function setMarkerElement(marker, element) {
  marker.setIcon(L.divIcon({html: element, className: "dom-marker", iconSize: null}));
}

export function pickMarker(latlng) {
  return L.marker(latlng, {icon: L.divIcon({html: h("span", {class: "pick-marker", "aria-hidden": "true"}), className: "dom-marker", iconSize: null}),
                           keyboard: false, zIndexOffset: 1000});
}

/** Bring a new incident into view, close enough to tell the streets apart. */
export function showPlace(map, latlng) {
  map.setView(latlng, Math.max(map.getZoom(), 14));
}

export function fitTo(map, points) {
  if (points.length) map.fitBounds(L.latLngBounds(points), {padding: [20, 20], maxZoom: 15});
}

export {L};
