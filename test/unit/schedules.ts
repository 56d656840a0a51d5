import * as ds from "@devicescript/core"
import { describe, test } from "@devicescript/test"
import { MQTTClient, packetName } from "../../src/index"
import {
    Cut,
    DState,
    Delivery,
    ModelBroker,
    WirePacket,
} from "./lib/modelbroker"

/**
 * Every cut, deterministically (issue 10, "Proof"): the client runs against
 * a model broker (test/unit/lib/modelbroker.ts) over the transport seam; the
 * link breaks at a numbered packet boundary (before packet k, or inside it
 * with half of its bytes through, the client's write at the cut returning or
 * throwing), once on the first connection, then at every pair of points (one
 * on the first connection, one on the next). For QoS 1 and 2, both
 * directions (the device publishes 3 messages / the broker delivers 3),
 * clean and persistent session, internal reconnection (reconn: true) and
 * the application's own close() + connect() (reconn: false).
 *
 * What MQTT 3.1.1 promises, checked after each schedule:
 * - Inbound: the broker delivers from its session (§4.4). A message it
 *   completed (PUBACK, or PUBREC then PUBCOMP) was accepted by the client,
 *   so it reached the callback: QoS 1 at least once, QoS 2 exactly once.
 *   With a persistent session every message completes. With a clean
 *   session a message in flight when the connection ended is discarded by
 *   the broker (§3.1.2.4): it may or may not have arrived, but QoS 2 never
 *   twice. First deliveries come in the order published (§4.6).
 * - Outbound: every publish resolves or fails (no hang); one that resolved
 *   was accepted by the broker; with a persistent session QoS 2 is accepted
 *   exactly once, and with reconn: true every publish resolves and every
 *   message is accepted. A clean session is discarded by both sides at the
 *   next CONNECT (§3.1.2.4): the client sends every message in flight again
 *   as a PUBLISH into the new session (a PUBREL there would have no PUBREC
 *   behind it), so it arrives at least once: a broker such as mosquitto that
 *   passes a QoS 2 message on only at PUBREL would otherwise lose one that
 *   got its PUBREC in the old session.
 * - The model broker checks the protocol as it goes (acks only for ids it
 *   holds in that state, CONNECT first, §4.6 resend order, DUP on resend).
 * - At the end the session is empty on both sides: the broker has nothing
 *   in flight, the client holds nothing (`pending()`).
 *
 * A schedule reads "qos2/in/persistent/reconn c1#7 dev>PUBREC before throw
 * + c2#3 brk>PUBLISH inside": scenario, then each cut as connection #
 * packet number, the packet (dev> from the client, brk> from the broker)
 * and the mode. To replay one, set ONLY to it (and SCENARIO_FILTER to its
 * scenario). Single cuts run at every point; pairs at every pair of packets
 * with one combination of modes each in the quick profile, every
 * combination in the full one (test/node/unit.test.mjs passes
 * `{ full: true }` to `main` when UMQTT_FULL=1), where the reconn: false
 * scenarios get pairs too.
 */
const ONLY: string = ""
/** run only the scenarios whose name contains this */
const SCENARIO_FILTER: string = ""
/** failing schedules printed per scenario (all are counted) */
const PRINT_FAILURES = 40
/** a run whose link saw no packet for this long has settled or is stuck */
const QUIET_MS = 150
/** hard bound of one run */
const RUN_MS = 4000
const MESSAGES = 3
const TOPIC = "s/x"

interface Scenario {
    name: string
    qos: number
    inbound: boolean
    persistent: boolean
    reconn: boolean
    /** also every pair of cut points */
    pairs: boolean
    /**
     * "pipelined": one fiber publishes through `enqueue` and the ack
     * callback reports each outcome; "unbuffered": `writeBuffer: 0`, one
     * socket write per packet; "": `publish` from a fiber per message,
     * with the default write buffer
     */
    mode: string
}

interface RunResult {
    failures: string[]
    log: WirePacket[][]
}

