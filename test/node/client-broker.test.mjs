// The client in the simulator against real brokers (mosquitto 2.0, aedes):
// refused credentials, ACL refusals, MQTT 3.1 and 3.1.1, TLS, keepalive,
// several fibers sharing one client, bad arguments.

import assert from "node:assert/strict"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, describe, test } from "node:test"
import {
    dynsecConfig,
    dynsecPluginPath,
    writePasswordFile,
} from "../fixtures/mosquitto-auth.mjs"
import { makeTestCerts, opensslAvailable } from "../fixtures/tls.mjs"
import {
    collect,
    connectPeer,
    endPeer,
    mosquittoAvailable,
    startAedes,
    startMosquitto,
} from "../tools/brokers.mjs"
import { scale } from "../tools/profile.mjs"
import { runDevice } from "../tools/sim.mjs"

const MOSQ = mosquittoAvailable()
const NO_MOSQ =
    !MOSQ &&
    "mosquitto not installed (or MOSQUITTO=none): mosquitto test SKIPPED"
const DEVICE_MS = 30000

// client ids of this run (mosquitto's 3.1 limit: 23 characters)
const tag = process.pid.toString(36)
const id = name => `${name}-${tag}`

const escape = s => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/**
 * Runs a device program to its end, which must be exit 0 (ds.restart());
 * it is killed in any case.
 * @returns {Promise<import("../tools/sim.mjs").DeviceResult>}
 */
async function withDevice(module, params, opts = {}) {
    const dev = await runDevice(module, params, {
        timeoutMs: DEVICE_MS,
        ...opts,
    })
    try {
        const res = await dev.done
        const out = res.output.join("\n")
        assert.equal(res.timedOut, false, `device timed out:\n${out}`)
        assert.equal(res.code, 0, `device exit code ${res.code}:\n${out}`)
        return res
    } finally {
        await dev.kill()
    }
}

/** The one program line starting with `prefix` (asserts there is exactly one). */
function lineOf(res, prefix) {
    const found = res.lines.filter(l => l.startsWith(prefix))
    assert.equal(
        found.length,
        1,
        `expected one line starting with "${prefix}", got ${found.length}:\n${res.lines.join("\n")}`
    )
    return found[0]
}

function noLine(res, re) {
    const bad = res.lines.filter(l => re.test(l))
    assert.deepEqual(bad, [], `unexpected lines:\n${res.lines.join("\n")}`)
}

/** mosquitto log lines matching `re` */
function logLines(m, re) {
    return m.log.filter(l => re.test(l))
}

/**
 * Asserts mosquitto never dropped `cid` and that it left with DISCONNECT.
 * The log is read asynchronously: waits (bounded) until mosquitto logged
 * the end of the connection.
 */
async function assertCleanSession(m, cid) {
    const c = escape(cid)
    const logText = () => m.log.slice(-60).join("\n")
    await m.waitForLog(
        new RegExp(
            `Client ${c} (disconnected|closed its connection|has exceeded timeout)|` +
                `(Socket error|Bad socket read/write) on client ${c}`
        ),
        5000
    )
    assert.equal(
        logLines(m, new RegExp(`New client connected from .* as ${c} `)).length,
        1,
        `one connection of ${cid} expected:\n${logText()}`
    )
    assert.deepEqual(
        logLines(
            m,
            new RegExp(
                `Client ${c} (has exceeded timeout|closed its connection|disconnected, not authorised)|` +
                    `Socket error on client ${c}|Bad socket read/write on client ${c}|` +
                    `Client ${c} already connected`
            )
        ),
        [],
        `mosquitto dropped ${cid}, or ${cid} left without DISCONNECT:\n${logText()}`
    )
    const disc = m.log.findIndex(l =>
        l.includes(`Received DISCONNECT from ${cid}`)
    )
    assert.ok(disc >= 0, `no DISCONNECT from ${cid}:\n${logText()}`)
    const gone = m.log.findIndex(l => l.includes(`Client ${cid} disconnected`))
    assert.ok(gone > disc, `disconnected before DISCONNECT:\n${logText()}`)
}

