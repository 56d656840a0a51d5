import * as ds from "@devicescript/core"
import { DeviceSocketTransport, MQTTClient, Transport } from "../../src/index"
import { finish, holdBallast } from "./common"

export interface UmqttParams {
    port: number
    /** this bench invocation's tag: topics and client ids */
    tag: string
    /** phases to run, in order: connect q0b q0 q1s q1w q1p q2s q2w q2p in in1 */
    phases: string[]
    payloadSize: number
    /** connect(): how many timed connections */
    connects: number
    /** messages of each publish phase */
    q0: number
    /** messages of the q0b phase: QoS 0 through a client with `writeBuffer` */
    q0b: number
    /** that client's writeBuffer option (0: one socket write per packet) */
    writeBuffer: number
    q1s: number
    q1w: number
    q2s: number
    q2w: number
    /** messages of the pipelined phases: one fiber, enqueue + drain */
    q1p: number
    q2p: number
    /** publishing fibers of the windowed phases */
    fibers: number
    /** the main client's maxInflight: the pipelined phases' window */
    maxInflight: number
    /** the main client's maxQueued */
    maxQueued: number
    /** the pipelined publisher drains down to this many when the queue is full */
    drainTo: number
    /** the client's maxIncoming */
    maxIncoming: number
    /** inbound burst: messages expected, progress report every `report` */
    inbound: number
    report: number
    /** the QoS 1 inbound burst (phase in1): messages expected */
    inbound1: number
    /** a fiber that sleeps 1 ms in a loop, so the simulator never idles 10 ms (latency probe) */
    ticker?: boolean
    /** bytes held in 1 KB buffers for the whole run (experiment: a grown heap makes calls cheaper) */
    ballast?: number
}

let ctl = 0
let inCount = 0
let inExpected = 0
let inDisorder = 0
let finished = 0
let failures = 0
let firstError = ""
/** messages of the pipelined phase the ack callback confirmed, and failed */
let acked = 0
let ackErrors = 0
/** the main client's transport: its writeCount counts socket writes */
let link: DeviceSocketTransport = null

function log(s: string) {
    console.log(s)
}

/** Waits until the Node side confirmed the phase (a message on .../ctl). */
async function nextPhase(c: MQTTClient, k: number) {
    while (ctl < k) await c.waitMsg()
}

/** One publishing fiber of a windowed phase. */
async function publisher(
    c: MQTTClient,
    topic: string,
    msg: Buffer,
    qos: number,
    n: number
) {
    try {
        for (let i = 0; i < n; ++i) await c.publish(topic, msg, false, qos)
    } catch (e) {
        failures++
        if (!firstError) firstError = (e as Error).message
    }
    finished++
}

/** Bucket of the latency histogram for `ms` and above. */
const LAT_CAP = 1000

/**
 * The latency summary of one-fiber phases, computed here so the line stays
 * short: min, p50, p90, p99 and max of the per-publish durations in ms
 * (nearest rank), and the histogram's non-empty buckets as ms:count.
 */
function latencySummary(hist: number[], n: number) {
    const rank = (q: number) => Math.max(1, Math.ceil(q * n))
    const qs = [0.5, 0.9, 0.99]
    const at: number[] = [-1, -1, -1]
    let min = -1
    let max = 0
    let cum = 0
    const parts: string[] = []
    for (let ms = 0; ms <= LAT_CAP; ++ms) {
        const k = hist[ms]
        if (!k) continue
        if (min < 0) min = ms
        max = ms
        cum += k
        parts.push(`${ms}:${k}`)
        for (let j = 0; j < qs.length; ++j)
            if (at[j] < 0 && cum >= rank(qs[j])) at[j] = ms
    }
    return `lat=${min},${at[0]},${at[1]},${at[2]},${max} hist=${parts.join(",")}`
}

async function publishPhase(
    c: MQTTClient,
    name: string,
    topic: string,
    msg: Buffer,
    qos: number,
    n: number,
    fibers: number
) {
    finished = 0
    failures = 0
    firstError = ""
    const per = Math.idiv(n, fibers)
    const total = per * fibers
    let lat = ""
    const w0 = link.writeCount
    const t0 = ds.millis()
    if (fibers <= 1 && qos > 0) {
        // one fiber: each publish's duration, in a histogram by ms
        const hist: number[] = []
        for (let ms = 0; ms <= LAT_CAP; ++ms) hist.push(0)
        for (let i = 0; i < total; ++i) {
            const s = ds.millis()
            await c.publish(topic, msg, false, qos)
            hist[Math.min(LAT_CAP, ds.millis() - s)]++
        }
        const t1 = ds.millis()
        lat = latencySummary(hist, total)
        // a template takes few arguments in DeviceScript: two of them
        log(
            `RESULT ${name} topic=${topic} n=${total} t0=${t0} t1=${t1} ` +
                `writes=${link.writeCount - w0} ${lat} failures=${failures} ${firstError}`
        )
        return
    }
    if (fibers <= 1) {
        for (let i = 0; i < total; ++i) await c.publish(topic, msg, false, qos)
        // the write buffer holds the last packets: written is done
        await c.flush()
    } else {
        for (let f = 0; f < fibers; ++f)
            publisher.start(c, topic, msg, qos, per)
        while (finished < fibers) await ds.sleep(1)
    }
    const t1 = ds.millis()
    log(
        `RESULT ${name} topic=${topic} n=${total} t0=${t0} t1=${t1} ` +
            `writes=${link.writeCount - w0} failures=${failures} ${firstError}`
    )
}

