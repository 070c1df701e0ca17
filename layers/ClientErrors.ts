import type { Server } from "node:http"
import { STATUS_CODES } from "node:http"
import type { Duplex } from "node:stream"

/** What Node refuses before any handler runs, by its parser's error code: the status and what to tell the client. */
const refusalOf = (code: string | undefined): { readonly status: number; readonly detail: string } => {
  switch (code) {
    case "HPE_HEADER_OVERFLOW":
      return { status: 431, detail: "The request line and headers are larger than the server accepts (16 KiB)." }
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return { status: 413, detail: "The chunk extensions of the request body are too large." }
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return { status: 408, detail: "The request did not arrive in time." }
    default:
      return { status: 400, detail: "The request is not well-formed HTTP/1.1." }
  }
}

/**
 * Node answers the requests its parser refuses (a URL or headers over 16 KiB, malformed HTTP, a request that took too
 * long) itself, with a bare status line and no body. This answers them as Node would (same status, then the
 * connection closed), with an RFC 9457 problem body like every other error of the API.
 */
export const answerClientErrors = (server: Server) =>
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Duplex & { readonly bytesWritten?: number }) => {
    if (socket.writable && (socket.bytesWritten ?? 0) === 0) {
      const { status, detail } = refusalOf(error.code)
      const title = STATUS_CODES[status] ?? "Error"
      const body = JSON.stringify({ type: "about:blank", title, status, detail })
      socket.write(
        `HTTP/1.1 ${status} ${title}\r\n` +
          "Content-Type: application/problem+json\r\n" +
          `Content-Length: ${Buffer.byteLength(body)}\r\n` +
          "Connection: close\r\n\r\n" +
          body
      )
    }
    socket.destroy(error)
  })
