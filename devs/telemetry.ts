import * as ds from "@devicescript/core"
import { readSetting } from "@devicescript/settings"
import { MQTTClient } from "../src/index"
import { StatusLed } from "./led"
import { brokerSettings } from "./settings"

/*
 * A telemetry device:
 * - `<prefix>/status`: "online" (retained) once connected, and "offline"
 *   (retained) through the will when the device disappears without saying
 *   goodbye; "online" again after every reconnection (the broker published
 *   the will when the link died);
 * - `<prefix>/telemetry`: every `intervalMs` a JSON object
 *   {"uptime": seconds, "count": n, "led": bool} at QoS 1;
 * - `<prefix>/cmd`: "toggle" (or anything else), "on", "off" switch the
 *   board's status LED (logged as "LED on" / "LED off").
 * `<prefix>` is `devices/<client id>` unless the setting MQTT_PREFIX says
 * otherwise. The client reconnects by itself (`reconn: true`).
 *
 * As a program (`npm run telemetry`, a board build, `devs bundle`) it reads
 * the broker from the settings (devs/settings.ts) and the interval from
 * TELEM_MS (ms, default 2000). Tests call `main(params)` instead.
 */

export interface TelemetryParams {
    host: string
    port: number
    clientId: string
    user?: string
    password?: string
    tls?: boolean
    /** topic prefix (default `devices/<clientId>`) */
    prefix?: string
    /** ms between two telemetry messages (default 2000) */
    intervalMs?: number
    /** MQTT keepalive in seconds (default 30) */
    keepalive?: number
}

export const DEFAULT_INTERVAL_MS = 2000

/** Runs the device until the program ends; never returns. */
export async function runTelemetry(p: TelemetryParams) {
    const prefix = p.prefix || `devices/${p.clientId}`
    const statusTopic = `${prefix}/status`
    const telemetryTopic = `${prefix}/telemetry`
    const cmdTopic = `${prefix}/cmd`
    const interval = p.intervalMs > 0 ? p.intervalMs : DEFAULT_INTERVAL_MS
    const led = new StatusLed()

    const c = new MQTTClient(p.clientId, p.host, p.port, {
        user: p.user,
        password: p.password,
        ssl: !!p.tls,
        keepalive: p.keepalive > 0 ? p.keepalive : 30,
        reconn: true,
    })
    c.setLastWill(statusTopic, "offline", true, 1)

    const announce = async () => {
        try {
            await c.publish(statusTopic, "online", true, 1)
            console.log(`status: online (${statusTopic})`)
        } catch (e) {
            console.warn(`status: could not publish online: ${(e as Error).message}`)
        }
    }

    c.setCallback(async (topic, msg) => {
        if (topic !== cmdTopic) return
        const cmd = msg.toString().trim().toLowerCase()
        console.log(`command: ${cmd}`)
        if (cmd === "on" || cmd === "1") await led.set(true)
        else if (cmd === "off" || cmd === "0") await led.set(false)
        else await led.toggle()
    })
    c.errorRegisterCb(err => {
        console.warn(`mqtt error: ${err.message}`)
    })
    c.setReconnectCallback((state, err) => {
        if (state === 0) {
            console.log("reconnected")
            // the broker published the will when the link died: say online again
            announce.start()
        } else {
            console.log(`connection lost (${err ? err.message : "?"}), reconnecting`)
        }
    })

    // the first connection: retry until the broker answers (internal
    // reconnection only repairs a connection that was once established)
    const who = p.user ? ` as ${p.user}${p.password ? " (password set)" : ""}` : ""
    let wait = 1000
    for (;;) {
        console.log(`connecting to ${p.host}:${p.port}${who}${p.tls ? " over TLS" : ""}`)
        try {
            await c.connect()
            break
        } catch (e) {
            console.warn(`connect failed: ${(e as Error).message}; again in ${wait} ms`)
            await ds.sleep(wait)
            wait = Math.min(wait * 2, 30000)
        }
    }
    console.log(`connected as ${p.clientId}`)
    await c.subscribe(cmdTopic, 1)
    await announce()
    await led.set(false)

    // telemetry in its own fiber; QoS 1 publishes wait for PUBACK, and queue
    // (bounded) while the client reconnects
    let count = 0
    const sendTelemetry = async () => {
        for (;;) {
            count++
            const body = JSON.stringify({
                uptime: Math.round(ds.millis() / 1000),
                count: count,
                led: led.on,
            })
            try {
                await c.publish(telemetryTopic, body, false, 1)
                console.log(`telemetry ${count} sent`)
            } catch (e) {
                console.warn(`telemetry ${count} not sent: ${(e as Error).message}`)
            }
            await ds.sleep(interval)
        }
    }
    sendTelemetry.start()
    console.log(`telemetry every ${interval} ms on ${telemetryTopic}, commands on ${cmdTopic}`)

    // commands: the message callback runs inside waitMsg
    for (;;) {
        try {
            await c.waitMsg()
        } catch (e) {
            console.warn(`waitMsg: ${(e as Error).message}`)
            await ds.sleep(1000)
        }
    }
}

let driven = false

/** Entry for tests and other programs: runs the device with these parameters. */
export async function main(p: TelemetryParams) {
    driven = true
    await runTelemetry(p)
}

// As a program nobody calls main(): read the broker from the settings.
// (A program that imports this module and calls main() right away wins.)
setTimeout(async () => {
    if (driven) return
    const cfg = await brokerSettings("umqtt_telemetry")
    const interval: number = await readSetting("TELEM_MS", DEFAULT_INTERVAL_MS)
    const prefix: string = await readSetting("MQTT_PREFIX", "")
    await runTelemetry({
        host: cfg.host,
        port: cfg.port,
        clientId: cfg.clientId,
        user: cfg.user,
        password: cfg.password,
        tls: cfg.tls,
        prefix: prefix || undefined,
        intervalMs: interval,
    })
}, 1)
