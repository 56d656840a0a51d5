import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

/*
 * Largest payload published and received (docs/budgets.md,
 * scripts/budgets.mjs). Commands on CTL_TOPIC: "pub N" publishes N bytes
 * at QoS 1 on OUT_TOPIC; messages on IN_TOPIC are reported with their size.
 * Out of memory is a panic, so the script runs this once per size.
 */
export interface PayloadParams {
    port: number
    /** the client's maxPacketSize; absent: the default */
    maxPacketSize?: number
}

export const CTL_TOPIC = "budget/payload/ctl"
export const IN_TOPIC = "budget/payload/in"
export const OUT_TOPIC = "budget/payload/out"

export async function main(p: PayloadParams) {
    const c = new MQTTClient("budget-payload", "127.0.0.1", p.port, {
        keepalive: 60,
        reconn: false,
        maxPacketSize: p.maxPacketSize,
    })
    let toPublish = 0
    c.setCallback((topic, msg) => {
        if (topic === IN_TOPIC) console.log(`RECEIVED ${msg.length}`)
        else if (topic === CTL_TOPIC) {
            const s = msg.toString()
            if (s.indexOf("pub ") === 0) toPublish = parseInt(s.slice(4))
        }
    })
    c.errorRegisterCb(err => {
        console.log(`LOST ${err.message}`)
    })
    await c.connect()
    await c.subscribe(IN_TOPIC, 1)
    await c.subscribe(CTL_TOPIC, 1)
    console.log("READY")
    for (;;) {
        try {
            await c.waitMsg()
        } catch (e) {
            console.log(`LOST ${(e as Error).message}`)
            await ds.sleep(1000)
        }
        if (toPublish > 0) {
            const n = toPublish
            toPublish = 0
            try {
                const b = Buffer.alloc(n)
                console.log(`ALLOCATED ${n}`)
                await c.publish(OUT_TOPIC, b, false, 1)
                console.log(`PUBLISHED ${n}`)
            } catch (e) {
                console.log(`PUBFAIL ${n} ${(e as Error).message}`)
            }
        }
    }
}