/** The state of one run: the application's side. */
class App {
    stop = false
    delivered: string[] = []
    deliveredQos: number[] = []
    pubDone: boolean[] = []
    pubOk: boolean[] = []
    pubErr: string[] = []
    connectedOnce = false
    /** a SUBACK came for the subscription in the broker's current session */
    subscribedOk = false
    /** the last error the client reported (errorRegisterCb) */
    lastError = ""
    constructor(
        readonly c: MQTTClient,
        readonly b: ModelBroker,
        readonly sc: Scenario
    ) {
        for (let i = 0; i < MESSAGES; ++i) {
            this.pubDone.push(false)
            this.pubOk.push(false)
            this.pubErr.push("")
        }
    }

    async publisher(i: number) {
        try {
            await this.c.publish(TOPIC, `m${i}`, false, this.sc.qos)
            this.pubOk[i] = true
        } catch (e) {
            this.pubErr[i] = (e as Error).message
        }
        this.pubDone[i] = true
    }

    startPublishers() {
        const self = this
        if (this.sc.mode === "pipelined")
            (async () => {
                await self.pipeline()
            }).start()
        else for (let i = 0; i < MESSAGES; ++i) startPublisher(self, i)
    }

    /** every message from this fiber, without waiting for acks */
    async pipeline() {
        const self = this
        const seqs: number[] = []
        this.c.setAckCallback((seq, err) => {
            const i = seqs.indexOf(seq)
            if (i < 0) return
            if (err) self.pubErr[i] = err.message
            else self.pubOk[i] = true
            self.pubDone[i] = true
        })
        for (let i = 0; i < MESSAGES; ++i) {
            seqs.push(-1)
            try {
                seqs[i] = await this.c.enqueue(
                    TOPIC,
                    `m${i}`,
                    false,
                    this.sc.qos
                )
            } catch (e) {
                this.pubErr[i] = (e as Error).message
                this.pubDone[i] = true
            }
        }
    }

    async receiver() {
        while (!this.stop) {
            try {
                await this.c.waitMsg()
            } catch (e) {
                if (this.stop) return
                await ds.sleep(2)
            }
        }
    }

    async subscribe() {
        while (!this.stop) {
            try {
                await this.c.subscribe(TOPIC, 2)
                this.subscribedOk = true
                return true
            } catch (e) {
                if (!this.sc.reconn && this.c.getMqttsta() !== 0) return false
                await ds.sleep(2)
            }
        }
        return false
    }

    /** reconn: true: connect (retrying), subscribe; the client does the rest */
    async runInternal() {
        while (!this.stop) {
            try {
                await this.c.connect(!this.sc.persistent)
                break
            } catch (e) {
                await ds.sleep(2)
            }
        }
        if (this.stop) return
        this.connectedOnce = true
        if (this.sc.inbound) await this.subscribe()
        else this.startPublishers()
    }

    /** reconn: false: the application notices a loss, close() + connect(). */
    async runManual() {
        while (!this.stop) {
            if (this.c.getMqttsta() === 0) {
                await ds.sleep(2)
                continue
            }
            try {
                await this.c.close()
                await this.c.connect(!this.sc.persistent)
            } catch (e) {
                await ds.sleep(2)
                continue
            }
            const first = !this.connectedOnce
            this.connectedOnce = true
            if (this.sc.inbound) {
                // the subscription lives in the broker's session
                if (!this.c.sessionPresent) this.subscribedOk = false
                if (!this.subscribedOk) await this.subscribe()
            } else if (first) this.startPublishers()
        }
    }
}

function startPublisher(app: App, i: number) {
    ;(async () => {
        await app.publisher(i)
    }).start()
}

