import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

/** Connect, subscribe, publish at QoS 0/1/2, receive each once, disconnect. */
export async function main(params: { port: number; clientId: string; topic: string }) {
    const c = new MQTTClient(params.clientId, "127.0.0.1", params.port, {
        keepalive: 30,
    })
    let got = 0
    c.setCallback((topic, msg, info) => {
        got++
        console.log(`got ${topic} ${msg.toString()} qos=${info.qos}`)
    })
    console.log("connect " + (await c.connect()))
    console.log("granted " + (await c.subscribe(params.topic + "/#", 2)))
    for (let q = 0; q <= 2; q++) {
        await c.publish(params.topic + "/q" + q, "hello " + q, false, q)
        console.log("published " + q)
    }
    while (got < 3) await c.waitMsg()
    await c.disconnect()
    console.log("state " + c.getMqttsta())
    console.log("DONE")
    ds.restart()
}
