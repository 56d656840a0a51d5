import * as ds from "@devicescript/core"
import { PacketType } from "./codec"
import { ProtocolError } from "./errors"

/**
 * Protocol state of the outgoing side of one MQTT session: packet ids,
 * messages in flight and pending (un)subscribe requests (the incoming side is
 * `Inbound`). It knows nothing of sockets or timers: the client feeds it the
 * acknowledgements and writes what it returns.
 *
 * ## States of an outgoing QoS 1/2 message (§4.3)
 *
 * | state | on the wire | leaves on | after a loss |
 * |---|---|---|---|
 * | Queued | nothing | a place in the window: Await* | stays queued |
 * | AwaitPuback | PUBLISH | PUBACK: Done | PUBLISH again with DUP (§4.4) |
 * | AwaitPubrec | PUBLISH | PUBREC: AwaitPubcomp, PUBREL written | PUBLISH again with DUP |
 * | AwaitPubcomp | PUBREL | PUBCOMP: Done | PUBREL again |
 * | Done, Failed | - | - | - |
 *
 * "After a loss" is for a broker that kept the session. One that did not
 * (CONNACK without session present) knows none of the ids: every message in
 * flight starts over as a PUBLISH (`restart`), so it arrives at least once;
 * exactly once needs the persistent session.
 *
 * A broker that answers a message with the wrong acknowledgement (PUBACK for
 * QoS 2, PUBREC for QoS 1) breaks the protocol: the link is dropped (§4.8)
 * and the message sent again; the third time the message fails with an
 * error that names the cause instead of looping for ever.
 */

/** Where an outgoing message stands (MQTT 3.1.1 §4.3). */
export const enum OutState {
    /** waiting for a place in the in-flight window or for a connection */
    Queued = 0,
    /** QoS 1 sent, waiting for PUBACK */
    AwaitPuback = 1,
    /** QoS 2 sent, waiting for PUBREC */
    AwaitPubrec = 2,
    /** PUBREL sent, waiting for PUBCOMP */
    AwaitPubcomp = 3,
    /** acknowledged (or, for QoS 0, written) */
    Done = 4,
    /** given up: `error` says why */
    Failed = 5,
}

/**
 * An outgoing PUBLISH from `publish()` until it is acknowledged.
 *
 * @devsWhenUsed
 */
export class OutMessage {
    packetId = 0
    state = OutState.Queued
    error: Error = null
    /**
     * the encoded PUBLISH, kept for sending again with DUP; or, with
     * `payload`, only its head (fixed header, topic, packet id)
     */
    packet: Buffer
    /** the application's payload, written after `packet`; null when `packet` is whole */
    payload: Buffer
    /** where the packet id sits in `packet` */
    readonly idOffset: number
    /** the publisher waiting for this message, woken when it settles */
    waiter: ds.Fiber = null
    /** times the broker answered it with the wrong acknowledgement */
    refusals = 0
    /** its number from `MQTTClient.enqueue`, 0 for `publish` */
    seq = 0

    /**
     * @param packet the encoded PUBLISH, or its head when `payload` is
     *     given; for QoS 1/2 its packet id is a placeholder until
     *     `Session.startFlight` assigns the real one
     * @param payloadLength length of its payload, to find the packet id
     * @param payload the payload written after a head, or null
     */
    constructor(
        readonly qos: number,
        packet: Buffer,
        payloadLength: number,
        payload: Buffer = null
    ) {
        this.packet = packet
        this.payload = payload
        this.idOffset = payload
            ? packet.length - 2
            : packet.length - payloadLength - 2
    }

    /** True once the message no longer needs anything from the broker. */
    settled() {
        return this.state === OutState.Done || this.state === OutState.Failed
    }
}

/**
 * A SUBSCRIBE or UNSUBSCRIBE waiting for its SUBACK / UNSUBACK.
 *
 * @devsWhenUsed
 */
export class PendingRequest {
    /** granted QoS codes once the SUBACK arrived */
    granted: number[] = null
    done = false
    error: Error = null

    constructor(
        readonly type: PacketType,
        readonly packetId: number
    ) {}
}

/** Wrong acknowledgements of one message before it fails. */
const MAX_REFUSALS = 3

/** Packet ids 1..65535 (§2.3.1). */
const MAX_PACKET_ID = 65535

/**
 * The protocol state of the outgoing side of one MQTT session, without
 * timers or sockets: packet ids, messages in flight, pending (un)subscribe
 * requests.
 *
 * @devsWhenUsed
 */
export class Session {
    /** sent and not yet acknowledged, in the order they were first sent */
    readonly inflight: OutMessage[] = []
    /** (un)subscribe requests waiting for their ack */
    readonly requests: PendingRequest[] = []
    private lastId = 0

    /** True when `id` is used by a message in flight or a pending request. */
    idInUse(id: number) {
        for (let i = 0; i < this.inflight.length; ++i)
            if (this.inflight[i].packetId === id) return true
        for (let i = 0; i < this.requests.length; ++i)
            if (this.requests[i].packetId === id) return true
        return false
    }

