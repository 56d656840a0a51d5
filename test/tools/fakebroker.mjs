// A scripted fake MQTT 3.1.1 broker for what a real broker will not do:
// malformed packets, protocol violations, faults at chosen points. Each
// client connection gets a connection object and runs a script; the default
// script answers like a minimal broker. Also: catalogues of hostile
// server -> client byte sequences (malformedCases) and seeded random
// mutations of valid server -> client packets (mutations).
// Everything listens on 127.0.0.1 only.

import { EventEmitter } from "node:events"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import net from "node:net"
import { dirname, join } from "node:path"
import util from "node:util"
import mqttPacket from "mqtt-packet"
import { topicMatches } from "./brokers.mjs"
import { rng as makeRng, waitForNth } from "./faultproxy.mjs"

const require = createRequire(import.meta.url)

// ---------------------------------------------------------------- broker

/**
 * @typedef {object} FakeConn
 * @property {number} id 1 for the first connection, then 2, ...
 * @property {net.Socket} socket
 * @property {any[]} received parsed packets (mqtt-packet objects), in order
 * @property {{ message: string, afterPackets: number }[]} parseErrors parse errors of
 *   mqtt-packet (afterPackets: received.length when it happened); after an error the
 *   parser drops what it had buffered and goes on with the next bytes
 * @property {(cmd: string, ms?: number) => Promise<any>} waitFor resolves with the next
 *   packet of that cmd ("connect", "publish", ...) not yet returned by waitFor for that
 *   cmd (so one that already arrived counts); rejects on timeout (default 5000 ms) or
 *   when the connection closes first
 * @property {(packet: Buffer|object) => Promise<void>} send writes a Buffer as is or an
 *   mqtt-packet object (generated with the connection's protocol version); resolves when
 *   written (or when the socket is already gone)
 * @property {(bytes: Buffer|number[]) => Promise<void>} sendRaw writes bytes as is
 * @property {() => void} close destroys the socket
 * @property {() => void} end half-closes (FIN) the socket
 * @property {Promise<void>} closed resolves when the socket has closed
 * @property {boolean} isClosed
 * @property {number} protocolVersion 4, or what the client's CONNECT asked for
 * @property {Promise<void>} script settles when the script is done (errors are recorded
 *   in scriptError and logged, never thrown)
 * @property {any} scriptError
 * @property {(event: "packet"|"parseError"|"close", fn: Function) => void} on
 */

/**
 * @typedef {object} FakeBroker
 * @property {number} port
 * @property {FakeConn[]} connections all connections in the order accepted
 * @property {(n?: number, ms?: number) => Promise<FakeConn>} waitForConnection the n-th
 *   connection (1-based, default: the next), also if it already arrived
 * @property {() => Promise<void>} close destroys all sockets and closes the server
 */

/**
 * Starts a fake broker on 127.0.0.1.
 * @param {{ port?: number, onConnect?: (conn: FakeConn) => any,
 *   protocolVersion?: number }} [opts] onConnect: async script run for each
 *   connection, called before any byte is read (default: defaultScript)
 * @returns {Promise<FakeBroker>}
 */
export async function startFakeBroker({
    port = 0,
    onConnect = defaultScript,
    protocolVersion = 4,
} = {}) {
    const connections = []
    const sockets = new Set()
    const events = new EventEmitter()
    let closing = null

    const server = net.createServer(socket => {
        if (closing) return socket.destroy()
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
        socket.setNoDelay(true)
        const conn = makeConn(socket, connections.length + 1, protocolVersion)
        connections.push(conn)
        conn.script = Promise.resolve()
            .then(() => onConnect(conn))
            .then(
                () => {},
                e => {
                    conn.scriptError = e
                    if (!closing)
                        console.error(
                            `fakebroker: script of connection ${conn.id} failed:`,
                            e
                        )
                }
            )
        events.emit("connection", conn)
    })
    server.on("error", () => {})
    await new Promise((resolve, reject) => {
        server.once("error", reject)
        server.listen(port, "127.0.0.1", () => {
            server.off("error", reject)
            resolve()
        })
    })

    return {
        port: server.address().port,
        connections,
        waitForConnection(n = connections.length + 1, ms = 5000) {
            return waitForNth(
                events,
                "connection",
                connections,
                n,
                ms,
                "fake broker connection"
            )
        },
        close() {
            if (!closing) {
                closing = new Promise(resolve => {
                    server.close(() => resolve())
                    for (const s of [...sockets]) s.destroy()
                })
            }
            return closing
        },
    }
}

