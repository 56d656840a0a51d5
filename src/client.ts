import * as ds from "@devicescript/core"
import {
    AckPacket,
    ConnackPacket,
    Packet,
    PacketType,
    PublishPacket,
    SubackPacket,
    SUBACK_FAILURE,
    Will,
    decodeFromServer,
    encodeAck,
    encodeConnect,
    encodeEmpty,
    checkPublishTopic,
    writePublish,
    writePublishHead,
    setDup,
    encodeSubscribe,
    encodeUnsubscribe,
    packetName,
} from "./codec"
import { MQTTException, ProtocolError, connackReason } from "./errors"
import { FrameDecoder, RAW_FRAME, UNLIMITED } from "./framer"
import { AckType, Arrival, Inbound, rawPacketId } from "./inbound"
import { OutMessage, OutState, Session } from "./session"
import { Signal } from "./signal"
import { DeviceSocketTransport, Transport } from "./transport"
import { Connectivity } from "./connectivity"

/**
 * Details of a delivered message, third argument of the message callback.
 * (It is the decoded packet itself, so it may carry more fields; rely on
 * these three.)
 */
export interface MQTTMessageInfo {
    /** the QoS it was delivered with */
    qos: number
    /** a retained message (sent on subscribing) */
    retain: boolean
    /** the broker marks it as possibly sent before (QoS 1/2) */
    dup: boolean
}

/** The message callback of `setCallback`. */
export type MQTTMessageCallback = (
    topic: string,
    msg: Buffer,
    info?: MQTTMessageInfo
) => ds.AsyncVoid

/** The error callback of `errorRegisterCb`. */
export type MQTTErrorCallback = (err: Error) => ds.AsyncVoid

/**
 * Watches internal reconnection: called with the new `getMqttsta()` value
 * (1 when the link was lost and the client reconnects, 0 once it is back)
 * and the error that caused the loss, or null.
 */
export type MQTTReconnectCallback = (state: number, err: Error) => ds.AsyncVoid

/**
 * The ack callback of `setAckCallback`: the number `enqueue` returned, and
 * null when the message was acknowledged or the error that failed it.
 */
export type MQTTAckCallback = (seq: number, err: Error) => void

/** A broker address, for failover. */
export interface MQTTServer {
    host: string
    /** 0 or absent: 1883, or 8883 with `ssl` */
    port?: number
    ssl?: boolean
}

/** Options of `new MQTTClient(...)`: the seed's keyword parameters and more. */
export interface MQTTClientOptions {
    /** user name sent in CONNECT */
    user?: string
    /** password sent in CONNECT (MQTT 3.1.1 requires a user with it) */
    password?: string
    /** seconds, 0 = no keepalive (default 0); 0..65535 */
    keepalive?: number
    /** TLS over the device socket */
    ssl?: boolean
    /**
     * Accepted for compatibility and ignored: the simulator verifies against
     * Node's roots (plus `NODE_EXTRA_CA_CERTS`), ESP32 against its built-in
     * root bundle; neither takes a custom CA from the program.
     */
    sslParams?: object
    /** internal reconnect (default true) */
    reconn?: boolean
    /** 3 = MQTT 3.1 ("MQIsdp"), 4 = MQTT 3.1.1 (default) */
    version?: number
    /** ms to wait for the TCP/TLS connection and for CONNACK (default 10000) */
    connectTimeout?: number
    /** ms to wait for SUBACK/UNSUBACK (default 10000) */
    ackTimeout?: number
    /** QoS 1/2 messages in flight at once (default 8, 1..64) */
    maxInflight?: number
    /**
     * publishes waiting for a place in the window or for the connection
     * (default 32); when full, `publish` throws at once
     */
    maxQueued?: number
    /**
     * received messages waiting for `waitMsg`/`checkMsg` decoded (default
     * 16, 1..10000); further ones wait as raw bytes within `maxIncomingBytes`
     */
    maxIncoming?: number
    /**
     * the byte budget of received messages waiting for `waitMsg`/`checkMsg`,
     * decoded or raw (default 20480, 0..16777216). Past it a QoS 0 message is
     * dropped and counted in `droppedMessages`; QoS 1/2 are never dropped:
     * the client stops taking PUBLISHes until the application makes room (the
     * broker's in-flight window holds the rest). One message always fits,
     * however large (up to `maxPacketSize`).
     */
    maxIncomingBytes?: number
    /** largest packet sent or accepted, in bytes (default 20480: a 16 KB payload) */
    maxPacketSize?: number
    /**
     * bytes of the write buffer (default 1024, 0..65536; 0: none, one
     * socket write per packet). Every packet after CONNECT that fits
     * (PUBLISH of any QoS, acknowledgements, PINGREQ, SUBSCRIBE) is
     * gathered in it and the lot goes out in one write when the fiber that
     * made them yields, when it is full, before a packet that does not
     * fit, and on `flush()`, `drain()`, `close()`, `disconnect()`; the order
     * on the wire is the order of the calls. A QoS 0 `publish` resolves
     * once its packet is in the buffer; QoS 0 messages still there when the
     * link fails go to the queue for the next connection (with `reconn`).
     * Fewer, larger writes cost far less per message: see bench/README.md.
     */
    writeBuffer?: number
    /** first reconnect delay in ms (default 1000) */
    reconnectDelay?: number
    /** longest reconnect delay in ms (default 60000) */
    reconnectMaxDelay?: number
    /** the byte stream to use instead of the device socket (tests, modems) */
    transport?: Transport
    /**
     * the network watcher (default none): the client waits for it before
     * reconnecting and drops the link when it goes down. On hardware,
     * `new WifiConnectivity()` watches the Wi-Fi role (opt-in: the role
     * costs the image about 1.5 KB)
     */
    connectivity?: Connectivity
    /**
     * more brokers (a cluster's nodes), tried in turn after `server` when a
     * connection attempt fails
     */
    servers?: MQTTServer[]
}

/** What `MQTTClient.pending()` counts. */
export interface MQTTPending {
    /** QoS 1/2 messages sent and not yet acknowledged */
    inflight: number
    /** publishes waiting for a place in the window or for the connection */
    queued: number
    /** received messages not yet through the callback */
    received: number
    /** incoming QoS 2 ids between PUBREC and PUBREL */
    awaitingRelease: number
}

/** `getMqttsta()` values. */
export const enum MQTTState {
    Connected = 0,
    Connecting = 1,
    ServerClosed = 2,
    Error = -1,
}

/** Writes between two yields to the scheduler. */
const YIELD_EVERY_WRITES = 32
/**
 * Publishes into the write buffer between two yields: each is a few dozen
 * instructions, far from the watchdog's limit, and each yield also starts
 * the fiber that writes the buffer.
 */
const YIELD_EVERY_STAGED = 256
/**
 * QoS 1/2 payloads larger than this are written after a separate head and
 * kept as they are for resends; smaller ones are encoded with it (one write).
 */
const SPLIT_PAYLOAD = 256
/** Reconnect callback calls kept while the callback is busy. */
const MAX_NOTICES = 8
/** After a connection lasted this long (ms), the reconnect delay starts over. */
const STABLE_MS = 10000
const DEFAULT_PORT = 1883
const DEFAULT_TLS_PORT = 8883

function isInt(n: any, lo: number, hi: number) {
    return typeof n === "number" && (n | 0) === n && n >= lo && n <= hi
}

function optInt(o: any, name: string, def: number, lo: number, hi: number) {
    const v = o[name]
    if (v === undefined || v === null) return def
    if (!isInt(v, lo, hi))
        throw new RangeError(
            `${name} must be an integer ${lo}..${hi}, not ${v}`
        )
    return v as number
}

