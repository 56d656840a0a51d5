import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

/**
 * Internal reconnection: QoS 1 publishes keep going while the test cuts the
 * connection; every publish resolves once the broker has it.
 */
export async function main(params: { port: number; topic: string; count: number }) {
    const c = new MQTTClient("reconnect-basic", "127.0.0.1", params.port, {
        keepalive: 10,
        reconnectDelay: 100,
        reconnectMaxDelay: 400,
    })
    let lost = 0
    let back = 0
    c.setReconnectCallback((state, err) => {
        if (state === 1) lost++
        else back++
        console.log(`reconnect state=${state} ${err ? err.message : ""}`)
    })
    let inbound = ""
    c.setCallback((topic, msg) => {
        inbound = msg.toString()
    })
    await c.connect()
    // a clean session: after each reconnect the broker has no session, so
    // the client must subscribe again by itself
    await c.subscribe(params.topic + "/in", 1)
    console.log("READY")
    for (let i = 0; i < params.count; ++i) {
        await c.publish(params.topic, "" + i, false, 1)
        await ds.sleep(10)
    }
    console.log(`published ${params.count} lost=${lost} back=${back} state=${c.getMqttsta()}`)
    while (!inbound) await c.waitMsg()
    console.log(`inbound ${inbound}`)
    await c.disconnect()
    console.log("DONE")
    ds.restart()
}
