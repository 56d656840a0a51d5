// Tests of the Node-side fault tools: the fault-injecting proxy and the
// scripted fake broker (no simulator needed).

import assert from "node:assert/strict"
import net from "node:net"
import { after, afterEach, describe, test } from "node:test"
import mqttPacket from "mqtt-packet"
import { collect, connectPeer, endPeer, startAedes } from "../tools/brokers.mjs"
import {
    autoRespond,
    malformedCases,
    mqttPacketParseErrorFixtures,
    mutations,
    startFakeBroker,
    validServerPackets,
} from "../tools/fakebroker.mjs"
import { rng, startFaultProxy } from "../tools/faultproxy.mjs"

const delay = ms => new Promise(r => setTimeout(r, ms))

/**
 * A raw TCP server recording every 'data' chunk per connection; onSocket
 * may write to the socket.
 */
async function startRawServer(onSocket = () => {}) {
    const conns = []
    const sockets = new Set()
    const server = net.createServer(sock => {
        const c = {
            sock,
            chunks: [],
            ended: false,
            closed: false,
            get bytes() {
                return Buffer.concat(c.chunks)
            },
        }
        conns.push(c)
        sockets.add(sock)
        sock.on("data", d => c.chunks.push(d))
        sock.on("end", () => (c.ended = true))
        sock.on("close", () => {
            c.closed = true
            sockets.delete(sock)
        })
        sock.on("error", () => {})
        onSocket(sock, c)
    })
    await new Promise(r => server.listen(0, "127.0.0.1", r))
    return {
        port: server.address().port,
        conns,
        close: () =>
            new Promise(r => {
                for (const s of sockets) s.destroy()
                server.close(() => r())
            }),
    }
}

/** Connects a raw client that records what it receives. */
function rawClient(port) {
    return new Promise((resolve, reject) => {
        const sock = net.connect({ port, host: "127.0.0.1" })
        const c = {
            sock,
            chunks: [],
            closed: false,
            get bytes() {
                return Buffer.concat(c.chunks)
            },
        }
        c.closedPromise = new Promise(r =>
            sock.on("close", () => {
                c.closed = true
                r()
            })
        )
        sock.on("data", d => c.chunks.push(d))
        sock.on("error", () => {})
        sock.once("connect", () => resolve(c))
        sock.once("error", reject)
    })
}

/** Polls cond every 5 ms until true; rejects after ms. */
async function until(cond, ms = 3000, what = "condition") {
    const end = Date.now() + ms
    while (!cond()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
        await delay(5)
    }
}

const seq = (n, from = 0) =>
    Buffer.from(Array.from({ length: n }, (_, i) => (from + i) & 0xff))

describe("rng", () => {
    test("is reproducible and in [0, 1)", () => {
        const a = rng(7)
        const b = rng(7)
        const xs = Array.from({ length: 100 }, () => a())
        assert.deepEqual(
            xs,
            Array.from({ length: 100 }, () => b())
        )
        assert.ok(xs.every(x => x >= 0 && x < 1))
        const c = rng(8)
        assert.notDeepEqual(
            xs.slice(0, 5),
            Array.from({ length: 5 }, () => c())
        )
    })
})

