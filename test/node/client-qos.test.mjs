// The client against real brokers (aedes and mosquitto), checked by an
// independent MQTT.js peer: QoS 0/1/2 both ways (QoS = min(publish,
// subscription)), empty and 16 KB payloads, a multi-byte UTF-8 topic,
// unsubscribe, retained messages set and cleared, the will on a dead
// device and no will after disconnect(), and getMqttsta().
//
// Each test runs one device program (test/devs/qos-*.ts, retain-*.ts,
// will-*.ts) in the simulator; the program prints what it sees and the test
// drives it step by step by publishing from a peer after the program has
// printed that it is ready for the next step.

import assert from "node:assert/strict"
import { after, before, describe, test } from "node:test"
import {
    brokerKinds,
    collect,
    connectPeer,
    endPeer,
    startBroker,
    withTimeout,
} from "../tools/brokers.mjs"
import { runDevice } from "../tools/sim.mjs"

/** bound of each simulator run (its own --test-timeout, killed 5 s later) */
const DEVICE_MS = 30000
/** bound of each wait for a device line or for the peer's messages */
const WAIT_MS = 15000
/**
 * How long to keep listening for a message that must NOT arrive, after an
 * event that comes later than it would have (a sentinel). aedes streams
 * retained messages from its persistence and publishes wills
 * asynchronously, so a sentinel published later by another path is not a
 * strict bound there; this grace period covers that. Nothing is expected
 * to arrive, so waiting the full time is the cost of a passing test.
 */
const GRACE_MS = 300
const BIG = 16384
const UTF8 = "ünï-日本-€𝄞"

const delay = ms => new Promise(r => setTimeout(r, ms))

let seq = 0
function uid(name) {
    return `${name}-${process.pid}-${++seq}-${Date.now().toString(36)}`
}

/** Byte i of a big payload; test/devs/qos-matrix.ts has the same. */
function patternByte(i) {
    return (i * 7 + (i >> 8)) & 0xff
}

function bigPayload(size) {
    const b = Buffer.alloc(size)
    for (let i = 0; i < size; i++) b[i] = patternByte(i)
    return b
}

/** The device's 24-bit hash (test/devs/qos-matrix.ts). */
function hash(b) {
    let h = 0
    for (let i = 0; i < b.length; i++) h = (h * 31 + b[i]) & 0xffffff
    return h
}

/**
 * "IN <topic> q=<qos> r=<retain> [d=<dup>] len=<n> <rest>" printed by the
 * device programs for each received message.
 */
function parseIn(line) {
    const m = /^IN (\S+) q=(\d) r=(\d)(?: d=(\d))? len=(\d+) (.*)$/.exec(line)
    if (!m) return null
    const rest = m[6]
    const small = /^\[(.*)\]$/.exec(rest)
    return {
        topic: m[1],
        qos: +m[2],
        retain: m[3] === "1",
        dup: m[4] === "1",
        len: +m[5],
        payload: small ? small[1] : null,
        rest,
    }
}

function escapeRe(s) {
    return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
}

/** A pattern for the device's line about message {topic, payload, qos}. */
function inLine({ topic, payload, qos }) {
    return new RegExp(
        `^IN ${escapeRe(topic)} q=${qos} .*len=${Buffer.byteLength(payload)} \\[${escapeRe(payload)}\\]$`
    )
}

/** The lines from the one equal to `from` up to, not including, the one equal to `to`. */
function between(lines, from, to) {
    const i = from ? lines.findIndex(l => l === from) : 0
    const j = to ? lines.findIndex(l => l === to) : lines.length
    assert.ok(i >= 0 && j >= i, `no ${from}..${to} in:\n${lines.join("\n")}`)
    return lines.slice(i, j)
}

/**
 * Runs a device program and hands it to body; the simulator is killed in
 * any case when body ends.
 */
async function withDevice(module, params, body) {
    const trace = !!process.env.QOS_TRACE
    const t0 = Date.now()
    const dev = await runDevice(module, params, {
        timeoutMs: DEVICE_MS,
        // QOS_TRACE=1 prints the device's lines with ms since the start
        onLine: trace
            ? l => console.error(`${Date.now() - t0} ${l}`)
            : undefined,
    })
    if (trace) console.error(`${Date.now() - t0} built and started ${module}`)
    try {
        return await body(dev)
    } finally {
        await dev.kill()
    }
}

