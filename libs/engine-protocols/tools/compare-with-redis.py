#!/usr/bin/env python3
"""Differential check of @tw/engine-protocols against a real redis-server (development aid).

Usage: start `redis-server --port 17379 --save '' --appendonly no --databases 1`, then from the repo root:
  python3 libs/engine-protocols/tools/compare-with-redis.py 17379 [random-cases] [seed] [record.json]
With PASSWORD=pw in the environment, redis must run with `--requirepass pw` and the cases are
the authentication ones. Each case is one connection's input; redis gets FLUSHALL before each case, the library a fresh
in-memory backend. Replies are compared byte for byte, plus whether the server closed.
"""
import json, random, socket, subprocess, sys

import os
password = os.environ.get('PASSWORD')
port = int(sys.argv[1]); nrand = int(sys.argv[2]) if len(sys.argv) > 2 else 300
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)

def redis(data, wait=0.15):
    s = socket.create_connection(('127.0.0.1', port))
    s.sendall((mb(b'AUTH', password.encode()) if password else b'') + b'*1\r\n$8\r\nFLUSHALL\r\n')
    got = b''
    while got.count(b'\r\n') < (2 if password else 1): got += s.recv(100)
    s.close()
    s = socket.create_connection(('127.0.0.1', port)); s.sendall(data); s.settimeout(wait)
    out, closed = b'', False
    try:
        while True:
            d = s.recv(1 << 20)
            if not d: closed = True; break
            out += d
    except socket.timeout: pass
    except ConnectionResetError: closed = True
    s.close(); return out, closed

def mb(*args):
    return b'*%d\r\n' % len(args) + b''.join(b'$%d\r\n%s\r\n' % (len(a), a) for a in args)

