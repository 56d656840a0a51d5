// Issue 10, the fleet (full run only): 10 simulated devices with default
// options, QoS 1 telemetry each second, distinct client ids, against one
// mosquitto that is stopped for 10 s and started again (with persistence,
// so the peer's session and its queued messages survive). No telemetry is
// lost, and the devices' first CONNECTs to the restarted broker spread over
// at least 3 distinct seconds (mosquitto's log timestamps): the reconnect
// jitter differs from device to device although every simulator starts
// Math.random() from the same seed.
import { test, describe } from "node:test"
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { mosquittoAvailable, startMosquitto, connectPeer, collect, endPeer } from "../tools/brokers.mjs"
import { full } from "../tools/profile.mjs"
import { buildDevs, startDevice, writeEntry } from "../tools/sim.mjs"

const DEVICES = 10
const OUTAGE_MS = 10000

const delay = ms => new Promise(r => setTimeout(r, ms))

const skip = !mosquittoAvailable()
    ? "mosquitto is not installed"
    : !full && "the fleet test runs in the full profile only (UMQTT_FULL=1 or npm run test:full): 10 simulators for about 2 minutes"

describe("a fleet across a broker restart (mosquitto)", () => {
    test(`${DEVICES} devices, default options, mosquitto stopped for ${OUTAGE_MS / 1000} s: 0 telemetry lost, reconnects spread over >= 3 seconds`, { skip }, async () => {
        const dir = mkdtempSync(join(tmpdir(), "umqtt-fleet-"))
        let broker = null
        let peer = null
        const devs = []
        try {
            broker = await startMosquitto({ dir, persistence: true })
            const port = broker.port
            // a persistent session, so what the devices send while the peer
            // is reconnecting waits for it in the broker
            peer = await connectPeer(port, { clientId: `fleet-peer-${process.pid}`, clean: false, reconnectPeriod: 300 })
            const got = await collect(peer, "fleet/t/#", { qos: 1 })
            // one build for all: each device takes its index from a retained
            // message, so it is started only once the previous one has its id
            const prefix = `fleet-${process.pid}`
            const ids = Array.from({ length: DEVICES }, (_, i) => `${prefix}-${i}`)
            const devsFile = await buildDevs(
                await writeEntry(
                    "test/devs/fleet-telemetry.ts",
                    { port, prefix, idTopic: "fleet/id", topic: "fleet/t", stopTopic: "fleet/stop" },
                    "fleet-telemetry"
                )
            )
            for (let i = 0; i < DEVICES; i++) {
                await peer.publishAsync("fleet/id", String(i), { qos: 1, retain: true })
                const dev = startDevice(devsFile, { timeoutMs: 300000 })
                devs.push(dev)
                await dev.waitFor(`ID ${ids[i]}`, 30000)
            }
            await peer.publishAsync("fleet/id", "", { qos: 1, retain: true })
            for (const dev of devs) await dev.waitFor("READY", 60000)
            // telemetry flows from every device
            await got.waitForCount(3 * DEVICES, 30000)

            await broker.close() // SIGTERM: mosquitto saves its sessions
            broker = null
            const stoppedAt = Date.now()
            await delay(OUTAGE_MS) // the outage itself
            broker = await startMosquitto({ port, dir, persistence: true })
            const restartedAt = Date.now()
            const back = await Promise.all(
                ids.map(id =>
                    broker
                        .waitForLog(new RegExp(`New client connected from .* as ${id} \\(`), 150000)
                        .then(line => ({ id, line, ms: Date.now() - restartedAt }))
                )
            )
            // telemetry again from everyone after the reconnect
            const before = got.messages.length
            await got.waitForCount(before + 3 * DEVICES, 60000)
            await peer.publishAsync("fleet/stop", "stop", { qos: 1 })
            const sent = []
            for (const dev of devs) sent.push(await dev.waitFor(/^SENT /, 120000))
            for (const dev of devs) await dev.waitFor("DONE", 20000)
            // what the broker still had for the peer
            const total = sent.reduce((a, l) => a + +/seq=(\d+)/.exec(l)[1], 0)
            await got.waitForCount(total, 20000).catch(() => {})

            const seconds = back.map(b => +b.line.split(":")[0])
            const distinct = new Set(seconds).size
            const report = []
            let lost = 0
            let failed = 0
            ids.forEach((id, i) => {
                const m = /seq=(\d+) ok=(\d+) failed=(\d+)/.exec(sent[i])
                const seq = +m[1]
                const failedMsgs = new Set(devs[i].lines.filter(l => l.startsWith(`FAILED ${id},`)).map(l => +/,(\d+):/.exec(l)[1]))
                const have = new Set(got.messages.filter(x => x.topic === `fleet/t/${id}`).map(x => +x.payload.toString().split(",")[1]))
                const missing = []
                for (let n = 0; n < seq; n++) if (!have.has(n) && !failedMsgs.has(n)) missing.push(n)
                lost += missing.length
                failed += failedMsgs.size
                report.push(`${id}: ${seq} published, ${have.size} received, ${failedMsgs.size} failed, ${missing.length} lost${missing.length ? ` (#${missing.slice(0, 5).join(",")})` : ""}, back after ${(back[i].ms / 1000).toFixed(1)} s`)
            })
            const times = back.map(b => b.ms).sort((a, b) => a - b)
            // the most devices whose CONNECTs fall within one second of each other
            const crowd = Math.max(...times.map(t => times.filter(u => u >= t && u < t + 1000).length))
            console.log(
                `# fleet: ${DEVICES} devices, broker down ${((restartedAt - stoppedAt) / 1000).toFixed(1)} s; first CONNECTs to the restarted broker ${(times[0] / 1000).toFixed(1)}..${(times[times.length - 1] / 1000).toFixed(1)} s after it came back, in ${distinct} distinct seconds (at most ${crowd} within 1 s); ${total} telemetry messages published, ${lost} lost, ${failed} failed publishes`
            )
            for (const r of report) console.log(`#   ${r}`)
            assert.equal(lost, 0, "telemetry lost")
            assert.ok(distinct >= 3, `the fleet reconnected within ${distinct} distinct second(s): ${seconds.join(" ")}`)
        } finally {
            for (const dev of devs) await dev.kill()
            await endPeer(peer)
            if (broker) await broker.close()
            rmSync(dir, { recursive: true, force: true })
        }
    })
})
