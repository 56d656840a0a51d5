// close() + connect() works again and again: 40 cycles (`npm test`), 100
// (`npm run test:full`) in one simulator run without running out of heap,
// every publish arriving.
import { test } from "node:test"
import assert from "node:assert/strict"
import { startAedes, connectPeer, collect, endPeer } from "../tools/brokers.mjs"
import { scale } from "../tools/profile.mjs"
import { runDeviceToEnd } from "../tools/sim.mjs"

const CYCLES = scale(40, 100)

test(`${CYCLES} close() + connect() cycles in one run`, async () => {
    const broker = await startAedes()
    const peer = await connectPeer(broker.port)
    try {
        const topic = "cycles/x"
        const got = await collect(peer, topic, { qos: 1 })
        const r = await runDeviceToEnd(
            "test/devs/cycles.ts",
            { port: broker.port, topic, cycles: CYCLES },
            { timeoutMs: 90000 }
        )
        assert.equal(r.code, 0, r.lines.slice(-20).join("\n"))
        assert.ok(r.lines.includes(`cycles ${CYCLES} errors 0 big 24576`))
        await got.waitForCount(CYCLES, 10000)
        const unique = new Set(got.messages.map(m => m.payload.toString()))
        assert.equal(unique.size, CYCLES)
        console.log(`# ${CYCLES} cycles, ${unique.size} publishes received`)
    } finally {
        await endPeer(peer)
        await broker.close()
    }
})
