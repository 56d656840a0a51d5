import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

const BLOCK = 256

/**
 * Large messages both ways in one program, checked byte by byte. Message i
 * has `size` bytes (a multiple of 256) in blocks of 256: block k is k (2
 * bytes), i, then 253 bytes of a pattern of i (the test's peer builds and
 * checks the same).
 *
 * mode "alt": message i = 0..count-1 alternates direction: for an even i
 * the device publishes it at QoS 1 to `echoTopic`, which it is subscribed
 * to itself (so the echo comes back while the publish waits for its
 * PUBACK; the peer checks it too); for an odd i the device prints WANT i
 * and the peer publishes it at QoS 1 to `inTopic`.
 * mode "pairs": for k = 0..count/2-1 the device prints WANT PAIR k and the
 * peer publishes messages 2k and 2k+1 at once (the test's proxy hands both
 * to the device in one chunk).
 *
 * Each received message prints `GOT i ok` or `GOT i bad <why>`. At the end
 * `Buffer.alloc(size)` must still succeed (ALLOC ok), then RESULT ok=N bad=M.
 */
export async function main(p: {
    port: number
    clientId: string
    inTopic: string
    echoTopic: string
    mode: string
    count: number
    size: number
}) {
    const got = Buffer.alloc(p.count)
    let ok = 0
    let bad = 0
    let losses = 0
    const c = new MQTTClient(p.clientId, "127.0.0.1", p.port, {
        keepalive: 30,
        connectTimeout: 5000,
    })
    c.setReconnectCallback((state, err) => {
        if (state === 1) losses++
    })
    c.setCallback(async (topic, msg) => {
        const i = msg.length > 2 ? msg[2] : -1
        const why = await check(msg, i, p.size)
        if (i >= 0 && i < p.count) got[i] = got[i] + 1
        if (why === "") {
            ok++
            console.log(`GOT ${i} ok ${topic}`)
        } else {
            bad++
            console.log(`GOT ${i} bad ${why} ${topic}`)
        }
    })
    if (!(await selfTest(p.size))) throw new Error("the byte check does not work")
    await c.connect(true)
    await c.subscribe(p.inTopic, 1)
    if (p.mode === "alt") await c.subscribe(p.echoTopic, 1)
    console.log("READY")
    const t0 = ds.millis()
    if (p.mode === "alt") {
        for (let i = 0; i < p.count; i++) {
            if (i % 2 === 0) {
                await publishOne(c, p.echoTopic, i, p.size)
                console.log(`PUB ${i} acked`)
            } else console.log(`WANT ${i}`)
            while (got[i] === 0) await c.waitMsg()
        }
    } else {
        for (let k = 0; k < p.count / 2; k++) {
            console.log(`WANT PAIR ${k}`)
            while (got[2 * k] === 0 || got[2 * k + 1] === 0) await c.waitMsg()
        }
    }
    const ms = ds.millis() - t0
    const b = Buffer.alloc(p.size)
    b[p.size - 1] = 1
    console.log(`ALLOC ok ${b.length}`)
    console.log(`RESULT ok=${ok} bad=${bad} losses=${losses} ms=${ms}`)
    await c.disconnect()
    console.log("DONE")
    ds.restart()
}

/**
 * Message i: blocks of 256 bytes; block k starts with k (2 bytes, big
 * endian) and i, the rest of every block is the same pattern of i.
 */
function tailOf(i: number) {
    const t = Buffer.alloc(BLOCK)
    for (let j = 3; j < BLOCK; j++) t[j] = (j * 7 + i * 31 + 5) & 0xff
    return t
}

function blockHead(k: number, i: number) {
    return Buffer.from([k >> 8, k & 0xff, i])
}

function build(i: number, size: number) {
    const tail = tailOf(i)
    const b = Buffer.alloc(size)
    for (let k = 0; k * BLOCK < size; k++) {
        b.blitAt(k * BLOCK, tail, 0, BLOCK)
        b.blitAt(k * BLOCK, blockHead(k, i), 0, 3)
    }
    return b
}

/** Builds message i and publishes it; the buffer is released before the next one. */
async function publishOne(c: MQTTClient, topic: string, i: number, size: number) {
    await c.publish(topic, build(i, size), false, 1)
}

/** The check itself: a good message passes, one changed byte fails. */
async function selfTest(size: number) {
    const b = build(7, size)
    const good = await check(b, 7, size)
    b[size - 100] = b[size - 100] ^ 1
    const bad = await check(b, 7, size)
    return good === "" && bad !== ""
}

/** "" when msg is message i byte for byte, else what is wrong. */
async function check(msg: Buffer, i: number, size: number) {
    if (msg.length !== size) return `length ${msg.length}`
    // compared block by block as hex strings: native, not a loop over bytes
    const tailHex = tailOf(i).slice(3, BLOCK).toString("hex")
    for (let k = 0; k * BLOCK < size; k++) {
        const want = blockHead(k, i).toString("hex") + tailHex
        const have = msg.slice(k * BLOCK, (k + 1) * BLOCK).toString("hex")
        if (have !== want) return `block ${k}`
        if ((k & 15) === 15) await ds.sleep(0)
    }
    return ""
}
