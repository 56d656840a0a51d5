import { ProtocolError } from "./errors"
import { checkFilter, checkTopicName } from "./topic"

/**
 * The pure MQTT 3.1 / 3.1.1 codec: packets to bytes and bytes to packets.
 * It knows nothing of sockets or timers. Section numbers refer to the
 * MQTT 3.1.1 specification (OASIS, 29 October 2014).
 */

/** MQTT control packet types (§2.2.1). */
export const enum PacketType {
    Connect = 1,
    Connack = 2,
    Publish = 3,
    Puback = 4,
    Pubrec = 5,
    Pubrel = 6,
    Pubcomp = 7,
    Subscribe = 8,
    Suback = 9,
    Unsubscribe = 10,
    Unsuback = 11,
    Pingreq = 12,
    Pingresp = 13,
    Disconnect = 14,
}

/** Protocol levels of the CONNECT packet (§3.1.2.2). */
export const enum ProtocolLevel {
    /** MQTT 3.1, protocol name "MQIsdp" */
    V31 = 3,
    /** MQTT 3.1.1, protocol name "MQTT" */
    V311 = 4,
}

/** The largest remaining length four bytes can carry (§2.2.3). */
export const MAX_REMAINING_LENGTH = 268435455

/** The largest UTF-8 string, in bytes (§1.5.3). */
export const MAX_STRING_BYTES = 65535

/** SUBACK return code of a refused subscription (§3.9.3). */
export const SUBACK_FAILURE = 0x80

/** Any control packet; `type` says which interface it is. */
export interface Packet {
    type: PacketType
}

/** The will message carried by CONNECT (§3.1.2.5 to §3.1.2.7). */
export interface Will {
    topic: string
    payload: Buffer
    qos: number
    retain: boolean
}

/** CONNECT (§3.1). */
export interface ConnectPacket extends Packet {
    /** 3 (MQTT 3.1) or 4 (MQTT 3.1.1) */
    protocolVersion: number
    clientId: string
    cleanSession: boolean
    /** seconds, 0..65535 */
    keepalive: number
    username?: string
    password?: Buffer
    will?: Will
}

/** CONNACK (§3.2). */
export interface ConnackPacket extends Packet {
    sessionPresent: boolean
    returnCode: number
}

/** PUBLISH (§3.3); `packetId` is 0 for QoS 0. */
export interface PublishPacket extends Packet {
    topic: string
    payload: Buffer
    qos: number
    retain: boolean
    dup: boolean
    packetId: number
}

/** PUBACK, PUBREC, PUBREL, PUBCOMP and UNSUBACK: a packet id and nothing else. */
export interface AckPacket extends Packet {
    packetId: number
}

/** One topic filter of a SUBSCRIBE, with its requested QoS. */
export interface Subscription {
    topic: string
    qos: number
}

/** SUBSCRIBE (§3.8). */
export interface SubscribePacket extends Packet {
    packetId: number
    subscriptions: Subscription[]
}

/** SUBACK (§3.9): one return code per requested filter, 0..2 or 0x80. */
export interface SubackPacket extends Packet {
    packetId: number
    granted: number[]
}

/** UNSUBSCRIBE (§3.10). */
export interface UnsubscribePacket extends Packet {
    packetId: number
    topics: string[]
}

function fail(message: string): never {
    throw new ProtocolError(message)
}

// ---------------------------------------------------------------- encoding

/** Size of the fixed header for a given remaining length (§2.2.3). */
function fixedHeaderSize(remaining: number) {
    if (remaining < 0x80) return 2
    if (remaining < 0x4000) return 3
    if (remaining < 0x200000) return 4
    if (remaining <= MAX_REMAINING_LENGTH) return 5
    return fail(`packet too large: remaining length ${remaining}`)
}

/**
 * Allocates a packet and writes its fixed header; returns the buffer. With
 * `bodyBytes` less than `remaining`, only the first `bodyBytes` of the body
 * get room (a head whose payload is written separately).
 */
function allocPacket(
    first: number,
    remaining: number,
    bodyBytes: number = remaining
) {
    const size = fixedHeaderSize(remaining)
    const buf = Buffer.alloc(size + bodyBytes)
    buf[0] = first
    let pos = 1
    let x = remaining
    for (;;) {
        const digit = x & 0x7f
        x = x >> 7
        if (x === 0) {
            buf[pos] = digit
            return buf
        }
        buf[pos++] = digit | 0x80
    }
}

