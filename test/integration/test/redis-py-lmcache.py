"""Replays LMCache's RedisConnector sequence with redis-py against a RESP server.

Usage: redis-py-lmcache.py HOST PORT KEYS SEED
For each key: SET <key>kv_bytes, SET <key>metadata (28 bytes, struct 'iiiiiii'), then
EXISTS <key>metadata, GET <key>metadata, GET <key>kv_bytes, each checked byte for byte.
Also checks a miss (EXISTS 0, GET None) and an MGET. Prints one JSON line; exit 0 only if all match.
"""
import json
import random
import struct
import sys
import time

import redis

host, port, nkeys, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)
r = redis.Redis(host=host, port=port, socket_timeout=30, socket_connect_timeout=10)
t0 = time.monotonic()
assert r.ping() is True
values = {}
sizes = [0, 1, 13, 4096, 65536 + 7, 256 * 1024, 1024 * 1024 + 3]
for i in range(nkeys):
    # LMCache keys: "<model>@<world_size>@<worker_id>@<chunk hash>" style, plus the suffixes.
    key = f"vllm@llama@1@0@{rnd.getrandbits(64):016x}{i}"
    size = sizes[i % len(sizes)]
    kv = rnd.randbytes(size)
    # Make sure CR/LF and NUL bytes are in the payload (RESP framing must not care).
    if size >= 4:
        kv = b"\r\n\x00$" + kv[4:]
    meta = struct.pack("iiiiiii", size, 1, 2, 16, 8, -1, 256)
    assert len(meta) == 28
    assert r.set(key + "kv_bytes", kv) is True
    assert r.set(key + "metadata", meta) is True
    values[key] = (kv, meta)
for key, (kv, meta) in values.items():
    e = r.exists(key + "metadata")
    assert e == 1, f"EXISTS {key}metadata -> {e!r}"
    got_meta = r.get(key + "metadata")
    assert got_meta == meta, f"GET {key}metadata -> {got_meta!r} != {meta!r}"
    assert struct.unpack("iiiiiii", got_meta) == struct.unpack("iiiiiii", meta)
    got_kv = r.get(key + "kv_bytes")
    assert got_kv == kv, f"GET {key}kv_bytes -> {None if got_kv is None else len(got_kv)} bytes, want {len(kv)}"
miss = f"missing-{rnd.getrandbits(64):x}"
assert r.exists(miss + "metadata") == 0
assert r.get(miss + "kv_bytes") is None
keys = list(values)[:3]
assert r.mget([k + "metadata" for k in keys] + [miss]) == [values[k][1] for k in keys] + [None]
# Pipelined, as redis-py sends a transaction-less pipeline.
p = r.pipeline(transaction=False)
for k in keys:
    p.exists(k + "metadata")
    p.get(k + "metadata")
assert p.execute() == [x for k in keys for x in (1, values[k][1])]
print(json.dumps({"ok": True, "keys": len(values), "redis_py": redis.__version__, "seconds": round(time.monotonic() - t0, 3)}))
