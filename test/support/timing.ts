import { availableParallelism, loadavg } from "node:os"

/**
 * Upper bounds on real time, for what a test cannot show by order or causality instead (a deadline the product
 * promises, such as "cut at SHUTDOWN_TIMEOUT"; how long a poll may wait for something that must happen).
 *
 * The suite shares two cores with other work, so a scheduler delay says nothing about the code: a bound is the time
 * the code needs on an idle machine, times a generous factor (3), times the load per core when that is above 1 (the
 * 1-minute load average: late, but the factor covers a burst). The bound only has to stay far below the time that
 * would mean a real failure (the 10 s delay not cut short, a deadline missed by seconds), and each test says which.
 */
export const loadPerCore = (): number => Math.max(1, (loadavg()[0] ?? 0) / availableParallelism())

/** `ms` (what it takes on an idle machine) with slack for a loaded one: × 3 × the load per core above 1. */
export const slack = (ms: number): number => Math.ceil(ms * 3 * loadPerCore())
