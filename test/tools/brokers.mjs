// MQTT brokers (in-process aedes, mosquitto child process) and MQTT.js
// peers for Node-side tests. Everything listens on 127.0.0.1 only.

import { spawn } from "node:child_process"
import {
    accessSync,
    constants,
    mkdirSync,
    mkdtempSync,
    rmSync,
    writeFileSync,
} from "node:fs"
import net from "node:net"
import { tmpdir, userInfo } from "node:os"
import { delimiter, join } from "node:path"
import { Aedes } from "aedes"
import mqtt from "mqtt"
import { killPid, onExit, pidAlive, track } from "./proc.mjs"

const delay = ms => new Promise(r => setTimeout(r, ms))

/** Rejects with `what` after ms unless the promise settles first. */
export function withTimeout(promise, ms, what) {
    let timer
    return Promise.race([
        promise,
        new Promise((_, reject) => {
            timer = setTimeout(
                () => reject(new Error(`timed out after ${ms} ms: ${what}`)),
                ms
            )
        }),
    ]).finally(() => clearTimeout(timer))
}

// ---------------------------------------------------------------- aedes

/**
 * @typedef {object} AedesHandle
 * @property {number} port
 * @property {Aedes} broker the aedes instance (events: client, publish, subscribe, clientDisconnect, ...)
 * @property {net.Server} server
 * @property {"aedes"} kind
 * @property {() => Promise<void>} close destroys all client sockets, closes server and broker
 */

/**
 * Starts an in-process aedes broker on 127.0.0.1.
 * @param {{ port?: number, authenticate?: Function, authorizeSubscribe?: Function,
 *   authorizePublish?: Function, persistence?: any, [opt: string]: any }} [opts]
 *   aedes callbacks use the aedes 1.x signatures, e.g.
 *   authenticate(client, username, password: Buffer, cb(err, ok)),
 *   authorizeSubscribe(client, sub, cb(err, sub|null)); other keys are passed to aedes
 * @returns {Promise<AedesHandle>}
 */
export async function startAedes({ port = 0, ...aedesOpts } = {}) {
    for (const k of Object.keys(aedesOpts))
        if (aedesOpts[k] === undefined) delete aedesOpts[k]
    const broker = await Aedes.createBroker(aedesOpts)
    const sockets = new Set()
    const server = net.createServer(sock => {
        sockets.add(sock)
        sock.on("close", () => sockets.delete(sock))
        // a peer resetting the connection must not crash the test process
        sock.on("error", () => {})
        broker.handle(sock)
    })
    try {
        await new Promise((resolve, reject) => {
            server.once("error", reject)
            server.listen(port, "127.0.0.1", () => {
                server.off("error", reject)
                resolve()
            })
        })
    } catch (e) {
        await new Promise(r => broker.close(r))
        throw e
    }
    let closing
    const handle = {
        kind: "aedes",
        port: server.address().port,
        broker,
        server,
        close() {
            if (!closing) {
                closing = (async () => {
                    const serverClosed = new Promise(r =>
                        server.close(() => r())
                    )
                    for (const s of sockets) s.destroy()
                    await withTimeout(
                        Promise.all([
                            serverClosed,
                            new Promise(r => broker.close(() => r())),
                        ]),
                        5000,
                        "closing aedes"
                    ).catch(() => {})
                })()
            }
            return closing
        },
    }
    return handle
}

// ---------------------------------------------------------------- mosquitto

function currentUser() {
    try {
        return userInfo().username
    } catch {
        return process.getuid && process.getuid() === 0 ? "root" : "mosquitto"
    }
}

/**
 * Path of the mosquitto binary, or null: env MOSQUITTO when set (a path,
 * or "none" to pretend it is absent), else /usr/sbin/mosquitto or on PATH.
 * @returns {string|null}
 */
export function mosquittoPath() {
    const env = process.env.MOSQUITTO
    if (env) {
        if (env === "none") return null
        try {
            accessSync(env, constants.X_OK)
            return env
        } catch {
            return null
        }
    }
    const dirs = [
        "/usr/sbin",
        "/usr/local/sbin",
        ...(process.env.PATH || "").split(delimiter).filter(Boolean),
    ]
    for (const d of dirs) {
        const p = join(d, "mosquitto")
        try {
            accessSync(p, constants.X_OK)
            return p
        } catch {}
    }
    return null
}

/** @returns {boolean} true when mosquitto is installed */
export function mosquittoAvailable() {
    return mosquittoPath() !== null
}

/**
 * Finds a free TCP port on 127.0.0.1 (listen on port 0, close).
 * @returns {Promise<number>}
 */
export function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer()
        srv.unref()
        srv.once("error", reject)
        srv.listen(0, "127.0.0.1", () => {
            const { port } = srv.address()
            srv.close(() => resolve(port))
        })
    })
}

