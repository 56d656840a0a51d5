import * as ds from "@devicescript/core"
import { MQTTClient, MQTTException } from "../../src/index"

export interface TlsParams {
    port: number
    clientId: string
    topic: string
}

/**
 * `ssl: true` to a broker whose certificate is signed by a test CA. Either
 * the connection works (round trip) or connect throws; both end with exit 0.
 */
export async function main(p: TlsParams) {
    const c = new MQTTClient(p.clientId, "127.0.0.1", p.port, {
        ssl: true,
        keepalive: 30,
        connectTimeout: 5000,
    })
    let got = ""
    c.setCallback((t, msg) => {
        got = t + "=" + msg.toString()
    })
    try {
        await c.connect()
    } catch (e) {
        const err = e as Error
        console.log(
            `TLSFAIL mqtt=${e instanceof MQTTException} name=${err.name} state=${c.getMqttsta()} msg=${err.message}`
        )
        // the client can still be used (closed) without crashing
        await c.close()
        console.log(`CLOSED state=${c.getMqttsta()}`)
        ds.restart()
        return
    }
    console.log(`CONNECTED state=${c.getMqttsta()}`)
    console.log(`GRANTED ${await c.subscribe(p.topic + "/in", 1)}`)
    await c.publish(p.topic + "/in", "over tls", false, 1)
    while (!got) await c.waitMsg()
    console.log(`RECV ${got}`)
    await c.publish(p.topic + "/out", "tls hello", false, 1)
    await c.disconnect()
    console.log("DONE")
    ds.restart()
}
