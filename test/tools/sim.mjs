// Builds DeviceScript programs and runs them in the WASM simulator, for
// Node-side tests.
//
// `devs build` always writes `.devicescript/bin/bytecode.devs`, so builds are
// serialized: within this process by a promise chain, across processes by
// an atomic `mkdir test/.gen/build.lock`. Each build is copied to a unique
// file under test/.gen (git-ignored). Simulator programs cannot read env
// vars or args, so parameters reach them through a generated entry file
// that calls `main(params)` of a scenario module.

import { spawn } from "node:child_process"
import {
    copyFileSync,
    existsSync,
    mkdirSync,
    readFileSync,
    renameSync,
    rmSync,
    statSync,
    writeFileSync,
} from "node:fs"
import {
    basename,
    dirname,
    isAbsolute,
    join,
    relative,
    resolve,
} from "node:path"
import { fileURLToPath } from "node:url"
import { killPid, onExit, pidAlive, track } from "./proc.mjs"

/** Absolute path of the repository root. */
export const repoRoot = resolve(
    dirname(fileURLToPath(import.meta.url)),
    "../.."
)

/** Absolute path of the directory for generated files (git-ignored). */
export const genDir = join(repoRoot, "test", ".gen")

/** Absolute path of the DeviceScript CLI. */
export const cliPath = join(
    repoRoot,
    "node_modules/@devicescript/cli/built/devicescript-cli.cjs"
)

const bytecodePath = join(repoRoot, ".devicescript/bin/bytecode.devs")
const lockDir = join(genDir, "build.lock")
const LOCK_STALE_MS = 180_000
const LOCK_WAIT_MS = 300_000
const BUILD_TIMEOUT_MS = 120_000

let counter = 0
function unique() {
    return `${process.pid}-${++counter}-${Date.now().toString(36)}`
}

function safeName(name) {
    return String(name || "prog").replace(/[^A-Za-z0-9_.-]/g, "_")
}

/** Removes ANSI escape sequences. */
export function stripAnsi(s) {
    return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "")
}

const delay = ms => new Promise(r => setTimeout(r, ms))

let holdingLock = false
let lockHook = false

function lockIsStale() {
    let st
    try {
        st = statSync(lockDir)
    } catch {
        return false // gone: just retry mkdir
    }
    let owner
    try {
        owner = parseInt(readFileSync(join(lockDir, "owner"), "utf8"))
    } catch {}
    const age = Date.now() - st.mtimeMs
    if (owner) return !pidAlive(owner) || age > LOCK_STALE_MS
    // owner file not written yet (or lost): stale only when old
    return age > 10_000
}

async function acquireLock() {
    mkdirSync(genDir, { recursive: true })
    if (!lockHook) {
        lockHook = true
        onExit(() => {
            if (holdingLock) rmSync(lockDir, { recursive: true, force: true })
        })
    }
    const deadline = Date.now() + LOCK_WAIT_MS
    for (;;) {
        try {
            mkdirSync(lockDir)
            holdingLock = true
            writeFileSync(join(lockDir, "owner"), `${process.pid}\n`)
            return
        } catch (e) {
            if (e.code !== "EEXIST") throw e
        }
        if (lockIsStale()) {
            // move it away atomically, then delete; losing a race here only
            // means another waiter cleaned it up first
            const tomb = `${lockDir}.stale-${unique()}`
            try {
                renameSync(lockDir, tomb)
                rmSync(tomb, { recursive: true, force: true })
            } catch {}
            continue
        }
        if (Date.now() > deadline)
            throw new Error(
                `timed out waiting for the build lock ${lockDir} (remove it if no build is running)`
            )
        await delay(50)
    }
}

function releaseLock() {
    if (!holdingLock) return
    holdingLock = false
    rmSync(lockDir, { recursive: true, force: true })
}

/**
 * Runs a command in its own process group with a hard time bound and
 * collects its output. `env` replaces the environment (default: this
 * process's).
 * @returns {Promise<{ code: number|null, signal: string|null, output: string, timedOut: boolean }>}
 */
export function runCollect(
    cmd,
    args,
    { cwd = repoRoot, timeoutMs, name, env } = {}
) {
    return new Promise((resolvePromise, reject) => {
        const child = spawn(cmd, args, {
            cwd,
            detached: true,
            stdio: ["ignore", "pipe", "pipe"],
            env: env || process.env,
        })
        track(child, name)
        let output = ""
        let timedOut = false
        child.stdout.on("data", d => (output += d))
        child.stderr.on("data", d => (output += d))
        const timer = setTimeout(() => {
            timedOut = true
            killPid(child.pid)
        }, timeoutMs)
        child.on("error", e => {
            clearTimeout(timer)
            reject(e)
        })
        child.on("close", (code, signal) => {
            clearTimeout(timer)
            resolvePromise({
                code,
                signal,
                output: stripAnsi(output),
                timedOut,
            })
        })
    })
}

let buildChain = Promise.resolve()