function tempDir() {
    return mkdtempSync(join(tmpdir(), "umqtt-cb-"))
}

// ------------------------------------------------------------ credentials

const REFUSED_RE =
    /^REFUSED (\S+) try=(\d+) state=(-?\d+) mqtt=(\w+) code=(-?\d+) name=(\S+) msg=(.*)$/

function refusals(res) {
    return res.lines
        .map(l => REFUSED_RE.exec(l))
        .filter(Boolean)
        .map(m => ({
            id: m[1],
            try: +m[2],
            state: +m[3],
            mqtt: m[4] === "true",
            code: +m[5],
            name: m[6],
            msg: m[7],
        }))
}

describe("wrong credentials", () => {
    test(
        "mosquitto password_file: CONNACK 5 as MQTTException, then right password works",
        {
            skip: NO_MOSQ,
            timeout: 60000,
        },
        async () => {
            const dir = tempDir()
            let m, peer
            try {
                const pwFile = join(dir, "passwd")
                writePasswordFile(pwFile, {
                    devuser: "right-pw",
                    peer: "peer-pw",
                })
                m = await startMosquitto({
                    config: [
                        "allow_anonymous false",
                        `password_file ${pwFile}`,
                    ],
                })
                peer = await connectPeer(m.port, {
                    username: "peer",
                    password: "peer-pw",
                })
                const topic = `cb/${tag}/auth`
                const got = await collect(peer, `${topic}/out`, { qos: 1 })
                const bad = [
                    {
                        clientId: id("authpw"),
                        user: "devuser",
                        password: "wrong",
                        tries: 2,
                    },
                    {
                        clientId: id("authnouser"),
                        user: "nobody",
                        password: "x",
                    },
                    { clientId: id("authanon") },
                    {
                        clientId: id("authpw0"),
                        user: "devuser",
                        password: "bad",
                        reconn: false,
                    },
                ]
                const good = {
                    clientId: id("authok"),
                    user: "devuser",
                    password: "right-pw",
                }
                const res = await withDevice("test/devs/auth-connect.ts", {
                    port: m.port,
                    topic,
                    bad,
                    good,
                })
                // every try refused by CONNACK, also the second connect() of
                // the same client (the close event of the first socket once
                // reached the second one as "closed while connecting")
                const r = refusals(res)
                assert.deepEqual(
                    r.map(x => `${x.id}#${x.try}`),
                    bad.flatMap(b =>
                        Array.from(
                            { length: b.tries || 1 },
                            (_, i) => `${b.clientId}#${i}`
                        )
                    ),
                    res.lines.join("\n")
                )
                for (const x of r) {
                    assert.equal(
                        x.mqtt,
                        true,
                        `not an MQTTException: ${JSON.stringify(x)}`
                    )
                    assert.equal(x.name, "MQTTException")
                    assert.equal(x.code, 5, JSON.stringify(x))
                    assert.match(x.msg, /not authorized.*\(5\)/)
                    assert.equal(
                        x.state,
                        -1,
                        `getMqttsta() after a refusal: ${JSON.stringify(x)}`
                    )
                }
                noLine(res, /UNEXPECTED/)
                // the broker saw exactly one CONNECT per connect() call: no
                // background reconnection after a refused first connect
                // (mosquitto names refused clients by address, not id)
                const tries = bad.reduce((n, b) => n + (b.tries || 1), 0)
                assert.equal(
                    logLines(m, /Sending CONNACK to \S+ \(0, 5\)/).length,
                    tries,
                    m.log.join("\n")
                )
                assert.equal(
                    logLines(m, /Client <unknown> disconnected, not authorised/)
                        .length,
                    tries
                )
                assert.equal(
                    lineOf(res, "CONNECTED "),
                    `CONNECTED ${good.clientId} rc=0 state=0`
                )
                assert.equal(lineOf(res, "RECV "), `RECV ${topic}/in=loop`)
                const [msg] = await got.waitForCount(1, 5000)
                assert.equal(
                    msg.payload.toString(),
                    `hello from ${good.clientId}`
                )
                await m.waitForLog(
                    new RegExp(
                        `as ${escape(good.clientId)} \\(p2, c1, k30, u'devuser'\\)`
                    )
                )
                await assertCleanSession(m, good.clientId)
            } finally {
                await endPeer(peer)
                if (m) await m.close()
                rmSync(dir, { recursive: true, force: true })
            }
        }
    )

    test(
        "aedes authenticate hook: codes 5 and 4 as MQTTException, then right password works",
        {
            timeout: 60000,
        },
        async () => {
            const attempts = {}
            const broker = await startAedes({
                authenticate: (client, user, pass, cb) => {
                    attempts[client.id] = (attempts[client.id] || 0) + 1
                    const pw = pass ? pass.toString() : ""
                    if (user === "devuser" && pw === "right-pw")
                        return cb(null, true)
                    if (pw === "bad4") {
                        const err = new Error("bad user name or password")
                        err.returnCode = 4
                        return cb(err, false)
                    }
                    return cb(null, false) // aedes answers 5
                },
            })
            let peer
            try {
                peer = await connectPeer(broker.port, {
                    username: "devuser",
                    password: "right-pw",
                })
                const topic = `cb/${tag}/auth-aedes`
                const got = await collect(peer, `${topic}/out`, { qos: 1 })
                const bad = [
                    {
                        clientId: id("aed5"),
                        user: "devuser",
                        password: "wrong",
                        tries: 2,
                        code: 5,
                    },
                    {
                        clientId: id("aed4"),
                        user: "devuser",
                        password: "bad4",
                        code: 4,
                    },
                    {
                        clientId: id("aed5n"),
                        user: "devuser",
                        password: "x",
                        reconn: false,
                        code: 5,
                    },
                ]
                const good = {
                    clientId: id("aedok"),
                    user: "devuser",
                    password: "right-pw",
                }
                const res = await withDevice("test/devs/auth-connect.ts", {
                    port: broker.port,
                    topic,
                    bad: bad.map(({ code, ...a }) => a),
                    good,
                })
                const r = refusals(res)
                assert.equal(r.length, 4, res.lines.join("\n"))
                for (const x of r) {
                    const b = bad.find(b => b.clientId === x.id)
                    assert.equal(x.mqtt, true, JSON.stringify(x))
                    assert.equal(x.code, b.code, JSON.stringify(x))
                    assert.match(
                        x.msg,
                        b.code === 4
                            ? /bad user name or password \(4\)/
                            : /not authorized \(5\)/
                    )
                    assert.equal(x.state, -1)
                }
                for (const b of bad)
                    assert.equal(
                        attempts[b.clientId],
                        b.tries || 1,
                        `CONNECTs of ${b.clientId}`
                    )
                assert.equal(
                    lineOf(res, "CONNECTED "),
                    `CONNECTED ${good.clientId} rc=0 state=0`
                )
                assert.equal(lineOf(res, "RECV "), `RECV ${topic}/in=loop`)
                const [msg] = await got.waitForCount(1, 5000)
                assert.equal(
                    msg.payload.toString(),
                    `hello from ${good.clientId}`
                )
            } finally {
                await endPeer(peer)
                await broker.close()
            }
        }
    )
})

