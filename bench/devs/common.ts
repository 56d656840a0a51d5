import * as ds from "@devicescript/core"

/** Exits the simulator with code 0 (test mode). */
export function finish() {
    console.log("BENCH_END")
    ds.restart()
}

const held: Buffer[] = []

/**
 * Holds `bytes` of heap in 1 KB buffers for the whole run (the `--ballast`
 * experiment: a grown heap makes calls cheaper, see the README).
 */
export function holdBallast(bytes: number) {
    for (let b = 0; b < (bytes || 0); b += 1024) held.push(Buffer.alloc(1024))
}

/** The parameters the rate measurements share. */
export interface RateParams {
    port: number
    /** this bench invocation's tag: topics and client ids */
    tag: string
    count: number
    payloadSize: number
    yieldEvery: number
    /** bytes held in 1 KB buffers for the whole run (experiment, see the README) */
    ballast?: number
}
