// Builds DeviceScript programs and runs them in the WASM simulator, for
// Node-side tests.
//
// Simulator programs cannot read env vars or args, so parameters reach them
// through a generated entry file that calls `main(params)` of a scenario
// module. A build costs seconds, so:
//  - the parameters are not compiled in: the entry holds a padded string
//    literal, and each run gets a copy of the bytecode with its parameters
//    (JSON) written over the padding (`linkParams`). One build of a scenario
//    serves every run of it, whatever the ports, topics and counts.
//  - builds are cached by content (`buildCache`): the key hashes the entry
//    text with every source a build can read (.ts, .json, .env* of the
//    repository) and the CLI, so a changed source is never served stale.
//  - with UMQTT_BUILD_SERVER set (test/run.mjs starts test/tools/buildserver.mjs)
//    the compiler stays loaded in one process for the whole run; without
//    it, `devs build` runs as a child process.
// `devs build` always writes `.devicescript/bin`, so compiles are
// serialized: within this process by a promise chain, across processes by
// an atomic `mkdir test/.gen/build.lock`. Each run gets its own copy of the
// bytecode under test/.gen (git-ignored).

import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import {
    appendFileSync,
    copyFileSync,
    existsSync,
    mkdirSync,
    readdirSync,
    readFileSync,
    renameSync,
    rmSync,
    statSync,
    utimesSync,
    writeFileSync,
} from "node:fs"
import { connect } from "node:net"
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

/** Absolute path of the build cache (kept across runs; see test/run.mjs). */
export const cacheDir = join(genDir, "cache")

/** One line per build request: compiled or served from the cache. */
export const buildLogPath = join(genDir, "builds.log")

// bump when the entry templates or the cache layout change
const CACHE_FORMAT = "1"

/**
 * Hash of everything a build reads besides its entry: every .ts and .json
 * of the repository (src/, test/devs/, test/unit/, devs/, boards/,
 * devsconfig.json, package.json, ...), the .env* settings files, and the
 * CLI (its version and size). Computed for every build: a few ms, and a
 * source edited during a run is picked up by the next build.
 */
function sourcesHash() {
    const h = createHash("sha256")
    const skip = new Set(["node_modules", ".git", ".devicescript", ".gen"])
    const walk = dir => {
        for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
            a.name < b.name ? -1 : a.name > b.name ? 1 : 0
        )) {
            const p = join(dir, e.name)
            if (e.isDirectory()) {
                if (!skip.has(e.name)) walk(p)
            } else if (
                /\.(ts|json)$/.test(e.name) ||
                (dir === repoRoot && e.name.startsWith(".env")) ||
                relative(repoRoot, dir).split(/[\\/]/)[0] === "services"
            ) {
                h.update(`${relative(repoRoot, p)}\0`)
                h.update(readFileSync(p))
                h.update("\0")
            }
        }
    }
    walk(repoRoot)
    const cliPkg = readFileSync(join(dirname(dirname(cliPath)), "package.json"), "utf8")
    h.update(`cli ${JSON.parse(cliPkg).version} ${statSync(cliPath).size}\0`)
    return h.digest("hex")
}

/**
 * Appends to test/.gen/builds.log: "compiled" (a compile), "waited" (for
 * the build server's compile) or "cached", the milliseconds, the entry and
 * the test file.
 */
export function logBuild(what, ms, rel) {
    try {
        mkdirSync(genDir, { recursive: true })
        const file = basename(process.argv[1] || "?")
        appendFileSync(buildLogPath, `${what} ${ms} ${rel} ${file}\n`)
    } catch {}
}

const inflight = new Map() // cache key -> Promise<string> (path in cacheDir)
const failed = new Map() // cache key -> Error

/**
 * The bytecode of an entry file, from the cache or compiled into it.
 * @param {string} abs absolute path of the entry
 * @returns {Promise<string>} path of the cached .devs (never modify it)
 */