/** Offset of the variable header: right after the fixed header. */
function bodyStart(buf: Buffer) {
    let pos = 1
    while (buf[pos] & 0x80) pos++
    return pos + 1
}

/**
 * Throws unless `n` bytes fit a two-byte length prefix (§1.5.3). Exported for
 * tests: a 64 KB string does not fit the simulator's heap.
 */
export function checkFieldLength(n: number, what: string) {
    if (n > MAX_STRING_BYTES)
        fail(`${what} is ${n} bytes long; at most 65535 bytes`)
}

/** UTF-8 length of a string, checked against §1.5.3. */
function stringBytes(s: string, what: string) {
    if (typeof s !== "string") fail(`${what} must be a string`)
    const n = s.byteLength
    checkFieldLength(n, what)
    if (s.indexOf("\u0000") >= 0) fail(`${what} contains U+0000`)
    return n
}

function writeU16(buf: Buffer, pos: number, v: number) {
    buf[pos] = (v >> 8) & 0xff
    buf[pos + 1] = v & 0xff
    return pos + 2
}

/** Writes a length-prefixed string whose byte length is `n`. */
function writeString(buf: Buffer, pos: number, s: string, n: number) {
    pos = writeU16(buf, pos, n)
    if (n > 0) buf.blitAt(pos, s, 0, n)
    return pos + n
}

/** Writes length-prefixed binary data (§1.5.3 form, used for will and password). */
function writeBinary(buf: Buffer, pos: number, data: Buffer) {
    pos = writeU16(buf, pos, data.length)
    buf.blitAt(pos, data, 0, data.length)
    return pos + data.length
}

function checkQos(qos: number, what: string) {
    if (qos !== 0 && qos !== 1 && qos !== 2)
        fail(`${what} must be 0, 1 or 2, not ${qos}`)
}

function checkPacketId(id: number) {
    if (!(id >= 1 && id <= 65535 && (id | 0) === id))
        fail(`packet id must be 1..65535, not ${id}`)
}

function checkBinary(data: Buffer, what: string) {
    if (!data) fail(`${what} must be a Buffer`)
    checkFieldLength(data.length, what)
}

/** Encodes CONNECT (§3.1), MQTT 3.1 ("MQIsdp", level 3) or 3.1.1 ("MQTT", level 4). */
export function encodeConnect(p: ConnectPacket): Buffer {
    const v311 = p.protocolVersion === ProtocolLevel.V311
    if (!v311 && p.protocolVersion !== ProtocolLevel.V31)
        fail(`protocol version must be 3 or 4, not ${p.protocolVersion}`)
    // §3.1.2.10: a 16-bit word. Not `p.keepalive || 0`: DeviceScript 2.16.4
    // treats every non-integer number as falsy, so 3.5 (or 1e10) would
    // silently become 0 instead of being refused.
    const keepalive =
        p.keepalive === undefined || p.keepalive === null ? 0 : p.keepalive
    if (!(
        keepalive >= 0 &&
        keepalive <= 65535 &&
        (keepalive | 0) === keepalive
    ))
        fail(`keepalive must be 0..65535 seconds, not ${keepalive}`)
    const idLen = stringBytes(p.clientId, "client id")
    // §3.1.3-7: a zero-length client id needs a clean session; MQTT 3.1 needs one at all.
    if (idLen === 0 && (!p.cleanSession || !v311))
        fail(
            v311
                ? "an empty client id needs cleanSession"
                : "MQTT 3.1 needs a non-empty client id"
        )
    const hasUser = p.username !== undefined && p.username !== null
    const hasPassword = p.password !== undefined && p.password !== null
    // §3.1.2-22: no password without a user name.
    if (hasPassword && !hasUser && v311) fail("a password needs a user name")
    const name = v311 ? "MQTT" : "MQIsdp"
    let remaining = 2 + name.length + 1 + 1 + 2 + 2 + idLen
    let flags = p.cleanSession ? 0x02 : 0
    const will = p.will
    let willTopicLen = 0
    if (will) {
        checkQos(will.qos, "will QoS")
        willTopicLen = stringBytes(will.topic, "will topic")
        checkTopicName(will.topic)
        checkBinary(will.payload, "will message")
        remaining += 2 + willTopicLen + 2 + will.payload.length
        flags |= 0x04 | (will.qos << 3) | (will.retain ? 0x20 : 0)
    }
    let userLen = 0
    if (hasUser) {
        userLen = stringBytes(p.username, "user name")
        remaining += 2 + userLen
        flags |= 0x80
    }
    if (hasPassword) {
        checkBinary(p.password, "password")
        remaining += 2 + p.password.length
        flags |= 0x40
    }
    const buf = allocPacket(PacketType.Connect << 4, remaining)
    let pos = bodyStart(buf)
    pos = writeString(buf, pos, name, name.length)
    buf[pos++] = p.protocolVersion
    buf[pos++] = flags
    pos = writeU16(buf, pos, keepalive)
    pos = writeString(buf, pos, p.clientId, idLen)
    if (will) {
        pos = writeString(buf, pos, will.topic, willTopicLen)
        pos = writeBinary(buf, pos, will.payload)
    }
    if (hasUser) pos = writeString(buf, pos, p.username, userLen)
    if (hasPassword) pos = writeBinary(buf, pos, p.password)
    return buf
}

