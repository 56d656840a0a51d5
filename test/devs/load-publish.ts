import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

/**
 * Thousands of publishes in tight loops, with no yield of the program's
 * own: the client must keep the VM's InfiniteLoop watchdog quiet.
 */
export async function main(params: {
    port: number
    topic: string
    qos0: number
    qos1: number
}) {
    const c = new MQTTClient("load-publish", "127.0.0.1", params.port, {
        keepalive: 30,
    })
    await c.connect()
    console.log("READY")
    const payload = Buffer.alloc(64)
    for (let i = 0; i < params.qos0; ++i)
        await c.publish(params.topic + "/0", payload, false, 0)
    console.log("qos0 done")
    for (let i = 0; i < params.qos1; ++i)
        await c.publish(params.topic + "/1", payload, false, 1)
    console.log("qos1 done")
    await c.disconnect()
    console.log("DONE")
    ds.restart()
}
