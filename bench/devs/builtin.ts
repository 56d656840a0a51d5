import * as ds from "@devicescript/core"
import { startMQTTClient } from "@devicescript/net"
import { RateParams, finish, holdBallast } from "./common"

/** The parameters of this measurement. */
export type BuiltinParams = RateParams

/**
 * The built-in @devicescript/net MQTTClient: `count` QoS 0 publishes of a
 * `payloadSize`-byte Buffer, with a sleep(0) every `yieldEvery` publishes
 * (without it the VM's watchdog kills the loop after ~200 publishes).
 */
export async function main(p: BuiltinParams) {
    const tag = p.tag
    holdBallast(p.ballast)
    const topic = `bench/${tag}/builtin`
    const c0 = ds.millis()
    const mq = await startMQTTClient({
        host: "127.0.0.1",
        port: p.port,
        proto: "tcp",
        clientId: `bench-builtin-${tag}`,
    })
    console.log(`CONNECTED state=${mq.readyState} ms=${ds.millis() - c0}`)
    const msg = Buffer.alloc(p.payloadSize)
    const every = p.yieldEvery
    const n = p.count
    let refused = 0
    const t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        if (!(await mq.publish(topic, msg, 0))) refused++
        if (i % every === 0) await ds.sleep(0)
    }
    const t1 = ds.millis()
    console.log(`RESULT builtin topic=${topic} n=${n} t0=${t0} t1=${t1} refused=${refused}`)
    await ds.sleep(100)
    await mq.stop()
    finish()
}