function buildCache(abs) {
    let rel = relative(repoRoot, abs)
    let file
    try {
        ;({ rel, file } = cacheEntry(abs))
    } catch (e) {
        return Promise.reject(new Error(`devs build ${rel} failed: ${e.message}`))
    }
    const key = basename(file)
    if (existsSync(file)) {
        // the mtime orders the cache for pruning (test/run.mjs)
        try {
            const now = new Date()
            utimesSync(file, now, now)
        } catch {}
        logBuild("cached", 0, rel)
        return Promise.resolve(file)
    }
    // a compile is deterministic: a key that failed fails again
    if (failed.has(key)) return Promise.reject(failed.get(key))
    if (!inflight.has(key)) {
        const t0 = Date.now()
        const p = compileTo(abs, file).then(() => {
            // with the server, it logs the compile: here the wait for it
            logBuild(process.env.UMQTT_BUILD_SERVER ? "waited" : "compiled", Date.now() - t0, rel)
            // a source edited while it compiled: the bytecode may be of
            // either version, so it serves this build only, not the key
            if (cacheEntry(abs).file !== file) {
                const own = join(genDir, `unkeyed-${unique()}.devs`)
                renameSync(file, own)
                return own
            }
            return file
        })
        p.catch(e => failed.set(key, e)).finally(() => inflight.delete(key))
        inflight.set(key, p)
    }
    return inflight.get(key)
}

/**
 * Compiles `abs` and stores the bytecode at `file` (atomically: another
 * process may be reading the cache).
 */
async function compileTo(abs, file) {
    mkdirSync(cacheDir, { recursive: true })
    // the server stores into the cache itself (it may be building this
    // entry already, from another test file or ahead of time)
    if (process.env.UMQTT_BUILD_SERVER)
        return serverBuild(process.env.UMQTT_BUILD_SERVER, { entry: abs, dest: file })
    const tmp = `${file}.${unique()}.tmp`
    try {
        await cliBuild(abs, tmp)
        renameSync(tmp, file)
    } finally {
        rmSync(tmp, { force: true })
    }
}

/**
 * The cache key of an entry file: its text and directory, and sourcesHash.
 * @param {string} abs absolute path of the entry
 * @returns {{ rel: string, file: string }} file: its path in the cache
 */
function cacheEntry(abs) {
    const rel = relative(repoRoot, abs)
    const text = readFileSync(abs, "utf8")
    // the directory counts: the entry's relative imports resolve from it
    const key = createHash("sha256")
        .update(`${CACHE_FORMAT}\0${dirname(rel)}\0${text}\0${sourcesHash()}`)
        .digest("hex")
        .slice(0, 40)
    return { rel, file: join(cacheDir, `${key}.devs`) }
}

/**
 * Asks the build server to compile entry files into the cache ahead of
 * time, behind the tests' own builds (test/run.mjs). Resolves once the
 * server has them queued; failures surface when a test builds the entry.
 * @param {string[]} entries absolute paths
 * @param {string} [sock] the server's socket (default: UMQTT_BUILD_SERVER)
 */
export async function prebuild(entries, sock = process.env.UMQTT_BUILD_SERVER) {
    if (!sock) return
    const jobs = []
    for (const abs of entries) {
        const { file } = cacheEntry(abs)
        if (!existsSync(file)) jobs.push({ entry: abs, dest: file })
    }
    if (jobs.length) await serverBuild(sock, { prebuild: jobs })
}

/** `devs build` in a child process, under the build lock. */
function cliBuild(abs, dest) {
    const rel = relative(repoRoot, abs)
    const run = buildChain.then(async () => {
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
            copyFileSync(bytecodePath, dest)
        } finally {
            releaseLock()
        }
    })
    buildChain = run.catch(() => {})
    return run
}

/**
 * A request to the build server on the Unix socket `sock`
 * (test/tools/buildserver.mjs): one JSON line each way. Time-bounded like a
 * `devs build` plus the wait for the lock.
 */
