// Packet-aware faults on top of the fault proxy (faultproxy.mjs): follows the
// MQTT packets passing through each proxied connection and cuts the link
// right before a packet of a given type in a given direction, so that this
// packet and everything after it on that connection is lost. Also records
// the size of each write the proxy makes to the client (to check that a
// coalesced burst reached the device in one piece).
//
// It hooks the proxy from outside: on each "connection" event it prepends a
// "data" listener to both sockets, so it sees each chunk before the proxy
// forwards it, finds where the packet that triggers starts in that chunk,
// and arms the proxy's own cutAt at that byte offset. That is exact while
// the direction is in "pass" mode (the proxy then forwards every chunk at
// once, so the bytes delivered so far are the bytes received before this
// chunk); the triggers are not meant to be combined with the other modes.

/** MQTT control packet types by name (MQTT 3.1.1 §2.2.1). */
export const PACKET = {
    CONNECT: 1,
    CONNACK: 2,
    PUBLISH: 3,
    PUBACK: 4,
    PUBREC: 5,
    PUBREL: 6,
    PUBCOMP: 7,
    SUBSCRIBE: 8,
    SUBACK: 9,
    UNSUBSCRIBE: 10,
    UNSUBACK: 11,
    PINGREQ: 12,
    PINGRESP: 13,
    DISCONNECT: 14,
}

const NAMES = Object.fromEntries(Object.entries(PACKET).map(([k, v]) => [v, k]))

/** @param {number} type @returns {string} */
export function packetName(type) {
    return NAMES[type] || `type ${type}`
}

/**
 * @typedef {object} PacketSeen
 * @property {number} conn proxy connection id
 * @property {"up"|"down"} dir up: client -> broker, down: broker -> client
 * @property {number} type control packet type (PACKET)
 * @property {number} offset offset of its first byte in that direction of that connection
 */

/**
 * @typedef {object} Trigger
 * @property {number} type the packet type that triggers the cut
 * @property {"up"|"down"} direction
 * @property {number} skip how many matching packets still pass before the cut
 * @property {(info: { conn: number, offset: number }) => void} fired
 */

/**
 * Follows the MQTT packets through `proxy` (a handle of startFaultProxy) on
 * every connection accepted from now on.
 * @param {Awaited<ReturnType<import("./faultproxy.mjs").startFaultProxy>>} proxy
 * @param {{ onPacket?: (p: PacketSeen) => void, keep?: boolean }} [opts]
 *   keep: remember every packet in `packets` (default false: counts only)
 */
export function watchPackets(proxy, { onPacket, keep = false } = {}) {
    /** @type {PacketSeen[]} */
    const packets = []
    /** counts[dir][typeName] over all connections */
    const counts = { up: {}, down: {} }
    /** sizes of the proxy's writes to the client, per connection id */
    const clientWrites = new Map()
    /** @type {Trigger|null} */
    let trigger = null
    let stopped = false

    const newestOpen = () => {
        for (let i = proxy.conns.length - 1; i >= 0; i--)
            if (proxy.conns[i].open && !proxy.conns[i].cut)
                return proxy.conns[i]
        return null
    }

    const hook = conn => {
        // sizes of the writes the proxy makes to the client
        const writes = []
        clientWrites.set(conn.id, writes)
        const write = conn.client.write
        conn.client.write = function (chunk, ...rest) {
            if (chunk && chunk.length !== undefined) writes.push(chunk.length)
            return write.call(this, chunk, ...rest)
        }
        for (const dir of ["up", "down"]) {
            const src = dir === "up" ? conn.client : conn.upstream
            // parser state of this direction
            const st = { phase: 0, type: 0, len: 0, mult: 1, left: 0, pos: 0 }
            let dead = false
            src.prependListener("data", buf => {
                if (dead || stopped || conn.cut) return
                for (let i = 0; i < buf.length; ) {
                    if (st.phase === 0) {
                        st.type = buf[i] >> 4
                        const seen = { conn: conn.id, dir, type: st.type, offset: st.pos + i }
                        const t = trigger
                        if (t && t.direction === dir && t.type === st.type) {
                            if (t.skip > 0) t.skip--
                            else if (newestOpen() === conn) {
                                // cut before this packet: it is lost
                                trigger = null
                                dead = true
                                proxy.cutAt(i, { direction: dir })
                                t.fired({ conn: conn.id, offset: st.pos + i })
                                break
                            }
                        }
                        counts[dir][packetName(st.type)] = (counts[dir][packetName(st.type)] || 0) + 1
                        if (keep) packets.push(seen)
                        if (onPacket) onPacket(seen)
                        st.phase = 1
                        st.len = 0
                        st.mult = 1
                        i++
                    } else if (st.phase === 1) {
                        const b = buf[i++]
                        st.len += (b & 0x7f) * st.mult
                        st.mult *= 128
                        if (!(b & 0x80)) {
                            st.left = st.len
                            st.phase = st.left ? 2 : 0
                        }
                    } else {
                        const n = Math.min(st.left, buf.length - i)
                        st.left -= n
                        i += n
                        if (!st.left) st.phase = 0
                    }
                }
                st.pos += buf.length
            })
        }
    }
    proxy.on("connection", hook)

    return {
        packets,
        counts,
        /** @param {number} id connection id @returns {number[]} write sizes to the client */
        clientWrites(id) {
            return clientWrites.get(id) || []
        },
        /**
         * Arms a one-shot cut before the (skip + 1)-th packet of `type` in
         * `direction` (counted from now, over connections); replaces an
         * armed trigger. The triggering packet is lost.
         * @param {number} type
         * @param {"up"|"down"} direction
         * @param {{ skip?: number }} [opts]
         * @returns {Promise<{ conn: number, offset: number }>} when it fired
         */
        cutBefore(type, direction, { skip = 0 } = {}) {
            return new Promise(resolve => {
                trigger = { type, direction, skip, fired: resolve }
            })
        },
        /** cancels an armed trigger (its promise never settles) */
        disarm() {
            trigger = null
        },
        /** stops watching (the sockets keep the listeners, which then do nothing) */
        stop() {
            stopped = true
            trigger = null
            proxy.off("connection", hook)
        },
    }
}

