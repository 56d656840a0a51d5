/**
 * The broker refused the connection: `code` is the CONNACK return code
 * (1 unacceptable protocol version, 2 identifier rejected, 3 server
 * unavailable, 4 bad user name or password, 5 not authorized).
 *
 * @devsWhenUsed
 */
export class MQTTException extends Error {
    /** The CONNACK return code, or another MQTT code where noted. */
    code: number

    constructor(message: string, code: number) {
        super()
        this.name = "MQTTException"
        this.message = message
        this.code = code
    }
}

/**
 * Bytes that break the MQTT wire format, either received from the broker or
 * about to be encoded. The connection that carried them cannot be trusted any
 * more (MQTT 3.1.1 §4.8: the receiver closes the network connection).
 *
 * @devsWhenUsed
 */
export class ProtocolError extends Error {
    constructor(message: string) {
        super()
        this.name = "ProtocolError"
        this.message = message
    }
}

/** Text for a CONNACK return code (MQTT 3.1.1 §3.2.2.3). */
export function connackReason(code: number): string {
    if (code === 1) return "unacceptable protocol version"
    if (code === 2) return "identifier rejected"
    if (code === 3) return "server unavailable"
    if (code === 4) return "bad user name or password"
    if (code === 5) return "not authorized"
    return "refused"
}
