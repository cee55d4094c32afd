import { type Child, startApp } from './processes.js';

export interface StorageNodeProcess {
  readonly child: Child;
  readonly dataAddress: string;
  readonly adminUrl: string;
}

/** Starts tw-storage-node on loopback with free ports and waits until it serves. */
export async function startStorageNodeProcess(dataDir: string, extra: string[] = [], env: Record<string, string> = {}): Promise<StorageNodeProcess> {
  const child = startApp('storage-node', ['--data-dir', dataDir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...extra], env);
  const ready = await child.waitForLog((l) => l['msg'] === 'storage node ready');
  return { child, dataAddress: String(ready['dataAddress']), adminUrl: String(ready['adminUrl']) };
}
