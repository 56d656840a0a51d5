// A hostile broker (a fake one: a real broker will not misbehave): every
// connection brings one malformed or mutated packet — mqtt-packet's
// parse-error cases, hand-written rule violations (wrong packet ids, a
// remaining length over the maximum packet size, unexpected packet types,
// a second CONNACK) and random mutations of valid packets: 300 in
// `npm test`, 2,000 in `npm run test:full` (HOSTILE_MUTATIONS=n overrides).
// The device must never panic; each case ends with an error reported and
// the connection closed (reconn false), or with a reconnect (reconn true).
import { test } from "node:test"
import assert from "node:assert/strict"
import { startFakeBroker, malformedCases, mutations } from "../tools/fakebroker.mjs"
import { scale } from "../tools/profile.mjs"
import { runDevice } from "../tools/sim.mjs"

const MUTATIONS = +(process.env.HOSTILE_MUTATIONS || scale(300, 2000))
const SEED = 4242
const PROBE_ID = 4242

/**
 * What the client did with a case: closed the link, stayed alive (it
 * acknowledged the probe that followed the case), or neither within `ms`.
 */
function outcome(conn, ms) {
    const deadline = Date.now() + ms
    const probe = (async () => {
        for (;;) {
            const left = deadline - Date.now()
            if (left <= 0) break
            try {
                const p = await conn.waitFor("puback", left)
                if (p.messageId === PROBE_ID) return "alive"
            } catch {
                break
            }
        }
        return conn.isClosed ? "closed" : "stuck"
    })()
    return Promise.race([conn.closed.then(() => "closed"), probe])
}

/** A fake broker that plays one case per connection, then the end signal. */
async function hostileBroker(cases, endWith) {
    const results = []
    let next = 0
    let first = endWith === "end"
    const broker = await startFakeBroker({
        onConnect: async conn => {
            await conn.waitFor("connect", 5000)
            if (first) {
                // reconn true: the first connect() must succeed (its failure
                // would be thrown to the application); then the link drops
                first = false
                conn.send({ cmd: "connack", returnCode: 0, sessionPresent: false })
                const sub = await conn.waitFor("subscribe", 5000)
                conn.send({ cmd: "suback", messageId: sub.messageId, granted: [0] })
                await conn.waitFor("pingreq", 300).catch(() => {}) // let the SUBACK land
                conn.close()
                return
            }
            const c = cases[next++]
            if (!c) {
                if (endWith === "refuse") conn.send({ cmd: "connack", returnCode: 5, sessionPresent: false })
                else {
                    conn.send({ cmd: "connack", returnCode: 0, sessionPresent: false })
                    conn.send({ cmd: "publish", topic: "END", payload: "", qos: 0, retain: false, dup: false })
                }
                await Promise.race([conn.closed, new Promise(r => setTimeout(r, 5000))])
                conn.close()
                return
            }
            if (c.phase !== "connack") conn.send({ cmd: "connack", returnCode: 0, sessionPresent: false })
            conn.sendRaw(c.bytes)
            if (c.phase !== "connack")
                conn.send({
                    cmd: "publish",
                    topic: "probe",
                    payload: "p",
                    qos: 1,
                    messageId: PROBE_ID,
                    retain: false,
                    dup: false,
                })
            // a malformed case must be refused: give the client time; a
            // mutation may be valid or incomplete: a short bound suffices
            const how = await outcome(conn, c.op ? 150 : 2000)
            results.push({ case: c, how })
            if (process.env.HOSTILE_TRACE) console.log(`${Date.now() % 100000} ${results.length} ${c.name}: ${how}`)
            if (how !== "closed") conn.close()
        },
    })
    return { broker, results }
}

function tally(results) {
    const t = { closed: 0, alive: 0, stuck: 0 }
    for (const r of results) t[r.how]++
    return t
}

test(`hostile broker, reconn false: every malformed case is refused, ${MUTATIONS} mutations survive`, async () => {
    const malformed = malformedCases()
    const muts = mutations(SEED, undefined, MUTATIONS).map(m => ({
        ...m,
        phase: m.bytes[0] >> 4 === 2 || /connack/i.test(m.base || "") ? "connack" : "session",
        legal: true, // a mutation may still be a valid packet
    }))
    const cases = [...malformed, ...muts]
    const { broker, results } = await hostileBroker(cases, "refuse")
    let dev
    try {
        dev = await runDevice("test/devs/hostile.ts", { port: broker.port, reconn: false }, { timeoutMs: 600000 })
        const r = await dev.done
        assert.equal(r.code, 0, r.lines.slice(-30).join("\n"))
        assert.equal(results.length, cases.length)
        const bad = results.filter(x => !x.case.legal && x.how !== "closed")
        const m = tally(results.slice(0, malformed.length))
        const u = tally(results.slice(malformed.length))
        const summary = r.lines.find(l => l.startsWith("SUMMARY"))
        console.log(
            `# hostile broker: ${malformed.length} malformed cases (${m.closed} refused and closed, ${m.alive} legal and ignored), ${MUTATIONS} mutations (seed ${SEED}: ${u.closed} refused, ${u.alive} accepted as valid, ${u.stuck} incomplete frames ended by the broker), 0 panics`
        )
        console.log(`# device: ${summary}`)
        assert.deepEqual(
            bad.map(x => `${x.case.name}: ${x.how}`),
            [],
            "malformed cases the client did not refuse"
        )
        const legalIgnored = results.filter(x => x.case.legal && x.case.source !== undefined && !x.case.op)
        for (const x of legalIgnored) assert.equal(x.how, "alive", `${x.case.name} should be ignored`)
    } finally {
        if (dev) await dev.kill()
        await broker.close()
    }
})

test("hostile broker, reconn true: malformed packets end in reconnects", async () => {
    const cases = malformedCases().filter(c => !c.legal && c.phase === "session")
    const { broker, results } = await hostileBroker(cases, "end")
    let dev
    try {
        dev = await runDevice("test/devs/hostile.ts", { port: broker.port, reconn: true }, { timeoutMs: 120000 })
        const r = await dev.done
        assert.equal(r.code, 0, r.lines.slice(-30).join("\n"))
        assert.equal(results.length, cases.length)
        assert.deepEqual(results.filter(x => x.how !== "closed").map(x => x.case.name), [])
        // one connection before the cases, one per case, one for the end
        assert.equal(broker.connections.length, cases.length + 2)
        console.log(
            `# hostile broker, reconn true: ${cases.length} malformed cases, each closed by the client and followed by a new connection`
        )
    } finally {
        if (dev) await dev.kill()
        await broker.close()
    }
})
