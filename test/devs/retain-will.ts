import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

/**
 * Retained messages both ways and a will that a graceful disconnect
 * discards, driven by test/node/client-qos.test.mjs step by step through
 * messages on `base/ctl`.
 *
 * 1. sets a will on `base/will`, connects, subscribes `base/pre` (the peer
 *    retained a message there before) and `base/ctl`; prints SUBSCRIBED;
 *    every received message is printed (IN ...)
 * 2. on ctl "set": publishes "kept" retained (QoS 1) on `base/r`, prints
 *    RETAINED_SET
 * 3. on ctl "clear": publishes an empty retained payload on `base/r`,
 *    prints RETAINED_CLEARED
 * 4. on ctl "bye": disconnect(), prints the state and DONE
 */
export interface RetainWillParams {
    port: number
    clientId: string
    base: string
}

export async function main(p: RetainWillParams) {
    const c = new MQTTClient(p.clientId, "127.0.0.1", p.port, {
        keepalive: 10,
    })
    c.setLastWill(p.base + "/will", "will of " + p.clientId, false, 1)
    const commands: string[] = []
    c.setCallback((topic, msg, info) => {
        if (topic === p.base + "/ctl") {
            commands.push(msg.toString())
            console.log(`CTL ${msg.toString()}`)
            return
        }
        console.log(
            `IN ${topic} q=${info.qos} r=${info.retain ? 1 : 0} len=${msg.length} [${msg.toString()}]`
        )
    })
    await c.connect()
    console.log(`STATE connected=${c.getMqttsta()}`)
    await c.subscribe(p.base + "/ctl", 1)
    await c.subscribe(p.base + "/pre", 1)
    console.log("SUBSCRIBED")
    for (;;) {
        while (commands.length === 0) await c.waitMsg()
        const cmd = commands.shift()
        if (cmd === "set") {
            await c.publish(p.base + "/r", "kept", true, 1)
            console.log("RETAINED_SET")
        } else if (cmd === "clear") {
            await c.publish(p.base + "/r", "", true, 1)
            console.log("RETAINED_CLEARED")
        } else if (cmd === "bye") break
        else console.log(`unknown command ${cmd}`)
    }
    await c.disconnect()
    console.log(`STATE disconnected=${c.getMqttsta()}`)
    console.log("DONE")
    ds.restart()
}
