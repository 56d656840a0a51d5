import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

/**
 * QoS matrix against a real broker, driven by test/node/client-qos.test.mjs.
 *
 * 1. state before connect / after connect
 * 2. subscribes `base/in/s0/+` (QoS 0), `base/in/s1/#` (QoS 1),
 *    `base/in/+/s2` (QoS 2), `base/in/exact1` (QoS 1) and `base/ctl`
 *    (QoS 2), prints SUBSCRIBED
 * 3. publishes `n` messages at each QoS, an empty payload at each QoS, a
 *    message at each QoS on a multi-byte UTF-8 topic, a `bigSize` payload at
 *    each QoS, then `base/out/end` (QoS 2); prints PUBLISHED
 * 4. prints every received message (IN ...) until `base/ctl` says END-IN;
 *    the big one is printed as length, first/last byte and a hash
 * 5. unsubscribes `base/in/s1/#`, prints UNSUBSCRIBED and waits for a
 *    message "SENTINEL" (the test sends it on another filter)
 * 6. disconnects, prints the state and what calls do afterwards, DONE
 */
export interface QosMatrixParams {
    port: number
    clientId: string
    base: string
    n: number
    bigSize: number
    utf8: string
}

/** The payload byte at offset i of a big test payload (test/node mirrors it). */
function patternByte(i: number) {
    return (i * 7 + (i >> 8)) & 0xff
}

/** A 24-bit polynomial hash of the bytes (test/node mirrors it). */
async function hash(b: Buffer) {
    let h = 0
    for (let i = 0; i < b.length; ++i) {
        h = (h * 31 + b[i]) & 0xffffff
        if ((i & 1023) === 1023) await ds.sleep(0) // the VM's watchdog
    }
    return h
}

async function bigPayload(size: number) {
    const b = Buffer.alloc(size)
    for (let i = 0; i < size; ++i) {
        b[i] = patternByte(i)
        if ((i & 1023) === 1023) await ds.sleep(0)
    }
    return b
}

async function tryCall(what: string, fn: () => Promise<any>) {
    try {
        await fn()
        console.log(`AFTER ${what} ok`)
    } catch (e) {
        console.log(`AFTER ${what} threw ${(e as Error).message}`)
    }
}

export async function main(p: QosMatrixParams) {
    const c = new MQTTClient(p.clientId, "127.0.0.1", p.port, {
        keepalive: 30,
    })
    console.log(`STATE before=${c.getMqttsta()}`)
    let ctl = ""
    let lastIn = ""
    let received = 0
    c.setCallback(async (topic, msg, info) => {
        received++
        if (topic === p.base + "/ctl") {
            ctl = msg.toString()
            console.log(`CTL ${ctl}`)
            return
        }
        lastIn = msg.length > 256 ? "(big)" : msg.toString()
        const head = `IN ${topic} q=${info.qos} r=${info.retain ? 1 : 0} d=${info.dup ? 1 : 0} len=${msg.length}`
        if (msg.length > 256) {
            const h = await hash(msg)
            console.log(
                `${head} first=${msg[0]} last=${msg[msg.length - 1]} hash=${h}`
            )
        } else console.log(`${head} [${msg.toString()}]`)
    })
    const rc = await c.connect()
    console.log(`STATE connected=${c.getMqttsta()} rc=${rc}`)

    const g0 = await c.subscribe(p.base + "/in/s0/+", 0)
    const g1 = await c.subscribe(p.base + "/in/s1/#", 1)
    const g2 = await c.subscribe(p.base + "/in/+/s2", 2)
    const gx = await c.subscribe(p.base + "/in/exact1", 1)
    await c.subscribe(p.base + "/ctl", 2)
    console.log(`GRANTED ${g0} ${g1} ${g2} ${gx}`)
    console.log("SUBSCRIBED")

    // device -> peer
    for (let q = 0; q <= 2; ++q) {
        for (let i = 0; i < p.n; ++i)
            await c.publish(`${p.base}/out/q${q}/${i}`, `q${q}-${i}`, false, q)
        await c.publish(`${p.base}/out/empty/q${q}`, "", false, q)
        await c.publish(
            `${p.base}/out/${p.utf8}/q${q}`,
            `${p.utf8} q${q}`,
            false,
            q
        )
    }
    for (let q = 0; q <= 2; ++q) {
        let big = await bigPayload(p.bigSize)
        await c.publish(`${p.base}/out/big/q${q}`, big, false, q)
        big = null
        await ds.sleep(0)
    }
    await c.publish(p.base + "/out/end", "end", false, 2)
    console.log("PUBLISHED")

    // peer -> device
    while (ctl !== "END-IN") await c.waitMsg()
    console.log(`RECEIVED ${received}`)

    // unsubscribe
    await c.unsubscribe(p.base + "/in/s1/#")
    console.log("UNSUBSCRIBED")
    while (lastIn !== "SENTINEL") await c.waitMsg()

    // state after disconnect, calls on a disconnected client
    await c.disconnect()
    console.log(`STATE disconnected=${c.getMqttsta()}`)
    await tryCall("publish", async () => {
        await c.publish(p.base + "/out/late", "late", false, 1)
    })
    await tryCall("subscribe", async () => {
        await c.subscribe(p.base + "/late", 1)
    })
    await tryCall("connect", async () => {
        await c.connect()
    })
    await tryCall("disconnect", async () => {
        await c.disconnect()
    })
    console.log(`STATE final=${c.getMqttsta()}`)
    console.log("DONE")
    ds.restart()
}