function makeConn(socket, id, protocolVersion) {
    const emitter = new EventEmitter()
    const received = []
    const parseErrors = []
    const cursors = new Map() // cmd -> index in received of the next candidate
    const waiters = new Set()
    let isClosed = false
    let resolveClosed
    const closed = new Promise(r => (resolveClosed = r))

    const parser = mqttPacket.parser({ protocolVersion })
    parser.on("packet", packet => {
        if (packet.cmd === "connect" && packet.protocolVersion)
            conn.protocolVersion = packet.protocolVersion
        received.push(packet)
        for (const w of [...waiters]) w.check()
        emitter.emit("packet", packet)
    })
    parser.on("error", err => {
        const e = { message: err.message, afterPackets: received.length }
        parseErrors.push(e)
        emitter.emit("parseError", e)
    })
    socket.on("data", buf => parser.parse(buf))
    socket.on("error", () => {})
    socket.on("close", () => {
        isClosed = true
        for (const w of [...waiters]) w.fail("connection closed")
        resolveClosed()
        emitter.emit("close")
    })

    const write = bytes =>
        new Promise(resolve => {
            if (socket.destroyed || !socket.writable) return resolve()
            socket.write(bytes, () => resolve())
        })

    /** @type {FakeConn} */
    const conn = {
        id,
        socket,
        received,
        parseErrors,
        protocolVersion,
        script: Promise.resolve(),
        scriptError: null,
        closed,
        get isClosed() {
            return isClosed
        },
        on(event, fn) {
            emitter.on(event, fn)
            return conn
        },
        off(event, fn) {
            emitter.off(event, fn)
            return conn
        },
        waitFor(cmd, ms = 5000) {
            return new Promise((resolve, reject) => {
                const take = () => {
                    for (
                        let i = cursors.get(cmd) || 0;
                        i < received.length;
                        i++
                    )
                        if (received[i].cmd === cmd) {
                            cursors.set(cmd, i + 1)
                            return received[i]
                        }
                    cursors.set(cmd, received.length)
                    return null
                }
                const first = take()
                if (first) return resolve(first)
                const what = `waiting for ${cmd} on fake broker connection ${id}`
                const seen = () =>
                    received
                        .slice(-10)
                        .map(p => p.cmd)
                        .join(", ")
                if (isClosed)
                    return reject(
                        new Error(
                            `connection closed, ${what}; received: ${seen()}`
                        )
                    )
                const w = {
                    check() {
                        const p = take()
                        if (p) {
                            cleanup()
                            resolve(p)
                        }
                    },
                    fail(why) {
                        cleanup()
                        reject(
                            new Error(`${why}, ${what}; received: ${seen()}`)
                        )
                    },
                }
                const timer = setTimeout(
                    () => w.fail(`timed out after ${ms} ms`),
                    ms
                )
                const cleanup = () => {
                    clearTimeout(timer)
                    waiters.delete(w)
                }
                waiters.add(w)
            })
        },
        send(packet) {
            if (Buffer.isBuffer(packet)) return write(packet)
            return write(
                mqttPacket.generate(packet, {
                    protocolVersion: conn.protocolVersion,
                })
            )
        },
        sendRaw(bytes) {
            return write(Buffer.from(bytes))
        },
        close() {
            socket.destroy()
        },
        end() {
            socket.end()
        },
    }
    return conn
}

/**
 * Makes conn answer like a minimal broker, packet by packet as they arrive:
 * CONNECT -> CONNACK (opts.connack), SUBSCRIBE -> SUBACK granting the
 * requested QoS, UNSUBSCRIBE -> UNSUBACK, PINGREQ -> PINGRESP, PUBLISH QoS 1
 * -> PUBACK, QoS 2 -> PUBREC, PUBREL -> PUBCOMP, PUBREC -> PUBREL,
 * DISCONNECT -> close. With echo, a PUBLISH is also sent back to the same
 * client when one of its subscriptions matches (QoS = min of both, new
 * packet ids from 1).
 * @param {FakeConn} conn
 * @param {{ connack?: { returnCode?: number, sessionPresent?: boolean }, echo?: boolean }} [opts]
 * @returns {() => void} detaches the responder
 */
