// The login page: exchange the password for a token, then go to the page of the user's role.
import {api, errorText, homeOf, session} from "./api.js";
import {mountLanguageSwitch, t, translate} from "./i18n.js";
import {$} from "./dom.js";

mountLanguageSwitch();
translate();
// Already signed in (this tab): straight to the user's page; a stale token comes back here via a 401.
if (session.token && homeOf(session.user?.role) && !new URLSearchParams(location.search).has("next")) {
  location.replace(homeOf(session.user.role));
}

const form = $("#login-form");
const error = $("#login-error");
// Sent here because the session ended (logout in another tab, account disabled, expiry).
if (new URLSearchParams(location.search).has("signed_out")) $("#signed-out").hidden = false;

form.addEventListener("submit", (event) => {
  event.preventDefault();
  login().catch((err) => { error.textContent = errorText(err); });
});

async function login() {
  error.textContent = "";
  const username = $("#username").value.trim();
  const password = $("#password").value;
  if (!username || !password) {
    error.textContent = t("login.missing");
    (username ? $("#password") : $("#username")).focus();
    return;
  }
  const result = await api("POST", "/api/auth/login", {username, password});
  const home = homeOf(result.user.role);
  if (!home) {
    error.textContent = t("login.no_page", {role: result.user.role});
    return;
  }
  session.save(result.token, result.user);
  const next = new URLSearchParams(location.search).get("next");
  location.assign(next === home ? next : home);
}