/**
 * Runs `fn` while holding the build lock (in this process and, through the
 * lock directory, across processes): for anything that writes the shared
 * `.devicescript/bin`, such as `devs build --stats`.
 * @template T
 * @param {() => Promise<T>} fn
 * @returns {Promise<T>}
 */
export function withBuildLock(fn) {
    const run = buildChain.then(async () => {
        await acquireLock()
        try {
            return await fn()
        } finally {
            releaseLock()
        }
    })
    buildChain = run.catch(() => {})
    return run
}

/**
 * Compiles a DeviceScript entry file and copies the bytecode to a unique
 * file under test/.gen. Builds are serialized in this process and, through
 * a lock directory, across processes.
 * @param {string} entryTs path of the entry .ts (absolute or repo-relative)
 * @param {string} [name] base name of the output file (default: entry file name)
 * @returns {Promise<string>} absolute path of `test/.gen/<name>-<unique>.devs`
 * @throws {Error} with the compiler output when the build fails
 */
export function buildDevs(entryTs, name) {
    const run = buildChain.then(() => buildLocked(entryTs, name))
    buildChain = run.catch(() => {})
    return run
}

async function buildLocked(entryTs, name) {
    const abs = resolve(repoRoot, entryTs)
    const rel = relative(repoRoot, abs)
    name = safeName(name || basename(abs).replace(/\.ts$/, ""))
    const out = join(genDir, `${name}-${unique()}.devs`)
    await acquireLock()
    try {
        rmSync(bytecodePath, { force: true })
        const res = await runCollect(
            process.execPath,
            [cliPath, "--no-colors", "build", rel],
            { timeoutMs: BUILD_TIMEOUT_MS, name: `devs build ${rel}` }
        )
        if (res.code !== 0 || !existsSync(bytecodePath)) {
            const why = res.timedOut
                ? `timed out after ${BUILD_TIMEOUT_MS} ms`
                : `exit code ${res.code}${res.signal ? " " + res.signal : ""}`
            throw new Error(`devs build ${rel} failed (${why}):\n${res.output}`)
        }
        copyFileSync(bytecodePath, out)
    } finally {
        releaseLock()
    }
    return out
}

/**
 * Writes a generated entry file `test/.gen/<name>-<unique>.ts` that imports
 * `main` from the scenario module and calls `await main(params)`; when
 * `params` is undefined the entry only imports the module.
 * @param {string} scenarioModule module path, repo-relative (e.g. "test/devs/echo.ts") or absolute
 * @param {any} [params] JSON-serialisable parameters for `main`
 * @param {string} [name] base name (default: module file name)
 * @returns {Promise<string>} absolute path of the entry file
 */
export async function writeEntry(scenarioModule, params, name) {
    mkdirSync(genDir, { recursive: true })
    const abs = isAbsolute(scenarioModule)
        ? scenarioModule
        : resolve(repoRoot, scenarioModule)
    let spec = relative(genDir, abs).split("\\").join("/").replace(/\.ts$/, "")
    if (!spec.startsWith(".")) spec = "./" + spec
    name = safeName(name || basename(abs).replace(/\.ts$/, ""))
    const file = join(genDir, `${name}-${unique()}.ts`)
    const src =
        params === undefined
            ? `import ${JSON.stringify(spec)}\n`
            : `import { main } from ${JSON.stringify(spec)}\n` +
              // the compiler requires `await` on calls of async functions
              `await main(${JSON.stringify(params)})\n`
    writeFileSync(file, src)
    return file
}

/**
 * @typedef {object} DeviceResult
 * @property {number|null} code exit code of the simulator (0: `ds.restart()` in test mode)
 * @property {string|null} signal signal that ended it (SIGKILL after the hard timer or kill())
 * @property {boolean} timedOut the simulator's --test-timeout or the hard kill timer fired
 * @property {string[]} lines program output lines (without "WASM> ", no ANSI codes)
 * @property {string[]} output every output line of the simulator (stdout and stderr)
 */

/**
 * @typedef {object} DeviceHandle
 * @property {number} pid
 * @property {string[]} lines program output lines so far ("WASM> " prefix stripped, ANSI codes removed)
 * @property {string[]} output every output line so far, program or not
 * @property {(pattern: RegExp|string, ms?: number, from?: number) => Promise<string>} waitFor
 *   resolves with the first program line at index >= from (default 0) matching
 *   (a string matches as a substring), also if it already arrived; rejects on
 *   timeout (default 10000 ms) or when the process exits first
 * @property {Promise<DeviceResult>} done settles when the process has exited (never rejects)
 * @property {() => Promise<DeviceResult>} kill SIGKILLs the process group, resolves with done
 */

/**
 * Runs a prebuilt .devs file in the simulator in test mode
 * (`--test --test-self-exit --test-timeout timeoutMs`), with a hard kill
 * timer at timeoutMs + 5 s.
 * @param {string} devsPath
 * @param {{ timeoutMs?: number, onLine?: (line: string) => void, env?: object }} [opts]
 * @returns {DeviceHandle}
 */
