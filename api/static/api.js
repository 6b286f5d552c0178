// Calls to govtrack's public API with the user's key (read scope).
// The key lives in this tab's sessionStorage only and travels in the X-API-Key header, never in a URL.

const KEY_STORAGE = "govtrack.apiKey";

/** The API refused the key (401: missing or invalid, 403: lacks the scope). */
export class AuthError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Any other error answer, with the contract's error code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

/** A URL for `path` (relative to the page, so a path prefix works) with `params`; empty values left out. */
export function apiUrl(path, params = {}) {
  const url = new URL(path, document.baseURI);
  for (const [name, value] of Object.entries(params)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== null && item !== "") url.searchParams.append(name, String(item));
    }
  }
  return url;
}

/** Request headers for `accept`, with the stored key (never in the URL). */
export function apiHeaders(accept = "application/json") {
  const headers = { Accept: accept };
  const key = storedKey();
  if (key) headers["X-API-Key"] = key;
  return headers;
}

/** The AuthError or ApiError for an error answer whose JSON `body` (or null) was read. */
export function errorOf(response, body) {
  const error = body && typeof body === "object" && body.error ? body.error : null;
  const message = error && typeof error.message === "string" ? error.message : `HTTP ${response.status}`;
  if (response.status === 401 || response.status === 403) return new AuthError(response.status, message);
  return new ApiError(response.status, error ? error.code : null, message);
}

/** The body of `response` as JSON, or null when it is not JSON. */
export async function jsonOrNull(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/** GET `path` as JSON; resolves to {body, headers}, throws AuthError or ApiError. */
export async function getJson(path, params = {}) {
  const init = { headers: apiHeaders(), cache: "no-store", credentials: "omit" };
  const response = await fetch(apiUrl(path, params), init);
  const body = await jsonOrNull(response);
  if (!response.ok) throw errorOf(response, body);
  return { body, headers: response.headers };
}
