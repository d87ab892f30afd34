/** Fixed time windows (UTC, aligned to multiples of their length since the epoch). */
export interface Window {
  /** Epoch seconds at which the window began (a multiple of its length). */
  start: number;
  /** When the window ends and the next begins. */
  resetAt: Date;
}

/** The window of `windowSeconds` that holds `now`. */
export function windowAt(now: Date, windowSeconds: number): Window {
  const start = Math.floor(Math.floor(now.getTime() / 1000) / windowSeconds) * windowSeconds;
  return { start, resetAt: new Date((start + windowSeconds) * 1000) };
}