    /**
     * The next free packet id, wrapping after 65535 and never one still in
     * use (§2.3.1). The callers bound what is in flight, so the search ends.
     */
    allocId() {
        for (let tries = 0; tries < MAX_PACKET_ID; ++tries) {
            this.lastId = this.lastId >= MAX_PACKET_ID ? 1 : this.lastId + 1
            if (!this.idInUse(this.lastId)) return this.lastId
        }
        throw new Error("no free packet id")
    }

    /**
     * Moves a queued QoS 1/2 message into flight: gives it a packet id,
     * written into its encoded PUBLISH, and returns the bytes to write.
     */
    startFlight(m: OutMessage) {
        const id = this.allocId()
        m.packetId = id
        m.packet[m.idOffset] = id >> 8
        m.packet[m.idOffset + 1] = id & 0xff
        m.state = m.qos === 1 ? OutState.AwaitPuback : OutState.AwaitPubrec
        this.inflight.push(m)
        return m.packet
    }

    private find(id: number) {
        for (let i = 0; i < this.inflight.length; ++i)
            if (this.inflight[i].packetId === id) return i
        return -1
    }

    private settle(i: number) {
        const m = this.inflight[i]
        this.inflight.insert(i, -1)
        m.state = OutState.Done
        m.packet = null
        m.payload = null
        return m
    }

    /**
     * The broker answered message `i` with the wrong acknowledgement: a
     * protocol error that drops the link (§4.8); the third time the message
     * fails with `why` and is returned (its id is free again).
     */
    private refuse(i: number, why: string) {
        const m = this.inflight[i]
        if (++m.refusals < MAX_REFUSALS)
            throw new ProtocolError(`${why} (packet id ${m.packetId})`)
        this.inflight.insert(i, -1)
        m.state = OutState.Failed
        m.error = new Error(
            `publish: ${why}; gave up after ${MAX_REFUSALS} attempts`
        )
        m.packet = null
        m.payload = null
        return m
    }

    /** PUBACK received: the QoS 1 message it settles, or null if unknown. */
    onPuback(id: number) {
        const i = this.find(id)
        if (i < 0) return null
        if (this.inflight[i].state !== OutState.AwaitPuback)
            return this.refuse(
                i,
                "PUBACK for a QoS 2 PUBLISH: the broker lacks QoS 2"
            )
        return this.settle(i)
    }

    /**
     * PUBREC received: the caller answers it with PUBREL (§4.3.3), also for
     * a message already released or an unknown id, so the broker can finish
     * its side. Returns a QoS 1 message that this wrong acknowledgement
     * failed for good (see `refuse`), else null.
     */
    onPubrec(id: number): OutMessage {
        const i = this.find(id)
        if (i < 0) return null
        const m = this.inflight[i]
        if (m.state === OutState.AwaitPuback)
            return this.refuse(
                i,
                "PUBREC for a QoS 1 PUBLISH"
            )
        // the PUBLISH stays for a session the broker loses (`restart`);
        // within this one it is never sent again (§4.3.3)
        m.state = OutState.AwaitPubcomp
        return null
    }

    /** PUBCOMP received: the QoS 2 message it settles, or null. */
    onPubcomp(id: number) {
        const i = this.find(id)
        if (i < 0 || this.inflight[i].state !== OutState.AwaitPubcomp)
            return null
        return this.settle(i)
    }

    /**
     * The broker has no session (CONNACK without session present): the ids
     * of the old one mean nothing to it, and a message it had acknowledged
     * with PUBREC is gone with that session. Every message in flight starts
     * over as a PUBLISH (at least once: exactly once needs a persistent
     * session, §4.3.3).
     */
    restart() {
        for (let i = 0; i < this.inflight.length; ++i) {
            const m = this.inflight[i]
            if (m.state === OutState.AwaitPubcomp)
                m.state = OutState.AwaitPubrec
        }
    }

    /** Ends every message in flight with `err` (used by disconnect). */
    failAll(err: Error) {
        const all = this.inflight.slice(0)
        this.inflight.insert(0, -this.inflight.length)
        for (let i = 0; i < all.length; ++i) {
            all[i].state = OutState.Failed
            all[i].error = err
        }
        this.failRequests(err)
        return all
    }

    /** Ends every pending (un)subscribe with `err`: they are not resent. */
    failRequests(err: Error) {
        const reqs = this.requests.slice(0)
        this.requests.insert(0, -this.requests.length)
        for (let i = 0; i < reqs.length; ++i) {
            reqs[i].error = err
            reqs[i].done = true
        }
        return reqs
    }

    /** Registers a SUBSCRIBE/UNSUBSCRIBE and gives it a packet id. */
    addRequest(type: PacketType) {
        const r = new PendingRequest(type, this.allocId())
        this.requests.push(r)
        return r
    }

    /** SUBACK/UNSUBACK received: the request it completes, or null. */
    completeRequest(type: PacketType, id: number, granted: number[]) {
        for (let i = 0; i < this.requests.length; ++i) {
            const r = this.requests[i]
            if (r.packetId !== id) continue
            const want =
                r.type === PacketType.Subscribe
                    ? PacketType.Suback
                    : PacketType.Unsuback
            if (type !== want)
                throw new ProtocolError(`unexpected ack for packet id ${id}`)
            this.requests.insert(i, -1)
            r.granted = granted
            r.done = true
            return r
        }
        return null
    }
}
