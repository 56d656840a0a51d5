// Issue 10, measurement 2 and the backpressure promise, on mosquitto: a
// burst of small messages to the device with an MQTT.js peer that is never
// more than 250 messages ahead of what the device counted (delivered plus
// dropped; the device prints its progress and the peer paces on it: the
// simulator's socket has no flow control, a real device's TCP window would
// pace the broker).
// - 2,000 QoS 0 messages of 64 bytes, the application looping waitMsg: all
//   delivered, in order, droppedMessages 0;
// - the same with an application that sleeps 50 ms per message and a byte
//   budget (maxIncomingBytes 4096) far below 250 messages: no panic, drops
//   only once the budget is full (the client still held a budget's worth of
//   messages when it last dropped one), every drop counted (droppedMessages
//   = sent - delivered), the delivered ones in order;
// - the same burst at QoS 1: all delivered, in order;
// - backpressure: 100 received messages wait undelivered for 5 s (the
//   application does not call waitMsg) while a QoS 1 publish from the device
//   completes and keepalive (2 s) holds with PINGREQ/PINGRESP (no
//   reconnect); then all 100 are delivered.
import { test, describe, before, after } from "node:test"
import assert from "node:assert/strict"
import { EventEmitter } from "node:events"
import { mosquittoAvailable, startMosquitto, connectPeer, endPeer, withTimeout } from "../tools/brokers.mjs"
import { startConfigured } from "../tools/devconfig.mjs"

const COUNT = 2000
const AHEAD = 250
const SIZE = 64
const MAX_INCOMING = 16 // the client's default

const payload = i => String(i).padStart(6, "0") + "-" + "x".repeat(SIZE - 7)

function parseResult(line) {
    const r = {}
    for (const m of line.matchAll(/(\w+)=(-?\d+)/g)) r[m[1]] = +m[2]
    return r
}

/** Resolves on the next `event` of `em`; rejects after ms. */
function nextEvent(em, event, ms, what) {
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            em.off(event, on)
            reject(new Error(`timed out after ${ms} ms waiting for ${what}`))
        }, ms)
        const on = v => {
            clearTimeout(timer)
            resolve(v)
        }
        em.once(event, on)
    })
}

