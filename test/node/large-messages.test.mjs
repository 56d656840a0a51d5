// Issue 10, measurement 4: large messages in a 64 KB heap. One program
// moves 20 payloads of 16,384 bytes, alternating directions: the device
// publishes at QoS 1 to a topic it is subscribed to itself (the echo comes
// back while its own payload is still in flight; the peer checks it too),
// then the peer publishes one to it. Every payload is checked byte by byte
// on both sides, no OutOfMemory, and Buffer.alloc(16384) still succeeds
// after the last. Then the same size with the broker's bytes arriving at the
// device as one chunk of two 16 KB messages (the fault proxy coalesces them).
import { test, describe, before, after } from "node:test"
import assert from "node:assert/strict"
import { mosquittoAvailable, startBroker, connectPeer, collect, endPeer } from "../tools/brokers.mjs"
import { startFaultProxy } from "../tools/faultproxy.mjs"
import { watchPackets } from "../tools/packetcut.mjs"
import { startConfigured } from "../tools/devconfig.mjs"

const SIZE = 16384
const COUNT = 20
const PAIRS = 3

/** Message i as the device builds it: blocks of 256 bytes, each k (2 bytes), i, a pattern of i. */
function message(i) {
    const b = Buffer.alloc(SIZE)
    for (let o = 0; o < SIZE; o += 256) {
        b.writeUInt16BE(o / 256, o)
        b[o + 2] = i
        for (let j = 3; j < 256; j++) b[o + j] = (j * 7 + i * 31 + 5) & 0xff
    }
    return b
}

/** The program's failure lines: panics, out of memory, exceptions. */
function failures(output) {
    return output.filter(l => /PANIC|OutOfMemory|Exception|out of memory/i.test(l))
}

/** What the device program reported: messages received byte-exact or not, panics, the last allocation. */
function deviceReport(r) {
    return {
        gotOk: r.lines.filter(l => /^GOT \d+ ok/.test(l)).length,
        gotBad: r.lines.filter(l => /^GOT \d+ bad/.test(l)),
        fails: failures(r.output),
        alloc: r.lines.find(l => l.startsWith("ALLOC")) || "no ALLOC after the last",
    }
}

/** The assertions both tests make on the device's report: no panic, exit 0, `count` byte-exact, 16 KB allocatable at the end. */
function assertDevice(r, rep, failure, count) {
    assert.deepEqual(rep.fails, [], r.output.slice(-30).join("\n"))
    if (failure) throw failure
    assert.equal(r.code, 0, r.lines.slice(-20).join("\n"))
    assert.deepEqual(rep.gotBad, [])
    assert.equal(rep.gotOk, count)
    assert.ok(r.lines.some(l => l === `ALLOC ok ${SIZE}`), "Buffer.alloc after the last message")
}

