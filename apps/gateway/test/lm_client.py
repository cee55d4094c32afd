"""A Python client of LMCache's lm:// protocol, written from the struct layouts only.

Request: struct "iiiiiiiii150s" (command, length, fmt, dtype, location, shape0..3, key padded
with spaces), then `length` payload bytes for PUT. Reply: struct "iiiiiiiii" (code, length, fmt,
dtype, shape0..3, location), then `length` bytes for a GET hit. PUT=1 (no reply), GET=2, EXIST=3,
HEALTH=5; code 200 or 400. Usage: python3 lm_client.py HOST PORT; prints OK on success.
"""
import socket
import struct
import sys

REQ = struct.Struct("iiiiiiiii150s")
REP = struct.Struct("iiiiiiiii")


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise RuntimeError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def request(sock, command, key, payload=b"", fmt=0, dtype=0, location=0, shape=(0, 0, 0, 0)):
    header = REQ.pack(command, len(payload), fmt, dtype, location, *shape, key.encode().ljust(150, b" "))
    sock.sendall(header + payload)


def reply(sock):
    code, length, fmt, dtype, s0, s1, s2, s3, location = REP.unpack(recv_exact(sock, REP.size))
    payload = recv_exact(sock, length) if code == 200 and length > 0 else b""
    return code, (fmt, dtype, (s0, s1, s2, s3), location), payload


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    with socket.create_connection((host, port), timeout=20) as sock:
        request(sock, 5, "health")
        assert reply(sock)[0] == 200, "HEALTH"
        payload = bytes((i * 7 + 3) % 256 for i in range(300_000))
        for chunk in range(4):
            key = "vllm@py-model@1@%d@cafe%04d" % (chunk, chunk)
            request(sock, 1, key, payload[chunk:], fmt=1, dtype=3, location=1, shape=(2, 4, 16, chunk + 1))
        for chunk in range(4):
            key = "vllm@py-model@1@%d@cafe%04d" % (chunk, chunk)
            request(sock, 3, key)
            assert reply(sock)[0] == 200, "EXIST " + key
            request(sock, 2, key)
            code, meta, got = reply(sock)
            assert code == 200, "GET " + key
            assert meta == (1, 3, (2, 4, 16, chunk + 1), 1), "meta %r" % (meta,)
            assert got == payload[chunk:], "payload of " + key
        request(sock, 3, "vllm@py-model@1@9@absent")
        assert reply(sock)[0] == 400, "EXIST miss"
        request(sock, 2, "vllm@py-model@1@9@absent")
        assert reply(sock)[0] == 400, "GET miss"
    print("OK")


if __name__ == "__main__":
    main()