function checkQosArg(qos: any) {
    if (!isInt(qos, 0, 2))
        throw new RangeError(`qos must be 0, 1 or 2, not ${qos}`)
}

/** Turns a codec complaint about an argument into a plain Error. */
function argError(what: string, e: any): Error {
    if (e instanceof ProtocolError) return new Error(`${what}: ${e.message}`)
    return e as Error
}

/**
 * A number 0..1 from the client id: mixed into the reconnect jitter, so that
 * a fleet of devices with the same firmware (whose `Math.random()` may start
 * from the same seed) does not reconnect at once. FNV-1a, then murmur3's
 * final mix: without it ids that differ in their last character (device-1,
 * device-2, ...) land close together.
 */
function idFraction(id: string) {
    let h = 0x811c9dc5
    for (let i = 0; i < id.length; ++i) {
        h ^= id.charCodeAt(i)
        h = Math.imul(h, 0x01000193)
    }
    h ^= h >>> 16
    h = Math.imul(h, 0x85ebca6b)
    h ^= h >>> 13
    h = Math.imul(h, 0xc2b2ae35)
    h ^= h >>> 16
    return (h >>> 0) / 4294967296
}

function toBuffer(msg: string | Buffer, what: string): Buffer {
    if (typeof msg === "string") return Buffer.from(msg)
    if (msg instanceof Buffer) return msg
    throw new TypeError(`${what} must be a string or a Buffer`)
}

/**
 * The umqtt client: the QuecPython/MicroPython API on DeviceScript, with
 * QoS 0/1/2 both ways, keepalive, bounded queues and internal reconnect.
 *
 * @devsWhenUsed
 */
export class MQTTClient {
    private readonly servers: MQTTServer[] = []
    private serverIndex = 0
    private readonly connectivity: Connectivity
    private unwatch: () => void = null
    private readonly opts: MQTTClientOptions
    private readonly keepaliveMs: number
    private readonly reconn: boolean
    private readonly version: number
    private readonly connectTimeout: number
    private readonly ackTimeout: number
    private readonly maxInflight: number
    private readonly maxQueued: number
    private readonly maxIncoming: number
    private readonly maxIncomingBytes: number
    private readonly reconnectDelay: number
    private readonly reconnectMaxDelay: number
    private readonly maxPacketSize: number
    private readonly transport: Transport
    private readonly framer: FrameDecoder
    private readonly session = new Session()

    private state: number = MQTTState.Error
    private disposed = false
    /** bumped for every new connection: fibers of older ones stop */
    private gen = 0
    private cleanSession = true
    private will: Will = null
    private onMessage: MQTTMessageCallback = null
    private onError: MQTTErrorCallback = null
    private onReconnect: MQTTReconnectCallback = null
    private onAck: MQTTAckCallback = null
    /** messages numbered by `enqueue` so far */
    private enqueued = 0

    /** publishes not yet written (QoS 0) or not yet in flight (QoS 1/2) */
    private readonly outbox: OutMessage[] = []
    /** received messages: the inbound state machine */
    private readonly inbound = new Inbound()
    /** filters to subscribe again when the broker lost the session */
    private readonly subscriptions: { topic: string; qos: number }[] = []
    private pumping = false
    /**
     * bumped by `connect`, `close` and `disconnect`: the application took
     * over, a supervisor of an earlier epoch stops
     */
    private epoch = 0
    /** the epoch of the running reconnect supervisor, -1 when none */
    private supervisorEpoch = -1
    /** reconnect callback calls not made yet, in order */
    private readonly notices: { state: number; err: Error }[] = []
    /** a fiber makes the reconnect callback calls */
    private notifying = false
    /** the next reconnect delay before jitter, ms */
    private backoff = 0
    /** when the current connection was established (ms), for the backoff */
    private connectedAt = 0
    /** a connection was established once: internal reconnection repairs it */
    private everConnected = false
    /** this device's share of the jitter, from its client id: 0..1 */
    private readonly jitterSeed: number
    /** CONNACK accepted on the current link: acknowledgements may be written */
    private sessionUp = false
    private writes = 0
    /** the last topic that passed the checks, and its UTF-8 length */
    private lastTopic: string = null
    private lastTopicLen = 0
    /** the write buffer (`writeBuffer` option), null without one */
    private readonly stage: Buffer = null
    /** bytes in `stage` not yet written */
    private staged = 0
    /** a fiber that writes `stage` is started and has not run yet */
    private flushPending = false
    /** where the next message taken back after a loss goes in `outbox` */
    private retakeAt = 0
    /**
     * Socket writes take turns in the order they were asked for: a write
     * may suspend (a busy socket). `writeTicket` is the next turn to hand
     * out, `writeTurn` the turn writing now; equal when the link is free.
     */
    private writeTicket = 0
    private writeTurn = 0
    private readonly writable = new Signal()

    /** set while connecting: the CONNACK or the failure that ends the attempt */
    private connack: ConnackPacket = null
    private linkError: Error = null
    /** with `reconn: false`, the loss that waitMsg/checkMsg report */
    private lostError: Error = null

    private lastTx = 0
    private lastRx = 0
    private pingSentAt = 0

    /** wakes the reader fiber: bytes arrived */
    private readonly rx = new Signal()
    /** wakes waiters on acks, CONNACK, losses */
    private readonly progress = new Signal()
    /** wakes waitMsg: a message was queued */
    private readonly inbox = new Signal()
    /** wakes drain(): a message was done with, or abandoned */
    private readonly drained = new Signal()

    /** True when the broker had a session for this client at the last CONNACK. */
    sessionPresent = false
    /**
     * QoS 0 messages dropped because what waits for `waitMsg`/`checkMsg`
     * was past `maxIncomingBytes`.
     */
    droppedMessages = 0

    /**
     * @param clientId the client identifier (may be empty with a clean session in 3.1.1)
     * @param server broker host name or IP address
     * @param port 0 or absent: 1883, or 8883 with `ssl`
     * @param options the seed's keyword parameters and more
     */
    constructor(
        readonly clientId: string,
        server: string,
        port?: number,
        options?: MQTTClientOptions
    ) {
        if (typeof clientId !== "string")
            throw new TypeError("clientId must be a string")
        const o: MQTTClientOptions = options || {}
        if (o.servers && !Array.isArray(o.servers))
            throw new TypeError("servers must be an array")
        // the broker of the arguments first, then the failover ones
        const all: MQTTServer[] = [{ host: server, port, ssl: o.ssl }]
        if (o.servers) for (const s of o.servers) all.push(s)
        for (const s of all) {
            if (!s || typeof s.host !== "string" || s.host.length === 0)
                throw new TypeError("server must be a non-empty string")
            const p = s.port === undefined || s.port === null ? 0 : s.port
            if (!isInt(p, 0, 65535))
                throw new RangeError(`port must be 0..65535, not ${p}`)
            const ssl = !!s.ssl
            this.servers.push({
                host: s.host,
                port: p || (ssl ? DEFAULT_TLS_PORT : DEFAULT_PORT),
                ssl,
            })
        }
        this.opts = o
        this.keepaliveMs = optInt(o, "keepalive", 0, 0, 65535) * 1000
        this.version = optInt(o, "version", 4, 3, 4)
        this.reconn =
            o.reconn === undefined || o.reconn === null ? true : !!o.reconn
        this.connectTimeout = optInt(o, "connectTimeout", 10000, 1, 3600000)
        this.ackTimeout = optInt(o, "ackTimeout", 10000, 1, 3600000)
        this.maxInflight = optInt(o, "maxInflight", 8, 1, 64)
        this.maxQueued = optInt(o, "maxQueued", 32, 0, 10000)
        this.maxIncoming = optInt(o, "maxIncoming", 16, 1, 10000)
        this.maxIncomingBytes = optInt(
            o,
            "maxIncomingBytes",
            20480,
            0,
            16777216
        )
        this.maxPacketSize = optInt(o, "maxPacketSize", 20480, 64, 268435460)
        const stageSize = optInt(o, "writeBuffer", 1024, 0, 65536)
        if (stageSize > 0) this.stage = Buffer.alloc(stageSize)
        this.reconnectDelay = optInt(o, "reconnectDelay", 1000, 1, 3600000)
        this.reconnectMaxDelay = optInt(
            o,
            "reconnectMaxDelay",
            60000,
            1,
            3600000
        )
        this.backoff = this.reconnectDelay
        this.jitterSeed = idFraction(clientId)
        for (const k of ["user", "password"]) {
            const v = (o as any)[k]
            if (v !== undefined && v !== null && typeof v !== "string")
                throw new TypeError(`${k} must be a string`)
        }
        this.framer = new FrameDecoder(this.maxPacketSize, decodeFromServer)
        this.transport = o.transport || new DeviceSocketTransport()
        this.connectivity = o.connectivity || null
        if (this.connectivity) {
            const self = this
            // a loss when it goes down; a reconnect waiting for it goes on
            this.unwatch = this.connectivity.onChange(up => {
                if (!up && self.state === MQTTState.Connected)
                    self.lose(new Error("network down"), false)
                self.progress.notify()
            })
        }
    }

