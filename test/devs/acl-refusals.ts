import * as ds from "@devicescript/core"
import { MQTTClient, MQTTException } from "../../src/index"

export interface AclParams {
    port: number
    clientId: string
    user?: string
    password?: string
    topic: string
    /** a filter the broker refuses (SUBACK 0x80); absent: skip that part */
    secret?: string
    /** a topic under `secret` the device publishes to (allowed) */
    secretTopic?: string
    maxPacketSize: number
}

function describeError(e: any) {
    const err = e as Error
    const isMqtt = e instanceof MQTTException
    const code = isMqtt ? (e as MQTTException).code : -999
    return `mqtt=${isMqtt} code=${code} name=${err.name} msg=${err.message}`
}

/** Runs `fn`, which must fail at once; prints `BADARG <label> ms=<elapsed> ...`. */
async function expectThrow(
    c: MQTTClient,
    label: string,
    fn: () => Promise<any>
) {
    const t0 = ds.millis()
    try {
        await fn()
        console.log(`BADARG ${label} NO-THROW`)
    } catch (e) {
        const ms = ds.millis() - t0
        console.log(
            `BADARG ${label} ms=${ms} state=${c.getMqttsta()} ${describeError(e)}`
        )
    }
}

/**
 * Refusals: a subscription the broker's ACL refuses (0x80), then bad
 * arguments the client refuses before sending anything; the client stays
 * connected and a normal round trip works afterwards.
 */
export async function main(p: AclParams) {
    const c = new MQTTClient(p.clientId, "127.0.0.1", p.port, {
        user: p.user,
        password: p.password,
        keepalive: 30,
        connectTimeout: 5000,
        ackTimeout: 5000,
        maxPacketSize: p.maxPacketSize,
    })
    const got: string[] = []
    c.setCallback((topic, msg) => {
        got.push(topic + "=" + msg.toString())
    })
    console.log(`CONNECTED rc=${await c.connect()} state=${c.getMqttsta()}`)
    const t = p.topic
    if (p.secret) {
        try {
            const g = await c.subscribe(p.secret, 1)
            console.log(`ACL-GRANTED ${g}`)
        } catch (e) {
            console.log(
                `ACL-REFUSED state=${c.getMqttsta()} ${describeError(e)}`
            )
        }
    }
    console.log(
        `GRANTED ${await c.subscribe(t + "/#", 1)} state=${c.getMqttsta()}`
    )

    // none of these may reach the broker
    await expectThrow(
        c,
        "pub-plus",
        async () => await c.publish(t + "/+/x", "p")
    )
    await expectThrow(c, "pub-hash", async () => await c.publish(t + "/#", "p"))
    await expectThrow(
        c,
        "pub-empty",
        async () => await c.publish("", "p", false, 1)
    )
    await expectThrow(
        c,
        "sub-hash-middle",
        async () => await c.subscribe("a/#/b")
    )
    await expectThrow(
        c,
        "sub-plus-glued",
        async () => await c.subscribe("a+/b")
    )
    await expectThrow(c, "sub-empty", async () => await c.subscribe(""))
    await expectThrow(
        c,
        "unsub-hash-middle",
        async () => await c.unsubscribe("a/#/b")
    )
    await expectThrow(
        c,
        "pub-qos3",
        async () => await c.publish(t + "/q", "p", false, 3)
    )
    await expectThrow(
        c,
        "pub-qos-1",
        async () => await c.publish(t + "/q", "p", false, -1)
    )
    await expectThrow(
        c,
        "pub-qos1.5",
        async () => await c.publish(t + "/q", "p", false, 1.5)
    )
    await expectThrow(c, "sub-qos3", async () => await c.subscribe(t + "/q", 3))
    await expectThrow(
        c,
        "sub-qos-1",
        async () => await c.subscribe(t + "/q", -1)
    )
    await expectThrow(
        c,
        "pub-too-big",
        async () =>
            await c.publish(
                t + "/big",
                Buffer.alloc(p.maxPacketSize + 1),
                false,
                1
            )
    )
    await expectThrow(
        c,
        "pub-topic-number",
        async () => await c.publish(42 as any, "p", false, 1)
    )
    await expectThrow(
        c,
        "sub-topic-null",
        async () => await c.subscribe(null as any, 1)
    )
    await expectThrow(
        c,
        "pub-msg-number",
        async () => await c.publish(t + "/m", 7 as any, false, 1)
    )
    console.log(`AFTER-BADARGS state=${c.getMqttsta()}`)

    if (p.secretTopic) {
        // allowed to publish there, but the refused subscription must not deliver it
        await c.publish(p.secretTopic, "not for me", false, 1)
        console.log("PUBLISHED secret")
    }
    await c.publish(t + "/after", "still works", false, 1)
    console.log("PUBLISHED after")
    while (got.length === 0) await c.waitMsg()
    console.log(`RECV ${got.join(",")}`)
    await c.disconnect()
    // a disconnected client refuses further calls, also at once
    const t0 = ds.millis()
    try {
        await c.publish(t + "/late", "p")
        console.log("AFTER-DISCONNECT NO-THROW")
    } catch (e) {
        console.log(
            `AFTER-DISCONNECT ms=${ds.millis() - t0} state=${c.getMqttsta()} ${describeError(e)}`
        )
    }
    console.log("DONE")
    ds.restart()
}
