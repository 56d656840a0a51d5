import * as ds from "@devicescript/core"
import {
    AckPacket,
    ConnectPacket,
    Packet,
    PacketType,
    PublishPacket,
    SubscribePacket,
    Transport,
    decodePacketAt,
    encodeAck,
    encodeConnack,
    encodeEmpty,
    encodePublish,
    encodeSuback,
    packetName,
} from "../../../src/index"

/**
 * A small model of an MQTT 3.1.1 broker with one client, played through the
 * client's `Transport` seam, that can cut the link at any packet boundary.
 *
 * It answers CONNECT (session present when cleanSession is 0 and it holds a
 * session), SUBSCRIBE, UNSUBSCRIBE, PINGREQ and the client's QoS 0/1/2
 * PUBLISH flows (QoS 2 by §4.3.3 method B: the message is accepted, once, at
 * the PUBLISH that first carries its id; the id is remembered until PUBREL).
 * It delivers `deliver` messages to the client with its own session: at most
 * `window` in flight, QoS 1 until PUBACK, QoS 2 PUBLISH / PUBREC / PUBREL /
 * PUBCOMP; on a reconnect with a persistent session it resends per §4.4
 * (PUBLISH with DUP for those without PUBREC, PUBREL for those with, in the
 * original order); a clean session (at CONNECT with cleanSession 1, or when
 * the network connection of a clean session ends) forgets what is in flight:
 * those messages are "discarded", the ones never sent stay queued and go
 * out once the client subscribes again.
 *
 * Every packet on a connection, in both directions, gets a number (1, 2, ...
 * in the order it crosses the wire); `cuts` says where to break the link.
 * Answers go out asynchronously (a fiber after `ds.sleep(0)`), all the
 * packets queued in one scheduler turn in one chunk, as a network would.
 *
 * Protocol rules the client must keep are checked as it goes and collected
 * in `violations`: CONNECT first on each connection and only once, acks only
 * for ids the broker holds in the matching state (no PUBACK / PUBREC /
 * PUBCOMP for an id it does not hold, no PUBREL for an id that got no PUBREC
 * in this session), a QoS 2 id not reused before its PUBREL, resent PUBLISH
 * with DUP, and §4.6 order (on each connection PUBLISH packets in the order
 * the messages were first sent, PUBREL packets in the order of their
 * PUBLISHes).
 */

/** Where to break the link. */
export interface Cut {
    /** connection number, 1 for the first `open()` */
    conn: number
    /** packet number on that connection, both directions counted, from 1 */
    packet: number
    /** half of the packet's bytes get through before the break */
    inside: boolean
    /** the client's write at the cut (and every later one) throws */
    throwWrite: boolean
}

/** One packet that crossed (or started to cross) the wire. */
export interface WirePacket {
    /** true: client to broker */
    fromClient: boolean
    type: number
    /** client packets: how many write() calls carried its bytes */
    writes: number
}

/** A message the broker delivers to the client. */
export const enum DState {
    Queued = 0,
    /** PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2) */
    AwaitAck = 1,
    /** PUBREL sent, waiting for PUBCOMP */
    Released = 2,
    Done = 3,
    /** in flight when a clean session ended: forgotten */
    Discarded = 4,
}

/** @devsWhenUsed */
export class Delivery {
    state = DState.Queued
    id = 0
    /** a PUBLISH for it reached the client (on any connection) */
    pubDelivered = false
    /** a PUBREL for it reached the client */
    relDelivered = false
    /** PUBLISH packets that reached the client */
    sends = 0
    constructor(
        readonly index: number,
        readonly topic: string,
        readonly payload: string,
        readonly qos: number
    ) {}
}

const K_NONE = 0
const K_PUB = 1
const K_REL = 2
const K_REC = 3

/** Number of bytes of the fixed header, or -1 when it is not complete. */
function headerLen(b: Buffer) {
    let i = 1
    for (; i < 5; ++i) {
        if (i >= b.length) return -1
        if ((b[i] & 0x80) === 0) return i + 1
    }
    return 5
}

function remainingLen(b: Buffer) {
    let v = 0
    let mul = 1
    for (let i = 1; i < 5; ++i) {
        v += (b[i] & 0x7f) * mul
        if ((b[i] & 0x80) === 0) break
        mul *= 128
    }
    return v
}

