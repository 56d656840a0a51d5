// A fault-injecting TCP proxy for Node-side tests: it sits between a client
// (the simulator) and a broker on 127.0.0.1:upstreamPort and can cut
// connections at an exact byte, deliver one byte at a time, coalesce, delay,
// black-hole traffic or refuse connections. Everything listens on 127.0.0.1.
//
// Data flows in two directions ("lanes"): "up" is client -> broker, "down" is
// broker -> client. Each lane has one FIFO queue: every mode takes bytes from
// the head of that queue, so the order of bytes within a direction is always
// preserved and no byte is delivered twice, also across mode changes.
// Bytes from the client are held until the upstream connection is up. An end
// of stream (FIN) is passed on after the bytes before it; a socket error
// (e.g. a reset) on either side destroys both sockets.

import { EventEmitter } from "node:events"
import net from "node:net"

/**
 * Resolves the n-th entry of `list` once it exists; `emitter` emits `event`
 * whenever an entry is added. Rejects after `ms`, saying what it waited for.
 * @template T
 * @param {import("node:events").EventEmitter} emitter
 * @param {string} event
 * @param {T[]} list
 * @param {number} n
 * @param {number} ms
 * @param {string} [what] how the message names an entry (default: `event`)
 * @returns {Promise<T>}
 */
export function waitForNth(emitter, event, list, n, ms, what = event) {
    return new Promise((resolve, reject) => {
        if (list.length >= n) return resolve(list[n - 1])
        const check = () => {
            if (list.length >= n) {
                cleanup()
                resolve(list[n - 1])
            }
        }
        const timer = setTimeout(() => {
            cleanup()
            reject(
                new Error(
                    `timed out after ${ms} ms waiting for ${what} #${n} (have ${list.length})`
                )
            )
        }, ms)
        const cleanup = () => {
            clearTimeout(timer)
            emitter.off(event, check)
        }
        emitter.on(event, check)
    })
}

/**
 * A seeded PRNG (mulberry32): the same seed gives the same sequence.
 * @param {number} seed any integer (only the low 32 bits count)
 * @returns {() => number} a function returning floats in [0, 1)
 */
