import * as ds from "@devicescript/core"
import { connect, Socket } from "@devicescript/net"
import { digest } from "@devicescript/crypto"
import {
    AckPacket,
    ConnackPacket,
    ConnectPacket,
    Packet,
    PacketType,
    PublishPacket,
    SubackPacket,
    SubscribePacket,
    UnsubscribePacket,
    decodePacketAt,
    encodePacket,
} from "../../src/codec"
import { FrameDecoder } from "../../src/framer"

/**
 * The device side of the codec cross-check (test/node/codec.test.mjs): it
 * connects to the Node test, which sends requests framed as
 * [op u8][length u32 BE][data]; each gets a reply [status u8][length u32 BE][data].
 * Status 0 = ok, 1 = decode/encode error (data: the message), 2 = incomplete.
 * The Node side pipelines requests (a few KB ahead at most); replies come in
 * request order. After connecting, the device first sends one ok frame with
 * "codec-echo ready".
 *
 * Binary fields (payloads, password) appear in the JSON as hex when at most
 * BIG bytes long, else as "#<length>:<sha256 hex>" (a 16 KB payload in hex
 * would not fit the 64 KB heap).
 */

const enum Op {
    /**
     * data: one packet (maybe followed by more bytes), pushed whole;
     * reply: [u32 length][re-encoded bytes][u32 bytes left over]
     * [u32 chunks pushed][JSON fields]
     */
    Decode = 1,
    /**
     * data: one packet; fed split in two at every offset, then byte by byte
     * (packets up to SMALL bytes) or at sampled offsets and in a few chunk
     * sizes (larger ones, up to a few KB: the Node side streams bigger ones
     * with DecodeStream); reply: the number of decodes, as text
     */
    Split = 2,
    /**
     * data: JSON fields, or [u32 JSON length][JSON][raw bytes] where a binary
     * field may be {"raw": n}: the next n raw bytes; reply: the encoded bytes
     */
    Encode = 3,
    /**
     * like Decode, but the data is pushed into the decoder as it arrives
     * (at most 4 KB per push), without holding the whole request: for large
     * packets (the request held whole, the frame body and the payload would
     * be three copies); the Node side chooses the chunks by pausing between
     * writes
     */
    DecodeStream = 4,
    /** end of the session */
    Quit = 9,
}

const BIG = 512
const SMALL = 1100
const MAX_PACKET = 300000

