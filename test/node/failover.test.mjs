// Failover: two mosquitto instances; the one in use is killed in the middle
// of a QoS 1 stream; the client moves to the other and loses nothing.
import { test } from "node:test"
import assert from "node:assert/strict"
import { mosquittoAvailable, startMosquitto, connectPeer, collect, endPeer } from "../tools/brokers.mjs"
import { runDevice } from "../tools/sim.mjs"

const COUNT = 200

test(
    `failover between two mosquitto instances: ${COUNT} QoS 1 messages, none lost`,
    { skip: !mosquittoAvailable() && "mosquitto is not installed" },
    async () => {
        const a = await startMosquitto()
        const b = await startMosquitto()
        const peerA = await connectPeer(a.port, { reconnectPeriod: 0 })
        const peerB = await connectPeer(b.port)
        peerA.on("error", () => {})
        let dev
        try {
            const topic = "failover/q1"
            const gotA = await collect(peerA, topic, { qos: 1 })
            const gotB = await collect(peerB, topic, { qos: 1 })
            dev = await runDevice(
                "test/devs/failover.ts",
                { portA: a.port, portB: b.port, topic, count: COUNT },
                { timeoutMs: 60000 }
            )
            await dev.waitFor(`READY ${a.port}`, 20000)
            await dev.waitFor("HALF", 20000)
            await a.kill() // the broker in use dies
            await dev.waitFor(`state 0 server ${b.port}`, 20000)
            const sent = await dev.waitFor(/^SENT /, 30000)
            assert.equal(sent, `SENT server ${b.port}`)
            const r = await dev.done
            assert.equal(r.code, 0, r.lines.slice(-20).join("\n"))
            const all = new Set([...gotA.messages, ...gotB.messages].map(m => m.payload.toString()))
            const missing = []
            for (let i = 0; i < COUNT; i++) if (!all.has("" + i)) missing.push(i)
            console.log(
                `# failover: ${gotA.messages.length} via A, ${gotB.messages.length} via B, ${missing.length} lost`
            )
            assert.deepEqual(missing, [])
            assert.ok(gotB.messages.length > 0)
        } finally {
            if (dev) await dev.kill()
            peerA.end(true)
            await endPeer(peerB)
            await a.close()
            await b.close()
        }
    }
)