export function rng(seed) {
    let a = seed >>> 0
    return () => {
        a = (a + 0x6d2b79f5) >>> 0
        let t = a
        t = Math.imul(t ^ (t >>> 15), t | 1)
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
}

/**
 * @typedef {"up"|"down"|"both"} Direction
 *   "up": client -> broker, "down": broker -> client, "both": either
 */

/**
 * @typedef {{ kind: "pass" } | { kind: "blackhole" } | { kind: "delay", ms: number }
 *   | { kind: "oneByte", delayMs: number } | { kind: "coalesce", windowMs: number }} Mode
 */

/**
 * @typedef {object} CutInfo
 * @property {number} id id of the connection that was cut (1 = first accepted)
 * @property {"cutAt"|"cutNow"} reason
 * @property {Direction|null} direction direction of the cutAt budget (null for cutNow)
 * @property {number|null} at the byte offset given to cutAt (null for cutNow)
 * @property {{ up: number, down: number }} bytes bytes delivered in each direction
 *   on that connection when it was cut
 */

/**
 * @typedef {object} ProxyConnection
 * @property {number} id 1 for the first accepted (non-refused) connection, then 2, ...
 * @property {net.Socket} client socket accepted from the client
 * @property {net.Socket} upstream socket to the broker
 * @property {{ up: number, down: number }} bytes bytes delivered so far in each direction
 * @property {{ up: number, down: number }} dropped bytes dropped by blackhole() in each direction
 * @property {boolean} cut true once cutAt/cutNow destroyed this connection
 * @property {boolean} open false once both sockets are closed
 * @property {Promise<void>} closed resolves when both sockets are closed
 * @property {() => void} cutNow destroys this connection's two sockets now
 */

/**
 * @typedef {object} FaultProxy
 * @property {number} port the proxy's port on 127.0.0.1
 * @property {number} connections number of connections accepted and proxied (refused ones not counted)
 * @property {number} refused number of connections refused while refuse(true) was on
 * @property {ProxyConnection[]} conns all proxied connections, in the order accepted
 * @property {CutInfo[]} cuts all cuts so far
 * @property {{ up: Mode, down: Mode }} mode the current mode of each direction
 * @property {(opts?: { direction?: Direction }) => void} pass forward as is (also flushes
 *   what an earlier mode still holds, in order)
 * @property {(delayMs?: number, opts?: { direction?: Direction }) => void} oneByte deliver one byte
 *   per write, delayMs between bytes (0: the next byte goes on the next event-loop turn; the
 *   receiver may still read back-to-back bytes together, use delayMs >= 1 to keep them apart)
 * @property {(windowMs: number, opts?: { direction?: Direction }) => void} coalesce hold bytes and
 *   deliver, windowMs after the first held byte arrived, all bytes held by then in one write
 * @property {(ms: number, opts?: { direction?: Direction }) => void} delay deliver each chunk ms
 *   after it arrived, in order
 * @property {(opts?: { direction?: Direction }) => void} blackhole forward nothing and keep the
 *   sockets open: arriving bytes, and bytes an earlier mode still held, are dropped for good;
 *   an end of stream (FIN) is held back until the direction leaves blackhole mode
 * @property {(n: number, opts?: { direction?: Direction }) => void} cutAt arms a one-shot cut:
 *   after exactly n more bytes were delivered in that direction (default "down"; "both" counts
 *   the bytes of both directions together) on the newest open connection (or, when none is
 *   open, the next accepted one), those n bytes are delivered and both sockets are destroyed;
 *   n = 0 cuts when the next byte is due, delivering none of it. Bytes are counted where
 *   they are delivered, after the mode (so blackholed bytes do not count). Replaces an armed
 *   cut; dropped when its connection closes before the cut
 * @property {(rng: () => number, maxBytes: number, opts?: { direction?: Direction }) => number} cutRandom
 *   cutAt(floor(rng() * (maxBytes + 1))), so an offset in [0, maxBytes]; returns the offset
 * @property {() => number} cutNow destroys every open connection now; returns how many
 * @property {() => void} disarm cancels an armed cutAt
 * @property {(on?: boolean) => void} refuse while on, the proxy keeps listening but
 *   accepts and immediately destroys new connections (the client sees its connect
 *   succeed, then the connection closed without data); refuse(false) turns it off
 * @property {(n?: number, ms?: number) => Promise<ProxyConnection>} waitForConnection resolves
 *   with the n-th proxied connection counting from proxy start (default n = connections + 1,
 *   i.e. the next one), also if it was already accepted; rejects after ms (default 5000)
 * @property {(n?: number, ms?: number) => Promise<CutInfo>} waitForCut resolves with the n-th
 *   cut since start (default: the next one), also if it already happened; rejects after ms
 * @property {() => Promise<void>} close closes the server and destroys all sockets; never hangs
 */

const DIRECTIONS = ["up", "down"]

/** Copies props (getters included) onto target; returns target. */
function defineAll(target, props) {
    return Object.defineProperties(
        target,
        Object.getOwnPropertyDescriptors(props)
    )
}

function lanesOf(direction = "both") {
    if (direction === "both") return DIRECTIONS
    if (direction === "up" || direction === "down") return [direction]
    throw new Error(
        `direction must be "up", "down" or "both", not ${direction}`
    )
}

/**
 * Starts a fault-injecting TCP proxy on 127.0.0.1 in front of
 * 127.0.0.1:upstreamPort. The handle is also an EventEmitter with the
 * events "connection" (ProxyConnection), "cut" (CutInfo) and "refused".
 * @param {{ upstreamPort: number, port?: number, upstreamHost?: string,
 *   onCut?: (info: CutInfo) => void }} opts
 * @returns {Promise<FaultProxy & EventEmitter>}
 */
export async function startFaultProxy({
    upstreamPort,
    port = 0,
    upstreamHost = "127.0.0.1",
    onCut,
}) {
    if (!upstreamPort) throw new Error("startFaultProxy: upstreamPort missing")
    const emitter = new EventEmitter()
    /** @type {{ up: Mode, down: Mode }} */
    const mode = { up: { kind: "pass" }, down: { kind: "pass" } }
    /** @type {Set<Pair>} */
    const live = new Set()
    const conns = []
    const cuts = []
    const sockets = new Set()
    let refusing = false
    let refused = 0
    let closing = null
    // an armed cutAt: { n, direction, remaining, pair: Pair|null }
    let armed = null

    // ------------------------------------------------------------ pairs

    /**
     * One accepted connection: the client socket, the upstream socket and
     * a lane (queue + timer) per direction.
     * @typedef {ReturnType<typeof makePair>} Pair
     */
    function makePair(client) {
        const upstream = net.connect({
            port: upstreamPort,
            host: upstreamHost,
            allowHalfOpen: true,
        })
        const id = conns.length + 1
        let resolveClosed
        const closedPromise = new Promise(r => (resolveClosed = r))
        const pair = {
            id,
            stopped: false, // forwards nothing more
            destroyed: false, // sockets destroyed
            lanes: {},
            info: /** @type {ProxyConnection} */ ({
                id,
                client,
                upstream,
                bytes: { up: 0, down: 0 },
                dropped: { up: 0, down: 0 },
                cut: false,
                open: true,
                closed: closedPromise,
                cutNow: () => cutPair(pair, "cutNow", null),
            }),
        }
        const mkLane = (name, src, dst) => ({
            name,
            src,
            dst,
            queue: [], // { buf, t }
            timer: null, // { cancel() }
            nextByteAt: 0, // oneByte: not before this performance.now()
            ended: false, // src sent FIN
            endSent: false,
        })
        pair.lanes.up = mkLane("up", client, upstream)
        pair.lanes.down = mkLane("down", upstream, client)

        upstream.once("connect", () => pump(pair, pair.lanes.up))
        let closedCount = 0
        for (const s of [client, upstream]) {
            sockets.add(s)
            s.on("error", () => killPair(pair))
            s.on("close", () => {
                sockets.delete(s)
                if (++closedCount === 2) {
                    pair.info.open = false
                    killPair(pair)
                    resolveClosed()
                }
            })
        }
        for (const name of DIRECTIONS) {
            const lane = pair.lanes[name]
            lane.src.on("data", buf => {
                if (pair.stopped) return
                lane.queue.push({ buf, t: performance.now() })
                pump(pair, lane)
            })
            lane.src.on("end", () => {
                lane.ended = true
                pump(pair, lane)
            })
        }
        return pair
    }

    function cancelTimer(lane) {
        if (lane.timer) {
            lane.timer.cancel()
            lane.timer = null
        }
    }

    function schedule(pair, lane, ms) {
        const fire = () => {
            lane.timer = null
            pump(pair, lane)
        }
        if (ms <= 0) {
            const h = setImmediate(fire)
            lane.timer = { cancel: () => clearImmediate(h) }
        } else {
            const h = setTimeout(fire, Math.ceil(ms))
            lane.timer = { cancel: () => clearTimeout(h) }
        }
    }

    /** Stops forwarding on the pair and drops what its lanes hold. */
    function stopPair(pair) {
        pair.stopped = true
        for (const name of DIRECTIONS) {
            const lane = pair.lanes[name]
            cancelTimer(lane)
            lane.queue = []
        }
    }

    /** Destroys both sockets of the pair (no cut event). */
    function killPair(pair) {
        if (pair.destroyed) return
        stopPair(pair)
        pair.destroyed = true
        live.delete(pair)
        if (armed && armed.pair === pair) armed = null
        pair.info.client.destroy()
        pair.info.upstream.destroy()
    }

    function cutPair(pair, reason, cut) {
        // a cutAt that fired is reported even if a socket failed meanwhile
        if (pair.destroyed && reason !== "cutAt") return false
        const info = {
            id: pair.id,
            reason,
            direction: cut ? cut.direction : null,
            at: cut ? cut.n : null,
            bytes: { ...pair.info.bytes },
        }
        pair.info.cut = true
        killPair(pair)
        cuts.push(info)
        if (onCut) {
            try {
                onCut(info)
            } catch (e) {
                console.error("faultproxy onCut threw", e)
            }
        }
        emitter.emit("cut", info)
        return true
    }

    /**
     * Delivers buf on the lane, applying an armed cut. Returns false when
     * the pair was cut (the caller stops).
     */
    function deliver(pair, lane, buf) {
        const cut = armed
        if (
            cut &&
            cut.pair === pair &&
            (cut.direction === "both" || cut.direction === lane.name) &&
            buf.length >= cut.remaining
        ) {
            armed = null
            const head = buf.subarray(0, cut.remaining)
            pair.info.bytes[lane.name] += head.length
            // forward nothing more; destroy once the head reached the kernel
            stopPair(pair)
            pair.info.client.pause()
            pair.info.upstream.pause()
            const finish = () => cutPair(pair, "cutAt", cut)
            if (head.length && !lane.dst.destroyed) lane.dst.write(head, finish)
            else finish()
            return false
        }
        if (cut && cut.pair === pair) {
            if (cut.direction === "both" || cut.direction === lane.name)
                cut.remaining -= buf.length
        }
        pair.info.bytes[lane.name] += buf.length
        if (!lane.dst.write(buf) && !lane.src.isPaused()) {
            // backpressure: stop reading until the receiver caught up
            lane.src.pause()
            lane.dst.once("drain", () => {
                if (!pair.stopped) lane.src.resume()
            })
        }
        return true
    }

    /** Moves bytes from the lane's queue to its destination per the mode. */
    function pump(pair, lane) {
        if (pair.stopped) return
        // hold everything until the upstream connection is up (Node would
        // merge writes made while connecting)
        if (lane.dst.connecting) return
        const m = mode[lane.name]
        const q = lane.queue
        switch (m.kind) {
            case "pass":
                cancelTimer(lane)
                while (q.length) if (!deliver(pair, lane, q.shift().buf)) return
                break
            case "blackhole":
                cancelTimer(lane)
                for (const { buf } of q)
                    pair.info.dropped[lane.name] += buf.length
                q.length = 0
                return // an end of stream is held back too
            case "delay": {
                if (lane.timer) return
                const now = performance.now()
                while (q.length && q[0].t + m.ms <= now)
                    if (!deliver(pair, lane, q.shift().buf)) return
                if (q.length) {
                    schedule(pair, lane, q[0].t + m.ms - now)
                    return
                }
                break
            }
            case "coalesce":
                if (lane.timer) return
                if (q.length) {
                    const due = q[0].t + m.windowMs - performance.now()
                    if (due > 0) {
                        schedule(pair, lane, due)
                        return
                    }
                    const all = Buffer.concat(q.map(e => e.buf))
                    q.length = 0
                    if (!deliver(pair, lane, all)) return
                }
                break
            case "oneByte":
                if (lane.timer) return
                if (q.length) {
                    // timers may fire early against a stale loop clock:
                    // keep real time between bytes
                    const wait = lane.nextByteAt - performance.now()
                    if (m.delayMs > 0 && wait > 0) {
                        schedule(pair, lane, wait)
                        return
                    }
                    const head = q[0]
                    const byte = head.buf.subarray(0, 1)
                    head.buf = head.buf.subarray(1)
                    if (!head.buf.length) q.shift()
                    if (!deliver(pair, lane, byte)) return
                    // the next byte (also of a later chunk) waits delayMs
                    lane.nextByteAt = performance.now() + m.delayMs
                    schedule(pair, lane, m.delayMs)
                    return
                }
                break
        }
        if (!q.length && lane.ended && !lane.endSent && !lane.timer) {
            lane.endSent = true
            lane.dst.end()
        }
    }

    // ------------------------------------------------------------ server

    const server = net.createServer({ allowHalfOpen: true }, client => {
        if (closing || refusing) {
            refused += refusing ? 1 : 0
            client.on("error", () => {})
            client.destroy()
            if (refusing) emitter.emit("refused")
            return
        }
        client.setNoDelay(true)
        const pair = makePair(client)
        pair.info.upstream.setNoDelay(true)
        live.add(pair)
        conns.push(pair.info)
        if (armed && armed.pair === null) armed.pair = pair
        emitter.emit("connection", pair.info)
    })
    server.on("error", () => {})
    await new Promise((resolve, reject) => {
        server.once("error", reject)
        server.listen(port, "127.0.0.1", () => {
            server.off("error", reject)
            resolve()
        })
    })

    const setMode = (m, direction) => {
        for (const name of lanesOf(direction)) {
            mode[name] = m
            for (const pair of [...live]) {
                const lane = pair.lanes[name]
                cancelTimer(lane)
                pump(pair, lane)
            }
        }
    }

    // defineProperties, not Object.assign: the getters must stay getters
    const handle = defineAll(emitter, {
        port: server.address().port,
        get connections() {
            return conns.length
        },
        get refused() {
            return refused
        },
        conns,
        cuts,
        get mode() {
            return { up: mode.up, down: mode.down }
        },
        pass({ direction = "both" } = {}) {
            setMode({ kind: "pass" }, direction)
        },
        oneByte(delayMs = 0, { direction = "both" } = {}) {
            setMode({ kind: "oneByte", delayMs }, direction)
        },
        coalesce(windowMs, { direction = "both" } = {}) {
            setMode({ kind: "coalesce", windowMs }, direction)
        },
        delay(ms, { direction = "both" } = {}) {
            setMode({ kind: "delay", ms }, direction)
        },
        blackhole({ direction = "both" } = {}) {
            setMode({ kind: "blackhole" }, direction)
        },
        cutAt(n, { direction = "down" } = {}) {
            lanesOf(direction)
            if (!(Number.isInteger(n) && n >= 0))
                throw new Error(
                    `cutAt: byte offset must be an integer >= 0, not ${n}`
                )
            const newest = [...live].pop() || null
            armed = { n, direction, remaining: n, pair: newest }
        },
        cutRandom(r, maxBytes, opts) {
            const n = Math.floor(r() * (maxBytes + 1))
            handle.cutAt(n, opts)
            return n
        },
        cutNow() {
            let n = 0
            for (const pair of [...live]) if (cutPair(pair, "cutNow", null)) n++
            return n
        },
        disarm() {
            armed = null
        },
        refuse(on = true) {
            refusing = !!on
        },
        waitForConnection(n = conns.length + 1, ms = 5000) {
            return waitForNth(emitter, "connection", conns, n, ms)
        },
        waitForCut(n = cuts.length + 1, ms = 5000) {
            return waitForNth(emitter, "cut", cuts, n, ms)
        },
        close() {
            if (!closing) {
                closing = new Promise(resolve => {
                    armed = null
                    server.close(() => resolve())
                    for (const pair of [...live]) killPair(pair)
                    for (const s of [...sockets]) s.destroy()
                })
            }
            return closing
        },
    })
    return handle
}
