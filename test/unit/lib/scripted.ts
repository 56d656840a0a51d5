import * as ds from "@devicescript/core"
import { expect } from "@devicescript/test"
import {
    AckPacket,
    ConnectPacket,
    MQTTClient,
    MQTTClientOptions,
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
} from "../../../src/index"

/*
 * Test doubles for the DeviceScript unit tests (test/unit/*.ts): a scripted
 * transport that records what the client writes and lets the test play the
 * broker's side, a fake of the runtime's socket primitives under the real
 * DeviceSocketTransport, and a small model broker that answers both with
 * MQTT 3.1.1 rules and reports what a broker would see as a violation.
 * test/node/unit.test.mjs runs only the files at the top of test/unit, so
 * this module is not run on its own.
 */

/** A large PUBLISH the client wrote: its payload is not kept (the heap is small). */
export interface WrittenPublish extends PublishPacket {
    /** payload bytes; `payload` is null when there were more than `keepMax` */
    payloadLength: number
}

/**
 * Decodes the byte stream a client writes into packets, each tagged with
 * the connection it was written on and the time. Streaming: a packet may
 * span writes. A PUBLISH of more than `keepMax` bytes is not assembled: only
 * its header is kept and its payload counted, so recording a 16 KB publish
 * costs no 16 KB buffer.
 */
export class PacketLog {
    readonly written: Packet[] = []
    /** the connection of each packet in `written` */
    readonly conns: number[] = []
    /** ds.millis() when each packet in `written` was written */
    readonly times: number[] = []
    /** larger PUBLISH payloads are counted, not kept */
    keepMax = 4096
    private first = -1
    private lenDone = false
    private remaining = 0
    private mult = 1
    private body: Buffer = null
    private filled = 0
    private large = false

    /** Forgets a partial packet (a new connection). */
    resetLog() {
        this.first = -1
        this.body = null
    }

    /** True when no packet is partly written. */
    atBoundary() {
        return this.first < 0
    }

    /** Records bytes written on connection `conn`. */
    record(data: Buffer, conn: number) {
        let i = 0
        const n = data.length
        while (i < n) {
            if (this.first < 0) {
                this.first = data[i++]
                this.remaining = 0
                this.mult = 1
                this.lenDone = false
                continue
            }
            if (!this.lenDone) {
                const b = data[i++]
                this.remaining += (b & 0x7f) * this.mult
                this.mult *= 128
                if ((b & 0x80) !== 0) continue
                this.lenDone = true
                this.filled = 0
                this.large =
                    this.first >> 4 === PacketType.Publish &&
                    this.remaining > this.keepMax
                this.body = Buffer.alloc(
                    this.large ? Math.min(this.remaining, 512) : this.remaining
                )
                if (this.remaining === 0) this.finish(conn)
                continue
            }
            const take = Math.min(n - i, this.remaining - this.filled)
            const room = this.body.length - this.filled
            if (room > 0)
                this.body.blitAt(this.filled, data, i, Math.min(take, room))
            this.filled += take
            i += take
            if (this.filled === this.remaining) this.finish(conn)
        }
    }

    private finish(conn: number) {
        const first = this.first
        const body = this.body
        this.first = -1
        this.body = null
        let p: Packet
        if (this.large) {
            const tl = (body[0] << 8) | body[1]
            const qos = (first >> 1) & 3
            const at = 2 + tl
            const w: WrittenPublish = {
                type: PacketType.Publish,
                topic: body.slice(2, at).toString(),
                payload: null,
                qos,
                retain: (first & 1) !== 0,
                dup: (first & 8) !== 0,
                packetId: qos > 0 ? (body[at] << 8) | body[at + 1] : 0,
                payloadLength: this.remaining - at - (qos > 0 ? 2 : 0),
            }
            p = w
        } else {
            p = decodePacketAt(first, body, 0, body.length)
            if (p.type === PacketType.Publish) {
                const w = p as WrittenPublish
                w.payloadLength = w.payload.length
            }
        }
        this.written.push(p)
        this.conns.push(conn)
        this.times.push(ds.millis())
    }