describe("fault proxy (raw sockets)", () => {
    let upstream, proxy
    // handles opened by the current test, closed after it (newest first)
    const open = []
    const own = h => (open.push(h), h)
    afterEach(async () => {
        while (open.length) await open.pop().close()
    })

    const setup = async onSocket => {
        upstream = own(await startRawServer(onSocket))
        proxy = own(await startFaultProxy({ upstreamPort: upstream.port }))
        return { upstream, proxy }
    }

    test("pass: round trip both ways, connection counting", async () => {
        await setup(sock => sock.on("data", d => sock.write(d))) // echo
        const waiting = proxy.waitForConnection(1, 2000)
        const c = await rawClient(proxy.port)
        const conn = await waiting
        assert.equal(conn.id, 1)
        assert.equal(proxy.connections, 1)
        const data = seq(3000)
        c.sock.write(data)
        await until(() => c.bytes.length >= data.length, 3000, "echo")
        assert.ok(c.bytes.equals(data))
        assert.deepEqual(conn.bytes, { up: 3000, down: 3000 })
        // a FIN from the client is passed on and the pair closes
        c.sock.end()
        await conn.closed
        assert.equal(conn.open, false)
        assert.equal(conn.cut, false)
        // an already accepted connection resolves at once
        assert.equal(await proxy.waitForConnection(1, 10), conn)
        await assert.rejects(proxy.waitForConnection(2, 50), /timed out/)
    })

    test("cutAt: down direction, after exactly N bytes", async () => {
        const big = seq(5000)
        await setup(sock => sock.write(big))
        const cuts = []
        proxy.on("cut", i => cuts.push(i))
        proxy.cutAt(1234) // no connection yet: arms the next one
        const c = await rawClient(proxy.port)
        const cut = await proxy.waitForCut(1, 3000)
        await c.closedPromise
        assert.equal(c.bytes.length, 1234)
        assert.ok(c.bytes.equals(big.subarray(0, 1234)))
        assert.equal(cut.reason, "cutAt")
        assert.equal(cut.at, 1234)
        assert.equal(cut.bytes.down, 1234)
        assert.deepEqual(cuts, [cut])
        await until(() => upstream.conns[0].closed, 2000, "upstream closed")
        assert.equal(proxy.conns[0].cut, true)
    })

    test("cutAt: up direction, on the current connection, in the middle of a chunk", async () => {
        await setup()
        const c = await rawClient(proxy.port)
        await proxy.waitForConnection(1)
        c.sock.write(seq(10))
        await until(() => upstream.conns[0]?.bytes.length === 10)
        proxy.cutAt(25, { direction: "up" })
        c.sock.write(seq(100, 10))
        await c.closedPromise
        await until(() => upstream.conns[0].closed, 2000, "upstream closed")
        assert.ok(upstream.conns[0].bytes.equals(seq(35)))
        assert.equal(proxy.cuts.length, 1)
        assert.equal(proxy.cuts[0].bytes.up, 35)
    })

    test("cutAt(0) and direction both", async () => {
        await setup(sock => sock.on("data", d => sock.write(d))) // echo
        const c = await rawClient(proxy.port)
        await proxy.waitForConnection(1)
        // "both" counts the two directions together: 10 up + 10 down + 5 up
        proxy.cutAt(25, { direction: "both" })
        c.sock.write(seq(10))
        await until(() => c.bytes.length === 10)
        c.sock.write(seq(10, 10))
        await c.closedPromise
        assert.equal(upstream.conns[0].bytes.length, 15)
        assert.deepEqual(proxy.cuts[0].bytes, { up: 15, down: 10 })
        // 0: the next byte is not delivered
        proxy.cutAt(0, { direction: "up" })
        const c2 = await rawClient(proxy.port)
        await until(() => upstream.conns.length === 2)
        c2.sock.write("x")
        await c2.closedPromise
        await until(() => upstream.conns[1].closed)
        assert.equal(upstream.conns[1].bytes.length, 0)
        assert.equal(proxy.cuts[1].id, 2)
    })

    test("cutRandom: reproducible offsets, onCut callback", async () => {
        upstream = own(await startRawServer(sock => sock.write(seq(500))))
        const seen = []
        proxy = own(
            await startFaultProxy({
                upstreamPort: upstream.port,
                onCut: i => seen.push(i),
            })
        )
        const r1 = rng(99)
        const r2 = rng(99)
        for (let i = 0; i < 3; i++) {
            const n = proxy.cutRandom(r1, 400)
            assert.equal(n, Math.floor(r2() * 401))
            const c = await rawClient(proxy.port)
            await c.closedPromise
            assert.equal(c.bytes.length, n)
        }
        assert.equal(seen.length, 3)
    })

    test("cutNow destroys the current connection", async () => {
        await setup()
        const c = await rawClient(proxy.port)
        const conn = await proxy.waitForConnection(1)
        await until(() => upstream.conns.length === 1)
        assert.equal(proxy.cutNow(), 1)
        await c.closedPromise
        await conn.closed
        assert.equal(proxy.cuts[0].reason, "cutNow")
        assert.equal(proxy.cutNow(), 0)
    })

    test("oneByte: single-byte writes, in order", async () => {
        await setup()
        proxy.oneByte(1)
        // count the proxy's writes to the upstream socket
        const writes = []
        proxy.on("connection", conn => {
            const write = conn.upstream.write.bind(conn.upstream)
            conn.upstream.write = (buf, ...rest) => {
                writes.push(buf.length)
                return write(buf, ...rest)
            }
        })
        const c = await rawClient(proxy.port)
        // the receiver reads what arrived before it accepted all at once
        await until(() => upstream.conns.length === 1)
        const data = seq(40)
        c.sock.write(data)
        await until(() => upstream.conns[0]?.bytes.length === 40, 3000)
        assert.ok(upstream.conns[0].bytes.equals(data))
        assert.deepEqual(writes, Array(40).fill(1))
        // the receiver sees them apart too (on a very busy machine the
        // kernel may still hand over two at once now and then)
        const chunks = upstream.conns[0].chunks
        assert.ok(
            chunks.length >= 36,
            `${chunks.length} 'data' events, sizes ${chunks.map(x => x.length)}`
        )
        // back to pass: the rest goes in one write
        proxy.pass()
        c.sock.write(seq(100))
        await until(() => upstream.conns[0].bytes.length === 140)
        assert.deepEqual(writes.slice(40), [100])
    })

    test("oneByte(0) and the down direction only", async () => {
        await setup(sock => sock.on("data", d => sock.write(d)))
        proxy.oneByte(0, { direction: "down" })
        assert.deepEqual(proxy.mode, {
            up: { kind: "pass" },
            down: { kind: "oneByte", delayMs: 0 },
        })
        const c = await rawClient(proxy.port)
        const data = seq(30)
        c.sock.write(data)
        await until(() => c.bytes.length === 30)
        assert.ok(c.bytes.equals(data))
        assert.equal(upstream.conns[0].chunks.length, 1) // up untouched
    })

    test("coalesce: small chunks arrive in one write", async () => {
        await setup()
        proxy.coalesce(150)
        const c = await rawClient(proxy.port)
        await proxy.waitForConnection(1)
        for (let i = 0; i < 8; i++) {
            c.sock.write(seq(5, i * 5))
            await delay(3)
        }
        assert.equal(proxy.conns[0].bytes.up, 0) // still held
        await until(() => upstream.conns[0]?.bytes.length === 40, 3000)
        assert.equal(upstream.conns[0].chunks.length, 1)
        assert.ok(upstream.conns[0].bytes.equals(seq(40)))
    })

    test("delay: later, in order, also across a switch to pass", async () => {
        await setup()
        proxy.delay(120)
        const c = await rawClient(proxy.port)
        const t0 = Date.now()
        c.sock.write(seq(10))
        await delay(20)
        c.sock.write(seq(10, 10))
        await delay(20)
        assert.equal(upstream.conns[0]?.bytes.length ?? 0, 0)
        // pass now: held bytes go first, then new ones
        proxy.pass()
        c.sock.write(seq(10, 20))
        await until(() => upstream.conns[0]?.bytes.length === 30)
        assert.ok(upstream.conns[0].bytes.equals(seq(30)))
        proxy.delay(80)
        const t1 = Date.now()
        c.sock.write(seq(5, 30))
        await until(() => upstream.conns[0].bytes.length === 35)
        assert.ok(Date.now() - t1 >= 75, `${Date.now() - t1} ms`)
        assert.ok(upstream.conns[0].bytes.equals(seq(35)))
        assert.ok(t1 - t0 < 120)
    })

    test("blackhole: nothing forwarded, sockets stay open, then pass resumes", async () => {
        await setup(sock => sock.on("data", d => sock.write(d)))
        const c = await rawClient(proxy.port)
        c.sock.write(seq(5))
        await until(() => c.bytes.length === 5)
        proxy.blackhole()
        c.sock.write(seq(50, 100))
        upstream.conns[0].sock.write(seq(7, 200))
        c.sock.end() // the FIN is held too
        await delay(100)
        assert.equal(upstream.conns[0].bytes.length, 5)
        assert.equal(c.bytes.length, 5)
        assert.equal(c.closed, false)
        assert.equal(upstream.conns[0].closed, false)
        assert.equal(upstream.conns[0].ended, false)
        assert.deepEqual(proxy.conns[0].dropped, { up: 50, down: 7 })
        proxy.pass()
        // dropped bytes stay dropped; new bytes and the held FIN flow
        upstream.conns[0].sock.write(seq(3, 250))
        await until(() => upstream.conns[0].ended, 2000, "FIN upstream")
        await until(() => c.bytes.length === 8)
        assert.ok(c.bytes.equals(Buffer.concat([seq(5), seq(3, 250)])))
        assert.equal(upstream.conns[0].bytes.length, 5)
    })

    test("refuse: accepts and destroys; refuse(false) proxies again", async () => {
        await setup()
        proxy.refuse(true)
        const c = await rawClient(proxy.port)
        await c.closedPromise
        assert.equal(proxy.connections, 0)
        assert.equal(proxy.refused, 1)
        assert.equal(upstream.conns.length, 0)
        proxy.refuse(false)
        const c2 = await rawClient(proxy.port)
        await proxy.waitForConnection(1)
        c2.sock.write("hi")
        await until(() => upstream.conns[0]?.bytes.toString() === "hi")
    })

    test("an upstream that is down closes the client", async () => {
        const up = await startRawServer()
        const port = up.port
        await up.close()
        const p = own(await startFaultProxy({ upstreamPort: port }))
        const c = await rawClient(p.port)
        await c.closedPromise
        assert.equal(p.connections, 1)
    })

    test("close() destroys open connections and does not hang", async () => {
        await setup()
        proxy.blackhole()
        const c = await rawClient(proxy.port)
        await proxy.waitForConnection(1)
        const t0 = Date.now()
        await proxy.close()
        await proxy.close()
        await c.closedPromise
        assert.ok(Date.now() - t0 < 1000)
    })
})