/**
 * Resolves true when a TCP connection to 127.0.0.1:port succeeds.
 * @param {number} port
 * @param {number} [ms]
 * @returns {Promise<boolean>}
 */
export function canConnect(port, ms = 500) {
    return new Promise(resolve => {
        const sock = net.connect({ port, host: "127.0.0.1" })
        const done = ok => {
            clearTimeout(timer)
            sock.destroy()
            resolve(ok)
        }
        const timer = setTimeout(() => done(false), ms)
        sock.once("connect", () => done(true))
        sock.once("error", () => done(false))
    })
}

/**
 * @typedef {object} MosquittoHandle
 * @property {"mosquitto"} kind
 * @property {number} port
 * @property {number} pid pid of the current mosquitto process (changes on restart)
 * @property {string} dir temporary directory with mosquitto.conf (and mosquitto.db)
 * @property {string} configPath
 * @property {string[]} log log lines of all runs (stdout and stderr)
 * @property {(pattern: RegExp|string, ms?: number, from?: number) => Promise<string>} waitForLog
 *   resolves with the first log line at index >= from (default 0) matching, also if it
 *   already arrived; rejects on timeout (default 5000 ms)
 * @property {() => Promise<void>} close SIGTERM, SIGKILL after 2 s; awaits exit; removes the temp dir
 *   (unless keepDir or dir was given)
 * @property {() => Promise<void>} kill SIGKILL (no persistence save); awaits exit
 * @property {(opts?: { kill?: boolean }) => Promise<void>} restart stops (SIGTERM, or SIGKILL
 *   with kill: true) and starts again on the same port and config
 */

/**
 * Starts mosquitto on 127.0.0.1 with a generated config.
 * @param {{ port?: number, config?: string[], persistence?: boolean, dir?: string,
 *   keepDir?: boolean, startTimeoutMs?: number }} [opts]
 *   port 0 picks a free port; config: extra config lines (they are appended,
 *   and an `allow_anonymous` or `user` line there replaces the default);
 *   persistence: store mosquitto.db in the directory; dir: use this directory
 *   instead of a fresh temporary one (kept on close)
 * @returns {Promise<MosquittoHandle>}
 */
