import * as ds from "@devicescript/core"
import { DeviceSocketTransport, MQTTClient, Transport } from "../../src/index"
import { finish, holdBallast } from "./common"

export interface UmqttParams {
    port: number
    /** this bench invocation's tag: topics and client ids */
    tag: string
    /** phases to run, in order: connect q0 q0b q1s q1w q2s q2w in */
    phases: string[]
    payloadSize: number
    /** connect(): how many timed connections */
    connects: number
    /** messages of each publish phase */
    q0: number
    /** messages of the q0b phase: QoS 0 through a client with `writeBuffer` */
    q0b: number
    /** that client's writeBuffer option */
    writeBuffer: number
    q1s: number
    q1w: number
    q2s: number
    q2w: number
    /** publishing fibers of the windowed phases */
    fibers: number
    /** the client's maxInflight */
    maxInflight: number
    /** the client's maxIncoming */
    maxIncoming: number
    /** inbound burst: messages expected, progress report every `report` */
    inbound: number
    report: number
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
    const t0 = ds.millis()
    if (fibers <= 1) {
        for (let i = 0; i < total; ++i) await c.publish(topic, msg, false, qos)
    } else {
        for (let f = 0; f < fibers; ++f)
            publisher.start(c, topic, msg, qos, per)
        while (finished < fibers) await ds.sleep(1)
    }
    const t1 = ds.millis()
    log(
        `RESULT ${name} topic=${topic} n=${total} t0=${t0} t1=${t1} failures=${failures} ${firstError}`
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
 * QoS 0 through a client with the `writeBuffer` option: timed until
 * `flush()` wrote the last packet, so the rate counts written messages.
 */
async function bufferedPhase(p: UmqttParams, base: string, msg: Buffer) {
    const c = new MQTTClient(`bench-buf-${p.tag}`, "127.0.0.1", p.port, {
        reconn: false,
        writeBuffer: p.writeBuffer,
    })
    await c.connect()
    const topic = base + "/q0b"
    const t0 = ds.millis()
    for (let i = 0; i < p.q0b; ++i) await c.publish(topic, msg, false, 0)
    await c.flush()
    const t1 = ds.millis()
    await c.disconnect()
    log(`RESULT q0b topic=${topic} n=${p.q0b} t0=${t0} t1=${t1} failures=0 `)
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

async function inboundPhase(c: MQTTClient, p: UmqttParams, base: string) {
    const prog = base + "/prog"
    inCount = 0
    inDisorder = 0
    inExpected = 0
    let reported = 0
    const n = p.inbound
    const t0 = ds.millis()
    await c.publish(prog, `0,0`, false, 0) // the peer starts on this
    while (inCount < n) {
        await c.waitMsg()
        if (inCount - reported >= p.report || inCount >= n) {
            reported = inCount
            await c.publish(prog, `${inCount},${c.droppedMessages}`, false, 0)
        }
    }
    const t1 = ds.millis()
    log(
        `RESULT in topic=${base}/in n=${inCount} t0=${t0} t1=${t1} dropped=${c.droppedMessages} disorder=${inDisorder}`
    )
}

export async function main(p: UmqttParams) {
    const base = `bench/${p.tag}`
    const ctlTopic = base + "/ctl"
    const inTopic = base + "/in"
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
    const c = new MQTTClient(`bench-umqtt-${p.tag}`, "127.0.0.1", p.port, {
        keepalive: 60,
        reconn: false,
        maxInflight: p.maxInflight,
        maxIncoming: p.maxIncoming,
        maxQueued: Math.max(32, p.fibers),
    })
    c.setCallback((topic, m) => {
        if (topic === inTopic) {
            const seq = (m[0] << 8) | m[1]
            if (seq !== inExpected) inDisorder++
            inExpected = seq + 1
            inCount++
        } else if (topic === ctlTopic) ctl++
    })
    c.errorRegisterCb(err => {
        log(`ERRORCB ${err.message}`)
    })
    await c.connect()
    await c.subscribe(ctlTopic, 1)
    await c.subscribe(inTopic, 0)
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
        else if (ph === "q2s")
            await publishPhase(c, ph, base + "/q2s", msg, 2, p.q2s, 1)
        else if (ph === "q2w")
            await publishPhase(c, ph, base + "/q2w", msg, 2, p.q2w, p.fibers)
        else if (ph === "in") await inboundPhase(c, p, base)
        else log(`unknown phase ${ph}`)
        await nextPhase(c, ++k)
    }
    await c.disconnect()
    finish()
}