/**
 * One fiber keeps the window full with `enqueue`: while fewer than
 * maxInflight + maxQueued messages are outstanding (counted by the ack
 * callback, which costs no call), it enqueues; when the queue is full it
 * waits with `drain(drainTo)`. Timed until `drain()` resolved: every
 * message acknowledged (PUBACK, PUBCOMP).
 */
async function pipelinedPhase(
    c: MQTTClient,
    p: UmqttParams,
    name: string,
    topic: string,
    msg: Buffer,
    qos: number,
    n: number
) {
    failures = 0
    firstError = ""
    acked = 0
    ackErrors = 0
    const room = p.maxInflight + p.maxQueued
    let full = 0
    const w0 = link.writeCount
    const t0 = ds.millis()
    let drains = 0
    try {
        for (let i = 0; i < n; ++i) {
            if (i - acked - ackErrors >= room) {
                await c.drain(p.drainTo)
                drains++
            }
            try {
                await c.enqueue(topic, msg, false, qos)
            } catch (e) {
                // acknowledged messages count as done before the pump has
                // moved the queue into the window: the queue can still be
                // full for a moment. Wait, and take the message again.
                if ((e as Error).message.indexOf("queue full") < 0) throw e
                full++
                await c.drain(p.drainTo)
                --i
            }
        }
        await c.drain()
    } catch (e) {
        failures++
        firstError = (e as Error).message
    }
    const t1 = ds.millis()
    log(
        `RESULT ${name} topic=${topic} n=${n} t0=${t0} t1=${t1} ` +
            `writes=${link.writeCount - w0} acked=${acked} full=${full} ` +
            `drains=${drains} failures=${failures + ackErrors} ${firstError}`
    )
}

/**
 * The device socket, timed: when open() resolved (TCP connected; the client
 * writes CONNECT right after) and when the first bytes (CONNACK) arrived.
 * Passed through the client's public `transport` option.
 */
class TimedTransport implements Transport {
    onData: (chunk: Buffer) => void = null
    onClose: (err: Error) => void = null
    openedAt = 0
    firstDataAt = 0
    private inner = new DeviceSocketTransport()

    async open(host: string, port: number, tls: boolean, timeoutMs: number) {
        const self = this
        this.inner.onData = chunk => {
            if (!self.firstDataAt) self.firstDataAt = ds.millis()
            if (self.onData) self.onData(chunk)
        }
        this.inner.onClose = err => {
            if (self.onClose) self.onClose(err)
        }
        await this.inner.open(host, port, tls, timeoutMs)
        this.openedAt = ds.millis()
    }

    async write(data: Buffer) {
        await this.inner.write(data)
    }

    close() {
        this.inner.close()
    }
}

/**
 * QoS 0 through a client of its own with the `writeBuffer` option of the
 * q0b phase (0 by default: one socket write per packet, the reference for
 * what coalescing buys); timed until `flush()` wrote the last packet, so
 * the rate counts written messages.
 */
async function bufferedPhase(p: UmqttParams, base: string, msg: Buffer) {
    const t = new DeviceSocketTransport()
    const c = new MQTTClient(`bench-buf-${p.tag}`, "127.0.0.1", p.port, {
        reconn: false,
        writeBuffer: p.writeBuffer,
        transport: t,
    })
    await c.connect()
    const topic = base + "/q0b"
    const w0 = t.writeCount
    const t0 = ds.millis()
    for (let i = 0; i < p.q0b; ++i) await c.publish(topic, msg, false, 0)
    await c.flush()
    const t1 = ds.millis()
    const writes = t.writeCount - w0
    await c.disconnect()
    log(
        `RESULT q0b topic=${topic} n=${p.q0b} t0=${t0} t1=${t1} ` +
            `writes=${writes} failures=0 `
    )
}

