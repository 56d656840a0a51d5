import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

/**
 * Publishes `count` messages at `qos` from `fibers` fibers through a faulty
 * link (the test's proxy cuts it again and again), with internal reconnect.
 * With `inbound`, it also counts messages the peer sends it, and how many
 * arrived twice.
 */
export async function main(params: {
    port: number
    clientId: string
    topic: string
    inbound: string
    count: number
    qos: number
    fibers: number
    cleanSession: boolean
}) {
    const c = new MQTTClient(params.clientId, "127.0.0.1", params.port, {
        keepalive: 5,
        connectTimeout: 3000,
        reconnectDelay: 50,
        reconnectMaxDelay: 200,
        maxInflight: 8,
        maxQueued: 64,
    })
    let lost = 0
    c.setReconnectCallback((state, err) => {
        if (state === 1) lost++
    })
    const seen: number[] = []
    let received = 0
    let dups = 0
    c.setCallback((topic, msg) => {
        received++
        const n = parseInt(msg.toString())
        if (seen.indexOf(n) >= 0) dups++
        else seen.push(n)
    })
    await c.connect(params.cleanSession)
    if (params.inbound) await c.subscribe(params.inbound, params.qos)
    console.log("READY")
    let done = 0
    const per = params.count / params.fibers
    for (let f = 0; f < params.fibers; ++f) publisher(c, params, f, per, () => done++)
    let last = 0
    while (done < params.fibers) {
        await c.checkMsg()
        await ds.sleep(20)
        if (done !== last) last = done
    }
    console.log(`SENT ${params.count} lost=${lost}`)
    // collect the inbound stream until the test says it is complete
    if (params.inbound)
        for (;;) {
            await c.waitMsg()
            if (seen.indexOf(-1) >= 0) break
        }
    console.log(`INBOUND received=${received} unique=${seen.length - (params.inbound ? 1 : 0)} dups=${dups}`)
    await c.disconnect()
    console.log("DONE")
    ds.restart()
}

function publisher(
    c: MQTTClient,
    params: { topic: string; qos: number },
    f: number,
    per: number,
    finished: () => void
) {
    ;(async () => {
        for (let i = 0; i < per; ++i)
            await c.publish(params.topic, `${f * per + i}`, false, params.qos)
        finished()
    }).start()
}
