import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

/**
 * Receives a burst of numbered messages (payload: 6 digits, then filler) on
 * `<topic>/in/...` (subscribed at `qos`) until a message on `<topic>/end`
 * (subscribed at QoS 1, so never dropped), and checks their
 * order. A fiber prints `P <delivered> <droppedMessages>` whenever either
 * changed (at most every 20 ms), so the test can pace its peer.
 *
 * mode "burst": the application loops waitMsg from the start; the callback
 * sleeps `sleepMs` per message when > 0.
 * mode "hold": the application does not take messages for `holdMs` after
 * READY; meanwhile it publishes QoS 1 to `<topic>/out/1` (1 s after READY)
 * and `<topic>/out/2` (1 s before the end of the hold), printing PUBOK k
 * when each completes; then it prints DRAIN and loops waitMsg.
 *
 * At the end: `RESULT delivered=.. last=.. gaps=.. missing=.. backwards=..
 * dropped=.. afterLastDrop=.. losses=..`, where afterLastDrop is how many
 * messages were delivered after droppedMessages last grew (the messages
 * the client still held when it last had to drop one).
 */
export async function main(p: {
    port: number
    clientId: string
    topic: string
    qos: number
    mode: string
    sleepMs: number
    maxIncomingBytes: number
    keepalive: number
    holdMs: number
}) {
    // typed any: maxIncomingBytes is an option of the new client only
    const opts: any = { keepalive: p.keepalive, connectTimeout: 5000 }
    if (p.maxIncomingBytes > 0) opts.maxIncomingBytes = p.maxIncomingBytes
    const c = new MQTTClient(p.clientId, "127.0.0.1", p.port, opts)
    // its own subscription at QoS 1: the end marker is never dropped
    const endTopic = p.topic + "/end"
    let delivered = 0
    let last = -1
    let gaps = 0
    let missingSum = 0
    let backwards = 0
    let ended = false
    let losses = 0
    let stop = false
    let droppedAt = 0
    c.setReconnectCallback((state, err) => {
        if (state === 1) losses++
    })
    c.setCallback(async (topic, msg) => {
        if (topic === endTopic) {
            ended = true
            return
        }
        const n = parseInt(msg.slice(0, 6).toString())
        delivered++
        if (n > last + 1) {
            gaps++
            missingSum += n - last - 1
        } else if (n <= last) backwards++
        if (n > last) last = n
        if (p.sleepMs > 0) await ds.sleep(p.sleepMs)
    })
    await c.connect(true)
    await c.subscribe(p.topic + "/in/#", p.qos)
    await c.subscribe(endTopic, 1)
    ;(async () => {
        let shownD = -1
        let shownX = 0
        while (!stop) {
            const x = c.droppedMessages
            if (x > shownX) droppedAt = delivered
            if (delivered !== shownD || x !== shownX) {
                console.log(`P ${delivered} ${x} ${ds.millis()}`)
                shownD = delivered
                shownX = x
            }
            await ds.sleep(20)
        }
    }).start()
    console.log("READY")
    if (p.mode === "hold") {
        const t0 = ds.millis()
        await ds.sleep(1000)
        await c.publish(p.topic + "/out/1", "early", false, 1)
        console.log(`PUBOK 1 ${ds.millis() - t0}`)
        const t1 = t0 + p.holdMs - 1000
        if (ds.millis() < t1) await ds.sleep(t1 - ds.millis())
        await c.publish(p.topic + "/out/2", "late", false, 1)
        console.log(`PUBOK 2 ${ds.millis() - t0}`)
        const t2 = t0 + p.holdMs
        if (ds.millis() < t2) await ds.sleep(t2 - ds.millis())
        console.log(
            `DRAIN losses=${losses} state=${c.getMqttsta()} delivered=${delivered}`
        )
    }
    while (!ended) {
        try {
            await c.waitMsg()
        } catch (e) {
            console.log(`waitMsg threw: ${(e as Error).message}`)
            await ds.sleep(20)
        }
    }
    stop = true
    // (a template with 8 or more values breaks the compiler)
    const head = `RESULT delivered=${delivered} last=${last} gaps=${gaps} missing=${missingSum}`
    console.log(
        `${head} backwards=${backwards} dropped=${c.droppedMessages} afterLastDrop=${delivered - droppedAt} losses=${losses}`
    )
    await c.disconnect()
    console.log("DONE")
    ds.restart()
}