/** Encodes CONNACK (§3.2). */
export function encodeConnack(sessionPresent: boolean, returnCode: number) {
    // §3.2.2.3: one byte, 0..5; an integer (2.5 would be written as 2)
    if (!(
        returnCode >= 0 &&
        returnCode <= 5 &&
        (returnCode | 0) === returnCode
    ))
        fail(`CONNACK return code must be 0..5, not ${returnCode}`)
    // §3.2.2-4: a refusal never claims a session.
    if (returnCode !== 0 && sessionPresent)
        fail("a refusing CONNACK cannot have session present")
    const buf = allocPacket(PacketType.Connack << 4, 2)
    buf[2] = sessionPresent ? 1 : 0
    buf[3] = returnCode
    return buf
}

/**
 * Checks a topic name for PUBLISH (§3.3.2.1, §4.7): returns its UTF-8
 * length. A client that publishes to the same topic again can skip this.
 */
export function checkPublishTopic(topic: string) {
    const n = stringBytes(topic, "topic")
    checkTopicName(topic)
    return n
}

/**
 * Encodes PUBLISH (§3.3) whose topic already passed `checkPublishTopic`
 * (`topicLen` is what it returned). The hot path: one allocation, no
 * objects, few calls. A stored QoS 1/2 packet is sent again by setting its
 * DUP bit (see `setDup`).
 */
export function writePublish(
    topic: string,
    topicLen: number,
    payload: Buffer,
    qos: number,
    retain: boolean,
    dup: boolean,
    packetId: number
): Buffer {
    if (qos !== 0 && qos !== 1 && qos !== 2) checkQos(qos, "QoS")
    // §3.3.1.1: DUP is 0 for every QoS 0 message.
    if (qos === 0 && dup) fail("DUP needs QoS 1 or 2")
    let remaining = 2 + topicLen + payload.length
    if (qos > 0) {
        checkPacketId(packetId)
        remaining += 2
    }
    const first =
        (PacketType.Publish << 4) |
        (dup ? 0x08 : 0) |
        (qos << 1) |
        (retain ? 0x01 : 0)
    if (remaining >= 0x80) {
        const buf = allocPacket(first, remaining)
        let pos = writeString(buf, bodyStart(buf), topic, topicLen)
        if (qos > 0) pos = writeU16(buf, pos, packetId)
        if (payload.length > 0) buf.blitAt(pos, payload, 0, payload.length)
        return buf
    }
    // small packets (the common telemetry case) without helper calls
    const buf = Buffer.alloc(2 + remaining)
    buf[0] = first
    buf[1] = remaining
    buf[2] = topicLen >> 8
    buf[3] = topicLen & 0xff
    buf.blitAt(4, topic, 0, topicLen)
    let pos = 4 + topicLen
    if (qos > 0) {
        buf[pos] = packetId >> 8
        buf[pos + 1] = packetId & 0xff
        pos += 2
    }
    if (payload.length > 0) buf.blitAt(pos, payload, 0, payload.length)
    return buf
}