/** Awaits the program's exit and asserts it ended with exit code 0. */
async function expectExit0(dev) {
    const res = await withTimeout(
        dev.done,
        WAIT_MS,
        "the device program to exit"
    )
    assert.equal(
        res.code,
        0,
        `device exit code ${res.code} (signal ${res.signal}, timedOut ${res.timedOut}):\n` +
            res.output.slice(-40).join("\n")
    )
    return res
}

/**
 * A promise that resolves when the broker has dropped the client: the
 * 'clientDisconnect' event of aedes, the log line of mosquitto. Create it
 * before the action that makes the client go.
 */
function brokerDropped(broker, clientId, ms = WAIT_MS) {
    if (broker.kind === "aedes") {
        let onGone
        const p = new Promise(resolve => {
            onGone = client => {
                if (client.id === clientId) resolve()
            }
            broker.broker.on("clientDisconnect", onGone)
        })
        return withTimeout(
            p,
            ms,
            `aedes clientDisconnect of ${clientId}`
        ).finally(() => broker.broker.off("clientDisconnect", onGone))
    }
    const from = broker.log.length
    const esc = escapeRe(clientId)
    return broker.waitForLog(
        new RegExp(
            `Client ${esc} (disconnected|closed its connection)|Socket error on client ${esc}`
        ),
        ms,
        from
    )
}

