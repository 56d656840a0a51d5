// The packet-aware cuts of test/tools/packetcut.mjs (no simulator): the
// link is cut right before the chosen packet, which is lost with everything
// after it, also when packet headers are split across chunks.
import { test } from "node:test"
import assert from "node:assert/strict"
import net from "node:net"
import { withTimeout } from "../tools/brokers.mjs"
import { startFaultProxy } from "../tools/faultproxy.mjs"
import { watchPackets, PACKET } from "../tools/packetcut.mjs"

/** A server that answers the first bytes with `chunks`, 30 ms apart. */
async function scriptedServer(chunks) {
    const server = net.createServer(s => {
        s.on("error", () => {})
        s.once("data", async () => {
            for (const c of chunks) {
                if (s.destroyed) return
                s.write(Buffer.from(c))
                await new Promise(r => setTimeout(r, 30))
            }
        })
    })
    await new Promise(r => server.listen(0, "127.0.0.1", r))
    return server
}

/**
 * Connects through the proxy and sends a PINGREQ; `closed` resolves with
 * all bytes received once the connection closed, `bytes(n)` once n arrived.
 */
function exchange(port) {
    const c = net.connect(port, "127.0.0.1")
    let got = Buffer.alloc(0)
    const waiters = []
    c.on("data", d => {
        got = Buffer.concat([got, d])
        for (const w of [...waiters]) w()
    })
    c.on("error", () => {})
    const closed = new Promise(resolve => c.on("close", () => resolve(got)))
    c.write(Buffer.from([0xc0, 0]))
    return {
        closed,
        bytes: n =>
            new Promise(resolve => {
                const w = () => {
                    if (got.length < n) return
                    waiters.splice(waiters.indexOf(w), 1)
                    resolve(got)
                }
                waiters.push(w)
                w()
            }),
    }
}

test("cutBefore: the packet that triggers and what follows are lost; split headers and skips counted", async () => {
    // PUBREC 1 | PUBREL 2 with its header split over two chunks | PUBCOMP 3 | PUBREL 4
    const server = await scriptedServer([
        [0x50, 2, 0, 1, 0x62],
        [2, 0, 2, 0x70, 2, 0, 3],
        [0x62, 2, 0, 4],
    ])
    const proxy = await startFaultProxy({ upstreamPort: server.address().port })
    const watcher = watchPackets(proxy, { keep: true })
    try {
        // the second PUBREL (skip 1) triggers
        const fired = watcher.cutBefore(PACKET.PUBREL, "down", { skip: 1 })
        const got = await exchange(proxy.port).closed
        const info = await fired
        assert.equal(got.toString("hex"), "500200016202000270020003")
        assert.deepEqual(info, { conn: 1, offset: 12 })
        assert.deepEqual(
            watcher.packets.map(p => `${p.dir} ${p.type} @${p.offset}`),
            ["up 12 @0", "down 5 @0", "down 6 @4", "down 7 @8"]
        )
        assert.equal(proxy.cuts.length, 1)
    } finally {
        watcher.stop()
        await proxy.close()
        server.close()
    }
})

test("clientWrites: a coalesced burst reaches the client in one write", async () => {
    const server = await scriptedServer([[0x30, 3, 0, 1, 0x61], [0x30, 3, 0, 1, 0x62]])
    const proxy = await startFaultProxy({ upstreamPort: server.address().port })
    const watcher = watchPackets(proxy)
    try {
        proxy.coalesce(200, { direction: "down" })
        // both PUBLISHes are held, then written together
        const got = await withTimeout(exchange(proxy.port).bytes(10), 5000, "both PUBLISHes")
        assert.equal(got.length, 10)
        assert.deepEqual(watcher.clientWrites(1), [10])
    } finally {
        watcher.stop()
        await proxy.close()
        server.close()
    }
})
