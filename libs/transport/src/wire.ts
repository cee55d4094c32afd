/**
 * The stream wire format shared by byte-stream backends (TCP today, any stream later), as
 * constants only: encoders and decoders live in the backends.
 *
 * A frame is a fixed 16-byte little-endian prefix, then `headerBytes` of header, then
 * `payloadBytes` of payload:
 *
 * | offset | size | field                                         |
 * | ------ | ---- | --------------------------------------------- |
 * | 0      | 2    | magic 0x5754 ('TW' little-endian)             |
 * | 2      | 1    | version (1)                                   |
 * | 3      | 1    | kind (FrameKind)                              |
 * | 4      | 4    | request id (u32, chosen by the client)        |
 * | 8      | 4    | headerBytes (u32, <= HEADER_BYTES_MAX)        |
 * | 12     | 4    | payloadBytes (u32, <= the receiver's maximum) |
 *
 * Responses carry the id of their request; they may arrive in any order (the server answers as
 * its handlers finish). An ERROR frame's header is UTF-8 JSON `{code, message, retryable?,
 * details?}` and its payload is empty; an ERROR frame with id 0 reports a connection-level
 * protocol error just before the sender closes the connection.
 */
export const WIRE_MAGIC = 0x5754;
export const WIRE_VERSION = 1;
export const WIRE_PREFIX_BYTES = 16;

export const FrameKind = {
  REQUEST: 1,
  RESPONSE: 2,
  ERROR: 3,
  /** Client gave up on a request (abort): the server aborts the handler's signal. No body. */
  CANCEL: 4,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

/** Request id 0 is never used by a request: it addresses the connection itself. */
export const CONNECTION_REQUEST_ID = 0;
