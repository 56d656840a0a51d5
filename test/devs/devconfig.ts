import { MQTTClient } from "../../src/index"

/**
 * Reads a program's parameters at run time, so that one build serves many
 * runs (test/tools/devconfig.mjs): a throwaway client connects to the
 * test's broker on 127.0.0.1:`port`, takes the retained JSON message on
 * `topic`, disconnects and prints CONFIG.
 */
export async function readConfig(port: number, topic: string): Promise<any> {
    const c = new MQTTClient("", "127.0.0.1", port, { connectTimeout: 5000 })
    let text: string = null
    c.setCallback((t, msg) => {
        if (msg.length > 0) text = msg.toString()
    })
    await c.connect(true)
    await c.subscribe(topic, 1)
    while (text === null) await c.waitMsg()
    await c.disconnect()
    console.log("CONFIG")
    return JSON.parse(text)
}
