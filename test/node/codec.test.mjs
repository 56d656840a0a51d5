// Cross-checks the pure codec (src/codec.ts, src/framer.ts, src/topic.ts,
// src/errors.ts), running in the simulator, against an independent
// implementation: mqtt-packet, the codec of MQTT.js. MQTT 3.1 and 3.1.1 only.
//
// The device side is test/devs/codec-echo.ts: it connects to a TCP server of
// this file and answers lock-step requests (Decode, Split, Encode,
// DecodeStream), pipelined from here a few KB ahead at most (the simulator's
// socket has no flow control and the heap is 64 KB).
//
// 1. mqtt-packet's own test vectors (node_modules/mqtt-packet/test.js, which
//    uses tape: the file runs in a sandbox whose test helpers only record
//    their arguments), both directions, plus its parse errors.
// 2. Hand-written packets of all 14 types, both directions, split at every
//    offset and byte by byte, remaining lengths of 1, 2 and 3 bytes.
// 3. Random valid packets from a seeded PRNG (CODEC_SEED=n to replay).
// 4. Mutations of valid packets plus targeted malformed input.
// 3 and 4 count 100 random packets and 900 mutations in `npm test`, 400 and
//    3,600 in `npm run test:full` (test/tools/profile.mjs).
// 5. The device must still be alive and exit 0 after Quit.
//
// Set CODEC_VERBOSE=1 to print every documented difference as it is met.

import assert from "node:assert/strict"
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import net from "node:net"
import { join } from "node:path"
import { after, before, describe, test } from "node:test"
import mqtt from "mqtt-packet"
import { scale } from "../tools/profile.mjs"
import { repoRoot, runDevice } from "../tools/sim.mjs"

const SEED = process.env.CODEC_SEED
    ? Number(process.env.CODEC_SEED) >>> 0
    : (Date.now() ^ (process.pid << 10)) >>> 0
const VERBOSE = /^(1|true)$/i.test(process.env.CODEC_VERBOSE || "")
const DEVICE_TIMEOUT_MS = 240_000
/** random valid packets */
const RANDOM_PACKETS = scale(100, 400)
/** random packets added to the pool that truncations and mutations start from */
const POOL_RANDOM = scale(80, 250)
/** mutations of valid packets */
const MUTATIONS = scale(900, 3600)

// --------------------------------------------------------------- protocol

const Op = { Decode: 1, Split: 2, Encode: 3, DecodeStream: 4, Quit: 9 }
const Status = { Ok: 0, Error: 1, Incomplete: 2 }
/** the FrameDecoder maximum used by codec-echo.ts */
const DEVICE_MAX_PACKET = 300000
/** binary fields longer than this travel as "#<len>:<sha256>" / raw bytes */
const BIG = 512
/** packets larger than this are decoded with DecodeStream */
const STREAM_OVER = 4096
/** requests in flight: at most this many bytes ... */
const WINDOW_BYTES = 3000
/** ... and this many requests */
const WINDOW_COUNT = 24
/** DecodeStream requests are written in pieces of at most this size ... */
const PIECE = 2048
/** ... this far apart */
const PAUSE_MS = 10

const delay = ms => new Promise(r => setTimeout(r, ms))

/** Client side of the codec-echo protocol, with a bounded pipeline. */
class Echo {
    constructor(sock) {
        this.sock = sock
        this.queue = []
        this.inflight = []
        this.bytes = 0
        this.exclusive = false
        this.closed = null
        this.buf = Buffer.alloc(0)
        this.requests = 0
        // the device greets first; requests wait for that
        this.greeted = false
        this.ready = new Promise((res, rej) => {
            this.onReady = res
            this.onNotReady = rej
        })
        sock.on("data", d => this.onData(d))
        sock.on("close", () => this.fail(new Error("device closed the socket")))
        sock.on("error", e => this.fail(e))
    }

    request(op, data) {
        return this.enqueue({ op, data })
    }

    /** DecodeStream, written in pieces cut at `cuts`, PAUSE_MS apart. */
    stream(data, cuts) {
        return this.enqueue({ op: Op.DecodeStream, data, cuts, big: true })
    }

    enqueue(e) {
        if (this.closed) return Promise.reject(this.closed)
        return new Promise((resolve, reject) => {
            e.resolve = resolve
            e.reject = reject
            this.queue.push(e)
            this.pump()
        })
    }

    pump() {
        while (
            this.greeted &&
            this.queue.length &&
            !this.exclusive &&
            !this.closed
        ) {
            const e = this.queue[0]
            const size = 5 + e.data.length
            const big = e.big || size > WINDOW_BYTES
            if (big && this.inflight.length) break
            if (
                !big &&
                (this.inflight.length >= WINDOW_COUNT ||
                    this.bytes + size > WINDOW_BYTES)
            )
                break
            this.queue.shift()
            e.size = size
            e.big = big
            this.inflight.push(e)
            this.bytes += size
            this.exclusive = big
            this.requests++
            const head = Buffer.alloc(5)
            head[0] = e.op
            head.writeUInt32BE(e.data.length, 1)
            if (e.cuts) this.writePaced(head, e)
            else this.sock.write(Buffer.concat([head, e.data]))
        }
    }

    async writePaced(head, e) {
        this.sock.write(head)
        let pos = 0
        // pieces of at most PIECE bytes besides the requested cuts: a 16 KB
        // socket chunk held while the decoder holds the frame body and the
        // payload runs the device out of memory
        const cuts = [...e.cuts, e.data.length]
        for (let c = PIECE; c < e.data.length; c += PIECE) cuts.push(c)
        cuts.sort((a, b) => a - b)
        for (const c of cuts) {
            if (c <= pos || this.closed) continue
            this.sock.write(e.data.subarray(pos, c))
            pos = c
            if (pos < e.data.length) await delay(PAUSE_MS)
        }
    }

    onData(d) {
        this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d
        while (this.buf.length >= 5) {
            const n = this.buf.readUInt32BE(1)
            if (this.buf.length < 5 + n) break
            const status = this.buf[0]
            const data = Buffer.from(this.buf.subarray(5, 5 + n))
            this.buf = this.buf.subarray(5 + n)
            if (!this.greeted) {
                if (
                    status !== Status.Ok ||
                    data.toString() !== "codec-echo ready"
                )
                    return this.fail(
                        new Error(`bad greeting ${data.toString()}`)
                    )
                this.greeted = true
                this.onReady()
                continue
            }
            const e = this.inflight.shift()
            if (!e) return this.fail(new Error("reply without a request"))
            this.bytes -= e.size
            if (e.big) this.exclusive = false
            e.resolve({ status, data })
        }
        this.pump()
    }

    fail(err) {
        if (this.closed) return
        this.closed = err
        this.onNotReady(err)
        for (const e of [...this.inflight, ...this.queue]) e.reject(err)
        this.inflight = []
        this.queue = []
    }

    quit() {
        const head = Buffer.alloc(5)
        head[0] = Op.Quit
        this.sock.write(head)
    }
}

/**
 * DeviceScript's JSON.stringify escapes every byte of a non-ASCII character
 * as its own \u00XX (a string's UTF-8 bytes become Latin-1 characters):
 * read the reply as Latin-1 and turn every string back into UTF-8.
 */
function parseDeviceJson(buf) {
    const fix = v => {
        if (typeof v === "string") {
            if (/[^\x00-\xff]/.test(v))
                throw new Error(`device JSON string not byte-escaped: ${v}`)
            return Buffer.from(v, "latin1").toString("utf8")
        }
        if (Array.isArray(v)) return v.map(fix)
        if (v && typeof v === "object") {
            const o = {}
            for (const k of Object.keys(v)) o[k] = fix(v[k])
            return o
        }
        return v
    }
    return fix(JSON.parse(buf.toString("latin1")))
}

// ------------------------------------------------------ canonical packets
//
// The canonical form is the device's: { type, ...fields } with the field
// names of src/codec.ts, binary fields as Buffers here and as bin() strings
// in the JSON the device prints.

const TYPES = {
    connect: 1,
    connack: 2,
    publish: 3,
    puback: 4,
    pubrec: 5,
    pubrel: 6,
    pubcomp: 7,
    subscribe: 8,
    suback: 9,
    unsubscribe: 10,
    unsuback: 11,
    pingreq: 12,
    pingresp: 13,
    disconnect: 14,
}
const CMDS = Object.fromEntries(Object.entries(TYPES).map(([k, v]) => [v, k]))
const ACKS = new Set([4, 5, 6, 7, 11])

const sha256 = b => createHash("sha256").update(b).digest("hex")
const bin = b =>
    b.length <= BIG ? b.toString("hex") : `#${b.length}:${sha256(b)}`

/** A packet our canonical form (or MQTT 3.1/3.1.1) cannot express. */
class Unrepresentable extends Error {}
const unrepresentable = why => {
    throw new Unrepresentable(why)
}

/** The JSON view of a canonical packet, as the device prints it. */
function view(c) {
    const o = { ...c }
    if (c.payload) o.payload = bin(c.payload)
    if (c.password) o.password = bin(c.password)
    if (c.will) o.will = { ...c.will, payload: bin(c.will.payload) }
    if (c.subscriptions)
        o.subscriptions = c.subscriptions.map(s => ({
            topic: s.topic,
            qos: s.qos,
        }))
    return o
}

function str(v, what) {
    if (typeof v === "string") return v
    if (Buffer.isBuffer(v)) return v.toString("utf8")
    return unrepresentable(`${what} is a ${typeof v}`)
}
function binary(v, what) {
    if (Buffer.isBuffer(v)) return v
    if (typeof v === "string") return Buffer.from(v)
    return unrepresentable(`${what} is a ${typeof v}`)
}
function num(v, what, dflt) {
    if (v === undefined && dflt !== undefined) return dflt
    if (typeof v === "number") return v
    return unrepresentable(`${what} is a ${typeof v}`)
}
function bool(v, what, dflt) {
    if (v === undefined) return dflt
    if (typeof v === "boolean") return v
    return unrepresentable(`${what} is a ${typeof v}`)
}