export function autoRespond(conn, { connack = {}, echo = false } = {}) {
    const subs = new Map() // filter -> qos
    let nextId = 1
    const onPacket = p => {
        switch (p.cmd) {
            case "connect":
                conn.send({
                    cmd: "connack",
                    returnCode: 0,
                    sessionPresent: false,
                    ...connack,
                })
                break
            case "subscribe":
                for (const s of p.subscriptions) subs.set(s.topic, s.qos)
                conn.send({
                    cmd: "suback",
                    messageId: p.messageId,
                    granted: p.subscriptions.map(s => s.qos),
                })
                break
            case "unsubscribe":
                for (const t of p.unsubscriptions) subs.delete(t)
                conn.send({ cmd: "unsuback", messageId: p.messageId })
                break
            case "pingreq":
                conn.send({ cmd: "pingresp" })
                break
            case "publish":
                if (p.qos === 1)
                    conn.send({ cmd: "puback", messageId: p.messageId })
                else if (p.qos === 2)
                    conn.send({ cmd: "pubrec", messageId: p.messageId })
                if (echo) {
                    let qos = -1
                    for (const [f, q] of subs)
                        if (topicMatches(f, p.topic)) qos = Math.max(qos, q)
                    if (qos >= 0) {
                        qos = Math.min(qos, p.qos)
                        const out = {
                            cmd: "publish",
                            topic: p.topic,
                            payload: p.payload,
                            qos,
                            retain: false,
                            dup: false,
                        }
                        if (qos > 0) {
                            out.messageId = nextId
                            nextId = (nextId % 65535) + 1
                        }
                        conn.send(out)
                    }
                }
                break
            case "pubrel":
                conn.send({ cmd: "pubcomp", messageId: p.messageId })
                break
            case "pubrec":
                conn.send({ cmd: "pubrel", messageId: p.messageId })
                break
            case "disconnect":
                conn.close()
                break
        }
    }
    conn.on("packet", onPacket)
    return () => conn.off("packet", onPacket)
}

/**
 * The default per-connection script: autoRespond(conn) until the
 * connection closes.
 * @param {FakeConn} conn
 * @returns {Promise<void>}
 */
export async function defaultScript(conn) {
    autoRespond(conn)
    await conn.closed
}

// ---------------------------------------------------------------- byte helpers

/** Variable byte integer (remaining length) encoding, any value >= 0. */
function varint(n) {
    const out = []
    do {
        let b = n % 128
        n = Math.floor(n / 128)
        if (n > 0) b |= 0x80
        out.push(b)
    } while (n > 0)
    return out
}

/** A packet: first byte, remaining length of body, body. */
function pkt(first, ...body) {
    const b = Buffer.concat(body.map(x => Buffer.from(x)))
    return Buffer.concat([Buffer.from([first, ...varint(b.length)]), b])
}

/** A length-prefixed string from raw bytes (or a JS string as UTF-8). */
function lstr(s) {
    const b = Buffer.from(s)
    return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b])
}

const u16 = n => [(n >> 8) & 0xff, n & 0xff]

// ---------------------------------------------------------------- malformed cases

let fixtureCache = null

/**
 * The parse-error fixtures of mqtt-packet's own test.js (MQTT 3.1/3.1.1
 * ones only: those whose parser options do not ask for protocol version 5).
 * test.js needs `tape`, which is not installed: it is run in a sandbox with
 * a stub `require('tape')` that registers nothing, and with its helper
 * testParseError rewritten to record its arguments.
 * @returns {{ expected: string, bytes: Buffer, opts: any }[]}
 */
