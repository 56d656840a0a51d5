// devs/reconnect.ts's hand-made reconnect loop (reconn: false, error
// callback, close() + connect()) repairs the connection after the broker
// drops it, again and again, and keeps receiving.
import { test } from "node:test"
import assert from "node:assert/strict"
import { startAedes, connectPeer, endPeer } from "../tools/brokers.mjs"
import { runDevice } from "../tools/sim.mjs"

const CUTS = 5

test(`the seed's reconnect example survives ${CUTS} server-side drops`, async () => {
    const broker = await startAedes()
    const peer = await connectPeer(broker.port)
    let dev
    try {
        const topic = "reconnect/app"
        const subscribed = () =>
            new Promise(resolve => {
                const on = (subs, client) => {
                    if (client && client.id === "reconnect-app") {
                        broker.broker.off("subscribe", on)
                        resolve()
                    }
                }
                broker.broker.on("subscribe", on)
            })
        let sub = subscribed()
        dev = await runDevice(
            "test/devs/reconnect-app.ts",
            { port: broker.port, topic, want: CUTS + 1 },
            { timeoutMs: 60000 }
        )
        await sub
        for (let i = 0; i <= CUTS; i++) {
            await peer.publishAsync(topic, `m${i}`, { qos: 1 })
            await dev.waitFor(`recv m${i}`, 10000)
            if (i === CUTS) break
            sub = subscribed()
            const client = broker.broker.clients["reconnect-app"]
            client.conn.destroy()
            await sub // reconnected and subscribed again
        }
        const r = await dev.done
        assert.equal(r.code, 0, r.lines.slice(-20).join("\n"))
        const errs = r.lines.filter(l => l.startsWith("thread err:"))
        const back = r.lines.filter(l => l === "reconnected")
        assert.equal(errs.length, CUTS, errs.join("\n"))
        assert.equal(back.length, CUTS)
        assert.match(errs[0], /closed the connection|ECONNRESET/) // FIN or RST
    } finally {
        if (dev) await dev.kill()
        await endPeer(peer)
        await broker.close()
    }
})