/** What the client still holds (`pending()`, or the old internals), or "". */
function clientHolds(c: MQTTClient): string {
    const a = c as any
    let inflight = 0
    let queued = 0
    let received = 0
    let awaiting = 0
    if (a.pending !== undefined && a.pending !== null) {
        const p = a.pending()
        inflight = p.inflight
        queued = p.queued
        received = p.received
        awaiting = p.awaitingRelease
    } else if (a.session !== undefined && a.session !== null) {
        inflight = a.session.inflight.length
        awaiting = a.session.inboundQos2.length
        queued = a.outbox.length
        received = a.incoming.length
    } else return ""
    if (inflight === 0 && queued === 0 && received === 0 && awaiting === 0)
        return ""
    return `client holds inflight ${inflight}, queued ${queued}, received ${received}, awaitingRelease ${awaiting}`
}

function settled(app: App) {
    const { c, b, sc } = app
    if (!app.connectedOnce || c.getMqttsta() !== 0 || !b.isLive()) return false
    if (!b.idle()) return false
    if (!sc.inbound)
        for (let i = 0; i < MESSAGES; ++i) if (!app.pubDone[i]) return false
    return clientHolds(c) === ""
}

function count(list: string[], s: string) {
    let n = 0
    for (let i = 0; i < list.length; ++i) if (list[i] === s) n++
    return n
}

function check(app: App, isSettled: boolean): string[] {
    const { c, b, sc } = app
    const f: string[] = []
    for (let i = 0; i < b.violations.length; ++i)
        f.push(`protocol: ${b.violations[i]}`)
    if (!isSettled) {
        const parts: string[] = []
        parts.push(`state ${c.getMqttsta()}`)
        const left = b.leftovers()
        if (left !== "") parts.push(`broker: ${left}`)
        const holds = clientHolds(c)
        if (holds !== "") parts.push(holds)
        for (let i = 0; i < MESSAGES; ++i)
            if (!sc.inbound && !app.pubDone[i])
                parts.push(`publish "m${i}" waits`)
        if (app.lastError !== "") parts.push(`last error: ${app.lastError}`)
        f.push(`did not settle (${parts.join("; ")})`)
    }
    if (sc.inbound) {
        let lastFirst = -1
        for (let i = 0; i < app.delivered.length; ++i) {
            const p = app.delivered[i]
            const k = p.length === 2 && p[0] === "m" ? p.charCodeAt(1) - 48 : -1
            if (k < 0 || k >= MESSAGES) {
                f.push(`unknown message "${p}" delivered`)
                continue
            }
            if (app.deliveredQos[i] !== sc.qos)
                f.push(`"${p}" delivered with QoS ${app.deliveredQos[i]}`)
            if (app.delivered.indexOf(p) === i) {
                // a first delivery: §4.6 order
                if (k < lastFirst)
                    f.push(
                        `order: "${p}" first delivered after "m${lastFirst}"`
                    )
                else lastFirst = k
            }
        }
        for (let i = 0; i < b.deliveries.length; ++i) {
            const d = b.deliveries[i]
            const n = count(app.delivered, d.payload)
            if (d.qos === 2 && n > 1)
                f.push(`"${d.payload}" (QoS 2) delivered ${n} times`)
            if (d.state === DState.Done && n === 0)
                f.push(
                    `"${d.payload}" completed at the broker, never delivered`
                )
            if (sc.persistent && d.state === DState.Discarded)
                f.push(`"${d.payload}" discarded with a persistent session`)
        }
    } else {
        for (let i = 0; i < MESSAGES; ++i) {
            const m = `m${i}`
            const n = b.acceptedCount(m)
            if (!app.pubDone[i]) {
                if (isSettled) f.push(`publish "${m}" never resolved`)
            } else if (app.pubOk[i] && n === 0)
                f.push(`publish "${m}" resolved, the broker never accepted it`)
            else if (!app.pubOk[i] && sc.reconn && sc.persistent)
                f.push(`publish "${m}" failed: ${app.pubErr[i]}`)
            // exactly once needs the persistent session: a broker that
            // drops the session (§3.1.2.4) may hold a message the client
            // must send again to be sure of it (at least once)
            if (sc.qos === 2 && n > 1 && sc.persistent)
                f.push(
                    `"${m}" (QoS 2) accepted ${n} times by the broker${b.acceptedAfterPubrec(m) ? ", again after its PUBREC had reached the client" : ""}`
                )
            if (sc.reconn && sc.persistent && n === 0 && app.pubDone[i])
                f.push(`"${m}" never reached the broker`)
        }
    }
    return f
}

