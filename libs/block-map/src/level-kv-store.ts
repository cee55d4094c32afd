import { assert } from '@tw/errors';
import type { KvEntry, KvIterator, KvOp, KvRange, KvStore } from './kv-store.js';

const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

type ViewOptions = { readonly keyEncoding: 'view'; readonly valueEncoding: 'view' };

/**
 * What levelKvStore needs of an abstract-level database (classic-level, a sublevel of one, or
 * memory-level): the subset of its API, with 'view' encodings passed per call so the database's
 * default encodings do not matter. Structural, so this core lib does not import classic-level.
 */
export interface LevelLike {
  get(key: Uint8Array, options: ViewOptions): Promise<Uint8Array | undefined>;
  getMany(keys: Uint8Array[], options: ViewOptions): Promise<(Uint8Array | undefined)[]>;
  batch(ops: Array<{ type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array }>, options: ViewOptions & { sync?: boolean }): Promise<void>;
  iterator(options: ViewOptions & KvRange): { nextv(size: number): Promise<Array<[Uint8Array, Uint8Array]>>; close(): Promise<void> };
  clear(options: ViewOptions & KvRange): Promise<void>;
  /**
   * abstract-level's private batch, which implementations (classic-level, memory-level) provide and
   * the public `batch` calls after it has validated, cloned and encoded every op. Used directly
   * when the database takes views as they are (see `takesViews`).
   */
  _batch?(ops: Array<{ type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array }>, options: { sync: boolean }): Promise<void>;
  readonly status?: string;
  readonly supports?: { readonly encodings?: Readonly<Record<string, boolean>> };
  readonly prefix?: unknown;
}

export interface LevelKvStoreOptions {
  /**
   * fsync each write batch (default false). After a machine crash the block map may be behind
   * its last applied index; Raft re-applies the entries after the persisted one, so the state
   * machine needs no fsync AS LONG AS the Raft log keeps those entries: before compacting the
   * log up to index i, make sure the map's state at i or later is durable (a store opened with
   * `sync: true`, or any synced write after applying i, flushes LevelDB's log).
   */
  readonly sync?: boolean;
}

/**
 * A KvStore over an already-opened abstract-level database. The caller opens and closes the
 * database (this lib does no I/O setup). Iterators read from LevelDB's implicit snapshot taken
 * when they are created.
 */
export function levelKvStore(db: LevelLike, options: LevelKvStoreOptions = {}): KvStore {
  // classic-level answers Buffers; hand out plain Uint8Array views (no copy) so that callers see
  // the same types from every KvStore (Buffer#slice does not copy, Uint8Array#slice does).
  const plain = (x: Uint8Array | undefined): Uint8Array | undefined => (x === undefined || x.constructor === Uint8Array ? x : new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  const batchOptions = { ...VIEW, sync: options.sync ?? false };
  // The public batch clones every op ({...options, ...op}) and encodes its key and value: ~4 us an
  // op in the coordinator's apply, where the ops are already views (measured: the largest single
  // cost of applying a block). A database that stores views natively and has no prefix to add (not
  // a sublevel) gets them through its private batch as they are. Hooks and write events are
  // skipped on this path: the block map registers neither.
  const direct = takesViews(db) ? db._batch!.bind(db) : undefined;
  const directOptions = { sync: options.sync ?? false };
  const writeOps = async (ops: KvOp[]): Promise<void> => {
    const batchOps = ops as Parameters<LevelLike['batch']>[0];
    if (direct !== undefined && db.status === 'open') {
      // The native batch skips what it does not understand (an unknown type, a put without a
      // value is stored empty) where the public batch refuses: check what the types promise.
      for (const op of ops) {
        assert(op.key instanceof Uint8Array && (op.type === 'del' || (op.type === 'put' && op.value instanceof Uint8Array)), () => `malformed KvOp: ${String((op as { type?: unknown }).type)}`);
      }
      return direct(batchOps, directOptions);
    }
    return db.batch(batchOps, batchOptions);
  };
  const rangeOf = (range: KvRange): KvRange => {
    const out: { -readonly [K in keyof KvRange]: KvRange[K] } = {};
    if (range.gt !== undefined) out.gt = range.gt;
    if (range.gte !== undefined) out.gte = range.gte;
    if (range.lt !== undefined) out.lt = range.lt;
    if (range.lte !== undefined) out.lte = range.lte;
    if (range.limit !== undefined) out.limit = range.limit;
    return out;
  };
  return {
    get: async (key) => plain(await db.get(key, VIEW)),
    getMany: async (keys) => (await db.getMany(keys as Uint8Array[], VIEW)).map(plain),
    write: (ops: readonly KvOp[]) => (ops.length === 0 ? Promise.resolve() : writeOps(ops as KvOp[])),
    iterator(range: KvRange = {}): KvIterator {
      const it = db.iterator({ ...VIEW, ...rangeOf(range) });
      let closed = false;
      return {
        async next(maxEntries: number): Promise<KvEntry[]> {
          if (closed) return [];
          const page = await it.nextv(Math.max(1, maxEntries));
          if (page.length === 0) {
            closed = true;
            await it.close();
          }
          return page.map(([k, v]) => [plain(k)!, plain(v)!] as const);
        },
        async close(): Promise<void> {
          if (closed) return;
          closed = true;
          await it.close();
        },
      };
    },
    clear: (range: KvRange = {}) => db.clear({ ...VIEW, ...rangeOf(range) }),
  };
}

/** Whether `db` stores Uint8Array keys and values natively and is not a sublevel (no key prefix). */
function takesViews(db: LevelLike): boolean {
  return typeof db._batch === 'function' && db.supports?.encodings?.['view'] === true && db.prefix === undefined && db.constructor.name === 'ClassicLevel';
}
