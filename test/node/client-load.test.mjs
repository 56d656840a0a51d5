// A device that publishes thousands of messages in a tight loop never trips
// the VM's InfiniteLoop watchdog, and every message reaches a peer.
import { test } from "node:test"
import assert from "node:assert/strict"
import { brokerKinds, startBroker, connectPeer, collect, endPeer } from "../tools/brokers.mjs"
import { runDevice } from "../tools/sim.mjs"

const QOS0 = 3000
const QOS1 = 500
// the write buffer test: a QoS 1 after every MIX QoS 0 (long runs without a
// yield of the program's own: the client keeps the watchdog quiet)
const MIX = 1000

for (const kind of brokerKinds()) {
    test(`${kind}: ${QOS0} QoS 0 and ${QOS1} QoS 1 publishes in a loop, all arrive`, async () => {
        const broker = await startBroker(kind)
        const peer = await connectPeer(broker.port)
        let dev
        try {
            const topic = `load/${kind}`
            const got = await collect(peer, `${topic}/#`)
            dev = await runDevice(
                "test/devs/load-publish.ts",
                { port: broker.port, topic, qos0: QOS0, qos1: QOS1 },
                { timeoutMs: 90000 }
            )
            const r = await dev.done
            assert.equal(r.code, 0, r.lines.slice(-20).join("\n"))
            assert.ok(r.lines.includes("DONE"))
            await got.waitForCount(QOS0 + QOS1, 20000)
            const q0 = got.messages.filter(m => m.topic === `${topic}/0`).length
            const q1 = got.messages.filter(m => m.topic === `${topic}/1`).length
            assert.equal(q0, QOS0)
            assert.equal(q1, QOS1)
            console.log(`# ${kind}: ${q0} QoS 0 + ${q1} QoS 1 received by the peer`)
        } finally {
            if (dev) await dev.kill()
            await endPeer(peer)
            await broker.close()
        }
    })
}

for (const kind of brokerKinds()) {
    test(`${kind}: writeBuffer 1024, ${QOS0} QoS 0 with a QoS 1 after every ${MIX}: all arrive, in order`, async () => {
        const broker = await startBroker(kind)
        const peer = await connectPeer(broker.port)
        let dev
        try {
            const topic = `loadbuf/${kind}`
            const got = await collect(peer, `${topic}/#`)
            dev = await runDevice(
                "test/devs/load-publish.ts",
                { port: broker.port, topic, qos0: QOS0, qos1: 0, writeBuffer: 1024, mixEvery: MIX },
                { timeoutMs: 90000 }
            )
            const r = await dev.done
            assert.equal(r.code, 0, r.lines.slice(-20).join("\n"))
            assert.ok(r.lines.includes("DONE"))
            const mixed = QOS0 / MIX
            await got.waitForCount(QOS0 + mixed, 20000)
            const seq = m => m.payload.readUInt16BE(0)
            const q0 = got.messages.filter(m => m.topic === `${topic}/0`).map(seq)
            const q1 = got.messages.filter(m => m.topic === `${topic}/1`).map(seq)
            assert.equal(q0.length, QOS0)
            assert.deepEqual(q0, q0.map((_, i) => i), "QoS 0 messages out of order")
            assert.deepEqual(q1, q1.map((_, i) => i * MIX + MIX - 1))
            console.log(`# ${kind}: ${q0.length} QoS 0 in order + ${q1.length} QoS 1 through the write buffer`)
        } finally {
            if (dev) await dev.kill()
            await endPeer(peer)
            await broker.close()
        }
    })
}