describe("inbound bursts (mosquitto)", { skip: !mosquittoAvailable() && "mosquitto is not installed" }, () => {
    let broker
    before(async () => {
        broker = await startMosquitto({ config: ["max_queued_messages 10000"] })
    })
    after(async () => {
        if (broker) await broker.close()
    })

    /**
     * Runs one paced burst and returns the device's RESULT figures with
     * sent, maxAhead, ms.
     */
    async function burst({ name, qos, sleepMs = 0, maxIncomingBytes = 0, timeoutMs = 120000 }) {
        const peer = await connectPeer(broker.port)
        const topic = `burst/${name}`
        const progress = new EventEmitter()
        let counted = 0
        let dev
        try {
            dev = await startConfigured(
                broker.port,
                "test/devs/inbound-burst.ts",
                {
                    port: broker.port,
                    clientId: `burst-${name}-${process.pid}`,
                    topic,
                    qos,
                    mode: "burst",
                    sleepMs,
                    maxIncomingBytes,
                    keepalive: 30,
                    holdMs: 0,
                },
                {
                    timeoutMs,
                    onLine: l => {
                        const m = /^P (\d+) (\d+) /.exec(l)
                        if (m) {
                            counted = +m[1] + +m[2]
                            progress.emit("p")
                        }
                    },
                }
            )
            await dev.waitFor("READY", 30000)
            const t0 = Date.now()
            let maxAhead = 0
            const pending = []
            for (let i = 0; i < COUNT; i++) {
                while (i - counted >= AHEAD) await nextEvent(progress, "p", 20000, `the device to count past ${i - AHEAD} (it counted ${counted})`)
                maxAhead = Math.max(maxAhead, i + 1 - counted)
                pending.push(peer.publishAsync(`${topic}/in/m`, payload(i), { qos }))
            }
            await withTimeout(Promise.all(pending), 30000, "the peer's publishes")
            await peer.publishAsync(`${topic}/end`, "END", { qos: 1 })
            const line = await dev.waitFor(/^RESULT /, timeoutMs)
            const ms = Date.now() - t0
            await dev.waitFor("DONE", 10000)
            const r = await dev.done
            const panic = r.output.filter(l => /PANIC|OutOfMemory|Exception/.test(l))
            return { ...parseResult(line), sent: COUNT, maxAhead, ms, code: r.code, panic, line, tail: r.lines.slice(-15).join("\n") }
        } finally {
            if (dev) await dev.kill()
            await endPeer(peer)
        }
    }

    test(`QoS 0: ${COUNT} messages of ${SIZE} bytes, peer at most ${AHEAD} ahead: all delivered in order, none dropped`, async () => {
        const r = await burst({ name: "q0", qos: 0 })
        console.log(
            `# QoS 0 burst: ${r.sent} sent (at most ${r.maxAhead} ahead), ${r.delivered} delivered, ${r.gaps} gaps (${r.missing} missing), ${r.backwards} out of order, droppedMessages ${r.dropped}, ${r.ms} ms (${Math.round((r.sent * 1000) / r.ms)} msg/s)`
        )
        assert.deepEqual(r.panic, [], r.tail)
        assert.equal(r.code, 0, r.tail)
        assert.equal(r.delivered, COUNT, r.line)
        assert.equal(r.gaps, 0, r.line)
        assert.equal(r.backwards, 0, r.line)
        assert.equal(r.dropped, 0, r.line)
        assert.equal(r.last, COUNT - 1, r.line)
    })

    test(`QoS 0: an application sleeping 50 ms per message, maxIncomingBytes 4096: no panic, drops only past the budget, all counted`, async () => {
        const budget = 4096
        const r = await burst({ name: "slow", qos: 0, sleepMs: 50, maxIncomingBytes: budget })
        // a PUBLISH of this burst on the wire: 2 + 2 + topic + payload
        const wire = 4 + "burst/slow/in/m".length + SIZE
        // what the budget holds, allowing 40 bytes of bookkeeping per message
        const minHeld = Math.floor(budget / (wire + 40))
        console.log(
            `# QoS 0, 50 ms per message, maxIncomingBytes ${budget}: ${r.sent} sent (at most ${r.maxAhead} ahead), ${r.delivered} delivered, droppedMessages ${r.dropped} (sent - delivered = ${r.sent - r.delivered}), ${r.afterLastDrop} delivered after the last drop (budget / wire size = ${Math.floor(budget / wire)}), ${r.backwards} out of order, ${r.ms} ms`
        )
        assert.deepEqual(r.panic, [], r.tail)
        assert.equal(r.code, 0, r.tail)
        assert.equal(r.dropped, r.sent - r.delivered, `every message not delivered is counted in droppedMessages: ${r.line}`)
        assert.equal(r.backwards, 0, r.line)
        assert.ok(r.dropped > 0, `the budget should have overflowed: ${r.line}`)
        assert.ok(
            r.afterLastDrop >= Math.max(minHeld, MAX_INCOMING + 2),
            `when the client last dropped a message it held only ${r.afterLastDrop} (expected a budget's worth, >= ${minHeld}): ${r.line}`
        )
    })

    test(`QoS 1: ${COUNT} messages of ${SIZE} bytes, peer at most ${AHEAD} ahead: all delivered in order`, async () => {
        const r = await burst({ name: "q1", qos: 1 })
        console.log(
            `# QoS 1 burst: ${r.sent} sent (at most ${r.maxAhead} ahead), ${r.delivered} delivered, ${r.gaps} gaps (${r.missing} missing), ${r.backwards} out of order or repeated, ${r.ms} ms (${Math.round((r.sent * 1000) / r.ms)} msg/s)`
        )
        assert.deepEqual(r.panic, [], r.tail)
        assert.equal(r.code, 0, r.tail)
        assert.equal(r.gaps, 0, r.line)
        assert.equal(r.last, COUNT - 1, r.line)
        assert.equal(r.delivered, COUNT, r.line)
        assert.equal(r.backwards, 0, r.line)
    })

    test("backpressure: 100 messages wait 5 s undelivered while a QoS 1 publish completes and keepalive 2 s holds; then all 100 arrive", async () => {
        const HELD = 100
        const HOLD_MS = 6000
        const peer = await connectPeer(broker.port)
        const clientId = `hold-${process.pid}`
        const topic = "hold"
        let dev
        try {
            dev = await startConfigured(
                broker.port,
                "test/devs/inbound-burst.ts",
                { port: broker.port, clientId, topic, qos: 1, mode: "hold", sleepMs: 0, maxIncomingBytes: 0, keepalive: 2, holdMs: HOLD_MS },
                { timeoutMs: 60000 }
            )
            await dev.waitFor("READY", 30000)
            const from = broker.log.length
            const pending = []
            for (let i = 0; i < HELD; i++) pending.push(peer.publishAsync(`${topic}/in/${i}`, payload(i), { qos: 0 }))
            await withTimeout(Promise.all(pending), 10000, "the peer's publishes")
            await peer.publishAsync(`${topic}/end`, "END", { qos: 1 })
            const lastLine = await broker.waitForLog(new RegExp(`Sending PUBLISH to ${clientId} .*'${topic}/in/${HELD - 1}'`), 5000, from)
            const tArrived = Date.now()
            const iArrived = broker.log.indexOf(lastLine, from)
            const drain = await dev.waitFor(/^DRAIN /, HOLD_MS + 10000)
            const heldMs = Date.now() - tArrived
            const iDrain = broker.log.length
            const result = await dev.waitFor(/^RESULT /, 20000)
            await dev.waitFor("DONE", 10000)
            const r = await dev.done
            const res = parseResult(result)
            const during = broker.log.slice(iArrived, iDrain)
            const pings = during.filter(l => l.includes(`Received PINGREQ from ${clientId}`)).length
            const pongs = during.filter(l => l.includes(`Sending PINGRESP to ${clientId}`)).length
            const pub2 = during.findIndex(l => l.includes(`Received PUBLISH from ${clientId}`) && l.includes(`'${topic}/out/2'`))
            const mid2 = pub2 >= 0 ? /, m(\d+),/.exec(during[pub2])[1] : null
            const ack2 = mid2 ? during.findIndex((l, i) => i > pub2 && l.includes(`Sending PUBACK to ${clientId} (m${mid2},`)) : -1
            const connects = broker.log.filter(l => new RegExp(`New client connected from .* as ${clientId} `).test(l)).length
            const pubok = r.lines.filter(l => l.startsWith("PUBOK"))
            console.log(
                `# backpressure: ${HELD} QoS 0 messages held ${heldMs} ms undelivered; during the hold: ${pubok.join(", ") || "no publish completed"}, QoS 1 PUBLISH of the device ${pub2 >= 0 ? "received" : "NOT received"} and ${ack2 >= 0 ? "PUBACKed" : "NOT PUBACKed"} by mosquitto after the last held message was sent, ${pings} PINGREQ / ${pongs} PINGRESP, ${connects} connection(s); ${drain}; then ${res.delivered} delivered (${res.gaps} gaps), droppedMessages ${res.dropped}`
            )
            const panic = r.output.filter(l => /PANIC|OutOfMemory|Exception/.test(l))
            assert.deepEqual(panic, [], r.lines.slice(-15).join("\n"))
            assert.equal(r.code, 0, r.lines.slice(-15).join("\n"))
            assert.ok(heldMs >= HOLD_MS - 1500, `the messages were held only ${heldMs} ms`)
            assert.ok(pub2 >= 0 && ack2 >= 0, "the device's QoS 1 publish during the hold did not complete after the messages arrived")
            assert.ok(pubok.some(l => l.startsWith("PUBOK 2")), "PUBOK 2 missing")
            assert.ok(pings >= 1 && pongs >= 1, `no keepalive exchange during the hold (${pings} PINGREQ, ${pongs} PINGRESP)`)
            assert.equal(connects, 1, "the device reconnected")
            assert.match(drain, /losses=0 state=0 delivered=0/)
            assert.equal(res.delivered, HELD, result)
            assert.equal(res.gaps, 0, result)
            assert.equal(res.dropped, 0, result)
        } finally {
            if (dev) await dev.kill()
            await endPeer(peer)
        }
    })
})