function concat(a: Buffer, b: Buffer) {
    if (!a || a.length === 0) return b
    const r = Buffer.alloc(a.length + b.length)
    r.blitAt(0, a, 0, a.length)
    r.blitAt(a.length, b, 0, b.length)
    return r
}

function copyOf(b: Buffer, start: number, end: number) {
    const r = Buffer.alloc(end - start)
    if (end > start) r.blitAt(0, b, start, end - start)
    return r
}

/** @devsWhenUsed */
export class ModelBroker implements Transport {
    onData: (chunk: Buffer) => void = null
    onClose: (err: Error) => void = null

    // ------------------------------------------------------------ test input
    /** where to break the link */
    cuts: Cut[] = []
    /** messages to deliver to the client */
    deliveries: Delivery[] = []
    /** broker-to-client messages in flight at once */
    window = 2
    /** once set, no more cuts and packets are no longer numbered */
    frozen = false

    // ----------------------------------------------------------- observation
    /** the packets of each connection, in wire order */
    log: WirePacket[][] = []
    /** protocol rules the client broke */
    violations: string[] = []
    /** payloads the client published, once per acceptance (QoS 1 may repeat) */
    accepted: string[] = []
    /** connections opened */
    conns = 0
    /** ms of the last packet in either direction, or of the last open/cut */
    lastActivity = 0
    /** cuts that happened, as descriptions */
    fired: string[] = []

    // ------------------------------------------------------- connection state
    /** the current connection carries bytes (not cut, not closed) */
    private live = false
    private clientClosed = true
    /** the connection that was cut, and how its writes behave */
    private cutConn = 0
    private cutThrow = false
    private closeDelivered = false
    /** packets numbered on the current connection */
    private seq = 0
    /** client bytes of the packet being received */
    private pend: Buffer = null
    /** number of the client packet being received, 0 between packets */
    private cur = 0
    private curEntry: WirePacket = null
    private gotConnect = false
    private ended = true
    private out: Buffer[] = []
    private outKind: number[] = []
    private outRef: number[] = []
    /** §4.6 checks per connection: rank of the last PUBLISH / PUBREL */
    private lastPubRank = -1
    private lastRelRank = -1

    // ---------------------------------------------------------- session state
    private hasSession = false
    private cleanConn = true
    subscribed = false
    private grantedQos = 0
    /** client QoS 2 ids stored, waiting for PUBREL, and their payloads */
    rx2: number[] = []
    private rx2Payload: string[] = []
    /** ids whose PUBREC reached the client in this session */
    private recDelivered: number[] = []
    /** client payloads in the order first seen (their §4.6 rank) */
    private firstSeen: string[] = []
    /** client payloads seen in the current session */
    private seenInSession: string[] = []
    /** payloads whose PUBREC reached the client (in any session) */
    private recReached: string[] = []
    /** QoS 2 payloads accepted again after a PUBREC for them reached the client */
    private againAfterRec: string[] = []
    /** the payload the client last sent with each id */
    private idPayload: string[] = []
    private idOf: number[] = []
    private nextId = 1

    // -------------------------------------------------------------- transport

    async open(host: string, port: number, tls: boolean, timeoutMs: number) {
        this.conns++
        const c = this.conns
        this.live = true
        this.clientClosed = false
        this.closeDelivered = false
        this.seq = 0
        this.pend = null
        this.cur = 0
        this.curEntry = null
        this.gotConnect = false
        this.ended = false
        this.out = []
        this.outKind = []
        this.outRef = []
        this.closeConn = 0
        this.lastPubRank = -1
        this.lastRelRank = -1
        this.cleanConn = true
        this.log.push([])
        this.lastActivity = ds.millis()
        await ds.sleep(0)
        if (c !== this.conns || this.clientClosed)
            throw new Error("model: closed while opening")
    }

