/**
 * `npm run client:generate` (or `npm run generate` here): rewrites src/generated/openapi.ts from the contract.
 */
import { writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { generatedTypesFile, renderOpenApiTypes } from "./openapiTypes.ts"

writeFileSync(generatedTypesFile, await renderOpenApiTypes())
process.stdout.write(`wrote ${fileURLToPath(generatedTypesFile)}\n`)
