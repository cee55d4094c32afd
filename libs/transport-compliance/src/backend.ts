import type { Transport, TransportLimitOptions } from '@tw/transport';

/** A raw byte connection to a listener that bypasses the backend's framing (for garbage tests). */
export interface RawConnection {
  /** Writes these bytes as they are. */
  write(bytes: Uint8Array): void;
  /**
   * Resolves when the server has closed the connection, with the error code the server reported on
   * it before closing (if it sent one the hook could decode).
   */
  readonly closed: Promise<{ readonly errorCode: string | undefined }>;
  /** Closes it from our side (cleanup). */
  destroy(): void;
}

/** What a backend declares it can do; the suite runs the matching tests (abstract-level's `supports`). */
export interface ComplianceSupports {
  /** `rawConnect` is implemented: malformed-frame tests run. */
  readonly rawInjection: boolean;
  /**
   * Response payloads read with `into` are the caller's buffer itself (always true of every
   * backend: the contract says the payload is a view of `into`), checked by identity.
   */
  readonly intoIsView: boolean;
}

/** How a backend plugs into the suite; a backend's test file builds one and calls the suite. */
export interface ComplianceBackend {
  readonly name: string;
  readonly supports: ComplianceSupports;
  /** A fresh transport with these limits; the suite closes every transport it creates. */
  create(options?: TransportLimitOptions): Transport | Promise<Transport>;
  /** An address a fresh listener can bind ('127.0.0.1:0' on TCP). */
  listenAddress(): string;
  /** Opens a raw connection to a listener (required when supports.rawInjection). */
  rawConnect?(address: string): Promise<RawConnection>;
}