async function runSchedule(sc: Scenario, cuts: Cut[]): Promise<RunResult> {
    const b = new ModelBroker()
    b.cuts = cuts
    if (sc.inbound)
        for (let i = 0; i < MESSAGES; ++i)
            b.deliveries.push(new Delivery(i, TOPIC, `m${i}`, sc.qos))
    const c = new MQTTClient(`sched`, "model.test", 0, {
        transport: b,
        reconn: sc.reconn,
        reconnectDelay: 2,
        reconnectMaxDelay: 8,
        connectTimeout: 500,
        ackTimeout: 500,
        keepalive: 0,
        connectivity: null,
        writeBuffer: sc.mode === "unbuffered" ? 0 : 1024,
    })
    const app = new App(c, b, sc)
    c.setCallback((topic, msg, info) => {
        app.delivered.push(msg.toString())
        app.deliveredQos.push(info ? info.qos : -1)
    })
    c.errorRegisterCb(err => {
        app.lastError = err.message
    })
    ;(async () => {
        if (sc.reconn) await app.runInternal()
        else await app.runManual()
    }).start()
    if (sc.inbound)
        (async () => {
            await app.receiver()
        }).start()
    const start = ds.millis()
    let ok = false
    for (;;) {
        await ds.sleep(2)
        if (settled(app)) {
            ok = true
            break
        }
        const now = ds.millis()
        if (now - b.lastActivity > QUIET_MS || now - start > RUN_MS) break
    }
    const failures = check(app, ok)
    app.stop = true
    b.frozen = true
    try {
        await c.disconnect()
    } catch (e) {
        // already disconnected
    }
    b.dispose()
    await ds.sleep(1)
    return { failures, log: b.log }
}

function describeCut(k: Cut, p: WirePacket) {
    const what = p
        ? `${p.fromClient ? "dev>" : "brk>"}${packetName(p.type)}`
        : "?"
    const mode = `${k.inside ? "inside" : "before"}${k.throwWrite ? " throw" : ""}`
    return `c${k.conn}#${k.packet} ${what} ${mode}`
}

/**
 * The cut points of one connection whose packets are `log`, per packet:
 * before a broker packet or inside it; before a client packet with its
 * write returning (the bytes vanish) or throwing, and inside it when it took
 * several writes (inside a packet written whole is the same as before it).
 */
function points(conn: number, log: WirePacket[]): Cut[][] {
    const out: Cut[][] = []
    for (let k = 1; k <= log.length; ++k) {
        const p = log[k - 1]
        const modes: Cut[] = [
            { conn, packet: k, inside: false, throwWrite: false },
        ]
        if (p.fromClient) {
            modes.push({ conn, packet: k, inside: false, throwWrite: true })
            if (p.writes > 1)
                modes.push({ conn, packet: k, inside: true, throwWrite: true })
        } else modes.push({ conn, packet: k, inside: true, throwWrite: false })
        out.push(modes)
    }
    return out
}

/**
 * Which pairs run: all of them in the full profile; in the quick one, for
 * each pair of packets one combination of their modes, rotating so that
 * every combination turns up across the packets.
 */
function pairWanted(
    ka: number,
    ma: number,
    na: number,
    kb: number,
    mb: number,
    nb: number
) {
    if (FULL) return true
    return (ka * 7 + kb * 3) % (na * nb) === ma * nb + mb
}

let FULL = false
let totalSchedules = 0
let totalFailures = 0

/**
 * Entry for test/node/unit.test.mjs: `{ full: true }` in the full profile
 * (UMQTT_FULL=1) runs every pair of cut points in every scenario.
 */
export async function main(params: { full?: boolean }) {
    FULL = !!params.full
}