// ------------------------------------------------- ACL and bad arguments

/** label -> what the error message must say */
const BADARGS = {
    "pub-plus": /publish: topic .*contains a wildcard/,
    "pub-hash": /publish: topic .*contains a wildcard/,
    "pub-empty": /publish: topic is empty/,
    "sub-hash-middle":
        /subscribe: topic filter "a\/#\/b": # must be the last level/,
    "sub-plus-glued":
        /subscribe: topic filter "a\+\/b": a wildcard must fill a whole level/,
    "sub-empty": /subscribe: topic filter is empty/,
    "unsub-hash-middle":
        /unsubscribe: topic filter "a\/#\/b": # must be the last level/,
    "pub-qos3": /qos must be 0, 1 or 2, not 3/,
    "pub-qos-1": /qos must be 0, 1 or 2, not -1/,
    "pub-qos1.5": /qos must be 0, 1 or 2, not 1\.5/,
    "sub-qos3": /qos must be 0, 1 or 2, not 3/,
    "sub-qos-1": /qos must be 0, 1 or 2, not -1/,
    "pub-too-big":
        /publish: \d+ bytes, over maxPacketSize 1024/,
    "pub-topic-number": /publish: topic must be a string/,
    "sub-topic-null": /subscribe: topic filter must be a string/,
    "pub-msg-number": /msg must be a string or a Buffer/,
}