function serverBuild(sock, request) {
    const rel = request.entry ? relative(repoRoot, request.entry) : "(prebuild)"
    const timeoutMs = BUILD_TIMEOUT_MS + LOCK_WAIT_MS
    return new Promise((resolvePromise, reject) => {
        const c = connect(sock)
        let buf = ""
        let settled = false
        const finish = (err, res) => {
            if (settled) return
            settled = true
            clearTimeout(timer)
            c.destroy()
            if (err) return reject(err)
            if (res.ok) return resolvePromise()
            reject(new Error(`devs build ${rel} failed (build server):\n${res.output}`))
        }
        const timer = setTimeout(
            () => finish(new Error(`devs build ${rel} failed (build server: no answer in ${timeoutMs} ms)`)),
            timeoutMs
        )
        c.setEncoding("utf8")
        c.on("connect", () => c.write(JSON.stringify(request) + "\n"))
        c.on("data", d => {
            buf += d
            const i = buf.indexOf("\n")
            if (i >= 0) {
                try {
                    finish(null, JSON.parse(buf.slice(0, i)))
                } catch (e) {
                    finish(e)
                }
            }
        })
        c.on("error", e =>
            finish(new Error(`devs build ${rel} failed (build server ${sock}: ${e.message})`))
        )
        c.on("close", () =>
            finish(new Error(`devs build ${rel} failed (build server closed the connection)`))
        )
    })
}

// Parameters written into the bytecode at run time (see the header): the
// entry's string literal is the marker followed by PARAMS_ROOM spaces; the
// marker is 16 characters, as `slice(16)` in the entry assumes.
const PARAMS_MARKER = "@@umqtt-params@@"
const PARAMS_ROOM = 2048
const linked = new Map() // entry path -> parameters JSON

/**
 * The parameters as JSON that fits the entry's literal, or undefined when
 * they must be compiled in. The literal is patched in place, so the JSON is
 * made ASCII (one byte a character): other characters as \\u escapes,
 * which the device's JSON.parse decodes.
 */
function linkableJson(params) {
    const json = JSON.stringify(params)?.replace(
        /[\u007f-\uffff]/g,
        c => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0")
    )
    if (json === undefined || json.length > PARAMS_ROOM) return undefined
    return json
}

/**
 * A copy of `bytecode` with `json` written over the padding of the
 * parameters literal; throws unless the literal is found exactly once,
 * intact.
 * @param {Buffer} bytecode
 * @param {string} json
 * @returns {Buffer}
 */
export function linkParams(bytecode, json) {
    const marker = Buffer.from(PARAMS_MARKER, "latin1")
    const at = bytecode.indexOf(marker)
    const room = at + marker.length
    const pad = Buffer.alloc(PARAMS_ROOM, " ")
    if (
        at < 0 ||
        bytecode.indexOf(marker, at + 1) >= 0 ||
        !bytecode.subarray(room, room + PARAMS_ROOM).equals(pad)
    )
        throw new Error("bytecode without the parameters literal (entry not from writeEntry?)")
    const out = Buffer.from(bytecode)
    out.write(json.padEnd(PARAMS_ROOM, " "), room, "latin1")
    return out
}

/**
 * Compiles a DeviceScript entry file (or takes it from the build cache) and
 * writes its bytecode, with the parameters of a writeEntry entry, to a
 * unique file under test/.gen.
 * @param {string} entryTs path of the entry .ts (absolute or repo-relative)
 * @param {string} [name] base name of the output file (default: entry file name)
 * @returns {Promise<string>} absolute path of `test/.gen/<name>-<unique>.devs`
 * @throws {Error} with the compiler output when the build fails
 */
