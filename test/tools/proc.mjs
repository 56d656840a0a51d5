// Registry of child processes started by the test tools. Every child is
// spawned detached (its own process group) and killed with SIGKILL on its
// group when the Node process exits or is interrupted, so no simulator or
// broker outlives a test run.

import { readFileSync } from "node:fs"

const live = new Map() // pid -> { name, group }

/**
 * Registers a spawned child so it is killed when this process exits.
 * The entry is removed when the child exits.
 * @param {import("node:child_process").ChildProcess} child
 * @param {string} [name] for diagnostics
 * @param {{ group?: boolean }} [opts] group: kill the process group (child spawned with detached: true); default true
 * @returns {import("node:child_process").ChildProcess} the child
 */
export function track(child, name = "child", { group = true } = {}) {
    const pid = child.pid
    if (!pid) return child
    install()
    live.set(pid, { name, group })
    child.once("exit", () => live.delete(pid))
    return child
}

/**
 * Sends a signal to a registered, still running child (its process group
 * when tracked as a group). Does nothing for unknown pids (they may have
 * been reused). Never throws.
 * @param {number} pid
 * @param {NodeJS.Signals} [signal]
 * @returns {boolean} true when the signal was delivered
 */
export function killPid(pid, signal = "SIGKILL") {
    const entry = live.get(pid)
    // a pid that is not (or no longer) registered may have been reused
    if (!pid || !entry) return false
    const group = entry.group
    let ok = false
    if (group) {
        try {
            process.kill(-pid, signal)
            ok = true
        } catch {}
    }
    try {
        process.kill(pid, signal)
        ok = true
    } catch {}
    return ok
}

/**
 * True when a process with this pid exists (and is not a zombie we can
 * detect through /proc).
 * @param {number} pid
 * @returns {boolean}
 */
export function pidAlive(pid) {
    try {
        process.kill(pid, 0)
    } catch (e) {
        return e.code === "EPERM"
    }
    try {
        // on Linux, a zombie (exited, not yet reaped) still accepts signal 0
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
        const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0]
        if (state === "Z" || state === "X") return false
    } catch {}
    return true
}

/** Kills every live registered child (SIGKILL, process groups). */
export function killAll() {
    for (const pid of [...live.keys()]) {
        killPid(pid, "SIGKILL")
        live.delete(pid)
    }
}

/** @returns {number[]} pids of registered children still running */
export function livePids() {
    return [...live.keys()]
}

/**
 * Functions run synchronously when the process exits (after killing the
 * children), e.g. removing temporary directories.
 * @type {Set<() => void>}
 */
const exitHooks = new Set()

/**
 * Registers a synchronous cleanup function run on process exit.
 * @param {() => void} fn
 * @returns {() => void} unregister
 */
export function onExit(fn) {
    install()
    exitHooks.add(fn)
    return () => exitHooks.delete(fn)
}

function runExitHooks() {
    killAll()
    for (const fn of [...exitHooks]) {
        exitHooks.delete(fn)
        try {
            fn()
        } catch {}
    }
}

// installed on first use, so that merely importing this module changes
// nothing about signal handling
let installed = false
function install() {
    if (installed) return
    installed = true
    process.on("exit", runExitHooks)
    for (const [sig, num] of [
        ["SIGINT", 2],
        ["SIGTERM", 15],
        ["SIGHUP", 1],
    ]) {
        process.on(sig, () => {
            runExitHooks()
            process.exit(128 + num)
        })
    }
}