const BADARG_RE =
    /^BADARG (\S+) ms=(\d+) state=(-?\d+) mqtt=(\w+) code=(-?\d+) name=(\S+) msg=(.*)$/

/**
 * What both brokers must show after acl-refusals.ts: the refused subscribe
 * threw 0x80 and left the client connected, every bad argument threw, the
 * refused filter delivered nothing and the allowed one works.
 */
async function assertRefusalRun(res, seen, topic) {
    assert.match(
        lineOf(res, "ACL-"),
        /^ACL-REFUSED state=0 mqtt=true code=128 name=MQTTException msg=subscribe: the broker refused "secret\/x"$/
    )
    assert.equal(lineOf(res, "GRANTED"), "GRANTED 1 state=0")
    checkBadArgs(res)
    assert.equal(lineOf(res, "RECV"), `RECV ${topic}/after=still works`)
    const msgs = await seen.waitForCount(2, 5000)
    assert.deepEqual(
        msgs.map(x => `${x.topic}=${x.payload}`),
        ["secret/x=not for me", `${topic}/after=still works`]
    )
}

function checkBadArgs(res) {
    noLine(res, /NO-THROW/)
    const seen = {}
    for (const l of res.lines) {
        const mm = BADARG_RE.exec(l)
        if (mm) seen[mm[1]] = mm
    }
    assert.deepEqual(
        Object.keys(seen).sort(),
        Object.keys(BADARGS).sort(),
        res.lines.join("\n")
    )
    for (const [label, re] of Object.entries(BADARGS)) {
        const [line, , ms, state, mqtt] = seen[label]
        assert.match(line, re, `${label}: ${line}`)
        assert.equal(mqtt, "false", line)
        assert.equal(state, "0", `${label} left the client in state ${state}`)
        assert.ok(+ms < 100, `${label} did not throw at once (${ms} ms)`)
    }
    assert.equal(lineOf(res, "AFTER-BADARGS"), "AFTER-BADARGS state=0")
    assert.match(
        lineOf(res, "AFTER-DISCONNECT"),
        /^AFTER-DISCONNECT ms=\d{1,2} state=-1 mqtt=false code=-999 name=Error msg=.*disconnected/
    )
}

