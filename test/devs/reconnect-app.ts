import * as ds from "@devicescript/core"
import { ManualConnectivity } from "../../src/index"
import { ReconnectingClient } from "../../devs/reconnecting"

/** devs/reconnect.ts's client against the test's broker; the test cuts it. */
export async function main(params: { port: number; topic: string; want: number }) {
    const net = new ManualConnectivity(true)
    const c = new ReconnectingClient("reconnect-app", "127.0.0.1", params.port, net)
    let got = 0
    c.client.setCallback((topic, msg) => {
        got++
        console.log(`recv ${msg.toString()}`)
    })
    await c.connect()
    await c.subscribe(params.topic, 1)
    console.log("READY")
    c.loopForever()
    while (got < params.want) await ds.sleep(50)
    await c.disconnect()
    console.log("DONE")
    ds.restart()
}
