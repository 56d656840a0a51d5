// One program for many runs with different parameters, read at run time
// (test/devs/devconfig.ts) from a retained message on the test's broker:
// the program connects a client of its own first and prints CONFIG, and the
// test can publish and wait in between. (Only the broker's port and the
// topic go into the bytecode, written there by buildDevs: one build serves
// all runs, test/tools/sim.mjs.)

import { basename, resolve } from "node:path"
import { connectPeer, endPeer } from "./brokers.mjs"
import { buildDevs, importSpec, paramsSource, repoRoot, startDevice, writeScenarioEntry } from "./sim.mjs"

const builds = new Map() // "module@port" -> Promise<string> (.devs path)
let chain = Promise.resolve()

/**
 * The entry of a program that reads its parameters with readConfig, for a
 * module outside sim.mjs's bundle of all scenarios or when the bundle does
 * not compile.
 * @param {string} scenarioModule absolute or repo-relative
 */
export function configuredSource(scenarioModule) {
    return (
        `import { readConfig } from ${JSON.stringify(importSpec("test/devs/devconfig.ts"))}\n` +
        `import { main } from ${JSON.stringify(importSpec(scenarioModule))}\n` +
        paramsSource("where") +
        `const params = await readConfig(where.port, where.topic)\n` +
        `await main(params)\n`
    )
}

function build(scenarioModule, port, topic) {
    const key = `${scenarioModule}@${port}`
    if (!builds.has(key)) {
        const name = basename(scenarioModule).replace(/\.ts$/, "")
        const where = { port, topic }
        const entry = writeScenarioEntry(
            resolve(repoRoot, scenarioModule),
            `${name}-cfg`,
            { where },
            { src: configuredSource(scenarioModule), json: JSON.stringify(where) }
        )
        const p = buildDevs(entry, `${name}-cfg`)
        p.catch(() => builds.delete(key))
        builds.set(key, p)
    }
    return builds.get(key)
}

/**
 * Starts `scenarioModule`'s `main(params)` in the simulator, building the
 * program once per module and broker port in this process. The parameters
 * go through a retained message on the broker at 127.0.0.1:brokerPort;
 * starts are serialized so each program reads its own. Resolves once the
 * program has read them (printed CONFIG).
 * @param {number} brokerPort a broker the program can reach directly
 * @param {string} scenarioModule repo-relative, e.g. "test/devs/inbound-burst.ts"
 * @param {any} params JSON-serialisable
 * @param {{ timeoutMs?: number, onLine?: (line: string) => void, env?: object }} [opts] for startDevice
 * @returns {Promise<import("./sim.mjs").DeviceHandle>}
 */
export function startConfigured(brokerPort, scenarioModule, params, opts = {}) {
    const run = chain.then(async () => {
        const topic = `devcfg/${process.pid}/${basename(scenarioModule)}`
        const devs = await build(scenarioModule, brokerPort, topic)
        const peer = await connectPeer(brokerPort)
        let dev
        try {
            await peer.publishAsync(topic, JSON.stringify(params), { qos: 1, retain: true })
            dev = startDevice(devs, opts)
            await dev.waitFor("CONFIG", 30000)
            await peer.publishAsync(topic, "", { qos: 1, retain: true })
            return dev
        } catch (e) {
            if (dev) await dev.kill()
            throw e
        } finally {
            await endPeer(peer)
        }
    })
    chain = run.catch(() => {})
    return run
}
