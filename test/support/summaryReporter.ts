import { mkdirSync, writeFileSync } from "node:fs"
import { dirname } from "node:path"
import type { Reporter, TestCase, TestModule, TestSuite, Vitest } from "vitest/node"

type Outcome = "passed" | "failed" | "skipped"

export interface RunSummary {
  readonly passed: number
  readonly failed: number
  readonly skipped: number
  /** The failed tests and suites by name, so that the end of a long CI log still says which ones failed. */
  readonly failures: ReadonlyArray<string>
}

/** The suites and the file around a test, innermost first. */
const ancestors = (test: TestCase): Array<TestSuite | TestModule> => {
  const chain: Array<TestSuite | TestModule> = []
  let node: TestSuite | TestModule = test.parent
  while (node.type === "suite") {
    chain.push(node)
    node = node.parent
  }
  chain.push(node)
  return chain
}

/**
 * Runs beside the default reporter. Ends the run with the list of skipped tests and why (a missing tool's tag
 * names it and how to install it; see test/support/tools.ts), and counts the run honestly for `.ci/run`'s summary
 * line, written as `{ passed, failed, skipped }` to `$VITEST_SUMMARY_FILE` when it is set. Vitest's own counts call
 * "skipped" the tests of a file or `describe` whose setup failed (a `beforeAll`, a layer that did not build): here
 * they are failed, since they never ran; a file that failed before any test was collected (an import error) and a
 * suite whose teardown failed count one failed each, and so does every error outside any test; a test that never
 * finished (an interrupted run) is failed too. Last, the seed the tests were shuffled with, to replay their order.
 */
export default class SummaryReporter implements Reporter {
  private seed: number | undefined

  onInit(vitest: Vitest): void {
    this.seed = vitest.config.sequence.seed
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    const counts: Record<Outcome, number> = { passed: 0, failed: 0, skipped: 0 }
    const failures: Array<string> = []
    const skippedBecause = new Map<string, Array<string>>()
    const blamed = new Set<TestSuite | TestModule>()
    for (const module of modules) {
      const skipReasons = new Map<string, string | undefined>(
        module.project.config.tags.filter((tag) => tag.skip === true).map((tag) => [tag.name, tag.description])
      )
      for (const test of module.children.allTests()) {
        const result = test.result()
        if (result.state === "passed") counts.passed++
        else if (result.state === "failed" || result.state === "pending") {
          counts.failed++
          failures.push(`${module.relativeModuleId} > ${test.fullName}`)
        } else {
          const broken = ancestors(test).find((suite) => suite.errors().length > 0)
          if (broken !== undefined) {
            blamed.add(broken)
            counts.failed++
            failures.push(`${module.relativeModuleId} > ${test.fullName} (its setup failed)`)
            continue
          }
          counts.skipped++
          const reason =
            result.note ??
            test.tags.map((tag) => skipReasons.get(tag)).find((description) => description !== undefined) ??
            "skipped by a condition in the test file (see the name)"
          const list = skippedBecause.get(reason) ?? []
          list.push(`${module.relativeModuleId} > ${test.fullName}`)
          skippedBecause.set(reason, list)
        }
      }
      for (const suite of [module, ...module.children.allSuites()]) {
        if (suite.errors().length > 0 && !blamed.has(suite)) {
          counts.failed++
          failures.push(
            `${module.relativeModuleId}${suite.type === "suite" ? ` > ${suite.fullName}` : ""} (an error outside any test)`
          )
        }
      }
    }
    counts.failed += unhandledErrors.length
    for (const error of unhandledErrors) failures.push(`an unhandled error: ${String(error).slice(0, 200)}`)

    for (const [reason, tests] of skippedBecause) {
      process.stdout.write(`\n[tests] ${tests.length} skipped: ${reason}\n`)
      for (const test of tests) process.stdout.write(`  ${test}\n`)
    }
    const shuffled = modules.some(({ project }) => Boolean(project.config.sequence.shuffle))
    if (shuffled && this.seed !== undefined) {
      process.stdout.write(
        `\n[tests] tests shuffled within files with seed ${this.seed}; the same order again: --sequence.seed=${this.seed}\n`
      )
    }
    const file = process.env.VITEST_SUMMARY_FILE
    if (file !== undefined && file !== "") {
      mkdirSync(dirname(file), { recursive: true })
      writeFileSync(file, `${JSON.stringify({ ...counts, failures } satisfies RunSummary)}\n`)
    }
  }
}
