// The hospital's emergency department (IGD): one page bound to one hospital. Each panel (incoming
// ambulances, referral requests, the availability board) is its own module, mounted with the page's
// context; they share the signed-in user, the hospital and the one event socket.
import {api, errorText, logout, requireRole} from "./api.js";
import {$, guard} from "./dom.js";
import {mount as mountNotices} from "./hospital_notices.js";
import {mountLanguageSwitch, translate} from "./i18n.js";
import {LiveSocket} from "./live.js";
import {mount as mountBoard} from "./hospital_board.js";
import {mount as mountReferrals} from "./hospital_referrals.js";

const user = requireRole("hospital");
// What each panel wants told: the socket's (re)connection, after which it re-reads, and each event.
const listeners = {hello: [], event: []};
let live = null;

if (user) guard(boot(), (err) => { $("#page-message").textContent = errorText(err); });

/**
 * The page as panels see it.
 * @typedef {{user: any, hospital: any, region: any,
 *   onHello: (fn: () => void) => void, onEvent: (fn: (message: any) => void) => void}} HospitalPage
 */

async function boot() {
  mountLanguageSwitch();
  translate();
  $("#who").textContent = user.display_name || user.username;
  $("#logout").addEventListener("click", () => { live?.stop(); guard(logout()); });
  const region = await api("GET", "/api/region");
  const hospital = region.facilities.find((f) => f.code === user.facility_code) || {code: user.facility_code, name: user.facility_code};
  $("#facility-name").textContent = hospital.name;
  /** @type {HospitalPage} */
  const page = {user, hospital, region, onHello: (fn) => listeners.hello.push(fn), onEvent: (fn) => listeners.event.push(fn)};
  mountNotices(page);  // the panels mount here
  mountReferrals(page);
  mountBoard(page);
  live = new LiveSocket("/ws/events", {
    onHello: () => { for (const fn of listeners.hello) fn(); },
    onEvent: (message) => { for (const fn of listeners.event) fn(message); },
  }).start();
  window.__psc119 = {live};
  document.body.dataset.ready = "true";
}
