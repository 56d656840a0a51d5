import { PublishPacket } from "./codec"

/**
 * The inbound side of a session: every PUBLISH the broker sent, from its
 * arrival until the broker has nothing more to ask for it. Protocol state
 * only: it knows nothing of sockets, fibers or timers; the client feeds it
 * events and writes the acknowledgements it returns.
 *
 * ## States of a received message
 *
 * | state | QoS | held as | leaves on |
 * |---|---|---|---|
 * | queued | 0, 1, 2 | `queue` (decoded packet, or raw frame bytes) + `heldIds` | `take()` |
 * | delivering | 0, 1, 2 | `current` + `heldIds` | `delivered()` |
 * | acknowledged | 1 | nothing (PUBACK written) | - |
 * | owed | 1 | `owedPuback` (PUBACK could not be written) | its DUP resend: PUBACK again |
 * | received | 2 | `awaitingRelease` (PUBREC written or owed) | PUBREL: PUBCOMP |
 *
 * QoS 1 and 2 are acknowledged only once the message went through the
 * callback: PUBACK for QoS 1, PUBREC for QoS 2 (§4.3.3 asks for PUBREC once
 * the receiver has accepted ownership, not at once). Until then the broker
 * keeps the message and sends it again after any loss or `disconnect()`, so
 * nothing it handed over is lost, and the client remembers ids only between
 * PUBREC and PUBREL (method B of §4.3.3).
 *
 * ## Events
 *
 * | event | what it does |
 * |---|---|
 * | PUBLISH, new id | queued |
 * | PUBLISH, id held (queued or delivering) | the broker's resend of the same message (it cannot reuse an id before the ack): ignored |
 * | PUBLISH QoS 2, id in `awaitingRelease` | already delivered: PUBREC again, not delivered |
 * | PUBLISH QoS 1 with DUP, id in `owedPuback` | already delivered: PUBACK, not delivered |
 * | PUBREL | the id is forgotten; PUBCOMP (also for an unknown id, §4.3.3) |
 * | delivery (callback returned) | QoS 1: PUBACK; QoS 2: PUBREC, id to `awaitingRelease` |
 * | loss of the link | nothing changes: queued messages are still delivered; an ack that cannot be written is owed |
 * | CONNACK, session present | nothing changes: the broker resends what it did not get an ack for |
 * | CONNACK, no session | ids forgotten; messages still queued are delivered without ack (`orphans`) |
 * | `disconnect()` | queue emptied: nothing in it was acknowledged, a persistent session on the broker sends it again |
 *
 * ## What survives a loss
 * Persistent session: everything above. Clean session: the queue (delivered,
 * never acknowledged: the broker dropped its side); ids are forgotten.
 *
 * @devsWhenUsed
 */
export class Inbound {
    /**
     * Received messages in arrival order: decoded packets, or raw frames
     * (first byte + body) kept undecoded while the application is behind.
     */
    readonly queue: (PublishPacket | Buffer)[] = []
    /** raw frames in `queue` */
    rawCount = 0
    /** bytes of what waits: queued frames and the message in the callback */
    waitingBytes = 0
    /** ids of QoS 1/2 messages of this session queued or being delivered */
    readonly heldIds: number[] = []
    /** QoS 2 ids delivered, PUBREC written or owed, until PUBREL */
    readonly awaitingRelease: number[] = []
    /** QoS 1 ids delivered whose PUBACK could not be written */
    readonly owedPuback: number[] = []
    /** entries at the head of `queue` from a session the broker no longer has */
    orphans = 0
    /**
     * bytes of the message in the callback, 0 when none (the client's
     * QoS 0 delivery path clears it inline, as `delivered` would)
     */
    currentBytes = 0
    /** the message in the callback belongs to a dropped session */
    private currentOrphan = false

    /** Messages held: queued, or in the callback. */
    held() {
        return this.queue.length + (this.currentBytes > 0 ? 1 : 0)
    }

    /**
     * A QoS 1/2 PUBLISH with `id` arrived. Returns `Fresh` when it is to be
     * queued (the id is then held), or what to answer instead.
     */
    arrive(qos: number, id: number, dup: boolean): number {
        if (this.heldIds.indexOf(id) >= 0) return Arrival.Resent
        if (qos === 2) {
            if (this.awaitingRelease.indexOf(id) >= 0) return Arrival.Pubrec
        } else {
            const i = this.owedPuback.indexOf(id)
            if (i >= 0) {
                this.owedPuback.insert(i, -1)
                // a resend of the delivered message; a first send (DUP 0)
                // is a new message that reuses the id
                if (dup) return Arrival.Puback
            }
        }
        this.heldIds.push(id)
        return Arrival.Fresh
    }