export async function startMosquitto({
    port = 0,
    config = [],
    persistence = false,
    dir,
    keepDir = false,
    startTimeoutMs = 10000,
} = {}) {
    const bin = mosquittoPath()
    if (!bin) throw new Error("mosquitto is not installed")
    const ownDir = !dir
    dir = dir || mkdtempSync(join(tmpdir(), "umqtt-mosq-"))
    mkdirSync(dir, { recursive: true })
    const removeDir = () => {
        if (ownDir && !keepDir) rmSync(dir, { recursive: true, force: true })
    }
    const unregisterDirCleanup = onExit(removeDir)

    const configPath = join(dir, "mosquitto.conf")
    const has = key => config.some(l => new RegExp(`^\\s*${key}\\s`).test(l))
    const writeConfig = p => {
        const lines = [`listener ${p} 127.0.0.1`]
        if (!has("allow_anonymous")) lines.push("allow_anonymous true")
        // as root, mosquitto would switch to user "mosquitto", which cannot
        // write the temporary directory; ignored when not root
        if (!has("user")) lines.push(`user ${currentUser()}`)
        lines.push("log_type all", "log_dest stderr", "log_timestamp true")
        if (persistence)
            lines.push(
                "persistence true",
                `persistence_location ${dir.endsWith("/") ? dir : dir + "/"}`,
                "persistence_file mosquitto.db"
            )
        else lines.push("persistence false")
        lines.push(...config, "")
        writeFileSync(configPath, lines.join("\n"))
    }

    const log = []
    const waiters = new Set()
    let child = null
    let exitPromise = Promise.resolve()

    const addLog = line => {
        log.push(line)
        for (const w of [...waiters]) w(line, log.length - 1)
    }

    const spawnOnce = p => {
        const c = spawn(bin, ["-c", configPath], {
            cwd: dir,
            detached: true,
            stdio: ["ignore", "pipe", "pipe"],
        })
        track(c, `mosquitto :${p}`)
        for (const stream of [c.stdout, c.stderr]) {
            let buf = ""
            stream.setEncoding("utf8")
            stream.on("data", d => {
                buf += d
                let i
                while ((i = buf.indexOf("\n")) >= 0) {
                    addLog(buf.slice(0, i))
                    buf = buf.slice(i + 1)
                }
            })
            stream.on("end", () => {
                if (buf) addLog(buf)
                buf = ""
            })
        }
        let exited = false
        exitPromise = new Promise(resolve => {
            c.on("exit", (code, signal) => {
                exited = true
                addLog(
                    `[harness] mosquitto pid ${c.pid} exited (code ${code}, signal ${signal})`
                )
                resolve()
            })
            c.on("error", e => {
                exited = true
                addLog(`[harness] spawn error: ${e.message}`)
                resolve()
            })
        })
        child = c
        return { c, isExited: () => exited }
    }

    const startOn = async p => {
        writeConfig(p)
        const from = log.length
        const { c, isExited } = spawnOnce(p)
        const deadline = Date.now() + startTimeoutMs
        for (;;) {
            if (isExited()) {
                const out = log.slice(from).join("\n")
                const err = new Error(
                    `mosquitto failed to start on port ${p}:\n${out}`
                )
                err.addressInUse = /Address already in use/i.test(out)
                throw err
            }
            if (await canConnect(p, 300)) return c
            if (Date.now() > deadline) {
                killPid(c.pid)
                throw new Error(
                    `mosquitto did not accept connections on ${p} within ${startTimeoutMs} ms:\n` +
                        log.slice(from).join("\n")
                )
            }
            await delay(50)
        }
    }

    try {
        if (port) {
            await startOn(port)
        } else {
            // a free port can be taken between probing and binding: retry
            for (let attempt = 0; ; attempt++) {
                const p = await freePort()
                try {
                    await startOn(p)
                    port = p
                    break
                } catch (e) {
                    if (!e.addressInUse || attempt >= 4) throw e
                }
            }
        }
    } catch (e) {
        unregisterDirCleanup()
        removeDir()
        throw e
    }

    const stop = async signal => {
        const c = child
        if (!c || c.exitCode !== null || c.signalCode !== null)
            return exitPromise
        killPid(c.pid, signal)
        if (signal !== "SIGKILL") {
            const t = setTimeout(() => killPid(c.pid, "SIGKILL"), 2000)
            await exitPromise
            clearTimeout(t)
        } else await exitPromise
    }

    let closed = false
    /** @type {MosquittoHandle} */
    const handle = {
        kind: "mosquitto",
        port,
        get pid() {
            return child.pid
        },
        dir,
        configPath,
        log,
        waitForLog(pattern, ms = 5000, from = 0) {
            const match = line =>
                typeof pattern === "string"
                    ? line.includes(pattern)
                    : ((pattern.lastIndex = 0), pattern.test(line))
            return new Promise((resolve, reject) => {
                for (let i = from; i < log.length; i++)
                    if (match(log[i])) return resolve(log[i])
                const w = (line, idx) => {
                    if (idx >= from && match(line)) {
                        clearTimeout(timer)
                        waiters.delete(w)
                        resolve(line)
                    }
                }
                const timer = setTimeout(() => {
                    waiters.delete(w)
                    reject(
                        new Error(
                            `timed out after ${ms} ms waiting for ${pattern} in the mosquitto log; last lines:\n` +
                                log.slice(-30).join("\n")
                        )
                    )
                }, ms)
                waiters.add(w)
            })
        },
        async close() {
            await stop("SIGTERM")
            if (!closed) {
                closed = true
                unregisterDirCleanup()
                removeDir()
            }
        },
        async kill() {
            await stop("SIGKILL")
        },
        async restart({ kill = false } = {}) {
            if (closed) throw new Error("mosquitto handle is closed")
            await stop(kill ? "SIGKILL" : "SIGTERM")
            await startOn(port)
        },
    }
    return handle
}

// ---------------------------------------------------------------- kinds

/**
 * Broker kinds available here: mosquitto only when installed.
 * @returns {("aedes"|"mosquitto")[]}
 */
export function brokerKinds() {
    return mosquittoAvailable() ? ["aedes", "mosquitto"] : ["aedes"]
}

/**
 * Starts a broker of the given kind; opts go to startAedes or startMosquitto.
 * Both handles have `kind`, `port` and `close()`.
 * @param {"aedes"|"mosquitto"} kind
 * @param {object} [opts]
 * @returns {Promise<AedesHandle|MosquittoHandle>}
 */
export function startBroker(kind, opts) {
    if (kind === "aedes") return startAedes(opts)
    if (kind === "mosquitto") return startMosquitto(opts)
    throw new Error(`unknown broker kind ${kind}`)
}

// ---------------------------------------------------------------- peers

/**
 * Connects an MQTT.js client to 127.0.0.1:port and waits for CONNACK.
 * Defaults: protocolVersion 4, clean, no automatic reconnect,
 * a unique clientId; opts are MQTT.js options (and override these).
 * @param {number} port
 * @param {import("mqtt").IClientOptions & { timeoutMs?: number }} [opts]
 * @returns {Promise<import("mqtt").MqttClient>} rejects on error, close or timeout before CONNACK
 */
