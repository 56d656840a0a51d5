import { ProtocolError } from "./errors"

/**
 * Topic names and filters (MQTT 3.1.1 §4.7). Callers check the UTF-8 length
 * separately; these functions only look at the characters.
 */

/**
 * Throws unless `topic` is a valid topic name for PUBLISH: non-empty and
 * free of the wildcards `+` and `#` (§4.7.1-1, §4.7.3-1).
 */
export function checkTopicName(topic: string) {
    if (topic.length === 0) throw new ProtocolError("topic is empty")
    if (topic.indexOf("+") >= 0 || topic.indexOf("#") >= 0)
        throw new ProtocolError(
            `topic "${topic}" contains a wildcard (+ or #); only filters may`
        )
}

/**
 * Throws unless `filter` is a valid topic filter: non-empty, `+` alone in its
 * level, `#` alone in the last level (§4.7.1-2, §4.7.1-3).
 */
export function checkFilter(filter: string) {
    const n = filter.length
    if (n === 0) throw new ProtocolError("topic filter is empty")
    for (let i = 0; i < n; ++i) {
        const c = filter.charCodeAt(i)
        if (c !== 0x2b && c !== 0x23) continue // neither + nor #
        const startsLevel = i === 0 || filter.charCodeAt(i - 1) === 0x2f
        const endsLevel = i === n - 1 || filter.charCodeAt(i + 1) === 0x2f
        if (!startsLevel || !endsLevel)
            throw new ProtocolError(
                `topic filter "${filter}": a wildcard must fill a whole level`
            )
        if (c === 0x23 && i !== n - 1)
            throw new ProtocolError(
                `topic filter "${filter}": # must be the last level`
            )
    }
}

/**
 * True when `topic` matches `filter` (§4.7): `+` one level, `#` the rest
 * including the parent level; `$` topics only match filters starting with `$`
 * (§4.7.2-1).
 */
export function topicMatches(filter: string, topic: string) {
    if (topic.charCodeAt(0) === 0x24 && filter.charCodeAt(0) !== 0x24)
        return false
    let f = 0
    let t = 0
    const fn = filter.length
    const tn = topic.length
    while (f < fn) {
        const c = filter.charCodeAt(f)
        if (c === 0x23) return true // '#': the rest, also nothing at all
        if (c === 0x2b) {
            // '+': skip one level of the topic
            while (t < tn && topic.charCodeAt(t) !== 0x2f) t++
            f++
            continue
        }
        if (t >= tn) {
            // "a/#" also matches "a": the filter's tail is "/#"
            return (
                c === 0x2f &&
                f + 1 < fn &&
                filter.charCodeAt(f + 1) === 0x23 &&
                f + 2 === fn
            )
        }
        if (c !== topic.charCodeAt(t)) return false
        f++
        t++
    }
    return t === tn
}
