import * as ds from "@devicescript/core"
import { connect } from "@devicescript/net"
import {
    AckPacket,
    ConnackPacket,
    ConnectPacket,
    FrameDecoder,
    Packet,
    PacketType,
    PublishPacket,
    SubackPacket,
    SubscribePacket,
    UnsubscribePacket,
    encodePacket,
} from "../../src/index"

/**
 * The device side of the codec cross-check (test/node/codec.test.mjs): it
 * connects to the Node test, which sends requests framed as
 * [op u8][length u32 BE][data]; each gets a reply [status u8][length u32 BE][data].
 * Status 0 = ok, 1 = decode/encode error (data: the message), 2 = incomplete.
 */

const enum Op {
    /** data: one packet; reply: [u32 length][re-encoded bytes][JSON fields] */
    Decode = 1,
    /** data: one packet; fed split at every offset and byte by byte */
    Split = 2,
    /** data: JSON fields; reply: the encoded bytes */
    Encode = 3,
    /** end of the session */
    Quit = 9,
}

function hex(b: Buffer) {
    return b ? b.toString("hex") : undefined
}

/** The canonical JSON form shared with the Node side. */
function toJson(p: Packet): any {
    const t = p.type
    if (t === PacketType.Connect) {
        const c = p as ConnectPacket
        const o: any = {
            type: t,
            protocolVersion: c.protocolVersion,
            clientId: c.clientId,
            cleanSession: c.cleanSession,
            keepalive: c.keepalive,
        }
        if (c.username !== undefined) o.username = c.username
        if (c.password !== undefined) o.password = hex(c.password)
        if (c.will)
            o.will = {
                topic: c.will.topic,
                payload: hex(c.will.payload),
                qos: c.will.qos,
                retain: c.will.retain,
            }
        return o
    }
    if (t === PacketType.Connack) {
        const c = p as ConnackPacket
        return {
            type: t,
            sessionPresent: c.sessionPresent,
            returnCode: c.returnCode,
        }
    }
    if (t === PacketType.Publish) {
        const m = p as PublishPacket
        return {
            type: t,
            topic: m.topic,
            payload: hex(m.payload),
            qos: m.qos,
            retain: m.retain,
            dup: m.dup,
            packetId: m.packetId,
        }
    }
    if (t === PacketType.Subscribe) {
        const s = p as SubscribePacket
        return { type: t, packetId: s.packetId, subscriptions: s.subscriptions }
    }
    if (t === PacketType.Suback) {
        const s = p as SubackPacket
        return { type: t, packetId: s.packetId, granted: s.granted }
    }
    if (t === PacketType.Unsubscribe) {
        const u = p as UnsubscribePacket
        return { type: t, packetId: u.packetId, topics: u.topics }
    }
    if (
        t === PacketType.Puback ||
        t === PacketType.Pubrec ||
        t === PacketType.Pubrel ||
        t === PacketType.Pubcomp ||
        t === PacketType.Unsuback
    )
        return { type: t, packetId: (p as AckPacket).packetId }
    return { type: t }
}

function unhex(s: string) {
    return s === undefined || s === null ? undefined : Buffer.from(s, "hex")
}

function fromJson(o: any): Packet {
    if (o.type === PacketType.Connect) {
        if (o.password !== undefined) o.password = unhex(o.password)
        if (o.will) o.will.payload = unhex(o.will.payload)
    }
    if (o.type === PacketType.Publish) o.payload = unhex(o.payload)
    return o as Packet
}

/** Decodes `data` as exactly one packet, fed in the given chunk sizes. */
function decodeChunks(data: Buffer, cuts: number[]): Packet {
    const f = new FrameDecoder(300000)
    let pos = 0
    let got: Packet = null
    for (let i = 0; i <= cuts.length; ++i) {
        const end = i < cuts.length ? cuts[i] : data.length
        f.push(data.slice(pos, end))
        pos = end
        const p = f.next()
        if (p) {
            if (got) throw new Error("two packets out of one")
            got = p
        }
    }
    if (f.buffered() !== 0) throw new Error("bytes left over")
    return got
}

function sameBytes(a: Buffer, b: Buffer) {
    if (a.length !== b.length) return false
    for (let i = 0; i < a.length; ++i) if (a[i] !== b[i]) return false
    return true
}

/** Every split into two chunks, then one byte at a time. */
async function checkSplits(data: Buffer, expect: Buffer) {
    for (let k = 1; k < data.length; ++k) {
        const p = decodeChunks(data, [k])
        if (!p || !sameBytes(encodePacket(p), expect))
            throw new Error(`split at ${k} decoded differently`)
        if (k % 64 === 0) await ds.sleep(0)
    }
    const ones: number[] = []
    for (let k = 1; k < data.length; ++k) ones.push(k)
    const p = decodeChunks(data, ones)
    if (!p || !sameBytes(encodePacket(p), expect))
        throw new Error("byte-by-byte decoded differently")
    return data.length
}

function reply(status: number, data: Buffer) {
    const head = Buffer.alloc(5)
    head[0] = status
    head.setAt(1, "u32be", data.length)
    return Buffer.concat(head, data)
}

async function handle(op: number, data: Buffer): Promise<Buffer> {
    try {
        if (op === Op.Decode) {
            const p = decodeChunks(data, [])
            if (!p) return reply(2, Buffer.alloc(0))
            const enc = encodePacket(p)
            const len = Buffer.alloc(4)
            len.setAt(0, "u32be", enc.length)
            return reply(
                0,
                Buffer.concat(len, enc, Buffer.from(JSON.stringify(toJson(p))))
            )
        }
        if (op === Op.Split) {
            const whole = decodeChunks(data, [])
            if (!whole) return reply(2, Buffer.alloc(0))
            const n = await checkSplits(data, encodePacket(whole))
            return reply(0, Buffer.from("" + n))
        }
        if (op === Op.Encode) {
            const p = fromJson(JSON.parse(data.toString("utf-8")))
            return reply(0, encodePacket(p))
        }
        return reply(1, Buffer.from(`unknown op ${op}`))
    } catch (e) {
        const msg = (e as Error).message || "" + e
        return reply(1, Buffer.from(msg))
    }
}

/** Runs the echo session against the Node test listening on `port`. */
export async function main(params: { port: number }) {
    const sock = await connect({ host: "127.0.0.1", port: params.port })
    let pending = Buffer.alloc(0)
    let served = 0
    for (;;) {
        const chunk = await sock.recv()
        if (!chunk) break
        pending = pending.length ? Buffer.concat(pending, chunk) : chunk
        while (pending.length >= 5) {
            const op = pending[0]
            const len = pending.getAt(1, "u32be")
            if (pending.length < 5 + len) break
            const data = pending.slice(5, 5 + len)
            pending = pending.slice(5 + len, pending.length)
            if (op === Op.Quit) {
                console.log(`codec-echo served ${served}`)
                await sock.close()
                ds.restart()
                return
            }
            await sock.send(await handle(op, data))
            served++
            if (served % 16 === 0) await ds.sleep(0)
        }
    }
    throw new Error("socket closed before quit")
}