export async function buildDevs(entryTs, name) {
    const abs = resolve(repoRoot, entryTs)
    name = safeName(name || basename(abs).replace(/\.ts$/, ""))
    const link = linked.get(abs)
    let cached
    try {
        cached = await buildCache(abs)
    } catch (e) {
        if (!link?.fallback) throw e
        // the bundle of all scenarios does not compile: this scenario alone,
        // so that only the tests of a broken one fail, with its own errors
        return buildDevs(writeGenerated(name, link.fallback.src, link.fallback.json), name)
    }
    const out = join(genDir, `${name}-${unique()}.devs`)
    if (!link) copyFileSync(cached, out)
    else writeFileSync(out, linkParams(readFileSync(cached), link.json))
    return out
}

/**
 * Writes a generated entry file `test/.gen/<name>-<unique>.ts` that imports
 * `main` from the scenario module and calls `await main(params)`; when
 * `params` is undefined the entry only imports the module. The parameters
 * are written into the bytecode by buildDevs (one build for all runs of
 * the module), unless `compiled` is set or they do not fit (then they are
 * compiled in).
 * @param {string} scenarioModule module path, repo-relative (e.g. "test/devs/echo.ts") or absolute
 * @param {any} [params] JSON-serialisable parameters for `main`
 * @param {string} [name] base name (default: module file name)
 * @param {{ compiled?: boolean }} [opts] compiled: parameters in the source, type-checked against `main`
 * @returns {Promise<string>} absolute path of the entry file
 */
export async function writeEntry(scenarioModule, params, name, { compiled = false } = {}) {
    const abs = isAbsolute(scenarioModule)
        ? scenarioModule
        : resolve(repoRoot, scenarioModule)
    const spec = importSpec(abs)
    name = safeName(name || basename(abs).replace(/\.ts$/, ""))
    const json = params === undefined || compiled ? undefined : linkableJson(params)
    if (json !== undefined)
        return writeScenarioEntry(abs, name, { params: JSON.parse(json) }, { src: scenarioSource(abs), json })
    return writeGenerated(
        name,
        params === undefined
            ? `import ${JSON.stringify(spec)}\n`
            : `import { main } from ${JSON.stringify(spec)}\n` +
                  `await main(${JSON.stringify(params)})\n`
    )
}

/**
 * Writes the entry for one run of a scenario: the bundle of all scenarios
 * (bundleSource) when the module is one of them, else `alone`.
 * @param {string} abs the scenario module
 * @param {string} name base name of the entry file
 * @param {{ params: any } | { where: { port: number, topic: string } }} run
 *   the run's parameters, or where readConfig finds them (test/tools/devconfig.mjs)
 * @param {{ src: string, json: string }} alone the entry for this module
 *   alone, used when the bundle does not compile
 * @returns {string} absolute path of the entry file
 */
export function writeScenarioEntry(abs, name, run, alone) {
    const rel = relative(repoRoot, abs).split("\\").join("/")
    if (!bundleModules().includes(rel)) return writeGenerated(name, alone.src, alone.json)
    const json = linkableJson({ scenario: rel, ...run })
    if (json === undefined) return writeGenerated(name, alone.src, alone.json)
    return writeGenerated(name, bundleSource(), json, alone)
}

/**
 * The scenario modules of the bundle: those of test/devs and
 * test/tools/fixtures that export `main` and bring nothing that a module
 * alone would not have at start-up: no class of their own and no import
 * but @devicescript/core and src/. (The program sets up the prototypes of
 * all its classes when it starts; in the 64 KB heap, the extra objects of
 * codec-echo.ts, with its classes and packages, were enough to make the
 * 2 x 16 KB messages of large-alt.ts run out of memory.)
 * @returns {string[]} repo-relative, sorted
 */