/**
 * A packet object of mqtt-packet (parsed, or input of generate with its
 * defaults) in canonical form; throws Unrepresentable for MQTT 5, bridge
 * mode, protocol name/level pairs other than MQIsdp/3 and MQTT/4, and values
 * of the wrong JavaScript type.
 */
function fromMp(p) {
    const type = TYPES[p.cmd]
    if (!type) unrepresentable(`command ${p.cmd}`)
    if (p.properties) unrepresentable("MQTT 5 properties")
    if (p.reasonCode !== undefined) unrepresentable("MQTT 5 reason code")
    if (type === 1) {
        if (p.bridgeMode) unrepresentable("bridge mode")
        const level = num(p.protocolVersion, "protocolVersion", 4)
        if (level === 5) unrepresentable("MQTT 5")
        const name =
            p.protocolId === undefined
                ? "MQTT"
                : str(p.protocolId, "protocolId")
        if (name !== "MQTT" && name !== "MQIsdp")
            unrepresentable(`protocol name ${JSON.stringify(name)}`)
        if (
            (name === "MQTT" && level === 3) ||
            (name === "MQIsdp" && level === 4)
        )
            unrepresentable(`protocol name ${name} with level ${level}`)
        const c = {
            type,
            protocolVersion: level,
            clientId:
                p.clientId === undefined ? "" : str(p.clientId, "clientId"),
            cleanSession: bool(p.clean, "clean", true),
            keepalive: num(p.keepalive, "keepalive", 0),
        }
        if (p.username !== undefined && p.username !== null)
            c.username = str(p.username, "username")
        if (p.password !== undefined && p.password !== null)
            c.password = binary(p.password, "password")
        if (p.will !== undefined && p.will !== null) {
            if (typeof p.will !== "object")
                unrepresentable("will is not an object")
            c.will = {
                topic: str(p.will.topic, "will topic"),
                payload: binary(p.will.payload, "will payload"),
                qos: num(p.will.qos, "will qos", 0),
                retain: bool(p.will.retain, "will retain", false),
            }
        }
        return c
    }
    if (type === 2)
        return {
            type,
            sessionPresent: bool(p.sessionPresent, "sessionPresent", false),
            returnCode: num(p.returnCode, "returnCode"),
        }
    if (type === 3) {
        const qos = num(p.qos, "qos", 0)
        return {
            type,
            topic: str(p.topic, "topic"),
            payload: binary(p.payload, "payload"),
            qos,
            retain: bool(p.retain, "retain", false),
            dup: bool(p.dup, "dup", false),
            packetId: qos > 0 ? num(p.messageId, "messageId") : 0,
        }
    }
    if (ACKS.has(type)) return { type, packetId: num(p.messageId, "messageId") }
    if (type === 8) {
        if (!Array.isArray(p.subscriptions)) unrepresentable("subscriptions")
        return {
            type,
            packetId: num(p.messageId, "messageId"),
            subscriptions: p.subscriptions.map(s => {
                if (
                    s.nl !== undefined ||
                    s.rap !== undefined ||
                    s.rh !== undefined
                )
                    unrepresentable("MQTT 5 subscription options")
                return { topic: str(s.topic, "filter"), qos: num(s.qos, "qos") }
            }),
        }
    }
    if (type === 9) {
        if (!Array.isArray(p.granted)) unrepresentable("granted")
        return {
            type,
            packetId: num(p.messageId, "messageId"),
            granted: p.granted.map(g => num(g, "granted")),
        }
    }
    if (type === 10) {
        if (!Array.isArray(p.unsubscriptions))
            unrepresentable("unsubscriptions")
        return {
            type,
            packetId: num(p.messageId, "messageId"),
            topics: p.unsubscriptions.map(t => str(t, "filter")),
        }
    }
    return { type }
}

/** A canonical packet as an mqtt-packet object, for generate(). */
function toMp(c) {
    const cmd = CMDS[c.type]
    if (c.type === 1) {
        const o = {
            cmd,
            protocolId: c.protocolVersion === 3 ? "MQIsdp" : "MQTT",
            protocolVersion: c.protocolVersion,
            clientId: c.clientId,
            clean: c.cleanSession,
            keepalive: c.keepalive,
        }
        if (c.will) o.will = { ...c.will }
        if (c.username !== undefined) o.username = c.username
        if (c.password !== undefined) o.password = c.password
        return o
    }
    if (c.type === 2)
        return {
            cmd,
            sessionPresent: c.sessionPresent,
            returnCode: c.returnCode,
        }
    if (c.type === 3) {
        const o = {
            cmd,
            topic: c.topic,
            payload: c.payload,
            qos: c.qos,
            retain: c.retain,
            dup: c.dup,
        }
        if (c.qos > 0) o.messageId = c.packetId
        return o
    }
    if (ACKS.has(c.type)) return { cmd, messageId: c.packetId }
    if (c.type === 8)
        return {
            cmd,
            messageId: c.packetId,
            subscriptions: c.subscriptions.map(s => ({ ...s })),
        }
    if (c.type === 9)
        return { cmd, messageId: c.packetId, granted: [...c.granted] }
    if (c.type === 10)
        return { cmd, messageId: c.packetId, unsubscriptions: [...c.topics] }
    return { cmd }
}

/** The data of an Encode request: JSON, plus raw bytes for big fields. */
function encodeRequest(c) {
    const raws = []
    const field = b => {
        if (b.length <= BIG) return b.toString("hex")
        raws.push(b)
        return { raw: b.length }
    }
    const o = { ...c }
    // the device takes raw fields in this order: will payload, password, payload
    if (c.will) o.will = { ...c.will, payload: field(c.will.payload) }
    if (c.password) o.password = field(c.password)
    if (c.payload) o.payload = field(c.payload)
    const json = Buffer.from(JSON.stringify(o))
    if (!raws.length) return json
    const len = Buffer.alloc(4)
    len.writeUInt32BE(json.length)
    return Buffer.concat([len, json, ...raws])
}

/** Runs mqtt-packet's parser over `bytes`: its first packet and error. */
function mpParse(bytes, opts) {
    const parser = mqtt.parser(opts)
    const packets = []
    let error = null
    parser.on("packet", p => packets.push(p))
    parser.on("error", e => {
        error = error || e
    })
    try {
        parser.parse(bytes)
    } catch (e) {
        error = error || e
    }
    return { packet: packets[0], error, count: packets.length }
}

/** mqtt-packet's parse of `bytes` in canonical form (throws if it fails). */
function mpCanon(bytes) {
    const r = mpParse(bytes)
    if (!r.packet)
        throw new Error(`mqtt-packet cannot parse: ${r.error?.message}`)
    return fromMp(r.packet)
}

/** The fixed header of a frame: { headerLen, remaining, minimal }, or null. */
function frameHeader(bytes) {
    let remaining = 0
    let mul = 1
    for (let i = 1; i <= 4; i++) {
        if (i >= bytes.length) return null
        const b = bytes[i]
        remaining += (b & 0x7f) * mul
        mul *= 128
        if (!(b & 0x80)) {
            const headerLen = i + 1
            return {
                headerLen,
                remaining,
                minimal: headerLen === lengthBytes(remaining) + 1,
            }
        }
    }
    return null
}
const lengthBytes = n => (n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4)

function header(first, remaining) {
    const out = [first]
    do {
        let d = remaining % 128
        remaining = Math.floor(remaining / 128)
        if (remaining > 0) d |= 0x80
        out.push(d)
    } while (remaining > 0)
    return Buffer.from(out)
}

/** A frame from its first byte and body. */
const frame = (first, ...body) => {
    const b = Buffer.concat(
        body.map(x => (Buffer.isBuffer(x) ? x : Buffer.from(x)))
    )
    return Buffer.concat([header(first, b.length), b])
}
const u16 = n => Buffer.from([n >> 8, n & 0xff])
const lstr = s => {
    const b = Buffer.isBuffer(s) ? s : Buffer.from(s)
    return Buffer.concat([u16(b.length), b])
}

// ---------------------------------------------------------- device calls

let echo = null

/** Decode (or DecodeStream when large or `cuts` given) of `bytes`. */
async function decode(bytes, cuts) {
    const r =
        cuts || bytes.length > STREAM_OVER
            ? await echo.stream(bytes, cuts || [])
            : await echo.request(Op.Decode, bytes)
    if (r.status !== Status.Ok)
        return { status: r.status, message: r.data.toString() }
    const d = r.data
    // 0xffffffff: not re-encoded (payloads over 8 KB, see codec-echo.ts)
    const encLen = d.readUInt32BE(0)
    const skipped = encLen === 0xffffffff
    const n = skipped ? 0 : encLen
    return {
        status: r.status,
        enc: skipped ? null : d.subarray(4, 4 + n),
        left: d.readUInt32BE(4 + n),
        pushes: d.readUInt32BE(8 + n),
        fields: parseDeviceJson(d.subarray(12 + n)),
    }
}

async function encode(c) {
    const r = await echo.request(Op.Encode, encodeRequest(c))
    return r.status === Status.Ok
        ? { status: r.status, bytes: r.data }
        : { status: r.status, message: r.data.toString() }
}

const stats = {
    splitCases: 0,
    splitDecodes: 0,
}

/** Split on the device: every offset, byte by byte (sampled when large). */
async function split(bytes) {
    const r = await echo.request(Op.Split, bytes)
    if (r.status === Status.Ok) {
        stats.splitCases++
        stats.splitDecodes += Number(r.data.toString())
    }
    return { status: r.status, message: r.data.toString() }
}

/** Cut patterns for DecodeStream of a large packet (its sampled splits). */
function streamCuts(n) {
    return [[], [1], [2], [3], [1, 2, 3, 4], [5, 1000], [n >> 1], [n - 1]]
}

const short = b => {
    const h = b.toString("hex")
    return h.length > 120 ? `${h.slice(0, 120)}... (${b.length} bytes)` : h
}
const json = v => JSON.stringify(v)

/**
 * Checks a valid packet both ways: Decode must give `c` and re-encode to
 * `bytes`; Encode of `c` must give `bytes` (unless `noEncode` says why not);
 * then splits. Returns a list of problems (empty when all agree).
 */