describe("fault proxy with MQTT.js and aedes", () => {
    let broker, proxy
    after(async () => {
        await proxy?.close()
        await broker?.close()
    })

    test("pass, oneByte, coalesce: publish/subscribe works; cutNow is seen by the client", async () => {
        broker = await startAedes()
        proxy = await startFaultProxy({ upstreamPort: broker.port })
        const direct = await connectPeer(broker.port)
        const sub = await collect(direct, "t/#")
        const peer = await connectPeer(proxy.port)
        try {
            await peer.publishAsync("t/1", "pass", { qos: 1 })
            proxy.oneByte(0)
            await peer.publishAsync("t/2", "one byte", { qos: 2 })
            proxy.coalesce(20)
            await peer.publishAsync("t/3", "coalesced", { qos: 1 })
            proxy.pass()
            const got = await sub.waitForCount(3, 3000)
            // sorted: MQTT.js hands out a QoS 2 message only on PUBREL
            assert.deepEqual(got.map(m => m.payload.toString()).sort(), [
                "coalesced",
                "one byte",
                "pass",
            ])
            const closed = new Promise(r => peer.once("close", r))
            proxy.cutNow()
            await closed
        } finally {
            await endPeer(peer)
            await endPeer(direct)
        }
    })
})

describe("fake broker", () => {
    let fb
    after(async () => {
        await fb?.close()
    })

    test("default script: MQTT.js connects, subscribes, publishes QoS 1 and 2", async () => {
        fb = await startFakeBroker()
        const peer = await connectPeer(fb.port)
        try {
            const conn = await fb.waitForConnection(1)
            const granted = await peer.subscribeAsync({
                "a/b": { qos: 2 },
                "c/+": { qos: 1 },
            })
            assert.deepEqual(granted.map(g => g.qos).sort(), [1, 2])
            await peer.publishAsync("a/b", "one", { qos: 1 })
            await peer.publishAsync("a/b", "two", { qos: 2 })
            const cmds = conn.received.map(p => p.cmd)
            assert.deepEqual(cmds.slice(0, 1), ["connect"])
            assert.ok(cmds.includes("subscribe"))
            assert.ok(cmds.includes("pubrel"))
            const p1 = await conn.waitFor("publish")
            const p2 = await conn.waitFor("publish")
            assert.equal(p1.payload.toString(), "one")
            assert.equal(p2.qos, 2)
            await assert.rejects(conn.waitFor("publish", 50), /timed out/)
            assert.deepEqual(conn.parseErrors, [])
        } finally {
            await endPeer(peer)
        }
        await fb.connections[0].closed
    })

    test("custom script: echo responder, sends, parse errors recorded", async () => {
        await fb?.close()
        fb = await startFakeBroker({
            onConnect: async conn => {
                if (conn.id === 1) {
                    autoRespond(conn, { echo: true })
                    return
                }
                await conn.waitFor("connect")
                await conn.send({
                    cmd: "connack",
                    returnCode: 5,
                    sessionPresent: false,
                })
                conn.close()
            },
        })
        const peer = await connectPeer(fb.port)
        try {
            const sub = await collect(peer, "e/#")
            await peer.publishAsync("e/1", "echo", { qos: 2 })
            await peer.publishAsync("x/1", "not echoed", { qos: 0 })
            const got = await sub.waitForCount(1, 2000)
            assert.equal(got[0].payload.toString(), "echo")
            assert.equal(got[0].qos, 2)
        } finally {
            await endPeer(peer)
        }
        // the second connection is refused with CONNACK 5
        await assert.rejects(connectPeer(fb.port), /Not authorized/i)

        // raw garbage from a client is recorded as a parse error
        const c = await rawClient(fb.port)
        const conn = await fb.waitForConnection(3)
        c.sock.write(Buffer.from([0x00, 0x00]))
        await until(() => conn.parseErrors.length === 1)
        assert.equal(conn.parseErrors[0].message, "Not supported")
        // the parser goes on afterwards (conn 3 runs the refusing script)
        c.sock.write(
            mqttPacket.generate({
                cmd: "connect",
                protocolId: "MQTT",
                protocolVersion: 4,
                clean: true,
                keepalive: 0,
                clientId: "raw",
            })
        )
        await c.closedPromise
        assert.ok(c.bytes.equals(Buffer.from([0x20, 0x02, 0x00, 0x05])))
        assert.equal(conn.received[0].cmd, "connect")
    })
})

