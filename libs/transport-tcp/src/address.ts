import { transportErrors } from '@tw/transport';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Parses 'host:port' or '[v6]:port'. */
export function parseAddress(address: string): HostPort {
  const colon = address.lastIndexOf(':');
  const rawHost = colon > 0 ? address.slice(0, colon) : '';
  const host = rawHost.startsWith('[') && rawHost.endsWith(']') ? rawHost.slice(1, -1) : rawHost;
  const portText = address.slice(colon + 1);
  const port = Number(portText);
  if (host === '' || !/^\d+$/.test(portText) || port > 65535) {
    throw transportErrors.create('TW_TRANSPORT_BAD_ADDRESS', `TCP address must be host:port, got ${JSON.stringify(address)}`, { details: { address } });
  }
  return { host, port };
}

export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
