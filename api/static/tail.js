// The "latest events" feed, live: GET /api/events/stream (server-sent events) read with fetch(), since
// EventSource cannot send the key's header (api.js adds it) and the key never goes in a URL. The SSE
// text is parsed here; a connection that ends is resumed with Last-Event-ID, so no event is missed or
// shown twice. A server that keeps no transparency log answers the stream 501: the feed then polls
// GET /api/events. Callers see onEvents(newest first, {mode: "live" | "polling"}) / onError(error)
// and a stop function.

import { AuthError, ApiError, apiHeaders, apiUrl, errorOf, getJson, jsonOrNull } from "./api.js";

export const TAIL_INTERVAL_MS = 3000; // polling, when there is no stream
export const TAIL_SIZE = 10;
const RECONNECT_MS = 2000; // until the server's `retry:` says otherwise
const MAX_BACKOFF_MS = 30_000;

/** An SSE parser (the HTML standard's rules): feed it text, it calls onMessage({event, data, id}). */
export function sseParser(onMessage, onRetry = () => {}) {
  let pending = "";
  let data = [];
  let event = "";
  let lastId = null;
  const line = (text) => {
    if (text === "") {
      if (data.length) onMessage({ event: event || "message", data: data.join("\n"), id: lastId });
      data = [];
      event = "";
      return;
    }
    if (text.startsWith(":")) return; // a comment: the server's heartbeat
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") event = value;
    else if (field === "id" && !value.includes("\0")) lastId = value;
    else if (field === "retry" && /^\d+$/.test(value)) onRetry(Number(value));
  };
  return {
    /** Forget a message cut short by a closed connection (the last id is kept: it resumes the next). */
    reset() {
      pending = "";
      data = [];
      event = "";
    },
    feed(text) {
      pending += text;
      const lines = pending.split(/\r\n|\r|\n/);
      pending = lines.pop();
      lines.forEach(line);
    },
    get lastId() {
      return lastId;
    },
    set lastId(value) {
      lastId = value;
    },
  };
}

/** Newest first: `fresh` (oldest first, as they arrived) before `shown`, each event once, at most `size`. */
function merged(fresh, shown, size) {
  const seen = new Set();
  return [...fresh.slice().reverse(), ...shown].filter((e) => !seen.has(e.event_id) && seen.add(e.event_id)).slice(0, size);
}

/** Show the newest `size` events, then each new one as it is stored; returns a stop function. */
export function startTail({ onEvents, onError, intervalMs = TAIL_INTERVAL_MS, size = TAIL_SIZE }) {
  let stopped = false;
  let controller = null;
  let timer = null;
  let shown = [];
  let retryMs = RECONNECT_MS;
  let failures = 0;
  const parser = sseParser(
    (message) => handle(message),
    (ms) => (retryMs = ms),
  );
  let arrived = [];

  const show = (fresh, mode) => {
    shown = merged(fresh, shown, size);
    onEvents(shown, { mode });
  };

  const handle = (message) => {
    if (message.event === "event") arrived.push(JSON.parse(message.data));
    else if (message.event === "dropped") controller?.abort(); // the server ended it: resume below
  };

  const later = (run, ms) => {
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(run, ms);
  };

  const poll = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try {
        const { body } = await getJson("api/events", { limit: size, order: "desc" });
        if (!stopped) onEvents((shown = body.events), { mode: "polling" });
      } catch (error) {
        if (!stopped) onError(error);
      }
    }
    later(poll, intervalMs);
  };

  const connect = async () => {
    if (stopped) return;
    controller = new AbortController();
    const headers = apiHeaders("text/event-stream");
    const resuming = parser.lastId !== null;
    if (resuming) headers["Last-Event-ID"] = parser.lastId;
    try {
      const init = { headers, cache: "no-store", credentials: "omit", signal: controller.signal };
      const response = await fetch(apiUrl("api/events/stream"), init);
      if (response.status === 501 || !response.body) return poll(); // no commit order here: poll
      if (!response.ok) throw errorOf(response, await jsonOrNull(response));
      if (!resuming) {
        // The stream starts at the log's end: the latest events so far come from one page (an
        // event both in the page and in the stream is shown once).
        const { body } = await getJson("api/events", { limit: size, order: "desc" });
        shown = merged([], body.events, size);
      }
      failures = 0;
      await read(response.body);
    } catch (error) {
      if (stopped || error.name === "AbortError") {
        // stopped, hidden, or dropped by the server: resume below
      } else if (error instanceof AuthError) {
        return onError(error); // the dashboard asks for a key, then starts a new tail
      } else {
        failures += 1;
        if (error instanceof ApiError || failures > 1) onError(error);
      }
    }
    if (!stopped && !document.hidden) later(connect, failures ? Math.min(retryMs * 2 ** failures, MAX_BACKOFF_MS) : 0);
  };

  const read = async (body) => {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    parser.reset();
    show([], "live");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      parser.feed(decoder.decode(value, { stream: true }));
      if (arrived.length) {
        show(arrived, "live");
        arrived = [];
      }
    }
  };

  // A hidden tab keeps no stream open (it holds one of the server's stream slots); shown again,
  // it starts afresh from the latest page.
  const visibility = () => {
    if (document.hidden) {
      controller?.abort();
      clearTimeout(timer);
    } else if (!stopped) {
      parser.lastId = null;
      later(connect, 0);
    }
  };
  document.addEventListener("visibilitychange", visibility);
  connect();

  return () => {
    stopped = true;
    clearTimeout(timer);
    controller?.abort();
    document.removeEventListener("visibilitychange", visibility);
  };
}
