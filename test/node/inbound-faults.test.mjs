// Issue 10, measurement 1, on a real broker: messages TO the device while
// the link is cut. The device connects with a persistent session
// (connect(false)), subscribes at QoS 2 (or 1) and loops waitMsg in a fiber;
// an MQTT.js peer publishes 150 messages 0-20 ms apart to it through
// mosquitto; a fault proxy between the device and mosquitto cuts the link
// five times per seed: once at a random byte (usually inside a packet), then
// right before a PUBREC from the device, a PUBREL from the broker, a PUBCOMP
// from the device and a PUBREC again (QoS 1: PUBACK, PUBLISH, PUBACK,
// PUBLISH); the packet that triggers a cut is lost. Per seed: QoS 2 arrives
// exactly once (0 lost, 0 duplicated), QoS 1 at least once (0 lost).
// All seeds run in one simulator run, one round per seed.
import { test, describe, before, after } from "node:test"
import assert from "node:assert/strict"
import { mosquittoAvailable, startMosquitto, connectPeer, endPeer } from "../tools/brokers.mjs"
import { startFaultProxy, rng } from "../tools/faultproxy.mjs"
import { watchPackets, cutSequence, PACKET } from "../tools/packetcut.mjs"
import { scale } from "../tools/profile.mjs"
import { startConfigured } from "../tools/devconfig.mjs"

const COUNT = 150
const SEEDS = scale(5, 20)
const SEED0 = 20261202

const delay = ms => new Promise(r => setTimeout(r, ms))

/** The five cuts of measurement 1 (for QoS 1: the QoS 1 packets in the same places). */
function kindsFor(qos) {
    const bytes = { kind: "bytes", direction: "down", max: 400 }
    const pkt = (type, direction) => ({ kind: "packet", type, direction, maxSkip: 10 })
    if (qos === 2)
        return [
            bytes,
            pkt(PACKET.PUBREC, "up"),
            pkt(PACKET.PUBREL, "down"),
            pkt(PACKET.PUBCOMP, "up"),
            pkt(PACKET.PUBREC, "up"),
        ]
    return [
        bytes,
        pkt(PACKET.PUBACK, "up"),
        pkt(PACKET.PUBLISH, "down"),
        pkt(PACKET.PUBACK, "up"),
        pkt(PACKET.PUBLISH, "down"),
    ]
}

/** Waits for the device's ROUND line of round r, publishing END again when it is slow. */
async function waitRound(dev, peer, topic, r, qos) {
    for (let attempt = 0; ; attempt++) {
        try {
            return await dev.waitFor(new RegExp(`^ROUND ${r} `), 15000)
        } catch (e) {
            if (attempt >= 3 || /exited/.test(e.message)) throw e
            // END itself may have been lost by the client under test
            await peer.publishAsync(`${topic}/end`, `${r},END`, { qos })
        }
    }
}

/**
 * The mosquitto log lines about one message sent to clientId: its PUBLISHes
 * and the PUBACK/PUBREC/PUBREL/PUBCOMP with its packet id until the id is
 * used for another message.
 */
function historyOf(log, clientId, topic) {
    const first = log.findIndex(l => l.includes(`Sending PUBLISH to ${clientId} `) && l.includes(`'${topic}'`))
    if (first < 0) return "never sent"
    const mid = /, m(\d+),/.exec(log[first])[1]
    const mine = new RegExp(`(to|from) ${clientId} \\((d\\d, q\\d, r\\d, m${mid},|m${mid}[,)]|Mid: ${mid}[,)])`)
    const out = []
    for (let i = first; i < log.length; i++) {
        const l = log[i]
        if (!mine.test(l)) continue
        if (i > first && l.includes("Sending PUBLISH") && !l.includes(`'${topic}'`)) break
        out.push(l.replace(/^\d+: /, "").replace(/, \.\.\. \(\d+ bytes\)\)/, ")"))
    }
    return out.join(" | ")
}

