import * as grpc from '@grpc/grpc-js';
import { TwError, isTwError } from '@tw/errors';
import { rpcErrors } from './errors.js';

const MD_CODE = 'tw-code';
const MD_RETRYABLE = 'tw-retryable';
const MD_DETAILS = 'tw-details';
const MD_LEADER = 'tw-leader';
const DETAILS_BYTES_MAX = 4096;

/** The gRPC status a TwError travels under (for tooling that only sees gRPC codes). */
function statusFor(err: TwError): grpc.status {
  if (err.code === 'TW_NOT_LEADER') return grpc.status.UNAVAILABLE;
  if (err.code === 'TW_RPC_DEADLINE') return grpc.status.DEADLINE_EXCEEDED;
  if (err.retryable) return grpc.status.UNAVAILABLE;
  if (/NOT_FOUND|UNKNOWN_NAMESPACE/.test(err.code)) return grpc.status.NOT_FOUND;
  if (/QUOTA|FULL/.test(err.code)) return grpc.status.RESOURCE_EXHAUSTED;
  if (/TOKEN|AUTH|FORBIDDEN/.test(err.code)) return grpc.status.PERMISSION_DENIED;
  return grpc.status.FAILED_PRECONDITION;
}

/** Server side: any thrown value -> a gRPC error that carries our code in trailing metadata. */
export function toServiceError(err: unknown): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (isTwError(err)) {
    metadata.set(MD_CODE, err.code);
    metadata.set(MD_RETRYABLE, err.retryable ? '1' : '0');
    if (err.details !== undefined) {
      const json = JSON.stringify(err.details);
      if (json.length <= DETAILS_BYTES_MAX) metadata.set(MD_DETAILS, json);
      const leader = (err.details as { leader?: unknown }).leader;
      if (typeof leader === 'string') metadata.set(MD_LEADER, leader);
    }
    return { code: statusFor(err), details: err.message, metadata };
  }
  metadata.set(MD_CODE, 'TW_RPC_INTERNAL');
  return { code: grpc.status.INTERNAL, details: err instanceof Error ? err.message : String(err), metadata };
}

/** Client side: a gRPC error -> a TwError with the server's code, or an rpc code of our own. */
export function fromServiceError(err: unknown): TwError {
  if (isTwError(err)) return err;
  const e = err as Partial<grpc.ServiceError>;
  const md = e.metadata;
  const code = md?.get(MD_CODE)[0];
  const message = e.details ?? e.message ?? 'gRPC call failed';
  if (typeof code === 'string' && code.startsWith('TW_')) {
    let details: Record<string, unknown> | undefined;
    const raw = md?.get(MD_DETAILS)[0];
    if (typeof raw === 'string') {
      try {
        details = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        details = undefined;
      }
    }
    return new TwError(code, message, { retryable: md?.get(MD_RETRYABLE)[0] === '1', ...(details === undefined ? {} : { details }) });
  }
  switch (e.code) {
    case grpc.status.UNAVAILABLE:
      return rpcErrors.create('TW_RPC_UNAVAILABLE', `coordinator unavailable: ${message}`, { cause: err });
    case grpc.status.DEADLINE_EXCEEDED:
      return rpcErrors.create('TW_RPC_DEADLINE', `deadline exceeded: ${message}`, { cause: err });
    case grpc.status.CANCELLED:
      return rpcErrors.create('TW_RPC_ABORTED', `call cancelled: ${message}`, { cause: err });
    default:
      return rpcErrors.create('TW_RPC_INTERNAL', `gRPC ${e.code ?? '?'}: ${message}`, { cause: err });
  }
}

/** The leader hint carried by a NOT_LEADER error, if any. */
export function leaderHint(err: TwError): string | undefined {
  const leader = (err.details as { leader?: unknown } | undefined)?.leader;
  return typeof leader === 'string' && leader.length > 0 ? leader : undefined;
}
