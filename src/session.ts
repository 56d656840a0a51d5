import * as ds from "@devicescript/core"
import { PacketType, encodeAck, setDup } from "./codec"
import { ProtocolError } from "./errors"

/**
 * Protocol state of one MQTT session: packet ids, outgoing messages in
 * flight, incoming QoS 2 ids awaiting PUBREL, and pending (un)subscribe
 * requests. It knows nothing of sockets or timers: the client feeds it the
 * acknowledgements and writes what it returns.
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
    /** the encoded PUBLISH, kept for sending again with DUP */
    packet: Buffer
    /** where the packet id sits in `packet` */
    readonly idOffset: number
    /** the publisher waiting for this message, woken when it settles */
    waiter: ds.Fiber = null

    /**
     * @param packet the encoded PUBLISH; for QoS 1/2 its packet id is a
     *     placeholder until `Session.startFlight` assigns the real one
     * @param payloadLength length of its payload, to find the packet id
     */
    constructor(
        readonly qos: number,
        packet: Buffer,
        payloadLength: number
    ) {
        this.packet = packet
        this.idOffset = packet.length - payloadLength - 2
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

/** Packet ids 1..65535 (§2.3.1). */
const MAX_PACKET_ID = 65535

/**
 * The protocol state of one MQTT session, without timers or sockets: packet
 * ids, outgoing messages in flight, pending (un)subscribe requests and the
 * ids of incoming QoS 2 messages not yet released.
 *
 * @devsWhenUsed
 */
export class Session {
    /** sent and not yet acknowledged, in the order they were first sent */
    readonly inflight: OutMessage[] = []
    /** (un)subscribe requests waiting for their ack */
    readonly requests: PendingRequest[] = []
    /** ids of incoming QoS 2 messages received (PUBREC sent), until PUBREL */
    readonly inboundQos2: number[] = []
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
        return m
    }

    /** PUBACK received: the QoS 1 message it settles, or null if unknown. */
    onPuback(id: number) {
        const i = this.find(id)
        if (i < 0) return null
        if (this.inflight[i].state !== OutState.AwaitPuback)
            throw new ProtocolError(`PUBACK for QoS 2 message ${id}`)
        return this.settle(i)
    }

    /**
     * PUBREC received: returns the PUBREL to send (§4.3.3). A PUBREC for a
     * message already released is answered again; for an unknown id too, so
     * the broker can finish its side.
     */
    onPubrec(id: number) {
        const i = this.find(id)
        if (i >= 0) {
            const m = this.inflight[i]
            if (m.state === OutState.AwaitPuback)
                throw new ProtocolError(`PUBREC for QoS 1 message ${id}`)
            m.state = OutState.AwaitPubcomp
            m.packet = null // the PUBLISH is never sent again (§4.3.3)
        }
        return encodeAck(PacketType.Pubrel, id)
    }

    /** PUBCOMP received: the QoS 2 message it settles, or null. */
    onPubcomp(id: number) {
        const i = this.find(id)
        if (i < 0 || this.inflight[i].state !== OutState.AwaitPubcomp)
            return null
        return this.settle(i)
    }

    /**
     * What to send again on a new connection, in the original order
     * (§4.4): each PUBLISH not yet acknowledged with DUP set, and PUBREL
     * for each QoS 2 message that got its PUBREC.
     */
    resendPackets(): Buffer[] {
        const out: Buffer[] = []
        for (let i = 0; i < this.inflight.length; ++i) {
            const m = this.inflight[i]
            if (m.state === OutState.AwaitPubcomp)
                out.push(encodeAck(PacketType.Pubrel, m.packetId))
            else {
                setDup(m.packet)
                out.push(m.packet)
            }
        }
        return out
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

    /**
     * Incoming QoS 2 PUBLISH (§4.3.3, method B): true when it is new and
     * must be delivered, false for a duplicate of one not yet released.
     */
    receiveQos2(id: number) {
        if (this.inboundQos2.indexOf(id) >= 0) return false
        this.inboundQos2.push(id)
        return true
    }

    /** PUBREL received: forget the id; later PUBLISHes with it are new. */
    releaseQos2(id: number) {
        const i = this.inboundQos2.indexOf(id)
        if (i >= 0) this.inboundQos2.insert(i, -1)
    }

    /** Drops state a clean session does not keep (§3.1.2.4). */
    clearInbound() {
        this.inboundQos2.insert(0, -this.inboundQos2.length)
    }
}
