// The test profile: `npm test` runs every feature with short counts (under
// 5 minutes on 2 cores); `npm run test:full` (UMQTT_FULL=1, what CI runs)
// keeps the long counts: mutations, seeds, soaks.

/** True for the full run (UMQTT_FULL=1). */
export const full = /^(1|true)$/i.test(process.env.UMQTT_FULL || "")

/**
 * A count for this profile.
 * @param {number} quick the count of the default run
 * @param {number} fullCount the count of the full run
 */
export function scale(quick, fullCount) {
    return full ? fullCount : quick
}