    async write(data: Buffer) {
        const c = this.conns
        if (this.clientClosed)
            throw new Error("model: write on a closed transport")
        if (this.cutConn === c) {
            if (this.cutThrow || this.closeDelivered)
                throw new Error("model: connection reset")
            return // the bytes vanish with the link
        }
        if (!this.live) throw new Error("model: connection closed")
        this.lastActivity = ds.millis()
        this.pend = concat(this.pend, data)
        let counted = false
        while (this.pend && this.pend.length > 0) {
            const b = this.pend
            if (this.cur === 0) {
                this.cur = this.frozen ? -1 : ++this.seq
                this.curEntry = {
                    fromClient: true,
                    type: b[0] >> 4,
                    writes: 1,
                }
                counted = true
                if (!this.frozen) this.log[c - 1].push(this.curEntry)
                const cut = this.cutAt(c, this.cur)
                if (cut && !cut.inside) {
                    this.cutNow(cut)
                    if (cut.throwWrite)
                        throw new Error("model: connection reset")
                    return
                }
            } else if (!counted) {
                this.curEntry.writes++
                counted = true
            }
            const hl = headerLen(b)
            if (hl < 0) return
            const total = hl + remainingLen(b)
            const cut = this.cutAt(c, this.cur)
            if (cut && cut.inside && b.length > total >> 1) {
                // half of it got through: a broker drops a partial packet
                this.cutNow(cut)
                if (cut.throwWrite) throw new Error("model: connection reset")
                return
            }
            if (b.length < total) return
            this.pend = b.length > total ? copyOf(b, total, b.length) : null
            this.cur = 0
            counted = false
            this.receive(b, hl, total)
            if (!this.live) return
        }
    }

    close() {
        if (this.clientClosed) return
        this.clientClosed = true
        this.live = false
        this.endConnection()
    }

    // ------------------------------------------------------------ the faults

    private cutAt(c: number, n: number): Cut {
        if (this.frozen || n <= 0) return null
        for (let i = 0; i < this.cuts.length; ++i) {
            const k = this.cuts[i]
            if (k.conn === c && k.packet === n) return k
        }
        return null
    }

    private cutNow(cut: Cut) {
        const c = this.conns
        this.fired.push(`c${cut.conn}#${cut.packet}`)
        this.live = false
        this.cutConn = c
        this.cutThrow = cut.throwWrite
        this.closeDelivered = false
        this.out = []
        this.outKind = []
        this.outRef = []
        this.pend = null
        this.lastActivity = ds.millis()
        this.endConnection()
        // the close event follows, as an event of its own
        this.closeConn = c
        this.closeErr =
            cut.packet % 2 === 0 ? null : new Error("model: link cut")
        this.kick()
    }

    /** The network connection ended, a clean session with it (§3.1.2.4). */
    private endConnection() {
        if (this.ended) return
        this.ended = true
        if (this.gotConnect && this.cleanConn) this.discardSession()
    }

    private discardSession() {
        this.hasSession = false
        this.subscribed = false
        this.rx2 = []
        this.rx2Payload = []
        this.recDelivered = []
        this.seenInSession = []
        for (let i = 0; i < this.deliveries.length; ++i) {
            const d = this.deliveries[i]
            if (d.state === DState.AwaitAck || d.state === DState.Released)
                d.state = DState.Discarded
        }
    }

    // ------------------------------------------------------ broker to client

    private queue(b: Buffer, kind: number, ref: number) {
        this.out.push(b)
        this.outKind.push(kind)
        this.outRef.push(ref)
        this.kick()
    }

    // One fiber per broker sends the chunks and the close events: starting
    // a fiber costs a scheduler tick (about 1 ms), resuming one does not.
    private pumpFiber: ds.Fiber = null
    private pumpStarted = false
    private disposed = false
    /** a close event to deliver: its connection and error */
    private closeConn = 0
    private closeErr: Error = null

    private kick() {
        if (!this.pumpStarted) {
            this.pumpStarted = true
            const self = this
            ;(async () => {
                await self.pumpLoop()
            }).start()
            return
        }
        const f = this.pumpFiber
        if (f && f.suspended) f.resume(true)
    }

    private async pumpLoop() {
        while (!this.disposed) {
            if (this.out.length === 0 && this.closeConn === 0) {
                this.pumpFiber = ds.Fiber.self()
                await ds.suspend(1000)
                this.pumpFiber = null
                continue
            }
            // as a network would: once the writer has yielded
            await ds.sleep(0)
            if (this.out.length > 0) this.flush()
            else if (this.closeConn !== 0) {
                const c = this.closeConn
                const err = this.closeErr
                this.closeConn = 0
                this.closeErr = null
                if (this.conns === c && !this.clientClosed) {
                    this.closeDelivered = true
                    const cb = this.onClose
                    if (cb) cb(err)
                }
            }
        }
    }