    /** Queues a message (its id already held by `arrive` for QoS 1/2). */
    push(m: PublishPacket | Buffer) {
        this.queue.push(m)
        this.waitingBytes += entryBytes(m)
        if (m instanceof Buffer) this.rawCount++
    }

    /** Takes the next message for the callback; null when none. */
    take(): PublishPacket | Buffer {
        if (this.queue.length === 0) return null
        const m = this.queue.shift()
        if (m instanceof Buffer) this.rawCount--
        this.currentOrphan = this.orphans > 0
        if (this.currentOrphan) this.orphans--
        // entryBytes inline: one call less per message
        this.currentBytes =
            m instanceof Buffer
                ? m.length
                : m.payload.length + m.topic.length + 8
        return m
    }

    /**
     * The callback returned for the message taken last (`qos`, `id`).
     * Returns the acknowledgement to write now (its packet type), 0 for
     * none. The state changes before the write: a write that fails leaves
     * the ack owed, a write that is lost with the link is answered again
     * when the broker resends.
     */
    delivered(qos: number, id: number): number {
        this.waitingBytes -= this.currentBytes
        this.currentBytes = 0
        if (qos === 0 || this.currentOrphan) return 0
        const i = this.heldIds.indexOf(id)
        if (i >= 0) this.heldIds.insert(i, -1)
        if (qos === 2) {
            this.awaitingRelease.push(id)
            return AckType.Pubrec
        }
        return AckType.Puback
    }

    /** The PUBACK for `id` could not be written: answer its resend. */
    pubackOwed(id: number) {
        if (this.owedPuback.indexOf(id) < 0) this.owedPuback.push(id)
    }

    /**
     * The message taken last could not be decoded (malformed bytes kept raw
     * while the application was behind): forget it without an ack.
     */
    dropCurrent(id: number) {
        this.waitingBytes -= this.currentBytes
        this.currentBytes = 0
        const i = this.heldIds.indexOf(id)
        if (i >= 0 && !this.currentOrphan) this.heldIds.insert(i, -1)
    }

    /** PUBREL: forgets the id (later PUBLISHes with it are new). */
    release(id: number) {
        const i = this.awaitingRelease.indexOf(id)
        if (i >= 0) this.awaitingRelease.insert(i, -1)
    }

    /**
     * CONNACK without a session: the broker forgot every id, so what is
     * still queued is delivered without an acknowledgement (§3.1.2.4).
     */
    sessionLost() {
        this.heldIds.insert(0, -this.heldIds.length)
        this.awaitingRelease.insert(0, -this.awaitingRelease.length)
        this.owedPuback.insert(0, -this.owedPuback.length)
        this.orphans = this.queue.length
        if (this.currentBytes > 0) this.currentOrphan = true
    }

    /** `disconnect()`: nothing queued was acknowledged; forget it all. */
    clear() {
        this.queue.insert(0, -this.queue.length)
        this.rawCount = 0
        this.orphans = 0
        this.waitingBytes = this.currentBytes
        this.heldIds.insert(0, -this.heldIds.length)
        this.currentOrphan = true
    }
}

/**
 * What a waiting message counts against the byte budget: a raw frame its
 * length, a decoded one its payload and topic plus a small overhead.
 */
export function entryBytes(m: PublishPacket | Buffer) {
    if (m instanceof Buffer) return m.length
    return m.payload.length + m.topic.length + 8
}

/**
 * The packet id of a raw PUBLISH frame (first byte, then the body): 0 for
 * QoS 0, -1 when the frame is too short to hold one.
 */
export function rawPacketId(raw: Buffer) {
    if (((raw[0] >> 1) & 3) === 0) return 0
    if (raw.length < 3) return -1
    // body: topic length (2), topic, packet id (2) (§3.3.2)
    const at = 3 + ((raw[1] << 8) | raw[2])
    if (at + 2 > raw.length) return -1
    return (raw[at] << 8) | raw[at + 1]
}

/** What `Inbound.arrive` says to do with a QoS 1/2 PUBLISH. */
export const enum Arrival {
    /** new: queue it */
    Fresh = 0,
    /** a resend of a message still held: drop it, answer nothing */
    Resent = 1,
    /** QoS 2 already delivered: answer PUBREC again */
    Pubrec = 2,
    /** QoS 1 already delivered, its PUBACK owed: answer PUBACK */
    Puback = 3,
}

/** Packet types of the acknowledgements `Inbound.delivered` asks for. */
export const enum AckType {
    Puback = 4,
    Pubrec = 5,
}
