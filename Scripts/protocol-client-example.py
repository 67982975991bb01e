#!/usr/bin/env python3
"""A client for the VPP License Server wire protocol, version 1.

Written from Protos/README.md and the .proto files under Protos/ alone, without
reading the server's code, to show that the document is enough to write a
client. Standard library only: the few protobuf messages it needs are encoded
and decoded by the small wire-format codec below.

    protocol-client-example.py [ping]        Hello, then pipelined Ping + WhoAmI calls and a keep-alive Ping
    protocol-client-example.py raw-method --method /vpp.v1.SystemService/Ping --request-hex 0a026869

Every result is printed as one line of JSON. Exit codes: 0 success, 2 connection or
protocol error, 3 authentication refused, 4 a call failed.
"""
import argparse
import json
import os
import socket
import struct
import sys

# gRPC's status codes, numbered as `StatusCode` in vpp/rpc/v1/rpc.proto.
STATUS_NAMES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
                "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"]
OK, UNAVAILABLE, UNAUTHENTICATED = 0, 14, 16
PROTOCOL_VERSION = 1
CLIENT_NAME = "protocol-client-example.py/1"
MAX_INBOUND_FRAME = 64 << 20  # a sanity bound on frames from the server
MASK64 = (1 << 64) - 1


def status_name(code):
    return STATUS_NAMES[code] if 0 <= code < len(STATUS_NAMES) else "CODE_%d" % code


# ---- Protobuf wire format ------------------------------------------------------------------------------
# A schema maps a field number to (name, type, repeated). A type is a scalar name or a nested schema (dict).

def F(name, typ, repeated=False):
    return (name, typ, repeated)


KEY_VALUE = {1: F("key", "string"), 2: F("value", "string")}
ERROR_DETAIL = {1: F("reason", "string"), 2: F("field", "string"), 3: F("metadata", KEY_VALUE, True)}
STATUS = {1: F("code", "enum"), 2: F("message", "string"), 3: F("details", ERROR_DETAIL, True)}
HELLO = {1: F("api_key", "string"), 2: F("client_name", "string"), 3: F("protocol_version", "uint32")}
CALL = {1: F("call_id", "uint64"), 2: F("method", "string"), 3: F("timeout_ms", "uint64"),
        4: F("metadata", KEY_VALUE, True), 5: F("request", "bytes")}
CANCEL = {1: F("call_id", "uint64")}
PING = {1: F("nonce", "uint64")}
CLIENT_FRAME = {1: F("hello", HELLO), 2: F("call", CALL), 3: F("cancel", CANCEL), 4: F("ping", PING)}
WELCOME = {1: F("principal_kind", "string"), 2: F("tenant_id", "string"), 3: F("key_id", "string"),
           4: F("server_version", "string"), 5: F("protocol_version", "uint32"),
           6: F("max_frame_bytes", "uint32"), 7: F("max_calls_in_flight", "uint32")}
REPLY = {1: F("call_id", "uint64"), 2: F("message", {1: F("data", "bytes")}), 3: F("status", STATUS)}
GO_AWAY = {1: F("status", STATUS), 2: F("last_call_id", "uint64")}
SERVER_FRAME = {1: F("welcome", WELCOME), 2: F("reply", REPLY), 3: F("pong", PING), 4: F("go_away", GO_AWAY)}
TIMESTAMP = {1: F("seconds", "int64"), 2: F("nanos", "int32")}
PING_REQUEST = {1: F("payload", "bytes")}
PING_RESPONSE = {1: F("payload", "bytes"), 2: F("server_time", TIMESTAMP)}
WHO_AM_I_RESPONSE = {1: F("principal_kind", "string"), 2: F("tenant_id", "string"), 3: F("key_id", "string"),
                     4: F("key_name", "string")}


class ProtocolError(Exception):
    pass


def encode_varint(value):
    value &= MASK64  # negative int32/int64 values are sent as 10-byte two's complement
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def read_varint(buf, pos):
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ProtocolError("truncated or overlong varint")
        byte = buf[pos]
        result |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return result & MASK64, pos


def encode(schema, msg):
    """Encodes a dict; proto3 scalars equal to their default are left out, present sub-messages never are."""
    out = bytearray()
    for number, (name, typ, repeated) in sorted(schema.items()):
        value = msg.get(name)
        for v in (value or []) if repeated else ([] if value is None else [value]):
            if isinstance(typ, dict):
                body = encode(typ, v)
            elif typ in ("string", "bytes"):
                body = v.encode("utf-8") if typ == "string" else bytes(v)
                if not body and not repeated:
                    continue
            else:
                if not v and not repeated:
                    continue
                out += encode_varint(number << 3 | 0) + encode_varint(int(v))
                continue
            out += encode_varint(number << 3 | 2) + encode_varint(len(body)) + body
    return bytes(out)


