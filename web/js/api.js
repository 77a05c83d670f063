// The HTTP API client: the session token in sessionStorage, JSON errors with their field.
import {known, label, t} from "./i18n.js";

const TOKEN = "psc119.token";
const USER = "psc119.user";

export const session = {
  get token() { return sessionStorage.getItem(TOKEN); },
  get user() {
    try { return JSON.parse(sessionStorage.getItem(USER) || "null"); } catch { return null; }
  },
  save(token, user) {
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.setItem(USER, JSON.stringify(user));
  },
  clear() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(USER);
  },
};

/** A refused request: the HTTP status and the server's {code, message, field}, plus the rest of its body. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || (status === 0 ? "network" : "http");
    this.field = error.field || null;
    this.body = body || {};
  }
}

/** Call the API; resolves with the parsed JSON body, rejects with ApiError. A 401 sends the user to log in. */
export async function api(method, path, body) {
  const headers = {Accept: "application/json"};
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  } catch {
    throw new ApiError(0, {error: {code: "network", message: t("error.code.network")}});
  }
  const data = (response.headers.get("Content-Type") || "").includes("application/json") ? await response.json() : null;
  if (!response.ok) {
    if (response.status === 401 && path !== "/api/auth/login") toLogin(Boolean(session.token));
    throw new ApiError(response.status, data);
  }
  return data;
}

/** The text to show for a failure, in the chosen language. */
export function errorText(err) {
  if (!(err instanceof ApiError)) return t("error.unexpected", {message: String(err?.message || err)});
  return describeError({code: err.code, message: err.message, field: err.field, retry_after_s: err.body.retry_after_s});
}

/** A server error ({code, message, field}, from HTTP or a socket) in the chosen language: the text for this
 * code and field, else the code's text with the field's name; the server's English message
 * only for a code the pages do not know. */
export function describeError({code, message, field = null, retry_after_s = undefined}) {
  const base = field ? field.replace(/\[\d+\]$/, "") : null;  // capabilities[2] is a capability
  const fieldName = base ? label("input", base) : "";
  let text;
  if (base && known(`error.${code}.${base}`)) text = t(`error.${code}.${base}`);
  else if (known(`error.code.${code}`)) text = t(`error.code.${code}`, {seconds: retry_after_s ?? "?", field: fieldName});
  else text = message || code;
  return field ? t("error.field", {field: fieldName, message: text}) : text;
}

let loggingOut = false;

/** Off to the login page; ``signedOut``: the session ended (logout elsewhere, account disabled or changed,
 * expiry), which the login page says. */
export function toLogin(signedOut = false) {
  if (loggingOut) return;  // this page's own logout ends its sockets too, and goes to the login page itself
  session.clear();
  if (!location.pathname.endsWith("/index.html") && location.pathname !== "/") {
    const params = new URLSearchParams({next: location.pathname});
    if (signedOut) params.set("signed_out", "1");
    location.assign(`/index.html?${params}`);
  }
}

/** The server closes every socket of an ended session with this code: sign in again, never reconnect. */
export const SESSION_ENDED = 4401;

/** The page each role works on. */
export function homeOf(role) {
  return {operator: "/operator.html", admin: "/admin.html", field_team: "/field.html",
          puskesmas: "/puskesmas.html", specialist: "/specialist.html", hospital: "/hospital.html"}[role] || null;
}

/** The signed-in user if their role may use this page; otherwise off to the login page. */
export function requireRole(...roles) {
  const user = session.user;
  if (!session.token || !user) {
    toLogin();
    return null;
  }
  if (!roles.includes(user.role)) {
    location.assign(homeOf(user.role) || "/index.html");
    return null;
  }
  return user;
}

export async function logout() {
  loggingOut = true;
  try { await api("POST", "/api/auth/logout"); } catch { /* the session ends here either way */ }
  session.clear();
  location.assign("/index.html");
}

let webConfig = null;
/** Public settings for the clients (the map tile URL). */
export async function getWebConfig() {
  webConfig ??= await api("GET", "/api/web-config");
  return webConfig;
}

/** Upload a file as the raw request body with its own Content-Type (consult attachments); resolves with the JSON reply. */
export async function apiUpload(path, file) {
  return rawRequest("POST", path, {"Content-Type": file.type || "application/octet-stream"}, file, (r) => r.json());
}

/** GET a members-only file with the session token; resolves with its Blob (links cannot carry the token). */
export async function apiBlob(path) {
  return rawRequest("GET", path, {}, undefined, (r) => r.blob());
}

async function rawRequest(method, path, headers, body, read) {
  const all = {...headers};
  if (session.token) all.Authorization = `Bearer ${session.token}`;
  let response;
  try {
    response = await fetch(path, {method, headers: all, body});
  } catch {
    throw new ApiError(0, {error: {code: "network", message: t("error.code.network")}});
  }
  if (!response.ok) {
    const data = (response.headers.get("Content-Type") || "").includes("application/json") ? await response.json() : null;
    if (response.status === 401) toLogin(Boolean(session.token));
    throw new ApiError(response.status, data);
  }
  return read(response);
}
