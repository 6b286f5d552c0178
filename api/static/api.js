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

/** GET `path` as JSON; resolves to {body, headers}, throws AuthError or ApiError. */
export async function getJson(path, params = {}) {
  const headers = { Accept: "application/json" };
  const key = storedKey();
  if (key) headers["X-API-Key"] = key;
  const response = await fetch(apiUrl(path, params), { headers, cache: "no-store", credentials: "omit" });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const error = body && typeof body === "object" && body.error ? body.error : null;
  const message = error && typeof error.message === "string" ? error.message : `HTTP ${response.status}`;
  if (response.status === 401 || response.status === 403) throw new AuthError(response.status, message);
  if (!response.ok) throw new ApiError(response.status, error ? error.code : null, message);
  return { body, headers: response.headers };
}
