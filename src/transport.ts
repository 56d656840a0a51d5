import * as ds from "@devicescript/core"

/**
 * The transport seam: a byte stream to the broker. The client talks only to
 * this interface, so tests can run it over a scripted transport, and an
 * application could bring its own (for example a modem driver).
 */
export interface Transport {
    /**
     * Opens the connection; resolves once bytes can be written.
     * Throws an Error that says why it could not (DNS, refused, timeout).
     */
    open(
        host: string,
        port: number,
        tls: boolean,
        timeoutMs: number
    ): Promise<void>
    /** Writes bytes in order; throws when the connection is gone. */
    write(data: Buffer): Promise<void>
    /** Closes the connection; no event is delivered after it. */
    close(): void
    /** Called with each chunk of received bytes. Must not throw. */
    onData: (chunk: Buffer) => void
    /** Called once when the peer closes (`err` null) or the link fails. */
    onClose: (err: Error) => void
}

type SocketEvent = "open" | "close" | "data" | "error"
type DsSockets = typeof ds & {
    _socketOpen(host: string, port: number): number
    _socketClose(): number
    _socketWrite(buf: Buffer | string): number
    _socketOnEvent(event: SocketEvent, arg?: Buffer | string): void
}

/** Retries of a busy socket before a write gives up. */
const WRITE_BUSY_RETRIES = 500

/**
 * The device socket (TCP, or TLS when asked) through the runtime's socket
 * primitives. Unlike @devicescript/net's Socket it retries a busy socket
 * instead of throwing, and hands data straight to the client without
 * logging or buffering. The VM has one socket: opening another (also
 * `fetch`) ends this one.
 *
 * @devsWhenUsed
 */
export class DeviceSocketTransport implements Transport {
    onData: (chunk: Buffer) => void = null
    onClose: (err: Error) => void = null
    /** socket writes that succeeded, for measuring (the bench) */
    writeCount = 0
    private live = false
    private opened = false
    private openError: Error = null
    private opener: ds.Fiber = null
    private name = ""
    /**
     * Bumped by every open(). The runtime runs each socket event in a fiber
     * of its own with the handler installed when the event happened, so an
     * event of an earlier socket can run after the next open(): the handler
     * carries its connection number and such stale events are ignored.
     */
    private conn = 0
    /** why the runtime ended the socket (error event), for write() */
    private closeError: Error = null

    async open(host: string, port: number, tls: boolean, timeoutMs: number) {
        const sockets = ds as DsSockets
        this.close()
        this.name = `${tls ? "tls" : "tcp"}://${host}:${port}`
        this.live = true
        this.opened = false
        this.openError = null
        this.closeError = null
        const self = this
        const conn = ++this.conn
        sockets._socketOnEvent = (ev, arg) => self.event(conn, ev, arg)
        const r = sockets._socketOpen(host, tls ? -port : port)
        if (r !== 0) {
            this.live = false
            throw new Error(`${this.name}: cannot connect (error ${r})`)
        }
        this.opener = ds.Fiber.self()
        await ds.suspend(timeoutMs)
        // a later open() replaced this connection meanwhile: its state is
        // not ours to read
        if (conn !== this.conn)
            throw new Error("connection attempt cancelled")
        this.opener = null
        if (this.openError) throw this.openError
        if (!this.opened) {
            this.close()
            throw new Error(
                `${this.name}: connect timeout after ${timeoutMs} ms`
            )
        }
    }

    private event(conn: number, ev: SocketEvent, arg?: Buffer | string) {
        if (conn !== this.conn || !this.live) return
        try {
            if (ev === "data") {
                if (this.onData) this.onData(arg as Buffer)
                return
            }
            if (ev === "open") this.opened = true
            else if (ev === "close" || ev === "error") {
                const err =
                    ev === "error"
                        ? new Error(`${arg}`)
                        : this.opened
                          ? null
                          : new Error(`${this.name}: closed while connecting`)
                this.live = false
                this.closeError = err
                if (!this.opened) this.openError = err
                else if (this.onClose) this.onClose(err)
            }
            // open() waits for the first of these (null once it returned)
            const f = this.opener
            if (f && f.suspended) f.resume(true)
        } catch (e) {
            // an exception here would kill the program
            console.error(`transport: ${e}`)
        }
    }

    async write(data: Buffer) {
        const sockets = ds as DsSockets
        // a write retried on a busy socket stays with its own connection
        const conn = this.conn
        for (let i = 0; ; ++i) {
            if (!this.live || conn !== this.conn)
                throw new Error(`${this.name}: not connected`)
            const r = sockets._socketWrite(data)
            if (r === 0) {
                this.writeCount++
                return
            }
            if (r === -100) {
                // the runtime already dropped the socket (e.g. TLS
                // verification failed after the TCP "open"); its event is
                // queued: let it run and report its reason
                for (let k = 0; k < 10 && this.live; ++k) await ds.sleep(1)
                throw (
                    this.closeError ||
                    new Error(`${this.name}: connection closed`)
                )
            }
            if (r !== -1 || i >= WRITE_BUSY_RETRIES)
                throw new Error(`${this.name}: write failed (error ${r})`)
            await ds.sleep(i < 10 ? 1 : 10) // busy: the stack's buffers are full
        }
    }

    close() {
        if (!this.live) return
        this.live = false
        ;(ds as DsSockets)._socketClose()
    }
}
