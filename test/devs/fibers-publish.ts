import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

export interface FibersParams {
    port: number
    clientId: string
    topic: string
    perFiber: number
    deadlineMs: number
}

let finished = 0
let received = 0
let orderErrors = 0
let badStates = 0
const lastSeen = [-1, -1]

/** One publishing fiber: `count` QoS 1 messages "<name>:<i>" in order. */
async function publisher(
    c: MQTTClient,
    topic: string,
    name: string,
    count: number
) {
    try {
        for (let i = 0; i < count; i++) {
            await c.publish(topic + "/" + name, name + ":" + i, false, 1)
            if (c.getMqttsta() !== 0) badStates++
        }
        console.log(`PUBDONE ${name} ${count}`)
    } catch (e) {
        console.log(`PUBFAIL ${name} ${(e as Error).message}`)
    }
    finished++
}

/** The receiving fiber: waitMsg until every message came back. */
async function receiver(c: MQTTClient, total: number) {
    try {
        while (received < total) {
            await c.waitMsg()
            if (c.getMqttsta() !== 0) badStates++
        }
        console.log(`RECVDONE ${received}`)
    } catch (e) {
        console.log(`RECVFAIL ${(e as Error).message}`)
    }
    finished++
}

/**
 * Two fibers publish QoS 1 while a third waits for messages; the device is
 * subscribed to its own topics and checks it gets every message in order.
 */
export async function main(p: FibersParams) {
    const c = new MQTTClient(p.clientId, "127.0.0.1", p.port, {
        keepalive: 5,
        connectTimeout: 5000,
    })
    c.setReconnectCallback((state, err) => {
        console.log(
            `RECONNECT state=${state} err=${err ? err.message : "none"}`
        )
    })
    c.errorRegisterCb(err => {
        console.log(`ERRORCB ${err.message}`)
    })
    c.setCallback((t, msg) => {
        const s = msg.toString()
        const f = s.charCodeAt(0) === 0x61 ? 0 : 1 // "a" or "b"
        const n = parseInt(s.slice(2))
        if (n !== lastSeen[f] + 1) {
            orderErrors++
            if (orderErrors < 5) console.log(`ORDER ${s} after ${lastSeen[f]}`)
        }
        lastSeen[f] = n
        received++
    })
    console.log(`CONNECTED rc=${await c.connect()}`)
    console.log(`GRANTED ${await c.subscribe(p.topic + "/+", 1)}`)
    const total = 2 * p.perFiber
    const t0 = ds.millis()
    receiver.start(c, total)
    publisher.start(c, p.topic, "a", p.perFiber)
    publisher.start(c, p.topic, "b", p.perFiber)
    const deadline = t0 + p.deadlineMs
    while (finished < 3 && ds.millis() < deadline) {
        await ds.sleep(10)
        if (c.getMqttsta() !== 0) badStates++
    }
    console.log(
        `SUMMARY finished=${finished} received=${received} orderErrors=${orderErrors} badStates=${badStates} lastA=${lastSeen[0]} lastB=${lastSeen[1]} ms=${ds.millis() - t0}`
    )
    console.log(`STATE ${c.getMqttsta()}`)
    await c.disconnect()
    console.log("DONE")
    ds.restart()
}