    /** Packets of a type written so far. */
    sent(type: PacketType) {
        return this.written.filter(p => p.type === type)
    }

    /** Packets of a type written on connection `conn`. */
    sentOn(type: PacketType, conn: number) {
        const out: Packet[] = []
        for (let i = 0; i < this.written.length; ++i)
            if (this.conns[i] === conn && this.written[i].type === type)
                out.push(this.written[i])
        return out
    }

    /** Every packet written on connection `conn`. */
    allOn(conn: number) {
        const out: Packet[] = []
        for (let i = 0; i < this.written.length; ++i)
            if (this.conns[i] === conn) out.push(this.written[i])
        return out
    }

    /** The times of the CONNECT packets. */
    connectTimes() {
        const out: number[] = []
        for (let i = 0; i < this.written.length; ++i)
            if (this.written[i].type === PacketType.Connect)
                out.push(this.times[i])
        return out
    }

    /** Waits (bounded) until `n` packets of `type` were written. */
    async waitSent(type: PacketType, n: number, ms = 3000) {
        const end = ds.millis() + ms
        while (this.sent(type).length < n) {
            if (ds.millis() > end)
                throw new Error(
                    `waited ${ms} ms for ${n} packets of type ${type}, got ${this.sent(type).length}`
                )
            await ds.sleep(2)
        }
        return this.sent(type)
    }
}

/** What the model broker needs from a link. */
export interface Link {
    written: Packet[]
    conns: number[]
    /** the current connection's number (1, 2, ...) */
    conn: number
    isOpen(): boolean
    /** the broker sends bytes on the current connection */
    feed(b: Buffer): void
}

/** What a write rule does when a write carries a matching packet. */
export const enum RuleKind {
    /** the write throws and the link is down */
    Fail = 0,
    /** the write suspends `ms` before its bytes go out */
    StallBefore = 1,
    /** the bytes go out, then the write suspends `ms` */
    StallAfter = 2,
}

interface WriteRule {
    match: (first: number) => boolean
    kind: RuleKind
    ms: number
    closeEvent: boolean
}

/** A write-rule match: the packet's type. */
export function isType(t: PacketType) {
    return (first: number) => first >> 4 === t
}

/** A write-rule match: a PUBLISH sent again (DUP set). */
export function isDupPublish(first: number) {
    return first >> 4 === PacketType.Publish && (first & 8) !== 0
}

/**
 * A transport the test scripts: it records what the client writes (decoded)
 * and lets the test play the broker's side. A write belongs to the
 * connection it started on: it never lands on a later one.
 */
export class ScriptedTransport extends PacketLog implements Transport, Link {
    onData: (chunk: Buffer) => void = null
    onClose: (err: Error) => void = null
    open_ = false
    /** connections opened so far; the current one's number */
    conn = 0
    /** "host:port" of every open attempt */
    opens: string[] = []
    /** hosts whose connections are refused */
    refuse: string[] = []
    /** ms open() suspends before the connection is up */
    openDelay = 0
    /**
     * An open() superseded while it waited (by close() or another open())
     * resolves instead of throwing, as the device socket did at 229d9e8;
     * the client then writes on the newer connection.
     */
    supersededOpenResolves = false
    /** socket writes so far */
    writes = 0
    /** ms the next write suspends before it completes (a busy socket) */
    delayNext = 0
    /** write rules that fired */
    fired = 0
    private rules: WriteRule[] = []
    /** no event for the current connection any more */
    private quiet = false
    /** open() calls that returned or threw */
    opensEnded = 0
    private attempts = 0
    private closes = 0

    async open(host: string, port: number, tls: boolean, timeoutMs: number) {
        try {
            await this.opening(host, port)
        } finally {
            this.opensEnded++
        }
    }

    private async opening(host: string, port: number) {
        this.opens.push(`${host}:${port}`)
        if (this.refuse.indexOf(host) >= 0)
            throw new Error(`${host}: connection refused`)
        const my = ++this.attempts
        const closes = this.closes
        if (this.openDelay > 0) {
            await ds.sleep(this.openDelay)
            if (my !== this.attempts || closes !== this.closes) {
                if (this.supersededOpenResolves) return
                throw new Error("scripted: closed while connecting")
            }
        }
        this.conn++
        this.open_ = true
        this.quiet = false
        this.resetLog()
    }