export function mqttPacketParseErrorFixtures() {
    if (fixtureCache) return fixtureCache
    const pkgDir = dirname(require.resolve("mqtt-packet/package.json"))
    const file = join(pkgDir, "test.js")
    let src = readFileSync(file, "utf8")
    const helper =
        /function\s+testParseError\s*\(\s*expected\s*,\s*fixture\s*,\s*opts\s*\)\s*\{/
    if (!helper.test(src))
        throw new Error(
            `${file}: function testParseError (expected, fixture, opts) not found; mqtt-packet changed?`
        )
    src = src.replace(
        helper,
        m => `${m} __record(expected, fixture, opts); return;`
    )
    const recorded = []
    const stubTest = () => {}
    for (const k of ["skip", "only", "onFinish", "onFailure"])
        stubTest[k] = () => {}
    const sandboxRequire = name => {
        if (name === "tape") return stubTest
        if (name === "./" || name === "." || name === "./mqtt")
            return mqttPacket
        if (name === "util") return util
        if (name === "readable-stream")
            return { Writable: function Writable() {} }
        return require(name)
    }
    const run = new Function(
        "require",
        "module",
        "exports",
        "__record",
        "Buffer",
        src
    )
    run(
        sandboxRequire,
        { exports: {} },
        {},
        (expected, fixture, opts) =>
            recorded.push({ expected, bytes: Buffer.from(fixture), opts }),
        Buffer
    )
    fixtureCache = recorded.filter(
        r => !(r.opts && r.opts.protocolVersion === 5)
    )
    return fixtureCache
}

/**
 * @typedef {object} MalformedCase
 * @property {string} name unique
 * @property {Buffer} bytes what the server sends
 * @property {"connack"|"session"} phase "connack": meant to be sent instead of the
 *   CONNACK (as the server's first bytes); "session": after a valid CONNACK
 * @property {"mqtt-packet"|"hand"} source
 * @property {boolean} legal true when a client may legally just ignore it (e.g. a
 *   PUBACK for an unknown packet id); all others are protocol violations
 *   that a client should treat as fatal for the connection
 */

/**
 * Hostile server -> client byte sequences: mqtt-packet's MQTT 3.1.1
 * parse-error fixtures plus hand-written ones (remaining length faults,
 * reserved types and flags, bad PUBLISH fields, bad CONNACK/SUBACK,
 * packet id 0, unexpected packet types, truncated and overlong bodies).
 * Packets that need a packet id of the client use 1 (the first id a
 * client is likely to use).
 * @returns {MalformedCase[]}
 */
export function malformedCases() {
    const cases = []
    const names = new Set()
    const add = (
        name,
        bytes,
        { phase, source = "hand", legal = false } = {}
    ) => {
        let n = name
        for (let i = 2; names.has(n); i++) n = `${name} #${i}`
        names.add(n)
        bytes = Buffer.from(bytes)
        if (!phase) phase = bytes[0] >> 4 === 2 ? "connack" : "session"
        cases.push({ name: n, bytes, phase, source, legal })
    }

    for (const f of mqttPacketParseErrorFixtures())
        add(`mqtt-packet: ${f.expected}`, f.bytes, { source: "mqtt-packet" })

    const pub0 = (first, topic, payload = "x") =>
        pkt(first, lstr(topic), Buffer.from(payload))
    const pubId = (first, topic, id, payload = "x") =>
        pkt(first, lstr(topic), u16(id), Buffer.from(payload))

    // remaining length
    add(
        "remaining length with a fifth byte",
        [0x30, 0xff, 0xff, 0xff, 0xff, 0x01]
    )
    add(
        "PINGRESP remaining length with five bytes",
        [0xd0, 0x80, 0x80, 0x80, 0x80, 0x00]
    )
    add("PUBLISH declaring 1 MB, nothing follows", [0x30, ...varint(1 << 20)])
    add("PUBLISH declaring 1 MB, a few body bytes", [
        0x30,
        ...varint(1 << 20),
        ...lstr("a"),
        0x78,
        0x78,
    ])
    add(
        "PUBLISH of 20481 bytes (remaining length over 20480)",
        pkt(0x30, lstr("t"), Buffer.alloc(20481 - 3, 0x78))
    )
    add(
        "PUBLISH declaring the maximum remaining length",
        [0x30, 0xff, 0xff, 0xff, 0x7f]
    )

    // reserved packet types
    add("reserved packet type 0", [0x00, 0x00])
    add("reserved packet type 0 with a body", [0x00, 0x02, 0x00, 0x01])
    add("reserved packet type 15", [0xf0, 0x00])

    // reserved flags
    add("PUBREL with flags 0", [0x60, 0x02, ...u16(1)])
    add("PUBREL with flags 0xf", [0x6f, 0x02, ...u16(1)])
    add("PUBACK with flags 0x2", [0x42, 0x02, ...u16(1)])
    add("PUBREC with flags 0x1", [0x51, 0x02, ...u16(1)])
    add("PUBCOMP with flags 0x8", [0x78, 0x02, ...u16(1)])
    add("CONNACK with header flags 0x1", [0x21, 0x02, 0x00, 0x00])
    add("SUBACK with flags 0x2", [0x92, 0x03, ...u16(1), 0x00])
    add("UNSUBACK with flags 0x2", [0xb2, 0x02, ...u16(1)])
    add("PINGRESP with flags 0x1", [0xd1, 0x00])
    add(
        "SUBSCRIBE with flags 0 (and from a server)",
        pkt(0x80, u16(1), lstr("a"), [0])
    )

    // PUBLISH fields
    add("PUBLISH with QoS 3", pubId(0x36, "a", 1))
    add("PUBLISH with QoS 3 and DUP", pubId(0x3e, "a", 1))
    add("PUBLISH with DUP and QoS 0", pub0(0x38, "a"))
    add("PUBLISH with topic a/+", pub0(0x30, "a/+"))
    add("PUBLISH with topic a/#", pub0(0x30, "a/#"))
    add("PUBLISH with topic #", pub0(0x30, "#"))
    add("PUBLISH QoS 1 with topic +/b", pubId(0x32, "+/b", 1))
    add("PUBLISH with an empty topic", pub0(0x30, ""))
    add(
        "PUBLISH topic overlong UTF-8 (C0 AF)",
        pub0(0x30, Buffer.from([0x61, 0xc0, 0xaf]))
    )
    add(
        "PUBLISH topic surrogate U+D800 (ED A0 80)",
        pub0(0x30, Buffer.from([0x61, 0xed, 0xa0, 0x80]))
    )
    add(
        "PUBLISH topic with U+0000",
        pub0(0x30, Buffer.from([0x61, 0x00, 0x62]))
    )
    add(
        "PUBLISH topic with a lone continuation byte",
        pub0(0x30, Buffer.from([0x61, 0x80]))
    )
    add(
        "PUBLISH topic with a truncated UTF-8 sequence",
        pub0(0x30, Buffer.from([0x61, 0xe2, 0x82]))
    )
    add("PUBLISH topic with byte FF", pub0(0x30, Buffer.from([0xff, 0x61])))
    add("PUBLISH QoS 1 with packet id 0", pubId(0x32, "a", 0))
    add("PUBLISH QoS 2 with packet id 0", pubId(0x34, "a", 0))
    add("PUBREL with packet id 0", [0x62, 0x02, ...u16(0)])
    add("SUBACK with packet id 0", [0x90, 0x03, ...u16(0), 0x00])

    // CONNACK
    add("CONNACK with reserved flag bit 1", [0x20, 0x02, 0x02, 0x00])
    add("CONNACK with all reserved flag bits", [0x20, 0x02, 0xfe, 0x00])
    add("CONNACK return code 6", [0x20, 0x02, 0x00, 0x06])
    add("CONNACK return code 255", [0x20, 0x02, 0x00, 0xff])
    add("CONNACK session present with return code 5", [0x20, 0x02, 0x01, 0x05])
    add("CONNACK session present with return code 1", [0x20, 0x02, 0x01, 0x01])
    add("CONNACK remaining length 3", [0x20, 0x03, 0x00, 0x00, 0x00])
    add("CONNACK remaining length 1", [0x20, 0x01, 0x00])
    add("CONNACK remaining length 0", [0x20, 0x00])
    add("PUBLISH instead of CONNACK", pub0(0x30, "a"), { phase: "connack" })
    add("PINGRESP instead of CONNACK", [0xd0, 0x00], { phase: "connack" })
    add("second CONNACK", [0x20, 0x02, 0x00, 0x00], { phase: "session" })

    // SUBACK
    add("SUBACK with return code 3", [0x90, 0x03, ...u16(1), 0x03])
    add("SUBACK with return code 0x7f", [0x90, 0x03, ...u16(1), 0x7f])

    // acks for unknown packet ids: legal to ignore
    add("PUBACK with an unknown packet id", [0x40, 0x02, ...u16(0xbeef)], {
        legal: true,
    })
    add("PUBREC with an unknown packet id", [0x50, 0x02, ...u16(0xbeef)], {
        legal: true,
    })
    add("PUBCOMP with an unknown packet id", [0x70, 0x02, ...u16(0xbeef)], {
        legal: true,
    })
    add("PUBREL with an unknown packet id", [0x62, 0x02, ...u16(0xbeef)], {
        legal: true,
    })
    add(
        "SUBACK with an unknown packet id",
        [0x90, 0x03, ...u16(0xbeef), 0x00],
        { legal: true }
    )
    add("UNSUBACK with an unknown packet id", [0xb0, 0x02, ...u16(0xbeef)], {
        legal: true,
    })

    // packet types a server never sends
    add(
        "CONNECT from the server",
        mqttPacket.generate({
            cmd: "connect",
            protocolId: "MQTT",
            protocolVersion: 4,
            clean: true,
            keepalive: 30,
            clientId: "server",
        })
    )
    add("SUBSCRIBE from the server", pkt(0x82, u16(1), lstr("a/b"), [1]))
    add("UNSUBSCRIBE from the server", pkt(0xa2, u16(1), lstr("a/b")))
    add("PINGREQ from the server", [0xc0, 0x00])
    add("DISCONNECT from the server", [0xe0, 0x00])

    // truncated bodies (remaining length shorter than the fields)
    add("PUBLISH remaining length 0", [0x30, 0x00])
    add("PUBLISH remaining length 1", [0x30, 0x01, 0x00])
    add(
        "PUBLISH topic length beyond the remaining length",
        [0x30, 0x04, 0x00, 0x10, 0x61, 0x62]
    )
    add("PUBLISH QoS 1 without packet id", [0x32, 0x03, ...lstr("a")])
    add("PUBLISH QoS 1 with half a packet id", [0x32, 0x04, ...lstr("a"), 0x00])
    add("PUBACK remaining length 0", [0x40, 0x00])
    add("PUBACK remaining length 1", [0x40, 0x01, 0x00])
    add("PUBREC remaining length 0", [0x50, 0x00])
    add("PUBREL remaining length 1", [0x62, 0x01, 0x00])
    add("PUBCOMP remaining length 0", [0x70, 0x00])
    add("SUBACK without return codes", [0x90, 0x02, ...u16(1)])
    add("SUBACK remaining length 1", [0x90, 0x01, 0x00])
    add("UNSUBACK remaining length 0", [0xb0, 0x00])

    // bodies longer than the packet type allows
    add("PUBACK remaining length 3", [0x40, 0x03, ...u16(1), 0x00])
    add("UNSUBACK remaining length 3", [0xb0, 0x03, ...u16(1), 0x00])
    add("PINGRESP remaining length 1", [0xd0, 0x01, 0x00])

    return cases
}

// ---------------------------------------------------------------- mutations

/**
 * Valid server -> client packets generated with mqtt-packet (protocol 4):
 * CONNACK, PUBLISH QoS 0/1/2, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK,
 * UNSUBACK, PINGRESP. Packet ids are 1.
 * @returns {{ name: string, bytes: Buffer }[]}
 */
export function validServerPackets() {
    const g = o => mqttPacket.generate(o, { protocolVersion: 4 })
    const payload = Buffer.from("hello")
    return [
        ["CONNACK", { cmd: "connack", returnCode: 0, sessionPresent: false }],
        ["PUBLISH qos0", { cmd: "publish", topic: "t/a", payload, qos: 0 }],
        [
            "PUBLISH qos1",
            { cmd: "publish", topic: "t/a", payload, qos: 1, messageId: 1 },
        ],
        [
            "PUBLISH qos2",
            { cmd: "publish", topic: "t/a", payload, qos: 2, messageId: 1 },
        ],
        ["PUBACK", { cmd: "puback", messageId: 1 }],
        ["PUBREC", { cmd: "pubrec", messageId: 1 }],
        ["PUBREL", { cmd: "pubrel", messageId: 1 }],
        ["PUBCOMP", { cmd: "pubcomp", messageId: 1 }],
        ["SUBACK", { cmd: "suback", messageId: 1, granted: [0, 1, 2, 128] }],
        ["UNSUBACK", { cmd: "unsuback", messageId: 1 }],
        ["PINGRESP", { cmd: "pingresp" }],
    ].map(([name, o]) => ({ name, bytes: g(o) }))
}

/** Length in bytes of the remaining-length field at offset 1 (1..4, or what is there). */
function remLenBytes(b) {
    let i = 1
    while (i < b.length && i < 5 && b[i] & 0x80) i++
    return Math.min(i, b.length - 1)
}

/**
 * @typedef {object} Mutation
 * @property {string} name describes base packet, operation and position
 * @property {Buffer} bytes the mutated bytes (never equal to the base)
 * @property {string} base name of the packet mutated
 * @property {"bitflip"|"overwrite"|"insert"|"delete"|"truncate"|"extend"|"remlen"|"flags"} op
 */

/**
 * n seeded random mutations of valid server -> client packets: bit flips,
 * byte overwrite/insert/delete, truncate, extend, a corrupted remaining
 * length, changed fixed-header flag bits. The same rng seed gives the same
 * list. A mutation always differs from its base but is not necessarily
 * invalid (e.g. a flipped payload bit, a RETAIN flag).
 * @param {(() => number)|number} rng a function giving floats in [0, 1) (see rng(seed)), or a seed
 * @param {({ name?: string, bytes: Buffer }|Buffer)[]} [validPackets] default: validServerPackets()
 * @param {number} [n] default 100
 * @returns {Mutation[]}
 */
export function mutations(rng, validPackets, n = 100) {
    const r = typeof rng === "function" ? rng : makeRng(rng)
    const base = (validPackets || validServerPackets()).map((p, i) =>
        Buffer.isBuffer(p)
            ? { name: `packet ${i}`, bytes: p }
            : { name: p.name || `packet ${i}`, bytes: Buffer.from(p.bytes) }
    )
    if (!base.length) throw new Error("mutations: no valid packets")
    const int = k => Math.floor(r() * k)
    const ops = [
        "bitflip",
        "overwrite",
        "insert",
        "delete",
        "truncate",
        "extend",
        "remlen",
        "flags",
    ]
    const out = []
    for (let k = 0; k < n; k++) {
        const p = base[int(base.length)]
        const src = p.bytes
        const op = ops[int(ops.length)]
        let bytes
        let what
        switch (op) {
            case "bitflip": {
                const i = int(src.length)
                const bit = int(8)
                bytes = Buffer.from(src)
                bytes[i] ^= 1 << bit
                what = `byte ${i} bit ${bit}`
                break
            }
            case "overwrite": {
                const i = int(src.length)
                const v = (src[i] + 1 + int(255)) & 0xff
                bytes = Buffer.from(src)
                bytes[i] = v
                what = `byte ${i} = 0x${v.toString(16)}`
                break
            }
            case "insert": {
                const i = int(src.length + 1)
                const v = int(256)
                bytes = Buffer.concat([
                    src.subarray(0, i),
                    Buffer.from([v]),
                    src.subarray(i),
                ])
                what = `0x${v.toString(16)} at ${i}`
                break
            }
            case "delete": {
                const i = int(src.length)
                bytes = Buffer.concat([src.subarray(0, i), src.subarray(i + 1)])
                what = `byte ${i}`
                break
            }
            case "truncate": {
                const len = 1 + int(Math.max(1, src.length - 1))
                bytes = Buffer.from(
                    src.subarray(0, Math.min(len, src.length - 1))
                )
                what = `to ${bytes.length}`
                break
            }
            case "extend": {
                const extra = Buffer.alloc(1 + int(8))
                for (let i = 0; i < extra.length; i++) extra[i] = int(256)
                bytes = Buffer.concat([src, extra])
                what = `by ${extra.length}`
                break
            }
            case "remlen": {
                const k = remLenBytes(src)
                const orig = src.subarray(1, 1 + k)
                const body = src.subarray(1 + k)
                let field
                for (let tries = 0; tries < 10; tries++) {
                    const kind = int(3)
                    if (kind === 0) {
                        // a plausible wrong value near the real one
                        field = Buffer.from(varint(int(body.length * 2 + 10)))
                    } else if (kind === 1) {
                        // a large value
                        field = Buffer.from(varint(int(268435456)))
                    } else {
                        // random bytes, continuation bits and all
                        field = Buffer.alloc(1 + int(5))
                        for (let i = 0; i < field.length; i++)
                            field[i] = int(256)
                    }
                    if (!field.equals(orig)) break
                }
                if (field.equals(orig))
                    field = Buffer.from(varint(body.length + 1))
                bytes = Buffer.concat([src.subarray(0, 1), field, body])
                what = `[${[...field].map(b => b.toString(16)).join(" ")}]`
                break
            }
            case "flags": {
                const x = 1 + int(15)
                bytes = Buffer.from(src)
                bytes[0] ^= x
                what = `^0x${x.toString(16)}`
                break
            }
        }
        out.push({ name: `${p.name} ${op} ${what}`, bytes, base: p.name, op })
    }
    return out
}