async function connectPhase(p: UmqttParams, base: string) {
    const total: number[] = []
    const mqtt: number[] = []
    for (let i = 0; i < p.connects; ++i) {
        const t = new TimedTransport()
        const c = new MQTTClient(
            `bench-conn-${p.tag}-${i}`,
            "127.0.0.1",
            p.port,
            {
                reconn: false,
                transport: t,
            }
        )
        const t0 = ds.millis()
        await c.connect()
        total.push(ds.millis() - t0)
        mqtt.push(t.firstDataAt - t.openedAt)
        await c.publish(base + "/conn", "c", false, 1)
        await c.disconnect()
    }
    log(
        `RESULT connect topic=${base}/conn n=${p.connects} ms=${total.join(",")} mqtt=${mqtt.join(",")}`
    )
}

/**
 * A paced burst pushed by the peer (QoS 0 on .../in, QoS 1 on .../in1),
 * delivered through waitMsg. The device reports its count on
 * .../prog/<name> every `report` deliveries; the first report is the "go".
 */
async function inboundPhase(
    c: MQTTClient,
    p: UmqttParams,
    base: string,
    name: string,
    n: number
) {
    const prog = base + "/prog/" + name
    inCount = 0
    inDisorder = 0
    inExpected = 0
    let reported = 0
    const dropped0 = c.droppedMessages
    const w0 = link.writeCount
    const t0 = ds.millis()
    await c.publish(prog, `0,0`, false, 0) // the peer starts on this
    await c.flush()
    while (inCount < n) {
        await c.waitMsg()
        if (inCount - reported >= p.report || inCount >= n) {
            reported = inCount
            await c.publish(
                prog,
                `${inCount},${c.droppedMessages - dropped0}`,
                false,
                0
            )
        }
    }
    const t1 = ds.millis()
    await c.flush()
    log(
        `RESULT ${name} topic=${base}/${name} n=${inCount} t0=${t0} t1=${t1} ` +
            `writes=${link.writeCount - w0} dropped=${c.droppedMessages - dropped0} disorder=${inDisorder}`
    )
}

export async function main(p: UmqttParams) {
    const base = `bench/${p.tag}`
    const ctlTopic = base + "/ctl"
    const inTopic = base + "/in"
    const in1Topic = base + "/in1"
    const msg = Buffer.alloc(p.payloadSize)
    let k = 0
    holdBallast(p.ballast)
    if (p.ticker)
        (async () => {
            for (;;) await ds.sleep(1)
        }).start()
    for (const ph of p.phases) {
        // clients of their own, before the main one: the VM has one socket
        if (ph === "connect") await connectPhase(p, base)
        else if (ph === "q0b") await bufferedPhase(p, base, msg)
    }
    // the default writeBuffer (1024); the transport counts the socket writes
    link = new DeviceSocketTransport()
    const c = new MQTTClient(`bench-umqtt-${p.tag}`, "127.0.0.1", p.port, {
        keepalive: 60,
        reconn: false,
        maxInflight: p.maxInflight,
        maxIncoming: p.maxIncoming,
        maxQueued: p.maxQueued,
        transport: link,
    })
    c.setCallback((topic, m) => {
        if (topic === inTopic || topic === in1Topic) {
            const seq = (m[0] << 8) | m[1]
            if (seq !== inExpected) inDisorder++
            inExpected = seq + 1
            inCount++
        } else if (topic === ctlTopic) ctl++
    })
    c.setAckCallback((seq, err) => {
        if (err) ackErrors++
        else acked++
    })
    c.errorRegisterCb(err => {
        log(`ERRORCB ${err.message}`)
    })
    await c.connect()
    await c.subscribe(ctlTopic, 1)
    await c.subscribe(inTopic, 0)
    await c.subscribe(in1Topic, 1)
    log("READY")
    await nextPhase(c, ++k)
    for (const ph of p.phases) {
        if (ph === "connect" || ph === "q0b") continue
        if (ph === "q0")
            await publishPhase(c, ph, base + "/q0", msg, 0, p.q0, 1)
        else if (ph === "q1s")
            await publishPhase(c, ph, base + "/q1s", msg, 1, p.q1s, 1)
        else if (ph === "q1w")
            await publishPhase(c, ph, base + "/q1w", msg, 1, p.q1w, p.fibers)
        else if (ph === "q1p")
            await pipelinedPhase(c, p, ph, base + "/q1p", msg, 1, p.q1p)
        else if (ph === "q2p")
            await pipelinedPhase(c, p, ph, base + "/q2p", msg, 2, p.q2p)
        else if (ph === "q2s")
            await publishPhase(c, ph, base + "/q2s", msg, 2, p.q2s, 1)
        else if (ph === "q2w")
            await publishPhase(c, ph, base + "/q2w", msg, 2, p.q2w, p.fibers)
        else if (ph === "in") await inboundPhase(c, p, base, ph, p.inbound)
        else if (ph === "in1") await inboundPhase(c, p, base, ph, p.inbound1)
        else log(`unknown phase ${ph}`)
        await nextPhase(c, ++k)
    }
    await c.disconnect()
    finish()
}