    isOpen() {
        return this.open_
    }

    async write(data: Buffer) {
        if (!this.open_) throw new Error("scripted: not connected")
        const conn = this.conn
        const rule = this.matchRule(data)
        if (rule) this.fired++
        if (rule && rule.kind === RuleKind.Fail) {
            this.open_ = false
            const err = new Error("scripted: write failed, the link is down")
            if (rule.closeEvent) {
                const self = this
                ;(async () => {
                    await ds.sleep(0)
                    self.closeEvent(conn, err)
                }).start()
            }
            throw err
        }
        if (this.delayNext > 0) {
            const ms = this.delayNext
            this.delayNext = 0
            await ds.sleep(ms)
        }
        if (rule && rule.kind === RuleKind.StallBefore) await ds.sleep(rule.ms)
        if (conn !== this.conn || !this.open_)
            throw new Error("scripted: the connection ended during the write")
        this.writes++
        this.record(data, conn)
        if (rule && rule.kind === RuleKind.StallAfter) await ds.sleep(rule.ms)
    }

    close() {
        this.open_ = false
        this.quiet = true
        this.closes++
    }

    private closeEvent(conn: number, err: Error) {
        if (conn !== this.conn || this.quiet) return
        this.quiet = true
        this.open_ = false
        if (this.onClose) this.onClose(err)
    }

    /** The broker sends bytes (nothing arrives on a link that is down). */
    feed(b: Buffer) {
        if (this.open_ && this.onData) this.onData(b)
    }

    /** The broker sends several packets in one chunk. */
    feedTogether(...parts: Buffer[]) {
        this.feed(Buffer.concat(...parts))
    }

    /** The link fails (`err`) or the broker closes it (null). */
    cut(err: Error = new Error("link cut")) {
        this.open_ = false
        this.closeEvent(this.conn, err)
    }

    /** The next write that carries a packet matching `match` throws; the link is down. */
    failNext(match: (first: number) => boolean, closeEvent = true) {
        this.rules.push({ match, kind: RuleKind.Fail, ms: 0, closeEvent })
    }

    /** The next write that carries a packet matching `match` suspends `ms`. */
    stallNext(
        match: (first: number) => boolean,
        ms: number,
        kind: RuleKind = RuleKind.StallBefore
    ) {
        this.rules.push({ match, kind, ms, closeEvent: false })
    }

    /** The first rule matching a packet that starts in `data`, removed. */
    private matchRule(data: Buffer): WriteRule {
        if (this.rules.length === 0 || !this.atBoundary()) return null
        let pos = 0
        while (pos < data.length) {
            const f = data[pos]
            for (let k = 0; k < this.rules.length; ++k)
                if (this.rules[k].match(f)) {
                    const r = this.rules[k]
                    this.rules.insert(k, -1)
                    return r
                }
            let rem = 0
            let mult = 1
            let i = pos + 1
            for (;;) {
                if (i >= data.length) return null
                const b = data[i++]
                rem += (b & 0x7f) * mult
                mult *= 128
                if ((b & 0x80) === 0) break
            }
            pos = i + rem
        }
        return null
    }
}

type DsSockets = typeof ds & {
    _socketOpen(host: string, port: number): number
    _socketClose(): number
    _socketWrite(buf: Buffer | string): number
    _socketOnEvent(event: string, arg?: Buffer | string): void
}

/**
 * A fake of the runtime's socket primitives (`_socketOpen`, `_socketWrite`,
 * `_socketClose`, events through `_socketOnEvent`), to run the real
 * DeviceSocketTransport against the model broker. `busy` makes writes
 * return -1 (the stack's buffers are full). Call `uninstall()` in finally.
 */
export class FakeSockets extends PacketLog implements Link {
    /** sockets opened so far; the current one's number */
    conn = 0
    busy = false
    /** writes answered -1 */
    busyAnswers = 0
    /** ms from `_socketOpen` to the "open" event */
    openDelay = 0
    private live = false
    private closed = false
    private saved: any[] = null