def iter_fields(buf):
    """Yields (field number, wire type, value) for every field of an encoded message."""
    pos = 0
    while pos < len(buf):
        tag, pos = read_varint(buf, pos)
        number, wire_type = tag >> 3, tag & 7
        if number == 0:
            raise ProtocolError("field number 0")
        if wire_type == 0:
            value, pos = read_varint(buf, pos)
        elif wire_type in (1, 2, 5):  # fixed64, length-delimited, fixed32
            if wire_type == 2:
                size, pos = read_varint(buf, pos)
            else:
                size = 8 if wire_type == 1 else 4
            if pos + size > len(buf):
                raise ProtocolError("truncated field %d" % number)
            value, pos = bytes(buf[pos:pos + size]), pos + size
        else:
            raise ProtocolError("unsupported wire type %d (field %d)" % (wire_type, number))
        yield number, wire_type, value


def scalar(typ, raw):
    if typ in ("int64", "int32", "enum"):
        value = raw - (1 << 64) if raw >> 63 else raw
        return value if typ == "int64" else ((value + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
    if typ == "bool":
        return raw != 0
    return raw & 0xFFFFFFFF if typ == "uint32" else raw


def decode(schema, buf):
    """Decodes into a dict with every field: scalars default, repeated as lists, absent sub-messages as None.
    Unknown fields are skipped; repeated occurrences of a singular sub-message are merged, as protobuf does."""
    msg, parts = {}, {}
    for name, typ, repeated in schema.values():
        msg[name] = [] if repeated else (None if isinstance(typ, dict) else
                                         "" if typ == "string" else b"" if typ == "bytes" else scalar(typ, 0))
    for number, wire_type, value in iter_fields(buf):
        if number not in schema:
            continue  # unknown field: skipped
        name, typ, repeated = schema[number]
        if isinstance(typ, dict) or typ in ("string", "bytes"):
            if wire_type != 2:
                raise ProtocolError("field %s: wire type %d, expected 2" % (name, wire_type))
            if isinstance(typ, dict) and not repeated:
                parts.setdefault(name, []).append(value)
                continue
            value = decode(typ, value) if isinstance(typ, dict) else value.decode("utf-8") if typ == "string" else value
        elif wire_type == 2 and repeated:  # packed repeated varints
            pos, packed = 0, []
            while pos < len(value):
                raw, pos = read_varint(value, pos)
                packed.append(scalar(typ, raw))
            msg[name].extend(packed)
            continue
        elif wire_type != 0:
            raise ProtocolError("field %s: wire type %d, expected 0" % (name, wire_type))
        else:
            value = scalar(typ, value)
        if repeated:
            msg[name].append(value)
        else:
            msg[name] = value
    for name, chunks in parts.items():
        sub_schema = next(t for n, t, _ in schema.values() if n == name)
        msg[name] = decode(sub_schema, b"".join(chunks))
    return msg


# ---- Connection ----------------------------------------------------------------------------------------

class GoAwayReceived(Exception):
    def __init__(self, go_away):
        super().__init__(go_away["status"]["message"])
        self.go_away = go_away


class Connection:
    def __init__(self, host, port, timeout_s):
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.settimeout(timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, frame):
        body = encode(CLIENT_FRAME, frame)
        self.sock.sendall(struct.pack(">I", len(body)) + body)

    def recv(self):
        (size,) = struct.unpack(">I", self._read_exactly(4))
        if size > MAX_INBOUND_FRAME:
            raise ProtocolError("server frame of %d bytes" % size)
        frame = decode(SERVER_FRAME, self._read_exactly(size))
        if frame["go_away"] is not None and frame["go_away"]["status"] is None:
            frame["go_away"]["status"] = {"code": OK, "message": "", "details": []}
        return frame

    def _read_exactly(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed by the server")
            buf += chunk
        return bytes(buf)

    def hello(self, api_key):
        """Authenticates; returns the Welcome or raises GoAwayReceived."""
        self.send({"hello": {"api_key": api_key, "client_name": CLIENT_NAME, "protocol_version": PROTOCOL_VERSION}})
        frame = self.recv()
        if frame["go_away"] is not None:
            raise GoAwayReceived(frame["go_away"])
        if frame["welcome"] is None:
            raise ProtocolError("expected a Welcome or a GoAway as the first frame")
        return frame["welcome"]

    def exchange(self, calls, timeout_ms, ping_nonce=None):
        """Sends every call at once (call id -> (method, request bytes)) and an optional keep-alive Ping, then
        reads frames until every call has its final status and the Pong has come. Returns
        call id -> {"status": Status, "messages": [response bytes, ...]}."""
        for call_id, (method, request) in calls.items():
            self.send({"call": {"call_id": call_id, "method": method, "timeout_ms": timeout_ms, "request": request}})
        if ping_nonce is not None:
            self.send({"ping": {"nonce": ping_nonce}})
        results = {call_id: {"status": None, "messages": []} for call_id in calls}
        pending, awaiting_pong = set(calls), ping_nonce is not None
        while pending or awaiting_pong:
            frame = self.recv()
            if frame["reply"] is not None:
                reply = frame["reply"]
                call_id = reply["call_id"]
                if call_id not in pending:
                    raise ProtocolError("Reply for call id %d, which is not in flight" % call_id)
                if reply["message"] is None and reply["status"] is None:
                    raise ProtocolError("Reply for call id %d with neither message nor status" % call_id)
                if reply["message"] is not None:
                    results[call_id]["messages"].append(reply["message"]["data"])
                if reply["status"] is not None:  # present even when empty (code OK): always the call's last frame
                    results[call_id]["status"] = reply["status"]
                    pending.discard(call_id)
            elif frame["pong"] is not None:
                if not awaiting_pong or frame["pong"]["nonce"] != ping_nonce:
                    raise ProtocolError("unexpected Pong nonce %d" % frame["pong"]["nonce"])
                emit({"pong": {"nonce": ping_nonce, "matched": True}})
                awaiting_pong = False
            elif frame["go_away"] is not None:
                go_away = frame["go_away"]
                if go_away["status"]["code"] != UNAVAILABLE:
                    raise GoAwayReceived(go_away)
                emit({"go_away": describe_status(go_away["status"], last_call_id=go_away["last_call_id"])})
                # Draining: ids up to last_call_id will still be answered; those above were not run.
                for call_id in [c for c in pending if c > go_away["last_call_id"]]:
                    results[call_id]["status"] = {"code": UNAVAILABLE, "details": [],
                                                  "message": "not run: the server is draining (GoAway)"}
                    pending.discard(call_id)
                awaiting_pong = False
            else:
                raise ProtocolError("unexpected ServerFrame without a known kind")
        return results


# ---- Command line --------------------------------------------------------------------------------------

def emit(obj):
    print(json.dumps(obj, sort_keys=False), flush=True)


def describe_status(status, **extra):
    out = {"status": status_name(status["code"]), "message": status["message"]}
    if status["details"]:
        out["details"] = status["details"]
    out.update(extra)
    return out


def run_ping(conn, welcome, timeout_ms):
    payload = b"hi\x00\xff" + os.urandom(4)
    calls = {1: ("/vpp.v1.SystemService/Ping", encode(PING_REQUEST, {"payload": payload})),
             2: ("/vpp.v1.SystemService/WhoAmI", b"")}
    results = conn.exchange(calls, timeout_ms, ping_nonce=int.from_bytes(os.urandom(8), "big") | 1)
    failed = False
    for call_id, label in ((1, "Ping"), (2, "WhoAmI")):
        status, messages = results[call_id]["status"], results[call_id]["messages"]
        if status["code"] != OK:
            emit(dict({"call": label}, **describe_status(status)))
            failed = True
            continue
        if len(messages) != 1:
            raise ProtocolError("%s: unary call answered OK with %d messages" % (label, len(messages)))
        if label == "Ping":
            response = decode(PING_RESPONSE, messages[0])
            emit({"call": "Ping", "status": "OK", "payload_echoed": response["payload"] == payload,
                  "server_time": response["server_time"]})
            failed |= response["payload"] != payload
        else:
            who = decode(WHO_AM_I_RESPONSE, messages[0])
            same = all(who[k] == welcome[k] for k in ("principal_kind", "tenant_id", "key_id"))
            emit(dict({"call": "WhoAmI", "status": "OK"}, **who, matches_welcome=same))
            failed |= not same
    return 4 if failed else 0


def run_raw(conn, method, request, timeout_ms):
    result = conn.exchange({1: (method, request)}, timeout_ms)[1]
    emit(dict({"call": method}, **describe_status(result["status"]),
              responses=[m.hex() for m in result["messages"]]))
    return 0 if result["status"]["code"] == OK else 4


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", choices=["ping", "raw-method"], default="ping")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7443)
    parser.add_argument("--api-key", default=os.environ.get("VPP_API_KEY", ""))
    parser.add_argument("--timeout-ms", type=int, default=5000, help="call deadline (0: none); also bounds reads")
    parser.add_argument("--method", help="raw-method: the full method name, e.g. /vpp.v1.SystemService/Ping")
    parser.add_argument("--request-hex", default="", help="raw-method: the encoded request message, in hex")
    args = parser.parse_args()
    if args.mode == "raw-method" and not args.method:
        parser.error("raw-method needs --method")
    try:
        request = bytes.fromhex(args.request_hex)
    except ValueError:
        parser.error("--request-hex is not hex")
    try:
        conn = Connection(args.host, args.port, (args.timeout_ms or 30000) / 1000 + 2)
        welcome = conn.hello(args.api_key)
        emit({"welcome": welcome})
        if args.mode == "ping":
            return run_ping(conn, welcome, args.timeout_ms)
        return run_raw(conn, args.method, request, args.timeout_ms)
    except GoAwayReceived as e:
        go_away = e.go_away
        emit({"go_away": describe_status(go_away["status"], last_call_id=go_away["last_call_id"])})
        return 3 if go_away["status"]["code"] == UNAUTHENTICATED else 2
    except (OSError, ProtocolError, UnicodeDecodeError) as e:  # socket.timeout is an OSError
        emit({"error": "%s: %s" % (type(e).__name__, e)})
        return 2


if __name__ == "__main__":
    sys.exit(main())
