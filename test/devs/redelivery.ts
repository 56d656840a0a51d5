import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

/**
 * Redelivery on reconnect (the Eclipse Paho interoperability scenario):
 * persistent session, subscribed at QoS 2 to `<topic>/#`. Each round r:
 * print READY r, then do not read for `holdMs` (the peer publishes "r,q1"
 * at QoS 1 and "r,q2" at QoS 2 meanwhile), then
 *   mode "disconnect": disconnect() and a new client object, connect(false);
 *   mode "close": close() and the same object, connect(false);
 * print RECONNECTED r, loop waitMsg until "r,end" (the peer publishes it
 * once it saw RECONNECTED), and print how often each message of the round
 * reached the callback: ROUND r q1=N q2=M (and how many had DUP set).
 */
export async function main(p: {
    port: number
    clientId: string
    topic: string
    mode: string
    rounds: number
    holdMs: number
}) {
    const q1 = Buffer.alloc(p.rounds)
    const q2 = Buffer.alloc(p.rounds)
    const dup = Buffer.alloc(p.rounds)
    const ended = Buffer.alloc(p.rounds)
    let strange = 0
    const onMessage = (topic: string, msg: Buffer, info: any) => {
        const s = msg.toString()
        const comma = s.indexOf(",")
        const r = parseInt(s.slice(0, comma))
        const what = s.slice(comma + 1)
        if (!(r >= 0 && r < p.rounds)) {
            strange++
            return
        }
        if (info && info.dup) dup[r] = dup[r] + 1
        if (what === "q1") q1[r] = q1[r] + 1
        else if (what === "q2") q2[r] = q2[r] + 1
        else if (what === "end") ended[r] = 1
        else strange++
    }
    let c = client(p)
    c.setCallback(onMessage)
    await c.connect(false)
    await c.subscribe(p.topic + "/#", 2)
    for (let r = 0; r < p.rounds; r++) {
        console.log(`READY ${r}`)
        await ds.sleep(p.holdMs)
        if (p.mode === "disconnect") {
            await c.disconnect()
            c = client(p)
            c.setCallback(onMessage)
        } else await c.close()
        await c.connect(false)
        console.log(`RECONNECTED ${r} session=${c.sessionPresent}`)
        while (ended[r] === 0) {
            try {
                await c.waitMsg()
            } catch (e) {
                console.log(`waitMsg threw: ${(e as Error).message}`)
                await ds.sleep(50)
            }
        }
        console.log(
            `ROUND ${r} q1=${q1[r]} q2=${q2[r]} dup=${dup[r]} strange=${strange}`
        )
    }
    // what came after a round's line counts too
    for (let r = 0; r < p.rounds; r++)
        console.log(`FINAL ${r} q1=${q1[r]} q2=${q2[r]}`)
    await c.disconnect()
    console.log("DONE")
    ds.restart()
}

function client(p: { port: number; clientId: string }) {
    return new MQTTClient(p.clientId, "127.0.0.1", p.port, {
        keepalive: 30,
        connectTimeout: 5000,
    })
}
