// Issue 10, measurement 3 on mosquitto (the scenario of the Eclipse Paho
// interoperability suite): the device subscribes at QoS 2 with a persistent
// session and stops reading while a peer publishes a QoS 1 and a QoS 2
// message; then (a) disconnect() and a new client object with
// connect(false), or (b) close() and the same object with connect(false).
// Every message is delivered, QoS 2 exactly once, and mosquitto's log
// (log_type all) shows no PUBCOMP from the device without a PUBREL for it
// on the same connection (nor a PUBREC for an unknown packet id). QoS 1 is
// at least once; whether it came twice is printed.
import { test, describe, before, after } from "node:test"
import assert from "node:assert/strict"
import { mosquittoAvailable, startMosquitto, connectPeer, endPeer } from "../tools/brokers.mjs"
import { scale } from "../tools/profile.mjs"
import { startConfigured } from "../tools/devconfig.mjs"

const ROUNDS = scale(3, 10)
const HOLD_MS = 2000

/**
 * Protocol violations of clientId's QoS 2 receiver side in a mosquitto log:
 * a PUBCOMP for an id with no PUBREL left unanswered on that connection
 * (each PUBREL the broker sends may be answered by one PUBCOMP), and
 * mosquitto's own warnings.
 * @param {string[]} log
 * @param {string} clientId
 * @returns {{ violations: string[], pubrels: number, pubcomps: number }}
 */
export function qos2Violations(log, clientId) {
    const violations = []
    let released = new Map() // id -> PUBRELs not yet answered on this connection
    let pubrels = 0
    let pubcomps = 0
    let conn = 0
    for (const line of log) {
        if (line.includes(` as ${clientId} (`) && line.includes("New client connected")) {
            conn++
            released = new Map()
            continue
        }
        let m = new RegExp(`Sending PUBREL to ${clientId} \\(m(\\d+)\\)`).exec(line)
        if (m) {
            pubrels++
            released.set(m[1], (released.get(m[1]) || 0) + 1)
            continue
        }
        m = new RegExp(`Received PUBCOMP from ${clientId} \\(Mid: (\\d+)`).exec(line)
        if (m) {
            pubcomps++
            const open = released.get(m[1]) || 0
            if (open > 0) released.set(m[1], open - 1)
            else violations.push(`connection ${conn}: PUBCOMP for ${m[1]} without its PUBREL: ${line}`)
            continue
        }
        if (line.includes(clientId) && /unknown packet identifier|no message found/i.test(line)) violations.push(`connection ${conn}: ${line}`)
    }
    return { violations, pubrels, pubcomps }
}

describe("redelivery on reconnect (mosquitto, persistent session)", { skip: !mosquittoAvailable() && "mosquitto is not installed" }, () => {
    let broker
    before(async () => {
        broker = await startMosquitto()
    })
    after(async () => {
        if (broker) await broker.close()
    })

    for (const mode of ["disconnect", "close"]) {
        const how = mode === "disconnect" ? "(a) disconnect() + a new client object" : "(b) close() + the same object"
        test(`${how}, connect(false), ${ROUNDS} rounds: every message delivered, QoS 2 once, no PUBCOMP without its PUBREL`, async () => {
            const clientId = `rd-${mode}-${process.pid}`
            const topic = `rd/${mode}`
            const peer = await connectPeer(broker.port)
            const logFrom = broker.log.length
            let dev
            try {
                dev = await startConfigured(
                    broker.port,
                    "test/devs/redelivery.ts",
                    { port: broker.port, clientId, topic, mode, rounds: ROUNDS, holdMs: HOLD_MS },
                    { timeoutMs: 60000 + ROUNDS * 15000 }
                )
                const rounds = []
                for (let r = 0; r < ROUNDS; r++) {
                    await dev.waitFor(new RegExp(`^READY ${r}$`), 30000)
                    const from = broker.log.length
                    await peer.publishAsync(`${topic}/q1`, `${r},q1`, { qos: 1 })
                    await peer.publishAsync(`${topic}/q2`, `${r},q2`, { qos: 2 })
                    const reconnected = await dev.waitFor(new RegExp(`^RECONNECTED ${r} `), HOLD_MS + 15000)
                    // the scenario needs both messages sent to the device before it let go
                    const window = broker.log.slice(from)
                    const leftAt = window.findIndex(
                        l =>
                            l.includes(`Received DISCONNECT from ${clientId}`) ||
                            l.includes(`Client ${clientId} closed its connection`) ||
                            l.includes(`Client ${clientId} already connected`) ||
                            (l.includes("New client connected") && l.includes(` as ${clientId} (`))
                    )
                    const sentAt = ["q1", "q2"].map(q => window.findIndex(l => l.includes(`Sending PUBLISH to ${clientId} (d0`) && l.includes(`'${topic}/${q}'`)))
                    assert.ok(leftAt > 0 && sentAt.every(i => i >= 0 && i < leftAt), `round ${r}: mosquitto had not sent both messages before the device let go (sent at ${sentAt}, left at ${leftAt})`)
                    await peer.publishAsync(`${topic}/end`, `${r},end`, { qos: 2 })
                    const line = await dev.waitFor(new RegExp(`^ROUND ${r} `), 15000)
                    const m = /q1=(\d+) q2=(\d+) dup=(\d+)/.exec(line)
                    rounds.push({ q1: +m[1], q2: +m[2], dup: +m[3], session: /session=true/.test(reconnected) })
                }
                await dev.waitFor("DONE", 15000)
                const res = await dev.done
                for (const l of res.lines.filter(l => l.startsWith("FINAL "))) {
                    const m = /^FINAL (\d+) q1=(\d+) q2=(\d+)/.exec(l)
                    const x = rounds[+m[1]]
                    x.q1 = Math.max(x.q1, +m[2])
                    x.q2 = Math.max(x.q2, +m[3])
                }
                const { violations, pubrels, pubcomps } = qos2Violations(broker.log.slice(logFrom), clientId)
                const q2Bad = rounds.map((x, r) => (x.q2 !== 1 ? `round ${r}: QoS 2 delivered ${x.q2} times` : null)).filter(Boolean)
                const q1Lost = rounds.map((x, r) => (x.q1 < 1 ? `round ${r}: QoS 1 not delivered` : null)).filter(Boolean)
                const q1Twice = rounds.filter(x => x.q1 > 1).length
                console.log(
                    `# ${how}: ${ROUNDS} rounds; QoS 2 delivered ${rounds.map(x => x.q2).join("/")} times, QoS 1 ${rounds.map(x => x.q1).join("/")} times (${q1Twice} of ${ROUNDS} rounds twice or more), with DUP ${rounds.map(x => x.dup).join("/")}, session present ${rounds.map(x => (x.session ? 1 : 0)).join("/")}; mosquitto: ${pubrels} PUBREL sent, ${pubcomps} PUBCOMP received, ${violations.length} PUBCOMP without PUBREL or warnings`
                )
                for (const v of violations.slice(0, 5)) console.log(`#   ${v}`)
                assert.equal(res.code, 0, res.lines.slice(-20).join("\n"))
                assert.deepEqual(q1Lost, [], "QoS 1 lost")
                assert.deepEqual(q2Bad, [], "QoS 2 not exactly once")
                assert.deepEqual(violations, [], "QoS 2 protocol violations in the mosquitto log")
                assert.ok(rounds.every(x => x.session), "the broker kept the session")
            } finally {
                if (dev) await dev.kill()
                await endPeer(peer)
            }
        })
    }
})