describe("refusals: ACL and bad arguments", () => {
    test(
        "mosquitto dynamic-security: a denied subscribe throws 0x80, bad arguments throw at once, client stays usable",
        {
            skip:
                NO_MOSQ ||
                (!dynsecPluginPath() &&
                    "dynamic-security plugin not found: SKIPPED"),
            timeout: 60000,
        },
        async () => {
            const dir = tempDir()
            let m, peer
            try {
                const cid = id("aclmq")
                const topic = `cb/${tag}/acl`
                const cfg = dynsecConfig(dir, {
                    clients: [
                        {
                            username: "dev",
                            password: "dev-pw",
                            roles: ["nosecret"],
                        },
                        { username: "peer", password: "peer-pw" },
                    ],
                    roles: [
                        {
                            rolename: "nosecret",
                            acls: [
                                {
                                    acltype: "subscribePattern",
                                    topic: "secret/#",
                                    allow: false,
                                    priority: 10,
                                },
                            ],
                        },
                    ],
                })
                m = await startMosquitto({
                    config: ["allow_anonymous false", ...cfg],
                })
                peer = await connectPeer(m.port, {
                    username: "peer",
                    password: "peer-pw",
                })
                const seen = await collect(peer, "#", { qos: 1 })
                const res = await withDevice("test/devs/acl-refusals.ts", {
                    port: m.port,
                    clientId: cid,
                    user: "dev",
                    password: "dev-pw",
                    topic,
                    secret: "secret/x",
                    secretTopic: "secret/x",
                    maxPacketSize: 1024,
                })
                assert.equal(lineOf(res, "CONNECTED"), "CONNECTED rc=0 state=0")
                await assertRefusalRun(res, seen, topic)
                // nothing of the bad calls reached the broker
                const c = escape(cid)
                assert.equal(
                    logLines(m, new RegExp(`Received PUBLISH from ${c} `))
                        .length,
                    2,
                    m.log.join("\n")
                )
                assert.equal(
                    logLines(m, new RegExp(`Received SUBSCRIBE from ${c}$`))
                        .length,
                    2,
                    m.log.join("\n")
                )
                assert.equal(
                    logLines(m, new RegExp(`Received UNSUBSCRIBE from ${c}`))
                        .length,
                    0
                )
                await assertCleanSession(m, cid)
            } finally {
                await endPeer(peer)
                if (m) await m.close()
                rmSync(dir, { recursive: true, force: true })
            }
        }
    )

    test(
        "aedes authorizeSubscribe: a denied subscribe throws 0x80, bad arguments throw at once, client stays usable",
        {
            timeout: 60000,
        },
        async () => {
            const cid = id("aclaedes")
            const topic = `cb/${tag}/acl-aedes`
            const subs = []
            const pubs = []
            const unsubs = []
            let disconnects = 0
            const broker = await startAedes({
                authorizeSubscribe: (client, sub, cb) => {
                    if (client?.id === cid) subs.push(sub.topic)
                    cb(null, sub.topic.startsWith("secret/") ? null : sub)
                },
                authorizePublish: (client, packet, cb) => {
                    if (client?.id === cid) pubs.push(packet.topic)
                    cb(null)
                },
            })
            broker.broker.on("unsubscribe", (topics, client) => {
                // aedes also unsubscribes everything when a client goes away
                if (client?.id === cid && !client.closed) unsubs.push(...topics)
            })
            broker.broker.on("clientDisconnect", client => {
                if (client?.id === cid) disconnects++
            })
            let peer
            try {
                peer = await connectPeer(broker.port)
                const seen = await collect(peer, "#", { qos: 1 })
                const res = await withDevice("test/devs/acl-refusals.ts", {
                    port: broker.port,
                    clientId: cid,
                    topic,
                    secret: "secret/x",
                    secretTopic: "secret/x",
                    maxPacketSize: 1024,
                })
                await assertRefusalRun(res, seen, topic)
                assert.deepEqual(subs, ["secret/x", `${topic}/#`])
                assert.deepEqual(pubs, ["secret/x", `${topic}/after`])
                assert.deepEqual(unsubs, [])
                assert.ok(disconnects <= 1)
            } finally {
                await endPeer(peer)
                await broker.close()
            }
        }
    )
})

// ------------------------------------------------------------ versions

describe("protocol versions", () => {
    test(
        "mosquitto accepts MQTT 3.1 (p1) and 3.1.1 (p2) clients",
        {
            skip: NO_MOSQ,
            timeout: 60000,
        },
        async () => {
            let m, peer
            try {
                m = await startMosquitto()
                peer = await connectPeer(m.port)
                const topic = `cb/${tag}/ver`
                const out = await collect(peer, `${topic}/out/+`, { qos: 1 })
                const clients = [
                    { clientId: id("v31p1"), version: 3 },
                    { clientId: id("v31p2"), version: 4 },
                ]
                const res = await withDevice("test/devs/v31-versions.ts", {
                    port: m.port,
                    topic,
                    clients,
                })
                for (const c of clients) {
                    const p = c.version === 3 ? "p1" : "p2"
                    await m.waitForLog(
                        new RegExp(
                            `New client connected from .* as ${escape(c.clientId)} \\(${p}, c1, k30\\)`
                        ),
                        5000
                    )
                    assert.equal(
                        lineOf(res, `CONNECTED ${c.clientId}`),
                        `CONNECTED ${c.clientId} v=${c.version} rc=0`
                    )
                    assert.equal(
                        lineOf(res, `GRANTED ${c.clientId}`),
                        `GRANTED ${c.clientId} 1`
                    )
                    assert.equal(
                        lineOf(res, `RECV ${c.clientId}`),
                        `RECV ${c.clientId} ${topic}/${c.clientId}=v${c.version} qos=1`
                    )
                    assert.equal(
                        lineOf(res, `CLOSED ${c.clientId}`),
                        `CLOSED ${c.clientId} state=-1`
                    )
                    await assertCleanSession(m, c.clientId)
                }
                const msgs = await out.waitForCount(2, 5000)
                assert.deepEqual(
                    msgs.map(x => `${x.topic}=${x.payload}`),
                    clients.map(
                        c => `${topic}/out/${c.clientId}=from v${c.version}`
                    )
                )
            } finally {
                await endPeer(peer)
                if (m) await m.close()
            }
        }
    )
})