    /** The broker in use, or the one the next attempt goes to. */
    currentServer(): MQTTServer {
        const s = this.servers[this.serverIndex]
        return { host: s.host, port: s.port, ssl: s.ssl }
    }

    // ------------------------------------------------------------ the seed API

    /** Sets the function called once per delivered PUBLISH. */
    setCallback(cb: MQTTMessageCallback) {
        this.onMessage = cb
    }

    /**
     * Sets the function called with errors of the background work: losses
     * when `reconn` is false, and errors thrown by the message callback.
     */
    errorRegisterCb(cb: MQTTErrorCallback) {
        this.onError = cb
    }

    /** Sets the function that watches internal reconnection (not in the seed). */
    setReconnectCallback(cb: MQTTReconnectCallback) {
        this.onReconnect = cb
    }

    /**
     * Sets the will the broker publishes if the connection ends without
     * `disconnect()`. Call it before `connect`.
     */
    setLastWill(topic: string, msg: string | Buffer, retain = false, qos = 0) {
        this.checkUsable()
        checkQosArg(qos)
        const payload = toBuffer(msg, "will message")
        try {
            checkPublishTopic(topic)
        } catch (e) {
            throw argError("setLastWill", e)
        }
        this.will = { topic, payload, qos, retain: !!retain }
    }

    /**
     * Connects and resolves 0 once CONNACK accepts. A refusing CONNACK
     * throws `MQTTException` with its code; a network failure or timeout
     * throws an Error that says which.
     */
    async connect(cleanSession = true): Promise<number> {
        this.checkUsable()
        if (this.state === MQTTState.Connected)
            throw new Error("connect: already connected")
        if (this.state === MQTTState.Connecting)
            throw new Error("connect: already connecting")
        if (this.connectivity && !this.connectivity.isUp())
            throw new Error("connect: network down")
        // a clean session forgets what the publishers were told failed
        if (cleanSession) {
            this.dropFailed(this.session.inflight)
            this.dropFailed(this.outbox)
        }
        this.cleanSession = !!cleanSession
        this.lostError = null
        this.epoch++
        this.backoff = this.reconnectDelay
        this.state = MQTTState.Connecting
        // each broker in turn; a refusing CONNACK ends the attempt at once
        let err: Error = null
        for (let i = 0; i < this.servers.length; ++i) {
            try {
                await this.openSession(false)
                return 0
            } catch (e) {
                err = e as Error
                if (e instanceof MQTTException || this.disposed) break
                this.serverIndex = (this.serverIndex + 1) % this.servers.length
            }
        }
        if (this.state === MQTTState.Connecting) this.state = MQTTState.Error
        throw err
    }

    /**
     * Sends DISCONNECT (so the broker drops the will) and releases the
     * socket, timers and fibers. The client cannot be used afterwards.
     */
    async disconnect() {
        this.checkUsable()
        const wasConnected = this.state === MQTTState.Connected
        this.disposed = true
        this.epoch++
        if (wasConnected) {
            try {
                await this.output(encodeEmpty(PacketType.Disconnect))
                await this.flush()
            } catch (e) {
                // the link is gone already: nothing to tell the broker
            }
        }
        this.shutLink()
        if (this.unwatch) this.unwatch()
        this.unwatch = null
        this.state = MQTTState.Error
        const err = new Error("disconnected")
        for (const m of this.session.failAll(err)) this.finish(m)
        for (const m of this.outbox) {
            m.state = OutState.Failed
            m.error = err
            this.finish(m)
        }
        this.outbox.insert(0, -this.outbox.length)
        // nothing queued was acknowledged: a persistent session on the
        // broker sends it again to the next connection
        this.inbound.clear()
        this.progress.notify()
        this.inbox.notify()
    }

    /**
     * Releases the socket only, keeping the session (messages in flight)
     * for a later `connect(false)`: for hand-made reconnect loops.
     */
    async close() {
        this.checkUsable()
        const wasUp =
            this.state === MQTTState.Connected ||
            this.state === MQTTState.Connecting
        if (this.state === MQTTState.Connected)
            try {
                await this.flush()
            } catch (e) {
                // closing anyway
            }
        this.epoch++
        this.shutLink()
        this.state = MQTTState.Error
        if (wasUp || !this.lostError) this.abandonWaiters(new Error("closed"))
        this.lostError = null
        this.progress.notify()
        this.inbox.notify()
    }

    /** Sends PINGREQ now; the automatic keepalive runs without it. */
    async ping() {
        this.checkUsable()
        this.checkConnected("ping")
        this.pingSentAt = ds.millis()
        await this.output(encodeEmpty(PacketType.Pingreq))
    }

    /**
     * Publishes a message. Resolves when QoS 0 is taken (in the write
     * buffer, or written when it does not fit), QoS 1 is PUBACKed, QoS 2 is
     * PUBCOMPed. While an internal reconnection runs the message waits in a
     * bounded queue; when it is full this throws at once.
     */
    async publish(
        topic: string,
        msg: string | Buffer,
        retain = false,
        qos = 0
    ): Promise<void> {
        // the hot path: checks inline, the topic checked once while it
        // stays the same, the packet built in the write buffer
        if (this.disposed) this.checkUsable()
        if (qos !== 0 && qos !== 1 && qos !== 2) checkQosArg(qos)
        const payload =
            msg instanceof Buffer
                ? msg
                : typeof msg === "string"
                  ? Buffer.from(msg)
                  : toBuffer(msg, "msg")
        if (topic !== this.lastTopic) this.checkTopic(topic)
        const stage = this.stage
        if (
            stage &&
            qos === 0 &&
            this.state === MQTTState.Connected &&
            this.outbox.length === 0
        ) {
            // written out here on purpose: a call costs as much as the rest
            // of it (bench/README.md)
            const tlen = this.lastTopicLen
            const remaining = 2 + tlen + payload.length
            if (remaining < 0x80 && remaining + 2 <= stage.length) {
                // a loop: while flush() waited for a write in progress,
                // other fibers may have filled the buffer again
                while (this.staged + remaining + 2 > stage.length)
                    try {
                        await this.flush()
                    } catch (e) {
                        if (!this.reconn || this.disposed) throw e
                        break // lost: the offline queue, below
                    }
                // lost while waiting: the slow path below decides
                if (
                    this.state === MQTTState.Connected &&
                    this.staged + remaining + 2 <= stage.length
                ) {
                    const at = this.staged
                    // §3.3.1: PUBLISH, QoS 0, DUP 0; a remaining length below
                    // 128 is its one byte (§2.2.3); topic as UTF-8 (§1.5.3)
                    stage[at] = retain ? 0x31 : 0x30
                    stage[at + 1] = remaining
                    stage[at + 2] = tlen >> 8
                    stage[at + 3] = tlen & 0xff
                    stage.blitAt(at + 4, topic, 0, tlen)
                    stage.blitAt(at + 4 + tlen, payload, 0, payload.length)
                    this.staged = at + 2 + remaining
                    if (!this.flushPending) this.flushSoon()
                    if (++this.writes % YIELD_EVERY_STAGED === 0)
                        await ds.sleep(0)
                    return
                }
            }
        }
        const m = await this.take(topic, payload, !!retain, qos, 0)
        if (m) await this.settled(m)
    }

