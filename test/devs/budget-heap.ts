import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

/*
 * Heap left to the application (docs/budgets.md, scripts/budgets.mjs):
 * connect, subscribe 10 filters, start `maxInflight` QoS 1 publishes that
 * the broker does not acknowledge (it holds them in authorizePublish), then
 * try one `Buffer.alloc(size)`. Out of memory is a panic, so the script
 * runs this once per size and bisects.
 *
 * `size` comes from the parameters or, when 0/absent, from a message on
 * SIZE_TOPIC (one of the 10 filters), so one build serves every run.
 * With `bare: true` nothing is connected: the heap of an empty program.
 */
export interface HeapParams {
    port: number
    size?: number
    bare?: boolean
    clientId?: string
    /** payload bytes of each message in flight (default 1024) */
    payload?: number
    /** messages in flight (default 8, the client's default maxInflight) */
    inflight?: number
}

export const SIZE_TOPIC = "budget/heap/size"
export const OUT_TOPIC = "budget/heap/out"

function tryAlloc(size: number) {
    console.log(`ALLOC ${size}`)
    const b = Buffer.alloc(size)
    console.log(`OK ${size} ${b.length}`)
}

function startPublisher(c: MQTTClient, payload: Buffer, counts: number[]) {
    const go = async () => {
        try {
            await c.publish(OUT_TOPIC, payload, false, 1)
            counts[0]++
        } catch (e) {
            counts[1]++
            console.log(`publish failed: ${(e as Error).message}`)
        }
    }
    go.start()
}

export async function main(p: HeapParams) {
    if (p.bare) {
        tryAlloc(p.size)
        for (;;) await ds.sleep(1000)
    }
    const inflight = p.inflight || 8
    const c = new MQTTClient(p.clientId || "budget-heap", "127.0.0.1", p.port, {
        keepalive: 60,
        maxInflight: inflight,
    })
    let size = p.size || 0
    c.setCallback((topic, msg) => {
        if (topic === SIZE_TOPIC) size = parseInt(msg.toString())
    })
    await c.connect()
    for (let i = 0; i < 9; i++) await c.subscribe(`budget/heap/f${i}/+/#`, 1)
    await c.subscribe(SIZE_TOPIC, 0)
    console.log("SUBSCRIBED 10")
    const payload = Buffer.alloc(p.payload || 1024)
    const counts = [0, 0] // acknowledged, failed
    for (let i = 0; i < inflight; i++) startPublisher(c, payload, counts)
    await ds.sleep(300)
    console.log(`WINDOW ${inflight} acked=${counts[0]} failed=${counts[1]}`)
    while (!size) await c.waitMsg()
    tryAlloc(size)
    console.log(`STILL acked=${counts[0]} state=${c.getMqttsta()}`)
    for (;;) await ds.sleep(1000)
}
