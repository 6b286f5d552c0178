// The "latest events" feed. Today it polls GET /api/events; switching to the server-sent-events
// stream (GET /api/events/stream) means replacing only the body of startTail: callers see the same
// onEvents(newest first) / onError(error) calls and the same stop function.

import { getJson } from "./api.js";

export const TAIL_INTERVAL_MS = 3000;
export const TAIL_SIZE = 10;

/** Call onEvents(events) every `intervalMs` with the newest `size` events; returns a stop function. */
export function startTail({ onEvents, onError, intervalMs = TAIL_INTERVAL_MS, size = TAIL_SIZE }) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try {
        const { body } = await getJson("api/events", { limit: size, order: "desc" });
        if (!stopped) onEvents(body.events);
      } catch (error) {
        if (!stopped) onError(error);
      }
    }
    if (!stopped) timer = setTimeout(tick, intervalMs);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
