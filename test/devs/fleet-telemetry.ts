import * as ds from "@devicescript/core"
import { MQTTClient } from "../../src/index"

/**
 * One device of a fleet: default options, QoS 1 telemetry "<clientId>,<n>"
 * on `<topic>/<clientId>` each second (each publish in a fiber of its own,
 * so the loop keeps its pace while the broker is away), until a message on
 * `stopTopic`. Then it waits for the publishes still pending and prints
 * `SENT seq=N ok=K failed=F`.
 *
 * Every device runs the same build: its client id is `<prefix>-<k>`, k
 * being the retained message on `idTopic` when it starts (read by a
 * throwaway client first; the test starts the devices one at a time and
 * sets that message before each).
 */
export async function main(p: {
    port: number
    prefix: string
    idTopic: string
    topic: string
    stopTopic: string
}) {
    const idc = new MQTTClient(p.prefix + "-id", "127.0.0.1", p.port)
    let idx = -1
    idc.setCallback((topic, msg) => {
        idx = parseInt(msg.toString())
    })
    await idc.connect()
    await idc.subscribe(p.idTopic, 1)
    while (!(idx >= 0)) await idc.waitMsg()
    await idc.disconnect()
    const clientId = `${p.prefix}-${idx}`
    const topic = `${p.topic}/${clientId}`
    console.log(`ID ${clientId}`)

    const c = new MQTTClient(clientId, "127.0.0.1", p.port)
    const st = { ok: 0, failed: 0, pending: 0 }
    let stop = false
    c.setCallback((topic, msg) => {
        if (topic === p.stopTopic) stop = true
    })
    c.setReconnectCallback((state, err) => {
        console.log(`RECONNECT state=${state} at=${ds.millis()}`)
    })
    await c.connect()
    await c.subscribe(p.stopTopic, 1)
    console.log("READY")
    let seq = 0
    while (!stop) {
        publishOne(c, topic, `${clientId},${seq}`, st)
        seq++
        try {
            await c.checkMsg()
        } catch (e) {
            console.log(`checkMsg threw: ${(e as Error).message}`)
        }
        await ds.sleep(1000)
    }
    const deadline = ds.millis() + 90000
    while (st.pending > 0 && ds.millis() < deadline) await ds.sleep(100)
    console.log(`SENT seq=${seq} ok=${st.ok} failed=${st.failed} pending=${st.pending}`)
    await c.disconnect()
    console.log("DONE")
    ds.restart()
}

function publishOne(
    c: MQTTClient,
    topic: string,
    msg: string,
    st: { ok: number; failed: number; pending: number }
) {
    st.pending++
    ;(async () => {
        try {
            await c.publish(topic, msg, false, 1)
            st.ok++
        } catch (e) {
            st.failed++
            console.log(`FAILED ${msg}: ${(e as Error).message}`)
        }
        st.pending--
    }).start()
}
