import { Context, type Effect } from "effect"

/**
 * The hard end of the connection drain. Started by the first step of shutdown (GracefulShutdown): `SHUTDOWN_TIMEOUT`
 * later, every connection still open (a hung request, a client that never finishes its request) is closed, whether
 * or not the request's handler reacts to interruption.
 */
export class ConnectionDeadline extends Context.Service<
  ConnectionDeadline,
  {
    /** Starts the clock; returns at once. */
    readonly start: Effect.Effect<void>
  }
>()("codex/ConnectionDeadline") {}
