import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

export interface KeepaliveParams {
    port: number
    clientId: string
    topic: string
    keepalive: number
    idleMs: number
}

/** Connects with a short keepalive, stays idle, then publishes. */
export async function main(p: KeepaliveParams) {
    const c = new MQTTClient(p.clientId, "127.0.0.1", p.port, {
        keepalive: p.keepalive,
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
    console.log(`CONNECTED rc=${await c.connect()} state=${c.getMqttsta()}`)
    const until = ds.millis() + p.idleMs
    let checks = 0
    let bad = 0
    while (ds.millis() < until) {
        await ds.sleep(250)
        checks++
        if (c.getMqttsta() !== 0) {
            bad++
            console.log(`STATE ${c.getMqttsta()} at ${ds.millis()}`)
        }
    }
    console.log(`IDLE-DONE checks=${checks} bad=${bad} state=${c.getMqttsta()}`)
    await c.publish(p.topic, "after idle", false, 1)
    console.log(`PUBLISHED state=${c.getMqttsta()}`)
    await c.disconnect()
    console.log("DONE")
    ds.restart()
}