// ------------------------------------------------------------ TLS

describe(
    "TLS",
    { skip: NO_MOSQ || (!opensslAvailable() && "openssl not found: SKIPPED") },
    () => {
        let dir, certs, m, peer

        before(async () => {
            dir = tempDir()
            certs = makeTestCerts(dir)
            // the harness' only listener becomes a TLS listener
            m = await startMosquitto({
                config: [`certfile ${certs.cert}`, `keyfile ${certs.key}`],
            })
            peer = await connectPeer(m.port, {
                protocol: "mqtts",
                ca: readFileSync(certs.ca),
            })
        })

        after(async () => {
            await endPeer(peer)
            if (m) await m.close()
            if (dir) rmSync(dir, { recursive: true, force: true })
        })

        test(
            "ssl: true with the test CA trusted: round trip",
            { timeout: 60000 },
            async () => {
                const topic = `cb/${tag}/tls`
                const cid = id("tlsok")
                const out = await collect(peer, `${topic}/out`, { qos: 1 })
                const res = await withDevice(
                    "test/devs/tls-roundtrip.ts",
                    { port: m.port, clientId: cid, topic },
                    { env: { NODE_EXTRA_CA_CERTS: certs.ca } }
                )
                noLine(res, /TLSFAIL/)
                assert.equal(lineOf(res, "CONNECTED"), "CONNECTED state=0")
                assert.equal(lineOf(res, "RECV"), `RECV ${topic}/in=over tls`)
                const [msg] = await out.waitForCount(1, 5000)
                assert.equal(msg.payload.toString(), "tls hello")
                await assertCleanSession(m, cid)
            }
        )

        test(
            "ssl: true without the CA: connect throws a certificate Error, no crash",
            { timeout: 60000 },
            async t => {
                const cid = id("tlsnoca")
                const res = await withDevice("test/devs/tls-roundtrip.ts", {
                    port: m.port,
                    clientId: cid,
                    topic: `cb/${tag}/tls-noca`,
                })
                // the reason comes from the socket's error event (it used to
                // be lost behind "write failed (error -100)")
                const line = lineOf(res, "TLSFAIL")
                t.diagnostic(line)
                assert.match(
                    line,
                    /^TLSFAIL mqtt=false name=Error state=-1 msg=/
                )
                assert.match(
                    line.slice(line.indexOf("msg=")),
                    /certificate|self.signed|verify|issuer/i
                )
                assert.equal(lineOf(res, "CLOSED"), "CLOSED state=-1")
                noLine(res, /^CONNECTED/)
                assert.equal(
                    logLines(m, new RegExp(`as ${escape(cid)} `)).length,
                    0,
                    "the broker must not see a CONNECT over an unverified link"
                )
            }
        )
    }
)

// ------------------------------------------------------------ keepalive