    /** Ends the broker's fiber; call it when the run is over. */
    dispose() {
        this.disposed = true
        this.frozen = true
        const f = this.pumpFiber
        if (f && f.suspended) f.resume(true)
    }

    /** Delivers what is queued as one chunk, cut where the schedule says. */
    private flush() {
        const c = this.conns
        const pkts = this.out
        const kinds = this.outKind
        const refs = this.outRef
        this.out = []
        this.outKind = []
        this.outRef = []
        if (!this.live) return
        // how much of the queue gets through
        let cut: Cut = null
        let whole = 0
        let bytes = 0
        for (; whole < pkts.length; ++whole) {
            const p = pkts[whole]
            const n = this.frozen ? -1 : ++this.seq
            if (!this.frozen)
                this.log[c - 1].push({
                    fromClient: false,
                    type: p[0] >> 4,
                    writes: 0,
                })
            cut = this.cutAt(c, n)
            if (cut) {
                if (cut.inside) bytes += p.length >> 1
                break
            }
            bytes += p.length
            this.delivered(kinds[whole], refs[whole])
        }
        this.lastActivity = ds.millis()
        if (bytes > 0 && !this.clientClosed) {
            let chunk = pkts[0]
            if (bytes !== chunk.length) {
                chunk = Buffer.alloc(bytes)
                let at = 0
                for (let i = 0; i < pkts.length && at < bytes; ++i) {
                    const p = pkts[i]
                    const n = p.length < bytes - at ? p.length : bytes - at
                    chunk.blitAt(at, p, 0, n)
                    at += n
                }
            }
            const cb = this.onData
            if (cb) cb(chunk)
        }
        if (cut) this.cutNow(cut)
    }

    private delivered(kind: number, ref: number) {
        if (kind === K_PUB) {
            const d = this.deliveries[ref]
            d.pubDelivered = true
            d.sends++
        } else if (kind === K_REL) this.deliveries[ref].relDelivered = true
        else if (kind === K_REC) {
            if (this.recDelivered.indexOf(ref) < 0) this.recDelivered.push(ref)
            const k = this.idOf.indexOf(ref)
            if (k >= 0 && this.recReached.indexOf(this.idPayload[k]) < 0)
                this.recReached.push(this.idPayload[k])
        }
    }

    private sendPublish(d: Delivery, dup: boolean) {
        const qos = d.qos < this.grantedQos ? d.qos : this.grantedQos
        this.queue(
            encodePublish(
                d.topic,
                Buffer.from(d.payload),
                qos,
                false,
                dup,
                d.id
            ),
            K_PUB,
            d.index
        )
    }

    /** Sends queued deliveries while the window has room. */
    private fill() {
        if (!this.subscribed || !this.live) return
        let inflight = 0
        for (let i = 0; i < this.deliveries.length; ++i) {
            const s = this.deliveries[i].state
            if (s === DState.AwaitAck || s === DState.Released) inflight++
        }
        for (let i = 0; i < this.deliveries.length; ++i) {
            if (inflight >= this.window) return
            const d = this.deliveries[i]
            if (d.state !== DState.Queued) continue
            d.id = this.nextId++
            d.state = DState.AwaitAck
            inflight++
            this.sendPublish(d, false)
        }
    }

    private findDelivery(id: number) {
        for (let i = 0; i < this.deliveries.length; ++i)
            if (this.deliveries[i].id === id) return this.deliveries[i]
        return null
    }

    // ------------------------------------------------------ client to broker

    private violation(msg: string) {
        this.violations.push(`c${this.conns}: ${msg}`)
    }