/**
 * Encodes the head of a QoS 1/2 PUBLISH (§3.3): fixed header, topic and
 * packet id, with a remaining length that counts `payloadLength` more bytes.
 * Written before the payload itself, it lets a large message in flight keep
 * only the application's payload and this small head for resends, instead
 * of an encoded copy of the whole packet. The packet id sits in its last
 * two bytes.
 */
export function writePublishHead(
    topic: string,
    topicLen: number,
    payloadLength: number,
    qos: number,
    retain: boolean,
    packetId: number
): Buffer {
    if (qos !== 1 && qos !== 2) fail("a PUBLISH head needs QoS 1 or 2")
    checkPacketId(packetId)
    const head = 2 + topicLen + 2
    const first = (PacketType.Publish << 4) | (qos << 1) | (retain ? 0x01 : 0)
    const out = allocPacket(first, head + payloadLength, head)
    const pos = writeString(out, out.length - head, topic, topicLen)
    writeU16(out, pos, packetId)
    return out
}

/** Encodes PUBLISH (§3.3), checking the topic. */
export function encodePublish(
    topic: string,
    payload: Buffer,
    qos: number,
    retain: boolean,
    dup: boolean,
    packetId: number
): Buffer {
    checkQos(qos, "QoS")
    const topicLen = checkPublishTopic(topic)
    return writePublish(topic, topicLen, payload, qos, retain, dup, packetId)
}

/** Marks an encoded QoS 1/2 PUBLISH as a redelivery (§3.3.1.1), in place. */
export function setDup(encodedPublish: Buffer) {
    encodedPublish[0] |= 0x08
}

/** Encodes PUBACK, PUBREC, PUBREL, PUBCOMP or UNSUBACK: a packet id only. */
export function encodeAck(type: PacketType, packetId: number): Buffer {
    checkPacketId(packetId)
    // §3.6.1: PUBREL carries the reserved flags 0b0010.
    const first = (type << 4) | (type === PacketType.Pubrel ? 0x02 : 0)
    const buf = Buffer.alloc(4)
    buf[0] = first
    buf[1] = 2
    writeU16(buf, 2, packetId)
    return buf
}

/** Encodes SUBSCRIBE (§3.8) with one or more filters. */
export function encodeSubscribe(packetId: number, subs: Subscription[]) {
    checkPacketId(packetId)
    if (!subs || subs.length === 0) fail("SUBSCRIBE needs at least one filter")
    const lens: number[] = []
    let remaining = 2
    for (let i = 0; i < subs.length; ++i) {
        const s = subs[i]
        const n = stringBytes(s.topic, "topic filter")
        checkFilter(s.topic)
        checkQos(s.qos, "QoS")
        lens.push(n)
        remaining += 2 + n + 1
    }
    const buf = allocPacket((PacketType.Subscribe << 4) | 0x02, remaining)
    let pos = writeU16(buf, bodyStart(buf), packetId)
    for (let i = 0; i < subs.length; ++i) {
        pos = writeString(buf, pos, subs[i].topic, lens[i])
        buf[pos++] = subs[i].qos
    }
    return buf
}

/** Encodes SUBACK (§3.9). */
export function encodeSuback(packetId: number, granted: number[]) {
    checkPacketId(packetId)
    if (!granted || granted.length === 0) fail("SUBACK needs a return code")
    const buf = allocPacket(PacketType.Suback << 4, 2 + granted.length)
    let pos = writeU16(buf, bodyStart(buf), packetId)
    for (let i = 0; i < granted.length; ++i) {
        const g = granted[i]
        if (g !== 0 && g !== 1 && g !== 2 && g !== SUBACK_FAILURE)
            fail(`SUBACK return code must be 0, 1, 2 or 0x80, not ${g}`)
        buf[pos++] = g
    }
    return buf
}

/** Encodes UNSUBSCRIBE (§3.10) with one or more filters. */
export function encodeUnsubscribe(packetId: number, topics: string[]) {
    checkPacketId(packetId)
    if (!topics || topics.length === 0)
        fail("UNSUBSCRIBE needs at least one filter")
    const lens: number[] = []
    let remaining = 2
    for (let i = 0; i < topics.length; ++i) {
        const n = stringBytes(topics[i], "topic filter")
        checkFilter(topics[i])
        lens.push(n)
        remaining += 2 + n
    }
    const buf = allocPacket((PacketType.Unsubscribe << 4) | 0x02, remaining)
    let pos = writeU16(buf, bodyStart(buf), packetId)
    for (let i = 0; i < topics.length; ++i)
        pos = writeString(buf, pos, topics[i], lens[i])
    return buf
}

