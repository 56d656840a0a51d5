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
    /** the client's writeBuffer option (0: none) */
    writeBuffer?: number
    /** a QoS 1 publish (to .../1) after every `mixEvery` QoS 0 ones (0: none) */
    mixEvery?: number
}) {
    const c = new MQTTClient("load-publish", "127.0.0.1", params.port, {
        keepalive: 30,
        writeBuffer: params.writeBuffer || 0,
    })
    await c.connect()
    console.log("READY")
    const payload = Buffer.alloc(64)
    const mix = params.mixEvery || 0
    for (let i = 0; i < params.qos0; ++i) {
        // the sequence number, so that the peer can check the order
        payload[0] = i >> 8
        payload[1] = i & 0xff
        await c.publish(params.topic + "/0", payload, false, 0)
        if (mix > 0 && i % mix === mix - 1)
            await c.publish(params.topic + "/1", payload, false, 1)
    }
    console.log("qos0 done")
    for (let i = 0; i < params.qos1; ++i)
        await c.publish(params.topic + "/1", payload, false, 1)
    console.log("qos1 done")
    await c.disconnect()
    console.log("DONE")
    ds.restart()
}
