import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Cause, Console, Effect, Exit, type Runtime } from "effect"
import { CliConfig, CliError, CliOutput, Command, GlobalFlag } from "effect/cli"
import { packageVersion } from "../domain/PackageInfo.ts"
import { DeliveriesCommand } from "./DeliveriesCommand.ts"
import { EndpointsCommand } from "./EndpointsCommand.ts"
import { EventsCommand } from "./EventsCommand.ts"
import { type CliFailure, describeFailure, exitCodeOf, exitCodes, isCliFailure } from "./Failure.ts"
import { KeysCommand } from "./KeysCommand.ts"
import { MigrateCommand } from "./MigrateCommand.ts"
import { PortalCommand } from "./PortalCommand.ts"
import { globalFlags } from "./Settings.ts"
import { TailCommand } from "./TailCommand.ts"
import { TenantsCommand } from "./TenantsCommand.ts"

export const Codex = Command.make("codex").pipe(
  Command.withDescription(
    [
      "codex-api from the terminal.",
      "",
      "  Credentials: tenant commands (keys, endpoints, events, deliveries, tail) act with an API key",
      "  (CODEX_API_KEY), or as any tenant with the admin token and --tenant ten_...; tenants and portal",
      "  act with the admin token (CODEX_ADMIN_TOKEN). Flags win over the environment, which wins over",
      "  the config file (~/.config/codex/config.json, with profiles).",
      "",
      "  Exit codes: 0 done, 1 the server refused (4xx/5xx), 2 usage or configuration error,",
      "  3 server unreachable, 130 interrupted."
    ].join("\n")
  ),
  Command.withSubcommands([
    TenantsCommand,
    KeysCommand,
    EndpointsCommand,
    EventsCommand,
    DeliveriesCommand,
    TailCommand,
    PortalCommand,
    MigrateCommand
  ]),
  // After the subcommands: the flags' values are then provided to every one of them.
  Command.withGlobalFlags(globalFlags)
)

/** A failure on stderr: its lines, or with `--json` the server's problem document as is. */
const report = (failure: CliFailure, json: boolean) =>
  json && failure._tag === "ApiError"
    ? Console.error(JSON.stringify(failure.problem))
    : Console.error(describeFailure(failure).join("\n"))

/**
 * The exit code of a run: 0, the failure's (Failure.ts), 2 for a command line effect/cli refused (the presenter
 * printed why), 130 after Ctrl-C.
 */
const teardown: Runtime.Teardown = (exit, onExit) => {
  if (Exit.isSuccess(exit)) return onExit(exitCodes.ok)
  if (Cause.hasInterruptsOnly(exit.cause)) return onExit(exitCodes.interrupted)
  const failure = exit.cause.reasons.find(Cause.isFailReason)?.error
  if (isCliFailure(failure)) return onExit(exitCodeOf(failure))
  // A command group without its subcommand (`codex tenants`) shows its help: that is no error.
  if (CliError.isCliError(failure)) {
    return onExit(failure._tag === "ShowHelp" && failure.errors.length === 0 ? exitCodes.ok : exitCodes.usage)
  }
  process.stderr.write(`codex: unexpected failure: ${Cause.pretty(exit.cause)}\n`)
  onExit(exitCodes.api)
}

/**
 * A command line effect/cli refuses: its errors in our `codex: ...` form on stderr and where the help is, rather than
 * the whole help on stdout (which a script would take for output). Help and `--version` are effect/cli's own.
 */
const presenter: CliOutput.Presenter = {
  present: (event) =>
    event._tag === "InvalidInvocation"
      ? Console.error(
          [
            ...event.errors.map((error) => `codex: ${error.message}`),
            `  See: ${event.commandPath.join(" ")} --help`
          ].join("\n")
        )
      : CliOutput.defaultPresenter.present(event)
}

/** Runs `codex` with the command line `args` and exits with its code. */
export const runCli = (args: ReadonlyArray<string>): void =>
  Command.runWith(Codex, { version: packageVersion })(args).pipe(
    Effect.tapError((error) => (isCliFailure(error) ? report(error, args.includes("--json")) : Effect.void)),
    Effect.provide([
      CliConfig.layer({ builtIns: [GlobalFlag.Help, GlobalFlag.Version, GlobalFlag.Completions] }),
      CliOutput.layerPresenter(presenter)
    ]),
    Effect.provide(NodeServices.layer),
    NodeRuntime.runMain({ disableErrorReporting: true, teardown })
  )
