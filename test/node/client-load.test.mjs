// A device that publishes thousands of messages in a tight loop never trips
// the VM's InfiniteLoop watchdog, and every message reaches a peer.
// `npm test`: 1,000 QoS 0 + 200 QoS 1; `npm run test:full`: 3,000 + 500.
import { test } from "node:test"
import assert from "node:assert/strict"
import { brokerKinds, startBroker, connectPeer, collect, endPeer } from "../tools/brokers.mjs"
import { scale } from "../tools/profile.mjs"
import { runDevice } from "../tools/sim.mjs"

const QOS0 = scale(1000, 3000)
const QOS1 = scale(200, 500)
// the write buffer test: a QoS 1 after every MIX QoS 0 (long runs without a
// yield of the program's own, longer than the client's 256 staged publishes
// between its own yields: the client keeps the watchdog quiet)
const MIX = scale(500, 1000)

/**
 * Runs test/devs/load-publish.ts against a fresh broker of `kind` with
 * `params`, waits until the peer counted `expected` messages under `topic`
 * and returns them as { q0, q1 }: the payloads' sequence numbers per topic.
 */
async function loadRun(kind, topic, params, expected) {
    const broker = await startBroker(kind)
    const peer = await connectPeer(broker.port)
    let dev
    try {
        const got = await collect(peer, `${topic}/#`)
        dev = await runDevice(
            "test/devs/load-publish.ts",
            { port: broker.port, topic, ...params },
            { timeoutMs: 90000 }
        )
        const r = await dev.done
        assert.equal(r.code, 0, r.lines.slice(-20).join("\n"))
        assert.ok(r.lines.includes("DONE"))
        await got.waitForCount(expected, 20000)
        const seqs = t =>
            got.messages.filter(m => m.topic === `${topic}/${t}`).map(m => m.payload.readUInt16BE(0))
        return { q0: seqs(0), q1: seqs(1) }
    } finally {
        if (dev) await dev.kill()
        await endPeer(peer)
        await broker.close()
    }
}

for (const kind of brokerKinds()) {
    test(`${kind}: ${QOS0} QoS 0 and ${QOS1} QoS 1 publishes in a loop, all arrive`, async () => {
        const { q0, q1 } = await loadRun(kind, `load/${kind}`, { qos0: QOS0, qos1: QOS1 }, QOS0 + QOS1)
        assert.equal(q0.length, QOS0)
        assert.equal(q1.length, QOS1)
        console.log(`# ${kind}: ${q0.length} QoS 0 + ${q1.length} QoS 1 received by the peer`)
    })
}

for (const kind of brokerKinds()) {
    test(`${kind}: writeBuffer 1024, ${QOS0} QoS 0 with a QoS 1 after every ${MIX}: all arrive, in order`, async () => {
        const { q0, q1 } = await loadRun(
            kind,
            `loadbuf/${kind}`,
            { qos0: QOS0, qos1: 0, writeBuffer: 1024, mixEvery: MIX },
            QOS0 + QOS0 / MIX
        )
        assert.equal(q0.length, QOS0)
        assert.deepEqual(q0, q0.map((_, i) => i), "QoS 0 messages out of order")
        assert.deepEqual(q1, q1.map((_, i) => i * MIX + MIX - 1))
        console.log(`# ${kind}: ${q0.length} QoS 0 in order + ${q1.length} QoS 1 through the write buffer`)
    })
}
