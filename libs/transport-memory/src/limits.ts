/** Bounds of the in-memory network. */

/** Messages queued on one direction of one connection (sent, not yet delivered). */
export const CHANNEL_QUEUE_MAX = 1_000_000;

/** Largest simulated one-way latency a knob accepts. */
export const LATENCY_MS_MAX = 60_000;