for (const kind of brokerKinds()) {
    describe(`client QoS, retain, will on ${kind}`, () => {
        let broker
        const peers = []
        const peer = async opts => {
            const p = await connectPeer(broker.port, opts)
            peers.push(p)
            return p
        }

        before(async () => {
            broker = await startBroker(kind)
        })

        after(async () => {
            for (const p of peers) await endPeer(p)
            if (broker) await broker.close()
        })

        /**
         * The QoS a subscriber gets: min(publish, subscription), except that
         * aedes 1.2.0 downgrades only when the subscription's filter is the
         * topic itself (lib/client.js deliverQoS looks up
         * `subscriptions[packet.topic]`), so through a wildcard filter it
         * delivers the QoS as published (moscajs/aedes#208 was fixed for
         * exact filters only).
         */
        const deliveredQos = (pubQos, subQos, wildcard) =>
            kind === "aedes" && wildcard && subQos > 0
                ? pubQos
                : Math.min(pubQos, subQos)

        test("QoS 0/1/2 both ways, empty/UTF-8/16 KB payloads, unsubscribe, getMqttsta", async () => {
            const clientId = uid("qos")
            const base = `t/${clientId}`
            const n = 3
            // device -> peer: one peer subscribed at QoS 2 (QoS as published),
            // one at QoS 1 (QoS 2 downgraded to 1, except on aedes: see
            // deliveredQos)
            const sub2 = await collect(await peer(), `${base}/out/#`, {
                qos: 2,
            })
            const sub1 = await collect(await peer(), `${base}/out/#`, {
                qos: 1,
            })
            const pub = await peer()

            const expectedOut = []
            for (let q = 0; q <= 2; q++) {
                for (let i = 0; i < n; i++)
                    expectedOut.push([
                        `${base}/out/q${q}/${i}`,
                        Buffer.from(`q${q}-${i}`),
                        q,
                    ])
                expectedOut.push([
                    `${base}/out/empty/q${q}`,
                    Buffer.alloc(0),
                    q,
                ])
                expectedOut.push([
                    `${base}/out/${UTF8}/q${q}`,
                    Buffer.from(`${UTF8} q${q}`),
                    q,
                ])
            }
            const big = bigPayload(BIG)
            for (let q = 0; q <= 2; q++)
                expectedOut.push([`${base}/out/big/q${q}`, big, q])
            expectedOut.push([`${base}/out/end`, Buffer.from("end"), 2])

            await withDevice(
                "test/devs/qos-matrix.ts",
                {
                    port: broker.port,
                    clientId,
                    base,
                    n,
                    bigSize: BIG,
                    utf8: UTF8,
                },
                async dev => {
                    await dev.waitFor("SUBSCRIBED", WAIT_MS)
                    await dev.waitFor("PUBLISHED", WAIT_MS)
                    // `end` is the device's last publish: when it is in, all are
                    await sub2.waitForCount(expectedOut.length, WAIT_MS)
                    await sub1.waitForCount(expectedOut.length, WAIT_MS)

                    // peer -> device: QoS 0, 1, 2 to each filter, one group at
                    // a time (the device drops QoS 0 when its incoming queue
                    // is full, so the peer does not run ahead of it).
                    // [topic, QoS of its subscription, filter has a wildcard]
                    const groups = [
                        [`${base}/in/s0/x`, 0, true],
                        [`${base}/in/s1/a/b`, 1, true],
                        [`${base}/in/y/s2`, 2, true],
                        [`${base}/in/${UTF8}/s2`, 2, true],
                        [`${base}/in/exact1`, 1, false],
                    ]
                    const expectedIn = []
                    const sendGroup = async msgs => {
                        for (const m of msgs) {
                            await pub.publishAsync(m.topic, m.payload, {
                                qos: m.pubQos,
                            })
                            expectedIn.push(m)
                        }
                        // in order on one connection: when the last one is in,
                        // so are the others (or they never will be)
                        await dev.waitFor(
                            inLine(msgs[msgs.length - 1]),
                            WAIT_MS
                        )
                    }
                    const msg = (topic, payload, pubQos, subQos, wildcard) => ({
                        topic,
                        payload,
                        pubQos,
                        qos: deliveredQos(pubQos, subQos, wildcard),
                    })
                    for (const [topic, subQos, wildcard] of groups)
                        await sendGroup(
                            [0, 1, 2].map(q =>
                                msg(
                                    topic,
                                    `p${q}:${topic.slice(base.length)}`,
                                    q,
                                    subQos,
                                    wildcard
                                )
                            )
                        )
                    // empty payloads, one topic each so that every line is unique
                    await sendGroup(
                        [0, 1, 2].map(q =>
                            msg(`${base}/in/e${q}/s2`, "", q, 2, true)
                        )
                    )
                    await pub.publishAsync(`${base}/in/big/s2`, big, { qos: 2 })
                    await dev.waitFor(`IN ${base}/in/big/s2 `, WAIT_MS)
                    await pub.publishAsync(`${base}/ctl`, "END-IN", { qos: 2 })
                    await dev.waitFor("RECEIVED", WAIT_MS)

                    // unsubscribe: "gone" is published first, then SENTINEL on a
                    // filter still subscribed; both from one connection to one
                    // connection, so "gone" would arrive before SENTINEL
                    await dev.waitFor("UNSUBSCRIBED", WAIT_MS)
                    await pub.publishAsync(`${base}/in/s1/a/b`, "gone", {
                        qos: 1,
                    })
                    await pub.publishAsync(`${base}/in/y/s2`, "SENTINEL", {
                        qos: 1,
                    })
                    const res = await expectExit0(dev)
                    const lines = res.lines

                    // ---- state
                    assert.ok(
                        lines.includes("STATE before=-1"),
                        lines.join("\n")
                    )
                    assert.ok(
                        lines.includes("STATE connected=0 rc=0"),
                        lines.join("\n")
                    )
                    assert.ok(
                        lines.includes("STATE disconnected=-1"),
                        lines.join("\n")
                    )
                    assert.ok(
                        lines.includes("STATE final=-1"),
                        lines.join("\n")
                    )
                    for (const call of [
                        "publish",
                        "subscribe",
                        "connect",
                        "disconnect",
                    ]) {
                        const l = lines.find(x =>
                            x.startsWith(`AFTER ${call} `)
                        )
                        assert.match(
                            l || "",
                            new RegExp(`^AFTER ${call} threw .*disconnected`),
                            `${call} after disconnect(): ${l}`
                        )
                    }
                    assert.ok(
                        lines.includes("GRANTED 0 1 2 1"),
                        lines.join("\n")
                    )

                    // ---- device -> peer: every message exactly once, QoS as
                    // min(publish, subscription), payloads intact
                    const key = (topic, payload, qos) =>
                        `${qos} ${topic} ${payload.toString("hex")}`
                    const got = c =>
                        c.messages
                            .map(m => key(m.topic, m.payload, m.qos))
                            .sort()
                    const want = maxQos =>
                        expectedOut
                            .map(([t, p, q]) =>
                                key(t, p, deliveredQos(q, maxQos, true))
                            )
                            .sort()
                    assert.deepEqual(
                        got(sub2),
                        want(2),
                        "peer subscribed at QoS 2"
                    )
                    assert.deepEqual(
                        got(sub1),
                        want(1),
                        "peer subscribed at QoS 1"
                    )
                    for (const c of [sub1, sub2]) {
                        assert.ok(c.messages.every(m => !m.retain && !m.dup))
                        const bigs = c.messages.filter(m =>
                            m.topic.includes("/out/big/")
                        )
                        assert.equal(bigs.length, 3)
                        for (const m of bigs)
                            assert.ok(m.payload.equals(big), m.topic)
                    }

                    // ---- peer -> device
                    const inLines = between(lines, "SUBSCRIBED", "UNSUBSCRIBED")
                        .map(parseIn)
                        .filter(m => m)
                    const small = inLines.filter(m => m.payload !== null)
                    for (const e of expectedIn) {
                        const hits = small.filter(
                            m => m.topic === e.topic && m.payload === e.payload
                        )
                        assert.equal(
                            hits.length,
                            1,
                            `${e.topic} [${e.payload}] arrived ${hits.length} times:\n${lines.join("\n")}`
                        )
                        assert.equal(
                            hits[0].qos,
                            e.qos,
                            `QoS of ${e.topic} [${e.payload}]`
                        )
                        assert.equal(hits[0].retain, false)
                        assert.equal(hits[0].dup, false)
                        assert.equal(hits[0].len, Buffer.byteLength(e.payload))
                    }
                    assert.equal(
                        small.length,
                        expectedIn.length,
                        lines.join("\n")
                    )
                    const bigIn = inLines.filter(m => m.payload === null)
                    assert.equal(bigIn.length, 1, lines.join("\n"))
                    assert.equal(
                        `${bigIn[0].topic} q=${bigIn[0].qos} len=${bigIn[0].len} ${bigIn[0].rest}`,
                        `${base}/in/big/s2 q=2 len=${BIG} first=${big[0]} last=${big[BIG - 1]} hash=${hash(big)}`
                    )
                    assert.ok(
                        lines.includes(`RECEIVED ${expectedIn.length + 2}`),
                        lines.join("\n")
                    )

                    // ---- unsubscribe
                    const afterUnsub = between(
                        lines,
                        "UNSUBSCRIBED",
                        "STATE disconnected=-1"
                    )
                        .map(parseIn)
                        .filter(m => m)
                    assert.deepEqual(
                        afterUnsub.map(m => [m.topic, m.payload, m.qos]),
                        [[`${base}/in/y/s2`, "SENTINEL", 1]],
                        "after unsubscribe only the other filter delivers"
                    )
                }
            )
        })

        test("retained messages set, received and cleared; no will after disconnect()", async () => {
            const clientId = uid("retain")
            const base = `t/${clientId}`
            const pub = await peer()
            // set before the device subscribes: it must get it with retain set
            await pub.publishAsync(`${base}/pre`, "preset", {
                qos: 1,
                retain: true,
            })
            const will = await collect(await peer(), `${base}/will`, { qos: 2 })
            const ctl = cmd => pub.publishAsync(`${base}/ctl`, cmd, { qos: 1 })

            await withDevice(
                "test/devs/retain-will.ts",
                { port: broker.port, clientId, base },
                async dev => {
                    await dev.waitFor("SUBSCRIBED", WAIT_MS)
                    const pre = parseIn(
                        await dev.waitFor(`IN ${base}/pre `, WAIT_MS)
                    )
                    assert.deepEqual(
                        [pre.payload, pre.retain, pre.qos],
                        ["preset", true, 1],
                        "a retained message set before subscribing"
                    )
                    // the same topic published live: retain flag clear
                    await pub.publishAsync(`${base}/pre`, "live", { qos: 1 })
                    const live = parseIn(
                        await dev.waitFor(
                            `IN ${base}/pre q=1 r=0 len=4 [live]`,
                            WAIT_MS
                        )
                    )
                    assert.equal(live.retain, false)

                    // the device retains "kept": a new subscription gets it, flagged
                    await ctl("set")
                    await dev.waitFor("RETAINED_SET", WAIT_MS)
                    const p1 = await peer()
                    const got = await collect(p1, `${base}/r`, { qos: 2 })
                    const [kept] = await got.waitForCount(1, WAIT_MS)
                    assert.deepEqual(
                        [kept.payload.toString(), kept.retain, kept.qos],
                        ["kept", true, 1]
                    )
                    got.stop()
                    await endPeer(p1)

                    // the device clears it with an empty retained payload
                    await ctl("clear")
                    await dev.waitFor("RETAINED_CLEARED", WAIT_MS)
                    const p2 = await peer()
                    const none = await collect(p2, `${base}/r`, { qos: 2 })
                    // a retained message goes out right after SUBACK, before
                    // anything published later; GRACE_MS covers aedes, which
                    // streams it asynchronously
                    await pub.publishAsync(`${base}/r`, "probe", { qos: 1 })
                    await none.waitForCount(1, WAIT_MS)
                    await delay(GRACE_MS)
                    assert.deepEqual(
                        none.messages.map(m => [
                            m.payload.toString(),
                            m.retain,
                        ]),
                        [["probe", false]],
                        "nothing retained after the empty retained publish"
                    )
                    none.stop()
                    await endPeer(p2)

                    // graceful disconnect: the broker drops the will
                    const dropped = brokerDropped(broker, clientId)
                    await ctl("bye")
                    await dev.waitFor("DONE", WAIT_MS)
                    await dropped
                    // a will would be published as the broker drops the client,
                    // before this probe from another connection; GRACE_MS covers
                    // aedes, which publishes it asynchronously
                    await pub.publishAsync(`${base}/will`, "probe", { qos: 1 })
                    await will.waitForCount(1, WAIT_MS)
                    await delay(GRACE_MS)
                    assert.deepEqual(
                        will.messages.map(m => m.payload.toString()),
                        ["probe"],
                        "no will after disconnect()"
                    )
                    const res = await expectExit0(dev)
                    assert.ok(
                        res.lines.includes("STATE connected=0"),
                        res.lines.join("\n")
                    )
                    assert.ok(
                        res.lines.includes("STATE disconnected=-1"),
                        res.lines.join("\n")
                    )
                    if (kind === "mosquitto")
                        assert.ok(
                            broker.log.some(l =>
                                l.includes(`Client ${clientId} disconnected.`)
                            ),
                            "mosquitto saw a DISCONNECT packet"
                        )
                }
            )
        })

        test("the will is published when the device dies", async () => {
            const clientId = uid("will")
            const topic = `t/${clientId}/will`
            const message = `${clientId} died`
            const will = await collect(await peer(), topic, { qos: 2 })
            await withDevice(
                "test/devs/will-kill.ts",
                {
                    port: broker.port,
                    clientId,
                    topic,
                    message,
                    retain: true,
                    qos: 2,
                },
                async dev => {
                    assert.equal(
                        await dev.waitFor("READY", WAIT_MS),
                        "READY state=0"
                    )
                    assert.equal(
                        will.messages.length,
                        0,
                        "no will while connected"
                    )
                    const dropped = brokerDropped(broker, clientId)
                    const res = await dev.kill()
                    assert.equal(res.signal, "SIGKILL")
                    await dropped
                    const [w] = await will.waitForCount(1, WAIT_MS)
                    assert.deepEqual(
                        [w.topic, w.payload.toString(), w.qos],
                        [topic, message, 2]
                    )
                    // the will was retained: a new subscription gets it, flagged
                    const late = await collect(await peer(), topic, { qos: 2 })
                    const [r] = await late.waitForCount(1, WAIT_MS)
                    assert.deepEqual(
                        [r.payload.toString(), r.retain, r.qos],
                        [message, true, 2]
                    )
                    late.stop()
                    if (kind === "mosquitto")
                        assert.ok(
                            !broker.log.some(l =>
                                l.includes(`Client ${clientId} disconnected.`)
                            ),
                            "no DISCONNECT packet from a killed device"
                        )
                }
            )
        })
    })
}
