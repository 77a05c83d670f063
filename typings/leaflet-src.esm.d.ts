// Leaflet as the pages load it: the xstatic-leaflet package's ESM build, served at /vendor/leaflet/.
export * from "leaflet";