/** Encodes PINGREQ, PINGRESP or DISCONNECT: a fixed header only. */
export function encodeEmpty(type: PacketType) {
    const buf = Buffer.alloc(2)
    buf[0] = type << 4
    return buf
}

/** Encodes any packet from its object form. */
export function encodePacket(p: Packet): Buffer {
    const t = p.type
    if (t === PacketType.Connect) return encodeConnect(p as ConnectPacket)
    if (t === PacketType.Connack) {
        const c = p as ConnackPacket
        return encodeConnack(c.sessionPresent, c.returnCode)
    }
    if (t === PacketType.Publish) {
        const m = p as PublishPacket
        return encodePublish(
            m.topic,
            m.payload,
            m.qos,
            m.retain,
            m.dup,
            m.packetId
        )
    }
    if (
        t === PacketType.Puback ||
        t === PacketType.Pubrec ||
        t === PacketType.Pubrel ||
        t === PacketType.Pubcomp ||
        t === PacketType.Unsuback
    )
        return encodeAck(t, (p as AckPacket).packetId)
    if (t === PacketType.Subscribe) {
        const s = p as SubscribePacket
        return encodeSubscribe(s.packetId, s.subscriptions)
    }
    if (t === PacketType.Suback) {
        const s = p as SubackPacket
        return encodeSuback(s.packetId, s.granted)
    }
    if (t === PacketType.Unsubscribe) {
        const u = p as UnsubscribePacket
        return encodeUnsubscribe(u.packetId, u.topics)
    }
    if (
        t === PacketType.Pingreq ||
        t === PacketType.Pingresp ||
        t === PacketType.Disconnect
    )
        return encodeEmpty(t)
    return fail(`unknown packet type ${t}`)
}

// ---------------------------------------------------------------- decoding

/**
 * Reads fields from a packet body in order, failing with a clear message
 * whenever a field runs past the end.
 *
 * @devsWhenUsed
 */
class BodyReader {
    constructor(
        readonly buf: Buffer,
        /** the next byte to read */
        public pos: number,
        /** just past the body */
        readonly end: number,
        /** the packet type, named in error messages */
        readonly type: number
    ) {}

    remaining() {
        return this.end - this.pos
    }

    need(n: number, field: string) {
        if (this.pos + n > this.end)
            fail(
                `${packetName(this.type)}: ${field} runs past the end of the packet`
            )
    }

    u8(field: string) {
        this.need(1, field)
        return this.buf[this.pos++]
    }

    u16(field: string) {
        this.need(2, field)
        const v = (this.buf[this.pos] << 8) | this.buf[this.pos + 1]
        this.pos += 2
        return v
    }

    packetId() {
        const id = this.u16("packet id")
        // §2.3.1: packet ids are non-zero.
        if (id === 0) fail(`${packetName(this.type)}: packet id 0`)
        return id
    }

    binary(field: string) {
        const n = this.u16(field)
        this.need(n, field)
        const b = this.buf.slice(this.pos, this.pos + n)
        this.pos += n
        return b
    }

    string(field: string) {
        const n = this.u16(field)
        this.need(n, field)
        const start = this.pos
        this.pos += n
        // §1.5.3: well-formed UTF-8 without U+0000, or the connection closes.
        const s = decodeUtf8(this.buf, start, this.pos)
        if (s === null)
            fail(`${packetName(this.type)}: ${field} is not well-formed UTF-8`)
        return s
    }

    finish() {
        if (this.pos !== this.end)
            fail(
                `${packetName(this.type)}: ${this.end - this.pos} unexpected bytes at the end`
            )
    }
}

/**
 * Decodes bytes [start, end) as UTF-8, or returns null when they are not
 * well-formed (RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF) or contain U+0000 (§1.5.3-1, §1.5.3-2).
 *
 * A byte-by-byte check in bytecode trips the VM's watchdog on long strings,
 * so the native decoder does the work: it turns every ill-formed sequence
 * into U+FFFD, hence the bytes are well-formed exactly when the decoded
 * string holds as many U+FFFD as the bytes hold encoded ones (EF BF BD).
 */