async function runScenario(sc: Scenario) {
    let n = 0
    let failed = 0
    let singles = 0
    let pairs = 0
    const start = ds.millis()
    const report = (desc: string, r: RunResult) => {
        n++
        if (r.failures.length === 0) return
        failed++
        if (failed <= PRINT_FAILURES)
            console.log(`FAIL ${desc}: ${r.failures.join(" | ")}`)
    }
    const ref = await runSchedule(sc, [])
    report(`${sc.name} no cut`, ref)
    const log1 = ref.log.length > 0 ? ref.log[0] : []
    const pts1 = points(1, log1)
    const withPairs = sc.pairs || FULL
    for (let ka = 1; ka <= pts1.length; ++ka) {
        const modesA = pts1[ka - 1]
        for (let ma = 0; ma < modesA.length; ++ma) {
            const a = modesA[ma]
            const descA = `${sc.name} ${describeCut(a, log1[ka - 1])}`
            if (ONLY !== "" && ONLY.indexOf(descA) !== 0) continue
            const r = await runSchedule(sc, [a])
            singles++
            if (ONLY === "" || ONLY === descA) report(descA, r)
            // after a cut before CONNECT the next connection is a first one
            if (!withPairs || ka === 1) continue
            const log2 = r.log.length > 1 ? r.log[1] : []
            const pts2 = points(2, log2)
            for (let kb = 1; kb <= pts2.length; ++kb) {
                const modesB = pts2[kb - 1]
                for (let mb = 0; mb < modesB.length; ++mb) {
                    const nb = modesB.length
                    if (!pairWanted(ka, ma, modesA.length, kb, mb, nb))
                        continue
                    const b = modesB[mb]
                    const desc = `${descA} + ${describeCut(b, log2[kb - 1])}`
                    if (ONLY !== "" && ONLY !== desc) continue
                    const r2 = await runSchedule(sc, [a, b])
                    pairs++
                    report(desc, r2)
                }
            }
        }
    }
    const ms = ds.millis() - start
    console.log(
        `schedules: ${n} ${sc.name} (${singles} single cuts, ${pairs} pairs; ${log1.length} packets without a cut), ${failed} failing, ${ms} ms`
    )
    totalSchedules += n
    totalFailures += failed
    if (failed > 0)
        throw new Error(
            `${sc.name}: ${failed} of ${n} schedules break an invariant`
        )
}

function scenario(
    qos: number,
    inbound: boolean,
    persistent: boolean,
    reconn: boolean,
    pairs: boolean,
    mode = ""
): Scenario {
    const dir = inbound ? "in" : "out"
    const session = persistent ? "persistent" : "clean"
    const name = `qos${qos}/${dir}/${session}/${reconn ? "reconn" : "manual"}${mode ? "/" + mode : ""}`
    return { name, qos, inbound, persistent, reconn, pairs, mode }
}

const SCENARIOS: Scenario[] = []
for (let q = 1; q <= 2; ++q)
    for (let dir = 0; dir < 2; ++dir)
        for (let ps = 0; ps < 2; ++ps) {
            SCENARIOS.push(scenario(q, dir === 1, ps === 1, true, true))
            SCENARIOS.push(scenario(q, dir === 1, ps === 1, false, false))
        }
// issue 12: the pipelined publisher, and one socket write per packet (the
// default coalesces); single cuts in the quick profile, pairs in the full
for (let q = 1; q <= 2; ++q) {
    SCENARIOS.push(scenario(q, false, true, true, false, "pipelined"))
    SCENARIOS.push(scenario(q, false, false, false, false, "pipelined"))
    SCENARIOS.push(scenario(q, q === 2, true, true, false, "unbuffered"))
}

describe("every cut", () => {
    SCENARIOS.forEach(sc => {
        if (SCENARIO_FILTER !== "" && sc.name.indexOf(SCENARIO_FILTER) < 0)
            return
        test(sc.name, async () => {
            await runScenario(sc)
        })
    })
    test("total", () => {
        console.log(
            `schedules: ${totalSchedules} in total (${FULL ? "full" : "quick"} profile), ${totalFailures} failing`
        )
    })
})
