import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

/**
 * Sets a will, connects with keepalive, prints READY and waits: the test
 * kills the simulator and checks that the broker published the will.
 */
export interface WillKillParams {
    port: number
    clientId: string
    topic: string
    message: string
    retain: boolean
    qos: number
}

export async function main(p: WillKillParams) {
    const c = new MQTTClient(p.clientId, "127.0.0.1", p.port, {
        keepalive: 5,
    })
    c.setLastWill(p.topic, p.message, p.retain, p.qos)
    await c.connect()
    console.log(`READY state=${c.getMqttsta()}`)
    for (;;) await ds.sleep(1000) // until killed
}