export function bundleModules() {
    const mods = []
    for (const dir of ["test/devs", "test/tools/fixtures"])
        for (const f of readdirSync(join(repoRoot, dir)).filter(f => f.endsWith(".ts")).sort()) {
            const text = readFileSync(join(repoRoot, dir, f), "utf8")
            if (!/^export (async )?function main\(/m.test(text)) continue
            if (/^\s*(export )?(abstract )?class /m.test(text)) continue
            const imports = [...text.matchAll(/^import\b[^"]*"([^"]+)"/gm)].map(m => m[1])
            if (imports.every(i => i === "@devicescript/core" || i.startsWith("../../src/")))
                mods.push(`${dir}/${f}`)
        }
    return mods
}

/**
 * One program with the scenarios of bundleModules: one build serves all
 * their runs. The bytecode's parameters name the scenario, and hold its
 * parameters or where test/devs/devconfig.ts reads them. (One compile of
 * all of them costs about three of one alone.)
 */
export function bundleSource() {
    const mods = bundleModules()
    return (
        `// test/tools/sim.mjs (bundleSource): scenarios, the one to run named in the parameters\n` +
        `import { readConfig } from ${JSON.stringify(importSpec("test/devs/devconfig.ts"))}\n` +
        mods.map((m, i) => `import { main as main${i} } from ${JSON.stringify(importSpec(m))}\n`).join("") +
        paramsSource("run") +
        `const params = run.where ? await readConfig(run.where.port, run.where.topic) : run.params\n` +
        mods
            .map((m, i) => `${i ? "else " : ""}if (run.scenario === ${JSON.stringify(m)}) await main${i}(params)\n`)
            .join("") +
        `else throw new Error("no scenario " + run.scenario)\n`
    )
}

/**
 * The source of writeEntry's entry for a scenario module alone, its
 * parameters written into the bytecode (the same for every run: one build).
 * @param {string} scenarioModule absolute or repo-relative
 */
export function scenarioSource(scenarioModule) {
    return (
        `import { main } from ${JSON.stringify(importSpec(scenarioModule))}\n` +
        paramsSource("params") +
        // the compiler requires `await` on calls of async functions
        `await main(params)\n`
    )
}

/**
 * Import specifier of a repository file from a generated entry in test/.gen.
 * @param {string} file absolute or repo-relative
 */
export function importSpec(file) {
    let spec = relative(genDir, resolve(repoRoot, file))
        .split("\\")
        .join("/")
        .replace(/\.ts$/, "")
    if (!spec.startsWith(".")) spec = "./" + spec
    return spec
}

/**
 * Source lines declaring `const <variable>: any`, the parameters that
 * buildDevs writes into the bytecode (for entries written with
 * writeGenerated and a `json`).
 * @param {string} variable
 */
export function paramsSource(variable) {
    const literal = PARAMS_MARKER + " ".repeat(PARAMS_ROOM)
    return (
        `// the padding is overwritten with the parameters (JSON) in each run's copy of the bytecode\n` +
        `const ${variable}Json: string = ${JSON.stringify(literal)}\n` +
        `const ${variable}: any = JSON.parse(${variable}Json.slice(${PARAMS_MARKER.length}))\n`
    )
}

/**
 * Writes a generated entry `test/.gen/<name>-<unique>.ts` (run.mjs cleans
 * these up). With `json`, the source must declare the parameters with
 * paramsSource, and buildDevs writes `json` into the bytecode.
 * @param {string} name
 * @param {string} src
 * @param {string} [json] from JSON.stringify: ASCII, at most PARAMS_ROOM characters
 * @param {{ src: string, json: string }} [fallback] what buildDevs builds
 *   instead when `src` does not compile
 * @returns {string} absolute path of the entry file
 */
export function writeGenerated(name, src, json, fallback) {
    mkdirSync(genDir, { recursive: true })
    const file = join(genDir, `${safeName(name)}-${unique()}.ts`)
    writeFileSync(file, src)
    if (json !== undefined) {
        if (json.length > PARAMS_ROOM || !/^[\x20-\x7e]*$/.test(json))
            throw new Error(`parameters too long or not ASCII for the bytecode: ${json.slice(0, 80)}`)
        linked.set(file, { json, fallback })
    }
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
