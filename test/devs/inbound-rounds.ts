import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

/**
 * Receives rounds of numbered messages through a link the test cuts again
 * and again (persistent session, internal reconnect), counting how often
 * each message reached the callback. The peer publishes "r,n" for
 * n = 0..count-1 of round r on `topic`, then "r,END"; after END of round r
 * the program waits (at most 3 s) for what is still missing and prints
 *   ROUND r unique=U dups=D lost=[n,...] losses=L
 * Once every round is printed it prints, per round, the final counts
 * (duplicates that came later included)
 *   FINAL r unique=U dups=D
 * and disconnects. A fiber loops waitMsg the whole time.
 */
export async function main(p: {
    port: number
    clientId: string
    topic: string
    qos: number
    count: number
    rounds: number
}) {
    const seen = Buffer.alloc(p.rounds * p.count)
    const ended = Buffer.alloc(p.rounds)
    let strange = 0
    let losses = 0
    let stop = false
    const c = new MQTTClient(p.clientId, "127.0.0.1", p.port, {
        keepalive: 5,
        connectTimeout: 3000,
        reconnectDelay: 50,
        reconnectMaxDelay: 200,
    })
    c.setReconnectCallback((state, err) => {
        if (state === 1) losses++
    })
    c.setCallback((topic, msg) => {
        const s = msg.toString()
        const comma = s.indexOf(",")
        const r = parseInt(s.slice(0, comma))
        const tail = s.slice(comma + 1)
        if (!(r >= 0 && r < p.rounds)) {
            strange++
            return
        }
        if (tail === "END") {
            ended[r] = 1
            return
        }
        const n = parseInt(tail)
        if (!(n >= 0 && n < p.count)) {
            strange++
            return
        }
        const k = r * p.count + n
        if (seen[k] < 255) seen[k] = seen[k] + 1
    })
    await c.connect(false)
    await c.subscribe(p.topic, p.qos)
    ;(async () => {
        while (!stop) {
            try {
                await c.waitMsg()
            } catch (e) {
                if (stop) break
                console.log(`waitMsg threw: ${(e as Error).message}`)
                await ds.sleep(20)
            }
        }
    }).start()
    console.log(`READY session=${c.sessionPresent}`)

    for (let r = 0; r < p.rounds; r++) {
        while (ended[r] === 0) await ds.sleep(20)
        const deadline = ds.millis() + 3000
        while (unique(seen, r, p.count) < p.count && ds.millis() < deadline)
            await ds.sleep(20)
        console.log(
            `ROUND ${r} unique=${unique(seen, r, p.count)} dups=${dups(seen, r, p.count)} lost=[${missing(seen, r, p.count)}] losses=${losses} strange=${strange}`
        )
    }
    for (let r = 0; r < p.rounds; r++) {
        console.log(
            `FINAL ${r} unique=${unique(seen, r, p.count)} dups=${dups(seen, r, p.count)}`
        )
        await ds.sleep(0) // the VM's watchdog: 20 rounds of loops in one go are too many
    }
    stop = true
    await c.disconnect()
    console.log("DONE")
    ds.restart()
}

function unique(seen: Buffer, r: number, count: number) {
    let u = 0
    for (let i = 0; i < count; i++) if (seen[r * count + i] > 0) u++
    return u
}

function dups(seen: Buffer, r: number, count: number) {
    let d = 0
    for (let i = 0; i < count; i++) {
        const v = seen[r * count + i]
        if (v > 1) d += v - 1
    }
    return d
}

/** the first 20 missing numbers of round r, comma separated */
function missing(seen: Buffer, r: number, count: number) {
    let s = ""
    let k = 0
    for (let i = 0; i < count && k < 20; i++)
        if (seen[r * count + i] === 0) {
            s += (k > 0 ? "," : "") + i
            k++
        }
    return s
}