describe("large messages (16,384 bytes)", () => {
    const kind = mosquittoAvailable() ? "mosquitto" : "aedes"
    let broker
    before(async () => {
        broker = await startBroker(kind)
    })
    after(async () => {
        if (broker) await broker.close()
    })

    test(`${COUNT} payloads of ${SIZE} bytes alternating directions (${kind}): byte-exact, no OutOfMemory, ${SIZE} bytes allocatable after`, async () => {
        const peer = await connectPeer(broker.port)
        let dev
        try {
            const echoes = await collect(peer, "lg/echo", { qos: 1 })
            dev = await startConfigured(
                broker.port,
                "test/devs/large-alt.ts",
                { port: broker.port, clientId: `large-alt-${process.pid}`, inTopic: "lg/in", echoTopic: "lg/echo", mode: "alt", count: COUNT, size: SIZE },
                { timeoutMs: 180000 }
            )
            const t0 = Date.now()
            let failure = null
            try {
                await dev.waitFor("READY", 30000)
                for (let i = 1; i < COUNT; i += 2) {
                    await dev.waitFor(new RegExp(`^WANT ${i}$`), 60000)
                    await peer.publishAsync("lg/in", message(i), { qos: 1 })
                }
                await dev.waitFor(/^RESULT /, 60000)
                await dev.waitFor("DONE", 10000)
            } catch (e) {
                failure = e
            }
            const r = await (failure ? dev.kill() : dev.done)
            const rep = deviceReport(r)
            const echoBad = echoes.messages.filter(m => !m.payload.equals(message(m.payload[2]))).length
            const result = r.lines.find(l => l.startsWith("RESULT")) || "no RESULT"
            console.log(
                `# alternating: ${rep.gotOk} of ${COUNT} received by the device byte-exact (${rep.gotBad.length} bad), ${echoes.messages.length} of ${COUNT / 2} device messages at the peer (${echoBad} not byte-exact), ${rep.alloc}, ${rep.fails.length ? rep.fails.slice(0, 2).join(" / ") : "no panic"}, ${result}, ${Date.now() - t0} ms`
            )
            assertDevice(r, rep, failure, COUNT)
            assert.equal(echoes.messages.length, COUNT / 2)
            assert.equal(echoBad, 0)
        } finally {
            if (dev) await dev.kill()
            await endPeer(peer)
        }
    })

    test(`${PAIRS} pairs of ${SIZE}-byte messages, each pair reaching the device in one chunk (${kind}, fault proxy coalescing)`, async () => {
        const proxy = await startFaultProxy({ upstreamPort: broker.port })
        const watcher = watchPackets(proxy)
        const peer = await connectPeer(broker.port)
        let dev
        try {
            dev = await startConfigured(
                broker.port,
                "test/devs/large-alt.ts",
                { port: proxy.port, clientId: `large-pairs-${process.pid}`, inTopic: "lg/pair", echoTopic: "", mode: "pairs", count: 2 * PAIRS, size: SIZE },
                { timeoutMs: 120000 }
            )
            const t0 = Date.now()
            const chunks = []
            let failure = null
            try {
                await dev.waitFor("READY", 30000)
                const conn = proxy.conns[proxy.conns.length - 1]
                for (let k = 0; k < PAIRS; k++) {
                    await dev.waitFor(new RegExp(`^WANT PAIR ${k}$`), 60000)
                    const before = watcher.clientWrites(conn.id).length
                    // hold what the broker sends for 300 ms, then one write
                    proxy.coalesce(300, { direction: "down" })
                    await Promise.all([
                        peer.publishAsync("lg/pair", message(2 * k), { qos: 1 }),
                        peer.publishAsync("lg/pair", message(2 * k + 1), { qos: 1 }),
                    ])
                    await dev.waitFor(new RegExp(`^GOT ${2 * k + 1} `), 30000)
                    proxy.pass({ direction: "down" })
                    chunks.push(Math.max(...watcher.clientWrites(conn.id).slice(before)))
                }
                await dev.waitFor(/^RESULT /, 30000)
                await dev.waitFor("DONE", 10000)
            } catch (e) {
                failure = e
            }
            const r = await (failure ? dev.kill() : dev.done)
            const rep = deviceReport(r)
            console.log(
                `# coalesced pairs: largest write to the device per pair ${chunks.join(", ") || "-"} bytes; ${rep.gotOk} of ${2 * PAIRS} received byte-exact (${rep.gotBad.length} bad), ${rep.alloc}, ${rep.fails.length ? rep.fails.slice(0, 2).join(" / ") : "no panic"}, ${Date.now() - t0} ms`
            )
            assertDevice(r, rep, failure, 2 * PAIRS)
            for (const n of chunks) assert.ok(n >= 2 * SIZE, `a pair reached the device in pieces (largest write ${n} bytes)`)
        } finally {
            if (dev) await dev.kill()
            watcher.stop()
            await endPeer(peer)
            await proxy.close()
        }
    })
})
