// Development aid for tools/compare-with-redis.py: reads one hex-encoded connection input per
// line on stdin, answers one JSON line per input with this library's reply bytes (hex) and
// whether it closed the connection. Optional argument: the password the backend requires.
// Not part of the build or the tests.
import { MemoryBackend } from '../test/memory-backend.js';
import { serve } from '../test/serve.js';

let pending = '';
const lines: string[] = [];
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d: string) => {
  pending += d;
  const parts = pending.split('\n');
  pending = parts.pop() ?? '';
  lines.push(...parts);
});
process.stdin.on('end', () => {
  void (async () => {
    for (const line of lines) {
      if (line.trim() === '') continue;
      const input = Buffer.from(line.trim(), 'hex');
      const r = await serve([input], new MemoryBackend(process.argv[2] ?? null));
      process.stdout.write(JSON.stringify({ out: r.out.toString('hex'), closed: r.closed }) + '\n');
    }
  })();
});