    install() {
        const s = ds as any
        this.saved = [s._socketOpen, s._socketWrite, s._socketClose]
        const self = this
        s._socketOpen = (host: string, port: number) => self.sockOpen()
        s._socketWrite = (b: Buffer) => self.sockWrite(b)
        s._socketClose = () => self.sockClose()
    }

    uninstall() {
        if (!this.saved) return
        const s = ds as any
        s._socketOpen = this.saved[0]
        s._socketWrite = this.saved[1]
        s._socketClose = this.saved[2]
        this.saved = null
    }

    private sockOpen() {
        this.conn++
        this.live = false
        this.closed = false
        this.resetLog()
        const handler = (ds as DsSockets)._socketOnEvent
        const n = this.conn
        const self = this
        ;(async () => {
            if (self.openDelay > 0) await ds.sleep(self.openDelay)
            else await ds.sleep(0)
            if (self.conn !== n || self.closed) return
            self.live = true
            handler("open")
        }).start()
        return 0
    }

    private sockWrite(b: Buffer) {
        if (this.closed) return -100
        if (this.busy) {
            this.busyAnswers++
            return -1
        }
        // a socket still connecting buffers the bytes (Node does)
        this.record(b, this.conn)
        return 0
    }

    private sockClose() {
        this.closed = true
        this.live = false
        return 0
    }

    isOpen() {
        return this.live && !this.closed
    }

    feed(b: Buffer) {
        if (this.isOpen()) (ds as DsSockets)._socketOnEvent("data", b)
    }
}

/** A message the model broker sends to the client (QoS 1/2 until acknowledged). */
export class BrokerMsg {
    /** 0 PUBLISH sent, waiting for PUBACK/PUBREC; 1 PUBREL sent; 2 done */
    state = 0
    /** times the client's callback got it (`Broker.delivered`) */
    deliveries = 0
    /** sent at least once (a resend carries DUP) */
    sent = false
    constructor(
        readonly id: number,
        readonly topic: string,
        readonly payload: string,
        readonly qos: number
    ) {}
}

interface Timer {
    at: number
    conn: number
    what: number
}

/**
 * A small model broker over a Link: it answers CONNECT (session present
 * when it holds a session for a connect(false)), SUBSCRIBE, PINGREQ and the
 * client's publishes, sends messages with `publish` and resends them after
 * a reconnect (§4.4), and records as `violations` what a broker would
 * complain about: a packet before CONNECT or a second CONNECT on a
 * connection, a PUBACK/PUBREC for no message in flight, a PUBACK before the
 * message reached the client's callback, a PUBCOMP without a PUBREL on the
 * same connection. The test's message callback reports deliveries with
 * `delivered(payload)`; payloads must be unique within a test.
 *
 * It polls the link's log from a fiber of its own: call `stop()` in finally.
 */
export class Broker {
    /** messages to the client in flight (QoS 1/2), in order */
    readonly msgs: BrokerMsg[] = []
    readonly all: BrokerMsg[] = []
    readonly violations: string[] = []
    hasSession = false
    /** answer CONNECT */
    accept = true
    /** CONNECTs answered at most (a client in a reconnect storm then waits for its timeout) */
    acceptMax = 100
    /** CONNECTs answered */
    connects = 0
    /** acknowledge the client's publishes */
    ackDevice = true
    /** answer a QoS 2 PUBLISH with PUBACK (RabbitMQ 3.10) */
    qos2AsPuback = false
    /** ms before PINGRESP */
    pingDelay = 0
    /** ms between CONNACK and the resends; 0: in the CONNACK's chunk */
    resendDelay = 0
    /** PINGREQs seen */
    pings = 0
    private readonly withConnack: BrokerMsg[] = []
    private cursor = 0
    private running = false
    private connacked = 0
    private seenConn = 0
    private connectConn = 0
    private relConn = 0
    private rel: number[] = []
    private timers: Timer[] = []

    constructor(readonly link: Link) {}

    start() {
        this.running = true
        const self = this
        ;(async () => {
            const end = ds.millis() + 60000
            while (self.running && ds.millis() < end) {
                self.step()
                await ds.sleep(1)
            }
        }).start()
        return this
    }