    /**
     * Publishes without waiting for the acknowledgement (not in the seed):
     * returns once the message holds its place in the in-flight window or
     * the queue, and throws at once when the queue is full, like `publish`.
     * Resolves the message's number (1, 2, ... for this client), which the
     * ack callback (`setAckCallback`) reports when the broker acknowledged
     * it or it failed; 0 for a QoS 0 message taken at once. `drain()` waits
     * for the messages to leave. One fiber can keep the whole window busy.
     */
    async enqueue(
        topic: string,
        msg: string | Buffer,
        retain = false,
        qos = 1
    ): Promise<number> {
        this.checkUsable()
        checkQosArg(qos)
        const payload = toBuffer(msg, "msg")
        if (topic !== this.lastTopic) this.checkTopic(topic)
        const seq = ++this.enqueued
        const m = await this.take(topic, payload, !!retain, qos, seq)
        // a loop of enqueue whose messages only queue writes nothing, so
        // nothing else yields: the VM's watchdog
        if (++this.writes % YIELD_EVERY_WRITES === 0) await ds.sleep(0)
        return m ? seq : 0
    }

    /**
     * Sets the function told about each message of `enqueue` once it is
     * done (not in the seed): its number and null when the broker
     * acknowledged it (PUBACK, PUBCOMP; QoS 0: written), or the error that
     * failed it. It runs in the client's reader fiber: it must not wait.
     */
    setAckCallback(cb: MQTTAckCallback) {
        this.onAck = cb
    }

    /**
     * Resolves once at most `limit` published messages are in flight or
     * queued (not in the seed; default 0: all acknowledged or failed), after
     * writing the write buffer. Throws when the client is closed, or the
     * link is lost without `reconn`.
     */
    async drain(limit = 0) {
        this.checkUsable()
        await this.flush()
        while (this.session.inflight.length + this.outbox.length > limit) {
            if (this.lostError) throw this.lostError
            // no connection, and none coming: nothing would ever leave
            if (
                this.state !== MQTTState.Connected &&
                this.state !== MQTTState.Connecting
            )
                throw new Error("drain: not connected")
            await this.drained.wait(1000)
            this.checkUsable()
        }
    }

    /** Checks a topic to publish to and remembers it with its UTF-8 length. */
    private checkTopic(topic: string) {
        try {
            this.lastTopicLen = checkPublishTopic(topic)
        } catch (e) {
            throw argError("publish", e)
        }
        this.lastTopic = topic
    }

    /**
     * Takes a message to publish (`lastTopic` is its checked topic): a QoS 0
     * message is written (or put in the write buffer) when the link is up
     * and nothing waits before it, and null returned; otherwise the message
     * goes into the queue and the window, and is returned.
     */
    private async take(
        topic: string,
        payload: Buffer,
        retain: boolean,
        qos: number,
        seq: number
    ): Promise<OutMessage> {
        // a large QoS 1/2 message keeps the application's payload and a
        // small head for resends: no encoded copy of the whole packet
        const split = qos !== 0 && payload.length > SPLIT_PAYLOAD
        let packet: Buffer
        try {
            packet = split
                ? writePublishHead(
                      topic,
                      this.lastTopicLen,
                      payload.length,
                      qos,
                      retain,
                      1
                  )
                : writePublish(
                      topic,
                      this.lastTopicLen,
                      payload,
                      qos,
                      retain,
                      false,
                      qos ? 1 : 0
                  )
        } catch (e) {
            throw argError("publish", e)
        }
        const size = split ? packet.length + payload.length : packet.length
        if (size > this.maxPacketSize)
            throw new RangeError(
                `publish: ${size} bytes, over maxPacketSize ${this.maxPacketSize}`
            )
        if (
            qos === 0 &&
            this.state === MQTTState.Connected &&
            this.outbox.length === 0
        ) {
            try {
                await this.output(packet)
                return null
            } catch (e) {
                if (!this.reconn || this.disposed) throw e
            }
            // the link failed under it: with reconn, it waits for the next
            // connection like any publish made while reconnecting
        }
        if (
            this.state !== MQTTState.Connected &&
            !(this.reconn && this.state === MQTTState.Connecting)
        )
            throw new Error("publish: not connected")
        if (this.outbox.length >= this.maxQueued)
            throw new Error(
                `publish: queue full (${this.outbox.length} messages waiting)`
            )
        const m = new OutMessage(
            qos,
            packet,
            payload.length,
            split ? payload : null
        )
        m.seq = seq
        this.outbox.push(m)
        await this.pump()
        return m
    }

    /** Subscribes; resolves the granted QoS; a refusal (0x80) throws. */
    async subscribe(topic: string, qos = 0): Promise<number> {
        this.checkUsable()
        checkQosArg(qos)
        let packet: Buffer
        try {
            packet = encodeSubscribe(1, [{ topic, qos }])
        } catch (e) {
            throw argError("subscribe", e)
        }
        await this.whenConnected("subscribe")
        const granted = (await this.request(PacketType.Subscribe, packet))[0]
        if (granted === SUBACK_FAILURE)
            throw new MQTTException(
                `subscribe: the broker refused "${topic}"`,
                SUBACK_FAILURE
            )
        this.forget(topic)
        this.subscriptions.push({ topic, qos })
        return granted
    }

    /** Unsubscribes; resolves after UNSUBACK. */
    async unsubscribe(topic: string): Promise<void> {
        this.checkUsable()
        let packet: Buffer
        try {
            packet = encodeUnsubscribe(1, [topic])
        } catch (e) {
            throw argError("unsubscribe", e)
        }
        await this.whenConnected("unsubscribe")
        await this.request(PacketType.Unsubscribe, packet)
        this.forget(topic)
    }

    /** Delivers messages already received to the callback; never waits. */
    async checkMsg() {
        this.checkUsable()
        await this.deliverQueued()
        if (this.lostError) throw this.lostError
    }

    /** Waits until at least one PUBLISH was delivered to the callback. */
    async waitMsg() {
        this.checkUsable()
        for (;;) {
            if (this.inbound.queue.length > 0) {
                await this.deliverQueued()
                return
            }
            if (this.lostError) throw this.lostError
            if (this.state === MQTTState.Error && !this.reconn)
                throw new Error("waitMsg: not connected")
            await this.inbox.wait(1000)
            this.checkUsable()
        }
    }