export function connectPeer(port, { timeoutMs = 5000, ...opts } = {}) {
    return new Promise((resolve, reject) => {
        const client = mqtt.connect({
            host: "127.0.0.1",
            port,
            protocol: "mqtt",
            protocolVersion: 4,
            clean: true,
            reconnectPeriod: 0,
            connectTimeout: timeoutMs,
            clientId: `peer-${process.pid}-${Math.random().toString(36).slice(2, 10)}`,
            ...opts,
        })
        const fail = err => {
            cleanup()
            client.end(true)
            reject(err)
        }
        const onError = e => fail(e)
        const onClose = () =>
            fail(
                new Error(
                    `peer connection to port ${port} closed before CONNACK`
                )
            )
        const onConnect = () => {
            cleanup()
            resolve(client)
        }
        const timer = setTimeout(
            () =>
                fail(
                    new Error(
                        `peer connect to port ${port} timed out after ${timeoutMs} ms`
                    )
                ),
            timeoutMs
        )
        const cleanup = () => {
            clearTimeout(timer)
            client.off("error", onError)
            client.off("close", onClose)
            client.off("connect", onConnect)
        }
        client.on("error", onError)
        client.on("close", onClose)
        client.on("connect", onConnect)
    })
}

/**
 * True when the MQTT topic filter (with + and #) matches the topic.
 * @param {string} filter
 * @param {string} topic
 * @returns {boolean}
 */
export function topicMatches(filter, topic) {
    const f = filter.split("/")
    const t = topic.split("/")
    // [MQTT-4.7.2-1] wildcards at the first level do not match $ topics
    if (topic.startsWith("$") && (f[0] === "+" || f[0] === "#")) return false
    for (let i = 0; i < f.length; i++) {
        if (f[i] === "#") return true
        if (i >= t.length) return false
        if (f[i] !== "+" && f[i] !== t[i]) return false
    }
    return f.length === t.length
}

/**
 * @typedef {object} Collected
 * @property {string} topic
 * @property {Buffer} payload
 * @property {number} qos
 * @property {boolean} retain
 * @property {boolean} dup
 */

/**
 * Subscribes the peer to topicFilter and collects the matching messages.
 * Default subscription QoS is 2, so each message arrives with the QoS it
 * was published with.
 * @param {import("mqtt").MqttClient} peer
 * @param {string} topicFilter
 * @param {{ qos?: 0|1|2, timeoutMs?: number }} [opts]
 * @returns {Promise<{ messages: Collected[], granted: any[],
 *   waitForCount: (n: number, ms?: number) => Promise<Collected[]>, stop: () => void }>}
 */
export async function collect(
    peer,
    topicFilter,
    { qos = 2, timeoutMs = 5000 } = {}
) {
    const messages = []
    const waiters = new Set()
    const onMessage = (topic, payload, packet) => {
        if (!topicMatches(topicFilter, topic)) return
        messages.push({
            topic,
            payload,
            qos: packet.qos,
            retain: !!packet.retain,
            dup: !!packet.dup,
        })
        for (const w of [...waiters]) w()
    }
    peer.on("message", onMessage)
    let granted
    try {
        granted = await withTimeout(
            peer.subscribeAsync(topicFilter, { qos }),
            timeoutMs,
            `subscribing to ${topicFilter}`
        )
    } catch (e) {
        peer.off("message", onMessage)
        throw e
    }
    return {
        messages,
        granted,
        waitForCount(n, ms = 5000) {
            return new Promise((resolve, reject) => {
                if (messages.length >= n) return resolve(messages)
                const w = () => {
                    if (messages.length >= n) {
                        clearTimeout(timer)
                        waiters.delete(w)
                        resolve(messages)
                    }
                }
                const timer = setTimeout(() => {
                    waiters.delete(w)
                    reject(
                        new Error(
                            `timed out after ${ms} ms waiting for ${n} messages on ${topicFilter}, got ${messages.length}: ` +
                                messages
                                    .slice(-10)
                                    .map(
                                        m =>
                                            `${m.topic}=${m.payload.toString().slice(0, 60)}`
                                    )
                                    .join(", ")
                        )
                    )
                }, ms)
                waiters.add(w)
            })
        },
        stop() {
            peer.off("message", onMessage)
        },
    }
}

/**
 * Ends an MQTT.js peer (DISCONNECT), forcing it after ms.
 * @param {import("mqtt").MqttClient} peer
 * @param {number} [ms]
 * @returns {Promise<void>}
 */
export async function endPeer(peer, ms = 2000) {
    if (!peer) return
    await withTimeout(peer.endAsync(), ms, "ending peer").catch(() =>
        peer.end(true)
    )
}

export { pidAlive }
