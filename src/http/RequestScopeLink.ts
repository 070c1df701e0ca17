import type { Scope } from "effect"

/**
 * The property through which Effect's `HttpEffect.toHandled` (since 4.1.5) links a request's scope to the request:
 * `scope[requestScopeJoin] = frame`, the frame holding the `HttpServerRequest` (Node's `IncomingMessage` and
 * `ServerResponse` with it) and the request's context, so that `scopeTransferToStream` can find it. Effect never
 * clears it.
 *
 * That link is what took the API's RSS under load from about 170 to about 305 MB. V8 pretenures the scope object (the
 * literal in Effect's `makeScope`: its allocation site's objects mostly survive a scavenge, since layers and requests in
 * flight keep scopes), so each request's scope lives in the old generation while the rest of the request is young. A
 * scavenge takes old-to-young pointers as roots without knowing whether the old object is still alive: every finished
 * request's frame, request and response stay reachable through their dead scope, get promoted, and are freed only by
 * the next full collection. The old generation grew by about 100 MB between full collections under bench (a).
 */
const requestScopeJoin = Symbol.for("effect/http/HttpEffect/requestScopeJoin")

/** Whether `scope` still links to its request (Effect's `toHandled` set the link and nothing released it). */
export const linksRequest = (scope: Scope.Scope): boolean =>
  requestScopeJoin in scope && Reflect.get(scope, requestScopeJoin) !== undefined

/**
 * Drops the link from a request's scope to the request, once the response is known (by then any
 * `scopeTransferToStream` has read it: a transferred body keeps what it read, not the property). Only a scope that has
 * the property is written, so the scope's shape is unchanged; on an Effect without the link this does nothing.
 */
export const releaseRequestLink = (scope: Scope.Scope | undefined): void => {
  if (scope !== undefined && requestScopeJoin in scope) Reflect.set(scope, requestScopeJoin, undefined)
}