export function decodeUtf8(buf: Buffer, start: number, end: number): string {
    if (start === end) return ""
    if (buf.indexOf(0, start, end) >= 0) return null
    // a copy by hand: Buffer.slice is one more bytecode call
    const bytes = Buffer.alloc(end - start)
    bytes.blitAt(0, buf, start, end - start)
    const s = bytes.toString("utf-8")
    let replaced = 0
    for (let i = s.indexOf("\ufffd"); i >= 0; i = s.indexOf("\ufffd", i + 1))
        replaced++
    if (replaced === 0) return s
    let genuine = 0
    for (let i = buf.indexOf(0xef, start, end); i >= 0 && i + 2 < end;) {
        if (buf[i + 1] === 0xbf && buf[i + 2] === 0xbd) genuine++
        i = buf.indexOf(0xef, i + 1, end)
    }
    return replaced === genuine ? s : null
}

/** True when bytes [start, end) are well-formed UTF-8 without U+0000. */
export function isWellFormedUtf8(buf: Buffer, start: number, end: number) {
    return decodeUtf8(buf, start, end) !== null
}

/** Name of a packet type for messages. */
export function packetName(type: number) {
    return PACKET_NAMES[type & 15]
}

const PACKET_NAMES = [
    "reserved",
    "CONNECT",
    "CONNACK",
    "PUBLISH",
    "PUBACK",
    "PUBREC",
    "PUBREL",
    "PUBCOMP",
    "SUBSCRIBE",
    "SUBACK",
    "UNSUBSCRIBE",
    "UNSUBACK",
    "PINGREQ",
    "PINGRESP",
    "DISCONNECT",
    "reserved",
]

/**
 * Checks the flag bits of the fixed header (§2.2.2): PUBLISH carries
 * DUP/QoS/RETAIN, PUBREL, SUBSCRIBE and UNSUBSCRIBE 0b0010, every other 0.
 */
function checkFixedFlags(first: number) {
    const type = first >> 4
    const flags = first & 0x0f
    if (type === 0 || type === 15) fail(`reserved packet type ${type}`)
    if (type === PacketType.Publish) {
        const qos = (flags >> 1) & 3
        if (qos === 3) fail("PUBLISH with QoS 3") // §3.3.1-4
        if (qos === 0 && flags & 0x08) fail("PUBLISH with DUP and QoS 0") // §3.3.1-2
        return
    }
    const expected =
        type === PacketType.Pubrel ||
        type === PacketType.Subscribe ||
        type === PacketType.Unsubscribe
            ? 0x02
            : 0
    if (flags !== expected)
        fail(`${packetName(type)} with reserved flags ${flags}`) // §2.2.2-2
}

function decodeConnect(r: BodyReader): ConnectPacket {
    const name = r.string("protocol name")
    const level = r.u8("protocol level")
    const v311 = name === "MQTT" && level === ProtocolLevel.V311
    if (!v311 && !(name === "MQIsdp" && level === ProtocolLevel.V31))
        fail(`CONNECT: unsupported protocol ${name} level ${level}`)
    const flags = r.u8("connect flags")
    if (flags & 0x01) fail("CONNECT: reserved flag set") // §3.1.2-3
    const hasWill = (flags & 0x04) !== 0
    const willQos = (flags >> 3) & 3
    const willRetain = (flags & 0x20) !== 0
    if (willQos === 3) fail("CONNECT: will QoS 3")
    // §3.1.2-11, §3.1.2-13, §3.1.2-15: no will, no will QoS or retain.
    if (!hasWill && (willQos !== 0 || willRetain))
        fail("CONNECT: will QoS or retain without a will")
    const hasUser = (flags & 0x80) !== 0
    const hasPassword = (flags & 0x40) !== 0
    if (hasPassword && !hasUser && v311)
        fail("CONNECT: password without user name") // §3.1.2-22
    const cleanSession = (flags & 0x02) !== 0
    const keepalive = r.u16("keepalive")
    const clientId = r.string("client id")
    if (clientId.length === 0 && (!cleanSession || !v311))
        fail("CONNECT: empty client id without clean session") // §3.1.3-7
    const p: ConnectPacket = {
        type: PacketType.Connect,
        protocolVersion: level,
        clientId,
        cleanSession,
        keepalive,
    }
    if (hasWill) {
        const topic = r.string("will topic")
        checkTopicName(topic)
        p.will = {
            topic,
            payload: r.binary("will message"),
            qos: willQos,
            retain: willRetain,
        }
    }
    if (hasUser) p.username = r.string("user name")
    if (hasPassword) p.password = r.binary("password")
    r.finish()
    return p
}

