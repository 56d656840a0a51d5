// Survive the network: a fault-injecting proxy between the simulator and
// mosquitto cuts the link at random byte offsets, trickles it one byte at a
// time, coalesces, delays and black-holes it. Nothing handed to publish with
// QoS 1 or 2 is lost; QoS 2 arrives exactly once; a dead link is noticed.
import { test, describe, before, after } from "node:test"
import assert from "node:assert/strict"
import { mosquittoAvailable, startMosquitto, connectPeer, collect, endPeer } from "../tools/brokers.mjs"
import { startFaultProxy, rng } from "../tools/faultproxy.mjs"
import { runDevice } from "../tools/sim.mjs"

const CUTS = 20
const SEED = 20261126

/**
 * Arms a cut at a random byte offset on every new connection until `cuts`
 * happened, varying the delivery mode between connections.
 */
function chaos(proxy, random, cuts) {
    const modes = [
        () => proxy.pass(),
        () => proxy.oneByte(0, { direction: "down" }),
        () => proxy.coalesce(5),
        () => proxy.delay(3),
    ]
    let armed = 0
    const arm = () => {
        proxy.pass()
        if (armed >= cuts) return
        armed++
        modes[Math.floor(random() * modes.length)]()
        // the device sends about 20 bytes a message and receives 4 to 8:
        // offsets keep 20 cuts well inside a run of 1000 messages
        if (random() < 0.5) proxy.cutRandom(random, 800, { direction: "up" })
        else proxy.cutRandom(random, 300, { direction: "down" })
    }
    proxy.on("connection", () => setImmediate(arm))
    return () => armed
}

describe("fault injection (mosquitto)", { skip: !mosquittoAvailable() && "mosquitto is not installed" }, () => {
    let broker
    before(async () => {
        broker = await startMosquitto({ config: ["max_queued_messages 10000", "max_inflight_messages 20"] })
    })
    after(async () => {
        if (broker) await broker.close()
    })

    for (const qos of [1, 2]) {
        const count = 1000
        test(`QoS ${qos}: ${count} messages across ${CUTS} cuts${qos === 2 ? ", persistent session" : ""}`, async () => {
            const proxy = await startFaultProxy({ upstreamPort: broker.port })
            const peer = await connectPeer(broker.port)
            let dev
            try {
                const topic = `faults/q${qos}`
                const got = await collect(peer, topic, { qos: 2 })
                const random = rng(SEED + qos)
                const armed = chaos(proxy, random, CUTS)
                dev = await runDevice(
                    "test/devs/fault-publish.ts",
                    {
                        port: proxy.port,
                        clientId: `faults-q${qos}`,
                        topic,
                        inbound: "",
                        count,
                        qos,
                        fibers: 4,
                        cleanSession: qos === 1,
                    },
                    { timeoutMs: 180000 }
                )
                const r = await dev.done
                assert.equal(r.code, 0, r.lines.slice(-25).join("\n"))
                await got.waitForCount(count, 15000).catch(() => {})
                const payloads = got.messages.map(m => m.payload.toString())
                const unique = new Set(payloads)
                const missing = []
                for (let i = 0; i < count; i++) if (!unique.has("" + i)) missing.push(i)
                const dups = payloads.length - unique.size
                console.log(
                    `# QoS ${qos}: ${count} published, ${proxy.cuts.length} cuts (seed ${SEED + qos}), ${unique.size} distinct at the peer, ${missing.length} lost, ${dups} duplicated`
                )
                assert.ok(proxy.cuts.length >= CUTS, `only ${proxy.cuts.length} cuts happened (${armed()} armed)`)
                assert.deepEqual(missing, [], "lost messages")
                if (qos === 2) assert.equal(dups, 0, "QoS 2 duplicates")
            } finally {
                if (dev) await dev.kill()
                await endPeer(peer)
                await proxy.close()
            }
        })
    }

    test("black hole with keepalive 2: noticed within 1.5 x keepalive, recovers", async () => {
        const proxy = await startFaultProxy({ upstreamPort: broker.port })
        const peer = await connectPeer(broker.port)
        let dev
        try {
            const got = await collect(peer, "faults/bh", { qos: 1 })
            dev = await runDevice("test/devs/blackhole.ts", { port: proxy.port, topic: "faults/bh" }, { timeoutMs: 60000 })
            await dev.waitFor("READY", 20000)
            proxy.blackhole()
            const lost = await dev.waitFor(/^LOST /, 10000)
            const ms = +lost.match(/no packet for (\d+) ms/)[1]
            console.log(`# black hole noticed after ${ms} ms without a packet (keepalive 2000 ms)`)
            assert.ok(ms <= 3000, lost)
            proxy.pass()
            await dev.waitFor("BACK", 30000)
            await got.waitForCount(1, 10000)
            assert.equal(got.messages[0].payload.toString(), "after the black hole")
            const r = await dev.done
            assert.equal(r.code, 0, r.lines.slice(-20).join("\n"))
        } finally {
            if (dev) await dev.kill()
            await endPeer(peer)
            await proxy.close()
        }
    })
})
