import * as ds from "@devicescript/core"
import { MQTTClient, MQTTClientOptions, Transport } from "../../src/index"

/**
 * A broker inside the VM, for the profile: it answers every packet the
 * client writes at once, with no network and no 10 ms poll in between
 * (CONNECT: CONNACK; PUBLISH QoS 1: PUBACK; QoS 2: PUBREC; PUBREL:
 * PUBCOMP; SUBSCRIBE: SUBACK granting QoS 1). What a publisher then does
 * per message is the client's own work plus this parser's (`parseOnly`
 * times the parser alone, so it can be taken off).
 */
export class LoopbackBroker implements Transport {
    onData: (chunk: Buffer) => void = null
    onClose: (err: Error) => void = null
    writes = 0
    /** answer nothing: parse only (to time the parser) */
    mute = false

    async open(host: string, port: number, tls: boolean, timeoutMs: number) {}

    async write(data: Buffer) {
        this.writes++
        // first pass: how many answers; second: write them into one buffer
        const n = this.scan(data, null)
        if (n === 0 || this.mute) return
        const out = Buffer.alloc(n * 4)
        this.scan(data, out)
        // the client pushes received bytes to its framer and wakes its
        // reader: safe to call from inside its write
        if (this.onData) this.onData(out)
    }

    close() {}

    /** Walks the packets of `data`; writes the answers to `out` unless null; returns their count. */
    private scan(data: Buffer, out: Buffer) {
        let i = 0
        let k = 0
        while (i < data.length) {
            const first = data[i]
            let len = 0
            let mul = 1
            let j = i + 1
            for (;;) {
                const b = data[j++]
                len += (b & 0x7f) * mul
                mul *= 128
                if (!(b & 0x80)) break
            }
            const type = first >> 4
            let ans = 0
            let id = 0
            if (type === 1) ans = 0x20 // CONNACK, accepted
            else if (type === 3) {
                const qos = (first >> 1) & 3
                if (qos) {
                    const at = j + 2 + ((data[j] << 8) | data[j + 1])
                    id = (data[at] << 8) | data[at + 1]
                    ans = qos === 1 ? 0x40 : 0x50
                }
            } else if (type === 6) {
                ans = 0x70
                id = (data[j] << 8) | data[j + 1]
            } else if (type === 8) {
                // SUBACK: 0x90 3 id granted; the answer slot has 4 bytes,
                // so it is written as a separate chunk
                if (out && this.onData) {
                    const s = Buffer.alloc(5)
                    s[0] = 0x90
                    s[1] = 3
                    s[2] = data[j]
                    s[3] = data[j + 1]
                    s[4] = 1
                    this.onData(s)
                }
            }
            if (ans) {
                if (out) {
                    const o = k * 4
                    out[o] = ans
                    out[o + 1] = 2
                    out[o + 2] = id >> 8
                    out[o + 3] = id & 0xff
                }
                k++
            }
            i = j + len
        }
        return k
    }

    /** Times the parser over `data` (no answers): what `write` costs besides the answer. */
    parseOnly(data: Buffer) {
        return this.scan(data, null)
    }
}

let acked = 0

/**
 * One fiber publishing `n` messages with enqueue + drain through a client
 * on the loopback broker, as the bench's q1p/q2p phases do; resolves the
 * device ms it took, with the number of socket writes.
 */
export async function loopbackPipelined(
    topic: string,
    msg: Buffer,
    qos: number,
    n: number,
    maxInflight: number,
    maxQueued: number,
    drainTo: number
) {
    const t = new LoopbackBroker()
    const c = loopbackClient(t, { maxInflight, maxQueued })
    c.setAckCallback((seq, err) => {
        acked++
    })
    await c.connect()
    acked = 0
    const room = maxInflight + maxQueued
    const w0 = t.writes
    const t0 = ds.millis()
    for (let i = 0; i < n; ++i) {
        if (i - acked >= room) await c.drain(drainTo)
        await c.enqueue(topic, msg, false, qos)
    }
    await c.drain()
    const ms = ds.millis() - t0
    const writes = t.writes - w0
    await c.disconnect()
    return [ms, writes]
}

/**
 * The enqueue side alone: a mute broker (no acknowledgement ever), so
 * every message is taken (into the window, then the queue) and none is
 * acknowledged. The queued messages stay on the heap: `rounds` fresh
 * clients take maxInflight + maxQueued messages each; resolves the ms of
 * the enqueue loops and their writes.
 */
export async function loopbackEnqueueOnly(
    topic: string,
    msg: Buffer,
    qos: number,
    rounds: number,
    maxInflight: number,
    maxQueued: number
) {
    let ms = 0
    let writes = 0
    for (let r = 0; r < rounds; ++r) {
        const t = new LoopbackBroker()
        const c = loopbackClient(t, { maxInflight, maxQueued })
        await c.connect()
        t.mute = true
        const w0 = t.writes
        const t0 = ds.millis()
        for (let i = 0; i < maxInflight + maxQueued; ++i) {
            await c.enqueue(topic, msg, false, qos)
            // an enqueue that only queues (window full) never yields:
            // without this the VM's watchdog ends the program (InfiniteLoop)
            if (i % 32 === 31) await ds.sleep(0)
        }
        await c.flush()
        ms += ds.millis() - t0
        writes += t.writes - w0
        await c.close()
    }
    return [ms, writes]
}

/** A client of the stub `t`, with `options` (reconn off). */
function loopbackClient(t: LoopbackBroker, options: MQTTClientOptions = {}) {
    options.reconn = false
    options.transport = t
    return new MQTTClient("loopback", "127.0.0.1", 1883, options)
}

/** The same with QoS 0 `publish` and the default write buffer, flushed at the end. */
export async function loopbackQos0(topic: string, msg: Buffer, n: number) {
    const t = new LoopbackBroker()
    const c = loopbackClient(t)
    await c.connect()
    const w0 = t.writes
    const t0 = ds.millis()
    for (let i = 0; i < n; ++i) await c.publish(topic, msg, false, 0)
    await c.flush()
    const ms = ds.millis() - t0
    const writes = t.writes - w0
    await c.disconnect()
    return [ms, writes]
}