    /**
     * What the client holds now (not in the seed): `inflight` QoS 1/2
     * messages sent and not yet acknowledged, `queued` publishes waiting for
     * the window or the connection, `received` messages waiting for
     * `waitMsg`/`checkMsg` (or in the callback), `awaitingRelease` incoming
     * QoS 2 ids between PUBREC and PUBREL. All 0: nothing is pending.
     */
    pending(): MQTTPending {
        return {
            inflight: this.session.inflight.length,
            queued: this.outbox.length,
            received: this.inbound.held(),
            awaitingRelease: this.inbound.awaitingRelease.length,
        }
    }

    /**
     * 0 connected, 1 connecting (also while reconnecting), 2 the server
     * closed the connection, -1 error, before connect, after close/disconnect.
     */
    getMqttsta(): number {
        return this.state
    }

    // --------------------------------------------------------- connection

    private checkUsable() {
        if (this.disposed)
            throw new Error("the client was disconnected; create a new one")
    }

    private checkConnected(what: string) {
        if (this.state !== MQTTState.Connected)
            throw new Error(`${what}: not connected`)
    }

    /**
     * Returns once connected; during an internal reconnection it waits for
     * it, at most `ackTimeout` ms, like a publish would.
     */
    private async whenConnected(what: string) {
        const deadline = ds.millis() + this.ackTimeout
        while (
            this.state === MQTTState.Connecting &&
            this.reconn &&
            this.everConnected &&
            !this.disposed
        ) {
            const left = deadline - ds.millis()
            if (left <= 0) break
            await this.progress.wait(left)
        }
        this.checkUsable()
        this.checkConnected(what)
    }

    /**
     * One connection attempt: opens the link, sends CONNECT, waits for
     * CONNACK, then sends again what the session holds (§4.4) before
     * anything new (§4.6): the state becomes Connected only after that, so
     * new publishes queue meanwhile. A failure closes this attempt's link
     * (and only its own: the application may have started another) and
     * throws.
     */
    private async openSession(reconnect: boolean) {
        const gen = ++this.gen
        try {
            await this.openLink(gen)
        } catch (e) {
            if (gen === this.gen) this.shutLink()
            throw e
        }
        this.state = MQTTState.Connected
        this.connectedAt = ds.millis()
        this.everConnected = true
        // a broker without the session forgot the subscriptions too
        if (reconnect && !this.sessionPresent)
            for (const sub of this.subscriptions.slice(0))
                try {
                    await this.request(
                        PacketType.Subscribe,
                        encodeSubscribe(1, [sub])
                    )
                } catch (e) {
                    await this.reportError(e as Error)
                }
        await this.pump()
        this.progress.notify()
    }

    private async openLink(gen: number) {
        this.framer.reset()
        this.connack = null
        this.linkError = null
        this.sessionUp = false
        this.pingSentAt = 0
        this.staged = 0
        const t = this.transport
        const self = this
        t.onData = chunk => self.onData(gen, chunk)
        t.onClose = err => self.onLinkClosed(gen, err)
        const srv = this.servers[this.serverIndex]
        await t.open(srv.host, srv.port, srv.ssl, this.connectTimeout)
        // the application closed or reopened meanwhile: not ours any more
        if (gen !== this.gen) throw new Error("connection attempt cancelled")
        ;(async () => {
            await self.readLoop(gen)
        }).start()
        // CONNECT takes its turn like every write: nothing of an older
        // connection can reach this link, and CONNECT is its first packet
        await this.writeLink(
            null,
            encodeConnect({
                type: PacketType.Connect,
                protocolVersion: this.version,
                clientId: this.clientId,
                cleanSession: this.cleanSession,
                keepalive: this.keepaliveMs / 1000,
                username: this.opts.user,
                password:
                    typeof this.opts.password === "string"
                        ? Buffer.from(this.opts.password)
                        : undefined,
                will: this.will,
            }),
            null,
            gen
        )
        const deadline = ds.millis() + this.connectTimeout
        while (!this.connack && !this.linkError && gen === this.gen) {
            const left = deadline - ds.millis()
            if (left <= 0) break
            await this.progress.wait(left)
        }
        this.checkAttempt(gen)
        if (!this.connack)
            throw new Error(
                `no CONNACK from ${srv.host}:${srv.port} within ${this.connectTimeout} ms`
            )
        const rc = this.connack.returnCode
        if (rc !== 0)
            throw new MQTTException(
                `connection refused by ${srv.host}: ${connackReason(rc)} (${rc})`,
                rc
            )
        this.sessionPresent = this.connack.sessionPresent
        if (!this.sessionPresent) this.session.restart()
        this.sessionUp = true
        if (this.keepaliveMs > 0) {
            const self = this
            ;(async () => {
                await self.keepalive(gen)
            }).start()
        }
        await this.resendSession(gen)
        // no await from here until the caller sets the state
        this.checkAttempt(gen)
    }

    /** Throws when the attempt of connection `gen` failed or was replaced. */
    private checkAttempt(gen: number) {
        if (this.linkError) throw this.linkError
        if (gen !== this.gen) throw new Error("connection attempt cancelled")
    }

    /**
     * §4.4: every QoS 1/2 message not yet acknowledged goes again, in the
     * order first sent: PUBLISH with DUP, or PUBREL once PUBREC came
     * (through the write buffer like every packet after CONNECT).
     */
    private async resendSession(gen: number) {
        const all = this.session.inflight.slice(0)
        for (let i = 0; i < all.length; ++i) {
            const m = all[i]
            if (m.settled()) continue // acknowledged meanwhile
            if (m.state === OutState.AwaitPubcomp)
                await this.output(encodeAck(PacketType.Pubrel, m.packetId))
            else {
                setDup(m.packet)
                await this.output(m.packet, m.payload)
            }
            this.checkAttempt(gen)
        }
    }

    private onData(gen: number, chunk: Buffer) {
        if (gen !== this.gen) return
        this.lastRx = ds.millis()
        this.framer.push(chunk)
        this.rx.notify()
    }

    private onLinkClosed(gen: number, err: Error) {
        if (gen !== this.gen) return
        const serverClosed = !err
        const srv = this.servers[this.serverIndex]
        this.lose(
            err || new Error(`${srv.host}:${srv.port} closed the connection`),
            serverClosed
        )
    }

    /** Closes the link and stops the fibers and timers of this connection. */
    private shutLink() {
        this.gen++
        this.sessionUp = false
        // what the buffer holds is newer than the writes still waiting for
        // their turn, which fail now and are taken back in front of it
        this.retakeAt = 0
        const rest = this.takeStaged()
        if (rest) this.retake(rest)
        this.retakeAt = 0
        this.transport.close()
        this.framer.reset()
        this.rx.notify()
        this.writable.notify()
    }

    /**
     * The connection is lost. While connecting, the attempt fails; once
     * connected, `reconn` decides: the supervisor reconnects, or the loss is
     * reported and the application repairs it.
     */
    private lose(err: Error, serverClosed: boolean) {
        if (this.disposed) return
        if (this.state === MQTTState.Connecting && !this.linkError) {
            this.linkError = err
            this.progress.notify()
            return
        }
        if (this.state !== MQTTState.Connected) return
        this.shutLink()
        this.session.failRequests(new Error(`connection lost: ${err.message}`))
        // a connection that did not last: the next attempt waits longer
        const max = this.reconnectMaxDelay
        if (ds.millis() - this.connectedAt < Math.min(STABLE_MS, max))
            this.backoff = Math.min(this.backoff * 2, max)
        else this.backoff = this.reconnectDelay
        if (this.reconn) {
            this.state = MQTTState.Connecting
            this.notifyReconnect(MQTTState.Connecting, err)
            this.startSupervisor()
        } else {
            this.state = serverClosed ? MQTTState.ServerClosed : MQTTState.Error
            this.lostError = err
            this.abandonWaiters(err)
            const self = this
            ;(async () => {
                await self.reportError(err)
            }).start()
        }
        this.progress.notify()
        this.inbox.notify()
    }