function decodeConnack(r: BodyReader): ConnackPacket {
    const ack = r.u8("acknowledge flags")
    if (ack & 0xfe) fail("CONNACK: reserved acknowledge flags set") // §3.2.2.1
    const returnCode = r.u8("return code")
    r.finish()
    if (returnCode > 5) fail(`CONNACK: unknown return code ${returnCode}`)
    const sessionPresent = (ack & 1) !== 0
    if (sessionPresent && returnCode !== 0)
        fail("CONNACK: session present with a refusal") // §3.2.2-4
    return { type: PacketType.Connack, sessionPresent, returnCode }
}

/**
 * Decodes PUBLISH (§3.3) read in place from bytes [start, end): the hot path
 * of receiving, so without a BodyReader and with as few calls as it can.
 */
function decodePublish(
    first: number,
    buf: Buffer,
    start: number,
    end: number
): PublishPacket {
    const qos = (first >> 1) & 3
    if (start + 2 > end) fail("PUBLISH: topic runs past the end of the packet")
    const topicEnd = start + 2 + ((buf[start] << 8) | buf[start + 1])
    if (topicEnd > end) fail("PUBLISH: topic runs past the end of the packet")
    // §1.5.3: well-formed UTF-8 without U+0000, or the connection closes.
    // decodeUtf8's first steps inline (the hot path saves the call); the
    // rare U+FFFD and U+0000 cases go to decodeUtf8 itself.
    const tlen = topicEnd - start - 2
    if (tlen === 0) fail("PUBLISH: empty topic") // §4.7.3-1
    const tbytes = Buffer.alloc(tlen)
    tbytes.blitAt(0, buf, start + 2, tlen)
    let topic = tbytes.toString("utf-8")
    if (topic.indexOf("\ufffd") >= 0 || tbytes.indexOf(0) >= 0) {
        topic = decodeUtf8(buf, start + 2, topicEnd)
        if (topic === null) fail("PUBLISH: topic is not well-formed UTF-8")
    }
    // §3.3.2-2: no wildcards in a topic name.
    if (topic.indexOf("+") >= 0 || topic.indexOf("#") >= 0)
        fail("PUBLISH: wildcard in topic name")
    let pos = topicEnd
    let packetId = 0
    if (qos > 0) {
        if (pos + 2 > end)
            fail("PUBLISH: packet id runs past the end of the packet")
        packetId = (buf[pos] << 8) | buf[pos + 1]
        if (packetId === 0) fail("PUBLISH: packet id 0") // §2.3.1
        pos += 2
    }
    const payload = Buffer.alloc(end - pos)
    if (end > pos) payload.blitAt(0, buf, pos, end - pos)
    return {
        type: PacketType.Publish,
        topic,
        payload,
        qos,
        retain: (first & 0x01) !== 0,
        dup: (first & 0x08) !== 0,
        packetId,
    }
}

function decodeSubscribe(r: BodyReader): SubscribePacket {
    const packetId = r.packetId()
    const subscriptions: Subscription[] = []
    while (r.remaining() > 0) {
        const topic = r.string("topic filter")
        checkFilter(topic)
        const qos = r.u8("requested QoS")
        if (qos > 2) fail(`SUBSCRIBE: requested QoS byte ${qos}`) // §3.8.3-4
        subscriptions.push({ topic, qos })
    }
    if (subscriptions.length === 0) fail("SUBSCRIBE: no topic filter") // §3.8.3-3
    return { type: PacketType.Subscribe, packetId, subscriptions }
}

function decodeSuback(r: BodyReader): SubackPacket {
    const packetId = r.packetId()
    const granted: number[] = []
    while (r.remaining() > 0) {
        const g = r.u8("return code")
        if (g > 2 && g !== SUBACK_FAILURE)
            fail(`SUBACK: invalid return code ${g}`) // §3.9.3-2
        granted.push(g)
    }
    if (granted.length === 0) fail("SUBACK: no return code")
    return { type: PacketType.Suback, packetId, granted }
}

