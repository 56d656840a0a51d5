import * as ds from "@devicescript/core"
import { DeviceSocketTransport } from "../../src/transport"
import { PacketType, encodeConnect, encodeEmpty, encodePublish } from "../../src/codec"
import { RateParams, finish, holdBallast } from "./common"

/** The parameters of this measurement. */
export type CeilingParams = RateParams

/**
 * The ceiling: one pre-encoded QoS 0 PUBLISH written `count` times straight
 * through DeviceSocketTransport.write (the socket layer the client uses),
 * with a sleep(0) every `yieldEvery` writes. No client, no encoding, no
 * queue: what is left is the VM's socket write path.
 */
export async function main(p: CeilingParams) {
    const tag = p.tag
    holdBallast(p.ballast)
    const topic = `bench/${tag}/ceil`
    const t = new DeviceSocketTransport()
    let rx = 0
    t.onData = chunk => {
        rx += chunk.length
    }
    t.onClose = err => {
        console.log(`CLOSED ${err ? err.message : "by server"}`)
    }
    await t.open("127.0.0.1", p.port, false, 5000)
    await t.write(
        encodeConnect({
            type: PacketType.Connect,
            protocolVersion: 4,
            clientId: `bench-ceil-${tag}`,
            cleanSession: true,
            keepalive: 0,
        })
    )
    for (let i = 0; i < 500 && rx < 4; ++i) await ds.sleep(10)
    if (rx < 4) throw new Error("no CONNACK")
    const packet = encodePublish(topic, Buffer.alloc(p.payloadSize), 0, false, false, 0)
    const every = p.yieldEvery
    const n = p.count
    const t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        await t.write(packet)
        if (i % every === 0) await ds.sleep(0)
    }
    const t1 = ds.millis()
    console.log(`RESULT ceiling topic=${topic} n=${n} t0=${t0} t1=${t1}`)
    await t.write(encodeEmpty(PacketType.Disconnect))
    await ds.sleep(50)
    t.close()
    finish()
}
