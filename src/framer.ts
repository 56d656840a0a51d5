import {
    MAX_REMAINING_LENGTH,
    Packet,
    PacketDecoder,
    packetName,
} from "./codec"
import { ProtocolError } from "./errors"

/**
 * The streaming frame decoder: chunks of any size go in, whole packets come
 * out. A frame that fits inside one chunk is sliced out of it; one that spans
 * chunks is assembled into a single body buffer as its bytes arrive, so at
 * most one frame body and the current chunk are held. A frame whose header
 * declares more than `maxPacketSize` bytes is refused as soon as its header
 * is complete, before its body can fill the heap.
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
        // one function for the hot path: a call costs as much as the work
        try {
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
                            "malformed remaining length: more than four bytes"
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
                    `${packetName(first >> 4)} of ${total} bytes is larger than the maximum packet size ${this.maxPacketSize}`
                )
            const head = this.chunks[0]
            if (this.offset + total <= head.length) {
                // the common case: the whole frame is inside the first chunk,
                // decoded in place (a copy of a 16 KB body may not fit the heap)
                const start = this.offset + headerLen
                this.offset += total
                if (this.offset >= head.length) {
                    this.offset = 0
                    this.chunks.shift()
                }
                this.pending -= total
                return this.decode(first, head, start, start + remaining)
            }
            // the frame spans chunks: assemble its body as bytes arrive
            this.advance(headerLen)
            this.first = first
            this.frameSize = total
            this.body = Buffer.alloc(remaining)
            this.filled = 0
            return this.fillBody()
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
            throw err
        }
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
     * Copies buffered bytes into the body under assembly; decodes it once it
     * is complete, else returns null.
     */
    private fillBody(): Packet {
        const body = this.body
        while (this.filled < body.length && this.chunks.length) {
            const ch = this.chunks[0]
            const n = Math.min(
                ch.length - this.offset,
                body.length - this.filled
            )
            body.blitAt(this.filled, ch, this.offset, n)
            this.filled += n
            this.advance(n)
        }
        if (this.filled < body.length) return null
        this.body = null
        this.filled = 0
        this.pending -= this.frameSize
        return this.decode(this.first, body, 0, body.length)
    }
}
