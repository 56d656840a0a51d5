import {
    MAX_REMAINING_LENGTH,
    Packet,
    PacketDecoder,
    PacketType,
    PublishPacket,
    packetName,
} from "./codec"
import { ProtocolError } from "./errors"

/** Room that never runs out: every PUBLISH frame is decoded. */
export const UNLIMITED = 0x7fffffff

/**
 * What `next()` returns for a PUBLISH frame kept undecoded: the frame
 * itself (its first byte, then its body) is in `FrameDecoder.raw`.
 */
export const RAW_FRAME: Packet = { type: 0 }

/** What `next()` returns for a QoS 0 PUBLISH frame dropped (no room). */
export const DROPPED_FRAME: Packet = { type: 0 }

/**
 * The streaming frame decoder: chunks of any size go in, whole packets come
 * out. A frame that fits inside one chunk is decoded in place; a PUBLISH that
 * spans chunks has its topic and packet id decoded first and its payload
 * assembled straight into the payload buffer, so receiving a message costs
 * one payload-sized allocation. A frame whose header declares more than
 * `maxPacketSize` bytes is refused as soon as its header is complete, before
 * its body can fill the heap.
 *
 * Backpressure: the client sets `decodeRoom` and `rawRoom` before each
 * `next()`. A PUBLISH frame larger than `decodeRoom` bytes is not decoded:
 * up to `rawRoom` bytes it is copied out undecoded (`RAW_FRAME`, the cheapest
 * form a message has); past that a QoS 0 frame is skipped and counted in
 * `dropped`, and a QoS 1/2 frame stays where it is (`blocked`) until the
 * client makes room: the broker's in-flight window bounds those.
 *
 * @devsWhenUsed
 */
export class FrameDecoder {
    /** unread chunks; the first is read from `offset` on */
    private chunks: Buffer[] = []
    private offset = 0
    /** the frame being assembled across chunks */
    private first = 0
    private body: Buffer = null
    private filled = 0
    private failed: ProtocolError = null
    /** bytes pushed and not yet returned inside a packet */
    private pending = 0
    /** total size of the frame being assembled */
    private frameSize = 0
    /** a PUBLISH whose payload is being assembled: its decoded header */
    private head: PublishPacket = null
    /** the frame being assembled is kept raw */
    private rawBody = false
    /** bytes of a dropped frame still to skip as they arrive */
    private skip = 0
    /** a PUBLISH frame of at most this many bytes is decoded */
    decodeRoom = UNLIMITED
    /** a PUBLISH frame too large to decode is kept raw up to this size */
    rawRoom = 0
    /** QoS 0 PUBLISH frames skipped for want of room, since creation */
    dropped = 0
    /** `next()` returned null because a QoS 1/2 PUBLISH waits for room */
    blocked = false
    /** the frame `next()` returned as `RAW_FRAME` */
    raw: Buffer = null

    /**
     * @param maxPacketSize largest whole packet accepted, header included
     * @param decode `decodeFromServer` on a client, `decodePacketAt` for all
     *     fourteen packets (only what is passed ends up in the bytecode)
     */
    constructor(
        public maxPacketSize: number,
        readonly decode: PacketDecoder
    ) {}

    /** Forgets everything buffered; use it for a new connection. */
    reset() {
        this.chunks = []
        this.offset = 0
        this.body = null
        this.filled = 0
        this.failed = null
        this.pending = 0
        this.head = null
        this.rawBody = false
        this.skip = 0
        this.blocked = false
        this.raw = null
    }

    /** Bytes received and not yet returned as packets. */
    buffered() {
        return this.pending
    }

    /** Adds received bytes; call `next()` until it returns null. */
    push(chunk: Buffer) {
        if (!chunk || chunk.length === 0) return
        this.chunks.push(chunk)
        this.pending += chunk.length
    }