describe("keepalive", () => {
    test(
        "mosquitto: an idle client with keepalive 2 pings and stays connected for 8 s",
        {
            skip: NO_MOSQ,
            timeout: 60000,
        },
        async t => {
            let m, peer
            try {
                m = await startMosquitto()
                peer = await connectPeer(m.port)
                const topic = `cb/${tag}/ka`
                const cid = id("kaidle")
                const out = await collect(peer, topic, { qos: 1 })
                const res = await withDevice("test/devs/keepalive-idle.ts", {
                    port: m.port,
                    clientId: cid,
                    topic,
                    keepalive: 2,
                    idleMs: 8000,
                })
                assert.equal(lineOf(res, "CONNECTED"), "CONNECTED rc=0 state=0")
                assert.match(
                    lineOf(res, "IDLE-DONE"),
                    /^IDLE-DONE checks=\d+ bad=0 state=0$/
                )
                noLine(res, /^(RECONNECT|ERRORCB|STATE)/)
                assert.equal(lineOf(res, "PUBLISHED"), "PUBLISHED state=0")
                const [msg] = await out.waitForCount(1, 5000)
                assert.equal(msg.payload.toString(), "after idle")
                await m.waitForLog(
                    new RegExp(`as ${escape(cid)} \\(p2, c1, k2\\)`)
                )
                const c = escape(cid)
                const pings = logLines(
                    m,
                    new RegExp(`Received PINGREQ from ${c}$`)
                ).length
                const pongs = logLines(
                    m,
                    new RegExp(`Sending PINGRESP to ${c}$`)
                ).length
                t.diagnostic(`${pings} PINGREQ/${pongs} PINGRESP while idle`)
                // 8 s idle at keepalive 2: a PINGREQ about every 2 s
                assert.ok(
                    pings >= 3,
                    `only ${pings} PINGREQ in 8 s:\n${m.log.join("\n")}`
                )
                assert.ok(pings <= 8, `${pings} PINGREQ in 8 s: too many`)
                assert.equal(pongs, pings)
                await assertCleanSession(m, cid)
            } finally {
                await endPeer(peer)
                if (m) await m.close()
            }
        }
    )
})

// ------------------------------------------------------------ fibers

describe("fibers", () => {
    test(
        "mosquitto: two publishing fibers and a waitMsg fiber share one client",
        {
            skip: NO_MOSQ,
            timeout: 120000,
        },
        async t => {
            const N = scale(80, 200) // messages per publishing fiber
            let m, peer
            try {
                m = await startMosquitto()
                peer = await connectPeer(m.port)
                const topic = `cb/${tag}/fib`
                const cid = id("fibers")
                const out = await collect(peer, `${topic}/+`, { qos: 1 })
                const res = await withDevice(
                    "test/devs/fibers-publish.ts",
                    {
                        port: m.port,
                        clientId: cid,
                        topic,
                        perFiber: N,
                        deadlineMs: 50000,
                    },
                    { timeoutMs: 60000 }
                )
                noLine(res, /^(RECONNECT|ERRORCB|PUBFAIL|RECVFAIL|ORDER)/)
                assert.equal(lineOf(res, "PUBDONE a"), `PUBDONE a ${N}`)
                assert.equal(lineOf(res, "PUBDONE b"), `PUBDONE b ${N}`)
                assert.equal(lineOf(res, "RECVDONE"), `RECVDONE ${2 * N}`)
                t.diagnostic(lineOf(res, "SUMMARY"))
                assert.match(
                    lineOf(res, "SUMMARY"),
                    new RegExp(
                        `^SUMMARY finished=3 received=${2 * N} orderErrors=0 badStates=0 lastA=${N - 1} lastB=${N - 1} ms=\\d+$`
                    )
                )
                assert.equal(lineOf(res, "STATE"), "STATE 0")
                // the peer: every message once, each fiber's in order
                const msgs = await out.waitForCount(2 * N, 10000)
                assert.equal(msgs.length, 2 * N)
                for (const name of ["a", "b"]) {
                    const seq = msgs
                        .filter(x => x.topic === `${topic}/${name}`)
                        .map(x => x.payload.toString())
                    assert.deepEqual(
                        seq,
                        Array.from({ length: N }, (_, i) => `${name}:${i}`),
                        `messages of fiber ${name}`
                    )
                }
                assert.ok(
                    msgs.every(x => !x.dup),
                    "no message was sent twice"
                )
                await assertCleanSession(m, cid)
            } finally {
                await endPeer(peer)
                if (m) await m.close()
            }
        }
    )
})