    /** Starts the reconnect supervisor unless one runs for this epoch. */
    private startSupervisor() {
        const epoch = this.epoch
        if (this.supervisorEpoch === epoch) return
        this.supervisorEpoch = epoch
        const self = this
        ;(async () => {
            try {
                await self.supervise(epoch)
            } finally {
                if (self.supervisorEpoch === epoch) self.supervisorEpoch = -1
            }
        }).start()
    }

    /**
     * The reconnect supervisor: the one loop that repairs the connection
     * with `reconn`. It runs while the state is Connecting; `lose()` starts
     * it whenever none runs for the current epoch, and since it re-checks
     * the state after every await and has no await between its last check
     * and its end, a loss can never find it about to stop. It never waits
     * for the application (the reconnect callback runs in a fiber of its
     * own), and `connect`/`close`/`disconnect` start a new epoch that ends
     * it, so it never competes with the application's own connect. Each
     * failed attempt doubles the delay (up to `reconnectMaxDelay`) and moves
     * to the next broker; a connection that is lost again within 10 s
     * counts as failed too (`lose`).
     */
    private async supervise(epoch: number) {
        const max = this.reconnectMaxDelay
        while (
            epoch === this.epoch &&
            this.state === MQTTState.Connecting &&
            !this.disposed
        ) {
            // while the network is down, wait for it instead of burning attempts
            if (this.connectivity && !this.connectivity.isUp()) {
                await this.progress.wait(1000)
                this.backoff = this.reconnectDelay
                continue
            }
            const until = ds.millis() + this.jittered(this.backoff)
            while (ds.millis() < until && this.state === MQTTState.Connecting)
                await this.progress.wait(until - ds.millis())
            if (epoch !== this.epoch || this.state !== MQTTState.Connecting)
                continue
            try {
                await this.openSession(true)
            } catch (e) {
                if (epoch !== this.epoch) continue
                // failover: the next attempt goes to the next broker
                this.serverIndex = (this.serverIndex + 1) % this.servers.length
                this.backoff = Math.min(this.backoff * 2, max)
                continue
            }
            if ((this.state as number) === MQTTState.Connected)
                this.notifyReconnect(MQTTState.Connected, null)
        }
    }

    /**
     * Between half the delay and the whole of it; the random part mixes in
     * this device's client id. Whole milliseconds: DeviceScript treats
     * fractions oddly.
     */
    private jittered(delay: number) {
        let r = Math.random() + this.jitterSeed
        if (r >= 1) r -= 1
        return Math.floor(delay / 2 + r * (delay / 2))
    }

    /**
     * Tells the reconnect callback, in order, from a fiber of its own: the
     * supervisor never waits for the application, whose callback may well
     * await a publish that only the next reconnection completes.
     */
    private notifyReconnect(state: number, err: Error) {
        if (!this.onReconnect) return
        const q = this.notices
        if (q.length >= MAX_NOTICES) q.shift() // the oldest goes
        q.push({ state, err })
        if (this.notifying) return
        this.notifying = true
        const self = this
        ;(async () => {
            try {
                while (q.length > 0) {
                    const n = q.shift()
                    const cb = self.onReconnect
                    if (!cb) continue
                    try {
                        await cb(n.state, n.err)
                    } catch (e) {
                        await self.reportError(e as Error)
                    }
                }
            } finally {
                self.notifying = false
            }
        }).start()
    }

    private async reportError(err: Error) {
        const cb = this.onError
        if (!cb) {
            console.warn(`mqtt: ${err.message}`)
            return
        }
        try {
            await cb(err)
        } catch (e) {
            console.warn(`mqtt: the error callback threw ${e}`)
        }
    }

    /**
     * Sends `packet`, and `tail` (the payload of a large QoS 1/2 message)
     * right after it, in the order of the calls. With the write buffer, a
     * packet that fits is copied into it and goes out with the others in
     * one socket write once this fiber yields (`flushSoon`), or sooner when
     * the buffer fills; anything else is written at once, right behind what
     * the buffer holds and in the same turn, so that nothing overtakes it.
     */
    private async output(packet: Buffer, tail: Buffer = null) {
        const stage = this.stage
        const gen = this.gen
        if (stage && this.staged + packet.length <= stage.length) {
            stage.blitAt(this.staged, packet, 0, packet.length)
            this.staged += packet.length
            if (!tail) {
                if (!this.flushPending) this.flushSoon()
                if (++this.writes % YIELD_EVERY_STAGED === 0) await ds.sleep(0)
                return
            }
            packet = null // in the buffer, written before the tail
        }
        await this.writeLink(this.takeStaged(), packet, tail, gen)
        // a socket write does not yield: without this a publishing loop
        // would trip the VM's InfiniteLoop watchdog
        if (++this.writes % YIELD_EVERY_WRITES === 0) await ds.sleep(0)
    }

    /**
     * Writes what the write buffer holds now (the `writeBuffer` option,
     * 1024 bytes by default); when it is empty, does nothing. A failed
     * write fails like any other: the connection is lost, and the QoS 0
     * messages it held wait for the next connection (with `reconn`).
     */
    async flush() {
        if (this.staged > 0)
            await this.writeLink(this.takeStaged(), null, null, this.gen)
    }

    /**
     * Empties the write buffer into a new buffer to write: the socket layer
     * may keep what it is given, and the buffer fills again meanwhile.
     */
    private takeStaged() {
        const n = this.staged
        if (n === 0) return null
        this.staged = 0
        const out = Buffer.alloc(n)
        out.blitAt(0, this.stage, 0, n)
        return out
    }

    /**
     * Writes `staged` (what the write buffer held), `data` and `tail`,
     * each unless null, to the link of connection `gen`, after the writes
     * asked for before, in that order. A write that finds the socket busy
     * suspends and retries; without turns a packet of another fiber, or the
     * buffer flushed from its own fiber, could overtake it and break the
     * order of messages (§4.6). A packet meant for a connection that is gone
     * is never written to the next one. A write that fails loses the
     * connection it was meant for, and what `staged` held is taken back
     * (`retake`).
     */
    private async writeLink(
        staged: Buffer,
        data: Buffer,
        tail: Buffer,
        gen: number
    ) {
        const turn = this.writeTicket++
        while (turn !== this.writeTurn) await this.writable.wait(1000)
        try {
            if (staged) await this.writeOn(gen, staged)
            if (data) await this.writeOn(gen, data)
            if (tail) await this.writeOn(gen, tail)
            this.lastTx = ds.millis()
        } catch (e) {
            if (gen === this.gen) this.lose(e as Error, false)
            if (staged) this.retake(staged)
            throw e
        } finally {
            // the next write waiting, if any, goes now
            if (++this.writeTurn !== this.writeTicket) this.writable.notify()
        }
    }

    private async writeOn(gen: number, data: Buffer) {
        if (gen !== this.gen) throw new Error("connection lost")
        await this.transport.write(data)
    }

    /**
     * Packets of the write buffer that were not written when the link was
     * lost: a QoS 0 PUBLISH goes back to the queue for the next connection
     * (with `reconn`; the application was told it was taken), a PUBACK is
     * owed (the broker sends its message again). The others need nothing:
     * QoS 1/2 messages and PUBREL are in the session, PUBREC is owed by
     * `awaitingRelease`, PUBCOMP answers a PUBREL sent again. Packets taken
     * back after one loss are queued in the order they were written in.
     */
    private retake(buf: Buffer) {
        if (this.disposed) return
        let at = 0
        while (at < buf.length) {
            const first = buf[at]
            // §2.2.3: the remaining length, 7 bits a byte
            let len = 0
            let mul = 1
            let i = at + 1
            for (;;) {
                const b = buf[i++]
                len += (b & 0x7f) * mul
                mul *= 128
                if (!(b & 0x80)) break
            }
            const end = i + len
            if (first >> 4 === PacketType.Publish) {
                // QoS 0 without reconn: lost, as QoS 0 may be
                if (!(first & 0x06) && this.reconn)
                    this.requeue(new OutMessage(0, buf.slice(at, end), 0))
            }
            else if (first >> 4 === PacketType.Puback)
                this.inbound.pubackOwed((buf[i] << 8) | buf[i + 1])
            at = end
        }
    }