/**
 * @typedef {{ kind: "bytes", direction: "up"|"down", max: number }
 *   | { kind: "packet", type: number, direction: "up"|"down", maxSkip: number }} CutKind
 *   bytes: a cut at a random byte offset in [0, max] of that direction
 *   (usually inside a packet); packet: before a packet of that type, after
 *   0..maxSkip of them passed
 */

/** @param {CutKind} k @returns {string} */
export function describeCut(k) {
    return k.kind === "bytes"
        ? `at once (a random byte of the next ${k.max} ${k.direction})`
        : `before a ${packetName(k.type)} ${k.direction === "up" ? "from the device" : "from the broker"}`
}

/**
 * Runs a sequence of cuts: the first is armed now on the open connection,
 * each next one once the device has connected again after the previous cut.
 * @param {Awaited<ReturnType<import("./faultproxy.mjs").startFaultProxy>>} proxy
 * @param {ReturnType<typeof watchPackets>} watcher
 * @param {CutKind[]} kinds
 * @param {() => number} random seeded PRNG (faultproxy.mjs rng)
 * @returns {{ done: () => number, log: string[], stop: () => void }} done: cuts made so far
 */
export function cutSequence(proxy, watcher, kinds, random) {
    let next = 0
    let made = 0
    let stopped = false
    let waitingForConnection = false
    const log = []

    const arm = () => {
        if (stopped || next >= kinds.length) return
        const k = kinds[next++]
        if (k.kind === "bytes") {
            const cutsBefore = proxy.cuts.length
            const n = proxy.cutRandom(random, k.max, { direction: k.direction })
            log.push(`${describeCut(k)}: ${n} bytes`)
            proxy.waitForCut(cutsBefore + 1, 600000).then(
                () => {
                    made++
                    afterCut()
                },
                () => {}
            )
        } else {
            const skip = Math.floor(random() * (k.maxSkip + 1))
            log.push(`${describeCut(k)} after ${skip} passed`)
            watcher.cutBefore(k.type, k.direction, { skip }).then(() => {
                made++
                afterCut()
            })
        }
    }
    const afterCut = () => {
        if (stopped) return
        waitingForConnection = true
    }
    const onConnection = () => {
        if (!waitingForConnection) return
        waitingForConnection = false
        // after the proxy has set the new pair up
        setImmediate(arm)
    }
    proxy.on("connection", onConnection)
    arm()
    return {
        done: () => made,
        log,
        stop() {
            stopped = true
            watcher.disarm()
            proxy.disarm()
            proxy.off("connection", onConnection)
        },
    }
}