function decodeUnsubscribe(r: BodyReader): UnsubscribePacket {
    const packetId = r.packetId()
    const topics: string[] = []
    while (r.remaining() > 0) {
        const t = r.string("topic filter")
        checkFilter(t)
        topics.push(t)
    }
    if (topics.length === 0) fail("UNSUBSCRIBE: no topic filter") // §3.10.3-2
    return { type: PacketType.Unsubscribe, packetId, topics }
}

/**
 * Decodes one packet from its first byte and its body (the bytes after the
 * remaining length). Throws `ProtocolError` for anything the rules forbid.
 */
export function decodePacket(first: number, body: Buffer): Packet {
    return decodePacketAt(first, body, 0, body.length)
}

/** Decodes a packet whose body is bytes [start, end) of a buffer. */
export type PacketDecoder = (
    first: number,
    buf: Buffer,
    start: number,
    end: number
) => Packet

/**
 * The packets both sides of a connection receive: PUBLISH, the acks,
 * CONNACK, SUBACK, PINGRESP. Returns null for the others.
 */
function decodeShared(
    type: PacketType,
    first: number,
    buf: Buffer,
    start: number,
    end: number
): Packet {
    if (type === PacketType.Publish)
        return decodePublish(first, buf, start, end)
    if (
        type === PacketType.Puback ||
        type === PacketType.Pubrec ||
        type === PacketType.Pubrel ||
        type === PacketType.Pubcomp ||
        type === PacketType.Unsuback
    ) {
        // §3.4 to §3.7, §3.11: exactly a non-zero packet id
        if (end - start < 2)
            fail(
                `${packetName(type)}: packet id runs past the end of the packet`
            )
        if (end - start > 2)
            fail(
                `${packetName(type)}: ${end - start - 2} unexpected bytes at the end`
            )
        const packetId = (buf[start] << 8) | buf[start + 1]
        if (packetId === 0) fail(`${packetName(type)}: packet id 0`) // §2.3.1
        const ack: AckPacket = { type, packetId }
        return ack
    }
    if (type === PacketType.Connack)
        return decodeConnack(new BodyReader(buf, start, end, type))
    if (type === PacketType.Suback)
        return decodeSuback(new BodyReader(buf, start, end, type))
    if (type === PacketType.Pingresp) {
        if (end !== start)
            fail(`PINGRESP: ${end - start} unexpected bytes at the end`)
        const p: Packet = { type }
        return p
    }
    return null
}

/**
 * Decodes any of the fourteen packets whose body is bytes [start, end) of
 * `buf`, so that a frame inside a received chunk is read in place: only its
 * fields and payload are copied out.
 */
export function decodePacketAt(
    first: number,
    buf: Buffer,
    start: number,
    end: number
): Packet {
    checkFixedFlags(first)
    const type: PacketType = first >> 4
    const p = decodeShared(type, first, buf, start, end)
    if (p) return p
    const r = new BodyReader(buf, start, end, type)
    if (type === PacketType.Connect) return decodeConnect(r)
    if (type === PacketType.Subscribe) return decodeSubscribe(r)
    if (type === PacketType.Unsubscribe) return decodeUnsubscribe(r)
    // PINGREQ, DISCONNECT
    r.finish()
    const e: Packet = { type }
    return e
}

/**
 * Decodes what a server may send a client (§3.1 to §3.14): CONNECT,
 * SUBSCRIBE, UNSUBSCRIBE, PINGREQ and DISCONNECT are protocol errors. The
 * client uses it, so the server-side decoders stay out of its bytecode.
 */
export function decodeFromServer(
    first: number,
    buf: Buffer,
    start: number,
    end: number
): Packet {
    // the common case first, with its flag rules inline (§3.3.1-2, -4)
    if (
        first >> 4 === PacketType.Publish &&
        (first & 0x06) !== 0x06 &&
        (first & 0x0e) !== 0x08
    )
        return decodePublish(first, buf, start, end)
    checkFixedFlags(first)
    const type: PacketType = first >> 4
    const p = decodeShared(type, first, buf, start, end)
    if (p) return p
    return fail(`unexpected ${packetName(type)} from the server`)
}