describe("inbound messages across cuts (mosquitto, fault proxy)", { skip: !mosquittoAvailable() && "mosquitto is not installed" }, () => {
    let broker
    before(async () => {
        broker = await startMosquitto({ config: ["max_queued_messages 10000"] })
    })
    after(async () => {
        if (broker) await broker.close()
    })

    for (const qos of [2, 1]) {
        test(`QoS ${qos}: ${COUNT} messages to the device, 5 cuts, ${SEEDS} seeds, persistent session: 0 lost${qos === 2 ? ", 0 duplicated" : ""}`, async () => {
            const proxy = await startFaultProxy({ upstreamPort: broker.port })
            const watcher = watchPackets(proxy)
            const peer = await connectPeer(broker.port)
            const clientId = `inb-q${qos}-${process.pid}`
            const topic = `inb/q${qos}`
            let dev
            const t0 = Date.now()
            try {
                dev = await startConfigured(
                    broker.port,
                    "test/devs/inbound-rounds.ts",
                    { port: proxy.port, clientId, topic: `${topic}/#`, qos, count: COUNT, rounds: SEEDS },
                    { timeoutMs: 60000 + SEEDS * 25000 }
                )
                await dev.waitFor("READY", 30000)
                const rounds = []
                for (let r = 0; r < SEEDS; r++) {
                    const seed = SEED0 + 1000 * qos + r
                    const cutRandom = rng(seed)
                    const pace = rng(seed ^ 0x5bd1e995)
                    const cutsBefore = proxy.cuts.length
                    const started = Date.now()
                    const seq = cutSequence(proxy, watcher, kindsFor(qos), cutRandom)
                    for (let i = 0; i < COUNT; i++) {
                        await peer.publishAsync(`${topic}/${r}/${i}`, `${r},${i}`, { qos })
                        const d = Math.floor(pace() * 21)
                        if (d > 0) await delay(d)
                    }
                    await peer.publishAsync(`${topic}/end`, `${r},END`, { qos })
                    const line = await waitRound(dev, peer, topic, r, qos)
                    const cuts = seq.done()
                    seq.stop()
                    const m = /unique=(\d+) dups=(\d+) lost=\[([^\]]*)\] losses=(\d+)/.exec(line)
                    assert.ok(m, line)
                    const res = {
                        seed,
                        cuts,
                        proxyCuts: proxy.cuts.length - cutsBefore,
                        unique: +m[1],
                        dups: +m[2],
                        lost: COUNT - +m[1],
                        missing: m[3],
                        ms: Date.now() - started,
                        plan: seq.log.join("; "),
                    }
                    rounds.push(res)
                    console.log(
                        `# QoS ${qos} seed ${seed}: ${COUNT} published, ${res.cuts} cuts, ${res.unique} delivered, ${res.lost} lost${res.missing ? ` (#${res.missing})` : ""}, ${res.dups} duplicated, ${res.ms} ms`
                    )
                    console.log(`#   cuts: ${res.plan}`)
                    if (res.lost > 0)
                        for (const n of res.missing.split(",").slice(0, 3))
                            console.log(`#   mosquitto for message ${n}: ${historyOf(broker.log, clientId, `${topic}/${r}/${n}`)}`)
                }
                await dev.waitFor("DONE", 20000)
                const r = await dev.done
                // duplicates that arrived after their round's line count too
                for (const line of r.lines.filter(l => l.startsWith("FINAL "))) {
                    const m = /^FINAL (\d+) unique=(\d+) dups=(\d+)/.exec(line)
                    const res = rounds[+m[1]]
                    if (res) {
                        res.dups = Math.max(res.dups, +m[3])
                        res.lost = Math.min(res.lost, COUNT - +m[2])
                    }
                }
                const lost = rounds.reduce((a, x) => a + x.lost, 0)
                const dups = rounds.reduce((a, x) => a + x.dups, 0)
                const badSeeds = rounds.filter(x => x.lost > 0 || (qos === 2 && x.dups > 0)).map(x => x.seed)
                console.log(
                    `# QoS ${qos} total: ${SEEDS} seeds x ${COUNT} messages, ${rounds.reduce((a, x) => a + x.cuts, 0)} cuts, ${lost} lost, ${dups} duplicated, seeds failing: ${badSeeds.length ? badSeeds.join(" ") : "none"}, ${Date.now() - t0} ms`
                )
                assert.equal(r.code, 0, r.lines.slice(-20).join("\n"))
                for (const x of rounds) assert.equal(x.cuts, 5, `seed ${x.seed}: only ${x.cuts} of 5 cuts happened (${x.plan})`)
                assert.deepEqual(
                    rounds.filter(x => x.lost > 0).map(x => `seed ${x.seed}: ${x.lost} lost (#${x.missing})`),
                    [],
                    "messages lost"
                )
                if (qos === 2)
                    assert.deepEqual(
                        rounds.filter(x => x.dups > 0).map(x => `seed ${x.seed}: ${x.dups} duplicated`),
                        [],
                        "QoS 2 delivered more than once"
                    )
            } finally {
                if (dev) await dev.kill()
                watcher.stop()
                await endPeer(peer)
                await proxy.close()
            }
        })
    }
})