    /**
     * Returns the next whole packet, or null when more bytes are needed.
     * Throws `ProtocolError` on a malformed or oversized frame; after that the
     * stream cannot be resynchronised and every call throws until `reset()`.
     */
    next(): Packet {
        if (this.failed) throw this.failed
        this.blocked = false
        // one function for the hot path: a call costs as much as the work
        try {
            if (this.skip > 0 && !this.skipBytes()) return null
            if (this.body) return this.fillBody()
            if (this.chunks.length === 0) return null
            // fixed header: the first byte and 1..4 bytes of remaining length
            let remaining = 0
            let multiplier = 1
            let headerLen = 1
            const h = this.chunks[0]
            const o = this.offset
            if (o + 2 <= h.length && h[o + 1] < 0x80) {
                // the common case, read in place: a length below 128
                remaining = h[o + 1]
                headerLen = 2
            } else
                for (;;) {
                    if (headerLen > 4)
                        throw new ProtocolError(
                            "remaining length of more than four bytes"
                        ) // §2.2.3
                    const b = this.peek(headerLen)
                    if (b < 0) return null
                    remaining += (b & 0x7f) * multiplier
                    multiplier *= 128
                    headerLen++
                    if ((b & 0x80) === 0) break
                }
            const first = h[o]
            const total = headerLen + remaining
            if (remaining > MAX_REMAINING_LENGTH || total > this.maxPacketSize)
                throw new ProtocolError(
                    `${packetName(first >> 4)} of ${total} bytes, over maxPacketSize ${this.maxPacketSize}`
                )
            let keepRaw = false
            if (first >> 4 === PacketType.Publish && total > this.decodeRoom) {
                if (total + 1 - headerLen <= this.rawRoom) keepRaw = true
                else if ((first & 0x06) === 0) {
                    // QoS 0 past the budget: dropped, counted
                    this.dropped++
                    this.pending -= total
                    this.skip = total
                    if (!this.skipBytes()) return null
                    // one frame a call: the caller yields now and then
                    return DROPPED_FRAME
                } else {
                    // QoS 1/2 are never dropped: wait for room
                    this.blocked = true
                    return null
                }
            }
            const head = this.chunks[0]
            if (this.offset + total <= head.length) {
                // the common case: the whole frame is inside the first
                // chunk, decoded in place
                const start = this.offset + headerLen
                this.offset += total
                if (this.offset >= head.length) {
                    this.offset = 0
                    this.chunks.shift()
                }
                this.pending -= total
                if (keepRaw) {
                    const raw = Buffer.alloc(1 + remaining)
                    raw[0] = first
                    raw.blitAt(1, head, start, remaining)
                    this.raw = raw
                    return RAW_FRAME
                }
                return this.decode(first, head, start, start + remaining)
            }
            // the frame spans chunks: assemble it as bytes arrive
            return this.startBody(first, headerLen, remaining, keepRaw)
        } catch (e) {
            const err =
                e instanceof ProtocolError
                    ? e
                    : new ProtocolError(
                          `cannot take in the packet: ${(e as Error).message || e}`
                      )
            this.failed = err
            this.chunks = []
            this.body = null
            this.head = null
            throw err
        }
    }

    /**
     * Starts assembling a frame that spans chunks. A PUBLISH to decode has
     * its topic and packet id decoded as soon as they are here, and its
     * payload filled straight into the payload buffer: no copy of the body
     * beside the payload. Returns null until the frame is complete.
     */
    private startBody(
        first: number,
        headerLen: number,
        remaining: number,
        keepRaw: boolean
    ): Packet {
        this.first = first
        this.frameSize = headerLen + remaining
        this.filled = 0
        if (keepRaw) {
            this.advance(headerLen)
            this.rawBody = true
            this.body = Buffer.alloc(1 + remaining)
            this.body[0] = first
            this.filled = 1
            return this.fillBody()
        }
        if (first >> 4 === PacketType.Publish && remaining >= 2) {
            // topic length (2), topic, packet id (2 with QoS 1/2): §3.3.2
            const hi = this.peek(headerLen)
            const lo = this.peek(headerLen + 1)
            if (lo < 0) return null
            const vlen = 2 + ((hi << 8) | lo) + ((first & 0x06) !== 0 ? 2 : 0)
            if (vlen <= remaining) {
                if (this.pending < headerLen + vlen) return null
                this.advance(headerLen)
                const vh = Buffer.alloc(vlen)
                this.copyInto(vh, 0, vlen)
                this.head = this.decode(first, vh, 0, vlen) as PublishPacket
                this.body = Buffer.alloc(remaining - vlen)
                return this.fillBody()
            }
        }
        this.advance(headerLen)
        this.body = Buffer.alloc(remaining)
        return this.fillBody()
    }

    /** Skips the bytes of a dropped frame; true once it is all gone. */
    private skipBytes() {
        while (this.skip > 0 && this.chunks.length) {
            const n = Math.min(this.chunks[0].length - this.offset, this.skip)
            this.skip -= n
            this.advance(n)
        }
        return this.skip === 0
    }

    /** Copies `n` unread bytes into `dst` at `at` and drops them from the input. */
    private copyInto(dst: Buffer, at: number, n: number) {
        while (n > 0 && this.chunks.length) {
            const ch = this.chunks[0]
            const k = Math.min(ch.length - this.offset, n)
            dst.blitAt(at, ch, this.offset, k)
            at += k
            n -= k
            this.advance(k)
        }
        return at
    }

    /** Byte `i` of the unread input, or -1 when it has not arrived yet. */
    private peek(i: number) {
        let k = this.offset + i
        for (let c = 0; c < this.chunks.length; ++c) {
            const ch = this.chunks[c]
            if (k < ch.length) return ch[k]
            k -= ch.length
        }
        return -1
    }

    /** Drops `n` bytes from the front of the unread input. */
    private advance(n: number) {
        this.offset += n
        while (this.chunks.length && this.offset >= this.chunks[0].length) {
            this.offset -= this.chunks[0].length
            this.chunks.shift()
        }
    }

    /**
     * Copies buffered bytes into the body under assembly; returns the packet
     * once it is complete, else null.
     */
    private fillBody(): Packet {
        const body = this.body
        this.filled = this.copyInto(body, this.filled, body.length - this.filled)
        if (this.filled < body.length) return null
        this.body = null
        this.filled = 0
        this.pending -= this.frameSize
        const head = this.head
        if (head) {
            this.head = null
            head.payload = body
            return head
        }
        if (this.rawBody) {
            this.rawBody = false
            this.raw = body
            return RAW_FRAME
        }
        return this.decode(this.first, body, 0, body.length)
    }
}