FIXED = [
  b'PING\r\n', b'PING hello\r\n', b'PING a b\r\n', mb(b'PING'), mb(b'ping', b'x\x00y'),
  b'ECHO\r\n', mb(b'ECHO', b'\xff\x00\r\n'),
  mb(b'SET', b'k', b'v') + mb(b'GET', b'k') + mb(b'GET', b'nokey'),
  mb(b'SET', b'k'), b'SET k v NX XX\r\n', b'SET k v EX\r\n', b'SET k v EX 0\r\n', b'SET k v EX -1\r\n',
  b'SET k v EX x\r\n', b'SET k v EX 9223372036854776\r\n', b'SET k v PX 9223372036854775807\r\n',
  b'SET k v EXAT 9223372036854775\r\n', b'SET k v EX 10 EX 20\r\n', b'SET k v EX 10 PX 20\r\n',
  b'SET k v KEEPTTL EX 1\r\n', b'SET k v KEEPTTL\r\n', b'SET k v FOO\r\n', b'SET k v PERSIST\r\n', b'SET k v ex 01\r\n',
  b'SET k v GET\r\nSET k w NX GET\r\nSET k2 w XX GET\r\nSET k2 w XX\r\nSET k x NX\r\nSET k x xx get\r\n',
  mb(b'SET', b'k', b'v', b'nx\x00junk'), mb(b'SET', b'k', b'v', b'EX', b'10\x00'),
  b'SET a 1\r\nSET b 2\r\nEXISTS a a b c\r\nMGET a c b\r\nDEL a a b\r\nEXISTS a\r\nMGET a\r\n',
  b'EXISTS\r\nDEL\r\nMGET\r\nGET\r\nGET a b\r\n',
  b'SELECT 0\r\nSELECT 1x\r\nSELECT x\r\nSELECT 99999999999\r\nSELECT -0\r\n',
  b'AUTH x\r\nAUTH default x\r\nAUTH a b c\r\nAUTH\r\n',
  b'CLIENT\r\nCLIENT SETNAME\r\nCLIENT FOO bar\r\nclient foo\r\nCLIENT SETNAME "a b"\r\nCLIENT SETNAME ab\r\nCLIENT GETNAME\r\nCLIENT SETNAME ""\r\nCLIENT GETNAME\r\n',
  b'CONFIG\r\nCONFIG GET\r\nCONFIG GET save\r\nCONFIG GET appendonly\r\nCONFIG GET SAVE\r\nCONFIG GET nosuch\r\nCONFIG GET sav*\r\nCONFIG GET sav* save\r\n',
  b'COMMAND DOCS\r\n'[:0] + b'COMMAND COUNT x\r\n', b'HELLO x\r\nHELLO 4\r\nHELLO 1 FOO\r\nHELLO 2 FOO\r\nHELLO 2 AUTH a\r\nHELLO 2 SETNAME "a b"\r\n',
  b'INFO nosuch\r\n', b'foo a b\r\n', b'foo\r\n', mb(b'f\x00oo', b'a\x00b', b'c\r\nd'), mb(b'x' * 200, b'y' * 100, b'z' * 100),
  mb(*[b'a' * 50] * 5), b'QUIT\r\nPING\r\n', b'quit extra\r\n', mb(b'quit\x00x'), b'POST / HTTP/1.1\r\nPING\r\n', b'Host: x\r\n',
  b'*1\r\nX', b'*1\r\n$3\r\nPINGxx*1\r\n$4\r\nPING\r\n', b'*x\r\n', b'*\r\n', b'*01\r\n', b'*-1\r\nPING\r\n', b'*0\r\nPING\r\n',
  b'*-9223372036854775808\r\nPING\r\n', b'*-9223372036854775809\r\nPING\r\n', b'*1\r\n$-1\r\n', b'*1\r\n$\r\n',
  b'*1\r\n$536870913\r\n', b'*1\r\n:1\r\n', b'*1\r\n\r\r\n', b'*1\r\n\xff3\r\n', b'*1\r\n\n3\r\n', b'*1\rX$4\rYPING\r\n',
  b'PING "a\r\n', b"PING 'a'b\r\n", b'PING "a\\x41\\n"\r\n', b"PING 'a\\'b'\r\n", b'PING "a"b\r\n', b'\r\n\r\nPING\r\n', b'   \r\n',
  b'PING a\x0bb\r\n', b'PING \x0ba\r\n', b'*2147483648\r\n', b'*1\r\n$4\r\nP\x00NG\r\n', b'*1\x00\r\n$4\r\nPING\r\n',
  b'PING\nPING\rPING\n', b'\n', b'\r\r\n', b'*1\r\n$4\r\nPING\r', b'"PING"\r\n', b'PI"NG"\r\n', b'"" PING\r\n',
  b'x' * 70000, b'x' * 65536 + b'\n', b'x' * 65535 + b'\n', b'*' + b'1' * 70000, b'*1\r\n$' + b'1' * 70000,
  b'\x00PING\r\n', b'*1\r\n$4\r\nPING\r\n' * 3 + b'$4\r\n',
]

def rand_case():
    kinds = [b'PING', b'GET', b'SET', b'EXISTS', b'DEL', b'MGET', b'ECHO', b'SELECT', b'CLIENT', b'CONFIG', b'foo', b'AUTH', b'set', b'Get']
    words = ([b'pw', b'default'] if password else []) + [b'k', b'v', b'NX', b'XX', b'EX', b'PX', b'GET', b'KEEPTTL', b'EXAT', b'10', b'-1', b'0', b'x y', b'', b'\x00', b'SETNAME', b'GET', b'sav', b'"', b"'", b'\\x4', b'\r\n']
    out = b''
    for _ in range(rng.randint(1, 5)):
        args = [rng.choice(kinds)] + [rng.choice(words) for _ in range(rng.randint(0, 4))]
        if rng.random() < 0.6: out += mb(*args)
        else: out += b' '.join(args) + rng.choice([b'\r\n', b'\n'])
    b = bytearray(out)
    for _ in range(rng.randint(0, 3)):
        op = rng.random()
        if not b: break
        i = rng.randrange(len(b))
        if op < 0.4: b[i] = rng.randrange(256)
        elif op < 0.7: del b[i]
        else: b.insert(i, rng.choice(b'*$\r\n0123456789-"\' \x00'))
    return bytes(b)

