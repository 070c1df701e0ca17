/** How the test run reaches PostgreSQL, decided once by the global setup and handed to every test file. */
export type TestDatabaseMode =
  | {
      readonly kind: "postgres"
      /** A URL of the server's maintenance database, used to create and drop per-file databases. */
      readonly adminUrl: string
      /** A migrated database that per-file databases are cloned from. */
      readonly templateDatabase: string
    }
  | { readonly kind: "pglite" }

declare module "vitest" {
  export interface ProvidedContext {
    testDatabase: TestDatabaseMode
  }
}

/** Replaces the database name of a PostgreSQL URL. */
export const withDatabase = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}