    stop() {
        this.running = false
    }

    /** Handles what was written since the last step, and due timers. */
    step() {
        const w = this.link.written
        while (this.cursor < w.length) {
            const i = this.cursor++
            this.handle(w[i], this.link.conns[i])
        }
        const now = ds.millis()
        for (let k = 0; k < this.timers.length;) {
            const tm = this.timers[k]
            if (tm.at > now) {
                ++k
                continue
            }
            this.timers.insert(k, -1)
            if (tm.what === PacketType.Pingresp)
                this.send(tm.conn, encodeEmpty(PacketType.Pingresp))
            else if (tm.conn === this.link.conn)
                this.send(tm.conn, this.resends(tm.conn))
        }
    }

    /** True when the broker has a connection with CONNACK sent. */
    live() {
        return this.link.isOpen() && this.connacked === this.link.conn
    }

    /** Sends a message to the client now (or at the next connection). */
    publish(topic: string, payload: string, qos: number) {
        const m = this.newMsg(topic, payload, qos)
        if (qos > 0) this.msgs.push(m)
        if (this.live()) this.sendMsg(this.link.conn, m)
        return m
    }

    /** A message sent right after the next CONNACK, in the same chunk. */
    publishWithConnack(topic: string, payload: string, qos: number) {
        const m = this.newMsg(topic, payload, qos)
        this.withConnack.push(m)
        return m
    }

    /** A message of the broker's, with a free packet id for QoS 1/2. */
    private newMsg(topic: string, payload: string, qos: number) {
        const m = new BrokerMsg(
            qos === 0 ? 0 : this.freeId(),
            topic,
            payload,
            qos
        )
        this.all.push(m)
        return m
    }

    /** The client's callback got `payload`. */
    delivered(payload: string) {
        for (const m of this.all)
            if (m.payload === payload) {
                m.deliveries++
                return
            }
        this.violations.push(`delivered an unknown message "${payload}"`)
    }

    /** The broker loses its session: messages in flight are gone. */
    forgetSession() {
        this.msgs.insert(0, -this.msgs.length)
        this.hasSession = false
    }

    /** Messages in flight to the client. */
    inflight() {
        return this.msgs.length
    }

    /** Deliveries of the message with `payload`. */
    deliveries(payload: string) {
        for (const m of this.all) if (m.payload === payload) return m.deliveries
        return -1
    }

    /**
     * "" when all is well; otherwise what went wrong: violations, messages
     * not delivered exactly once (`leastOnce`: QoS 1 at least once),
     * messages still in flight.
     */
    problems(leastOnce = false) {
        const out = this.violations.slice(0)
        for (const m of this.all) {
            if (m.qos === 0) continue
            const ok =
                m.qos === 1 && leastOnce
                    ? m.deliveries >= 1
                    : m.deliveries === 1
            if (!ok)
                out.push(
                    `QoS ${m.qos} "${m.payload}" delivered ${m.deliveries} times`
                )
        }
        for (const m of this.msgs)
            out.push(`"${m.payload}" still in flight at the broker`)
        return out.join("; ")
    }

    /** Waits (bounded by `max` ms) until nothing was written for `ms`. */
    async quiesce(ms = 60, max = 2000) {
        const end = ds.millis() + max
        let n = this.link.written.length
        let since = ds.millis()
        while (ds.millis() < end) {
            await ds.sleep(5)
            if (this.link.written.length !== n || this.timers.length > 0) {
                n = this.link.written.length
                since = ds.millis()
            } else if (ds.millis() - since >= ms) return
        }
    }

    /** Waits (bounded) until no message is in flight to the client; false on timeout. */
    async drained(ms = 3000) {
        const self = this
        return await until(() => self.msgs.length === 0, ms)
    }

    private freeId() {
        for (let id = 1; ; ++id) {
            let used = false
            for (const m of this.msgs) if (m.id === id) used = true
            for (const m of this.withConnack) if (m.id === id) used = true
            if (!used) return id
        }
    }

    private find(id: number) {
        for (const m of this.msgs) if (m.id === id) return m
        return null
    }

