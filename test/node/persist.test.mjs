// mosquitto restarted with persistence on: the client resumes its session
// and receives the QoS 1 messages queued for it while it was away.
import { test } from "node:test"
import assert from "node:assert/strict"
import { mosquittoAvailable, startMosquitto, connectPeer, endPeer } from "../tools/brokers.mjs"
import { startFaultProxy } from "../tools/faultproxy.mjs"
import { runDevice } from "../tools/sim.mjs"

const QUEUED = 25

test(
    `mosquitto restart with persistence: ${QUEUED} queued QoS 1 messages arrive`,
    { skip: !mosquittoAvailable() && "mosquitto is not installed" },
    async () => {
        const broker = await startMosquitto({ persistence: true })
        const proxy = await startFaultProxy({ upstreamPort: broker.port })
        let dev
        try {
            const topic = "persist/q1"
            dev = await runDevice(
                "test/devs/persist.ts",
                { port: proxy.port, topic, want: QUEUED },
                { timeoutMs: 60000 }
            )
            await dev.waitFor("READY", 20000)
            // the device goes away and stays away while the broker restarts
            proxy.refuse(true)
            proxy.cutNow()
            await dev.waitFor(/^state 1/, 10000)
            await broker.restart() // SIGTERM: mosquitto saves its database
            const peer = await connectPeer(broker.port)
            for (let i = 0; i < QUEUED; i++) await peer.publishAsync(topic, `queued ${i}`, { qos: 1 })
            await endPeer(peer)
            proxy.refuse(false)
            await dev.waitFor("state 0", 20000)
            const line = await dev.waitFor(/^GOT /, 20000)
            assert.equal(line, `GOT ${QUEUED} sessionPresent=true`)
            const r = await dev.done
            assert.equal(r.code, 0, r.lines.slice(-20).join("\n"))
        } finally {
            if (dev) await dev.kill()
            await proxy.close()
            await broker.close()
        }
    }
)
