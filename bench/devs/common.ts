import * as ds from "@devicescript/core"

/** Exits the simulator with code 0 (test mode). */
export function finish() {
    console.log("BENCH_END")
    ds.restart()
}
