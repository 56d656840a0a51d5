import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

/**
 * External reconnect, over and over: close() + connect() on one client,
 * a QoS 1 publish each time. A leak would exhaust the 64 KB heap.
 */
export async function main(params: { port: number; topic: string; cycles: number }) {
    const c = new MQTTClient("cycles", "127.0.0.1", params.port, {
        keepalive: 5,
        reconn: false,
    })
    let errors = 0
    c.errorRegisterCb(err => {
        errors++
    })
    for (let i = 0; i < params.cycles; ++i) {
        await c.connect(i % 2 === 0)
        await c.publish(params.topic, "" + i, false, 1)
        await c.close()
        if (c.getMqttsta() !== -1) throw new Error("state after close")
    }
    // a big allocation still fits afterwards
    const big = Buffer.alloc(24 * 1024)
    console.log(`cycles ${params.cycles} errors ${errors} big ${big.length}`)
    ds.restart()
}