async function checkValid(bytes, c, { noEncode, splits = true } = {}) {
    const problems = []
    const want = view(c)
    const jobs = []
    jobs.push(
        decode(bytes).then(d => {
            if (d.status !== Status.Ok)
                return problems.push(`decode: status ${d.status}: ${d.message}`)
            try {
                assert.deepEqual(d.fields, want)
            } catch {
                problems.push(
                    `decode: fields ${json(d.fields)} != ${json(want)}`
                )
            }
            if (d.left !== 0) problems.push(`decode: ${d.left} bytes left over`)
            if (d.enc && !d.enc.equals(bytes))
                problems.push(
                    `decode: re-encoded ${short(d.enc)} != ${short(bytes)}`
                )
        })
    )
    if (!noEncode)
        jobs.push(
            encode(c).then(e => {
                if (e.status !== Status.Ok)
                    return problems.push(
                        `encode: status ${e.status}: ${e.message}`
                    )
                if (!e.bytes.equals(bytes))
                    problems.push(
                        `encode: ${short(e.bytes)} != ${short(bytes)}`
                    )
            })
        )
    if (splits && bytes.length <= STREAM_OVER)
        jobs.push(
            split(bytes).then(s => {
                if (s.status !== Status.Ok)
                    problems.push(`split: status ${s.status}: ${s.message}`)
            })
        )
    await Promise.all(jobs)
    if (splits && bytes.length > STREAM_OVER) {
        for (const cuts of streamCuts(bytes.length)) {
            const d = await decode(bytes, cuts)
            if (d.status !== Status.Ok) {
                problems.push(
                    `stream ${json(cuts)}: status ${d.status}: ${d.message}`
                )
                continue
            }
            stats.splitCases++
            stats.splitDecodes++
            try {
                assert.deepEqual(d.fields, want)
            } catch {
                problems.push(`stream ${json(cuts)}: fields ${json(d.fields)}`)
            }
        }
    }
    return problems
}

// --------------------------------------------------- mqtt-packet's vectors

/**
 * Runs node_modules/mqtt-packet/test.js with `tape` stubbed out and its
 * test helpers redefined (later function declarations win) to record their
 * arguments. Two vectors allocate 268 MB payloads: those allocations are
 * replaced by empty buffers and the vectors marked `huge`.
 */
function extractVectors() {
    const file = join(repoRoot, "node_modules/mqtt-packet/test.js")
    let src = readFileSync(file, "utf8")
    for (const h of [
        "Buffer.alloc(maxLength - 6)",
        "Buffer.alloc(268435455 + 1 - 6)",
    ]) {
        assert.ok(src.includes(h), `mqtt-packet/test.js changed: no ${h}`)
        src = src.replace(h, `__huge(${h.slice("Buffer.alloc(".length)}`)
    }
    const helpers = {
        testParseGenerate: ["name", "object", "buffer", "opts"],
        testGenerateOnly: ["name", "object", "buffer", "opts"],
        testParseOnly: ["name", "object", "buffer", "opts"],
        testParseError: ["expected", "fixture", "opts"],
        testGenerateError: ["expected", "fixture", "opts", "name"],
        testGenerateErrorMultipleCmds: ["cmds", "expected", "fixture", "opts"],
        testParseGenerateDefaults: [
            "name",
            "object",
            "buffer",
            "generated",
            "opts",
        ],
        testParseAndGenerate: ["name", "object", "buffer", "opts"],
        testWriteToStreamError: ["expected", "fixture"],
    }
    let tail = "\n"
    for (const [k, params] of Object.entries(helpers))
        tail += `function ${k} (${params}) { __rec(${json(k)}, { ${params} }) }\n`
    const req = createRequire(file)
    const sandboxRequire = m => (m === "tape" ? () => {} : req(m))
    const records = []
    let huge = 0
    new Function("require", "__rec", "__huge", "Buffer", src + tail)(
        sandboxRequire,
        (kind, args) => {
            records.push({ kind, ...args, huge })
            huge = 0
        },
        n => {
            huge = n
            return Buffer.alloc(0)
        },
        Buffer
    )
    return records
}

const isV5 = v =>
    v.opts?.protocolVersion === 5 ||
    v.object?.protocolVersion === 5 ||
    v.object?.properties !== undefined ||
    v.object?.reasonCode !== undefined ||
    v.object?.cmd === "auth" ||
    v.fixture?.protocolVersion === 5 ||
    v.fixture?.properties !== undefined

/**
 * Where our codec and mqtt-packet disagree on purpose. Each entry names the
 * vectors (or generated cases) it covers, what our codec does, and why.
 * Every entry must be met at least once (the list stays accurate).
 */
const metDocumented = new Set()
const DOCUMENTED = [
    {
        id: "bridge-mode",
        match: v => /^connect MQTT bridge 13[12]$/.test(v.name),
        ours: "refused",
        reason:
            "bridge mode (protocol level | 0x80, i.e. 131/132) is a mosquitto " +
            "bridge extension, not MQTT 3.1/3.1.1 (§3.1.2.2 allows level 4; " +
            "MQTT 3.1 uses 3); a client never connects as a bridge, so our " +
            "codec refuses such a CONNECT",
    },
    {
        id: "fffe-ffff",
        match: v => v.id === "fffe-ffff",
        ours: "refused",
        reason:
            "DeviceScript 2.16.4 cannot represent the non-characters U+FFFE and " +
            "U+FFFF: its UTF-8 decoder turns EF BF BE / EF BF BF into U+FFFD (and " +
            "string literals holding them fail bytecode verification), so our " +
            "decoder refuses strings containing them as not well-formed; " +
            "§1.5.3 says these SHOULD NOT be sent and a receiver MAY close the " +
            "connection on them; mqtt-packet accepts them",
    },
    {
        id: "v31-password-without-username",
        match: v => v.expected === "Username is required to use password",
        ours: "encoded",
        reason:
            "[MQTT-3.1.2-22] (no password without a user name) is a 3.1.1 " +
            "rule; our codec applies it at protocol level 4 only and lets a " +
            "MQTT 3.1 CONNECT carry a password alone, while mqtt-packet " +
            "refuses it for every level",
    },
]

// --------------------------------------------------------- random packets

/** mulberry32 */
function prng(seed) {
    let a = seed >>> 0
    const next = () => {
        a = (a + 0x6d2b79f5) >>> 0
        let t = a
        t = Math.imul(t ^ (t >>> 15), t | 1)
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
    const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1))
    const pick = arr => arr[Math.floor(next() * arr.length)]
    const chance = p => next() < p
    const bytes = n => {
        const b = Buffer.alloc(n)
        for (let i = 0; i < n; i++) b[i] = int(0, 255)
        return b
    }
    return { next, int, pick, chance, bytes }
}

