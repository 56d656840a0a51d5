import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

/** Keepalive 2 over a link the test black-holes, then restores. */
export async function main(params: { port: number; topic: string }) {
    const c = new MQTTClient("blackhole", "127.0.0.1", params.port, {
        keepalive: 2,
        connectTimeout: 2000,
        reconnectDelay: 200,
        reconnectMaxDelay: 1000,
    })
    let back = false
    c.setReconnectCallback((state, err) => {
        if (state === 1) console.log(`LOST ${err.message}`)
        else back = true
    })
    await c.connect()
    console.log("READY")
    while (!back) await ds.sleep(50)
    console.log("BACK")
    await c.publish(params.topic, "after the black hole", false, 1)
    await c.disconnect()
    ds.restart()
}