    private remove(m: BrokerMsg) {
        m.state = 2
        const i = this.msgs.indexOf(m)
        if (i >= 0) this.msgs.insert(i, -1)
    }

    private send(conn: number, b: Buffer) {
        if (b && b.length > 0 && conn === this.link.conn && this.link.isOpen())
            this.link.feed(b)
    }

    private publishBytes(m: BrokerMsg) {
        const b = encodePublish(
            m.topic,
            Buffer.from(m.payload),
            m.qos,
            false,
            m.sent && m.qos > 0,
            m.id
        )
        m.sent = true
        return b
    }

    private sendMsg(conn: number, m: BrokerMsg) {
        this.send(conn, this.publishBytes(m))
    }

    private pubrel(conn: number, id: number) {
        if (this.relConn !== conn) {
            this.relConn = conn
            this.rel = []
        }
        if (this.rel.indexOf(id) < 0) this.rel.push(id)
        return encodeAck(PacketType.Pubrel, id)
    }

    /** §4.4: unacknowledged PUBLISHes again (DUP) and PUBRELs, in order. */
    private resends(conn: number) {
        const parts: Buffer[] = []
        for (const m of this.msgs) {
            if (m.state === 0) parts.push(this.publishBytes(m))
            else parts.push(this.pubrel(conn, m.id))
        }
        return parts.length > 0 ? Buffer.concat(...parts) : null
    }

    private handle(p: Packet, conn: number) {
        const t = p.type
        if (t === PacketType.Connect) {
            if (this.connectConn === conn) {
                this.violations.push(`a second CONNECT on connection ${conn}`)
                return
            }
            this.connectConn = conn
        } else if (this.connectConn !== conn && this.seenConn !== conn)
            this.violations.push(
                `packet type ${t} before CONNECT on connection ${conn}`
            )
        this.seenConn = conn
        if (t === PacketType.Connect) {
            if (!this.accept || this.connects >= this.acceptMax) return
            this.connects++
            const clean = (p as ConnectPacket).cleanSession
            if (clean) this.forgetSession()
            const sp = !clean && this.hasSession
            this.hasSession = !clean
            this.connacked = conn
            const parts: Buffer[] = [encodeConnack(sp, 0)]
            if (this.resendDelay > 0)
                this.timers.push({
                    at: ds.millis() + this.resendDelay,
                    conn,
                    what: 0,
                })
            else {
                const r = this.resends(conn)
                if (r) parts.push(r)
            }
            for (const m of this.withConnack) {
                if (m.qos > 0) this.msgs.push(m)
                parts.push(this.publishBytes(m))
            }
            this.withConnack.insert(0, -this.withConnack.length)
            this.send(conn, Buffer.concat(...parts))
        } else if (t === PacketType.Puback) {
            const id = (p as AckPacket).packetId
            const m = this.find(id)
            if (!m || m.qos !== 1) {
                this.violations.push(
                    `PUBACK ${id} for no QoS 1 message in flight`
                )
                return
            }
            if (m.deliveries === 0)
                this.violations.push(
                    `PUBACK ${id} before "${m.payload}" reached the callback`
                )
            this.remove(m)
        } else if (t === PacketType.Pubrec) {
            const id = (p as AckPacket).packetId
            const m = this.find(id)
            if (!m || m.qos !== 2) {
                this.violations.push(
                    `PUBREC ${id} for no QoS 2 message in flight`
                )
                return
            }
            m.state = 1
            this.send(conn, this.pubrel(conn, id))
        } else if (t === PacketType.Pubcomp) {
            const id = (p as AckPacket).packetId
            const i = this.relConn === conn ? this.rel.indexOf(id) : -1
            if (i < 0) {
                this.violations.push(
                    `PUBCOMP ${id} without a PUBREL on connection ${conn}`
                )
                return
            }
            this.rel.insert(i, -1)
            const m = this.find(id)
            if (m && m.state === 1) this.remove(m)
        } else if (t === PacketType.Publish) {
            const pub = p as PublishPacket
            if (!this.ackDevice || pub.qos === 0) return
            if (pub.qos === 1 || this.qos2AsPuback)
                this.send(conn, encodeAck(PacketType.Puback, pub.packetId))
            else this.send(conn, encodeAck(PacketType.Pubrec, pub.packetId))
        } else if (t === PacketType.Pubrel) {
            this.send(
                conn,
                encodeAck(PacketType.Pubcomp, (p as AckPacket).packetId)
            )
        } else if (t === PacketType.Subscribe) {
            const s = p as SubscribePacket
            this.send(
                conn,
                encodeSuback(
                    s.packetId,
                    s.subscriptions.map(x => x.qos)
                )
            )
        } else if (t === PacketType.Unsubscribe) {
            this.send(
                conn,
                encodeAck(PacketType.Unsuback, (p as AckPacket).packetId)
            )
        } else if (t === PacketType.Pingreq) {
            this.pings++
            if (this.pingDelay > 0)
                this.timers.push({
                    at: ds.millis() + this.pingDelay,
                    conn,
                    what: PacketType.Pingresp,
                })
            else this.send(conn, encodeEmpty(PacketType.Pingresp))
        }
    }
}