const ASCII =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:;=!@$%^&*()[]{}|~`'\"\\,<>? "
// multi-byte, edge and "SHOULD NOT" characters that are still well-formed
// (but not U+FFFE and U+FFFF: see the documented difference "fffe-ffff")
const EXOTIC = [
    "é",
    "ß",
    "€",
    "中文",
    "😀",
    "\u{1f704}",
    "\u00a0",
    "\u2028",
    "\ufeff",
    "\ufffd",
    "\ufdd0",
    "\u{1fffe}",
    "\u{10ffff}",
    "\ud7ff",
    "\ue000",
    "\u0001",
    "\u001f",
    "\u007f",
    "\u0080",
    "\u07ff",
    "\u0800",
]

function randText(r, maxLen) {
    let s = ""
    const n = r.int(0, maxLen)
    for (let i = 0; i < n; i++)
        s += r.chance(0.15) ? r.pick(EXOTIC) : r.pick(ASCII)
    return s
}

function randTopicName(r) {
    const levels = []
    const n = r.int(1, 4)
    for (let i = 0; i < n; i++) levels.push(randText(r, 8))
    if (r.chance(0.05)) levels[0] = "$SYS"
    const t = levels.join("/")
    return t.length ? t : "t"
}

function randFilter(r) {
    const levels = []
    const n = r.int(1, 4)
    for (let i = 0; i < n; i++)
        levels.push(r.chance(0.25) ? "+" : randText(r, 6))
    if (r.chance(0.25)) levels.push("#")
    const f = levels.join("/")
    return f.length ? f : "#"
}

const randId = r =>
    r.chance(0.2) ? r.pick([1, 2, 255, 256, 65534, 65535]) : r.int(1, 65535)
const randPayload = r =>
    r.bytes(
        r.pick([
            0,
            0,
            1,
            r.int(2, 20),
            r.int(20, 120),
            r.int(100, 300),
            r.int(500, 700),
        ])
    )

/** A random valid packet in canonical form, following the codec's rules. */
function randPacket(r) {
    const type = r.int(1, 14)
    if (type === 1) {
        const protocolVersion = r.chance(0.3) ? 3 : 4
        const cleanSession = r.chance(0.6)
        let clientId = randText(r, 23)
        // MQTT 3.1 needs a client id; 3.1.1 allows none with a clean session
        if (!clientId && (protocolVersion === 3 || !cleanSession))
            clientId = "c"
        const c = {
            type,
            protocolVersion,
            clientId,
            cleanSession,
            keepalive: r.chance(0.2) ? r.pick([0, 1, 65535]) : r.int(0, 65535),
        }
        if (r.chance(0.4))
            c.will = {
                topic: randTopicName(r),
                payload: r.bytes(r.int(0, 40)),
                qos: r.int(0, 2),
                retain: r.chance(0.5),
            }
        if (r.chance(0.5)) {
            c.username = randText(r, 12)
            // mqtt-packet generates a password only with a user name
            if (r.chance(0.6)) c.password = r.bytes(r.int(0, 20))
        }
        return c
    }
    if (type === 2) {
        const returnCode = r.chance(0.5) ? 0 : r.int(0, 5)
        return {
            type,
            sessionPresent: returnCode === 0 && r.chance(0.5),
            returnCode,
        }
    }
    if (type === 3) {
        const qos = r.int(0, 2)
        return {
            type,
            topic: randTopicName(r),
            payload: randPayload(r),
            qos,
            retain: r.chance(0.3),
            dup: qos > 0 && r.chance(0.3),
            packetId: qos > 0 ? randId(r) : 0,
        }
    }
    if (ACKS.has(type)) return { type, packetId: randId(r) }
    if (type === 8) {
        const subscriptions = []
        for (let i = r.int(1, 5); i > 0; i--)
            subscriptions.push({ topic: randFilter(r), qos: r.int(0, 2) })
        return { type, packetId: randId(r), subscriptions }
    }
    if (type === 9) {
        const granted = []
        for (let i = r.int(1, 8); i > 0; i--)
            granted.push(r.pick([0, 1, 2, 0x80]))
        return { type, packetId: randId(r), granted }
    }
    if (type === 10) {
        const topics = []
        for (let i = r.int(1, 5); i > 0; i--) topics.push(randFilter(r))
        return { type, packetId: randId(r), topics }
    }
    return { type }
}

// ---------------------------------------------------- hand-written packets

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i))

function handWritten() {
    const list = []
    const add = (name, o) => list.push({ name, object: o })
    // CONNECT, MQTT 3.1.1
    add("connect minimal", { cmd: "connect", clientId: "c", keepalive: 60 })
    add("connect empty client id", {
        cmd: "connect",
        clientId: "",
        clean: true,
    })
    add("connect persistent, keepalive 0", {
        cmd: "connect",
        clientId: "dev-1",
        clean: false,
        keepalive: 0,
    })
    add("connect keepalive 65535", {
        cmd: "connect",
        clientId: "k",
        keepalive: 65535,
    })
    for (const qos of [0, 1, 2])
        for (const retain of [false, true])
            add(`connect will qos ${qos} retain ${retain}`, {
                cmd: "connect",
                clientId: "w",
                keepalive: 30,
                will: {
                    topic: "dev/1/status",
                    payload: Buffer.from("offline"),
                    qos,
                    retain,
                },
            })
    add("connect will, empty payload", {
        cmd: "connect",
        clientId: "w",
        will: { topic: "a", payload: Buffer.alloc(0), qos: 1, retain: false },
    })
    add("connect will, binary payload", {
        cmd: "connect",
        clientId: "w",
        will: { topic: "bin/ü", payload: ALL_BYTES, qos: 2, retain: true },
    })
    add("connect user only", {
        cmd: "connect",
        clientId: "u",
        username: "user",
    })
    add("connect empty user", { cmd: "connect", clientId: "u", username: "" })
    add("connect user and password", {
        cmd: "connect",
        clientId: "u",
        username: "üser",
        password: Buffer.from("pässword"),
    })
    add("connect empty password", {
        cmd: "connect",
        clientId: "u",
        username: "u",
        password: Buffer.alloc(0),
    })
    add("connect binary password", {
        cmd: "connect",
        clientId: "u",
        username: "u",
        password: Buffer.from([0, 0xff, 0x80, 0x7f, 0, 1]),
    })
    add("connect everything, multi-byte", {
        cmd: "connect",
        clientId: "Ŧėśt🜄",
        clean: false,
        keepalive: 1234,
        will: {
            topic: "é/€/😀/中",
            payload: Buffer.from("λ"),
            qos: 1,
            retain: true,
        },
        username: "ユーザー",
        password: Buffer.from("🔑"),
    })
    add("connect long client id (2-byte length)", {
        cmd: "connect",
        clientId: "x".repeat(200),
    })
    // CONNECT, MQTT 3.1
    add("connect 3.1 minimal", {
        cmd: "connect",
        protocolId: "MQIsdp",
        protocolVersion: 3,
        clientId: "old",
        clean: true,
        keepalive: 10,
    })
    add("connect 3.1 everything", {
        cmd: "connect",
        protocolId: "MQIsdp",
        protocolVersion: 3,
        clientId: "old-device",
        clean: false,
        keepalive: 65535,
        will: {
            topic: "old/will",
            payload: Buffer.from("bye"),
            qos: 2,
            retain: false,
        },
        username: "user",
        password: Buffer.from("secret"),
    })
    // CONNACK
    for (let rc = 0; rc <= 5; rc++)
        add(`connack rc ${rc}`, {
            cmd: "connack",
            returnCode: rc,
            sessionPresent: false,
        })
    add("connack session present", {
        cmd: "connack",
        returnCode: 0,
        sessionPresent: true,
    })
    // PUBLISH
    const pub = (name, o) =>
        add(name, { cmd: "publish", retain: false, dup: false, ...o })
    pub("publish minimal", { topic: "a", payload: Buffer.from("x"), qos: 0 })
    pub("publish empty payload", {
        topic: "a/b",
        payload: Buffer.alloc(0),
        qos: 0,
    })
    pub("publish qos 1", {
        topic: "a/b",
        payload: Buffer.from("hi"),
        qos: 1,
        messageId: 1,
    })
    pub("publish qos 2 id 65535", {
        topic: "a/b",
        payload: Buffer.from("hi"),
        qos: 2,
        messageId: 65535,
    })
    pub("publish retain", {
        topic: "r",
        payload: Buffer.from("1"),
        qos: 0,
        retain: true,
    })
    pub("publish dup qos 1", {
        topic: "d",
        payload: Buffer.from("1"),
        qos: 1,
        dup: true,
        messageId: 7,
    })
    pub("publish dup retain qos 2", {
        topic: "d",
        payload: Buffer.alloc(0),
        qos: 2,
        dup: true,
        retain: true,
        messageId: 0x1234,
    })
    pub("publish multi-byte topic", {
        topic: "é/€/😀/中文/\u{10ffff}",
        payload: Buffer.from("ok"),
        qos: 1,
        messageId: 300,
    })
    pub("publish BOM and U+FFFD in topic", {
        topic: "\ufeffa/\ufffd/b",
        payload: Buffer.from("ok"),
        qos: 0,
    })
    pub("publish $SYS topic", {
        topic: "$SYS/broker/uptime",
        payload: Buffer.from("1"),
        qos: 0,
    })
    pub("publish topic /", { topic: "/", payload: Buffer.from("1"), qos: 0 })
    pub("publish empty levels", {
        topic: "a//b/",
        payload: Buffer.from("1"),
        qos: 0,
    })
    pub("publish spaces", {
        topic: "with space / tab\there",
        payload: Buffer.from("1"),
        qos: 0,
    })
    pub("publish all byte values", {
        topic: "b",
        payload: ALL_BYTES,
        qos: 1,
        messageId: 2,
    })
    // remaining length boundaries: topic "t" (3 bytes) + payload, QoS 0
    for (const remaining of [127, 128, 200, 1000, 16383, 16384])
        pub(`publish remaining length ${remaining}`, {
            topic: "t",
            payload: Buffer.alloc(remaining - 3, remaining & 0xff),
            qos: 0,
        })
    pub("publish 16 KB random payload, qos 1", {
        topic: "big/ü",
        payload: prng(0xb16).bytes(16500),
        qos: 1,
        messageId: 4242,
    })
    // PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK
    for (const cmd of ["puback", "pubrec", "pubrel", "pubcomp", "unsuback"])
        for (const id of [1, 0x1234, 65535])
            add(`${cmd} ${id}`, { cmd, messageId: id })
    // SUBSCRIBE
    add("subscribe one", {
        cmd: "subscribe",
        messageId: 1,
        subscriptions: [{ topic: "a/b", qos: 0 }],
    })
    add("subscribe wildcards", {
        cmd: "subscribe",
        messageId: 65535,
        subscriptions: [
            { topic: "+", qos: 0 },
            { topic: "#", qos: 1 },
            { topic: "a/+/b", qos: 2 },
            { topic: "a/#", qos: 1 },
            { topic: "+/+", qos: 0 },
            { topic: "/#", qos: 2 },
            { topic: "$SYS/#", qos: 0 },
            { topic: "é/+/😀", qos: 1 },
        ],
    })
    add("subscribe many (2-byte length)", {
        cmd: "subscribe",
        messageId: 77,
        subscriptions: Array.from({ length: 30 }, (_, i) => ({
            topic: `sensor/${i}/+`,
            qos: i % 3,
        })),
    })
    // SUBACK
    add("suback one", { cmd: "suback", messageId: 1, granted: [0] })
    add("suback all codes", {
        cmd: "suback",
        messageId: 2,
        granted: [0, 1, 2, 0x80],
    })
    add("suback 200 codes", {
        cmd: "suback",
        messageId: 3,
        granted: Array.from({ length: 200 }, (_, i) => [0, 1, 2, 0x80][i % 4]),
    })
    // UNSUBSCRIBE
    add("unsubscribe one", {
        cmd: "unsubscribe",
        messageId: 5,
        unsubscriptions: ["a/b"],
    })
    add("unsubscribe several", {
        cmd: "unsubscribe",
        messageId: 6,
        unsubscriptions: ["a/+", "#", "ü/€", "$SYS/#"],
    })
    // PINGREQ, PINGRESP, DISCONNECT
    for (const cmd of ["pingreq", "pingresp", "disconnect"]) add(cmd, { cmd })
    return list
}

// ------------------------------------------------------- malformed input

/** Targeted malformed frames: each must be refused (status Error). */
function targetedMalformed() {
    const list = []
    const bad = (name, bytes, incompleteOk = false) =>
        list.push({ name, bytes: Buffer.from(bytes), incompleteOk })
    const conn311 = (flags, ...rest) =>
        frame(0x10, lstr("MQTT"), [4, flags], u16(60), ...rest)
    const pubWithTopic = topicBytes =>
        frame(0x30, lstr(Buffer.from(topicBytes)), "x")

    // remaining length
    bad("fifth remaining-length byte", [0x30, 0xff, 0xff, 0xff, 0xff, 0x01])
    bad("fifth remaining-length byte, no more", [0x30, 0xff, 0xff, 0xff, 0xff])
    bad("four bytes, last continues", [0x30, 0x80, 0x80, 0x80, 0x80, 0x00])
    bad("268,435,455 declared (max), no body", [0x30, 0xff, 0xff, 0xff, 0x7f])
    bad("2,097,152 declared (4 bytes), no body", [0x30, 0x80, 0x80, 0x80, 0x01])
    bad("300,001 declared (over the device maximum)", [
        ...header(0x30, 300001 - 4),
    ])
    // invalid UTF-8 and U+0000 (§1.5.3)
    const invalid = {
        "overlong /": [0x61, 0xc0, 0xaf],
        "overlong NUL": [0xc0, 0x80],
        "overlong 3-byte": [0xe0, 0x80, 0xaf],
        "overlong 4-byte": [0xf0, 0x80, 0x80, 0xaf],
        "surrogate D800": [0xed, 0xa0, 0x80],
        "surrogate DFFF": [0xed, 0xbf, 0xbf],
        "surrogate pair as CESU-8": [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80],
        "above U+10FFFF": [0xf4, 0x90, 0x80, 0x80],
        "byte F5": [0x61, 0xf5, 0x80, 0x80, 0x80],
        "byte FF": [0xff],
        "lone continuation": [0x61, 0x80, 0x62],
        "truncated sequence": [0x61, 0xe2, 0x82],
        "truncated then ASCII": [0xe2, 0x82, 0x61],
        "U+0000": [0x61, 0x00, 0x62],
        "U+FFFD next to invalid": [0xef, 0xbf, 0xbd, 0xc0, 0xaf],
    }
    for (const [what, b] of Object.entries(invalid)) {
        bad(`PUBLISH topic: ${what}`, pubWithTopic(b))
        bad(`CONNECT client id: ${what}`, conn311(0x02, lstr(Buffer.from(b))))
        bad(
            `SUBSCRIBE filter: ${what}`,
            frame(0x82, u16(1), lstr(Buffer.from(b)), [0])
        )
    }
    bad(
        "CONNECT will topic: surrogate",
        conn311(
            0x06,
            lstr("c"),
            lstr(Buffer.from([0xed, 0xa0, 0x80])),
            lstr("p")
        )
    )
    bad(
        "CONNECT user name: overlong",
        conn311(0x82, lstr("c"), lstr(Buffer.from([0xc1, 0x81])))
    )
    bad(
        "UNSUBSCRIBE filter: U+0000",
        frame(0xa2, u16(1), lstr(Buffer.from([0x61, 0])))
    )
    bad(
        "CONNECT protocol name: invalid UTF-8",
        frame(
            0x10,
            lstr(Buffer.from([0x4d, 0xc0, 0x80])),
            [4, 2],
            u16(0),
            lstr("c")
        )
    )
    // packet id 0 (§2.3.1)
    bad("PUBLISH qos 1 id 0", frame(0x32, lstr("a"), u16(0), "x"))
    bad("PUBLISH qos 2 id 0", frame(0x34, lstr("a"), u16(0)))
    for (const [name, first] of [
        ["PUBACK", 0x40],
        ["PUBREC", 0x50],
        ["PUBREL", 0x62],
        ["PUBCOMP", 0x70],
        ["UNSUBACK", 0xb0],
    ])
        bad(`${name} id 0`, frame(first, u16(0)))
    bad("SUBSCRIBE id 0", frame(0x82, u16(0), lstr("a"), [0]))
    bad("SUBACK id 0", frame(0x90, u16(0), [0]))
    bad("UNSUBSCRIBE id 0", frame(0xa2, u16(0), lstr("a")))
    // empty lists (§3.8.3-3, §3.10.3-2)
    bad("SUBSCRIBE with no filters", frame(0x82, u16(1)))
    bad("SUBSCRIBE with no body", [0x82, 0x00])
    bad("UNSUBSCRIBE with no filters", frame(0xa2, u16(1)))
    bad("SUBACK with no return codes", frame(0x90, u16(1)))
    // codes
    bad("SUBACK code 3", frame(0x90, u16(1), [3]))
    bad("SUBACK code 0x81", frame(0x90, u16(1), [0, 0x81]))
    bad("SUBSCRIBE requested QoS 3", frame(0x82, u16(1), lstr("a"), [3]))
    bad("SUBSCRIBE options 0x80", frame(0x82, u16(1), lstr("a"), [0x80]))
    bad("SUBSCRIBE filter without QoS byte", frame(0x82, u16(1), lstr("a")))
    bad("CONNACK rc 6", [0x20, 2, 0, 6])
    bad("CONNACK rc 255", [0x20, 2, 0, 255])
    bad("CONNACK session present with rc 1", [0x20, 2, 1, 1])
    bad("CONNACK flags 0x02", [0x20, 2, 2, 0])
    bad("CONNACK too short", [0x20, 1, 0])
    bad("CONNACK too long", [0x20, 3, 0, 0, 0])
    // fixed header flags (§2.2.2, §3.3.1)
    bad("PUBLISH QoS 3", frame(0x36, lstr("a"), u16(1)))
    bad("PUBLISH DUP with QoS 0", frame(0x38, lstr("a"), "x"))
    bad("reserved type 0", [0x00, 0x00])
    bad("reserved type 15", [0xf0, 0x00])
    const required = {
        1: 0,
        2: 0,
        4: 0,
        5: 0,
        6: 2,
        7: 0,
        8: 2,
        9: 0,
        10: 2,
        11: 0,
        12: 0,
        13: 0,
        14: 0,
    }
    for (const [t, flags] of Object.entries(required))
        for (const f of [flags ^ 1, flags ^ 2, flags ^ 8, 0xf])
            bad(`type ${t} with header flags ${f}`, [(t << 4) | f, 0])
    // CONNECT
    const conn = (name, level, flags, ...rest) =>
        frame(0x10, lstr(name), [level, flags], u16(60), ...rest)
    bad("CONNECT level 5", conn("MQTT", 5, 2, [0], lstr("c")))
    bad("CONNECT level 2", conn("MQTT", 2, 2, lstr("c")))
    bad("CONNECT MQTT level 3", conn("MQTT", 3, 2, lstr("c")))
    bad("CONNECT MQIsdp level 4", conn("MQIsdp", 4, 2, lstr("c")))
    bad("CONNECT bridge level 0x84", conn("MQTT", 0x84, 2, lstr("c")))
    bad("CONNECT protocol name mqtt", conn("mqtt", 4, 2, lstr("c")))
    bad("CONNECT reserved flag", conn311(0x03, lstr("c")))
    bad("CONNECT will QoS 3", conn311(0x1e, lstr("c"), lstr("w"), lstr("p")))
    bad("CONNECT will QoS without will", conn311(0x0a, lstr("c")))
    bad("CONNECT will retain without will", conn311(0x22, lstr("c")))
    bad(
        "CONNECT password without user name (3.1.1)",
        conn311(0x42, lstr("c"), lstr("p"))
    )
    bad("CONNECT empty client id, no clean session", conn311(0x00, lstr("")))
    bad("CONNECT 3.1 empty client id", conn("MQIsdp", 3, 2, lstr("")))
    bad(
        "CONNECT will topic with +",
        conn311(0x06, lstr("c"), lstr("a/+"), lstr("p"))
    )
    bad(
        "CONNECT will topic with #",
        conn311(0x06, lstr("c"), lstr("#"), lstr("p"))
    )
    bad(
        "CONNECT empty will topic",
        conn311(0x06, lstr("c"), lstr(""), lstr("p"))
    )
    bad("CONNECT trailing byte", conn311(0x02, lstr("c"), [0]))
    bad("CONNECT user flag, no user name", conn311(0x82, lstr("c")))
    bad(
        "CONNECT password flag, no password",
        conn311(0xc2, lstr("c"), lstr("u"))
    )
    bad("CONNECT no keepalive", frame(0x10, lstr("MQTT"), [4, 2]))
    // PUBLISH topics (§3.3.2-2, §4.7.3-1)
    bad("PUBLISH empty topic", frame(0x30, lstr(""), "x"))
    bad("PUBLISH topic a/+", frame(0x30, lstr("a/+"), "x"))
    bad("PUBLISH topic #", frame(0x30, lstr("#"), "x"))
    bad("PUBLISH topic a+b", frame(0x30, lstr("a+b"), "x"))
    bad("PUBLISH topic length past the end", frame(0x30, u16(10), "abc"))
    bad("PUBLISH qos 1 without packet id", frame(0x32, lstr("a")))
    bad("PUBLISH qos 1, half a packet id", frame(0x32, lstr("a"), [1]))
    // filters (§4.7.1)
    for (const f of [
        "",
        "a+",
        "+a",
        "a/b+",
        "#/a",
        "a/#/b",
        "a#",
        "a/#b",
        "##",
        "++",
    ]) {
        bad(`SUBSCRIBE filter ${json(f)}`, frame(0x82, u16(1), lstr(f), [0]))
        bad(`UNSUBSCRIBE filter ${json(f)}`, frame(0xa2, u16(1), lstr(f)))
    }
    // lengths of fixed-size packets
    bad("PUBACK length 3", [0x40, 3, 0, 1, 0])
    bad("PUBACK length 1", [0x40, 1, 1])
    bad("PUBREL length 0", [0x62, 0])
    bad("UNSUBACK length 3", [0xb0, 3, 0, 1, 0])
    bad("PINGREQ with a body", [0xc0, 1, 0])
    bad("PINGRESP with a body", [0xd0, 2, 0, 0])
    bad("DISCONNECT with a body", [0xe0, 1, 0])
    bad("SUBACK packet id only half", [0x90, 1, 0])
    return list
}

/** Canonical packets the encoder must refuse: [name, packet]. */
function encodeRefusals() {
    const list = []
    const no = (name, c) => list.push([name, c])
    const conn = o => ({
        type: 1,
        protocolVersion: 4,
        clientId: "c",
        cleanSession: true,
        keepalive: 60,
        ...o,
    })
    const will = o => ({
        topic: "w",
        payload: Buffer.from("p"),
        qos: 0,
        retain: false,
        ...o,
    })
    for (const k of [3.1416, 0.5, 1e10, -1, 65536])
        no(`keepalive ${k}`, conn({ keepalive: k }))
    for (const v of [5, 2, 0])
        no(`protocol level ${v}`, conn({ protocolVersion: v }))
    no("MQTT 3.1 empty client id", conn({ protocolVersion: 3, clientId: "" }))
    no(
        "empty client id, no clean session",
        conn({ clientId: "", cleanSession: false })
    )
    no("password without user name", conn({ password: Buffer.from("p") }))
    no("client id with U+0000", conn({ clientId: "a\u0000" }))
    no("user name with U+0000", conn({ username: "\u0000" }))
    no("will QoS 3", conn({ will: will({ qos: 3 }) }))
    no("will topic a/+", conn({ will: will({ topic: "a/+" }) }))
    no("will topic #", conn({ will: will({ topic: "#" }) }))
    no("empty will topic", conn({ will: will({ topic: "" }) }))
    const ack = (rc, sp = false) => ({
        type: 2,
        sessionPresent: sp,
        returnCode: rc,
    })
    for (const rc of [6, -1, 2.5, 255]) no(`CONNACK rc ${rc}`, ack(rc))
    no("CONNACK session present with rc 1", ack(1, true))
    const pub = o => ({
        type: 3,
        topic: "t",
        payload: Buffer.from("x"),
        qos: 1,
        retain: false,
        dup: false,
        packetId: 1,
        ...o,
    })
    for (const q of [3, -1, 1.5]) no(`PUBLISH QoS ${q}`, pub({ qos: q }))
    no("PUBLISH DUP with QoS 0", pub({ qos: 0, dup: true, packetId: 0 }))
    for (const id of [0, 65536, 1.5, -1])
        no(`PUBLISH packet id ${id}`, pub({ packetId: id }))
    for (const t of ["", "a/+", "#", "a/#", "+", "a\u0000b"])
        no(`PUBLISH topic ${json(t)}`, pub({ topic: t }))
    for (const type of [4, 5, 6, 7, 11])
        for (const id of [0, 65536, 2.5])
            no(`type ${type} packet id ${id}`, { type, packetId: id })
    const sub = o => ({
        type: 8,
        packetId: 1,
        subscriptions: [{ topic: "a", qos: 0 }],
        ...o,
    })
    no("SUBSCRIBE without filters", sub({ subscriptions: [] }))
    no("SUBSCRIBE packet id 0", sub({ packetId: 0 }))
    no("SUBSCRIBE QoS 3", sub({ subscriptions: [{ topic: "a", qos: 3 }] }))
    for (const f of ["", "a+", "#/a", "a/#b", "a\u0000"])
        no(
            `SUBSCRIBE filter ${json(f)}`,
            sub({
                subscriptions: [
                    { topic: "ok", qos: 0 },
                    { topic: f, qos: 1 },
                ],
            })
        )
    const suback = o => ({ type: 9, packetId: 1, granted: [0], ...o })
    for (const g of [[], [3], [0x81], [0, -1]])
        no(`SUBACK codes ${json(g)}`, suback({ granted: g }))
    no("SUBACK packet id 0", suback({ packetId: 0 }))
    const unsub = o => ({ type: 10, packetId: 1, topics: ["a"], ...o })
    no("UNSUBSCRIBE without filters", unsub({ topics: [] }))
    no("UNSUBSCRIBE packet id 0", unsub({ packetId: 0 }))
    for (const f of ["", "a#", "+a"])
        no(`UNSUBSCRIBE filter ${json(f)}`, unsub({ topics: [f] }))
    for (const type of [0, 15, 16]) no(`packet type ${type}`, { type })
    return list
}

/** Truncations and incomplete headers: Error or Incomplete, never ok. */
function truncations(pool) {
    const list = []
    for (const p of pool.slice(0, 40))
        for (const n of [0, 1, 2, p.length >> 1, p.length - 1])
            if (n >= 0 && n < p.length) list.push(p.subarray(0, n))
    list.push(
        Buffer.from([0x30]),
        Buffer.from([0x30, 0x80]),
        Buffer.from([0x30, 0xff, 0xff])
    )
    list.push(Buffer.from([...header(0x30, 299990), 0, 1, 0x61]))
    return list
}

/** Random mutations of valid packets. */
function mutate(r, base) {
    let b = Buffer.from(base)
    const ops = r.int(1, 3)
    const applied = []
    for (let k = 0; k < ops; k++) {
        const op = r.int(0, 15)
        applied.push(op)
        const pos = () => r.int(0, Math.max(0, b.length - 1))
        switch (op) {
            case 0: // flip one bit
                if (b.length) b[pos()] ^= 1 << r.int(0, 7)
                break
            case 1: // overwrite a byte
                if (b.length) b[pos()] = r.int(0, 255)
                break
            case 2: {
                // insert bytes
                const at = r.int(0, b.length)
                b = Buffer.concat([
                    b.subarray(0, at),
                    r.bytes(r.int(1, 3)),
                    b.subarray(at),
                ])
                break
            }
            case 3: {
                // delete bytes
                const at = pos()
                b = Buffer.concat([
                    b.subarray(0, at),
                    b.subarray(at + r.int(1, 3)),
                ])
                break
            }
            case 4: // truncate
                b = b.subarray(0, r.int(0, b.length))
                break
            case 5: // extend with garbage (or a second copy)
                b = Buffer.concat([
                    b,
                    r.chance(0.5) ? r.bytes(r.int(1, 8)) : Buffer.from(base),
                ])
                break
            case 6: {
                // corrupt the remaining length
                const h = frameHeader(b)
                if (!h) break
                const delta = r.pick([
                    -2,
                    -1,
                    1,
                    2,
                    r.int(-50, 50),
                    r.int(100, 70000),
                ])
                const rem = Math.max(0, h.remaining + delta)
                b = Buffer.concat([header(b[0], rem), b.subarray(h.headerLen)])
                break
            }
            case 7: // reserved / header flag bits
                b[0] = (b[0] & 0xf0) | r.int(0, 15)
                break
            case 8: // QoS 3
                b[0] |= 0x06
                break
            case 9: {
                // five length bytes
                const h = frameHeader(b)
                b = Buffer.concat([
                    Buffer.from([b[0], 0xff, 0xff, 0xff, 0xff, r.int(0, 255)]),
                    b.subarray(h ? h.headerLen : 1),
                ])
                break
            }
            case 10: // another packet type
                b[0] = (r.int(0, 15) << 4) | (b[0] & 0x0f)
                break
            case 11: {
                // a non-minimal remaining length
                const h = frameHeader(b)
                if (!h || h.headerLen >= 5) break
                const lens = [...header(0, h.remaining).subarray(1)]
                lens[lens.length - 1] |= 0x80
                lens.push(0)
                b = Buffer.concat([
                    Buffer.from([b[0], ...lens]),
                    b.subarray(h.headerLen),
                ])
                break
            }
            case 12: {
                // corrupt a likely length field (first u16 of the body)
                const h = frameHeader(b)
                if (!h || b.length < h.headerLen + 2) break
                b[h.headerLen + r.int(0, 1)] = r.pick([0, 0xff, r.int(0, 255)])
                break
            }
            case 13: {
                // splice invalid UTF-8 or U+0000 into the body
                const h = frameHeader(b)
                if (!h || b.length < h.headerLen + 3) break
                const seq = r.pick([
                    [0xc0, 0xaf],
                    [0xed, 0xa0, 0x80],
                    [0xf8],
                    [0],
                    [0x80],
                    [0xe2, 0x82],
                ])
                const at = r.int(h.headerLen + 2, b.length - 1)
                for (let i = 0; i < seq.length && at + i < b.length; i++)
                    b[at + i] = seq[i]
                break
            }
            case 14: {
                // swap two bytes
                if (b.length < 2) break
                const i = pos()
                const j = pos()
                const t = b[i]
                b[i] = b[j]
                b[j] = t
                break
            }
            case 15: {
                // zero a 2-byte packet id or length near the end
                if (b.length >= 4) {
                    const at = r.int(2, b.length - 2)
                    b[at] = 0
                    b[at + 1] = 0
                }
                break
            }
        }
    }
    return { bytes: b, ops: applied }
}

// ------------------------------------------------------------------ tests

const figures = {}
const say = s => console.log(`# ${s}`)

