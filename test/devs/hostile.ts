import * as ds from "@devicescript/core"
import { MQTTClient, MQTTException } from "../../src/index"

/**
 * The device against a hostile broker: every connection brings one
 * malformed or mutated packet. The client must report an error and close
 * (reconn false), or reconnect by itself (reconn true), and never panic.
 * The broker ends the run by refusing a connection with code 5 (reconn
 * false) or by publishing "END" (reconn true).
 */
export async function main(params: { port: number; reconn: boolean }) {
    const c = new MQTTClient("hostile", "127.0.0.1", params.port, {
        keepalive: 0,
        reconn: params.reconn,
        connectTimeout: 2000,
        reconnectDelay: 5,
        reconnectMaxDelay: 10,
    })
    let errors = 0
    let lost = false
    let end = false
    let reconnects = 0
    const samples: string[] = []
    const note = (msg: string) => {
        if (samples.length < 8 && samples.indexOf(msg) < 0) samples.push(msg)
    }
    c.errorRegisterCb(err => {
        errors++
        lost = true
        note(err.message)
    })
    c.setReconnectCallback((state, err) => {
        if (state === 1) {
            reconnects++
            note(err.message)
        }
    })
    c.setCallback((topic, msg) => {
        if (topic === "END") end = true
    })
    let sessions = 0
    let connectErrors = 0
    if (params.reconn) {
        await c.connect()
        await c.subscribe("hostile/x")
        while (!end) await c.waitMsg()
    } else
        for (;;) {
            lost = false
            try {
                await c.connect()
            } catch (e) {
                if (e instanceof MQTTException && (e as MQTTException).code === 5)
                    break
                connectErrors++
                note((e as Error).message)
                await c.close()
                continue
            }
            sessions++
            while (!lost) {
                try {
                    await c.checkMsg()
                } catch (e) {
                    // the loss, also reported through the error callback
                }
                await ds.sleep(2)
            }
            await c.close()
        }
    console.log(
        `SUMMARY sessions=${sessions} connectErrors=${connectErrors} errors=${errors} reconnects=${reconnects}`
    )
    for (const s of samples) console.log(`sample: ${s}`)
    await c.disconnect()
    ds.restart()
}