export function startDevice(devsPath, { timeoutMs = 30000, onLine, env } = {}) {
    const child = spawn(
        process.execPath,
        [
            cliPath,
            "--no-colors",
            "run",
            resolve(repoRoot, devsPath),
            "--test",
            "--test-self-exit",
            "--test-timeout",
            String(timeoutMs),
        ],
        {
            cwd: repoRoot,
            detached: true,
            stdio: ["ignore", "pipe", "pipe"],
            env: { ...process.env, ...env },
        }
    )
    track(child, `devs run ${basename(devsPath)}`)

    const lines = []
    const output = []
    const waiters = new Set()
    let exited = false
    let hardKilled = false

    const matches = (pattern, line) => {
        if (typeof pattern === "string") return line.includes(pattern)
        pattern.lastIndex = 0
        return pattern.test(line)
    }
    const tail = () => output.slice(-30).join("\n")

    const addLine = raw => {
        const line = stripAnsi(raw.replace(/\r$/, ""))
        output.push(line)
        const m = /^WASM> ?/.exec(line)
        if (!m) return
        const prog = line.slice(m[0].length)
        lines.push(prog)
        if (onLine) {
            try {
                onLine(prog)
            } catch (e) {
                console.error("onLine threw", e)
            }
        }
        for (const w of [...waiters]) w.check(prog, lines.length - 1)
    }
    const splitter = () => {
        let buf = ""
        return {
            data(d) {
                buf += d
                let i
                while ((i = buf.indexOf("\n")) >= 0) {
                    addLine(buf.slice(0, i))
                    buf = buf.slice(i + 1)
                }
            },
            end() {
                if (buf) addLine(buf)
                buf = ""
            },
        }
    }
    const so = splitter()
    const se = splitter()
    child.stdout.setEncoding("utf8")
    child.stderr.setEncoding("utf8")
    child.stdout.on("data", so.data)
    child.stderr.on("data", se.data)

    const hardTimer = setTimeout(() => {
        hardKilled = true
        killPid(child.pid)
    }, timeoutMs + 5000)

    const done = new Promise(resolveDone => {
        const finish = (code, signal) => {
            if (exited) return
            exited = true
            clearTimeout(hardTimer)
            so.end()
            se.end()
            const timedOut =
                hardKilled ||
                output.some(l => l === "timeout" || l === "Error: timeout")
            for (const w of [...waiters])
                w.fail(
                    `process exited (code ${code}, signal ${signal}${
                        timedOut ? ", timed out" : ""
                    }) before`
                )
            resolveDone({ code, signal, timedOut, lines, output })
        }
        child.on("close", finish)
        child.on("error", e => {
            output.push(`spawn error: ${e.message}`)
            finish(null, null)
        })
    })

    /** @type {DeviceHandle["waitFor"]} */
    const waitFor = (pattern, ms = 10000, from = 0) =>
        new Promise((resolveWait, rejectWait) => {
            for (let i = from; i < lines.length; i++)
                if (matches(pattern, lines[i])) return resolveWait(lines[i])
            const what = `waiting for ${pattern} from ${basename(devsPath)}`
            if (exited)
                return rejectWait(
                    new Error(
                        `process already exited, ${what}; last lines:\n${tail()}`
                    )
                )
            const w = {
                check(line, idx) {
                    if (idx >= from && matches(pattern, line)) {
                        cleanup()
                        resolveWait(line)
                    }
                },
                fail(why) {
                    cleanup()
                    rejectWait(
                        new Error(`${why} ${what}; last lines:\n${tail()}`)
                    )
                },
            }
            const timer = setTimeout(
                () => w.fail(`timed out after ${ms} ms`),
                ms
            )
            const cleanup = () => {
                clearTimeout(timer)
                waiters.delete(w)
            }
            waiters.add(w)
        })

    return {
        pid: child.pid,
        lines,
        output,
        waitFor,
        done,
        kill() {
            killPid(child.pid)
            return done
        },
    }
}

/**
 * writeEntry + buildDevs + startDevice.
 * @param {string} scenarioModule repo-relative module path (e.g. "test/devs/echo.ts")
 * @param {any} [params] passed to `main` (undefined: the module runs on import)
 * @param {{ timeoutMs?: number, onLine?: (line: string) => void, env?: object, name?: string }} [opts]
 * @returns {Promise<DeviceHandle>}
 */
export async function runDevice(scenarioModule, params, opts = {}) {
    const entry = await writeEntry(scenarioModule, params, opts.name)
    const devs = await buildDevs(entry)
    return startDevice(devs, opts)
}

/**
 * runDevice and wait for the program to end.
 * @param {string} scenarioModule
 * @param {any} [params]
 * @param {{ timeoutMs?: number, onLine?: (line: string) => void, env?: object, name?: string }} [opts]
 * @returns {Promise<DeviceResult>}
 */
export async function runDeviceToEnd(scenarioModule, params, opts) {
    const dev = await runDevice(scenarioModule, params, opts)
    return dev.done
}