// the time bounds are hang guards with room for a busy machine (test/run.mjs
// runs files side by side): the device does the work of most tests on one
// core, e.g. about 40 s of "every packet type" on an idle one
describe("codec cross-check against mqtt-packet", { timeout: 300_000 }, () => {
    let server = null
    let dev = null
    let sock = null
    let quitDone = false

    before(async () => {
        server = net.createServer()
        await new Promise((res, rej) => {
            server.once("error", rej)
            server.listen(0, "127.0.0.1", res)
        })
        const connected = new Promise(res => server.once("connection", res))
        const { port } = server.address()
        dev = await runDevice(
            "test/devs/codec-echo.ts",
            { port },
            { timeoutMs: DEVICE_TIMEOUT_MS }
        )
        let timer
        sock = await Promise.race([
            connected,
            dev.done.then(r => {
                throw new Error(
                    `device exited (code ${r.code}) before connecting:\n${r.output.slice(-30).join("\n")}`
                )
            }),
            new Promise((_, rej) => {
                timer = setTimeout(
                    () => rej(new Error("device did not connect within 120 s")),
                    120_000
                )
            }),
        ]).finally(() => clearTimeout(timer))
        sock.setNoDelay(true)
        echo = new Echo(sock)
        await echo.ready
        say(`seed ${SEED} (CODEC_SEED=${SEED} replays this run)`)
    })

    after(async () => {
        sock?.destroy()
        if (dev && !quitDone) {
            const r = await dev.kill()
            console.log(
                `device killed; last lines:\n${r.output.slice(-20).join("\n")}`
            )
        } else if (dev) await dev.kill()
        await new Promise(res => (server ? server.close(() => res()) : res()))
        echo = null
    })

    // First, while the device heap is fresh: decoding a 16 KB PUBLISH needs
    // the frame body and a copy of the payload at once, half the heap.
    test(
        "large packets: remaining lengths near 16 KB",
        { timeout: 60_000 },
        async () => {
            const list = handWritten().filter(
                h => mqtt.generate(h.object).length > STREAM_OVER
            )
            const failures = []
            for (const { name, object } of list) {
                const bytes = mqtt.generate(object)
                const problems = await checkValid(bytes, fromMp(object))
                if (problems.length)
                    failures.push(`${name}: ${problems.join("; ")}`)
            }
            figures.large = list.length
            say(
                `large packets: ${list.length} (${list.map(h => mqtt.generate(h.object).length).join(", ")} bytes), ` +
                    `each decoded in ${streamCuts(0).length} chunkings and encoded`
            )
            assert.deepEqual(failures, [])
            assert.ok(list.length >= 3)
        }
    )

    test(
        "mqtt-packet's test vectors (MQTT 3.1 / 3.1.1)",
        { timeout: 90_000 },
        async () => {
            const records = extractVectors()
            assert.ok(
                records.length > 100,
                `only ${records.length} vectors extracted`
            )
            const count = {
                matched: 0,
                valid: 0,
                parseErrors: 0,
                parseErrorRefused: 0,
                parseErrorIncomplete: 0,
                generateErrors: 0,
                generateErrorRefused: 0,
                unrepresentable: 0,
                skippedV5: 0,
                skippedHuge: 0,
                documented: 0,
            }
            const encodeSkips = []
            const unexplained = []
            const documented = (v, ours) => {
                const d = DOCUMENTED.find(x => x.match(v))
                if (!d || d.ours !== ours) return false
                metDocumented.add(d.id)
                count.documented++
                if (VERBOSE)
                    say(
                        `documented difference ${d.id}: ${v.name || v.expected}`
                    )
                return true
            }
            const jobs = []
            for (const v of records) {
                const label = `${v.kind} ${json(v.name || v.expected)}`
                if (isV5(v)) {
                    count.skippedV5++
                    continue
                }
                if (v.huge) {
                    // 268 MB payloads: the device refuses the header at once
                    count.skippedHuge++
                    if (v.buffer) {
                        const h = frameHeader(v.buffer)
                        jobs.push(
                            decode(v.buffer.subarray(0, h.headerLen)).then(
                                d => {
                                    if (d.status !== Status.Error)
                                        unexplained.push(
                                            `${label}: header not refused (status ${d.status})`
                                        )
                                }
                            )
                        )
                    }
                    continue
                }
                if (
                    v.kind === "testParseGenerate" ||
                    v.kind === "testParseAndGenerate" ||
                    v.kind === "testParseGenerateDefaults" ||
                    v.kind === "testGenerateOnly" ||
                    v.kind === "testParseOnly"
                ) {
                    const bytes = v.buffer
                    let c
                    try {
                        // canonical form of mqtt-packet's own parse of the bytes,
                        // which equals its expected object (its tests say so)
                        c =
                            v.kind === "testGenerateOnly"
                                ? fromMp(v.object)
                                : mpCanon(bytes)
                    } catch (e) {
                        if (!(e instanceof Unrepresentable)) throw e
                        jobs.push(
                            decode(bytes).then(d => {
                                const ours =
                                    d.status === Status.Ok
                                        ? "accepted"
                                        : "refused"
                                if (!documented(v, ours))
                                    unexplained.push(
                                        `${label}: not representable (${e.message}), ours ${ours}: ${d.message || json(d.fields)}`
                                    )
                            })
                        )
                        continue
                    }
                    count.valid++
                    const h = frameHeader(bytes)
                    let noEncode = null
                    if (!h.minimal) noEncode = "non-minimal remaining length"
                    if (v.kind === "testParseOnly")
                        noEncode = "a parse-only vector"
                    if (noEncode) encodeSkips.push(`${label}: ${noEncode}`)
                    jobs.push(
                        checkValid(bytes, c, { noEncode }).then(problems => {
                            if (!problems.length) return count.matched++
                            const ours = problems.some(p =>
                                /^decode: status/.test(p)
                            )
                                ? "refused"
                                : "different"
                            if (!documented(v, ours))
                                unexplained.push(
                                    `${label}: ${problems.join("; ")}`
                                )
                        })
                    )
                    continue
                }
                if (v.kind === "testParseError") {
                    count.parseErrors++
                    jobs.push(
                        decode(v.fixture).then(d => {
                            if (d.status === Status.Error) {
                                count.parseErrorRefused++
                                count.matched++
                            } else if (d.status === Status.Incomplete) {
                                count.parseErrorIncomplete++
                                count.matched++
                            } else if (!documented(v, "accepted"))
                                unexplained.push(
                                    `${label} ${short(v.fixture)}: accepted as ${json(d.fields)}`
                                )
                        })
                    )
                    continue
                }
                if (
                    v.kind === "testGenerateError" ||
                    v.kind === "testGenerateErrorMultipleCmds" ||
                    v.kind === "testWriteToStreamError"
                ) {
                    const fixtures =
                        v.kind === "testGenerateErrorMultipleCmds"
                            ? v.cmds.map(cmd => ({ ...v.fixture, cmd }))
                            : [v.fixture]
                    for (const f of fixtures) {
                        count.generateErrors++
                        let c
                        try {
                            c = fromMp(f)
                        } catch (e) {
                            if (!(e instanceof Unrepresentable)) throw e
                            // a JavaScript type error of mqtt-packet's API: our
                            // JSON form has typed fields; not sent
                            count.unrepresentable++
                            continue
                        }
                        jobs.push(
                            encode(c).then(e => {
                                if (e.status === Status.Error) {
                                    count.generateErrorRefused++
                                    count.matched++
                                } else if (!documented(v, "encoded"))
                                    unexplained.push(
                                        `${label} ${f.cmd}: encoded as ${short(e.bytes)}`
                                    )
                            })
                        )
                    }
                    continue
                }
                unexplained.push(`${label}: unknown vector kind`)
            }
            await Promise.all(jobs)
            const total = count.matched + count.documented
            figures.vectors = count.matched
            say(
                `mqtt-packet vectors: ${records.length} recorded, ${count.skippedV5} MQTT 5 skipped, ` +
                    `${count.skippedHuge} with 268 MB payloads (only their headers sent: refused), ` +
                    `${count.unrepresentable} not applicable, ${total} checked`
            )
            say(
                `  ${count.valid} valid vectors (decode + encode + split), ` +
                    `${count.parseErrors} parse errors (${count.parseErrorRefused} refused, ` +
                    `${count.parseErrorIncomplete} incomplete), ${count.generateErrors} generate errors ` +
                    `(${count.generateErrorRefused} refused by our encoder, ${count.unrepresentable} ` +
                    `JavaScript type errors our typed form cannot express)`
            )
            say(
                `  ${count.matched} matched, ${count.documented} documented differences`
            )
            say(
                `  encode direction skipped for ${encodeSkips.length}${encodeSkips.length ? ": " + encodeSkips.join(", ") : ""}`
            )
            for (const d of DOCUMENTED)
                say(`  documented difference ${d.id}: ${d.reason}`)
            assert.deepEqual(
                unexplained,
                [],
                `unexplained disagreements:\n${unexplained.join("\n")}`
            )
            assert.ok(count.valid >= 30, `only ${count.valid} valid vectors`)
            assert.ok(
                count.parseErrors >= 30,
                `only ${count.parseErrors} parse-error vectors`
            )
        }
    )

    test(
        "every packet type, both directions and split",
        { timeout: 120_000 },
        async () => {
            const all = handWritten()
            const failures = []
            const seenTypes = new Set()
            const lengthSizes = new Set()
            let v31 = 0
            for (const { object } of all) {
                const c = fromMp(object)
                seenTypes.add(c.type)
                if (c.type === 1 && c.protocolVersion === 3) v31++
                lengthSizes.add(
                    frameHeader(mqtt.generate(object)).headerLen - 1
                )
            }
            // the large ones ran first
            const list = all.filter(
                h => mqtt.generate(h.object).length <= STREAM_OVER
            )
            await Promise.all(
                list.map(async ({ name, object }) => {
                    const bytes = mqtt.generate(object)
                    const c = fromMp(object)
                    // sanity of this file's mapping: mqtt-packet reads back c
                    try {
                        assert.deepEqual(view(mpCanon(bytes)), view(c))
                    } catch (e) {
                        failures.push(
                            `${name}: mqtt-packet round trip: ${e.message}`
                        )
                    }
                    const problems = await checkValid(bytes, c)
                    if (problems.length)
                        failures.push(`${name}: ${problems.join("; ")}`)
                })
            )
            figures.handWritten = all.length
            say(
                `hand-written packets: ${all.length} (all ${seenTypes.size} types, ${v31} MQTT 3.1 CONNECT, ` +
                    `remaining length in ${[...lengthSizes].sort().join(", ")} bytes)`
            )
            assert.deepEqual(failures, [])
            assert.equal(seenTypes.size, 14)
            assert.ok(v31 >= 2)
            assert.deepEqual([...lengthSizes].sort(), [1, 2, 3])
        }
    )

    test("random valid packets", { timeout: 60_000 }, async () => {
        const r = prng(SEED)
        const N = RANDOM_PACKETS
        const SPLIT_MAX = 48
        const failures = []
        let splitted = 0
        const jobs = []
        for (let i = 0; i < N; i++) {
            const c = randPacket(r)
            const bytes = mqtt.generate(toMp(c))
            const doSplit = bytes.length <= SPLIT_MAX
            if (doSplit) splitted++
            jobs.push(
                (async () => {
                    try {
                        assert.deepEqual(view(mpCanon(bytes)), view(c))
                    } catch (e) {
                        failures.push(
                            `#${i} mqtt-packet round trip: ${e.message}`
                        )
                    }
                    const problems = await checkValid(bytes, c, {
                        splits: doSplit,
                    })
                    if (problems.length)
                        failures.push(
                            `#${i} ${json(view(c))} ${short(bytes)}: ${problems.join("; ")}`
                        )
                })()
            )
        }
        await Promise.all(jobs)
        figures.random = N
        say(
            `random packets: ${N} (seed ${SEED}), ${splitted} of them split (up to ${SPLIT_MAX} bytes)`
        )
        assert.deepEqual(failures, [], `seed ${SEED}`)
    })

    test(
        "malformed input: targeted cases and mutations",
        { timeout: 90_000 },
        async () => {
            const failures = []
            // targeted
            const targeted = targetedMalformed()
            let refused = 0
            await Promise.all(
                targeted.map(async t => {
                    const d = await decode(t.bytes)
                    if (d.status === Status.Error) refused++
                    else
                        failures.push(
                            `${t.name} ${short(t.bytes)}: status ${d.status} ${d.fields ? json(d.fields) : d.message}`
                        )
                })
            )
            // a header of a frame that fits is merely incomplete
            const fits = await decode(header(0x30, 12000))
            if (fits.status !== Status.Incomplete)
                failures.push(
                    `header of a 12,000-byte frame: status ${fits.status}, want incomplete`
                )
            // the largest frame the device's decoder accepts by size: its body
            // cannot be allocated (Buffer.alloc throws "buffer too big" over
            // ~64 KB), so it is refused, or incomplete; never a crash
            const under = await decode(header(0x30, DEVICE_MAX_PACKET - 5))
            if (under.status === Status.Ok)
                failures.push(
                    `header of a ${DEVICE_MAX_PACKET}-byte frame accepted`
                )
            say(
                `header of a ${DEVICE_MAX_PACKET}-byte frame (the device maximum): ${under.status === Status.Error ? `refused: ${under.message}` : "incomplete"}`
            )
            // U+FFFE and U+FFFF: documented difference
            for (const nc of [
                [0xef, 0xbf, 0xbf],
                [0xef, 0xbf, 0xbe],
            ]) {
                const b = frame(0x30, lstr(Buffer.from([0x61, ...nc])), "x")
                const d = await decode(b)
                const mp = mpParse(b)
                if (d.status === Status.Error && mp.packet) {
                    metDocumented.add("fffe-ffff")
                    if (VERBOSE)
                        say(`documented difference fffe-ffff: ${short(b)}`)
                } else
                    failures.push(
                        `non-character ${short(b)}: ours status ${d.status}, mqtt-packet ${mp.packet ? "accepts" : "refuses"}`
                    )
            }
            // well-formed edge characters are accepted
            const edges = [
                "\ufffd",
                "\ufeff",
                "\u{10ffff}",
                "\ud7ff",
                "\ue000",
                "\ufdd0",
                "\u{1fffe}",
                "\u0001",
                "\u007f",
                "\u0080",
            ]
            await Promise.all(
                edges.map(async ch => {
                    const c = {
                        type: 3,
                        topic: `e/${ch}`,
                        payload: Buffer.alloc(0),
                        qos: 0,
                        retain: false,
                        dup: false,
                        packetId: 0,
                    }
                    const problems = await checkValid(
                        mqtt.generate(toMp(c)),
                        c,
                        { splits: false }
                    )
                    if (problems.length)
                        failures.push(
                            `edge character U+${ch.codePointAt(0).toString(16)}: ${problems.join("; ")}`
                        )
                })
            )
            // the encoder refuses what the decoder refuses
            const refusals = encodeRefusals()
            let encodeRefused = 0
            await Promise.all(
                refusals.map(async ([name, c]) => {
                    const e = await encode(c)
                    if (e.status === Status.Error) encodeRefused++
                    else
                        failures.push(
                            `encode ${name} ${json(c)}: status ${e.status} ${e.bytes ? short(e.bytes) : e.message}`
                        )
                })
            )
            figures.malformed = refused + encodeRefused
            figures.malformedFrames = refused
            figures.malformedEncodes = encodeRefused
            say(
                `targeted malformed frames: ${targeted.length}, ${refused} refused by the decoder; ` +
                    `invalid packets to encode: ${refusals.length}, ${encodeRefused} refused by the encoder`
            )

            // truncations
            const r = prng(SEED ^ 0x5eed)
            const pool = []
            for (const { object } of handWritten()) {
                const b = mqtt.generate(object)
                if (b.length <= 400) pool.push(b)
            }
            for (let i = 0; i < POOL_RANDOM; i++) {
                const b = mqtt.generate(toMp(randPacket(r)))
                if (b.length <= 400) pool.push(b)
            }
            const truncs = truncations(pool)
            await Promise.all(
                truncs.map(async b => {
                    const d = await decode(b)
                    if (d.status === Status.Ok)
                        failures.push(`truncated ${short(b)} accepted`)
                })
            )

            // mutations
            const M = MUTATIONS
            const m = {
                total: 0,
                error: 0,
                incomplete: 0,
                ok: 0,
                consistent: 0,
                bothAccepted: 0,
                agreed: 0,
                mpRefusedOursAccepted: 0,
                mpAcceptedOursRefused: 0,
                nonMinimal: 0,
            }
            const disagreements = []
            const mpRefusals = {}
            const ourRefusals = {}
            const jobs = []
            for (let i = 0; i < M; i++) {
                const base = r.pick(pool)
                const { bytes, ops } = mutate(r, base)
                m.total++
                const mp = mpParse(bytes)
                jobs.push(
                    decode(bytes).then(d => {
                        const tag = `mutation #${i} (ops ${ops}) ${short(bytes)}`
                        if (d.status === Status.Error) {
                            m.error++
                            if (mp.packet) {
                                m.mpAcceptedOursRefused++
                                const why = d.message
                                    .replace(/(?<!UTF-)\d+/g, "N")
                                    .replace(/"[^"]*"/g, "...")
                                ourRefusals[why] = (ourRefusals[why] || 0) + 1
                            }
                            return
                        }
                        if (d.status === Status.Incomplete) {
                            m.incomplete++
                            // incomplete means the frame is longer than the input
                            const h = frameHeader(bytes)
                            if (h && h.headerLen + h.remaining <= bytes.length)
                                failures.push(
                                    `${tag}: incomplete, yet the frame is all there`
                                )
                            return
                        }
                        m.ok++
                        // self-consistency
                        const h = frameHeader(bytes)
                        const consumed = bytes.length - d.left
                        const problems = []
                        if (!h || h.headerLen + h.remaining !== consumed)
                            problems.push(
                                `consumed ${consumed} bytes, frame is ${h && h.headerLen + h.remaining}`
                            )
                        const frameBytes = bytes.subarray(0, consumed)
                        if (h && !h.minimal) m.nonMinimal++
                        else if (!d.enc.equals(frameBytes))
                            problems.push(
                                `re-encoded ${short(d.enc)} differs from the frame`
                            )
                        try {
                            assert.deepEqual(view(mpCanon(d.enc)), d.fields)
                        } catch (e) {
                            problems.push(
                                `re-encoded bytes read back by mqtt-packet: ${e.message}`
                            )
                        }
                        if (problems.length)
                            return failures.push(
                                `${tag}: ${problems.join("; ")}`
                            )
                        m.consistent++
                        // cross-check with mqtt-packet's reading of the same bytes
                        if (!mp.packet) {
                            m.mpRefusedOursAccepted++
                            const why = mp.error
                                ? mp.error.message
                                : "incomplete"
                            mpRefusals[why] = (mpRefusals[why] || 0) + 1
                            return
                        }
                        let theirs
                        try {
                            theirs = view(fromMp(mp.packet))
                        } catch (e) {
                            if (!(e instanceof Unrepresentable)) throw e
                            return
                        }
                        m.bothAccepted++
                        try {
                            assert.deepEqual(d.fields, theirs)
                            m.agreed++
                        } catch {
                            disagreements.push(
                                `${tag}: ours ${json(d.fields)}, mqtt-packet ${json(theirs)}`
                            )
                        }
                    })
                )
            }
            await Promise.all(jobs)
            figures.mutations = m
            say(
                `mutations: ${m.total} (${m.error} refused, ${m.incomplete} incomplete, ${m.ok} accepted: ` +
                    `${m.consistent} consistent, ${m.nonMinimal} of them with a non-minimal remaining length)`
            )
            say(
                `  mqtt-packet: both accepted ${m.bothAccepted}, agreed ${m.agreed}; ` +
                    `mqtt-packet accepted what we refused ${m.mpAcceptedOursRefused} times; ` +
                    `we accepted what mqtt-packet refused ${m.mpRefusedOursAccepted} times`
            )
            for (const [why, n] of Object.entries(mpRefusals))
                say(`    mqtt-packet refused ${n}x: ${why}`)
            const top = Object.entries(ourRefusals).sort((a, b) => b[1] - a[1])
            say(
                `  what we refused and mqtt-packet accepted (rules it does not check):`
            )
            for (const [why, n] of top.slice(0, 12)) say(`    ${n}x ${why}`)
            if (top.length > 12)
                say(`    ... and ${top.length - 12} more kinds`)
            say(`truncated inputs: ${truncs.length}, none accepted`)
            if (disagreements.length)
                say(disagreements.slice(0, 20).join("\n# "))
            assert.deepEqual(failures.slice(0, 30), [])
            assert.deepEqual(disagreements.slice(0, 30), [])
            assert.equal(m.total, M)
        }
    )

    test(
        "the device is still alive and exits 0 after Quit",
        { timeout: 30_000 },
        async () => {
            const served = echo.requests
            echo.quit()
            quitDone = true
            const res = await Promise.race([
                dev.done,
                delay(20_000).then(() => ({
                    code: "timeout",
                    output: dev.output,
                })),
            ])
            assert.equal(
                res.code,
                0,
                `device exit ${res.code}:\n${res.output.slice(-30).join("\n")}`
            )
            assert.ok(
                dev.lines.includes(`codec-echo served ${served}`),
                `want "codec-echo served ${served}" in:\n${dev.lines.slice(-10).join("\n")}`
            )
            const unmet = DOCUMENTED.filter(d => !metDocumented.has(d.id)).map(
                d => d.id
            )
            assert.deepEqual(
                unmet,
                [],
                "documented differences never met (stale list)"
            )
            const mu = figures.mutations || {
                total: 0,
                error: 0,
                incomplete: 0,
                consistent: 0,
                agreed: 0,
            }
            say(
                `codec cross-check: ${figures.vectors} vectors matched, ` +
                    `${stats.splitCases} split cases (${stats.splitDecodes} chunked decodes), ` +
                    `${figures.malformed} malformed refused (${figures.malformedFrames} frames, ` +
                    `${figures.malformedEncodes} encodes), ${figures.random} random packets, ` +
                    `${mu.total} mutations (${mu.error} refused, ${mu.incomplete} incomplete, ` +
                    `${mu.consistent} accepted and consistent, ${mu.agreed} of them read the same by mqtt-packet), ` +
                    `${served} device requests, seed ${SEED}`
            )
        }
    )
})