AUTH_FIXED = [
  b'QUIT\r\n', b'POST\r\nPING\r\n', b'PING\r\n', b'foo\r\n', b'GET\r\n', b'GET k\r\n', b'CLIENT FOO\r\n', b'CLIENT SETNAME x\r\n',
  b'HELLO\r\n', b'HELLO 2\r\n', b'HELLO 4\r\n', b'HELLO x\r\n', b'HELLO 2 AUTH default bad\r\n', b'HELLO 2 AUTH nobody pw\r\n', b'HELLO 2 FOO\r\n',
  b'HELLO 2 AUTH default pw SETNAME "a b"\r\nGET k\r\n', b'HELLO 2 AUTH default pw SETNAME ab\r\nCLIENT GETNAME\r\n',
  b'AUTH pw\r\nGET k\r\n', b'AUTH default pw\r\nSET k v\r\nGET k\r\n', b'AUTH x\r\nGET k\r\n', b'AUTH nobody pw\r\n', b'AUTH a b c\r\n',
  b'ECHO x\r\n', b'SELECT 0\r\n', b'INFO\r\n', b'CONFIG GET save\r\n', b'COMMAND DOCS\r\n', b'*11\r\n', b'*10\r\n$16385\r\n', b'*10\r\n$16384\r\n',
  b'AUTH pw\r\n*11\r\n$3\r\nDEL\r\n', b'AUTH pw\r\n*2\r\n$3\r\nGET\r\n$20000\r\n', mb(b'AUTH', b'pw') + mb(b'SET', b'k', b'v' * 20000) + mb(b'EXISTS', b'k', b'k'),
  b'*11\r\n$3\r\nfoo\r\n', b'AUTH bad\r\n*11\r\n',
]
cases = (AUTH_FIXED if password else FIXED) + [rand_case() for _ in range(nrand)]
proc = subprocess.run(['npx', 'tsx', '--conditions=tw-source', 'libs/engine-protocols/tools/local-replies.ts'] + ([password] if password else []),
                      input='\n'.join(c.hex() for c in cases) + '\n', capture_output=True, text=True, check=True)
ours = [json.loads(l) for l in proc.stdout.splitlines() if l.strip()]
assert len(ours) == len(cases), (len(ours), len(cases), proc.stderr[-2000:])
bad = 0
record = []
for case, mine in zip(cases, ours):
    r_out, r_closed = redis(case)
    m_out, m_closed = bytes.fromhex(mine['out']), mine['closed']
    # HELLO's id is the connection id: compare it masked.
    if r_out == m_out and r_closed == m_closed and len(case) <= 4096:
        record.append({'input': case.hex(), 'output': r_out.hex(), 'closed': r_closed})
    if r_out != m_out or r_closed != m_closed:
        import re
        norm = lambda x: re.sub(rb'\$2\r\nid\r\n:\d+\r\n', b'ID', x)
        if norm(r_out) == norm(m_out) and r_closed == m_closed:
            if len(case) <= 4096: record.append({'input': case.hex(), 'output': r_out.hex(), 'closed': r_closed})
            continue
        bad += 1
        print('DIFF input=%r\n  redis=%r closed=%s\n  ours =%r closed=%s' % (case[:300], r_out[:600], r_closed, m_out[:600], m_closed))
print('%d cases, %d differences' % (len(cases), bad))
if len(sys.argv) > 4:
    # Golden file for test/redis-golden.test.ts: what redis-server itself answered, for the cases
    # this library matched (inputs up to 4 KiB; the few known divergences are left out).
    with open(sys.argv[4], 'w') as f:
        json.dump({'redis': subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.strip(), 'cases': record}, f, indent=0)
        f.write('\n')
sys.exit(1 if bad else 0)