    /**
     * Puts a QoS 0 message that was not written back in the queue, behind
     * the others taken back since the loss and before everything newer.
     */
    private requeue(m: OutMessage) {
        this.outbox.insert(this.retakeAt, 1)
        this.outbox[this.retakeAt++] = m
    }

    /** Writes the buffer once the current fiber yields. */
    private flushSoon() {
        this.flushPending = true
        const self = this
        ;(async () => {
            self.flushPending = false
            try {
                await self.flush()
            } catch (e) {
                // lost: writeLink took care of it
            }
        }).start()
    }

    /**
     * Moves queued publishes onto the link while there is room in the
     * in-flight window. One fiber pumps at a time; the others return.
     */
    private async pump() {
        if (this.pumping) return
        this.pumping = true
        try {
            while (
                this.state === MQTTState.Connected &&
                this.outbox.length > 0
            ) {
                const m = this.outbox[0]
                if (
                    m.qos > 0 &&
                    this.session.inflight.length >= this.maxInflight
                )
                    break
                this.outbox.shift()
                const bytes =
                    m.qos === 0 ? m.packet : this.session.startFlight(m)
                try {
                    await this.output(bytes, m.payload)
                } catch (e) {
                    // lost: QoS 1/2 are in the session and go again after
                    // the reconnection; QoS 0 goes back to the queue
                    if (m.qos === 0) this.requeue(m)
                    break
                }
                if (m.qos === 0) {
                    m.state = OutState.Done
                    m.packet = null
                    this.finish(m)
                }
            }
        } finally {
            this.pumping = false
        }
    }

    /**
     * Waits until `m` is acknowledged, failed or abandoned. Each message
     * wakes only its own publisher: waking every waiter on every ack costs
     * more than the ack itself.
     */
    private async settled(m: OutMessage) {
        while (!m.settled() && !m.error) {
            m.waiter = ds.Fiber.self()
            await ds.suspend(1000)
            m.waiter = null
        }
        if (m.error) throw m.error
    }

    /** Resumes the publisher waiting for `m`, if any. */
    private wake(m: OutMessage) {
        const f = m.waiter
        if (f && f.suspended) f.resume(true)
    }

    /**
     * `m` is done (acknowledged or failed): its publisher wakes, or the ack
     * callback hears of a message of `enqueue`.
     */
    private finish(m: OutMessage) {
        this.wake(m)
        const cb = this.onAck
        if (m.seq && cb)
            try {
                cb(m.seq, m.state === OutState.Done ? null : m.error)
            } catch (e) {
                const self = this
                ;(async () => {
                    await self.reportError(e as Error)
                }).start()
            }
        this.drained.notify()
    }

    /** Rejects the waiting publishers; their messages stay for a later connect(false). */
    private abandonWaiters(err: Error) {
        for (const m of this.session.inflight) {
            m.error = err
            this.wake(m)
        }
        for (const m of this.outbox) {
            m.error = err
            this.wake(m)
        }
        this.session.failRequests(err)
        this.drained.notify()
    }

    /**
     * A clean session starts: forget the messages whose publishers were
     * told they failed (a loss with `reconn: false`, `close()`); the others
     * go again as new messages.
     */
    private dropFailed(list: OutMessage[]) {
        for (let i = list.length - 1; i >= 0; --i) {
            const m = list[i]
            if (m.error) {
                m.state = OutState.Failed
                list.insert(i, -1)
                this.finish(m)
            }
        }
    }

    /** Sends SUBSCRIBE/UNSUBSCRIBE and waits for its ack; returns the SUBACK codes. */
    private async request(type: PacketType, packet: Buffer): Promise<number[]> {
        const r = this.session.addRequest(type)
        // the packet id sits right after the fixed header (§3.8.2, §3.10.2)
        const at = packet[1] & 0x80 ? (packet[2] & 0x80 ? 4 : 3) : 2
        packet[at] = r.packetId >> 8
        packet[at + 1] = r.packetId & 0xff
        await this.output(packet)
        const deadline = ds.millis() + this.ackTimeout
        while (!r.done && ds.millis() < deadline)
            await this.progress.wait(deadline - ds.millis())
        if (!r.done) {
            this.session.completeRequest(
                type === PacketType.Subscribe
                    ? PacketType.Suback
                    : PacketType.Unsuback,
                r.packetId,
                null
            )
            throw new Error(
                `no ${type === PacketType.Subscribe ? "SUBACK" : "UNSUBACK"} within ${this.ackTimeout} ms`
            )
        }
        if (r.error) throw r.error
        return r.granted
    }

    private forget(topic: string) {
        for (let i = 0; i < this.subscriptions.length; ++i)
            if (this.subscriptions[i].topic === topic) {
                this.subscriptions.insert(i, -1)
                return
            }
    }

    // ----------------------------------------------------------- receiving

    /**
     * The reader fiber of one connection: frames bytes into packets. Before
     * each frame it tells the framer how much room the incoming side has
     * (`maxIncoming` decoded messages, `maxIncomingBytes` of what waits), so
     * that PUBLISH frames past it are kept raw, dropped (QoS 0 past the
     * budget) or left waiting (QoS 1/2), while acknowledgements go on.
     */
    private async readLoop(gen: number) {
        const framer = this.framer
        const inb = this.inbound
        let handled = 0
        while (gen === this.gen) {
            let p: Packet = null
            try {
                const waiting = inb.waitingBytes
                framer.rawRoom = this.maxIncomingBytes - waiting
                framer.decodeRoom =
                    waiting === 0
                        ? UNLIMITED
                        : inb.rawCount === 0 &&
                            inb.queue.length < this.maxIncoming
                          ? this.maxIncomingBytes - waiting
                          : -1
                p = framer.next()
                this.droppedMessages = framer.dropped
                if (p) {
                    if (!this.connack && p.type !== PacketType.Connack)
                        // §3.2
                        throw new ProtocolError(
                            `${packetName(p.type || PacketType.Publish)} before CONNACK`
                        )
                    if (p.type === PacketType.Publish) {
                        // no local of its own: a variable that outlives the
                        // iteration would keep a 16 KB payload alive while
                        // the next one is decoded
                        if ((p as PublishPacket).qos === 0) {
                            // the common case, inline (Inbound.push)
                            inb.queue.push(p as PublishPacket)
                            inb.waitingBytes +=
                                (p as PublishPacket).payload.length +
                                (p as PublishPacket).topic.length +
                                8
                        } else
                            await this.onPublish(
                                (p as PublishPacket).qos,
                                (p as PublishPacket).packetId,
                                (p as PublishPacket).dup,
                                p as PublishPacket
                            )
                    } else if ((p.type as number) === 0) {
                        // kept raw, or dropped (DROPPED_FRAME): see FrameDecoder
                        if (p === RAW_FRAME) {
                            const raw = framer.raw
                            framer.raw = null
                            await this.onRawPublish(raw)
                        }
                    } else await this.handle(p)
                }
            } catch (e) {
                if (gen === this.gen) this.lose(e as Error, false)
                return
            }
            if (!p) {
                // waitMsg runs once this fiber yields: one wake-up per batch
                if (inb.queue.length > 0) this.inbox.notify()
                await this.rx.wait(5000)
            } else if (++handled % 8 === 0) {
                if (inb.queue.length > 0) this.inbox.notify()
                await ds.sleep(0) // the VM's watchdog
            }
        }
    }

