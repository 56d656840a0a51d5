// Internal reconnection (reconn: true): the broker cuts the device twice in
// the middle of a stream of QoS 1 publishes; the client reconnects by itself
// and every message reaches the peer.
import { test } from "node:test"
import assert from "node:assert/strict"
import { startAedes, connectPeer, collect, endPeer } from "../tools/brokers.mjs"
import { runDevice } from "../tools/sim.mjs"

const COUNT = 120
const CUT_AT = [30, 80]

test(`reconn: true: ${COUNT} QoS 1 messages across ${CUT_AT.length} cuts, none lost, subscriptions restored`, async () => {
    const broker = await startAedes()
    const peer = await connectPeer(broker.port)
    let dev
    try {
        const topic = "reconnect/basic"
        const got = await collect(peer, topic, { qos: 1 })
        let seen = 0
        const cuts = []
        broker.broker.on("publish", (packet, client) => {
            if (!client || client.id !== "reconnect-basic" || packet.topic !== topic) return
            seen++
            if (CUT_AT.includes(seen)) {
                cuts.push(seen)
                client.conn.destroy() // the server drops the connection
            }
        })
        dev = await runDevice(
            "test/devs/reconnect-basic.ts",
            { port: broker.port, topic, count: COUNT },
            { timeoutMs: 60000 }
        )
        const summary = await dev.waitFor(/^published /, 60000)
        // the subscription made before the cuts still works: resubscribed
        await peer.publishAsync(`${topic}/in`, "after the cuts", { qos: 1 })
        await dev.waitFor("inbound after the cuts", 10000)
        const r = await dev.done
        assert.equal(r.code, 0, r.lines.slice(-20).join("\n"))
        assert.match(summary, new RegExp(`published ${COUNT} lost=2 back=2 state=0`))
        assert.equal(cuts.length, 2)
        await got.waitForCount(COUNT, 10000).catch(() => {})
        const unique = new Set(got.messages.map(m => m.payload.toString()))
        for (let i = 0; i < COUNT; i++) assert.ok(unique.has("" + i), `message ${i} lost`)
        console.log(
            `# ${COUNT} QoS 1 messages, ${cuts.length} cuts: ${unique.size} distinct at the peer, ${got.messages.length - unique.size} duplicates (allowed for QoS 1)`
        )
    } finally {
        if (dev) await dev.kill()
        await endPeer(peer)
        await broker.close()
    }
})
