import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Layer } from "effect"
import { Main } from "./App.ts"
import { exitCodeTeardown } from "./StartupError.ts"

Layer.launch(Main).pipe(NodeRuntime.runMain({ disableErrorReporting: true, teardown: exitCodeTeardown }))