    private async handle(p: Packet) {
        const t = p.type
        if (t >= PacketType.Puback && t <= PacketType.Pubcomp) {
            const id = (p as AckPacket).packetId
            const s = this.session
            // the message an ack settled (or a wrong ack failed), if any
            let done: OutMessage = null
            if (t === PacketType.Puback) done = s.onPuback(id)
            else if (t === PacketType.Pubcomp) done = s.onPubcomp(id)
            else if (t === PacketType.Pubrec) done = s.onPubrec(id)
            // §4.3.3: forget the id first, then PUBCOMP (also for an id
            // unknown here: the message was delivered and released before)
            else this.inbound.release(id)
            // PUBREC is answered with PUBREL, PUBREL with PUBCOMP
            if (t === PacketType.Pubrec || t === PacketType.Pubrel)
                await this.output(encodeAck(t + 1, id))
            if (done) {
                this.finish(done)
                // a place in the window is free
                if (this.outbox.length > 0) await this.pump()
            }
        } else if (t === PacketType.Suback || t === PacketType.Unsuback) {
            const granted =
                t === PacketType.Suback ? (p as SubackPacket).granted : []
            this.session.completeRequest(t, (p as AckPacket).packetId, granted)
            this.progress.notify()
        } else if (t === PacketType.Pingresp) this.pingSentAt = 0
        else if (t === PacketType.Connack) {
            if (this.connack) throw new ProtocolError("a second CONNACK") // §3.2
            const ca = p as ConnackPacket
            // no session on the broker: forget incoming ids now, before the
            // PUBLISHes that may follow the CONNACK in the same chunk
            if (ca.returnCode === 0) {
                if (!ca.sessionPresent) this.inbound.sessionLost()
                // acks of delivered messages may go from now on, also
                // before the resends are through (a PUBLISH in this chunk)
                this.sessionUp = true
            }
            this.connack = ca
            this.progress.notify()
        } else
            throw new ProtocolError(
                `unexpected ${packetName(t)} from the server`
            )
    }

    /**
     * A QoS 1/2 PUBLISH arrived (`m` decoded, or its raw frame): queued when
     * new; a resend of a message still held is dropped; one delivered
     * already is acknowledged again (see `Inbound`).
     */
    private async onPublish(
        qos: number,
        id: number,
        dup: boolean,
        m: PublishPacket | Buffer
    ) {
        const inb = this.inbound
        const a = inb.arrive(qos, id, dup)
        if (a === Arrival.Fresh) inb.push(m)
        else if (a === Arrival.Pubrec) await this.writeAck(AckType.Pubrec, id)
        else if (a === Arrival.Puback) await this.writeAck(AckType.Puback, id)
    }

    /**
     * A PUBLISH kept raw (the application is behind): its flags and packet
     * id are checked now, the rest when it is decoded for delivery.
     */
    private async onRawPublish(raw: Buffer) {
        const first = raw[0]
        const qos = (first >> 1) & 3
        if (qos === 3) throw new ProtocolError("PUBLISH: QoS 3") // §3.3.1-4
        if (qos === 0) {
            if (first & 0x08) throw new ProtocolError("PUBLISH: DUP with QoS 0") // §3.3.1-2
            this.inbound.push(raw)
            return
        }
        const id = rawPacketId(raw)
        if (id <= 0)
            throw new ProtocolError(
                id === 0
                    ? "PUBLISH: packet id 0"
                    : "PUBLISH: packet id runs past the end of the packet"
            )
        await this.onPublish(qos, id, (first & 0x08) !== 0, raw)
    }

    /**
     * Writes PUBACK or PUBREC for a delivered message when the link is up;
     * a PUBACK that cannot be written is owed: the broker sends the message
     * again and gets it then. (A PUBREC is owed by `awaitingRelease`.)
     */
    private async writeAck(type: number, id: number) {
        if (this.sessionUp)
            try {
                await this.output(encodeAck(type, id))
                return
            } catch (e) {
                // the link went down: lose() has it
            }
        if (type === AckType.Puback) this.inbound.pubackOwed(id)
    }

    /**
     * Hands the messages queued now to the callback, then acknowledges them
     * (QoS 1 PUBACK, QoS 2 PUBREC). The packet itself is the callback's
     * `info` (it has `qos`, `retain` and `dup`): one object less per message.
     */
    private async deliverQueued() {
        const inb = this.inbound
        let n = inb.queue.length
        while (n-- > 0) {
            let e = inb.take()
            if (!e) break
            let p: PublishPacket = null
            if (e instanceof Buffer) {
                try {
                    p = decodeFromServer(e[0], e, 1, e.length) as PublishPacket
                } catch (err) {
                    // malformed bytes the broker sent while the application was behind
                    inb.dropCurrent(rawPacketId(e))
                    await this.reportError(err as Error)
                    if (this.framer.blocked) this.rx.notify()
                    continue
                }
            } else p = e
            const cb = this.onMessage
            if (cb) {
                try {
                    await cb(p.topic, p.payload, p)
                } catch (err) {
                    await this.reportError(err as Error)
                }
            }
            const id = p.packetId
            let ack = 0
            if (p.qos === 0) {
                // Inbound.delivered inline for QoS 0: nothing to acknowledge
                inb.waitingBytes -= inb.currentBytes
                inb.currentBytes = 0
            } else ack = inb.delivered(p.qos, id)
            // let the payload go before the reader decodes the next one
            p = null
            e = null
            // room again: a reader waiting for it goes on
            if (this.framer.blocked) this.rx.notify()
            if (ack) await this.writeAck(ack, id)
            if (n % 4 === 3) await ds.sleep(0) // the VM's watchdog
        }
    }

    // ----------------------------------------------------------- keepalive

    /**
     * The keepalive of connection `gen`, a fiber that ticks until the
     * connection ends (a loop rather than setInterval, whose timer code
     * would cost the image half a kilobyte). PINGREQ when nothing was sent
     * for `keepalive` (§3.1.2.10) or nothing received for 0.75 x
     * keepalive; any byte received after it answers it. Nothing received
     * for 1.5 x keepalive means the link is dead: a PINGRESP gets at least
     * half a keepalive (as MQTT.js), and a loss is noticed within 1.5 x
     * keepalive. Bytes count, not decoded packets: a reader that waits for
     * the application to make room still proves the link alive.
     */
    private async keepalive(gen: number) {
        const k = this.keepaliveMs
        const tick = Math.floor(Math.max(100, Math.min(1000, k / 8)))
        this.lastRx = ds.millis()
        while (gen === this.gen) {
            await ds.sleep(tick)
            if (gen !== this.gen || this.state !== MQTTState.Connected)
                continue
            const now = ds.millis()
            if (this.pingSentAt && this.lastRx >= this.pingSentAt)
                this.pingSentAt = 0
            if (now - this.lastRx >= k + k / 2 - tick) {
                this.lose(
                    new Error(
                        `keepalive timeout: no packet for ${now - this.lastRx} ms`
                    ),
                    false
                )
                return
            }
            if (
                !this.pingSentAt &&
                (now - this.lastTx >= k || now - this.lastRx >= (k * 3) / 4)
            ) {
                this.pingSentAt = now
                try {
                    await this.output(encodeEmpty(PacketType.Pingreq))
                } catch (e) {
                    // the loss is reported by the failed write
                }
            }
        }
    }
}