function bin(b: Buffer): string {
    if (!b) return undefined
    if (b.length <= BIG) return b.toString("hex")
    return "#" + b.length + ":" + digest("sha256", b).toString("hex")
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
        if (c.password !== undefined) o.password = bin(c.password)
        if (c.will)
            o.will = {
                topic: c.will.topic,
                payload: bin(c.will.payload),
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
            payload: bin(m.payload),
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

/** Raw bytes following the JSON of an Encode request. */
interface Raw {
    data: Buffer
    pos: number
}

function binary(v: any, raw: Raw): Buffer {
    if (v === undefined || v === null) return undefined
    if (typeof v === "string") return Buffer.from(v, "hex")
    const n: number = v.raw
    if (!raw || raw.pos + n > raw.data.length) throw new Error("raw overrun")
    const b = raw.data.slice(raw.pos, raw.pos + n)
    raw.pos += n
    return b
}

function fromJson(o: any, raw: Raw): Packet {
    if (o.type === PacketType.Connect) {
        if (o.will) o.will.payload = binary(o.will.payload, raw)
        if (o.password !== undefined) o.password = binary(o.password, raw)
    }
    if (o.type === PacketType.Publish) o.payload = binary(o.payload, raw)
    return o as Packet
}

/**
 * Decodes `data` as exactly one packet, fed in the given chunk sizes
 * (cut offsets, ascending); null when incomplete.
 */
async function decodeChunks(data: Buffer, cuts: number[]) {
    const f = new FrameDecoder(MAX_PACKET, decodePacketAt)
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
        if ((i & 15) === 15) await ds.sleep(0)
    }
    if (f.buffered() !== 0) throw new Error("bytes left over")
    return got
}

function sameBytes(a: Buffer, b: Buffer) {
    if (a.length !== b.length) return false
    if (a.length <= 2048) return a.toString("hex") === b.toString("hex")
    return (
        digest("sha256", a).toString("hex") ===
        digest("sha256", b).toString("hex")
    )
}

async function checkOne(data: Buffer, cuts: number[], expect: Buffer) {
    const p = await decodeChunks(data, cuts)
    if (!p || !sameBytes(encodePacket(p), expect))
        throw new Error(
            `fed in ${cuts.length + 1} chunks (first cut ${cuts[0]}): decoded differently`
        )
}

/** Every split into two chunks, then one byte at a time (sampled when large). */
async function checkSplits(data: Buffer) {
    const n = data.length
    let count = 0
    const cuts: number[] = []
    if (n <= SMALL) {
        for (let k = 1; k < n; ++k) cuts.push(k)
    } else {
        for (let k = 1; k <= 6; ++k) cuts.push(k)
        for (let s = 1; s < 16; ++s) cuts.push(Math.floor((n * s) / 16))
        for (let k = 3; k >= 1; --k) cuts.push(n - k)
    }
    const whole = await decodeChunks(data, [])
    if (!whole) return -1
    const expect = encodePacket(whole)
    await ds.sleep(0)
    for (let i = 0; i < cuts.length; ++i) {
        await checkOne(data, [cuts[i]], expect)
        count++
        await ds.sleep(0) // costs next to nothing
    }
    const sizes = n <= SMALL ? [1, 2, 5] : [4093, 1000]
    for (let s = 0; s < sizes.length; ++s) {
        const chunked: number[] = []
        for (let k = sizes[s]; k < n; k += sizes[s]) chunked.push(k)
        await checkOne(data, chunked, expect)
        count++
        await ds.sleep(0)
    }
    return count
}

async function reply(sock: Socket, status: number, parts: Buffer[]) {
    let n = 0
    for (let i = 0; i < parts.length; ++i) n += parts[i].length
    const head = Buffer.alloc(5)
    head[0] = status
    setU32(head, 1, n)
    if (n <= 2048) {
        // one send for small replies
        let all = head
        for (let i = 0; i < parts.length; ++i) all = all.concat(parts[i])
        await sock.send(all)
        return
    }
    await sock.send(head)
    for (let i = 0; i < parts.length; ++i)
        if (parts[i].length) await sock.send(parts[i])
}

/** Writes `v` as a big-endian u32 at `pos` of `b`. */
function setU32(b: Buffer, pos: number, v: number) {
    b[pos] = (v >> 24) & 0xff
    b[pos + 1] = (v >> 16) & 0xff
    b[pos + 2] = (v >> 8) & 0xff
    b[pos + 3] = v & 0xff
}

function u32(v: number) {
    const b = Buffer.alloc(4)
    setU32(b, 0, v)
    return b
}

/**
 * The reply of Decode and DecodeStream for a decoded packet. A PUBLISH with
 * over 8 KB of payload is not re-encoded (length 0xffffffff): the heap cannot
 * hold the frame body, the payload and a second copy of the packet at once.
 * The JSON still pins every field down (the payload by its SHA-256), and the
 * Node side checks the encoder with Encode.
 */
function decoded(p: Packet, left: number, pushes: number) {
    const json = Buffer.from(JSON.stringify(toJson(p)))
    const big =
        p.type === PacketType.Publish &&
        (p as PublishPacket).payload.length > 8192
    const enc = big ? Buffer.alloc(0) : encodePacket(p)
    return [
        u32(big ? 0xffffffff : enc.length),
        enc,
        u32(left),
        u32(pushes),
        json,
    ]
}

/** A DecodeStream request whose data is still arriving. */
class Stream {
    f = new FrameDecoder(MAX_PACKET, decodePacketAt)
    got: Packet = null
    error: string = null
    pushes = 0
    constructor(public left: number) {}

    push(piece: Buffer) {
        this.left -= piece.length
        if (this.error) return
        this.pushes++
        this.f.push(piece)
        if (this.got) return
        try {
            this.got = this.f.next()
        } catch (e) {
            this.error = (e as Error).message || "" + e
        }
    }

    async finish(sock: Socket) {
        if (this.error) return await reply(sock, 1, [Buffer.from(this.error)])
        if (!this.got) return await reply(sock, 2, [])
        let parts: Buffer[]
        try {
            parts = decoded(this.got, this.f.buffered(), this.pushes)
        } catch (e) {
            return await reply(sock, 1, [Buffer.from((e as Error).message)])
        }
        this.f = null
        this.got = null
        await reply(sock, 0, parts)
    }
}

async function handle(sock: Socket, op: number, req: { data: Buffer }) {
    // drop the request's reference early: a 16 KB packet is a quarter of the heap
    let data = req.data
    req.data = null
    let status = 0
    let parts: Buffer[] = []
    try {
        if (op === Op.Decode) {
            const f = new FrameDecoder(MAX_PACKET, decodePacketAt)
            f.push(data)
            data = null
            const p = f.next()
            if (!p) status = 2
            else parts = decoded(p, f.buffered(), 1)
        } else if (op === Op.Split) {
            const n = await checkSplits(data)
            if (n < 0) status = 2
            parts = [Buffer.from("" + n)]
        } else if (op === Op.Encode) {
            let o: any
            let raw: Raw = null
            if (data.length && data[0] === 0x7b) {
                o = JSON.parse(data.toString("utf-8"))
            } else {
                const jl = data.readUInt32BE(0)
                o = JSON.parse(data.slice(4, 4 + jl).toString("utf-8"))
                if (4 + jl < data.length) raw = { data, pos: 4 + jl }
            }
            data = null
            const p = fromJson(o, raw)
            raw = null
            parts = [encodePacket(p)]
        } else {
            status = 1
            parts = [Buffer.from(`unknown op ${op}`)]
        }
    } catch (e) {
        status = 1
        parts = [Buffer.from((e as Error).message || "" + e)]
    }
    await reply(sock, status, parts)
}

/** Runs the echo session against the Node test listening on `port`. */
export async function main(params: { port: number }) {
    const sock = await connect({ host: "127.0.0.1", port: params.port })
    // the Node side sends nothing before this: data arriving while connect()
    // waits for "open" trips an assertion in @devicescript/net
    await reply(sock, 0, [Buffer.from("codec-echo ready")])
    let pending = Buffer.alloc(0)
    let served = 0
    let stream: Stream = null
    for (;;) {
        let chunk = await sock.recv()
        if (!chunk) break
        pending = pending.length ? Buffer.concat(pending, chunk) : chunk
        chunk = null
        for (;;) {
            if (stream) {
                // at most 4 KB per push: a 16 KB chunk held while the
                // decoder holds the frame body and the payload would not fit
                const n = Math.min(stream.left, pending.length, 4096)
                if (n > 0) {
                    if (n === pending.length) {
                        stream.push(pending)
                        pending = Buffer.alloc(0)
                    } else {
                        stream.push(pending.slice(0, n))
                        pending = pending.slice(n, pending.length)
                    }
                }
                if (stream.left > 0) {
                    if (pending.length) continue
                    break
                }
                await stream.finish(sock)
                stream = null
                served++
                await ds.sleep(0)
                continue
            }
            if (pending.length < 5) break
            const op = pending[0]
            const len = pending.readUInt32BE(1)
            if (op === Op.DecodeStream) {
                stream = new Stream(len)
                pending = pending.slice(5, pending.length)
                continue
            }
            if (pending.length < 5 + len) break
            const req = { data: pending.slice(5, 5 + len) }
            pending = pending.slice(5 + len, pending.length)
            if (op === Op.Quit) {
                console.log(`codec-echo served ${served}`)
                await sock.close()
                ds.restart()
                return
            }
            await handle(sock, op, req)
            served++
            // after every request: the VM kills a fiber after ~100,000
            // instructions without a yield, and decoding plus re-encoding a
            // SUBSCRIBE with 30 filters takes ~25,000 (filters are checked
            // character by character)
            await ds.sleep(0)
        }
    }
    throw new Error("socket closed before quit")
}
