import * as ds from "@devicescript/core"

/**
 * A condition that fibers wait on: `notify()` wakes every fiber waiting at
 * that moment. Lighter than `ds.emitter()` + `ds.wait()`, which starts a
 * fiber per emit. Waiters re-check their condition after waking, so a
 * notify that finds nobody waiting is never a lost wake-up.
 *
 * @devsWhenUsed
 */
export class Signal {
    private waiters: ds.Fiber[] = []

    /** Suspends the calling fiber until `notify()` or `timeoutMs` elapses. */
    async wait(timeoutMs?: number) {
        const self = ds.Fiber.self()
        this.waiters.push(self)
        try {
            await ds.suspend(timeoutMs)
        } finally {
            const i = this.waiters.indexOf(self)
            if (i >= 0) this.waiters.insert(i, -1)
        }
    }

    /** Wakes every fiber waiting now. */
    notify() {
        const w = this.waiters
        if (w.length === 0) return
        this.waiters = []
        for (let i = 0; i < w.length; ++i) if (w[i].suspended) w[i].resume(true)
    }
}