/** Waits (bounded) until `cond()` holds; throws naming `what` otherwise. */
export async function waitFor(cond: () => boolean, ms: number, what: string) {
    const end = ds.millis() + ms
    while (!cond()) {
        if (ds.millis() > end) throw new Error(`waited ${ms} ms for ${what}`)
        await ds.sleep(2)
    }
}

/** Waits until `cond()` holds or `ms` passed; returns whether it holds. */
export async function until(cond: () => boolean, ms: number) {
    const end = ds.millis() + ms
    while (!cond()) {
        if (ds.millis() > end) return false
        await ds.sleep(2)
    }
    return true
}

/** The end of a call started in a fiber of its own (`track`). */
export class Outcome {
    done = false
    error: Error = null
    settled() {
        return this.done || this.error !== null
    }
}

/** Runs `fn` in a fiber of its own and reports how it ended. */
export function track(fn: () => Promise<any>): Outcome {
    const o = new Outcome()
    ;(async () => {
        try {
            await fn()
            o.done = true
        } catch (e) {
            o.error = e as Error
            if (!o.error) o.error = new Error("threw a non-error")
        }
    }).start()
    return o
}

/** Stops a `keepReading` loop. */
export class Reader {
    stopped = false
    /** waitMsg calls that threw */
    errors = 0
    /** the loop has ended */
    ended = false
}

/** A fiber that loops `waitMsg` (bounded to 30 s) until `r.stopped`. */
export function keepReading(c: MQTTClient, r: Reader = new Reader()) {
    ;(async () => {
        const end = ds.millis() + 30000
        while (!r.stopped && ds.millis() < end) {
            try {
                await c.waitMsg()
            } catch (e) {
                r.errors++
                await ds.sleep(2)
            }
        }
        r.ended = true
    }).start()
    return r
}

/** disconnect() without waiting more than `ms` for it; errors ignored. */
export async function shutdown(c: MQTTClient, ms = 1000) {
    if (!c) return
    const o = track(async () => {
        await c.disconnect()
    })
    const end = ds.millis() + ms
    while (!o.settled() && ds.millis() < end) await ds.sleep(2)
}

/** A client over a new scripted transport, connected (CONNACK 0, no session). */
export async function connected(options: MQTTClientOptions = {}) {
    const t = new ScriptedTransport()
    options.transport = t
    if (options.reconn === undefined) options.reconn = false
    const c = new MQTTClient("unit", "broker.test", 0, options)
    ;(async () => {
        await t.waitSent(PacketType.Connect, 1)
        t.feed(encodeConnack(false, 0))
    }).start()
    expect(await c.connect()).toBe(0)
    return { c, t }
}

/** `fn` must throw at once with a message containing `part`. */
export async function throwsAtOnce(fn: () => Promise<any>, part: string) {
    let msg: string = null
    try {
        await fn()
    } catch (e) {
        msg = (e as Error).message
    }
    if (msg === null) throw new Error(`expected an error about ${part}`)
    if (msg.indexOf(part) < 0)
        throw new Error(`"${msg}" does not mention "${part}"`)
}
