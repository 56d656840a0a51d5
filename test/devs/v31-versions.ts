import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

export interface VersionClient {
    clientId: string
    version: number
}

export interface VersionParams {
    port: number
    topic: string
    clients: VersionClient[]
}

/** One client of the given protocol version: connect, loop a message, publish, disconnect. */
async function roundTrip(port: number, topic: string, v: VersionClient) {
    const c = new MQTTClient(v.clientId, "127.0.0.1", port, {
        version: v.version,
        keepalive: 30,
        connectTimeout: 5000,
    })
    let got = ""
    c.setCallback((t, msg, info) => {
        got = `${t}=${msg.toString()} qos=${info.qos}`
    })
    console.log(
        `CONNECTED ${v.clientId} v=${v.version} rc=${await c.connect()}`
    )
    const own = topic + "/" + v.clientId
    console.log(`GRANTED ${v.clientId} ${await c.subscribe(own, 1)}`)
    await c.publish(own, "v" + v.version, false, 1)
    while (!got) await c.waitMsg()
    console.log(`RECV ${v.clientId} ${got}`)
    await c.publish(
        topic + "/out/" + v.clientId,
        "from v" + v.version,
        false,
        1
    )
    await c.disconnect()
    console.log(`CLOSED ${v.clientId} state=${c.getMqttsta()}`)
}

/** MQTT 3.1 and 3.1.1 clients one after the other (the VM has one socket). */
export async function main(p: VersionParams) {
    for (const v of p.clients) await roundTrip(p.port, p.topic, v)
    console.log("DONE")
    ds.restart()
}
