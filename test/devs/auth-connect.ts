import * as ds from "@devicescript/core"
import { MQTTClient, MQTTException } from "../../src/index"

export interface AuthAttempt {
    clientId: string
    user?: string
    password?: string
    /** undefined: the default (true) */
    reconn?: boolean
    /** connect() calls on the same client (default 1) */
    tries?: number
}

export interface AuthParams {
    port: number
    topic: string
    /** connections the broker must refuse */
    bad: AuthAttempt[]
    /** then one that must be accepted */
    good: AuthAttempt
}

function describeError(e: any) {
    const err = e as Error
    const isMqtt = e instanceof MQTTException
    const code = isMqtt ? (e as MQTTException).code : -999
    return `mqtt=${isMqtt} code=${code} name=${err.name} msg=${err.message}`
}

/** Each refused connect prints `REFUSED <id> try=<i> ... state=<getMqttsta()>`. */
async function refused(port: number, a: AuthAttempt) {
    const c = new MQTTClient(a.clientId, "127.0.0.1", port, {
        user: a.user,
        password: a.password,
        reconn: a.reconn,
        keepalive: 30,
        connectTimeout: 5000,
        // a (wrong) background reconnection would show up quickly
        reconnectDelay: 100,
    })
    const tries = a.tries || 1
    for (let i = 0; i < tries; i++) {
        try {
            const rc = await c.connect()
            console.log(`UNEXPECTED-CONNECTED ${a.clientId} try=${i} rc=${rc}`)
            await c.disconnect()
            return
        } catch (e) {
            console.log(
                `REFUSED ${a.clientId} try=${i} state=${c.getMqttsta()} ${describeError(e)}`
            )
        }
    }
}

/**
 * Wrong credentials give MQTTException with the broker's CONNACK code, the
 * client is not left connecting or reconnecting, and right credentials then
 * connect and work.
 */
export async function main(p: AuthParams) {
    for (const a of p.bad) await refused(p.port, a)
    // long enough for a background reconnect (100..200 ms) to happen
    await ds.sleep(600)
    const g = p.good
    const c = new MQTTClient(g.clientId, "127.0.0.1", p.port, {
        user: g.user,
        password: g.password,
        keepalive: 30,
        connectTimeout: 5000,
    })
    let got = ""
    c.setCallback((topic, msg) => {
        got = topic + "=" + msg.toString()
    })
    console.log(
        `CONNECTED ${g.clientId} rc=${await c.connect()} state=${c.getMqttsta()}`
    )
    console.log(`GRANTED ${await c.subscribe(p.topic + "/in", 1)}`)
    await c.publish(p.topic + "/in", "loop", false, 1)
    while (!got) await c.waitMsg()
    console.log(`RECV ${got}`)
    await c.publish(p.topic + "/out", "hello from " + g.clientId, false, 1)
    console.log("PUBLISHED")
    await c.disconnect()
    console.log("DONE")
    ds.restart()
}