    /** A whole packet from the client: bytes [0, end), its body from `hl`. */
    private receive(pkt: Buffer, hl: number, end: number) {
        let p: Packet
        try {
            p = decodePacketAt(pkt[0], pkt, hl, end)
        } catch (e) {
            this.violation(`malformed packet: ${(e as Error).message}`)
            return
        }
        const t = p.type
        if (t === PacketType.Connect) {
            if (this.gotConnect) this.violation("a second CONNECT")
            this.gotConnect = true
            this.onConnect(p as ConnectPacket)
            return
        }
        if (!this.gotConnect) {
            this.violation(`${packetName(t)} before CONNECT`)
            return
        }
        if (t === PacketType.Publish) this.onPublish(p as PublishPacket)
        else if (t === PacketType.Pubrel)
            this.onPubrel((p as AckPacket).packetId)
        else if (t === PacketType.Puback)
            this.onPuback((p as AckPacket).packetId)
        else if (t === PacketType.Pubrec)
            this.onPubrec((p as AckPacket).packetId)
        else if (t === PacketType.Pubcomp)
            this.onPubcomp((p as AckPacket).packetId)
        else if (t === PacketType.Subscribe) {
            const s = p as SubscribePacket
            const granted: number[] = []
            for (let i = 0; i < s.subscriptions.length; ++i) {
                const q = s.subscriptions[i].qos
                granted.push(q)
                if (q > this.grantedQos || !this.subscribed) this.grantedQos = q
            }
            this.subscribed = true
            this.queue(encodeSuback(s.packetId, granted), K_NONE, 0)
            this.fill()
        } else if (t === PacketType.Unsubscribe) {
            this.subscribed = false
            this.queue(
                encodeAck(PacketType.Unsuback, (p as AckPacket).packetId),
                K_NONE,
                0
            )
        } else if (t === PacketType.Pingreq)
            this.queue(encodeEmpty(PacketType.Pingresp), K_NONE, 0)
        else if (t === PacketType.Disconnect) {
            this.live = false
            this.endConnection()
        } else this.violation(`unexpected ${packetName(t)}`)
    }

    private onConnect(p: ConnectPacket) {
        // a new session replaces a clean one at once
        this.cleanConn = p.cleanSession
        let present = false
        if (p.cleanSession) this.discardSession()
        else {
            present = this.hasSession
            if (!present) this.discardSession()
            this.hasSession = true
        }
        this.queue(encodeConnack(present, 0), K_NONE, 0)
        if (present) {
            // §4.4: resend in the original order
            for (let i = 0; i < this.deliveries.length; ++i) {
                const d = this.deliveries[i]
                if (d.state === DState.AwaitAck) this.sendPublish(d, true)
                else if (d.state === DState.Released)
                    this.queue(encodeAck(PacketType.Pubrel, d.id), K_REL, i)
            }
        }
        this.fill()
    }

    private rank(payload: string) {
        return this.firstSeen.indexOf(payload)
    }

    private onPublish(p: PublishPacket) {
        const payload = p.payload.toString()
        let r = this.rank(payload)
        if (r < 0) {
            this.firstSeen.push(payload)
            r = this.firstSeen.length - 1
        }
        const again = this.seenInSession.indexOf(payload) >= 0
        if (!again) this.seenInSession.push(payload)
        if (p.qos > 0) {
            if (r < this.lastPubRank)
                this.violation(
                    `§4.6: PUBLISH "${payload}" after "${this.firstSeen[this.lastPubRank]}", sent first in the other order`
                )
            else this.lastPubRank = r
            // §3.3.1.1: a redelivery in the same session carries DUP
            if (again && !p.dup)
                this.violation(`"${payload}" sent again without DUP`)
            const k = this.idOf.indexOf(p.packetId)
            if (k >= 0) this.idPayload[k] = payload
            else {
                this.idOf.push(p.packetId)
                this.idPayload.push(payload)
            }
        }
        if (p.qos === 0) this.accepted.push(payload)
        else if (p.qos === 1) {
            this.accepted.push(payload)
            this.queue(encodeAck(PacketType.Puback, p.packetId), K_NONE, 0)
        } else {
            const i = this.rx2.indexOf(p.packetId)
            if (i < 0) {
                // method B: accepted once, at the PUBLISH that brings the id
                if (this.recReached.indexOf(payload) >= 0)
                    this.againAfterRec.push(payload)
                this.accepted.push(payload)
                this.rx2.push(p.packetId)
                this.rx2Payload.push(payload)
                const j = this.recDelivered.indexOf(p.packetId)
                if (j >= 0) this.recDelivered.insert(j, -1)
            } else if (this.rx2Payload[i] !== payload)
                this.violation(
                    `QoS 2 id ${p.packetId} reused for "${payload}" before the PUBREL of "${this.rx2Payload[i]}"`
                )
            this.queue(
                encodeAck(PacketType.Pubrec, p.packetId),
                K_REC,
                p.packetId
            )
        }
    }

