import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"
import { finish } from "./common"

export interface SoakParams {
    port: number
    tag: string
    /** how long the device publishes, in seconds */
    seconds: number
    /** QoS 1 publishes per second from the device */
    rate: number
    payloadSize: number
    /** ms between two SAMPLE lines */
    sampleMs: number
    /** a Buffer.alloc of this size is tried at every sample (OOM is a panic) */
    allocSize: number
    /** publishing fibers (QoS 1 in flight at once) */
    fibers: number
    /** the client's writeBuffer option; absent or negative: the default (1024) */
    writeBuffer?: number
}

let sent = 0
let recv = 0
let disorder = 0
let expected = 0
let pubErrors = 0
let lastPubError = ""
let publishing = true
let pubDone = false

let nextIdx = 0
let pubFibers = 0
let soakT0 = 0

/**
 * One of `fibers` publishing fibers: each takes the next slot of the
 * schedule (one message every 1000/rate ms), so a slow acknowledgement
 * delays one slot, not the schedule.
 */
async function publisher(c: MQTTClient, p: SoakParams, topic: string) {
    const period = 1000 / p.rate
    const n = p.seconds * p.rate
    const msg = Buffer.alloc(p.payloadSize)
    for (;;) {
        const i = nextIdx++
        if (i >= n || !publishing) break
        const due = soakT0 + i * period
        const now = ds.millis()
        if (due > now) await ds.sleep(due - now)
        msg.setAt(0, "u32", i)
        try {
            await c.publish(topic, msg, false, 1)
            sent++
        } catch (e) {
            pubErrors++
            lastPubError = (e as Error).message
        }
    }
    if (--pubFibers === 0) pubDone = true
}

async function receiver(c: MQTTClient) {
    for (;;) {
        try {
            await c.waitMsg()
        } catch (e) {
            console.log(`WAITMSG ${(e as Error).message}`)
            await ds.sleep(100)
        }
    }
}

function sample(c: MQTTClient, p: SoakParams, t0: number) {
    const ok = Buffer.alloc(p.allocSize).length === p.allocSize ? 1 : 0
    // the public counts (the client's private fields change with its
    // internals): queued publishes, received messages not yet delivered,
    // QoS 1/2 in flight, incoming QoS 2 ids awaiting PUBREL
    const n = c.pending()
    // (a template with 8+ substitutions crashes the compiler: two parts)
    const q = `outbox=${n.queued} incoming=${n.received} inflight=${n.inflight} q2=${n.awaitingRelease}`
    const t = ds.millis() - t0
    const due = Math.min(p.seconds * p.rate, Math.floor((t * p.rate) / 1000))
    const head = `SAMPLE t=${t} sent=${sent} behind=${due - sent} recv=${recv} alloc=${ok}`
    const tail = `dropped=${c.droppedMessages} disorder=${disorder} state=${c.getMqttsta()}`
    console.log(head + " " + q + " " + tail)
}

/**
 * The soak: QoS 1 at `rate`/s out of the device while a peer publishes to
 * it, with a SAMPLE line of the client's queue lengths (private fields) and
 * a fixed-size allocation every `sampleMs`.
 */
export async function main(p: SoakParams) {
    const base = `bench/${p.tag}/soak`
    const c = new MQTTClient(`bench-soak-${p.tag}`, "127.0.0.1", p.port, {
        keepalive: 30,
        reconn: false,
        ...(p.writeBuffer >= 0 ? { writeBuffer: p.writeBuffer } : {}),
    })
    c.setCallback((topic, m) => {
        const seq = m.getAt(0, "u32")
        if (seq !== expected) disorder++
        expected = seq + 1
        recv++
    })
    c.errorRegisterCb(err => {
        console.log(`ERRORCB ${err.message}`)
    })
    await c.connect()
    await c.subscribe(base + "/in", 1)
    const t0 = ds.millis()
    console.log("SOAK_READY")
    sample(c, p, t0)
    receiver.start(c)
    soakT0 = t0
    pubFibers = p.fibers
    for (let f = 0; f < p.fibers; ++f) publisher.start(c, p, base + "/out")
    let next = t0 + p.sampleMs
    while (!pubDone) {
        await ds.sleep(100)
        if (ds.millis() >= next) {
            sample(c, p, t0)
            next += p.sampleMs
        }
    }
    // let the last acknowledgements and the peer's last messages arrive
    await ds.sleep(2000)
    sample(c, p, t0)
    console.log(
        `SOAK_END sent=${sent} recv=${recv} pubErrors=${pubErrors} ${lastPubError}`
    )
    await c.disconnect()
    finish()
}
