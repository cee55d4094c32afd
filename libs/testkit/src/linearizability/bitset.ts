/** A fixed-size bitset over operation indexes, hashable to an exact string for memoization. */
export class Bitset {
  private readonly words: Uint32Array;

  constructor(sizeBits: number) {
    this.words = new Uint32Array(Math.ceil(sizeBits / 32) || 1);
  }

  set(bit: number): void {
    const w = bit >>> 5;
    this.words[w] = (this.words[w]! | (1 << (bit & 31))) >>> 0;
  }

  clear(bit: number): void {
    const w = bit >>> 5;
    this.words[w] = (this.words[w]! & ~(1 << (bit & 31))) >>> 0;
  }

  has(bit: number): boolean {
    return (this.words[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }

  /** Exact key: equal sets give equal keys, different sets different keys. */
  key(): string {
    let s = '';
    for (const w of this.words) s += w.toString(36) + '.';
    return s;
  }

  popcount(): number {
    let n = 0;
    for (let w of this.words) {
      while (w !== 0) {
        w &= w - 1;
        n++;
      }
    }
    return n;
  }
}
