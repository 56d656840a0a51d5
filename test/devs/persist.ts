import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

/**
 * A persistent session (cleanSession false) across a broker restart: the
 * QoS 1 messages queued for the device while it was away arrive after the
 * client reconnects by itself.
 */
export async function main(params: { port: number; topic: string; want: number }) {
    const c = new MQTTClient("persist-dev", "127.0.0.1", params.port, {
        keepalive: 5,
        connectTimeout: 2000,
        reconnectDelay: 100,
        reconnectMaxDelay: 500,
    })
    const seen: string[] = []
    c.setCallback((topic, msg) => {
        const s = msg.toString()
        if (seen.indexOf(s) < 0) seen.push(s)
    })
    c.setReconnectCallback((state, err) => {
        console.log(`state ${state}${err ? " " + err.message : ""}`)
    })
    await c.connect(false)
    await c.subscribe(params.topic, 1)
    console.log("READY")
    while (seen.length < params.want) await c.waitMsg()
    console.log(`GOT ${seen.length} sessionPresent=${c.sessionPresent}`)
    await c.disconnect()
    ds.restart()
}
