// The Wi-Fi connectivity source against a Wi-Fi service hosted inside the
// simulated program (@devicescript/server), and a client riding it out.
import { test } from "node:test"
import assert from "node:assert/strict"
import { startAedes, connectPeer, collect, endPeer } from "../tools/brokers.mjs"
import { runDeviceToEnd } from "../tools/sim.mjs"

test("Wi-Fi source: lostIp/gotIp drive the client's reconnection", async () => {
    const broker = await startAedes()
    const peer = await connectPeer(broker.port)
    let connects = 0
    broker.broker.on("client", c => {
        if (c.id === "wifi-client") connects++
    })
    try {
        const topic = "wifi/queued"
        const got = await collect(peer, topic, { qos: 1 })
        const r = await runDeviceToEnd(
            "test/devs/wifi-source.ts",
            { port: broker.port, topic },
            { timeoutMs: 30000 }
        )
        assert.equal(r.code, 0, r.lines.slice(-20).join("\n"))
        assert.ok(r.lines.includes("changes false,true"), r.lines.join("\n"))
        assert.ok(r.lines.includes("while down: state 1 sent 0"))
        assert.ok(r.lines.includes("after: state 0 states 1,0"))
        await got.waitForCount(3, 5000)
        // one connection before the loss, one after: no attempt while down
        assert.equal(connects, 2)
    } finally {
        await endPeer(peer)
        await broker.close()
    }
})