    private onPubrel(id: number) {
        const k = this.idOf.indexOf(id)
        if (k >= 0) {
            const r = this.rank(this.idPayload[k])
            if (r < this.lastRelRank)
                this.violation(
                    `§4.6: PUBREL of "${this.idPayload[k]}" after that of "${this.firstSeen[this.lastRelRank]}"`
                )
            else this.lastRelRank = r
        }
        const i = this.rx2.indexOf(id)
        if (i >= 0) {
            this.rx2.insert(i, -1)
            this.rx2Payload.insert(i, -1)
        } else if (this.recDelivered.indexOf(id) < 0)
            this.violation(`PUBREL ${id}: no PUBREC for it in this session`)
        this.queue(encodeAck(PacketType.Pubcomp, id), K_NONE, 0)
    }

    private onPuback(id: number) {
        const d = this.findDelivery(id)
        if (
            !d ||
            d.qos !== 1 ||
            d.state !== DState.AwaitAck ||
            !d.pubDelivered
        ) {
            this.violation(`PUBACK ${id}: ${this.why(d)}`)
            return
        }
        d.state = DState.Done
        this.fill()
    }

    private onPubrec(id: number) {
        const d = this.findDelivery(id)
        if (d && d.qos === 2 && d.pubDelivered) {
            if (d.state === DState.AwaitAck) {
                d.state = DState.Released
                this.queue(encodeAck(PacketType.Pubrel, id), K_REL, d.index)
                return
            }
            // the answer to a resent copy: PUBREL is on its way already
            if (d.state === DState.Released) return
        }
        this.violation(`PUBREC ${id}: ${this.why(d)}`)
    }

    private onPubcomp(id: number) {
        const d = this.findDelivery(id)
        if (
            !d ||
            d.qos !== 2 ||
            d.state !== DState.Released ||
            !d.relDelivered
        ) {
            this.violation(`PUBCOMP ${id}: ${this.why(d)}`)
            return
        }
        d.state = DState.Done
        this.fill()
    }

    private why(d: Delivery) {
        if (!d) return "no message with this id"
        const names = ["queued", "in flight", "released", "done", "discarded"]
        let s = `"${d.payload}" (QoS ${d.qos}) is ${names[d.state]}`
        if (!d.pubDelivered) s += ", its PUBLISH never arrived"
        else if (d.state === DState.Released && !d.relDelivered)
            s += ", its PUBREL never arrived"
        return s
    }

    // ----------------------------------------------------------------- queries

    /** Deliveries still queued or in flight. */
    unfinished() {
        let n = 0
        for (let i = 0; i < this.deliveries.length; ++i) {
            const s = this.deliveries[i].state
            if (s !== DState.Done && s !== DState.Discarded) n++
        }
        return n
    }

    /** Nothing in flight either way and nothing waiting to be sent. */
    idle() {
        return (
            this.unfinished() === 0 &&
            this.rx2.length === 0 &&
            this.out.length === 0
        )
    }

    /** The current connection is up and carries bytes. */
    isLive() {
        return this.live
    }

    /** How many times the broker accepted `payload` from the client. */
    acceptedCount(payload: string) {
        let n = 0
        for (let i = 0; i < this.accepted.length; ++i)
            if (this.accepted[i] === payload) n++
        return n
    }

    /**
     * The client's QoS 2 message `payload` was accepted again although a
     * PUBREC for it had reached the client: it knew the broker had it.
     */
    acceptedAfterPubrec(payload: string) {
        return this.againAfterRec.indexOf(payload) >= 0
    }

    /** Describes the broker's leftover state, or "" when there is none. */
    leftovers() {
        const parts: string[] = []
        for (let i = 0; i < this.deliveries.length; ++i) {
            const d = this.deliveries[i]
            if (d.state === DState.Queued) parts.push(`"${d.payload}" queued`)
            else if (d.state === DState.AwaitAck)
                parts.push(
                    `"${d.payload}" awaiting ${d.qos === 1 ? "PUBACK" : "PUBREC"}`
                )
            else if (d.state === DState.Released)
                parts.push(`"${d.payload}" awaiting PUBCOMP`)
        }
        for (let i = 0; i < this.rx2.length; ++i)
            parts.push(
                `QoS 2 id ${this.rx2[i]} ("${this.rx2Payload[i]}") awaiting PUBREL`
            )
        return parts.join(", ")
    }
}