describe("malformed cases and mutations", () => {
    test("malformedCases: many, uniquely named, all bytes", () => {
        const cases = malformedCases()
        assert.ok(cases.length > 40, `${cases.length}`)
        assert.equal(new Set(cases.map(c => c.name)).size, cases.length)
        for (const c of cases) {
            assert.ok(Buffer.isBuffer(c.bytes) && c.bytes.length > 0, c.name)
            assert.ok(["connack", "session"].includes(c.phase), c.name)
        }
        const fromPkg = cases.filter(c => c.source === "mqtt-packet")
        assert.equal(fromPkg.length, mqttPacketParseErrorFixtures().length)
        assert.ok(fromPkg.length >= 30, `${fromPkg.length}`)
        assert.ok(cases.some(c => c.legal))
        // the extracted fixtures do make mqtt-packet fail as recorded
        for (const f of mqttPacketParseErrorFixtures()) {
            const parser = mqttPacket.parser({ protocolVersion: 4, ...f.opts })
            let err = null
            parser.on("error", e => (err = e.message))
            parser.parse(f.bytes)
            assert.equal(err, f.expected)
        }
    })

    test("mutations: reproducible for a seed, always different from the base", () => {
        const a = mutations(rng(1234), undefined, 200)
        const b = mutations(1234, validServerPackets(), 200)
        assert.equal(a.length, 200)
        assert.deepEqual(
            a.map(m => [m.name, m.bytes.toString("hex")]),
            b.map(m => [m.name, m.bytes.toString("hex")])
        )
        const c = mutations(rng(4321), undefined, 200)
        assert.notDeepEqual(
            a.map(m => m.bytes.toString("hex")),
            c.map(m => m.bytes.toString("hex"))
        )
        const bases = new Map(validServerPackets().map(p => [p.name, p.bytes]))
        for (const m of a) assert.ok(!m.bytes.equals(bases.get(m.base)), m.name)
        assert.equal(new Set(a.map(m => m.op)).size, 8)
        // plain Buffers work too
        const d = mutations(rng(5), [Buffer.from([0xd0, 0x00])], 10)
        assert.equal(d.length, 10)
    })
})
