import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

/** QoS 1 publishing through a broker that dies: the client fails over. */
export async function main(params: {
    portA: number
    portB: number
    topic: string
    count: number
}) {
    const c = new MQTTClient("failover-dev", "127.0.0.1", params.portA, {
        keepalive: 5,
        connectTimeout: 2000,
        reconnectDelay: 100,
        reconnectMaxDelay: 400,
        servers: [{ host: "127.0.0.1", port: params.portB }],
    })
    c.setReconnectCallback((state, err) => {
        const s = c.currentServer()
        console.log(`state ${state} server ${s.port}`)
    })
    await c.connect()
    console.log(`READY ${c.currentServer().port}`)
    for (let i = 0; i < params.count; ++i) {
        await c.publish(params.topic, "" + i, false, 1)
        if (i === params.count / 2) console.log("HALF")
        await ds.sleep(5)
    }
    console.log(`SENT server ${c.currentServer().port}`)
    await c.disconnect()
    ds.restart()
}
