#!/usr/bin/env python3
"""faulty_room.py - a stand-in for two sparkd instances' chat room that
misbehaves on purpose, for bench/spark_load_check.sh: it checks that
spark_load's clients (its own and lws's) read every frame shape a server may
send and that its accounting notices what went wrong.

Members are numbered in the order they are upgraded (spark_load with
--concurrency 1 connects them in its own order: 0, the sender, on A, then B,
A, ...). Every chat frame received is sent to every member, except that
  - member 3 does not get message 15 (one missing delivery),
  - member 2 gets message 17 twice (one duplicate),
  - message 5 comes in three fragments with a ping between two of them,
  - member 1 gets message 12 a byte at a time (partial reads),
and, besides: each member's presence state comes in two fragments with an
empty ping between them; member 0 gets a 70,000-byte message (a 64-bit
length), member 1 one of 2.1 MB in two fragments (too large to parse:
counted only); member 5 is closed with code 4001 before it is live.

Listens on two free loopback ports, prints "ports A B", logs the upgrades
and the pongs it receives to the file named by its argument, and exits when
stdin closes."""
import base64
import hashlib
import json
import socket
import struct
import sys
import threading
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
lock = threading.Lock()
members = []  # sockets, in the order they were upgraded
seq = 0


def log(*words):
    with open(sys.argv[1], "a") as f:
        print(*words, file=f)


def frame(op, payload, fin=True):
    n = len(payload)
    b0 = (0x80 if fin else 0) | op
    if n < 126:
        head = struct.pack("!BB", b0, n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 126, n)
    else:
        head = struct.pack("!BBQ", b0, 127, n)
    return head + payload


def read_exact(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b


def read_frame(s):
    b0, b1 = read_exact(s, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", read_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exact(s, 8))[0]
    mask = read_exact(s, 4) if b1 & 0x80 else b"\0\0\0\0"
    p = bytearray(read_exact(s, n))
    for i in range(n):
        p[i] ^= mask[i & 3]
    return b0 & 0x0F, bytes(p)


def deliver(i, s, mid, text):
    msg = json.dumps({"seq": seq, "type": "chat", "message": text}).encode()
    if mid == 15 and i == 3:
        return
    if mid == 5:
        s.sendall(frame(1, msg[:20], False) + frame(9, b"hi") + frame(0, msg[20:40], False) +
                  frame(0, msg[40:]))
        return
    data = frame(1, msg)
    if mid == 12 and i == 1:
        for k in range(len(data)):
            s.sendall(data[k:k + 1])
            time.sleep(0.001)
        return
    s.sendall(data)
    if mid == 17 and i == 2:
        s.sendall(data)


def serve(s):
    global seq
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = b""
    while b"\r\n\r\n" not in req:
        d = s.recv(4096)
        if not d:
            return
        req += d
    key = [l.split(b":", 1)[1].strip() for l in req.split(b"\r\n")
           if l.lower().startswith(b"sec-websocket-key:")][0]
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    with lock:
        i = len(members)
        members.append(s)
        log("upgrade", i, "authorization" if b"authorization: Bearer " in req else "anonymous")
        s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        if i == 5:
            s.sendall(frame(8, struct.pack("!H", 4001) + b"bye"))
            return
        state = b'{"type":"presence_state","members":[' + b'"m",' * 20 + b'"m"]}'
        s.sendall(frame(1, state[:30], False) + frame(9, b"") + frame(0, state[30:]))
        if i == 0:
            s.sendall(frame(1, b'{"type":"big","x":"' + b"y" * 70000 + b'"}'))
        if i == 1:
            s.sendall(frame(1, b"z" * 1500000, False) + frame(0, b"z" * 600000))
    while True:
        try:
            op, p = read_frame(s)
        except (EOFError, OSError):
            return
        if op == 8:
            return
        if op == 10:
            log("pong from", i, p.decode())
        elif op == 1 and b"bench#" in p:
            text = json.loads(p)["message"]
            mid = int(text.split("#")[1])
            with lock:
                seq += 1
                for j, m in enumerate(members):
                    if j != 5:
                        deliver(j, m, mid, text)


def listen(l):
    while True:
        s, _ = l.accept()
        threading.Thread(target=serve, args=(s,), daemon=True).start()


ports = []
for _ in range(2):
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(64)
    ports.append(l.getsockname()[1])
    threading.Thread(target=listen, args=(l,), daemon=True).start()
print("ports", *ports, flush=True)
sys.stdin.read()
